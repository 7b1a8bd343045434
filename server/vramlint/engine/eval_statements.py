"""The evaluator's simple statements (`Evaluator.s_*`): expression statements, `return`,
`raise`, `global`, `del`, assignments (plain, annotated, augmented), unpacking, and `bind`,
which stores a name where `global`/`nonlocal` say. Bound as methods of `Evaluator`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.code_facts import is_classvar, postponed_annotations
from vramlint.engine.eval_base import MAX_SEQUENCE, Scope
from vramlint.engine.signals import (
    BreakSignal,
    ContinueSignal,
    RaiseSignal,
    ReturnSignal,
    Undecided,
)
from vramlint.engine.values import ClassValue, ExceptionValue, Unknown

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


_AUGOPS: dict[type, type] = {
    cst.AddAssign: cst.Add,
    cst.SubtractAssign: cst.Subtract,
    cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide,
    cst.FloorDivideAssign: cst.FloorDivide,
    cst.ModuloAssign: cst.Modulo,
    cst.PowerAssign: cst.Power,
    cst.LeftShiftAssign: cst.LeftShift,
    cst.RightShiftAssign: cst.RightShift,
    cst.BitOrAssign: cst.BitOr,
    cst.BitAndAssign: cst.BitAnd,
    cst.BitXorAssign: cst.BitXor,
    cst.MatrixMultiplyAssign: cst.MatrixMultiply,
}


def s_expr(self: Evaluator, node: cst.Expr, scope: Scope) -> None:
    value = node.value
    if type(value) in (cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis):
        return  # docstrings
    self.eval(value, scope)


def s_break(self: Evaluator, node: cst.Break, scope: Scope) -> None:
    raise BreakSignal()


def s_continue(self: Evaluator, node: cst.Continue, scope: Scope) -> None:
    raise ContinueSignal()


def s_return(self: Evaluator, node: cst.Return, scope: Scope) -> None:
    raise ReturnSignal(None if node.value is None else self.eval(node.value, scope))


def s_raise(self: Evaluator, node: cst.Raise, scope: Scope) -> None:
    exc: Any = None
    if node.exc is not None:
        exc = self.eval(node.exc, scope)
        if isinstance(exc, ClassValue):
            exc = ExceptionValue(exc, ())
    raise RaiseSignal(exc, self.ref(scope, node))


def s_global(self: Evaluator, node: cst.Global, scope: Scope) -> None:
    if scope.globals_decl is None:
        scope.globals_decl = set()
    scope.globals_decl.update(n.name.value for n in node.names)


def s_nonlocal(self: Evaluator, node: cst.Nonlocal, scope: Scope) -> None:
    if scope.nonlocal_decl is None:
        scope.nonlocal_decl = set()
    scope.nonlocal_decl.update(n.name.value for n in node.names)


def s_del(self: Evaluator, node: cst.Del, scope: Scope) -> None:
    self.delete_target(node.target, scope)


def delete_target(self: Evaluator, target: cst.BaseExpression, scope: Scope) -> None:
    if type(target) is cst.Name:
        scope.vars.pop(target.value, None)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            self.delete_target(el.value, scope)
    elif type(target) is cst.Subscript:
        obj = self.eval(target.value, scope)
        idx = self.eval_slice(target.slice, scope)
        self.protocol.delitem(obj, idx)
    elif type(target) is cst.Attribute:
        obj = self.eval(target.value, scope)
        self.protocol.delattr(obj, self.attr_name(target, scope))


def s_assign(self: Evaluator, node: cst.Assign, scope: Scope) -> None:
    value = self.eval(node.value, scope)
    for t in node.targets:
        self.assign(t.target, value, scope)


def s_annassign(self: Evaluator, node: cst.AnnAssign, scope: Scope) -> None:
    # Class-level annotations in order (dataclass / NamedTuple fields); ClassVar ones are not fields.
    target = node.target
    field_name = target.value if scope.is_class and type(target) is cst.Name else None
    if field_name is not None and is_classvar(node.annotation.annotation):
        field_name = None
    if field_name is not None and is_classvar(node.annotation.annotation, "InitVar"):
        # dataclasses: an __init__ parameter handed to __post_init__, not a field.
        scope.vars.setdefault("__initvars__", []).append(field_name)
    if field_name is not None:
        scope.vars.setdefault("__annotations__", {})[field_name] = _annotation(self, node.annotation.annotation, scope)
    if node.value is None:
        if field_name is not None:
            scope.vars.setdefault("__annotations_order__", []).append(field_name)
        return
    value = self.eval(node.value, scope)
    if field_name is not None:
        scope.vars.setdefault("__annotations_order__", []).append(field_name)
    self.assign(node.target, value, scope)


def _annotation(self: Evaluator, expr: cst.BaseExpression, scope: Scope) -> Any:
    """A class annotation's value, as `__annotations__` holds it: its source text under
    `from __future__ import annotations`, else the evaluated expression (dataclass fields' `.type`)."""
    if postponed_annotations(scope.module):
        return cst.Module([]).code_for_node(expr)
    self.issue_sinks.append([])  # what an annotation could not evaluate does not concern the model
    try:
        return self.eval(expr, scope)
    except (RaiseSignal, Undecided) as err:
        return err.unknown if isinstance(err, Undecided) else Unknown("an annotation that raises", self.ref(scope, expr))
    finally:
        self.issue_sinks.pop()


def s_augassign(self: Evaluator, node: cst.AugAssign, scope: Scope) -> None:
    op = _AUGOPS[type(node.operator)]
    target = node.target
    if type(target) is cst.Name:
        cur = self.lookup(target.value, scope, target)
        new = self.binop(op, cur, self.eval(node.value, scope), inplace=True)
        self.assign(target, new, scope)
    elif type(target) is cst.Attribute:
        obj = self.eval(target.value, scope)
        cur = self.protocol.getattr(obj, self.attr_name(target, scope))
        new = self.binop(op, cur, self.eval(node.value, scope), inplace=True)
        self.protocol.setattr(obj, self.attr_name(target, scope), new)
    elif type(target) is cst.Subscript:
        obj = self.eval(target.value, scope)
        idx = self.eval_slice(target.slice, scope)
        cur = self.protocol.getitem(obj, idx)
        new = self.binop(op, cur, self.eval(node.value, scope), inplace=True)
        self.protocol.setitem(obj, idx, new)


def assign(self: Evaluator, target: cst.BaseExpression, value: Any, scope: Scope) -> None:
    if type(target) is cst.Name:
        self.bind(target.value, value, scope)
    elif type(target) is cst.Attribute:
        obj = self.eval(target.value, scope)
        self.protocol.setattr(obj, self.attr_name(target, scope), value)
    elif type(target) is cst.Subscript:
        obj = self.eval(target.value, scope)
        idx = self.eval_slice(target.slice, scope)
        self.protocol.setitem(obj, idx, value)
    elif isinstance(target, (cst.Tuple, cst.List)):
        self.unpack(target.elements, value, scope)
    elif type(target) is cst.StarredElement:
        self.assign(target.value, value, scope)


def unpack(self: Evaluator, elements: Any, value: Any, scope: Scope) -> None:
    star = next((i for i, e in enumerate(elements) if type(e) is cst.StarredElement), None)
    if isinstance(value, Unknown):
        for e in elements:
            self.assign(e.value, value, scope)
        return
    items = self.list_of(value, limit=len(elements) + MAX_SEQUENCE)
    if isinstance(items, Unknown):
        for e in elements:
            self.assign(e.value, items, scope)
        return
    if star is None:
        if len(items) != len(elements):
            raise self.raise_error("ValueError", f"cannot unpack {len(items)} values into {len(elements)}")
        for e, v in zip(elements, items):
            self.assign(e.value, v, scope)
        return
    after = len(elements) - star - 1
    if len(items) < star + after:
        raise self.raise_error("ValueError", "not enough values to unpack")
    for e, v in zip(elements[:star], items[:star]):
        self.assign(e.value, v, scope)
    self.assign(elements[star].value, items[star: len(items) - after], scope)
    for e, v in zip(elements[star + 1:], items[len(items) - after:]):
        self.assign(e.value, v, scope)


def bind(self: Evaluator, name: str, value: Any, scope: Scope) -> None:
    if scope.globals_decl and name in scope.globals_decl:
        scope.globals[name] = value
        return
    if scope.nonlocal_decl and name in scope.nonlocal_decl:
        s = scope.parent
        while s is not None:
            if not s.is_class and name in s.vars:
                s.vars[name] = value
                return
            s = s.parent
    scope.vars[name] = value
