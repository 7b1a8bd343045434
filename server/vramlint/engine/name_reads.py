"""Which module-level names of the analysed file a piece of the analysis read or wrote.

The language server analyses a file again on every edit, and most of its model classes do not
change. analysis/reuse.py keeps a class's result from the previous version of the file when
nothing it depends on changed; what a class's build depends on in the file is, besides its own
statement, the module-level names it read (a helper function, a constant, another class) and
what the statements binding them read in turn. The analysed file's namespace is a
`TrackedNamespace` (in the editor only, `Loader.track_names`): while a `NameLog` is active, its
reads and writes are noted there. Library modules keep plain dicts: what they hold changes only
when the loader drops them, which the reuse checks on its own.

Every way the evaluator reads a namespace goes through `get`, `in`, `[]`; anything that lists
it (`keys`, `values`, `items`, iteration, copies) marks the log as having read everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class NameLog:
    """What one top-level statement's run, or one model's build, did to the file's namespace."""

    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    everything: bool = False  # the namespace was listed (or copied): every name counts as read
    # An attribute of a class or a module was set (`Block.count += 1`, `nn.Foo = Bar`): state
    # other builds may read without naming it.
    shared: bool = False
    reads_files: bool = False  # it read or probed a file, or imported a module (engine/reads.py)


_active: NameLog | None = None


@contextmanager
def logging_names(log: NameLog) -> Iterator[NameLog]:
    """Note into `log` what is read from and written to tracked namespaces meanwhile (one
    analysis runs at a time: analysis/api.py's lock)."""
    global _active
    saved, _active = _active, log
    try:
        yield log
    finally:
        _active = saved


def note_shared_mutation() -> None:
    """protocol.generic_setattr set an attribute of a class or a module."""
    if _active is not None:
        _active.shared = True


# Files read, probed or imported in this process (engine/construction_memo.py: a remembered
# construction that read some notes it again when repeated, for the log active then).
file_reads = 0


def note_file_read() -> None:
    """engine/reads.py noted a file, a probe or an import."""
    global file_reads
    file_reads += 1
    if _active is not None:
        _active.reads_files = True


class TrackedNamespace(dict):  # type: ignore[type-arg]
    """The analysed file's module namespace, noting reads and writes into the active log."""

    __slots__ = ("statement_logs",)

    def __init__(self) -> None:
        super().__init__()
        # Per top-level statement of the module's last run (by id of the node): what its run did.
        self.statement_logs: dict[int, NameLog] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        if _active is not None:
            _active.reads.add(key)
        return dict.get(self, key, default)

    def __getitem__(self, key: Any) -> Any:
        if _active is not None:
            _active.reads.add(key)
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        if _active is not None:
            _active.reads.add(key)  # type: ignore[arg-type]
        return dict.__contains__(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        if _active is not None:
            _active.writes.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        if _active is not None:
            _active.writes.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        if _active is not None:
            _active.writes.add(key)
        return dict.pop(self, key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if _active is not None:
            _active.reads.add(key)
            _active.writes.add(key)
        return dict.setdefault(self, key, default)

    def _listed(self) -> None:
        if _active is not None:
            _active.everything = True

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._listed()  # writes of names not known in advance
        dict.update(self, *args, **kwargs)

    def keys(self) -> Any:
        self._listed()
        return dict.keys(self)

    def values(self) -> Any:
        self._listed()
        return dict.values(self)

    def items(self) -> Any:
        self._listed()
        return dict.items(self)

    def __iter__(self) -> Iterator[Any]:
        self._listed()
        return dict.__iter__(self)

    def copy(self) -> dict[Any, Any]:
        self._listed()
        return dict(dict.items(self))

    def popitem(self) -> tuple[Any, Any]:
        self._listed()
        return dict.popitem(self)

    def clear(self) -> None:
        self._listed()
        dict.clear(self)
