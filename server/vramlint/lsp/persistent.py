"""The language server's use of the persistent cache (vramlint/cache/): a document opened with no
result in memory looks there first (keyed by its buffer's text), so a window reopened tomorrow
starts warm; fresh results are written back once the document's analyses pause (writing resolves
positions, off the analysis worker, after the result is shown)."""

from __future__ import annotations

import threading
from typing import Any

from vramlint.analysis import api
from vramlint.analysis.results import FileAnalysis
from vramlint.cache import analysis as cached
from vramlint.engine.reads import Deps
from vramlint.settings import Settings

STORE_AFTER_S = 2.0  # a result is written once its document has had no newer one for this long
FIRST_STORE_S = 0.1  # ... but a document's first result soon after it is shown


class EditorCache:
    def __init__(self) -> None:
        self._timers: dict[str, tuple[threading.Timer, Any]] = {}
        self._lock = threading.Lock()

    def analyze(self, doc: Any, text: str, settings: Settings, overlays: dict[str, str],
                cancel: threading.Event | None) -> FileAnalysis:
        """`api.analyze_source` of the document's text, from the cache on its first analysis."""
        cache = cached.open_cache(settings)
        if cache is None:
            return api.analyze_source(doc.path, text, settings, cancel=cancel)
        first = doc.result is None and doc.good is None
        if first:
            try:
                hit = cached.lookup_source(cache, doc.path, text, settings, overlays)
            except Exception:  # a bug of the cache must not cost the document its analysis
                hit = None
            if hit is not None:
                return hit
        result, deps = cached.analyze_source_recorded(doc.path, text, settings, cancel=cancel)
        # A document's first result (the cold, expensive one) is written as soon as it is shown;
        # an edited one once edits pause.
        self._store_later(doc.uri, lambda: cached.store_source(cache, doc.path, text, settings, result, deps),
                          FIRST_STORE_S if first else STORE_AFTER_S)
        return result

    def _store_later(self, uri: str, store: Any, delay: float) -> None:
        timer = threading.Timer(delay, self._run, (uri, store))
        timer.daemon = True  # the server exits without waiting for it: `exit` flushes (lsp/server.py)
        with self._lock:
            old = self._timers.pop(uri, None)
            if old is not None:
                old[0].cancel()  # a newer result of the document: only the last one is written
            self._timers[uri] = (timer, store)
        timer.start()

    def _run(self, uri: str, store: Any) -> None:
        with self._lock:
            if self._timers.get(uri, (None, None))[1] is not store:
                return  # replaced, or written by flush meanwhile
            del self._timers[uri]
        _quietly(store)

    def flush(self) -> None:
        """Write what is waiting now (tests, shutdown)."""
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer, store in timers:
            timer.cancel()
            _quietly(store)


def _quietly(fn: Any) -> None:
    try:
        fn()
    except Exception:  # the cache is an optimisation: a failed write costs nothing but a later miss
        pass


__all__ = ["EditorCache", "Deps"]
