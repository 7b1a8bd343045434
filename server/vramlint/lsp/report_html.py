"""`vramlint.reportHtml` [uri, modelName]: the model's HTML report (render/html_report.py, what
`vramlint report --html` writes) as a string, for the editor's report webview.

The memory timeline is simulated again from the document's last result (memory/series.py: a few
milliseconds, no evaluation), off the event loop and outside the analysis worker, so edits are not
delayed. A result read from the persistent cache has no replay source: the file is then analysed
once more for it, in the analysis worker (whose thread has the stack analyses need), as quick
fixes' checks are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from vramlint.analysis import api
from vramlint.analysis.timeline import replayed, timeline_for
from vramlint.lsp.documents import Documents
from vramlint.memory.series import Timeline
from vramlint.render.html_report import html_report, message_html

REPORT_HTML = "vramlint.reportHtml"
Guard = Callable[[str, Callable[[], Any], Any], Any]
TITLE = "vramlint report"


async def report_html(docs: Documents, guard: Guard, args: tuple[Any, ...]) -> str:
    """The command's answer: always an HTML document (a message page when there is no report)."""
    uri, name = ([*args] + [None, None])[:2]
    doc = await docs.current(str(uri), final=True)
    fa = doc.view()[0] if doc is not None else None
    if doc is None or fa is None:
        return message_html(TITLE, "The document is not open or has not been analysed yet.")
    model = next((m for m in fa.models if m.name == name), None)
    if model is None:
        return message_html(TITLE, f"No model named {name} in {doc.path}.")
    path, text, settings = doc.path, doc.text, docs.settings_for(doc.path)
    loop = asyncio.get_running_loop()
    timeline: Timeline | None = await loop.run_in_executor(None, lambda: guard("timeline", lambda: replayed(model), None))
    if timeline is None and model.memory is not None:  # a result from the cache

        def analysed() -> Timeline | None:
            with docs.busy(str(uri)):
                return timeline_for(model, lambda: api.analyze_source(path, text, settings))

        timeline = await loop.run_in_executor(docs.executor, lambda: guard("timeline", analysed, None))
    page: str = await loop.run_in_executor(None, lambda: guard(
        "HTML report", lambda: html_report(path, model, timeline), message_html(TITLE, "The report failed: see the log.")))
    return page

