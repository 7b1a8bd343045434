"""Lightning's `parallel_plan`: the strategy of the Trainer that fits the model (`trainer.fit(model)`
keeps the trainer on it: trainer.py), read into a ParallelPlan with the torch frontend's readers.

`Trainer(strategy="ddp" | "fsdp" | DDPStrategy(...) | FSDPStrategy(...), devices=N, num_nodes=M)`:
the world is N x M when both are in the code. `strategy="auto"` (the default) with more than one
device is DDP, as Lightning picks it. DDPStrategy's keyword arguments are DDP's;
FSDPStrategy's are FSDP1's (`auto_wrap_policy` a set of layer classes or a policy,
`sharding_strategy` a name or a ShardingStrategy, `cpu_offload` True or CPUOffload, `device_mesh`
(replicate, shard) for HYBRID_SHARD), its mixed precision the Trainer's `precision`
(lightning/fabric/plugins/precision/fsdp.py, FSDPPrecision.mixed_precision_config). DeepSpeed
strategies are not read here; ModelParallelStrategy's `fully_shard` / `parallelize_module` calls in
`configure_model` are the torch frontend's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Instance
from vramlint.frontends.torch.distributed import Mark, call_text, fsdp1_units, where
from vramlint.frontends.torch.parallel_plan import plan_from_marks
from vramlint.memory.distributed import ParallelPlan, Sourced

if TYPE_CHECKING:
    from vramlint.frontends.interface import PlanRequest

# Lightning's registered strategy names (lightning/pytorch/strategies/ddp.py, fsdp.py register_strategies).
DDP_NAMES = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")
# FSDPPrecision.mixed_precision_config: precision -> (param_dtype, reduce_dtype); None: unchanged.
FSDP_PRECISION = {"16-mixed": (None, "float16"), "bf16-mixed": (None, "bfloat16"),
                  "16-true": ("float16", "float16"), "bf16-true": ("bfloat16", "bfloat16"),
                  "16": (None, "float16"), "bf16": (None, "bfloat16")}


def parallel_plan(request: PlanRequest) -> ParallelPlan | None:
    """Frontend.parallel_plan: None when the model is not fitted by a Trainer that runs on several GPUs."""
    model = request.model
    trainer = model.attrs.get("_trainer") if isinstance(model, Instance) else None
    if not isinstance(trainer, Instance):
        return None
    k = trainer.attrs
    ref = k.get("_created_at")
    shown = call_text(ref, "Trainer")
    strategy = k.get("strategy", "auto")
    kind, args = _strategy(strategy, k.get("world_size"))
    if kind is None:
        return None
    if kind == "fsdp1":
        args.update(fsdp1_units(request.evaluator, model, args))
    units = args.pop("units", ("",))
    mark = Mark(kind, 0, args, ref, shown, units=units, why=args.pop("why", ""))
    plan = plan_from_marks(request.source.path, [("", mark)])
    source = f"code: {shown} {where(ref, request.source.path)}".rstrip()
    plan = replace(plan, sources=tuple(Sourced(s.what, s.value, source) for s in plan.sources))
    return _world(_precision(plan, args, k.get("precision"), source), k, source)


def _strategy(strategy: Any, world: Any) -> tuple[str | None, dict[str, Any]]:
    """("ddp" | "fsdp1" | None, the arguments DDP / FSDP get)."""
    if isinstance(strategy, str):
        name = strategy.lower()
        if name in DDP_NAMES or name.startswith(tuple(f"{n}_find_unused_parameters_" for n in DDP_NAMES)):
            return "ddp", {"find_unused_parameters": name.endswith("_true")}
        if name in ("fsdp", "fsdp_cpu_offload"):
            return "fsdp1", {"cpu_offload": name == "fsdp_cpu_offload"}
        if name == "auto" and isinstance(world, int) and world > 1:
            return "ddp", {}  # Lightning's choice for several devices
        return None, {}
    if isinstance(strategy, Instance) and strategy.cls.name in ("DDPStrategy", "FSDPStrategy"):
        args = {n: v for n, v in strategy.attrs.items() if not n.startswith("_")}
        if strategy.cls.name == "DDPStrategy":
            return "ddp", args
        args.setdefault("sharding_strategy", "FULL_SHARD")
        return "fsdp1", args
    return None, {}


def _precision(plan: ParallelPlan, args: dict[str, Any], precision: Any, source: str) -> ParallelPlan:
    """FSDP's mixed precision from the Trainer's `precision` when FSDPStrategy has none of its own."""
    if plan.strategy != "fsdp1" or args.get("mixed_precision") is not None:
        return plan
    dtypes = FSDP_PRECISION.get(str(precision))
    if dtypes is None:
        return plan
    shown = f"precision={precision!r}"
    return replace(plan, param_dtype=dtypes[0], reduce_dtype=dtypes[1], sources=(
        *plan.sources, Sourced("reduce_dtype", dtypes[1], f"{source} ({shown}: FSDPPrecision)")))


def _world(plan: ParallelPlan, k: dict[str, Any], source: str) -> ParallelPlan:
    """devices x num_nodes; the shard group of a full shard is the world, of a hybrid shard a node
    (or the device_mesh's last dimension)."""
    world, nodes = k.get("world_size"), k.get("num_nodes", 1)
    if not isinstance(world, int) or isinstance(world, bool):
        return replace(plan, notes=(*plan.notes, "the Trainer's devices are not in the code: world size from the setup"))
    nodes = nodes if isinstance(nodes, int) and nodes > 0 else 1
    shown = f"{world // nodes} devices x {nodes} node{'s' if nodes > 1 else ''}"
    sources = (*plan.sources, Sourced("world size", str(world), f"{source} ({shown})"))
    shard = plan.shard_size
    if plan.strategy == "fsdp1" and shard == 0:
        strategy = k.get("strategy")
        mesh = strategy.attrs.get("device_mesh") if isinstance(strategy, Instance) else None
        hybrid = "hybrid" in plan.label
        shard = mesh[-1] if isinstance(mesh, tuple) and mesh and isinstance(mesh[-1], int) else \
            world // nodes if hybrid else world
    notes = tuple(n for n in plan.notes if "node's GPUs" not in n)
    return replace(plan, world_size=world, nodes=nodes, shard_size=shard, sources=sources, notes=notes)
