"""`vramlint report --html FILE` and the timeline of `vramlint report --format json`."""

from __future__ import annotations

import os
import sys
from typing import Any

from vramlint.analysis.results import ModelResult
from vramlint.cache import analysis as cached
from vramlint.memory.series import Timeline, timeline_of
from vramlint.settings import Settings


def report_timeline(path: str, model: ModelResult, settings: Settings) -> Timeline | None:
    """The model's memory timeline. A result read from the cache keeps no replay source (it is
    not pickled): the file is then analysed again, without the cache, for it."""
    if model.memory is None:
        return None
    found = timeline_of(model.memory)
    if found is not None:
        return found
    again = next((m for m in cached.analyze_file(path, settings, None).models if m.name == model.name), None)
    return timeline_of(again.memory) if again is not None and again.memory is not None else None


def write_html(target: str, path: str, model: ModelResult, timeline: Timeline | None) -> None:
    """Write the report to `target` ("-": standard output); a target that cannot be written is a
    usage error (exit 2), named."""
    from vramlint.cli.main import UsageError
    from vramlint.render.html_report import html_report

    page = html_report(path, model, timeline)
    if target == "-":
        sys.stdout.write(page)
        return
    try:
        with open(target, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as err:
        raise UsageError(f"{target}: cannot write the HTML report: {err.strerror or err}") from None
    print(f"wrote {os.path.abspath(target)}", file=sys.stderr)


def with_timeline(doc: dict[str, Any], timeline: Timeline | None) -> dict[str, Any]:
    """The JSON document of one model with `memory.timeline` (absent without an estimate)."""
    from vramlint.render.timeline_json import timeline_json

    memory = doc["files"][0]["models"][0].get("memory")
    if memory is not None and timeline is not None:
        memory["timeline"] = timeline_json(timeline)
    return doc
