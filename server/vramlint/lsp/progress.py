"""`$/progress` for slow analyses (LSP work-done progress, created by the server).

An analysis still running after `AFTER_S` asks the client for a token
(`window/workDoneProgress/create`), then sends `begin`; a first analysis that shows parameter
counts before its memory estimate reports so; `end` comes when the analysis is done, cancelled
or dropped. Quick analyses (an edit's) send nothing. Only for clients that declare
`window.workDoneProgress`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any, Protocol

from lsprotocol import types

AFTER_S = 1.0  # an analysis running longer shows progress
_tokens = itertools.count(1)


class ProgressSink(Protocol):
    """pygls's `LanguageServer.work_done_progress` (the part used here)."""

    async def create_async(self, token: types.ProgressToken) -> Any: ...
    def begin(self, token: types.ProgressToken, value: types.WorkDoneProgressBegin) -> None: ...
    def report(self, token: types.ProgressToken, value: types.WorkDoneProgressReport) -> None: ...
    def end(self, token: types.ProgressToken, value: types.WorkDoneProgressEnd) -> None: ...


class AnalysisProgress:
    """The progress of one analysis run: `start` when it begins (nothing is sent before
    `AFTER_S`), `report` as it goes, `end` once, whatever happened."""

    def __init__(self, sink: ProgressSink, path: str, log: Any = None) -> None:
        self.sink = sink
        self.title = f"vramlint: analysing {os.path.basename(path)}"
        self.token = f"vramlint-analysis-{next(_tokens)}"
        self.state = "idle"  # -> waiting -> creating -> begun -> ended
        self.message: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._log = log

    def start(self) -> None:
        if self.state == "idle":
            self.state = "waiting"
            self._timer = asyncio.get_running_loop().call_later(AFTER_S, self._create)

    def _create(self) -> None:
        if self.state == "waiting":
            self.state = "creating"
            asyncio.ensure_future(self._begin())

    async def _begin(self) -> None:
        try:
            await self.sink.create_async(self.token)
        except Exception as err:  # the client refused the token: no progress for this analysis
            if self._log is not None:
                self._log(f"progress not shown: {err}")
            self.state = "ended"
            return
        if self.state != "creating":
            return  # the analysis ended while the client answered
        self.sink.begin(self.token, types.WorkDoneProgressBegin(title=self.title, message=self.message, cancellable=False))
        self.state = "begun"

    def report(self, message: str) -> None:
        self.message = message
        if self.state == "begun":
            self.sink.report(self.token, types.WorkDoneProgressReport(message=message))

    def end(self, message: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.state == "begun":
            self.sink.end(self.token, types.WorkDoneProgressEnd(message=message))
        self.state = "ended"
