"""The budget of one whole analysis: wall clock, steps, and cancellation (docs/limits.md).

The evaluator's `Budget` bounds one statement or one model; this bounds the analysis of a file
however many statements, models and library modules it runs, so no file can hold a CLI run or
the language server's worker for long, and a caller (the language server, when a document
changes) can stop an analysis from another thread.
"""

from __future__ import annotations

import threading
import time

from vramlint.engine.signals import AnalysisStopped
from vramlint.engine.source import SourceModule, parse_source
from vramlint.engine.values import SourceRef

# Steps between two looks at the clock and the cancel event: a step costs 5-50 µs, so a
# cancellation is seen within a few milliseconds while the clock costs nothing measurable.
CHECK_EVERY = 256


class AnalysisBudget:
    """Charged by `Evaluator.charge` alongside the statement's own Budget."""

    __slots__ = ("seconds", "limit", "cancel", "deadline", "steps", "next_check", "stopped")

    def __init__(self, seconds: float | None = None, steps: int | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.limit = steps
        self.cancel = cancel
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.steps = 0
        self.next_check = CHECK_EVERY
        # The first stop: its ref ends at the innermost loop it interrupted (eval_control._in_loop).
        self.stopped: AnalysisStopped | None = None

    def check(self, ref: SourceRef | None) -> None:
        """Raise AnalysisStopped if the analysis is over its budget or cancelled (and again on
        every later step once it was)."""
        first = self.stopped
        if first is not None:
            self.next_check = self.steps  # look every step from now on: stay stopped
            raise AnalysisStopped(first.message, ref, first.cancelled)
        self.next_check = self.steps + CHECK_EVERY
        stop: AnalysisStopped | None = None
        if self.cancel is not None and self.cancel.is_set():
            stop = AnalysisStopped("analysis stopped: cancelled", ref, cancelled=True)
        elif self.deadline is not None and time.monotonic() > self.deadline:
            stop = AnalysisStopped(f"analysis stopped: time budget of {self.seconds:g} s exceeded "
                                   "(endless loop? `time-budget` in [tool.vramlint] sets it)", ref)
        elif self.limit is not None and self.steps > self.limit:
            stop = AnalysisStopped(f"analysis stopped: step budget of {self.limit:,} steps exceeded "
                                   "(endless loop? `step-budget` in [tool.vramlint] sets it)", ref)
        if stop is not None:
            self.stopped = stop
            self.next_check = self.steps
            raise stop

    def parse(self, path: str, text: str, name: str) -> SourceModule:
        """`parse_source`, off the clock: parsing is bounded by max-file-size and cannot loop,
        while under load a cold analysis parses for tens of seconds (transformers' modules)
        and must not be cut for it. The budget is for evaluation."""
        start = time.monotonic()
        try:
            return parse_source(path, text, name)
        finally:
            if self.deadline is not None:
                self.deadline += time.monotonic() - start

    @property
    def cancelled(self) -> bool:
        return self.stopped is not None and self.stopped.cancelled
