"""Abstract tensors: a shape (known or Unknown dims), a dtype, and for small tensors the values.

Values are kept for tensors of up to MAX_CONCRETE elements because some model code computes
its architecture with tensor arithmetic (RegNet's block widths: arange, log, round, tolist).
Float arithmetic is rounded to float32 after each operation, as torch computes it.
"""

from __future__ import annotations

import copy
import math
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vramlint.engine.eval_base import contains_unknown
from vramlint.engine.values import MISSING, NativeFunction, Positional, Unknown, Value

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

MAX_CONCRETE = 256

Dim = Any  # int | Unknown
Shape = tuple[Dim, ...]

DTYPE_BYTES = {
    "float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
    "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16, "float8_e4m3fn": 1, "float8_e5m2": 1,
    # torch 2.13's other one-byte floats (peft looks each up by name to upcast adapters in them)
    "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1, "float8_e8m0fnu": 1,
}
FLOAT_DTYPES = {"float32", "float64", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                "float8_e5m2fnuz", "float8_e8m0fnu"}
INT_DTYPES = {"int64", "int32", "int16", "int8", "uint8"}


class DType(Value):
    """torch.float32 and friends."""

    __slots__ = ("name",)
    type_name = "torch.dtype"
    immutable = True  # shared by copies, a plain argument (engine/construction_memo.py)

    def __init__(self, name: str) -> None:
        self.name = name

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name == "is_floating_point":
            return self.name in FLOAT_DTYPES
        if name == "itemsize":
            return DTYPE_BYTES.get(self.name, 4)
        return MISSING

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def to_str(self) -> str:
        # str(torch.bfloat16): transformers' config serialisation splits it at the dot.
        return f"torch.{self.name}"


DTYPES = {n: DType(n) for n in DTYPE_BYTES}

# torch.finfo / torch.iinfo fields, as torch 2.13 reports them.
_FINFO = {
    "float32": dict(bits=32, eps=1.1920928955078125e-07, max=3.4028234663852886e+38, min=-3.4028234663852886e+38,
                    tiny=1.1754943508222875e-38, resolution=1e-06),
    "float64": dict(bits=64, eps=2.220446049250313e-16, max=1.7976931348623157e+308, min=-1.7976931348623157e+308,
                    tiny=2.2250738585072014e-308, resolution=1e-15),
    "float16": dict(bits=16, eps=0.0009765625, max=65504.0, min=-65504.0, tiny=6.103515625e-05, resolution=0.001),
    "bfloat16": dict(bits=16, eps=0.0078125, max=3.3895313892515355e+38, min=-3.3895313892515355e+38,
                     tiny=1.1754943508222875e-38, resolution=0.01),
}
_IINFO = {"int8": 8, "int16": 16, "int32": 32, "int64": 64, "uint8": 8}


class TypeInfo(Value):
    """What torch.finfo(dtype) / torch.iinfo(dtype) return."""

    __slots__ = ("fields",)
    type_name = "torch.finfo"

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        return self.fields.get(name, MISSING)


def type_info(ev: Evaluator, dtype: Any, floating: bool) -> Any:
    name = dtype.name if isinstance(dtype, DType) else "float32" if dtype is None and floating else None
    if floating and name in _FINFO:
        fields = dict(_FINFO[name])
        fields["smallest_normal"] = fields["tiny"]
        return TypeInfo({**fields, "dtype": name})
    if not floating and name in _IINFO:
        bits = _IINFO[name]
        lo, hi = (0, 2 ** bits - 1) if name == "uint8" else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return TypeInfo({"bits": bits, "min": lo, "max": hi, "dtype": name})
    if isinstance(dtype, Unknown):
        return dtype
    what = "finfo" if floating else "iinfo"
    raise ev.raise_error("TypeError", f"torch.{what} of {name or dtype!r} is not supported")
DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
                 "short": "int16", "cfloat": "complex64"}


def f32(x: float) -> float:
    try:
        return struct.unpack("f", struct.pack("f", x))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return math.copysign(math.inf, x)


def numel(shape: Shape) -> Any:
    n: Any = 1
    for d in shape:
        if d is None:  # a symbolic dimension (Keras' `None`) that reached a tensor
            return Unknown("a dimension of unknown size")
        n = n * d
    return n


def promote(a: str, b: str) -> str:
    """torch.promote_types(a, b)."""
    if a == b:
        return a
    if a.startswith("complex") or b.startswith("complex"):
        return "complex128" if {a, b} & {"float64", "complex128"} else "complex64"
    if a in FLOAT_DTYPES and b not in FLOAT_DTYPES:
        return a
    if b in FLOAT_DTYPES and a not in FLOAT_DTYPES:
        return b
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"
    if {a, b} == {"uint8", "int8"}:
        return "int16"
    order = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
    try:
        return order[max(order.index(a), order.index(b))]
    except ValueError:
        return "float32"


def _combine_categories(higher: str | None, lower: str | None) -> str | None:
    """ATen's combine_categories: `lower` (a lower-priority group) changes the result only when its
    category (bool < integer < floating < complex) is higher."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if higher.startswith("complex"):
        return higher
    if lower.startswith("complex"):
        return ("complex128" if higher == "float64" else "complex64") if higher in FLOAT_DTYPES else lower
    if higher in FLOAT_DTYPES:
        return higher
    if higher == "bool" or lower in FLOAT_DTYPES:
        return promote(higher, lower)
    return higher


def result_type(operands: Sequence[Any]) -> str:
    """torch.result_type over tensors and Python scalars: tensors with dimensions take priority over
    zero-dim tensors, which take priority over Python numbers (a Python float counts as the default
    float32); a lower-priority operand only matters when its category is higher."""
    groups: list[str | None] = [None, None, None]  # dimensioned tensors, zero-dim tensors, Python numbers
    for v in operands:
        if isinstance(v, TensorValue):
            i, dt = (1 if v.shape == () else 0), v.dtype
        elif isinstance(v, bool):
            i, dt = 2, "bool"
        elif isinstance(v, int):
            i, dt = 2, "int64"
        elif isinstance(v, float):
            i, dt = 2, "float32"
        else:
            continue
        cur = groups[i]
        groups[i] = dt if cur is None else promote(cur, dt)
    return _combine_categories(groups[0], _combine_categories(groups[1], groups[2])) or "float32"


class TensorValue(Value):
    __slots__ = ("shape", "dtype", "requires_grad", "is_param", "data", "attrs")
    type_name = "Tensor"

    def __init__(self, shape: Shape | Unknown, dtype: str = "float32", requires_grad: bool = False,
                 data: list[Any] | None = None) -> None:
        self.shape = shape
        self.dtype = dtype
        self.requires_grad = requires_grad
        self.is_param = False
        self.data = data
        self.attrs: dict[str, Any] | None = None  # attributes (not torch's) set by analysed code

    def __repr__(self) -> str:
        return f"Tensor{self.shape!r}:{self.dtype}"

    # ----------------------------------------------------------------- protocol
    def value_class(self, ev: Evaluator) -> Any:
        from vramlint.frontends.torch.stubs import tensor_class

        return tensor_class(ev.loader, parameter=self.is_param)

    def numel(self) -> Any:
        if isinstance(self.shape, Unknown):
            return self.shape
        return numel(self.shape)

    def counted_numel(self) -> Any:
        """The number of values it stands for, as its library counts it: numel(), except for a
        quantized weight that packs several values per element (QuantizedTensor)."""
        return self.numel()

    def attached_bytes(self) -> int:
        """Bytes of the tensors its library keeps beside it on the device (a quantized weight's
        block scales): none for a plain tensor."""
        return 0

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if self.attrs is not None and name in self.attrs:
            return self.attrs[name]
        if name == "shape":
            return self.shape if isinstance(self.shape, Unknown) else TorchSize(self.shape)
        if name in ("ndim",):
            return self.shape if isinstance(self.shape, Unknown) else len(self.shape)
        if name == "dtype":
            return DTYPES.get(self.dtype, DType(self.dtype))
        if name == "requires_grad":
            return self.requires_grad
        if name == "is_leaf" and (self.is_param or not self.requires_grad):
            return True  # a parameter, or a tensor autograd does not track (else it depends on its history)
        if name in ("data", "mT"):
            return self if name == "data" else _transpose(self, -2, -1)
        if name == "T":
            return self if isinstance(self.shape, Unknown) else TensorValue(tuple(reversed(self.shape)), self.dtype)
        if name == "device":
            return CPU  # the default device, as `is_cuda`/`get_device()` say
        if name in ("is_cuda",):
            return False
        if name in ("real", "imag"):  # views of a complex tensor's parts (`real` of a real one is itself)
            if not self.dtype.startswith("complex"):
                return self if name == "real" else Unknown("Tensor.imag of a real tensor", ev.current_ref)
            return TensorValue(self.shape, "float64" if self.dtype == "complex128" else "float32")
        if name == "grad":
            return None
        method = TENSOR_METHODS.get(name)
        if method is not None:
            return NativeFunction(f"Tensor.{name}", lambda ev2, a, k: method(ev2, self, Positional(ev2, name, a), k),
                                  receiver=self)
        if _is_user_attribute(name):
            return MISSING  # not torch API and never set: AttributeError, as on a real tensor
        return Unknown(f"Tensor.{name} is not modelled", ev.current_ref)

    def set_attribute(self, ev: Evaluator, name: str, value: Any) -> None:
        if name == "requires_grad" and isinstance(value, bool):
            self.requires_grad = value
        elif name == "data" and isinstance(value, TensorValue) and type(self) is TensorValue:
            # `p.data = p.data.to(torch.float32)` (peft's prepare_model_for_kbit_training): the same
            # tensor, now holding the new one's shape, dtype and values.
            self.shape, self.dtype, self.data = value.shape, value.dtype, value.data
        elif _is_user_attribute(name):
            if self.attrs is None:
                self.attrs = {}
            self.attrs[name] = value

    def binop(self, ev: Evaluator, op: str, other: Any, reflected: bool) -> Any:
        a, b = (other, self) if reflected else (self, other)
        # `op` is "iadd" for `x += y` (in place on x)
        base = op[1:] if op.startswith("i") and op[1:] in _PY_OPS or op == "imatmul" else op

        def compute() -> Any:
            if base != op and base != "matmul":  # `x op= y` writes into x
                return _in_place(ev, base, a, b)
            return elementwise(ev, base, a, b)

        if ev.tape is not None:
            return ev.tape.call(ev, f"Tensor.__{op}__", (a, b), {}, compute)
        return compute()

    def compare(self, ev: Evaluator, dunder: str, other: Any) -> Any:
        if ev.tape is not None:
            return ev.tape.call(ev, f"Tensor.{dunder}", (self, other), {},
                                lambda: elementwise(ev, dunder.strip("_"), self, other, out_dtype="bool"))
        return elementwise(ev, dunder.strip("_"), self, other, out_dtype="bool")

    def unary(self, ev: Evaluator, dunder: str) -> Any:
        fn = {"__neg__": lambda x: -x, "__pos__": lambda x: x, "__abs__": abs}.get(dunder)
        if fn is None:
            result = TensorValue(self.shape, self.dtype)
        else:
            result = map_unary(self, fn)
        if ev.tape is not None:
            ev.tape.record(f"Tensor.{dunder}", (self,), {}, result, None)
        return result

    def getitem(self, ev: Evaluator, idx: Any) -> Any:
        if ev.tape is not None:
            return ev.tape.call(ev, "Tensor.getitem", (self, idx), {}, lambda: index_tensor(ev, self, idx))
        return index_tensor(ev, self, idx)

    def setitem(self, ev: Evaluator, idx: Any, value: Any) -> None:
        self.data = None  # in-place writes: values no longer tracked
        if ev.tape is not None:
            ev.tape.record("Tensor.setitem_", (self, value), {}, self, None)

    def iterate(self, ev: Evaluator) -> Any:
        if isinstance(self.shape, Unknown) or not self.shape:
            return Unknown("iteration over a tensor of unknown shape", ev.current_ref)
        n = self.shape[0]
        if isinstance(n, Unknown):
            return n
        if ev.tape is not None:  # `q, k, v = qkv`: views the memory model must know
            return [self.getitem(ev, i) for i in range(min(n, MAX_CONCRETE))]
        return [index_tensor(ev, self, i) for i in range(min(n, MAX_CONCRETE))]

    def length(self, ev: Evaluator) -> Any:
        if isinstance(self.shape, Unknown) or not self.shape:
            return Unknown("len() of a tensor", ev.current_ref)
        return self.shape[0]

    def truth(self, ev: Evaluator) -> Any:
        if self.data is not None and len(self.data) == 1:
            return bool(self.data[0])
        return Unknown("truth value of a tensor", ev.current_ref)

    def to_python(self, ev: Evaluator) -> Any:
        if self.data is not None and len(self.data) == 1:
            return self.data[0]
        return Unknown("tensor value is not known", ev.current_ref)

    def deepcopy(self, proto: Any, memo: dict[int, Any]) -> TensorValue:
        if type(self) is TensorValue:
            t = TensorValue(self.shape, self.dtype, self.requires_grad, list(self.data) if self.data else None)
            t.is_param = self.is_param
        else:  # a subclass keeps its class and its own fields (a quantized weight's packing)
            t = copy.copy(self)
            t.data = list(self.data) if self.data else None
        if self.attrs is not None:
            t.attrs = {k: proto.deepcopy(v, memo) for k, v in self.attrs.items()}
        return t


def _is_user_attribute(name: str) -> bool:
    """A name that is not torch.Tensor's (code may set it on tensors as a flag)."""
    from vramlint.frontends.torch.tensor_api import TENSOR_API

    return not (name.startswith("__") and name.endswith("__")) and name not in TENSOR_API


class BufferTensor(TensorValue):
    """nn.Buffer(t): a tensor that Module.__setattr__ registers as a buffer."""

    __slots__ = ("persistent",)

    def __init__(self, t: TensorValue, persistent: bool = True) -> None:
        super().__init__(t.shape, t.dtype, t.requires_grad, t.data)
        self.persistent = persistent


class TorchSize(tuple):  # type: ignore[type-arg]
    """torch.Size: a tuple (of ints or Unknowns)."""


class Device(str):
    """torch.device: a str ("cpu", "cuda:1"), so that `device == "cpu"`, f-strings and str methods
    work as on the str torch.device() converts to, with torch's `type` and `index` attributes."""

    native_attributes = ("type", "index")  # read by the engine's protocol (data attributes of plain data)
    type: str
    index: int | None  # type: ignore[assignment]  # torch's name, over str.index

    def __new__(cls, text: str, index: int | None = None) -> Device:
        kind, sep, num = text.partition(":")
        if sep and num.isdigit():
            index = int(num)
        obj = super().__new__(cls, kind if index is None else f"{kind}:{index}")
        obj.type, obj.index = kind, index
        return obj

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"


CPU = Device("cpu")  # the device of every analysed tensor: analysis follows eager execution on the CPU


# ---------------------------------------------------------------------- construction helpers
def parse_size(ev: Evaluator, args: Sequence[Any]) -> Shape | Unknown:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    dims: list[Any] = []
    for a in args:
        if isinstance(a, Unknown):
            dims.append(a)
        elif isinstance(a, bool):
            return Unknown("bool in a tensor size", ev.current_ref)
        elif isinstance(a, int):
            dims.append(a)
        elif isinstance(a, TensorValue):
            v = a.to_python(ev)
            dims.append(v)
        else:
            return Unknown(f"tensor size element {type(a).__name__}", ev.current_ref)
    return tuple(dims)


def dtype_name(v: Any, default: str = "float32") -> str:
    if isinstance(v, DType):
        return v.name
    if isinstance(v, str):
        return DTYPE_ALIASES.get(v, v)
    return default


def _infer_nested(ev: Evaluator, data: Any) -> tuple[Shape, list[Any]] | Unknown:
    if isinstance(data, TensorValue):
        if data.data is None:
            return Unknown("tensor of a tensor without values", ev.current_ref)
        return data.shape, list(data.data)  # type: ignore[return-value]
    if isinstance(data, (list, tuple)):
        if not data:
            return (0,), []
        parts = [_infer_nested(ev, x) for x in data]
        for p in parts:
            if isinstance(p, Unknown):
                return p
        shapes = {p[0] for p in parts}  # type: ignore[index]
        if len(shapes) != 1:
            return Unknown("ragged nested sequence", ev.current_ref)
        flat: list[Any] = []
        for p in parts:
            flat.extend(p[1])  # type: ignore[index]
        return (len(data), *parts[0][0]), flat  # type: ignore[index]
    if isinstance(data, (int, float, bool, complex)):
        return (), [data]
    if isinstance(data, Unknown):
        return data
    return Unknown(f"tensor() of {type(data).__name__}", ev.current_ref)


def tensor_from_data(ev: Evaluator, data: Any, dtype: Any = None) -> TensorValue | Unknown:
    r = _infer_nested(ev, data)
    if isinstance(r, Unknown):
        return r
    shape, flat = r
    if dtype is not None:
        dt = dtype_name(dtype)
    elif all(isinstance(x, bool) for x in flat) and flat:
        dt = "bool"
    elif all(isinstance(x, int) for x in flat):
        dt = "int64"
    elif any(isinstance(x, complex) for x in flat):
        dt = "complex64"
    else:
        dt = "float32"
    if dt.startswith("complex") or any(isinstance(x, complex) for x in flat):
        return TensorValue(shape, dt)  # values are followed for real numbers only
    return TensorValue(shape, dt, data=_cast(flat, dt) if len(flat) <= MAX_CONCRETE else None)


def _cast(flat: list[Any], dt: str) -> list[Any]:
    if dt in ("float32", "float16", "bfloat16"):
        return [f32(float(x)) for x in flat]
    if dt == "float64":
        return [float(x) for x in flat]
    if dt == "bool":
        return [bool(x) for x in flat]
    return [int(x) for x in flat]


# ---------------------------------------------------------------------- broadcasting
def shape_text(shape: Any) -> str:
    """A shape for a message, `[1, ?, 64]`, followed by what its first `?` stands for: never an
    Unknown's repr (a message is read by a person)."""
    if isinstance(shape, Unknown):
        return f"of unknown rank ({shape.reason})"
    if not isinstance(shape, (tuple, list)):
        return repr(shape)
    dims = list(shape)
    unknown = next((d for d in dims if isinstance(d, Unknown)), None)
    text = "[" + ", ".join("?" if isinstance(d, Unknown) else str(d) for d in dims) + "]"
    return text if unknown is None else f"{text} (?: {unknown.reason})"


def broadcast(a: Shape, b: Shape) -> Shape | Unknown:
    out: list[Any] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if isinstance(x, Unknown):
            out.append(y if (isinstance(y, int) and y != 1) else x)
        elif isinstance(y, Unknown):
            out.append(x if x != 1 else y)
        elif x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return Unknown(f"shapes {shape_text(a)} and {shape_text(b)} cannot be broadcast")
    return tuple(reversed(out))


_PY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "truediv": lambda x, y: x / y if y != 0 else (math.copysign(math.inf, x) if x else math.nan),
    "floordiv": lambda x, y: x // y, "mod": lambda x, y: x % y, "pow": lambda x, y: x ** y,
    "eq": lambda x, y: x == y, "ne": lambda x, y: x != y, "lt": lambda x, y: x < y, "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y, "and": lambda x, y: x & y, "or": lambda x, y: x | y,
    "xor": lambda x, y: x ^ y,
}


def _as_tensor(ev: Evaluator, v: Any) -> TensorValue | Unknown:
    if isinstance(v, TensorValue):
        return v
    if isinstance(v, bool):
        return TensorValue((), "bool", data=[v])
    if isinstance(v, int):
        return TensorValue((), "int64", data=[v])
    if isinstance(v, float):
        return TensorValue((), "float64", data=[v])  # a Python scalar: promotes like a "wrapped number"
    if isinstance(v, Unknown):
        return v
    return Unknown(f"tensor operation with a {getattr(v, 'type_name', type(v).__name__)}", ev.current_ref)


class UniformTensor(TensorValue):
    """`torch.rand(...)`: values unknown, but in [0, 1). A comparison with a number outside that
    range is decided (LayerDrop's `if torch.rand([]) < self.layerdrop:` with layerdrop 0.0 never
    drops a layer: BART, Whisper, OPT, Wav2Vec2 train through every layer)."""

    __slots__ = ()


# op -> (the result when the number is at or past the low end, ... at or past the high end)
_UNIFORM_CMP = {
    "lt": lambda x: False if x <= 0 else True if x >= 1 else None,
    "le": lambda x: False if x < 0 else True if x >= 1 else None,
    "gt": lambda x: True if x < 0 else False if x >= 1 else None,
    "ge": lambda x: True if x <= 0 else False if x >= 1 else None,
}
_SWAPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}


def _uniform_compare(op: str, a: Any, b: Any) -> bool | None:
    """The value of every element of `rand(...) op number` (or `number op rand(...)`), if decided."""
    if isinstance(b, UniformTensor) and not isinstance(a, UniformTensor):
        a, b, op = b, a, _SWAPPED.get(op, op)
    if not isinstance(a, UniformTensor) or op not in _UNIFORM_CMP:
        return None
    if isinstance(b, TensorValue):
        b = b.data[0] if b.data is not None and len(set(b.data)) == 1 else None
    if isinstance(b, bool) or not isinstance(b, (int, float)):
        return None
    return _UNIFORM_CMP[op](b)  # type: ignore[no-any-return]


def elementwise(ev: Evaluator, op: str, a: Any, b: Any, out_dtype: str | None = None) -> Any:
    if op == "matmul":
        return matmul(ev, a, b)
    decided = _uniform_compare(op, a, b)
    ta, tb = _as_tensor(ev, a), _as_tensor(ev, b)
    if isinstance(ta, Unknown):
        return ta
    if isinstance(tb, Unknown):
        return tb
    if isinstance(ta.shape, Unknown):
        return ta.shape
    if isinstance(tb.shape, Unknown):
        return tb.shape
    shape = broadcast(ta.shape, tb.shape)
    if isinstance(shape, Unknown):
        return Unknown(shape.reason, ev.current_ref)
    dt = out_dtype or result_type((a, b))
    if op == "truediv" and dt not in FLOAT_DTYPES:
        dt = "float32"
    data = None
    if ta.data is not None and tb.data is not None and op in _PY_OPS:
        n = numel(shape)
        if isinstance(n, int) and n <= MAX_CONCRETE:
            xa = _broadcast_data(ta, shape)
            xb = _broadcast_data(tb, shape)
            if xa is not None and xb is not None:
                fn = _PY_OPS[op]
                try:
                    if dt in ("float32", "float16", "bfloat16"):
                        data = [f32(fn(f32(float(x)), f32(float(y)))) for x, y in zip(xa, xb)]
                    elif dt == "float64":
                        data = [float(fn(float(x), float(y))) for x, y in zip(xa, xb)]
                    else:
                        data = [fn(x, y) for x, y in zip(xa, xb)]
                except (ZeroDivisionError, OverflowError, ValueError, TypeError):
                    data = None
    if decided is not None:
        n = numel(shape)
        if isinstance(n, int) and n <= MAX_CONCRETE:
            data = [decided] * n
    return TensorValue(shape, dt, data=data)


def _in_place(ev: Evaluator, op: str, a: TensorValue, b: Any) -> Any:
    """`a op= b`: the result is written into `a`, so it keeps a's shape and dtype."""
    r = elementwise(ev, op, a, b)
    if not isinstance(r, TensorValue) or (r.shape == a.shape and r.dtype == a.dtype):
        return r
    if (isinstance(r.shape, tuple) and isinstance(a.shape, tuple) and r.shape != a.shape
            and all(isinstance(d, int) for d in (*r.shape, *a.shape))):
        return Unknown(f"shape mismatch: in-place {op} broadcasts {a.shape} to {r.shape}", ev.current_ref)
    data = _cast(r.data, a.dtype) if r.data is not None and r.shape == a.shape else None
    return TensorValue(a.shape, a.dtype, data=data)


def _broadcast_data(t: TensorValue, shape: Shape) -> list[Any] | None:
    assert t.data is not None and not isinstance(t.shape, Unknown)
    if t.shape == shape:
        return t.data
    if len(t.data) == 1:
        n = numel(shape)
        return t.data * n if isinstance(n, int) else None
    if len(shape) == 1 and t.shape == (shape[0],):
        return t.data
    return broadcast_data(t, shape)


def broadcast_data(t: TensorValue, shape: Shape) -> list[Any] | None:
    """The values of `t` broadcast to `shape` (None when unknown or too many)."""
    if t.data is None or isinstance(t.shape, Unknown) or len(t.shape) > len(shape):
        return None
    n = numel(shape)
    if not isinstance(n, int) or n > MAX_CONCRETE or not all(isinstance(d, int) for d in shape):
        return None
    src = (1,) * (len(shape) - len(t.shape)) + tuple(t.shape)
    if any(s != d and s != 1 for s, d in zip(src, shape)):
        return None
    strides = [0] * len(src)
    acc = 1
    for i in range(len(src) - 1, -1, -1):
        strides[i] = acc if src[i] != 1 else 0
        acc *= src[i]
    offsets = [0]
    for d, stride in zip(shape, strides):
        offsets = [o + j * stride for o in offsets for j in range(d)]
    return [t.data[o] for o in offsets]


def map_unary(t: TensorValue, fn: Callable[[Any], Any], dtype: str | None = None) -> TensorValue:
    dt = dtype or t.dtype
    data = None
    if t.data is not None:
        try:
            vals = [fn(x) for x in t.data]
            data = _cast(vals, dt) if dt != t.dtype or dt in ("float32", "float16", "bfloat16") else vals
        except (ValueError, OverflowError, TypeError, ZeroDivisionError):
            data = None
    return TensorValue(t.shape, dt, data=data)


def matmul(ev: Evaluator, a: Any, b: Any) -> Any:
    if not isinstance(a, TensorValue) or not isinstance(b, TensorValue):
        return Unknown("matmul of a non-tensor", ev.current_ref)
    sa, sb = a.shape, b.shape
    if isinstance(sa, Unknown) or isinstance(sb, Unknown):
        return sa if isinstance(sa, Unknown) else sb
    if not sa or not sb:
        return Unknown(f"shape mismatch: matmul needs tensors of 1 dimension or more, got {list(sa)} and {list(sb)}",
                       ev.current_ref)
    if len(sa) == 1 and len(sb) == 1:
        return TensorValue((), promote(a.dtype, b.dtype))
    if len(sb) == 1:
        return TensorValue(sa[:-1], promote(a.dtype, b.dtype))
    if len(sa) == 1:
        return TensorValue((*sb[:-2], sb[-1]), promote(a.dtype, b.dtype))
    batch = broadcast(sa[:-2], sb[:-2])
    if isinstance(batch, Unknown):
        return batch
    return TensorValue((*batch, sa[-2], sb[-1]), promote(a.dtype, b.dtype))


# ---------------------------------------------------------------------- shape operations
def _norm_dim(d: Any, rank: int) -> Any:
    """A dim as an index into the shape; an Unknown if it is out of range (torch's IndexError),
    which the rules treat as an unknown dim instead of indexing past the shape."""
    if isinstance(d, Unknown) or not isinstance(d, int):
        return d
    if not -max(rank, 1) <= d < max(rank, 1):  # a 0-d tensor takes dims 0 and -1
        return Unknown(f"dim {d} out of range for a tensor of {rank} dimensions")
    return d + rank if d < 0 else d


def reshape(ev: Evaluator, t: TensorValue, dims: Sequence[Any]) -> Any:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    dims = list(dims)
    total = t.numel()
    if -1 in dims:
        i = dims.index(-1)
        rest = numel(tuple(d for j, d in enumerate(dims) if j != i))
        if isinstance(total, Unknown) or isinstance(rest, Unknown):
            dims[i] = total if isinstance(total, Unknown) else rest
        elif rest == 0:
            dims[i] = 0
        else:
            dims[i] = total // rest
    shape = tuple(dims)
    return TensorValue(shape, t.dtype, data=t.data if t.data is not None else None)


def _transpose(t: TensorValue, d0: Any, d1: Any) -> TensorValue:
    if isinstance(t.shape, Unknown):
        return TensorValue(t.shape, t.dtype)
    r = len(t.shape)
    a, b = _norm_dim(d0, r), _norm_dim(d1, r)
    if not isinstance(a, int) or not isinstance(b, int) or not (0 <= a < r and 0 <= b < r):
        return TensorValue(Unknown("transpose of unknown dims"), t.dtype)
    s = list(t.shape)
    s[a], s[b] = s[b], s[a]
    return TensorValue(tuple(s), t.dtype)


def index_tensor(ev: Evaluator, t: TensorValue, idx: Any) -> Any:
    if isinstance(t.shape, Unknown):
        return TensorValue(t.shape, t.dtype)
    items = list(idx) if isinstance(idx, tuple) else [idx]
    shape = list(t.shape)
    out: list[Any] = []
    pos = 0
    n_real = sum(len(x.shape) if isinstance(x, TensorValue) and x.dtype == "bool" and isinstance(x.shape, tuple)
                 else 1 for x in items if x is not None and x is not Ellipsis and not isinstance(x, bool))
    concrete_index = None
    # Advanced indices (index lists, index tensors, masks): where each goes in `out`, and its shape.
    advanced: list[tuple[int, Shape]] = []
    for it in items:
        if it is None:
            out.append(1)
        elif it is Ellipsis:
            skip = len(shape) - n_real
            out.extend(shape[pos: pos + skip])
            pos += skip
        elif isinstance(it, bool):
            out.append(1 if it else 0)  # like None, with no entries for False
        elif isinstance(it, int):
            if len(items) == 1 and t.data is not None and shape:
                concrete_index = it
            pos += 1
        elif isinstance(it, slice):
            size = shape[pos] if pos < len(shape) else 1
            if isinstance(size, int) and all(isinstance(x, (int, type(None))) for x in (it.start, it.stop, it.step)):
                out.append(len(range(*it.indices(size))))
            else:
                out.append(Unknown("slice of unknown length", ev.current_ref))
            pos += 1
        elif isinstance(it, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in it):
            advanced.append((len(out), (len(it),)))  # an index list selects len(list) entries: `x[:, [-1], :]`
            pos += 1
        elif isinstance(it, TensorValue):
            if isinstance(it.shape, Unknown):
                return TensorValue(Unknown("advanced indexing", ev.current_ref), t.dtype)
            if it.dtype == "bool":
                advanced.append((len(out), (Unknown("boolean mask indexing", ev.current_ref),)))
                pos += len(it.shape)
            else:
                advanced.append((len(out), it.shape))
                pos += 1
        elif isinstance(it, Unknown):
            pos += 1
            return TensorValue(Unknown(f"index: {it.reason}", ev.current_ref), t.dtype)
        else:
            return TensorValue(Unknown("unsupported index", ev.current_ref), t.dtype)
    if advanced:
        # The advanced indices broadcast together; their dims replace the indexed ones where those
        # are adjacent (ints, applied first, do not separate them), else they go first.
        joint: Shape = ()
        for _, s in advanced:
            b = broadcast(joint, s)
            if isinstance(b, Unknown):
                return TensorValue(Unknown(f"index {b.reason}", ev.current_ref), t.dtype)
            joint = b
        first = advanced[0][0]
        at = first if all(p == first for p, _ in advanced) else 0
        out[at:at] = joint
    out.extend(shape[pos:])
    data = None
    if concrete_index is not None and t.data is not None and len(shape) == 1:
        try:
            data = [t.data[concrete_index]]
        except IndexError:
            raise ev.raise_error("IndexError", "index out of range") from None
    elif t.data is not None:
        data = _basic_index_data(t, items)
    return TensorValue(tuple(out), t.dtype, data=data)


def _basic_index_data(t: TensorValue, items: list[Any]) -> list[Any] | None:
    """The values of `t[items]` for basic indexing (ints, slices, None, ...) of a tensor with values."""
    assert t.data is not None and isinstance(t.shape, tuple)
    shape = t.shape
    if not all(isinstance(d, int) for d in shape):
        return None
    n_real = sum(1 for x in items if x is not None and x is not Ellipsis)
    picks: list[list[int]] = []  # per source dim, the positions kept
    pos = 0
    for it in items:
        if it is None:
            continue
        if it is Ellipsis:
            for _ in range(len(shape) - n_real):
                picks.append(list(range(shape[pos])))
                pos += 1
        elif isinstance(it, int) and not isinstance(it, bool):
            if pos >= len(shape) or not -shape[pos] <= it < shape[pos]:
                return None
            picks.append([it % shape[pos]])
            pos += 1
        elif isinstance(it, slice) and pos < len(shape):
            picks.append(list(range(*it.indices(shape[pos]))))
            pos += 1
        else:
            return None
    while pos < len(shape):
        picks.append(list(range(shape[pos])))
        pos += 1
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    offsets = [0]
    for dim_picks, stride in zip(picks, strides):
        offsets = [o + p * stride for o in offsets for p in dim_picks]
    return [t.data[o] for o in offsets]


def tolist(ev: Evaluator, t: TensorValue) -> Any:
    if t.data is None or isinstance(t.shape, Unknown):
        return Unknown("tensor values are not known statically", ev.current_ref)
    if not t.shape:
        return t.data[0]

    def build(shape: Shape, flat: list[Any]) -> list[Any]:
        if len(shape) == 1:
            return list(flat)
        step = len(flat) // shape[0] if shape[0] else 0
        return [build(shape[1:], flat[i * step:(i + 1) * step]) for i in range(shape[0])]

    return build(t.shape, t.data)


def reduce_dims(t: TensorValue, dim: Any, keepdim: bool) -> Shape | Unknown:
    if isinstance(t.shape, Unknown):
        return t.shape
    if dim is None:
        return tuple(1 for _ in t.shape) if keepdim else ()
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    r = len(t.shape)
    norm = {_norm_dim(d, r) for d in dims}
    if any(not isinstance(d, int) for d in norm):
        return Unknown("reduction over unknown dims")
    return tuple((1 if i in norm else s) for i, s in enumerate(t.shape) if keepdim or i not in norm)


TensorMethod = Callable[["Evaluator", TensorValue, tuple[Any, ...], dict[str, Any]], Any]
TENSOR_METHODS: dict[str, TensorMethod] = {}


def _same(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    return t


def _copy(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    return TensorValue(t.shape, t.dtype, data=t.data)


def _to(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    dt = k.get("dtype")
    for x in a:
        if isinstance(x, DType):
            dt = x
        elif isinstance(x, TensorValue):
            dt = DTYPES.get(x.dtype)
    if dt is None:
        return t
    return _cast_tensor(t, dtype_name(dt))


def _cast_tensor(t: TensorValue, dt: str) -> TensorValue:
    if t.data is None:
        return TensorValue(t.shape, dt)
    if dt in INT_DTYPES:
        return TensorValue(t.shape, dt, data=[int(x) for x in t.data])  # truncates like torch
    return TensorValue(t.shape, dt, data=_cast(t.data, dt))


def _size(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    if isinstance(t.shape, Unknown):
        return t.shape
    if a:
        d = _norm_dim(a[0], len(t.shape))
        if isinstance(d, int) and 0 <= d < len(t.shape):
            return t.shape[d]
        return Unknown("size() of an unknown dim", ev.current_ref)
    return TorchSize(t.shape)


def _view(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    if a and isinstance(a[0], DType):
        return TensorValue(t.shape, a[0].name)
    return reshape(ev, t, a or k.get("shape", ()))


def _flatten(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    start = a[0] if a else k.get("start_dim", 0)
    end = a[1] if len(a) > 1 else k.get("end_dim", -1)
    if isinstance(t.shape, Unknown):
        return TensorValue(t.shape, t.dtype)
    r = len(t.shape)
    if r == 0:
        return TensorValue((1,), t.dtype, data=t.data)
    s, e = _norm_dim(start, r), _norm_dim(end, r)
    if not isinstance(s, int) or not isinstance(e, int):
        return TensorValue(Unknown("flatten of unknown dims", ev.current_ref), t.dtype)
    return TensorValue((*t.shape[:s], numel(t.shape[s:e + 1]), *t.shape[e + 1:]), t.dtype, data=t.data)


def _permute(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    dims = a[0] if len(a) == 1 and isinstance(a[0], (tuple, list)) else a
    if isinstance(t.shape, Unknown):
        return TensorValue(t.shape, t.dtype)
    r = len(t.shape)
    try:
        return TensorValue(tuple(t.shape[_norm_dim(d, r)] for d in dims), t.dtype)
    except (TypeError, IndexError):
        return TensorValue(Unknown("permute of unknown dims", ev.current_ref), t.dtype)


def _unsqueeze(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    d = a[0] if a else k.get("dim")
    if isinstance(t.shape, Unknown) or not isinstance(d, int):
        return TensorValue(Unknown("unsqueeze", ev.current_ref), t.dtype)
    r = len(t.shape) + 1
    if not -2**63 <= d < 2**63:  # what torch's argument parser says of an int beyond int64
        raise ev.raise_error("ValueError", "Overflow when unpacking long long")
    if not -r <= d < r:  # torch's check (list.insert would clamp it, or overflow on a huge one)
        raise ev.raise_error("IndexError", f"Dimension out of range (expected to be in range of [{-r}, {r - 1}], "
                             f"but got {d})")
    d = d + r if d < 0 else d
    s = list(t.shape)
    s.insert(d, 1)
    return TensorValue(tuple(s), t.dtype, data=t.data)


def _squeeze(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    if isinstance(t.shape, Unknown):
        return TensorValue(t.shape, t.dtype)
    d = a[0] if a else k.get("dim")
    if d is None:
        if any(isinstance(x, Unknown) for x in t.shape):
            return TensorValue(Unknown("squeeze of unknown dims", ev.current_ref), t.dtype)
        return TensorValue(tuple(x for x in t.shape if x != 1), t.dtype, data=t.data)
    dims = {_norm_dim(x, len(t.shape)) for x in (d if isinstance(d, (tuple, list)) else (d,))}
    s = [x for i, x in enumerate(t.shape) if not (i in dims and x == 1)]
    return TensorValue(tuple(s), t.dtype, data=t.data)


def _expand(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    dims = parse_size(ev, a)
    if isinstance(dims, Unknown) or isinstance(t.shape, Unknown):
        return TensorValue(Unknown("expand", ev.current_ref), t.dtype)
    off = len(dims) - len(t.shape)
    out = tuple((t.shape[i - off] if (d == -1 and i >= off) else d) for i, d in enumerate(dims))
    return TensorValue(out, t.dtype, data=broadcast_data(t, out))


def _repeat(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    return _repeated(ev, t, parse_size(ev, a or (k.get("repeats", ()),)), "repeat")


def _tile(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """tile(dims): repeat, with dims padded with leading 1s up to the tensor's rank."""
    reps = parse_size(ev, a or (k.get("dims", ()),))
    if not isinstance(reps, Unknown) and not isinstance(t.shape, Unknown) and len(reps) < len(t.shape):
        reps = (1,) * (len(t.shape) - len(reps)) + tuple(reps)
    return _repeated(ev, t, reps, "tile")


def _repeated(ev: Evaluator, t: TensorValue, reps: Shape | Unknown, what: str) -> Any:
    """t.repeat(reps): the tensor's shape padded with leading 1s to len(reps), times reps."""
    if isinstance(reps, Unknown) or isinstance(t.shape, Unknown):
        return TensorValue(Unknown(f"{what} by unknown repeats", ev.current_ref), t.dtype)
    if len(reps) < len(t.shape):
        raise ev.raise_error("RuntimeError", "Number of dimensions of repeat dims can not be smaller than number "
                                             "of dimensions of tensor")
    src = (1,) * (len(reps) - len(t.shape)) + tuple(t.shape)
    out = tuple(s * r for s, r in zip(src, reps))
    if all(isinstance(d, int) for d in out) and any(d < 0 for d in out):
        bad = next(d for d in out if d < 0)
        raise ev.raise_error("RuntimeError", f"Trying to create tensor with negative dimension {bad}: {list(out)}")
    return TensorValue(out, t.dtype, data=_tiled_data(t, src, out))


def _tiled_data(t: TensorValue, src: Shape, out: Shape) -> list[Any] | None:
    """The values of a repeat: out[i, j, ...] = t[i % src[0], j % src[1], ...]."""
    n = numel(out)
    if t.data is None or not all(isinstance(d, int) for d in (*src, *out)) or not isinstance(n, int) \
            or n > MAX_CONCRETE:
        return None
    strides = [1] * len(src)
    for i in range(len(src) - 2, -1, -1):
        strides[i] = strides[i + 1] * src[i + 1]
    offsets = [0]
    for size, period, stride in zip(out, src, strides):
        offsets = [o + (j % period) * stride for o in offsets for j in range(size)]
    return [t.data[o] for o in offsets]


def _reduction(op: str) -> TensorMethod:
    def impl(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
        dim = a[0] if a else k.get("dim")
        keep = bool(a[1]) if len(a) > 1 else bool(k.get("keepdim", False))
        shape = reduce_dims(t, dim, keep)
        if isinstance(shape, Unknown):
            return TensorValue(Unknown(shape.reason, ev.current_ref), t.dtype)
        dt = "int64" if op == "sum" and t.dtype in INT_DTYPES | {"bool"} else t.dtype
        if op in ("argmax", "argmin"):
            dt = "int64"
        data = None
        if dim is None and t.data is not None:
            fns: dict[str, Callable[[list[Any]], Any]] = {"sum": sum, "max": max, "min": min, "prod": math.prod,
                                                          "mean": lambda xs: sum(xs) / len(xs)}
            if op in fns and t.data:
                data = [fns[op](t.data)]
        result = TensorValue(shape, dt, data=data)
        if op in ("max", "min") and dim is not None:
            return (result, TensorValue(shape, "int64"))
        return result

    return impl


def _tolist(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    return tolist(ev, t)


def _item(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    return t.to_python(ev)


def _numel(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    return t.numel()


def _dim(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    return t.shape if isinstance(t.shape, Unknown) else len(t.shape)


def _requires_grad_(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    flag = a[0] if a else k.get("requires_grad", True)
    if isinstance(flag, bool):
        t.requires_grad = flag
        if ev.tape is not None:  # an activation made a leaf that needs a gradient (a forward hook's)
            ev.tape.mark_requires_grad(t, flag)
    return t


def _new(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    shape = parse_size(ev, a)
    return TensorValue(shape, dtype_name(k.get("dtype"), t.dtype))


def _split(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    size = a[0] if a else k.get("split_size_or_sections", k.get("split_size"))
    dim = a[1] if len(a) > 1 else k.get("dim", 0)
    return split_tensor(ev, t, size, dim)


def split_tensor(ev: Evaluator, t: TensorValue, size: Any, dim: Any) -> Any:
    if isinstance(t.shape, Unknown):
        return Unknown("split of a tensor of unknown shape", ev.current_ref)
    if not t.shape:
        return Unknown("shape mismatch: split of a 0-d tensor", ev.current_ref)
    d = _norm_dim(dim, len(t.shape))
    if not isinstance(d, int):
        return Unknown(f"split: {d.reason}" if isinstance(d, Unknown) else "split along an unknown dim", ev.current_ref)
    n = t.shape[d]
    if isinstance(size, (list, tuple)):
        sizes = list(size)
    elif isinstance(size, int) and isinstance(n, int) and size > 0:
        sizes = [min(size, n - i) for i in range(0, n, size)]
    else:
        return Unknown("split of unknown sizes", ev.current_ref)
    out = []
    start: Any = 0
    for s in sizes:
        shape = list(t.shape)
        shape[d] = s
        out.append(TensorValue(tuple(shape), t.dtype, data=_slice_data(t, d, start, s)))
        start = start + s
    return tuple(out)


def _slice_data(t: TensorValue, d: int, start: Any, size: Any) -> list[Any] | None:
    """The values of `t.narrow(d, start, size)` when `t`'s are known (drop-path rates made by
    `torch.linspace(...).split(depths)`, then `.tolist()`)."""
    if t.data is None or not isinstance(t.shape, tuple) or not all(isinstance(n, int) for n in (start, size, *t.shape)):
        return None
    n = t.shape[d]
    inner = numel(t.shape[d + 1:])
    rows = numel(t.shape[:d])
    return [t.data[(r * n + start) * inner + j] for r in range(rows) for j in range(size * inner)]


def _unbind(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    dim = a[0] if a else k.get("dim", 0)
    if isinstance(t.shape, Unknown):
        return Unknown("unbind of a tensor of unknown shape", ev.current_ref)
    if not t.shape:
        return Unknown("shape mismatch: unbind of a 0-d tensor", ev.current_ref)
    d = _norm_dim(dim, len(t.shape))
    if not isinstance(d, int) or not isinstance(t.shape[d], int):
        return Unknown("unbind along an unknown dim", ev.current_ref)
    shape = t.shape[:d] + t.shape[d + 1:]
    return tuple(TensorValue(shape, t.dtype, data=_slice_data(t, d, i, 1)) for i in range(t.shape[d]))


def _shaped_as(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """view_as / reshape_as / expand_as(other): `other`'s shape."""
    other = a[0] if a else k.get("other")
    if not isinstance(other, TensorValue):
        return other if isinstance(other, Unknown) else Unknown("view_as of a non-tensor", ev.current_ref)
    return TensorValue(other.shape, t.dtype)


def _chunk(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    chunks = a[0] if a else k.get("chunks")
    dim = a[1] if len(a) > 1 else k.get("dim", 0)
    if isinstance(t.shape, Unknown) or not isinstance(chunks, int):
        return Unknown("chunk", ev.current_ref)
    if not t.shape:
        return Unknown("shape mismatch: chunk of a 0-d tensor", ev.current_ref)
    d = _norm_dim(dim, len(t.shape))
    n = t.shape[d] if isinstance(d, int) else None
    if not isinstance(n, int):
        return Unknown("chunk of an unknown dim", ev.current_ref)
    if chunks <= 0:
        return Unknown(f"shape mismatch: chunk expects a number of chunks above 0, got {chunks}", ev.current_ref)
    step = -(-n // chunks)
    return split_tensor(ev, t, step, dim)


def _unary_method(fn: Callable[[Any], Any], float_out: bool = True) -> TensorMethod:
    def impl(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
        dt = t.dtype if (t.dtype in FLOAT_DTYPES or not float_out) else "float32"
        return map_unary(t, fn, dt)

    return impl


def _safe_log(x: float) -> float:
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


def _safe(fn: Callable[[float], float], x: float) -> float:
    try:
        return fn(x)
    except OverflowError:
        return math.inf


UNARY_FUNCS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "log": (_safe_log, True), "exp": (math.exp, True), "sqrt": (lambda x: math.sqrt(x) if x >= 0 else math.nan, True),
    "rsqrt": (lambda x: 1 / math.sqrt(x) if x > 0 else math.inf, True), "round": (round, False),
    "floor": (math.floor, False), "ceil": (math.ceil, False), "abs": (abs, False), "neg": (lambda x: -x, False),
    "sign": (lambda x: (x > 0) - (x < 0), False), "sin": (math.sin, True), "cos": (math.cos, True),
    "tanh": (math.tanh, True), "sigmoid": (lambda x: 1 / (1 + math.exp(-x)), True),
    "log2": (lambda x: math.log2(x) if x > 0 else math.nan, True),
    "reciprocal": (lambda x: 1 / x if x else math.inf, True), "relu": (lambda x: max(x, 0), False),
    "trunc": (math.trunc, False), "square": (lambda x: x * x, False),
    "expm1": (lambda x: _safe(math.expm1, x), True), "log1p": (lambda x: math.log1p(x) if x > -1 else math.nan, True),
    "exp2": (lambda x: _safe(lambda y: 2.0 ** y, x), True), "log10": (lambda x: math.log10(x) if x > 0 else math.nan, True),
    "erf": (math.erf, True), "erfc": (math.erfc, True),
}

for _name, (_fn, _fl) in UNARY_FUNCS.items():
    TENSOR_METHODS[_name] = _unary_method(_fn, _fl)
    TENSOR_METHODS[_name + "_"] = _unary_method(_fn, _fl)

def _changed(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """A same-shaped result whose values are not computed."""
    return TensorValue(t.shape, t.dtype)


def _changed_in_place(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    t.data = None  # written in place: its values are no longer known
    return t


# A sparse tensor reports the dense shape (`numel()` too): to_sparse keeps the shape.
for _name in ("contiguous", "cuda", "cpu", "pin_memory", "share_memory_", "detach_", "retain_grad", "to_dense",
              "to_sparse", "to_sparse_csr", "to_sparse_coo", "coalesce"):
    TENSOR_METHODS[_name] = _same if _name.endswith("_") else _copy
for _name in ("normal_", "uniform_", "zero_", "fill_", "copy_", "clamp_", "clamp", "clip",
              "bernoulli_", "exponential_", "trunc_normal_", "fill_diagonal_", "masked_fill_", "masked_fill",
              "add_", "mul_", "div_", "sub_", "clamp_min_", "clamp_max_", "scatter_", "index_fill_",
              "roll", "flip", "tril", "triu", "tril_", "triu_", "clamp_min", "clamp_max",
              "masked_scatter", "nan_to_num", "abs_", "float_power"):
    TENSOR_METHODS[_name] = _changed_in_place if _name.endswith("_") else _changed


def _flip(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """Tensor.flip(dims): the values follow where they are known (nest's `(4 ** arange(n)).flip(0)`)."""
    dims = a[0] if a else k.get("dims")
    dims = (dims,) if isinstance(dims, int) else dims
    if t.data is None or isinstance(t.shape, Unknown) or not isinstance(dims, (list, tuple)) \
            or not all(isinstance(d, int) for d in t.shape) or not all(isinstance(d, int) for d in dims):
        return TensorValue(t.shape, t.dtype)
    shape = t.shape
    rank = len(shape)
    if any(not -rank <= d < rank for d in dims):
        raise ev.raise_error("IndexError", "Dimension out of range")
    flipped = {d % rank for d in dims}
    strides = [1] * rank
    for i in range(rank - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    out = [None] * len(t.data)
    for flat, x in enumerate(t.data):
        dest = 0
        for i in range(rank):
            j = flat // strides[i] % shape[i]
            dest += ((shape[i] - 1 - j) if i in flipped else j) * strides[i]
        out[dest] = x
    return TensorValue(shape, t.dtype, data=out)


def _softmax(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """softmax(dim, dtype=None): the input is cast to `dtype` first."""
    dt = k.get("dtype", a[1] if len(a) > 1 else None)
    return TensorValue(t.shape, dtype_name(dt, t.dtype))


TENSOR_METHODS["softmax"] = TENSOR_METHODS["log_softmax"] = _softmax
for _name in ("detach", "clone", "type_as"):
    TENSOR_METHODS[_name] = _copy
def _cumsum(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    dim = a[0] if a else k.get("dim")
    dt = "int64" if t.dtype in INT_DTYPES | {"bool"} else t.dtype
    dt = dtype_name(k.get("dtype"), dt)
    if isinstance(t.shape, Unknown):
        return TensorValue(t.shape, dt)
    d = _norm_dim(dim, len(t.shape))
    data = None
    if t.data is not None and isinstance(d, int) and all(isinstance(x, int) for x in t.shape) and t.shape:
        inner = numel(t.shape[d + 1:])
        n = t.shape[d]
        vals = [int(x) if dt in INT_DTYPES else x for x in t.data]
        for base in range(0, len(vals), n * inner):
            for j in range(inner):
                for i in range(1, n):
                    vals[base + i * inner + j] += vals[base + (i - 1) * inner + j]
        data = _cast(vals, dt)
    return TensorValue(t.shape, dt, data=data)


def _gather(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """gather(dim, index): the result has the index's shape."""
    index = a[1] if len(a) > 1 else k.get("index")
    if not isinstance(index, TensorValue):
        return index if isinstance(index, Unknown) else Unknown("gather with a non-tensor index", ev.current_ref)
    return TensorValue(index.shape, t.dtype)


def _diff(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """diff(n=1, dim=-1, prepend=None, append=None): differences along `dim`."""
    n = a[0] if a else k.get("n", 1)
    dim = a[1] if len(a) > 1 else k.get("dim", -1)
    prepend = a[2] if len(a) > 2 else k.get("prepend")
    append = a[3] if len(a) > 3 else k.get("append")
    if isinstance(t.shape, Unknown):
        return TensorValue(t.shape, t.dtype)
    parts = [x for x in (prepend, t, append) if x is not None]
    if not all(isinstance(x, TensorValue) and isinstance(x.shape, tuple) and len(x.shape) == len(t.shape)
               for x in parts) or not isinstance(n, int) or not isinstance(dim, int) or not t.shape:
        return Unknown("diff with unknown or mismatched arguments", ev.current_ref)
    d = _norm_dim(dim, len(t.shape))
    if not isinstance(d, int):
        return Unknown(f"diff: {d.reason}", ev.current_ref)
    shape = list(t.shape)
    total: Any = 0
    for x in parts:
        total = total + x.shape[d]  # type: ignore[index]
    shape[d] = total
    out_dt = "bool" if t.dtype == "bool" else t.dtype
    data = None
    if all(x.data is not None for x in parts) and all(isinstance(v, int) for v in shape):
        rows = numel(tuple(shape[:d]))
        inner = numel(tuple(shape[d + 1:]))
        blocks: list[list[Any]] = [[] for _ in range(rows)]
        for x in parts:
            step = x.shape[d] * inner  # type: ignore[index]
            for r in range(rows):
                blocks[r].extend(x.data[r * step:(r + 1) * step])  # type: ignore[index]
        for _ in range(n):
            m = shape[d]
            sub = (lambda p, q: p != q) if out_dt == "bool" else (lambda p, q: q - p)
            blocks = [[sub(b[i * inner + j], b[(i + 1) * inner + j]) for i in range(m - 1) for j in range(inner)]
                      for b in blocks]
            shape[d] = m - 1
        data = [v for b in blocks for v in b]
    else:
        shape[d] = shape[d] - n
    return TensorValue(tuple(shape), out_dt, data=data)


def _unique(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """torch.unique / Tensor.unique (sorted, over all elements): its size is a fact about the
    values, so it is known only where the values are (a tensor built from literals)."""
    if k.get("dim") is not None or t.data is None or isinstance(t.shape, Unknown):
        return Unknown("torch.unique of values vramlint does not follow", ev.current_ref)
    values = sorted(set(t.data))
    out: Any = TensorValue((len(values),), t.dtype, data=values)
    extra = []
    if k.get("return_inverse"):
        extra.append(TensorValue(t.shape, "int64", data=[values.index(x) for x in t.data]))
    if k.get("return_counts"):
        extra.append(TensorValue((len(values),), "int64", data=[t.data.count(x) for x in values]))
    return (out, *extra) if extra else out


TENSOR_METHODS.update({
    "unique": _unique, "flip": _flip,
    "cumsum": _cumsum, "gather": _gather, "diff": _diff,
    "to": _to, "type": _to,
    "int": lambda ev, t, a, k: _cast_tensor(t, "int32"), "long": lambda ev, t, a, k: _cast_tensor(t, "int64"),
    "float": lambda ev, t, a, k: _cast_tensor(t, "float32"), "double": lambda ev, t, a, k: _cast_tensor(t, "float64"),
    "half": lambda ev, t, a, k: _cast_tensor(t, "float16"), "bfloat16": lambda ev, t, a, k: _cast_tensor(t, "bfloat16"),
    "bool": lambda ev, t, a, k: _cast_tensor(t, "bool"),
    "size": _size, "view": _view, "reshape": _view, "view_as": _shaped_as, "reshape_as": _shaped_as,
    "expand_as": _shaped_as,
    "flatten": _flatten, "permute": _permute,
    "transpose": lambda ev, t, a, k: _transpose(t, a[0], a[1]), "swapaxes": lambda ev, t, a, k: _transpose(t, a[0], a[1]),
    "t": lambda ev, t, a, k: _transpose(t, 0, -1) if not isinstance(t.shape, Unknown) and len(t.shape) == 2 else t,
    "unsqueeze": _unsqueeze, "squeeze": _squeeze, "expand": _expand, "repeat": _repeat,
    "sum": _reduction("sum"), "mean": _reduction("mean"), "max": _reduction("max"), "min": _reduction("min"),
    "prod": _reduction("prod"), "amax": _reduction("sum"), "amin": _reduction("sum"), "norm": _reduction("mean"),
    "argmax": _reduction("argmax"), "argmin": _reduction("argmin"), "std": _reduction("mean"), "var": _reduction("mean"),
    "any": _reduction("max"), "all": _reduction("min"),
    "tolist": _tolist, "item": _item, "numel": _numel, "dim": _dim, "ndimension": _dim,
    "requires_grad_": _requires_grad_,
    "new_zeros": _new, "new_ones": _new, "new_empty": _new, "new_full": lambda ev, t, a, k: _new(ev, t, a[:1], k),
    "split": _split, "chunk": _chunk, "unbind": _unbind,
    "pow": lambda ev, t, a, k: elementwise(ev, "pow", t, a[0]),
    "add": lambda ev, t, a, k: elementwise(ev, "add", t, a[0]), "sub": lambda ev, t, a, k: elementwise(ev, "sub", t, a[0]),
    "mul": lambda ev, t, a, k: elementwise(ev, "mul", t, a[0]), "div": lambda ev, t, a, k: elementwise(ev, "truediv", t, a[0]),
    "matmul": lambda ev, t, a, k: matmul(ev, t, a[0]), "bmm": lambda ev, t, a, k: matmul(ev, t, a[0]),
    "mm": lambda ev, t, a, k: matmul(ev, t, a[0]),
    "is_floating_point": lambda ev, t, a, k: t.dtype in FLOAT_DTYPES,
    "element_size": lambda ev, t, a, k: DTYPE_BYTES.get(t.dtype, 4),
    "get_device": lambda ev, t, a, k: -1,
})


# ---------------------------------------------------------------------- unfold, repeat_interleave, addcmul
def _dim_index(ev: Evaluator, d: int, rank: int) -> int:
    """A dim as an index into the shape, or torch's IndexError (a 0-d tensor takes dims 0 and -1)."""
    r = max(rank, 1)
    if not -r <= d < r:
        raise ev.raise_error("IndexError", f"Dimension out of range (expected to be in range of [{-r}, {r - 1}], "
                                           f"but got {d})")
    return d % r


def _unfold(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """Tensor.unfold(dimension, size, step): the windows of `size` every `step` along `dimension`,
    their count in its place and `size` as a new last dim (a view)."""
    dim, size, step = (a[i] if len(a) > i else k.get(n) for i, n in enumerate(("dimension", "size", "step")))
    if dim is None or size is None or step is None:
        raise ev.raise_error("TypeError", "unfold() missing a required argument: 'dimension', 'size' or 'step'")
    if isinstance(t.shape, Unknown) or not all(isinstance(v, (int, Unknown)) for v in (dim, size, step)) \
            or isinstance(dim, Unknown):
        return TensorValue(Unknown("Tensor.unfold of an unknown dim or with arguments that are not ints",
                                   ev.current_ref), t.dtype)
    d = _dim_index(ev, dim, len(t.shape))
    length = t.shape[d] if t.shape else 1
    if isinstance(size, int) and isinstance(length, int) and size > length:
        raise ev.raise_error("RuntimeError", f"maximum size for tensor at dimension {d} is {length} but size is {size}")
    if isinstance(size, int) and size < 0:
        raise ev.raise_error("RuntimeError", f"size is {size} but must be >= 0")
    if isinstance(step, int) and step <= 0:
        raise ev.raise_error("RuntimeError", f"step is {step} but must be > 0")
    if not t.shape:
        return TensorValue((size,), t.dtype)
    shape = list(t.shape)
    shape[d] = (length - size) // step + 1
    return TensorValue((*shape, size), t.dtype)


def _repeat_interleave(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    """repeat_interleave(repeats, dim=None, *, output_size=None): each entry along `dim` (of the
    flattened tensor when dim is None) `repeats` times. A tensor of repeats sizes the result by
    its values, known only where they are followed. torch.repeat_interleave(repeats) alone is
    arange(len(repeats)) repeated."""
    repeats = a[0] if a else k.get("repeats")
    dim = a[1] if len(a) > 1 else k.get("dim")
    if repeats is None:
        return _repeat_indices(ev, t)
    if isinstance(t.shape, Unknown) or not isinstance(dim, (int, type(None))):
        return TensorValue(Unknown("repeat_interleave of a tensor of unknown shape or along an unknown dim",
                                   ev.current_ref), t.dtype)
    shape: tuple[Any, ...] = (t.numel(),) if dim is None else t.shape
    d = 0 if dim is None else _dim_index(ev, dim, len(t.shape))
    if not shape:  # a 0-d tensor: one entry (torch refuses any dim, naming dim 1 of an unsqueezed copy)
        if dim is not None:
            raise ev.raise_error("IndexError", "Dimension out of range (expected to be in range of [-1, 0], but got 1)")
        shape = (1,)
    counts = _repeat_counts(ev, repeats, shape[d], dim)
    size = k.get("output_size")
    if not isinstance(size, int):
        size = sum(counts) if isinstance(counts, list) else counts
    out = (*shape[:d], size, *shape[d + 1:])
    data = None
    if t.data is not None and isinstance(counts, list) and all(isinstance(x, int) for x in out) \
            and numel(out) <= MAX_CONCRETE:
        data = _interleaved(t.data, shape, d, counts)
    return TensorValue(out, t.dtype, data=data)


def _repeat_counts(ev: Evaluator, repeats: Any, n: Any, dim: Any) -> list[int] | Any:
    """The repeat count of each of the `n` entries (a list), or the repeated size (an int or Unknown)."""
    if isinstance(repeats, TensorValue):
        if isinstance(repeats.shape, Unknown) or len(repeats.shape) > 1:
            if isinstance(repeats.shape, tuple):
                raise ev.raise_error("RuntimeError", "repeats must be 0-dim or 1-dim tensor")
            return Unknown("repeat_interleave by repeats of unknown shape", ev.current_ref)
        m = repeats.shape[0] if repeats.shape else 1
        if isinstance(m, int) and isinstance(n, int) and m not in (1, n):
            raise ev.raise_error("RuntimeError", "repeats must have the same size as input along dim, but got "
                                                 f"repeats.size(0) = {m} and input.size({dim or 0}) = {n}")
        if repeats.data is None:
            return Unknown("repeat_interleave by a tensor of repeats whose values vramlint does not follow",
                           ev.current_ref)
        repeats = repeats.data[0] if m == 1 else [int(x) for x in repeats.data]
    if isinstance(repeats, bool) or not isinstance(repeats, (int, list)):
        return repeats if isinstance(repeats, Unknown) else Unknown("repeat_interleave by unknown repeats",
                                                                   ev.current_ref)
    if any(x < 0 for x in (repeats if isinstance(repeats, list) else [repeats])):
        raise ev.raise_error("RuntimeError", "Repeats must be non-negative")
    if isinstance(repeats, int):
        return [repeats] * n if isinstance(n, int) and n <= MAX_CONCRETE else n * repeats
    return repeats


def _interleaved(data: list[Any], shape: Shape, d: int, counts: list[int]) -> list[Any]:
    n, inner = shape[d], numel(shape[d + 1:])
    out: list[Any] = []
    for r in range(numel(shape[:d])):
        for i in range(n):
            block = data[(r * n + i) * inner:(r * n + i + 1) * inner]
            out.extend(block * counts[i])
    return out


def _repeat_indices(ev: Evaluator, repeats: TensorValue) -> Any:
    """torch.repeat_interleave(repeats): index i, repeats[i] times."""
    if isinstance(repeats.shape, Unknown) or len(repeats.shape) > 1:
        return TensorValue(Unknown("repeat_interleave of repeats of unknown shape", ev.current_ref), "int64")
    counts = _repeat_counts(ev, repeats, repeats.shape[0] if repeats.shape else 1, 0)
    if not isinstance(counts, list):
        return TensorValue((counts,), "int64")
    data = [i for i, c in enumerate(counts) for _ in range(c)]
    return TensorValue((len(data),), "int64", data=data if len(data) <= MAX_CONCRETE else None)


def broadcast_all(ev: Evaluator, shapes: Sequence[Shape]) -> Shape:
    """The broadcast of several shapes, as torch's TensorIterator computes it: a known mismatch is
    torch's RuntimeError (size `a` is that of the shapes broadcast so far)."""
    out: Shape = ()
    for shape in shapes:
        rank = max(len(out), len(shape))
        for i in range(rank):
            x = out[i - rank + len(out)] if i - rank + len(out) >= 0 else 1
            y = shape[i - rank + len(shape)] if i - rank + len(shape) >= 0 else 1
            if isinstance(x, int) and isinstance(y, int) and x != y and 1 not in (x, y):
                raise ev.raise_error("RuntimeError", f"The size of tensor a ({x}) must match the size of tensor b "
                                                     f"({y}) at non-singleton dimension {i}")
        b = broadcast(out, shape)
        assert not isinstance(b, Unknown)  # known mismatches were raised above
        out = b
    return out


_ADDCDIV_INT = ("Integer division with addcdiv is no longer supported, and in a future  release addcdiv will "
                "perform a true division of tensor1 and tensor2. The historic addcdiv behavior can be implemented "
                "as (input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as "
                "(input + value * tensor1 / tensor2) for float inputs. The future addcdiv behavior is just the "
                "latter implementation: (input + value * tensor1 / tensor2), for all dtypes.")


def _addc(op: str, in_place: bool) -> TensorMethod:
    """addcmul / addcdiv(tensor1, tensor2, value=1): input + value * tensor1 op tensor2, the
    broadcast of the three (in place: it must be the input's shape)."""

    def impl(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
        t1, t2 = (a[0] if a else k.get("tensor1")), (a[1] if len(a) > 1 else k.get("tensor2"))
        for x in (t1, t2):
            if not isinstance(x, TensorValue):
                return x if isinstance(x, Unknown) else Unknown(f"{op} of a non-tensor", ev.current_ref)
        if op == "addcdiv" and t1.dtype not in FLOAT_DTYPES and t2.dtype not in FLOAT_DTYPES \
                and not t1.dtype.startswith("complex") and not t2.dtype.startswith("complex"):
            raise ev.raise_error("RuntimeError", _ADDCDIV_INT)
        for x in (t, t1, t2):
            if isinstance(x.shape, Unknown):
                return TensorValue(Unknown(f"{op} of a tensor of unknown shape", ev.current_ref), t.dtype)
        shape = broadcast_all(ev, (t.shape, t1.shape, t2.shape))  # type: ignore[arg-type]
        if not in_place:
            return TensorValue(shape, result_type((t, t1, t2)))
        if shape != t.shape and all(isinstance(d, int) for d in (*shape, *t.shape)):  # type: ignore[misc]
            raise ev.raise_error("RuntimeError", f"output with shape {list(t.shape)} doesn't match the broadcast "  # type: ignore[arg-type]
                                                 f"shape {list(shape)}")
        t.data = None
        return t

    return impl


def cast_bool(ev: Evaluator, v: Any) -> Any:
    """A tensor's truth values (logical ops read any dtype as bool); numbers as bools."""
    if isinstance(v, TensorValue):
        return _cast_tensor(v, "bool") if v.dtype != "bool" else v
    return bool(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _compare_method(op: str) -> TensorMethod:
    def method(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
        return elementwise(ev, op, t, a[0] if a else k.get("other"), out_dtype="bool")

    return method


def _logical_method(op: str) -> TensorMethod:
    def method(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
        other = a[0] if a else k.get("other")
        return elementwise(ev, op, cast_bool(ev, t), cast_bool(ev, other), out_dtype="bool")

    return method


def _baddbmm_method(ev: Evaluator, t: TensorValue, a: Any, k: Any) -> Any:
    prod = matmul(ev, a[0] if a else k.get("batch1"), a[1] if len(a) > 1 else k.get("batch2"))
    return elementwise(ev, "add", prod, t) if isinstance(prod, TensorValue) else prod


TENSOR_METHODS.update({
    **{name: _compare_method(name) for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    "not_equal": _compare_method("ne"), "greater": _compare_method("gt"), "less": _compare_method("lt"),
    "bitwise_and": lambda ev, t, a, k: elementwise(ev, "and", t, a[0] if a else k.get("other")),
    "bitwise_or": lambda ev, t, a, k: elementwise(ev, "or", t, a[0] if a else k.get("other")),
    "bitwise_xor": lambda ev, t, a, k: elementwise(ev, "xor", t, a[0] if a else k.get("other")),
    "logical_and": _logical_method("and"), "logical_or": _logical_method("or"), "logical_xor": _logical_method("xor"),
    "baddbmm": _baddbmm_method,
    "unfold": _unfold, "tile": _tile, "repeat_interleave": _repeat_interleave,
    "addcmul": _addc("addcmul", False), "addcmul_": _addc("addcmul", True),
    "addcdiv": _addc("addcdiv", False), "addcdiv_": _addc("addcdiv", True),
})


def _contains(seq: Sequence[Any]) -> Unknown | None:
    return contains_unknown(tuple(seq))
