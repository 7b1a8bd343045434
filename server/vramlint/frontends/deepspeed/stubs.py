"""The `deepspeed` package, as vramlint's own module where DeepSpeed is not installed for the analysis
(it rarely is: it builds CUDA extensions; where its source is on the search path it is read as
any library's).

Without it, `import deepspeed` was an unresolved import (VL303) and `engine, opt, _, _ =
deepspeed.initialize(model=model, ...)` an unknown, so the script's `engine(batch)` never called
the model and its batch was lost. Here `initialize` returns an engine as DeepSpeed's
`DeepSpeedEngine` behaves for a script: calling it calls the model (so the script's loop gives the
model its batch), `engine.module` is the model, `backward` / `step` / `save_checkpoint` do
nothing, and any other attribute is the model's (DeepSpeedEngine.__getattr__ forwards to its
module: `engine.parameters()`, `engine.train()`). It is not itself a module, so the file's model is
estimated once, under its own name. Beside it: the optimizer it was given (or an object that does
nothing: DeepSpeed builds its own from the config), no data loader, the scheduler it was given.
What the config says about the GPUs' memory is read from the code and the JSON file, not from
this module (frontends/deepspeed/reading.py). Every other name is a value whose calls do nothing
(`deepspeed.init_distributed()`, `deepspeed.zero.Init(...)` as a context manager,
`deepspeed.ops.adam.DeepSpeedCPUAdam(...)`), or, capitalised, a class that does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import NoOp
from vramlint.engine.values import (
    Args,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Unknown,
)
from vramlint.frontends.facade import Method, absent_package_attribute, facade_class, returns_none
from vramlint.frontends.torch.tensors import Device

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

VERSION = "0.19.8"  # the API modelled
# deepspeed.initialize's parameters, in order (deepspeed/__init__.py).
INITIALIZE_PARAMS = ("args", "model", "optimizer", "model_parameters", "training_data", "lr_scheduler",
                     "distributed_port", "mpu", "dist_init_required", "collate_fn", "config", "mesh_param",
                     "config_params")


def bound_arguments(a: Args, k: Kwargs, names: tuple[str, ...]) -> dict[str, Any]:
    """Positional and keyword arguments by parameter name."""
    out = dict(zip(names, a))
    out.update({key: v for key, v in k.items() if key in names})
    return out


def _engine_init(ev: Evaluator, a: Args, k: Kwargs) -> dict[str, Any]:
    # The rank's GPU (deepspeed/runtime/engine.py: `self.device = torch.device(accelerator, local_rank)`),
    # rank 0's: scripts move their batches there (`x.to(engine.device)`).
    return {"module": k.get("module"), "device": Device("cuda", 0), "local_rank": 0}


def _engine_call(ev: Evaluator, engine: Instance, a: Args, k: Kwargs) -> Any:
    return ev.protocol.call_object(engine.attrs["module"], tuple(a), dict(k))


ENGINE_METHODS: dict[str, Method] = {
    "__call__": _engine_call, "forward": _engine_call, "backward": returns_none, "step": returns_none,
    "save_checkpoint": returns_none, "load_checkpoint": returns_none, "zero_grad": returns_none,
}


def engine_class(loader: Loader) -> ClassValue:
    found: ClassValue | None = loader.frontend_state.get("deepspeed.engine")
    if found is None:
        found = facade_class(loader, "DeepSpeedEngine", "deepspeed.runtime.engine", _engine_init, ENGINE_METHODS)

        def forward_attr(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            return ev.protocol.getattr(a[0].attrs["module"], a[1])

        found.ns["__getattr__"] = NativeFunction("DeepSpeedEngine.__getattr__", forward_attr)
        loader.frontend_state["deepspeed.engine"] = found
    return found


def _initialize(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    got = bound_arguments(a, k, INITIALIZE_PARAMS)
    model = got.get("model")
    if model is None:
        return Unknown("deepspeed.initialize(...) without a model", ev.current_ref)
    engine = ev.protocol.instantiate(engine_class(ev.loader), (), {"module": model})
    optimizer = got.get("optimizer") or NoOp("DeepSpeed optimizer", chain=True)
    return (engine, optimizer, None, got.get("lr_scheduler"))


def _first_argument(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return a[0] if a else None


def deepspeed_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted.split(".", 1)[0] != "deepspeed" or loader.find_module_file("deepspeed")[0] is not None:
        return None  # not deepspeed, or its own source is there
    ns: dict[str, Any] = {"__version__": VERSION}
    if dotted == "deepspeed":
        ns["initialize"] = NativeFunction("deepspeed.initialize", _initialize)
        # add_config_arguments(parser) returns the parser with --deepspeed / --deepspeed_config added.
        ns["add_config_arguments"] = NativeFunction("deepspeed.add_config_arguments", _first_argument)
    return ModuleValue(dotted, ns, getattr_hook=absent_package_attribute(loader, dotted))
