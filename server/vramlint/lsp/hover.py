"""Hover: on a model's name its summary; on a layer's construction its parameters, output
shape and bytes kept for backward; on a forward line the tensor it computes."""

from __future__ import annotations

from lsprotocol import types

from vramlint.analysis.results import FileAnalysis
from vramlint.lsp import index, summaries
from vramlint.lsp.positions import from_utf16
from vramlint.render.units import fmt_bytes


def hover(fa: FileAnalysis, text: str, position: types.Position, good_text: str | None = None) -> types.Hover | None:
    """`good_text`: when `fa` is the last good analysis of a file now broken, the text it was made
    of: a line whose text changed since gets nothing (its analysis would be about other code)."""
    lines = text.splitlines()
    line = position.line + 1
    if position.line >= len(lines):
        return None
    if good_text is not None:
        old = good_text.splitlines()
        if position.line >= len(old) or old[position.line] != lines[position.line]:
            return None
    col = from_utf16(lines[position.line], position.character)
    for m in index.models(fa):
        if index.on_name(m, fa, lines, line, col):
            return _md(summaries.model_markdown(m))
    layer = index.layer_at(fa, line, col)
    if layer is not None:
        node, m = layer
        return _md(summaries.layer_markdown(node, m.memory.batch_size if m.memory else None))
    computed = index.lines_computed(fa).get(line)
    if computed is not None:
        t, m = computed
        batch = m.memory.batch_size if m.memory else None
        return _md(f"`{summaries.shape_text(t.shape, batch)}` {t.dtype}, {fmt_bytes(t.bytes)}"
                   f" (batch {batch}, in `{m.name}`'s forward)")
    return None


def _md(value: str) -> types.Hover:
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, value))
