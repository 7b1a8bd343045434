"""A progress bar on stderr for `check` runs over several files that take a while (rich's): shown
only once the run has lasted `delay` seconds (a quick run prints nothing extra), only when stderr
is a terminal, never with --quiet / --silent, and gone when the run ends (transient).

When stdout is the terminal too, the streamed results are printed above the bar (rich redirects
stdout while the bar shows, so lines and bar do not overwrite each other); when stdout is a file
or a pipe, it is left alone."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # (rich is imported when a bar is shown: a warm run of a file takes less than its import)
    from rich.console import Console
    from rich.progress import Progress

DELAY = 2.0  # seconds before the bar appears


class FileProgress:
    def __init__(self, total: int, enabled: bool = True, delay: float = DELAY, stream: TextIO | None = None,
                 console: Console | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 1 and (console is not None or _is_terminal(self.stream))
        self.total, self.delay, self.done = total, delay, 0
        self._console = console
        self._progress: Progress | None = None
        self._task: object = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> FileProgress:
        if self.enabled:
            self._timer = threading.Timer(self.delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _show(self) -> None:
        with self._lock:
            if self._timer is None:  # already finished
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            console = self._console or Console(file=self.stream)
            self._progress = Progress(TextColumn("analysing"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=console, transient=True,
                                      redirect_stdout=_is_terminal(sys.stdout), redirect_stderr=False)
            self._task = self._progress.add_task("files", total=self.total, completed=self.done)
            self._progress.start()

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def advance(self) -> None:
        with self._lock:
            self.done += 1
            if self._progress is not None:
                self._progress.update(self._task, completed=self.done)  # type: ignore[arg-type]

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._progress is not None:
                self._progress.stop()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
