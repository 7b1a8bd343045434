"""The memory estimate of a built model: resolve its setup and inputs, trace one training
forward on the tape, add the loss, and hand the recording to the memory model (vramlint.memory)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, cast

import libcst as cst

from vramlint.analysis.call_sites import call_sites
from vramlint.analysis.distributed import (
    code_world_size,
    complete_plan,
    find_parallel_plan,
    traced_precision,
)
from vramlint.analysis.generation import (
    attach_generation,
    find_generation,
    generation_setup,
    prefill_inputs,
)
from vramlint.analysis.inputs import forward_arity_problem
from vramlint.analysis.models import Trace
from vramlint.analysis.results import ModelResult, ModuleNode, ParamCounts, TrainerCall, UnknownInfo
from vramlint.analysis.running import dedupe, info, known_call_args, run_budgeted
from vramlint.analysis.tree import build_tree, shape_of
from vramlint.engine.evaluator import Scope
from vramlint.engine.loader import Loader
from vramlint.engine.provenance import source_of
from vramlint.engine.script_inputs import workspace_root
from vramlint.engine.signals import BudgetExceeded, RaiseSignal, Undecided
from vramlint.engine.source import SourceModule
from vramlint.engine.values import MISSING, Instance, ModuleValue, SourceRef, Unknown
from vramlint.frontends.registry import frontend_of, training_setup_handlers
from vramlint.frontends.torch.module import (
    named_modules,
    named_tensors,
    params_and_buffers,
    state_of,
)
from vramlint.frontends.torch.tensors import FLOAT_DTYPES, TensorValue
from vramlint.frontends.training_setup import Found, scan_training_setup
from vramlint.memory.allocator import AllocatorConfig
from vramlint.memory.attention_backends import KernelEnv, parse_version
from vramlint.memory.devices import device_named
from vramlint.memory.distributed import ParamInfo
from vramlint.memory.estimate import (
    LayerMemory,
    LineTensor,
    MemoryEstimate,
    Textbook,
    TrainingSetup,
    estimate_from_tape,
    max_batch,
)
from vramlint.memory.tape import Tape, _tensors, reachable_tensors, tensor_bytes
from vramlint.settings import InputSpec, Settings, Setup, Sourced, parse_directives, resolve_setup

LOW = {"bf16": "bfloat16", "fp16": "float16", "amp-bf16": "bfloat16", "amp-fp16": "float16"}
LOW_NAMES = {"bfloat16": "bf16", "float16": "fp16"}  # a whole model in that dtype: its precision


def estimate_model(loader: Loader, model: Instance, args: tuple[Any, ...], kwargs: dict[str, Any],
                   setup: TrainingSetup, path: str = "") -> tuple[MemoryEstimate | None, list[UnknownInfo], Any]:
    """Trace `model(*args, **kwargs)` (the batch included in the shapes) for one training step."""
    ev = loader.evaluator
    notes: list[str] = []
    params, buffers = params_and_buffers(model)
    restore: list[tuple[TensorValue, str]] = []
    own_bytes = {id(t): _bytes(t) for _, t in params if isinstance(t, TensorValue)}  # before any cast
    pure = setup.precision in ("bf16", "fp16")
    # A model that already has parameters in that dtype was built or loaded in it
    # (`from_pretrained(dtype=torch.bfloat16)`): those still float32 are so on purpose (peft's
    # adapters, transformers' `_keep_in_fp32_modules`, norms cast up for k-bit training) and stay.
    loaded_low = pure and any(isinstance(t, TensorValue) and t.dtype == LOW[setup.precision] for _, t in params)
    if pure and not loaded_low:  # model.to(dtype): parameters and float buffers
        for _, t in params + buffers:
            if isinstance(t, TensorValue) and t.dtype in FLOAT_DTYPES:
                restore.append((t, t.dtype))
                t.dtype = LOW[setup.precision]
    if pure:
        args = tuple(_cast_input(a, LOW[setup.precision]) for a in args)
        kwargs = {k: _cast_input(v, LOW[setup.precision]) for k, v in kwargs.items()}
    tape = Tape(autocast=LOW[setup.precision] if setup.precision.startswith("amp-") else None,
                kernels=KernelEnv(sm=setup.device.sm if setup.device is not None else KernelEnv.sm,
                                  torch_version=parse_version(loader.torch_version)))
    tape.module_paths = {id(m): p for p, m in named_modules(model)}
    for t in _tensors((args, kwargs)):
        if id(t) not in tape.tensors:
            tape.add_input(t)
    for _, m in named_modules(model):
        state_of(m).forget_calls()
    modes = [(state_of(m), state_of(m).training) for _, m in named_modules(model)]
    if not all(mode for _, mode in modes):
        # A training step runs in training mode, as trainers set it (`model.train()`, its
        # overrides included): a model loaded by `from_pretrained` comes in eval mode, where
        # dropout keeps nothing and transformers' layers skip gradient checkpointing.
        train = run_budgeted(loader, lambda: ev.protocol.getattr(model, "train", None))[0]
        if train is not None and not isinstance(train, Unknown):
            run_budgeted(loader, lambda: ev.call(train, (), {}))
    if setup.checkpointing:
        # Python's attribute lookup, `__getattr__` included: a wrapper (peft's PeftModel) forwards
        # the call to the model it wraps.
        enable = run_budgeted(loader, lambda: ev.protocol.getattr(model, "gradient_checkpointing_enable", None))[0]
        if enable is not None and not isinstance(enable, Unknown):
            run_budgeted(loader, lambda: ev.call(enable, (), {}))
        else:
            notes.append("checkpointing was asked for but the model has no gradient_checkpointing_enable(): "
                         "only torch.utils.checkpoint calls in its forward are modelled")
    ev.tape = tape
    try:
        value, sink, error = run_budgeted(loader, lambda: ev.call(model, args, kwargs))
        unknowns = [info(u) for u in sink] + ([error] if error is not None else [])
        if error is None and not isinstance(value, Unknown):
            tape.forward_end = len(tape.ops)
            loss_note = _add_loss(tape, value)
            if loss_note:
                notes.append(loss_note)
        param_sizes: list[Any] = [(t.numel(), _bytes(t), bool(t.requires_grad), t.shape) for _, t in params
                                  if isinstance(t, TensorValue)]
        traced_bytes = {id(t): _bytes(t) for _, t in params if isinstance(t, TensorValue)}
        buffer_bytes = sum(_bytes(t) for _, t in buffers if isinstance(t, TensorValue))
    finally:
        ev.tape = None
        for t, dt in restore:
            t.dtype = dt
        for state, mode in modes:
            state.training = mode
    if isinstance(value, Unknown):
        unknowns.append(info(value))  # what stopped the forward (a shape mismatch...)
    if error is not None or isinstance(value, Unknown):
        return None, unknowns, value
    # What the output holds stays alive until the loss is taken (a KV cache, hidden states...).
    output_sids = {tape.tensors[id(t)].sid for t in reachable_tensors(value) if id(t) in tape.tensors}
    if any(not isinstance(p[0], int) for p in param_sizes):
        return None, unknowns + [UnknownInfo("a parameter of unknown size", None)], value
    infos = [ParamInfo(name, t.numel(), traced_bytes[id(t)], own_bytes[id(t)], bool(t.requires_grad),
                       cast(tuple[int, ...], t.shape), tape.tensors[id(t)].sid if id(t) in tape.tensors else -1)
             for name, t in params if isinstance(t, TensorValue)] if setup.plan is not None else None
    est = estimate_from_tape(tape, setup, param_sizes, buffer_bytes, output_sids, notes, infos)
    if path:
        est.lines = _line_tensors(tape, path)
    for note, calls in tape.kernel_notes.items():
        est.notes.append(f"{note}, {calls} call{'s' if calls > 1 else ''}")
    if tape.unmodelled:
        names = ", ".join(f"{k} x{v}" for k, v in sorted(tape.unmodelled.items()))
        est.notes.append(f"ops without a saved-tensor rule, assumed to keep their inputs: {names}")
    return est, unknowns, value


def _line_tensors(tape: Tape, path: str) -> dict[int, LineTensor]:
    """Per line of `path` (the analysed file), the tensor its ops produced the first time it ran."""
    target = os.path.abspath(path)
    out: dict[int, LineTensor] = {}
    done: set[int] = set()
    last_line = None
    for op in tape.ops[:tape.forward_end]:
        ref = op.where
        if not isinstance(ref, SourceRef) or ref.module.path != target or not op.outputs:
            continue
        line = ref.statement_location.end_line  # the statement: hints go at its end
        if line in done and line != last_line:
            continue  # the line ran before (a loop, a second call): keep its first result
        if last_line is not None and line != last_line:
            done.add(last_line)
        last_line = line
        t = tape.op_outputs.get(op.index)
        shape = _shape_of_output(tape, op)
        if t is not None and shape is not None:
            out[line] = LineTensor(line, shape, t.dtype, tensor_bytes(t))
    return out


def _shape_of_output(tape: Tape, op: Any) -> tuple[int | None, ...] | None:
    t = tape.op_outputs.get(op.index)
    if t is None or not isinstance(t.shape, tuple):
        return None
    return tuple(d if isinstance(d, int) else None for d in t.shape)


def _bytes(t: TensorValue) -> int:
    return tensor_bytes(t)


def _cast_input(v: Any, dtype: str) -> Any:
    if isinstance(v, TensorValue) and v.dtype in FLOAT_DTYPES:
        return TensorValue(v.shape, dtype)
    return v


def _add_loss(tape: Tape, value: Any) -> str | None:
    """The loss of the training step: the model's own (a scalar `loss` in its output, as
    transformers computes when given labels), else cross-entropy on its first output."""
    loss = _find(value, "loss")
    if isinstance(loss, TensorValue) and id(loss) in tape.tensors:
        return None
    for t in _tensors((value,)):  # `logits, loss = model(idx, targets)`: a scalar computed in the forward
        if t.shape == () and t.dtype in FLOAT_DTYPES and id(t) in tape.tensors \
                and tape.storages[tape.tensors[id(t)].sid].kind == "activation":
            return None
    out = next(iter(_tensors((value,))), None)
    if out is None or not isinstance(out.shape, tuple) or out.dtype not in FLOAT_DTYPES:
        return "the model's output is not a float tensor: no loss added"
    shape = out.shape
    if len(shape) >= 2 and all(isinstance(d, int) for d in shape):
        target = TensorValue((*shape[:-1],) if len(shape) == 2 else (shape[0] * shape[1], *shape[2:-1]), "int64")
        tape.add_input(target)
        logits = out if len(shape) == 2 else TensorValue((shape[0] * shape[1], *shape[2:]), out.dtype)
        if logits is not out:
            tape.record("Tensor.view", (out,), {}, logits, None)
        tape.record("torch.nn.functional.cross_entropy", (logits, target), {}, TensorValue((), "float32"), None)
        return f"loss: cross-entropy over the output {list(shape)} with int64 class targets"
    tape.record("torch.nn.functional.mse_loss", (out, out), {}, TensorValue((), "float32"), None)
    return "loss: mean squared error on the output"


def _find(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, Instance):
        v = value.attrs.get(key, MISSING)
        return None if v is MISSING else v
    return None


# ---------------------------------------------------------------------- one model, end to end
def model_with_memory(name: str, kind: str, loc: Any, value: Instance, how: str, counts: ParamCounts,
                      unknowns: list[UnknownInfo], loader: Loader, trace: Trace) -> ModelResult:
    """The model's setup (settings.resolve_setup: flags, directive, configuration, code), its
    inputs, and the memory estimate; the traced forward also gives the module tree's output shapes."""
    settings = trace.memory
    assert settings is not None
    result = ModelResult(name, kind, loc, counts, None, how, unknowns, None)
    path = trace.source.path if trace.source is not None else ""
    scan = scan_training_setup(trace.source, training_setup_handlers()) if trace.source is not None else None
    # A local of the script's `main()` is reported as "main.model"; its code names it "model".
    variable = name.rsplit(".", 1)[-1]
    trainer = scan.trainer_for(variable) if scan is not None else None
    plan = find_generation(loader, trace, name, value) if kind == "instance" else None
    own = _code_setup(loader, trace, variable)
    parallel = find_parallel_plan(loader, trace, variable, value, scan, _workspace(loader, path, settings)) \
        if scan is not None else None
    code = {**generation_setup(plan, trains="optimizer" in own or trainer is not None), **own,
            **code_world_size(parallel)}
    setup = resolve_setup(settings, name, path, _directive_for(loc, trace), code)
    setup = _batch_from_call(setup, loader, name, kind, trace)
    result.setup = setup
    if trainer is not None:
        result.trained_by = TrainerCall(trainer.value, trainer.text, trainer.ref)
    stopped = loader.evaluator.analysis.stopped
    if stopped is not None:  # nothing more can be evaluated: not "no inputs"
        result.tree = build_tree(value)
        result.memory_unknowns = [UnknownInfo(f"no estimate: {stopped.message}", stopped.ref)]
        return result
    call = _inputs(loader, name, kind, value, trace, setup, scan.sequence_length if scan is not None else None)
    if isinstance(call, str) and plan is not None:  # the forward over the prompt that generate runs first
        call = prefill_inputs(plan, setup)
    if isinstance(call, str):
        result.tree = build_tree(value)
        result.memory_unknowns = [UnknownInfo(f"no inputs to estimate memory: {call}", None)]
        return result
    args, kwargs, result.inputs_from = call
    batch = _batch_of(args, kwargs) or 1
    device = device_named(setup["device"])
    result.setup = setup = _weights_precision(_as_traced(setup, batch, args, kwargs, result.inputs_from, device), value)
    allocator, allocator_note = _allocator_conf(loader)
    conv = _convolutions(scan)
    precision, plan_note = setup["precision"], None
    if parallel is not None:
        parallel = complete_plan(parallel, *_world(setup))
        precision, plan_note = traced_precision(parallel, precision)
        if plan_note:  # the setup shows the precision the plan computes in, and why
            where = next((x.source for x in parallel.sources if x.what in ("param_dtype", "precision", "bf16", "fp16")),
                         next((x.source for x in parallel.sources if x.what == "strategy"), "code"))
            result.setup = setup = Setup({**setup.values, "precision": Sourced(precision, where)})
    training = TrainingSetup(batch, precision, setup["optimizer"], device, setup["checkpointing"],
                             conv.value if conv is not None else "heuristics", allocator, parallel)
    est, forward_unknowns, output = estimate_model(loader, value, args, kwargs, training, path)
    if est is not None and conv is not None and (est.train_range or conv.value == "disabled"):
        est.notes.append(CONVOLUTION_NOTES[conv.value].format(conv.text))
    if est is None:  # the forward could not be traced: say why (a shape mismatch has its own finding)
        first = next((u for u in forward_unknowns if not u.reason.startswith("shape mismatch")), None)
        if first is not None:
            result.memory_unknowns = [UnknownInfo(f"no estimate: {first.reason}", first.where)]
    result.tree = build_tree(value, outputs=True)  # the module outputs of this trace
    if est is not None and device is not None and (settings.max_batch or (setup["mode"] != "infer" and not est.fits)):
        # The largest batch whose training step fits (asked for, or training does not fit): a
        # second trace at twice the batch gives each allocation's line.
        args2, kwargs2 = _with_batch(args, batch, 2 * batch), _with_batch(kwargs, batch, 2 * batch)
        doubled, _, _ = estimate_model(loader, value, args2, kwargs2, replace(training, batch_size=2 * batch))
        if doubled is not None:
            est.max_batch = max_batch(est, doubled, device.memory - device.context)
    result.memory = est
    if est is not None and allocator_note:
        est.notes.append(allocator_note)
    if est is not None and plan is not None:
        attach_generation(est, plan, setup)
    if est is not None and scan is not None and scan.accumulation is not None:
        est.notes.append(f"gradient accumulation ({scan.accumulation.text}): the estimate is of one micro-batch "
                         f"of {batch}; accumulating adds no memory, the gradients are kept between steps anyway")
    compiled = scan.compiled_for(variable, _defined_names(trace.source)) if est is not None and scan is not None \
        and trace.source is not None else None
    if est is not None and compiled is not None:
        est.notes.append(f"torch.compile ({compiled.text}): memory estimated as eager; the compiled graph may keep "
                         "less (activation recomputation) or more (CUDA graphs)")
    if est is not None and plan_note:
        est.notes.append(plan_note)
    if est is not None and est.distributed is None and scan is not None and scan.distributed is not None:
        est.notes.append(f"{scan.distributed.value.upper()} ({scan.distributed.text}): how it runs on several GPUs "
                         "was not read; the estimate is for one GPU holding the whole model")
    frontend = frontend_of(value)
    if est is not None and frontend is not None:
        est.notes.extend(frontend.estimate_notes)
    if est is not None and result.tree is not None:
        _attach_layer_memory(result.tree, {lm.path: lm for lm in est.layers})
        est.textbook = _textbook(result.tree, args, kwargs)
    result.output_shape = shape_of(output)
    result.forward_unknowns = dedupe(forward_unknowns)
    return result


CONVOLUTION_NOTES = {
    "benchmark": "{}: each convolution runs the fastest algorithm cuDNN times, whose workspace can be up to "
                 "the largest of its algorithms' (the high end of the peaks' range)",
    "disabled": "{}: convolutions run torch's own kernels, which unroll one image at a time",
}


def _convolutions(scan: Any) -> Any:
    """How the file sets up convolutions (the scan's `convolutions`): cuDNN disabled wins over
    its benchmark mode, which then does not apply."""
    found = scan.convolutions if scan is not None else ()
    return next((f for f in found if f.value == "disabled"), found[0] if found else None)


ALLOC_CONF = "PYTORCH_CUDA_ALLOC_CONF"


def _allocator_conf(loader: Loader) -> tuple[AllocatorConfig, str]:
    """PYTORCH_CUDA_ALLOC_CONF as the analysed code leaves os.environ (the `environment` setting,
    then what the code sets: `os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"`,
    `os.environ.setdefault(...)`), and a note saying where it came from (none for the default)."""
    os_module = loader.modules.get("os")
    environ = os_module.ns.get("environ") if isinstance(os_module, ModuleValue) else None
    # (an `os` module the code never read from is not built: the configured environment is what it holds)
    value = environ.get(ALLOC_CONF) if isinstance(environ, dict) else loader.environment.get(ALLOC_CONF)
    if not isinstance(value, str) or not value.strip():
        return AllocatorConfig(), ""
    where = "the `environment` setting" if loader.environment.get(ALLOC_CONF) == value else "the code's os.environ"
    try:
        conf = AllocatorConfig.parse(value)
    except ValueError as e:
        return AllocatorConfig(), f"{ALLOC_CONF}={value!r} from {where} ignored: {e}"
    if conf == AllocatorConfig():
        return conf, ""
    return conf, f"caching allocator: {conf.describe()} ({ALLOC_CONF} from {where})"


def _as_traced(setup: Setup, batch: int, args: tuple[Any, ...], kwargs: dict[str, Any], origin: str,
               device: Any) -> Setup:
    """The setup as traced: the batch and input shapes the code gave (where the configuration
    did not), the GPU by its full name."""
    values = dict(setup.values)
    if values["batch_size"].value is None:
        values["batch_size"] = Sourced(batch, origin)
    if not values["inputs"].value:
        specs = tuple(InputSpec(tuple(t.shape[1:]), t.dtype) for t in _tensors((args, kwargs))
                      if isinstance(t.shape, tuple) and t.shape and all(isinstance(d, int) for d in t.shape))
        values["inputs"] = Sourced(specs, origin)
    if device is not None:
        values["device"] = Sourced(device.name, values["device"].source)
    return Setup(values)


def _weights_precision(setup: Setup, model: Instance) -> Setup:
    """No precision given anywhere, and the model's floating parameters are bf16 (or fp16), all of
    them or most (by elements) with the rest float32: the model was built or loaded in that dtype
    (transformers 5 loads a checkpoint in its config's dtype by default; peft's adapters over it
    are float32), so its precision is that, from the parameters, not fp32. Parameters already in
    it are not cast again, nor the float32 ones (estimate_model)."""
    if setup.source("precision") != "default":
        return setup
    elements: dict[str, int] = {}
    for _, t in named_tensors(model, "params"):
        if isinstance(t, TensorValue) and t.dtype in FLOAT_DTYPES and isinstance(t.numel(), int):
            elements[t.dtype] = elements.get(t.dtype, 0) + t.numel()
    low = [d for d in elements if d in LOW_NAMES]
    if len(low) != 1 or set(elements) - {low[0], "float32"} or 2 * elements[low[0]] <= sum(elements.values()):
        return setup
    return Setup({**setup.values, "precision": Sourced(LOW_NAMES[low[0]], "the model's parameters")})


def _directive_for(loc: Any, trace: Trace) -> dict[str, Sourced] | None:
    """The `# vramlint: ...` comment on the model's line or the line above."""
    source = trace.source
    if source is None or not isinstance(loc, SourceRef):
        return None
    directives, _ = parse_directives(source.text, source.path)
    if not directives:
        return None
    line = loc.location.line
    lines = source.text.splitlines()
    own = [d for d in directives if d.line == line]
    # The line above counts when it is a comment line of its own (not another statement's tail).
    above = [d for d in directives if d.line == line - 1 and lines[d.line - 1].lstrip().startswith("#")]
    for d in own or above:
        return {k: Sourced(v, f"directive at line {d.line}") for k, v in d.values.items()}
    return None


def _world(setup: Setup) -> tuple[int, str, int, str]:
    """The world size and nodes of the launch, as the setup resolved them (flag, directive,
    configuration, the code's mesh, WORLD_SIZE in the configured environment), else one GPU."""
    world, nodes = setup.values.get("world_size"), setup.values.get("nodes")
    n, n_src = (nodes.value, nodes.source) if nodes is not None and isinstance(nodes.value, int) else (1, "default")
    if world is not None and isinstance(world.value, int) and world.source != "default":
        return world.value, world.source, n, n_src
    return 1, "default (one GPU: set world-size, --world-size or WORLD_SIZE)", n, n_src


def _workspace(loader: Loader, path: str, settings: Settings) -> str:
    """The file's workspace root: the analysis's own (api.script_inputs_for), which every model of
    the file would otherwise look up again on disk."""
    inputs = loader.script_inputs
    if inputs.root is not None and os.path.abspath(inputs.script) == path:
        return inputs.root
    return workspace_root(path, settings.config_file)


def _code_setup(loader: Loader, trace: Trace, model: str) -> dict[str, Sourced]:
    """What the file's training code shows (frontends/training_setup.py): the optimizer
    built on the model's parameters, autocast or a cast to bf16/fp16, the DataLoader's batch,
    gradient checkpointing."""
    out: dict[str, Sourced] = {}
    if trace.source is None:
        return out
    scan = scan_training_setup(trace.source, training_setup_handlers())
    names = _defined_names(trace.source)  # an optimizer built on another model's parameters is not this one's
    for key, found in (("optimizer", scan.optimizer_for(model, names)), ("precision", scan.precision_for(model, names)),
                       ("batch_size", scan.batch_size), ("checkpointing", scan.checkpointing_for(model, names))):
        if found is not None:
            out[key] = Sourced(found.value, f"code: {found.text}")
    if "batch_size" not in out:
        batch, where = _dataloader_batch(loader, trace)  # a batch size the evaluator can compute
        if batch is not None:
            out["batch_size"] = Sourced(batch, f"code: {where}")
    return out


def _defined_names(source: SourceModule) -> tuple[str, ...]:
    """The classes, functions and variables a file defines at the top level (once per version of
    the file: every model of a file 40 classes long asks)."""
    key = ("defined-names", id(source.tree))
    hit = source.node_cache.get(key)  # type: ignore[call-overload]
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    out: list[str] = []
    for stmt in source.tree.body if source.tree is not None else ():
        if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)):
            out.append(stmt.name.value)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                targets = small.targets if isinstance(small, cst.Assign) else \
                    [small] if isinstance(small, cst.AnnAssign) else []
                out.extend(t.target.value for t in targets if isinstance(t.target, cst.Name))
    found = source.node_cache[key] = tuple(out)  # type: ignore[index]
    return found


def _batch_from_call(setup: Setup, loader: Loader, name: str, kind: str, trace: Trace) -> Setup:
    """Input shapes given without a batch size: the batch of the model's call in the file, as
    when that call gives the inputs too (`--input-shape` must not turn its 256 into 1), else 1."""
    if not setup["inputs"] or setup["batch_size"] is not None:
        return setup
    call = _example_call(loader, name, kind, trace)
    own = _batch_of(call[0], call[1]) if call is not None else None
    batch = Sourced(own, call[2]) if call is not None and own is not None else Sourced(1, "default")
    return Setup({**setup.values, "batch_size": batch})


def _inputs(loader: Loader, name: str, kind: str, model: Instance, trace: Trace, setup: Setup,
            sequence: Found[int] | None = None) -> tuple[tuple[Any, ...], dict[str, Any], str] | str:
    """The forward's arguments: configured input shapes, else the first call of the model in the
    file whose arguments are all known (`logits = model(torch.randn(256, 1000))`), else the first
    layer's (with `sequence`, the tokens per sample the training code pads or packs to, for an
    Embedding); the batch size from the setup when it ranks above the code. A string says what is missing."""
    batch = setup["batch_size"]
    told = setup.source("batch_size") not in ("default",)
    if setup["inputs"]:
        problem = forward_arity_problem(model, len(setup["inputs"]), setup.source("inputs"))
        if problem is not None:
            return problem
        b = batch or 1
        args = tuple(TensorValue((b, *spec.shape), spec.dtype) for spec in setup["inputs"])
        origin = setup.source("inputs")
        return args, {}, origin if setup.source("batch_size") in (origin, "default") else \
            f"{origin}, batch {b} from {setup.source('batch_size')}"
    frontend = frontend_of(model)
    own = frontend.model_inputs(model, batch, setup.source("batch_size")) \
        if frontend is not None and frontend.model_inputs is not None else None
    if own is not None:  # the model's own declared inputs (keras.Input...)
        return own  # type: ignore[no-any-return]
    call = _example_call(loader, name, kind, trace) or _script_call(loader, model, kind, trace)
    if call is not None:
        args, kwargs, where = call
        own = _batch_of(args, kwargs)
        if batch is not None and own is not None and batch != own and told:
            args, kwargs = _with_batch(args, own, batch), _with_batch(kwargs, own, batch)
            return args, kwargs, f"{where}, batch {batch} from {setup.source('batch_size')}"
        return args, kwargs, where
    return _first_layer_inputs(model, batch, setup.source("batch_size"), sequence)


def _example_call(loader: Loader, name: str, kind: str,
                  trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any], str] | None:
    if kind != "instance" or trace.mod is None or trace.source is None:
        return None
    for call in call_sites(trace.source, name):
        known = known_call_args(loader, trace.mod, trace.source, call)
        if known is not None and any(isinstance(v, TensorValue) for v in (*known[0], *known[1].values())):
            return known[0], known[1], f"code: the call at line {SourceRef(trace.source, call).statement_location.line}"
    return None


def _script_call(loader: Loader, model: Instance, kind: str,
                 trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any], str] | None:
    """The model's first call with known tensors that the script made as it ran (in `train()`,
    in a loop over a DataLoader...: engine/script_calls.py), with where its data came from. (A
    class is built on its own, not called by the script: its inputs are configured or its first
    layer's, as before; the instance the script calls has the script's.)"""
    ev = loader.evaluator
    hit = ev.script.first_call(model) if ev.script is not None and kind == "instance" else None
    if hit is None or not any(isinstance(v, TensorValue) for v in (*hit.args, *hit.kwargs.values())):
        return None
    where = "code: the call"
    if hit.ref is not None:
        at = hit.ref.statement_location
        own = trace.source is not None and at.path == trace.source.path
        where += f" at line {at.line}" if own else f" at {at.path}:{at.line}"
    data = next((ev.origins.find(t.shape) for t in _tensors((hit.args, hit.kwargs)) if ev.origins.find(t.shape)), None)
    # The batch dimension read from the script's settings (an argparse default, a YAML key) says where.
    read = next((source_of(t.shape[0]) for t in _tensors((hit.args, hit.kwargs))
                 if isinstance(t.shape, tuple) and t.shape and source_of(t.shape[0])), None)
    where += f" (batch: {read})" if read and not data else ""
    return hit.args, hit.kwargs, f"{where}, on {data}" if data else where


def _first_layer_inputs(model: Instance, batch: int | None, batch_source: str,
                        sequence: Found[int] | None = None) -> tuple[tuple[Any, ...], dict[str, Any], str] | str:
    """Inputs read off the first layer when nothing else tells: a Linear takes `in_features`
    floats per sample. Other first layers leave a dimension unknown: the reason says which."""
    first = next((m for _, m in named_modules(model) if not state_of(m).modules and state_of(m).params), None)
    hint = "give their shapes (--input-shape, `inputs` in the configuration) or call the model in the file"
    if first is None:
        return hint
    cls = first.cls.name
    if cls == "Linear" and isinstance(first.attrs.get("in_features"), int):
        n = first.attrs["in_features"]
        if batch is None:
            return (f"the first layer, Linear({n}, ...), gives the sample shape but nothing gives the batch size "
                    "(--batch-size, `batch-size` in the configuration, or a DataLoader(batch_size=...) in the file)")
        return (TensorValue((batch, n), "float32"),), {}, f"the first layer, Linear({n}, ...), batch {batch} from {batch_source}"
    if cls == "Embedding":
        if sequence is not None:
            b = batch or 1
            return ((TensorValue((b, sequence.value), "int64"),), {},
                    f"code: {sequence.text}, {sequence.value} tokens per sample, batch {b} from {batch_source}")
        return f"the first layer is an Embedding: give the sequence length (--input-shape T --input-dtype int64); {hint}"
    if cls.startswith("Conv"):
        return f"the first layer is a {cls}: give the sample shape (--input-shape C,H,W); {hint}"
    return hint


def _dataloader_batch(loader: Loader, trace: Trace) -> tuple[int | None, str]:
    """`DataLoader(..., batch_size=N)` in the file, with N known."""
    if trace.mod is None or trace.source is None:
        return None, ""
    for call in call_sites(trace.source, "DataLoader"):
        node = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "batch_size"),
                    call.args[1].value if len(call.args) > 1 and call.args[1].keyword is None else None)
        if node is None:
            continue
        try:
            n = loader.evaluator.eval(node, Scope(trace.mod.ns, None, trace.mod.ns, trace.source))
        except (RaiseSignal, BudgetExceeded, Undecided, RecursionError):
            continue
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            return n, f"DataLoader(batch_size={n}) at line {SourceRef(trace.source, call).statement_location.line}"
    return None, ""


def _with_batch(v: Any, batch: int, new: int) -> Any:
    """The arguments with their batch dimension (the first, of size `batch`) made `new`."""
    if isinstance(v, TensorValue) and isinstance(v.shape, tuple) and v.shape and v.shape[0] == batch:
        return TensorValue((new, *v.shape[1:]), v.dtype)
    if isinstance(v, (tuple, list)):
        return type(v)(_with_batch(x, batch, new) for x in v)
    if isinstance(v, dict):
        return {k: _with_batch(x, batch, new) for k, x in v.items()}
    return v


def _batch_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    # Also inside containers: a training step's `(x, y)` batch (Lightning's `training_step(batch)`).
    for v in _tensors((args, kwargs)):
        if isinstance(v.shape, tuple) and v.shape and isinstance(v.shape[0], int):
            return v.shape[0]
    return None


def _attach_layer_memory(node: ModuleNode, saved: dict[str, LayerMemory]) -> int:
    """Each node's kept-for-backward bytes: its own ops' (`own_saved_bytes`: a container's F.relu
    or torch.cat) plus its children's."""
    mine = saved.get(node.path)
    own = mine.saved_bytes if mine is not None else 0
    total = own + sum(_attach_layer_memory(c, saved) for c in node.children)
    node.saved_bytes = total
    node.own_saved_bytes = own
    node.own_ops = mine.ops if mine is not None else ()
    return total


def _textbook(tree: ModuleNode, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Textbook | None:
    """The hand count: inputs plus the outputs of the layers that have weights (forward), and one
    gradient per such output (backward)."""
    inputs = 0
    for v in (*args, *kwargs.values()):
        if isinstance(v, TensorValue):
            n = v.numel()
            if not isinstance(n, int):
                return None
            inputs += n
    outputs = 0
    layers = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.children or not node.params or node.output_shape is None:
            continue
        n = 1
        for d in node.output_shape:
            if d is None:
                return None
            n *= d
        outputs += n
        layers += 1
    return Textbook(inputs + outputs, outputs, layers)
