"""What every part of the evaluator shares: `Scope`, `Budget`, the limits that keep
pathological input cheap, and the tests on plain data (`contains_unknown`, `any_unknown`, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import MISSING, FunctionValue, Unknown

if TYPE_CHECKING:
    from vramlint.engine.source import SourceModule


# Limits that keep pathological input cheap. Generous for real model code.
MAX_CALL_DEPTH = 120


MAX_INT_BITS = 4096  # numbers beyond ~10**1233 become Unknown


MAX_SEQUENCE = 1_000_000  # elements materialised by one operation


# Python's own exceptions out of the engine's or a frontend's code: bugs of vramlint, which
# `Evaluator.internal_error` turns into a located Unknown. Never the evaluator's signals, nor
# RecursionError and MemoryError (the top level stops the statement for those).
INTERNAL_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, AssertionError)


INTERNAL_ERROR = "vramlint internal error"  # the start of such an Unknown's reason


class Budget:
    __slots__ = ("steps", "limit")

    def __init__(self, limit: int) -> None:
        self.steps = 0
        self.limit = limit


class Scope:
    """Variables of one function, class body, comprehension or module."""

    __slots__ = ("vars", "parent", "globals", "is_class", "func", "self_value", "globals_decl",
                 "nonlocal_decl", "yields", "module")

    def __init__(
        self,
        vars: dict[str, Any],
        parent: Scope | None,
        globals: dict[str, Any],
        module: SourceModule,
        is_class: bool = False,
    ) -> None:
        self.vars = vars
        self.parent = parent
        self.globals = globals
        self.module = module
        self.is_class = is_class
        self.func: FunctionValue | None = None
        self.self_value: Any = MISSING
        self.globals_decl: set[str] | None = None
        self.nonlocal_decl: set[str] | None = None
        self.yields: list[Any] | None = None


NATIVE_SCALARS = (int, float, complex, str, bytes, bool, type(None))


# `d.keys()`, `d.values()`, `d.items()` return real dict views: iterate them like the dict.
DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))


def is_native_data(v: Any) -> bool:
    return isinstance(v, (*NATIVE_SCALARS, tuple, list, dict, set, frozenset, range, slice, *DICT_VIEWS))


def contains_unknown(v: Any, depth: int = 0) -> Unknown | None:
    """The first Unknown inside plain data (shallow for speed past a few levels)."""
    if isinstance(v, Unknown):
        return v
    if depth > 3:
        return None
    if isinstance(v, (list, tuple, set, frozenset)):
        for x in v:
            u = contains_unknown(x, depth + 1)
            if u is not None:
                return u
    elif isinstance(v, dict):
        for k, x in v.items():
            u = contains_unknown(k, depth + 1)
            if u is None:
                u = contains_unknown(x, depth + 1)
            if u is not None:
                return u
    return None


def any_unknown(*values: Any) -> Unknown | None:
    """The first Unknown inside any of `values` (never use `or` on values: Unknowns have no truth)."""
    for v in values:
        u = contains_unknown(v)
        if u is not None:
            return u
    return None


def first_unknown_of(*vals: Any) -> Unknown | None:
    for v in vals:
        if isinstance(v, Unknown):
            return v
    return None
