"""Lookups over a file's analysis for the editor: which model a position names, which layer a
line constructs, what a forward line computed. Models of the same file share lines (a class and
an instance of it): the ones with a memory estimate come first."""

from __future__ import annotations

import ast
import os
import re
import weakref
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
    for node, m, loc, _exact in sites(fa):
        out.setdefault(loc.end_line, (node, m))
    return out


def layer_at(fa: FileAnalysis, line: int, col: int) -> tuple[ModuleNode, ModelResult] | None:
    """The layer built on 1-based `line` (on any line of a construction spread over lines): of
    several, the innermost under code-point `col`, else the smallest, leftmost."""
    best: tuple[tuple[int, int, int, int, int], ModuleNode, ModelResult] | None = None
    for node, m, loc, _exact in sites(fa):
        if not loc.line <= line <= loc.end_line:
            continue
        under = (loc.line, loc.column) <= (line, col) <= (loc.end_line, loc.end_column)
        width = loc.end_column - loc.column if under and loc.line == loc.end_line else 0
        key = (0 if under else 1, loc.end_line - loc.line, width, loc.line, loc.column)
        if best is None or key < best[0]:
            best = (key, node, m)
    return (best[1], best[2]) if best is not None else None


Site = tuple[ModuleNode, ModelResult, Location, bool]
# id(analysis) -> its sites, for as long as the analysis lives: the language server computes them
# in its worker, and a feature on the event loop must find them there, however many files are open
# (recomputing parses statements' text: seconds for a large literal).
_sites: dict[int, list[Site]] = {}


def sites(fa: FileAnalysis) -> list[Site]:
    """Each layer built in the analysed file (see `_sites_of`), computed once per analysis
    (hover, inlay hints and their tooltips ask for them again and again)."""
    hit = _sites.get(id(fa))
    if hit is not None:
        return hit
    out = _sites_of(fa)
    if id(fa) not in _sites:
        _sites[id(fa)] = out
        weakref.finalize(fa, _sites.pop, id(fa), None)
    return out


def _sites_of(fa: FileAnalysis) -> list[Site]:
    """Each layer built in the analysed file (not the models themselves: the code lens and the
    hover on a model's name say them) with where it was built, models with an estimate first,
    and whether that location is the construction itself (exact) or its one-line statement.

    Cheap (no position map of the whole file, 100+ ms on a large one): a statement's location
    comes from `ast`; only a statement that builds several layers or spans lines is looked into,
    with `ast` over that statement's text alone, for each construction's own place."""
    target = os.path.abspath(fa.path)
    found: list[tuple[ModuleNode, ModelResult, SourceRef | None, Location]] = []
    groups: dict[tuple[int, int, int], tuple[Location, list[SourceRef]]] = {}
    for m in models(fa):
        if m.tree is None:
            continue
        for node in _nodes(m.tree):
            if not node.path:
                continue
            ref = node.ref
            stmt = ref.statement_location if isinstance(ref, SourceRef) else node.location
            if stmt is None or os.path.abspath(stmt.path) != target:
                continue
            if isinstance(ref, SourceRef):
                _stmt, group = groups.setdefault((id(ref.module), stmt.line, stmt.column), (stmt, []))
                if all(r.node is not ref.node for r in group):
                    group.append(ref)
                found.append((node, m, ref, stmt))
            else:
                found.append((node, m, None, stmt))
    exact: dict[int, Location] = {}
    for stmt, refs in groups.values():
        if len(refs) > 1 or stmt.end_line > stmt.line:
            exact.update(_constructions(stmt, refs))
    out = []
    for node, m, ref, stmt in found:
        loc = exact.get(id(ref.node)) if ref is not None else None
        out.append((node, m, loc or stmt, loc is not None))
    return out


_SPACE = re.compile(r"\s+")


def _constructions(stmt: Location, refs: list[SourceRef]) -> dict[int, Location]:
    """id(cst node) -> its location, for the layer constructions (calls) of one statement: `ast`
    parses the statement's text alone, its calls matched by their source text, spaces aside (the
    same text twice: in order)."""
    module = refs[0].module
    tree = getattr(module, "tree", None)
    lines = module.text.splitlines()[stmt.line - 1:stmt.end_line]
    if tree is None or not lines:
        return {}
    lines[0] = lines[0][stmt.column:]
    snippet = "\n".join(lines)
    try:
        parsed = ast.parse(snippet)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    by_text: dict[str, list[ast.Call]] = {}
    for call in sorted((n for n in ast.walk(parsed) if isinstance(n, ast.Call)),
                       key=lambda c: (c.lineno, c.col_offset)):
        text = ast.get_source_segment(snippet, call)
        if text is not None:
            by_text.setdefault(_SPACE.sub("", text), []).append(call)

    def column(i: int, byte_col: int) -> int:  # ast's columns are UTF-8 bytes; ours code points
        line = lines[i] if i < len(lines) else ""
        c = byte_col if line.isascii() else len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))
        return c + (stmt.column if i == 0 else 0)

    out: dict[int, Location] = {}
    for ref in refs:
        try:  # libcst writes a node alone without its block's indentation: compare without spaces
            text = _SPACE.sub("", tree.code_for_node(ref.node))
        except Exception:
            continue
        candidates = by_text.get(text)
        if not candidates:
            continue
        call = candidates.pop(0)
        end_line = call.end_lineno or call.lineno
        out[id(ref.node)] = Location(stmt.path, stmt.line + call.lineno - 1, column(call.lineno - 1, call.col_offset),
                                     stmt.line + end_line - 1, column(end_line - 1, call.end_col_offset or 0))
    return out


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


def in_statement(m: ModelResult, fa: FileAnalysis, line: int) -> bool:
    """Whether 1-based `line` is within the statement that binds the model (in `fa`'s file)."""
    loc = m.location
    return loc is not None and os.path.abspath(loc.path) == os.path.abspath(fa.path) and loc.line <= line <= loc.end_line


def lines_computed(fa: FileAnalysis) -> dict[int, tuple[LineTensor, ModelResult]]:
    out: dict[int, tuple[LineTensor, ModelResult]] = {}
    for m in models(fa):
        if m.memory is not None:
            for line, t in m.memory.lines.items():
                out.setdefault(line, (t, m))
    return out
