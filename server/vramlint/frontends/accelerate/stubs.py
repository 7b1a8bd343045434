"""Accelerate's `Accelerator`, as vramlint's own class, and the `accelerate` package when it is absent.

How it is served (the choice, and why): where accelerate's source is on the search path
(installed), it is read as any library's, and only its `Accelerator` class is replaced, by
qualified name (`Frontend.function_rules`: `accelerate.accelerator.Accelerator`): peft and
transformers import accelerate's own helpers (`accelerate.hooks`, `accelerate.utils`,
`dispatch_model`), which must stay the real ones, while the real class, evaluated for a script,
stops in its process-group setup (`PartialState`: "'NoneType' object has no attribute 'type'").
The replacement still builds the real class for the libraries that drive it themselves
(`LIBRARY_CALLERS`: transformers' Trainer reads `accelerator.state.deepspeed_plugin` and more to
decide what it sets up; a stand-in answering with values that do nothing sent it down its
DeepSpeed path, which set a global that changed later analyses). Where accelerate is absent,
`accelerate` and its submodules are vramlint's own: the class, and for any other name an inert
class (`ProjectConfiguration`, `DistributedDataParallelKwargs`) or a function whose result does
nothing (`set_seed`, `get_logger`).

What the class does: `prepare(...)` returns its arguments (one: itself), so `model, opt, loader =
accelerator.prepare(model, opt, loader)` keeps the model, and the script's loop calls it as before;
`backward`, `accumulate(...)`, `autocast()`, logging and saving do nothing here. The setup it
states (`mixed_precision`, `gradient_accumulation_steps`) is read by the training-setup scan
(frontends/torch/training_setup.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import NoOp
from vramlint.engine.values import Args, ClassValue, Instance, Kwargs, ModuleValue
from vramlint.frontends.facade import (
    Method,
    absent_package_attribute,
    facade_class,
    returns_arguments,
    returns_context,
    returns_first,
    returns_none,
)
from vramlint.frontends.torch.tensors import CPU

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

VERSION = "1.16.0"  # the API modelled
CLASS_MODULE = "accelerate.accelerator"


def _init(ev: Evaluator, a: Args, k: Kwargs) -> dict[str, Any]:
    # One process, as `python train.py` runs it (`accelerate launch` starts one per GPU, each alike).
    return {**k, "device": CPU, "mixed_precision": k.get("mixed_precision", "no"),
            "gradient_accumulation_steps": k.get("gradient_accumulation_steps", 1), "num_processes": 1,
            "process_index": 0, "local_process_index": 0, "is_main_process": True,
            "is_local_main_process": True, "is_last_process": True, "sync_gradients": True,
            "use_distributed": False, "optimizer_step_was_skipped": False, "trackers": [],
            "state": NoOp("Accelerator.state", chain=True), "distributed_type": NoOp("DistributedType.NO")}


def _prepare(ev: Evaluator, acc: Instance, a: Args, k: Kwargs) -> Any:
    """prepare(*args, device_placement=None): its arguments, the one itself when alone."""
    return returns_arguments(ev, acc, a, {})


METHODS: dict[str, Method] = {
    "prepare": _prepare, "prepare_model": returns_first, "prepare_optimizer": returns_first,
    "prepare_data_loader": returns_first, "prepare_scheduler": returns_first, "unwrap_model": returns_first,
    "gather": returns_first, "gather_for_metrics": returns_first, "reduce": returns_first,
    "pad_across_processes": returns_first, "skip_first_batches": returns_first,
    "backward": returns_none, "print": returns_none, "wait_for_everyone": returns_none, "log": returns_none,
    "init_trackers": returns_none, "end_training": returns_none, "save_state": returns_none,
    "load_state": returns_none, "save": returns_none, "save_model": returns_none,
    "register_for_checkpointing": returns_none, "clip_grad_norm_": returns_none, "clip_grad_value_": returns_none,
    "free_memory": returns_none, "clear": returns_none,
    "accumulate": returns_context, "autocast": returns_context, "no_sync": returns_context,
    "main_process_first": returns_context, "local_main_process_first": returns_context,
}


# Libraries whose own code builds an Accelerator and reads its state: they get the real class.
LIBRARY_CALLERS = frozenset(("transformers", "trl", "accelerate", "peft", "diffusers", "sentence_transformers"))


class _Construct:
    """Building an Accelerator: the real class (when read) for a library's own code, else this one."""

    def __init__(self, real: ClassValue | None) -> None:
        self.real = real

    def construct(self, ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        ref = ev.current_ref
        caller = ref.module.name.split(".", 1)[0] if ref is not None else ""
        if self.real is not None and caller in LIBRARY_CALLERS:
            return ev.protocol.instantiate(self.real, a, k)
        for obs in ev.loader.instantiation_observers:
            obs(cls, a, k)
        obj = Instance(cls)
        ev.call(ev.protocol.bind_descriptor(cls.ns["__init__"], cls, obj), a, k)
        return obj


def accelerator_class(loader: Loader, real: ClassValue | None = None) -> ClassValue:
    """vramlint's Accelerator (standing in for `real`, the class read from accelerate's source)."""
    key = "accelerate" if real is None else "accelerate.replaced"
    found: ClassValue | None = loader.frontend_state.get(key)
    if found is None:
        found = loader.frontend_state[key] = facade_class(loader, "Accelerator", CLASS_MODULE, _init, METHODS,
                                                          native=_Construct(real))
    return found


def accelerate_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted.split(".", 1)[0] != "accelerate" or loader.find_module_file("accelerate")[0] is not None:
        return None  # not accelerate, or its own source is there (see the module's docstring)
    ns: dict[str, Any] = {"Accelerator": accelerator_class(loader), "__version__": VERSION}
    return ModuleValue(dotted, ns, getattr_hook=absent_package_attribute(loader, dotted))


# The real class, replaced where accelerate's source is read (Frontend.function_rules).
CLASS_RULES = {f"{CLASS_MODULE}.Accelerator": lambda ev, real: accelerator_class(ev.loader, real)}
