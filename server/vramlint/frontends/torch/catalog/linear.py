"""Linear layers: Linear, Bilinear, Identity, and the linear output heads AdaptiveLogSoftmaxWithLoss and
LinearCrossEntropyLoss."""

from __future__ import annotations

import math
from typing import Any

from vramlint.engine.values import Unknown, UnknownValueError
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


def linear(a: LayerArgs) -> LayerParts:
    i, o = a.dim(a.in_features, "in_features"), a.dim(a.out_features, "out_features")
    return LayerParts(params={"weight": (o, i), "bias": (o,) if a.flag(a.bias) else None})


def bilinear(a: LayerArgs) -> LayerParts:
    i1, i2 = a.dim(a.in1_features, "in1_features"), a.dim(a.in2_features, "in2_features")
    o = a.dim(a.out_features, "out_features")
    return LayerParts(params={"weight": (o, i1, i2), "bias": (o,) if a.flag(a.bias) else None})


def adaptive_log_softmax(a: LayerArgs) -> LayerParts:
    i, n = a.dim(a.in_features, "in_features"), a.dim(a.n_classes, "n_classes")
    cutoffs = a.ev.list_of(a.cutoffs)
    if isinstance(cutoffs, Unknown):
        raise UnknownValueError(cutoffs)
    cutoffs = [*cutoffs, n]
    # head: the shortlist plus one logit per cluster; tail: a two-layer projection per cluster
    head = a.make("Linear", i, cutoffs[0] + len(cutoffs) - 1, bias=a.head_bias, dtype=a.dtype)
    tail = []
    for k in range(len(cutoffs) - 1):
        hsz = int(i // (a.div_value ** (k + 1)))
        tail.append(a.make("Sequential", a.make("Linear", i, hsz, bias=False, dtype=a.dtype),
                           a.make("Linear", hsz, cutoffs[k + 1] - cutoffs[k], bias=False, dtype=a.dtype)))
    return LayerParts(children={"head": head, "tail": a.make("ModuleList", tail)},
                      attrs={"cutoffs": cutoffs, "shortlist_size": cutoffs[0], "n_clusters": len(cutoffs) - 1})


def linear_cross_entropy(a: LayerArgs) -> LayerParts:
    extra = a.ev.list_of(a.out_features)
    if isinstance(extra, Unknown):
        raise UnknownValueError(extra)
    out = math.prod(extra, start=a.num_classes)
    w = a.weight
    return LayerParts(children={"linear": a.make("Linear", a.in_features, out, bias=a.bias, dtype=a.dtype)},
                      buffers={"weight": (w.shape, w.dtype) if isinstance(w, TensorValue)
                               and not isinstance(w.shape, Unknown) else None})


LINEAR_SIG = "in_features, out_features, bias=True, device=None, dtype=None"
register(
    LayerSpec("Linear", LINEAR_SIG, linear),
    # MultiheadAttention's out_proj is this subclass.
    LayerSpec("NonDynamicallyQuantizableLinear", LINEAR_SIG, linear, base="Linear",
              module="torch.nn.modules.linear"),
    LayerSpec("Bilinear", "in1_features, in2_features, out_features, bias=True, device=None, dtype=None", bilinear),
    LayerSpec("Identity", "*args, **kwargs"),
    LayerSpec("AdaptiveLogSoftmaxWithLoss", "in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, "
              "device=None, dtype=None", adaptive_log_softmax),
    LayerSpec("LinearCrossEntropyLoss", "in_features, num_classes, *, out_features=(), bias=False, device=None, "
              "dtype=None, reduction='mean', weight=None, ignore_index=None, label_smoothing=0.0, options=None",
              linear_cross_entropy),
)


# ---------------------------------------------------------------------- forward (output shapes)
@forward_rule("Linear", "NonDynamicallyQuantizableLinear", saves="linear")
def linear_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.linear(ev, first_input(a, k, "input"), m.attrs.get("in_features"), m.attrs.get("out_features"))


@forward_rule("Bilinear", saves="bilinear")
def bilinear_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return shapes.linear(ev, first_input(a, k, "input1"), m.attrs.get("in1_features"), m.attrs.get("out_features"),
                         "Bilinear")


@forward_rule("Identity", saves="identity")
def identity_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    return first_input(a, k, "input")


def _batch_and_target(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """The (input, target) of a layer that ends in a loss over classes: input [N, features] or
    [features], target [N] or []; an Unknown or a shape mismatch otherwise."""
    x = shapes.as_tensor(ev, first_input(a, k, "input"), m.cls.name)
    target = shapes.as_tensor(ev, a[1] if len(a) > 1 else k.get("target"), m.cls.name)
    for t in (x, target):
        if not isinstance(t, TensorValue):
            return t
    assert isinstance(x, TensorValue) and isinstance(target, TensorValue)
    assert isinstance(x.shape, tuple) and isinstance(target.shape, tuple)
    if len(x.shape) not in (1, 2) or len(target.shape) != len(x.shape) - 1:
        return shapes.mismatch(ev, f"{m.cls.name} of an input of shape {list(x.shape)} and a target of shape "
                                   f"{list(target.shape)}: expected [N, features] and [N], or [features] and []")
    if isinstance(x.shape[-1], int) and isinstance(m.attrs.get("in_features"), int) \
            and x.shape[-1] != m.attrs["in_features"]:
        return shapes.mismatch(ev, f"{m.cls.name} expects {m.attrs['in_features']} input features, got shape "
                                   f"{list(x.shape)}")
    return x, target


@forward_rule("AdaptiveLogSoftmaxWithLoss", saves="adaptivelogsoftmaxwithloss")
def adaptive_log_softmax_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """(output, loss): the target's log-probability per row, and their negated mean (torch's
    _ASMoutput, here a plain tuple)."""
    both = _batch_and_target(ev, m, a, k)
    if not isinstance(both, tuple):
        return both
    x, target = both
    return (TensorValue(target.shape, x.dtype), TensorValue((), x.dtype))


@forward_rule("LinearCrossEntropyLoss", saves="linearcrossentropyloss")
def linear_cross_entropy_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """The projection's cross-entropy: one loss per row with reduction='none', else a scalar."""
    both = _batch_and_target(ev, m, a, k)
    if not isinstance(both, tuple):
        return both
    x, target = both
    return TensorValue(target.shape if m.attrs.get("reduction", "mean") == "none" else (), x.dtype)
