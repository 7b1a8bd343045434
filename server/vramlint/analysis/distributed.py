"""Training on several GPUs: the plan a frontend reads from the file (DDP, FSDP, ZeRO, tensor
parallelism), completed with the world size the setup gives when the code does not say it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vramlint.analysis.running import module_level, run_budgeted
from vramlint.engine.loader import Loader
from vramlint.engine.values import Instance
from vramlint.frontends.interface import PlanRequest
from vramlint.frontends.registry import parallel_plan
from vramlint.memory.distributed import ParallelPlan, Sourced
from vramlint.settings import Sourced as SetupSourced

LOW_PRECISION = {"bfloat16": "bf16", "float16": "fp16"}


def find_parallel_plan(loader: Loader, trace: Any, name: str, model: Instance, scan: Any,
                       root: str) -> ParallelPlan | None:
    """How the file trains the model on several GPUs, as a frontend reads it (None: one GPU)."""
    source, mod = trace.source, trace.mod
    if source is None or mod is None:
        return None
    request = PlanRequest(loader.evaluator, model, name, source, scan, root, module_level(loader, source, mod))
    try:
        plan, _, _ = run_budgeted(loader, lambda: parallel_plan(request))
    except Exception:  # noqa: BLE001 - a bug reading the launch costs the per-GPU figures, not the file's analysis
        return None
    return plan if isinstance(plan, ParallelPlan) else None


def code_world_size(plan: ParallelPlan | None) -> dict[str, SetupSourced]:
    """The world size the code states (a device mesh's shape, Lightning's devices x num_nodes), as a
    setup layer below the configuration and the flags."""
    if plan is None or plan.world_size <= 0:
        return {}
    where = next((s.source for s in plan.sources if s.what == "world size"), "code")
    return {"world_size": SetupSourced(plan.world_size, where)}


def complete_plan(plan: ParallelPlan, world: int, world_source: str, nodes: int, nodes_source: str) -> ParallelPlan:
    """The plan with the world size filled in, and what depends on it: a full shard is over every
    rank, a hybrid one over a node's GPUs, tensor parallelism over every rank unless a mesh said."""
    world = max(world, 1)
    nodes = nodes if nodes > 0 and world % nodes == 0 else 1
    shard = plan.shard_size
    if plan.strategy in ("fsdp1", "fsdp2", "deepspeed") and plan.stage >= 1 and shard <= 0:
        shard = world // nodes if "hybrid" in plan.label or "hsdp" in plan.label else world // max(plan.tp_size, 1)
    elif plan.strategy == "ddp" or shard <= 0:
        shard = 1 if plan.stage == 0 else world
    tp = plan.tp_size if plan.tp_size > 0 else world
    sources = [s for s in plan.sources if s.what not in ("world size", "nodes")]
    sources.insert(0, Sourced("world size", str(world), world_source))
    if nodes > 1:
        sources.insert(1, Sourced("nodes", str(nodes), nodes_source))
    return replace(plan, world_size=world, nodes=nodes, shard_size=min(max(shard, 1), world),
                   tp_size=tp if plan.tp_plan else 1, sources=tuple(sources))


def traced_precision(plan: ParallelPlan, precision: str) -> tuple[str, str | None]:
    """The precision the forward runs in under the plan: FSDP's mixed-precision policy casts the
    gathered parameters to `param_dtype` (the shards, gradients and optimizer state keep theirs),
    DeepSpeed's bf16/fp16 runs the model in it (fp32 master weights in the optimizer)."""
    low = plan.param_dtype if plan.strategy in ("fsdp1", "fsdp2") else plan.low_precision
    if precision == "fp32" and low in LOW_PRECISION:
        what = "mixed precision" if plan.strategy != "deepspeed" else "DeepSpeed's"
        return LOW_PRECISION[low], (f"{plan.label}: {what} {low}: the forward and backward compute in {low}; "
                                    "sharded parameters, gradients and optimizer state are kept in float32")
    return precision, None
