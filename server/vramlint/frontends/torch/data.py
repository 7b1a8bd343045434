"""`torch.utils.data` as the evaluator models it: datasets, DataLoader and the batch it yields.

A training script's inputs are what its DataLoader yields: `for images, labels in loader:
model(images)`. Iterating a DataLoader here yields ONE batch (the script's run stops at the
model's second call anyway): `collate_fn([dataset[0]] * batch_size)`, with torch's
`default_collate` unless the script gives its own. The dataset's `__getitem__` runs as written
(a user `Dataset` subclass), or is a stub's (`TensorDataset`, torchvision's datasets:
frontends/torchvision_data/). Each batch tensor made is noted in `ev.origins` with where its
sample and its batch size come from, so the setup can cite it.

What torch does and this follows (torch 2.13, torch/utils/data/_utils/collate.py):
tensors are stacked to (B, *shape); Python ints become int64 (B,), floats float64 (B,), bools
bool (B,); strings stay a list; dicts are collated per key; a namedtuple per field; a tuple or
list per field, as a *list*; a PIL image is a TypeError. `batch_size=None` yields samples as
they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import place, source_of
from vramlint.engine.values import (
    MISSING,
    Args,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    NTuple,
    Unknown,
)
from vramlint.frontends.torch.tensors import TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

MODULES = ("torch.utils.data", "torch.utils.data.dataset", "torch.utils.data.dataloader",
           "torch.utils.data.sampler", "torch.utils.data.distributed", "torch.utils.data._utils",
           "torch.utils.data._utils.collate")

DATALOADER_SIGNATURE = ("dataset", "batch_size", "shuffle", "sampler", "batch_sampler", "num_workers",
                        "collate_fn", "pin_memory", "drop_last")


@dataclass(frozen=True)
class SampleOrigin:
    """Where a dataset's samples come from, as the setup cites it: "CIFAR10 at train.py:20:
    3x32x32 after RandomCrop(32, padding=4), ToTensor()". Kept in a dataset instance's `state`."""

    text: str
    # Known number of samples (CIFAR10's train split: 50,000), for `len(dataset)` / `len(loader)`.
    length: Any = None
    # The dataset whose samples these are (a Subset's, a ConcatDataset's first): its text is
    # read when a batch is made, after its `__getitem__` has said what the sample became.
    of: Any = None


def where(ev: Evaluator) -> str:
    """`train.py:22`: the statement the evaluator is at."""
    return place(ev.current_ref)


def origin_of(dataset: Any) -> SampleOrigin | None:
    state = dataset.state if isinstance(dataset, Instance) else None
    return state if isinstance(state, SampleOrigin) else None


def origin_text(dataset: Any) -> str | None:
    """Where `dataset`'s samples come from, through Subsets and ConcatDatasets."""
    for _ in range(32):  # a Subset of a Subset of ...
        origin = origin_of(dataset)
        if origin is None or origin.of is None:
            return origin.text if origin else None
        dataset = origin.of
    return None


def shape_text(shape: Any) -> str:
    """`3x32x32`; `?` for a dimension not known, `scalar` for ()."""
    if not isinstance(shape, tuple):
        return "unknown shape"
    return "x".join(str(d) if isinstance(d, int) else "?" for d in shape) or "scalar"


def _arg(a: Args, k: Kwargs, i: int, name: str, default: Any = None) -> Any:
    return a[i] if len(a) > i else k.get(name, default)


# ---------------------------------------------------------------------- samples and collate
def sample_of(ev: Evaluator, dataset: Any) -> Any:
    """`dataset[0]` (an iterable dataset: its first item), as the script's code computes it."""
    if isinstance(dataset, Unknown):
        return dataset
    if isinstance(dataset, Instance):
        getitem, _ = dataset.cls.lookup("__getitem__")
        if getitem is MISSING:
            items = ev.list_of(dataset)
            if isinstance(items, Unknown) or not items:
                return items if isinstance(items, Unknown) else Unknown(
                    f"the dataset ({dataset.cls.name}) yields no sample", ev.current_ref)
            return items[0]
    return ev.protocol.getitem(dataset, 0)


def default_collate(ev: Evaluator, samples: list[Any]) -> Any:
    """torch's default_collate of `samples` (all equal here: one sample repeated)."""
    elem = samples[0]
    n = len(samples)
    if isinstance(elem, Unknown):
        return elem
    if isinstance(elem, TensorValue):
        shape = (n, *elem.shape) if isinstance(elem.shape, tuple) else elem.shape
        return TensorValue(shape, elem.dtype)
    if isinstance(elem, bool):
        return TensorValue((n,), "bool")
    if isinstance(elem, int):
        return TensorValue((n,), "int64")
    if isinstance(elem, float):
        return TensorValue((n,), "float64")
    if isinstance(elem, (str, bytes)):
        return list(samples)
    if isinstance(elem, dict):
        return {key: default_collate(ev, [s[key] for s in samples]) for key in elem}
    if isinstance(elem, NTuple):
        return NTuple(tuple(default_collate(ev, [s[i] for s in samples]) for i in range(len(elem))), elem.cls)
    if isinstance(elem, (tuple, list)):
        # torch: "Backwards compatibility": a tuple's fields come back as a list.
        return [default_collate(ev, [s[i] for s in samples]) for i in range(len(elem))]
    kind = getattr(elem, "type_name", type(elem).__name__)
    raise ev.raise_error("TypeError", "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                                      f"lists; found {kind} (the dataset's samples are not tensors: a torchvision "
                                      "dataset needs transforms.ToTensor() or PILToTensor())")


def note_batch(ev: Evaluator, batch: Any, text: str) -> None:
    """Note every tensor of a batch in the evaluator's origins (engine/provenance.py)."""
    if isinstance(batch, TensorValue):
        if isinstance(batch.shape, tuple) and all(isinstance(d, int) for d in batch.shape):
            ev.origins.note(batch.shape, text)
    elif isinstance(batch, dict):
        for v in batch.values():
            note_batch(ev, v, text)
    elif isinstance(batch, (list, tuple)):
        for v in batch:
            note_batch(ev, v, text)


# ---------------------------------------------------------------------- datasets
def _tensor_dataset_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, tensors = a[0], a[1:]
    inst.attrs["tensors"] = tuple(tensors)
    first = tensors[0] if tensors else None
    n = first.shape[0] if isinstance(first, TensorValue) and isinstance(first.shape, tuple) and first.shape else None
    shapes = ", ".join(shape_text(t.shape[1:]) if isinstance(t, TensorValue) and isinstance(t.shape, tuple)
                       else "?" for t in tensors)
    inst.state = SampleOrigin(f"TensorDataset at {where(ev)} ({shapes})", n)
    return None


def _row(t: Any) -> Any:
    """t[i] of a tensor: its shape less the first dimension."""
    if isinstance(t, TensorValue):
        return TensorValue(t.shape[1:] if isinstance(t.shape, tuple) else t.shape, t.dtype)
    return t


def _tensor_dataset_getitem(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return tuple(_row(t) for t in a[0].attrs.get("tensors", ()))


def _length(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    origin = origin_of(a[0])
    if origin is not None and origin.length is not None:
        return origin.length
    return Unknown("the dataset's number of samples is not known", ev.current_ref)


def _subset_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, dataset, indices = a[0], _arg(a, k, 1, "dataset"), _arg(a, k, 2, "indices")
    inst.attrs.update(dataset=dataset, indices=indices)
    origin = origin_of(dataset)
    n = len(indices) if isinstance(indices, (list, tuple, range)) else None
    inst.state = SampleOrigin(f"Subset at {where(ev)}", n, dataset if origin else None)
    return None


def _subset_getitem(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, i = a[0], a[1]
    indices = inst.attrs.get("indices")
    idx = indices[i] if isinstance(indices, (list, tuple, range)) and isinstance(i, int) and -len(indices) <= i < len(
        indices) else i
    return ev.protocol.getitem(inst.attrs.get("dataset"), idx)


def _concat_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, datasets = a[0], ev.list_of(_arg(a, k, 1, "datasets"))
    if isinstance(datasets, Unknown) or not datasets:
        inst.attrs["datasets"] = datasets
        return None
    inst.attrs["datasets"] = datasets
    origins = [origin_of(d) for d in datasets]
    lengths = [o.length if o else None for o in origins]
    total = sum(lengths) if all(isinstance(n, int) for n in lengths) else None  # type: ignore[arg-type]
    first = origins[0]
    inst.state = SampleOrigin(f"ConcatDataset at {where(ev)}", total, datasets[0] if first else None)
    return None


def _concat_getitem(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    datasets = a[0].attrs.get("datasets")
    if isinstance(datasets, Unknown):
        return datasets
    return ev.protocol.getitem(datasets[0], a[1]) if datasets else Unknown("an empty ConcatDataset", ev.current_ref)


def _random_split(classes: dict[str, ClassValue]) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        dataset, lengths = _arg(a, k, 0, "dataset"), ev.list_of(_arg(a, k, 1, "lengths"))
        if isinstance(lengths, Unknown):
            return lengths
        origin = origin_of(dataset)
        total = origin.length if origin else None
        sizes = _split_sizes(lengths, total)
        parts = []
        for size in sizes:
            part = Instance(classes["Subset"])
            part.attrs.update(dataset=dataset, indices=Unknown("random_split's indices", ev.current_ref))
            part.state = SampleOrigin(f"random_split at {where(ev)}", size, dataset if origin else None)
            parts.append(part)
        return parts

    return impl


def _split_sizes(lengths: list[Any], total: Any) -> list[Any]:
    """random_split's sizes: given as counts, or as fractions of a known total (torch gives the
    remainder one by one to the first parts)."""
    if all(isinstance(n, int) and not isinstance(n, bool) for n in lengths):
        return list(lengths)
    if not (isinstance(total, int) and all(isinstance(f, float) for f in lengths)):
        return [None] * len(lengths)
    sizes = [math.floor(total * f) for f in lengths]
    for i in range(total - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


def _dataset_add(classes: dict[str, ClassValue]) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        out = Instance(classes["ConcatDataset"])
        _concat_init(ev, (out, [a[0], a[1]]), {})
        return out

    return impl


# ---------------------------------------------------------------------- DataLoader
def _loader_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst = a[0]
    values = {name: _arg(a, k, i + 1, name, MISSING) for i, name in enumerate(DATALOADER_SIGNATURE)}
    batch_size = values["batch_size"]
    batch_sampler = values["batch_sampler"]
    if batch_size is MISSING:
        batch_size = 1
        if isinstance(batch_sampler, Instance) and "batch_size" in batch_sampler.attrs:
            batch_size = batch_sampler.attrs["batch_size"]
    inst.attrs.update(
        dataset=values["dataset"], batch_size=batch_size,
        drop_last=values["drop_last"] if values["drop_last"] is not MISSING else False,
        collate_fn=values["collate_fn"] if values["collate_fn"] is not MISSING else None,
        num_workers=values["num_workers"] if values["num_workers"] is not MISSING else 0,
        sampler=values["sampler"] if values["sampler"] is not MISSING else None,
        batch_sampler=batch_sampler if batch_sampler is not MISSING else None,
        pin_memory=values["pin_memory"] if values["pin_memory"] is not MISSING else False)
    inst.state = where(ev)
    return None


def _batch_text(ev: Evaluator, inst: Instance, batch_size: Any) -> str:
    dataset = inst.attrs.get("dataset")
    sample = origin_text(dataset) or (f"{dataset.cls.name}.__getitem__" if isinstance(dataset, Instance)
                                      else "the dataset's samples")
    source = source_of(batch_size)
    size = f"{batch_size} from {source}" if source else str(batch_size)
    collate = inst.attrs.get("collate_fn")
    named = getattr(collate, "name", None) or (collate.cls.name if isinstance(collate, Instance) else None)
    collated = f", collate_fn={named}" if collate is not None else ""
    return f"{sample}, DataLoader(batch_size={size}{collated}) at {inst.state}"


def one_batch(ev: Evaluator, inst: Instance) -> Any:
    """The batch a DataLoader yields first: collate_fn([dataset[0]] * batch_size)."""
    batch_size = inst.attrs.get("batch_size", 1)
    sample = sample_of(ev, inst.attrs.get("dataset"))
    if batch_size is None:
        return sample
    if not isinstance(batch_size, int) or isinstance(batch_size, bool):
        if isinstance(batch_size, Unknown):
            return Unknown(f"the DataLoader's batch size is unknown: {batch_size.reason}", ev.current_ref)
        return Unknown("the DataLoader's batch size is not a number", ev.current_ref)
    if isinstance(sample, Unknown):
        return sample
    collate = inst.attrs.get("collate_fn")
    samples = [sample] * batch_size
    mark = ev.origins.mark()
    batch = default_collate(ev, samples) if collate is None else ev.call(collate, (samples,), {})
    text = _batch_text(ev, inst, batch_size)
    # A collate function that said where its batch came from (a collator citing the tokenizer
    # call that fixed the rows' length) is cited first, then this loader.
    tensors = _tensors_of(batch)
    for t, own in [(t, ev.origins.since(mark, t.shape)) for t in tensors]:
        note_batch(ev, t, f"{own}; {text}" if own else text)
    return batch


def _tensors_of(batch: Any) -> list[TensorValue]:
    if isinstance(batch, TensorValue):
        return [batch]
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    return [t for v in values for t in _tensors_of(v)]


def _loader_iter(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    batch = one_batch(ev, a[0])
    return batch if isinstance(batch, Unknown) else [batch]


def _loader_len(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst = a[0]
    origin = origin_of(inst.attrs.get("dataset"))
    n, bs = (origin.length if origin else None), inst.attrs.get("batch_size")
    if isinstance(n, int) and bs is None:
        return n
    if isinstance(n, int) and isinstance(bs, int) and bs > 0:
        return n // bs if inst.attrs.get("drop_last") is True else -(-n // bs)
    return Unknown("the number of batches depends on the dataset's size, which is not known", ev.current_ref)


# ---------------------------------------------------------------------- samplers
def _carrier_init(names: tuple[str, ...]) -> Callable[..., Any]:
    """A class that only keeps its arguments (samplers: they change order, not shapes)."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        for i, name in enumerate(names):
            value = _arg(a, k, i + 1, name, MISSING)
            if value is not MISSING:
                inst.attrs[name] = value
        return None

    return impl


_SAMPLERS: dict[str, tuple[str, ...]] = {
    "Sampler": ("data_source",),
    "SequentialSampler": ("data_source",),
    "RandomSampler": ("data_source", "replacement", "num_samples"),
    "SubsetRandomSampler": ("indices",),
    "WeightedRandomSampler": ("weights", "num_samples", "replacement"),
    "BatchSampler": ("sampler", "batch_size", "drop_last"),
    "DistributedSampler": ("dataset", "num_replicas", "rank", "shuffle", "seed", "drop_last"),
}


def _sampler_noop(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return None


# ---------------------------------------------------------------------- the module
def _method(owner: str, name: str, fn: Callable[..., Any]) -> NativeFunction:
    return NativeFunction(f"torch.utils.data.{owner}.{name}", fn)


def data_classes(loader: Loader) -> dict[str, ClassValue]:
    """This loader's torch.utils.data classes, made once (torchvision's datasets subclass Dataset)."""
    found: dict[str, ClassValue] | None = loader.frontend_state.get("torch.utils.data")
    if found is not None:
        return found
    obj = loader.builtins["object"]
    mod = "torch.utils.data"
    classes: dict[str, ClassValue] = {}
    dataset = classes["Dataset"] = ClassValue("Dataset", (obj,), {}, mod)
    dataset.ns["__add__"] = _method("Dataset", "__add__", _dataset_add(classes))
    classes["IterableDataset"] = ClassValue("IterableDataset", (dataset,), {}, mod)
    native = {
        "TensorDataset": (dataset, {"__init__": _tensor_dataset_init, "__getitem__": _tensor_dataset_getitem,
                                    "__len__": _length}),
        "Subset": (dataset, {"__init__": _subset_init, "__getitem__": _subset_getitem, "__len__": _length}),
        "ConcatDataset": (dataset, {"__init__": _concat_init, "__getitem__": _concat_getitem, "__len__": _length}),
        "DataLoader": (obj, {"__init__": _loader_init, "__iter__": _loader_iter, "__len__": _loader_len}),
    }
    for name, (base, methods) in native.items():
        classes[name] = ClassValue(name, (base,), {m: _method(name, m, fn) for m, fn in methods.items()}, mod)
    sampler = classes["Sampler"] = ClassValue("Sampler", (obj,), {
        "__init__": _method("Sampler", "__init__", _carrier_init(_SAMPLERS["Sampler"])),
        "set_epoch": _method("Sampler", "set_epoch", _sampler_noop)}, mod)
    for name, names in _SAMPLERS.items():
        if name != "Sampler":
            classes[name] = ClassValue(name, (sampler,), {"__init__": _method(name, "__init__", _carrier_init(names))},
                                       "torch.utils.data.distributed" if name == "DistributedSampler" else mod)
    loader.frontend_state["torch.utils.data"] = classes
    return classes


def _collate_fn(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    batch = ev.list_of(_arg(a, k, 0, "batch"))
    if isinstance(batch, Unknown):
        return batch
    if not batch:
        return Unknown("default_collate of an empty batch", ev.current_ref)
    return default_collate(ev, batch)


def data_module(loader: Loader, dotted: str) -> ModuleValue | None:
    """Native resolver for `torch.utils.data` and the submodules scripts import from."""
    if dotted not in MODULES:
        return None
    classes = data_classes(loader)
    ns: dict[str, Any] = dict(classes)
    ns["random_split"] = NativeFunction("torch.utils.data.random_split", _random_split(classes))
    ns["default_collate"] = NativeFunction("torch.utils.data.default_collate", _collate_fn)
    ns["get_worker_info"] = NativeFunction("torch.utils.data.get_worker_info", lambda ev, a, k: None)
    if dotted == "torch.utils.data":
        for sub in ("dataset", "dataloader", "sampler", "distributed"):
            ns[sub] = loader.import_module(f"{dotted}.{sub}", None)

    def missing(attr: str) -> Any:
        return Unknown(f"`{dotted}.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)

    return ModuleValue(dotted, ns, getattr_hook=missing)

