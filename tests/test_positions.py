"""Positions of expressions (where an unknown is shown): SourceModule.location_of places a node
inside a simple statement or a compound statement's header from that code alone; it must say
exactly what libcst's PositionProvider over the whole file says."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from vramlint.engine.source import SourceModule
from vramlint.engine.values import Location
from vramlint.engine.walk import iter_nodes

TRICKY = '''\
import torch


# a comment above a decorator
@torch.no_grad()
# a comment between decorators
@(
    staticmethod
)
def f(a: int = (1 +
                2), *args, b=[x for x in range(3)], **kw) -> "T":
    x = 1; y = (a,
        b)  # a continuation that does not repeat the block's indentation
    if (x <
            y):
        z = {"k": [1,
                   2]}
    elif x > \\
            y:
        z = "é" + "ü"; w = z
    else: v = 3
    for i, j in zip(range(2),
                    range(2)):
        pass
    while (i and
           j): break
    with open("f") as fh, open(
            "g") as gh:
        s = f"{x!r:>{y}}" \\
            "tail"
    return lambda q=x: q


class C(torch.nn.Module,
        metaclass=type):
\tdef g(self):
\t\treturn self.h(1,
\t\t              2)
'''


def _check(text: str) -> int:
    tree = cst.parse_module(text)
    full = MetadataWrapper(tree, unsafe_skip_copy=True).resolve(PositionProvider)
    checked = 0
    for node in iter_nodes(tree):
        if node not in full:
            continue
        src = SourceModule("t.py", text, "t")  # fresh: no whole-file positions computed yet
        mine = next(n for n, m in zip(iter_nodes(src.tree), iter_nodes(tree)) if m is node)  # type: ignore[arg-type]
        fast = src._position_in_statement(mine)
        if fast is None:
            continue
        r = full[node]
        assert fast == r, f"{type(node).__name__} at {r}: {fast}"
        loc = src.location_of(mine)
        assert loc == Location("t.py", r.start.line, r.start.column, r.end.line, r.end.column)
        assert src._positions is None  # placed without regenerating the file
        checked += 1
    return checked


def test_expression_positions_match_libcst_without_regenerating_the_file() -> None:
    # Every node of the simple statements and headers above: continuation lines inside brackets
    # in indented blocks, comments above and between decorators, elif, non-ASCII text, tabs.
    assert _check(TRICKY) > 150


def test_headers_and_statements_after_a_parenthesized_decorator() -> None:
    text = "@(\n  dec\n)\nclass A:\n    x = (1,\n  2)\n"
    assert _check(text) > 5
