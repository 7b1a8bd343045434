"""The language server's use of the persistent cache (vramlint/cache/): a document opened with no
result in memory looks there first (keyed by its buffer's text), so a window reopened tomorrow
starts warm. A document's first result (the cold, expensive one) is written soon after it is
shown, on a thread of its own (writing resolves positions and pickles: never on the analysis
worker); the last result of each edited document when the server exits (`flush`), so that
typing never competes with writes."""

from __future__ import annotations

import threading
from typing import Any

from vramlint.analysis import api
from vramlint.analysis.results import FileAnalysis
from vramlint.cache import analysis as cached
from vramlint.engine.reads import Deps
from vramlint.settings import Settings

FIRST_STORE_S = 0.5  # a document's first result is written this long after it is shown


class EditorCache:
    def __init__(self) -> None:
        self._timers: dict[str, tuple[threading.Timer, Any]] = {}
        self._lock = threading.Lock()

    def analyze(self, doc: Any, text: str, settings: Settings, overlays: dict[str, str],
                cancel: threading.Event | None, cached_only: bool = False) -> FileAnalysis | None:
        """`api.analyze_source` of the document's text (its memory estimates' searches for the
        least limit left for when asked: lsp/server.py `_settle`), from the cache while the document has no
        result with its memory estimate yet; `cached_only`: the cached result or None. A counts-only
        pass (`settings.memory` off: lsp/documents.py's progressive results) is neither looked up
        nor stored: it only bridges the wait for the full result, which is."""
        cache = cached.open_cache(settings) if settings.memory else None
        if cache is None:
            return None if cached_only else api.analyze_source(doc.path, text, settings, cancel=cancel,
                                                               defer_searches=True)
        first = doc.result is None or getattr(doc, "partial", False)
        if first:
            try:
                hit = cached.lookup_source(cache, doc.path, text, settings, overlays)
            except Exception:  # a bug of the cache must not cost the document its analysis
                hit = None
            if hit is not None or cached_only:
                return hit
        elif cached_only:
            return None
        result, deps = cached.analyze_source_recorded(doc.path, text, settings, cancel=cancel, defer_searches=True)
        self._store_later(doc.uri, lambda: cached.store_source(cache, doc.path, text, settings, result, deps),
                          FIRST_STORE_S if first else None)
        return result

    def _store_later(self, uri: str, store: Any, delay: float | None) -> None:
        """Write `store` after `delay` seconds, or (None) when the server exits; a newer result
        of the document replaces one still waiting."""
        timer = threading.Timer(delay or 0.0, self._run, (uri, store))
        timer.daemon = True  # the server exits without waiting for it: `exit` flushes (lsp/server.py)
        with self._lock:
            old = self._timers.pop(uri, None)
            if old is not None:
                old[0].cancel()
            self._timers[uri] = (timer, store)
        if delay is not None:
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
