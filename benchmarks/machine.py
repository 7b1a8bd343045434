"""How fast this machine runs Python, printed beside the benchmarks' absolute figures.

The editor's latency target is in milliseconds, and the 2-core machines these benchmarks run on
differ from day to day: on 2026-12-06 the same code's edit -> diagnostics p50 was ~72 ms on one and
~140 ms on another. A fixed pure-Python loop, timed in the benchmark's own process, says which kind
of machine a figure came from (the loop is the interpreter's work, as most of an analysis is).
"""

from __future__ import annotations

import statistics
import time


def python_loop_seconds(repeat: int = 3) -> float:
    """The median time of a 10^7-iteration `for` loop adding integers (1.12 s on the slower
    machine of 2026-12-06)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def describe() -> str:
    return f"machine: a 10^7-iteration Python loop takes {python_loop_seconds():.2f} s (median of 3)"
