"""pygls's JSON-RPC protocol with what the language server needs fixed in it."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from pygls.protocol import LanguageServerProtocol


class LeakFreeProtocol(LanguageServerProtocol):
    def _check_handler_result(self, future: Future[Any]) -> None:
        """The end of a notification's handler. pygls (2.1) files the handler's future under a
        made-up id in `_request_futures`, as it does a request's, but removes only requests'
        when they are done: the server kept one future (with its lock, condition and handler
        state, ~2 KB) per notification, i.e. per edit, for its lifetime. Dropped here."""
        # Not a cancelled one: `$/cancelRequest` removed it, or `shutdown` is cancelling it while
        # iterating over `_request_futures` (a concurrent future calls back at once).
        if not future.cancelled():
            for msg_id, pending in list(self._request_futures.items()):  # those in flight: a few
                if pending is future:
                    del self._request_futures[msg_id]
                    break
        super()._check_handler_result(future)
