"""Which models a file holds, and building each one.

A model is an nn.Module subclass defined in the file, a module-level variable holding a module
(`model = Net(...)`, `net = nn.Sequential(...)`, `m = torchvision.models.resnet50()`, also in
tuple targets and inside top-level blocks), a variable of the script's `if __name__ == "__main__":`
block or of the `main()` it calls, or a public factory function returning a module. Classes are constructed with the arguments of the first
call site in the file whose arguments are all known, else with their defaults.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import libcst as cst
from libcst.helpers import get_full_name_for_node

from vramlint.analysis.call_sites import call_sites, construction_at
from vramlint.analysis.inputs import forward_arity_problem
from vramlint.analysis.module_level import target_names
from vramlint.analysis.results import ModelResult, ModuleNode, ParamCounts, UnknownInfo
from vramlint.analysis.reuse import ClassResults
from vramlint.analysis.running import dedupe, info, known_call_args, run_budgeted
from vramlint.analysis.tree import (
    build_tree,
    count_params,
    output_unknowns,
    shape_of,
    tree_and_counts,
)
from vramlint.engine.evaluator import Scope
from vramlint.engine.loader import Loader
from vramlint.engine.script_inputs import entry_point
from vramlint.engine.signals import BudgetExceeded, RaiseSignal, Undecided
from vramlint.engine.source import SourceModule
from vramlint.engine.values import (
    MISSING,
    ClassValue,
    FunctionValue,
    Instance,
    ModuleValue,
    SourceRef,
    Unknown,
)
from vramlint.engine.walk import iter_nodes
from vramlint.frontends.registry import frontend_of, held_model, model_origin
from vramlint.frontends.torch.module import is_module, named_modules, state_of
from vramlint.frontends.torch.stubs import torch_classes
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.settings import InputSpec, Settings

FACTORY_SKIP = {"main", "train", "test", "evaluate", "run", "fit", "cli", "parse_args", "get_args", "predict"}


def _module_class(loader: Loader) -> ClassValue | None:
    return torch_classes(loader).module


def find_models(loader: Loader, mod: ModuleValue, source: SourceModule,
                inputs: tuple[InputSpec, ...] = (), batch_size: int | None = None,
                settings: Settings | None = None, estimate: Estimator | None = None,
                classes: ClassResults | None = None) -> list[ModelResult]:
    """The models of a file, built; with `inputs`, each model's forward is traced on them too;
    with `settings.memory`, `estimate` (analysis/memory.py's, given by analysis/api.py) makes each
    counted model's result, its memory estimate included. `classes`: the previous version's class
    results that still hold (the language server's edits, analysis/reuse.py)."""
    memory = settings if settings is not None and settings.memory and estimate is not None else None
    return _find_models(loader, mod, source, Trace(inputs, batch_size, memory, mod, source, estimate, classes))


@dataclass(frozen=True)
class Trace:
    """The inputs of the forward trace (none: no trace), and the memory estimate's settings."""

    inputs: tuple[InputSpec, ...]
    batch_size: int | None  # None: not given
    memory: Settings | None = None
    mod: ModuleValue | None = None
    source: SourceModule | None = None
    estimate: Estimator | None = None  # with `memory`: makes the result of a counted model
    classes: ClassResults | None = None  # the class results an edit left valid (analysis/reuse.py)


# (name, kind, location, model, how it was built, counts, unknowns, loader, trace) -> its result.
Estimator = Callable[[str, str, Any, Instance, str, ParamCounts, list[UnknownInfo], Loader, "Trace"], ModelResult]


def _find_models(loader: Loader, mod: ModuleValue, source: SourceModule, trace: Trace) -> list[ModelResult]:
    base = _module_class(loader)
    tree = source.tree
    if tree is None or base is None:
        return []
    results: list[ModelResult] = []
    stmt_problems = loader.statement_problems.get(mod.name, {})
    # The script's main block (or the entry point a script calls at its top level) runs first,
    # whatever its place, so that its calls of the models are recorded (engine/script_calls.py)
    # before any model is estimated. Its results keep their place.
    guard: cst.CSTNode | None = next((s for s in _top_level(tree.body) if isinstance(s, cst.If) and _is_main_guard(s)),
                                     None) or _unguarded_entry(tree.body, mod.ns, source, loader.evaluator)
    script = _main_block_models(loader, mod, source, guard, trace, _module_level_models(mod, tree.body)) \
        if guard is not None else []
    for stmt in _top_level(tree.body):
        if stmt is guard:
            results += script
        elif isinstance(stmt, cst.ClassDef):
            cls = mod.ns.get(stmt.name.value)
            if isinstance(cls, ClassValue) and cls.ref is not None and cls.ref.node is stmt and base in cls.mro:
                # What the class statement itself left undecided (an unknown base class may
                # add parameters) makes the count inexact, as for module-level instances.
                problems = stmt_problems.get(stmt, [])
                build = partial(_build_class, loader, mod, source, cls, stmt, problems, trace)
                results.append(trace.classes.result(cls, stmt, build) if trace.classes is not None else build())
        elif isinstance(stmt, cst.FunctionDef):
            fn = mod.ns.get(stmt.name.value)
            if isinstance(fn, FunctionValue) and fn.node is stmt and _factory_candidate(loader, mod, source, stmt):
                r = _build_factory(loader, source, fn, stmt, trace)
                if r is not None:
                    results.append(r)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                for name in _assigned_names(small):
                    v = mod.ns.get(name)
                    if _model_of(v) is not v:  # `pipe = pipeline(...)`, `DDP(net)`: its model, unless a name has it already
                        v = _model_of(v)
                        v = None if any(mod.ns.get(r.name) is v for r in results) else v
                    if is_module(v):
                        unknowns = [info(u) for u in stmt_problems.get(stmt, [])]
                        results.append(_result(name, "instance", SourceRef(source, small), v,
                                               "module level", unknowns, None, loader, trace))
    _mark_components(results)
    return _last_bindings(results)


def _last_bindings(results: list[ModelResult]) -> list[ModelResult]:
    """A module-level name bound more than once (`model = LlamaForCausalLM(config)` then
    `model = get_peft_model(model, ...)`) holds its last value, which is the one every result
    counted: it is reported once, at its last binding."""
    last = {r.name: i for i, r in enumerate(results) if r.kind == "instance"}
    return [r for i, r in enumerate(results) if r.kind != "instance" or last[r.name] == i]


def _top_level(body: Any) -> Iterator[cst.CSTNode]:
    """The module's statements, and those inside its top-level `if`/`with`/`try`/`for` blocks
    (`with torch.device("meta"): model = ...`, a model built under a condition): they run when
    the module runs and bind module-level names. An `if __name__ == "__main__":` block itself."""
    for stmt in body:
        yield stmt
        if _is_main_guard(stmt) or not isinstance(stmt, (cst.If, cst.With, cst.Try, cst.For, cst.While)):
            continue
        blocks: list[Any] = [stmt.body]
        if isinstance(stmt, cst.If) and stmt.orelse is not None:
            blocks.append(stmt.orelse if isinstance(stmt.orelse, cst.If) else stmt.orelse.body)
        elif isinstance(stmt, cst.Try):
            blocks += [h.body for h in stmt.handlers]
            blocks += [b.body for b in (stmt.orelse, stmt.finalbody) if b is not None]
        for block in blocks:
            if isinstance(block, cst.If):
                yield from _top_level([block])
            elif isinstance(block, cst.IndentedBlock):
                yield from _top_level(block.body)
            elif isinstance(block, cst.SimpleStatementSuite):
                yield cst.SimpleStatementLine(body=block.body)  # type: ignore[call-arg]


def _is_main_guard(stmt: cst.CSTNode) -> bool:
    """`if __name__ == "__main__":`"""
    if not isinstance(stmt, cst.If) or not isinstance(stmt.test, cst.Comparison):
        return False
    t = stmt.test
    sides = [t.left, *(c.comparator for c in t.comparisons)]
    return (len(t.comparisons) == 1 and isinstance(t.comparisons[0].operator, cst.Equal)
            and any(isinstance(x, cst.Name) and x.value == "__name__" for x in sides)
            and any(isinstance(x, cst.SimpleString) and x.evaluated_value == "__main__" for x in sides))


def _module_level_models(mod: ModuleValue, body: Any) -> dict[str, Any]:
    """The models the module level binds, by name (what importers of the file see)."""
    out: dict[str, Any] = {}
    for stmt in _top_level(body):
        for small in (stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ()):
            for name in _assigned_names(small):
                v = mod.ns.get(name)
                v = _model_of(v)
                if is_module(v):
                    out[name] = v
    return out


def _unguarded_entry(body: Any, ns: dict[str, Any], source: SourceModule, ev: Any) -> cst.CSTNode | None:
    """A script without a main guard that ends by calling its entry point at the top level
    (`main()`, `train(args)`): that statement is its main block."""
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
            fn = _script_function(stmt.body[0], ns, source, ev)
            if fn is not None and fn.name in FACTORY_SKIP:
                return stmt
    return None


def _main_block_models(loader: Loader, mod: ModuleValue, source: SourceModule, guard: cst.CSTNode, trace: Trace,
                       found: dict[str, Any]) -> list[ModelResult]:
    """A script's models: what `if __name__ == "__main__":` assigns, and what the functions it
    calls (`main()`, `main(args)`, `sys.exit(main())`) assign to their local variables. The analysed file runs
    as a script would, but on a copy of its namespace, so that the module other files import
    stays as Python would leave it."""
    ev = loader.evaluator
    ns = dict(mod.ns)
    scope = Scope(ns, None, ns, source)
    body = list(guard.body.body) if isinstance(guard, cst.If) and isinstance(guard.body, cst.IndentedBlock) else \
        [guard] if isinstance(guard, cst.SimpleStatementLine) else []

    def run() -> None:
        for stmt in body:
            # `main()` itself runs once, below, where its locals are kept.
            if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
                    and _script_function(stmt.body[0], ns, source, ev) is not None):
                ev.exec_stmt(stmt, scope)

    with _recording(ev):
        _, sink, _ = run_budgeted(loader, run)
    unknowns = [info(u) for u in sink]
    seen = {id(v) for v in found.values()}
    # A name the module level already gives a model keeps it (what importers of the file see).
    names = set(found)
    out: list[ModelResult] = []

    def add(name: str, value: Any, at: cst.CSTNode, how: str, problems: list[UnknownInfo],
            scope_vars: dict[str, Any] = ns) -> None:
        value = _model_of(value)
        # A script's loss or activation module (`criterion = nn.CrossEntropyLoss()`) holds no
        # parameters: it is not a model to estimate.
        if is_module(value) and id(value) not in seen and name not in names and not _inside_model(value, scope_vars) \
                and count_params(value)[0].total != 0:
            names.add(name)
            seen.add(id(value))
            out.append(_result(name, "instance", SourceRef(source, at), value, how, problems, None, loader, trace))

    for stmt in _top_level(body):
        for small in (stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ()):
            for name in _assigned_names(small):
                add(name, ns.get(name), small, "the script's main block", unknowns)
            fn = _script_function(small, ns, source, ev)
            if fn is not None:
                with _recording(ev):
                    local, problems = _locals_of(loader, fn, *_script_arguments(loader, small, scope))
                for assign, name in _local_assignments(fn.node):  # type: ignore[arg-type]
                    add(f"{fn.name}.{name}", local.get(name), assign, f"a local of {fn.name}()",
                        [info(u) for u in problems(assign)], {**ns, **local})
    return out


def _recording(ev: Any) -> Any:
    """While the script's own code runs: its calls of its models are recorded (engine/script_calls.py)."""
    return ev.script.recording() if ev.script is not None else contextlib.nullcontext()


def _script_call(small: cst.CSTNode) -> cst.Call | None:
    """The call of a `main()` statement: `main()`, `main(args)`, `sys.exit(main())`,
    `raise SystemExit(main(parse_args()))`."""
    call = small.value if isinstance(small, cst.Expr) else small.exc if isinstance(small, cst.Raise) else None
    if isinstance(call, cst.Call) and len(call.args) == 1 and isinstance(call.args[0].value, cst.Call) and \
            get_full_name_for_node(call.func) in ("sys.exit", "exit", "SystemExit", "quit"):
        call = call.args[0].value  # the exit code main() returns
    return call if isinstance(call, cst.Call) and isinstance(call.func, cst.Name) else None


def _script_function(small: cst.CSTNode, ns: dict[str, Any], source: SourceModule, ev: Any) -> FunctionValue | None:
    """The function of this file that a `main()` statement calls (with or without arguments)."""
    call = _script_call(small)
    if call is not None:
        fn = ns.get(cast(cst.Name, call.func).value)
        if isinstance(fn, FunctionValue) and fn.module is source and isinstance(fn.node, cst.FunctionDef):
            return fn
    # `main()` under @click.command / @hydra.main, `fire.Fire(main)`: the function they run.
    entry = _entry(ev, small, ns)
    fn = entry.func if entry is not None else None
    return fn if isinstance(fn, FunctionValue) and fn.module is source and isinstance(fn.node, cst.FunctionDef) else None


def _entry(ev: Any, small: cst.CSTNode, ns: dict[str, Any]) -> Any:
    return entry_point(ev, small.value, ns) if isinstance(small, cst.Expr) else None


def _script_arguments(loader: Loader, small: cst.CSTNode, scope: Scope) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of the `main(args)` call, evaluated where the main block left its names
    (`args = parse_args()` before it); an argument that cannot be is an Unknown (its function
    sees what it could not decide)."""
    entry = _entry(loader.evaluator, small, scope.vars)
    if entry is not None:  # the values its framework gives it (options' defaults, a composed config)
        got_entry, _, _ = run_budgeted(loader, lambda: entry.arguments(loader.evaluator))
        return cast("tuple[tuple[Any, ...], dict[str, Any]]", got_entry) if got_entry is not None else ((), {})
    call = _script_call(small)
    if call is None or not call.args:
        return (), {}
    got, sink, error = run_budgeted(loader, lambda: loader.evaluator.eval_args(call.args, scope))
    if got is None:
        u = Unknown(f"the arguments of {cast(cst.Name, call.func).value}() could not be evaluated"
                    + (f": {error.reason}" if error is not None else ""), SourceRef(scope.module, call))
        return tuple(u for a in call.args if a.keyword is None), {a.keyword.value: u for a in call.args if a.keyword}
    return cast("tuple[tuple[Any, ...], dict[str, Any]]", got)


def _inside_model(value: Any, ns: dict[str, Any]) -> bool:
    """Whether `value` is a submodule of another model of the namespace (the script's `net.fc`)."""
    return any(is_module(v) and v is not value and any(m is value for _, m in named_modules(v)) for v in map(_model_of, ns.values()))


def _model_of(v: Any) -> Any:
    """The model a value is: a pipeline's or a wrapper's (`DDP(net)`: net) where a frontend says so,
    else the value itself."""
    held = held_model(v)
    return v if held is None else held


def _locals_of(loader: Loader, fn: FunctionValue, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
               ) -> tuple[dict[str, Any], Callable[[cst.CSTNode], list[Unknown]]]:
    """Run a function on the given arguments and keep its local variables (its models), with what each
    of its top-level statements left undecided: a model's count is inexact only for what the
    statement that built it could not decide, not for the training loop further down."""
    from vramlint.engine.signals import ReturnSignal

    ev = loader.evaluator
    scope = Scope({}, fn.closure, fn.globals, fn.module)
    scope.func = fn
    body = list(fn.node.body.body) if isinstance(fn.node, cst.FunctionDef) and isinstance(fn.node.body, cst.IndentedBlock) else []
    sinks: dict[cst.CSTNode, list[Unknown]] = {}
    rest: list[Unknown] = []

    def run() -> None:
        ev.bind_params(fn, args, dict(kwargs or {}), scope)
        ev.depth += 1
        try:
            for stmt in body:
                sink: list[Unknown] = []
                sinks[stmt] = sink
                ev.issue_sinks.append(sink)
                try:
                    ev.exec_stmt(stmt, scope)
                finally:
                    ev.issue_sinks.pop()
        except ReturnSignal:
            pass
        finally:
            ev.depth -= 1

    _, outer, _ = run_budgeted(loader, run)
    rest.extend(outer)

    def problems(node: cst.CSTNode) -> list[Unknown]:
        top = next((stmt for stmt in body if any(n is node for n in iter_nodes(stmt))), None)
        return [*sinks.get(top, []), *rest] if top is not None else [*rest]

    return scope.vars, problems


def _local_assignments(fn: cst.FunctionDef) -> Iterator[tuple[cst.CSTNode, str]]:
    """(statement, name) of the plain assignments in a function's body, outside nested functions."""
    nested = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
    for n in iter_nodes(fn.body, lambda n: not isinstance(n, nested)):
        if isinstance(n, (cst.Assign, cst.AnnAssign)):
            for name in _assigned_names(n):
                yield n, name


def _mark_components(results: list[ModelResult]) -> None:
    """A block class built with unknown arguments on its own (`Block(config)`) is usually built
    properly inside another model of the file: say so, so its unknown count is not mistaken
    for a problem of the model."""
    parts = [r for r in results if r.kind == "class" and r.params.total is None and r.tree is not None]
    if not parts:
        return
    built: dict[str, set[str]] = {r.tree.qualname: set() for r in parts}  # type: ignore[union-attr]
    for r in results:
        if r.tree is not None and r.params.total is not None:
            for q in _qualnames(r.tree):
                if q in built:
                    built[q].add(r.name)
    for r in parts:
        r.used_in = sorted(built[r.tree.qualname] - {r.name})  # type: ignore[union-attr]


def _qualnames(root: ModuleNode) -> Iterator[str]:
    """Pre-order, on a stack: nested generators passed each name up through every level (187k resumptions for torchvision)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node.qualname
        stack.extend(reversed(node.children))


def _assigned_names(small: cst.CSTNode) -> Iterator[str]:
    if isinstance(small, cst.Assign):
        for t in small.targets:
            yield from target_names(t.target)
    elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
        yield small.target.value


def _build_class(loader: Loader, mod: ModuleValue, source: SourceModule, cls: ClassValue,
                 stmt: cst.ClassDef, class_problems: list[Unknown] | None, trace: Trace,
                 used: list[cst.Call] | None = None) -> ModelResult:
    """The class built with the arguments of its first call site whose arguments are known (put
    in `used`), else its defaults."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    how = "default arguments"
    for call in call_sites(source, cls.name):
        known = known_call_args(loader, mod, source, call)
        if known is not None:
            args, kwargs = known
            how = construction_at(source, call)
            if used is not None:
                used.append(call)
            break
    ev = loader.evaluator

    def build() -> Any:
        ev.current_ref = SourceRef(source, stmt.name)
        return ev.protocol.instantiate(cls, args, kwargs)

    value, sink, error = run_budgeted(loader, build)
    loc = SourceRef(source, stmt.name)
    return _result(cls.name, "class", loc, value, how, [info(u) for u in [*(class_problems or []), *sink]], error, loader, trace)


def _factory_candidate(loader: Loader, mod: ModuleValue, source: SourceModule, stmt: cst.FunctionDef) -> bool:
    name = stmt.name.value
    if name.startswith("_") or name in FACTORY_SKIP:
        return False
    p = stmt.params
    if any(x.default is None for x in (*p.posonly_params, *p.params, *p.kwonly_params)):
        return False
    if stmt.returns is not None:
        ev = loader.evaluator
        scope = Scope(mod.ns, None, mod.ns, source)
        ann = stmt.returns.annotation
        try:
            t = ev.eval(ann, scope) if isinstance(ann, (cst.Name, cst.Attribute)) else None
        except (RaiseSignal, Undecided, BudgetExceeded):
            t = None
        if isinstance(t, ClassValue):
            base = _module_class(loader)
            return base in t.mro
    return _has_value_return(stmt)


def _has_value_return(stmt: cst.FunctionDef) -> bool:
    nested = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
    return any(
        isinstance(n, cst.Return) and n.value is not None
        for n in iter_nodes(stmt.body, lambda n: not isinstance(n, nested))
    )


def _build_factory(loader: Loader, source: SourceModule, fn: FunctionValue, stmt: cst.FunctionDef,
                   trace: Trace) -> ModelResult | None:
    ev = loader.evaluator

    def build() -> Any:
        ev.current_ref = SourceRef(source, stmt.name)
        return ev.call(fn, (), {})

    value, sink, error = run_budgeted(loader, build)
    if not is_module(value) and error is None:
        return None
    return _result(fn.name, "factory", SourceRef(source, stmt.name), value, "default arguments",
                   [info(u) for u in sink], error, loader, trace)


def _finish(loader: Loader, model: Instance, trace: Trace) -> None:
    """What the model's framework does lazily, done before counting (frontends/interface.py)."""
    frontend = frontend_of(model)
    if frontend is None or frontend.finish_model is None:
        return
    others = trace.mod.ns.values() if trace.mod is not None else ()
    inputs = trace.inputs or (trace.memory.inputs if trace.memory is not None else None) or ()
    frontend.finish_model(loader.evaluator, model, others, inputs)


def _result(name: str, kind: str, loc: Any, value: Any, how: str, unknowns: list[UnknownInfo],
            error: UnknownInfo | None, loader: Loader, trace: Trace) -> ModelResult:
    origin = model_origin(value) if is_module(value) else ()
    config = next((v for label, v in origin if label == "config"), None)
    if config is not None:  # "module level; config from vramlint's table of popular checkpoints (...)"
        how = f"{how}; config from {config}"
    result = _counted(name, kind, loc, value, how, unknowns, error, loader, trace)
    result.origin = origin
    return result


def _counted(name: str, kind: str, loc: Any, value: Any, how: str, unknowns: list[UnknownInfo],
             error: UnknownInfo | None, loader: Loader, trace: Trace) -> ModelResult:
    if error is None and is_module(value):
        _, sink, error = run_budgeted(loader, lambda: _finish(loader, value, trace))
        unknowns = unknowns + [info(u) for u in sink]
    if error is not None or not is_module(value):
        if error is None:
            reason = value.reason if isinstance(value, Unknown) else "did not produce a module"
            error = UnknownInfo(reason, value.ref if isinstance(value, Unknown) else None)
        return ModelResult(name, kind, loc, ParamCounts(None, None, None, 0), None, how, dedupe(unknowns), error)
    tree: ModuleNode | None = None
    plain: ParamCounts | None = None
    if trace.memory is None and not trace.inputs:  # nothing traced: the tree's walk counts too
        tree, plain = tree_and_counts(value)
    counts, param_unknowns = (plain, []) if plain is not None else count_params(value)
    all_unknowns = dedupe(unknowns + [info(u) for u in param_unknowns])
    if all_unknowns and counts.total is not None and unknowns:
        # Something that could change the structure was not decided: the count is not exact.
        counts = ParamCounts(None, None, counts.buffers, counts.known)
    if trace.memory is not None and trace.estimate is not None and counts.total is not None:
        return trace.estimate(name, kind, loc, value, how, counts, all_unknowns, loader, trace)
    if not trace.inputs or counts.total is None:
        # No trace asked for, or a model whose structure is not known (a block built without
        # its arguments): its forward would only trace the unknowns again.
        return ModelResult(name, kind, loc, counts, tree if tree is not None else build_tree(value), how, all_unknowns, None)
    problem = forward_arity_problem(value, len(trace.inputs), "flag")
    if problem is not None:  # say so in one line rather than trace a call Python would refuse
        result = ModelResult(name, kind, loc, counts, build_tree(value), how, all_unknowns, None)
        result.forward_unknowns = [UnknownInfo(problem, loc)]
        return result
    output, trace_unknowns = trace_forward(loader, value, trace.inputs, trace.batch_size or 1)
    result = ModelResult(name, kind, loc, counts, build_tree(value, outputs=True), how, all_unknowns, None)
    result.output_shape = shape_of(output)
    result.forward_unknowns = dedupe(trace_unknowns)
    return result


# ---------------------------------------------------------------------- the forward trace
def trace_forward(loader: Loader, model: Instance, inputs: tuple[InputSpec, ...],
                  batch: int) -> tuple[Any, list[UnknownInfo]]:
    """Call the model on tensors of the given per-sample shapes (batch first), as torchinfo does;
    every module keeps the output of its first call."""
    for _, m in named_modules(model):
        state_of(m).output = MISSING  # forget dummy forwards made while building
    args = tuple(TensorValue((batch, *spec.shape), spec.dtype) for spec in inputs)
    value, sink, error = run_budgeted(loader, lambda: loader.evaluator.call(model, args, {}))
    unknowns = [info(u) for u in sink] + ([error] if error is not None else [])
    unknowns.extend(info(u) for u in output_unknowns(value))
    return value, unknowns


