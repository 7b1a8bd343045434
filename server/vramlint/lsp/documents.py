"""Open documents and their analyses: the only state of the language server.

Analyses run off the event loop in one worker thread (the engine serialises analyses anyway),
debounced per document; an analysis whose document changed again (or closed) is cancelled. A
result is stored with the version and text it was computed from, together with what the loop
sends for it (diagnostics, status), computed in the worker: nothing on the loop parses the text or
resolves positions, however large the document.

Features wait for the current version's result while analyses are quick; once the running
analysis (of this document or another) has run for `SLOW_S`, they answer at once from the last
good result, on the lines whose text has not changed since (as pyright answers from its last good
state). A document with a syntax error keeps its last good analysis the same way.

Progressive results: a document's first analysis (which evaluates the libraries it imports: seconds
for transformers) runs without the memory estimate first. Its result is the document's result
until the estimate's replaces it: inlay hints, code lenses and hovers answer with the parameter
counts at once (the client is asked to refresh them after each). Diagnostics and the status are
sent for the full result only, so that a finding of the estimate (VL001) never disappears and
comes back. An analysis running over a second shows `$/progress` (progress.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pygls.uris import to_fs_path

from vramlint.analysis import api
from vramlint.analysis.results import FileAnalysis
from vramlint.engine import gc_policy
from vramlint.lsp.editor_settings import EditorSettings
from vramlint.lsp.persistent import EditorCache
from vramlint.lsp.progress import AnalysisProgress
from vramlint.settings import ConfigError, Settings, load_settings

# An edit's analysis starts after 5 ms of quiet: a burst of changes read one by one coalesces
# (without it, a quick version's result was published between two changes). Changes read together
# coalesce anyway: the analysis's task starts on the event loop's next turn.
DEBOUNCE_S = 0.005
IMPORTERS_DELAY_S = 0.015  # other open files importing the edited one: after its analysis has started
# The server's collector thresholds (`server.main`): young collections rarely, so that collections
# do not stall edits. Each edited version's evaluated module (classes, functions, their
# namespaces: cycles) is garbage only a collection frees: left to the thresholds, RSS climbed ~90
# MB in a burst and ~1 MB per 100 edits for good, and a young collection freed ~25 versions at
# once inside an analysis (20-28 ms on the 1,500-line benchmark: the editor's p95). So the server
# collects in full itself after every result, off the keystroke's path (2-4 ms there, one
# version's garbage: `gc.freeze` keeps the long-lived heap out of it), and when edits pause.
GC_THRESHOLDS = (50_000, 50, 100)
SLOW_S = 2.0  # an analysis running longer is slow: features stop waiting for results behind it
MAX_WAIT_S = 10.0  # a feature never waits longer than this for its document's current result


@dataclass
class Document:
    uri: str
    path: str
    version: int
    text: str
    result: FileAnalysis | None = None
    result_version: int = -1
    good: FileAnalysis | None = None  # the last analysis without a syntax error
    good_text: str = ""
    prepared: Any = None  # what the server made of `result` in the worker (its diagnostics...)
    partial: bool = False  # `result` is the counts-only first pass of `result_version` (progressive results)
    warming: bool = False  # the worker is resolving the positions features look up in `result` (see `_pass`)
    pending: asyncio.Task[Any] | None = None
    cancel: threading.Event | None = None  # set: the scheduled or running analysis is obsolete

    def view(self) -> tuple[FileAnalysis | None, str | None]:
        """The analysis features show, and the text it was made of when that is not the current
        text (features then answer only on lines whose text has not changed): the current
        version's result, else the last good one."""
        fresh = self.result if self.result_version == self.version else None
        if fresh is not None and (not fresh.errors or self.good is None):
            return fresh, None
        if self.good is None:
            return None, None
        return self.good, None if self.good_text == self.text else self.good_text


@dataclass
class Running:
    """The analysis the worker is running."""

    uri: str
    started: float  # time.monotonic()


class Documents:
    def __init__(self, on_result: Callable[[Document], None], log: Callable[[str], None],
                 warn: Callable[[str], None] | None = None,
                 prepare: Callable[[Document, int, str, FileAnalysis], Any] | None = None,
                 progress: Callable[[Document], AnalysisProgress | None] | None = None,
                 warm: Callable[[Document, str, FileAnalysis], None] | None = None) -> None:
        self.docs: dict[str, Document] = {}
        self.editor = EditorSettings()
        self.executor = _analysis_executor()
        self.running: Running | None = None
        self.prepare = prepare
        self.progress = progress
        self.warm = warm
        self.progressive = True  # a document's first analysis shows its counts first (see the docstring)
        self.on_result = on_result
        self._log = log
        self._warn = warn or log
        self.roots: list[str] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.config_errors: set[str] = set()  # configuration errors already shown to the user
        self._trim_handle: asyncio.TimerHandle | None = None
        self.disk = EditorCache()  # the persistent cache (lsp/persistent.py)

    # ------------------------------------------------------------------ messages
    def log(self, message: str) -> None:
        """Log from any thread: messages go out from the event loop (analyses run in a worker)."""
        self.on_loop(self._log, message)

    def on_loop(self, fn: Callable[[str], None], message: str) -> None:
        loop = self.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            fn(message)
        else:
            loop.call_soon_threadsafe(fn, message)

    # ------------------------------------------------------------------ settings
    def settings_for(self, path: str) -> Settings:
        """As the CLI: the project's configuration file over the editor's settings (the file is
        what CI reads, so it wins), the editor's settings over what the code shows."""
        return self._settings(path)[0]

    def _settings(self, path: str) -> tuple[Settings, set[str]]:
        """The settings, and the setup keys only the editor's settings give."""
        base = Settings(memory=True, extra_paths=self.editor.extra_paths)
        try:
            s = load_settings(Path(path).resolve(), base)
        except ConfigError as err:
            message = f"configuration error (using the editor's settings): {err}"
            self.log(message)
            if message not in self.config_errors:  # shown once: the editor's settings apply meanwhile
                self.config_errors.add(message)
                self.on_loop(self._warn, f"vramlint: {message}")
            s = base
        return replace(s, config={**self.editor.setup, **s.config}), set(self.editor.setup) - set(s.config)

    # ------------------------------------------------------------------ lifecycle
    def open(self, uri: str, version: int, text: str) -> Document:
        doc = Document(uri, to_fs_path(uri) or uri, version, text)
        self.docs[uri] = doc
        self.schedule(doc, delay=0.0)
        return doc

    def change(self, uri: str, version: int, text: str) -> None:
        doc = self.docs.get(uri)
        if doc is None:
            return
        doc.version, doc.text = version, text
        self.schedule(doc, delay=DEBOUNCE_S)
        self._importers_again(doc, delay=IMPORTERS_DELAY_S)

    def close(self, uri: str) -> None:
        doc = self.docs.pop(uri, None)
        if doc is None:
            return
        if doc.pending is not None:
            doc.pending.cancel()
        if doc.cancel is not None:
            doc.cancel.set()
        # Closed without saving, its unsaved text no longer applies: importers read the disk again.
        self._importers_again(doc, delay=0.0)
        self._trim_later()

    def _importers_again(self, doc: Document, delay: float) -> None:
        """Other open files that may import `doc`: analyse them again too. Their results are
        stale until then (a hover waits for the new one while analyses are quick)."""
        stem = Path(doc.path).stem
        for other in self.docs.values():
            if other is not doc and _may_import(other.text, stem):
                other.result_version = -1
                self.schedule(other, delay=delay)

    def refresh_all(self) -> None:
        for doc in self.docs.values():
            self.schedule(doc, delay=0.0)

    # ------------------------------------------------------------------ analysis
    def schedule(self, doc: Document, delay: float) -> None:
        self.loop = asyncio.get_running_loop()
        if doc.pending is not None and not doc.pending.done():
            doc.pending.cancel()
        if doc.cancel is not None:
            doc.cancel.set()  # its analysis, queued or running, is of an older text: stop it
        doc.cancel = threading.Event()
        doc.pending = asyncio.ensure_future(self._run(doc, doc.version, delay, doc.cancel))

    async def _run(self, doc: Document, version: int, delay: float, cancel: threading.Event) -> None:
        if delay:
            await asyncio.sleep(delay)
        if doc.version != version or cancel.is_set():
            return
        progress = self.progress(doc) if self.progress is not None else None
        if progress is not None:
            progress.start()
        ended = "cancelled"
        try:
            if doc.result is None and self.progressive:
                # A result the persistent cache holds (a window reopened) is shown at once, whole.
                if await self._pass(doc, version, cancel, memory=True, cached_only=True):
                    ended = "done"
                    return
                if doc.version != version or cancel.is_set():
                    return
                # The first analysis: the counts, then the estimate (see the module's docstring).
                if not await self._pass(doc, version, cancel, memory=False):
                    return
                if progress is not None:
                    progress.report("parameter counts shown; estimating memory")
            if await self._pass(doc, version, cancel, memory=True):
                ended = "done"
        finally:
            if progress is not None:
                progress.end(ended)

    async def _pass(self, doc: Document, version: int, cancel: threading.Event, memory: bool,
                    cached_only: bool = False) -> bool:
        """One analysis of `doc` (with the memory estimate or not) in the worker, its result
        stored and sent; False if cancelled or the document moved on (the result is dropped), or
        (`cached_only`) if the persistent cache has no result for it."""
        loop = asyncio.get_running_loop()
        overlays = {d.path: d.text for d in self.docs.values()}
        text = doc.text
        done = await loop.run_in_executor(self.executor, self._analyze, doc, version, text, overlays, cancel, memory,
                                          cached_only)
        if done is None or doc.version != version or self.docs.get(doc.uri) is not doc:
            return False  # cancelled, or the document moved on: this result is for an older version
        result, prepared = done
        if memory and (doc.result is None or doc.partial):
            # A document's first full result: what its analysis loaded (library modules, the file's
            # parse tree, its models while it is not edited) lives long; out of the collector's
            # full scans, the collections after each result take a third as long with two
            # files open. The price: this first version of the document, once replaced by an edit
            # or closed, is never freed (one version per document opened).
            gc_policy.before_lasting_freeze()
            gc.collect()
            gc.freeze()
        doc.result, doc.result_version, doc.prepared, doc.partial = result, version, prepared, not memory
        if not result.errors:
            doc.good, doc.good_text = result, text
        # Diagnostics first; then, in the worker, what only the features need (their positions):
        # features wait for it (`current`), so that nothing on the loop resolves positions.
        doc.warming = self.warm is not None
        self.on_result(doc)
        if self.warm is not None:
            try:
                await loop.run_in_executor(self.executor, self._warmed, doc, text, result)
            finally:
                doc.warming = False
        # Not awaited: features do not wait for them, an edit arriving meanwhile queues behind them.
        loop.run_in_executor(self.executor, self._next_edit_ready, doc)
        loop.run_in_executor(self.executor, gc.collect)  # the replaced version's garbage (see GC_THRESHOLDS)
        self._trim_later()
        return True

    def _trim_later(self) -> None:
        """Once edits pause, give the memory the analyses freed back to the system."""
        if self._trim_handle is not None:
            self._trim_handle.cancel()
        self._trim_handle = asyncio.get_running_loop().call_later(
            1.0, lambda: asyncio.get_running_loop().run_in_executor(self.executor, _release_free_memory))

    def _analyze(self, doc: Document, version: int, text: str, overlays: dict[str, str],
                 cancel: threading.Event, memory: bool = True,
                 cached_only: bool = False) -> tuple[FileAnalysis, Any] | None:
        """In the worker: the analysis of `text` (without the memory estimate: `memory` False),
        and what the server makes of it for the loop (`prepare`); None when cancelled (or, with
        `cached_only`, when the persistent cache has no result)."""
        if cancel.is_set():
            return None
        path = doc.path
        try:
            with self.busy(doc.uri):
                settings, editor_only = self._settings(path)
                settings = settings if memory else replace(settings, memory=False)
                api.set_open_files(settings, overlays, self.roots or [os.path.dirname(path)])
                found = self.disk.analyze(doc, text, settings, overlays, cancel, cached_only)  # lsp/persistent.py
                if found is None:
                    return None
                result = found
                editor_sources(result, settings, editor_only)
        except api.AnalysisCancelled:
            return None
        except Exception as err:  # a bug must not take the server down: log it, answer empty
            self.log(f"analysis of {path} failed: {type(err).__name__}: {err}")
            result = FileAnalysis(path)
        return result, self._prepared(doc, version, text, result)

    @contextmanager
    def busy(self, uri: str) -> Iterator[None]:
        """Marks work of the analysis worker (an analysis, quick fixes' checks): see `slow`."""
        self.running = Running(uri, time.monotonic())
        try:
            yield
        finally:
            self.running = None

    def _next_edit_ready(self, doc: Document) -> None:
        """In the worker, once a result is shown: what the document's next edit reuses, made
        while the user is not typing (the first edit after a whole parse paid for it)."""
        try:
            api.prepare_next_edit(doc.path)
        except Exception as err:
            self.log(f"preparing the next edit of {doc.path} failed: {type(err).__name__}: {err}")

    def _warmed(self, doc: Document, text: str, result: FileAnalysis) -> None:
        assert self.warm is not None
        try:
            self.warm(doc, text, result)
        except Exception as err:
            self.log(f"resolving the positions of {doc.path} failed: {type(err).__name__}: {err}")

    def _prepared(self, doc: Document, version: int, text: str, result: FileAnalysis) -> Any:
        if self.prepare is None:
            return None
        try:
            return self.prepare(doc, version, text, result)
        except Exception as err:
            self.log(f"preparing the results of {doc.path} failed: {type(err).__name__}: {err}")
            return None

    def slow(self) -> bool:
        """Whether the running analysis has run long enough that features stop waiting."""
        run = self.running
        return run is not None and time.monotonic() - run.started > SLOW_S

    async def current(self, uri: str, final: bool = False) -> Document | None:
        """The document, once its current version's result is in (`final`: with its memory
        estimate, not only the counts of a first analysis), or at once (its last result stands)
        when analyses are slow; see the module's docstring."""
        doc = self.docs.get(uri)
        if doc is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_WAIT_S
        rescheduled = False
        while ((doc.result_version != doc.version or doc.warming or (final and doc.partial))
               and self.docs.get(uri) is doc):
            if self.slow() or loop.time() > deadline:
                break
            task = doc.pending
            if task is None or task.done():
                if rescheduled:
                    break
                self.schedule(doc, delay=0.0)  # nothing scheduled produced it (a dropped result)
                rescheduled, task = True, doc.pending
            assert task is not None
            await asyncio.wait({task}, timeout=0.05)
        return doc


EDITOR_SOURCE = "editor settings"


def editor_sources(fa: FileAnalysis, settings: Settings, keys: set[str]) -> None:
    """The editor's settings travel in `settings.config`, whose values `resolve_setup` credits to
    the configuration file: the setup values only the editor gave say so instead."""
    if not keys:
        return
    from vramlint.settings import Setup, Sourced, resolve_setup

    probe = resolve_setup(Settings(config_file=settings.config_file,
                                   config={k: settings.config[k] for k in keys}), "", fa.path)
    for m in fa.models:
        if m.setup is None:
            continue
        values = dict(m.setup.values)
        relabel = [k for k in keys if k in values and values[k].source == probe.source(k)]
        for k in relabel:
            values[k] = Sourced(values[k].value, EDITOR_SOURCE)
        if relabel:
            m.setup = Setup(values)


def _analysis_executor() -> ThreadPoolExecutor:
    """The analysis worker: one thread, named and with the stack `api._with_big_stack` gives an
    analysis (which then runs on it, instead of starting a thread per analysis)."""
    old = threading.stack_size()
    threading.stack_size(api.ANALYSIS_STACK_BYTES)
    try:
        executor = ThreadPoolExecutor(max_workers=1, initializer=_name_analysis_thread)
        executor.submit(lambda: None).result()  # the thread starts now, with that stack
    finally:
        threading.stack_size(old)
    return executor


def _name_analysis_thread() -> None:
    threading.current_thread().name = api.ANALYSIS_THREAD


def _may_import(text: str, stem: str) -> bool:
    """Whether `text` has an import statement naming module `stem` (cheap, textual: a false
    positive costs one analysis). Linear: `[ \\t]*`, not `\\s*`, which would rescan a run of
    blank lines from each of its lines."""
    import re

    return re.search(rf"^[ \t]*(from|import)[ \t][^\n]*\b{re.escape(stem)}\b", text, re.M) is not None


def _release_free_memory() -> None:
    """Give the heap pages an analysis freed back to the system (glibc keeps them otherwise: the
    server's RSS would stay at its largest analysis). A no-op where malloc_trim does not exist.
    Edited versions' garbage is collected first (see GC_THRESHOLDS)."""
    global _trim
    gc.collect()
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)


_trim: Any = None
