"""A model's setup as rows (label, value as text or None, where it came from), in one order, for
every renderer that lists it (`vramlint report`, the editor's hover)."""

from __future__ import annotations

from collections.abc import Iterator

from vramlint.settings import Setup

ROWS = (("batch_size", "batch size"), ("inputs", "inputs"), ("precision", "precision"), ("optimizer", "optimizer"),
        ("device", "GPU"), ("mode", "mode"), ("checkpointing", "checkpointing"), ("context", "context"))


def setup_rows(setup: Setup) -> Iterator[tuple[str, str | None, str]]:
    """No inputs: no row (the trace found none to show); a value neither given nor read from the
    code (a batch size): None, which a renderer says as "not given", never `None`."""
    for key, label in ROWS:
        value = setup[key]
        if key == "context" and value is None:  # not generating: no row
            continue
        if key == "inputs":
            if not value:
                continue
            value = ", ".join(f"{list(s.shape)} {s.dtype}" for s in value)
        yield label, None if value is None else str(value), setup.source(key)
