"""Pooling, global pooling, upsampling, zero padding and cropping (no weights)."""

from __future__ import annotations

import re
from typing import Any

from vramlint.engine.values import Args, Instance, Kwargs, Unknown, UnknownValueError
from vramlint.frontends.keras.catalog import (
    KerasLayerSpec,
    channels_first,
    channels_last,
    conv_length,
    ints,
    op,
    register,
    shape_mismatch,
    spatial_of,
    spec_name,
    tensor_in,
)
from vramlint.frontends.torch.tensors import TensorValue, shape_text


def _rank(layer: Instance) -> int:
    m = re.search(r"(\d)D", spec_name(layer))
    return int(m.group(1)) if m else 2


def _join(x: TensorValue, first: bool, spatial: list[Any]) -> tuple[Any, ...]:
    assert isinstance(x.shape, tuple)
    return (x.shape[0], x.shape[1], *spatial) if first else (x.shape[0], *spatial, x.shape[-1])


def pool_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], layer.cls.name)
    n = _rank(layer)
    first, spatial = spatial_of(ev, layer, x, n)
    pool = ints(ev, layer, "pool_size", n)
    strides = layer.attrs.get("strides")
    strides = pool if strides is None else ints(ev, layer, "strides", n)
    padding = str(layer.attrs.get("padding", "valid")).lower()
    out = [conv_length(s, p, padding, st) for s, p, st in zip(spatial, pool, strides, strict=True)]
    if any(isinstance(d, int) and d <= 0 for d in out):
        raise shape_mismatch(ev, layer.cls.name, f"the input's spatial size {spatial} is smaller than the pool {list(pool)}")
    kind = "max" if _is(layer, "Max") else "avg"
    if first:
        return op(ev, f"torch.nn.functional.{kind}_pool{n}d", (x,), TensorValue(_join(x, first, out), x.dtype))
    # Keras's torch backend pools a channels-first copy of a channels-last input (kept for backward).
    xin = channels_first(ev, x)
    assert isinstance(xin.shape, tuple)
    y = op(ev, f"torch.nn.functional.{kind}_pool{n}d", (xin,), TensorValue((*xin.shape[:2], *out), x.dtype))
    return channels_last(ev, y)


def _is(layer: Instance, word: str) -> bool:
    return word in spec_name(layer)


def global_pool_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], layer.cls.name)
    n = _rank(layer)
    first, _ = spatial_of(ev, layer, x, n)
    assert isinstance(x.shape, tuple)
    c = x.shape[1] if first else x.shape[-1]
    if layer.attrs.get("keepdims"):
        shape = _join(x, first, [1] * n)
    else:
        shape = (x.shape[0], c)
    name = "torch.amax" if _is(layer, "Max") else "torch.mean"
    return op(ev, name, (x,), TensorValue(shape, x.dtype))


def upsampling_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], layer.cls.name)
    n = _rank(layer)
    assert isinstance(x.shape, tuple)
    if n == 1:  # UpSampling1D: (batch, steps, features), no data_format
        size = ints(ev, layer, "size", 1)[0]
        steps = x.shape[1] * size if isinstance(x.shape[1], int) else x.shape[1]
        return op(ev, "torch.repeat_interleave", (x,), TensorValue((x.shape[0], steps, *x.shape[2:]), x.dtype))
    first, spatial = spatial_of(ev, layer, x, n)
    size = ints(ev, layer, "size", n)
    out = [s * f if isinstance(s, int) else s for s, f in zip(spatial, size, strict=True)]
    return op(ev, "torch.nn.functional.interpolate", (x,), TensorValue(_join(x, first, out), x.dtype))


def _pairs(ev: Any, layer: Instance, what: str, n: int) -> list[tuple[int, int]]:
    """Keras's padding / cropping argument: an int, a tuple of ints, or a tuple of (before, after)
    pairs; anything else is the ValueError Keras raises."""
    v = layer.attrs.get(what)
    if isinstance(v, Unknown):
        raise UnknownValueError(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return [(v, v)] * n
    t = tuple(v) if isinstance(v, (tuple, list)) else ()
    if n == 1 and len(t) == 2:
        t = (t,)
    out = []
    for x in t:
        pair = (x, x) if not isinstance(x, (tuple, list)) else tuple(x)
        for d in pair:
            if isinstance(d, Unknown):
                raise UnknownValueError(d)
        if len(pair) == 2 and all(isinstance(d, int) and not isinstance(d, bool) for d in pair):
            out.append(pair)
    if len(out) != n or len(t) != n:
        raise ev.raise_error("ValueError", f"{layer.cls.name}: `{what}` should be an int, {n} ints or {n} "
                                           f"(before, after) pairs of ints, got {what}={v!r}")
    return out


def padding_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    return _pad_or_crop(ev, layer, args, "padding", 1)


def cropping_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    return _pad_or_crop(ev, layer, args, "cropping", -1)


def _pad_or_crop(ev: Any, layer: Instance, args: Args, what: str, sign: int) -> Any:
    x = tensor_in(ev, args[0], layer.cls.name)
    n = _rank(layer)
    assert isinstance(x.shape, tuple)
    if n == 1:
        first, spatial = False, [x.shape[1]]
        if len(x.shape) != 3:
            raise shape_mismatch(ev, layer.cls.name, f"expected an input of rank 3, got {shape_text(x.shape)}")
    else:
        first, spatial = spatial_of(ev, layer, x, n)
    pairs = _pairs(ev, layer, what, n)
    out = [s + sign * (a + b) if isinstance(s, int) else s for s, (a, b) in zip(spatial, pairs, strict=True)]
    if any(isinstance(d, int) and d <= 0 for d in out):
        raise shape_mismatch(ev, layer.cls.name, f"cropping {pairs} leaves nothing of {spatial}")
    shape = (x.shape[0], *out, x.shape[2]) if n == 1 else _join(x, first, out)
    name = "torch.nn.functional.pad" if sign > 0 else "Tensor.getitem"
    return op(ev, name, (x,), TensorValue(shape, x.dtype))


def _pool_specs() -> list[KerasLayerSpec]:
    specs = []
    for n in (1, 2, 3):
        default = "2" if n == 1 else f"({', '.join(['2'] * n)})"
        for kind in ("Max", "Average"):
            short = "Max" if kind == "Max" else "Avg"
            specs.append(KerasLayerSpec(f"{kind}Pooling{n}D", f"pool_size={default}, strides=None, padding='valid', "
                                        "data_format=None, **kwargs", call=pool_call,
                                        aliases=(f"{short}Pool{n}D",)))
            specs.append(KerasLayerSpec(f"Global{kind}Pooling{n}D", "data_format=None, keepdims=False, **kwargs",
                                        call=global_pool_call, aliases=(f"Global{short}Pool{n}D",)))
        size = "2" if n == 1 else f"({', '.join(['2'] * n)})"
        upsig = f"size={size}, **kwargs" if n == 1 else \
            f"size={size}, data_format=None, {'interpolation=' + repr('nearest') + ', ' if n == 2 else ''}**kwargs"
        specs.append(KerasLayerSpec(f"UpSampling{n}D", upsig, call=upsampling_call, min_rank=n + 2))
        pad = "1" if n == 1 else f"({', '.join(['1'] * n)})"
        fmt = "" if n == 1 else "data_format=None, "
        specs.append(KerasLayerSpec(f"ZeroPadding{n}D", f"padding={pad}, {fmt}**kwargs", call=padding_call,
                                    min_rank=n + 2))
        crop = "(1, 1)" if n == 1 else f"({', '.join(['(0, 0)'] * n)})"
        specs.append(KerasLayerSpec(f"Cropping{n}D", f"cropping={crop}, {fmt}**kwargs", call=cropping_call,
                                    min_rank=n + 2))
    return specs


register(*_pool_specs())
