"""nn.MultiheadAttention and the Transformer layers, op by op as torch 2.13 runs them.

torch/nn/functional.py's `multi_head_attention_forward` and the forwards of
torch/nn/modules/transformer.py, written with the stubs' own calls (F.linear, Tensor.view,
torch.bmm, F.scaled_dot_product_attention...), so that the memory tape records every op as torch
runs it: the in-projection (whose 3-D input matmul folds to 2-D: a copy when batch_first
transposed it), the contiguous copy of the packed q/k/v, the attention (scaled_dot_product_attention
when the weights are not returned; else bmm, softmax, dropout, bmm), and the output projection
with out_proj's weight and bias, which therefore get their gradients. Masks are made float as
torch's `_canonical_mask` does, and a causal mask is recognised as `_detect_is_causal_mask` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import ClassValue, Instance, NativeFunction, Unknown
from vramlint.frontends.torch.functional import functional_attr
from vramlint.frontends.torch.tensors import DTYPES, FLOAT_DTYPES, MAX_CONCRETE, TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

# Marks a mask made by Transformer.generate_square_subsequent_mask (or made float from one) whose
# values are too many to track: torch's `_detect_is_causal_mask` would find it causal.
CAUSAL = "__vramlint_causal_mask__"


class Trace:
    """torch's calls, made through the stubs: each is recorded on the tape under its own name."""

    def __init__(self, ev: Evaluator) -> None:
        self.ev = ev

    def f(self, name: str, *a: Any, **k: Any) -> Any:
        """torch.nn.functional.<name>(*a, **k)"""
        return self.ev.call(functional_attr(name), a, k)

    def torch(self, name: str, *a: Any, **k: Any) -> Any:
        """torch.<name>(*a, **k)"""
        mod = self.ev.loader.import_module("torch", None)
        fn = getattr(mod, "ns", {}).get(name)
        return self.ev.call(fn, a, k) if fn is not None else Unknown(f"torch.{name}", self.ev.current_ref)

    def m(self, t: Any, name: str, *a: Any, **k: Any) -> Any:
        """t.<name>(*a, **k); an unknown stays unknown."""
        if not isinstance(t, TensorValue):
            return t
        return self.ev.call(t.get_attribute(self.ev, name), a, k)

    def item(self, t: Any, i: int) -> Any:
        """t[i]"""
        return t.getitem(self.ev, i) if isinstance(t, TensorValue) else t

    def add(self, a: Any, b: Any) -> Any:
        import libcst as cst

        return self.ev.binop(cst.Add, a, b)

    def mul(self, a: Any, b: Any) -> Any:
        import libcst as cst

        return self.ev.binop(cst.Multiply, a, b)

    def call(self, fn: Any, *a: Any, **k: Any) -> Any:
        return self.ev.call(fn, a, k)

    def made(self, name: str, args: tuple[Any, ...], out: TensorValue) -> TensorValue:
        """`out`, recorded as the torch function `name` of `args` (a factory made here)."""
        if self.ev.tape is not None:
            return self.ev.tape.call(self.ev, name, args, {}, lambda: out)  # type: ignore[no-any-return]
        return out


# ---------------------------------------------------------------------- masks
def causal_mask(ev: Evaluator, size: Any, dtype: str = "float32") -> Any:
    """Transformer.generate_square_subsequent_mask: torch.triu(torch.full((sz, sz), -inf), diagonal=1)."""
    if not isinstance(size, int) or isinstance(size, bool):
        return size if isinstance(size, Unknown) else ev.raise_error(
            "TypeError", f"generate_square_subsequent_mask: sz must be an int, got {type(size).__name__}")
    tr = Trace(ev)
    full = tr.made("torch.full", (), TensorValue((size, size), dtype))
    data = None
    if size * size <= MAX_CONCRETE:
        data = [(-math.inf if j > i else 0.0) if dtype in FLOAT_DTYPES else j > i
                for i in range(size) for j in range(size)]
    mask = tr.made("torch.triu", (full,), TensorValue((size, size), dtype, data=data))
    mark_causal(mask)
    return mask


def mark_causal(t: TensorValue) -> None:
    t.attrs = {**(t.attrs or {}), CAUSAL: True}


def is_causal_mask(t: Any, size: Any) -> bool:
    """torch's `_detect_is_causal_mask` comparison: `t` equals the square subsequent mask of `size`."""
    if not isinstance(t, TensorValue) or not isinstance(t.shape, tuple) or t.shape[-2:] != (size, size) \
            or len(t.shape) != 2:
        return False
    if t.attrs is not None and t.attrs.get(CAUSAL):
        return True
    if t.data is None or not isinstance(size, int) or len(t.data) != size * size:
        return False
    blocked = [bool(v) if t.dtype == "bool" else v == -math.inf for v in t.data]
    zero_else = all(v == 0 for v, b in zip(t.data, blocked, strict=True) if not b) if t.dtype != "bool" else True
    return zero_else and all(blocked[i * size + j] == (j > i) for i in range(size) for j in range(size))


def canonical_mask(tr: Trace, mask: Any, dtype: str, name: str) -> Any:
    """F._canonical_mask: a bool mask becomes a float one (zeros, -inf where True); float masks stay."""
    if not isinstance(mask, TensorValue):
        return mask
    if mask.dtype == "bool":
        causal = mask.attrs is not None and mask.attrs.get(CAUSAL)
        out = tr.torch("zeros_like", mask, dtype=DTYPES.get(dtype))
        out = tr.m(out, "masked_fill_", mask, -math.inf)
        if isinstance(out, TensorValue) and mask.data is not None and len(mask.data) <= MAX_CONCRETE:
            out.data = [-math.inf if v else 0.0 for v in mask.data]
        if causal and isinstance(out, TensorValue):
            mark_causal(out)
        return out
    if mask.dtype not in FLOAT_DTYPES:
        raise tr.ev.raise_error("AssertionError", f"only bool and floating types of {name} are supported")
    return mask


# ---------------------------------------------------------------------- F.multi_head_attention_forward
@dataclass
class MhaWeights:
    """What multi_head_attention_forward takes besides its inputs (nn.MultiheadAttention's own)."""

    embed_dim: Any
    num_heads: Any
    in_proj_weight: Any
    in_proj_bias: Any
    bias_k: Any
    bias_v: Any
    add_zero_attn: bool
    dropout_p: float
    out_proj_weight: Any
    out_proj_bias: Any
    q_proj_weight: Any = None
    k_proj_weight: Any = None
    v_proj_weight: Any = None
    separate: bool = False  # use_separate_proj_weight


def mha_weights(m: Instance) -> MhaWeights:
    p = m.state.params if m.state is not None else {}
    out = m.state.modules.get("out_proj") if m.state is not None else None
    op = out.state.params if isinstance(out, Instance) and out.state is not None else {}
    a = m.attrs
    dropout = a.get("dropout", 0.0)
    return MhaWeights(
        a.get("embed_dim"), a.get("num_heads"), p.get("in_proj_weight"), p.get("in_proj_bias"), p.get("bias_k"),
        p.get("bias_v"), a.get("add_zero_attn") is True, dropout if isinstance(dropout, (int, float)) else 0.0,
        op.get("weight"), op.get("bias"), p.get("q_proj_weight"), p.get("k_proj_weight"), p.get("v_proj_weight"),
        a.get("_qkv_same_embed_dim") is False)


def known_sizes(*ts: Any) -> bool:
    return all(isinstance(t, TensorValue) and isinstance(t.shape, tuple)
               and all(isinstance(d, int) for d in t.shape) for t in ts)


def multi_head_attention(tr: Trace, w: MhaWeights, query: TensorValue, key: TensorValue, value: TensorValue,
                         key_padding_mask: Any = None, need_weights: bool = True, attn_mask: Any = None,
                         average_attn_weights: bool = True, is_causal: bool = False,
                         training: bool = True) -> Any:
    """F.multi_head_attention_forward on sequence-first inputs ([L, N, E] or unbatched [L, E])."""
    ev = tr.ev
    batched = len(query.shape) == 3  # type: ignore[arg-type]
    if not batched:
        query, key, value = (tr.m(t, "unsqueeze", 1) for t in (query, key, value))
        if isinstance(key_padding_mask, TensorValue):
            key_padding_mask = tr.m(key_padding_mask, "unsqueeze", 0)
    if not known_sizes(query, key, value):
        return Unknown("MultiheadAttention with sizes that are not known", ev.current_ref)
    tgt_len, bsz, embed = query.shape  # type: ignore[misc]
    heads = w.num_heads
    key_padding_mask = canonical_mask(tr, key_padding_mask, query.dtype, "key_padding_mask")
    if is_causal and attn_mask is None:
        raise ev.raise_error("RuntimeError", "Need attn_mask if specifying the is_causal hint")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # scaled_dot_product_attention's is_causal, no mask
    else:
        attn_mask = canonical_mask(tr, attn_mask, query.dtype, "attn_mask")
        if key_padding_mask is not None:
            is_causal = False
    if embed != w.embed_dim:
        raise ev.raise_error("AssertionError", f"was expecting embedding dimension of {w.embed_dim}, but got {embed}")
    if not isinstance(heads, int) or not heads or embed % heads:
        raise ev.raise_error("AssertionError", f"embed_dim {embed} not divisible by num_heads {heads}")
    head_dim = embed // heads
    q, k, v = _in_projection(tr, w, query, key, value, embed)
    if isinstance(attn_mask, TensorValue) and isinstance(attn_mask.shape, tuple) and len(attn_mask.shape) == 2:
        attn_mask = tr.m(attn_mask, "unsqueeze", 0)
    if w.bias_k is not None and w.bias_v is not None:
        k = tr.torch("cat", [k, tr.m(w.bias_k, "repeat", 1, bsz, 1)])
        v = tr.torch("cat", [v, tr.m(w.bias_v, "repeat", 1, bsz, 1)])
        attn_mask = tr.f("pad", attn_mask, (0, 1)) if attn_mask is not None else None
        key_padding_mask = tr.f("pad", key_padding_mask, (0, 1)) if key_padding_mask is not None else None
    q = tr.m(tr.m(q, "view", tgt_len, bsz * heads, head_dim), "transpose", 0, 1)
    k = tr.m(tr.m(k, "view", _size(k, 0), bsz * heads, head_dim), "transpose", 0, 1)
    v = tr.m(tr.m(v, "view", _size(v, 0), bsz * heads, head_dim), "transpose", 0, 1)
    if w.add_zero_attn:
        k = tr.torch("cat", [k, tr.m(k, "new_zeros", (bsz * heads, 1, head_dim))], dim=1)
        v = tr.torch("cat", [v, tr.m(v, "new_zeros", (bsz * heads, 1, head_dim))], dim=1)
        attn_mask = tr.f("pad", attn_mask, (0, 1)) if attn_mask is not None else None
        key_padding_mask = tr.f("pad", key_padding_mask, (0, 1)) if key_padding_mask is not None else None
    src_len = _size(k, 1)
    if isinstance(key_padding_mask, TensorValue):
        kpm = tr.m(tr.m(key_padding_mask, "view", bsz, 1, 1, src_len), "expand", -1, heads, -1, -1)
        kpm = tr.m(kpm, "reshape", bsz * heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else tr.add(attn_mask, kpm)
    dropout_p = w.dropout_p if training else 0.0
    if need_weights:
        return _explicit_attention(tr, w, q, k, v, attn_mask, dropout_p, (tgt_len, bsz, heads, src_len, embed),
                                   average_attn_weights, batched)
    if isinstance(attn_mask, TensorValue) and isinstance(attn_mask.shape, tuple):
        if attn_mask.shape[0] == 1 and len(attn_mask.shape) == 3:
            attn_mask = tr.m(attn_mask, "unsqueeze", 0)
        else:
            attn_mask = tr.m(attn_mask, "view", bsz, heads, -1, src_len)
    q = tr.m(q, "view", bsz, heads, tgt_len, head_dim)
    k = tr.m(k, "view", bsz, heads, src_len, head_dim)
    v = tr.m(v, "view", bsz, heads, src_len, head_dim)
    # The SDPA backend (flash / memory-efficient / cuDNN / math) and what it keeps are the
    # scaled_dot_product_attention rule's (memory/autograd_rules.py).
    out = tr.f("scaled_dot_product_attention", q, k, v, attn_mask, dropout_p, is_causal)
    out = tr.m(tr.m(out, "permute", 2, 0, 1, 3), "reshape", bsz * tgt_len, embed)
    out = tr.f("linear", out, w.out_proj_weight, w.out_proj_bias)
    out = tr.m(out, "view", tgt_len, bsz, _size(out, 1))
    if not batched:
        out = tr.m(out, "squeeze", 1)
    return (out, None)


def _size(t: Any, dim: int) -> Any:
    return t.shape[dim] if isinstance(t, TensorValue) and isinstance(t.shape, tuple) else Unknown("size")


def _in_projection(tr: Trace, w: MhaWeights, query: TensorValue, key: TensorValue, value: TensorValue,
                   embed: int) -> tuple[Any, Any, Any]:
    """_in_projection_packed (one packed weight) or _in_projection (q/k/v_proj_weight)."""
    if w.separate:
        biases = tr.m(w.in_proj_bias, "chunk", 3) if w.in_proj_bias is not None else (None, None, None)
        b_q, b_k, b_v = biases if isinstance(biases, (list, tuple)) and len(biases) == 3 else (None, None, None)
        return (tr.f("linear", query, w.q_proj_weight, b_q), tr.f("linear", key, w.k_proj_weight, b_k),
                tr.f("linear", value, w.v_proj_weight, b_v))
    weight, bias = w.in_proj_weight, w.in_proj_bias
    if key is value and query is key:  # self-attention: one projection, one contiguous copy of q, k, v
        proj = _split_heads(tr, tr.f("linear", query, weight, bias), 3, embed)
        return tr.item(proj, 0), tr.item(proj, 1), tr.item(proj, 2)
    if key is value:  # encoder-decoder attention: q, then k and v in one projection
        w_q, w_kv = _pair(tr.m(weight, "split", [embed, 2 * embed]))
        b_q, b_kv = _pair(tr.m(bias, "split", [embed, 2 * embed])) if bias is not None else (None, None)
        q = tr.f("linear", query, w_q, b_q)
        kv = _split_heads(tr, tr.f("linear", key, w_kv, b_kv), 2, embed)
        return q, tr.item(kv, 0), tr.item(kv, 1)
    ws = tr.m(weight, "chunk", 3)
    bs = tr.m(bias, "chunk", 3) if bias is not None else [None, None, None]
    if not isinstance(ws, (list, tuple)) or not isinstance(bs, (list, tuple)):
        return ws, ws, ws
    return (tr.f("linear", query, ws[0], bs[0]), tr.f("linear", key, ws[1], bs[1]),
            tr.f("linear", value, ws[2], bs[2]))


def _pair(v: Any) -> tuple[Any, Any]:
    return (v[0], v[1]) if isinstance(v, (list, tuple)) and len(v) == 2 else (v, v)


def _split_heads(tr: Trace, proj: Any, n: int, embed: int) -> Any:
    """proj.unflatten(-1, (n, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous(): [n, ..., E]."""
    if not isinstance(proj, TensorValue) or not isinstance(proj.shape, tuple):
        return proj
    t = tr.m(proj, "view", *proj.shape[:-1], n, embed)
    t = tr.m(tr.m(t, "unsqueeze", 0), "transpose", 0, -2)
    return tr.m(tr.m(t, "squeeze", -2), "contiguous")


def _explicit_attention(tr: Trace, w: MhaWeights, q: Any, k: Any, v: Any, attn_mask: Any, dropout_p: float,
                        sizes: tuple[int, int, int, Any, int], average: bool, batched: bool) -> Any:
    """need_weights=True: the [N*H, L, S] weights are computed, kept and returned."""
    tgt_len, bsz, heads, src_len, embed = sizes
    head_dim = embed // heads
    q_scaled = tr.mul(q, math.sqrt(1.0 / float(head_dim)))
    kt = tr.m(k, "transpose", -2, -1)
    if attn_mask is not None:
        weights = tr.torch("baddbmm", attn_mask, q_scaled, kt)
    else:
        weights = tr.torch("bmm", q_scaled, kt)
    weights = tr.f("softmax", weights, dim=-1)
    if dropout_p > 0.0:
        weights = tr.f("dropout", weights, p=dropout_p)
    out = tr.torch("bmm", weights, v)
    out = tr.m(tr.m(out, "transpose", 0, 1), "reshape", tgt_len * bsz, embed)
    out = tr.f("linear", out, w.out_proj_weight, w.out_proj_bias)
    out = tr.m(out, "view", tgt_len, bsz, _size(out, 1))
    weights = tr.m(weights, "view", bsz, heads, tgt_len, src_len)
    if average:
        weights = tr.m(weights, "mean", dim=1)
    if not batched:
        out = tr.m(out, "squeeze", 1)
        weights = tr.m(weights, "squeeze", 0)
    return (out, weights)


def is_native(fn: Any, name: str) -> bool:
    return isinstance(fn, NativeFunction) and fn.name == f"torch.nn.functional.{name}"


def is_instance_of(v: Any, name: str) -> bool:
    """isinstance(v, torch.nn.<name>), a subclass included."""
    return isinstance(v, Instance) and isinstance(v.cls, ClassValue) and any(
        c.name == name and c.module_name == "torch.nn" for c in v.cls.mro)


# ---------------------------------------------------------------------- inference: torch's fast path
@dataclass(frozen=True)
class EncoderLayerCall:
    """What TransformerEncoderLayer.forward reads to choose `torch._transformer_encoder_layer_fwd`
    (torch 2.13, torch/nn/modules/transformer.py), for one call."""

    src_dim: int
    training: bool
    grad_enabled: bool  # grad enabled and some weight (or the input) requires it
    batch_first: bool
    in_proj_bias: bool
    qkv_same_embed_dim: bool
    activation_relu_or_gelu: int
    eps_equal: bool  # norm1.eps == norm2.eps
    nested_with_masks: bool
    num_heads: int
    autocast: bool
    hooks: bool  # forward (pre-)hooks on the layer or any submodule


def encoder_layer_fast_path(c: EncoderLayerCall) -> str:
    """Why torch does not take the fast path for this call, in torch's order; "" when it does."""
    checks = (
        (c.src_dim != 3, f"input not batched; expected src.dim() of 3 but got {c.src_dim}"),
        (c.training, "training is enabled"),
        (not c.batch_first, "self_attn.batch_first was not True"),
        (not c.in_proj_bias, "self_attn was passed bias=False"),
        (not c.qkv_same_embed_dim, "self_attn._qkv_same_embed_dim was not True"),
        (not c.activation_relu_or_gelu, "activation_relu_or_gelu was not True"),
        (not c.eps_equal, "norm1.eps is not equal to norm2.eps"),
        (c.nested_with_masks, "neither src_key_padding_mask nor src_mask are supported with NestedTensor input"),
        (c.num_heads % 2 == 1, "num_head is odd"),
        (c.autocast, "autocast is enabled"),
        (c.hooks, "forward pre-/hooks are attached to the module"),
        (c.grad_enabled, "grad is enabled and at least one of query or the input/output projection weights or "
                         "biases requires_grad"),
    )
    return next((why for failed, why in checks if failed), "")


def _has_hooks(m: Any) -> bool:
    st = m.state if isinstance(m, Instance) else None
    if st is None:
        return False
    return bool(getattr(st, "hooks", None)) or any(_has_hooks(c) for c in st.modules.values())


def encoder_layer_call(ev: Evaluator, m: Instance, src: Any) -> EncoderLayerCall:
    """The inference call (eval mode, no_grad) of layer `m` on `src`, as the fast-path test sees it."""
    attn = m.state.modules.get("self_attn") if m.state is not None else None
    norms = [m.state.modules.get(n) for n in ("norm1", "norm2")] if m.state is not None else []
    eps = [n.attrs.get("eps") for n in norms if isinstance(n, Instance)]
    a = attn.attrs if isinstance(attn, Instance) else {}
    p = attn.state.params if isinstance(attn, Instance) and attn.state is not None else {}
    heads = a.get("num_heads")
    return EncoderLayerCall(
        src_dim=len(src.shape) if isinstance(src, TensorValue) and isinstance(src.shape, tuple) else 0,
        training=False, grad_enabled=False, batch_first=a.get("batch_first") is True,
        in_proj_bias=p.get("in_proj_bias") is not None, qkv_same_embed_dim=a.get("_qkv_same_embed_dim") is True,
        activation_relu_or_gelu=int(m.attrs.get("activation_relu_or_gelu", 0) or 0),
        eps_equal=len(eps) == 2 and eps[0] == eps[1], nested_with_masks=False,
        num_heads=heads if isinstance(heads, int) else 1,
        autocast=ev.tape is not None and ev.tape.autocast is not None, hooks=_has_hooks(m))


# The ops of the layer's slow path that its fast path does not allocate: the fused kernel runs the
# feed-forward activation inside linear1's addmm (`_addmm_activation`), adds the residuals in
# place (`add_in_place`), projects q, k, v without the transposed copies, and (CUDA, no mask:
# native_multi_head_attention's sdp branch) reads the attention output as a view
# (aten/src/ATen/native/transformers/transformer.cpp, cuda/attention.cpp).
FAST_PATH_ALIASES = {"relu", "gelu", "add", "contiguous", "reshape", "transpose", "dropout"}


def mark_fast_path(ev: Evaluator, first_op: int) -> None:
    """In inference the ops of the layer from `first_op` on that the fast path does not allocate
    write into their input's storage (the inference simulation aliases them)."""
    tape = ev.tape
    if tape is None:
        return
    for op in tape.ops[first_op:]:
        if op.name in FAST_PATH_ALIASES and op.reads:
            op.inference_alias = True


# ---------------------------------------------------------------------- F.multi_head_attention_forward
F_MHA_ARGS = (
    ("query", None), ("key", None), ("value", None), ("embed_dim_to_check", None), ("num_heads", None),
    ("in_proj_weight", None), ("in_proj_bias", None), ("bias_k", None), ("bias_v", None), ("add_zero_attn", False),
    ("dropout_p", 0.0), ("out_proj_weight", None), ("out_proj_bias", None), ("training", True),
    ("key_padding_mask", None), ("need_weights", True), ("attn_mask", None), ("use_separate_proj_weight", False),
    ("q_proj_weight", None), ("k_proj_weight", None), ("v_proj_weight", None), ("static_k", None),
    ("static_v", None), ("average_attn_weights", True), ("is_causal", False))


def functional_multi_head_attention(ev: Evaluator, a: Any, k: dict[str, Any]) -> Any:
    """torch.nn.functional.multi_head_attention_forward, called by the code itself."""
    b: dict[str, Any] = {name: a[i] if len(a) > i else k.get(name, default)
                         for i, (name, default) in enumerate(F_MHA_ARGS)}
    if b["static_k"] is not None or b["static_v"] is not None:
        return Unknown("F.multi_head_attention_forward with static_k / static_v is not modelled", ev.current_ref)
    query, key, value = b["query"], b["key"], b["value"]
    if not known_sizes(query, key, value):
        return Unknown("F.multi_head_attention_forward with inputs whose sizes are not known", ev.current_ref)
    if len(query.shape) not in (2, 3):
        return Unknown(f"shape mismatch: F.multi_head_attention_forward expects a 2-D or 3-D query, got shape "
                       f"{list(query.shape)}", ev.current_ref)
    p = b["dropout_p"]
    w = MhaWeights(b["embed_dim_to_check"], b["num_heads"], b["in_proj_weight"], b["in_proj_bias"], b["bias_k"],
                   b["bias_v"], b["add_zero_attn"] is True, p if isinstance(p, (int, float)) else 0.0,
                   b["out_proj_weight"], b["out_proj_bias"], b["q_proj_weight"], b["k_proj_weight"],
                   b["v_proj_weight"], b["use_separate_proj_weight"] is True)
    return multi_head_attention(Trace(ev), w, query, key, value, b["key_padding_mask"], b["need_weights"] is not False,
                                b["attn_mask"], b["average_attn_weights"] is not False, b["is_causal"] is True,
                                b["training"] is not False)
