"""Which Python files of a tree may analyse differently after some files changed: the changed
ones, and those whose imports reach a changed one inside the tree (a helper module that builds a
layer changes every model that uses it). Read from the syntax alone (`ast`), over-approximating:
a module name is matched against every file it could be (any source root), and importing
`a.b.c` reaches `a/__init__.py` and `a/b/__init__.py` too, as Python runs them. A file that
cannot be parsed reaches nothing but itself (it is analysed when it changed)."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable
from pathlib import PurePosixPath


def module_names(rel: str) -> list[str]:
    """Every dotted name `rel` (a path relative to the tree) may be imported by: one per source root."""
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return [".".join(parts[i:]) for i in range(len(parts))]


def _package(rel: str) -> list[str]:
    parts = list(PurePosixPath(rel).parent.parts)
    return parts


def imported_names(source: str, rel: str) -> set[str]:
    """The dotted names a file imports (relative imports resolved against its folder), with their
    parents (`a.b.c` -> `a`, `a.b`, `a.b.c`) and, for `from m import x`, `m.x` (x may be a module)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
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


def affected(root: str, files: Iterable[str], changed: set[str]) -> set[str]:
    """Of `files` (paths relative to `root`, forward slashes), those in `changed` or importing,
    directly or through other files of the tree, a changed Python file."""
    files = sorted(set(files))
    by_name: dict[str, set[str]] = {}
    for rel in files:
        for name in module_names(rel):
            by_name.setdefault(name, set()).add(rel)
    edges: dict[str, set[str]] = {}
    for rel in files:
        try:
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
                source = fh.read()
        except OSError:
            source = ""
        edges[rel] = {t for n in imported_names(source, rel) for t in by_name.get(n, ())} - {rel}
    hit = {rel for rel in files if rel in changed}
    # Reverse reachability: repeat until no file newly imports a hit file (files are few hundred).
    grew = True
    while grew:
        grew = False
        for rel in files:
            if rel not in hit and edges[rel] & hit:
                hit.add(rel)
                grew = True
    return hit
