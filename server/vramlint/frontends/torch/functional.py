"""`torch.nn.functional` on abstract tensors: output shapes of the functions model code calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, Kwargs, NativeFunction, Positional, Unknown
from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.sdpa_switches import sync_tape
from vramlint.frontends.torch.tensors import TensorValue, dtype_name

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

Impl = Callable[["Evaluator", Args, Kwargs], Any]


def _arg(a: Args, k: Kwargs, i: int, name: str, default: Any = None) -> Any:
    return a[i] if len(a) > i else k.get(name, default)


def _elementwise(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    x = shapes.as_tensor(ev, _arg(a, k, 0, "input"), "functional")
    return shapes.same(x) if isinstance(x, TensorValue) else x


def _linear(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    w = _arg(a, k, 1, "weight")
    if not isinstance(w, TensorValue) or isinstance(w.shape, Unknown):
        return Unknown("F.linear with an unknown weight", ev.current_ref)
    if len(w.shape) not in (1, 2):
        return shapes.mismatch(ev, f"F.linear with a weight of shape {list(w.shape)}")
    y = shapes.linear(ev, _arg(a, k, 0, "input"), w.shape[-1], w.shape[0], "F.linear")
    if len(w.shape) == 1 and isinstance(y, TensorValue):  # a weight vector: a dot product per row
        assert isinstance(y.shape, tuple)
        return TensorValue(y.shape[:-1], y.dtype)
    return y


def _bilinear(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.bilinear(input1, input2, weight [out, in1, in2], bias): [..., out]."""
    w = _arg(a, k, 2, "weight")
    if not isinstance(w, TensorValue) or isinstance(w.shape, Unknown) or len(w.shape) != 3:
        return Unknown("F.bilinear with an unknown weight", ev.current_ref)
    return shapes.linear(ev, _arg(a, k, 0, "input1"), w.shape[1], w.shape[0], "F.bilinear")


def _conv(nd: int) -> Impl:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        w = _arg(a, k, 1, "weight")
        if not isinstance(w, TensorValue) or isinstance(w.shape, Unknown):
            return Unknown(f"F.conv{nd}d with an unknown weight", ev.current_ref)
        if len(w.shape) != nd + 2:
            return shapes.mismatch(ev, f"F.conv{nd}d with a weight of shape {list(w.shape)}")
        return shapes.conv(ev, _arg(a, k, 0, "input"), nd, w.shape[0], tuple(w.shape[2:]), _arg(a, k, 3, "stride", 1),
                           _arg(a, k, 4, "padding", 0), _arg(a, k, 5, "dilation", 1), f"F.conv{nd}d")

    return impl


def _pool(nd: int, adaptive: bool, max_pool: bool, with_indices: bool = False) -> Impl:
    """Pooling; `with_indices`: the *_with_indices forms, which always return (output, indices)."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        x = _arg(a, k, 0, "input")
        if adaptive:
            out = shapes.adaptive_pool(ev, x, nd, _arg(a, k, 1, "output_size"), "adaptive pooling")
            indices = _arg(a, k, 2, "return_indices", False)
        elif max_pool:
            out = shapes.pool(ev, x, nd, _arg(a, k, 1, "kernel_size"), _arg(a, k, 2, "stride"),
                              _arg(a, k, 3, "padding", 0), _arg(a, k, 4, "dilation", 1), _arg(a, k, 5, "ceil_mode", False),
                              "max pooling")
            indices = _arg(a, k, 6, "return_indices", False)
        else:
            out = shapes.pool(ev, x, nd, _arg(a, k, 1, "kernel_size"), _arg(a, k, 2, "stride"),
                              _arg(a, k, 3, "padding", 0), 1, _arg(a, k, 4, "ceil_mode", False), "average pooling")
            indices = False
        if (indices is True or with_indices) and isinstance(out, TensorValue):
            return (out, TensorValue(out.shape, "int64"))
        return out

    return impl


def _softmax_like(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.softmax(input, dim=None, _stacklevel=3, dtype=None): the input is cast to `dtype` first."""
    x = shapes.as_tensor(ev, _arg(a, k, 0, "input"), "functional")
    if not isinstance(x, TensorValue):
        return x
    return shapes.same(x, dtype_name(_arg(a, k, 3, "dtype"), x.dtype))


def _sdpa(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    sync_tape(ev)  # the kernel switches in force, for the tape's choice of kernel
    q, v = _arg(a, k, 0, "query"), _arg(a, k, 2, "value")
    q, v = shapes.as_tensor(ev, q, "scaled_dot_product_attention"), shapes.as_tensor(ev, v, "scaled_dot_product_attention")
    if not isinstance(q, TensorValue):
        return q
    if not isinstance(v, TensorValue):
        return v
    assert isinstance(q.shape, tuple) and isinstance(v.shape, tuple)
    return TensorValue((*q.shape[:-1], v.shape[-1]), q.dtype)


def _embedding(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    idx, w = _arg(a, k, 0, "input"), _arg(a, k, 1, "weight")
    idx = shapes.as_tensor(ev, idx, "F.embedding")
    if not isinstance(idx, TensorValue):
        return idx
    if not isinstance(w, TensorValue) or isinstance(w.shape, Unknown):
        return Unknown("F.embedding with an unknown weight", ev.current_ref)
    if len(w.shape) != 2:
        return shapes.mismatch(ev, f"F.embedding with a weight of shape {list(w.shape)}")
    assert isinstance(idx.shape, tuple)
    return TensorValue((*idx.shape, w.shape[-1]), w.dtype)


def _loss(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    x = shapes.as_tensor(ev, _arg(a, k, 0, "input"), "loss")
    if not isinstance(x, TensorValue):
        return x
    if k.get("reduction", "mean") == "none":
        return shapes.same(x)
    return TensorValue((), x.dtype)


def _class_loss(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """cross_entropy / nll_loss: with reduction='none', a loss per element of the input less its
    class dimension (dim 1; the only one of a 1-D input); else a scalar."""
    x = shapes.as_tensor(ev, _arg(a, k, 0, "input"), "loss")
    if not isinstance(x, TensorValue):
        return x
    assert isinstance(x.shape, tuple)
    if k.get("reduction", "mean") == "none":
        return TensorValue(x.shape[:1] + x.shape[2:] if len(x.shape) > 1 else (), x.dtype)
    return TensorValue((), x.dtype)


def _row_loss(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """Losses over the last dimension (triplet, margin, multilabel, cosine embedding): with
    reduction='none', one per row of the input."""
    x = shapes.as_tensor(ev, _arg(a, k, 0, "input"), "loss")
    if not isinstance(x, TensorValue):
        return x
    assert isinstance(x.shape, tuple)
    return TensorValue(x.shape[:-1] if k.get("reduction", "mean") == "none" else (), x.dtype)


def _ctc_loss(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.ctc_loss(log_probs [T, N, C] or [T, C], ...): with reduction='none', one per sequence."""
    x = shapes.as_tensor(ev, _arg(a, k, 0, "log_probs"), "F.ctc_loss")
    if not isinstance(x, TensorValue):
        return x
    assert isinstance(x.shape, tuple)
    return TensorValue(x.shape[1:2] if k.get("reduction", "mean") == "none" else (), x.dtype)


def _pdist(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.pdist(input [N, M]): the N(N-1)/2 distances between rows."""
    x = shapes.as_tensor(ev, _arg(a, k, 0, "input"), "F.pdist")
    if not isinstance(x, TensorValue):
        return x
    assert isinstance(x.shape, tuple)
    if len(x.shape) != 2:
        return shapes.mismatch(ev, f"F.pdist only supports 2-D tensors, got shape {list(x.shape)}")
    n = x.shape[0]
    return TensorValue((n * (n - 1) // 2 if isinstance(n, int) else Unknown("F.pdist rows", ev.current_ref),), x.dtype)


def _embedding_bag(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.embedding_bag(input, weight, offsets=None, ..., include_last_offset=False): one row per
    bag: a 2-D input's rows, else one per offset (less the last with include_last_offset)."""
    idx, w, offsets = _arg(a, k, 0, "input"), _arg(a, k, 1, "weight"), _arg(a, k, 2, "offsets")
    idx = shapes.as_tensor(ev, idx, "F.embedding_bag")
    if not isinstance(idx, TensorValue):
        return idx
    if not isinstance(w, TensorValue) or isinstance(w.shape, Unknown) or len(w.shape) != 2:
        return Unknown("F.embedding_bag with an unknown weight", ev.current_ref)
    assert isinstance(idx.shape, tuple)
    if len(idx.shape) == 2:
        bags = idx.shape[0]
    elif isinstance(offsets, TensorValue) and isinstance(offsets.shape, tuple) and len(offsets.shape) == 1:
        bags = offsets.shape[0] - (1 if _arg(a, k, 9, "include_last_offset", False) is True else 0)
    else:
        return Unknown("F.embedding_bag: number of bags unknown", ev.current_ref)
    return TensorValue((bags, w.shape[1]), w.dtype)


def _affine_grid(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.affine_grid(theta, size [N, C, H, W] or [N, C, D, H, W]): [N, H, W, 2] or [N, D, H, W, 3]."""
    theta, size = _arg(a, k, 0, "theta"), ev.list_of(_arg(a, k, 1, "size"))
    theta = shapes.as_tensor(ev, theta, "F.affine_grid")
    if not isinstance(theta, TensorValue):
        return theta
    if isinstance(size, Unknown) or len(size) not in (4, 5):
        return Unknown("F.affine_grid of an unknown size", ev.current_ref)
    return TensorValue((size[0], *size[2:], len(size) - 2), theta.dtype)


def _grid_sample(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.grid_sample(input [N, C, *in], grid [N, *out, nd]): [N, C, *out]."""
    x = shapes.as_tensor(ev, _arg(a, k, 0, "input"), "F.grid_sample")
    grid = shapes.as_tensor(ev, _arg(a, k, 1, "grid"), "F.grid_sample")
    if not isinstance(x, TensorValue):
        return x
    if not isinstance(grid, TensorValue):
        return grid
    assert isinstance(x.shape, tuple) and isinstance(grid.shape, tuple)
    if len(x.shape) not in (4, 5) or len(grid.shape) != len(x.shape):
        return shapes.mismatch(ev, f"F.grid_sample of an input of shape {list(x.shape)} and a grid of shape "
                                   f"{list(grid.shape)}")
    return TensorValue((x.shape[0], x.shape[1], *grid.shape[1:-1]), x.dtype)


def _interpolate(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.interpolate(ev, _arg(a, k, 0, "input"), _arg(a, k, 1, "size"), _arg(a, k, 2, "scale_factor"))


def _pad(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.pad(ev, _arg(a, k, 0, "input"), _arg(a, k, 1, "pad"), "F.pad")


def _flatten(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.flatten(ev, _arg(a, k, 0, "input"), _arg(a, k, 1, "start_dim", 0), _arg(a, k, 2, "end_dim", -1))


def _unfold(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.unfold(ev, _arg(a, k, 0, "input"), _arg(a, k, 1, "kernel_size"), _arg(a, k, 2, "dilation", 1),
                         _arg(a, k, 3, "padding", 0), _arg(a, k, 4, "stride", 1))


def _fold(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.fold(ev, _arg(a, k, 0, "input"), _arg(a, k, 1, "output_size"), _arg(a, k, 2, "kernel_size"),
                       _arg(a, k, 3, "dilation", 1), _arg(a, k, 4, "padding", 0), _arg(a, k, 5, "stride", 1))


def _one_hot(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """F.one_hot(tensor, num_classes=-1): int64, one more dim of num_classes; -1 is the largest
    class value + 1, known where the values are. torch's checks, in its order."""
    x = shapes.as_tensor(ev, _arg(a, k, 0, "tensor"), "F.one_hot")
    n = _arg(a, k, 1, "num_classes", -1)
    if not isinstance(x, TensorValue):
        return x
    if x.dtype != "int64":
        raise ev.raise_error("RuntimeError", "one_hot is only applicable to index tensor of type LongTensor.")
    if isinstance(n, bool) or not isinstance(n, int):
        return TensorValue((*x.shape, n if isinstance(n, Unknown) else Unknown("F.one_hot num_classes", ev.current_ref)),
                           "int64")
    count, values = x.numel(), x.data
    if count == 0 and n <= 0:
        raise ev.raise_error("RuntimeError", "Can not infer total number of classes from empty tensor.")
    if isinstance(count, int) and count > 0:
        if values is not None and min(values) < 0:
            raise ev.raise_error("RuntimeError", "Class values must be non-negative.")
        if n != -1 and (n <= 0 or (values is not None and max(values) >= n)):
            raise ev.raise_error("RuntimeError", "Class values must be smaller than num_classes.")
        if n == -1:
            n = int(max(values)) + 1 if values is not None else Unknown(
                "F.one_hot(num_classes=-1) of values vramlint does not follow", ev.current_ref)
    elif n == -1 or n <= 0:  # torch raises either way, one error or the other by the unknown size
        n = Unknown(f"F.one_hot(num_classes={n}) of a tensor of unknown size", ev.current_ref)
    return TensorValue((*x.shape, n), "int64")


def _glu(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.glu(ev, _arg(a, k, 0, "input"), _arg(a, k, 1, "dim", -1), "F.glu")


def _pixel_shuffle(up: bool) -> Impl:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        factor = _arg(a, k, 1, "upscale_factor" if up else "downscale_factor")
        return shapes.pixel_shuffle(ev, _arg(a, k, 0, "input"), factor, up, "F.pixel_shuffle" if up else
                                    "F.pixel_unshuffle")

    return impl


def _cosine_similarity(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.cosine_similarity(ev, _arg(a, k, 0, "x1"), _arg(a, k, 1, "x2"), _arg(a, k, 2, "dim", 1),
                                    "F.cosine_similarity")


def _pairwise_distance(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return shapes.pairwise_distance(ev, _arg(a, k, 0, "x1"), _arg(a, k, 1, "x2"), _arg(a, k, 4, "keepdim", False),
                                    "F.pairwise_distance")


def _max_unpool(nd: int) -> Impl:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return shapes.max_unpool(ev, _arg(a, k, 0, "input"), _arg(a, k, 1, "indices"), nd, _arg(a, k, 2, "kernel_size"),
                                 _arg(a, k, 3, "stride"), _arg(a, k, 4, "padding", 0), _arg(a, k, 5, "output_size"),
                                 f"F.max_unpool{nd}d")

    return impl


def _fractional_max_pool(nd: int, with_indices: bool = False) -> Impl:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        y = shapes.fractional_max_pool(ev, _arg(a, k, 0, "input"), nd, _arg(a, k, 1, "kernel_size"),
                                       _arg(a, k, 2, "output_size"), _arg(a, k, 3, "output_ratio"),
                                       f"F.fractional_max_pool{nd}d")
        if (with_indices or _arg(a, k, 4, "return_indices", False) is True) and isinstance(y, TensorValue):
            return (y, TensorValue(y.shape, "int64"))
        return y

    return impl


def _lp_pool(nd: int) -> Impl:
    """F.lp_pool(input, norm_type, kernel_size, stride=None, ceil_mode=False): average pooling's shape."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return shapes.pool(ev, _arg(a, k, 0, "input"), nd, _arg(a, k, 2, "kernel_size"), _arg(a, k, 3, "stride"), 0, 1,
                           _arg(a, k, 4, "ceil_mode", False), f"F.lp_pool{nd}d")

    return impl


def _conv_transpose(nd: int) -> Impl:
    """F.conv_transpose(input, weight [C_in, C_out / groups, *k], bias, stride, padding,
    output_padding, groups, dilation)."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        w = _arg(a, k, 1, "weight")
        what = f"F.conv_transpose{nd}d"
        if not isinstance(w, TensorValue) or isinstance(w.shape, Unknown):
            return Unknown(f"{what} with an unknown weight", ev.current_ref)
        if len(w.shape) != nd + 2:
            return shapes.mismatch(ev, f"{what} with a weight of shape {list(w.shape)}")
        groups = _arg(a, k, 6, "groups", 1)
        out = w.shape[1] * groups if isinstance(groups, int) and isinstance(w.shape[1], int) else Unknown(
            f"{what}: output channels of unknown groups", ev.current_ref)
        return shapes.conv_transpose(ev, _arg(a, k, 0, "input"), nd, out, tuple(w.shape[2:]), _arg(a, k, 3, "stride", 1),
                                     _arg(a, k, 4, "padding", 0), _arg(a, k, 5, "output_padding", 0),
                                     _arg(a, k, 7, "dilation", 1), what)

    return impl


ELEMENTWISE = (
    "relu", "relu_", "relu6", "elu", "elu_", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
    "sigmoid", "tanh", "leaky_relu", "leaky_relu_", "hardtanh", "hardtanh_", "softplus", "softsign", "logsigmoid",
    "tanhshrink", "hardshrink", "softshrink", "threshold", "rrelu", "prelu", "celu_", "selu_", "rrelu_",
    "threshold_", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_alpha_dropout", "layer_norm", "group_norm", "batch_norm",
    "instance_norm", "rms_norm", "local_response_norm", "normalize", "gumbel_softmax", "channel_shuffle",
    "native_channel_shuffle",
)

def _multi_head_attention_forward(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    from vramlint.frontends.torch.catalog.attention_ops import functional_multi_head_attention

    return functional_multi_head_attention(ev, a, k)


FUNCTIONS: dict[str, Impl] = {name: _elementwise for name in ELEMENTWISE}
FUNCTIONS.update({
    "softmax": _softmax_like, "log_softmax": _softmax_like, "softmin": _softmax_like,
    "linear": _linear, "conv1d": _conv(1), "conv2d": _conv(2), "conv3d": _conv(3),
    "max_pool1d": _pool(1, False, True), "max_pool2d": _pool(2, False, True), "max_pool3d": _pool(3, False, True),
    "avg_pool1d": _pool(1, False, False), "avg_pool2d": _pool(2, False, False), "avg_pool3d": _pool(3, False, False),
    "adaptive_avg_pool1d": _pool(1, True, False), "adaptive_avg_pool2d": _pool(2, True, False),
    "adaptive_avg_pool3d": _pool(3, True, False), "adaptive_max_pool1d": _pool(1, True, True),
    "adaptive_max_pool2d": _pool(2, True, True), "adaptive_max_pool3d": _pool(3, True, True),
    "scaled_dot_product_attention": _sdpa, "multi_head_attention_forward": _multi_head_attention_forward,
    "embedding": _embedding, "interpolate": _interpolate,
    "upsample": _interpolate, "pad": _pad, "flatten": _flatten, "unfold": _unfold, "fold": _fold, "one_hot": _one_hot,
    "cross_entropy": _class_loss, "nll_loss": _class_loss, "mse_loss": _loss, "l1_loss": _loss, "smooth_l1_loss": _loss,
    "binary_cross_entropy": _loss, "binary_cross_entropy_with_logits": _loss, "kl_div": _loss, "huber_loss": _loss,
    # the F. forms of layers (shapes.py holds the rule both use)
    "glu": _glu, "pixel_shuffle": _pixel_shuffle(True), "pixel_unshuffle": _pixel_shuffle(False),
    "cosine_similarity": _cosine_similarity, "pairwise_distance": _pairwise_distance,
    **{f"max_unpool{n}d": _max_unpool(n) for n in (1, 2, 3)},
    **{f"fractional_max_pool{n}d": _fractional_max_pool(n) for n in (2, 3)},
    **{f"lp_pool{n}d": _lp_pool(n) for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": _conv_transpose(n) for n in (1, 2, 3)},
    **{f"max_pool{n}d_with_indices": _pool(n, False, True, True) for n in (1, 2, 3)},
    **{f"adaptive_max_pool{n}d_with_indices": _pool(n, True, True, True) for n in (1, 2, 3)},
    **{f"fractional_max_pool{n}d_with_indices": _fractional_max_pool(n, True) for n in (2, 3)},
    "upsample_nearest": _interpolate, "upsample_bilinear": _interpolate, "bilinear": _bilinear,
    "poisson_nll_loss": _loss, "gaussian_nll_loss": _loss, "soft_margin_loss": _loss, "hinge_embedding_loss": _loss,
    "margin_ranking_loss": _loss, "multilabel_soft_margin_loss": _row_loss, "cosine_embedding_loss": _row_loss,
    "triplet_margin_loss": _row_loss, "triplet_margin_with_distance_loss": _row_loss, "multi_margin_loss": _row_loss,
    "multilabel_margin_loss": _row_loss, "ctc_loss": _ctc_loss, "pdist": _pdist, "embedding_bag": _embedding_bag,
    "affine_grid": _affine_grid, "grid_sample": _grid_sample,
})


def functional_attr(name: str) -> NativeFunction:
    impl = FUNCTIONS.get(name)
    if impl is None:
        return NativeFunction(f"torch.nn.functional.{name}",
                              lambda ev, a, k: Unknown(f"F.{name} is not modelled", ev.current_ref))
    return NativeFunction(f"torch.nn.functional.{name}", lambda ev, a, k: impl(ev, Positional(ev, f"F.{name}", a), k))
