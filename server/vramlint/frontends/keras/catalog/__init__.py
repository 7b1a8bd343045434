"""The keras.layers catalog: one KerasLayerSpec per layer class.

A spec is data (the constructor's signature as in Keras 3) plus two small rules:
- `weights(args, input_shape)`: the weights build() creates, as (name, shape, trainable), from
  the bound constructor arguments and the input shape (None for the batch);
- `call(ev, layer, args, kwargs)`: the output, by Keras's shape rules, with the ops it runs
  recorded under the names of the torch functions whose memory the memory model knows
  (`op(...)`): a Dense is a matmul plus a bias add, a Conv2D a convolution...
Families: `core.py` (Dense, Embedding, activations, dropout, reshaping), `conv.py`,
`pooling.py` (pooling, upsampling, padding, cropping), `norm.py`, `recurrent.py` (SimpleRNN,
LSTM, GRU, Bidirectional, TimeDistributed), `attention.py`, `merge.py` (Add, Concatenate...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import (
    Args,
    ClassValue,
    Instance,
    Kwargs,
    NativeFunction,
    Unknown,
    UnknownValueError,
)
from vramlint.frontends.keras.layer import (
    UNBUILT,
    KerasLayerNative,
    add_weight,
    base_kwargs,
    kstate,
)
from vramlint.frontends.torch.catalog import bind_arguments, parse_signature
from vramlint.frontends.torch.tensors import TensorValue, shape_text

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

Weight = tuple[str, tuple[Any, ...], bool]  # name, shape, trainable
WeightsRule = Callable[["KArgs", Any], list[Weight]]
CallRule = Callable[["Evaluator", Instance, Args, Kwargs], Any]
ChildrenRule = Callable[["KArgs"], dict[str, Any]]


@dataclass(frozen=True)
class KerasLayerSpec:
    name: str
    signature: str  # after self; every spec ends with **kwargs (the base layer's name=, dtype=...)
    weights: WeightsRule | None = None
    call: CallRule | None = None
    base: str = "Layer"
    children: ChildrenRule | None = None  # sublayers made by the constructor (wrappers)
    aliases: tuple[str, ...] = ()  # legacy names (Convolution2D, MaxPool2D...)
    # Keras's input_spec (ndim / min_ndim): an input of a lower rank is its ValueError, checked
    # before the rules run (they index the input's last axes).
    min_rank: int = 0


class KArgs:
    """Bound constructor arguments, readable as attributes."""

    def __init__(self, ev: Evaluator, spec: KerasLayerSpec, values: dict[str, Any], owner: Instance) -> None:
        self.ev = ev
        self.spec = spec
        self.values = values
        self.owner = owner  # the layer being made

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def size(self, v: Any, what: str) -> Any:
        """A size argument: a positive int, or raise on Unknown (the weights are unknown then)."""
        if isinstance(v, Unknown):
            raise UnknownValueError(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.ev.raise_error("TypeError", f"{self.spec.name}: {what} must be an int, got {v!r}")
        if v < 0:
            raise self.ev.raise_error("ValueError", f"{self.spec.name}: {what} must be non-negative, got {v}")
        return v

    def sizes(self, v: Any, n: int, what: str) -> tuple[Any, ...]:
        if isinstance(v, Unknown):
            raise UnknownValueError(v)
        t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
        if len(t) != n:
            raise self.ev.raise_error("ValueError", f"{self.spec.name}: {what} must have {n} values, got {v!r}")
        return tuple(self.size(x, what) for x in t)

    def make(self, layer: str, *args: Any, **kwargs: Any) -> Any:
        """A sublayer of the catalog, built as if the code had called it."""
        return self.ev.protocol.instantiate(self.ev.loader.frontend_state["keras"][layer], args, kwargs)


CATALOG: dict[str, KerasLayerSpec] = {}


def register(*specs: KerasLayerSpec) -> None:
    for s in specs:
        CATALOG[s.name] = s


class KerasCatalogNative(KerasLayerNative):
    def __init__(self, spec: KerasLayerSpec) -> None:
        self.spec = spec


def spec_name(layer: Instance) -> str:
    """The catalog class a layer is or derives from: Conv2D for `class MyConv(layers.Conv2D)`."""
    return next((k.native.spec.name for k in layer.cls.mro if isinstance(k.native, KerasCatalogNative)),
                layer.cls.name)


def _bound(ev: Evaluator, layer: Instance) -> KArgs:
    native = next(k.native for k in layer.cls.mro if isinstance(k.native, KerasCatalogNative))
    return KArgs(ev, native.spec, dict(layer.attrs), layer)


def _init(spec: KerasLayerSpec) -> NativeFunction:
    sig = parse_signature(spec.signature)

    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst: Instance = a[0]
        values = bind_arguments(ev, sig, a, k, f"keras.layers.{spec.name}()")
        extra = values.pop("kwargs", {})
        base_kwargs(ev, inst, extra)
        inst.attrs.update(values)
        if spec.children is not None:
            try:
                children = spec.children(KArgs(ev, spec, values, inst))
            except UnknownValueError as err:
                ev.record(err.unknown)
                children = {}
            for name, child in children.items():
                inst.attrs.pop(name, None)
                kstate(inst).modules[name] = child
        return None

    return NativeFunction(f"{spec.name}.__init__", init)


def _build(spec: KerasLayerSpec) -> NativeFunction:
    def build(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        layer: Instance = a[0]
        st = kstate(layer)
        st.built = True
        st.params.pop(UNBUILT, None)
        if spec.weights is None:
            return None
        shape = a[1] if len(a) > 1 else k.get("input_shape")
        _check_rank(ev, spec, shape)
        args = _bound(ev, layer)
        try:
            weights = spec.weights(args, shape)
        except UnknownValueError as err:
            bad = TensorValue(Unknown(f"{spec.name}: {err.unknown.reason}", err.unknown.ref or ev.current_ref))
            bad.is_param = True
            st.params["<unknown>"] = bad
            return None
        for name, wshape, trainable in weights:
            add_weight(ev, layer, wshape, name, trainable)
        return None

    return NativeFunction(f"{spec.name}.build", build)


def _call(spec: KerasLayerSpec) -> NativeFunction:
    def call(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        if spec.call is None:
            return Unknown(f"keras.layers.{spec.name} is not modelled when called", ev.current_ref)
        if len(a) < 2 and "inputs" not in k:
            return Unknown(f"{spec.name} called without an input", ev.current_ref)
        args = a[1:] if len(a) > 1 else (k["inputs"],)
        kwargs = {x: v for x, v in k.items() if x != "inputs"}
        _check_rank(ev, spec, args[0])
        try:
            return spec.call(ev, a[0], args, kwargs)
        except UnknownValueError as err:
            return err.unknown

    return NativeFunction(f"{spec.name}.call", call)


def _check_rank(ev: Evaluator, spec: KerasLayerSpec, inputs: Any) -> None:
    """Raise Keras's ValueError if an input (a tensor or a shape, or a list of them) has fewer
    than `spec.min_rank` dimensions."""
    if not spec.min_rank:
        return
    many = isinstance(inputs, (list, tuple)) and bool(inputs) and \
        all(isinstance(x, (TensorValue, list, tuple)) for x in inputs)
    for x in inputs if many else (inputs,):
        shape = x.shape if isinstance(x, TensorValue) else x
        if isinstance(shape, (tuple, list)) and len(shape) < spec.min_rank:
            raise shape_mismatch(ev, spec.name, f"expected an input of rank {spec.min_rank} or more, "
                                                f"got shape {list(shape)}")


def build_catalog_classes(layer_class: ClassValue) -> dict[str, ClassValue]:
    """ClassValues for every spec (bases first), made once per loader."""
    from vramlint.frontends.keras.catalog import (  # noqa: F401  (registers the specs)
        attention,
        conv,
        core,
        merge,
        norm,
        pooling,
        recurrent,
    )

    classes: dict[str, ClassValue] = {"Layer": layer_class}

    def get(name: str) -> ClassValue:
        if name in classes:
            return classes[name]
        spec = CATALOG[name]
        base = get(spec.base)
        ns: dict[str, Any] = {"__init__": _init(spec), "build": _build(spec), "call": _call(spec)}
        cls = ClassValue(name, (base,), ns, "keras.layers", native=KerasCatalogNative(spec))
        classes[name] = cls
        return cls

    for name in list(CATALOG):
        get(name)
    for spec in list(CATALOG.values()):
        for alias in spec.aliases:
            classes[alias] = classes[spec.name]
    return classes


# ---------------------------------------------------------------------- helpers for the rules
def op(ev: Evaluator, name: str, args: tuple[Any, ...], out: Any, kwargs: dict[str, Any] | None = None) -> Any:
    """`out`, recorded on the memory tape as the torch function `name` applied to `args`."""
    if ev.tape is not None:
        return ev.tape.call(ev, name, args, kwargs or {}, lambda: out)
    return out


def tensor_in(ev: Evaluator, v: Any, layer: str) -> TensorValue:
    """The layer's input as a tensor with a known rank, or raise (the output is unknown then)."""
    if isinstance(v, TensorValue) and isinstance(v.shape, tuple):
        return v
    if isinstance(v, TensorValue) and isinstance(v.shape, Unknown):
        raise UnknownValueError(v.shape)
    if isinstance(v, Unknown):
        raise UnknownValueError(v)
    raise ev.raise_error("TypeError", f"{layer}: the input is not a tensor ({type(v).__name__})")


def weight(layer: Instance, name: str) -> TensorValue | None:
    t = kstate(layer).params.get(name)
    return t if isinstance(t, TensorValue) else None


def weights_of(layer: Instance, *names: str) -> tuple[TensorValue, ...]:
    return tuple(t for t in (weight(layer, n) for n in names) if t is not None)


def shape_mismatch(ev: Evaluator, layer: str, message: str) -> Any:
    return ev.raise_error("ValueError", f"shape mismatch in {layer}: {message}")


def compute_dtype(layer: Instance, x: TensorValue) -> str:
    return x.dtype if x.dtype in ("float16", "bfloat16", "float64") else (kstate(layer).dtype or "float32")


ACTIVATIONS = {
    "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax", "gelu": "gelu",
    "swish": "silu", "silu": "silu", "elu": "elu", "selu": "selu", "softplus": "softplus",
    "softsign": "softsign", "leaky_relu": "leaky_relu", "relu6": "relu6", "exponential": "exp",
    "hard_sigmoid": "hardsigmoid", "hard_silu": "hardswish", "hard_swish": "hardswish", "mish": "mish",
    "log_softmax": "log_softmax", "linear": None, "celu": "celu", "glu": "glu", "tanh_shrink": "tanhshrink",
}


def activate(ev: Evaluator, x: Any, activation: Any) -> Any:
    """A layer's `activation=`: a name, None, or a function (keras.activations.relu, tf.nn.relu, the code's)."""
    if activation is None or not isinstance(x, TensorValue):
        return x
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ev.raise_error("ValueError", f"Unknown activation function: '{activation}'")
        fn = ACTIVATIONS[activation]
        if fn is None:
            return x
        out = TensorValue(x.shape, x.dtype)
        return op(ev, f"torch.nn.functional.{fn}", (x,), out)
    if isinstance(activation, Unknown):
        return activation
    return ev.call(activation, (x,), {})


def conv_length(n: Any, k: int, padding: str, stride: int, dilation: int = 1) -> Any:
    """keras.src.utils.conv_utils / ops.operation_utils: the output length of a convolution or pooling."""
    if not isinstance(n, int):
        return n
    eff = (k - 1) * dilation + 1
    if padding == "same":
        return (n + stride - 1) // stride
    if padding == "causal":
        return (n + stride - 1) // stride if stride > 1 else n
    return (n - eff) // stride + 1


def deconv_length(n: Any, k: int, padding: str, stride: int, output_padding: Any = None, dilation: int = 1) -> Any:
    """keras.src.backend.common.backend_utils: the output length of a transposed convolution."""
    if not isinstance(n, int):
        return n
    k = k + (k - 1) * (dilation - 1)
    if output_padding is None:
        if padding == "valid":
            return n * stride + max(k - stride, 0)
        return n * stride
    pad = k // 2 if padding == "same" else 0
    return (n - 1) * stride + k - 2 * pad + output_padding


def channels_first(ev: Evaluator, x: TensorValue, name: str = "Tensor.contiguous") -> TensorValue:
    """A channels-last input as the kernels want it: Keras's torch backend permutes it to channels-first
    and copies it (`permute(...).contiguous()`), and the convolution or pooling keeps that copy."""
    assert isinstance(x.shape, tuple)
    n = len(x.shape)
    perm = (0, n - 1, *range(1, n - 1))
    shape = tuple(x.shape[d] for d in perm)
    view = op(ev, "torch.permute", (x, perm), TensorValue(shape, x.dtype))
    return op(ev, name, (view,), TensorValue(shape, x.dtype))  # type: ignore[no-any-return]


def channels_last(ev: Evaluator, y: TensorValue) -> TensorValue:
    """A channels-first result permuted back (a view)."""
    assert isinstance(y.shape, tuple)
    n = len(y.shape)
    perm = (0, *range(2, n), 1)
    return op(ev, "torch.permute", (y, perm), TensorValue(tuple(y.shape[d] for d in perm), y.dtype))  # type: ignore[no-any-return]


def kernel_for_torch(ev: Evaluator, kernel: TensorValue, transpose: bool = False) -> TensorValue:
    """A Keras kernel (*k, in, out) as torch's (out, in, *k) (transposed: (in, out, *k)): a permuted
    copy, which the convolution keeps (Keras's torch backend)."""
    assert isinstance(kernel.shape, tuple)
    n = len(kernel.shape)
    perm = (n - 1, n - 2, *range(n - 2)) if not transpose else (n - 2, n - 1, *range(n - 2))
    shape = tuple(kernel.shape[d] for d in perm)
    view = op(ev, "torch.permute", (kernel, perm), TensorValue(shape, kernel.dtype))
    return op(ev, "Tensor.contiguous", (view,), TensorValue(shape, kernel.dtype))  # type: ignore[no-any-return]


def ones(n: int) -> str:
    """The default of strides= and dilation_rate= in a signature: 1, or (1, 1)..."""
    return "1" if n == 1 else f"({', '.join(['1'] * n)})"


def ints(ev: Evaluator, layer: Instance, key: str, n: int, default: Any = None, minimum: int = 1) -> tuple[Any, ...]:
    """A layer's int-or-tuple argument (kernel_size=3, strides=(2, 2)) as n values; the ValueError
    Keras raises (standardize_tuple) for the wrong count or a value below `minimum`."""
    v = layer.attrs.get(key, default)
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    for d in t:
        if isinstance(d, Unknown):
            raise UnknownValueError(d)
    if len(t) != n or any(isinstance(d, bool) or not isinstance(d, int) or d < minimum for d in t):
        raise ev.raise_error("ValueError", f"{layer.cls.name}: the `{key}` argument must be a tuple of {n} integers "
                                           f"of at least {minimum}, got {key}={v!r}")
    return t


def spatial_of(ev: Evaluator, layer: Instance, x: TensorValue, n: int, lead: int = 1) -> tuple[bool, list[Any]]:
    """(channels first?, the n spatial sizes) of an input with `lead` leading axes (the batch; also
    time for ConvLSTM), or a shape mismatch when its rank is not n + lead + 1."""
    assert isinstance(x.shape, tuple)
    if len(x.shape) != n + lead + 1:
        raise shape_mismatch(ev, layer.cls.name, f"expected an input of rank {n + lead + 1}, got {shape_text(x.shape)}")
    first = layer.attrs.get("data_format") == "channels_first"
    return first, list(x.shape[lead + 1:] if first else x.shape[lead:-1])


def channel_axis(data_format: Any, rank: int) -> int:
    return 1 if data_format == "channels_first" else rank - 1
