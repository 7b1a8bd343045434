"""Operators over plain data and values: arithmetic (guarded against astronomically large
results), unary and boolean operators, comparisons, `in`, and truth (which raises Undecided on
an Unknown). Values other than plain data go to the protocol. Bound as methods of `Evaluator`."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.eval_base import (
    DICT_VIEWS,
    MAX_INT_BITS,
    MAX_SEQUENCE,
    Scope,
    any_unknown,
    first_unknown_of,
    is_native_data,
)
from vramlint.engine.signals import Undecided
from vramlint.engine.values import Unknown, Value, as_data

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.Divide: operator.truediv,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
    cst.Power: operator.pow,
    cst.LeftShift: operator.lshift,
    cst.RightShift: operator.rshift,
    cst.BitOr: operator.or_,
    cst.BitAnd: operator.and_,
    cst.BitXor: operator.xor,
    cst.MatrixMultiply: operator.matmul,
}


BINOP_NAMES: dict[type, str] = {
    cst.Add: "add",
    cst.Subtract: "sub",
    cst.Multiply: "mul",
    cst.Divide: "truediv",
    cst.FloorDivide: "floordiv",
    cst.Modulo: "mod",
    cst.Power: "pow",
    cst.LeftShift: "lshift",
    cst.RightShift: "rshift",
    cst.BitOr: "or",
    cst.BitAnd: "and",
    cst.BitXor: "xor",
    cst.MatrixMultiply: "matmul",
}


_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    cst.Equal: operator.eq,
    cst.NotEqual: operator.ne,
    cst.LessThan: operator.lt,
    cst.LessThanEqual: operator.le,
    cst.GreaterThan: operator.gt,
    cst.GreaterThanEqual: operator.ge,
}


_CMP_DUNDER: dict[type, str] = {
    cst.Equal: "__eq__",
    cst.NotEqual: "__ne__",
    cst.LessThan: "__lt__",
    cst.LessThanEqual: "__le__",
    cst.GreaterThan: "__gt__",
    cst.GreaterThanEqual: "__ge__",
}


def e_binop(self: Evaluator, node: cst.BinaryOperation, scope: Scope) -> Any:
    left = self.eval(node.left, scope)
    right = self.eval(node.right, scope)
    prev = self.current_ref
    self.current_ref = self.ref(scope, node)
    try:
        return self.binop(type(node.operator), left, right)
    finally:
        self.current_ref = prev


def binop(self: Evaluator, op: type, left: Any, right: Any, inplace: bool = False) -> Any:
    if isinstance(left, Unknown):
        return left
    if isinstance(right, Unknown):
        return right
    if is_native_data(left) and is_native_data(right):
        return _native_binop(self, op, left, right, inplace)
    from vramlint.engine.enums import (
        MixinMember,  # enums imports the builtins, which import this module
    )

    out = self.protocol.binop(op, left, right, inplace)
    if isinstance(out, Unknown) and (isinstance(left, MixinMember) or isinstance(right, MixinMember)):
        # A `class M(str, Enum)` member is its str (or int) to operators without a dunder of its own:
        # `quant_method += "_8bit"` (transformers' AutoHfQuantizer) gives a str, as in CPython.
        plain = [v.attrs.get("value") if isinstance(v, MixinMember) else v for v in (left, right)]
        if all(is_native_data(v) for v in plain):
            return _native_binop(self, op, plain[0], plain[1], inplace)
    return out


def _native_binop(self: Evaluator, op: type, left: Any, right: Any, inplace: bool) -> Any:
    # Guard operations whose result could be astronomically large.
    if op is cst.Power and isinstance(left, int) and isinstance(right, int) and right > 0:
        if abs(left) > 1 and right * max(1, abs(left).bit_length()) > MAX_INT_BITS:
            return Unknown(f"number too large ({left}**{right})", self.current_ref)
    elif op is cst.Multiply:
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                return Unknown("number too large", self.current_ref)
        elif isinstance(left, (str, bytes, list, tuple)) or isinstance(right, (str, bytes, list, tuple)):
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(n, int) and len(seq) * max(n, 0) > MAX_SEQUENCE:
                return Unknown("sequence too large", self.current_ref)
    elif op is cst.LeftShift and isinstance(right, int) and right > MAX_INT_BITS:
        return Unknown("number too large", self.current_ref)
    if inplace and op is cst.Add and isinstance(left, list):
        items = self.list_of(right)
        if isinstance(items, Unknown):
            return items
        left.extend(items)
        return left
    if op is cst.BitOr and isinstance(left, dict) and isinstance(right, dict):
        return {**left, **right}
    try:
        if op is cst.Add and isinstance(left, list) and isinstance(right, tuple):
            raise TypeError
        return _BINOPS[op](left, right)
    except ZeroDivisionError:
        raise self.raise_error("ZeroDivisionError", "division by zero") from None
    except (TypeError, ValueError, OverflowError) as err:
        u = any_unknown(left, right)
        if u is not None:
            return u
        raise self.raise_error("TypeError", str(err)) from None


def e_unary(self: Evaluator, node: cst.UnaryOperation, scope: Scope) -> Any:
    v = self.eval(node.expression, scope)
    op = node.operator
    if type(op) is cst.Not:
        try:
            return not self.truth(v)
        except Undecided as und:
            return und.unknown
    if isinstance(v, Unknown):
        return v
    if isinstance(v, (int, float, complex)):
        if type(op) is cst.Minus:
            return -v
        if type(op) is cst.Plus:
            return +v
        if type(op) is cst.BitInvert and isinstance(v, int):
            return ~v
    return self.protocol.unary(op, v)


def e_boolop(self: Evaluator, node: cst.BooleanOperation, scope: Scope) -> Any:
    left = self.eval(node.left, scope)
    try:
        t = self.truth(left)
    except Undecided as und:
        return und.unknown
    if type(node.operator) is cst.And:
        return self.eval(node.right, scope) if t else left
    return left if t else self.eval(node.right, scope)


def e_compare(self: Evaluator, node: cst.Comparison, scope: Scope) -> Any:
    left = self.eval(node.left, scope)
    result: Any = True
    for target in node.comparisons:
        right = self.eval(target.comparator, scope)
        r = self.compare(type(target.operator), left, right)
        if isinstance(r, Unknown):
            # Whatever a comparison of unknowns is (a bool, or a tensor), it is not a module.
            return as_data(r)
        if not r:
            return False
        result = r
        left = right
    return result


def compare(self: Evaluator, op: type, left: Any, right: Any) -> Any:
    if op is cst.Is or op is cst.IsNot:
        u = first_unknown_of(left, right)
        if u is not None:
            return u
        same = left is right or (
            isinstance(left, (bool, type(None))) and left == right and type(left) is type(right)
        )
        return same if op is cst.Is else not same
    if op is cst.In or op is cst.NotIn:
        r = self.contains(right, left)
        if isinstance(r, Unknown):
            return r
        return r if op is cst.In else not r
    u = first_unknown_of(left, right)
    if u is not None:
        return u
    if is_native_data(left) and is_native_data(right):
        u = any_unknown(left, right)
        if u is not None:
            return u
        try:
            return _CMPOPS[op](left, right)
        except TypeError as err:
            raise self.raise_error("TypeError", str(err)) from None
    return self.protocol.compare(op, _CMP_DUNDER[op], left, right)


def contains(self: Evaluator, container: Any, item: Any) -> Any:
    if isinstance(container, Unknown):
        return container
    user = self.user_dict_dunder(container, "__contains__")
    if user is not None:  # a dict subclass's own `in` (transformers' _LazyConfigMapping)
        return self.call(user, (item,), {})
    if isinstance(container, (str, bytes)):
        if isinstance(item, Unknown):
            return item
        try:
            return item in container
        except TypeError:
            return Unknown("`in` on a string", self.current_ref)
    if isinstance(container, (dict, set, frozenset, *DICT_VIEWS[::2])):  # keys and items views
        if isinstance(item, Unknown):
            return item
        try:
            found = item in container  # type: ignore[operator]  # isinstance with a tuple of view types
        except TypeError:
            return Unknown("unhashable value in `in`", self.current_ref)
        if not found and any(isinstance(k, Unknown) for k in container):  # type: ignore[attr-defined]  # isinstance with a tuple of view types
            return Unknown("membership among unknown keys", self.current_ref)
        return found
    if isinstance(container, (list, tuple, range, DICT_VIEWS[1])):  # ... and values views
        if isinstance(item, Unknown):
            return item
        unknown_seen = None
        for x in container:  # type: ignore[attr-defined]  # isinstance with a tuple of view types
            self.charge()
            if x is item:
                return True
            if isinstance(x, Unknown):
                unknown_seen = x
                continue
            r = self.compare(cst.Equal, x, item)
            if isinstance(r, Unknown):
                unknown_seen = r
            elif r:
                return True
        return unknown_seen if unknown_seen is not None else False
    contains = getattr(container, "contains", None) if isinstance(container, Value) else None
    if contains is not None:
        return contains(self, item)
    return self.protocol.contains(container, item)


def truth(self: Evaluator, v: Any) -> bool:
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, Unknown):
        raise Undecided(v)
    if isinstance(v, (int, float, complex, str, bytes)):
        return bool(v)
    if isinstance(v, (tuple, list, dict, set, frozenset, range, *DICT_VIEWS)):
        return len(v) > 0  # type: ignore[arg-type]  # isinstance with a tuple of view types
    return self.protocol.truth(v)
