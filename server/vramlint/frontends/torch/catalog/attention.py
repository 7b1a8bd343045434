"""Attention: MultiheadAttention, Transformer and its Encoder/Decoder (layers)."""

from __future__ import annotations

from typing import Any

from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    COMPOSITE,
    LayerArgs,
    LayerParts,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)
from vramlint.frontends.torch.tensors import TensorValue


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
    out_proj = a.make("NonDynamicallyQuantizableLinear", e, e, bias=a.bias)
    return LayerParts(params=params, children={"out_proj": out_proj}, attrs={
        "kdim": kdim, "vdim": vdim, "_qkv_same_embed_dim": same, "head_dim": e // heads if isinstance(heads, int) and heads else e,
    })


def encoder_layer(a: LayerArgs) -> LayerParts:
    d, ff = a.d_model, a.dim_feedforward
    children = {
        "self_attn": a.make("MultiheadAttention", d, a.nhead, dropout=a.dropout, bias=a.bias, batch_first=a.batch_first),
        "linear1": a.make("Linear", d, ff, bias=a.bias),
        "dropout": a.make("Dropout", a.dropout),
        "linear2": a.make("Linear", ff, d, bias=a.bias),
        "norm1": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias),
        "norm2": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias),
        "dropout1": a.make("Dropout", a.dropout),
        "dropout2": a.make("Dropout", a.dropout),
    }
    return LayerParts(children=_with_activation(a, children))


def decoder_layer(a: LayerArgs) -> LayerParts:
    d, ff = a.d_model, a.dim_feedforward
    children = {
        "self_attn": a.make("MultiheadAttention", d, a.nhead, dropout=a.dropout, bias=a.bias, batch_first=a.batch_first),
        "multihead_attn": a.make("MultiheadAttention", d, a.nhead, dropout=a.dropout, bias=a.bias,
                                 batch_first=a.batch_first),
        "linear1": a.make("Linear", d, ff, bias=a.bias),
        "dropout": a.make("Dropout", a.dropout),
        "linear2": a.make("Linear", ff, d, bias=a.bias),
        "norm1": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias),
        "norm2": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias),
        "norm3": a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias),
        "dropout1": a.make("Dropout", a.dropout),
        "dropout2": a.make("Dropout", a.dropout),
        "dropout3": a.make("Dropout", a.dropout),
    }
    return LayerParts(children=_with_activation(a, children))


def _with_activation(a: LayerArgs, children: dict[str, Any]) -> dict[str, Any]:
    from vramlint.frontends.torch.module import is_module

    # An activation passed as a module instance is registered as a child (parameter-free or not).
    if is_module(a.activation):
        children["activation"] = a.activation
    return children


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
                  layer_norm_eps=a.layer_norm_eps, batch_first=a.batch_first, norm_first=a.norm_first, bias=a.bias)
    if a.custom_encoder is not None:
        enc = a.custom_encoder
    else:
        layer = a.make("TransformerEncoderLayer", d, a.nhead, **common)
        enc = a.make("TransformerEncoder", layer, a.num_encoder_layers,
                     a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias))
    if a.custom_decoder is not None:
        dec = a.custom_decoder
    else:
        layer = a.make("TransformerDecoderLayer", d, a.nhead, **common)
        dec = a.make("TransformerDecoder", layer, a.num_decoder_layers,
                     a.make("LayerNorm", d, eps=a.layer_norm_eps, bias=a.bias))
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
@forward_rule("MultiheadAttention", saves="multihead_attention")
def mha_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    q = shapes.as_tensor(ev, first_input(a, k, "query"), "MultiheadAttention")
    key = a[1] if len(a) > 1 else k.get("key", q)
    if not isinstance(q, TensorValue):
        return q
    assert isinstance(q.shape, tuple)
    if len(q.shape) not in (2, 3):
        return shapes.mismatch(ev, f"MultiheadAttention expects a 2-D or 3-D query, got shape {list(q.shape)}")
    out = TensorValue(q.shape, q.dtype)
    if k.get("need_weights", True) is False:
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
    if k.get("average_attn_weights", True) is False:
        weights = (*weights[:-2], m.attrs.get("num_heads"), *weights[-2:])
    return (out, TensorValue(weights, q.dtype))


def _child(m: Any, name: str) -> Any:
    return m.state.modules.get(name)


def _attend(ev: Any, m: Any, attn: str, q: Any, kv: Any, dropout: str) -> Any:
    out = ev.call(_child(m, attn), (q, kv, kv), {"need_weights": False})
    return ev.call(_child(m, dropout), (out[0] if isinstance(out, tuple) else out,), {})


def _feed_forward(ev: Any, m: Any, x: Any) -> Any:
    h = ev.call(_child(m, "linear1"), (x,), {})
    act = _child(m, "activation")
    h = ev.call(act, (h,), {}) if act is not None else shapes.same(h) if isinstance(h, TensorValue) else h
    h = ev.call(_child(m, "linear2"), (ev.call(_child(m, "dropout"), (h,), {}),), {})
    return ev.call(_child(m, "dropout2" if "norm3" not in m.state.modules else "dropout3"), (h,), {})


def _add(ev: Any, a: Any, b: Any) -> Any:
    import libcst as cst

    return ev.binop(cst.Add, a, b)


# The composite layers run their children, as torch's own forward does, so each child's output
# is traced (MultiheadAttention's out_proj is not called as a module by torch: no child call).
@forward_rule("TransformerEncoderLayer", saves=COMPOSITE)
def encoder_layer_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = first_input(a, k, "src")
    norm1, norm2 = _child(m, "norm1"), _child(m, "norm2")
    if m.attrs.get("norm_first"):
        h = ev.call(norm1, (x,), {})
        x = _add(ev, x, _attend(ev, m, "self_attn", h, h, "dropout1"))
        return _add(ev, x, _feed_forward(ev, m, ev.call(norm2, (x,), {})))
    x = ev.call(norm1, (_add(ev, x, _attend(ev, m, "self_attn", x, x, "dropout1")),), {})
    return ev.call(norm2, (_add(ev, x, _feed_forward(ev, m, x)),), {})


@forward_rule("TransformerDecoderLayer", saves=COMPOSITE)
def decoder_layer_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = first_input(a, k, "tgt")
    memory = a[1] if len(a) > 1 else k.get("memory")
    n1, n2, n3 = _child(m, "norm1"), _child(m, "norm2"), _child(m, "norm3")
    if m.attrs.get("norm_first"):
        h = ev.call(n1, (x,), {})
        x = _add(ev, x, _attend(ev, m, "self_attn", h, h, "dropout1"))
        x = _add(ev, x, _attend(ev, m, "multihead_attn", ev.call(n2, (x,), {}), memory, "dropout2"))
        return _add(ev, x, _feed_forward(ev, m, ev.call(n3, (x,), {})))
    x = ev.call(n1, (_add(ev, x, _attend(ev, m, "self_attn", x, x, "dropout1")),), {})
    x = ev.call(n2, (_add(ev, x, _attend(ev, m, "multihead_attn", x, memory, "dropout2")),), {})
    return ev.call(n3, (_add(ev, x, _feed_forward(ev, m, x)),), {})


@forward_rule("TransformerEncoder", "TransformerDecoder", saves=COMPOSITE)
def stack_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = first_input(a, k, "src", "tgt")
    rest = a[1:2] if m.cls.name == "TransformerDecoder" else ()
    if m.cls.name == "TransformerDecoder" and not rest and "memory" in k:
        rest = (k["memory"],)
    for layer in m.state.modules["layers"].state.modules.values():
        x = ev.call(layer, (x, *rest), {})
    norm = _child(m, "norm")
    return ev.call(norm, (x,), {}) if norm is not None else x


@forward_rule("Transformer", saves=COMPOSITE)
def transformer_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    src = first_input(a, k, "src")
    tgt = a[1] if len(a) > 1 else k.get("tgt")
    memory = ev.call(_child(m, "encoder"), (src,), {})
    return ev.call(_child(m, "decoder"), (tgt, memory), {})
