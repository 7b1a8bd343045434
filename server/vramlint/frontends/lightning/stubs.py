"""The `lightning` packages as vramlint's own modules: `lightning`, `lightning.pytorch` (also
`pytorch_lightning`), `lightning.fabric` (also `lightning_fabric`) and any submodule a script
imports from them (`lightning.pytorch.callbacks`, `loggers`, `strategies`, `utilities`...).

Served whether or not lightning is installed, and lightning's own source is never evaluated: its
modules read their caller's frame and context variables, which the evaluator does not model.
Every such module holds the same names: the classes module.py and trainer.py model, and for any
other name a class whose objects do nothing (a callback, a logger, a strategy: they shape no
model) or, lowercase, a function that returns a function or class given to it (`rank_zero_only`
as a decorator) and else nothing (`rank_zero_info(...)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import (
    Args,
    ClassValue,
    FunctionValue,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Unknown,
)
from vramlint.frontends.facade import inert_class
from vramlint.frontends.lightning.module import lightning_classes
from vramlint.frontends.lightning.trainer import trainer_classes

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

ROOTS = ("lightning", "pytorch_lightning", "lightning_fabric")
# Attribute names that are submodules (`L.pytorch.callbacks.ModelCheckpoint`).
SUBMODULES = frozenset(("pytorch", "fabric", "callbacks", "loggers", "strategies", "utilities", "core", "plugins",
                        "profilers", "tuner", "cli", "accelerators", "loops", "trainer", "demos", "types", "data",
                        "module", "datamodule", "precision", "seed", "rank_zero", "model_summary"))
VERSION = "2.5.0"  # the API modelled (lightning 2.x)


def _passthrough(name: str) -> NativeFunction:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        if len(a) == 1 and not k and isinstance(a[0], (FunctionValue, ClassValue, NativeFunction)):
            return a[0]
        return None

    return NativeFunction(name, impl, lambda ev, v, a, k: v)


def _names(loader: Loader) -> dict[str, Any]:
    return {
        **lightning_classes(loader),
        **trainer_classes(loader),
        "seed_everything": NativeFunction("lightning.seed_everything", lambda ev, a, k: a[0] if a else 0),
        "rank_zero_only": _passthrough("lightning.pytorch.utilities.rank_zero_only"),
        "__version__": VERSION,
    }


def lightning_module(loader: Loader, dotted: str) -> ModuleValue | None:
    root = dotted.split(".", 1)[0]
    if root not in ROOTS:
        return None
    ns = _names(loader)

    def hook(attr: str) -> Any:
        if attr.startswith("_"):
            return Unknown(f"`{dotted}.{attr}` is not modelled by vramlint", None)
        if attr in SUBMODULES:
            return loader.import_module(f"{dotted}.{attr}", None)
        if attr[:1].isupper():
            return inert_class(loader, attr, dotted)
        return _passthrough(f"{dotted}.{attr}")

    return ModuleValue(dotted, ns, getattr_hook=hook)
