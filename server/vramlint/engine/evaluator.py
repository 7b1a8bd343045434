"""The abstract evaluator: runs model-definition Python over libcst trees.

It executes the code the way Python would where values are known (numbers, strings,
containers, classes, functions), and carries `Unknown` values, each with its reason and
location, where they are not. Everything that could loop or recurse is charged to a Budget,
so no input can hang it.

Frontends (torch.nn, ...) plug in through native modules and `Value` subclasses; the
evaluator itself knows nothing about deep learning.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.exports import registers_at_import, scan_exports
from vramlint.engine.limits import AnalysisBudget
from vramlint.engine.signals import (
    AnalysisStopped,
    BreakSignal,
    BudgetExceeded,
    ContinueSignal,
    RaiseSignal,
    ReturnSignal,
    Undecided,
)
from vramlint.engine.values import (
    MISSING,
    BoundMethod,
    ClassMethod,
    ClassValue,
    ExceptionValue,
    FunctionValue,
    Instance,
    LazyBinding,
    ModuleValue,
    NativeFunction,
    Partial,
    Property,
    SourceRef,
    StaticMethod,
    SubclassedDict,
    SuperValue,
    Unknown,
    UnknownValueError,
    Value,
    as_data,
    is_data_value,
)
from vramlint.engine.walk import iter_nodes

if TYPE_CHECKING:
    from vramlint.engine.loader import Loader
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
_NATIVE_SCALARS = (int, float, complex, str, bytes, bool, type(None))


def is_native_data(v: Any) -> bool:
    return isinstance(v, (*_NATIVE_SCALARS, tuple, list, dict, set, frozenset, range, slice, *_DICT_VIEWS))


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


class Evaluator:
    """Executes statements and expressions of analysed modules."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        self.builtins: dict[str, Any] = loader.builtins
        self.budget = Budget(2_000_000)
        # The whole analysis's budget (time, steps, cancellation), set by analysis/api.py.
        self.analysis = AnalysisBudget()
        self.depth = 0
        # The memory model's recorder (memory/tape.py) while a forward is traced for it.
        self.tape: Any = None
        # Native functions whose calls the tape records, by name prefix (frontends' `taped_prefixes`:
        # a framework's API; not builtins, not Module.__call__).
        self.taped_prefixes: tuple[str, ...] = ()
        # Stack of lists collecting the Unknowns that decided nothing (skipped branches...).
        self.issue_sinks: list[list[Unknown]] = []
        # Observers of class instantiation (used to find construction call sites).
        self.current_ref: SourceRef | None = None
        self._stmt = self._statement_table()
        self._expr = self._expression_table()

    # ------------------------------------------------------------------ bookkeeping
    def charge(self, n: int = 1) -> None:
        b = self.budget
        b.steps += n
        if b.steps > b.limit:
            raise BudgetExceeded(
                f"evaluation budget of {b.limit:,} steps exceeded (endless loop or very large model?)",
                self.current_ref,
            )
        a = self.analysis
        a.steps += n
        if a.steps >= a.next_check:
            a.check(self.current_ref)

    def ref(self, scope: Scope, node: cst.CSTNode) -> SourceRef:
        return SourceRef(scope.module, node)

    def unknown(self, reason: str, scope: Scope | None = None, node: cst.CSTNode | None = None) -> Unknown:
        ref = self.ref(scope, node) if scope is not None and node is not None else self.current_ref
        return Unknown(reason, ref)

    def record(self, unknown: Unknown) -> None:
        """Remember an Unknown that changed what code ran (a skipped branch, a failed call)."""
        if self.issue_sinks:
            sink = self.issue_sinks[-1]
            if len(sink) < 200:
                sink.append(unknown)

    def internal_error(self, err: Exception, ref: SourceRef | None) -> Unknown:
        """A Python exception out of vramlint's own code (a rule meeting input it did not expect):
        a bug of ours, but it costs one value, located, instead of the file's whole analysis."""
        u = Unknown(f"{INTERNAL_ERROR}: {type(err).__name__}: {err} (please report it)", ref)
        self.record(u)  # said where the statement's or the model's problems are said, even if the value is dropped
        return u

    def raise_error(self, exc_name: str, message: str) -> RaiseSignal:
        cls = self.builtins.get(exc_name)
        if isinstance(cls, ClassValue):
            return RaiseSignal(ExceptionValue(cls, (message,)), self.current_ref)
        return RaiseSignal(Unknown(message, self.current_ref), self.current_ref)

    # ------------------------------------------------------------------ modules
    def exec_module(
        self, source: SourceModule, module: ModuleValue, per_statement_steps: int,
        aborted: dict[cst.CSTNode, Unknown] | None = None,
    ) -> list[tuple[cst.CSTNode, list[Unknown]]]:
        """Run a module's top level and return, per statement, what it could not decide.

        Each statement gets its own step allowance so one bad statement (an endless loop) does
        not stop the definitions that follow it. Statements the evaluation gave up on part-way
        (steps or call depth ran out: an endless loop, runaway recursion), so that some of their
        definitions are missing, are also put in `aborted`, with the reason. (Exceptions are
        not: they are as often an unmodelled library feature as a bug of the analysed code.)"""
        out: list[tuple[cst.CSTNode, list[Unknown]]] = []
        assert source.tree is not None
        scope = Scope(module.ns, None, module.ns, source)
        depth = self.depth
        for stmt in source.tree.body:
            saved = self.budget
            self.budget = Budget(per_statement_steps)
            sink: list[Unknown] = []
            self.issue_sinks.append(sink)
            gave_up: Unknown | None = None
            try:
                self.exec_stmt(stmt, scope)
            except AnalysisStopped:
                raise  # the analysis ends: the module must not look complete (loader.run_file)
            except BudgetExceeded as err:
                gave_up = Unknown(err.message, err.ref or self.ref(scope, stmt))
                sink.append(gave_up)
            except RaiseSignal as sig:
                sink.append(self.exception_unknown(sig, scope, stmt))
            except (ReturnSignal, BreakSignal, ContinueSignal):
                pass
            except Undecided as und:
                sink.append(und.unknown)
            except RecursionError:
                gave_up = Unknown("statement too deeply nested to evaluate", self.ref(scope, stmt))
                sink.append(gave_up)
            finally:
                self.budget = saved
                self.issue_sinks.pop()
                self.depth = depth
            if gave_up is not None and aborted is not None:
                aborted[stmt] = gave_up
            out.append((stmt, sink))
        return out

    def exception_unknown(self, sig: RaiseSignal, scope: Scope | None, node: cst.CSTNode | None) -> Unknown:
        exc = sig.exc
        if isinstance(exc, ExceptionValue):
            msg = ", ".join(str(a) for a in exc.args if not isinstance(a, Value)) or ""
            text = f"raises {exc.cls.name}" + (f": {msg}" if msg else "")
        elif isinstance(exc, Unknown):
            text = f"raises an exception ({exc.reason})"
        else:
            text = "raises an exception"
        ref = sig.ref or (self.ref(scope, node) if scope is not None and node is not None else None)
        return Unknown(text, ref)

    # ------------------------------------------------------------------ statements
    def exec_block(self, body: Any, scope: Scope) -> None:
        if type(body) is cst.SimpleStatementSuite:
            for small in body.body:
                self.exec_small(small, scope)
            return
        stmts = body.body if type(body) is cst.IndentedBlock else body
        for stmt in stmts:
            self.exec_stmt(stmt, scope)

    def exec_stmt(self, stmt: cst.CSTNode, scope: Scope) -> None:
        self.charge()
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                self.exec_small(small, scope)
            return
        handler = self._stmt.get(type(stmt))
        if handler is None:
            self.record(self.unknown(f"unsupported statement `{type(stmt).__name__}`", scope, stmt))
            return
        handler(stmt, scope)

    def exec_small(self, small: cst.CSTNode, scope: Scope) -> None:
        handler = self._stmt.get(type(small))
        if handler is None:
            self.record(self.unknown(f"unsupported statement `{type(small).__name__}`", scope, small))
            return
        prev = self.current_ref
        self.current_ref = SourceRef(scope.module, small)
        try:
            handler(small, scope)
        except UnknownValueError as err:  # e.g. `s %= (u,)`: the statement is skipped, as if undecided
            self.record(err.unknown)
        except INTERNAL_ERRORS as err:
            self.internal_error(err, self.current_ref)
        finally:
            self.current_ref = prev

    def _statement_table(self) -> dict[type, Callable[[Any, Scope], None]]:
        return {
            cst.Expr: lambda n, s: self._expr_stmt(n, s),
            cst.Assign: self.s_assign,
            cst.AnnAssign: self.s_annassign,
            cst.AugAssign: self.s_augassign,
            cst.Return: self.s_return,
            cst.Pass: lambda n, s: None,
            cst.Break: self.s_break,
            cst.Continue: self.s_continue,
            cst.Raise: self.s_raise,
            cst.Assert: lambda n, s: None,  # asserts never change what a model builds
            cst.Import: self.s_import,
            cst.ImportFrom: self.s_importfrom,
            cst.Global: self.s_global,
            cst.Nonlocal: self.s_nonlocal,
            cst.Del: self.s_del,
            cst.FunctionDef: self.s_functiondef,
            cst.ClassDef: self.s_classdef,
            cst.If: self.s_if,
            cst.For: self.s_for,
            cst.While: self.s_while,
            cst.Try: self.s_try,
            cst.TryStar: self.s_try,
            cst.With: self.s_with,
            cst.Match: self.s_match,
        }

    def _expr_stmt(self, node: cst.Expr, scope: Scope) -> None:
        value = node.value
        if type(value) in (cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis):
            return  # docstrings
        self.eval(value, scope)

    def s_break(self, node: cst.Break, scope: Scope) -> None:
        raise BreakSignal()

    def s_continue(self, node: cst.Continue, scope: Scope) -> None:
        raise ContinueSignal()

    def s_return(self, node: cst.Return, scope: Scope) -> None:
        raise ReturnSignal(None if node.value is None else self.eval(node.value, scope))

    def s_raise(self, node: cst.Raise, scope: Scope) -> None:
        exc: Any = None
        if node.exc is not None:
            exc = self.eval(node.exc, scope)
            if isinstance(exc, ClassValue):
                exc = ExceptionValue(exc, ())
        raise RaiseSignal(exc, self.ref(scope, node))

    def s_global(self, node: cst.Global, scope: Scope) -> None:
        if scope.globals_decl is None:
            scope.globals_decl = set()
        scope.globals_decl.update(n.name.value for n in node.names)

    def s_nonlocal(self, node: cst.Nonlocal, scope: Scope) -> None:
        if scope.nonlocal_decl is None:
            scope.nonlocal_decl = set()
        scope.nonlocal_decl.update(n.name.value for n in node.names)

    def s_del(self, node: cst.Del, scope: Scope) -> None:
        self.delete_target(node.target, scope)

    def delete_target(self, target: cst.BaseExpression, scope: Scope) -> None:
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

    def s_assign(self, node: cst.Assign, scope: Scope) -> None:
        value = self.eval(node.value, scope)
        for t in node.targets:
            self.assign(t.target, value, scope)

    def s_annassign(self, node: cst.AnnAssign, scope: Scope) -> None:
        # Class-level annotations in order (dataclass / NamedTuple fields); ClassVar ones are not fields.
        target = node.target
        field_name = target.value if scope.is_class and type(target) is cst.Name else None
        if field_name is not None and _is_classvar(node.annotation.annotation):
            field_name = None
        if field_name is not None and _is_classvar(node.annotation.annotation, "InitVar"):
            # dataclasses: an __init__ parameter handed to __post_init__, not a field.
            scope.vars.setdefault("__initvars__", []).append(field_name)
        if field_name is not None:
            scope.vars.setdefault("__annotations__", {})[field_name] = self._annotation(node.annotation.annotation, scope)
        if node.value is None:
            if field_name is not None:
                scope.vars.setdefault("__annotations_order__", []).append(field_name)
            return
        value = self.eval(node.value, scope)
        if field_name is not None:
            scope.vars.setdefault("__annotations_order__", []).append(field_name)
        self.assign(node.target, value, scope)

    def _annotation(self, expr: cst.BaseExpression, scope: Scope) -> Any:
        """A class annotation's value, as `__annotations__` holds it: its source text under
        `from __future__ import annotations`, else the evaluated expression (dataclass fields' `.type`)."""
        if _postponed_annotations(scope.module):
            return cst.Module([]).code_for_node(expr)
        self.issue_sinks.append([])  # what an annotation could not evaluate does not concern the model
        try:
            return self.eval(expr, scope)
        except (RaiseSignal, Undecided) as err:
            return err.unknown if isinstance(err, Undecided) else Unknown("an annotation that raises", self.ref(scope, expr))
        finally:
            self.issue_sinks.pop()

    def s_augassign(self, node: cst.AugAssign, scope: Scope) -> None:
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

    def assign(self, target: cst.BaseExpression, value: Any, scope: Scope) -> None:
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

    def unpack(self, elements: Any, value: Any, scope: Scope) -> None:
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

    def bind(self, name: str, value: Any, scope: Scope) -> None:
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

    def s_if(self, node: cst.If, scope: Scope) -> None:
        try:
            cond = self.truth(self.eval(node.test, scope))
        except Undecided as und:
            self._undecided_if(node, scope, Unknown(f"could not decide this condition: {und.unknown.reason}",
                                                    self.ref(scope, node.test)))
            return
        if cond:
            self.exec_block(node.body, scope)
        elif node.orelse is not None:
            if type(node.orelse) is cst.If:
                self.s_if(node.orelse, scope)
            else:
                self.exec_block(node.orelse.body, scope)

    def _undecided_if(self, node: cst.If, scope: Scope, why: Unknown) -> None:
        """An `if` whose condition is unknown. Branches that only raise are paths the code does
        not take when it runs. A `return` in another branch makes the function's result unknown
        (falling through would give the other path's value as if it were certain). Branches of
        plain assignments and definitions are each evaluated apart and merged: a name bound to
        the same value on every path keeps it (timm's `if "X" in os.environ: A = int(...) else:
        A = 1` defines `A` either way), a name that differs becomes an unknown naming the
        condition. Other branches are skipped, and the names they bind become that unknown."""
        branches = [b for b in if_branches(node) if not always_raises(b)]
        if scope.func is not None and any(returns(b) for b in branches):
            self.record(why)
            raise ReturnSignal(Unknown(f"the return value depends on a condition: {why.reason}", why.ref))
        if self.tape is not None:
            # A forward traced for memory: running both paths would record both on the tape.
            self.record(why)
            return
        if branches and all(plain_block(b) for b in branches):
            if self._merge_branches(branches, scope, why):
                return
        else:
            for name in {n for b in branches for n in bound_names(b)}:
                self.bind(name, why, scope)
            self._forget_mutated([s for b in branches for s in b], scope, why)
        self.record(why)

    def _forget_mutated(self, body: Sequence[cst.CSTNode], scope: Scope, why: Unknown) -> None:
        """Code that was skipped (an undecided `if`, a loop that could not run) may have changed
        objects other code reads later: `_registry[name] = cfg` in a decorator run at import. The
        names of those objects become the unknown, in the scope that holds them (a module global
        too), so a later lookup says "unknown" instead of answering from the stale object. The
        instance under construction (`self`) is exempt: the recorded unknown already marks it."""
        for name, attr in mutated_paths(body):
            holder = scope.globals
            s: Scope | None = scope
            while s is not None:  # where Python finds the name: this scope, enclosing functions
                if name in s.vars and (s is scope or not s.is_class):
                    holder = s.vars
                    break
                s = s.parent
            if name not in holder or holder[name] is scope.self_value:
                continue
            if type(holder[name]) is LazyBinding:  # `import settings` at module level binds lazily
                holder[name] = self.force(holder[name])
            if isinstance(holder[name], ModuleValue):
                # `config.WIDTH = 64`: that attribute of an analysed module, not the module itself.
                # Native modules (os, torch) are shared by every analysis of the process: left as they are.
                if attr is not None and holder[name].source is not None:
                    holder[name].ns[attr] = why
                continue
            holder[name] = why

    def _merge_branches(self, branches: list[Sequence[cst.CSTNode]], scope: Scope, why: Unknown) -> bool:
        """Run each branch on its own copy of the scope's variables and bind the merge; True when
        every path gave every name the same value (then the condition changed nothing)."""
        before = scope.vars
        outcomes: list[dict[str, Any]] = []
        try:
            for body in branches:
                scope.vars = dict(before)
                try:
                    for stmt in body:
                        self.exec_stmt(stmt, scope)
                except RaiseSignal:
                    continue  # a path that fails: not the one the running code takes
                outcomes.append(scope.vars)
        finally:
            scope.vars = before
        if not outcomes:
            return False
        names = {k for out in outcomes for k, v in out.items() if before.get(k, MISSING) is not v}
        same = True
        for name in names:
            values = [out.get(name, MISSING) for out in outcomes]
            if all(_same_value(values[0], v) for v in values[1:]) and values[0] is not MISSING:
                self.bind(name, values[0], scope)
            else:
                same = False
                merged = Unknown(f"`{name}` depends on a condition: {why.reason}", why.ref)
                self.bind(name, as_data(merged) if all(is_data_value(v) for v in values) else merged, scope)
        return same

    def s_for(self, node: cst.For, scope: Scope) -> None:
        try:
            self._run_for(node, scope)
        except BudgetExceeded as err:
            raise self._in_loop(err, scope, node) from None

    def s_while(self, node: cst.While, scope: Scope) -> None:
        try:
            self._run_while(node, scope)
        except BudgetExceeded as err:
            raise self._in_loop(err, scope, node) from None

    def _in_loop(self, err: BudgetExceeded, scope: Scope, node: cst.CSTNode) -> BudgetExceeded:
        """Steps ran out inside this loop: say so at the innermost such loop rather than at the
        call that was running (`while True:` in `__init__` was reported at the class name)."""
        if err.message.startswith(("evaluation budget", "analysis stopped", "memory trace over")) \
                and not getattr(err, "in_loop", False):
            err.ref = self.ref(scope, node)
            err.in_loop = True  # type: ignore[attr-defined]
        return err

    def _run_for(self, node: cst.For, scope: Scope) -> None:
        iterable = self.eval(node.iter, scope)
        try:
            it = self.iterate(iterable)
            broke = False
            for item in it:
                self.charge()
                self.assign(node.target, item, scope)
                try:
                    self.exec_block(node.body, scope)
                except BreakSignal:
                    broke = True
                    break
                except ContinueSignal:
                    continue
        except Undecided as und:
            why = Unknown(f"could not iterate: {und.unknown.reason}", self.ref(scope, node.iter))
            self.record(why)
            self._forget_mutated(node.body.body, scope, why)
            return
        if not broke and node.orelse is not None:
            self.exec_block(node.orelse.body, scope)

    def _run_while(self, node: cst.While, scope: Scope) -> None:
        while True:
            self.charge()
            try:
                cond = self.truth(self.eval(node.test, scope))
            except Undecided as und:
                why = Unknown(f"could not decide this loop condition: {und.unknown.reason}", self.ref(scope, node.test))
                self.record(why)
                self._forget_mutated(node.body.body, scope, why)
                return
            if not cond:
                break
            try:
                self.exec_block(node.body, scope)
            except BreakSignal:
                return
            except ContinueSignal:
                continue
        if node.orelse is not None:
            self.exec_block(node.orelse.body, scope)

    def s_try(self, node: cst.Try | cst.TryStar, scope: Scope) -> None:
        try:
            try:
                self.exec_block(node.body, scope)
            except RaiseSignal as sig:
                handler = self._match_handler(node.handlers, sig, scope)
                if handler is None:
                    raise
                if handler.name is not None:
                    self.assign(handler.name.name, sig.exc, scope)
                self.exec_block(handler.body, scope)
            else:
                if node.orelse is not None:
                    self.exec_block(node.orelse.body, scope)
        finally:
            if node.finalbody is not None:
                self.exec_block(node.finalbody.body, scope)

    def _match_handler(self, handlers: Any, sig: RaiseSignal, scope: Scope) -> Any:
        for h in handlers:
            if h.type is None:
                return h
            want = self.eval(h.type, scope)
            wants = want if isinstance(want, tuple) else (want,)
            exc = sig.exc
            for w in wants:
                if isinstance(w, Unknown):
                    return h  # an unknown exception type: assume it matches
                if isinstance(w, ClassValue):
                    if isinstance(exc, ExceptionValue) and exc.cls.is_subclass_of(w):
                        return h
                    if isinstance(exc, Unknown) and w.name in ("Exception", "BaseException"):
                        return h
        return None

    def s_with(self, node: cst.With, scope: Scope) -> None:
        exits = []
        try:
            for item in node.items:
                ctx = self.eval(item.item, scope)
                if item.asname is not None or hasattr(ctx, "exit"):
                    entered = self.protocol.enter(ctx)
                    if hasattr(ctx, "exit"):  # native contexts with effects (torch.autocast)
                        exits.append(ctx)
                    if item.asname is not None:
                        self.assign(item.asname.name, entered, scope)
            self.exec_block(node.body, scope)
        finally:
            for ctx in reversed(exits):
                ctx.exit(self)

    def s_match(self, node: cst.Match, scope: Scope) -> None:
        """`match` (3.10): the first case whose pattern matches and whose guard holds runs; a
        pattern or guard that cannot be decided stops here, like an undecidable `if`."""
        subject = self.eval(node.subject, scope)
        for case in node.cases:
            try:
                hit = self._match(case.pattern, subject, scope)
                if hit and case.guard is not None:
                    hit = self.truth(self.eval(case.guard, scope))
            except Undecided as und:
                self.record(Unknown(f"could not decide this case: {und.unknown.reason}", self.ref(scope, case.pattern)))
                return
            if hit:
                self.exec_block(case.body, scope)
                return

    def _match(self, pat: cst.MatchPattern, v: Any, scope: Scope) -> bool:
        """Whether `v` matches `pat`, binding its captures; raises Undecided when unknown."""
        if isinstance(v, Unknown):
            raise Undecided(v)
        if type(pat) is cst.MatchAs:
            if pat.pattern is not None and not self._match(pat.pattern, v, scope):
                return False
            if pat.name is not None:
                self.bind(pat.name.value, v, scope)
            return True
        if type(pat) is cst.MatchOr:
            return any(self._match(e.pattern, v, scope) for e in pat.patterns)
        if type(pat) is cst.MatchSingleton:
            return self.compare(cst.Is, v, self.eval(pat.value, scope)) is True
        if type(pat) is cst.MatchValue:
            return self.truth(self.compare(cst.Equal, v, self.eval(pat.value, scope)))
        if isinstance(pat, (cst.MatchList, cst.MatchTuple)):
            if not isinstance(v, (list, tuple, range)):  # str, bytes and dicts are not sequences here
                return False
            items = list(v)
            elems = list(pat.patterns)
            stars = [e for e in elems if type(e) is cst.MatchStar]
            subs = [e.value for e in elems if type(e) is cst.MatchSequenceElement]
            if not stars:
                return len(items) == len(subs) and all(self._match(p, x, scope) for p, x in zip(subs, items))
            star = elems.index(stars[0])
            after = len(subs) - star
            if len(items) < len(subs):
                return False
            head, rest, tail = items[:star], items[star:len(items) - after], items[len(items) - after:]
            if not all(self._match(p, x, scope) for p, x in zip(subs, head + tail)):
                return False
            if stars[0].name is not None:
                self.bind(stars[0].name.value, rest, scope)
            return True
        if type(pat) is cst.MatchMapping:
            if not isinstance(v, dict):
                return False
            used = []
            for el in pat.elements:
                key = self.eval(el.key, scope)
                if isinstance(key, Unknown):
                    raise Undecided(key)
                if key not in v or not self._match(el.pattern, v[key], scope):
                    return False
                used.append(key)
            if pat.rest is not None:
                self.bind(pat.rest.value, {k: x for k, x in v.items() if k not in used}, scope)
            return True
        if type(pat) is cst.MatchClass:
            from vramlint.engine.builtins import isinstance_of

            cls = self.eval(pat.cls, scope)
            ok = isinstance_of(self, v, cls)
            if isinstance(ok, Unknown):
                raise Undecided(ok)
            if not ok:
                return False
            pos = [e.value for e in pat.patterns]
            if pos:
                if isinstance(cls, ClassValue) and cls.module_name == "builtins" and len(pos) == 1:
                    return self._match(pos[0], v, scope)  # int(n), str(s): the subject itself
                names = self._match_args(cls)
                if names is None or len(pos) > len(names):
                    raise Undecided(self.unknown("class pattern without __match_args__", scope, pat))
                attrs = list(zip(names, pos))
            else:
                attrs = []
            attrs += [(k.key.value, k.pattern) for k in pat.kwds]
            for name, sub in attrs:
                got = self.protocol.getattr(v, name, MISSING_ATTR)
                if got is MISSING_ATTR or not self._match(sub, got, scope):
                    return False
            return True
        raise Undecided(self.unknown(f"unsupported pattern `{type(pat).__name__}`", scope, pat))

    def _match_args(self, cls: Any) -> list[str] | None:
        if not isinstance(cls, ClassValue):
            return None
        explicit, _ = cls.lookup("__match_args__")
        if isinstance(explicit, (tuple, list)):
            return [x for x in explicit if isinstance(x, str)]
        if "dataclass" in cls.flags:
            return [n for n, _ in cls.ns.get("__dataclass_fields__", [])]
        fields, _ = cls.lookup("_fields")
        return list(fields) if isinstance(fields, tuple) else None

    # imports -------------------------------------------------------------
    def s_import(self, node: cst.Import, scope: Scope) -> None:
        lazy = scope.parent is None and not scope.is_class
        for alias in node.names:
            dotted = _dotted(alias.name)
            ref = self.ref(scope, alias)  # a failed import is reported here
            if alias.asname is not None:
                name = alias.asname.name.value  # type: ignore[union-attr]
                value: Any = self._lazy(partial(self.loader.import_module, dotted, ref), lazy)
            else:
                name = dotted.split(".")[0]
                value = self._lazy(partial(self.loader.import_top, dotted, ref), lazy)
            self.bind(name, value, scope)

    def s_importfrom(self, node: cst.ImportFrom, scope: Scope) -> None:
        level = len(node.relative)
        modname = _dotted(node.module) if node.module is not None else ""
        base = scope.module.name
        package = base if scope.module.path.endswith("__init__.py") else base.rpartition(".")[0]
        if level:
            parts = package.split(".") if package else []
            if level - 1 > len(parts):
                self.record(self.unknown("relative import beyond the top package", scope, node))
                return
            anchor = ".".join(parts[: len(parts) - (level - 1)])
            full = f"{anchor}.{modname}" if modname and anchor else (modname or anchor)
        else:
            full = modname
        lazy = scope.parent is None and not scope.is_class
        if isinstance(node.names, cst.ImportStar):
            exports = scan_exports(self.loader, full) if lazy else None
            if exports is not None and registers_at_import(self.loader, full):
                exports = None  # it must run now: it fills a registry (and its __all__) as it runs
            if exports is not None:
                for e in exports:
                    if e.module == scope.module.name:
                        continue  # a cycle of star imports handing this module's own names back
                    ref = self.ref(scope, node)
                    self.bind(e.name, LazyBinding(partial(self.loader.import_from, e.module, e.attr, ref)), scope)
                return
            mod = self.loader.import_module(full, self.ref(scope, node))
            if isinstance(mod, ModuleValue):
                for k in self.loader.star_names(mod):
                    scope.vars[k] = mod.ns[k] if k in mod.ns else self.protocol.getattr(mod, k)
            return
        for alias in node.names:
            attr = str(alias.name.value)  # type: ignore[union-attr]
            name = str(alias.asname.name.value) if alias.asname is not None else attr  # type: ignore[union-attr]
            ref = self.ref(scope, alias)
            value = self._lazy(partial(self.loader.import_from, full, attr, ref), lazy)
            self.bind(name, value, scope)

    def _lazy(self, fn: Callable[[], Any], lazy: bool) -> Any:
        return LazyBinding(fn) if lazy else fn()

    def force(self, binding: LazyBinding) -> Any:
        if not binding.done:
            if binding.in_progress:
                return Unknown("circular import", self.current_ref)
            binding.in_progress = True
            try:
                binding.value = binding.resolve()
                binding.done = True
            finally:
                binding.in_progress = False
        return binding.value

    # definitions -----------------------------------------------------------
    def s_functiondef(self, node: cst.FunctionDef, scope: Scope) -> None:
        func = self.make_function(node, node.name.value, scope)
        value: Any = func
        for dec in reversed(node.decorators):
            value = self.apply_decorator(dec.decorator, value, scope)
        self.bind(node.name.value, value, scope)

    def make_function(self, node: cst.FunctionDef | cst.Lambda, name: str, scope: Scope) -> FunctionValue:
        defaults: dict[str, Any] = {}
        params = node.params
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            if p.default is not None:
                defaults[p.name.value] = self.eval(p.default, scope)
        # A function's own scope is a closure even when its parent is None (a top-level
        # function's scope has none): only the module scope is not.
        closure = scope if scope.parent is not None or scope.is_class or scope.func is not None else None
        # Class bodies are not closures in Python: skip them.
        while closure is not None and closure.is_class:
            closure = closure.parent
        qual = name
        if scope.func is not None:
            qual = f"{scope.func.qualname}.<locals>.{name}"
        elif scope.is_class:
            qual = f"{scope.vars.get('__qualname__', '?')}.{name}"
        return FunctionValue(node, name, qual, scope.module, closure, defaults, scope.globals)

    def apply_decorator(self, expr: cst.BaseExpression, value: Any, scope: Scope) -> Any:
        """Known decorators transform; any other is taken as the identity (and not evaluated:
        registries and legacy-argument wrappers would only blur what the function builds)."""
        head = expr.func if type(expr) is cst.Call else expr
        try:
            dec = self.eval(head, scope)
        except (RaiseSignal, Undecided):
            return _assumed_identity(value)
        if isinstance(dec, FunctionValue) and type(expr) is not cst.Call:
            # A library's decorator with a rule (frontends): what it does to the function.
            rule = self.loader.decorator_rules.get(f"{dec.module.name}.{dec.qualname}")
            if rule is not None:
                return rule(self, value)
        if isinstance(dec, NativeFunction) and dec.decorator is not None:
            if type(expr) is cst.Call:
                args, kwargs = self.eval_args(expr.args, scope)
                return dec.decorator(self, value, args, kwargs)
            return dec.decorator(self, value, (), {})
        if isinstance(dec, FunctionValue) and is_registering_decorator(dec.node):
            # `@register_model`: it records the function in a registry (timm's factories, their
            # pretrained configs) and returns it unchanged. Run it, so that what reads the
            # registry later (`create_model("resnet50")`) finds what the real run would.
            if type(expr) is not cst.Call:
                self._register(dec, value)
            return value
        if isinstance(dec, FunctionValue) and type(expr) is cst.Call and is_registering_factory(dec.node):
            # `@register_model()` (torchvision): the call makes the registering decorator.
            try:
                args, kwargs = self.eval_args(expr.args, scope)
                inner = self.call(dec, args, kwargs)
            except (RaiseSignal, Undecided):
                inner = None
            if isinstance(inner, FunctionValue):
                self._register(inner, value)
            return value
        if isinstance(dec, ClassValue) and dec.native is not None and hasattr(dec.native, "decorate"):
            return dec.native.decorate(self, value)
        if isinstance(dec, ClassValue) and type(expr) is not cst.Call and dec.lookup("__get__")[0] is not MISSING:
            # A descriptor class used as a decorator (`@classproperty`): the class attribute holds
            # what it makes of the function.
            return self.protocol.instantiate(dec, (value,), {})
        return _assumed_identity(value)

    def _register(self, dec: FunctionValue, value: Any) -> None:
        sink: list[Unknown] = []
        self.issue_sinks.append(sink)
        try:
            self.call(dec, (value,), {})
        except (RaiseSignal, Undecided):
            pass  # as if the decorator were the identity (the policy for every other decorator)
        finally:
            self.issue_sinks.pop()
        for u in sink:
            self.record(u)

    def s_classdef(self, node: cst.ClassDef, scope: Scope) -> None:
        bases: list[ClassValue] = []
        for arg in node.bases:
            b = self.eval(arg.value, scope)
            if isinstance(b, ClassValue):
                bases.append(b)
            elif isinstance(b, Unknown):
                self.record(Unknown(f"base class of {node.name.value} is unknown: {b.reason}", self.ref(scope, arg)))
                bases.append(self.loader.unknown_base)
        if not bases:
            bases = [self.builtins["object"]]
        qual = node.name.value
        if scope.is_class:
            qual = f"{scope.vars.get('__qualname__', '?')}.{qual}"
        elif scope.func is not None:
            qual = f"{scope.func.qualname}.<locals>.{qual}"
        ns: dict[str, Any] = {"__qualname__": qual, "__module__": scope.module.name}
        body_scope = Scope(ns, scope, scope.globals, scope.module, is_class=True)
        body_scope.func = scope.func
        self.exec_block(node.body, body_scope)
        ref = self.ref(scope, node)
        if isinstance(ns.get("__init_subclass__"), FunctionValue):
            ns["__init_subclass__"] = ClassMethod(ns["__init_subclass__"])  # implicit, as in type.__new__
        cls = ClassValue(node.name.value, tuple(bases), ns, scope.module.name, qual, ref)
        for v in ns.values():
            f = v.func if isinstance(v, (StaticMethod, ClassMethod)) else v
            if isinstance(v, Property):
                f = v.fget
            if isinstance(f, FunctionValue) and f.owner is None:
                f.owner = cls
        for b in cls.mro[1:]:
            hook = getattr(b.native, "init_subclass", None) if b.native is not None else None
            if hook is not None:
                hook(self, cls)
                break
        self._set_names(cls)
        self._metaclass(cls, node, scope)
        self._init_subclass(cls, node, scope)
        value: Any = cls
        for dec in reversed(node.decorators):
            value = self.apply_decorator(dec.decorator, value, scope)
        self.bind(node.name.value, value, scope)

    def _set_names(self, cls: ClassValue) -> None:
        """`__set_name__(owner, name)` of each class attribute that defines it, as type.__new__ calls it."""
        for name, v in list(cls.ns.items()):
            if isinstance(v, Instance):
                hook, _ = v.cls.lookup("__set_name__")
                if isinstance(hook, FunctionValue):
                    try:
                        self.call(hook, (v, cls, name), {})
                    except RaiseSignal as sig:
                        self.record(self.exception_unknown(sig, None, None))

    def _metaclass(self, cls: ClassValue, node: cst.ClassDef, scope: Scope) -> None:
        """`metaclass=Meta` of analysed source: calls of the class go through Meta.__call__
        (Protocol.instantiate, which also says when Meta's `__new__`/`__init__` were not run)."""
        expr = next((kw.value for kw in node.keywords if kw.keyword is not None and kw.keyword.value == "metaclass"), None)
        if expr is None:
            return
        meta = self.eval(expr, scope)
        if not isinstance(meta, ClassValue) or meta.native is not None or meta.module_name in ("abc", "typing"):
            return  # type, ABCMeta and other natives: nothing of analysed code runs
        cls.ns["__vramlint_metaclass__"] = meta

    def _init_subclass(self, cls: ClassValue, node: cst.ClassDef, scope: Scope) -> None:
        """Call the nearest `__init_subclass__` of analysed source among the bases, with the
        class statement's keywords (`class A(Base, flag=True)`), as `type.__new__` does."""
        hook: Any = None
        for k in cls.mro[1:]:
            if "__init_subclass__" in k.ns:
                hook = k.ns["__init_subclass__"]
                break
        if not (isinstance(hook, ClassMethod) and isinstance(hook.func, FunctionValue)):
            return
        kwargs = {kw.keyword.value: self.eval(kw.value, scope) for kw in node.keywords
                  if kw.keyword is not None and kw.keyword.value != "metaclass"}
        try:
            self.call(hook.func, (cls,), kwargs)
        except RaiseSignal as sig:
            self.record(self.exception_unknown(sig, scope, node))

    # ------------------------------------------------------------------ expressions
    def eval(self, node: cst.BaseExpression, scope: Scope) -> Any:
        handler = self._expr.get(type(node))
        if handler is None:
            return self.unknown(f"unsupported expression `{type(node).__name__}`", scope, node)
        try:
            return handler(node, scope)
        except UnknownValueError as err:  # Python asked an Unknown's value (`"%d" % (u,)`): unknown too
            return err.unknown
        except INTERNAL_ERRORS as err:
            return self.internal_error(err, self.ref(scope, node))

    def _expression_table(self) -> dict[type, Callable[[Any, Scope], Any]]:
        return {
            cst.Name: self.e_name,
            cst.Integer: self.e_literal,
            cst.Float: self.e_literal,
            cst.Imaginary: self.e_literal,
            cst.SimpleString: self.e_string,
            cst.ConcatenatedString: self.e_concat,
            cst.FormattedString: self.e_fstring,
            cst.Attribute: self.e_attribute,
            cst.Call: self.e_call,
            cst.BinaryOperation: self.e_binop,
            cst.UnaryOperation: self.e_unary,
            cst.BooleanOperation: self.e_boolop,
            cst.Comparison: self.e_compare,
            cst.Tuple: lambda n, s: tuple(self.eval_elements(n.elements, s)),
            cst.List: lambda n, s: self.eval_elements(n.elements, s),
            cst.Set: self.e_set,
            cst.Dict: self.e_dict,
            cst.Subscript: self.e_subscript,
            cst.IfExp: self.e_ifexp,
            cst.Lambda: lambda n, s: self.make_function(n, "<lambda>", s),
            cst.ListComp: self.e_listcomp,
            cst.SetComp: self.e_setcomp,
            cst.GeneratorExp: self.e_listcomp,
            cst.DictComp: self.e_dictcomp,
            cst.NamedExpr: self.e_namedexpr,
            cst.Ellipsis: lambda n, s: Ellipsis,
            cst.Yield: self.e_yield,
            cst.Await: lambda n, s: self.eval(n.expression, s),
        }

    def e_literal(self, node: cst.Integer | cst.Float | cst.Imaginary, scope: Scope) -> Any:
        # libcst decodes literals with ast.literal_eval on every access: cache per node.
        cache = scope.module.node_cache
        v = cache.get(node, MISSING)
        if v is MISSING:
            v = cache[node] = node.evaluated_value
        return v

    def e_string(self, node: cst.SimpleString, scope: Scope) -> Any:
        cache = scope.module.node_cache
        v = cache.get(node, MISSING)
        if v is MISSING:
            try:
                v = node.evaluated_value
            except Exception:
                return self.unknown("string literal could not be decoded", scope, node)
            cache[node] = v
        return v

    def e_concat(self, node: cst.ConcatenatedString, scope: Scope) -> Any:
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        if isinstance(left, bytes) and isinstance(right, bytes):
            return left + right
        u = first_unknown_of(left, right)
        return u if u is not None else self.unknown("string concatenation", scope, node)

    def e_fstring(self, node: cst.FormattedString, scope: Scope) -> Any:
        out: list[str] = []
        for part in node.parts:
            if type(part) is cst.FormattedStringText:
                out.append(part.value)
                continue
            assert type(part) is cst.FormattedStringExpression
            v = self.eval(part.expression, scope)
            u = contains_unknown(v)
            if u is not None:
                return u
            if isinstance(v, Value) and hasattr(v, "to_str") and part.conversion != "r":
                v = v.to_str()  # a value with a plain text form (a pathlib path)
            if not isinstance(v, _NATIVE_SCALARS + (tuple, list, dict)):
                return self.unknown("f-string of a non-literal value", scope, part)
            spec = ""
            if part.format_spec:
                for sp in part.format_spec:
                    if type(sp) is cst.FormattedStringText:
                        spec += sp.value
                    else:
                        assert type(sp) is cst.FormattedStringExpression
                        sv = self.eval(sp.expression, scope)
                        if not isinstance(sv, (str, int)):
                            return self.unknown("f-string format spec", scope, part)
                        spec += str(sv)
            if part.conversion == "r":
                v = repr(v)
            elif part.conversion == "s":
                v = str(v)
            elif part.conversion == "a":
                v = ascii(v)
            try:
                out.append(format(v, spec))
            except (ValueError, TypeError):
                return self.unknown("invalid f-string format", scope, part)
        return "".join(out)

    def e_name(self, node: cst.Name, scope: Scope) -> Any:
        return self.lookup(node.value, scope, node)

    def lookup(self, name: str, scope: Scope, node: cst.CSTNode | None = None) -> Any:
        s: Scope | None = scope
        first = True
        while s is not None:
            if first or not s.is_class:
                if name in s.vars:
                    v = s.vars[name]
                    if type(v) is LazyBinding:
                        v = self.force(v)
                    return v
            first = False
            s = s.parent
        g = scope.globals
        if name in g:
            v = g[name]
            if type(v) is LazyBinding:
                v = self.force(v)
                if not isinstance(v, Unknown) or True:
                    g[name] = v
            return v
        if name in self.builtins:
            return self.builtins[name]
        if name == "__class__" and scope.func is not None and scope.func.owner is not None:
            return scope.func.owner
        return Unknown(f"name `{name}` is not defined", self.ref(scope, node) if node is not None else self.current_ref)

    def attr_name(self, node: cst.Attribute, scope: Scope) -> str:
        """`x.__frozen` inside a class body or its methods is `x._FrozenDict__frozen`, as CPython
        mangles private names (`hasattr(self, "__frozen")`, a string, is not: diffusers relies on it)."""
        name = node.attr.value
        if not name.startswith("__") or name.endswith("__"):
            return name
        owner = _enclosing_class_name(node, scope)
        stripped = owner.lstrip("_") if owner else ""
        return f"_{stripped}{name}" if stripped else name

    def e_attribute(self, node: cst.Attribute, scope: Scope) -> Any:
        obj = self.eval(node.value, scope)
        prev = self.current_ref
        self.current_ref = self.ref(scope, node)
        try:
            return self.protocol.getattr(obj, self.attr_name(node, scope))
        finally:
            self.current_ref = prev

    def eval_elements(self, elements: Any, scope: Scope) -> Any:
        out: list[Any] = []
        for el in elements:
            if type(el) is cst.StarredElement:
                v = self.eval(el.value, scope)
                items = self.list_of(v)
                if isinstance(items, Unknown):
                    return _unknown_list(items)
                out.extend(items)
            else:
                out.append(self.eval(el.value, scope))
        if len(out) > MAX_SEQUENCE:
            raise BudgetExceeded("sequence too large", self.current_ref)
        return out

    def e_set(self, node: cst.Set, scope: Scope) -> Any:
        items = self.eval_elements(node.elements, scope)
        try:
            return set(items)
        except TypeError:
            return self.unknown("unhashable set element", scope, node)

    def e_dict(self, node: cst.Dict, scope: Scope) -> Any:
        out: dict[Any, Any] = {}
        for el in node.elements:
            if type(el) is cst.StarredDictElement:
                v = self.eval(el.value, scope)
                if isinstance(v, dict):
                    out.update(v)
                else:
                    return v if isinstance(v, Unknown) else self.unknown("** of a non-dict", scope, el)
            else:
                assert type(el) is cst.DictElement
                k = self.eval(el.key, scope)
                try:
                    out[k] = self.eval(el.value, scope)
                except TypeError:
                    return self.unknown("unhashable dict key", scope, el)
        return out

    def e_ifexp(self, node: cst.IfExp, scope: Scope) -> Any:
        try:
            cond = self.truth(self.eval(node.test, scope))
        except Undecided as und:
            return Unknown(f"could not decide `... if ... else ...`: {und.unknown.reason}", self.ref(scope, node))
        return self.eval(node.body if cond else node.orelse, scope)

    def e_namedexpr(self, node: cst.NamedExpr, scope: Scope) -> Any:
        v = self.eval(node.value, scope)
        self.assign(node.target, v, scope)
        return v

    def e_yield(self, node: cst.Yield, scope: Scope) -> Any:
        s: Scope | None = scope
        while s is not None and s.yields is None:
            s = s.parent
        if s is None or s.yields is None:
            return None
        if isinstance(node.value, cst.From):
            v = self.eval(node.value.item, scope)
            items = self.list_of(v)
            if isinstance(items, Unknown):
                s.yields.append(items)
            else:
                s.yields.extend(items)
        elif node.value is not None:
            s.yields.append(self.eval(node.value, scope))
        else:
            s.yields.append(None)
        return None

    # comprehensions -------------------------------------------------------
    def _comprehension(self, node: Any, scope: Scope, emit: Callable[[Scope], None]) -> Unknown | None:
        inner = Scope({}, scope, scope.globals, scope.module)
        inner.func = scope.func
        inner.self_value = scope.self_value

        def run(f: cst.CompFor, s: Scope) -> None:
            src = self.eval(f.iter, s)
            for item in self.iterate(src):
                self.charge()
                self.assign(f.target, item, inner)
                ok = True
                for cond in f.ifs:
                    if not self.truth(self.eval(cond.test, inner)):
                        ok = False
                        break
                if not ok:
                    continue
                if f.inner_for_in is not None:
                    run(f.inner_for_in, inner)
                else:
                    emit(inner)

        try:
            run(node.for_in, scope)
        except Undecided as und:
            return Unknown(f"comprehension over unknown values: {und.unknown.reason}", self.ref(scope, node))
        return None

    def e_listcomp(self, node: cst.ListComp | cst.GeneratorExp, scope: Scope) -> Any:
        out: list[Any] = []
        bad = self._comprehension(node, scope, lambda s: out.append(self.eval(node.elt, s)))
        if bad is not None:
            return _unknown_list(bad)
        if len(out) > MAX_SEQUENCE:
            raise BudgetExceeded("comprehension too large", self.current_ref)
        return out

    def e_setcomp(self, node: cst.SetComp, scope: Scope) -> Any:
        out: list[Any] = []
        bad = self._comprehension(node, scope, lambda s: out.append(self.eval(node.elt, s)))
        if bad is not None:
            return bad
        try:
            return set(out)
        except TypeError:
            return self.unknown("unhashable set element", scope, node)

    def e_dictcomp(self, node: cst.DictComp, scope: Scope) -> Any:
        out: dict[Any, Any] = {}

        def emit(s: Scope) -> None:
            out[self.eval(node.key, s)] = self.eval(node.value, s)

        try:
            bad = self._comprehension(node, scope, emit)
        except TypeError:
            return self.unknown("unhashable dict key", scope, node)
        return bad if bad is not None else out

    # operators --------------------------------------------------------------
    def e_binop(self, node: cst.BinaryOperation, scope: Scope) -> Any:
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        prev = self.current_ref
        self.current_ref = self.ref(scope, node)
        try:
            return self.binop(type(node.operator), left, right)
        finally:
            self.current_ref = prev

    def binop(self, op: type, left: Any, right: Any, inplace: bool = False) -> Any:
        if isinstance(left, Unknown):
            return left
        if isinstance(right, Unknown):
            return right
        if is_native_data(left) and is_native_data(right):
            return self._native_binop(op, left, right, inplace)
        return self.protocol.binop(op, left, right, inplace)

    def _native_binop(self, op: type, left: Any, right: Any, inplace: bool) -> Any:
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

    def e_unary(self, node: cst.UnaryOperation, scope: Scope) -> Any:
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

    def e_boolop(self, node: cst.BooleanOperation, scope: Scope) -> Any:
        left = self.eval(node.left, scope)
        try:
            t = self.truth(left)
        except Undecided as und:
            return und.unknown
        if type(node.operator) is cst.And:
            return self.eval(node.right, scope) if t else left
        return left if t else self.eval(node.right, scope)

    def e_compare(self, node: cst.Comparison, scope: Scope) -> Any:
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

    def compare(self, op: type, left: Any, right: Any) -> Any:
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

    def contains(self, container: Any, item: Any) -> Any:
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
        if isinstance(container, (dict, set, frozenset, *_DICT_VIEWS[::2])):  # keys and items views
            if isinstance(item, Unknown):
                return item
            try:
                found = item in container  # type: ignore[operator]  # isinstance with a tuple of view types
            except TypeError:
                return Unknown("unhashable value in `in`", self.current_ref)
            if not found and any(isinstance(k, Unknown) for k in container):  # type: ignore[attr-defined]  # isinstance with a tuple of view types
                return Unknown("membership among unknown keys", self.current_ref)
            return found
        if isinstance(container, (list, tuple, range, _DICT_VIEWS[1])):  # ... and values views
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

    def truth(self, v: Any) -> bool:
        if v is None or v is False:
            return False
        if v is True:
            return True
        if isinstance(v, Unknown):
            raise Undecided(v)
        if isinstance(v, (int, float, complex, str, bytes)):
            return bool(v)
        if isinstance(v, (tuple, list, dict, set, frozenset, range, *_DICT_VIEWS)):
            return len(v) > 0  # type: ignore[arg-type]  # isinstance with a tuple of view types
        return self.protocol.truth(v)

    # subscripts ----------------------------------------------------------------
    def e_subscript(self, node: cst.Subscript, scope: Scope) -> Any:
        obj = self.eval(node.value, scope)
        idx = self.eval_slice(node.slice, scope)
        prev = self.current_ref
        self.current_ref = self.ref(scope, node)
        try:
            return self.protocol.getitem(obj, idx)
        finally:
            self.current_ref = prev

    def eval_slice(self, elements: Any, scope: Scope) -> Any:
        vals = []
        for el in elements:
            s = el.slice
            if type(s) is cst.Index:
                if s.star is not None:
                    v = self.eval(s.value, scope)
                    items = self.list_of(v)
                    vals.extend(items if isinstance(items, list) else [items])
                    continue
                vals.append(self.eval(s.value, scope))
            else:
                lower = self.eval(s.lower, scope) if s.lower is not None else None
                upper = self.eval(s.upper, scope) if s.upper is not None else None
                step = self.eval(s.step, scope) if s.step is not None else None
                vals.append(slice(lower, upper, step))
        if len(elements) == 1 and not (type(elements[0].slice) is cst.Index and elements[0].slice.star):
            return vals[0]
        return tuple(vals)

    # calls ---------------------------------------------------------------------
    def e_call(self, node: cst.Call, scope: Scope) -> Any:
        func = self.eval(node.func, scope)
        # Zero-argument super(): the class owning the running function and its first argument.
        if isinstance(func, NativeFunction) and func.name == "super" and not node.args:
            owner = scope.func.owner if scope.func is not None else None
            s: Scope | None = scope
            while s is not None and s.self_value is MISSING:
                s = s.parent
            obj = s.self_value if s is not None else MISSING
            if owner is None or obj is MISSING:
                return self.unknown("super() outside a method", scope, node)
            return SuperValue(owner, obj)
        if isinstance(func, NativeFunction) and func.name == "locals" and not node.args:
            # A snapshot of the running scope's variables, as CPython's locals() in a function.
            return {k: v for k, v in scope.vars.items() if type(v) is not LazyBinding}
        args, kwargs = self.eval_args(node.args, scope)
        prev = self.current_ref
        self.current_ref = self.ref(scope, node)
        try:
            return self.call(func, args, kwargs)
        finally:
            self.current_ref = prev

    def eval_args(self, cargs: Any, scope: Scope) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for a in cargs:
            if a.keyword is not None:
                kwargs[a.keyword.value] = self.eval(a.value, scope)
            elif a.star == "*":
                v = self.eval(a.value, scope)
                items = self.list_of(v)
                if isinstance(items, Unknown):
                    args.append(_StarUnknown(items))
                else:
                    args.extend(items)
            elif a.star == "**":
                v = self.eval(a.value, scope)
                if isinstance(v, dict):
                    for k, x in v.items():
                        if isinstance(k, str):
                            kwargs[k] = x
                else:
                    kwargs["**"] = v if isinstance(v, Unknown) else Unknown("** of a non-dict", self.ref(scope, a))
            else:
                args.append(self.eval(a.value, scope))
        return tuple(args), kwargs

    def call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.charge()
        try:
            if isinstance(func, FunctionValue):
                return self.call_function(func, args, kwargs)
            if isinstance(func, BoundMethod):
                return self.call(func.func, (func.self_value, *args), kwargs)
            if isinstance(func, NativeFunction):
                star = next((x for x in args if isinstance(x, _StarUnknown)), None)
                if star is not None:
                    # `f(*unknown)`: a native cannot bind positions it does not know (nn.Sequential(*blocks)
                    # with `blocks` unknown): its result, and what it would have built, are unknown.
                    self.record(star.unknown)
                    return star.unknown
                if self.tape is not None and func.name.startswith(self.taped_prefixes):
                    seen = args if func.receiver is None else (func.receiver, *args)
                    return self.tape.call(self, func.name, seen, kwargs, lambda: func.impl(self, args, kwargs))
                return func.impl(self, args, kwargs)
            if isinstance(func, ClassValue):
                return self.protocol.instantiate(func, args, kwargs)
            if isinstance(func, Partial):
                return self.call(func.func, (*func.args, *args), {**func.kwargs, **kwargs})
            if isinstance(func, Unknown):
                return func
            return self.protocol.call_object(func, args, kwargs)
        except UnknownValueError as err:  # a rule needed the value of an Unknown: the result is unknown
            return err.unknown
        except INTERNAL_ERRORS as err:
            return self.internal_error(err, self.current_ref)

    def call_function(self, func: FunctionValue, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.depth >= MAX_CALL_DEPTH:
            raise BudgetExceeded(f"call depth over {MAX_CALL_DEPTH} (unbounded recursion?) in {func.qualname}", self.current_ref)
        scope = Scope({}, func.closure, func.globals, func.module)
        scope.func = func
        self.bind_params(func, args, kwargs, scope)
        node = func.node
        if isinstance(node, cst.Lambda):
            self.depth += 1
            try:
                return self.eval(node.body, scope)
            finally:
                self.depth -= 1
        if func.is_generator is None:
            func.is_generator = _contains_yield(node.body, func.module.node_cache)
        if func.is_generator:
            scope.yields = []
        self.depth += 1
        try:
            self.exec_block(node.body, scope)
        except ReturnSignal as ret:
            if scope.yields is not None:
                return _generator(scope.yields)
            return ret.value
        finally:
            self.depth -= 1
        return _generator(scope.yields) if scope.yields is not None else None

    def bind_params(self, func: FunctionValue, args: tuple[Any, ...], kwargs: dict[str, Any], scope: Scope) -> None:
        params = func.node.params
        v = scope.vars
        positional = [*params.posonly_params, *params.params]
        star_unknown = next((a.unknown for a in args if isinstance(a, _StarUnknown)), None)
        args = tuple(a for a in args if not isinstance(a, _StarUnknown))
        kwargs = dict(kwargs)
        spread_unknown = kwargs.pop("**", None)
        i = 0
        for p in positional:
            name = p.name.value
            if i < len(args):
                v[name] = args[i]
                i += 1
            elif name in kwargs and p not in params.posonly_params:
                v[name] = kwargs.pop(name)
            elif name in func.defaults:
                v[name] = func.defaults[name]
            else:
                v[name] = _first_given(star_unknown, spread_unknown, Unknown(
                    f"required argument `{name}` of {func.qualname}() has no known value", self.current_ref
                ))
        extra = args[i:]
        if type(params.star_arg) is cst.Param:
            v[params.star_arg.name.value] = tuple(extra) if star_unknown is None else star_unknown
        for p in params.kwonly_params:
            name = p.name.value
            if name in kwargs:
                v[name] = kwargs.pop(name)
            elif name in func.defaults:
                v[name] = func.defaults[name]
            else:
                v[name] = _first_given(spread_unknown, Unknown(
                    f"required argument `{name}` of {func.qualname}() has no known value", self.current_ref
                ))
        if params.star_kwarg is not None:
            v[params.star_kwarg.name.value] = spread_unknown if spread_unknown is not None and not kwargs else kwargs
        elif kwargs and not func.wrapped:
            # CPython's TypeError (`Block(64, qk_scale=None)` where Block takes no qk_scale):
            # accepting it would count a model the real call never builds.
            name = next(iter(kwargs))
            bound = any(p.name.value == name for p in positional[:i])
            raise self.raise_error("TypeError", f"{func.qualname}() got multiple values for argument '{name}'" if bound
                                   else f"{func.qualname}() got an unexpected keyword argument '{name}'")
        if extra and type(params.star_arg) is not cst.Param and not func.wrapped:
            raise self.raise_error("TypeError", f"{func.qualname}() takes {len(positional)} positional arguments "
                                                f"but {len(args)} were given")
        if positional and not (isinstance(func.owner, ClassValue) and _is_static(func)):
            scope.self_value = v.get(positional[0].name.value, MISSING)

    # ------------------------------------------------------------------ iteration helpers
    def iterate(self, v: Any) -> Iterator[Any]:
        """Elements of an iterable, each charged to the budget. Raises Undecided if unknown."""
        if isinstance(v, Unknown):
            raise Undecided(v)
        if isinstance(v, (list, tuple, range, str, bytes)):
            return iter(v)
        user = self.user_dict_dunder(v, "__iter__")
        if user is not None:  # a dict subclass that iterates over something else than its keys
            items = self.list_of(self.call(user, (), {}))
            if isinstance(items, Unknown):
                raise Undecided(items)
            return iter(items)
        if isinstance(v, dict):
            return iter(list(v.keys()))
        if isinstance(v, (set, frozenset, *_DICT_VIEWS)):
            return iter(list(v))  # type: ignore[call-overload]  # isinstance with a tuple of view types
        if isinstance(v, _Iter):
            return iter(v.items)
        items = self.protocol.iterate(v)
        if isinstance(items, Unknown):
            raise Undecided(items)
        return iter(items)

    def user_dict_dunder(self, v: Any, name: str) -> Any:
        """The analysed code's own `name` method of a dict subclass's instance, bound; None when
        `v` is no such instance or the class keeps dict's (a SubclassedDict is a real dict,
        which the native dict operations would otherwise serve, ignoring the override)."""
        if not isinstance(v, SubclassedDict) or v.cls is None:
            return None
        fn, _ = v.cls.lookup(name)
        return BoundMethod(v, fn) if isinstance(fn, FunctionValue) else None

    def list_of(self, v: Any, limit: int = MAX_SEQUENCE) -> Any:
        """A Python list of the elements of `v`, or an Unknown."""
        if isinstance(v, list):
            return v
        if isinstance(v, tuple):
            return list(v)
        if isinstance(v, range):
            if len(v) > limit:
                return Unknown("range too large to enumerate", self.current_ref)
            self.charge(len(v) // 64)
            return list(v)
        try:
            out = []
            for x in self.iterate(v):
                self.charge()
                out.append(x)
                if len(out) > limit:
                    return Unknown("sequence too large", self.current_ref)
            return out
        except Undecided as und:
            return und.unknown

    # ------------------------------------------------------------------ misc
    @property
    def protocol(self) -> Any:
        return self.loader.protocol


def _generator(yields: list[Any]) -> Any:
    """A generator function's result (its body ran eagerly): an iterator over what it yielded,
    so `next(gen)` advances and a later `list(gen)` gets the rest, as with a real generator."""
    from vramlint.engine.builtins import _IterValue

    return _IterValue(yields)


MISSING_ATTR: Any = object()  # getattr's default in class patterns: "no such attribute"

# `d.keys()`, `d.values()`, `d.items()` return real dict views: iterate them like the dict.
_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))


def if_branches(node: cst.If) -> list[Sequence[cst.CSTNode]]:
    """The statement lists an `if`/`elif`/`else` chain may run (an empty one when there is no `else`)."""
    out: list[Sequence[cst.CSTNode]] = []
    cur: cst.If | None = node
    while cur is not None:
        out.append(_stmts(cur.body))
        orelse = cur.orelse
        if orelse is None:
            out.append(())
            cur = None
        elif type(orelse) is cst.If:
            cur = orelse
        else:
            out.append(_stmts(orelse.body))
            cur = None
    return out


def _stmts(body: Any) -> Sequence[cst.CSTNode]:
    if type(body) is cst.SimpleStatementSuite:
        return [cst.SimpleStatementLine(body=body.body)]
    return body.body  # type: ignore[no-any-return]


def _smalls(stmt: cst.CSTNode) -> Sequence[cst.CSTNode]:
    return stmt.body if type(stmt) is cst.SimpleStatementLine else ()  # type: ignore[attr-defined,no-any-return]


def always_raises(body: Sequence[cst.CSTNode]) -> bool:
    return bool(body) and any(type(x) is cst.Raise for x in _smalls(body[-1]))


def returns(body: Sequence[cst.CSTNode]) -> bool:
    """A `return` anywhere in the branch outside nested functions, classes and lambdas."""
    def descend(n: cst.CSTNode) -> bool:
        return type(n) not in (cst.FunctionDef, cst.ClassDef, cst.Lambda)
    return any(type(n) is cst.Return for stmt in body for n in iter_nodes(stmt, descend))


_PLAIN_SMALL = (cst.Assign, cst.AnnAssign, cst.Pass, cst.Import, cst.ImportFrom)


def plain_block(body: Sequence[cst.CSTNode]) -> bool:
    """Assignments to names, imports, definitions, docstrings and nested such `if`s: what can be
    run on a copy of the variables without touching objects the other path would see."""
    for stmt in body:
        if type(stmt) in (cst.FunctionDef, cst.ClassDef):
            continue
        if type(stmt) is cst.If:
            if not all(plain_block(b) for b in if_branches(stmt)):
                return False
            continue
        if type(stmt) is not cst.SimpleStatementLine:
            return False
        for small in _smalls(stmt):
            if type(small) is cst.Expr and type(small.value) in (cst.SimpleString, cst.ConcatenatedString):
                continue
            if type(small) not in _PLAIN_SMALL:
                return False
            targets = ([t.target for t in small.targets] if type(small) is cst.Assign
                       else [small.target] if type(small) is cst.AnnAssign else [])
            if not all(type(t) is cst.Name for t in targets):
                return False
    return True


def _leaf_targets(t: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The single targets of an assignment target (`a, (b.c, *d[0])` gives a, b.c, d[0])."""
    if isinstance(t, (cst.Tuple, cst.List)):
        for el in t.elements:
            yield from _leaf_targets(el.value)
    elif type(t) is cst.StarredElement:
        yield from _leaf_targets(t.value)
    else:
        yield t


def _stores(body: Sequence[cst.CSTNode], descend: Callable[[cst.CSTNode], bool]) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
    """(statement node, single target) of every assignment, loop target and `del` in a block."""
    for stmt in body:
        for n in iter_nodes(stmt, descend):
            kind = type(n)
            if kind is cst.Assign:
                for t in n.targets:  # type: ignore[attr-defined]
                    for leaf in _leaf_targets(t.target):
                        yield n, leaf
            elif kind in (cst.AnnAssign, cst.AugAssign, cst.For, cst.Del):
                for leaf in _leaf_targets(n.target):  # type: ignore[attr-defined]
                    yield n, leaf


def bound_names(body: Sequence[cst.CSTNode]) -> set[str]:
    """Names a branch binds (assignments, loop and `with` targets, imports, definitions)."""
    out: set[str] = set()

    def descend(n: cst.CSTNode) -> bool:
        return type(n) not in (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.ListComp, cst.SetComp,
                               cst.DictComp, cst.GeneratorExp)

    out.update(leaf.value for n, leaf in _stores(body, descend)  # type: ignore[attr-defined]
               if type(leaf) is cst.Name and type(n) is not cst.Del)
    for stmt in body:
        for n in iter_nodes(stmt, descend):
            kind = type(n)
            if kind is cst.AsName:
                out.update(leaf.value for leaf in _leaf_targets(n.name)  # type: ignore[attr-defined]
                           if type(leaf) is cst.Name)
            elif kind in (cst.FunctionDef, cst.ClassDef):
                out.add(n.name.value)  # type: ignore[attr-defined]
            elif kind in (cst.Import, cst.ImportFrom) and not isinstance(n.names, cst.ImportStar):  # type: ignore[attr-defined]
                for alias in n.names:  # type: ignore[attr-defined]
                    if alias.asname is None:
                        name = alias.name
                        while type(name) is cst.Attribute:
                            name = name.value
                        out.add(name.value)
    return out


def _enclosing_class_name(node: cst.CSTNode, scope: Scope) -> str | None:
    """The innermost class whose body (methods included) holds `node`, by the source's nesting."""
    if scope.is_class:
        return str(scope.vars.get("__qualname__", "")).rpartition(".")[2] or None
    func = scope.func
    if func is None:
        return None
    cache = scope.module.node_cache
    key = ("class-of", id(func.node))
    if key not in cache:
        cache[key] = _class_around(func.node, scope.module)  # type: ignore[index]
    return cache[key]  # type: ignore[index,return-value]


def _class_around(target: cst.CSTNode, module: SourceModule) -> str | None:
    tree = module.tree
    if tree is None:
        return None
    stack: list[tuple[cst.CSTNode, str | None]] = [(tree, None)]
    while stack:
        n, cls = stack.pop()
        if n is target:
            return cls
        inner = n.name.value if isinstance(n, cst.ClassDef) else cls
        stack.extend((c, inner) for c in n.children)
    return None


def _postponed_annotations(module: SourceModule) -> bool:
    cache = module.node_cache
    key = "postponed-annotations"
    if key not in cache:  # type: ignore[operator]
        tree = module.tree
        cache[key] = tree is not None and any(  # type: ignore[index]
            type(small) is cst.ImportFrom and small.module is not None and _dotted(small.module) == "__future__"
            and not isinstance(small.names, cst.ImportStar) and any(a.name.value == "annotations" for a in small.names)
            for stmt in tree.body if type(stmt) is cst.SimpleStatementLine for small in stmt.body)
    return bool(cache[key])  # type: ignore[index]


def _assumed_identity(value: Any) -> Any:
    if isinstance(value, FunctionValue):
        value.wrapped = True
    return value


_REGISTERING: dict[int, bool] = {}


def is_registering_decorator(node: cst.FunctionDef | cst.Lambda) -> bool:
    """A decorator that changes something outside itself and returns the function it was given,
    unchanged (`def register_model(fn): ...; _registry[name] = fn; return fn`): running it has
    the registration as its only effect. Wrappers (a nested def) and decorators that return
    anything else are not run (see `apply_decorator`)."""
    key = id(node)
    hit = _REGISTERING.get(key)
    if hit is None:
        hit = _REGISTERING[key] = _registering(node)
    return hit


def _registering(node: cst.FunctionDef | cst.Lambda) -> bool:
    if type(node) is not cst.FunctionDef or type(node.body) is not cst.IndentedBlock:
        return False
    params = node.params.params or node.params.posonly_params
    if len(params) != 1 or node.asynchronous is not None:
        return False
    arg = params[0].name.value
    body = node.body.body
    last = body[-1] if body else None
    if type(last) is not cst.SimpleStatementLine or len(last.body) != 1:
        return False
    ret = last.body[0]
    if type(ret) is not cst.Return or type(ret.value) is not cst.Name or ret.value.value != arg:
        return False
    if any(type(n) in (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.Yield)
           for stmt in body for n in iter_nodes(stmt, lambda n: True)):
        return False
    returns_ = [n for stmt in body for n in iter_nodes(stmt, lambda n: True) if type(n) is cst.Return]
    if any(type(r.value) is not cst.Name or r.value.value != arg for r in returns_):
        return False
    return bool(mutated_roots(body) - {arg})


def is_registering_factory(node: cst.FunctionDef | cst.Lambda) -> bool:
    """`def register_model(name=None): def wrapper(fn): REG[name or fn.__name__] = fn; return fn;
    return wrapper`: a call of it makes a registering decorator."""
    if type(node) is not cst.FunctionDef or type(node.body) is not cst.IndentedBlock or not node.body.body:
        return False
    inner = {s.name.value: s for s in node.body.body if type(s) is cst.FunctionDef}
    last = node.body.body[-1]
    if type(last) is not cst.SimpleStatementLine or len(last.body) != 1 or type(last.body[0]) is not cst.Return:
        return False
    ret = last.body[0].value
    return type(ret) is cst.Name and ret.value in inner and is_registering_decorator(inner[ret.value])


# Methods that change the object they are called on (containers, and torch's registration).
_MUTATORS = frozenset({
    "append", "extend", "insert", "update", "setdefault", "add", "pop", "popitem", "remove",
    "discard", "clear", "sort", "reverse", "appendleft", "extendleft", "__setitem__",
    "__delitem__", "add_module", "register_module", "register_buffer", "register_parameter",
})


def _root_name(n: cst.BaseExpression) -> str | None:
    return _root_path(n)[0]


def _root_path(n: cst.BaseExpression) -> tuple[str | None, str | None]:
    """The name at the root of a target and the attribute right after it (`os.environ[k]`:
    ("os", "environ"); `d[k]`: ("d", None))."""
    first: str | None = None
    while type(n) in (cst.Attribute, cst.Subscript):
        first = n.attr.value if type(n) is cst.Attribute else None  # type: ignore[attr-defined]
        n = n.value  # type: ignore[attr-defined]
    return (n.value if type(n) is cst.Name else None), first  # type: ignore[attr-defined]


def mutated_roots(body: Sequence[cst.CSTNode]) -> set[str]:
    """Names whose objects a block changes in place: `d[k] = v`, `a.b = v`, `del d[k]`,
    `x.append(v)`, `d.update(...)` (the name at the root of the target)."""
    return {root for root, _ in mutated_paths(body)}


def mutated_paths(body: Sequence[cst.CSTNode]) -> set[tuple[str, str | None]]:
    """(root name, first attribute) of what a block changes in place (see `_root_path`)."""

    def descend(n: cst.CSTNode) -> bool:
        return type(n) not in (cst.FunctionDef, cst.ClassDef, cst.Lambda)

    changed = [leaf for _, leaf in _stores(body, descend) if type(leaf) in (cst.Attribute, cst.Subscript)]
    changed += [n.func.value for stmt in body for n in iter_nodes(stmt, descend)  # type: ignore[attr-defined]
                if type(n) is cst.Call and type(n.func) is cst.Attribute  # type: ignore[attr-defined]
                and n.func.attr.value in _MUTATORS]  # type: ignore[attr-defined]
    return {(root, first) for t in changed for root, first in [_root_path(t)] if root is not None}  # type: ignore[arg-type]


def module_bound_names(tree: cst.Module) -> frozenset[str] | None:
    """Every name a module's code can bind at module level (None: `import *` or
    `globals()`/`setattr` make that unknowable)."""
    names = set(bound_names(tree.body))
    if "__getattr__" in names:
        return None  # PEP 562: the module's own __getattr__ answers for names it does not bind
    for n in iter_nodes(tree, lambda n: True):
        kind = type(n)
        if kind is cst.Global:
            names.update(g.name.value for g in n.names)  # type: ignore[attr-defined]
        elif kind is cst.ImportStar:
            return None
        elif kind is cst.Name and n.value in ("globals", "vars", "setattr", "exec"):  # type: ignore[attr-defined]
            return None
    return frozenset(names)


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    plain = (int, float, str, bool, bytes, type(None))
    if type(a) is type(b) and isinstance(a, plain):
        return bool(a == b)
    if type(a) is type(b) and isinstance(a, tuple) and len(a) == len(b):
        return all(_same_value(x, y) for x, y in zip(a, b))
    # Tensors of the same shape and dtype on both paths (`x = self.drop(x)` or not): the shapes
    # that follow are the same either way.
    shape = getattr(a, "shape", None)
    return (type(a) is type(b) and isinstance(a, Value) and isinstance(shape, tuple)
            and all(isinstance(d, int) for d in shape) and shape == getattr(b, "shape", None)
            and getattr(a, "dtype", None) == getattr(b, "dtype", None))


class _StarUnknown:
    """Marks `*args` whose contents are unknown inside a positional argument list."""

    __slots__ = ("unknown",)

    def __init__(self, unknown: Unknown) -> None:
        self.unknown = unknown


class _Iter:
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


def _first_given(*vals: Any) -> Any:
    """The first value that is not None, else None (without asking any value's truth)."""
    for v in vals:
        if v is not None:
            return v
    return None


def _unknown_list(u: Unknown) -> Unknown:
    return u


def first_unknown_of(*vals: Any) -> Unknown | None:
    for v in vals:
        if isinstance(v, Unknown):
            return v
    return None


def _dotted(node: cst.BaseExpression) -> str:
    if type(node) is cst.Name:
        return node.value
    if type(node) is cst.Attribute:
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _is_classvar(ann: cst.BaseExpression, name: str = "ClassVar") -> bool:
    """`ClassVar`, `ClassVar[...]`, `typing.ClassVar[...]` or the same as a string (syntactically,
    as dataclasses does for string annotations); `name="InitVar"` for dataclasses.InitVar."""
    if type(ann) is cst.Subscript:
        ann = ann.value
    if type(ann) is cst.SimpleString:
        text = ann.raw_value.strip()
        return text.startswith((name, f"typing.{name}", f"dataclasses.{name}"))
    return _dotted(ann).split(".")[-1] == name


def _is_static(func: FunctionValue) -> bool:
    owner = func.owner
    if owner is None:
        return False
    raw = owner.ns.get(func.name)
    return isinstance(raw, StaticMethod)




def _contains_yield(body: cst.BaseSuite, cache: dict[cst.CSTNode, Any]) -> bool:
    hit = cache.get(body)
    if hit is None:
        # Nested functions, lambdas and classes have their own generator-ness.
        nested = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
        hit = any(type(n) is cst.Yield for n in iter_nodes(body, lambda n: not isinstance(n, nested)))
        cache[body] = hit
    return bool(hit)
