"""A fast pre-order walk over libcst nodes.

libcst's visitor machinery costs several microseconds per node (dispatch and bookkeeping for
every visit/leave pair); for the few whole-tree scans the analysis needs (call sites, `yield`,
`return`) walking the dataclass fields directly is an order of magnitude cheaper.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import libcst as cst

_FIELDS: dict[type, tuple[str, ...]] = {}
_TEXT_TYPES = (str, "str")


def _fields(t: type) -> tuple[str, ...]:
    f = _FIELDS.get(t)
    if f is None:
        # Whitespace and punctuation fields never hold the nodes we look for.
        # So do `__slots__` (a ClassVar that dataclass lists among its fields) and text (a Name's
        # `value`): leaving them out spares a look at each of their values on every visit.
        f = tuple(
            fld.name for fld in dataclasses.fields(t)
            if fld.type not in _TEXT_TYPES
            and not fld.name.startswith(("whitespace", "lpar", "rpar", "comma", "semicolon", "colon", "lbrace",
                                         "rbrace", "lbracket", "rbracket", "equal", "header", "footer",
                                         "leading_lines", "trailing_whitespace", "lines_after_decorators"))
        )
        _FIELDS[t] = f
    return f


# What a field's value is, by its type: 1 a node, 2 a list or tuple (of nodes, maybe), 0 neither.
# (`isinstance(v, cst.CSTNode)` goes through ABCMeta's check on every value: CSTNode is an ABC.)
_KINDS: dict[type, int] = {}


def _kind(t: type) -> int:
    k = _KINDS.get(t)
    if k is None:
        k = _KINDS[t] = 1 if issubclass(t, cst.CSTNode) else 2 if issubclass(t, (list, tuple)) else 0
    return k


def iter_nodes(root: cst.CSTNode, descend: Callable[[cst.CSTNode], bool] | None = None) -> Iterator[cst.CSTNode]:
    """Every node under `root` (pre-order). `descend(node)` False skips a node's children."""
    stack: list[cst.CSTNode] = [root]
    while stack:
        node = stack.pop()
        yield node
        if descend is not None and node is not root and not descend(node):
            continue
        stack.extend(reversed(child_nodes(node)))


def child_nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    """A node's children in source order, whitespace and punctuation left out."""
    kinds = _KINDS
    children: list[cst.CSTNode] = []
    for name in _fields(type(node)):
        v = getattr(node, name)
        k = kinds.get(type(v))
        if k is None:
            k = _kind(type(v))
        if k == 1:
            children.append(v)
        elif k == 2:
            for x in v:
                kx = kinds.get(type(x))
                if (kx if kx is not None else _kind(type(x))) == 1:
                    children.append(x)
    return children
