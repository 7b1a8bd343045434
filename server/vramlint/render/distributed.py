"""What every renderer says of an estimate on several GPUs (memory/distributed.py): the words that
go with each byte figure ("per GPU, 8 ranks (fsdp2 full-shard)"), the plan's facts with their
sources, and the terms the plan adds (communication buffers, state offloaded to the host)."""

from __future__ import annotations

import dataclasses
from typing import Any

from vramlint.memory.distributed import DistributedMemory, ParallelPlan
from vramlint.memory.estimate import MemoryEstimate
from vramlint.render.units import fmt_bytes

# The plan's facts that the setup rows show (with their sources); the other sources are details.
SHOWN = ("strategy", "world size", "nodes")
# ParallelPlan's fields that say what the plan is rather than one of its options.
PLAN_FIELDS = ("strategy", "world_size", "nodes", "shard_size", "stage", "label", "units", "tp_plan", "sources",
               "notes")


def strategy(plan: ParallelPlan) -> str:
    """"fsdp2 full-shard", else the strategy's name."""
    return plan.label or plan.strategy


def per_gpu(e: MemoryEstimate) -> str:
    """What each byte figure of `e` is: "per GPU, 8 ranks (fsdp2 full-shard)"; "" on one GPU."""
    d = e.distributed
    if d is None:
        return ""
    p = d.plan
    ranks = f"{p.world_size} rank{'s' if p.world_size != 1 else ''}"
    nodes = f" on {p.nodes} nodes" if p.nodes > 1 else ""
    return f"per GPU, {ranks}{nodes} ({strategy(p)})"


def plan_of(e: MemoryEstimate | None) -> ParallelPlan | None:
    """The plan of a per-GPU estimate (None: one GPU, or no estimate)."""
    return e.distributed.plan if e is not None and e.distributed is not None else None


def source_of(plan: ParallelPlan, what: str, fallback: str = "code") -> str:
    return next((s.source for s in plan.sources if s.what == what), fallback)


def plan_rows(plan: ParallelPlan) -> list[tuple[str, str, str]]:
    """(label, value, source) of the strategy, the world size and the nodes (when more than one),
    for the setup of every renderer."""
    rows = [("strategy", strategy(plan), source_of(plan, "strategy")),
            ("world size", str(plan.world_size), source_of(plan, "world size", "default"))]
    if plan.nodes > 1:
        rows.append(("nodes", str(plan.nodes), source_of(plan, "nodes", "default")))
    return rows


def plan_details(plan: ParallelPlan) -> list[tuple[str, str, str]]:
    """(what, value, source) of every other fact the code or the configuration gave."""
    return [(s.what, s.value, s.source) for s in plan.sources if s.what not in SHOWN]


def summary_line(d: DistributedMemory) -> str:
    """The plan's own figures: the communication buffers, the host's share, one GPU's peak."""
    parts = [f"communication buffers {fmt_bytes(d.communication)} at the peak (largest {fmt_bytes(d.communication_peak)})"]
    if d.host:
        parts.append(f"offloaded to the host {fmt_bytes(d.host)} per rank")
    if d.largest_rank is not None:
        parts.append(f"largest rank's peak {fmt_bytes(d.largest_rank)}")
    parts.append(f"the whole model on one GPU: training peak {fmt_bytes(d.one_gpu_peak)}")
    return "; ".join(parts)


def options(plan: ParallelPlan) -> dict[str, Any]:
    """The plan's options that differ from ParallelPlan's defaults (DDP's bucket_cap_mb, FSDP's
    reshard_after_forward, ZeRO's offload...), by field name."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(plan):
        if f.name in PLAN_FIELDS:
            continue
        value = getattr(plan, f.name)
        if value != f.default:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def distributed_json(d: DistributedMemory) -> dict[str, Any]:
    """`memory.distributed` of the JSON document (docs/json.md)."""
    p = d.plan
    return {
        "plan": {"strategy": p.strategy, "label": strategy(p), "world_size": p.world_size, "nodes": p.nodes,
                 "shard_size": p.shard_size, "stage": p.stage, "units": list(p.units), "options": options(p),
                 "tp_plan": [{"module": module, "style": style} for module, style in p.tp_plan]},
        "sources": [{"what": s.what, "value": s.value, "source": s.source} for s in p.sources],
        "communication": d.communication,
        "communication_peak": d.communication_peak,
        "host": d.host,
        "one_gpu_peak": d.one_gpu_peak,
        "largest_rank": d.largest_rank,
        "terms": [{"what": what, "bytes": n, "source": source} for what, n, source in d.terms],
        "notes": list(p.notes),
    }
