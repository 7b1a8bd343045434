"""A model's setup as rows (label, value as text or None, where it came from), in one order, for
every renderer that lists it (`vramlint report`, the editor's hover)."""

from __future__ import annotations

from collections.abc import Iterator

from vramlint.memory.distributed import ParallelPlan
from vramlint.render.distributed import plan_rows
from vramlint.settings import Setup

ROWS = (("batch_size", "batch size"), ("inputs", "inputs"), ("precision", "precision"), ("optimizer", "optimizer"),
        ("device", "GPU"), ("mode", "mode"), ("checkpointing", "checkpointing"), ("context", "context"),
        ("world_size", "world size"), ("nodes", "nodes"))
WORLD = ("world_size", "nodes")


def one_gpu_default(setup: Setup, key: str) -> bool:
    """A world size or node count of 1 that nothing gave: the one-GPU estimate says nothing of it."""
    return key in WORLD and key in setup.values and setup[key] == 1 and setup.source(key) == "default"


def setup_rows(setup: Setup, plan: ParallelPlan | None = None) -> Iterator[tuple[str, str | None, str]]:
    """No inputs: no row (the trace found none to show); a value neither given nor read from the
    code (a batch size): None, which a renderer says as "not given", never `None`. On several
    GPUs (`plan`, the estimate's): the strategy, world size and nodes the estimate used, first."""
    if plan is not None:
        yield from plan_rows(plan)
    for key, label in ROWS:
        if key not in setup.values or one_gpu_default(setup, key) or (plan is not None and key in WORLD):
            continue  # not on several GPUs: no row; on several, the plan's rows say them
        value = setup[key]
        if key == "context" and value is None:  # not generating: no row
            continue
        if key == "inputs":
            if not value:
                continue
            value = ", ".join(f"{list(s.shape)} {s.dtype}" for s in value)
        yield label, None if value is None else str(value), setup.source(key)
