"""The timm frontend's registration (frontends/interface.py). timm is read from its own source like
any library; what this frontend adds is its registries, declared lazy (engine/registrations.py):
`import timm` star-imports its 98 model files, each registering its models as it runs, and a file
calling `timm.create_model("resnet50")` needs one of them (17 s cold when all ran, 2,600 of 106,000
lines needed). The readers below are every function of the registries' modules that reads them
(tests/test_registrations.py checks the list against timm's source)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from vramlint.engine.registrations import LazyRegistry
from vramlint.frontends.interface import Frontend

_REGISTRY = "timm.models._registry"
_FX = "timm.layers._fx"


def _model_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The architecture a reader is asked about: its `model_name`, without its pretrained tag
    (`resnet50.a1_in1k`), as timm's `split_model_name_tag` reads it; None for a pattern."""
    name = args[0] if args else kwargs.get("model_name")
    if not isinstance(name, str) or any(c in name for c in "*?["):
        return None
    return name.split(".", 1)[0]


# `register_model_deprecations(__name__, {'tv_resnet34': 'resnet34.tv_in1k', ...})`: the old names
# are registered as shims of the new ones (and added to the module's __all__).
_DEPRECATIONS = re.compile(r"^register_model_deprecations\(\s*__name__\s*,\s*\{([^}]*)\}", re.M)
_KEY = re.compile(r"""(['"])([\w.-]+)\1\s*:""")


def _deprecated_names(text: str) -> Iterable[str]:
    if "register_model_deprecations(" not in text:
        return ()
    return [k.group(2) for m in _DEPRECATIONS.finditer(text) for k in _KEY.finditer(m.group(1))]


MODELS = LazyRegistry(
    decorator=f"{_REGISTRY}.register_model",
    readers={
        **{f"{_REGISTRY}.{name}": _model_name for name in (
            "is_model", "model_entrypoint", "is_model_in_modules", "is_model_pretrained",
            "get_pretrained_cfg", "get_pretrained_cfg_value", "get_arch_pretrained_cfgs")},
        **{f"{_REGISTRY}.{name}": None for name in (
            "list_models", "list_pretrained", "list_modules", "get_deprecated_models")},
    },
    writers=(f"{_REGISTRY}._clear_model_entries", f"{_REGISTRY}.register_model_deprecations"),
    also_registers=_deprecated_names,
)

# The modules and functions FX feature extraction must not trace into: read only by it.
_FX_READERS = ("get_graph_node_names", "create_feature_extractor")
NOTRACE_MODULES = LazyRegistry(
    decorator=f"{_FX}.register_notrace_module",
    readers={f"{_FX}.{name}": None for name in ("is_notrace_module", "get_notrace_modules", *_FX_READERS)},
)
NOTRACE_FUNCTIONS = LazyRegistry(
    decorator=f"{_FX}.register_notrace_function",
    readers={f"{_FX}.{name}": None for name in ("is_notrace_function", "get_notrace_functions", *_FX_READERS)},
)

FRONTEND = Frontend(name="timm", lazy_registries=(MODELS, NOTRACE_MODULES, NOTRACE_FUNCTIONS))
