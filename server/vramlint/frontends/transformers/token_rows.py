"""How many tokens a row of a Hugging Face training script holds, and where that was read.

A tokenizer call in a `dataset.map(...)` function (`tokenizer(batch["text"], truncation=True,
max_length=512)`) fixes the tokens per row; run_clm's `group_texts` chunks them to `block_size`;
a collator stacks the rows a DataLoader hands it into a `(batch, tokens)` batch. The rows are
plain lists of ints (the analysed code slices and concatenates them as Python does), so the
length's source travels beside them: the tokenizer records each length it makes
(`note_tokens`), `Dataset.map` ties the rows it makes to the latest one (`note_row`), and the
collator cites it (`row_source`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import place

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

MAX_NOTES = 64  # kept per loader: enough for one script's tokenizer calls and rows
_TOKENS = "hf.token_lengths"
_ROWS = "hf.rows"


@dataclass(frozen=True)
class TokenLength:
    """`value` tokens per row; exact (padded to it) or an upper bound (`exact=False`)."""

    value: int
    exact: bool
    text: str  # "at most 512 tokens: tokenizer(..., max_length=512) at train.py:30, padded per batch"


def where(ev: Evaluator) -> str:
    """The analysed code's current line, as `file.py:LINE` ("" when there is none)."""
    return place(ev.current_ref, missing="")


def note_tokens(ev: Evaluator, length: TokenLength) -> None:
    notes: list[TokenLength] = ev.loader.frontend_state.setdefault(_TOKENS, [])
    notes.append(length)
    del notes[:-MAX_NOTES]


def tokens_since(ev: Evaluator, mark: int) -> list[TokenLength]:
    """The lengths noted after `mark` (a value of `token_mark`)."""
    notes: list[TokenLength] = ev.loader.frontend_state.get(_TOKENS, [])
    return notes[mark:] if mark <= len(notes) else notes[-1:]


def token_mark(ev: Evaluator) -> int:
    return len(ev.loader.frontend_state.get(_TOKENS, []))


def note_row(ev: Evaluator, row: Any, length: TokenLength) -> None:
    """`row` (a dict the dataset hands out) holds `length` tokens per sequence column. Kept by
    identity (the row object itself is held, so its id is not reused)."""
    rows: list[tuple[Any, TokenLength]] = ev.loader.frontend_state.setdefault(_ROWS, [])
    rows.append((row, length))
    del rows[:-MAX_NOTES]


def row_source(ev: Evaluator, row: Any) -> TokenLength | None:
    rows: list[tuple[Any, TokenLength]] = ev.loader.frontend_state.get(_ROWS, [])
    return next((t for r, t in reversed(rows) if r is row), None)
