"""The `bitsandbytes` package, as vramlint's own catalog: users analyse QLoRA code without it installed.

transformers' own quantizer code runs from source (`quantizers/quantizer_bnb_4bit.py`,
`integrations/bitsandbytes.py: replace_with_bnb_linear`): it finds this module through
`importlib.util.find_spec("bitsandbytes")` and `bitsandbytes.__version__`, and builds
`bnb.nn.Linear4bit` / `bnb.nn.Linear8bitLt` in place of each `nn.Linear`. Those layers hold their
weight as bitsandbytes does once it is on the GPU: a `Params4bit` of packed 4-bit data plus its
quantization state, an `Int8Params` of int8 plus its row scales (storage.py). peft's own bnb LoRA
layers (`peft/tuners/lora/bnb.py`) wrap them, as with the real package.

The forward of a 4-bit layer (bitsandbytes nn/modules.py `Linear4bit.forward` -> `matmul_4bit`,
autograd/_functions.py `MatMul4Bit`): the input cast to `compute_dtype`, the weight dequantized to
a `compute_dtype` matrix of the layer's full shape (transient), a linear, the output cast back to
the input's dtype. Autograd keeps only the quantized weight (`ctx.tensors = (None, B)`): the
backward dequantizes it again. `optim`: the 8-bit and paged optimizers, which only carry their
arguments (the training-setup scan maps their class names, training_setup.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import (
    Args,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Unknown,
)
from vramlint.frontends.bitsandbytes.storage import Packed4bit, int8_state_bytes
from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    CATALOG,
    LayerNative,
    bind_arguments,
    first_input,
    parse_signature,
)
from vramlint.frontends.torch.module import state_of
from vramlint.frontends.torch.stubs import tensor_class, torch_classes
from vramlint.frontends.torch.tensors import DTYPE_BYTES, DType, TensorValue, dtype_name
from vramlint.memory.tape import tensor_bytes

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

VERSION = "0.50.2"  # the release whose source storage.py cites
OPTIMIZERS = ("Adam", "AdamW", "Adam8bit", "AdamW8bit", "Adam32bit", "AdamW32bit", "PagedAdam", "PagedAdamW",
              "PagedAdam8bit", "PagedAdamW8bit", "PagedAdam32bit", "PagedAdamW32bit", "Lion", "Lion8bit",
              "Lion32bit", "PagedLion", "PagedLion8bit", "PagedLion32bit", "SGD", "SGD8bit", "RMSprop",
              "RMSprop8bit", "Adagrad", "Adagrad8bit", "LAMB", "LAMB8bit", "LARS", "LARS8bit", "AdEMAMix",
              "AdEMAMix8bit", "PagedAdEMAMix8bit")


class QuantizedTensor(TensorValue):
    """A Params4bit or Int8Params once quantized: its data as stored, plus its state's bytes."""

    __slots__ = ("kind", "state_bytes", "values_per_element")

    def __init__(self, shape: tuple[int, ...], dtype: str, kind: str, state_bytes: int,
                 values_per_element: int = 1) -> None:
        super().__init__(shape, dtype)
        self.is_param = True
        self.requires_grad = False
        self.kind = kind
        self.state_bytes = state_bytes
        self.values_per_element = values_per_element

    def value_class(self, ev: Evaluator) -> Any:
        return _classes(ev.loader)[self.kind]

    def counted_numel(self) -> Any:
        n = self.numel()
        return n * self.values_per_element if isinstance(n, int) else n

    def attached_bytes(self) -> int:
        return self.state_bytes


class _ParamClassNative:
    """isinstance(p, bnb.nn.Params4bit): a QuantizedTensor of that kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def instancecheck(self, ev: Evaluator, v: Any) -> Any:
        return v if isinstance(v, Unknown) else isinstance(v, QuantizedTensor) and v.kind == self.kind

    def construct(self, ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        return Unknown(f"bnb.nn.{self.kind}(...) built by the analysed code is not modelled", ev.current_ref)


# ---------------------------------------------------------------------- layers
LINEAR4BIT_SIG = ("input_features, output_features, bias=True, compute_dtype=None, compress_statistics=True, "
                  "quant_type='fp4', quant_storage=None, device=None")
LINEAR8BIT_SIG = ("input_features, output_features, bias=True, has_fp16_weights=True, threshold=0.0, "
                  "index=None, device=None")


def _linear_init(ev: Evaluator, inst: Instance, values: dict[str, Any]) -> Any:
    """nn.Linear.__init__(in, out, bias): the weight and bias before quantization."""
    linear = torch_classes(ev.loader).layers["Linear"]
    init, _ = linear.lookup("__init__")
    return ev.call(init, (inst, values["input_features"], values["output_features"], values["bias"]), {})


def _shape(inst: Instance) -> tuple[int, int] | None:
    o, i = inst.attrs.get("out_features"), inst.attrs.get("in_features")
    return (o, i) if isinstance(o, int) and isinstance(i, int) else None


def _linear4bit_init(quant_type: str | None) -> NativeFunction:
    sig = parse_signature(LINEAR4BIT_SIG)

    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst: Instance = a[0]
        values = bind_arguments(ev, sig, a, k, "bnb.nn.Linear4bit()")
        if quant_type is not None:  # LinearNF4 / LinearFP4
            values["quant_type"] = quant_type
        _linear_init(ev, inst, values)
        storage = values["quant_storage"]
        storage_name = dtype_name(storage, "uint8") if isinstance(storage, DType) else "uint8"
        double = values["compress_statistics"] is True
        shape = _shape(inst)
        if shape is not None:
            packed = Packed4bit(shape[0] * shape[1], DTYPE_BYTES.get(storage_name, 1), double)
            weight = QuantizedTensor((packed.packed_elements, 1), storage_name, "Params4bit", packed.state_bytes,
                                     2 * DTYPE_BYTES.get(storage_name, 1))
            weight.attrs = {"compress_statistics": double, "quant_type": values["quant_type"], "blocksize": 64,
                            "quant_storage": DType(storage_name), "bnb_quantized": True, "quant_state": None,
                            "module": inst}
            state_of(inst).params["weight"] = weight
        compute = values["compute_dtype"]
        inst.attrs.update({"compute_dtype": compute, "compute_type_is_set": compute is not None,
                           "quant_state": None, "quant_storage": DType(storage_name)})
        return None

    return NativeFunction("Linear4bit.__init__", init)


def _linear8bit_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst: Instance = a[0]
    values = bind_arguments(ev, parse_signature(LINEAR8BIT_SIG), a, k, "bnb.nn.Linear8bitLt()")
    _linear_init(ev, inst, values)
    shape = _shape(inst)
    fp16_weights = values["has_fp16_weights"] is True
    if shape is not None and not fp16_weights:
        weight = QuantizedTensor(shape, "int8", "Int8Params", int8_state_bytes(shape[0]))
        weight.attrs = {"has_fp16_weights": False, "CB": weight, "SCB": None}
        state_of(inst).params["weight"] = weight
    inst.attrs.update({"threshold": values["threshold"], "index": values["index"]})
    return None


def _compute_dtype(inst: Instance, x: TensorValue) -> str:
    c = inst.attrs.get("compute_dtype")
    return c.name if isinstance(c, DType) else x.dtype


def _record(ev: Evaluator, name: str, args: tuple[Any, ...], out: TensorValue, module: Instance | None) -> None:
    if ev.tape is not None:
        ev.tape.record(name, args, {}, out, module, ev.current_ref)


# bitsandbytes 0.50.2 backends/cuda/ops.py:934-979 (`gemm_4bit`): up to 4 rows (tokens) always run the
# fused 4-bit kernel; past that, depending on the GPU architecture (and always past 1,536 rows), the
# weight is dequantized to a full matrix and `F.linear` runs (`_dequant_linear_fallback`): counted
# from 5 rows on, the larger case.
FUSED_MAX_ROWS = 4


def _dequantizes_forward(x: TensorValue) -> bool:
    if not isinstance(x.shape, tuple) or not x.shape:
        return True
    rows = 1
    for d in x.shape[:-1]:
        if not isinstance(d, int):
            return True
        rows *= d
    return rows > FUSED_MAX_ROWS


def _forward(dequantizes: bool) -> NativeFunction:
    """Linear4bit / Linear8bitLt forward: input cast to the compute dtype, the weight dequantized
    (4-bit: a transient compute-dtype matrix of the full shape), the linear, the cast back."""

    def forward(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst: Instance = a[0]
        x = shapes.as_tensor(ev, first_input(a[1:], k, "x"), inst.cls.name)
        if not isinstance(x, TensorValue):
            return x
        shape = _shape(inst)
        out = shapes.linear(ev, x, inst.attrs.get("in_features"), inst.attrs.get("out_features"), inst.cls.name)
        if not isinstance(out, TensorValue) or shape is None:
            return out
        compute = _compute_dtype(inst, x) if dequantizes else x.dtype
        xc = x
        if compute != x.dtype:
            xc = TensorValue(x.shape, compute)
            _record(ev, "Tensor.to", (x,), xc, None)
        operands: tuple[Any, ...] = (xc,)
        dense = TensorValue(shape, compute)
        if dequantizes and _dequantizes_forward(x):
            _record(ev, "torch.dequantize", (state_of(inst).params.get("weight"),), dense, None)
            operands = (xc, dense)  # read by the linear, not kept for backward: released after it
        y = TensorValue(out.shape, compute)
        _record(ev, "nn.Linear", operands, y, inst)
        if dequantizes and ev.tape is not None and ev.tape.ops and ev.tape.ops[-1].requires_grad:
            # MatMul4Bit.backward: grad_A = grad_output @ dequantize_4bit(B) (autograd/_functions.py:385-388)
            ev.tape.ops[-1].backward_temp += tensor_bytes(dense)
        if compute == x.dtype:
            return y
        back = TensorValue(out.shape, x.dtype)
        _record(ev, "Tensor.to", (y,), back, None)
        return back

    return NativeFunction("Linear4bit.forward" if dequantizes else "Linear8bitLt.forward", forward)


def _layer(linear: ClassValue, name: str, init: NativeFunction, dequantizes: bool) -> ClassValue:
    ns: dict[str, Any] = {"__init__": init, "forward": _forward(dequantizes)}
    return ClassValue(name, (linear,), ns, "bitsandbytes.nn.modules", native=LayerNative(CATALOG["Linear"]))


def _classes(loader: Loader) -> dict[str, ClassValue]:
    found: dict[str, ClassValue] | None = loader.frontend_state.get("bitsandbytes")
    if found is not None:
        return found
    torch = torch_classes(loader)
    linear = torch.layers["Linear"]
    parameter = tensor_class(loader, parameter=True)
    four = _layer(linear, "Linear4bit", _linear4bit_init(None), True)
    out = {
        "Params4bit": ClassValue("Params4bit", (parameter,), {}, "bitsandbytes.nn.modules",
                                 native=_ParamClassNative("Params4bit")),
        "Int8Params": ClassValue("Int8Params", (parameter,), {}, "bitsandbytes.nn.modules",
                                 native=_ParamClassNative("Int8Params")),
        "Linear4bit": four,
        "LinearNF4": ClassValue("LinearNF4", (four,), {"__init__": _linear4bit_init("nf4")},
                                "bitsandbytes.nn.modules", native=LayerNative(CATALOG["Linear"])),
        "LinearFP4": ClassValue("LinearFP4", (four,), {"__init__": _linear4bit_init("fp4")},
                                "bitsandbytes.nn.modules", native=LayerNative(CATALOG["Linear"])),
        "Linear8bitLt": _layer(linear, "Linear8bitLt", NativeFunction("Linear8bitLt.__init__", _linear8bit_init),
                               False),
    }
    loader.frontend_state["bitsandbytes"] = out
    return out


def _optimizer_class(loader: Loader, name: str) -> ClassValue:
    """An optimizer that keeps its arguments (`params`, `lr`...): memory comes from the setup scan."""

    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst: Instance = a[0]
        inst.attrs.update({"params": a[1] if len(a) > 1 else k.get("params"), "defaults": dict(k)})
        return None

    ns = {"__init__": NativeFunction(f"{name}.__init__", init),
          "step": NativeFunction(f"{name}.step", lambda ev, a, k: None),
          "zero_grad": NativeFunction(f"{name}.zero_grad", lambda ev, a, k: None)}
    return ClassValue(name, (loader.builtins["object"],), ns, "bitsandbytes.optim")


def _unmodelled(name: str) -> Any:
    return lambda attr: Unknown(f"`{name}.{attr}` is not modelled", None)


def bitsandbytes_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted not in ("bitsandbytes", "bitsandbytes.nn", "bitsandbytes.optim"):
        return None
    classes = _classes(loader)
    if dotted == "bitsandbytes.nn":
        return ModuleValue(dotted, dict(classes), getattr_hook=_unmodelled(dotted))
    if dotted == "bitsandbytes.optim":
        cache = loader.frontend_state.setdefault("bitsandbytes.optim", {})
        if not cache:
            cache.update({n: _optimizer_class(loader, n) for n in OPTIMIZERS})
        return ModuleValue(dotted, dict(cache), getattr_hook=_unmodelled(dotted))
    nn = bitsandbytes_module(loader, "bitsandbytes.nn")
    optim = bitsandbytes_module(loader, "bitsandbytes.optim")
    return ModuleValue(dotted, {"__version__": VERSION, "nn": nn, "optim": optim},
                       getattr_hook=_unmodelled(dotted))

