"""What the caching allocator reserves for a training run, and the largest batch that runs at a limit.

The timeline (memory/timeline.py) gives one iteration's allocations and frees one by one; here they
become the whole run the calibration protocol measures (benchmarks/gpu/measure.py): the model and
the batch moved to the GPU tensor by tensor, then three iterations of `zero_grad(set_to_none=True)`
(the parameter gradients freed), forward and backward (the cuBLAS workspaces allocated by the first
iteration's first matmul of each thread), and `optimizer.step()` (its state created lazily,
parameter by parameter, in the first iteration; its `foreach` temporaries, alive together). The
caching allocator (memory/allocator.py) replays it: its `max_reserved` is
`torch.cuda.max_memory_reserved()` (with nothing released the reserved bytes only grow, so the
peak-stat resets of the protocol do not lower it), and at a limit it fails where torch raises
OutOfMemoryError.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from vramlint.memory.allocator import (
    FREE,
    NO_LIMIT,
    Allocator,
    AllocatorConfig,
    Event,
    Result,
    kRoundLarge,
    simulate,
)

ITERATIONS = 3  # the calibration protocol's; by the third the cache is in its steady state
_SETUP, _WORKSPACE, _STATE, _STEP = 1 << 40, 1 << 41, 1 << 42, 1 << 43  # event keys


@dataclass
class Workload:
    """A training run, as the allocator sees it."""

    setup: list[int]  # weights, buffers, the batch: moved to the GPU once, in this order
    workspaces: list[int]  # cuBLAS workspaces: the forward's, then autograd's backward thread's
    state: list[int]  # optimizer state tensors, created in the first step
    step_temps: list[int]  # the step's temporaries, alive together
    forward: list[Event]  # one iteration's forward (the loss included)
    backward: list[Event]
    param_grads: set[int] = field(default_factory=set)  # event keys of the parameter gradients (kept)

    def events(self, iterations: int = ITERATIONS) -> list[Event]:
        out: list[Event] = [(_SETUP + i, s) for i, s in enumerate(self.setup)]
        for it in range(iterations):
            if it:
                out += [(k, FREE) for k in sorted(self.param_grads)]  # zero_grad(set_to_none=True)
            if it == 0 and self.workspaces:
                out.append((_WORKSPACE, self.workspaces[0]))
            out += self.forward
            if it == 0 and len(self.workspaces) > 1:
                out += [(_WORKSPACE + i, s) for i, s in enumerate(self.workspaces[1:], 1)]
            out += self.backward
            if it == 0:
                out += [(_STATE + i, s) for i, s in enumerate(self.state)]
            out += [(_STEP + i, s) for i, s in enumerate(self.step_temps)]
            out += [(_STEP + i, FREE) for i in range(len(self.step_temps))]
            out += [(k, FREE) for k in _left_alive(self.forward + self.backward) if k not in self.param_grads]
        return out

    def scaled(self, other: Workload, factor: float) -> Workload | None:
        """The workload at another batch, from this one and `other` (the same code at a larger
        batch): each allocation's size a + b * batch, `factor` = (batch - this batch) / (other's
        batch - this batch). None when the two do not pair allocation by allocation."""
        if not self.pairs(other):
            return None

        def mix(a: int, b: int) -> int:
            return max(0, a + _ceil((b - a) * factor)) if b != a else a

        def mix_events(xs: list[Event], ys: list[Event]) -> list[Event]:
            return [(k, s if s == FREE else mix(s, t)) for (k, s), (_, t) in zip(xs, ys, strict=True)]

        return Workload([mix(a, b) for a, b in zip(self.setup, other.setup, strict=True)], self.workspaces,
                        self.state, [mix(a, b) for a, b in zip(self.step_temps, other.step_temps, strict=True)],
                        mix_events(self.forward, other.forward), mix_events(self.backward, other.backward),
                        self.param_grads)

    def key(self) -> tuple[Any, ...]:
        """Everything a replay depends on, as a hashable value (for `run`'s memory)."""
        return (tuple(self.setup), tuple(self.workspaces), tuple(self.state), tuple(self.step_temps),
                tuple(self.forward), tuple(self.backward), tuple(sorted(self.param_grads)))

    def pairs(self, other: Workload) -> bool:
        return (len(self.setup) == len(other.setup) and self.workspaces == other.workspaces
                and self.state == other.state and len(self.step_temps) == len(other.step_temps)
                and _same_keys(self.forward, other.forward) and _same_keys(self.backward, other.backward))


def _ceil(x: float) -> int:
    return -int(-x // 1)


def _same_keys(xs: list[Event], ys: list[Event]) -> bool:
    return len(xs) == len(ys) and all(a[0] == b[0] and (a[1] == FREE) == (b[1] == FREE) for a, b in zip(xs, ys))


def _left_alive(events: list[Event]) -> list[int]:
    alive: dict[int, None] = {}
    for k, s in events:
        if s == FREE:
            alive.pop(k, None)
        else:
            alive[k] = None
    return list(alive)


def run(work: Workload, limit: int = NO_LIMIT, config: AllocatorConfig | None = None,
        prefix: Prefix | None = None) -> Result:
    """The allocator's replay of `work` at `limit`. Remembered for the last runs of the process:
    an editor re-analyses a file on every edit, and most edits leave the estimated model's run as
    it was (another class, a comment), while the replays (a search of several runs for the least
    limit, `reserved_need`) are the largest part of an estimate's time. The key is the run's
    whole content, compared exactly, so a remembered result is the replay's own. `prefix` (of
    `work`, at or below `limit`): the replay goes on from its state, with the same result."""
    key = (work.key(), limit, config)
    with _runs_lock:
        found = _RUNS.get(key)
    if found is None:
        start = prefix.state(limit) if prefix is not None else None
        if start is None:
            found = simulate(work.events(), limit, config)
        else:
            index, alloc, events = start
            found = simulate(events[index:], limit, config, start=alloc)
            alloc.dispose()  # (a copy of the prefix's state, for this run only)
            if found.oom_at >= 0:
                found.oom_at += index
        with _runs_lock:
            if len(_RUNS) >= _RUNS_KEPT:
                del _RUNS[next(iter(_RUNS))]  # the oldest
            _RUNS[key] = found
    return replace(found)  # a copy: callers own their Result


class _Reached(Exception):
    """A request of the free run would reserve past the probe's limit."""


class _Probe(Allocator):
    """The run without a limit, stopped before the first request that would reserve past `limit`
    (before anything changes: `_alloc_block` checks the limit before it reserves)."""

    def _alloc_block(self, size: int, small: bool) -> Any:
        block = super()._alloc_block(size, small)
        if block is None:
            raise _Reached
        return block


def _first_past(probe: _Probe, events: list[Event]) -> int | None:
    """Replay `events` on `probe` until one would reserve past its limit: that event's index."""
    malloc, free = probe.malloc, probe.free
    for i, (key, size) in enumerate(events):
        try:
            if size == FREE:
                free(key)
            else:
                malloc(key, size)
        except _Reached:
            return i
    return None


class Prefix:
    """The part of a run that every limit of a search at or above `below` replays alike: up to
    the first request that would reserve past `below`, nothing reaches the limit, so the runs
    are the run without a limit until then (its reserved bytes only grow). Replaying it once and
    going on from a copy of its state gives each run's own result (the search's runs diverge near
    the peak: about a third of a training run is skipped per run). Computed on first use."""

    def __init__(self, work: Workload, below: int, config: AllocatorConfig | None) -> None:
        self.work, self.below, self.config = work, below, config
        self._at: tuple[int, Allocator, list[Event]] | None = None
        self._done = False

    def state(self, limit: int) -> tuple[int, Allocator, list[Event]] | None:
        """(index of the first event to replay, the state before it under `limit`, the events);
        None where the prefix does not apply (a limit below it, or no request reaches it)."""
        if limit < self.below:
            return None
        if not self._done:
            self._done = True
            events = self.work.events()
            probe = _Probe(self.below, self.config or AllocatorConfig())
            index = _first_past(probe, events)
            if index is not None:
                self._at = (index, probe, events)
        if self._at is None:
            return None
        index, state, events = self._at
        return index, state.copy(limit), events

    def close(self) -> None:
        """Dispose of the prefix's state (see Allocator.dispose)."""
        if self._at is not None:
            self._at[1].dispose()
            self._at = None


_RUNS: dict[tuple[Any, ...], Result] = {}
_RUNS_KEPT = 64
_runs_lock = threading.Lock()


def reserved_need(work: Workload, config: AllocatorConfig | None = None, free_run: Result | None = None) -> int:
    """The least the allocator must be allowed to reserve for the run to succeed, to 2 MiB or
    0.2% of the allocated peak (a handful of runs): at the edge of the card it releases its cached
    segments and retries, so this is below the `max_reserved` it reaches with room to spare.
    `free_run`: the run without a limit, when the caller has it already."""
    free_run = free_run or run(work, config=config)
    step = 2 << 20
    granularity = max(step, free_run.max_allocated // 500 // step * step)
    hi = -(-free_run.max_reserved // granularity) * granularity
    lo = free_run.max_allocated // granularity * granularity  # never enough below the allocated peak
    prefix = Prefix(work, lo, config)  # every limit tried is above lo
    try:
        while hi - lo > granularity:
            mid = (lo + hi) // 2 // granularity * granularity
            if run(work, mid, config, prefix).ok:
                hi = mid
            else:
                lo = mid
    finally:
        prefix.close()
    return hi


def largest_batch(small: Workload, batch: int, large: Workload, batch2: int, available: int,
                  config: AllocatorConfig | None = None, floor: float = 0.0) -> int | None:
    """The largest batch whose run succeeds with the allocator capped at `available`, the two
    workloads (at `batch` and `batch2`) giving each allocation's size as a line in the batch, and
    whose allocated peak plus `floor` (a fraction), in 2 MiB segments, stays within it. None when
    they do not pair."""
    if not small.pairs(large) or batch2 <= batch:
        return None

    def ok(b: int) -> bool:
        w = small.scaled(large, (b - batch) / (batch2 - batch))
        if w is None:
            return False
        r = run(w, available, config)
        return r.ok and -(-int(r.max_allocated * (1 + floor)) // kRoundLarge) * kRoundLarge <= available

    # An upper bound: the allocated peak alone grows at least this fast.
    lo, hi = 0, batch
    while ok(hi):
        lo, hi = hi, hi * 2
        if hi > 1 << 24:
            return lo
    while hi - lo > 1:  # ok(lo) (or lo == 0), not ok(hi)
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
