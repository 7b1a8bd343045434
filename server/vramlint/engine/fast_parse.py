"""libcst's parse, with less Python work per node: `parsing()` is the context every whole-file
parse of the engine runs in.

Two costs of a parse are in Python, not in libcst's native parser, which builds its tree by
calling each node class:
- validation: every node constructed is validated (`CSTNode.__post_init__`), the parser's too,
  whose output is valid by construction (libcst's own comment there: "it might make more sense to
  move validation work into the visitor, which would allow us to avoid validating the tree when
  parsing a file"): 15% of a parse. While a parse runs, nodes are not validated; a node built
  meanwhile on another thread by vramlint's own code is one the parser could have built.
- the dataclass `__init__`: libcst's nodes are frozen dataclasses with slots, whose generated
  `__init__` stores each field through `object.__setattr__` (a global, an attribute and a generic
  attribute store per field). `install()` gives each node class an `__init__` with the same
  signature and defaults that stores through the field's slot descriptor: 7% of a parse of
  torchvision's model files. It validates, as the dataclass's does, unless a parse is running.
  A class whose layout is not the one expected (a field without a slot, an `__init__` of its
  own) keeps libcst's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from libcst import CSTNode

_VALIDATE = CSTNode.__dict__["__post_init__"]
_lock = threading.Lock()
# The generated initialisers' globals: `_parsing` is how many parses are running.
_SHARED: dict[str, Any] = {"_parsing": 0, "__builtins__": __builtins__}
_installed = False
_libcst_inits: dict[type, Any] = {}  # what install() replaced (tests compare the two)


def _no_validation(self: CSTNode) -> None:
    pass


@contextmanager
def parsing() -> Iterator[None]:
    """Nodes built inside are not validated, in all threads (see above)."""
    install()
    with _lock:
        if _SHARED["_parsing"] == 0:
            CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]  # (classes install() left alone)
        _SHARED["_parsing"] += 1
    try:
        yield
    finally:
        with _lock:
            _SHARED["_parsing"] -= 1
            if _SHARED["_parsing"] == 0:
                CSTNode.__post_init__ = _VALIDATE  # type: ignore[method-assign]


def install() -> None:
    """Give every node class of libcst its slot-storing `__init__` (once per process)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        for cls in _node_classes():
            init = _slot_init(cls)
            if init is not None:
                _libcst_inits[cls] = cls.__dict__["__init__"]
                cls.__init__ = init  # type: ignore[misc]
        _installed = True


def _node_classes() -> list[type]:
    out: list[type] = []
    todo = [CSTNode]
    while todo:
        for sub in todo.pop().__subclasses__():
            out.append(sub)
            todo.append(sub)
    return out


def _slot_init(cls: type) -> Any:
    """`cls.__init__` as the dataclass generates it, storing through slots; None when `cls` is
    not a dataclass of libcst's usual layout (every init field a slot, the generated `__init__`)."""
    init = cls.__dict__.get("__init__")
    if init is None or not dataclasses.is_dataclass(cls) or getattr(init, "__code__", None) is None \
            or init.__code__.co_filename != "<string>":  # (dataclasses' generated code)
        return None
    fields = dataclasses.fields(cls)
    if any(not f.init or f.kw_only for f in fields):
        return None
    ns: dict[str, Any] = {}
    params: list[str] = []
    body: list[str] = []
    for f in fields:
        slot: Any = next((k.__dict__[f.name] for k in cls.__mro__ if f.name in k.__dict__), None)
        if type(slot).__name__ != "member_descriptor":  # a class from before libcst added slots
            return None
        ns[f"_set_{f.name}"] = slot.__set__
        if f.default_factory is not dataclasses.MISSING:
            ns[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_NO_VALUE")
            body.append(f"    _set_{f.name}(self, _factory_{f.name}() if {f.name} is _NO_VALUE else {f.name})")
        elif f.default is not dataclasses.MISSING:
            ns[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            body.append(f"    _set_{f.name}(self, {f.name})")
        else:
            params.append(f.name)
            body.append(f"    _set_{f.name}(self, {f.name})")
    ns["_NO_VALUE"] = _NO_VALUE
    # The stores and the defaults are the factory's closure: one code per class, shared globals.
    src = (f"def factory({', '.join(ns)}):\n"
           f"  def __init__(self{''.join(', ' + p for p in params)}):\n"
           + "".join(f"{line}\n" for line in body)
           + "    if not _parsing:\n"
           + "      self.__post_init__()\n"
           + "  return __init__\n")
    scope: dict[str, Any] = {}
    exec(src, _SHARED, scope)  # noqa: S102 (code made from the class's own field names)
    made = scope["factory"](**ns)
    made.__qualname__ = f"{cls.__qualname__}.__init__"
    made.__module__ = cls.__module__
    made.__doc__ = init.__doc__
    return made


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE = _NoValue()
