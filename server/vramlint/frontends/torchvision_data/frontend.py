"""The torchvision data frontend's registration (frontends/interface.py): vramlint's own
`torchvision.datasets` (datasets.py: each dataset's image size, e.g. CIFAR10's 3x32x32) and
`torchvision.transforms` / `transforms.v2` (transforms.py: what each does to the shape), served
instead of torchvision's source, which reads the datasets' files. `torchvision.models` stays
torchvision's own source, but for its API-usage logging (`_log_api_usage_once`, below) and its
model registry, declared lazy (engine/registrations.py: `torchvision.models.resnet50` runs
resnet.py, not the 16 model files `torchvision.models` star-imports).
torch.utils.data (DataLoader, the batch) is the torch frontend's
(frontends/torch/data.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.registrations import LazyRegistry
from vramlint.frontends.interface import Frontend
from vramlint.frontends.torchvision_data import datasets, transforms

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader
    from vramlint.engine.values import FunctionValue, ModuleValue


def _without_source(loader: Loader) -> ModuleValue:
    """`torchvision` when its source is not on the search path: its datasets and transforms still
    serve a script's DataLoader (an MNIST script with its own CNN needs nothing else of it)."""
    from vramlint.engine.values import ModuleValue, Unknown

    def missing(attr: str) -> Unknown:
        return Unknown(f"`torchvision.{attr}` needs torchvision's source: install torchvision or give its folder "
                       "with --extra-path", loader.evaluator.current_ref)

    return ModuleValue("torchvision", {"datasets": loader.import_module("torchvision.datasets", None),
                                       "transforms": loader.import_module("torchvision.transforms", None)},
                       getattr_hook=missing)


def torchvision_data_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted == "torchvision" and loader.find_module_file("torchvision")[0] is None:
        return _without_source(loader)
    if dotted in datasets.MODULES:
        return datasets.datasets_module(loader, dotted)
    if dotted in transforms.MODULES:
        return transforms.transforms_module(loader, dotted)
    return None


def _logs_api_usage(ev: Evaluator, func: FunctionValue) -> Any:
    """`torchvision.utils._log_api_usage_once(obj)`, which every torchvision module's `__init__`
    calls: it names `obj` for `torch._C._log_api_usage_once`, a no-op unless a process installs a
    logger, and changes nothing of a model. Run from its source, it was a twentieth of building
    torchvision's models (2,098 calls for the EfficientNets)."""
    from vramlint.engine.values import NativeFunction

    return NativeFunction(func.qualname, lambda ev, a, k: None)


def _builder_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """`get_model_builder(name)`'s entry: the name lowercased, as it reads it."""
    name = args[0] if args else kwargs.get("name")
    return name.lower() if isinstance(name, str) else None


# `@register_model()` over each builder (`BUILTIN_MODELS`), read by these two functions of
# models/_api.py (get_model and get_model_weights call get_model_builder; tests/test_registrations.py
# checks the list against torchvision's source).
MODELS = LazyRegistry(
    decorator="torchvision.models._api.register_model",
    readers={"torchvision.models._api.get_model_builder": _builder_name, "torchvision.models._api.list_models": None},
)

FRONTEND = Frontend(name="torchvision_data", native_modules=(torchvision_data_module,),
                    function_rules={"torchvision.utils._log_api_usage_once": _logs_api_usage},
                    lazy_registries=(MODELS,))
