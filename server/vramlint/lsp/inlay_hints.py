"""Inlay hints: after each layer construction its parameter count, after each forward line the
shape and size of what it computes. Short labels; the tooltip is resolved when asked for."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from vramlint.analysis.results import FileAnalysis
from vramlint.lsp import index, summaries
from vramlint.lsp.positions import line_end


def inlay_hints(fa: FileAnalysis, text: str, rng: types.Range, layers: bool, forward: bool,
                good_text: str | None = None, uri: str = "") -> list[types.InlayHint]:
    """`good_text`: when `fa` is the last good analysis of a file now broken, only lines whose
    text is unchanged get their hints."""
    lines = text.splitlines()
    old = good_text.splitlines() if good_text is not None else None
    out: list[types.InlayHint] = []

    def wanted(line: int) -> bool:
        if not rng.start.line <= line - 1 <= rng.end.line:
            return False
        if old is not None and (line > len(lines) or line > len(old) or lines[line - 1] != old[line - 1]):
            return False
        return True

    if layers:
        for line, (node, _m) in sorted(index.layers_by_line(fa).items()):
            if wanted(line):
                out.append(_hint(lines, line, summaries.layer_hint(node), {"kind": "layer", "line": line, "uri": uri}))
    if forward:
        for line, (t, m) in sorted(index.lines_computed(fa).items()):
            if wanted(line):
                batch = m.memory.batch_size if m.memory else None
                out.append(_hint(lines, line, summaries.line_tensor_hint(t, batch), {"kind": "forward", "line": line, "uri": uri}))
    return out


def _hint(lines: list[str], line: int, label: str, data: dict[str, Any]) -> types.InlayHint:
    return types.InlayHint(line_end(lines, line), label, padding_left=True, data=data)


def resolve(fa: FileAnalysis | None, hint: types.InlayHint) -> types.InlayHint:
    data = hint.data if isinstance(hint.data, dict) else {}
    if fa is None:
        return hint
    line = data.get("line")
    if data.get("kind") == "layer":
        found = index.layers_by_line(fa).get(line) if isinstance(line, int) else None
        if found is not None:
            node, m = found
            hint.tooltip = types.MarkupContent(types.MarkupKind.Markdown, summaries.layer_markdown(
                node, m.memory.batch_size if m.memory else None))
    elif data.get("kind") == "forward":
        found2 = index.lines_computed(fa).get(line) if isinstance(line, int) else None
        if found2 is not None:
            t, m = found2
            hint.tooltip = f"{t.dtype} tensor in {m.name}'s forward (batch {m.memory.batch_size if m.memory else '?'})"
    return hint
