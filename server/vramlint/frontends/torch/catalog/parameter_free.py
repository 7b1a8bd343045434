"""Layers without weights: activations, dropout, pooling, reshaping, padding, upsampling, losses.

Their signatures matter all the same: the arguments become attributes (`m.p`, `m.inplace`) and
the memory model reads them (kernel sizes, inplace flags). PReLU, the one activation with a
weight, is here too.
"""

from __future__ import annotations

from vramlint.frontends.torch.catalog import LayerArgs, LayerParts, LayerSpec, register


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
