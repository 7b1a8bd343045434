"""Normalisation: BatchNorm*, SyncBatchNorm, InstanceNorm*, LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm."""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import ClassMethod, NativeFunction
from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    EXTRA_NAMESPACES,
    LayerArgs,
    LayerParts,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)
from vramlint.frontends.torch.tensors import TensorValue


def batch_norm(a: LayerArgs) -> LayerParts:
    c = a.dim(a.num_features, "num_features")
    affine, track = a.flag(a.affine), a.flag(a.track_running_stats)
    # torch 2.13's keyword-only `bias=False` drops the shift, keeping the scale.
    bias = affine and a.flag(a.bias)
    parts = LayerParts(params={"weight": (c,) if affine else None, "bias": (c,) if bias else None})
    if track:
        parts.buffers = {"running_mean": ((c,), "float"), "running_var": ((c,), "float"),
                         "num_batches_tracked": ((), "int64")}
    else:
        parts.buffers = {"running_mean": None, "running_var": None, "num_batches_tracked": None}
    return parts


def _shape(a: LayerArgs, v: object) -> tuple[object, ...]:
    return tuple(a.dim(x, "normalized_shape") for x in a.ntuple(v, 1))


def layer_norm(a: LayerArgs) -> LayerParts:
    shape = _shape(a, a.normalized_shape)
    affine = a.flag(a.elementwise_affine)
    return LayerParts(
        params={"weight": shape if affine else None, "bias": shape if affine and a.flag(a.bias) else None},
        attrs={"normalized_shape": shape},
    )


def rms_norm(a: LayerArgs) -> LayerParts:
    shape = _shape(a, a.normalized_shape)
    return LayerParts(params={"weight": shape if a.flag(a.elementwise_affine) else None},
                      attrs={"normalized_shape": shape})


def group_norm(a: LayerArgs) -> LayerParts:
    c, g = a.dim(a.num_channels, "num_channels"), a.dim(a.num_groups, "num_groups")
    if isinstance(c, int) and isinstance(g, int) and (g == 0 or c % g):
        raise a.ev.raise_error("ValueError", "num_channels must be divisible by num_groups")
    affine = a.flag(a.affine)
    return LayerParts(params={"weight": (c,) if affine else None, "bias": (c,) if affine and a.flag(a.bias) else None})


# torch 2.13 added a keyword-only `bias` to batch, instance and group norm.
BIAS = ", *, bias=True"
BN = "num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True"
IN = "num_features, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False, device=None, dtype=None" + BIAS

register(
    LayerSpec("_NormBase", "*args, **kwargs", module="torch.nn.modules.batchnorm", abstract=True),
    # torch's _BatchNorm and _InstanceNorm have a forward, but it calls `_check_input_dim`, which
    # only their subclasses define: abstract as well.
    LayerSpec("_BatchNorm", "*args, **kwargs", base="_NormBase", module="torch.nn.modules.batchnorm", abstract=True),
    LayerSpec("BatchNorm1d", BN + ", device=None, dtype=None" + BIAS, batch_norm, base="_BatchNorm"),
    LayerSpec("BatchNorm2d", BN + ", device=None, dtype=None" + BIAS, batch_norm, base="_BatchNorm"),
    LayerSpec("BatchNorm3d", BN + ", device=None, dtype=None" + BIAS, batch_norm, base="_BatchNorm"),
    LayerSpec("SyncBatchNorm", BN + ", process_group=None, device=None, dtype=None" + BIAS, batch_norm,
              base="_BatchNorm"),
    LayerSpec("_InstanceNorm", "*args, **kwargs", base="_NormBase", module="torch.nn.modules.instancenorm",
              abstract=True),
    LayerSpec("InstanceNorm1d", IN, batch_norm, base="_InstanceNorm"),
    LayerSpec("InstanceNorm2d", IN, batch_norm, base="_InstanceNorm"),
    LayerSpec("InstanceNorm3d", IN, batch_norm, base="_InstanceNorm"),
    LayerSpec("LayerNorm", "normalized_shape, eps=1e-05, elementwise_affine=True, bias=True, device=None, dtype=None",
              layer_norm),
    LayerSpec("RMSNorm", "normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None", rms_norm),
    LayerSpec("GroupNorm", "num_groups, num_channels, eps=1e-05, affine=True, device=None, dtype=None" + BIAS, group_norm),
    LayerSpec("LocalResponseNorm", "size, alpha=0.0001, beta=0.75, k=1.0"),
    LayerSpec("CrossMapLRN2d", "size, alpha=0.0001, beta=0.75, k=1"),
)


def _convert_sync_batchnorm(ev: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """`nn.SyncBatchNorm.convert_sync_batchnorm(model)`: torch swaps each BatchNorm*d for a
    SyncBatchNorm with the same parameters and buffers; on one GPU (what vramlint estimates) it
    keeps what batch norm keeps, so the model is returned as it is."""
    return a[1] if len(a) > 1 else k.get("module")


EXTRA_NAMESPACES["SyncBatchNorm"] = lambda: {"convert_sync_batchnorm": ClassMethod(
    NativeFunction("SyncBatchNorm.convert_sync_batchnorm", _convert_sync_batchnorm))}


# ---------------------------------------------------------------------- forward (output shapes)
def norm_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = shapes.as_tensor(ev, first_input(a, k, "input"), m.cls.name)
    return x if not isinstance(x, TensorValue) else shapes.same(x)


forward_rule("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", saves="batch_norm")(norm_forward)
forward_rule("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", saves="instance_norm")(norm_forward)
forward_rule("LayerNorm", saves="layer_norm")(norm_forward)
forward_rule("RMSNorm", saves="rms_norm")(norm_forward)
forward_rule("GroupNorm", saves="group_norm")(norm_forward)
forward_rule("LocalResponseNorm", saves="local_response_norm")(norm_forward)
forward_rule("CrossMapLRN2d", saves="crossmaplrn2d")(norm_forward)
