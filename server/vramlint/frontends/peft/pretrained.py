"""`PeftModel.from_pretrained(base, adapter)` and `AutoPeftModelForCausalLM.from_pretrained(adapter)`
offline: the adapter's adapter_config.json, never its weights.

peft is read from its own source; these rules replace, by qualified name, only what reads files:

- `PeftConfigMixin._get_peft_type` and `PeftConfigMixin.from_pretrained`: where peft reads
  adapter_config.json (a local folder, else `hf_hub_download`). The JSON is found as transformers'
  config.json is (frontends/transformers/pretrained.py: a local folder or .json file, the Hugging
  Face cache, `adapter_config = "path"` in `[tool.vramlint.models."ORG/NAME"]`); the rest runs from
  peft's source (`check_kwargs`, `from_peft_type`: the config class of its `peft_type`).
- `load_peft_weights` and `set_peft_model_state_dict`: no weights are read; loading reports no
  missing or unexpected keys. Everything else `PeftModel.from_pretrained` and `load_adapter` do
  (wrap the base, inject the adapter, freeze it unless `is_trainable=True`, cast bf16/fp16
  adapters to fp32) runs from source.
- `PeftModel.from_pretrained`: from source, after a check that the adapter's config is there, so
  that a missing one is one located unknown saying what to provide, not a cascade of unknowns.
- `_BaseAutoPeftModel.from_pretrained` (`AutoPeftModelForCausalLM`...): the adapter's config, its
  `base_model_name_or_path` loaded with the class's transformers auto class (`from_pretrained`,
  offline), then the PEFT class's `from_pretrained`. Left out: the tokenizer lookup (a file on the
  Hub), which only resizes the embeddings when the adapter's tokenizer has more tokens than them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import ClassValue, ModuleValue, NativeFunction, Unknown
from vramlint.frontends.transformers.pretrained import _attr, _text, locate_config, read_config

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

ADAPTER_CONFIG_NAME = "adapter_config.json"  # peft's utils/constants.py CONFIG_NAME
HUB_KWARGS = ("revision", "cache_dir", "subfolder")


def _user_ref(ev: Evaluator) -> Any:
    """The current statement unless it is inside peft or transformers: then None, and the unknown is
    located where it reaches the user's code."""
    path = getattr(getattr(ev.current_ref, "module", None), "path", None) or ""
    inside = any(f"{os.sep}{lib}{os.sep}" in path for lib in ("peft", "transformers"))
    return None if inside else ev.current_ref


def adapter_config(ev: Evaluator, name: Any, kwargs: Mapping[str, Any]) -> dict[str, Any] | Unknown:
    """The adapter_config.json of `name` (with `revision=`, `cache_dir=`, `subfolder=`), or a located
    unknown saying what to provide."""
    text = _text(name)
    if text is None:
        if isinstance(name, Unknown):
            return name
        return Unknown(f"from_pretrained of a {type(name).__name__}: expected an adapter's name or path", _user_ref(ev))
    options = {k: _text(kwargs.get(k)) for k in HUB_KWARGS}
    found = locate_config(text, ev.loader.environment, ev.loader.model_tables, options["revision"],
                          options["cache_dir"], options["subfolder"] or "", filename=ADAPTER_CONFIG_NAME,
                          key="adapter_config")
    data = found if isinstance(found, str) else read_config(found)
    if isinstance(data, dict) and not isinstance(data.get("peft_type"), str):
        data = f"{found.path if not isinstance(found, str) else text} has no `peft_type`: not a peft adapter config"
    if isinstance(data, str):
        missing = Unknown(data, _user_ref(ev))
        ev.loader.missing_files.append(missing)
        return missing
    return data


def get_peft_type(ev: Evaluator, func: Any) -> NativeFunction:
    """PeftConfigMixin._get_peft_type(cls, model_id, **hf_hub_download_kwargs) -> its `peft_type`."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        if len(a) < 2 and "model_id" not in k:
            return Unknown("_get_peft_type() without a name or path", ev2.current_ref)
        data = adapter_config(ev2, a[1] if len(a) > 1 else k["model_id"], k)
        if isinstance(data, Unknown):
            return data
        _register_tuner(ev2, data["peft_type"])
        return data["peft_type"]

    return NativeFunction("PeftConfigMixin._get_peft_type", impl)


def _register_tuner(ev: Evaluator, peft_type: str) -> None:
    """Run the package of the adapter's method (`peft.tuners.lora` for "LORA"), whose __init__
    registers its config class in PEFT_TYPE_TO_CONFIG_MAPPING (`register_peft_method`): `import peft`
    imports every tuner, while the engine runs a package's __init__ only when something of it is
    asked, and the caller looks the type up in that table next."""
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", peft_type):
        return
    module = ev.loader.import_module(f"peft.tuners.{peft_type.lower()}", ev.current_ref)
    if isinstance(module, ModuleValue):
        ev.loader.module_attr(module, "__all__", None, ev.current_ref)


def _annotations(ev: Evaluator, cls: Any) -> set[str]:
    found = ev.protocol.getattr(cls, "__annotations__", None)
    return {k for k in found if isinstance(k, str)} if isinstance(found, dict) else set()


def config_from_pretrained(ev: Evaluator, func: Any) -> NativeFunction:
    """PeftConfigMixin.from_pretrained(cls, name, subfolder=None, **kwargs): the JSON's attributes over
    the keywords that are fields of `cls`, then `cls.check_kwargs` and `cls.from_peft_type`, from
    source (config.py)."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        kwargs = dict(k)
        name = a[1] if len(a) > 1 else kwargs.pop("pretrained_model_name_or_path", None)
        if len(a) > 2:
            kwargs["subfolder"] = a[2]
        cls = a[0]
        data = adapter_config(ev2, name, kwargs)
        if isinstance(data, Unknown):
            return data
        data = {key: v for key, v in data.items() if key != "runtime_config"}  # from_json_file drops it
        fields = _annotations(ev2, cls)
        merged = {**{key: v for key, v in kwargs.items() if key in fields}, **data}
        checked = ev2.call(_attr(ev2, cls, "check_kwargs"), (), merged)
        if not isinstance(checked, dict):
            return checked if isinstance(checked, Unknown) else Unknown("check_kwargs() gave no dict", ev2.current_ref)
        return ev2.call(_attr(ev2, cls, "from_peft_type"), (), checked)

    return NativeFunction("PeftConfigMixin.from_pretrained", impl)


def load_peft_weights(ev: Evaluator, func: Any) -> NativeFunction:
    """load_peft_weights(model_id, ...): the adapter's state dict. Weights are never read: empty."""
    return NativeFunction("load_peft_weights", lambda ev2, a, k: {})


def set_peft_model_state_dict(ev: Evaluator, func: Any) -> NativeFunction:
    """set_peft_model_state_dict(model, state_dict, ...): what `load_state_dict` reports, with nothing
    missing or unexpected (the weights, not read, would fill the tensors already built)."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        namespace = _attr(ev2, ev2.loader.import_module("types", ev2.current_ref), "SimpleNamespace")
        return ev2.call(namespace, (), {"missing_keys": [], "unexpected_keys": []})

    return NativeFunction("set_peft_model_state_dict", impl)


def peft_model_from_pretrained(ev: Evaluator, func: Any) -> NativeFunction:
    """PeftModel.from_pretrained(cls, model, model_id, ..., config=None, **kwargs) from source, once
    the adapter's config is known to be readable (when no `config=` is given)."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        model_id = a[2] if len(a) > 2 else k.get("model_id")
        config = a[4] if len(a) > 4 else k.get("config")
        if config is None:
            data = adapter_config(ev2, model_id, k)
            if isinstance(data, Unknown):
                return data
        # The device load_adapter loads the weights on (not read here): left out, peft's
        # infer_device() asks whether CUDA is available, which only the machine knows.
        return ev2.call(func, a, {"torch_device": "cuda", **k})

    return NativeFunction(f"{getattr(func, 'qualname', 'PeftModel.from_pretrained')}", impl)


# huggingface_hub's hf_hub_download parameters (file_download.py), which peft's `_split_kwargs` reads
# with inspect.signature: huggingface_hub is not read (nothing is downloaded).
HF_HUB_DOWNLOAD_PARAMS = frozenset((
    "repo_id", "filename", "subfolder", "repo_type", "revision", "library_name", "library_version", "cache_dir",
    "local_dir", "user_agent", "force_download", "proxies", "etag_timeout", "token", "local_files_only", "headers",
    "endpoint", "resume_download", "force_filename", "local_dir_use_symlinks", "dry_run", "tqdm_class",
))


def split_kwargs(ev: Evaluator, func: Any) -> NativeFunction:
    """PeftModel._split_kwargs(cls, kwargs) -> (hf_hub_download's keywords, the others), as
    peft_model.py splits them (`use_auth_token` with the first)."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        kwargs = a[1] if len(a) > 1 else k.get("kwargs")
        if not isinstance(kwargs, dict):
            return Unknown("_split_kwargs() of something that is not a dict", ev2.current_ref)
        hub = {key: v for key, v in kwargs.items() if key in HF_HUB_DOWNLOAD_PARAMS or key == "use_auth_token"}
        return hub, {key: v for key, v in kwargs.items() if key not in hub}

    return NativeFunction("PeftModel._split_kwargs", impl)


_AUTO_PARAMS = ("pretrained_model_name_or_path", "adapter_name", "is_trainable", "config", "revision",
                "import_allowlist")


def auto_peft_from_pretrained(ev: Evaluator, func: Any) -> NativeFunction:
    """_BaseAutoPeftModel.from_pretrained(cls, name, adapter_name="default", is_trainable=False,
    config=None, revision=None, import_allowlist=None, **kwargs), as auto.py does it but for the
    tokenizer lookup: the adapter's config, the base by its `base_model_name_or_path` and revision
    through the class's transformers auto class, then the PEFT class's from_pretrained."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        if not a:
            return Unknown("from_pretrained() without its class", ev2.current_ref)
        cls, kwargs = a[0], dict(k)
        bound = {"adapter_name": "default", "is_trainable": False, "config": None, "revision": None}
        bound.update(zip(_AUTO_PARAMS, a[1:]))
        bound.update({p: kwargs.pop(p) for p in _AUTO_PARAMS if p in kwargs})
        name = bound.get("pretrained_model_name_or_path")
        data = adapter_config(ev2, name, {**kwargs, "revision": bound["revision"]})
        if isinstance(data, Unknown):
            return data
        peft_config = ev2.call(_attr(ev2, _peft_config_class(ev2), "from_pretrained"), (name,),
                               {**kwargs, "revision": bound["revision"]})
        if isinstance(peft_config, Unknown):
            return peft_config
        target = _attr(ev2, cls, "_target_class")
        if not isinstance(target, ClassValue):
            # AutoPeftModel: the base class comes from the config's `auto_mapping` (an import by name).
            return Unknown(f"{getattr(cls, 'name', 'AutoPeftModel')}.from_pretrained: the base model's class from the "
                           "adapter's `auto_mapping` is not modelled; use AutoPeftModelForCausalLM (or load the base "
                           "and call PeftModel.from_pretrained)", _user_ref(ev2))
        base_name = _attr(ev2, peft_config, "base_model_name_or_path")
        if _text(base_name) is None:
            return Unknown(f"the adapter config of `{name}` names no base model (`base_model_name_or_path`)",
                           _user_ref(ev2))
        base = ev2.call(_attr(ev2, target, "from_pretrained"), (base_name,),
                        {**kwargs, "revision": _attr(ev2, peft_config, "revision")})
        if isinstance(base, Unknown):
            return base
        keywords = {key: bound[key] for key in ("adapter_name", "is_trainable", "config", "revision")}
        return ev2.call(_attr(ev2, _attr(ev2, cls, "_target_peft_class"), "from_pretrained"), (base, name),
                        {**keywords, **kwargs})

    return NativeFunction(f"{getattr(func, 'qualname', 'from_pretrained')}", impl)


def _peft_config_class(ev: Evaluator) -> Any:
    return _attr(ev, ev.loader.import_module("peft.config", ev.current_ref), "PeftConfig")


# Rules by the replaced function's qualified name (module.qualname), Frontend.function_rules.
FUNCTION_RULES = {
    "peft.config.PeftConfigMixin._get_peft_type": get_peft_type,
    "peft.config.PeftConfigMixin.from_pretrained": config_from_pretrained,
    "peft.utils.save_and_load.load_peft_weights": load_peft_weights,
    "peft.utils.save_and_load.set_peft_model_state_dict": set_peft_model_state_dict,
    "peft.peft_model.PeftModel.from_pretrained": peft_model_from_pretrained,
    "peft.peft_model.PeftModel._split_kwargs": split_kwargs,
    "peft.auto._BaseAutoPeftModel.from_pretrained": auto_peft_from_pretrained,
}
