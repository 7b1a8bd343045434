"""`keras.ops`, `keras.activations` and the `tf.*` tensor functions, as the torch frontend's.

Each entry maps a Keras / TensorFlow function onto a torch function of the torch frontend, with
its arguments renamed (`axis` -> `dim`, `keepdims` -> `keepdim`...), so shapes, dtypes and the
memory tape come from one implementation. On symbolic tensors (functional code) the call is
recorded as a node of the graph (layer.symbolic_apply).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, Kwargs, ModuleValue, NativeFunction, Unknown
from vramlint.frontends.keras.symbolic import KerasTensor, has_symbolic, keras_dtype, symbolic_apply
from vramlint.frontends.torch.tensors import TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

Adapter = Callable[["Evaluator", Args, Kwargs], tuple[Args, Kwargs]]

RENAMES = {"axis": "dim", "keepdims": "keepdim", "x1": "input", "x2": "other", "perm": "dims", "axes": "dims"}


def _renamed(ev: Evaluator, a: Args, k: Kwargs) -> tuple[Args, Kwargs]:
    return a, {RENAMES.get(key, key): v for key, v in k.items() if key not in ("name",)}


def _transpose(ev: Evaluator, a: Args, k: Kwargs) -> tuple[Args, Kwargs]:
    a, k = _renamed(ev, a, k)
    x = a[0]
    dims = a[1] if len(a) > 1 else k.pop("dims", None)
    if dims is None and isinstance(x, TensorValue) and isinstance(x.shape, tuple):
        dims = tuple(reversed(range(len(x.shape))))
    return (x, tuple(dims) if isinstance(dims, (list, tuple)) else dims), {}


def _reduce(ev: Evaluator, a: Args, k: Kwargs) -> tuple[Args, Kwargs]:
    """tf.reduce_mean(x, axis=None, keepdims=False) / ops.mean(x, axis=None, keepdims=False)."""
    a, k = _renamed(ev, a, k)
    if len(a) > 1:
        k["dim"] = a[1]
        a = a[:1]
    if len(a) > 2:
        k["keepdim"] = a[2]
    if k.get("dim") is None:
        k.pop("dim", None)
    elif isinstance(k["dim"], list):
        k["dim"] = tuple(k["dim"])
    return a, k


def _softmax(ev: Evaluator, a: Args, k: Kwargs) -> tuple[Args, Kwargs]:
    a, k = _renamed(ev, a, k)
    if len(a) > 1:
        k["dim"] = a[1]
        a = a[:1]
    k.setdefault("dim", -1)
    return a, k


# keras.ops name -> (torch function, adapter)
KERAS_OPS: dict[str, tuple[str, Adapter]] = {
    "matmul": ("torch.matmul", _renamed), "dot": ("torch.matmul", _renamed), "einsum": ("torch.einsum", _renamed),
    "add": ("torch.add", _renamed), "subtract": ("torch.sub", _renamed), "multiply": ("torch.mul", _renamed),
    "divide": ("torch.div", _renamed), "true_divide": ("torch.div", _renamed), "power": ("torch.pow", _renamed),
    "maximum": ("torch.maximum", _renamed), "minimum": ("torch.minimum", _renamed),
    "negative": ("torch.neg", _renamed), "abs": ("torch.abs", _renamed), "absolute": ("torch.abs", _renamed),
    "square": ("torch.square", _renamed), "sqrt": ("torch.sqrt", _renamed), "rsqrt": ("torch.rsqrt", _renamed),
    "exp": ("torch.exp", _renamed), "log": ("torch.log", _renamed), "sin": ("torch.sin", _renamed),
    "cos": ("torch.cos", _renamed), "tanh": ("torch.tanh", _renamed), "sigmoid": ("torch.sigmoid", _renamed),
    "erf": ("torch.erf", _renamed), "clip": ("torch.clamp", _renamed), "where": ("torch.where", _renamed),
    "relu": ("torch.relu", _renamed), "gelu": ("torch.nn.functional.gelu", _renamed),
    "silu": ("torch.nn.functional.silu", _renamed), "swish": ("torch.nn.functional.silu", _renamed),
    "elu": ("torch.nn.functional.elu", _renamed), "selu": ("torch.nn.functional.selu", _renamed),
    "softplus": ("torch.nn.functional.softplus", _renamed), "leaky_relu": ("torch.nn.functional.leaky_relu", _renamed),
    "relu6": ("torch.nn.functional.relu6", _renamed),
    "softmax": ("torch.softmax", _softmax), "log_softmax": ("torch.log_softmax", _softmax),
    "mean": ("torch.mean", _reduce), "sum": ("torch.sum", _reduce), "max": ("torch.amax", _reduce),
    "min": ("torch.amin", _reduce), "prod": ("torch.prod", _reduce), "var": ("torch.var", _reduce),
    "std": ("torch.std", _reduce), "argmax": ("torch.argmax", _reduce), "argmin": ("torch.argmin", _reduce),
    "reshape": ("torch.reshape", _renamed), "transpose": ("torch.permute", _transpose),
    "concatenate": ("torch.cat", _renamed), "stack": ("torch.stack", _renamed),
    "expand_dims": ("torch.unsqueeze", _renamed), "squeeze": ("torch.squeeze", _renamed),
    "tile": ("torch.tile", _renamed), "repeat": ("torch.repeat_interleave", _renamed),
    "arange": ("torch.arange", _renamed), "zeros": ("torch.zeros", _renamed), "ones": ("torch.ones", _renamed),
    "zeros_like": ("torch.zeros_like", _renamed), "ones_like": ("torch.ones_like", _renamed),
    "broadcast_to": ("torch.expand", _renamed), "tril": ("torch.tril", _renamed), "triu": ("torch.triu", _renamed), "flip": ("torch.flip", _renamed),
    "one_hot": ("torch.nn.functional.one_hot", _renamed), "logical_not": ("torch.logical_not", _renamed),
    "equal": ("torch.eq", _renamed), "not_equal": ("torch.ne", _renamed), "greater": ("torch.gt", _renamed),
    "less": ("torch.lt", _renamed), "floor": ("torch.floor", _renamed), "round": ("torch.round", _renamed),
}

# tf.* and tf.math / tf.nn names -> keras.ops names
TF_NAMES = {
    "reduce_mean": "mean", "reduce_sum": "sum", "reduce_max": "max", "reduce_min": "min", "reduce_prod": "prod",
    "concat": "concatenate", "range": "arange", "math.reduce_mean": "mean", "nn.relu": "relu",
    "nn.softmax": "softmax", "nn.gelu": "gelu", "nn.sigmoid": "sigmoid", "nn.tanh": "tanh", "nn.silu": "silu",
    "nn.swish": "silu", "nn.elu": "elu", "nn.selu": "selu", "nn.leaky_relu": "leaky_relu", "nn.relu6": "relu6",
    "nn.softplus": "softplus", "nn.log_softmax": "log_softmax", "math.sqrt": "sqrt", "math.exp": "exp",
    "math.log": "log", "math.square": "square", "math.tanh": "tanh", "math.sigmoid": "sigmoid",
    "math.reduce_sum": "sum", "math.reduce_max": "max", "math.maximum": "maximum", "math.minimum": "minimum",
    "math.rsqrt": "rsqrt", "math.erf": "erf", "math.abs": "abs", "math.multiply": "multiply", "math.add": "add",
    "math.subtract": "subtract", "math.divide": "divide", "math.pow": "power", "linalg.matmul": "matmul",
}


def _torch_fn(ev: Evaluator, dotted: str) -> Any:
    mod_name, _, attr = dotted.rpartition(".")
    mod = ev.loader.import_module(mod_name, None)
    if not isinstance(mod, ModuleValue):
        return mod
    return ev.protocol.getattr(mod, attr)


def keras_op(name: str, prefix: str = "keras.ops") -> NativeFunction:
    torch_name, adapt = KERAS_OPS[name]

    def plain(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        args, kwargs = adapt(ev, a, k)
        fn = _torch_fn(ev, torch_name)
        if isinstance(fn, Unknown) and args and isinstance(args[0], TensorValue):
            # not a torch function the stubs have: the Tensor method of the same name
            method = args[0].get_attribute(ev, torch_name.rsplit(".", 1)[-1])
            if isinstance(method, NativeFunction):
                return ev.call(method, args[1:], kwargs)
        return ev.call(fn, args, kwargs)

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        if has_symbolic((a, k)):
            return symbolic_apply(ev, plain, a, k)
        return plain(ev, a, k)

    return NativeFunction(f"{prefix}.{name}", impl)


def _shape(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    x = a[0] if a else k.get("x")
    if isinstance(x, KerasTensor):
        return x.keras_shape()
    if isinstance(x, TensorValue):
        return x.shape if isinstance(x.shape, Unknown) else tuple(x.shape)
    return Unknown("shape of a non-tensor", ev.current_ref)


def _cast(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    x = a[0] if a else k.get("x")
    dtype = a[1] if len(a) > 1 else k.get("dtype")

    def plain(ev2: Evaluator, a2: Args, k2: Kwargs) -> Any:
        t = a2[0]
        if not isinstance(t, TensorValue):
            return t
        out = TensorValue(t.shape, keras_dtype(dtype))
        return ev2.tape.call(ev2, "Tensor.to", (t,), {}, lambda: out) if ev2.tape is not None else out

    return symbolic_apply(ev, plain, (x,), {}) if has_symbolic(x) else plain(ev, (x,), {})


def _convert(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    x = a[0] if a else k.get("x")
    return x if isinstance(x, TensorValue) else ev.call(_torch_fn(ev, "torch.as_tensor"), (x,), {})


def ops_namespace(prefix: str = "keras.ops") -> dict[str, Any]:
    ns: dict[str, Any] = {name: keras_op(name, prefix) for name in KERAS_OPS}
    ns["shape"] = NativeFunction(f"{prefix}.shape", _shape)
    ns["cast"] = NativeFunction(f"{prefix}.cast", _cast)
    ns["convert_to_tensor"] = NativeFunction(f"{prefix}.convert_to_tensor", _convert)
    return ns


def _random(name: str) -> NativeFunction:
    """keras.random.normal(shape, ...) / uniform / truncated_normal: a float tensor of that shape."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        shape = a[0] if a else k.get("shape")
        dtype = a[3] if name != "uniform" and len(a) > 3 else k.get("dtype")
        if isinstance(shape, (tuple, list)) and has_symbolic(list(shape)):
            return Unknown(f"keras.random.{name} of a symbolic shape", ev.current_ref)
        return ev.call(_torch_fn(ev, "torch.zeros"), (tuple(shape) if isinstance(shape, list) else shape,),
                       {"dtype": keras_dtype(dtype)} if dtype is not None else {})

    return NativeFunction(f"keras.random.{name}", impl)


def random_namespace() -> dict[str, Any]:
    return {name: _random(name) for name in ("normal", "uniform", "truncated_normal")}


ACTIVATION_NAMES = ("relu", "gelu", "sigmoid", "tanh", "softmax", "silu", "swish", "elu", "selu", "softplus",
                    "leaky_relu", "relu6", "log_softmax")


def activations_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {name: keras_op(name, "keras.activations") for name in ACTIVATION_NAMES}
    ns["linear"] = NativeFunction("keras.activations.linear", lambda ev, a, k: a[0] if a else k.get("x"))
    ns["get"] = NativeFunction("keras.activations.get", lambda ev, a, k: ns.get(a[0], a[0]) if a else None)
    return ns


def tf_functions(prefix: str) -> dict[str, Any]:
    """The functions of `tf` (prefix "") or `tf.nn` / `tf.math` / `tf.linalg` (prefix "nn"...)."""
    ns: dict[str, Any] = {}
    for tf_name, keras_name in TF_NAMES.items():
        mod, _, fn = tf_name.rpartition(".")
        if mod == prefix:
            ns[fn] = keras_op(keras_name, f"tf.{prefix}" if prefix else "tf")
    if prefix in ("", "math"):
        for name in ("matmul", "add", "multiply", "subtract", "divide", "maximum", "minimum", "sqrt", "exp",
                     "square", "abs", "sigmoid", "tanh", "einsum", "reshape", "transpose", "stack", "expand_dims",
                     "squeeze", "tile", "zeros", "ones", "zeros_like", "ones_like", "where", "argmax", "equal"):
            ns.setdefault(name, keras_op(name, f"tf.{prefix}" if prefix else "tf"))
        ns["shape"] = NativeFunction("tf.shape", _shape)
        ns["cast"] = NativeFunction("tf.cast", _cast)
        ns["convert_to_tensor"] = NativeFunction("tf.convert_to_tensor", _convert)
    return ns
