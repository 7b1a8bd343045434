"""Running model code for the analysis: under a fresh step budget, collecting what it could not
decide (`run_budgeted`), and evaluating a call's arguments at module level (`known_call_args`)."""

from __future__ import annotations

from typing import Any

import libcst as cst

from vramlint.analysis.results import UnknownInfo
from vramlint.engine.evaluator import Budget, Scope
from vramlint.engine.loader import Loader
from vramlint.engine.signals import BudgetExceeded, RaiseSignal, Undecided
from vramlint.engine.source import SourceModule
from vramlint.engine.values import ModuleValue, Unknown

MODEL_STEPS = 3_000_000  # enough for the largest torchvision models many times over


def info(u: Unknown) -> UnknownInfo:
    return UnknownInfo(u.reason, u.ref)


def run_budgeted(loader: Loader, fn: Any) -> tuple[Any, list[Unknown], UnknownInfo | None]:
    """Run `fn()` with a fresh budget, collecting what it could not decide."""
    ev = loader.evaluator
    saved = (ev.budget, ev.issue_sinks, ev.depth, ev.current_ref)
    ev.budget = Budget(MODEL_STEPS)
    sink: list[Unknown] = []
    ev.issue_sinks = [sink]
    ev.depth = 0
    error: UnknownInfo | None = None
    value: Any = None
    try:
        value = fn()
    except BudgetExceeded as err:
        error = UnknownInfo(err.message, err.ref)
    except RaiseSignal as sig:
        error = info(ev.exception_unknown(sig, None, None))
    except Undecided as und:
        error = info(und.unknown)
    except RecursionError:
        error = UnknownInfo("construction nests too deeply to evaluate", None)
    finally:
        ev.budget, ev.issue_sinks, ev.depth, ev.current_ref = saved
    return value, sink, error


def known_call_args(loader: Loader, mod: ModuleValue, source: SourceModule, call: cst.Call) -> Any:
    """The call's arguments evaluated at module level, or None if any is unknown."""
    ev = loader.evaluator
    scope = Scope(mod.ns, None, mod.ns, source)
    saved = ev.budget
    ev.budget = Budget(100_000)
    try:
        args, kwargs = ev.eval_args(call.args, scope)
    except (RaiseSignal, BudgetExceeded, Undecided, RecursionError):
        return None
    finally:
        ev.budget = saved
    from vramlint.engine.evaluator import any_unknown

    if any_unknown(args, tuple(kwargs.values())) is not None or "**" in kwargs:
        return None
    return args, kwargs


def dedupe(unknowns: list[UnknownInfo]) -> list[UnknownInfo]:
    seen: set[tuple[str, Any]] = set()
    out = []
    for u in unknowns:
        key = u.key()
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out


def module_level(loader: Loader, source: SourceModule, mod: ModuleValue) -> Any:
    """A function giving an expression's value at the file's module level (an Unknown when it
    cannot): what frontends read a call's arguments with (generation, a multi-GPU launch)."""
    ev = loader.evaluator
    scope = Scope(mod.ns, None, mod.ns, source)

    def evaluate(node: cst.BaseExpression) -> Any:
        try:
            return ev.eval(node, scope)
        except (RaiseSignal, BudgetExceeded, Undecided, RecursionError):
            return Unknown("not evaluated at module level", None)

    return evaluate
