"""transformers' data collators, as batch shapes: a list of rows in, a dict of `(batch, tokens)` tensors out.

The collators are built from transformers' own source (their dataclass fields, `__post_init__`'s
checks: `mlm=True` needs a mask token); only the calls are vramlint's, since the real ones pad
through the tokenizer's vocabulary (data/data_collator.py in transformers 5.17.0):

- `DataCollatorForLanguageModeling` (`DataCollatorMixin.__call__` -> `torch_call`): the rows
  padded to the longest (rounded up to `pad_to_multiple_of`), `labels` a copy of `input_ids`
  (`mlm=False`; masked positions with `mlm=True`: the same shape).
- `DataCollatorWithPadding`: every sequence column padded to the longest; other columns stacked.
- `DataCollatorForSeq2Seq`: `labels` padded to their own longest, the rest as above.
- `default_data_collator` / `DefaultDataCollator`: stacked as they are (rows of equal length).

Each column of ints is an int64 tensor; a row's scalar label a `(batch,)` tensor; text columns are
left out as transformers leaves them. The tokens' source is the row's (token_rows.py): the
tokenizer call or `map` that made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import sourced
from vramlint.engine.values import Instance, NativeFunction, Unknown
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.frontends.transformers.token_rows import row_source, where

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

_LM = "DataCollatorForLanguageModeling"


def _length(v: Any) -> Any:
    """A sequence column's length in one row (None: not a sequence)."""
    if isinstance(v, TensorValue):
        return v.shape[0] if isinstance(v.shape, tuple) and len(v.shape) == 1 else None
    if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v[:64]):
        return len(v)
    return None


def _column(ev: Evaluator, rows: list[Any], col: str, pad: bool, multiple: Any) -> Any:
    """The batch tensor of one column, or None for a column collators leave out (text)."""
    values = [r.get(col) for r in rows if isinstance(r, dict)]
    first = values[0] if values else None
    b = len(rows)
    if first is None or isinstance(first, str):
        return None
    if isinstance(first, Unknown):
        return first
    if isinstance(first, bool) or isinstance(first, (int, float)):
        return TensorValue((b,), "float32" if isinstance(first, float) else "int64")
    lengths = [_length(v) for v in values]
    if any(n is None or isinstance(n, Unknown) for n in lengths):
        return Unknown(f"collating column {col!r}: its rows are not sequences of known length", ev.current_ref)
    if not pad and len(set(lengths)) > 1:
        raise ev.raise_error("ValueError", f"rows of column {col!r} have different lengths and are not padded")
    n = max(lengths)
    if pad and isinstance(multiple, int) and multiple > 0:
        n = -(-n // multiple) * multiple
    dtype = first.dtype if isinstance(first, TensorValue) else "int64"
    return TensorValue((b, n), dtype)


def collate(ev: Evaluator, rows: Any, who: str, pad: bool = True, multiple: Any = None,
            lm_labels: bool = False, own_labels: bool = False) -> Any:
    """The batch dict a collator makes of `rows` (a list of dicts, or of id lists for the LM collator)."""
    if isinstance(rows, tuple):
        rows = list(rows)
    if not isinstance(rows, list) or not rows:
        return rows if isinstance(rows, Unknown) else Unknown(f"{who}: expected a non-empty list of rows", ev.current_ref)
    if not isinstance(rows[0], dict):  # DataCollatorForLanguageModeling also takes bare id lists
        rows = [{"input_ids": r} for r in rows]
    batch: dict[str, Any] = {}
    columns = [c for c in rows[0] if not (own_labels and c == "labels")]
    for col in columns:
        t = _column(ev, rows, col, pad, multiple)
        if t is not None:
            batch[col] = t
    if own_labels and "labels" in rows[0]:
        t = _column(ev, rows, "labels", pad, multiple)
        if t is not None:
            batch["labels"] = t
    ids = batch.get("input_ids")
    if lm_labels and isinstance(ids, TensorValue):
        batch["labels"] = TensorValue(ids.shape, ids.dtype)
    if isinstance(ids, TensorValue) and isinstance(ids.shape, tuple) and len(ids.shape) == 2:
        _cite(ev, batch, rows[0], who, ids.shape)
    return batch


def _cite(ev: Evaluator, batch: dict[str, Any], row: Any, who: str, shape: tuple[Any, ...]) -> None:
    """The tokens' source (the tokenizer call or map that made the row) on the batch's length."""
    length = row_source(ev, row)
    at = where(ev)
    text = f"{length.text if length is not None else 'rows of the dataset'}; {shape[0]} rows collated by {who}" + \
        (f" at {at}" if at else "")
    n = shape[1]
    if length is not None and length.value == n:
        n = sourced(n, length.text)
    new = (shape[0], n)
    for col, t in batch.items():
        if isinstance(t, TensorValue) and t.shape == shape:
            batch[col] = TensorValue(new, t.dtype)
    ev.origins.note(new, text)


def _field(inst: Any, name: str, default: Any = None) -> Any:
    return inst.attrs.get(name, default) if isinstance(inst, Instance) else default


def _is_lm(inst: Any) -> bool:
    return isinstance(inst, Instance) and any(c.name == _LM for c in inst.cls.mro)


def mixin_call(ev: Evaluator, func: Any) -> NativeFunction:
    """DataCollatorMixin.__call__(self, features): the LM collator's batch (labels from the ids),
    DefaultDataCollator's stacked rows; other subclasses run their own code."""
    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        inst = a[0]
        rows = a[1] if len(a) > 1 else k.get("features")
        name = inst.cls.name if isinstance(inst, Instance) else "collator"
        if _is_lm(inst):
            return collate(ev2, rows, name, True, _field(inst, "pad_to_multiple_of"), lm_labels=True)
        if isinstance(inst, Instance) and any(c.name == "DefaultDataCollator" for c in inst.cls.mro):
            return collate(ev2, rows, name, pad=False)
        return ev2.call(func, a, k)
    return NativeFunction("DataCollatorMixin.__call__", impl)


def _padding_call(name: str, seq2seq: bool) -> Any:
    def rule(ev: Evaluator, func: Any) -> NativeFunction:
        def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
            inst = a[0]
            rows = a[1] if len(a) > 1 else k.get("features")
            padding = _field(inst, "padding", True)
            if padding == "max_length" and isinstance(_field(inst, "max_length"), int):
                multiple = _field(inst, "max_length")  # every row padded to max_length: a multiple of it at least
                return collate(ev2, rows, name, True, multiple, own_labels=seq2seq)
            return collate(ev2, rows, name, padding is not False, _field(inst, "pad_to_multiple_of"), own_labels=seq2seq)
        return NativeFunction(f"{name}.__call__", impl)
    return rule


def default_data_collator(ev: Evaluator, func: Any) -> NativeFunction:
    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        return collate(ev2, a[0] if a else k.get("features"), "default_data_collator", pad=False)
    return NativeFunction("default_data_collator", impl)


_MODULE = "transformers.data.data_collator"
FUNCTION_RULES = {
    f"{_MODULE}.DataCollatorMixin.__call__": mixin_call,
    f"{_MODULE}.DataCollatorWithPadding.__call__": _padding_call("DataCollatorWithPadding", False),
    f"{_MODULE}.DataCollatorForSeq2Seq.__call__": _padding_call("DataCollatorForSeq2Seq", True),
    f"{_MODULE}.default_data_collator": default_data_collator,
}
