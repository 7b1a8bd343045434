"""`LightningModule` and `LightningDataModule`, as vramlint's own classes (lightning 2.x's API).

A LightningModule is an nn.Module of the torch frontend's kind (its parameters, submodules and
calls are a module's), plus what scripts call on it: `save_hyperparameters()` and `self.hparams`,
`self.log(...)`, `self.device`, the hooks `Trainer.fit` runs (trainer.py). Lightning's own source
is never evaluated: it reads the caller's frame (`inspect.currentframe`) to find the arguments of
the `__init__` that calls `save_hyperparameters()`; here the class's `construct` hook keeps the
instantiation's arguments, and they are bound to the class's `__init__` signature when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import NoOp
from vramlint.engine.eval_base import Scope
from vramlint.engine.values import (
    MISSING,
    Args,
    ClassValue,
    FunctionValue,
    Instance,
    Kwargs,
    NativeFunction,
    SourceRef,
    SubclassedDict,
    Unknown,
)
from vramlint.frontends.torch.module import ModuleNative, ModuleState
from vramlint.frontends.torch.stubs import torch_classes
from vramlint.frontends.torch.tensors import CPU, DType

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

MODULE_PATH = "lightning.pytorch.core.module"


class LightningState(ModuleState):
    """A LightningModule's module state, plus the arguments it was built with (for
    `save_hyperparameters`) and the first batch `Trainer.fit` gave its `training_step`."""

    __slots__ = ("init_call", "fit_batch", "fit_where", "in_step")

    def __init__(self, ref: SourceRef | None, init_call: tuple[Args, Kwargs]) -> None:
        super().__init__(ref)
        self.init_call = init_call
        self.fit_batch: Any = MISSING
        self.fit_where = ""
        self.in_step = False


class InitCall:
    """A LightningDataModule's state: the arguments it was built with (it is no module)."""

    __slots__ = ("init_call",)

    def __init__(self, init_call: tuple[Args, Kwargs]) -> None:
        self.init_call = init_call


class AttributeDict(SubclassedDict):
    """lightning's AttributeDict: a dict whose items are also its attributes (`hparams.lr`). The
    protocol reads a dict subclass's instance attributes from `attrs`: here they are the items."""

    @property  # type: ignore[override]
    def attrs(self) -> dict[str, Any]:
        return self

    @attrs.setter
    def attrs(self, value: Any) -> None:
        pass


def attribute_dict(loader: Loader, items: dict[str, Any]) -> AttributeDict:
    out = AttributeDict(items)
    out.cls = _classes(loader)["AttributeDict"]
    return out


def _init_arguments(ev: Evaluator, inst: Instance) -> dict[str, Any]:
    """The arguments of the instance's `__init__`, by name, as Lightning collects them from its
    frame: defaults filled in, `self` and `*args` left out, `**kwargs` merged."""
    init, _ = inst.cls.lookup("__init__")
    st = inst.state
    if not isinstance(init, FunctionValue) or not isinstance(st, (LightningState, InitCall)):
        return {}
    a, k = st.init_call
    scope = Scope({}, init.closure, init.globals, init.module)
    ev.bind_params(init, (inst, *a), k, scope)
    params = init.node.params
    positional = [*params.posonly_params, *params.params]
    names = [p.name.value for p in (*positional[1:], *params.kwonly_params)]
    out = {n: scope.vars[n] for n in names if n in scope.vars}
    star = params.star_kwarg
    extra = scope.vars.get(star.name.value) if star is not None else None
    if isinstance(extra, dict):
        out.update(extra)
    return out


def _save_hyperparameters(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """save_hyperparameters(*args, ignore=None, frame=None, logger=True): the named arguments of
    `__init__` (all of them without names), or the one dict / namespace given, into `hparams`."""
    inst: Instance = a[0]
    given = a[1:]
    if len(given) == 1 and not isinstance(given[0], str):
        src = given[0]
        items = dict(src) if isinstance(src, dict) else dict(src.attrs) if isinstance(src, Instance) else None
        if items is None:
            ev.record(Unknown("save_hyperparameters of an object vramlint cannot read", ev.current_ref))
            items = {}
    else:
        items = _init_arguments(ev, inst)
        if given:
            items = {n: v for n, v in items.items() if n in given}
        ignore = k.get("ignore")
        ignored = {ignore} if isinstance(ignore, str) else set(ignore) if isinstance(ignore, (list, tuple)) else set()
        items = {n: v for n, v in items.items() if n not in ignored}
    hp = _hparams(ev, inst)
    hp.update(items)
    return None


def _hparams(ev: Evaluator, inst: Instance) -> AttributeDict:
    hp = inst.attrs.get("_hparams")
    if not isinstance(hp, AttributeDict):
        hp = inst.attrs["_hparams"] = attribute_dict(ev.loader, {})
    return hp


def _construct(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs, state: Any) -> Instance:
    """protocol.instantiate's plain path, the object's state (which keeps the arguments) given."""
    for obs in ev.loader.instantiation_observers:
        obs(cls, a, k)
    obj = Instance(cls)
    obj.state = state
    init, _ = cls.lookup("__init__")
    if init is not MISSING:
        ev.call(ev.protocol.bind_descriptor(init, cls, obj), a, k)
    return obj


class LightningNative(ModuleNative):
    """nn.Module's hooks, plus: instances remember their constructor's arguments, and the
    attributes Lightning computes (`hparams`, `device`, `trainer`...)."""

    def construct(self, ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        return _construct(ev, cls, a, k, LightningState(ev.current_ref, (a, k)))

    def getattr(self, ev: Evaluator, inst: Instance, name: str) -> Any:
        v = super().getattr(ev, inst, name)
        if v is not MISSING:
            return v
        if name in ("hparams", "hparams_initial"):
            return _hparams(ev, inst)
        if name == "device":
            return CPU  # as every analysed tensor's
        if name == "dtype":
            return DType("float32")
        if name in ("current_epoch", "global_step", "global_rank", "local_rank"):
            return 0
        if name == "automatic_optimization":
            return True
        if name == "example_input_array":
            return None
        if name in ("trainer", "fabric"):
            return inst.attrs.get(f"_{name}", NoOp(f"{inst.cls.name}.{name}", chain=True))
        if name == "logger":
            return NoOp(f"{inst.cls.name}.logger", chain=True)
        return MISSING


def _own_forward(inst: Instance) -> bool:
    fwd, owner = inst.cls.lookup("forward")
    return owner is not None and owner.module_name != MODULE_PATH


def _forward(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """A LightningModule whose class defines no forward (its `training_step` calls its submodules):
    called on a batch, it runs `training_step(batch, 0)`, so the memory estimate traces the step
    Trainer.fit runs. Called from inside that step, it is torch's missing forward."""
    inst: Instance = a[0]
    st = inst.state
    if not isinstance(st, LightningState) or st.in_step or len(a) != 2 or k:
        raise ev.raise_error("NotImplementedError", f'Module [{inst.cls.name}] is missing the required "forward" function')
    return run_training_step(ev, inst, a[1])


def run_training_step(ev: Evaluator, inst: Instance, batch: Any) -> Any:
    st = inst.state
    step = ev.protocol.getattr(inst, "training_step")
    if not isinstance(st, LightningState):
        return ev.call(step, (batch, 0), {})
    st.in_step = True
    try:
        return ev.call(step, (batch, 0), {})
    finally:
        st.in_step = False


def model_inputs(inst: Instance, batch: int | None, source: str) -> Any:
    """A LightningModule without a forward of its own is estimated on its training step: the
    first batch Trainer.fit gave it (None for the others: their forward's inputs are found as any
    model's)."""
    st = inst.state
    if not isinstance(st, LightningState) or _own_forward(inst):
        return None
    if st.fit_batch is MISSING:
        return (f"{inst.cls.name} defines no forward: its training_step is estimated on the first batch of "
                "trainer.fit(...), and no fit call of the script gives it one")
    return (st.fit_batch,), {}, st.fit_where


def owns_model(value: Any) -> bool:
    return isinstance(value, Instance) and isinstance(value.state, LightningState)


def _none(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return None


def _chain(name: str) -> NativeFunction:
    return NativeFunction(name, lambda ev, a, k: NoOp(f"{name}()", chain=True))


def _freeze(flag: bool) -> NativeFunction:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        ev.call(ev.protocol.getattr(a[0], "requires_grad_"), (flag,), {})
        ev.call(ev.protocol.getattr(a[0], "train" if flag else "eval"), (), {})
        return None

    return NativeFunction("LightningModule.unfreeze" if flag else "LightningModule.freeze", impl)


# Hooks and helpers a LightningModule inherits, doing nothing the analysis tracks.
_NO_OPS = ("__init__", "log", "log_dict", "print", "prepare_data", "setup", "teardown", "configure_model",
           "configure_callbacks", "manual_backward", "toggle_optimizer", "untoggle_optimizer", "on_fit_start",
           "on_fit_end", "on_train_start", "on_train_end", "on_train_epoch_start", "on_train_epoch_end",
           "on_validation_epoch_end", "on_before_optimizer_step", "on_save_checkpoint", "on_load_checkpoint",
           "configure_optimizers", "configure_gradient_clipping", "clip_gradients", "lr_scheduler_step")


def _module_ns() -> dict[str, Any]:
    ns: dict[str, Any] = {name: NativeFunction(f"LightningModule.{name}", _none) for name in _NO_OPS}
    ns.update({
        "save_hyperparameters": NativeFunction("LightningModule.save_hyperparameters", _save_hyperparameters),
        "forward": NativeFunction("LightningModule.forward", _forward),
        "optimizers": _chain("LightningModule.optimizers"),
        "lr_schedulers": _chain("LightningModule.lr_schedulers"),
        "freeze": _freeze(False),
        "unfreeze": _freeze(True),
    })
    return ns


def _datamodule_ns() -> dict[str, Any]:
    ns: dict[str, Any] = {name: NativeFunction(f"LightningDataModule.{name}", _none)
                          for name in ("__init__", "prepare_data", "setup", "teardown")}
    ns["save_hyperparameters"] = NativeFunction("LightningDataModule.save_hyperparameters", _save_hyperparameters)
    return ns


class _DataModuleNative:
    """LightningDataModule: keeps its constructor's arguments for `save_hyperparameters`."""

    def construct(self, ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        return _construct(ev, cls, a, k, InitCall((a, k)))

    def getattr(self, ev: Evaluator, inst: Instance, name: str) -> Any:
        if name in ("hparams", "hparams_initial"):
            return _hparams(ev, inst)
        if name == "trainer":
            return inst.attrs.get("_trainer", NoOp(f"{inst.cls.name}.trainer", chain=True))
        return MISSING


def _classes(loader: Loader) -> dict[str, ClassValue]:
    """LightningModule, LightningDataModule and AttributeDict, one set per loader."""
    found: dict[str, ClassValue] | None = loader.frontend_state.get("lightning")
    if found is not None:
        return found
    module = torch_classes(loader).module
    obj = loader.builtins["object"]
    out = {
        "LightningModule": ClassValue("LightningModule", (module,), _module_ns(), MODULE_PATH,
                                      native=LightningNative()),
        "LightningDataModule": ClassValue("LightningDataModule", (obj,), _datamodule_ns(),
                                          "lightning.pytorch.core.datamodule", native=_DataModuleNative()),
        "AttributeDict": ClassValue("AttributeDict", (loader.builtins["dict"],), {},
                                    "lightning.fabric.utilities.data"),
    }
    loader.frontend_state["lightning"] = out
    return out


def lightning_classes(loader: Loader) -> dict[str, ClassValue]:
    return _classes(loader)
