"""Lookups over a file's analysis for the editor: which model a position names, which layer a
line constructs, what a forward line computed. Models of the same file share lines (a class and
an instance of it): the ones with a memory estimate come first."""

from __future__ import annotations

import os
from collections.abc import Iterator

from vramlint.analysis.results import FileAnalysis, ModelResult, ModuleNode
from vramlint.engine.values import Location, SourceRef
from vramlint.memory.estimate import LineTensor


def models(fa: FileAnalysis) -> list[ModelResult]:
    return sorted(fa.models, key=lambda m: m.memory is None)


def _nodes(node: ModuleNode) -> Iterator[ModuleNode]:
    yield node
    for c in node.children:
        yield from _nodes(c)


def layers_by_line(fa: FileAnalysis) -> dict[int, tuple[ModuleNode, ModelResult]]:
    """Construction lines of the analysed file -> the layer built there (its last line)."""
    out: dict[int, tuple[ModuleNode, ModelResult]] = {}
    target = os.path.abspath(fa.path)
    for m in models(fa):
        if m.tree is None:
            continue
        for node in _nodes(m.tree):
            if not node.path:
                continue  # the model itself: the code lens and the hover on its name say it
            loc = statement_of(node)
            if loc is None or os.path.abspath(loc.path) != target:
                continue
            out.setdefault(loc.end_line, (node, m))
    return out


def statement_of(node: ModuleNode) -> Location | None:
    """Where the layer was built, by lines: its statement when that is one line (cheap: no full
    position map of the file); else the construction itself (the layers of a `Sequential(...)`
    literal spread over lines each have their own)."""
    ref = node.ref
    if isinstance(ref, SourceRef):
        stmt = ref.statement_location
        if stmt.line == stmt.end_line:
            return stmt
    return node.location


def layer_at(fa: FileAnalysis, line: int, col: int) -> tuple[ModuleNode, ModelResult] | None:
    """The innermost layer construction (a call spanning columns) under 1-based `line`,
    code-point `col`: of two layers built on one line, the one under the cursor."""
    best: tuple[tuple[int, int], ModuleNode, ModelResult] | None = None
    target = os.path.abspath(fa.path)
    for m in models(fa):
        if m.tree is None:
            continue
        for node in _nodes(m.tree):
            stmt = statement_of(node) if node.path else None
            if stmt is None or not stmt.line <= line <= stmt.end_line:
                continue  # only the layers of the hovered statement need their exact position
            loc = node.location
            if loc is None or os.path.abspath(loc.path) != target:
                continue
            if not (loc.line, loc.column) <= (line, col) <= (loc.end_line, loc.end_column):
                continue
            size = (loc.end_line - loc.line, loc.end_column - loc.column if loc.line == loc.end_line else 0)
            if best is None or size < best[0]:
                best = (size, node, m)
    return (best[1], best[2]) if best is not None else None


def on_name(m: ModelResult, fa: FileAnalysis, lines: list[str], line: int, col: int) -> bool:
    """Whether 1-based `line`, code-point `col` is on the model's name. An instance's location
    is its whole assignment, whose other lines construct its layers: only the name counts."""
    loc = m.location
    if loc is None or os.path.abspath(loc.path) != os.path.abspath(fa.path) or line != loc.line:
        return False
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    end = loc.column + len(m.name)
    if text[loc.column:end] == m.name:
        return loc.column <= col <= end
    return loc.column <= col and (loc.end_line > line or col <= loc.end_column)


def lines_computed(fa: FileAnalysis) -> dict[int, tuple[LineTensor, ModelResult]]:
    out: dict[int, tuple[LineTensor, ModelResult]] = {}
    for m in models(fa):
        if m.memory is not None:
            for line, t in m.memory.lines.items():
                out.setdefault(line, (t, m))
    return out
