"""The saved-tensor harness: what autograd keeps on the CPU (`saved_tensors_hooks`) and vramlint's
estimate of the same source text (tests/test_memory_saved.py explains the truth; its cases and
tests/test_module_saved.py's generated ones use this)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vramlint.analysis.api import analyze_source
from vramlint.settings import Settings

torch = pytest.importorskip("torch")

BLOCK = 512  # the CUDA caching allocator's smallest block


def rounded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK if n > 0 else 0


# ---------------------------------------------------------------------- torch: the truth
@dataclass(frozen=True)
class Saved:
    """One storage autograd keeps (the first packed tensor seen on it)."""

    shape: tuple[int, ...]
    dtype: str
    nbytes: int  # the storage's, not the view's
    node: str  # the autograd node of the packed tensor (None for a tensor made for backward)

    def __str__(self) -> str:
        return f"{list(self.shape)} {self.dtype} ({self.nbytes} B, {self.node})"


def build_torch(text: str) -> tuple[Any, tuple[Any, ...]]:
    """The model and its inputs, by running the case's own source with real torch."""
    torch.manual_seed(0)
    ns: dict[str, Any] = {"__name__": "memory_saved_case"}
    exec(compile(text, "<memory-saved case>", "exec"), ns)
    x = ns["x"]
    return ns["model"], (x if isinstance(x, tuple) else (x,))


def vramlint_loss(out: Any) -> tuple[Any, tuple[Any, ...], str]:
    """The loss vramlint appends (vramlint.analysis.memory._add_loss): cross-entropy with int64
    class targets on a float output of >= 2 dims ([B, T, V] viewed as [B*T, V]), else MSE.
    Returns (loss, targets, which)."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.dim() >= 2:
        logits = out.view(-1, out.shape[-1]) if out.dim() == 3 else out
        target = torch.randint(0, out.shape[-1], logits.shape[:-1], device=out.device)
        return torch.nn.functional.cross_entropy(logits, target), (target,), "cross_entropy"
    target = torch.randn_like(out)
    return torch.nn.functional.mse_loss(out, target), (target,), "mse"


LossFn = Callable[[Any], tuple[Any, tuple[Any, ...], str]]


def torch_saved(model: Any, inputs: tuple[Any, ...], loss_fn: LossFn) -> tuple[list[Saved], str]:
    """The storages autograd keeps after forward + loss (before backward), and the loss used."""
    model.train()
    packed: list[Any] = []

    def pack(t: Any) -> Any:
        packed.append(t)  # holding it keeps its storage alive: data pointers stay unique
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(*inputs)
        _loss, targets, which = loss_fn(out)
    return storages(packed, (*model.parameters(), *model.buffers(), *inputs, *targets)), which


def storages(packed: list[Any], excluded: tuple[Any, ...]) -> list[Saved]:
    """The storages of the packed tensors, each once, less those of `excluded` tensors."""
    skip = {t.untyped_storage().data_ptr() for t in excluded}
    seen: dict[int, Saved] = {}
    for t in packed:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if st.nbytes() == 0 or ptr in skip or ptr in seen:
            continue
        node = type(t.grad_fn).__name__ if t.grad_fn is not None else "None"
        seen[ptr] = Saved(tuple(t.shape), str(t.dtype).removeprefix("torch."), st.nbytes(), node)
    return list(seen.values())


def torch_saved_bytes(model: Any, inputs: tuple[Any, ...], loss_fn: LossFn) -> int:
    saved, _ = torch_saved(model, inputs, loss_fn)
    return sum(rounded(s.nbytes) for s in saved)


# ---------------------------------------------------------------------- vramlint
def vramlint_estimate(text: str, path: Path) -> Any:
    fa = analyze_source(str(path), text, Settings(memory=True, optimizer="sgd"))
    m = next(m for m in fa.models if m.name == "model")
    assert m.memory is not None, f"no estimate: {m.memory_unknowns} {m.forward_unknowns}"
    return m.memory


def vramlint_saved_bytes(text: str, path: Path) -> int:
    return int(vramlint_estimate(text, path).activations)


@dataclass(frozen=True)
class Gap:
    """A known error of vramlint: `delta` = vramlint's bytes - torch's."""

    reason: str
    delta: int


class KnownGap(AssertionError):
    """vramlint differs from torch by exactly the bytes its declared gaps account for."""




# ---------------------------------------------------------------------- CPU / CUDA differences
# Where a CPU kernel keeps something else than the CUDA kernel vramlint models: CUDA - CPU bytes.
# The one list of them (tests/test_memory_saved.py's hand-written cases cite these functions).
def dropout_mask_delta(numel: int, itemsize: int) -> int:
    """F.dropout in training: CPU's aten::_dropout keeps a mask of the input's dtype, CUDA's fused
    native_dropout a bool mask, 1 byte per element (seen on an H200)."""
    return rounded(numel) - rounded(numel * itemsize)


def lse_padding_delta(rows: int, length: int) -> int:
    """scaled_dot_product_attention in float32: CPU keeps a float32 log-sum-exp per query row,
    CUDA's memory-efficient kernel pads it to a multiple of 32 rows (measured on an H200, torch 2.11)."""
    return rounded(rows * -(-length // 32) * 32 * 4) - rounded(rows * length * 4)


def log_sigmoid_buffer_delta(buffer: Saved) -> int:
    """F.logsigmoid: the CPU kernel keeps a `buffer` of the input's size for its backward; CUDA's
    returns an empty one (aten/src/ATen/native/cuda/Activation.cpp, log_sigmoid_forward_cuda:
    "buffer is only used by CPU dispatch")."""
    return -rounded(buffer.nbytes)


# Layers whose forward is F.dropout (CUDA fuses it when 0 < p < 1, as the generated ones are).
FUSED_DROPOUT = {"Dropout"}


def embedding_bag_delta(indices: int, rows: int, mode: str, saved: list[Saved]) -> int:
    """EmbeddingBag (`rows` bags of `indices` indices): CUDA's _embedding_bag keeps offset2bag of
    one int64 per index in every mode and an empty max_indices outside mode 'max'
    (aten/src/ATen/native/cuda/EmbeddingBag.cu); the CPU's offset2bag has one more element and
    is empty in mode 'sum', its max_indices outside 'max' one per bag (saved_tensors_hooks,
    torch 2.13). Not measured on a GPU."""
    cpu_offset2bag = [s for s in saved if s.dtype == "int64" and s.nbytes == 8 * (indices + 1)]
    delta = rounded(8 * indices) - sum(rounded(s.nbytes) for s in cpu_offset2bag)
    return delta - (rounded(8 * rows) if mode != "max" else 0)


def cuda_delta(layer: str, dtype: str, saved: list[Saved], module: Any = None, inputs: tuple[Any, ...] = ()) -> int:
    """CUDA - CPU bytes of what nn.`layer` (`module`, called on `inputs`) keeps, from what the
    CPU kept (`saved`)."""
    made_for_backward = [s for s in saved if s.node == "None"]  # not an output of an autograd node
    if layer == "EmbeddingBag" and inputs and inputs[0].dim() == 2:
        return embedding_bag_delta(inputs[0].numel(), inputs[0].shape[0], module.mode, saved)
    if layer in FUSED_DROPOUT:
        itemsize = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
        return sum(dropout_mask_delta(s.nbytes // itemsize, itemsize) for s in made_for_backward)
    if layer == "LogSigmoid":
        return sum(log_sigmoid_buffer_delta(s) for s in made_for_backward)
    return 0
