"""The `datasets` package (Hugging Face), as vramlint's own stub: never installed, never read.

A dataset is one row and a row count: `load_dataset(name, ...)` reads nothing (no network, no
file), so its rows are unknown: a row's column is a text placeholder (`"text"` or whatever the
code asks), marked as read from no data. What fixes a training batch is what the script does to
them: `.map(fn, batched=True)` runs `fn` on a one-row batch (`{"text": ["<text>"]}`), so the
tokenizer call in it runs (transformers/tokenization.py) and the rows become what `fn` returns
(run_clm's `group_texts` chunks to `block_size`). `dataset[0]` is that row (the same dict each
time, which the data loader's `collate_fn([dataset[0]] * batch_size)` stacks); the tokens' source
goes with it (transformers/token_rows.py).

Modelled: `load_dataset` (a `DatasetDict` without `split=`, a `Dataset` with it), `Dataset.from_dict`,
`from_list`, `.map`, `.filter`, `.shuffle`, `.select`, `.take`, `.skip`, `.train_test_split`,
`.with_format` / `set_format` (`"torch"`: a row's id lists become int64 tensors), `.remove_columns`,
`.rename_column`, `.column_names`, `len()`, iteration (one row), `ds["train"]` of a DatasetDict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import sourced
from vramlint.engine.values import (
    ClassMethod,
    ClassValue,
    Instance,
    ModuleValue,
    NativeFunction,
    Property,
    Unknown,
    UnknownData,
)
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.frontends.transformers.token_rows import (
    TokenLength,
    note_row,
    row_source,
    token_mark,
    tokens_since,
    where,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

Impl = Callable[["Evaluator", tuple[Any, ...], dict[str, Any]], Any]
_STATE = "hf_datasets"
_SAME = ("shuffle", "skip", "flatten_indices", "sort", "cast", "cast_column", "to_iterable_dataset",
         "with_transform", "set_transform", "shard", "class_encode_column", "flatten", "unique_rows")


class UnknownRow(dict):  # type: ignore[type-arg]
    """The row of a dataset whose data is not read: any column is a text placeholder."""

    def __init__(self, name: str, where_: str) -> None:
        super().__init__()
        self.name = name
        self.where = where_

    def text(self, col: Any) -> Any:
        return sourced(f"<{col}>", f"a row of {self.name} ({self.where}): its text is not read")

    def __missing__(self, key: Any) -> Any:
        return self.text(key)


# ---------------------------------------------------------------------- a dataset's state
def _new(ev: Evaluator, cls_name: str, row: Any, count: Any, name: str, fmt: Any = None) -> Instance:
    ds = Instance(_classes(ev.loader)[cls_name])
    ds.attrs.update({"_row": row, "_count": count, "_name": name, "_format": fmt})
    return ds


def _row(ds: Any) -> Any:
    return ds.attrs.get("_row") if isinstance(ds, Instance) else None


def _derived(ev: Evaluator, ds: Instance, row: Any = None, count: Any = None, fmt: Any = "same") -> Instance:
    out = _new(ev, ds.cls.name, _row(ds) if row is None else row,
               ds.attrs.get("_count") if count is None else count, ds.attrs.get("_name", "dataset"),
               ds.attrs.get("_format") if fmt == "same" else fmt)
    if "_splits" in ds.attrs:
        out.attrs["_splits"] = ds.attrs["_splits"]
    return out


def _unknown_count(ev: Evaluator, ds: Instance) -> UnknownData:
    return UnknownData(f"the number of rows of {ds.attrs.get('_name')} (its data is not read)", ev.current_ref)


# ---------------------------------------------------------------------- map
def _as_batch(row: Any) -> Any:
    """A one-row batch of `row`: each column a list of one value."""
    if isinstance(row, UnknownRow):
        batch = UnknownBatch(row)
        return batch
    return {k: [v] for k, v in row.items()} if isinstance(row, dict) else row


class UnknownBatch(dict):  # type: ignore[type-arg]
    """A one-row batch of an UnknownRow: any column is a list of one text placeholder."""

    def __init__(self, row: UnknownRow) -> None:
        super().__init__()
        self.row = row

    def __missing__(self, key: Any) -> Any:
        return [self.row.text(key)]


def _first_row(ev: Evaluator, out: Any, batched: bool) -> Any:
    if isinstance(out, Unknown) or out is None:
        return out
    if not isinstance(out, dict):
        return Unknown(f"map's function returned a {type(out).__name__}, not a dict", ev.current_ref)
    if not batched:
        return out
    row: dict[str, Any] = {}
    for k, v in out.items():
        if isinstance(v, TensorValue) and isinstance(v.shape, tuple) and v.shape:
            row[k] = TensorValue(v.shape[1:], v.dtype)
        elif isinstance(v, (list, tuple)):
            if not v:
                return Unknown(f"map's function returned no rows for column {k!r} (from a one-row batch: "
                               f"vramlint's placeholder text was shorter than what it keeps)", ev.current_ref)
            row[k] = v[0]
        else:
            row[k] = Unknown(f"column {k!r} returned by map's function is not a list", ev.current_ref)
    return row


def _row_length(row: dict[str, Any]) -> Any:
    ids = row.get("input_ids")
    if isinstance(ids, list):
        return len(ids)
    if isinstance(ids, TensorValue) and isinstance(ids.shape, tuple) and len(ids.shape) == 1:
        return ids.shape[0]
    return None


def _map(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    ds: Instance = a[0]
    fn = a[1] if len(a) > 1 else k.get("function")
    if fn is None:
        return ds
    batched = k.get("batched", False)
    if isinstance(batched, Unknown):
        return batched
    row = _row(ds)
    if not isinstance(row, dict):
        return _derived(ev, ds, row=row if isinstance(row, Unknown) else Unknown("rows not known", ev.current_ref))
    arg = _as_batch(row) if batched else row
    args: list[Any] = [arg]
    if k.get("with_indices"):
        args.append([0] if batched else 0)
    if k.get("with_rank"):
        args.append(0)
    given = k.get("fn_kwargs")
    extra: dict[str, Any] = given if isinstance(given, dict) else {}
    mark = token_mark(ev)
    at = where(ev)
    out = _first_row(ev, ev.call(fn, tuple(args), dict(extra)), bool(batched))
    if not isinstance(out, dict):
        return _derived(ev, ds, row=out if isinstance(out, Unknown) else Unknown("map gave no row", ev.current_ref))
    new = _merged(row, out, k.get("remove_columns"))
    count = ds.attrs.get("_count") if not batched else UnknownData("rows after a batched map", ev.current_ref)
    mapped = _derived(ev, ds, row=new, count=count)
    before = row_source(ev, row)
    _note_tokens(ev, new, tokens_since(ev, mark) or ([before] if before is not None else []),
                 getattr(fn, "name", "fn"), at)
    return mapped


def _merged(row: dict[str, Any], out: dict[str, Any], remove: Any) -> dict[str, Any]:
    """The input columns (less `remove_columns`; all of an unknown row's when it is not a list
    of names) updated by the function's output, as datasets merges them."""
    if isinstance(row, UnknownRow):
        base: dict[str, Any] = {}  # its columns are not known: only what the function returns is
    else:
        drop = {remove} if isinstance(remove, str) else set(remove) if isinstance(remove, (list, tuple)) else set()
        if isinstance(remove, Unknown):
            drop = set(row)
        base = {c: v for c, v in row.items() if c not in drop}
    return {**base, **out}


def _note_tokens(ev: Evaluator, row: dict[str, Any], made: list[TokenLength], fn_name: str, at: str) -> None:
    n = _row_length(row)
    if not isinstance(n, int):
        return
    same = next((t for t in reversed(made) if t.value == n), None)
    if same is not None:
        note_row(ev, row, same)
    elif made:  # the function reshaped the tokens (run_clm's group_texts: chunks of block_size)
        note_row(ev, row, TokenLength(n, True, f"{n} tokens per row: dataset.map({fn_name}) at {at}, "
                                               f"after {made[-1].text}"))


# ---------------------------------------------------------------------- other methods
def _formatted(row: Any, fmt: Any) -> Any:
    """A row as `with_format("torch")` hands it out: id lists as int64 tensors."""
    if fmt not in ("torch", "pt") or not isinstance(row, dict) or isinstance(row, UnknownRow):
        return row
    out: dict[str, Any] = {}
    for c, v in row.items():
        if isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v[:64]):
            out[c] = TensorValue((len(v),), "int64")
        elif isinstance(v, list) and v and all(isinstance(x, float) for x in v[:64]):
            out[c] = TensorValue((len(v),), "float32")
        elif isinstance(v, int) and not isinstance(v, bool):
            out[c] = TensorValue((), "int64")
        else:
            out[c] = v
    return out


def _getitem(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    ds: Instance = a[0]
    idx = a[1]
    row = _row(ds)
    if isinstance(idx, str):
        return Unknown(f"the column {idx!r} of {ds.attrs.get('_name')}: all its rows (not read)", ev.current_ref)
    if isinstance(idx, int) and not isinstance(idx, bool):
        count = ds.attrs.get("_count")
        if isinstance(count, int) and not -count <= idx < count:
            raise ev.raise_error("IndexError", f"Index {idx} out of range for dataset of size {count}.")
        fmt = ds.attrs.get("_format")
        if fmt in ("torch", "pt") and isinstance(row, dict):
            cached = ds.attrs.get("_formatted")
            if cached is None:
                cached = _formatted(row, fmt)
                ds.attrs["_formatted"] = cached
                _carry_note(ev, row, cached)
            return cached
        return row
    return Unknown(f"{ds.attrs.get('_name')}[{idx!r}]: only a row by its index is modelled", ev.current_ref)


def _carry_note(ev: Evaluator, row: Any, new: Any) -> None:
    t = row_source(ev, row)
    if t is not None:
        note_row(ev, new, t)


def _with_format(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    fmt = a[1] if len(a) > 1 else k.get("type")
    out = _derived(ev, a[0], fmt=fmt)
    return out


def _set_format(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    ds: Instance = a[0]
    ds.attrs["_format"] = a[1] if len(a) > 1 else k.get("type")
    ds.attrs.pop("_formatted", None)
    return None


def _same(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return _derived(ev, a[0])


def _select(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    idx = a[1] if len(a) > 1 else k.get("indices")
    n = len(idx) if isinstance(idx, (list, tuple, range)) else None
    return _derived(ev, a[0], count=n)


def _take(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    n = a[1] if len(a) > 1 else k.get("n")
    count = a[0].attrs.get("_count")
    if isinstance(n, int) and isinstance(count, int):
        n = min(n, count)
    return _derived(ev, a[0], count=n if isinstance(n, int) else None)


def _filter(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """Its function is run on the row (its problems are the script's), the rows kept: which pass is data."""
    ds: Instance = a[0]
    fn = a[1] if len(a) > 1 else k.get("function")
    row = _row(ds)
    if fn is not None and isinstance(row, dict):
        ev.call(fn, (_as_batch(row) if k.get("batched") else row,), {})
    return _derived(ev, ds, count=UnknownData("rows that pass a filter", ev.current_ref))


def _remove_columns(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    ds: Instance = a[0]
    row = _row(ds)
    cols = a[1] if len(a) > 1 else k.get("column_names")
    if isinstance(row, dict) and not isinstance(row, UnknownRow):
        drop = {cols} if isinstance(cols, str) else set(cols) if isinstance(cols, (list, tuple)) else set()
        row = {c: v for c, v in row.items() if c not in drop}
    return _derived(ev, ds, row=row)


def _rename_column(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    ds: Instance = a[0]
    row = _row(ds)
    if len(a) > 2 and isinstance(row, dict) and not isinstance(row, UnknownRow):
        row = {(a[2] if c == a[1] else c): v for c, v in row.items()}
    return _derived(ev, ds, row=row)


def _split(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    ds: Instance = a[0]
    out = _new(ev, "DatasetDict", _row(ds), None, ds.attrs.get("_name", "dataset"), ds.attrs.get("_format"))
    out.attrs["_splits"] = ("train", "test")
    return out


def _length(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    ds: Instance = a[0]
    n = ds.attrs.get("_count")
    return n if isinstance(n, int) else _unknown_count(ev, ds)


def _iter(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """One row: a loop over a dataset runs once, as a script's training loop is read."""
    return [_getitem(ev, (a[0], 0), {})]


def _column_names(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    row = _row(a[0])
    if isinstance(row, dict) and not isinstance(row, UnknownRow):
        return list(row)
    return Unknown(f"the columns of {a[0].attrs.get('_name')} (its data is not read)", ev.current_ref)


def _features(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return Unknown(f"the features of {a[0].attrs.get('_name')} (its data is not read)", ev.current_ref)


def _dict_getitem(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    dd: Instance = a[0]
    split = a[1]
    ds = _new(ev, "Dataset", _row(dd), None, f"{dd.attrs.get('_name')}[{split!r}]", dd.attrs.get("_format"))
    return ds


def _dict_keys(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    splits = a[0].attrs.get("_splits")
    return list(splits) if isinstance(splits, tuple) else Unknown("the splits of a dataset not read", ev.current_ref)


def _dict_contains(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    splits = a[0].attrs.get("_splits")
    return a[1] in splits if isinstance(splits, tuple) else UnknownData("the splits of a dataset not read",
                                                                         ev.current_ref)


def _methods(names: tuple[str, ...], impl: Impl) -> dict[str, NativeFunction]:
    return {n: NativeFunction(f"Dataset.{n}", impl) for n in names}


def _dataset_ns() -> dict[str, Any]:
    ns: dict[str, Any] = {
        "map": NativeFunction("Dataset.map", _map),
        "filter": NativeFunction("Dataset.filter", _filter),
        "select": NativeFunction("Dataset.select", _select),
        "take": NativeFunction("Dataset.take", _take),
        "with_format": NativeFunction("Dataset.with_format", _with_format),
        "set_format": NativeFunction("Dataset.set_format", _set_format),
        "remove_columns": NativeFunction("Dataset.remove_columns", _remove_columns),
        "rename_column": NativeFunction("Dataset.rename_column", _rename_column),
        "train_test_split": NativeFunction("Dataset.train_test_split", _split),
        "__getitem__": NativeFunction("Dataset.__getitem__", _getitem),
        "__len__": NativeFunction("Dataset.__len__", _length),
        "__iter__": NativeFunction("Dataset.__iter__", _iter),
        "column_names": Property(NativeFunction("Dataset.column_names", _column_names)),
        "features": Property(NativeFunction("Dataset.features", _features)),
        "num_rows": Property(NativeFunction("Dataset.num_rows", _length)),
    }
    ns.update(_methods(_SAME, _same))
    ns["set_format"] = NativeFunction("Dataset.set_format", _set_format)
    return ns


def _dict_ns(dataset_ns: dict[str, Any]) -> dict[str, Any]:
    ns = {n: dataset_ns[n] for n in ("map", "filter", "with_format", "set_format", "remove_columns", "rename_column",
                                     *_SAME)}
    ns.update({
        "__getitem__": NativeFunction("DatasetDict.__getitem__", _dict_getitem),
        "keys": NativeFunction("DatasetDict.keys", _dict_keys),
        "__contains__": NativeFunction("DatasetDict.__contains__", _dict_contains),
        "__iter__": NativeFunction("DatasetDict.__iter__", _dict_keys),
        "column_names": Property(NativeFunction("DatasetDict.column_names", _column_names)),
    })
    return ns


# ---------------------------------------------------------------------- constructors
def _load_dataset(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    path = a[0] if a else k.get("path")
    name = repr(path) if isinstance(path, str) else "a dataset"
    at = where(ev)
    shown = f"load_dataset({name})" + (f" at {at}" if at else "")
    row = UnknownRow(shown, "no data read")
    split = k.get("split")
    if split is None and len(a) > 2:
        split = a[2]
    if split is None:
        return _new(ev, "DatasetDict", row, None, shown)
    return _new(ev, "Dataset", row, None, shown)


def _from_dict(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    data = a[1] if len(a) > 1 else k.get("mapping")
    if not isinstance(data, dict) or not data:
        return _new(ev, "Dataset", UnknownRow("Dataset.from_dict(...)", "not a dict of columns"), None, "Dataset.from_dict(...)")
    cols = {c: v for c, v in data.items()}
    lengths = {len(v) for v in cols.values() if isinstance(v, (list, tuple))}
    if len(lengths) != 1 or 0 in lengths:
        return _new(ev, "Dataset", Unknown("Dataset.from_dict: columns of unknown or unequal lengths", ev.current_ref),
                    None, "Dataset.from_dict(...)")
    return _new(ev, "Dataset", {c: v[0] for c, v in cols.items()}, lengths.pop(), "Dataset.from_dict(...)")


def _from_list(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    data = a[1] if len(a) > 1 else k.get("mapping")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return _new(ev, "Dataset", Unknown("Dataset.from_list: not a list of dicts", ev.current_ref), None,
                    "Dataset.from_list(...)")
    return _new(ev, "Dataset", dict(data[0]), len(data), "Dataset.from_list(...)")


def _concatenate(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    parts = a[0] if a else k.get("dsets")
    if isinstance(parts, (list, tuple)) and parts and isinstance(parts[0], Instance):
        return _derived(ev, parts[0], count=UnknownData("rows of concatenated datasets", ev.current_ref))
    return Unknown("concatenate_datasets of datasets not known", ev.current_ref)


def _classes(loader: Loader) -> dict[str, ClassValue]:
    found: dict[str, ClassValue] | None = loader.frontend_state.get(_STATE)
    if found is not None:
        return found
    obj = loader.builtins["object"]
    ns = _dataset_ns()
    ns["from_dict"] = _classmethod(loader, "from_dict", _from_dict)
    ns["from_list"] = _classmethod(loader, "from_list", _from_list)
    dataset = ClassValue("Dataset", (obj,), ns, "datasets.arrow_dataset")
    out = {
        "Dataset": dataset,
        "DatasetDict": ClassValue("DatasetDict", (obj,), _dict_ns(ns), "datasets.dataset_dict"),
        "IterableDataset": ClassValue("IterableDataset", (dataset,), {}, "datasets.iterable_dataset"),
    }
    loader.frontend_state[_STATE] = out
    return out


def _classmethod(loader: Loader, name: str, impl: Impl) -> Any:
    return ClassMethod(NativeFunction(f"Dataset.{name}", impl))


def _unmodelled(name: str) -> Any:
    return lambda attr: Unknown(f"`{name}.{attr}` is not modelled", None)


def datasets_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted != "datasets":
        return None
    classes = _classes(loader)
    ns: dict[str, Any] = {
        **classes,
        "load_dataset": NativeFunction("datasets.load_dataset", _load_dataset),
        "concatenate_datasets": NativeFunction("datasets.concatenate_datasets", _concatenate),
        "__version__": "4.0.0",
    }
    return ModuleValue(dotted, ns, getattr_hook=_unmodelled(dotted))
