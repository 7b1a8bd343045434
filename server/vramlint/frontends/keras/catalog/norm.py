"""Normalization layers: BatchNormalization (moving statistics are non-trainable weights),
LayerNormalization, GroupNormalization, UnitNormalization."""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import Args, Instance, Kwargs, Unknown, UnknownValueError
from vramlint.frontends.keras.catalog import (
    KArgs,
    KerasLayerSpec,
    Weight,
    op,
    register,
    tensor_in,
    weight,
    weights_of,
)
from vramlint.frontends.torch.tensors import TensorValue

INIT = "beta_initializer='zeros', gamma_initializer='ones', beta_regularizer=None, gamma_regularizer=None, " \
       "beta_constraint=None, gamma_constraint=None"


def _axes(a: KArgs, shape: Any) -> list[int]:
    if not isinstance(shape, tuple):
        raise UnknownValueError(Unknown(f"{a.spec.name}: the input shape is not known", a.ev.current_ref))
    axis = a.axis
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    rank = len(shape)
    out = []
    for ax in axes:
        if not isinstance(ax, int) or not -rank <= ax < rank:
            raise a.ev.raise_error("ValueError", f"{a.spec.name}: invalid axis {ax!r} for an input of rank {rank}")
        out.append(ax % rank)
    return out


def _dims(a: KArgs, shape: Any) -> tuple[int, ...]:
    dims = []
    for ax in _axes(a, shape):
        d = shape[ax]
        if d is None:
            raise a.ev.raise_error("ValueError", f"{a.spec.name}: axis {ax} of the input has no defined size")
        dims.append(a.size(d, f"axis {ax} of the input"))
    return tuple(dims)


def batch_norm_weights(a: KArgs, shape: Any) -> list[Weight]:
    dims = _dims(a, shape)
    w: list[Weight] = []
    if a.scale:
        w.append(("gamma", dims, True))
    if a.center:
        w.append(("beta", dims, True))
    return [*w, ("moving_mean", dims, False), ("moving_variance", dims, False)]


def layer_norm_weights(a: KArgs, shape: Any) -> list[Weight]:
    dims = _dims(a, shape)
    w: list[Weight] = []
    if a.scale or a.rms_scaling:
        w.append(("gamma", dims, True))
    if a.center and not a.rms_scaling:
        w.append(("beta", dims, True))
    return w


def group_norm_weights(a: KArgs, shape: Any) -> list[Weight]:
    dims = _dims(a, shape)
    groups = a.groups if a.groups == -1 else a.size(a.groups, "groups")
    groups = dims[0] if groups == -1 else groups  # -1: one group per channel (instance normalization)
    if groups <= 0 or dims[0] % groups:
        raise a.ev.raise_error("ValueError", f"GroupNormalization: {dims[0]} channels are not divisible by "
                                             f"groups={groups}")
    w: list[Weight] = []
    if a.scale:
        w.append(("gamma", dims, True))
    if a.center:
        w.append(("beta", dims, True))
    return w


def norm_call(name: str) -> Any:
    def call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
        x = tensor_in(ev, args[0], layer.cls.name)
        params = weights_of(layer, "moving_mean", "moving_variance", "gamma", "beta")
        extra: tuple[Any, ...] = ()
        if name.endswith("layer_norm") and isinstance(x.shape, tuple):
            extra = ((x.shape[-1],),)
        elif name.endswith("group_norm"):
            extra = (layer.attrs.get("groups"),)
        return op(ev, name, (x, *extra, *params), TensorValue(x.shape, x.dtype))

    return call


def normalization_weights(a: KArgs, shape: Any) -> list[Weight]:
    """keras.layers.Normalization: the adapted mean and variance per feature, and the sample count."""
    if a.axis is None or not isinstance(shape, tuple):
        dims: tuple[Any, ...] = ()  # one mean and variance for every value
    else:
        axes = _axes(a, shape)
        dims = tuple(d if i in axes else 1 for i, d in enumerate(shape))[1:]
        while dims and dims[0] == 1 and len(axes) == 1:  # Keras keeps only the normalized axes' sizes
            dims = dims[1:]
    if any(d is None for d in dims):
        raise a.ev.raise_error("ValueError", "Normalization: the normalized axes of the input should be defined")
    if a.mean is not None and a.variance is not None:
        return []  # given as constants, not weights
    return [("mean", dims, False), ("variance", dims, False), ("count", (), False)]


def batch_norm_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    """Keras's batch normalization as its torch backend runs it in training (ops.moments, then
    `x.subtract(mean).mul_(rsqrt(var + eps) * gamma).add_(beta)`): the variance keeps the input,
    the in-place multiply a copy of the centred input. TensorFlow's fused kernel keeps the input only."""
    x = tensor_in(ev, args[0], "BatchNormalization")
    if not isinstance(x.shape, tuple) or k.get("training") is False:
        return norm_call("torch.nn.functional.batch_norm")(ev, layer, args, k)
    axis = layer.attrs.get("axis", -1)
    rank = len(x.shape)
    ax = axis % rank if isinstance(axis, int) and rank else rank - 1
    stat_shape = tuple(d if i == ax else 1 for i, d in enumerate(x.shape))
    dims = tuple(i for i in range(rank) if i != ax)
    mean = op(ev, "torch.mean", (x, dims), TensorValue(stat_shape, x.dtype))
    var = op(ev, "torch.var", (x, dims), TensorValue(stat_shape, x.dtype))
    inv = op(ev, "torch.rsqrt", (var,), TensorValue(stat_shape, x.dtype))
    gamma, beta = weight(layer, "gamma"), weight(layer, "beta")
    if gamma is not None:
        inv = op(ev, "torch.mul", (inv, gamma), TensorValue(stat_shape, x.dtype))
    centred = op(ev, "torch.sub", (x, mean), TensorValue(x.shape, x.dtype))
    out = op(ev, "Tensor.mul_", (centred, inv), centred)
    if beta is not None:
        out = op(ev, "Tensor.add_", (out, beta), out)
    return out


register(
    KerasLayerSpec("Normalization", "axis=-1, mean=None, variance=None, invert=False, **kwargs",
                   normalization_weights, norm_call("torch.sub")),
    KerasLayerSpec("BatchNormalization", f"axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True, {INIT}, "
                   "moving_mean_initializer='zeros', moving_variance_initializer='ones', synchronized=False, "
                   "**kwargs", batch_norm_weights, batch_norm_call),
    KerasLayerSpec("LayerNormalization", f"axis=-1, epsilon=0.001, center=True, scale=True, rms_scaling=False, "
                   f"{INIT}, **kwargs", layer_norm_weights, norm_call("torch.nn.functional.layer_norm")),
    KerasLayerSpec("GroupNormalization", f"groups=32, axis=-1, epsilon=0.001, center=True, scale=True, {INIT}, "
                   "**kwargs", group_norm_weights, norm_call("torch.nn.functional.group_norm")),
    KerasLayerSpec("RMSNormalization", "axis=-1, epsilon=1e-06, **kwargs",
                   lambda a, shape: [("scale", _dims(a, shape), True)], norm_call("torch.nn.functional.rms_norm")),
    KerasLayerSpec("UnitNormalization", "axis=-1, **kwargs", call=norm_call("torch.nn.functional.normalize")),
)
