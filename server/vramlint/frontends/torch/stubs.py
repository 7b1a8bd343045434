"""The `torch` package as the evaluator sees it: native stubs, never torch's own source.

`torch.nn.<Layer>` resolves to the catalog; tensor factories and the tensor functions model
construction code uses compute shapes (and small values); anything else is an Unknown naming
the missing API, so gaps show up in results instead of as wrong numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import NoOp, _identity_decorator
from vramlint.engine.values import (
    MISSING,
    Args,
    ClassMethod,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Partial,
    StateFreeFunction,
    StaticMethod,
    Unknown,
    Value,
)
from vramlint.frontends.torch import tensors as T
from vramlint.frontends.torch.catalog import CATALOG, build_catalog_classes
from vramlint.frontends.torch.distributed import DISTRIBUTED_MODULES, distributed_module, mesh_names
from vramlint.frontends.torch.functional import functional_attr
from vramlint.frontends.torch.module import make_module_class, make_parameter
from vramlint.frontends.torch.shapes import mismatch
from vramlint.frontends.torch.tensors import DTYPE_ALIASES, DTYPES, TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader



class _TensorClassNative:
    def __init__(self, parameter: bool) -> None:
        self.parameter = parameter

    def instancecheck(self, ev: Evaluator, v: Any) -> Any:
        if isinstance(v, Unknown):
            return v
        return isinstance(v, TensorValue) and (v.is_param or not self.parameter)

    def construct(self, ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        if self.parameter:
            return make_parameter(ev, a[0] if a else k.get("data"), a[1] if len(a) > 1 else k.get("requires_grad", True))
        if len(a) == 1 and isinstance(a[0], (list, tuple)) and not isinstance(a[0], T.TorchSize):
            # torch.Tensor([1.0, 2.0]) is data (float32), torch.Tensor(2, 3) and torch.Tensor(size) sizes
            return T.tensor_from_data(ev, a[0], "float32")
        return _factory_tensor(ev, a, k, "float32")


class _DTypeClassNative:
    """torch.dtype: `isinstance(x, torch.dtype)` (transformers' BitsAndBytesConfig checks it)."""

    def instancecheck(self, ev: Evaluator, v: Any) -> Any:
        return v if isinstance(v, Unknown) else isinstance(v, T.DType)

    def construct(self, ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        raise ev.raise_error("TypeError", "cannot create 'torch.dtype' instances")


def tensor_class(loader: Loader, parameter: bool = False) -> ClassValue:
    classes = torch_classes(loader)
    return classes.parameter if parameter else classes.tensor


@dataclass(frozen=True)
class TorchClasses:
    """The torch frontend's classes, one set per loader (analysed classes subclass them)."""

    module: ClassValue  # nn.Module
    layers: dict[str, ClassValue]  # nn.* by name, "Module" included
    tensor: ClassValue
    parameter: ClassValue


def torch_classes(loader: Loader) -> TorchClasses:
    """This loader's torch classes, made on first use."""
    found: TorchClasses | None = loader.frontend_state.get("torch")
    if found is None:
        module_class = make_module_class(loader.builtins["object"])
        layers = build_catalog_classes(module_class)
        layers["Module"] = module_class
        tensor = ClassValue("Tensor", (loader.builtins["object"],), {}, "torch", native=_TensorClassNative(False))
        param = ClassValue("Parameter", (tensor,), {}, "torch.nn", native=_TensorClassNative(True))
        found = loader.frontend_state["torch"] = TorchClasses(module_class, layers, tensor, param)
    return found


# ---------------------------------------------------------------------- factories
def _factory_tensor(ev: Evaluator, a: Args, k: Kwargs, default_dtype: str) -> Any:
    size = k.get("size", a)
    shape = T.parse_size(ev, size if isinstance(size, (tuple, list)) else (size,))
    dt = T.dtype_name(k.get("dtype"), default_dtype)
    t = TensorValue(shape, dt, requires_grad=k.get("requires_grad") is True)
    return t


def _fill(t: TensorValue, value: Any) -> TensorValue:
    """Give a small tensor filled with a known number its values (see tensors.MAX_CONCRETE)."""
    if isinstance(value, (int, float)) and isinstance(t.shape, tuple):
        n = T.numel(t.shape)
        if isinstance(n, int) and n <= T.MAX_CONCRETE:
            t.data = T._cast([value] * n, t.dtype)
    return t


def _filled(value: Any) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return _fill(_factory_tensor(ev, a, k, "float32"), value)

    return impl


def _as_uniform(t: Any) -> Any:
    return T.UniformTensor(t.shape, t.dtype) if isinstance(t, TensorValue) else t


def _uniform(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """torch.rand: values in [0, 1) (see tensors.UniformTensor)."""
    return _as_uniform(_factory_tensor(ev, a, k, "float32"))


def _full(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    size = a[0] if a else k.get("size")
    fill = a[1] if len(a) > 1 else k.get("fill_value")
    default = "int64" if isinstance(fill, int) and not isinstance(fill, bool) else ("bool" if isinstance(fill, bool) else "float32")
    t = _factory_tensor(ev, (size,), {kk: v for kk, v in k.items() if kk not in ("size", "fill_value")}, default)
    return _fill(t, fill)


def _like(fill: Any) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        src = a[0]
        if not isinstance(src, TensorValue):
            return Unknown("*_like of a non-tensor", ev.current_ref)
        return _fill(TensorValue(src.shape, T.dtype_name(k.get("dtype"), src.dtype)), fill)

    return impl


def _arange(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    from vramlint.engine.evaluator import contains_unknown

    nums = list(a)
    for key in ("start", "end", "step"):
        if key in k:
            nums.append(k[key])
    u = contains_unknown(tuple(nums))
    if u is not None:
        return TensorValue((u,), T.dtype_name(k.get("dtype"), "int64"))
    vals = [x.to_python(ev) if isinstance(x, TensorValue) else x for x in nums]
    if len(vals) == 1:
        start, end, step = 0, vals[0], 1
    elif len(vals) == 2:
        start, end, step = vals[0], vals[1], 1
    else:
        start, end, step = vals[0], vals[1], vals[2]
    if not all(isinstance(x, (int, float)) for x in (start, end, step)) or step == 0:
        return Unknown("arange with non-numeric bounds", ev.current_ref)
    n = max(0, math.ceil((end - start) / step))
    is_int = all(isinstance(x, int) for x in (start, end, step))
    dt = T.dtype_name(k.get("dtype"), "int64" if is_int else "float32")
    data = [start + i * step for i in range(n)] if n <= T.MAX_CONCRETE else None
    return TensorValue((n,), dt, data=T._cast(data, dt) if data is not None else None)


def _linspace(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    start, end = a[0], a[1]
    steps = a[2] if len(a) > 2 else k.get("steps")
    if not isinstance(steps, int) or not all(isinstance(x, (int, float)) for x in (start, end)):
        return TensorValue((steps if isinstance(steps, int) else Unknown("linspace steps", ev.current_ref),), "float32")
    n = steps
    if n <= 0:
        data: list[Any] = []
    elif n == 1:
        data = [float(start)]
    else:
        step = (end - start) / (n - 1)
        # torch fills the two halves from each end for symmetry
        data = [start + step * i if i < n // 2 else end - step * (n - 1 - i) for i in range(n)]
    dt = T.dtype_name(k.get("dtype"), "float32")
    return TensorValue((n,), dt, data=T._cast(data, dt) if n <= T.MAX_CONCRETE else None)


def _tensor(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return T.tensor_from_data(ev, a[0] if a else k.get("data"), k.get("dtype"))


def _outer(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """torch.outer(u, v): u[:, None] * v[None, :] (values kept when both are known)."""
    u, v = (a[0] if a else k.get("input")), (a[1] if len(a) > 1 else k.get("vec2"))
    if not (isinstance(u, TensorValue) and isinstance(v, TensorValue)):
        return Unknown("torch.outer of a non-tensor", ev.current_ref)
    col = T.TENSOR_METHODS["unsqueeze"](ev, u, (1,), {})
    row = T.TENSOR_METHODS["unsqueeze"](ev, v, (0,), {})
    return T.elementwise(ev, "mul", col, row)


def _tensors_arg(ev: Evaluator, v: Any) -> list[TensorValue] | Unknown:
    items = ev.list_of(v)
    if isinstance(items, Unknown):
        return items
    for x in items:
        if not isinstance(x, TensorValue):
            return x if isinstance(x, Unknown) else Unknown("cat/stack of a non-tensor", ev.current_ref)
    return items


def _cat(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    ts = _tensors_arg(ev, a[0] if a else k.get("tensors"))
    if isinstance(ts, Unknown):
        return ts
    dim = a[1] if len(a) > 1 else k.get("dim", 0)
    ts = [t for t in ts if not (isinstance(t.shape, tuple) and t.shape == (0,))] or ts
    if not ts:
        return Unknown("cat of nothing", ev.current_ref)
    first = ts[0]
    if any(isinstance(t.shape, Unknown) for t in ts) or not isinstance(dim, int):
        return TensorValue(Unknown("cat of tensors of unknown shape", ev.current_ref), first.dtype)
    r = len(first.shape)  # type: ignore[arg-type]
    d = dim + r if dim < 0 else dim
    if not 0 <= d < r or any(len(t.shape) != r for t in ts):  # type: ignore[arg-type]
        return mismatch(ev, f"torch.cat along dim {dim} of tensors of shapes {[list(t.shape) for t in ts]}")  # type: ignore[arg-type]
    shape = list(first.shape)  # type: ignore[arg-type]
    total: Any = 0
    for t in ts:
        total = total + t.shape[d]  # type: ignore[index]
    shape[d] = total
    data = None
    if r == 1 and all(t.data is not None for t in ts):
        data = [x for t in ts for x in t.data]  # type: ignore[union-attr]
    dt = first.dtype
    for t in ts[1:]:
        dt = T.promote(dt, t.dtype)
    return TensorValue(tuple(shape), dt, data=data)


def _stack(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    ts = _tensors_arg(ev, a[0] if a else k.get("tensors"))
    if isinstance(ts, Unknown):
        return ts
    if not ts:
        return Unknown("stack of nothing", ev.current_ref)
    dim = a[1] if len(a) > 1 else k.get("dim", 0)
    first = ts[0]
    if isinstance(first.shape, Unknown) or not isinstance(dim, int):
        return TensorValue(Unknown("stack of unknown shapes", ev.current_ref), first.dtype)
    shape = list(first.shape)
    d = dim + len(shape) + 1 if dim < 0 else dim
    if not 0 <= d <= len(shape):
        return mismatch(ev, f"torch.stack along dim {dim} of tensors of shape {shape}")
    shape.insert(d, len(ts))
    dt = first.dtype
    for t in ts[1:]:
        dt = T.promote(dt, t.dtype)
    return TensorValue(tuple(shape), dt)


def _meshgrid(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    ts = _tensors_arg(ev, a[0] if len(a) == 1 and isinstance(a[0], (list, tuple)) else a)
    if isinstance(ts, Unknown):
        return ts
    sizes = [t.shape[0] if isinstance(t.shape, tuple) and t.shape else Unknown("meshgrid", ev.current_ref) for t in ts]
    if k.get("indexing") == "xy" and len(sizes) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    return tuple(TensorValue(tuple(sizes), t.dtype) for t in ts)


def _einsum(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """torch.einsum(equation, *operands): output dims looked up by subscript letter."""
    eq = a[0] if a else k.get("equation")
    ops = list(a[1:])
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = list(ops[0])
    if not isinstance(eq, str) or "..." in eq:
        return Unknown("einsum with an unknown or ellipsis equation", ev.current_ref)
    eq = eq.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops) or not all(isinstance(t, TensorValue) and isinstance(t.shape, tuple) for t in ops):
        return Unknown("einsum operands of unknown shape", ev.current_ref)
    sizes: dict[str, Any] = {}
    for term, t in zip(terms, ops):
        if len(term) != len(t.shape):
            return Unknown(f"einsum term {term!r} does not match a tensor of rank {len(t.shape)}", ev.current_ref)
        for ch, d in zip(term, t.shape):
            if sizes.get(ch, 1) == 1:
                sizes[ch] = d
    if not _:
        rhs = "".join(sorted(ch for ch in sizes if lhs.count(ch) == 1))  # implicit output: letters seen once
    dtype = ops[0].dtype
    for t in ops[1:]:
        dtype = T.promote(dtype, t.dtype)
    return TensorValue(tuple(sizes.get(ch, Unknown(f"einsum output letter {ch}", ev.current_ref)) for ch in rhs), dtype)


def _addmm(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """addmm(input, mat1, mat2): input broadcast to the (n, p) product."""
    bias = a[0] if a else k.get("input")
    prod = T.matmul(ev, a[1] if len(a) > 1 else k.get("mat1"), a[2] if len(a) > 2 else k.get("mat2"))
    return T.elementwise(ev, "add", prod, bias) if isinstance(prod, TensorValue) else prod


def _polar(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """polar(abs, angle) / complex(real, imag): a complex tensor of the broadcast shape."""
    x = T.elementwise(ev, "add", a[0] if a else k.get("abs", k.get("real")),
                      a[1] if len(a) > 1 else k.get("angle", k.get("imag")))
    if not isinstance(x, TensorValue):
        return x
    return TensorValue(x.shape, "complex128" if x.dtype == "float64" else "complex64")


def _raise(ev: Evaluator, kind: str, message: str) -> Any:
    raise ev.raise_error(kind, message)


def _baddbmm(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """baddbmm(input, batch1, batch2, *, beta, alpha): input broadcast to the batched product."""
    bias = a[0] if a else k.get("input")
    prod = T.matmul(ev, a[1] if len(a) > 1 else k.get("batch1"), a[2] if len(a) > 2 else k.get("batch2"))
    return T.elementwise(ev, "add", prod, bias) if isinstance(prod, TensorValue) else prod


def _logical(op: str) -> Callable[..., Any]:
    """logical_and/or/xor: booleans of the broadcast shape (values where both are known)."""
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        x, y = (a[0] if a else k.get("input")), (a[1] if len(a) > 1 else k.get("other"))
        return T.elementwise(ev, op, T.cast_bool(ev, x), T.cast_bool(ev, y), out_dtype="bool")

    return impl


def _checkpoint(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """checkpoint(fn, *args): the same result as fn(*args) (it only changes what backward keeps)."""
    if not a:
        return Unknown("checkpoint() without a function", ev.current_ref)
    kwargs = {key: v for key, v in k.items() if key not in ("use_reentrant", "preserve_rng_state",
                                                             "context_fn", "determinism_check", "debug")}
    if ev.tape is not None:
        return ev.tape.checkpointed((*a[1:], *kwargs.values(), *_bound_arguments(a[0])),
                                    lambda: ev.call(a[0], a[1:], kwargs))
    return ev.call(a[0], a[1:], kwargs)


def _bound_arguments(fn: Any) -> tuple[Any, ...]:
    """The arguments a `functools.partial` given to checkpoint binds: the checkpoint holds the
    function until backward recomputes it, so they stay alive like its own inputs
    (transformers checkpoints `partial(layer.__call__, **kwargs)`: rotary cos/sin, masks)."""
    return (*fn.args, *fn.kwargs.values()) if isinstance(fn, Partial) else ()


def _checkpoint_sequential(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    functions, x = (a[0] if a else k.get("functions")), (a[2] if len(a) > 2 else k.get("input"))
    layers = ev.protocol.iterate(functions)
    if isinstance(layers, Unknown):
        return layers
    for f in layers:
        x = ev.call(f, (x,), {})
    return x


# torch 2.13's device types, in the order its error message lists them
_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                 "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


def _device(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """torch.device("cuda:1"), torch.device("cuda", 1), torch.device(other_device)."""
    kind = a[0] if a else k.get("type", k.get("device"))
    index = a[1] if len(a) > 1 else k.get("index")
    for v in (kind, index):
        if isinstance(v, Unknown):
            return v
    if isinstance(kind, T.Device) and index is None:
        return kind
    if not isinstance(kind, str):  # an int is the current accelerator's device: the machine's
        return Unknown(f"torch.device({kind!r})", ev.current_ref)
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ev.raise_error("TypeError", f"device(): argument 'index' (position 2) must be int, not "
                                              f"{type(index).__name__}")
        if ":" in kind:
            raise ev.raise_error("RuntimeError", f"type (string) must not include an index because index was "
                                                 f"passed explicitly: {kind}")
        if index < 0:
            raise ev.raise_error("RuntimeError", "Device index must not be negative")
    name, sep, num = kind.partition(":")
    if sep and not num.isdigit():
        raise ev.raise_error("RuntimeError", f"Invalid device string: '{kind}'")
    if name not in _DEVICE_TYPES:
        raise ev.raise_error("RuntimeError", f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of "
                                             f"device string: {kind}")
    return T.Device(kind, index)


def _method_as_function(name: str) -> Callable[..., Any]:
    """torch.f(t, ...) for a Tensor method t.f(...)."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        if not a:
            return Unknown(f"torch.{name}() without a tensor", ev.current_ref)
        t = a[0]
        if isinstance(t, (int, float)) and name in T.UNARY_FUNCS:
            t = TensorValue((), "float32", data=[T.f32(float(t))])
        if not isinstance(t, TensorValue):
            return t if isinstance(t, Unknown) else Unknown(f"torch.{name} of a non-tensor", ev.current_ref)
        return T.TENSOR_METHODS[name](ev, t, a[1:], k)

    return impl


def _binary(op: str) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        other = a[1] if len(a) > 1 else k.get("other", k.get("exponent"))
        return T.elementwise(ev, op, a[0] if a else k.get("input"), other)

    return impl


def _no_grad_ctx(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return NoOp("torch.no_grad")


class AutocastContext(Value):
    """`with torch.autocast(device, dtype=..., enabled=...)`: while the memory model records a
    forward, ops inside run under (or without) autocast."""

    __slots__ = ("dtype", "enabled", "saved")
    type_name = "torch.autocast"

    def __init__(self, dtype: str | None, enabled: Any) -> None:
        self.dtype = dtype
        self.enabled = enabled
        self.saved: list[Any] = []

    def enter(self, ev: Evaluator) -> Any:
        tape = ev.tape
        if tape is not None:
            self.saved.append(tape.autocast)
            if self.enabled is False:
                tape.autocast = None
            elif self.enabled is True:
                tape.autocast = self.dtype or tape.autocast or "float16"
        return self

    def exit(self, ev: Evaluator) -> None:
        if ev.tape is not None and self.saved:
            ev.tape.autocast = self.saved.pop()

    def call(self, ev: Evaluator, args: Args, kwargs: Kwargs) -> Any:
        return args[0] if args else None  # used as a decorator: the function itself


def _autocast(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    dtype = k.get("dtype", a[1] if len(a) > 1 else None)
    return AutocastContext(T.dtype_name(dtype) if dtype is not None else None, k.get("enabled", True))


def _fan_in_out(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    t = a[0]
    if not isinstance(t, TensorValue) or isinstance(t.shape, Unknown) or len(t.shape) < 2:
        return Unknown("fan of a tensor of unknown shape", ev.current_ref)
    rf = T.numel(t.shape[2:])
    return (t.shape[1] * rf, t.shape[0] * rf)


def _returns_first(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return a[0] if a else k.get("tensor")


def _calculate_gain(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    gains = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3,
             "relu": math.sqrt(2.0), "selu": 3.0 / 4}
    return gains.get(a[0], Unknown("calculate_gain", ev.current_ref)) if a else 1.0


# ---------------------------------------------------------------------- module tree
def _torch_ns(loader: Loader) -> dict[str, Any]:
    tensor_cls = torch_classes(loader).tensor
    ns: dict[str, Any] = {name: dt for name, dt in DTYPES.items()}
    ns.update({alias: DTYPES[target] for alias, target in DTYPE_ALIASES.items() if target in DTYPES})
    fns: dict[str, Callable[..., Any]] = {
        "zeros": _filled(0), "ones": _filled(1), "empty": _filled(None), "rand": _uniform,
        "randn": _filled(None), "full": _full,
        "zeros_like": _like(0), "ones_like": _like(1), "empty_like": _like(None), "rand_like": lambda ev, a, k: _as_uniform(_like(None)(ev, a, k)),
        "randn_like": _like(None), "full_like": lambda ev, a, k: _like(a[1] if len(a) > 1 else None)(ev, a[:1], k),
        "arange": _arange, "linspace": _linspace, "tensor": _tensor, "as_tensor": _tensor, "from_numpy": _tensor,
        "cat": _cat, "concat": _cat, "concatenate": _cat, "stack": _stack, "meshgrid": _meshgrid,
        "randint": lambda ev, a, k: _factory_tensor(ev, (a[-1] if a else k.get("size"),), k, "int64"),
        "eye": lambda ev, a, k: TensorValue((a[0], a[1] if len(a) > 1 else a[0]), T.dtype_name(k.get("dtype"))),
        "pow": lambda ev, a, k: T.elementwise(ev, "pow", a[0], a[1]),
        "divide": _binary("truediv"), "div": _binary("truediv"), "true_divide": _binary("truediv"),
        "mul": _binary("mul"), "multiply": _binary("mul"), "add": _binary("add"), "sub": _binary("sub"),
        "subtract": _binary("sub"), "floor_divide": _binary("floordiv"), "remainder": _binary("mod"),
        "maximum": _binary("add"), "minimum": _binary("add"), "eq": _binary("eq"), "ne": _binary("ne"),
        "lt": _binary("lt"), "le": _binary("le"), "gt": _binary("gt"), "ge": _binary("ge"),
        "matmul": lambda ev, a, k: T.matmul(ev, a[0], a[1]), "mm": lambda ev, a, k: T.matmul(ev, a[0], a[1]),
        "bmm": lambda ev, a, k: T.matmul(ev, a[0], a[1]),
        "is_tensor": lambda ev, a, k: isinstance(a[0], TensorValue),
        "numel": lambda ev, a, k: a[0].numel() if isinstance(a[0], TensorValue) else Unknown("numel", ev.current_ref),
        "manual_seed": lambda ev, a, k: None, "set_default_dtype": lambda ev, a, k: None,
        "get_default_dtype": lambda ev, a, k: DTYPES["float32"], "_assert": lambda ev, a, k: None,
        "get_default_device": lambda ev, a, k: T.CPU,  # as tensor.device
        "no_grad": _no_grad_ctx, "enable_grad": _no_grad_ctx, "inference_mode": _no_grad_ctx,
        "set_grad_enabled": _no_grad_ctx, "autocast": _autocast,
        "is_autocast_enabled": lambda ev, a, k: ev.tape is not None and ev.tape.autocast is not None,
        "device": _device,
        "Size": lambda ev, a, k: T.TorchSize(tuple(ev.list_of(a[0]))) if a else T.TorchSize(()),
        "compile": lambda ev, a, k: a[0] if a else NativeFunction("compile", lambda ev2, a2, k2: a2[0]),
        "_log_api_usage_once": lambda ev, a, k: None,
        "where": lambda ev, a, k: a[1] if len(a) > 1 and isinstance(a[1], TensorValue) else Unknown("where", ev.current_ref),
        "einsum": _einsum, "addmm": _addmm, "baddbmm": _baddbmm, "outer": _outer, "ger": _outer,
        "bitwise_and": _binary("and"), "bitwise_or": _binary("or"), "bitwise_xor": _binary("xor"),
        "polar": _polar, "complex": _polar,
        "logical_and": _logical("and"), "logical_or": _logical("or"), "logical_xor": _logical("xor"),
        # random draws change values, never shapes: a generator's methods do nothing
        "Generator": lambda ev, a, k: NoOp("torch.Generator()", chain=True),
        "finfo": lambda ev, a, k: T.type_info(ev, a[0] if a else k.get("type"), True),
        "iinfo": lambda ev, a, k: T.type_info(ev, a[0] if a else k.get("type"), False),
    }
    for name in ("flatten", "permute", "transpose", "swapaxes", "unsqueeze", "squeeze", "reshape", "sum", "mean",
                 "prod", "max", "min", "chunk", "split", "clamp", "clip", "roll", "flip", "tril", "triu", "argmax",
                 "softmax", "log_softmax", "cumsum", "t", "diff", "gather", "amax", "amin", "std", "var", "norm", "any", "all",
                 "unbind", "unique", "tile", "repeat_interleave", "addcmul", "addcdiv",
                 *T.UNARY_FUNCS):
        fns[name] = _method_as_function(name)
    for name, fn in fns.items():
        ns[name] = NativeFunction(f"torch.{name}", fn)
    for name in ("no_grad", "enable_grad", "inference_mode", "compile"):
        ns[name].decorator = lambda ev, v, a, k: v
    ns["Tensor"] = tensor_cls
    ns["dtype"] = ClassValue("dtype", (loader.builtins["object"],), {}, "torch", native=_DTypeClassNative())
    ns["Size"] = ns["Size"]
    ns["pi"] = math.pi
    # The configured release (`torch-version`); the stubs (and tensor_api.py) follow 2.13's API.
    ns["__version__"] = loader.torch_version
    ns["inf"] = math.inf
    ns["nan"] = math.nan
    ns["_C"] = NoOp("torch._C")
    return ns


def _buffer(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    data = a[0] if a else k.get("data")
    if not isinstance(data, TensorValue):
        return data if isinstance(data, Unknown) else Unknown("nn.Buffer of a non-tensor", ev.current_ref)
    return T.BufferTensor(data, (a[1] if len(a) > 1 else k.get("persistent", True)) is not False)


def _nn_ns(loader: Loader) -> dict[str, Any]:
    ns: dict[str, Any] = dict(torch_classes(loader).layers)
    ns["Parameter"] = torch_classes(loader).parameter
    ns["Buffer"] = NativeFunction("torch.nn.Buffer", _buffer)
    return ns


def _init_ns() -> dict[str, Any]:
    ns: dict[str, Any] = {}
    for name in ("uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
                 "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_", "sparse_",
                 "uniform", "normal", "constant", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                 "kaiming_normal", "orthogonal"):
        ns[name] = NativeFunction(f"torch.nn.init.{name}", _returns_first)
    ns["_calculate_fan_in_and_fan_out"] = NativeFunction("torch.nn.init._calculate_fan_in_and_fan_out", _fan_in_out)
    ns["calculate_gain"] = NativeFunction("torch.nn.init.calculate_gain", _calculate_gain)
    return ns


def _jit_ns() -> dict[str, Any]:
    ns = {name: _identity_decorator(f"torch.jit.{name}") for name in
          ("script", "trace", "ignore", "unused", "export", "script_method", "interface", "_overload_method",
           "_overload")}
    ns["is_scripting"] = NativeFunction("torch.jit.is_scripting", lambda ev, a, k: False)
    ns["is_tracing"] = NativeFunction("torch.jit.is_tracing", lambda ev, a, k: False)
    ns["annotate"] = NativeFunction("torch.jit.annotate", lambda ev, a, k: a[1] if len(a) > 1 else None)
    return ns


def torch_module(loader: Loader, dotted: str) -> ModuleValue | None:
    """Native resolver for `torch` and its submodules."""
    if dotted != "torch" and not dotted.startswith("torch."):
        return None
    torch_classes(loader)  # made before the first `torch` module is
    if dotted.startswith("torch.nn.utils"):
        from vramlint.frontends.torch.nn_utils import nn_utils_module

        utils = nn_utils_module(loader, dotted)
        if utils is not None:
            return utils
    if dotted.startswith("torch.utils.data"):
        from vramlint.frontends.torch.data import data_module

        return data_module(loader, dotted)

    def unknown_attr(mod: str) -> Callable[[str], Any]:
        def hook(attr: str) -> Any:
            sub = f"{mod}.{attr}"
            if sub in _KNOWN_SUBMODULES:
                return loader.import_module(sub, None)
            return Unknown(f"`{sub}` is not modelled by vramlint", loader.evaluator.current_ref)

        return hook

    if dotted == "torch":
        return ModuleValue("torch", _torch_ns(loader), getattr_hook=unknown_attr("torch"))
    if dotted in ("torch.nn", "torch.nn.modules") or dotted.startswith("torch.nn.modules."):
        base = "torch.nn"

        def nn_hook(attr: str) -> Any:
            sub = f"{base}.{attr}"
            if sub in _KNOWN_SUBMODULES:
                return loader.import_module(sub, None)
            if dotted.startswith("torch.nn.modules") and attr in CATALOG:
                return torch_classes(loader).layers[attr]
            if dotted.startswith("torch.nn.modules"):
                return loader.import_module(f"torch.nn.modules.{attr}", None)
            return Unknown(f"`torch.nn.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)

        return ModuleValue(dotted, _nn_ns(loader), getattr_hook=nn_hook)
    if dotted == "torch.nn.parameter":
        return ModuleValue(dotted, {"Parameter": torch_classes(loader).parameter},
                           getattr_hook=unknown_attr(dotted))
    if dotted == "torch.nn.init":
        return ModuleValue(dotted, _init_ns(), getattr_hook=unknown_attr(dotted))
    if dotted == "torch.nn.functional":
        return ModuleValue(dotted, {}, getattr_hook=functional_attr)
    if dotted == "torch.jit":
        return ModuleValue(dotted, _jit_ns(), getattr_hook=unknown_attr(dotted))
    if dotted == "torch.fx":
        # Classes of tracing values: code checks `isinstance(x, torch.fx.Proxy)`; no analysed value is one.
        obj = loader.builtins["object"]
        return ModuleValue(dotted, {"wrap": _identity_decorator("torch.fx.wrap"),
                                    "Proxy": ClassValue("Proxy", (obj,), {}, dotted),
                                    "GraphModule": ClassValue("GraphModule", (torch_classes(loader).module,), {}, dotted)},
                           getattr_hook=unknown_attr(dotted))
    if dotted in ("torch._subclasses", "torch._subclasses.fake_tensor"):
        obj = loader.builtins["object"]
        return ModuleValue(dotted, {"FakeTensor": ClassValue("FakeTensor", (obj,), {}, "torch._subclasses.fake_tensor")},
                           getattr_hook=unknown_attr(dotted))
    if dotted == "torch.utils.checkpoint":
        return ModuleValue(dotted, {
            "checkpoint": NativeFunction("torch.utils.checkpoint.checkpoint", _checkpoint),
            "checkpoint_sequential": NativeFunction("torch.utils.checkpoint.checkpoint_sequential",
                                                    _checkpoint_sequential),
        }, getattr_hook=unknown_attr(dotted))
    if dotted == "torch.compiler":
        return ModuleValue(dotted, _compiler_ns(), getattr_hook=unknown_attr(dotted))
    if dotted in _ACCELERATOR_BACKENDS:
        # Code is analysed as it runs eagerly on the CPU (the device tensors report): backends other
        # than CUDA are not present. CUDA stays Unknown, since model code may size itself by it.
        return ModuleValue(dotted, {
            "is_available": NativeFunction(f"{dotted}.is_available", lambda ev, a, k: False),
            "device_count": NativeFunction(f"{dotted}.device_count", lambda ev, a, k: 0),
            # As in a torch build without this backend: its C bindings are dummies that raise.
            "is_current_stream_capturing": NativeFunction(
                f"{dotted}.is_current_stream_capturing",
                lambda ev, a, k: _raise(ev, "RuntimeError", "Tried to instantiate dummy base class "
                                        f"_{dotted.rpartition('.')[2]}_isCurrentStreamCapturing")),
        }, getattr_hook=unknown_attr(dotted))
    if dotted == "torch.backends":
        return ModuleValue(dotted, {}, getattr_hook=unknown_attr(dotted))
    if dotted == "torch.backends.mps":
        # As the tensors' CPU device says: not the Apple backend (a Linux build has none).
        return ModuleValue(dotted, {name: NativeFunction(f"{dotted}.{name}", lambda ev, a, k: False)
                                    for name in ("is_available", "is_built", "is_macos_or_newer")},
                           getattr_hook=unknown_attr(dotted))
    if dotted == "torch.distributed":
        return ModuleValue(dotted, {**_distributed_ns(loader), **mesh_names(loader)}, getattr_hook=unknown_attr(dotted))
    if dotted == "torch.linalg":
        return ModuleValue(dotted, _linalg_ns(), getattr_hook=unknown_attr(dotted))
    if dotted in DISTRIBUTED_MODULES:  # DDP, FSDP, device meshes, tensor parallelism (distributed.py)
        return distributed_module(loader, dotted, unknown_attr(dotted))
    if dotted == "torch.autograd":
        return ModuleValue(dotted, _autograd_ns(loader), getattr_hook=unknown_attr(dotted))
    if dotted == "torch.accelerator":
        # The same view: tensors are on the CPU, so there is no current accelerator (torch's
        # answer on a machine without one: None, not available, no devices).
        return ModuleValue(dotted, {
            "current_accelerator": NativeFunction(f"{dotted}.current_accelerator", lambda ev, a, k: None),
            "is_available": NativeFunction(f"{dotted}.is_available", lambda ev, a, k: False),
            "device_count": NativeFunction(f"{dotted}.device_count", lambda ev, a, k: 0),
        }, getattr_hook=unknown_attr(dotted))
    if dotted == "torch.fft":
        from vramlint.frontends.torch.fft import fft_namespace

        return ModuleValue(dotted, fft_namespace(), getattr_hook=unknown_attr(dotted))
    if dotted == "torch.nn.attention":
        from vramlint.frontends.torch.sdpa_switches import attention_ns

        return ModuleValue(dotted, attention_ns(loader), getattr_hook=unknown_attr(dotted))
    if dotted == "torch.backends.cuda":
        from vramlint.frontends.torch.sdpa_switches import backends_cuda_ns

        return ModuleValue(dotted, backends_cuda_ns(loader), getattr_hook=unknown_attr(dotted))
    if dotted == "torch.nn.attention.flex_attention":
        return ModuleValue(dotted, _flex_attention_ns(loader), getattr_hook=unknown_attr(dotted))
    if dotted == "torch.cuda":
        return ModuleValue(dotted, {"is_available": NativeFunction(
            "torch.cuda.is_available", lambda ev, a, k: Unknown("whether CUDA is available depends on the machine", ev.current_ref)),
            # eager execution: no CUDA graph is being captured
            "is_current_stream_capturing": NativeFunction("torch.cuda.is_current_stream_capturing",
                                                          lambda ev, a, k: False),
            # the caching allocator's and the device's housekeeping: nothing the analysis tracks
            **{name: StateFreeFunction(f"torch.cuda.{name}", lambda ev, a, k: None)
               for name in ("empty_cache", "synchronize", "ipc_collect", "reset_peak_memory_stats")}},
            getattr_hook=unknown_attr(dotted))
    return ModuleValue(dotted, {}, getattr_hook=unknown_attr(dotted))


def _linalg_ns() -> dict[str, Any]:
    """torch.linalg's norms: a reduction's shape over `dim` (peft's DoRA takes the weight's
    column norm as it builds its magnitude vector)."""

    def norm(default_dim: Any) -> Callable[..., Any]:
        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            t = a[0] if a else k.get("A", k.get("x"))
            if not isinstance(t, TensorValue):
                return t if isinstance(t, Unknown) else Unknown("torch.linalg norm of a non-tensor", ev.current_ref)
            dim = a[2] if len(a) > 2 else k.get("dim", default_dim)
            keep = a[3] if len(a) > 3 else k.get("keepdim", False)
            if isinstance(keep, Unknown):
                return TensorValue(keep, t.dtype)
            shape = T.reduce_dims(t, dim, bool(keep))
            if isinstance(shape, Unknown):
                return TensorValue(Unknown(shape.reason, ev.current_ref), t.dtype)
            return TensorValue(shape, "float64" if t.dtype == "complex128" else
                               "float32" if t.dtype == "complex64" else t.dtype)

        return impl

    fns = {"norm": norm(None), "vector_norm": norm(None), "matrix_norm": norm((-2, -1))}
    return {name: NativeFunction(f"torch.linalg.{name}", fn) for name, fn in fns.items()}


def _distributed_ns(loader: Loader) -> dict[str, Any]:
    """torch.distributed as one process of a launch sees it: no process group until the code calls
    `init_process_group` (in this analysis); then the world size and rank are the launcher's
    (`WORLD_SIZE`, `RANK` in the configured `environment`; unknown when not given)."""
    state: dict[str, Any] = {"analysis": None}  # the analysis that initialized the group

    def initialized(ev: Evaluator) -> bool:
        return state["analysis"] is ev.analysis

    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        state["analysis"] = ev.analysis
        return None

    def from_env(var: str, what: str) -> Callable[..., Any]:
        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            if not initialized(ev):
                raise ev.raise_error("ValueError", "Default process group has not been initialized, please make "
                                                   "sure to call init_process_group.")
            value = loader.environment.get(var)
            if value is None or not value.isdigit():
                return Unknown(f"the {what} is the launcher's (torchrun): set {var} in `environment`", ev.current_ref)
            return int(value)

        return impl

    fns: dict[str, Callable[..., Any]] = {
        "is_available": lambda ev, a, k: True,
        "is_initialized": lambda ev, a, k: initialized(ev),
        "init_process_group": init,
        "get_world_size": from_env("WORLD_SIZE", "world size"),
        "get_rank": from_env("RANK", "rank"),
        "barrier": lambda ev, a, k: None,
        "destroy_process_group": lambda ev, a, k: state.update(analysis=None),
    }
    return {name: NativeFunction(f"torch.distributed.{name}", fn) for name, fn in fns.items()}


def _autograd_ns(loader: Loader) -> dict[str, Any]:
    """torch.autograd: `Function` subclasses run their `forward` through `.apply` (with a context
    object whose save/mark methods do nothing here: backward's memory comes from the ops the
    forward ran), `Variable(x)` is x."""
    obj = loader.builtins["object"]
    ctx_cls = ClassValue("FunctionCtx", (obj,), {
        name: NativeFunction(f"FunctionCtx.{name}", lambda ev, a, k: None)
        for name in ("save_for_backward", "save_for_forward", "mark_dirty", "mark_non_differentiable",
                     "set_materialize_grads")}, "torch.autograd.function")

    def apply(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        cls, args = a[0], a[1:]
        ctx = Instance(ctx_cls)
        setup, owner = cls.lookup("setup_context")
        if owner is not None and owner is not function:  # new style: forward(*args), then setup_context
            out = ev.call(ev.protocol.getattr(cls, "forward"), args, k)
            ev.call(ev.protocol.getattr(cls, "setup_context"), (ctx, args, out), {})
            return out
        return ev.call(ev.protocol.getattr(cls, "forward"), (ctx, *args), k)

    function = ClassValue("Function", (obj,), {
        "apply": ClassMethod(NativeFunction("torch.autograd.Function.apply", apply)),
        "setup_context": StaticMethod(NativeFunction("torch.autograd.Function.setup_context", lambda ev, a, k: None)),
    }, "torch.autograd")
    return {"Function": function, "Variable": NativeFunction("torch.autograd.Variable", lambda ev, a, k: a[0] if a else None),
            "set_grad_enabled": NativeFunction("torch.autograd.set_grad_enabled", _no_grad_ctx),
            "no_grad": NativeFunction("torch.autograd.no_grad", _no_grad_ctx)}


def _compiler_ns() -> dict[str, Any]:
    """torch.compiler: the analysis follows eager execution, so nothing is being compiled or exported."""
    ns: dict[str, Any] = {name: NativeFunction(f"torch.compiler.{name}", lambda ev, a, k: False)
                          for name in ("is_compiling", "is_dynamo_compiling", "is_exporting")}
    for name in ("disable", "allow_in_graph", "assume_constant_result", "substitute_in_graph"):
        ns[name] = _identity_decorator(f"torch.compiler.{name}")
    ns["reset"] = NativeFunction("torch.compiler.reset", lambda ev, a, k: None)
    return ns


def _flex_attention_ns(loader: Loader) -> dict[str, Any]:
    """torch.nn.attention.flex_attention: its classes (code checks `isinstance(mask, BlockMask)`);
    the analysis never builds block masks."""
    obj = loader.builtins["object"]
    mod = "torch.nn.attention.flex_attention"
    return {"BlockMask": ClassValue("BlockMask", (obj,), {}, mod),
            "_mask_mod_signature": NoOp(f"{mod}._mask_mod_signature"),
            "_score_mod_signature": NoOp(f"{mod}._score_mod_signature")}


_ACCELERATOR_BACKENDS = {"torch.xpu", "torch.mps", "torch.npu", "torch.mlu", "torch.hpu", "torch.musa"}

_KNOWN_SUBMODULES = {
    "torch.nn", "torch.nn.init", "torch.nn.functional", "torch.nn.parameter", "torch.nn.modules", "torch.jit",
    "torch.fx", "torch.cuda", "torch.utils", "torch.utils.checkpoint", "torch.nn.utils", "torch.optim", "torch.distributed",
    "torch.distributed.tensor", "torch.linalg", "torch.amp", "torch.autograd", "torch.overrides", "torch.hub", "torch.utils.data", "torch.compiler",
    "torch.nn.attention", "torch.nn.attention.flex_attention", "torch.fft", "torch.accelerator",
    "torch.backends", "torch.backends.mps", "torch.backends.cuda", "torch._subclasses", "torch._subclasses.fake_tensor",
    *_ACCELERATOR_BACKENDS, *DISTRIBUTED_MODULES,
}

__all__ = ["torch_module", "tensor_class", "MISSING"]
