"""Lookups over a file's analysis for the editor: which model a position names, which layer a
line constructs, what a forward line computed. Models of the same file share lines (a class and
an instance of it): the ones with a memory estimate come first."""

from __future__ import annotations

import os
from collections.abc import Iterator

from vramlint.analysis.results import FileAnalysis, ModelResult, ModuleNode
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
            loc = node.location
            if loc is None or os.path.abspath(loc.path) != target:
                continue
            out.setdefault(loc.end_line, (node, m))
    return out


def lines_computed(fa: FileAnalysis) -> dict[int, tuple[LineTensor, ModelResult]]:
    out: dict[int, tuple[LineTensor, ModelResult]] = {}
    for m in models(fa):
        if m.memory is not None:
            for line, t in m.memory.lines.items():
                out.setdefault(line, (t, m))
    return out
