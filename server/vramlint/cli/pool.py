"""`vramlint check` over many files: every file gets a result, in input order, each as soon as it
and the files before it are done, whatever one file does to the analysis.

- An exception escaping the analysis (a bug of vramlint) becomes a VL000 error of that file,
  located at its line 1, instead of ending the run.
- With several jobs, files are analysed in worker processes, one file at a time per worker, so
  the parent knows which file each worker holds: a worker that dies, or that holds one file
  longer than `FILE_TIME_LIMIT`, is replaced and only that file gets a VL000 error. The engine
  budgets each analysis itself; this limit is the last resort when that budget fails.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from vramlint.analysis.results import FileAnalysis, UnknownInfo, detached
from vramlint.cache import analysis as cached
from vramlint.cache.store import Cache
from vramlint.engine.values import Location
from vramlint.settings import Settings

# Seconds one file may hold a worker process before it is stopped: generous, since the engine's
# own budget should end any analysis long before (a big real file takes seconds).
FILE_TIME_LIMIT = 300.0


def internal_error(path: str, reason: str) -> FileAnalysis:
    """A file whose analysis broke: one error at its line 1 (VL000 in SARIF and GitHub output)."""
    return FileAnalysis(path, errors=[UnknownInfo(f"internal error: {reason}", Location(path, 1, 0, 1, 0))])


def analyze_safely(path: str, settings: Settings, cache: Cache | None = None) -> FileAnalysis:
    """`analyze_file` (through the cache, if any), with an exception escaping it reported as the
    file's error."""
    try:
        return cached.analyze_file(path, settings, cache)
    except Exception as err:  # a bug of ours: the other files must still get their results
        if os.environ.get("VRAMLINT_DEBUG"):
            traceback.print_exc(file=sys.stderr)
        return internal_error(path, f"{type(err).__name__}: {err} (VRAMLINT_DEBUG=1 shows the traceback)")


def analyze_all(files: list[str], settings: Settings, jobs: int, cache: Cache | None = None) -> Iterator[FileAnalysis]:
    """Every file's result in input order; with several jobs, in worker processes. With a cache,
    the files whose entry is valid are answered from it here, before any worker starts; the
    workers write the others' entries."""
    hits: dict[int, FileAnalysis] = {}
    if cache is not None and jobs > 1 and len(files) > 1:
        for i, f in enumerate(files):
            hit = _cached(cache, f, settings)
            if hit is not None:
                hits[i] = hit
    todo = [f for i, f in enumerate(files) if i not in hits]
    if jobs <= 1 or len(todo) <= 1:
        fresh: Iterator[FileAnalysis] = (analyze_safely(f, settings, cache) for f in todo)
    else:
        fresh = _Pool(settings, min(jobs, len(todo)), cache=cache).run(todo)
    for i in range(len(files)):
        yield hits[i] if i in hits else next(fresh)


def _cached(cache: Cache, path: str, settings: Settings) -> FileAnalysis | None:
    try:
        return cached.lookup_file(cache, path, settings)
    except Exception:  # a bug of the cache must not cost the file its analysis
        return None


# ---------------------------------------------------------------------- worker processes
def _serve(conn: Connection, settings: Settings, cache: Cache | None = None) -> None:
    """A worker: analyse the paths it is sent, one at a time, until it is sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        if path is None:
            return
        try:
            conn.send(detached(analyze_safely(path, settings, cache)))  # pickled whole before anything is written
        except Exception as err:  # a result that cannot cross the process boundary
            conn.send(internal_error(path, f"the result cannot be sent: {type(err).__name__}: {err}"))


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    index: int | None = None  # the file it is analysing
    since: float = 0.0


class _Pool:
    def __init__(self, settings: Settings, size: int, limit: float | None = None, cache: Cache | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.size = size
        self.limit = FILE_TIME_LIMIT if limit is None else limit

    def _start(self) -> _Worker:
        ours, theirs = multiprocessing.Pipe()
        process = multiprocessing.Process(target=_serve, args=(theirs, self.settings, self.cache), daemon=True,
                                          name="vramlint-worker")
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def run(self, files: list[str]) -> Iterator[FileAnalysis]:
        done: dict[int, FileAnalysis] = {}
        queued = iter(enumerate(files))
        workers = [self._start() for _ in range(self.size)]
        shown = 0
        try:
            while shown < len(files):
                for w in workers:
                    if w.index is None:
                        self._give(w, queued)
                self._collect(workers, files, done)
                while shown in done:
                    yield done.pop(shown)
                    shown += 1
        finally:
            for w in workers:
                _stop(w, gently=w.index is None)

    def _give(self, w: _Worker, queued: Iterator[tuple[int, str]]) -> None:
        job = next(queued, None)
        if job is not None:
            w.index, w.since = job[0], time.monotonic()
            w.conn.send(job[1])

    def _collect(self, workers: list[_Worker], files: list[str], done: dict[int, FileAnalysis]) -> None:
        """Wait for a result, a dead worker or a file over the limit; record what happened."""
        busy = [w for w in workers if w.index is not None]
        if not busy:
            return
        deadline = min(w.since for w in busy) + self.limit
        wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
             timeout=max(0.0, deadline - time.monotonic()))
        for i, w in enumerate(workers):
            if w.index is None:
                continue
            outcome = self._outcome(w, files[w.index])
            if outcome is None:
                continue
            result, healthy = outcome
            done[w.index] = result
            w.index = None
            if not healthy:
                _stop(w, gently=False)
                workers[i] = self._start()

    def _outcome(self, w: _Worker, path: str) -> tuple[FileAnalysis, bool] | None:
        """(the file's result, whether the worker can go on), or None while it is still working."""
        assert w.index is not None
        if w.conn.poll():
            try:
                return w.conn.recv(), True
            except (EOFError, OSError):
                pass  # it died while sending: reported below
            except Exception as err:  # an unreadable result: that file's error
                return internal_error(path, f"the result cannot be read: {type(err).__name__}: {err}"), False
        if not w.process.is_alive() or w.conn.closed:
            w.process.join(1)
            return internal_error(path, f"the worker process analysing this file died ({_exit(w.process)})"), False
        elapsed = time.monotonic() - w.since
        if elapsed >= self.limit:
            return internal_error(path, f"the analysis ran past the limit of {self.limit:g} s per file and was "
                                  "stopped"), False
        return None


def _exit(process: BaseProcess) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _stop(w: _Worker, gently: bool) -> None:
    """End a worker: an idle one is told to finish; a busy or broken one is killed."""
    if gently and w.process.is_alive():
        try:
            w.conn.send(None)
        except OSError:
            gently = False
        else:
            w.process.join(5)
    if w.process.is_alive():
        w.process.kill()
        w.process.join(5)
    w.conn.close()


__all__ = ["FILE_TIME_LIMIT", "analyze_all", "analyze_safely", "internal_error"]
