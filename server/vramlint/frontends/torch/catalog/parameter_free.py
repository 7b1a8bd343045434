"""Layers without weights: activations, dropout, pooling, reshaping, padding, upsampling, losses.

Their signatures matter all the same: the arguments become attributes (`m.p`, `m.inplace`) and
the memory model reads them (kernel sizes, inplace flags). PReLU, the one activation with a
weight, is here too.
"""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import Unknown
from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    LayerArgs,
    LayerParts,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)
from vramlint.frontends.torch.tensors import TensorValue


def prelu(a: LayerArgs) -> LayerParts:
    return LayerParts(params={"weight": (a.dim(a.num_parameters, "num_parameters"),)})


INPLACE = "inplace=False"
SIGNATURES: dict[str, str] = {
    # activations
    "ReLU": INPLACE, "ReLU6": INPLACE, "SELU": INPLACE, "SiLU": INPLACE, "Mish": INPLACE,
    "Hardswish": INPLACE, "Hardsigmoid": INPLACE, "Sigmoid": "", "Tanh": "", "Tanhshrink": "",
    "LogSigmoid": "", "Softsign": "",
    "LeakyReLU": "negative_slope=0.01, inplace=False", "ELU": "alpha=1.0, inplace=False",
    "CELU": "alpha=1.0, inplace=False", "GELU": "approximate='none'",
    "Hardtanh": "min_val=-1.0, max_val=1.0, inplace=False", "Hardshrink": "lambd=0.5", "Softshrink": "lambd=0.5",
    "Softplus": "beta=1.0, threshold=20.0", "Threshold": "threshold, value, inplace=False", "GLU": "dim=-1",
    "RReLU": "lower=0.125, upper=0.3333333333333333, inplace=False",
    "Softmax": "dim=None", "Softmin": "dim=None", "LogSoftmax": "dim=None", "Softmax2d": "",
    # dropout
    "Dropout": "p=0.5, inplace=False", "Dropout1d": "p=0.5, inplace=False", "Dropout2d": "p=0.5, inplace=False",
    "Dropout3d": "p=0.5, inplace=False", "AlphaDropout": "p=0.5, inplace=False",
    "FeatureAlphaDropout": "p=0.5, inplace=False",
    # pooling
    "MaxPool1d": "kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False",
    "MaxPool2d": "kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False",
    "MaxPool3d": "kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False",
    "AvgPool1d": "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True",
    "AvgPool2d": "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None",
    "AvgPool3d": "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None",
    "AdaptiveAvgPool1d": "output_size", "AdaptiveAvgPool2d": "output_size", "AdaptiveAvgPool3d": "output_size",
    "AdaptiveMaxPool1d": "output_size, return_indices=False", "AdaptiveMaxPool2d": "output_size, return_indices=False",
    "AdaptiveMaxPool3d": "output_size, return_indices=False",
    "LPPool1d": "norm_type, kernel_size, stride=None, ceil_mode=False",
    "LPPool2d": "norm_type, kernel_size, stride=None, ceil_mode=False",
    "LPPool3d": "norm_type, kernel_size, stride=None, ceil_mode=False",
    "FractionalMaxPool2d": "kernel_size, output_size=None, output_ratio=None, return_indices=False, _random_samples=None",
    "FractionalMaxPool3d": "kernel_size, output_size=None, output_ratio=None, return_indices=False, _random_samples=None",
    "MaxUnpool1d": "kernel_size, stride=None, padding=0", "MaxUnpool2d": "kernel_size, stride=None, padding=0",
    "MaxUnpool3d": "kernel_size, stride=None, padding=0",
    # reshaping and resampling
    "Flatten": "start_dim=1, end_dim=-1", "Unflatten": "dim, unflattened_size",
    "Upsample": "size=None, scale_factor=None, mode='nearest', align_corners=None, recompute_scale_factor=None",
    "UpsamplingNearest2d": "size=None, scale_factor=None", "UpsamplingBilinear2d": "size=None, scale_factor=None",
    "PixelShuffle": "upscale_factor", "PixelUnshuffle": "downscale_factor", "ChannelShuffle": "groups",
    "Fold": "output_size, kernel_size, dilation=1, padding=0, stride=1",
    "Unfold": "kernel_size, dilation=1, padding=0, stride=1",
    "CosineSimilarity": "dim=1, eps=1e-08", "PairwiseDistance": "p=2.0, eps=1e-06, keepdim=False",
    # losses (their optional `weight` is a buffer; see below)
    "L1Loss": "size_average=None, reduce=None, reduction='mean'",
    "MSELoss": "size_average=None, reduce=None, reduction='mean'",
    "SmoothL1Loss": "size_average=None, reduce=None, reduction='mean', beta=1.0",
    "HuberLoss": "reduction='mean', delta=1.0",
    "KLDivLoss": "size_average=None, reduce=None, reduction='mean', log_target=False",
    "CTCLoss": "blank=0, reduction='mean', zero_infinity=False",
    "CosineEmbeddingLoss": "margin=0.0, size_average=None, reduce=None, reduction='mean'",
    "MarginRankingLoss": "margin=0.0, size_average=None, reduce=None, reduction='mean'",
    "TripletMarginLoss": "margin=1.0, p=2.0, eps=1e-06, swap=False, size_average=None, reduce=None, reduction='mean'",
    "PoissonNLLLoss": "log_input=True, full=False, size_average=None, eps=1e-08, reduce=None, reduction='mean'",
    "GaussianNLLLoss": "*, full=False, eps=1e-06, reduction='mean'",
    "HingeEmbeddingLoss": "margin=1.0, size_average=None, reduce=None, reduction='mean'",
    "SoftMarginLoss": "size_average=None, reduce=None, reduction='mean'",
    "MultiLabelMarginLoss": "size_average=None, reduce=None, reduction='mean'",
    "TripletMarginWithDistanceLoss": "*, distance_function=None, margin=1.0, swap=False, reduction='mean'",
}
for _nd in ("1d", "2d", "3d"):
    SIGNATURES[f"ZeroPad{_nd}"] = "padding"
    SIGNATURES[f"ConstantPad{_nd}"] = "padding, value"
    SIGNATURES[f"ReflectionPad{_nd}"] = "padding"
    SIGNATURES[f"ReplicationPad{_nd}"] = "padding"
    SIGNATURES[f"CircularPad{_nd}"] = "padding"


def weighted_loss(a: LayerArgs) -> LayerParts:
    from vramlint.frontends.torch.tensors import TensorValue

    buffers = {}
    for name in ("weight", "pos_weight"):
        t = a.values.get(name)
        if isinstance(t, TensorValue):
            buffers[name] = (t.shape, t.dtype)
    return LayerParts(buffers=buffers)  # type: ignore[arg-type]


register(*(LayerSpec(name, sig) for name, sig in SIGNATURES.items()))
# The parametrization modules of torch.nn.utils.parametrizations (their buffers are set there).
register(*(LayerSpec(name, "*args, **kwargs", module="torch.nn.utils.parametrizations")
           for name in ("_WeightNorm", "_SpectralNorm", "_Orthogonal")))
register(
    LayerSpec("PReLU", "num_parameters=1, init=0.25, device=None, dtype=None", prelu),
    LayerSpec("CrossEntropyLoss", "weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean', "
              "label_smoothing=0.0", weighted_loss),
    LayerSpec("NLLLoss", "weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean'",
              weighted_loss),
    LayerSpec("NLLLoss2d", "weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean'",
              weighted_loss, base="NLLLoss"),
    LayerSpec("BCELoss", "weight=None, size_average=None, reduce=None, reduction='mean'", weighted_loss),
    LayerSpec("MultiLabelSoftMarginLoss", "weight=None, size_average=None, reduce=None, reduction='mean'",
              weighted_loss),
    LayerSpec("MultiMarginLoss", "p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction='mean'",
              weighted_loss),
    LayerSpec("BCEWithLogitsLoss", "weight=None, size_average=None, reduce=None, reduction='mean', pos_weight=None",
              weighted_loss),
)


# ---------------------------------------------------------------------- forward (output shapes)
Forward = Any


def _input(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.as_tensor(ev, first_input(a, k, "input"), m.cls.name)


def _elementwise(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = _input(ev, m, a, k)
    return shapes.same(x) if isinstance(x, TensorValue) else x


def _glu(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.glu(ev, first_input(a, k, "input"), m.attrs.get("dim", -1), m.cls.name)


def _pool(nd: int, kind: str) -> Forward:
    def rule(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        at = m.attrs
        x = first_input(a, k, "input")
        if kind == "adaptive":
            out = shapes.adaptive_pool(ev, x, nd, at.get("output_size"), m.cls.name)
        else:
            out = shapes.pool(ev, x, nd, at.get("kernel_size"), at.get("stride"), at.get("padding", 0),
                              at.get("dilation", 1), at.get("ceil_mode", False), m.cls.name)
        if at.get("return_indices") and isinstance(out, TensorValue):
            return (out, TensorValue(out.shape, "int64"))
        return out

    return rule


def _flatten(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.flatten(ev, first_input(a, k, "input"), m.attrs.get("start_dim", 1), m.attrs.get("end_dim", -1))


def _unflatten(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = _input(ev, m, a, k)
    if not isinstance(x, TensorValue):
        return x
    assert isinstance(x.shape, tuple)
    d = m.attrs.get("dim")
    sizes = tuple(m.attrs.get("unflattened_size") or ())
    if not isinstance(d, int):
        return Unknown("Unflatten along an unknown dim", ev.current_ref)
    d = d + len(x.shape) if d < 0 else d
    if -1 in sizes and isinstance(x.shape[d], int):
        rest = 1
        for s in sizes:
            rest = rest * s if s != -1 else rest
        sizes = tuple(x.shape[d] // rest if s == -1 else s for s in sizes)
    return TensorValue((*x.shape[:d], *sizes, *x.shape[d + 1:]), x.dtype)


def _upsample(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.interpolate(ev, first_input(a, k, "input"), m.attrs.get("size"), m.attrs.get("scale_factor"))


def _pixel_shuffle(up: bool) -> Forward:
    def rule(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        r = m.attrs.get("upscale_factor" if up else "downscale_factor")
        return shapes.pixel_shuffle(ev, first_input(a, k, "input"), r, up, m.cls.name)

    return rule


def _pad(nd: int) -> Forward:
    def rule(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        p = m.attrs.get("padding")
        pads = tuple(p) if isinstance(p, (tuple, list)) else (p,) * (2 * nd)
        return shapes.pad(ev, first_input(a, k, "input"), pads, m.cls.name)

    return rule


def _unfold(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    at = m.attrs
    return shapes.unfold(ev, first_input(a, k, "input"), at.get("kernel_size"), at.get("dilation", 1),
                         at.get("padding", 0), at.get("stride", 1))


def _fold(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    at = m.attrs
    return shapes.fold(ev, first_input(a, k, "input"), at.get("output_size"), at.get("kernel_size"),
                       at.get("dilation", 1), at.get("padding", 0), at.get("stride", 1))


def _loss(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = _input(ev, m, a, k)
    if not isinstance(x, TensorValue):
        return x
    if m.attrs.get("reduction", "mean") == "none":
        return shapes.same(x)
    return TensorValue((), x.dtype)


def _max_unpool(nd: int) -> Forward:
    def rule(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        at = m.attrs
        indices = a[1] if len(a) > 1 else k.get("indices")
        output_size = a[2] if len(a) > 2 else k.get("output_size")
        return shapes.max_unpool(ev, first_input(a, k, "input"), indices, nd, at.get("kernel_size"),
                                 at.get("stride"), at.get("padding", 0), output_size, m.cls.name)

    return rule


def _fractional_pool(nd: int) -> Forward:
    def rule(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        at = m.attrs
        y = shapes.fractional_max_pool(ev, first_input(a, k, "input"), nd, at.get("kernel_size"),
                                       at.get("output_size"), at.get("output_ratio"), m.cls.name)
        return (y, TensorValue(y.shape, "int64")) if at.get("return_indices") and isinstance(y, TensorValue) else y

    return rule


def _second(a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return a[1] if len(a) > 1 else k.get("x2")


def _cosine_similarity(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.cosine_similarity(ev, first_input(a, k, "x1"), _second(a, k), m.attrs.get("dim", 1), m.cls.name)


def _pairwise_distance(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.pairwise_distance(ev, first_input(a, k, "x1"), _second(a, k), m.attrs.get("keepdim"), m.cls.name)


def _ctc_loss(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """log_probs [T, N, C] (or [T, C]): a loss per sequence with reduction='none', else a scalar."""
    x = _input(ev, m, a, k)
    if not isinstance(x, TensorValue):
        return x
    assert isinstance(x.shape, tuple)
    if len(x.shape) not in (2, 3):
        return shapes.mismatch(ev, f"CTCLoss expects log_probs of shape [T, N, C] or [T, C], got {list(x.shape)}")
    if m.attrs.get("reduction", "mean") == "none":
        return TensorValue(x.shape[1:2] if len(x.shape) == 3 else (), x.dtype)
    return TensorValue((), x.dtype)


def _weight_norm(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """weight_norm's parametrization: forward(weight_g, weight_v) is a weight of v's shape."""
    v = shapes.as_tensor(ev, a[1] if len(a) > 1 else k.get("weight_v"), m.cls.name)
    return shapes.same(v) if isinstance(v, TensorValue) else v


# Layers whose output has the input's shape, and the op whose autograd rule applies to each.
ELEMENTWISE = {
    "ReLU": "relu", "ReLU6": "hardtanh", "SELU": "selu", "SiLU": "silu", "Mish": "mish", "Hardswish": "hardswish",
    "Hardsigmoid": "hardsigmoid", "Sigmoid": "sigmoid", "Tanh": "tanh", "Tanhshrink": "tanhshrink",
    "LogSigmoid": "logsigmoid", "Softsign": "softsign", "LeakyReLU": "leaky_relu", "ELU": "elu", "CELU": "celu",
    "GELU": "gelu", "Hardtanh": "hardtanh", "Hardshrink": "hardshrink", "Softshrink": "softshrink",
    "Softplus": "softplus", "Threshold": "threshold", "RReLU": "rrelu", "Softmax": "softmax", "Softmin": "softmax",
    "LogSoftmax": "log_softmax", "Softmax2d": "softmax", "ChannelShuffle": "channel_shuffle", "PReLU": "prelu",
    "Dropout": "dropout", "Dropout1d": "dropout1d", "Dropout2d": "dropout2d", "Dropout3d": "dropout3d",
    "AlphaDropout": "alpha_dropout", "FeatureAlphaDropout": "feature_alpha_dropout",
}
for _name, _op in ELEMENTWISE.items():
    forward_rule(_name, saves=_op)(_elementwise)
forward_rule("GLU", saves="glu")(_glu)
# Padding: constant and circular padding keep nothing for backward; reflection and replication
# padding keep their input (measured with saved_tensors_hooks, torch 2.13; tests/test_module_saved.py).
PADDING_SAVES = {"Zero": "pad", "Constant": "pad", "Circular": "pad", "Reflection": "reflection_pad",
                 "Replication": "reflection_pad"}
for _dims in (1, 2, 3):
    forward_rule(f"MaxPool{_dims}d", saves="max_pool")(_pool(_dims, "window"))
    forward_rule(f"AvgPool{_dims}d", f"LPPool{_dims}d", saves="avg_pool")(_pool(_dims, "window"))
    forward_rule(f"AdaptiveAvgPool{_dims}d", saves="avg_pool")(_pool(_dims, "adaptive"))
    forward_rule(f"AdaptiveMaxPool{_dims}d", saves="max_pool")(_pool(_dims, "adaptive"))
    forward_rule(f"MaxUnpool{_dims}d", saves="max_unpool")(_max_unpool(_dims))
    for _kind, _op in PADDING_SAVES.items():
        _layer = f"{_kind}Pad{_dims}d"
        forward_rule(_layer, saves=_op)(_pad(_dims))
for _dims in (2, 3):
    forward_rule(f"FractionalMaxPool{_dims}d", saves="max_pool")(_fractional_pool(_dims))
forward_rule("Flatten", saves="flatten")(_flatten)
forward_rule("Unflatten", saves="view")(_unflatten)
forward_rule("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", saves="interpolate")(_upsample)
forward_rule("PixelShuffle", saves="pixel_shuffle")(_pixel_shuffle(True))
forward_rule("PixelUnshuffle", saves="pixel_shuffle")(_pixel_shuffle(False))  # keeps nothing either
forward_rule("Unfold", saves="im2col")(_unfold)
forward_rule("Fold", saves="col2im")(_fold)
forward_rule("CosineSimilarity", saves="cosine_similarity")(_cosine_similarity)
forward_rule("PairwiseDistance", saves="pairwise_distance")(_pairwise_distance)
# Losses: the op of each (one the memory model models, or its lower-case name, declared assumed there).
LOSSES = {
    "L1Loss": "l1_loss", "MSELoss": "mse_loss", "SmoothL1Loss": "l1_loss", "HuberLoss": "l1_loss",
    "KLDivLoss": "kl_div", "CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss", "NLLLoss2d": "nll_loss",
    "BCELoss": "binary_cross_entropy", "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    **{name: name.lower() for name in (
        "CosineEmbeddingLoss", "MarginRankingLoss", "TripletMarginLoss", "PoissonNLLLoss", "GaussianNLLLoss",
        "HingeEmbeddingLoss", "SoftMarginLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss",
        "MultiMarginLoss", "TripletMarginWithDistanceLoss")},
}
for _name, _op in LOSSES.items():
    forward_rule(_name, saves=_op)(_loss)
forward_rule("CTCLoss", saves="ctcloss")(_ctc_loss)
forward_rule("_WeightNorm", saves="_weightnorm")(_weight_norm)
forward_rule("_SpectralNorm", saves="_spectralnorm")(_elementwise)
forward_rule("_Orthogonal", saves="_orthogonal")(_elementwise)
