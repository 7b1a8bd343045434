"""`vramlint report --html FILE` and the timeline of `vramlint report --format json`."""

from __future__ import annotations

import os
import sys
from typing import Any

from vramlint.analysis.results import ModelResult
from vramlint.analysis.timeline import timeline_for
from vramlint.cache import analysis as cached
from vramlint.memory.series import Timeline
from vramlint.settings import Settings


def report_timeline(path: str, model: ModelResult, settings: Settings) -> Timeline | None:
    """The model's memory timeline (a result read from the cache: the file analysed again)."""
    return timeline_for(model, lambda: cached.analyze_file(path, settings, None))


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
