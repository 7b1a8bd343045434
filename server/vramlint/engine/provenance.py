"""Values that remember where they were read: an argparse default, a YAML key, a dataset.

A training script's batch size is rarely a literal at the call that uses it: it is
`DataLoader(batch_size=args.batch_size)`, and the 128 comes from `add_argument("--batch-size",
default=128)` forty lines up, or from `configs/train.yaml`. The evaluator's models of parsers and
configuration files return their values tagged with that origin, so the setup can say where each
value was read. A tagged value is a plain `int` / `float` / `str` to everything else (arithmetic,
comparisons, hashing, shapes); arithmetic on it gives an untagged result, as it should: `SEQ + 1`
is no longer the configured value.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vramlint.engine.values import SourceRef

__all__ = ["Origins", "place", "SourcedFloat", "SourcedInt", "SourcedStr", "source_of", "sourced", "untagged"]


class SourcedInt(int):
    source: str

    def __new__(cls, value: int, source: str) -> SourcedInt:
        obj = super().__new__(cls, value)
        obj.source = source
        return obj

    def __repr__(self) -> str:
        return int.__repr__(self)

    def __reduce__(self) -> tuple[Any, ...]:  # copy.deepcopy, pickling (results cross processes)
        return (SourcedInt, (int(self), self.source))


class SourcedFloat(float):
    source: str

    def __new__(cls, value: float, source: str) -> SourcedFloat:
        obj = super().__new__(cls, value)
        obj.source = source
        return obj

    def __repr__(self) -> str:
        return float.__repr__(self)

    def __reduce__(self) -> tuple[Any, ...]:  # copy.deepcopy, pickling (results cross processes)
        return (SourcedFloat, (float(self), self.source))


class SourcedStr(str):
    source: str

    def __new__(cls, value: str, source: str) -> SourcedStr:
        obj = super().__new__(cls, value)
        obj.source = source
        return obj

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __reduce__(self) -> tuple[Any, ...]:  # copy.deepcopy, pickling (results cross processes)
        return (SourcedStr, (str(self), self.source))


def sourced(value: Any, source: str) -> Any:
    """`value` tagged with `source` ("argparse default of --batch-size at train.py:12"); a bool,
    None or any other value is returned as it is (bool cannot be subclassed)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return SourcedInt(value, source)
    if isinstance(value, float):
        return SourcedFloat(value, source)
    if isinstance(value, str):
        return SourcedStr(value, source)
    return value


def source_of(value: Any) -> str | None:
    """Where a tagged value was read, else None."""
    return value.source if isinstance(value, (SourcedInt, SourcedFloat, SourcedStr)) else None


def untagged(value: Any) -> Any:
    """The plain value (for output that compares types, e.g. JSON schemas, `type(x) is int`)."""
    if isinstance(value, SourcedInt):
        return int(value)
    if isinstance(value, SourcedFloat):
        return float(value)
    if isinstance(value, SourcedStr):
        return str(value)
    return value


class Origins:
    """Where the script's data batches come from, by shape: a dataset stub notes the batch it
    makes (`note((128, 3, 32, 32), "CIFAR10 at train.py:20, DataLoader(batch_size=128) at
    train.py:22")`) and the model-call recorder cites it for an input of that shape. Matched by
    shape rather than identity, since `images.cuda()` / `.to(device)` make new tensor values."""

    def __init__(self) -> None:
        self._notes: list[tuple[tuple[Any, ...], str]] = []

    def note(self, shape: tuple[Any, ...], text: str) -> None:
        self._notes.append((tuple(shape), text))

    def find(self, shape: Any) -> str | None:
        """The latest note for exactly this shape."""
        key = tuple(shape) if isinstance(shape, (tuple, list)) else None
        return next((text for s, text in reversed(self._notes) if s == key), None)

    def mark(self) -> int:
        """A point to ask `since` about: what was noted after it."""
        return len(self._notes)

    def since(self, mark: int, shape: Any) -> str | None:
        """The latest note for `shape` made after `mark` (a collate function's own, say)."""
        key = tuple(shape) if isinstance(shape, (tuple, list)) else None
        return next((text for s, text in reversed(self._notes[mark:]) if s == key), None)

    def clear(self) -> None:
        self._notes.clear()


def place(ref: SourceRef | None, statement: bool = True, missing: str = "?") -> str:
    """`train.py:22`, the short place a source text cites: the line of `ref`'s statement (or of
    the node itself), `missing` when there is none."""
    if ref is None:
        return missing
    try:
        loc = ref.statement_location if statement else ref.location
    except Exception:  # a reference without a position: say nothing rather than fail
        return missing
    return f"{os.path.basename(loc.path)}:{loc.line}"
