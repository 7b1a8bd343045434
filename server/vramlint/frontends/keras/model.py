"""Keras models: functional (`keras.Model(inputs, outputs)`), `keras.Sequential`, and subclassed
`keras.Model` (its own call()); what the analysis asks of them (finish, declared_inputs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import MISSING, Args, Instance, Kwargs, NativeFunction, Unknown
from vramlint.frontends.keras.layer import (
    UNBUILT,
    as_shape,
    base_kwargs,
    is_keras,
    kstate,
    layers_of,
    none_fn,
    record_specs,
    snake_case,
    sync_tracked,
)
from vramlint.frontends.keras.symbolic import (
    KerasTensor,
    flat_symbolic,
    graph_layers,
    graph_nodes,
    has_symbolic,
    input_specs,
    make_input,
    run_graph,
)
from vramlint.frontends.torch.module import is_module
from vramlint.frontends.torch.tensors import shape_text

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


def _get_layer(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    layer = a[0]
    name = a[1] if len(a) > 1 else k.get("name")
    index = a[2] if len(a) > 2 else k.get("index")
    layers = layers_of(ev, layer, kstate(layer))
    if isinstance(index, int):
        return layers[index] if -len(layers) <= index < len(layers) else Unknown("get_layer index out of range")
    for m in layers:
        if is_keras(m) and kstate(m).name == name:
            return m
    raise ev.raise_error("ValueError", f"No such layer: {name}")


def _model_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """keras.Model(inputs, outputs, name=...) is functional; keras.Model() (a subclass's
    super().__init__()) is subclassed."""
    inst: Instance = a[0]
    st = kstate(inst)
    inputs = a[1] if len(a) > 1 else k.get("inputs", MISSING)
    outputs = a[2] if len(a) > 2 else k.get("outputs", MISSING)
    base_kwargs(ev, inst, k)
    if inputs is MISSING and outputs is MISSING:
        st.kind = "subclassed"
        return None
    if isinstance(inputs, Unknown) or isinstance(outputs, Unknown):
        bad = inputs if isinstance(inputs, Unknown) else outputs
        raise ev.raise_error("ValueError", f"keras.Model: {bad.reason}")
    if not has_symbolic(inputs) or not has_symbolic(outputs):
        raise ev.raise_error("ValueError", "keras.Model(inputs, outputs): inputs and outputs must be Keras tensors")
    _check_connected(ev, inputs, outputs)
    st.kind = "functional"
    st.inputs, st.outputs = inputs, outputs
    st.built = True
    st.params.pop(UNBUILT, None)
    register_layers(inst, graph_layers(outputs))
    st.input_specs = input_specs(inputs)
    return None



def _check_connected(ev: Evaluator, inputs: Any, outputs: Any) -> None:
    """Keras's "Graph disconnected" error: every symbolic tensor the outputs need must come from the inputs."""
    given = {id(t) for t in flat_symbolic(inputs)}
    for node in graph_nodes(outputs, given):
        for t in flat_symbolic((node.args, node.kwargs)):
            if t.node is None and id(t) not in given:
                raise ev.raise_error("ValueError", "Graph disconnected: an output needs a keras.Input that is not "
                                                   "among the model's inputs")
    for t in flat_symbolic(outputs):
        if t.node is None and id(t) not in given:
            raise ev.raise_error("ValueError", "Graph disconnected: an output is a keras.Input that is not among "
                                               "the model's inputs")


def register_layers(model: Instance, layers: list[Instance]) -> None:
    st = kstate(model)
    for layer in layers:
        if any(m is layer for m in st.modules.values()):
            continue
        name = kstate(layer).name if is_keras(layer) else snake_case(layer.cls.name)
        key, i = name, 1
        while key in st.modules or key in st.params:
            key, i = f"{name}_{i}", i + 1
        st.modules[key] = layer


def _model_call(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst: Instance = a[0]
    st = kstate(inst)
    if st.kind == "functional":
        return run_graph(ev, st.inputs, st.outputs, a[1:])
    if st.kind == "sequential":
        x = a[1] if len(a) > 1 else k.get("inputs")
        for layer in st.seq_layers:
            x = ev.call(layer, (x,), {"training": k["training"]} if "training" in k else {})
            if isinstance(x, Unknown):
                return x
        return x
    return Unknown(f"{inst.cls.name} defines no call()", ev.current_ref)


def _model_build(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """model.build(input_shape): a subclassed model is called on symbolic inputs of that shape
    (which builds its sublayers), a Sequential runs its layers on one."""
    inst: Instance = a[0]
    st = kstate(inst)
    shape = as_shape(a[1] if len(a) > 1 else k.get("input_shape"))
    if st.kind == "functional":
        return None
    symbolic = _symbolic_inputs(ev, shape)
    if isinstance(symbolic, Unknown):
        ev.record(symbolic)
        return None
    if st.kind == "sequential":
        if st.seq_output is None:
            _sequential_start(ev, inst, symbolic)
        return None
    if st.built and st.input_specs is not None:
        return None
    st.built = True
    st.params.pop(UNBUILT, None)
    record_specs(st, shape)
    out = ev.call(inst, (symbolic,), {})
    if isinstance(out, Unknown):
        ev.record(out)
    return None


def _symbolic_inputs(ev: Evaluator, shape: Any) -> Any:
    if isinstance(shape, list):
        items = [_symbolic_inputs(ev, s) for s in shape]
        return next((x for x in items if isinstance(x, Unknown)), items)
    if isinstance(shape, dict):
        return {key: _symbolic_inputs(ev, s) for key, s in shape.items()}
    if isinstance(shape, tuple) and shape:
        batch = shape[0]
        return make_input(shape[1:], None, batch if isinstance(batch, int) else None, ev.current_ref)
    return Unknown(f"model.build(): input shape {shape_text(shape)} is not a shape with a batch dimension",
                   ev.current_ref)


def model_namespace() -> dict[str, Any]:
    fns: dict[str, Callable[..., Any]] = {
        "__init__": _model_init,
        "call": _model_call,
        "build": _model_build,
        "get_layer": _get_layer,
        "compile": none_fn,
        "fit": lambda ev, a, k: Unknown("the result of fit() is not known statically", ev.current_ref),
        "evaluate": lambda ev, a, k: Unknown("the result of evaluate() is not known statically", ev.current_ref),
        "predict": lambda ev, a, k: Unknown("the result of predict() is not known statically", ev.current_ref),
        "save": none_fn,
        "save_weights": none_fn,
        "load_weights": none_fn,
        "summary": none_fn,
        "train_on_batch": none_fn,
        "test_on_batch": none_fn,
        "predict_on_batch": none_fn,
        "reset_states": none_fn,
    }
    return {name: NativeFunction(f"Model.{name}", fn) for name, fn in fns.items()}


# ---------------------------------------------------------------------- Sequential
def _sequential_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst: Instance = a[0]
    st = kstate(inst)
    st.kind = "sequential"
    base_kwargs(ev, inst, k)
    layers = a[1] if len(a) > 1 else k.get("layers")
    if isinstance(layers, Unknown):
        ev.record(layers)
        return None
    for layer in layers or ():
        sequential_add(ev, inst, layer)
    return None


def _sequential_start(ev: Evaluator, model: Instance, symbolic: Any) -> None:
    st = kstate(model)
    st.inputs = st.seq_output = symbolic
    st.input_specs = input_specs(symbolic)
    for layer in st.seq_layers:
        st.seq_output = ev.call(layer, (st.seq_output,), {})
        if isinstance(st.seq_output, Unknown):
            ev.record(st.seq_output)
            return
    st.built = True
    st.params.pop(UNBUILT, None)


def sequential_add(ev: Evaluator, model: Instance, layer: Any) -> None:
    st = kstate(model)
    if isinstance(layer, KerasTensor):  # keras.Input(...) as the first element
        if st.seq_output is None and not st.seq_layers:
            _sequential_start(ev, model, layer)
        return
    if is_keras(layer) and layer.cls.name == "InputLayer":
        t = layer.attrs.get("_keras_tensor")
        if isinstance(t, KerasTensor) and st.seq_output is None and not st.seq_layers:
            _sequential_start(ev, model, t)
        return
    if isinstance(layer, Unknown):
        ev.record(layer)
        return
    if layer is model:
        raise ev.raise_error("ValueError", "Sequential.add(): a model cannot be added to itself")
    if not is_module(layer):
        raise ev.raise_error("TypeError", f"Sequential.add(): {type(layer).__name__} is not a layer")
    st.seq_layers.append(layer)
    register_layers(model, [layer])
    declared = kstate(layer).declared_input if is_keras(layer) else None
    if st.seq_output is None and len(st.seq_layers) == 1 and declared is not None:
        first = make_input(declared[1:], None, declared[0], ev.current_ref)
        if isinstance(first, KerasTensor):
            st.inputs = st.seq_output = first
            st.input_specs = input_specs(first)
    if st.seq_output is not None:
        st.seq_output = ev.call(layer, (st.seq_output,), {})
        if isinstance(st.seq_output, Unknown):
            ev.record(st.seq_output)
        st.built = True


def _sequential_pop(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    st = kstate(a[0])
    if not st.seq_layers:
        raise ev.raise_error("IndexError", "There are no layers in the model.")
    layer = st.seq_layers.pop()
    for key, m in list(st.modules.items()):
        if m is layer:
            del st.modules[key]
    return layer


def sequential_namespace() -> dict[str, Any]:
    return {
        "__init__": NativeFunction("Sequential.__init__", _sequential_init),
        "add": NativeFunction("Sequential.add", lambda ev, a, k: sequential_add(ev, a[0], a[1] if len(a) > 1
                                                                                 else k.get("layer"))),
        "pop": NativeFunction("Sequential.pop", _sequential_pop),
    }


# ---------------------------------------------------------------------- for the analysis
def finish(ev: Evaluator, model: Instance, inputs: list[tuple[tuple[Any, ...], str]] | None = None) -> None:
    """Before counting: track layers held in containers, and build an unbuilt model on `inputs`
    (per-sample shapes) when given."""
    from vramlint.frontends.torch.module import named_modules

    for _, m in named_modules(model):
        if is_keras(m):
            sync_tracked(m)
    st = kstate(model)
    if not st.built and inputs:
        shapes: Any = [(None, *s) for s, _ in inputs]
        _model_build(ev, (model, shapes if len(shapes) > 1 else shapes[0]), {})
        for _, m in named_modules(model):
            if is_keras(m):
                sync_tracked(m)


def declared_inputs(model: Instance) -> list[tuple[tuple[Any, ...], str]] | None:
    """The per-sample input shapes (None where Keras has None) and dtypes the model was built with."""
    if not is_keras(model):
        return None
    return kstate(model).input_specs
