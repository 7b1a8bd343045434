"""Classes of training frameworks whose objects drive a script but build nothing (Lightning's
`Trainer` and `Fabric`, Accelerate's `Accelerator`): a constructor keeping its arguments as
attributes, the methods a frontend models, and every other attribute a value whose calls do
nothing (a logger, a tracker, a state object): such an object must never stop a script's run.
Framework-neutral: the frontends give the names and rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import NoOp
from vramlint.engine.values import Args, ClassValue, Instance, Kwargs, NativeFunction, Unknown

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

# rule(evaluator, the object, positional arguments after it, keyword arguments) -> result
Method = Callable[["Evaluator", Instance, Args, Kwargs], Any]
# init(evaluator, positional arguments, keyword arguments) -> the object's attributes
Init = Callable[["Evaluator", Args, Kwargs], dict[str, Any]]


def returns_none(ev: Evaluator, obj: Instance, a: Args, k: Kwargs) -> Any:
    return None


def returns_first(ev: Evaluator, obj: Instance, a: Args, k: Kwargs) -> Any:
    """`x = f(x)`: the argument itself (a model `prepare`d, a tensor gathered from one process)."""
    return a[0] if a else next(iter(k.values()), None)


def returns_context(ev: Evaluator, obj: Instance, a: Args, k: Kwargs) -> Any:
    """A context manager that does nothing here (`with accelerator.accumulate(model):`)."""
    return NoOp(f"{obj.cls.name} context")


def returns_arguments(ev: Evaluator, obj: Instance, a: Args, k: Kwargs) -> Any:
    """`a, b = f(a, b)`: its arguments, the one itself when alone."""
    return a[0] if len(a) == 1 else tuple(a)


def facade_class(loader: Loader, name: str, module: str, init: Init, methods: Mapping[str, Method],
                 native: Any = None) -> ClassValue:
    def construct(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        a[0].attrs.update(init(ev, a[1:], k))
        return None

    def method(attr: str, rule: Method) -> NativeFunction:
        return NativeFunction(f"{name}.{attr}", lambda ev, a, k: rule(ev, a[0], a[1:], k))

    ns: dict[str, Any] = {attr: method(attr, rule) for attr, rule in methods.items()}
    ns["__init__"] = NativeFunction(f"{name}.__init__", construct)
    # The rest of the framework's API: what it returns does nothing here either.
    ns["__getattr__"] = NativeFunction(f"{name}.__getattr__",
                                       lambda ev, a, k: NoOp(f"{name}.{a[1]}", chain=True))
    return ClassValue(name, (loader.builtins["object"],), ns, module, native=native)


def inert_class(loader: Loader, name: str, module: str) -> ClassValue:
    """A class of a framework whose objects keep nothing and do nothing here (a callback, a logger,
    a plugin's configuration); code may subclass it (`class PrintCallback(L.Callback)`)."""
    cache: dict[tuple[str, str], ClassValue] = loader.frontend_state.setdefault("facade.inert", {})
    key = (module, name)
    if key not in cache:
        ns = {"__init__": NativeFunction(f"{name}.__init__", lambda ev, a, k: None),
              "__getattr__": NativeFunction(f"{name}.__getattr__",
                                            lambda ev, a, k: NoOp(f"{name}.{a[1]}", chain=True))}
        cache[key] = ClassValue(name, (loader.builtins["object"],), ns, module)
    return cache[key]


def absent_package_attribute(loader: Loader, dotted: str) -> Callable[[str], Any]:
    """The attributes of a framework's module served where the package is absent: a capitalised
    name an inert class (`ProjectConfiguration`, `DeepSpeedCPUAdam`), any other a value whose calls
    do nothing (`set_seed`, `init_distributed`), a private one an unknown."""
    def hook(attr: str) -> Any:
        if attr.startswith("_"):
            return Unknown(f"`{dotted}.{attr}` is not modelled by vramlint", None)
        if attr[:1].isupper():
            return inert_class(loader, attr, dotted)
        return NoOp(f"{dotted}.{attr}", chain=True)

    return hook
