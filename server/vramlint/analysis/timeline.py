"""A model's memory timeline (memory/series.py), for `vramlint report` and the editor's report.

A result keeps its estimate's replay source only in the process that analysed it: one read from
the persistent cache (unpickled) has none, and the file is then analysed once more for it.
"""

from __future__ import annotations

from collections.abc import Callable

from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.memory.series import Timeline, timeline_of


def replayed(model: ModelResult) -> Timeline | None:
    """The timeline from the model's own estimate (None without one, or from the cache)."""
    return timeline_of(model.memory) if model.memory is not None else None


def timeline_for(model: ModelResult, analyse: Callable[[], FileAnalysis]) -> Timeline | None:
    """The model's timeline, from its replay source, else from `analyse()` (an analysis of the
    same text, without the cache)."""
    found = replayed(model)
    if found is not None or model.memory is None:
        return found
    again = next((m for m in analyse().models if m.name == model.name), None)
    return replayed(again) if again is not None else None
