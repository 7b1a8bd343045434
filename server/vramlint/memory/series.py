"""The memory timeline of a report: the simulated training step and inference pass as samples of
allocated bytes, stacked by category, with the peak and the caching allocator's reserved bytes.

The estimate (memory/estimate.py) needs only each run's peak, so it records nothing per op: it
keeps what the runs were simulated from (`ReplaySource`, a reference, no copy) and a report that
wants the timeline (`vramlint report --format json | --html`, the editor's report) runs them again
here with a recorder (`timeline.Mark`s). The same simulation, so the same peak, to the byte.

The source is not pickled (the persistent cache, `--jobs`' workers): a result read back from
there has none, and its timeline needs the file analysed again (`timeline_of` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vramlint.memory.allocator import FREE, NO_LIMIT, Allocator, AllocatorConfig, Event
from vramlint.memory.reserved import ITERATIONS, Workload
from vramlint.memory.tape import Tape
from vramlint.memory.timeline import Mark, Schedule, simulate_inference, simulate_training

# The stacked categories, bottom to top: the fixed part of an iteration, then what it grows and frees.
CATEGORIES = ("weights", "optimizer_state", "batch", "workspaces", "gradients", "kept", "collectives", "transient")
LABELS = {
    "weights": "weights and buffers",
    "optimizer_state": "optimizer state",
    "batch": "batch",
    "workspaces": "cuBLAS workspaces",
    "gradients": "parameter gradients",
    "kept": "kept for backward",
    "collectives": "collectives' buffers",
    "transient": "transient (activations, gradients in flight, temporaries)",
}
PHASES = ("start", "forward", "loss", "backward", "optimizer step")


class ReplaySource:
    """What a memory estimate's runs were simulated from, kept for a report's timeline. Not a
    dataclass (`results.detached` does not walk into it) and pickled as nothing: the tape is
    large and references parse trees."""

    __slots__ = ("tape", "base", "step_temp", "outputs", "schedule", "infer_base", "fixed", "infer_fixed",
                 "work", "infer_work", "config")

    def __init__(self, tape: Tape, base: int, step_temp: int, outputs: set[int], schedule: Schedule | None,
                 infer_base: int, fixed: dict[str, int], infer_fixed: dict[str, int],
                 work: Workload, infer_work: Workload, config: AllocatorConfig) -> None:
        # Only what the simulations read: not the tape's tensors (the evaluator's values) nor its outputs.
        slim = Tape(storages=tape.storages, ops=tape.ops, regions=tape.regions, held_until=tape.held_until,
                    forward_end=tape.forward_end)
        self.tape, self.base, self.step_temp, self.outputs, self.schedule = slim, base, step_temp, outputs, schedule
        self.infer_base, self.fixed, self.infer_fixed = infer_base, fixed, infer_fixed
        self.work, self.infer_work, self.config = work, infer_work, config

    def __reduce__(self) -> tuple[Any, ...]:
        return (_absent, ())


def _absent() -> None:
    return None


@dataclass(frozen=True)
class Sample:
    """Allocated bytes at one op's high point (its outputs and temporaries allocated)."""

    phase: str  # one of PHASES
    op: str  # "" at the start
    module: str  # the module path ("" for the model itself)
    parts: tuple[int, ...]  # bytes per category, in CATEGORIES' order; their sum is `total`
    reserved: int | None  # what the caching allocator holds then (steady state), if replayed

    @property
    def total(self) -> int:
        return sum(self.parts)


@dataclass
class Series:
    """One run: "training" (forward, loss, backward, optimizer step) or "inference" (a no_grad forward)."""

    name: str
    samples: list[Sample]
    peak: int  # index of the peak's sample (the first at the maximum: the estimate's)

    @property
    def peak_bytes(self) -> int:
        return self.samples[self.peak].total

    @property
    def max_reserved(self) -> int | None:
        values = [s.reserved for s in self.samples if s.reserved is not None]
        return max(values) if values else None


@dataclass
class Timeline:
    training: Series
    inference: Series
    device: str
    device_memory: int  # the card
    context: int  # the CUDA context and libraries, outside the allocator

    @property
    def budget(self) -> int:
        """What the caching allocator may use: the card less the CUDA context."""
        return self.device_memory - self.context


def timeline_of(est: Any) -> Timeline | None:
    """The timeline of a `MemoryEstimate` (None when its replay source is gone: read back from
    the cache or another process)."""
    src: ReplaySource | None = getattr(est, "replay", None)
    if src is None:
        return None
    return Timeline(training_series(src), inference_series(src), est.device, est.device_memory, est.context)


def training_series(src: ReplaySource) -> Series:
    marks: list[Mark] = []
    run = simulate_training(src.tape, src.base, src.step_temp, src.outputs, src.schedule, recorder=marks)
    fixed = src.fixed
    forward_end = src.tape.forward_end if src.tape.forward_end is not None else len(src.tape.ops)
    reserved = _reserved(src.work, src.config, marks, run.events, training=True)
    samples = []
    for i, m in enumerate(marks):
        parts = {**fixed, "gradients": fixed.get("gradients", 0) + m.gradients, "kept": m.kept,
                 "collectives": m.communication}
        samples.append(_sample(_phase(m, forward_end), m, parts, reserved[i] if reserved else None))
    return Series("training", samples, _first_max(samples))


def inference_series(src: ReplaySource) -> Series:
    marks: list[Mark] = []
    run = simulate_inference(src.tape, src.infer_base, src.outputs, src.schedule, recorder=marks)
    reserved = _reserved(src.infer_work, src.config, marks, run.events, training=False)
    samples = [_sample(m.phase, m, dict(src.infer_fixed), reserved[i] if reserved else None)
               for i, m in enumerate(marks)]
    return Series("inference", samples, _first_max(samples))


def _sample(phase: str, m: Mark, parts: dict[str, int], reserved: int | None) -> Sample:
    """The mark's bytes by category: what the categories above do not account for is transient."""
    known = [parts.get(c, 0) for c in CATEGORIES[:-1]]
    op = m.op or ("optimizer.step()" if phase == "optimizer step" else "")
    return Sample(phase, op, m.module, (*known, m.total - sum(known)), reserved)


def _phase(m: Mark, forward_end: int) -> str:
    if m.phase.startswith("backward"):  # "backward (recomputing a checkpointed region)" included
        return "backward"
    if m.phase == "forward" and m.index >= forward_end:
        return "loss"
    return m.phase


def _first_max(samples: list[Sample]) -> int:
    totals = [s.total for s in samples]
    return totals.index(max(totals))


def _reserved(work: Workload, config: AllocatorConfig, marks: list[Mark], events: list[Event],
              training: bool) -> list[int] | None:
    """The reserved bytes at each mark, in the last iteration of the allocator's replay (the
    calibration protocol's run, memory/reserved.py): after the events of the mark's op (with no
    limit nothing is released, so that is the most reserved while it runs). The replay is the
    estimate's: under cudnn.benchmark its convolutions take the largest workspaces (the range's
    high end), the same allocations otherwise. None where it does not pair with the recorded run."""
    replayed = work.forward + work.backward
    if len(replayed) != len(events) or any(a[0] != b[0] for a, b in zip(replayed, events, strict=True)):
        return None
    run_events = len(events)
    start = len(work.events(ITERATIONS - 1)) + (len(work.param_grads) if training else 0)
    trace = _reserved_trace(work.events(), config)
    ends = [m.events for m in marks[1:]] + [run_events]
    out = []
    for m, end in zip(marks, ends, strict=True):
        if m.phase == "optimizer step":  # after backward, with its temporaries allocated
            end = run_events + len(work.step_temps)
        elif m.phase == "start":
            end = 0
        out.append(trace[start + end - 1] if start + end > 0 else 0)
    return out


def _reserved_trace(events: list[Event], config: AllocatorConfig) -> list[int]:
    """The allocator's reserved bytes after each event of a replay without a limit."""
    alloc = Allocator(NO_LIMIT, config)
    out = []
    for key, size in events:
        if size == FREE:
            alloc.free(key)
        else:
            alloc.malloc(key, size)
        out.append(alloc.reserved)
    alloc.dispose()
    return out
