"""Progressive results and `$/progress` in a real LSP client (tests/test_lsp.py's fixture: a
server per test, VS Code's capabilities, which include `window.workDoneProgress`).

The slow file's forward spins in a loop that only the memory estimate's trace runs (its inputs
come from a directive, not from a call in the file): its parameter counts are known well before
its estimate."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests import test_lsp
from tests.test_lsp import Session, line_of

# The language-server fixtures of test_lsp.py (a server per test, VS Code's capabilities).
client = test_lsp.client
lsp = test_lsp.lsp

SLOW = """\
import torch.nn as nn


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 64)

    def forward(self, x):
        n = 0
        for _ in range(400_000):
            n = n + 1
        return self.fc(x)


model = Slow()  # vramlint: batch-size=8 input-shape=64
"""
SLOW_PARAMS = "4.2K params"  # 64 * 64 + 64
SLOW_TIMEOUT = 120.0  # seconds: the slow file's analysis on a loaded 2-core machine


def _kinds(client: LanguageClient) -> dict[str, list[str]]:
    """Each progress token's values, by kind (begin, report, end)."""
    return {str(token): [v.kind for v in values] for token, values in client.progress_reports.items()}


def _open(lsp: Session, name: str, text: str) -> str:
    """Open without waiting for diagnostics (they come with the estimate)."""
    path = lsp.root / name
    path.write_text(text)
    uri = path.as_uri()
    lsp.versions[uri], lsp.texts[uri] = 1, text
    lsp.client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text)))
    return uri


@pytest.mark.asyncio
async def test_first_analysis_shows_the_counts_before_the_estimate(lsp: Session) -> None:
    uri = _open(lsp, "slow.py", SLOW)
    model_line = line_of(SLOW, "model = Slow()")
    # The counts pass is done: the client is asked to refresh its lenses, which show the counts
    # before any diagnostics (they come with the estimate).
    await lsp.until("a code lens refresh", lambda: "codeLens" in lsp.refreshes, SLOW_TIMEOUT)
    early = await lsp.lenses(uri)
    assert not any(p.uri == uri for p in lsp.published), "the estimate came before the counts were asked"
    assert early[model_line] == SLOW_PARAMS
    hints = await lsp.hints(uri)
    assert hints[line_of(SLOW, "self.fc =")] == SLOW_PARAMS
    # Then the estimate replaces them.
    await lsp.publish(uri, 1, timeout=SLOW_TIMEOUT)
    final = await lsp.lenses(uri)
    assert final[model_line].startswith(SLOW_PARAMS + " · training peak ")
    # One progress for the analysis (it ran over a second): begun, the counts reported, ended.
    reports = await lsp.until("the progress to end", lambda: [
        values for values in lsp.client.progress_reports.values() if values and values[-1].kind == "end"] or None, 15)
    (values,) = reports
    begin, *middle, end = values
    assert isinstance(begin, types.WorkDoneProgressBegin) and "slow.py" in begin.title
    assert all(isinstance(v, types.WorkDoneProgressReport) for v in middle)
    # The counts are shown in a report, or in the begin when they came within its first second.
    assert any("parameter counts" in str(v.message) for v in values[:-1])
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "done"


@pytest.mark.asyncio
async def test_progress_ends_when_the_analysis_is_cancelled(lsp: Session) -> None:
    uri = _open(lsp, "slow.py", SLOW)
    await lsp.until("the progress to begin", lambda: "begin" in sum(_kinds(lsp.client).values(), []), SLOW_TIMEOUT)
    # Changed to a quick file: the running analysis is cancelled, its progress ended.
    diags = await lsp.edit(uri, "import torch.nn as nn\n\nm = nn.Linear(2, 3)\n", timeout=SLOW_TIMEOUT)
    assert not any(d.code == "VL000" for d in diags)
    ended = await lsp.until("the progress to end", lambda: [
        values[-1] for values in lsp.client.progress_reports.values() if values and values[-1].kind == "end"] or None, 15)
    assert isinstance(ended[0], types.WorkDoneProgressEnd) and ended[0].message == "cancelled"
