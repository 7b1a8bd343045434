"""Keras layer and model semantics over the torch frontend's modules.

- A layer's weights are parameters of its module state (non-trainable ones, such as
  BatchNormalization's moving statistics, have requires_grad False), created by `build(input_shape)`
  when the layer is first called, as Keras does. Until then the layer holds an `<unbuilt>`
  placeholder of unknown size, so a count never silently misses weights.
- Layers assigned to attributes are tracked, also inside lists, tuples and dicts (Keras's
  auto-tracking; torch needs ModuleList for that).
- Called on symbolic tensors (functional code), a layer records a node of the graph (symbolic.py).
Models (functional, Sequential, subclassed) are in model.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.values import (
    MISSING,
    Args,
    BoundMethod,
    ClassValue,
    FunctionValue,
    Instance,
    Kwargs,
    NativeFunction,
    SourceRef,
    Unknown,
)
from vramlint.frontends.keras.symbolic import (
    KerasNode,
    flat_symbolic,
    graph_layers,
    has_symbolic,
    input_shape_of,
    keras_dtype,
    none_batch,
    unwrap,
    wrap,
)
from vramlint.frontends.torch.module import (
    ModuleNative,
    ModuleState,
    is_module,
    named_modules,
    named_tensors,
)
from vramlint.frontends.torch.tensors import TensorValue, shape_text

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.protocol import Protocol

UNBUILT = "<unbuilt>"


def snake_case(name: str) -> str:
    """Keras's default layer name for a class (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class KerasState(ModuleState):
    __slots__ = ("name", "trainable", "built", "frozen", "declared_input", "inputs", "outputs",
                 "seq_layers", "seq_output", "input_specs", "kind", "dtype")
    # Its copy leaves out the symbolic graph (a Sequential's layers, a functional model's
    # tensors): not a copy a repeated construction may be (Protocol.strict_copy fails).
    shares_mutable_fields = True

    def __init__(self, ref: SourceRef | None, name: str) -> None:
        super().__init__(ref)
        self.name = name
        self.trainable = True
        self.built = False
        self.frozen: set[int] = set()  # weights created with trainable=False
        self.declared_input: tuple[Any, ...] | None = None  # input_shape= / input_dim= (with the batch)
        self.inputs: Any = None  # functional: the model's symbolic inputs (a structure)
        self.outputs: Any = None
        self.seq_layers: list[Instance] = []
        self.seq_output: Any = None  # Sequential: the symbolic output of the layers so far
        # The model's per-sample input shapes and dtypes once built: [(shape without batch, dtype)]
        self.input_specs: list[tuple[tuple[Any, ...], str]] | None = None
        self.kind = "layer"  # "layer" | "subclassed" | "functional" | "sequential"
        self.dtype: str | None = None

    def deepcopy(self, proto: Protocol, memo: dict[int, Any]) -> KerasState:
        s = KerasState(self.ref, self.name)
        base = ModuleState.deepcopy(self, proto, memo)
        s.modules, s.params, s.buffers, s.training = base.modules, base.params, base.buffers, base.training
        s.trainable, s.built, s.kind, s.dtype = self.trainable, self.built, self.kind, self.dtype
        s.frozen = {id(memo[i]) for i in self.frozen if i in memo}
        s.declared_input, s.input_specs = self.declared_input, self.input_specs
        return s


def is_keras(v: Any) -> bool:
    return isinstance(v, Instance) and isinstance(v.state, KerasState)


def kstate(v: Instance) -> KerasState:
    assert isinstance(v.state, KerasState)
    return v.state


# ---------------------------------------------------------------------- calling a layer
def _layer_call(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """layer(inputs, ...): build on first call, then call; on symbolic inputs, record a node."""
    layer: Instance = a[0]
    args = a[1:]
    if not args and "inputs" in k:
        args, k = (k["inputs"],), {x: v for x, v in k.items() if x != "inputs"}
    if has_symbolic((args, k)):
        out = _run(ev, layer, unwrap(args), unwrap(k), input_shape_of(args[0]) if args else None)
        if isinstance(out, Unknown):
            return out
        return wrap(out, KerasNode(layer, args, k, ev.current_ref), none_batch((args, k)))
    return _run(ev, layer, args, k, input_shape_of(args[0]) if args else None)


def _run(ev: Evaluator, layer: Instance, args: Args, k: Kwargs, shape: Any) -> Any:
    st = kstate(layer)
    sync_tracked(layer)
    if not st.built:
        build_layer(ev, layer, shape, from_call=True)
    tape = ev.tape
    if tape is not None:
        tape.enter_module(layer, (*args, *k.values()))
    try:
        out = call_method(ev, layer, args, k)
    finally:
        if tape is not None:
            tape.exit_module()
    sync_tracked(layer)
    st.record_call(out)
    return out


def call_method(ev: Evaluator, layer: Instance, args: Args, k: Kwargs) -> Any:
    fn, _ = layer.cls.lookup("call")
    if isinstance(fn, FunctionValue):
        # Keras passes `training` and `mask` only to a call() that declares them.
        declared = _param_names(fn)
        if "kwargs" not in declared:
            k = {x: v for x, v in k.items() if x not in ("training", "mask") or x in declared}
    if fn is MISSING:
        return Unknown(f"{layer.cls.name} defines no call()", ev.current_ref)
    return ev.call(BoundMethod(layer, fn), args, k)


def _param_names(fn: FunctionValue) -> set[str]:
    node = fn.node
    p = node.params
    names = {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)}
    if isinstance(p.star_kwarg, cst.Param):
        names.add("kwargs")
    return names


def build_layer(ev: Evaluator, layer: Instance, shape: Any, from_call: bool = False) -> None:
    """layer.build(input_shape), once: the catalog's rule, the code's own build(), or (for a
    model without one) a symbolic call that builds its sublayers."""
    st = kstate(layer)
    st.built = True
    st.params.pop(UNBUILT, None)
    fn, _ = layer.cls.lookup("build")
    if from_call and isinstance(fn, NativeFunction) and fn.name == "Model.build":
        record_specs(st, shape)  # the call that follows builds the sublayers
        return
    if fn is not MISSING:
        ev.call(BoundMethod(layer, fn), (shape,), {})
    record_specs(st, shape)


def record_specs(st: KerasState, shape: Any) -> None:
    if st.input_specs is not None or shape is None or isinstance(shape, Unknown):
        return
    shapes = shape if isinstance(shape, list) else [shape]
    if all(isinstance(s, tuple) and s for s in shapes):
        st.input_specs = [(tuple(s[1:]), "float32") for s in shapes]


def sync_tracked(layer: Instance) -> None:
    """Layers held in lists, tuples and dicts of attributes are sublayers (Keras tracks them)."""
    st = kstate(layer)
    for name, v in list(layer.attrs.items()):
        if isinstance(v, (list, tuple, dict)):
            for key, x in _contained(name, v, 0):
                if x is not layer and key not in st.modules:
                    st.modules[key] = x


def _contained(prefix: str, v: Any, depth: int) -> Iterator[tuple[str, Instance]]:
    """The layers inside nested lists, tuples and dicts, with their paths ("blocks.0.1")."""
    items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, (list, tuple)) else ()
    for i, (key, x) in enumerate(items):
        if i >= 10_000:
            return
        path = f"{prefix}.{key}"
        if is_module(x):
            yield path, x
        elif depth < 3 and isinstance(x, (list, tuple, dict)):
            yield from _contained(path, x, depth + 1)


def set_trainable(layer: Instance, flag: bool) -> None:
    """layer.trainable = flag: every weight below it follows (a weight made non-trainable stays so)."""
    for _, m in named_modules(layer):
        if is_keras(m):
            mst = kstate(m)
            mst.trainable = flag
            for t in mst.params.values():
                if isinstance(t, TensorValue):
                    t.requires_grad = flag and id(t) not in mst.frozen


# ---------------------------------------------------------------------- weights
_ADD_WEIGHT_K3 = ("shape", "initializer", "dtype", "trainable", "autocast", "regularizer", "constraint",
                  "aggregation", "overwrite_with_gradient", "name")
_ADD_WEIGHT_K2 = ("name", "shape", "dtype", "initializer", "regularizer", "trainable", "constraint")


def add_weight(ev: Evaluator, layer: Instance, shape: Any, name: str | None, trainable: bool = True,
               dtype: Any = None) -> TensorValue:
    st = kstate(layer)
    if shape is None:
        dims: Any = ()
    elif isinstance(shape, Unknown):
        dims = shape
    elif isinstance(shape, int) and not isinstance(shape, bool):
        dims = (shape,)
    elif isinstance(shape, (tuple, list)):
        dims = tuple(shape)
        bad = next((d for d in dims if not isinstance(d, (int, Unknown)) or isinstance(d, bool) or d is None), MISSING)
        if bad is not MISSING:
            dims = Unknown(f"{st.name}: weight shape {shape_text(shape)} has a dimension that is not an int",
                           ev.current_ref)
    else:
        dims = Unknown(f"{st.name}: weight shape is not a tuple", ev.current_ref)
    t = TensorValue(dims, keras_dtype(dtype, st.dtype or "float32"))
    t.is_param = True
    t.requires_grad = bool(trainable) and st.trainable
    if not trainable:
        st.frozen.add(id(t))
    base = name if isinstance(name, str) and name else "variable"
    key, i = base, 1
    while key in st.params or key in st.modules:
        key, i = f"{base}_{i}", i + 1
    st.params[key] = t
    return t


def _add_weight(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    layer = a[0]
    pos = a[1:]
    order = _ADD_WEIGHT_K2 if pos and isinstance(pos[0], str) else _ADD_WEIGHT_K3
    values = dict(zip(order, pos, strict=False))
    values.update(k)
    trainable = values.get("trainable", True)
    if isinstance(trainable, Unknown):
        ev.record(trainable)
        trainable = True
    return add_weight(ev, layer, values.get("shape"), values.get("name"), trainable is not False,
                      values.get("dtype"))


# ---------------------------------------------------------------------- natives
class KerasLayerNative(ModuleNative):
    """Hooks of keras.layers.Layer and every subclass."""

    def init_state(self, ev: Evaluator, inst: Instance) -> None:
        st = KerasState(ev.current_ref, snake_case(inst.cls.name))
        inst.state = st
        if needs_build(inst.cls):
            placeholder = TensorValue(Unknown(
                f"Keras creates the weights of `{st.name}` ({inst.cls.name}) when it is first called, and nothing "
                "calls it on an input of known shape (start the model with keras.Input(shape=...), call "
                "model.build(...), or give `inputs` in the configuration)", ev.current_ref))
            placeholder.is_param = True
            st.params[UNBUILT] = placeholder

    def getattr(self, ev: Evaluator, inst: Instance, name: str) -> Any:
        v = super().getattr(ev, inst, name)
        if v is not MISSING:
            return v
        st = inst.state
        if not isinstance(st, KerasState):
            return MISSING
        if name == "build":
            own, _ = inst.cls.lookup("build")
            if isinstance(own, FunctionValue):  # the code's own build(), called by the code: once
                return NativeFunction(f"{inst.cls.name}.build", lambda ev2, a, k: _once_build(ev2, inst, a, k))
            return MISSING
        prop = _PROPERTIES.get(name)
        return prop(ev, inst, st) if prop is not None else MISSING

    def setattr(self, ev: Evaluator, inst: Instance, name: str, value: Any) -> bool:
        st = inst.state
        if not isinstance(st, KerasState):
            return False
        if name == "trainable" and isinstance(value, bool):
            set_trainable(inst, value)
            return True
        if name == "name" and isinstance(value, str):
            st.name = value
            return True
        if isinstance(value, TensorValue) and value.is_param and any(t is value for t in st.params.values()):
            return False  # `self.w = self.add_weight(...)`: registered under its weight name already
        if value is inst:
            return False
        return super().setattr(ev, inst, name, value)


def _once_build(ev: Evaluator, layer: Instance, a: Args, k: Kwargs) -> Any:
    if not kstate(layer).built:
        build_layer(ev, layer, as_shape(a[0] if a else k.get("input_shape")))
    return None


def needs_build(cls: ClassValue) -> bool:
    """Whether a layer of this class has weights that only build() creates."""
    from vramlint.frontends.keras.catalog import KerasCatalogNative

    for klass in cls.mro:
        build = klass.ns.get("build")
        if isinstance(build, FunctionValue):
            return True
        if isinstance(klass.native, KerasCatalogNative):
            return klass.native.spec.weights is not None
    return False


def _weights(kind: str) -> Callable[[Evaluator, Instance, KerasState], Any]:
    def prop(ev: Evaluator, inst: Instance, st: KerasState) -> Any:
        ts = [t for n, t in named_tensors(inst, "params") if not n.endswith(UNBUILT)]
        if kind == "trainable":
            return [t for t in ts if isinstance(t, TensorValue) and t.requires_grad]
        if kind == "non_trainable":
            return [t for t in ts if not (isinstance(t, TensorValue) and t.requires_grad)]
        return ts

    return prop


def layers_of(ev: Evaluator, inst: Instance, st: KerasState) -> Any:
    if st.kind == "sequential":
        return list(st.seq_layers)
    if st.kind == "functional":
        return graph_layers(st.outputs)
    return [m for m in st.modules.values() if is_module(m)]


def _shape_prop(which: str) -> Callable[[Evaluator, Instance, KerasState], Any]:
    def prop(ev: Evaluator, inst: Instance, st: KerasState) -> Any:
        v = st.inputs if which == "input" else st.outputs
        if st.kind == "sequential":
            v = st.inputs if which == "input" else st.seq_output
        if v is None:
            return Unknown(f"{st.name} has no defined {which} shape", ev.current_ref)
        ts = list(flat_symbolic(v))
        shapes = [t.keras_shape() for t in ts]
        return shapes[0] if len(shapes) == 1 else shapes

    return prop


def _io_prop(which: str) -> Callable[[Evaluator, Instance, KerasState], Any]:
    def prop(ev: Evaluator, inst: Instance, st: KerasState) -> Any:
        v = st.inputs if which in ("input", "inputs") else (st.seq_output if st.kind == "sequential" else st.outputs)
        if v is None:
            return Unknown(f"{st.name}.{which} is not defined (the model is not built)", ev.current_ref)
        ts = list(flat_symbolic(v))
        if which in ("inputs", "outputs"):
            return ts
        return ts[0] if len(ts) == 1 else ts

    return prop


_PROPERTIES: dict[str, Callable[[Evaluator, Instance, KerasState], Any]] = {
    "name": lambda ev, inst, st: st.name,
    "trainable": lambda ev, inst, st: st.trainable,
    "built": lambda ev, inst, st: st.built,
    "weights": _weights("all"),
    "variables": _weights("all"),
    "trainable_weights": _weights("trainable"),
    "trainable_variables": _weights("trainable"),
    "non_trainable_weights": _weights("non_trainable"),
    "non_trainable_variables": _weights("non_trainable"),
    "layers": layers_of,
    "input_shape": _shape_prop("input"),
    "output_shape": _shape_prop("output"),
    "input": _io_prop("input"),
    "output": _io_prop("output"),
    "inputs": _io_prop("inputs"),
    "outputs": _io_prop("outputs"),
    "dtype": lambda ev, inst, st: st.dtype or "float32",
    "compute_dtype": lambda ev, inst, st: st.dtype or "float32",
    "variable_dtype": lambda ev, inst, st: st.dtype or "float32",
    "submodules": lambda ev, inst, st: [m for _, m in named_modules(inst)][1:],
    "losses": lambda ev, inst, st: [],
    "metrics": lambda ev, inst, st: [],
    "supports_masking": lambda ev, inst, st: False,
}


def base_kwargs(ev: Evaluator, inst: Instance, k: Kwargs) -> None:
    """name=, trainable=, dtype=, input_shape= / input_dim= / batch_input_shape= of any layer."""
    st = kstate(inst)
    if isinstance(k.get("name"), str):
        st.name = k["name"]
    if k.get("trainable") is False:
        st.trainable = False
    dt = k.get("dtype")
    if isinstance(dt, str) or (dt is not None and not isinstance(dt, Unknown)):
        # (a mixed policy keeps float32 variables)
        st.dtype = keras_dtype(dt) if not isinstance(dt, Instance) else "float32"
    shape = k.get("batch_input_shape")
    if isinstance(shape, (tuple, list)):
        st.declared_input = tuple(shape)
    elif isinstance(k.get("input_shape"), (tuple, list)):
        st.declared_input = (None, *k["input_shape"])
    elif isinstance(k.get("input_dim"), int):
        length = k.get("input_length")
        st.declared_input = (None, length, k["input_dim"]) if isinstance(length, int) and inst.cls.name != "Embedding" \
            else (None, k["input_dim"])
        if inst.cls.name == "Embedding":
            st.declared_input = None  # Embedding's input_dim is its vocabulary
    elif isinstance(k.get("input_shape"), int):
        st.declared_input = (None, k["input_shape"])


def _layer_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    base_kwargs(ev, a[0], k)
    return None


def _call_missing(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return Unknown(f"{a[0].cls.name} defines no call()", ev.current_ref)


def _count_params(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    total = 0
    for _, t in named_tensors(a[0], "params"):
        n = t.numel() if isinstance(t, TensorValue) else t
        if not isinstance(n, int):
            return n if isinstance(n, Unknown) else Unknown("count_params of an unknown weight", ev.current_ref)
        total += n
    return total


def as_shape(v: Any) -> Any:
    if isinstance(v, list) and v and all(isinstance(x, (tuple, list)) for x in v):
        return [tuple(x) for x in v]
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return v




def none_fn(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """A method that does nothing (compile, summary, save...)."""
    return None


def layer_namespace() -> dict[str, Any]:
    fns: dict[str, Callable[..., Any]] = {
        "__init__": _layer_init,
        "__call__": _layer_call,
        "call": _call_missing,
        "add_weight": _add_weight,
        "add_variable": _add_weight,
        "count_params": _count_params,
        "get_config": lambda ev, a, k: {"name": kstate(a[0]).name, "trainable": kstate(a[0]).trainable},
        "compute_output_shape": lambda ev, a, k: Unknown("compute_output_shape is not modelled", ev.current_ref),
        "add_loss": none_fn,
        "adapt": none_fn,
        "add_metric": none_fn,
        "get_weights": lambda ev, a, k: Unknown("weight values are not known statically", ev.current_ref),
        "set_weights": none_fn,
        "summary": none_fn,
    }
    ns = {name: NativeFunction(f"Layer.{name}", fn) for name, fn in fns.items()}
    ns["build"] = NativeFunction("Layer.build", _user_build_or_noop)
    return ns


def _user_build_or_noop(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """Layer.build: what `super().build(shape)` reaches (nothing to create), or the code's
    `layer.build(shape)` on a layer that defines no build of its own."""
    st = kstate(a[0])
    if not st.built:
        st.built = True
        st.params.pop(UNBUILT, None)
        record_specs(st, as_shape(a[1] if len(a) > 1 else k.get("input_shape")))
    return None


KERAS_LAYER_NATIVE = KerasLayerNative()


def make_layer_class(module_class: ClassValue) -> ClassValue:
    """keras.layers.Layer: a subclass of the torch frontend's Module (its registries, traversal)."""
    return ClassValue("Layer", (module_class,), layer_namespace(), "keras.layers", native=KERAS_LAYER_NATIVE)
