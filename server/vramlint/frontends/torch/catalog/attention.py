"""Attention: MultiheadAttention, Transformer and its Encoder/Decoder (layers)."""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import NativeFunction, StaticMethod, Unknown
from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    COMPOSITE,
    EXTRA_NAMESPACES,
    LayerArgs,
    LayerParts,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)
from vramlint.frontends.torch.catalog.attention_ops import (
    Trace,
    canonical_mask,
    causal_mask,
    encoder_layer_call,
    encoder_layer_fast_path,
    is_causal_mask,
    is_instance_of,
    is_native,
    known_sizes,
    mark_fast_path,
    mha_weights,
    multi_head_attention,
)
from vramlint.frontends.torch.functional import functional_attr
from vramlint.frontends.torch.tensors import TensorValue, dtype_name


def multihead_attention(a: LayerArgs) -> LayerParts:
    e = a.dim(a.embed_dim, "embed_dim")
    heads = a.dim(a.num_heads, "num_heads")
    kdim = e if a.kdim is None else a.dim(a.kdim, "kdim")
    vdim = e if a.vdim is None else a.dim(a.vdim, "vdim")
    same = a.flag(kdim == e) and a.flag(vdim == e)
    bias = a.flag(a.bias)
    params: dict[str, Any] = {}
    if same:
        params.update(in_proj_weight=(3 * e, e), q_proj_weight=None, k_proj_weight=None, v_proj_weight=None)
    else:
        params.update(q_proj_weight=(e, e), k_proj_weight=(e, kdim), v_proj_weight=(e, vdim), in_proj_weight=None)
    params["in_proj_bias"] = (3 * e,) if bias else None
    if a.flag(a.add_bias_kv):
        params.update(bias_k=(1, 1, e), bias_v=(1, 1, e))
    else:
        params.update(bias_k=None, bias_v=None)
    out_proj = a.make("NonDynamicallyQuantizableLinear", e, e, bias=a.bias, dtype=a.dtype)
    return LayerParts(params=params, children={"out_proj": out_proj}, attrs={
        "kdim": kdim, "vdim": vdim, "_qkv_same_embed_dim": same, "head_dim": e // heads if isinstance(heads, int) and heads else e,
    })


def encoder_layer(a: LayerArgs) -> LayerParts:
    d, ff = a.d_model, a.dim_feedforward
    children = {
        "self_attn": a.make("MultiheadAttention", d, a.nhead, dropout=a.dropout, bias=a.bias,
                            batch_first=a.batch_first, dtype=a.dtype),
        "linear1": a.make("Linear", d, ff, bias=a.bias, dtype=a.dtype),
        "dropout": a.make("Dropout", a.dropout),
        "linear2": a.make("Linear", ff, d, bias=a.bias, dtype=a.dtype),
        "norm1": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias, dtype=a.dtype),
        "norm2": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias, dtype=a.dtype),
        "dropout1": a.make("Dropout", a.dropout),
        "dropout2": a.make("Dropout", a.dropout),
    }
    return LayerParts(children=_with_activation(a, children),
                      attrs={"activation_relu_or_gelu": relu_or_gelu(a.activation)})


def decoder_layer(a: LayerArgs) -> LayerParts:
    d, ff = a.d_model, a.dim_feedforward
    children = {
        "self_attn": a.make("MultiheadAttention", d, a.nhead, dropout=a.dropout, bias=a.bias,
                            batch_first=a.batch_first, dtype=a.dtype),
        "multihead_attn": a.make("MultiheadAttention", d, a.nhead, dropout=a.dropout, bias=a.bias,
                                 batch_first=a.batch_first, dtype=a.dtype),
        "linear1": a.make("Linear", d, ff, bias=a.bias, dtype=a.dtype),
        "dropout": a.make("Dropout", a.dropout),
        "linear2": a.make("Linear", ff, d, bias=a.bias, dtype=a.dtype),
        "norm1": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias, dtype=a.dtype),
        "norm2": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias, dtype=a.dtype),
        "norm3": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias, dtype=a.dtype),
        "dropout1": a.make("Dropout", a.dropout),
        "dropout2": a.make("Dropout", a.dropout),
        "dropout3": a.make("Dropout", a.dropout),
    }
    return LayerParts(children=_with_activation(a, children))


def _with_activation(a: LayerArgs, children: dict[str, Any]) -> dict[str, Any]:
    from vramlint.frontends.torch.module import is_module

    if isinstance(a.activation, str) and a.activation not in ("relu", "gelu"):
        raise a.ev.raise_error("RuntimeError", f"activation should be relu/gelu, not {a.activation}")
    # An activation passed as a module instance is registered as a child (parameter-free or not).
    if is_module(a.activation):
        children["activation"] = a.activation
    return children


def relu_or_gelu(activation: Any) -> int:
    """TransformerEncoderLayer.activation_relu_or_gelu: 1 for F.relu / nn.ReLU, 2 for F.gelu /
    nn.GELU (its fast path's choice), 0 for anything else."""
    if activation == "relu" or is_native(activation, "relu") or is_instance_of(activation, "ReLU"):
        return 1
    if activation == "gelu" or is_native(activation, "gelu") or is_instance_of(activation, "GELU"):
        return 2
    return 0


def _stack(a: LayerArgs, layer: Any, n: Any) -> Any:
    n = a.dim(n, "num_layers")
    if not isinstance(n, int):
        a.flag(n)
    copies = [a.ev.protocol.deepcopy(layer) for _ in range(n)]
    return a.make("ModuleList", copies)


def encoder(a: LayerArgs) -> LayerParts:
    children = {"layers": _stack(a, a.encoder_layer, a.num_layers)}
    children["norm"] = a.norm
    return LayerParts(children=children, attrs={"num_layers": a.num_layers})


def decoder(a: LayerArgs) -> LayerParts:
    children = {"layers": _stack(a, a.decoder_layer, a.num_layers), "norm": a.norm}
    return LayerParts(children=children, attrs={"num_layers": a.num_layers})


def transformer(a: LayerArgs) -> LayerParts:
    d = a.d_model
    common = dict(dim_feedforward=a.dim_feedforward, dropout=a.dropout, activation=a.activation,
                  layer_norm_eps=a.layer_norm_eps, batch_first=a.batch_first, norm_first=a.norm_first, bias=a.bias,
                  dtype=a.dtype)
    if a.custom_encoder is not None:
        enc = a.custom_encoder
    else:
        layer = a.make("TransformerEncoderLayer", d, a.nhead, **common)
        enc = a.make("TransformerEncoder", layer, a.num_encoder_layers,
                     a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias, dtype=a.dtype))
    if a.custom_decoder is not None:
        dec = a.custom_decoder
    else:
        layer = a.make("TransformerDecoderLayer", d, a.nhead, **common)
        dec = a.make("TransformerDecoder", layer, a.num_decoder_layers,
                     a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias, dtype=a.dtype))
    return LayerParts(children={"encoder": enc, "decoder": dec})


MHA = ("embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None, "
       "batch_first=False, device=None, dtype=None")
ENC_LAYER = ("d_model, nhead, dim_feedforward=2048, dropout=0.1, activation='relu', layer_norm_eps=1e-05, "
             "batch_first=False, norm_first=False, bias=True, device=None, dtype=None")
register(
    LayerSpec("MultiheadAttention", MHA, multihead_attention),
    LayerSpec("TransformerEncoderLayer", ENC_LAYER, encoder_layer),
    LayerSpec("TransformerDecoderLayer", ENC_LAYER, decoder_layer),
    LayerSpec("TransformerEncoder", "encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True",
              encoder),
    LayerSpec("TransformerDecoder", "decoder_layer, num_layers, norm=None", decoder),
    LayerSpec("Transformer", "d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048, "
              "dropout=0.1, activation='relu', custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-05, "
              "batch_first=False, norm_first=False, bias=True, device=None, dtype=None", transformer),
)


# ---------------------------------------------------------------------- forward (output shapes)
MHA_FORWARD = (("query", None), ("key", None), ("value", None), ("key_padding_mask", None), ("need_weights", True),
               ("attn_mask", None), ("average_attn_weights", True), ("is_causal", False))


def _bind(a: tuple[Any, ...], k: dict[str, Any], names: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """A forward call's arguments by name (positional first, then keywords, then defaults)."""
    out = {n: v for (n, _), v in zip(names, a, strict=False)}
    for n, default in names[len(a):]:
        out[n] = k.get(n, default)
    return out


# torch runs nn.MultiheadAttention as F.multi_head_attention_forward, op by op (attention_ops.py):
# each op is recorded, out_proj's weight and bias among the inputs of the output projection. With
# sizes that are not known, the layer is one op (the coarse multihead_attention rule).
@forward_rule("MultiheadAttention", saves="multihead_attention")
def mha_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    b = _bind(a, k, MHA_FORWARD)
    if b["query"] is None and not a:
        b["query"] = first_input(a, k, "query")
    q = shapes.as_tensor(ev, b["query"], "MultiheadAttention")
    if not isinstance(q, TensorValue):
        return q
    assert isinstance(q.shape, tuple)
    if len(q.shape) not in (2, 3):
        return shapes.mismatch(ev, f"MultiheadAttention expects a 2-D or 3-D query, got shape {list(q.shape)}")
    key = b["key"] if b["key"] is not None else q
    value = b["value"] if b["value"] is not None else key
    need_weights = b["need_weights"] is not False
    if not known_sizes(q, key, value):
        return _mha_shapes(m, q, key, need_weights, b["average_attn_weights"] is not False)
    query = q
    batch_first = m.attrs.get("batch_first") is True and len(q.shape) == 3
    tr = Trace(ev)
    if batch_first:  # sequence-first inside; the same tensor stays the same (self-attention)
        if key is value:
            if query is key:
                query = key = value = tr.m(query, "transpose", 1, 0)
            else:
                query, key = tr.m(query, "transpose", 1, 0), tr.m(key, "transpose", 1, 0)
                value = key
        else:
            query, key, value = (tr.m(t, "transpose", 1, 0) for t in (query, key, value))
    out = multi_head_attention(tr, mha_weights(m), query, key, value, b["key_padding_mask"], need_weights,
                               b["attn_mask"], b["average_attn_weights"] is not False, b["is_causal"] is True)
    if not isinstance(out, tuple):
        return out
    if batch_first:
        return (tr.m(out[0], "transpose", 1, 0), out[1])
    return out


def _mha_shapes(m: Any, q: TensorValue, key: Any, need_weights: bool, average: bool) -> Any:
    """The outputs' shapes alone (sizes not all known)."""
    assert isinstance(q.shape, tuple)
    out = TensorValue(q.shape, q.dtype)
    if not need_weights:
        return (out, None)
    batch_first = m.attrs.get("batch_first")
    src = key.shape[1 if batch_first else 0] if isinstance(key, TensorValue) and isinstance(key.shape, tuple) \
        and len(key.shape) == 3 else (key.shape[0] if isinstance(key, TensorValue) and isinstance(key.shape, tuple) else None)
    if isinstance(src, int):  # add_bias_kv appends a key (bias_k), add_zero_attn a zero one
        src += (m.attrs.get("add_bias_kv") is True) + (m.attrs.get("add_zero_attn") is True)
    weights: tuple[Any, ...]
    if len(q.shape) == 3:
        n, tgt = (q.shape[0], q.shape[1]) if batch_first else (q.shape[1], q.shape[0])
        weights = (n, tgt, src)
    else:
        weights = (q.shape[0], src)
    if not average:
        weights = (*weights[:-2], m.attrs.get("num_heads"), *weights[-2:])
    return (out, TensorValue(weights, q.dtype))


def _child(m: Any, name: str) -> Any:
    return m.state.modules.get(name)


def _call(ev: Any, m: Any, name: str, *a: Any, **k: Any) -> Any:
    return ev.call(_child(m, name), a, k)


def _attend(ev: Any, m: Any, attn: str, x: Any, mem: Any, mask: Any, padding: Any, causal: Any,
            dropout: str) -> Any:
    """_sa_block / _mha_block: attention without weights, then dropout."""
    out = _call(ev, m, attn, x, mem, mem, attn_mask=mask, key_padding_mask=padding, is_causal=causal,
                need_weights=False)
    return _call(ev, m, dropout, out[0] if isinstance(out, tuple) else out)


def _activation(m: Any) -> Any:
    """The feed-forward activation: a module (a child), a function (F.relu, a user's), or its name."""
    act = _child(m, "activation")
    if act is None:
        act = m.attrs.get("activation", "relu")
    return functional_attr(act) if isinstance(act, str) else act


def _feed_forward(ev: Any, m: Any, x: Any) -> Any:
    """_ff_block: linear2(dropout(activation(linear1(x)))), then dropout2 (dropout3 in a decoder layer)."""
    h = ev.call(_activation(m), (_call(ev, m, "linear1", x),), {})
    h = _call(ev, m, "linear2", _call(ev, m, "dropout", h))
    return _call(ev, m, "dropout2" if "norm3" not in m.state.modules else "dropout3", h)


ENC_LAYER_FORWARD = (("src", None), ("src_mask", None), ("src_key_padding_mask", None), ("is_causal", False))


@forward_rule("TransformerEncoderLayer", saves=COMPOSITE)
def encoder_layer_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    b = _bind(a, k, ENC_LAYER_FORWARD)
    x = first_input(a, k, "src")
    tr = Trace(ev)
    dtype = x.dtype if isinstance(x, TensorValue) else "float32"
    padding = canonical_mask(tr, b["src_key_padding_mask"], dtype, "src_key_padding_mask")
    mask = canonical_mask(tr, b["src_mask"], dtype, "src_mask")
    causal = b["is_causal"] is True
    first = len(ev.tape.ops) if ev.tape is not None else 0
    out = _encoder_layer(ev, m, tr, x, mask, padding, causal)
    if not encoder_layer_fast_path(encoder_layer_call(ev, m, x)):
        mark_fast_path(ev, first)  # inference (eval, no_grad) runs torch._transformer_encoder_layer_fwd
    return out


def _encoder_layer(ev: Any, m: Any, tr: Trace, x: Any, mask: Any, padding: Any, causal: bool) -> Any:
    """TransformerEncoderLayer.forward's own path (training, or when the fast path is not taken)."""
    if m.attrs.get("norm_first"):
        x = tr.add(x, _attend(ev, m, "self_attn", h := _call(ev, m, "norm1", x), h, mask, padding, causal,
                              "dropout1"))
        return tr.add(x, _feed_forward(ev, m, _call(ev, m, "norm2", x)))
    x = _call(ev, m, "norm1", tr.add(x, _attend(ev, m, "self_attn", x, x, mask, padding, causal, "dropout1")))
    return _call(ev, m, "norm2", tr.add(x, _feed_forward(ev, m, x)))


DEC_LAYER_FORWARD = (("tgt", None), ("memory", None), ("tgt_mask", None), ("memory_mask", None),
                     ("tgt_key_padding_mask", None), ("memory_key_padding_mask", None), ("tgt_is_causal", False),
                     ("memory_is_causal", False))


@forward_rule("TransformerDecoderLayer", saves=COMPOSITE)
def decoder_layer_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    b = _bind(a, k, DEC_LAYER_FORWARD)
    x, memory = first_input(a, k, "tgt"), b["memory"]
    tr = Trace(ev)
    self_args = (b["tgt_mask"], b["tgt_key_padding_mask"], b["tgt_is_causal"] is True)
    cross_args = (b["memory_mask"], b["memory_key_padding_mask"], b["memory_is_causal"] is True)
    if m.attrs.get("norm_first"):
        h = _call(ev, m, "norm1", x)
        x = tr.add(x, _attend(ev, m, "self_attn", h, h, *self_args, "dropout1"))
        x = tr.add(x, _attend(ev, m, "multihead_attn", _call(ev, m, "norm2", x), memory, *cross_args, "dropout2"))
        return tr.add(x, _feed_forward(ev, m, _call(ev, m, "norm3", x)))
    x = _call(ev, m, "norm1", tr.add(x, _attend(ev, m, "self_attn", x, x, *self_args, "dropout1")))
    x = _call(ev, m, "norm2", tr.add(x, _attend(ev, m, "multihead_attn", x, memory, *cross_args, "dropout2")))
    return _call(ev, m, "norm3", tr.add(x, _feed_forward(ev, m, x)))


def _seq_len(x: Any, batch_first: bool) -> Any:
    """transformer.py's _get_seq_len."""
    if not isinstance(x, TensorValue) or not isinstance(x.shape, tuple) or len(x.shape) < 2:
        return None  # torch's layers refuse such an input (their attention's shape check)
    return x.shape[0] if len(x.shape) == 2 else x.shape[1 if batch_first else 0]


def _layers(m: Any) -> list[Any] | None:
    """A stack's layers; None when they could not be built (an unknown `num_layers`)."""
    stack = _child(m, "layers")
    return list(stack.state.modules.values()) if stack is not None and stack.state is not None else None


def _first_layer_batch_first(m: Any) -> bool:
    layers = _layers(m) or []
    attn = _child(layers[0], "self_attn") if layers and layers[0].state is not None else None
    return attn is not None and attn.attrs.get("batch_first") is True


def _detect_causal(mask: Any, is_causal: Any, size: Any) -> bool:
    """_detect_is_causal_mask: the hint when given, else whether the mask is the causal one."""
    if is_causal is None and isinstance(mask, TensorValue):
        return is_causal_mask(mask, size if size is not None else (
            mask.shape[-2] if isinstance(mask.shape, tuple) and len(mask.shape) >= 2 else None))
    return is_causal is True


ENC_FORWARD = (("src", None), ("mask", None), ("src_key_padding_mask", None), ("is_causal", None))
DEC_FORWARD = (("tgt", None), ("memory", None), ("tgt_mask", None), ("memory_mask", None),
               ("tgt_key_padding_mask", None), ("memory_key_padding_mask", None), ("tgt_is_causal", None),
               ("memory_is_causal", False))


@forward_rule("TransformerEncoder", saves=COMPOSITE)
def encoder_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    b = _bind(a, k, ENC_FORWARD)
    x = first_input(a, k, "src")
    tr = Trace(ev)
    dtype = x.dtype if isinstance(x, TensorValue) else "float32"
    padding = canonical_mask(tr, b["src_key_padding_mask"], dtype, "src_key_padding_mask")
    mask = canonical_mask(tr, b["mask"], dtype, "mask")
    causal = _detect_causal(mask, b["is_causal"], _seq_len(x, _first_layer_batch_first(m)))
    layers = _layers(m)
    if layers is None:
        return Unknown("TransformerEncoder: its layers are unknown (num_layers was not decided)", ev.current_ref)
    for layer in layers:
        x = ev.call(layer, (x,), {"src_mask": mask, "is_causal": causal, "src_key_padding_mask": padding})
    norm = _child(m, "norm")
    return ev.call(norm, (x,), {}) if norm is not None else x


@forward_rule("TransformerDecoder", saves=COMPOSITE)
def decoder_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    b = _bind(a, k, DEC_FORWARD)
    x = first_input(a, k, "tgt")
    causal = _detect_causal(b["tgt_mask"], b["tgt_is_causal"], _seq_len(x, _first_layer_batch_first(m)))
    layers = _layers(m)
    if layers is None:
        return Unknown("TransformerDecoder: its layers are unknown (num_layers was not decided)", ev.current_ref)
    for layer in layers:
        x = ev.call(layer, (x, b["memory"]), {
            "tgt_mask": b["tgt_mask"], "memory_mask": b["memory_mask"], "tgt_key_padding_mask": b["tgt_key_padding_mask"],
            "memory_key_padding_mask": b["memory_key_padding_mask"], "tgt_is_causal": causal,
            "memory_is_causal": b["memory_is_causal"]})
    norm = _child(m, "norm")
    return ev.call(norm, (x,), {}) if norm is not None else x


TRANSFORMER_FORWARD = (("src", None), ("tgt", None), ("src_mask", None), ("tgt_mask", None), ("memory_mask", None),
                       ("src_key_padding_mask", None), ("tgt_key_padding_mask", None),
                       ("memory_key_padding_mask", None), ("src_is_causal", None), ("tgt_is_causal", None),
                       ("memory_is_causal", False))


@forward_rule("Transformer", saves=COMPOSITE)
def transformer_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    b = _bind(a, k, TRANSFORMER_FORWARD)
    src = first_input(a, k, "src")
    memory = _call(ev, m, "encoder", src, mask=b["src_mask"], src_key_padding_mask=b["src_key_padding_mask"],
                   is_causal=b["src_is_causal"])
    return _call(ev, m, "decoder", b["tgt"], memory, tgt_mask=b["tgt_mask"], memory_mask=b["memory_mask"],
                 tgt_key_padding_mask=b["tgt_key_padding_mask"],
                 memory_key_padding_mask=b["memory_key_padding_mask"], tgt_is_causal=b["tgt_is_causal"],
                 memory_is_causal=b["memory_is_causal"])


def _generate_square_subsequent_mask(ev: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """Transformer.generate_square_subsequent_mask(sz, device=None, dtype=None): a static method."""
    size = a[0] if a else k.get("sz")
    dtype = a[2] if len(a) > 2 else k.get("dtype")
    return causal_mask(ev, size, dtype_name(dtype, "float32") if dtype is not None else "float32")


EXTRA_NAMESPACES["Transformer"] = lambda: {"generate_square_subsequent_mask": StaticMethod(NativeFunction(
    "Transformer.generate_square_subsequent_mask", _generate_square_subsequent_mask))}


# ---------------------------------------------------------------------- the layers' other methods
def _merge_masks(ev: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """MultiheadAttention.merge_masks(attn_mask, key_padding_mask, query) -> (merged mask, mask type)."""
    b = _bind(a[1:], k, (("attn_mask", None), ("key_padding_mask", None), ("query", None)))
    m, attn_mask, padding, query = a[0], b["attn_mask"], b["key_padding_mask"], b["query"]
    tr = Trace(ev)
    mask_type, merged = (1, padding) if padding is not None else (None, None)
    if attn_mask is not None:
        if not isinstance(query, TensorValue) or not isinstance(query.shape, tuple) or len(query.shape) != 3:
            return shapes.as_tensor(ev, query, "MultiheadAttention.merge_masks")
        batch, seq, heads = query.shape[0], query.shape[1], m.attrs.get("num_heads")
        mask_type = 2
        if isinstance(attn_mask, TensorValue) and isinstance(attn_mask.shape, tuple) and len(attn_mask.shape) == 3:
            merged = tr.m(attn_mask, "view", batch, -1, seq, seq)
        else:
            merged = tr.m(tr.m(attn_mask, "view", 1, 1, seq, seq), "expand", batch, heads, -1, -1)
        if padding is not None:
            merged = tr.add(merged, tr.m(tr.m(padding, "view", batch, 1, 1, seq), "expand", -1, heads, -1, -1))
    return (merged, mask_type)


def _sa_block(ev: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """_sa_block(x, attn_mask, key_padding_mask, is_causal=False) of an encoder or decoder layer."""
    b = _bind(a[1:], k, (("x", None), ("attn_mask", None), ("key_padding_mask", None), ("is_causal", False)))
    return _attend(ev, a[0], "self_attn", b["x"], b["x"], b["attn_mask"], b["key_padding_mask"],
                   b["is_causal"] is True, "dropout1")


def _mha_block(ev: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """TransformerDecoderLayer._mha_block(x, mem, attn_mask, key_padding_mask, is_causal=False)."""
    b = _bind(a[1:], k, (("x", None), ("mem", None), ("attn_mask", None), ("key_padding_mask", None),
                         ("is_causal", False)))
    return _attend(ev, a[0], "multihead_attn", b["x"], b["mem"], b["attn_mask"], b["key_padding_mask"],
                   b["is_causal"] is True, "dropout2")


def _ff_block(ev: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """_ff_block(x) of an encoder or decoder layer."""
    return _feed_forward(ev, a[0], a[1] if len(a) > 1 else k.get("x"))


def _methods(cls: str, **fns: Any) -> Any:
    return lambda: {name: NativeFunction(f"{cls}.{name}", fn) for name, fn in fns.items()}


EXTRA_NAMESPACES["MultiheadAttention"] = _methods("MultiheadAttention", merge_masks=_merge_masks)
EXTRA_NAMESPACES["TransformerEncoderLayer"] = _methods("TransformerEncoderLayer", _sa_block=_sa_block,
                                                       _ff_block=_ff_block)
EXTRA_NAMESPACES["TransformerDecoderLayer"] = _methods("TransformerDecoderLayer", _sa_block=_sa_block,
                                                       _mha_block=_mha_block, _ff_block=_ff_block)
