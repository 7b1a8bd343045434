"""transformers' `parallel_plan`: `TrainingArguments(fsdp=..., fsdp_config=...)` of the Trainer that
trains the model, read into a ParallelPlan as transformers 5.17 and accelerate 1.16 apply it.

transformers (training_args.py `_process_fsdp_args`, `_apply_legacy_fsdp_to_config`): `fsdp=True`
or the legacy string ("full_shard auto_wrap offload") / list; `fsdp_config` a dict (keys with or
without the `fsdp_` prefix): `version` (2, the default: FSDP2's fully_shard; 1: FSDP1),
`reshard_after_forward` (legacy "full_shard" True, "shard_grad_op" False), `cpu_offload`,
`auto_wrap_policy` ("TRANSFORMER_BASED_WRAP", the default, with `transformer_layer_cls_to_wrap`
or else the model's `_no_split_modules`; "SIZE_BASED_WRAP" with `min_num_params`; "NO_WRAP").
`bf16=True` / `fp16=True` give the FSDP mixed-precision policy's param and reduce dtypes
(accelerate's FullyShardedDataParallelPlugin.set_mixed_precision).

FSDP2 units as accelerate's `fsdp2_prepare_model` makes them (utils/fsdp_utils.py): the modules the
policy picks, bottom-up (`get_module_children_bottom_up`); the input embeddings (when not tied to
the output's); the tail group [final norm, output embeddings], the final norm being the base
model's last direct child whose class name has "Norm" (`_find_final_norm`), with
reshard_after_forward=False; the root. The world size is the launcher's (0: the setup's).
A fsdp_config given as a JSON file is not read (a note says so).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.signals import BudgetExceeded, RaiseSignal, Undecided
from vramlint.engine.values import Instance, Unknown
from vramlint.frontends.torch.distributed import (
    Mark,
    call_text,
    fsdp1_units,
    parameter_numel,
    where,
)
from vramlint.frontends.torch.module import is_module, state_of
from vramlint.frontends.torch.parallel_plan import plan_from_marks
from vramlint.memory.distributed import ParallelPlan, Sourced

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.frontends.interface import PlanRequest

LEGACY_SHARDING = {"full_shard": True, "shard_grad_op": False}
FSDP1_ONLY = ("hybrid_shard", "hybrid_shard_zero2", "no_shard")


class NotRead(Exception):
    """Something the plan needs is not known: the reason, for a note."""


def parallel_plan(request: PlanRequest) -> ParallelPlan | None:
    """Frontend.parallel_plan: None unless the file's TrainingArguments asks for FSDP for this model."""
    found = getattr(request.scan, "distributed", None)
    call = found.ref.node if found is not None else None
    if found is None or found.value != "fsdp" or not isinstance(call, cst.Call):
        return None
    kw = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if "fsdp" not in kw or found.target not in (None, request.name.rsplit(".", 1)[-1]):
        return None
    ref = found.ref
    shown = call_text(ref, "TrainingArguments")
    source = f"code: {shown} {where(ref, request.source.path)}".rstrip()
    notes: list[str] = []
    config = _config(request, kw, notes)
    fsdp = _value(request, kw["fsdp"])
    try:
        _legacy(fsdp, config)
    except NotRead as err:
        return _unread(source, str(err))
    version = config.get("version", 2)
    plan = _fsdp2(request, config, source, notes) if version == 2 else _fsdp1(request, config, shown, source, notes)
    dtype = _mixed_precision(request, kw)
    if dtype is not None:
        plan = replace(plan, param_dtype=dtype, reduce_dtype=dtype,
                       sources=(*plan.sources, Sourced("param_dtype", dtype, f"{source} (bf16/fp16: accelerate's policy)")))
    return replace(plan, notes=(*plan.notes, *notes))


def _unread(source: str, why: str) -> ParallelPlan:
    return ParallelPlan(strategy="fsdp2", world_size=0, shard_size=0, stage=3, label="fsdp2 full-shard",
                        sources=(Sourced("strategy", "fsdp2 full-shard", source),), notes=(why,))


def _value(request: PlanRequest, node: cst.BaseExpression) -> Any:
    """The expression's value at the module level, else its literal value, else an Unknown."""
    v = request.value_of(node)
    if not isinstance(v, Unknown):
        return v
    try:
        return ast.literal_eval(cst.Module(body=[]).code_for_node(node))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return v


def _config(request: PlanRequest, kw: dict[str, cst.BaseExpression], notes: list[str]) -> dict[str, Any]:
    """fsdp_config as `_process_fsdp_args` normalises it (the `fsdp_` prefix dropped)."""
    if "fsdp_config" not in kw:
        return {}
    v = _value(request, kw["fsdp_config"])
    if isinstance(v, str):
        notes.append(f"fsdp_config={v!r}: a JSON file is not read; transformers' defaults assumed")
        return {}
    if not isinstance(v, dict):
        notes.append(f"fsdp_config is not known ({v.reason if isinstance(v, Unknown) else type(v).__name__}): "
                     "transformers' defaults assumed")
        return {}
    return {(k[5:] if isinstance(k, str) and k.startswith("fsdp_") else k): x for k, x in v.items()}


def _legacy(fsdp: Any, config: dict[str, Any]) -> None:
    """`_apply_legacy_fsdp_to_config`: the string / list options into fsdp_config."""
    if fsdp is True or fsdp is None:
        return
    items = fsdp.split() if isinstance(fsdp, str) else list(fsdp) if isinstance(fsdp, (list, tuple)) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise NotRead(f"fsdp={fsdp!r} is not known: FSDP2 full shard assumed")
    version = config.get("version", 2)
    for item in items:
        if item in LEGACY_SHARDING or item in FSDP1_ONLY:
            config.setdefault("reshard_after_forward", LEGACY_SHARDING.get(item, item) if version == 2 else item)
        elif item == "offload":
            config.setdefault("cpu_offload", True)


def _mixed_precision(request: PlanRequest, kw: dict[str, cst.BaseExpression]) -> str | None:
    for key, dtype in (("bf16", "bfloat16"), ("fp16", "float16")):
        if key in kw and _value(request, kw[key]) is True:
            return dtype
    return None


# ---------------------------------------------------------------------- the units
def _call(ev: Evaluator, obj: Any, name: str) -> Any:
    """obj.name() through the evaluator; None when it cannot be called or raises."""
    try:
        fn = ev.protocol.getattr(obj, name, None)
        return ev.call(fn, (), {}) if fn is not None and not isinstance(fn, Unknown) else None
    except (RaiseSignal, BudgetExceeded, Undecided, RecursionError):
        return None


def _bottom_up(model: Instance) -> list[tuple[str, Instance]]:
    """accelerate's get_module_children_bottom_up(model, return_fqns=True)."""
    stack: list[tuple[str, Instance]] = [("", model)]
    ordered: list[tuple[str, Instance]] = []
    while stack:
        path, module = stack.pop()
        for name, child in state_of(module).modules.items():
            if is_module(child):
                stack.append((f"{path}.{name}" if path else name, child))
        ordered.append((path, module))
        if len(ordered) > 100_000:
            raise NotRead("the module tree is too large to order")
    return ordered[::-1]


def _classes_to_wrap(model: Instance, config: dict[str, Any]) -> set[str]:
    """The transformer policy's class names: transformer_layer_cls_to_wrap, else the model's
    `_no_split_modules` that name one of its modules."""
    names = config.get("transformer_layer_cls_to_wrap")
    present = {m.cls.name for _, m in _bottom_up(model)}
    if isinstance(names, str):
        names = [names]
    if names is None:
        found = model.cls.lookup("_no_split_modules")[0]
        names = [n for n in (found if isinstance(found, (list, tuple, set)) else ()) if n in present]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise NotRead(f"transformer_layer_cls_to_wrap {names!r} is not known")
    missing = [n for n in names if n not in present]
    if missing:
        raise NotRead(f"the transformer layer class {missing[0]} is not in the model (accelerate raises)")
    return set(names)


def _numel(module: Instance) -> int:
    n = parameter_numel(module)
    if isinstance(n, str):
        raise NotRead(n)
    return n


def _policy_units(model: Instance, config: dict[str, Any]) -> list[str]:
    """The modules `fsdp2_prepare_auto_wrap_policy`'s policy picks, bottom-up, the root apart."""
    policy = config.get("auto_wrap_policy", "TRANSFORMER_BASED_WRAP")
    modules = _bottom_up(model)[:-1]
    if policy == "NO_WRAP":
        return []
    if policy == "SIZE_BASED_WRAP":
        least = config.get("min_num_params", 0)
        if not isinstance(least, int) or least <= 0:
            return []  # accelerate's policy needs min_num_params > 0 from transformers
        picked = [p for p, m in modules if _numel(m) > least]
    elif policy == "TRANSFORMER_BASED_WRAP":
        names = _classes_to_wrap(model, config)
        picked = [p for p, m in modules if m.cls.name in names or any(c.name in names for c in m.cls.mro)]
    else:
        raise NotRead(f"auto_wrap_policy {policy!r} is not one transformers knows")
    return list(dict.fromkeys(picked))  # a module shared by two parents once


def _path_of(model: Instance, module: Any) -> str | None:
    return next((p for p, m in _bottom_up(model) if m is module), None) if is_module(module) else None


def _final_norm(ev: Evaluator, model: Instance) -> Any:
    """accelerate's _find_final_norm: the base model's last direct child whose class name has "Norm"."""
    prefix = _attr(ev, model, "base_model_prefix")
    base = _attr(ev, model, prefix) if isinstance(prefix, str) and prefix else model
    if not is_module(base):
        return None
    return next((c for c in reversed(list(state_of(base).modules.values())) if is_module(c) and "Norm" in c.cls.name),
                None)


def _attr(ev: Evaluator, obj: Any, name: str) -> Any:
    try:
        return ev.protocol.getattr(obj, name, None)
    except (RaiseSignal, BudgetExceeded, Undecided, RecursionError):
        return None


def _fsdp2_units(ev: Evaluator, model: Instance, config: dict[str, Any]) -> Iterator[str]:
    units = _policy_units(model, config)
    yield from units
    embed_in, embed_out = _call(ev, model, "get_input_embeddings"), _call(ev, model, "get_output_embeddings")
    w_in, w_out = (state_of(e).params.get("weight") if is_module(e) else None for e in (embed_in, embed_out))
    tied = w_in is not None and w_in is w_out
    taken = set(units)
    path = _path_of(model, embed_in)
    if not tied and path is not None and path not in taken:
        taken.add(path)
        yield path
    tail = (_final_norm(ev, model), embed_in, embed_out) if tied else (_final_norm(ev, model), embed_out)
    for module in tail:
        path = _path_of(model, module)
        if path is not None and path not in taken:  # one group, not resharded after forward
            taken.add(path)
            yield path
    yield ""


def _fsdp2(request: PlanRequest, config: dict[str, Any], source: str, notes: list[str]) -> ParallelPlan:
    reshard = config.get("reshard_after_forward", True)
    reshard = reshard if isinstance(reshard, bool) else str(reshard).lower() == "true"
    offload = config.get("cpu_offload", False) is True
    args = {"reshard_after_forward": reshard} if "reshard_after_forward" in config else {}
    try:
        units: tuple[str, ...] | None = tuple(_fsdp2_units(request.evaluator, request.model, config))
    except NotRead as err:
        units = None
        notes.append(f"the FSDP units are not known: {err}")
    marks = [(u, Mark("fsdp2", i, args, None, "TrainingArguments(...)")) for i, u in enumerate(units or ("",))]
    plan = plan_from_marks(request.source.path, marks)
    sources = [Sourced(s.what, s.value, source) for s in plan.sources]
    if offload:
        sources.append(Sourced("offload_params", "cpu", source))
    label = plan.label + (" + cpu offload" if offload else "")
    sources[0] = Sourced("strategy", label, source)
    return replace(plan, units=units or (), label=label, offload_params="cpu" if offload else None,
                   offload_optimizer="cpu" if offload else None, sources=tuple(sources),
                   notes=tuple(n for n in plan.notes if not n.startswith("reshard_after_forward differs")))


def _fsdp1(request: PlanRequest, config: dict[str, Any], shown: str, source: str, notes: list[str]) -> ParallelPlan:
    """FSDP1 (fsdp_config version 1, deprecated): FullyShardedDataParallel with the transformer
    policy's classes (a ModuleWrapPolicy's units: the same modules, post-order)."""
    strategy = str(config.get("reshard_after_forward", "full_shard")).upper()
    args: dict[str, Any] = {"sharding_strategy": strategy, "cpu_offload": config.get("cpu_offload", False) is True}
    model = request.model
    try:
        if config.get("auto_wrap_policy", "TRANSFORMER_BASED_WRAP") != "TRANSFORMER_BASED_WRAP":
            raise NotRead("FSDP1 with a policy other than TRANSFORMER_BASED_WRAP is not read")
        names = _classes_to_wrap(model, config)
        classes = {m.cls for _, m in _bottom_up(model) if m.cls.name in names}
        extra = fsdp1_units(request.evaluator, model, {"auto_wrap_policy": classes} if classes else {})
    except NotRead as err:
        extra = {"units": None, "why": str(err)}
    mark = Mark("fsdp1", 0, args, None, shown, units=extra.get("units"), why=extra.get("why", ""))
    plan = plan_from_marks(request.source.path, [("", mark)])
    return replace(plan, sources=tuple(Sourced(s.what, s.value, source) for s in plan.sources))

