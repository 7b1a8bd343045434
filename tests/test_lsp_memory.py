"""The language server's memory over an editing session (issue 17, item 7).

Each edited version of a file is evaluated anew; its evaluated module (classes, functions and
their namespaces: reference cycles) is garbage once the next version replaces it. Under the
server's collector thresholds the collector left that garbage for ~150 edits (generation 1) and
~15,000 edits (generation 2): RSS grew along a session. Counted here, not measured as RSS: the
parsed versions of the edited file that are still in memory (the server keeps the latest two).
Also pygls kept each notification's handler future (one per edit): counted too. The RSS figure
is `benchmarks/lsp_memory.py`'s.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from vramlint.engine.source import SourceModule
from vramlint.lsp.documents import Documents

EDITS = 40
KEPT = 2  # versions of a file the parse cache keeps (engine/source.py)

NET = """\
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        return x + self.fc(x)


class Net(nn.Module):
    def __init__(self, width: int = {width}):
        super().__init__()
        self.inp = nn.Linear(32, width)
        self.blocks = nn.ModuleList([Block(width) for _ in range(3)])
        self.out = nn.Linear(width, 10)

    def forward(self, x):
        h = self.inp(x)
        for b in self.blocks:
            h = b(h)
        return self.out(h)


model = Net()
out = model(torch.randn(8, 32))
"""


@pytest.fixture
def rare_collections() -> Iterator[None]:
    """The collector as the server runs it, at its worst. The server's thresholds
    (GC_THRESHOLDS) collect generation 1 every ~150 edits of a large file and generation 2 every
    ~15,000; over this short session of a small file that is as good as never, but when it
    happens depends on how much each analysis allocates. So the automatic collector is off here:
    what frees edited versions is the server's own collections. Restored afterwards (and the heap
    `Documents` freezes after its first analysis unfrozen)."""
    enabled = gc.isenabled()
    gc.collect()  # no garbage from earlier tests
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def live_versions(path: str) -> int:
    """Parsed versions of `path` in memory (reachable or awaiting collection; not those frozen
    with the heap after the first analysis). Counts what exists: no collection is run."""
    return sum(1 for o in gc.get_objects() if type(o) is SourceModule and o.path == path)


async def edit_session(path: Path, edits: int) -> Documents:
    """Open `path` and change it `edits` times, each version analysed before the next edit (as
    an editor whose user types slower than the analysis)."""
    docs = Documents(on_result=lambda doc: None, log=lambda message: None)
    docs.roots = [str(path.parent)]
    uri = path.as_uri()
    doc = docs.open(uri, 1, NET.format(width=64))
    for version in range(2, edits + 2):
        assert doc.pending is not None
        await doc.pending
        docs.change(uri, version, NET.format(width=64 + version))
    assert doc.pending is not None
    await doc.pending
    assert doc.result is not None and doc.result.models, "the analysis found the model"
    assert doc.result_version == edits + 1
    return docs


def test_edited_versions_do_not_accumulate(tmp_path: Path, rare_collections: None) -> None:
    path = tmp_path / "net.py"
    path.write_text(NET.format(width=64))

    async def session() -> tuple[int, int]:
        docs = await edit_session(path, EDITS)
        during = live_versions(str(path))
        # Edits pause: the server collects and gives memory back a second later.
        for _ in range(100):
            await asyncio.sleep(0.1)
            if live_versions(str(path)) <= KEPT:
                break
        after = live_versions(str(path))
        docs.executor.shutdown(wait=True)
        return during, after

    during, after = asyncio.run(session())
    # Without a pause: the server collects after every result, so at most one edit's garbage
    # (the last result's collection may still be queued) besides the versions kept.
    assert during <= KEPT + 1, f"{during} versions of the file in memory after {EDITS} edits"
    assert after <= KEPT, f"{after} versions of the file in memory after the edits paused"


def test_notifications_leave_nothing_behind() -> None:
    """pygls kept each notification's handler future (one per edit) for the server's lifetime:
    after notifications are handled, none is in flight."""
    from lsprotocol import types

    from vramlint.lsp.server import VramlintServer

    ls = VramlintServer()
    for _ in range(50):
        ls.protocol._handle_notification(types.SET_TRACE, types.SetTraceParams(types.TraceValue.Off))
    assert len(ls.protocol._request_futures) == 0


def test_changes_read_together_run_one_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Changes dispatched in one turn of the event loop (the transport dispatches every message
    of a read together) make one analysis, of the last text, whatever the debounce."""
    from vramlint.analysis import api
    from vramlint.lsp import documents

    path = tmp_path / "net.py"
    path.write_text(NET.format(width=64))
    analysed: list[str] = []
    real = api.analyze_source

    def counted(p: str, text: str, *a: object, **k: object) -> object:
        analysed.append(text)
        return real(p, text, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "analyze_source", counted)
    monkeypatch.setattr(documents, "DEBOUNCE_S", 0.0)

    async def session() -> None:
        docs = Documents(on_result=lambda doc: None, log=lambda message: None)
        docs.roots = [str(path.parent)]
        docs.progressive = False
        uri = path.as_uri()
        doc = docs.open(uri, 1, NET.format(width=64))
        assert doc.pending is not None
        await doc.pending
        analysed.clear()
        for version, width in enumerate((65, 66, 67), start=2):  # one turn: as a read of three messages
            docs.change(uri, version, NET.format(width=width))
        assert doc.pending is not None
        await doc.pending
        assert doc.result_version == 4 and len(analysed) == 1 and "width: int = 67" in analysed[0]
        docs.executor.shutdown(wait=True)

    try:
        asyncio.run(session())
    finally:
        gc.unfreeze()  # (Documents freezes the heap after a document's first result)
