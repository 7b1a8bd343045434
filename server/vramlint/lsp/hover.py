"""Hover: on a model's name its summary; on the `from_pretrained` of the statement that loads it,
the same with how it was loaded first (checkpoint, config source, dtype); on a layer's
construction its parameters, output shape and bytes kept for backward; on a forward line the
tensor it computes."""

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
    if _word_at(lines[position.line], col) == "from_pretrained":
        loaded = next((m for m in index.models(fa) if m.origin and index.in_statement(m, fa, line)), None)
        if loaded is not None:
            return _md(summaries.model_markdown(loaded))
    layer = index.layer_at(fa, line, col)
    if layer is not None:
        node, m = layer
        return _md(summaries.layer_markdown(node, m.memory.batch_size if m.memory else None))
    computed = index.lines_computed(fa).get(line)
    if computed is not None:
        t, m = computed
        batch = m.memory.batch_size if m.memory else None
        per = " per GPU" if m.memory is not None and m.memory.distributed is not None else ""
        return _md(f"`{summaries.shape_text(t.shape, batch)}` {t.dtype}, {fmt_bytes(t.bytes)}"
                   f" (batch {batch}{per}, in `{m.name}`'s forward)")
    return None


def _word_at(text: str, col: int) -> str:
    """The identifier around code-point `col` of `text`."""
    start, end = col, col
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[start:end]


def _md(value: str) -> types.Hover:
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, value))
