"""Convolutions: ConvND, ConvNDTranspose, DepthwiseConvND, SeparableConvND (channels-last by default)."""

from __future__ import annotations

import re
from typing import Any

from vramlint.engine.values import Args, Instance, Kwargs, Unknown
from vramlint.frontends.keras.catalog import (
    KArgs,
    KerasLayerSpec,
    Weight,
    activate,
    channel_axis,
    channels_first,
    channels_last,
    compute_dtype,
    conv_length,
    deconv_length,
    ints,
    kernel_for_torch,
    ones,
    op,
    register,
    shape_mismatch,
    spatial_of,
    spec_name,
    tensor_in,
    weight,
)
from vramlint.frontends.torch.tensors import TensorValue

REGULARIZERS = "kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, " \
               "kernel_constraint=None, bias_constraint=None"


def _channels(a: KArgs, shape: Any, rank: int) -> int:
    if not isinstance(shape, tuple) or len(shape) != rank + 2:
        got = len(shape) if isinstance(shape, tuple) else "unknown"
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: expected an input of rank {rank + 2}, got {got}")
    c = shape[channel_axis(a.data_format, rank + 2)]
    if c is None:
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: the channel dimension of the input should be defined")
    return a.size(c, "the input's channels")


def _rank(a: KArgs) -> int:
    return _rank_of(a.spec.name)


def _rank_of(name: str) -> int:
    m = re.search(r"(\d)D", name)
    return int(m.group(1)) if m else 2



def conv_weights(a: KArgs, shape: Any) -> list[Weight]:
    n = _rank(a)
    c = _channels(a, shape, n)
    filters, groups = a.size(a.filters, "filters"), a.size(a.groups, "groups")
    if groups <= 0 or c % groups or filters % groups:
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: channels ({c}) and filters ({filters}) must be "
                                             f"divisible by groups ({groups})")
    w: list[Weight] = [("kernel", (*a.sizes(a.kernel_size, n, "kernel_size"), c // groups, filters), True)]
    if a.use_bias:
        w.append(("bias", (filters,), True))
    return w


def transpose_weights(a: KArgs, shape: Any) -> list[Weight]:
    n = _rank(a)
    c = _channels(a, shape, n)
    filters = a.size(a.filters, "filters")
    w: list[Weight] = [("kernel", (*a.sizes(a.kernel_size, n, "kernel_size"), filters, c), True)]
    if a.use_bias:
        w.append(("bias", (filters,), True))
    return w


def depthwise_weights(a: KArgs, shape: Any) -> list[Weight]:
    n = _rank(a)
    c = _channels(a, shape, n)
    m = a.size(a.depth_multiplier, "depth_multiplier")
    w: list[Weight] = [("kernel", (*a.sizes(a.kernel_size, n, "kernel_size"), c, m), True)]
    if a.use_bias:
        w.append(("bias", (c * m,), True))
    return w


def separable_weights(a: KArgs, shape: Any) -> list[Weight]:
    n = _rank(a)
    c = _channels(a, shape, n)
    m, filters = a.size(a.depth_multiplier, "depth_multiplier"), a.size(a.filters, "filters")
    w: list[Weight] = [("depthwise_kernel", (*a.sizes(a.kernel_size, n, "kernel_size"), c, m), True),
                       ("pointwise_kernel", (*(1,) * n, c * m, filters), True)]
    if a.use_bias:
        w.append(("bias", (filters,), True))
    return w


def conv_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    name = spec_name(layer)
    n = _rank_of(name)
    x = tensor_in(ev, args[0], name)
    first, spatial = spatial_of(ev, layer, x, n)
    kind = _kind(layer)
    kernel = weight(layer, "depthwise_kernel" if kind == "separable" else "kernel")
    if kernel is None or not isinstance(kernel.shape, tuple):
        return Unknown(f"{name}: its kernel is not known", ev.current_ref)
    ks, strides = ints(ev, layer, "kernel_size", n), ints(ev, layer, "strides", n, default=1)
    dil = ints(ev, layer, "dilation_rate", n, default=1)
    padding = str(layer.attrs.get("padding", "valid")).lower()
    dt = compute_dtype(layer, x)
    if kind == "transpose":
        outpad = layer.attrs.get("output_padding")
        outpads = ints(ev, layer, "output_padding", n, minimum=0) if outpad is not None else (None,) * n
        lengths = [deconv_length(s, kk, padding, st, op_, d)
                   for s, kk, st, op_, d in zip(spatial, ks, strides, outpads, dil, strict=True)]
        channels = kernel.shape[-2]
    else:
        lengths = [conv_length(s, kk, padding, st, d) for s, kk, st, d in zip(spatial, ks, strides, dil, strict=True)]
        # conv kernels are (*k, in, filters); depthwise ones (*k, in, multiplier)
        channels = kernel.shape[-1] * kernel.shape[-2] if kind == "depthwise" else kernel.shape[-1]
    for s, length in zip(spatial, lengths, strict=True):
        if isinstance(length, int) and length <= 0:
            raise shape_mismatch(ev, name, f"the input's spatial size {s} is too small for the kernel "
                                           f"{list(ks)} with padding='{padding}'")
    fn = f"torch.nn.functional.conv{'_transpose' if kind == 'transpose' else ''}{n}d"
    assert isinstance(x.shape, tuple)
    batch = x.shape[0]

    def conv(inp: TensorValue, kern: TensorValue, out_channels: Any) -> TensorValue:
        return op(ev, fn, (inp, kernel_for_torch(ev, kern, kind == "transpose")),  # type: ignore[no-any-return]
                  TensorValue((batch, out_channels, *lengths), dt))

    # Keras's torch backend: channels-last inputs and kernels become channels-first copies,
    # the convolution runs without bias, the result is permuted back and the bias added.
    xin = x if first else channels_first(ev, x)
    if kind == "separable":
        pointwise = weight(layer, "pointwise_kernel")
        if pointwise is None or not isinstance(pointwise.shape, tuple):
            return Unknown(f"{name}: its pointwise kernel is not known", ev.current_ref)
        mid = conv(xin, kernel, kernel.shape[-1] * kernel.shape[-2])
        out = conv(mid, pointwise, pointwise.shape[-1])
    else:
        out = conv(xin, kernel, channels)
    if not first:
        out = channels_last(ev, out)
    bias = weight(layer, "bias")
    if bias is not None:
        out = op(ev, "torch.add", (out, bias), TensorValue(out.shape, dt))
    return activate(ev, out, layer.attrs.get("activation"))


def _kind(layer: Instance) -> str:
    n = spec_name(layer)
    if n.startswith("Separable"):
        return "separable"
    if n.startswith("Depthwise"):
        return "depthwise"
    return "transpose" if "Transpose" in n else "conv"


def _conv_spec(n: int) -> KerasLayerSpec:
    default = ones(n)
    return KerasLayerSpec(
        f"Conv{n}D", f"filters, kernel_size, strides={default}, padding='valid', data_format=None, "
        f"dilation_rate={default}, groups=1, activation=None, use_bias=True, kernel_initializer='glorot_uniform', "
        f"bias_initializer='zeros', {REGULARIZERS}, lora_rank=None, lora_alpha=None, **kwargs",
        conv_weights, conv_call, aliases=(f"Convolution{n}D",))


def _transpose_spec(n: int) -> KerasLayerSpec:
    default = ones(n)
    return KerasLayerSpec(
        f"Conv{n}DTranspose", f"filters, kernel_size, strides={default}, padding='valid', output_padding=None, "
        f"data_format=None, dilation_rate={default}, activation=None, use_bias=True, "
        f"kernel_initializer='glorot_uniform', bias_initializer='zeros', {REGULARIZERS}, **kwargs",
        transpose_weights, conv_call, aliases=(f"Convolution{n}DTranspose",))


def _depthwise_spec(n: int) -> KerasLayerSpec:
    default = ones(n)
    return KerasLayerSpec(
        f"DepthwiseConv{n}D", f"kernel_size, strides={default}, padding='valid', depth_multiplier=1, "
        f"data_format=None, dilation_rate={default}, activation=None, use_bias=True, "
        "depthwise_initializer='glorot_uniform', bias_initializer='zeros', depthwise_regularizer=None, "
        "bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, "
        "**kwargs", depthwise_weights, conv_call)


def _separable_spec(n: int) -> KerasLayerSpec:
    default = ones(n)
    return KerasLayerSpec(
        f"SeparableConv{n}D", f"filters, kernel_size, strides={default}, padding='valid', data_format=None, "
        f"dilation_rate={default}, depth_multiplier=1, activation=None, use_bias=True, "
        "depthwise_initializer='glorot_uniform', pointwise_initializer='glorot_uniform', bias_initializer='zeros', "
        "depthwise_regularizer=None, pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None, "
        "depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs",
        separable_weights, conv_call, aliases=(f"SeparableConvolution{n}D",))


register(
    *(_conv_spec(n) for n in (1, 2, 3)),
    *(_transpose_spec(n) for n in (1, 2, 3)),
    *(_depthwise_spec(n) for n in (1, 2)),
    *(_separable_spec(n) for n in (1, 2)),
)
