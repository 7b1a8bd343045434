"""Attention: MultiHeadAttention (its query/key/value/output projections are EinsumDense
weights of shapes (dim, heads, key_dim)...), and the parameter-free Attention."""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import Args, Instance, Kwargs, Unknown
from vramlint.frontends.keras.catalog import (
    KArgs,
    KerasLayerSpec,
    Weight,
    op,
    register,
    shape_mismatch,
    tensor_in,
    weight,
)
from vramlint.frontends.keras.layer import add_weight, kstate
from vramlint.frontends.torch.tensors import TensorValue, shape_text


def mha_weights(a: KArgs, shape: Any) -> list[Weight]:
    return []  # made by the first call, which sees the key and value shapes too (mha_call)


def _dims(layer: Instance) -> tuple[Any, Any, Any, Any]:
    """(query heads, key/value heads, key dim, value dim): MultiHeadAttention's or GroupQueryAttention's."""
    a = layer.attrs
    if "num_query_heads" in a:
        hd = a.get("head_dim")
        return a.get("num_query_heads"), a.get("num_key_value_heads"), hd, hd
    kd = a.get("key_dim")
    return a.get("num_heads"), a.get("num_heads"), kd, a.get("value_dim") or kd


def _mha_build(ev: Any, layer: Instance, q: TensorValue, v: TensorValue, key: TensorValue) -> None:
    a = layer.attrs
    h, hkv, kd, vd = _dims(layer)
    out_shape = a.get("output_shape")
    assert isinstance(q.shape, tuple) and isinstance(v.shape, tuple) and isinstance(key.shape, tuple)
    out_dim = out_shape if isinstance(out_shape, int) else \
        out_shape[-1] if isinstance(out_shape, (tuple, list)) and out_shape else q.shape[-1]
    bias = a.get("use_bias", True) is not False
    for name, dim, heads, per in (("query", q.shape[-1], h, kd), ("key", key.shape[-1], hkv, kd),
                                  ("value", v.shape[-1], hkv, vd)):
        add_weight(ev, layer, (dim, heads, per), f"{name}_kernel")
        if bias:
            add_weight(ev, layer, (heads, per), f"{name}_bias")
    add_weight(ev, layer, (h, vd, out_dim), "attention_output_kernel")
    if bias:
        add_weight(ev, layer, (out_dim,), "attention_output_bias")


def mha_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    q = tensor_in(ev, args[0], "MultiHeadAttention")
    v = tensor_in(ev, args[1] if len(args) > 1 else k.get("value"), "MultiHeadAttention")
    key_in = args[2] if len(args) > 2 else k.get("key")
    key = v if key_in is None else tensor_in(ev, key_in, "MultiHeadAttention")
    if weight(layer, "query_kernel") is None:
        _mha_build(ev, layer, q, v, key)
    assert isinstance(q.shape, tuple) and isinstance(v.shape, tuple) and isinstance(key.shape, tuple)
    if len(q.shape) != 3 or len(v.shape) != 3:
        raise shape_mismatch(ev, "MultiHeadAttention", f"query {shape_text(q.shape)} and value {shape_text(v.shape)} "
                                                       "should be (batch, length, dim)")
    wq, wk, wv = weight(layer, "query_kernel"), weight(layer, "key_kernel"), weight(layer, "value_kernel")
    wo = weight(layer, "attention_output_kernel")
    if wq is None or wk is None or wv is None or wo is None:
        return Unknown("MultiHeadAttention: its weights are not known", ev.current_ref)
    for w in (wq, wk, wv, wo):
        if isinstance(w.shape, Unknown):  # built from sizes that are not ints (`num_heads=2.5`)
            return w.shape
    h, hkv, kd, vd = _dims(layer)
    b, tq, tk = q.shape[0], q.shape[1], key.shape[1]
    for name, x, w in (("query", q, wq), ("key", key, wk), ("value", v, wv)):
        assert isinstance(x.shape, tuple) and isinstance(w.shape, tuple)
        if isinstance(x.shape[-1], int) and x.shape[-1] != w.shape[0]:
            raise shape_mismatch(ev, "MultiHeadAttention", f"the {name}'s last dimension is {x.shape[-1]}, "
                                                           f"the layer was built for {w.shape[0]}")
    dt = q.dtype

    def project(x: TensorValue, w: TensorValue, bias: str, per: Any) -> TensorValue:
        assert isinstance(x.shape, tuple) and isinstance(w.shape, tuple)
        y = op(ev, "torch.einsum", (x, w), TensorValue((x.shape[0], x.shape[1], w.shape[1], per), dt))
        bt = weight(layer, bias)
        return op(ev, "torch.add", (y, bt), TensorValue(y.shape, dt)) if bt is not None else y

    qp = project(q, wq, "query_bias", kd)
    kp, vp = project(key, wk, "key_bias", kd), project(v, wv, "value_bias", vd)
    if not layer.attrs.get("dropout") and not k.get("return_attention_scores") and hkv == h:
        # Keras calls ops.dot_product_attention: on the torch backend, transposed contiguous copies of
        # q, k, v into scaled_dot_product_attention, whose output is transposed back.
        def heads_first(t: TensorValue) -> TensorValue:
            assert isinstance(t.shape, tuple)
            shape = (t.shape[0], t.shape[2], t.shape[1], t.shape[3])
            view = op(ev, "torch.transpose", (t, 1, 2), TensorValue(shape, dt))
            return op(ev, "Tensor.contiguous", (view,), TensorValue(shape, dt))  # type: ignore[no-any-return]

        att = op(ev, "torch.nn.functional.scaled_dot_product_attention",
                 (heads_first(qp), heads_first(kp), heads_first(vp)), TensorValue((b, h, tq, vd), dt))
        ctx = op(ev, "torch.transpose", (att, 1, 2), TensorValue((b, tq, h, vd), dt))
        return _output(ev, layer, ctx, wo, dt)
    qp = op(ev, "torch.mul", (qp,), TensorValue(qp.shape, dt))  # the 1/sqrt(key_dim) scale
    scores = op(ev, "torch.einsum", (kp, qp), TensorValue((b, h, tq, tk), dt))
    probs = op(ev, "torch.softmax", (scores,), TensorValue(scores.shape, dt))
    if layer.attrs.get("dropout") and k.get("training") is not False:
        probs = op(ev, "torch.nn.functional.dropout", (probs, layer.attrs.get("dropout")),
                   TensorValue(probs.shape, dt))
    ctx = op(ev, "torch.einsum", (probs, vp), TensorValue((b, tq, h, vd), dt))
    out = _output(ev, layer, ctx, wo, dt)
    if k.get("return_attention_scores"):
        return (out, probs)
    return out


def _output(ev: Any, layer: Instance, ctx: TensorValue, wo: TensorValue, dt: str) -> TensorValue:
    """The output projection: (batch, length, heads, value_dim) -> (batch, length, output dim)."""
    assert isinstance(wo.shape, tuple) and isinstance(ctx.shape, tuple)
    b, t, h, v = ctx.shape
    # einsum contracts (heads, value_dim) as one dimension: a copy when ctx is a transposed view
    flat = op(ev, "torch.reshape", (ctx, (b, t, h * v if isinstance(h, int) and isinstance(v, int) else -1)),
              TensorValue((b, t, h * v if isinstance(h, int) and isinstance(v, int) else Unknown("heads")), dt))
    out = op(ev, "torch.einsum", (flat, wo), TensorValue((b, t, wo.shape[-1]), dt))
    bo = weight(layer, "attention_output_bias")
    if bo is not None:
        out = op(ev, "torch.add", (out, bo), TensorValue(out.shape, dt))
    return out  # type: ignore[no-any-return]


def attention_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    xs = args[0]
    if not isinstance(xs, (list, tuple)) or len(xs) < 2:
        raise ev.raise_error("ValueError", "Attention should be called on [query, value] or [query, value, key]")
    q, v = tensor_in(ev, xs[0], "Attention"), tensor_in(ev, xs[1], "Attention")
    assert isinstance(q.shape, tuple) and isinstance(v.shape, tuple)
    scores = op(ev, "torch.matmul", (q, v), TensorValue((q.shape[0], q.shape[1], v.shape[1]), q.dtype))
    probs = op(ev, "torch.softmax", (scores,), TensorValue(scores.shape, q.dtype))
    return op(ev, "torch.matmul", (probs, v), TensorValue((*q.shape[:-1], v.shape[-1]), q.dtype))


def attention_weights(a: KArgs, shape: Any) -> list[Weight]:
    return [("scale", (), True)] if a.use_scale else []


def additive_attention_weights(a: KArgs, shape: Any) -> list[Weight]:
    first = shape[0] if isinstance(shape, list) and shape else shape
    if not a.use_scale or not isinstance(first, tuple) or not first:
        return []
    return [("scale", (a.size(first[-1], "the query's last dimension"),), True)]


register(
    KerasLayerSpec("MultiHeadAttention", "num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, "
                   "output_shape=None, attention_axes=None, flash_attention=None, kernel_initializer='glorot_uniform', "
                   "bias_initializer='zeros', kernel_regularizer=None, bias_regularizer=None, "
                   "activity_regularizer=None, kernel_constraint=None, bias_constraint=None, seed=None, **kwargs",
                   mha_weights, mha_call, min_rank=3),
    KerasLayerSpec("GroupQueryAttention", "head_dim, num_query_heads, num_key_value_heads, dropout=0.0, "
                   "use_bias=True, flash_attention=None, kernel_initializer='glorot_uniform', "
                   "bias_initializer='zeros', kernel_regularizer=None, bias_regularizer=None, "
                   "activity_regularizer=None, kernel_constraint=None, bias_constraint=None, seed=None, **kwargs",
                   mha_weights, mha_call, aliases=("GroupedQueryAttention",), min_rank=3),
    KerasLayerSpec("Attention", "use_scale=False, score_mode='dot', dropout=0.0, seed=None, **kwargs",
                   attention_weights, attention_call, min_rank=3),
    KerasLayerSpec("AdditiveAttention", "use_scale=True, dropout=0.0, **kwargs", additive_attention_weights,
                   attention_call, min_rank=3),
)

__all__ = ["kstate"]
