"""Embeddings: Embedding (and from_pretrained), EmbeddingBag."""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import NativeFunction, Unknown
from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    EXTRA_NAMESPACES,
    LayerArgs,
    LayerParts,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)
from vramlint.frontends.torch.tensors import TensorValue


def embedding(a: LayerArgs) -> LayerParts:
    n, d = a.dim(a.num_embeddings, "num_embeddings"), a.dim(a.embedding_dim, "embedding_dim")
    frozen = {"weight"} if a.values.get("_freeze") is True else set()
    w = a.values.get("_weight")
    if isinstance(w, TensorValue) and not isinstance(w.shape, Unknown):
        n, d = w.shape[0], w.shape[1]
    return LayerParts(params={"weight": (n, d)}, frozen=frozen)


def _from_pretrained(cls_name: str) -> Any:
    def impl(ev: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        cls, emb = a[0], a[1] if len(a) > 1 else k.get("embeddings")
        freeze = a[2] if len(a) > 2 else k.get("freeze", True)
        if not isinstance(emb, TensorValue) or isinstance(emb.shape, Unknown) or len(emb.shape) != 2:
            return Unknown(f"{cls_name}.from_pretrained of an unknown tensor", ev.current_ref)
        inst = ev.protocol.instantiate(cls, (emb.shape[0], emb.shape[1]), {})
        w = ev.protocol.getattr(inst, "weight")
        if isinstance(w, TensorValue):
            w.requires_grad = freeze is False
        return inst

    return impl


def _namespace(cls_name: str) -> Any:
    from vramlint.engine.values import ClassMethod

    return lambda: {"from_pretrained": ClassMethod(NativeFunction(f"{cls_name}.from_pretrained", _from_pretrained(cls_name)))}


EMB = ("num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, "
       "sparse=False, _weight=None, _freeze=False, device=None, dtype=None")
BAG = ("num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, mode='mean', "
       "sparse=False, _weight=None, include_last_offset=False, padding_idx=None, device=None, dtype=None")
register(LayerSpec("Embedding", EMB, embedding), LayerSpec("EmbeddingBag", BAG, embedding))
EXTRA_NAMESPACES["Embedding"] = _namespace("Embedding")
EXTRA_NAMESPACES["EmbeddingBag"] = _namespace("EmbeddingBag")


# ---------------------------------------------------------------------- forward (output shapes)
@forward_rule("Embedding", saves="embedding")
def embedding_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    idx = shapes.as_tensor(ev, first_input(a, k, "input"), "Embedding")
    if not isinstance(idx, TensorValue):
        return idx
    w = m.state.params.get("weight")
    dim = w.shape[1] if isinstance(w, TensorValue) and isinstance(w.shape, tuple) else m.attrs.get("embedding_dim")
    return TensorValue((*idx.shape, dim), w.dtype if isinstance(w, TensorValue) else "float32")


@forward_rule("EmbeddingBag", saves="embedding_bag")
def embedding_bag_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    idx = shapes.as_tensor(ev, first_input(a, k, "input"), "EmbeddingBag")
    if not isinstance(idx, TensorValue):
        return idx
    assert isinstance(idx.shape, tuple)
    offsets = a[1] if len(a) > 1 else k.get("offsets")
    if len(idx.shape) == 2:
        bags = idx.shape[0]
    elif isinstance(offsets, TensorValue) and isinstance(offsets.shape, tuple) and offsets.shape:
        bags = offsets.shape[0] - (1 if m.attrs.get("include_last_offset") else 0)
    else:
        return Unknown("EmbeddingBag: number of bags unknown", ev.current_ref)
    return TensorValue((bags, m.attrs.get("embedding_dim")), "float32")
