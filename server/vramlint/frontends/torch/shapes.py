"""Output shapes of tensor operations shared by layers and `torch.nn.functional`.

Each function takes TensorValues and plain arguments and returns the result TensorValue (or an
Unknown naming what was missing). Sizes follow the formulas in PyTorch's documentation; the tests
compare them with real torch (`tests/test_forward_shapes.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Unknown
from vramlint.frontends.torch.tensors import TensorValue, shape_text

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


def as_tensor(ev: Evaluator, x: Any, what: str) -> TensorValue | Unknown:
    if isinstance(x, TensorValue) and not isinstance(x.shape, Unknown):
        return x
    if isinstance(x, TensorValue):
        return x.shape  # type: ignore[return-value]
    if isinstance(x, Unknown):
        return x
    return Unknown(f"{what}: input is not a tensor", ev.current_ref)


def tup(v: Any, n: int) -> tuple[Any, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(v) if len(v) == n else tuple(v) + (v[-1],) * (n - len(v))
    return (v,) * n


def mismatch(ev: Evaluator, message: str) -> Unknown:
    return Unknown(f"shape mismatch: {message}", ev.current_ref)


def same(x: TensorValue, dtype: str | None = None) -> TensorValue:
    return TensorValue(x.shape, dtype or x.dtype)


def linear(ev: Evaluator, x: Any, in_features: Any, out_features: Any, what: str = "Linear") -> Any:
    t = as_tensor(ev, x, what)
    if isinstance(t, Unknown):
        return t
    shape = t.shape
    assert isinstance(shape, tuple)
    if not shape:
        return mismatch(ev, f"{what} needs at least one dimension")
    last = shape[-1]
    if isinstance(last, int) and isinstance(in_features, int) and last != in_features:
        return mismatch(ev, f"{what} expects {in_features} input features, got a tensor of shape {shape_text(shape)}")
    return TensorValue((*shape[:-1], out_features), t.dtype)


def _window(size: Any, k: Any, s: Any, p: Any, d: Any, ceil_mode: bool = False) -> Any:
    if not all(isinstance(v, int) for v in (size, k, s, p, d)):
        return Unknown("spatial size depends on unknown values")
    span = size + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p:  # the last window must start inside the input or left padding
            out -= 1
        return out
    return span // s + 1


def _positive(*sizes: tuple[Any, ...]) -> bool:
    """No known size below 1 (torch refuses a kernel, stride or dilation of 0: they divide)."""
    return not any(isinstance(v, int) and v <= 0 for t in sizes for v in t)


def _spatial(ev: Evaluator, x: Any, nd: int, what: str) -> tuple[TensorValue, tuple[Any, ...], tuple[Any, ...]] | Unknown:
    """A (batched or unbatched) N-d input split into its leading dims and its nd spatial dims."""
    t = as_tensor(ev, x, what)
    if isinstance(t, Unknown):
        return t
    shape = t.shape
    assert isinstance(shape, tuple)
    if len(shape) not in (nd + 1, nd + 2):
        return mismatch(ev, f"{what} expects a {nd + 1}-D or {nd + 2}-D input, got shape {shape_text(shape)}")
    return t, shape[: len(shape) - nd - 1], shape[len(shape) - nd:]


def conv(ev: Evaluator, x: Any, nd: int, out_channels: Any, kernel: Any, stride: Any, padding: Any,
         dilation: Any, what: str) -> Any:
    split = _spatial(ev, x, nd, what)
    if isinstance(split, Unknown):
        return split
    t, lead, spatial = split
    k, s, d = tup(kernel, nd), tup(stride, nd), tup(dilation, nd)
    if not _positive(k, s, d):
        return mismatch(ev, f"{what}: kernel size {list(k)}, stride {list(s)} and dilation {list(d)} must be positive")
    out = []
    for i, size in enumerate(spatial):
        if padding == "same":
            out.append(size)
        else:
            p = 0 if padding == "valid" else tup(padding, nd)[i]
            out.append(_window(size, k[i], s[i], p, d[i]))
    return TensorValue((*lead, out_channels, *out), t.dtype)


def conv_transpose(ev: Evaluator, x: Any, nd: int, out_channels: Any, kernel: Any, stride: Any, padding: Any,
                   output_padding: Any, dilation: Any, what: str) -> Any:
    split = _spatial(ev, x, nd, what)
    if isinstance(split, Unknown):
        return split
    t, lead, spatial = split
    k, s, p, op, d = (tup(v, nd) for v in (kernel, stride, padding, output_padding, dilation))
    out = [(size - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, size in enumerate(spatial)]
    return TensorValue((*lead, out_channels, *out), t.dtype)


def pad(ev: Evaluator, x: Any, pads: Any, what: str) -> Any:
    """F.pad semantics: (left, right) pairs from the last dimension backwards."""
    t = as_tensor(ev, x, what)
    if isinstance(t, Unknown):
        return t
    if not isinstance(pads, (tuple, list)):
        return Unknown(f"{what} with unknown padding", ev.current_ref)
    assert isinstance(t.shape, tuple)
    shape = list(t.shape)
    # torch's checks: (left, right) pairs, at most one pair per dimension of the input.
    if len(pads) % 2:
        return mismatch(ev, f"{what}: the padding {list(pads)} is not (left, right) pairs")
    if len(pads) // 2 > len(shape):
        return mismatch(ev, f"{what} pads {len(pads) // 2} dimensions of an input of shape {list(shape)}")
    if any(isinstance(p, bool) or not isinstance(p, (int, Unknown)) for p in pads):
        return Unknown(f"{what}: the padding {list(pads)!r} is not integers", ev.current_ref)
    for i in range(len(pads) // 2):
        shape[-1 - i] = shape[-1 - i] + pads[2 * i] + pads[2 * i + 1]
    return TensorValue(tuple(shape), t.dtype)


def pool(ev: Evaluator, x: Any, nd: int, kernel: Any, stride: Any, padding: Any, dilation: Any,
         ceil_mode: Any, what: str) -> Any:
    t = as_tensor(ev, x, what)
    if isinstance(t, Unknown):
        return t
    shape = t.shape
    assert isinstance(shape, tuple)
    if len(shape) < nd + 1:
        return mismatch(ev, f"{what} expects at least {nd + 1} dimensions, got shape {shape_text(shape)}")
    k = tup(kernel, nd)
    s = tup(kernel if stride is None or stride == [] else stride, nd)
    p, d = tup(padding, nd), tup(dilation, nd)
    if not _positive(k, s, d):
        return mismatch(ev, f"{what}: kernel size {list(k)}, stride {list(s)} and dilation {list(d)} must be positive")
    spatial = shape[len(shape) - nd:]
    out = [_window(size, k[i], s[i], p[i], d[i], bool(ceil_mode)) for i, size in enumerate(spatial)]
    return TensorValue((*shape[: len(shape) - nd], *out), t.dtype)


def adaptive_pool(ev: Evaluator, x: Any, nd: int, output_size: Any, what: str) -> Any:
    t = as_tensor(ev, x, what)
    if isinstance(t, Unknown):
        return t
    shape = t.shape
    assert isinstance(shape, tuple)
    if len(shape) < nd + 1:
        return mismatch(ev, f"{what} expects at least {nd + 1} dimensions, got shape {list(shape)}")
    spatial = shape[len(shape) - nd:]
    target = tup(output_size, nd)
    out = [spatial[i] if target[i] is None else target[i] for i in range(nd)]
    return TensorValue((*shape[: len(shape) - nd], *out), t.dtype)


def flatten(ev: Evaluator, x: Any, start: Any, end: Any) -> Any:
    t = as_tensor(ev, x, "flatten")
    if isinstance(t, Unknown):
        return t
    from vramlint.frontends.torch.tensors import TENSOR_METHODS

    return TENSOR_METHODS["flatten"](ev, t, (start, end), {})


def interpolate(ev: Evaluator, x: Any, size: Any, scale_factor: Any) -> Any:
    t = as_tensor(ev, x, "interpolate")
    if isinstance(t, Unknown):
        return t
    shape = t.shape
    assert isinstance(shape, tuple)
    nd = len(shape) - 2
    if nd < 1:
        return mismatch(ev, "interpolate expects a batched input with spatial dimensions")
    if size is not None:
        out = list(tup(size, nd))
    elif scale_factor is not None:
        sf = tup(scale_factor, nd)
        out = []
        for i, v in enumerate(shape[2:]):
            f = sf[i]
            out.append(int(v * f) if isinstance(v, int) and isinstance(f, (int, float)) else Unknown("scale factor"))
    else:
        return Unknown("interpolate without size or scale_factor", ev.current_ref)
    return TensorValue((*shape[:2], *out), t.dtype)


def _pair(ev: Evaluator, v: Any, name: str) -> tuple[Any, Any] | Unknown:
    """torch's `_pair` then its int[2] argument check: an int is (v, v), a sequence must have two."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ev.raise_error("RuntimeError", f"It is expected {name} equals to 2, but got size {len(v)}")
        v0, v1 = v
    else:
        v0 = v1 = v
    for x in (v0, v1):
        if isinstance(x, Unknown):
            return x
        if isinstance(x, bool) or not isinstance(x, int):
            return Unknown(f"{name} {v!r} is not integers", ev.current_ref)
    return v0, v1


def _sliding(ev: Evaluator, args: dict[str, Any], check_names: tuple[str, ...]) -> dict[str, tuple[Any, Any]] | Unknown:
    """The int pairs of an im2col / col2im call, checked in torch's order and with its messages."""
    pairs: dict[str, tuple[Any, Any]] = {}
    for name, v in args.items():
        p = _pair(ev, v, name)
        if isinstance(p, Unknown):
            return p
        pairs[name] = p
    rules = {"kernel_size": ("kernel size", "kernel", 0, "greater than zero"),
             "stride": ("stride", "stride", 0, "greater than zero"),
             "dilation": ("dilation", "dilation", 0, "greater than zero"),
             "padding": ("padding", "pad", -1, "non-negative")}
    for name in check_names:
        what, short, low, text = rules[name]
        h, w = pairs[name]
        if h <= low or w <= low:
            raise ev.raise_error("RuntimeError", f"{what} should be {text}, but got {short}_height: {h} "
                                                 f"{short}_width: {w}")
    return pairs


def _blocks(size: Any, k: int, s: int, p: int, d: int) -> Any:
    """The number of sliding-window positions along one dim (ATen's sliding_window_count)."""
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def unfold(ev: Evaluator, x: Any, kernel: Any, dilation: Any, padding: Any, stride: Any) -> Any:
    """F.unfold (im2col): (N, C, H, W) -> (N, C*kh*kw, L), L the number of window positions;
    unbatched (C, H, W) -> (C*kh*kw, L)."""
    t = as_tensor(ev, x, "unfold")
    if isinstance(t, Unknown):
        return t
    pairs = _sliding(ev, {"kernel_size": kernel, "dilation": dilation, "padding": padding, "stride": stride},
                     ("kernel_size", "dilation", "padding", "stride"))
    if isinstance(pairs, Unknown):
        return pairs
    shape = t.shape
    assert isinstance(shape, tuple)
    if len(shape) < 3 and (len(shape) < 2 or shape[1] != 0):  # torch reads sizes 1 and 2 before its check
        rank = len(shape)
        raise ev.raise_error("IndexError", "dimension specified as 1 but tensor has no dimensions" if not rank else
                             f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {rank})")
    if len(shape) not in (3, 4) or any(d == 0 for d in shape[len(shape) - 3:]):
        raise ev.raise_error("RuntimeError", "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and "
                                             f"other non-zero dimensions for input, but got: {list(shape)}")
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = pairs.values()
    *lead, c, h, w = shape
    oh, ow = _blocks(h, kh, sh, ph, dh), _blocks(w, kw, sw, pw, dw)
    if isinstance(oh, int) and isinstance(ow, int) and (oh < 1 or ow < 1):
        raise ev.raise_error("RuntimeError", f"Given input with spatial size ({h}, {w}), kernel_size=({kh}, {kw}), "
                                             f"dilation=({dh}, {dw}), padding=({ph}, {pw}), calculated shape of the "
                                             f"array of sliding blocks as ({oh}, {ow}), but its components must be "
                                             "at least one.")
    return TensorValue((*lead, c * kh * kw, oh * ow), t.dtype)


def fold(ev: Evaluator, x: Any, output_size: Any, kernel: Any, dilation: Any, padding: Any, stride: Any) -> Any:
    """F.fold (col2im): (N, C*kh*kw, L) -> (N, C, oh, ow), where L must be the number of window
    positions over output_size; unbatched (C*kh*kw, L) -> (C, oh, ow)."""
    t = as_tensor(ev, x, "fold")
    if isinstance(t, Unknown):
        return t
    pairs = _sliding(ev, {"output_size": output_size, "kernel_size": kernel, "dilation": dilation,
                          "padding": padding, "stride": stride}, ("kernel_size", "stride", "dilation", "padding"))
    if isinstance(pairs, Unknown):
        return pairs
    shape = t.shape
    assert isinstance(shape, tuple)
    if len(shape) not in (2, 3) or any(d == 0 for d in shape[len(shape) - 2:]):
        raise ev.raise_error("RuntimeError", "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch "
                                             f"size and non-zero dimensions for input, but got: {list(shape)}")
    (oh, ow), (kh, kw), (dh, dw), (ph, pw), (sh, sw) = pairs.values()
    *lead, planes, length = shape
    if isinstance(planes, int) and planes % (kh * kw):
        raise ev.raise_error("RuntimeError", "Expected size of input's dimension 1 to be divisible by the product of "
                                             f"kernel_size, but got input.size(1)={planes} and kernel_size=({kh}, {kw}).")
    bh, bw = _blocks(oh, kh, sh, ph, dh), _blocks(ow, kw, sw, pw, dw)
    given = (f"Given output_size=({oh}, {ow}), kernel_size=({kh}, {kw}), dilation=({dh}, {dw}), "
             f"padding=({ph}, {pw}), stride=({sh}, {sw}), ")
    if isinstance(length, int) and length != bh * bw:
        raise ev.raise_error("RuntimeError", f"{given}expected size of input's dimension 2 to match the calculated "
                                             f"number of sliding blocks {bh} * {bw} = {bh * bw}, but got "
                                             f"input.size(2)={length}.")
    if bh < 1 or bw < 1:
        raise ev.raise_error("RuntimeError", f"{given}calculated shape of the array of sliding blocks as ({bh}, {bw}), "
                                             "which is too small (non-positive)")
    if oh < 1 or ow < 1:
        raise ev.raise_error("RuntimeError", "Expected output spatial size to be positive, but got: "
                                             f"output_size=({oh}, {ow}).")
    return TensorValue((*lead, planes // (kh * kw), oh, ow), t.dtype)


# ---------------------------------------------------------------------- shared by a layer and its F. form
def glu(ev: Evaluator, x: Any, d: Any, what: str) -> Any:
    """GLU / F.glu: the input halved along `d` (an even size)."""
    t = as_tensor(ev, x, what)
    if isinstance(t, Unknown):
        return t
    shape = list(t.shape)
    if isinstance(d, bool) or not isinstance(d, int):
        return Unknown(f"{what} along an unknown dim", ev.current_ref)
    if not -len(shape) <= d < len(shape):
        return mismatch(ev, f"{what} along dim {d} of an input of shape {shape_text(t.shape)}")
    if isinstance(shape[d], int) and shape[d] % 2:
        return mismatch(ev, f"{what} halves dim {d} of an input of shape {shape_text(t.shape)}: its size is odd")
    shape[d] = shape[d] // 2
    return TensorValue(tuple(shape), t.dtype)


def pixel_shuffle(ev: Evaluator, x: Any, r: Any, up: bool, what: str) -> Any:
    """PixelShuffle (up) / PixelUnshuffle: [*, C, H, W] <-> [*, C / r^2, H * r, W * r]."""
    t = as_tensor(ev, x, what)
    if isinstance(t, Unknown):
        return t
    assert isinstance(t.shape, tuple)
    if len(t.shape) < 3:
        return mismatch(ev, f"{what} expects at least 3 dimensions, got shape {shape_text(t.shape)}")
    if isinstance(r, bool) or not isinstance(r, (int, Unknown)):
        return Unknown(f"{what}: the factor {r!r} is not an int", ev.current_ref)
    *lead, c, h, w = t.shape
    if isinstance(r, int):  # torch's checks: a positive factor that divides the sizes it divides
        divided = (c,) if up else (h, w)
        if r <= 0 or any(isinstance(d, int) and d % (r * r if up else r) for d in divided):
            return mismatch(ev, f"{what} by {r} of an input of shape {shape_text(t.shape)}")
    if up:
        return TensorValue((*lead, c // (r * r), h * r, w * r), t.dtype)
    return TensorValue((*lead, c * r * r, h // r, w // r), t.dtype)


def max_unpool(ev: Evaluator, x: Any, indices: Any, nd: int, kernel: Any, stride: Any, padding: Any,
               output_size: Any, what: str) -> Any:
    """MaxUnpool / F.max_unpool: each spatial size (size - 1) * stride - 2 * padding + kernel, or
    the last nd entries of `output_size`."""
    split = _spatial(ev, x, nd, what)
    if isinstance(split, Unknown):
        return split
    t, _, spatial = split
    if isinstance(indices, TensorValue) and isinstance(indices.shape, tuple) and indices.shape != t.shape:
        return mismatch(ev, f"{what}: indices of shape {shape_text(indices.shape)} for an input of shape "
                            f"{shape_text(t.shape)}")
    assert isinstance(t.shape, tuple)
    lead = t.shape[: len(t.shape) - nd]
    if output_size is not None:
        if not isinstance(output_size, (tuple, list)) or len(output_size) not in (nd, nd + 1, nd + 2):
            return Unknown(f"{what} with an output_size of unknown length", ev.current_ref)
        return TensorValue((*lead, *tuple(output_size)[-nd:]), t.dtype)
    k, p = tup(kernel, nd), tup(padding, nd)
    s = tup(kernel if stride is None else stride, nd)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (*k, *s, *p)):
        return Unknown(f"{what} with a kernel, stride or padding that is not integers", ev.current_ref)
    out = [(size - 1) * s[i] - 2 * p[i] + k[i] for i, size in enumerate(spatial)]
    if any(isinstance(v, int) and v <= 0 for v in out):
        return mismatch(ev, f"{what} of an input of shape {shape_text(t.shape)} gives sizes {out}")
    return TensorValue((*lead, *out), t.dtype)


def fractional_max_pool(ev: Evaluator, x: Any, nd: int, kernel: Any, output_size: Any, output_ratio: Any,
                        what: str) -> Any:
    """FractionalMaxPool / F.fractional_max_pool: `output_size`, or int(size * output_ratio)."""
    split = _spatial(ev, x, nd, what)
    if isinstance(split, Unknown):
        return split
    t, _, spatial = split
    k = tup(kernel, nd)
    if output_size is not None:
        out = list(tup(output_size, nd))
    elif output_ratio is not None:
        ratio = tup(output_ratio, nd)
        out = [int(size * r) if isinstance(size, int) and isinstance(r, (int, float)) else
               Unknown(f"{what}: output ratio {r!r} of size {size!r}") for size, r in zip(spatial, ratio)]
    else:
        return Unknown(f"{what} without output_size or output_ratio", ev.current_ref)
    for size, o, kk in zip(spatial, out, k):
        if isinstance(size, int) and isinstance(o, int) and isinstance(kk, int) and o + kk - 1 > size:
            return mismatch(ev, f"{what}: output size {o} with kernel {kk} is too large for an input of shape "
                                f"{shape_text(t.shape)}")
    assert isinstance(t.shape, tuple)
    return TensorValue((*t.shape[: len(t.shape) - nd], *out), t.dtype)


def _two_inputs(ev: Evaluator, x1: Any, x2: Any, what: str) -> tuple[tuple[Any, ...], str] | Unknown:
    """The broadcast shape and dtype of two inputs (x1, x2)."""
    from vramlint.frontends.torch.tensors import broadcast

    a, b = as_tensor(ev, x1, what), as_tensor(ev, x2, what)
    if isinstance(a, Unknown):
        return a
    if isinstance(b, Unknown):
        return b
    assert isinstance(a.shape, tuple) and isinstance(b.shape, tuple)
    shape = broadcast(a.shape, b.shape)
    if isinstance(shape, Unknown):
        return mismatch(ev, f"{what}: {shape.reason}")
    return shape, a.dtype


def cosine_similarity(ev: Evaluator, x1: Any, x2: Any, d: Any, what: str) -> Any:
    """CosineSimilarity / F.cosine_similarity: the broadcast inputs' shape less `d`."""
    both = _two_inputs(ev, x1, x2, what)
    if isinstance(both, Unknown):
        return both
    shape, dtype = both
    if isinstance(d, bool) or not isinstance(d, int):
        return Unknown(f"{what} along an unknown dim {d!r}", ev.current_ref)
    if not -len(shape) <= d < len(shape):
        return mismatch(ev, f"{what} along dim {d} of inputs of shape {shape_text(shape)}")
    d %= len(shape)
    return TensorValue((*shape[:d], *shape[d + 1:]), dtype)


def pairwise_distance(ev: Evaluator, x1: Any, x2: Any, keepdim: Any, what: str) -> Any:
    """PairwiseDistance / F.pairwise_distance: the norm of x1 - x2 over the last dim."""
    both = _two_inputs(ev, x1, x2, what)
    if isinstance(both, Unknown):
        return both
    shape, dtype = both
    if not shape:
        return TensorValue((), dtype)
    return TensorValue((*shape[:-1], 1) if keepdim is True else shape[:-1], dtype)
