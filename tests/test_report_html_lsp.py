"""`vramlint.reportHtml` [uri, modelName] (issue 19): the language server answers the model's HTML
report, the document `vramlint report --html` writes, for the editor's webview. A real LSP client
(tests/test_lsp.py's fixtures)."""

from __future__ import annotations

import re

import pytest
from lsprotocol import types

from tests import test_lsp
from tests.test_lsp import NET, Session

client = test_lsp.client
lsp = test_lsp.lsp


async def report_html(lsp: Session, *args: object) -> str:
    page = await lsp.client.workspace_execute_command_async(types.ExecuteCommandParams("vramlint.reportHtml",
                                                                                       list(args)))
    assert isinstance(page, str)
    return page


@pytest.mark.asyncio
async def test_the_html_report_of_an_open_document(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    await lsp.status(uri, 1)
    status = test_lsp.model_status(lsp, uri)
    page = await report_html(lsp, uri, "model")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<script") == 1 and page.count("<style") == 1
    # The chart's peak is the estimate's: the training peak the editor's status reports.
    found = re.search(r'id="training-peak-label" data-bytes="(\d+)"', page)
    assert found is not None and int(found.group(1)) == status["trainPeak"], status
    assert 'id="training-area-weights"' in page and 'id="inference-chart"' in page
    assert ">fc1</td>" in page and ">Linear</td>" in page  # the per-layer table


@pytest.mark.asyncio
async def test_no_such_model_or_document_is_a_page_that_says_so(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    await lsp.status(uri, 1)
    page = await report_html(lsp, uri, "<img src=x onerror=alert(1)>")
    assert "No model named &lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page
    page = await report_html(lsp, "file:///nowhere/closed.py", "model")
    assert "not open" in page
