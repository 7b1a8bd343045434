"""`vramlint.reportHtml` [uri, modelName] (issue 19): the language server answers the model's HTML
report, the document `vramlint report --html` writes, for the editor's webview. A real LSP client
(tests/test_lsp.py's fixtures)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

from tests import test_lsp
from tests.test_cache_lsp import all_entries, diagnostics
from tests.test_lsp import NET, Session

ROOT = Path(__file__).resolve().parents[1]

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


async def page_from_a_server(root: Path, cache: Path, uri: str) -> str:
    """A server with the persistent cache in `cache`, net.py open: its HTML report, once the
    cache holds the file's result."""
    env = {k: v for k, v in os.environ.items() if k != "VRAMLINT_NO_CACHE"}
    env.update(VRAMLINT_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT / "server"))
    client = await ClientServerConfig([sys.executable, "-m", "vramlint", "lsp"], server_env=env).start()
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            workspace_folders=[types.WorkspaceFolder(root.as_uri(), "ws")]))
        client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, NET)))
        await diagnostics(client, uri)
        end = time.monotonic() + 30
        while not all_entries(cache):  # written once the document's analyses pause
            assert time.monotonic() < end, "the server wrote no cache entry"
            await asyncio.sleep(0.05)
        page = await client.workspace_execute_command_async(types.ExecuteCommandParams("vramlint.reportHtml",
                                                                                       [uri, "model"]))
        assert isinstance(page, str)
        return page
    finally:
        await asyncio.wait_for(client.shutdown_session(), 60)


@pytest.mark.asyncio
async def test_a_result_read_from_the_cache_still_has_its_timeline(tmp_path: Path) -> None:
    """A reopened file is answered from the persistent cache, whose results keep no replay source:
    the server analyses the text again for the timeline, and draws the same one."""
    root, cache = tmp_path / "ws", tmp_path / "cache"
    root.mkdir()
    (root / "net.py").write_text(NET)
    uri = (root / "net.py").as_uri()
    first = await page_from_a_server(root, cache, uri)
    second = await page_from_a_server(root, cache, uri)  # from the cache
    peak = re.compile(r'id="training-peak-label" data-bytes="(\d+)"')
    found = [peak.search(p) for p in (first, second)]
    assert all(found) and found[0].group(1) == found[1].group(1), found  # type: ignore[union-attr]
    assert 'id="training-area-kept"' in second
