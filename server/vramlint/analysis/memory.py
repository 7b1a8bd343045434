"""The memory estimate of a built model: trace one training forward on the tape, add the loss,
and hand the recording to the memory model (vramlint.memory)."""

from __future__ import annotations

from typing import Any

from vramlint.analysis.models import _info, _run
from vramlint.analysis.results import UnknownInfo
from vramlint.engine.loader import Loader
from vramlint.engine.values import MISSING, Instance, Unknown
from vramlint.frontends.torch.module import named_modules, named_tensors, state_of
from vramlint.frontends.torch.tensors import FLOAT_DTYPES, TensorValue
from vramlint.memory.estimate import MemoryEstimate, TrainingSetup, estimate_from_tape
from vramlint.memory.tape import Tape, _tensors, reachable_tensors

LOW = {"bf16": "bfloat16", "fp16": "float16", "amp-bf16": "bfloat16", "amp-fp16": "float16"}


def estimate_model(loader: Loader, model: Instance, args: tuple[Any, ...], kwargs: dict[str, Any],
                   setup: TrainingSetup) -> tuple[MemoryEstimate | None, list[UnknownInfo], Any]:
    """Trace `model(*args, **kwargs)` (the batch included in the shapes) for one training step."""
    ev = loader.evaluator
    notes: list[str] = []
    params = named_tensors(model, "params")
    buffers = named_tensors(model, "buffers")
    restore: list[tuple[TensorValue, str]] = []
    pure = setup.precision in ("bf16", "fp16")
    if pure:  # model.to(dtype): parameters and float buffers
        for _, t in params + buffers:
            if isinstance(t, TensorValue) and t.dtype in FLOAT_DTYPES:
                restore.append((t, t.dtype))
                t.dtype = LOW[setup.precision]
        args = tuple(_cast_input(a, LOW[setup.precision]) for a in args)
        kwargs = {k: _cast_input(v, LOW[setup.precision]) for k, v in kwargs.items()}
    tape = Tape(autocast=LOW[setup.precision] if setup.precision.startswith("amp-") else None)
    tape.module_paths = {id(m): p for p, m in named_modules(model)}
    for t in _tensors((args, kwargs)):
        if id(t) not in tape.tensors:
            tape.add_input(t)
    for _, m in named_modules(model):
        state_of(m).output = MISSING
    if setup.checkpointing:
        enable, _ = model.cls.lookup("gradient_checkpointing_enable")
        if enable is not MISSING:
            _run(loader, lambda: ev.call(ev.protocol.bind_descriptor(enable, model.cls, model), (), {}))
        else:
            notes.append("checkpointing was asked for but the model has no gradient_checkpointing_enable(): "
                         "only torch.utils.checkpoint calls in its forward are modelled")
    ev.tape = tape
    try:
        value, sink, error = _run(loader, lambda: ev.call(model, args, kwargs))
        unknowns = [_info(u) for u in sink] + ([error] if error is not None else [])
        if error is None and not isinstance(value, Unknown):
            tape.forward_end = len(tape.ops)
            loss_note = _add_loss(tape, value)
            if loss_note:
                notes.append(loss_note)
        param_sizes: list[Any] = [(t.numel(), _bytes(t), bool(t.requires_grad), t.shape) for _, t in params
                                  if isinstance(t, TensorValue)]
        buffer_bytes = sum(_bytes(t) for _, t in buffers if isinstance(t, TensorValue))
    finally:
        ev.tape = None
        for t, dt in restore:
            t.dtype = dt
    if error is not None or isinstance(value, Unknown):
        return None, unknowns, value
    # What the output holds stays alive until the loss is taken (a KV cache, hidden states...).
    output_sids = {tape.tensors[id(t)].sid for t in reachable_tensors(value) if id(t) in tape.tensors}
    if any(not isinstance(p[0], int) for p in param_sizes):
        return None, unknowns + [UnknownInfo("a parameter of unknown size", None)], value
    est = estimate_from_tape(tape, setup, param_sizes, buffer_bytes, output_sids, notes)
    if tape.unmodelled:
        names = ", ".join(f"{k} x{v}" for k, v in sorted(tape.unmodelled.items()))
        est.notes.append(f"ops without a saved-tensor rule, assumed to keep their inputs: {names}")
    return est, unknowns, value


def _bytes(t: TensorValue) -> int:
    from vramlint.memory.tape import tensor_bytes

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
        if v is MISSING and isinstance(value.attrs.get("__dict_items__"), dict):
            return value.attrs["__dict_items__"].get(key)
        return None if v is MISSING else v
    return None
