"""Which Python files of a tree may analyse differently after some files changed: the changed
ones, and those whose imports reach a changed one inside the tree (a helper module that builds a
layer changes every model that uses it). Read from the syntax alone (`ast`), over-approximating:
a module name is matched against every file it could be (any source root), and importing
`a.b.c` reaches `a/__init__.py` and `a/b/__init__.py` too, as Python runs them. A file that
cannot be parsed reaches nothing but itself (it is analysed when it changed)."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath


def module_names(rel: str) -> list[str]:
    """Every dotted name `rel` (a path relative to the tree) may be imported by: one per source root."""
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return [".".join(parts[i:]) for i in range(len(parts))]


def _package(rel: str) -> list[str]:
    return list(PurePosixPath(rel).parent.parts)


def _imports(body: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of a block and the blocks inside it (functions, classes, `if`,
    `try`...): imports are statements, so expressions need not be walked (ten times fewer nodes)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, name, None)
            if isinstance(inner, list):
                yield from _imports(inner)


def imported_names(source: str, rel: str) -> set[str]:
    """The dotted names a file imports (relative imports resolved against its folder), with their
    parents (`a.b.c` -> `a`, `a.b`, `a.b.c`) and, for `from m import x`, `m.x` (x may be a module)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in _imports(tree.body):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
            continue
        base = node.module or ""
        if node.level:
            package = _package(rel)
            keep = len(package) - (node.level - 1)
            if keep < 0:
                continue
            base = ".".join([*package[:keep], *([base] if base else [])])
        if base:
            names.add(base)
        names |= {f"{base}.{a.name}" if base else a.name for a in node.names if a.name != "*"}
    out: set[str] = set()
    for name in names:
        pieces = name.split(".")
        out |= {".".join(pieces[:i]) for i in range(1, len(pieces) + 1)}
    return out


def affected(root: str, files: Iterable[str], changed: set[str], start: Iterable[str] | None = None) -> set[str]:
    """Of `start` (default: `files`; paths relative to `root`, forward slashes, among `files`),
    those in `changed` or importing, directly or through other files of `files`, a changed Python
    file. Only `start` and the files their imports reach are read."""
    by_name: dict[str, set[str]] = {}
    for rel in sorted(set(files)):
        for name in module_names(rel):
            by_name.setdefault(name, set()).add(rel)
    roots = sorted(set(files if start is None else start))
    edges: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:  # the part of the import graph the roots reach
        rel = todo.pop()
        if rel in edges:
            continue
        edges[rel] = {t for n in imported_names(_read(root, rel), rel) for t in by_name.get(n, ())} - {rel}
        todo.extend(edges[rel] - edges.keys())
    hit = {rel for rel in edges if rel in changed}
    grew = True
    while grew:  # reverse reachability over that part
        grew = False
        for rel, targets in edges.items():
            if rel not in hit and targets & hit:
                hit.add(rel)
                grew = True
    return hit & set(roots)


def _read(root: str, rel: str) -> str:
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""
