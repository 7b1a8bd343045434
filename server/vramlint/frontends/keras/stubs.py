"""The `keras` package (Keras 3, also reached as `tf.keras`, `tensorflow.keras` and `tf_keras`)
and the parts of `tensorflow` that model code uses. Anything not modelled is an Unknown naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, ClassValue, Kwargs, ModuleValue, NativeFunction, Unknown
from vramlint.frontends.keras.layer import KERAS_LAYER_NATIVE, make_layer_class
from vramlint.frontends.keras.model import model_namespace, sequential_namespace
from vramlint.frontends.keras.ops import (
    activations_namespace,
    ops_namespace,
    random_namespace,
    tf_functions,
)
from vramlint.frontends.keras.symbolic import make_input

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

OPTIMIZERS = ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion",
              "Adafactor", "Lamb", "Muon", "Optimizer", "LossScaleOptimizer")
DTYPES = ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool",
          "string", "half", "double")


def ensure_keras(loader: Loader) -> dict[str, ClassValue]:
    """The Keras classes of this loader, made on first use (they subclass torch's Module class)."""
    classes: dict[str, ClassValue] | None = loader.frontend_state.get("keras")
    if classes is None:
        from vramlint.frontends.keras.catalog import build_catalog_classes
        from vramlint.frontends.torch.stubs import torch_classes

        layer = make_layer_class(torch_classes(loader).module)
        classes = build_catalog_classes(layer)
        model = ClassValue("Model", (layer,), model_namespace(), "keras", native=KERAS_LAYER_NATIVE)
        classes["Model"] = model
        classes["Functional"] = model
        classes["Sequential"] = ClassValue("Sequential", (model,), sequential_namespace(), "keras",
                                           native=KERAS_LAYER_NATIVE)
        loader.frontend_state["keras"] = classes
    return classes


def _input(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    names = ("shape", "batch_size", "dtype", "sparse", "batch_shape", "name", "tensor", "optional")
    v = dict(zip(names, a, strict=False))
    v.update(k)
    batch_shape = v.get("batch_shape")
    if isinstance(batch_shape, (tuple, list)) and batch_shape:
        return make_input(tuple(batch_shape[1:]), v.get("dtype"), batch_shape[0], ev.current_ref)
    if v.get("shape") is None:
        return Unknown("keras.Input() without a shape", ev.current_ref)
    return make_input(v["shape"], v.get("dtype"), v.get("batch_size"), ev.current_ref)


def _opaque(loader: Loader, name: str, module: str) -> ClassValue:
    """A class whose objects only carry their arguments (optimizers, losses, callbacks...)."""

    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        for i, v in enumerate(a[1:]):
            inst.attrs[f"arg{i}"] = v
        inst.attrs.update(k)
        return None

    ns = {"__init__": NativeFunction(f"{module}.{name}.__init__", init),
          "__call__": NativeFunction(f"{module}.{name}.__call__",
                                     lambda ev, a, k: Unknown(f"{module}.{name} is not modelled", ev.current_ref))}
    return ClassValue(name, (loader.builtins["object"],), ns, module)


def _noop(name: str) -> NativeFunction:
    return NativeFunction(name, lambda ev, a, k: None)


def _lenient(loader: Loader, module: str) -> Callable[[str], Any]:
    """Attributes of a namespace of objects that do not change a model (losses, callbacks...):
    classes carry their arguments, functions do nothing."""
    cache: dict[str, Any] = {}

    def hook(attr: str) -> Any:
        if attr.startswith("__"):
            return Unknown(f"`{module}.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)
        if attr not in cache:
            cache[attr] = _opaque(loader, attr, module) if attr[:1].isupper() else _noop(f"{module}.{attr}")
        return cache[attr]

    return hook


def _unknown_attr(loader: Loader, module: str) -> Callable[[str], Any]:
    def hook(attr: str) -> Any:
        return Unknown(f"`{module}.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)

    return hook


MERGE_FUNCTIONS = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply", "average": "Average",
                   "maximum": "Maximum", "minimum": "Minimum", "concatenate": "Concatenate", "dot": "Dot"}


def _merge_function(cls: ClassValue, name: str) -> NativeFunction:
    """layers.concatenate([a, b], axis=-1): the layer, made and called."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inputs = a[0] if a else k.pop("inputs", None)
        layer = ev.protocol.instantiate(cls, a[1:], {x: v for x, v in k.items() if x != "inputs"})
        return ev.call(layer, (inputs,), {})

    return NativeFunction(f"keras.layers.{name}", impl)


def _layers_ns(loader: Loader) -> dict[str, Any]:
    classes = ensure_keras(loader)
    ns: dict[str, Any] = {name: cls for name, cls in classes.items() if name not in ("Model", "Functional",
                                                                                    "Sequential")}
    ns["Input"] = NativeFunction("keras.Input", _input)
    for fn, cls in MERGE_FUNCTIONS.items():
        ns[fn] = _merge_function(classes[cls], fn)
    return ns


def keras_module(loader: Loader, dotted: str) -> ModuleValue | None:
    """Native resolver for `keras`, `tf_keras`, `tensorflow` and their submodules."""
    for prefix, base in (("tensorflow.keras", "keras"), ("tensorflow.python.keras", "keras"), ("tf_keras", "keras")):
        if dotted == prefix or dotted.startswith(prefix + "."):
            return keras_module(loader, base + dotted[len(prefix):])
    if dotted == "tensorflow" or dotted.startswith("tensorflow."):
        return _tensorflow(loader, dotted)
    if dotted != "keras" and not dotted.startswith("keras."):
        return None
    name = dotted.removeprefix("keras.src.") if dotted.startswith("keras.src.") else dotted
    sub = name.split(".", 1)[1] if "." in name else ""
    classes = ensure_keras(loader)
    if sub == "":
        ns: dict[str, Any] = {
            "Input": NativeFunction("keras.Input", _input), "Model": classes["Model"],
            "Sequential": classes["Sequential"], "Layer": classes["Layer"],
            "__version__": "3",
        }
        return ModuleValue("keras", ns, getattr_hook=lambda attr: _keras_submodule(loader, attr))
    if sub in ("layers", "layers.core"):
        return ModuleValue(dotted, _layers_ns(loader), getattr_hook=_unknown_attr(loader, "keras.layers"))
    if sub in ("models", "engine", "engine.training", "engine.sequential", "engine.functional"):
        return ModuleValue(dotted, {"Sequential": classes["Sequential"], "Model": classes["Model"],
                                    "Functional": classes["Model"]},
                           getattr_hook=_unknown_attr(loader, f"keras.{sub}"))
    if sub == "ops":
        return ModuleValue(dotted, ops_namespace(), getattr_hook=_unknown_attr(loader, "keras.ops"))
    if sub == "activations":
        return ModuleValue(dotted, activations_namespace(), getattr_hook=_unknown_attr(loader, "keras.activations"))
    if sub == "optimizers":
        ns = {n: _opaque(loader, n, "keras.optimizers") for n in OPTIMIZERS}
        ns["schedules"] = ModuleValue("keras.optimizers.schedules", {},
                                      getattr_hook=_lenient(loader, "keras.optimizers.schedules"))
        return ModuleValue(dotted, ns, getattr_hook=_lenient(loader, "keras.optimizers"))
    if sub == "mixed_precision":
        # (the policy itself is read by the training-setup scan: frontends/keras/training_setup.py)
        return ModuleValue(dotted, {"set_global_policy": _noop("keras.mixed_precision.set_global_policy"),
                                    "Policy": _opaque(loader, "Policy", "keras.mixed_precision"),
                                    "DTypePolicy": _opaque(loader, "DTypePolicy", "keras.mixed_precision"),
                                    "LossScaleOptimizer": _opaque(loader, "LossScaleOptimizer",
                                                                  "keras.mixed_precision")},
                           getattr_hook=_lenient(loader, "keras.mixed_precision"))
    if sub == "random":
        ns = random_namespace()
        ns["SeedGenerator"] = _opaque(loader, "SeedGenerator", "keras.random")
        return ModuleValue(dotted, ns, getattr_hook=_lenient(loader, "keras.random"))
    if sub == "datasets" or sub.startswith("datasets."):
        return _datasets_module(loader, dotted, sub)
    if sub in ("losses", "metrics", "callbacks", "regularizers", "initializers", "constraints", "config", "utils",
               "backend", "saving", "preprocessing", "mixed_precision.experimental"):
        return ModuleValue(dotted, {}, getattr_hook=_lenient(loader, f"keras.{sub}"))
    return ModuleValue(dotted, {}, getattr_hook=_unknown_attr(loader, dotted))


def _datasets_module(loader: Loader, dotted: str, sub: str) -> ModuleValue:
    """keras.datasets: each dataset's `load_data()` gives `(x_train, y_train), (x_test, y_test)`,
    as Keras's does, so that a script unpacking it goes on to build and fit its model; the arrays
    themselves are unknown (a Keras model's inputs are its `keras.Input`'s, not the data's)."""
    def load_data(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        u = Unknown(f"the arrays of `{dotted}.load_data()` are not modelled (downloaded data)", ev.current_ref)
        return ((u, u), (u, u))

    if sub == "datasets":
        return ModuleValue(dotted, {}, getattr_hook=lambda attr: _datasets_module(loader, f"{dotted}.{attr}",
                                                                               f"datasets.{attr}"))
    return ModuleValue(dotted, {"load_data": NativeFunction(f"{dotted}.load_data", load_data)},
                       getattr_hook=_unknown_attr(loader, dotted))


KERAS_SUBMODULES = ("layers", "models", "ops", "activations", "optimizers", "mixed_precision", "losses", "metrics",
                    "callbacks", "regularizers", "initializers", "constraints", "config", "utils", "backend",
                    "saving", "random", "preprocessing", "datasets", "applications")


def _keras_submodule(loader: Loader, attr: str) -> Any:
    if attr in KERAS_SUBMODULES:
        return loader.import_module(f"keras.{attr}", None)
    return Unknown(f"`keras.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)


# ---------------------------------------------------------------------- tensorflow
def _tensorflow(loader: Loader, dotted: str) -> ModuleValue:
    sub = dotted.split(".", 1)[1] if "." in dotted else ""
    if sub in ("nn", "math", "linalg"):
        return ModuleValue(dotted, tf_functions(sub), getattr_hook=_unknown_attr(loader, f"tf.{sub}"))
    if sub in ("config", "config.experimental", "data", "distribute", "random", "summary", "debugging", "io",
               "image", "saved_model", "train", "compat", "compat.v1", "experimental", "dtypes"):
        return ModuleValue(dotted, {}, getattr_hook=_lenient(loader, f"tf.{sub}"))
    if sub:
        return ModuleValue(dotted, {}, getattr_hook=_unknown_attr(loader, dotted))
    ns: dict[str, Any] = tf_functions("")
    ns.update({d: d for d in DTYPES})
    ns["function"] = NativeFunction("tf.function", _identity_decorator)
    ns["__version__"] = "2"

    def hook(attr: str) -> Any:
        if attr == "keras":
            return loader.import_module("keras", None)
        if attr in ("nn", "math", "linalg", "config", "data", "distribute", "random", "summary", "debugging", "io",
                    "image", "saved_model", "train", "compat", "experimental", "dtypes"):
            return loader.import_module(f"tensorflow.{attr}", None)
        if attr[:1].isupper():  # tf.GradientTape, tf.Variable, tf.TensorShape...
            return _opaque(loader, attr, "tf")
        return Unknown(f"`tf.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)

    return ModuleValue("tensorflow", ns, getattr_hook=hook)


def _identity_decorator(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """@tf.function / @tf.function(jit_compile=True): the function itself."""
    if a and not k:
        return a[0]
    return NativeFunction("tf.function", lambda ev2, a2, k2: a2[0] if a2 else None)
