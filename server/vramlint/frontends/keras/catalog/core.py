"""Core layers: Dense, Embedding, activations, dropout, reshaping, Rescaling, Lambda, InputLayer."""

from __future__ import annotations

import math
from typing import Any

from vramlint.engine.values import Args, Instance, Kwargs, Unknown, UnknownValueError
from vramlint.frontends.keras.catalog import (
    CATALOG,
    KArgs,
    KerasLayerSpec,
    Weight,
    activate,
    compute_dtype,
    op,
    register,
    shape_mismatch,
    tensor_in,
    weight,
)
from vramlint.frontends.keras.layer import kstate
from vramlint.frontends.keras.symbolic import make_input
from vramlint.frontends.torch.tensors import TensorValue, shape_text

INITIALIZERS = "kernel_initializer='glorot_uniform', bias_initializer='zeros', kernel_regularizer=None, " \
               "bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None"


def _last(a: KArgs, shape: Any, what: str = "the last dimension of the input") -> int:
    if not isinstance(shape, tuple) or not shape:
        raise UnknownValueError(Unknown(f"{a.spec.name}: the input shape is not known", a.ev.current_ref))
    n = shape[-1]
    if n is None:
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: {what} should be defined. Found None.")
    return a.size(n, what)


# ---------------------------------------------------------------------- Dense
def dense_weights(a: KArgs, shape: Any) -> list[Weight]:
    units = a.size(a.units, "units")
    w: list[Weight] = [("kernel", (_last(a, shape), units), True)]
    if a.use_bias:
        w.append(("bias", (units,), True))
    return w


def dense_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "Dense")
    kernel, bias = weight(layer, "kernel"), weight(layer, "bias")
    if kernel is None or not isinstance(kernel.shape, tuple):
        return Unknown("Dense: its kernel is not known", ev.current_ref)
    assert isinstance(x.shape, tuple)
    if x.shape and isinstance(x.shape[-1], int) and x.shape[-1] != kernel.shape[0]:
        raise shape_mismatch(ev, "Dense", f"the input's last dimension is {x.shape[-1]}, the kernel expects "
                                          f"{kernel.shape[0]}")
    dt = compute_dtype(layer, x)
    out = op(ev, "torch.matmul", (x, kernel), TensorValue((*x.shape[:-1], kernel.shape[1]), dt))
    if bias is not None:
        out = op(ev, "torch.add", (out, bias), TensorValue(out.shape, dt))
    return activate(ev, out, layer.attrs.get("activation"))


# ---------------------------------------------------------------------- EinsumDense
def _einsum_shapes(a: KArgs, shape: Any) -> tuple[str, str, str, list[Any], tuple[Any, ...]]:
    """(input spec, kernel spec, output spec, output shape with the batch, input shape) of an EinsumDense
    (keras.src.layers.core.einsum_dense._analyze_split_string, without ellipses)."""
    eq = a.equation
    if not isinstance(eq, str) or "->" not in eq or "," not in eq or "..." in eq:
        raise UnknownValueError(Unknown(f"EinsumDense equation {eq!r} is not modelled", a.ev.current_ref))
    left, out_spec = eq.split("->")
    in_spec, w_spec = left.split(",")
    if not isinstance(shape, tuple) or len(shape) != len(in_spec):
        raise a.ev.raise_error("ValueError", f"EinsumDense: the input's rank does not match {eq!r}")
    out = a.output_shape
    out_list = [out] if isinstance(out, int) else list(out)
    out_list.insert(0, shape[0])
    if len(out_list) != len(out_spec):
        raise a.ev.raise_error("ValueError", f"EinsumDense: output_shape {out!r} does not match {eq!r}")
    for i, ch in enumerate(out_spec):
        if out_list[i] is None and ch in in_spec:
            out_list[i] = shape[in_spec.index(ch)]
    return in_spec, w_spec, out_spec, out_list, shape


def einsum_dense_weights(a: KArgs, shape: Any) -> list[Weight]:
    in_spec, w_spec, out_spec, out_shape, shape = _einsum_shapes(a, shape)
    kernel = tuple(shape[in_spec.index(ch)] if ch in in_spec else out_shape[out_spec.index(ch)] for ch in w_spec)
    w: list[Weight] = [("kernel", kernel, True)]
    bias_axes = a.bias_axes
    if isinstance(bias_axes, str) and bias_axes:
        first = min(out_spec.index(ch) for ch in bias_axes)
        w.append(("bias", tuple(out_shape[out_spec.index(ch)] if ch in bias_axes else 1
                                for ch in out_spec[first:]), True))
    return w


def einsum_dense_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "EinsumDense")
    a = KArgs(ev, CATALOG["EinsumDense"], dict(layer.attrs), layer)
    _, _, _, out_shape, _ = _einsum_shapes(a, x.shape)
    kernel, bias = weight(layer, "kernel"), weight(layer, "bias")
    out = op(ev, "torch.einsum", (x, *([kernel] if kernel is not None else [])), TensorValue(tuple(out_shape), x.dtype))
    if bias is not None:
        out = op(ev, "torch.add", (out, bias), TensorValue(out.shape, out.dtype))
    return activate(ev, out, layer.attrs.get("activation"))


# ---------------------------------------------------------------------- Embedding
def embedding_weights(a: KArgs, shape: Any) -> list[Weight]:
    return [("embeddings", (a.size(a.input_dim, "input_dim"), a.size(a.output_dim, "output_dim")), True)]


def embedding_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "Embedding")
    table = weight(layer, "embeddings")
    if table is None or not isinstance(table.shape, tuple):
        return Unknown("Embedding: its table is not known", ev.current_ref)
    assert isinstance(x.shape, tuple)
    return op(ev, "torch.nn.functional.embedding", (x, table),
              TensorValue((*x.shape, table.shape[1]), table.dtype))


# ---------------------------------------------------------------------- activations, dropout, noise
def _same(name: str) -> Any:
    def call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
        x = tensor_in(ev, args[0], layer.cls.name)
        return op(ev, name, (x,), TensorValue(x.shape, x.dtype))

    return call


def activation_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    return activate(ev, tensor_in(ev, args[0], "Activation"), layer.attrs.get("activation"))


def dropout_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], layer.cls.name)
    rate = layer.attrs.get("rate", 0.5)
    if k.get("training") is False or rate == 0:
        return x
    return op(ev, "torch.nn.functional.dropout", (x, rate), TensorValue(x.shape, x.dtype))


def prelu_weights(a: KArgs, shape: Any) -> list[Weight]:
    if not isinstance(shape, tuple):
        raise UnknownValueError(Unknown("PReLU: the input shape is not known", a.ev.current_ref))
    dims = list(shape[1:])
    shared = a.shared_axes
    for ax in ([shared] if isinstance(shared, int) else list(shared or ())):
        if isinstance(ax, int) and 1 <= ax <= len(dims):
            dims[ax - 1] = 1
    if any(d is None for d in dims):
        raise a.ev.raise_error("ValueError", "PReLU: the input has an undefined dimension outside shared_axes")
    return [("alpha", tuple(dims), True)]


# ---------------------------------------------------------------------- reshaping
def flatten_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "Flatten")
    assert isinstance(x.shape, tuple)
    if len(x.shape) <= 1:
        return op(ev, "torch.reshape", (x,), TensorValue((*x.shape, 1)[:2], x.dtype))
    rest = x.shape[1:]
    n = math.prod(rest) if all(isinstance(d, int) for d in rest) else Unknown("Flatten of an unknown dimension")
    return op(ev, "torch.reshape", (x,), TensorValue((x.shape[0], n), x.dtype))


def reshape_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "Reshape")
    target = layer.attrs.get("target_shape")
    assert isinstance(x.shape, tuple)
    if isinstance(target, Unknown):
        return target
    if isinstance(target, int):
        target = (target,)
    if not isinstance(target, (tuple, list)):
        raise ev.raise_error("TypeError", "Reshape: target_shape must be a tuple")
    dims = list(target)
    total = math.prod(x.shape[1:]) if all(isinstance(d, int) for d in x.shape[1:]) else None
    if dims.count(-1) == 1 and total is not None:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or total % known:
            raise shape_mismatch(ev, "Reshape", f"cannot reshape {list(x.shape[1:])} into {list(target)}")
        dims[dims.index(-1)] = total // known
    elif total is not None and all(isinstance(d, int) for d in dims) and math.prod(dims) != total:
        raise shape_mismatch(ev, "Reshape", f"total size of new array must be unchanged: input {list(x.shape[1:])}, "
                                            f"target {list(target)}")
    return op(ev, "torch.reshape", (x,), TensorValue((x.shape[0], *dims), x.dtype))


def permute_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "Permute")
    dims = layer.attrs.get("dims")
    assert isinstance(x.shape, tuple)
    if not isinstance(dims, (tuple, list)) or sorted(dims) != list(range(1, len(x.shape))):
        raise ev.raise_error("ValueError", f"Permute: invalid dims {dims!r} for an input of rank {len(x.shape)}")
    return op(ev, "torch.permute", (x,), TensorValue((x.shape[0], *(x.shape[d] for d in dims)), x.dtype))


def repeat_vector_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "RepeatVector")
    assert isinstance(x.shape, tuple)
    return op(ev, "torch.repeat_interleave", (x,), TensorValue((x.shape[0], layer.attrs.get("n"), *x.shape[1:]),
                                                              x.dtype))


def rescaling_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "Rescaling")
    dt = "float32" if not x.dtype.startswith(("float", "bfloat")) else x.dtype
    out = op(ev, "torch.mul", (x,), TensorValue(x.shape, dt))
    return op(ev, "torch.add", (out,), TensorValue(x.shape, dt))


def category_encoding_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    """CategoryEncoding: one-hot / multi-hot / count vectors of `num_tokens` (no weights)."""
    x = tensor_in(ev, args[0], "CategoryEncoding")
    n = layer.attrs.get("num_tokens")
    assert isinstance(x.shape, tuple)
    keep = x.shape[:-1] if layer.attrs.get("output_mode") != "one_hot" or x.shape[-1:] == (1,) else x.shape
    return op(ev, "torch.nn.functional.one_hot", (x,), TensorValue((*keep, n), "float32"))


def augmentation_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    """Random augmentation (RandomFlip, RandomRotation...): a new image of the same shape, in training;
    the input needs no gradient, so nothing is kept for backward."""
    x = tensor_in(ev, args[0], layer.cls.name)
    if k.get("training") is False:
        return x
    return op(ev, "torch.clone", (x,), TensorValue(x.shape, x.dtype if x.dtype.startswith("float") else "float32"))


def resize_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    """Resizing / RandomCrop / CenterCrop(height, width): the image's spatial size becomes (height, width)."""
    x = tensor_in(ev, args[0], layer.cls.name)
    assert isinstance(x.shape, tuple)
    if len(x.shape) not in (3, 4):
        raise shape_mismatch(ev, layer.cls.name, f"expected an image batch of rank 4, got {shape_text(x.shape)}")
    h, w = layer.attrs.get("height"), layer.attrs.get("width")
    first = layer.attrs.get("data_format") == "channels_first"
    lead = x.shape[:-3] if len(x.shape) == 4 else ()
    shape = (*lead, x.shape[-3], h, w) if first else (*lead, h, w, x.shape[-1])
    return op(ev, "torch.nn.functional.interpolate", (x,), TensorValue(shape, "float32"))


def lambda_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    fn = layer.attrs.get("function")
    extra = layer.attrs.get("arguments") or {}
    return ev.call(fn, args, dict(extra) if isinstance(extra, dict) else {})


def identity_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    return args[0]


def _input_layer_children(a: KArgs) -> dict[str, Any]:
    """InputLayer(shape=...) (Sequential's first element): holds the symbolic tensor Sequential starts from."""
    declared = kstate(a.owner).declared_input  # InputLayer(input_shape=...), the legacy spelling
    shape = a.shape if a.shape is not None else declared[1:] if declared is not None else None
    batch_shape = a.batch_shape
    if batch_shape is not None and isinstance(batch_shape, (tuple, list)):
        t = make_input(tuple(batch_shape[1:]), a.dtype, batch_shape[0], a.ev.current_ref)
    else:
        t = make_input(shape, a.dtype, a.batch_size, a.ev.current_ref)
    a.owner.attrs["_keras_tensor"] = t
    return {}


register(
    KerasLayerSpec("Dense", f"units, activation=None, use_bias=True, {INITIALIZERS}, lora_rank=None, "
                   "lora_alpha=None, **kwargs", dense_weights, dense_call),
    KerasLayerSpec("EinsumDense", f"equation, output_shape, activation=None, bias_axes=None, {INITIALIZERS}, "
                   "lora_rank=None, lora_alpha=None, **kwargs", einsum_dense_weights, einsum_dense_call),
    KerasLayerSpec("Embedding", "input_dim, output_dim, embeddings_initializer='uniform', "
                   "embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False, weights=None, "
                   "lora_rank=None, lora_alpha=None, **kwargs", embedding_weights, embedding_call),
    KerasLayerSpec("Activation", "activation, **kwargs", call=activation_call),
    KerasLayerSpec("ReLU", "max_value=None, negative_slope=0.0, threshold=0.0, **kwargs",
                   call=_same("torch.nn.functional.relu")),
    KerasLayerSpec("LeakyReLU", "negative_slope=0.3, **kwargs", call=_same("torch.nn.functional.leaky_relu")),
    KerasLayerSpec("ELU", "alpha=1.0, **kwargs", call=_same("torch.nn.functional.elu")),
    KerasLayerSpec("Softmax", "axis=-1, **kwargs", call=_same("torch.nn.functional.softmax")),
    KerasLayerSpec("PReLU", "alpha_initializer='Zeros', alpha_regularizer=None, alpha_constraint=None, "
                   "shared_axes=None, **kwargs", prelu_weights, _same("torch.nn.functional.prelu")),
    KerasLayerSpec("Dropout", "rate, noise_shape=None, seed=None, **kwargs", call=dropout_call),
    KerasLayerSpec("SpatialDropout1D", "rate, seed=None, **kwargs", call=dropout_call),
    KerasLayerSpec("SpatialDropout2D", "rate, data_format=None, seed=None, **kwargs", call=dropout_call),
    KerasLayerSpec("SpatialDropout3D", "rate, data_format=None, seed=None, **kwargs", call=dropout_call),
    KerasLayerSpec("AlphaDropout", "rate, noise_shape=None, seed=None, **kwargs", call=dropout_call),
    KerasLayerSpec("GaussianDropout", "rate, seed=None, **kwargs", call=dropout_call),
    KerasLayerSpec("GaussianNoise", "stddev, seed=None, **kwargs", call=_same("torch.add")),
    KerasLayerSpec("ActivityRegularization", "l1=0.0, l2=0.0, **kwargs", call=identity_call),
    KerasLayerSpec("Masking", "mask_value=0.0, **kwargs", call=identity_call),
    KerasLayerSpec("Identity", "**kwargs", call=identity_call),
    KerasLayerSpec("Flatten", "data_format=None, **kwargs", call=flatten_call),
    KerasLayerSpec("Reshape", "target_shape, **kwargs", call=reshape_call, min_rank=1),  # the batch
    KerasLayerSpec("Permute", "dims, **kwargs", call=permute_call),
    KerasLayerSpec("RepeatVector", "n, **kwargs", call=repeat_vector_call, min_rank=2),
    KerasLayerSpec("Rescaling", "scale, offset=0.0, **kwargs", call=rescaling_call),
    KerasLayerSpec("CategoryEncoding", "num_tokens=None, output_mode='multi_hot', sparse=False, **kwargs",
                   call=category_encoding_call),
    *(KerasLayerSpec(name, f"{sig}, **kwargs", call=augmentation_call) for name, sig in (
        ("RandomFlip", "mode='horizontal_and_vertical', seed=None"),
        ("RandomRotation", "factor, fill_mode='reflect', interpolation='bilinear', seed=None, fill_value=0.0"),
        ("RandomZoom", "height_factor, width_factor=None, fill_mode='reflect', interpolation='bilinear', seed=None, "
                       "fill_value=0.0"),
        ("RandomTranslation", "height_factor, width_factor, fill_mode='reflect', interpolation='bilinear', "
                              "seed=None, fill_value=0.0"),
        ("RandomContrast", "factor, seed=None"), ("RandomBrightness", "factor, value_range=(0, 255), seed=None"),
        ("RandomGrayscale", "factor=0.5, data_format=None, seed=None"), ("RandomHue", "factor, value_range=(0, 255), seed=None"),
        ("RandomSaturation", "factor, value_range=(0, 255), seed=None"))),
    *(KerasLayerSpec(name, f"height, width, {extra}data_format=None, **kwargs", call=resize_call) for name, extra in (
        ("Resizing", "interpolation='bilinear', crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, "
                     "fill_mode='constant', fill_value=0.0, antialias=False, "),
        ("RandomCrop", "seed=None, "), ("CenterCrop", ""))),
    KerasLayerSpec("Lambda", "function, output_shape=None, mask=None, arguments=None, **kwargs", call=lambda_call),
    KerasLayerSpec("InputLayer", "shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, "
                   "input_tensor=None, optional=False, **kwargs", call=identity_call,
                   children=_input_layer_children),
)
