"""`vramlint.reportHtml` [uri, modelName]: the model's HTML report (render/html_report.py, what
`vramlint report --html` writes) as a string, for the editor's report webview.

The memory timeline is simulated again from the document's last result (memory/series.py), a few
milliseconds, off the event loop and outside the analysis worker, so edits are not delayed. A
result read from the persistent cache has no replay source: the file is then analysed once more,
for the timeline only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from vramlint.analysis import api
from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.lsp.documents import Documents
from vramlint.memory.series import Timeline, timeline_of
from vramlint.render.html_report import html_report, message_html

REPORT_HTML = "vramlint.reportHtml"
T = TypeVar("T")
Guard = Callable[[str, Callable[[], T], T], T]


async def report_html(docs: Documents, guard: Guard[str], args: tuple[Any, ...]) -> str:
    """The command's answer: always an HTML document (a message page when there is no report)."""
    uri, name = ([*args] + [None, None])[:2]
    doc = await docs.current(str(uri), final=True)
    fa = doc.view()[0] if doc is not None else None
    if doc is None or fa is None:
        return message_html("vramlint report", "The document is not open or has not been analysed yet.")
    model = next((m for m in fa.models if m.name == name), None)
    if model is None:
        return message_html("vramlint report", f"No model named {name} in {doc.path}.")
    path, text, settings = doc.path, doc.text, docs.settings_for(doc.path)

    def render() -> str:
        return html_report(path, model, _timeline(model, lambda: api.analyze_source(path, text, settings)))

    page: str = await asyncio.get_running_loop().run_in_executor(
        None, lambda: guard("HTML report", render, message_html("vramlint report", "The report failed: see the log.")))
    return page


def _timeline(model: ModelResult, analyse: Callable[[], FileAnalysis]) -> Timeline | None:
    if model.memory is None:
        return None
    found = timeline_of(model.memory)
    if found is not None:
        return found
    again = next((m for m in analyse().models if m.name == model.name), None)  # a cached result: no replay
    return timeline_of(again.memory) if again is not None and again.memory is not None else None
