"""The abstract evaluator: runs model-definition Python over libcst trees.

It executes the code the way Python would where values are known (numbers, strings,
containers, classes, functions), and carries `Unknown` values, each with its reason and
location, where they are not. Everything that could loop or recurse is charged to a Budget,
so no input can hang it.

Frontends (torch.nn, ...) plug in through native modules and `Value` subclasses; the
evaluator itself knows nothing about deep learning.

`Evaluator` is defined here with its bookkeeping and the two dispatch tables (statements,
expressions); its other methods are functions of the modules named in its body, one module per
concern, bound as methods (no cost per call, the same `ev.call`, `ev.eval`, ... for callers):

- eval_base.py: `Scope`, `Budget`, the limits, the plain-data tests (`contains_unknown`, ...)
- eval_statements.py: simple statements, assignment and unpacking, `del`, name binding
- eval_control.py: `if` (undecided conditions), loops, `try`, `with`, `match`
- eval_definitions.py: imports, `def`, decorators, `class`
- eval_expressions.py: literals, names, attributes, containers, comprehensions, subscripts
- eval_operators.py: arithmetic, comparison, `in`, truth
- eval_calls.py: calls, argument binding, iteration
- code_facts.py: what a block binds, changes, returns, read from its tree without running it
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine import (
    eval_calls,
    eval_control,
    eval_definitions,
    eval_expressions,
    eval_operators,
    eval_statements,
)
from vramlint.engine.code_facts import (
    bound_names,
    is_registering_decorator,
    is_registering_factory,
    module_bound_names,
)
from vramlint.engine.construction_memo import ConstructionMemo
from vramlint.engine.eval_base import (
    INTERNAL_ERROR,
    INTERNAL_ERRORS,
    MAX_CALL_DEPTH,
    MAX_INT_BITS,
    MAX_SEQUENCE,
    Budget,
    Scope,
    any_unknown,
    contains_unknown,
)
from vramlint.engine.eval_operators import BINOP_NAMES
from vramlint.engine.limits import AnalysisBudget
from vramlint.engine.name_reads import NameLog, TrackedNamespace, logging_names
from vramlint.engine.provenance import Origins
from vramlint.engine.script_calls import ScriptStopped
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
    ClassValue,
    ExceptionValue,
    ModuleValue,
    SourceRef,
    Unknown,
    UnknownValueError,
    Value,
)

if TYPE_CHECKING:
    from vramlint.engine.loader import Loader
    from vramlint.engine.source import SourceModule

# What other modules import from here (the evaluator's public names before it was split).
__all__ = [
    "BINOP_NAMES", "INTERNAL_ERROR", "INTERNAL_ERRORS", "MAX_CALL_DEPTH", "MAX_INT_BITS", "MAX_SEQUENCE",
    "Budget", "Evaluator", "Scope", "any_unknown", "bound_names", "contains_unknown",
    "is_registering_decorator", "is_registering_factory", "module_bound_names",
]


class Evaluator:
    """Executes statements and expressions of analysed modules."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        # Python's object model (protocol.py), made by the loader before its evaluator: an
        # attribute, not a property, as every attribute access and call goes through it.
        self.protocol: Any = loader.protocol
        self.protocol.ev = self
        self.builtins: dict[str, Any] = loader.builtins
        self.budget = Budget(2_000_000)
        # The whole analysis's budget (time, steps, cancellation), set by analysis/api.py.
        self.analysis = AnalysisBudget()
        # Results of `lru_cache`d functions by (function, arguments), for one analysis (api.py).
        self.memos: dict[tuple[Any, ...], Any] = {}
        # Repeated constructions of classes with plain arguments, for one analysis (api.py).
        self.constructions = ConstructionMemo()
        self.depth = 0
        # The memory model's recorder (memory/tape.py) while a forward is traced for it.
        self.tape: Any = None
        # Native functions whose calls the tape records, by name prefix (frontends' `taped_prefixes`:
        # a framework's API; not builtins, not Module.__call__).
        self.taped_prefixes: tuple[str, ...] = ()
        # While the analysed script runs (analysis/script_run.py): the recorder of the models' calls
        # from its code, and where its data batches come from (engine/provenance.py).
        self.script: Any = None
        self.origins = Origins()
        # Stack of lists collecting the Unknowns that decided nothing (skipped branches...).
        self.issue_sinks: list[list[Unknown]] = []
        # Observers of class instantiation (used to find construction call sites).
        self.current_ref: SourceRef | None = None
        self._stmt = self._statement_table()
        self._expr = self._expression_table()

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
        self.constructions.records += 1  # (a construction that records one is not remembered)
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
        tracked = module.ns if type(module.ns) is TrackedNamespace else None
        if tracked is not None:
            tracked.statement_logs = {}
        for stmt in source.tree.body:
            if tracked is not None:  # what each statement's run read and bound (analysis/reuse.py)
                with logging_names(NameLog()) as log:
                    sink, gave_up = self.run_top_statement(stmt, scope, per_statement_steps)
                tracked.statement_logs[id(stmt)] = log
            else:
                sink, gave_up = self.run_top_statement(stmt, scope, per_statement_steps)
            if gave_up is not None and aborted is not None:
                aborted[stmt] = gave_up
            out.append((stmt, sink))
        return out

    def run_top_statement(
        self, stmt: cst.CSTNode, scope: Scope, steps: int, run: Callable[[], None] | None = None,
    ) -> tuple[list[Unknown], Unknown | None]:
        """Run one top-level statement of a module (`run`, else the statement itself) on its own
        step allowance: what it could not decide, and why it gave up part-way if it did."""
        saved = self.budget
        self.budget = Budget(steps)
        sink: list[Unknown] = []
        self.issue_sinks.append(sink)
        gave_up: Unknown | None = None
        depth = self.depth
        try:
            if run is None:
                self.exec_stmt(stmt, scope)
            else:
                run()
        except AnalysisStopped:
            raise  # the analysis ends: the module must not look complete (loader.run_file)
        except ScriptStopped:
            pass  # the script's loop came round (engine/script_calls.py): the statement is done
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
        return sink, gave_up

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

    def exec_block(self, body: Any, scope: Scope) -> None:
        if type(body) is cst.SimpleStatementSuite:
            for small in body.body:
                self.exec_small(small, scope)
            return
        stmts = body.body if type(body) is cst.IndentedBlock else body
        for stmt in stmts:
            self.exec_stmt(stmt, scope)

    def exec_stmt(self, stmt: cst.CSTNode, scope: Scope) -> None:
        # charge()'s counting inline (a call per statement, call and attribute was 3% of an
        # analysis); charge(0) decides when either budget is due, with the same errors.
        b = self.budget
        b.steps += 1
        if b.steps > b.limit:
            self.charge(0)  # raises BudgetExceeded
        a = self.analysis
        a.steps += 1
        if a.steps >= a.next_check:
            self.charge(0)
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
        module = scope.module
        ref = module.refs.get(id(small))
        self.current_ref = ref if ref is not None else module.ref_of(small)
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
            cst.Expr: self.s_expr,
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

    # ------------------------------------------------------------------ methods defined by concern
    # eval_statements.py
    s_expr = eval_statements.s_expr
    s_break = eval_statements.s_break
    s_continue = eval_statements.s_continue
    s_return = eval_statements.s_return
    s_raise = eval_statements.s_raise
    s_global = eval_statements.s_global
    s_nonlocal = eval_statements.s_nonlocal
    s_del = eval_statements.s_del
    delete_target = eval_statements.delete_target
    s_assign = eval_statements.s_assign
    s_annassign = eval_statements.s_annassign
    s_augassign = eval_statements.s_augassign
    assign = eval_statements.assign
    unpack = eval_statements.unpack
    bind = eval_statements.bind
    # eval_control.py
    s_if = eval_control.s_if
    s_for = eval_control.s_for
    s_while = eval_control.s_while
    s_try = eval_control.s_try
    s_with = eval_control.s_with
    s_match = eval_control.s_match
    # eval_definitions.py
    s_import = eval_definitions.s_import
    s_importfrom = eval_definitions.s_importfrom
    force = eval_definitions.force
    s_functiondef = eval_definitions.s_functiondef
    make_function = eval_definitions.make_function
    apply_decorator = eval_definitions.apply_decorator
    s_classdef = eval_definitions.s_classdef
    define_class = eval_definitions.define_class
    # eval_expressions.py
    e_literal = eval_expressions.e_literal
    e_string = eval_expressions.e_string
    e_concat = eval_expressions.e_concat
    e_fstring = eval_expressions.e_fstring
    e_name = eval_expressions.e_name
    lookup = eval_expressions.lookup
    attr_name = eval_expressions.attr_name
    e_attribute = eval_expressions.e_attribute
    eval_elements = eval_expressions.eval_elements
    e_set = eval_expressions.e_set
    e_dict = eval_expressions.e_dict
    e_ifexp = eval_expressions.e_ifexp
    e_namedexpr = eval_expressions.e_namedexpr
    e_yield = eval_expressions.e_yield
    e_listcomp = eval_expressions.e_listcomp
    e_setcomp = eval_expressions.e_setcomp
    e_dictcomp = eval_expressions.e_dictcomp
    e_subscript = eval_expressions.e_subscript
    eval_slice = eval_expressions.eval_slice
    # eval_operators.py
    e_binop = eval_operators.e_binop
    binop = eval_operators.binop
    e_unary = eval_operators.e_unary
    e_boolop = eval_operators.e_boolop
    e_compare = eval_operators.e_compare
    compare = eval_operators.compare
    contains = eval_operators.contains
    truth = eval_operators.truth
    # eval_calls.py
    e_call = eval_calls.e_call
    eval_args = eval_calls.eval_args
    call = eval_calls.call
    call_function = eval_calls.call_function
    bind_params = eval_calls.bind_params
    iterate = eval_calls.iterate
    user_dict_dunder = eval_calls.user_dict_dunder
    list_of = eval_calls.list_of
