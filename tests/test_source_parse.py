"""engine/source.py and engine/fast_parse.py: a parse skips libcst's per-node validation (the
parser's output is valid by construction) and leaves validation on for every other construction;
the node classes' slot-storing initialisers build what libcst's own build."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import libcst as cst
import pytest
from libcst import CSTNode

from vramlint.engine import fast_parse
from vramlint.engine.source import SourceModule


def test_a_parse_does_not_validate_and_restores_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    validate = fast_parse._VALIDATE

    def counting(self: CSTNode) -> None:
        calls.append(type(self).__name__)
        validate(self)

    monkeypatch.setattr(fast_parse, "_VALIDATE", counting)
    monkeypatch.setattr(CSTNode, "__post_init__", counting)
    src = SourceModule("m.py", "import torch\nx = torch.zeros(3) + 1\n", "m")
    assert src.tree is not None and src.syntax_error is None
    assert calls == []  # no node of the parse was validated
    assert CSTNode.__post_init__ is counting  # and validation is back
    cst.Name("y")
    assert calls == ["Name"]


def test_invalid_nodes_are_still_rejected_after_a_parse() -> None:
    SourceModule("m.py", "y = 1\n", "m")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("")


def test_the_same_tree_as_libcst_parse_module() -> None:
    text = "def f(a, *b, c=1, **d):\n    return [x async for x in a] if a else {**d}\n"
    src = SourceModule("m.py", text, "m")
    assert src.tree is not None
    assert src.tree.code == text
    assert src.tree.deep_equals(cst.parse_module(text))


def _libcst_own(cls: type) -> Any:
    return fast_parse._libcst_inits[cls]


def test_every_node_class_gets_an_initialiser_with_libcsts_signature() -> None:
    fast_parse.install()
    concrete = [c for c in vars(cst).values() if isinstance(c, type) and issubclass(c, CSTNode)
                and "__init__" in c.__dict__ and not inspect.isabstract(c)]
    assert len(concrete) > 150
    assert all(c in fast_parse._libcst_inits for c in concrete)  # the layout install() expects
    for cls, own in fast_parse._libcst_inits.items():
        ours, theirs = inspect.signature(cls.__init__), inspect.signature(own)  # type: ignore[misc]
        assert list(ours.parameters) == list(theirs.parameters), cls
        for name, p in ours.parameters.items():
            q = theirs.parameters[name]
            assert p.kind == q.kind, (cls, name)
            factory = next((f.default_factory for f in dataclasses.fields(cls) if f.name == name), None)
            if q.default is not inspect.Parameter.empty and factory in (None, dataclasses.MISSING):
                assert p.default is q.default, (cls, name)  # the same default object, as libcst's
            else:
                assert (p.default is inspect.Parameter.empty) == (q.default is inspect.Parameter.empty), (cls, name)


def test_nodes_built_without_arguments_equal_libcsts() -> None:
    fast_parse.install()
    built = 0
    for cls, own in fast_parse._libcst_inits.items():
        try:
            theirs = cls.__new__(cls)
            own(theirs)
        except TypeError:
            continue  # it has required fields
        ours = cls()
        assert ours.deep_equals(theirs), cls
        for f in dataclasses.fields(cls):  # a default factory's value is the node's own, as libcst's
            if f.default_factory is not dataclasses.MISSING and not isinstance(getattr(ours, f.name), (str, tuple)):
                assert getattr(ours, f.name) is not getattr(cls(), f.name), (cls, f.name)
        built += 1
    assert built > 40


SYNTAX = '''\
from __future__ import annotations
import a.b as c, d
type Pair[T: int, *Ts, **P] = tuple[T, T]
@decorator(1)
async def f[T](x: int, /, y=2, *args: T, z, **kw) -> None:
    """doc"""
    global g
    async with a as (b, c), d:
        async for i in range(3):
            await x; yield i; yield from y
    match point:
        case Point(x=0, y=0) | [1, *rest] | {"k": v, **others} if v > 1:
            pass
        case str() as s:
            raise ValueError(s) from None
    try:
        del x[1:2, ::3], y.z
    except* (A, B) as e:
        nonlocal_ = lambda q, *, r=1: (q @ r, not q, -q, ~q, q ** -r)
    finally:
        assert x is not None, f"{x!r:>{width}} {y=}"
    while (n := n - 1) > 0:
        x += 1; x //= 2; x <<= 1
        break
    else:
        continue
    return {**d, 1: 2} | {1, *s} | [*l] | (t,) | {k: v for k, v in d.items() if k} | [i async for i in g]
class C(B, metaclass=M):
    x: int = 1 if y else 2
    print(b"bytes", rb"raw", 1_000j, 0x1F, 1e-3, ..., sep="")
'''


def test_the_same_trees_as_libcsts_own_initialisers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file of torchvision and every kind of statement, parsed with the slot initialisers
    and with libcst's own: equal trees, the same code."""
    from tests.support.libsources import TORCHVISION_VERSION, library_source

    root = library_source("torchvision", TORCHVISION_VERSION)
    texts = [SYNTAX] + [p.read_text(encoding="utf-8") for p in sorted(root.glob("torchvision/**/*.py"))]
    assert len(texts) > 150
    ours = [SourceModule(f"m{i}.py", text, "m").tree for i, text in enumerate(texts)]
    for cls in fast_parse._libcst_inits:
        monkeypatch.setattr(cls, "__init__", _libcst_own(cls))
    for text, tree in zip(texts, ours):
        assert tree is not None
        theirs = cst.parse_module(text)
        assert tree.code == text
        assert tree.deep_equals(theirs)
