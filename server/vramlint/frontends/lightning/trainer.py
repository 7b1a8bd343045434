"""Lightning's `Trainer` and Fabric, as far as a script's run needs them.

`trainer.fit(model, ...)` runs what Lightning runs before its first optimizer step, once: the
datamodule's and the model's `prepare_data()` and `setup(stage="fit")`, `configure_model()`,
`configure_optimizers()`, the training data loader (given, or the datamodule's or the model's
`train_dataloader()`), and ONE `training_step(batch, 0)` on its first batch: the model's call
inside the step (`self(x)`, `self.model(x)`) is then a call of the script, with its inputs. The
setup the Trainer states (precision, accumulate_grad_batches, strategy) is read off the file's
syntax by the training-setup scan (frontends/torch/training_setup.py), not here.

Fabric: `setup(model, optimizer)` returns its arguments, `setup_dataloaders(...)` the loaders,
`launch(fn)` calls `fn(fabric)`, `backward`, `autocast()`, `init_module()` do nothing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import NoOp
from vramlint.engine.signals import Undecided
from vramlint.engine.values import MISSING, Args, ClassValue, Instance, Kwargs, Unknown, UnknownData
from vramlint.frontends.facade import (
    Method,
    facade_class,
    returns_arguments,
    returns_context,
    returns_first,
    returns_none,
)
from vramlint.frontends.lightning.module import (
    LightningState,
    lightning_classes,
    owns_model,
    run_training_step,
)
from vramlint.frontends.torch.tensors import CPU

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


def first_batch(ev: Evaluator, loader: Any) -> Any:
    """The first element a data loader yields (a dict of loaders: a dict of their first batches),
    MISSING when it yields none or the evaluator cannot iterate it (not recorded as a problem: a
    loader changes no model, and the model's inputs may be found elsewhere)."""
    if isinstance(loader, dict):
        out = {key: first_batch(ev, v) for key, v in loader.items()}
        return MISSING if any(v is MISSING for v in out.values()) else out
    try:
        return next(ev.iterate(loader), MISSING)
    except Undecided:
        return MISSING


def _is_datamodule(ev: Evaluator, v: Any) -> bool:
    return isinstance(v, Instance) and v.cls.is_subclass_of(lightning_classes(ev.loader)["LightningDataModule"])


def _call_hook(ev: Evaluator, obj: Any, name: str, *a: Any, **k: Any) -> Any:
    return ev.call(ev.protocol.getattr(obj, name), a, k)


def _fit(ev: Evaluator, trainer: Instance, a: Args, k: Kwargs) -> Any:
    """fit(model, train_dataloaders=None, val_dataloaders=None, datamodule=None, ckpt_path=None)."""
    model = a[0] if a else k.get("model")
    loaders = a[1] if len(a) > 1 else k.get("train_dataloaders", k.get("train_dataloader"))
    datamodule = a[3] if len(a) > 3 else k.get("datamodule")
    if _is_datamodule(ev, loaders):  # fit(model, dm): Lightning takes a datamodule in that place too
        loaders, datamodule = None, loaders
    if not isinstance(model, Instance) or not owns_model(model):
        ev.record(model if isinstance(model, Unknown) else
                  Unknown("trainer.fit(...) of an object that is not a LightningModule", ev.current_ref))
        return None
    where = ev.current_ref
    model.attrs["_trainer"] = trainer
    hooked = [x for x in (datamodule, model) if x is not None]
    for obj in hooked:
        if isinstance(obj, Instance):
            obj.attrs["_trainer"] = trainer
        _call_hook(ev, obj, "prepare_data")
    for obj in hooked:
        _call_hook(ev, obj, "setup", stage="fit")
    _call_hook(ev, model, "configure_model")
    _call_hook(ev, model, "configure_optimizers")
    if loaders is None:
        loaders = _call_hook(ev, datamodule if datamodule is not None else model, "train_dataloader")
    batch = first_batch(ev, loaders)
    if batch is MISSING:
        return None
    st = model.state
    assert isinstance(st, LightningState)
    st.fit_batch = batch
    line = where.statement_location.line if where is not None else 0
    st.fit_where = f"code: the first batch trainer.fit(...) at line {line} gives training_step"
    run_training_step(ev, model, batch)
    return None


def _world_size(devices: Any, nodes: Any) -> Any:
    """The processes a launch runs (devices x nodes), when the script says."""
    n = len(devices) if isinstance(devices, (list, tuple)) else devices
    if type(n) is int and type(nodes) is int and n > 0:
        return n * nodes
    return UnknownData("the number of processes depends on the machine (devices='auto')")


def _trainer_init(ev: Evaluator, a: Args, k: Kwargs) -> dict[str, Any]:
    devices, nodes = k.get("devices", "auto"), k.get("num_nodes", 1)
    return {**k, "world_size": _world_size(devices, nodes), "num_devices": devices, "global_rank": 0,
            "local_rank": 0, "node_rank": 0, "is_global_zero": True, "callback_metrics": {}, "logged_metrics": {},
            "current_epoch": 0, "global_step": 0,
            "max_epochs": k.get("max_epochs"), "precision": k.get("precision", "32-true"),
            "accumulate_grad_batches": k.get("accumulate_grad_batches", 1),
            "_created_at": ev.current_ref}  # where the plan's sources point (parallel.py)


def _returns_empty_list(ev: Evaluator, obj: Instance, a: Args, k: Kwargs) -> Any:
    return []


TRAINER_METHODS: dict[str, Method] = {
    "fit": _fit, "validate": _returns_empty_list, "test": _returns_empty_list, "predict": _returns_empty_list,
    "save_checkpoint": returns_none, "print": returns_none,
}


def _launch(ev: Evaluator, fabric: Instance, a: Args, k: Kwargs) -> Any:
    """launch(function=None, *args, **kwargs): function(fabric, *args, **kwargs)."""
    if not a:
        return None
    return ev.call(a[0], (fabric, *a[1:]), k)


def _setup(ev: Evaluator, fabric: Instance, a: Args, k: Kwargs) -> Any:
    """setup(module, *optimizers): the module alone, else the module and its optimizers."""
    return returns_arguments(ev, fabric, a, {})


def _fabric_init(ev: Evaluator, a: Args, k: Kwargs) -> dict[str, Any]:
    devices, nodes = k.get("devices", "auto"), k.get("num_nodes", 1)
    return {**k, "device": CPU, "world_size": _world_size(devices, nodes), "global_rank": 0, "local_rank": 0,
            "node_rank": 0, "is_global_zero": True, "logger": NoOp("Fabric.logger", chain=True)}


FABRIC_METHODS: dict[str, Method] = {
    "launch": _launch, "setup": _setup, "setup_module": returns_first, "setup_optimizers": returns_arguments,
    "setup_dataloaders": returns_arguments, "backward": returns_none, "autocast": returns_context,
    "init_module": returns_context, "init_tensor": returns_context, "no_backward_sync": returns_context,
    "rank_zero_first": returns_context, "clip_gradients": returns_none, "to_device": returns_first,
    "all_reduce": returns_first, "all_gather": returns_first, "broadcast": returns_first, "barrier": returns_none,
    "print": returns_none, "log": returns_none, "log_dict": returns_none, "save": returns_none,
    "seed_everything": returns_none, "call": returns_none,
}


def _keeps_arguments(ev: Evaluator, a: Args, k: Kwargs) -> dict[str, Any]:
    return dict(k)


def trainer_classes(loader: Loader) -> dict[str, ClassValue]:
    found: dict[str, ClassValue] | None = loader.frontend_state.get("lightning.trainer")
    if found is None:
        found = loader.frontend_state["lightning.trainer"] = {
            "Trainer": facade_class(loader, "Trainer", "lightning.pytorch.trainer.trainer", _trainer_init,
                                    TRAINER_METHODS),
            "Fabric": facade_class(loader, "Fabric", "lightning.fabric.fabric", _fabric_init, FABRIC_METHODS),
            # Strategies whose arguments say how the model runs on several GPUs (parallel.py).
            **{name: facade_class(loader, name, "lightning.pytorch.strategies", _keeps_arguments, {})
               for name in ("DDPStrategy", "FSDPStrategy")},
        }
    return found
