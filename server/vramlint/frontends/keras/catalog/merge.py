"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot."""

from __future__ import annotations

from typing import Any

from vramlint.engine.values import Args, Instance, Kwargs
from vramlint.frontends.keras.catalog import (
    KerasLayerSpec,
    op,
    register,
    shape_mismatch,
    spec_name,
    tensor_in,
)
from vramlint.frontends.torch.tensors import TensorValue, broadcast, shape_text

_OPS = {"Add": "torch.add", "Subtract": "torch.sub", "Multiply": "torch.mul", "Average": "torch.add",
        "Maximum": "torch.maximum", "Minimum": "torch.minimum"}


def _inputs(ev: Any, layer: Instance, args: Args) -> list[TensorValue]:
    xs = args[0] if len(args) == 1 else list(args)
    if not isinstance(xs, (list, tuple)) or len(xs) < 2:
        raise ev.raise_error("ValueError", f"{layer.cls.name} should be called on a list of at least 2 inputs")
    return [tensor_in(ev, x, layer.cls.name) for x in xs]


def elementwise_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    name = spec_name(layer)
    xs = _inputs(ev, layer, args)
    if name == "Subtract" and len(xs) != 2:
        raise ev.raise_error("ValueError", "Subtract should be called on exactly 2 inputs")
    out = xs[0]
    for x in xs[1:]:
        assert isinstance(out.shape, tuple) and isinstance(x.shape, tuple)
        shape = broadcast(out.shape, x.shape)
        if not isinstance(shape, tuple):
            raise shape_mismatch(ev, layer.cls.name, f"inputs of shapes {shape_text(out.shape)} and {shape_text(x.shape)}")
        out = op(ev, _OPS[name], (out, x), TensorValue(shape, out.dtype))
    if name == "Average":
        out = op(ev, "torch.div", (out,), TensorValue(out.shape, out.dtype))
    return out


def concatenate_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    xs = _inputs(ev, layer, args)
    axis = layer.attrs.get("axis", -1)
    rank = len(xs[0].shape) if isinstance(xs[0].shape, tuple) else 0
    if not isinstance(axis, int) or not -rank <= axis < rank:
        raise ev.raise_error("ValueError", f"Concatenate: invalid axis {axis!r}")
    ax = axis % rank
    total: Any = 0
    for x in xs:
        assert isinstance(x.shape, tuple)
        if len(x.shape) != rank or any(a != b and isinstance(a, int) and isinstance(b, int) and i != ax
                                       for i, (a, b) in enumerate(zip(x.shape, xs[0].shape, strict=True))):
            raise shape_mismatch(ev, "Concatenate", "inputs must match in every dimension but the axis: "
                                 + ", ".join(str(list(t.shape)) for t in xs if isinstance(t.shape, tuple)))
        total = total + x.shape[ax] if isinstance(total, int) and isinstance(x.shape[ax], int) else x.shape[ax]
    shape = list(xs[0].shape) if isinstance(xs[0].shape, tuple) else []
    shape[ax] = total
    return op(ev, "torch.cat", (xs,), TensorValue(tuple(shape), xs[0].dtype))


def dot_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    xs = _inputs(ev, layer, args)
    a, b = xs[0], xs[1]
    assert isinstance(a.shape, tuple) and isinstance(b.shape, tuple)
    axes = layer.attrs.get("axes")
    if not isinstance(axes, (int, list, tuple)):
        raise ev.raise_error("ValueError", f"Dot: invalid axes {axes!r}")
    ax = (axes, axes) if isinstance(axes, int) else tuple(axes)
    ia, ib = ax[0] % len(a.shape), ax[1] % len(b.shape)
    shape = tuple(d for i, d in enumerate(a.shape) if i != ia) + tuple(d for i, d in enumerate(b.shape[1:], 1)
                                                                       if i != ib)
    if len(shape) == 1:
        shape = (shape[0], 1)
    return op(ev, "torch.matmul", (a, b), TensorValue(shape, a.dtype))


register(
    *(KerasLayerSpec(n, "**kwargs", call=elementwise_call) for n in _OPS),
    KerasLayerSpec("Concatenate", "axis=-1, **kwargs", call=concatenate_call),
    KerasLayerSpec("Dot", "axes, normalize=False, **kwargs", call=dot_call, min_rank=2),  # batch_dot's
)
