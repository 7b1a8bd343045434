"""`from_pretrained(name_or_path, ...)` offline: the checkpoint's config.json, never its weights.

transformers' own `from_pretrained` downloads files and reads weights; the analysis needs only the
config, from which the model is then built as transformers builds it (`cls._from_config(config)`,
evaluated from transformers' source). These rules replace, by qualified name:

- `PreTrainedConfig.get_config_dict`: where every config's `from_pretrained` (and `AutoConfig`'s)
  reads the JSON. The rest of those functions runs from source (the config class chosen by
  `model_type`, keyword overrides of config values).
- `PreTrainedModel.from_pretrained` (`LlamaForCausalLM.from_pretrained`...): the config, then
  `cls._from_config(config, dtype=..., attn_implementation=...)` and `model.eval()`, as
  transformers does once the weights are loaded.
- `PreTrainedModel._from_config`: run from source, then the parameters in the dtype it resolved.
- `_BaseAutoModelClass.from_pretrained` (`AutoModelForCausalLM`...): `AutoConfig.from_pretrained`,
  the class its mapping gives for the config, then that class's `from_pretrained`.

Where the config comes from, in order (docs/llm.md): a local folder (or a .json file); the local
Hugging Face cache; `config = "path/to/config.json"` in `[tool.vramlint.models."ORG/NAME"]`;
vramlint's own table of popular checkpoints' configs (`hub_configs.json`, made by
tools/make_hub_configs.py, each entry saying where it was copied from and when).
The cache's environment variables (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME) are those of the
configured `environment` table, which is what the analysed code sees as os.environ; `~` is the
real user's home. Nothing is downloaded: when none has it, the model is an unknown whose reason
says which of the first three to provide. How a model was loaded (its checkpoint, where its
config came from, its dtype) is its `origin`, shown by the editor's hover and in how it was built.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine import reads
from vramlint.engine.source import read_source_file
from vramlint.engine.values import MISSING, ClassValue, Instance, NativeFunction, Unknown
from vramlint.frontends.torch.module import is_module, named_modules, named_tensors
from vramlint.frontends.torch.tensors import FLOAT_DTYPES, DType, TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

CONFIG_NAME = "config.json"
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a config.json is a few KiB; anything larger is not one
TABLE_NAME = "hub_configs.json"  # beside this module, shipped in the wheel (pyproject's package-data)

# Keywords of `from_pretrained` that are about fetching files: given to the config's lookup only.
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "proxies", "revision", "subfolder", "token")
# Keywords of a model's `from_pretrained` that are about loading weights, not the config or the
# model's constructor (modeling_utils.py, PreTrainedModel.from_pretrained's own pops): dropped.
LOADING_KWARGS = (
    "ignore_mismatched_sizes", "use_safetensors", "weights_only", "output_loading_info", "device_map",
    "low_cpu_mem_usage", "max_memory", "offload_folder", "offload_state_dict", "offload_buffers", "variant",
    "trust_remote_code", "code_revision", "_commit_hash", "_from_auto", "_from_pipeline", "adapter_kwargs",
    "adapter_name", "key_mapping", "tp_plan", "tp_size", "device_mesh", "distributed_config", "gguf_file",
    "use_kernels", "kernel_config", "generation_config", "state_dict", "use_auth_token", "mirror",
    "resume_download", "from_tf", "from_flax", "quantization_config",
)
# Keywords the model's construction takes (PreTrainedModel._from_config).
MODEL_KWARGS = ("dtype", "torch_dtype", "attn_implementation", "experts_implementation")


@dataclass(frozen=True)
class ConfigFile:
    path: str
    source: str  # "local folder", "Hugging Face cache (...)", "configuration [tool.vramlint.models...]"
    data: Mapping[str, Any] | None = None  # the config itself, when it is an entry of vramlint's table


@functools.lru_cache(maxsize=1)
def hub_table() -> Mapping[str, Mapping[str, Any]]:
    """vramlint's table of popular checkpoints' configs, by name and by the aliases the Hub
    redirects ("gpt2" -> "openai-community/gpt2"). Empty if the file is missing or broken: the
    table is a convenience, never a reason for an analysis to fail."""
    try:
        text = importlib.resources.files(__package__).joinpath(TABLE_NAME).read_text(encoding="utf-8")
    except OSError:
        return {}
    return parse_table(text)


def parse_table(text: str) -> dict[str, Mapping[str, Any]]:
    """The entries of a table's text by name and alias; what is not an entry is left out."""
    try:
        entries = json.loads(text).get("entries")
    except (ValueError, AttributeError, RecursionError):
        return {}
    table: dict[str, Mapping[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
            aliases = entry.get("aliases")
            for name in (entry.get("name"), *(aliases if isinstance(aliases, list) else ())):
                if isinstance(name, str):
                    table[name] = entry
    return table


def table_source(entry: Mapping[str, Any]) -> str:
    """Where a table entry was copied from, in one line: "vramlint's table of popular checkpoints
    (mlc-ai/mlc-llm python/.../model_preset.py `llama2_7b` at 79d603f085f5, 2026-07-23)"."""
    src = entry.get("source", {})
    key = f" `{src['key']}`" if src.get("key") else ""
    return (f"vramlint's table of popular checkpoints ({src.get('repository', '?')} {src.get('path', '?')}{key} "
            f"at {str(src.get('commit', '?'))[:12]}, {entry.get('date', '?')})")


def hub_cache(environment: Mapping[str, str], cache_dir: str | None = None) -> str:
    """The Hugging Face hub cache folder, as huggingface_hub's constants.py finds it."""
    if cache_dir:
        return os.path.expanduser(cache_dir)
    if environment.get("HF_HUB_CACHE"):
        return os.path.expanduser(environment["HF_HUB_CACHE"])
    home = environment.get("HF_HOME") or os.path.join(
        environment.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def _cached_config(cache: str, repo_id: str, revision: str, subfolder: str, filename: str = CONFIG_NAME) -> str | None:
    """`models--ORG--NAME/snapshots/<commit>/[subfolder/]config.json`, the commit being `revision`
    itself or what `refs/<revision>` holds."""
    repo = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    commit = revision
    ref = os.path.join(repo, "refs", revision)
    if reads.isfile(ref):
        data, _ = read_source_file(ref, 1 << 16)
        if data is None:
            return None
        commit = data[:200].decode("utf-8", "replace").strip()
    path = os.path.join(repo, "snapshots", commit, subfolder, filename)
    return path if reads.isfile(path) else None


def locate_config(name: str, environment: Mapping[str, str], model_tables: Mapping[str, Mapping[str, Any]],
                  revision: str | None = None, cache_dir: str | None = None,
                  subfolder: str = "", filename: str = CONFIG_NAME, key: str = "config") -> ConfigFile | str:
    """Where the config of `name` is, in order: a local folder or JSON file, the Hugging Face cache,
    the configuration's per-model table (its `key`); else a sentence saying what to provide.
    `filename`/`key`: peft's adapter_config.json and `adapter_config` use the same lookup."""
    local = os.path.expanduser(name)
    if reads.isdir(local):
        path = os.path.join(local, subfolder, filename)
        if reads.isfile(path):
            return ConfigFile(path, f"local folder {local}")
        return f"the folder {local} has no {os.path.join(subfolder, filename)}"
    if reads.isfile(local) and local.endswith(".json"):
        return ConfigFile(local, f"local file {local}")
    cache = hub_cache(environment, cache_dir)
    if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name):
        found = _cached_config(cache, name, revision or "main", subfolder, filename)
        if found is not None:
            return ConfigFile(found, f"Hugging Face cache {cache}")
    table = model_tables.get(name, {})
    if isinstance(table.get(key), str):
        path = table[key]
        if reads.isfile(path):
            return ConfigFile(path, f'configuration [tool.vramlint.models."{name}"]')
        return f'`{key}` of [tool.vramlint.models."{name}"]: no such file {path}'
    # The table holds each checkpoint's config at one commit, of its main branch, at its root.
    entry = hub_table().get(name) if filename == CONFIG_NAME else None
    if entry is not None and revision in (None, "main") and not subfolder:
        return ConfigFile(TABLE_NAME, table_source(entry), entry["config"])
    what = "config" if filename == CONFIG_NAME else filename.removesuffix(".json").replace("_", " ")
    lacks = (", and its table of popular checkpoints does not have it"
             f"{' at that revision or subfolder' if entry else ''}") if filename == CONFIG_NAME else ""
    return (f"the {what} of `{name}` is not available offline (vramlint never downloads{lacks}): "
            f"give a local folder "
            f"holding its {filename}, or have it in the Hugging Face cache ({cache}/models--"
            f"{name.replace('/', '--')}/snapshots/..., e.g. `hf download {name} {filename}`; HF_HOME and "
            f"HF_HUB_CACHE are read from the `environment` table), or set `{key} = \"path/to/{filename}\"` "
            f'in [tool.vramlint.models."{name}"]')


def read_config(found: ConfigFile) -> dict[str, Any] | str:
    """The JSON object of a config.json, or why it cannot be read."""
    if found.data is not None:  # a copy: transformers' config code may change nested dicts in place
        return copy.deepcopy(dict(found.data))
    try:
        if os.path.getsize(found.path) > MAX_CONFIG_BYTES:
            return f"{found.path} is larger than {MAX_CONFIG_BYTES} bytes: not a {os.path.basename(found.path)}"
        raw, problem = read_source_file(found.path, MAX_CONFIG_BYTES)
        if raw is None:
            raise OSError(problem)
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: JSON nested thousands deep
        return f"cannot read {found.path} ({found.source}): {err}"
    if not isinstance(data, dict):
        return f"{found.path} ({found.source}) does not hold a JSON object"
    return data


# ---------------------------------------------------------------------- the rules
def _text(v: Any) -> str | None:
    """A path or name given as str or os.PathLike (pathlib.Path)."""
    if isinstance(v, str):
        return v
    to_str = getattr(v, "to_str", None)
    if callable(to_str) and not isinstance(v, Unknown):
        out = to_str()
        return out if isinstance(out, str) else None
    return None


# Where the config of each model (or config object) these rules built came from, and the rows
# saying how each loaded model was loaded (`origin`). Weak: an analysis's values go when it ends.
_CONFIG_SOURCES: weakref.WeakKeyDictionary[Any, ConfigFile] = weakref.WeakKeyDictionary()
_LOADED: weakref.WeakKeyDictionary[Any, tuple[tuple[str, str], ...]] = weakref.WeakKeyDictionary()


def _config_row(found: ConfigFile) -> tuple[str, str]:
    """("config", "path (local folder ...)"), or the table's source for one of its entries."""
    return ("config", found.source if found.data is not None else f"{found.path} ({found.source})")


def _weak_get(table: weakref.WeakKeyDictionary[Any, Any], key: Any) -> Any:
    try:
        return table.get(key)
    except TypeError:  # not weak-referenceable: not one of ours
        return None


def origin(model: Any) -> tuple[tuple[str, str], ...]:
    """How `model` was loaded (Frontend.origin), or how the model it wraps was (a PeftModel
    around a checkpoint): its checkpoint, where its config came from, its dtype."""
    if not _LOADED:  # nothing loaded in this process: no need to walk the model
        return ()
    for _, m in named_modules(model):
        rows = _weak_get(_LOADED, m)
        if rows is not None:
            return rows
    return ()


def _loaded_rows(name: Any, found: ConfigFile | None, dtype: Any, dtype_source: str) -> tuple[tuple[str, str], ...]:
    """The checkpoint, where its config came from, the dtype and what set it."""
    text = _text(name)
    rows = [("checkpoint", text)] if text is not None else []
    if found is not None:
        rows.append(_config_row(found))
    dtype_name = dtype.name if isinstance(dtype, DType) else dtype if isinstance(dtype, str) else None
    if dtype_name is not None:
        rows.append(("dtype", f"{dtype_name} ({dtype_source})"))
    return tuple(rows)


def _loading_rows(ev: Evaluator, model: Any, kwargs: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """What else the call says that changes memory: the attention kernel (what attention keeps),
    the quantization, the device map."""
    rows: list[tuple[str, str]] = []
    attention = ev.protocol.getattr(_attr(ev, model, "config"), "_attn_implementation", None)
    if isinstance(attention, str):
        given = "attn_implementation" in kwargs
        rows.append(("attention", f"{attention} ({'`attn_implementation=`' if given else 'transformers default'})"))
    quantization = kwargs.get("quantization_config")
    if quantization is not None and not isinstance(quantization, Unknown):
        rows.append(("quantization", _quantization_text(ev, quantization)))
    device_map = kwargs.get("device_map")
    if isinstance(device_map, (str, dict)):
        rows.append(("device_map", f"{device_map!r} (one GPU: the whole model on it)" if isinstance(device_map, str)
                     else "a dict (one GPU: the whole model on it)"))
    return tuple(rows)


def _quantization_text(ev: Evaluator, config: Any) -> str:
    """"4-bit nf4, double quantization, compute bfloat16 (`quantization_config=`)"."""
    def get(name: str) -> Any:
        return ev.protocol.getattr(config, name, None)

    if get("load_in_4bit") is True:
        parts = [f"4-bit {get('bnb_4bit_quant_type') or 'fp4'}"]
        if get("bnb_4bit_use_double_quant") is True:
            parts.append("double quantization")
        compute = get("bnb_4bit_compute_dtype")
        if isinstance(compute, DType):
            parts.append(f"compute {compute.name}")
        text = ", ".join(parts)
    elif get("load_in_8bit") is True:
        text = "8-bit (LLM.int8)"
    else:
        text = type(config).__name__ if not isinstance(config, Instance) else config.cls.name
    return f"{text} (`quantization_config=`)"


def _located_config(ev: Evaluator, name: Any, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], ConfigFile] | Unknown:
    """The config.json of `name` (with `revision=`, `cache_dir=`, `subfolder=`) and where it was
    found, or a located unknown."""
    text = _text(name)
    if text is None:
        if isinstance(name, Unknown):
            return name
        return Unknown(f"from_pretrained of a {type(name).__name__}: expected a name or a path", ev.current_ref)
    options = {k: _text(kwargs.get(k)) for k in ("revision", "cache_dir", "subfolder")}
    found = locate_config(text, ev.loader.environment, ev.loader.model_tables, options["revision"],
                          options["cache_dir"], options["subfolder"] or "")
    data = found if isinstance(found, str) else read_config(found)
    # Located at the user's statement, not at the auto class's `super().from_pretrained(...)` inside
    # transformers (the only frame at hand when the call came through AutoModelForCausalLM).
    if isinstance(data, str):
        missing = Unknown(data, _user_ref(ev))
        ev.loader.missing_files.append(missing)  # reported even beside other models (analysis/api.py)
        return missing
    assert not isinstance(found, str)
    return data, found


def _config_dict(ev: Evaluator, name: Any, kwargs: Mapping[str, Any]) -> dict[str, Any] | Unknown:
    found = _located_config(ev, name, kwargs)
    return found if isinstance(found, Unknown) else found[0]


def _user_ref(ev: Evaluator) -> Any:
    ref = ev.current_ref
    path = getattr(getattr(ref, "module", None), "path", None) or ""
    return None if f"{os.sep}transformers{os.sep}" in path else ref


def get_config_dict(ev: Evaluator, func: Any) -> NativeFunction:
    """PreTrainedConfig.get_config_dict(cls, name, **kwargs) -> (config dict, unused kwargs)."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        if len(a) < 2:
            return Unknown("get_config_dict() without a name or path", ev2.current_ref)
        data = _config_dict(ev2, a[1], k)
        if isinstance(data, Unknown):
            return data
        # What _get_config_dict pops (configuration_utils.py): the rest updates the config.
        unused = {key: v for key, v in k.items() if key not in (*HUB_KWARGS, "trust_remote_code", "_from_pipeline",
                                                                "_from_auto", "_commit_hash", "gguf_file",
                                                                "_configuration_file", "user_agent")}
        return dict(data), unused

    return NativeFunction("PreTrainedConfig.get_config_dict", impl)


_ABSENT = object()


def _attr(ev: Evaluator, obj: Any, name: str) -> Any:
    """obj.name, or an unknown saying it is missing (transformers' own code would raise)."""
    v = ev.protocol.getattr(obj, name, _ABSENT)
    return Unknown(f"`{name}` is missing on {type(obj).__name__}", ev.current_ref) if v is _ABSENT or v is MISSING \
        else v


def _config_class(ev: Evaluator, cls: Any) -> Any:
    """The model class's config class: `config_class`, which PreTrainedModel.__init_subclass__ derives
    from the `config: LlamaConfig` annotation with get_type_hints (not modelled), so the annotation
    itself; else AutoConfig, which picks the class by the config's `model_type`."""
    found = _attr(ev, cls, "config_class")
    if isinstance(found, ClassValue):
        return found
    for klass in getattr(cls, "mro", ()):
        annotation = klass.ns.get("__annotations__", {}).get("config") if isinstance(klass, ClassValue) else None
        if isinstance(annotation, ClassValue):
            return annotation
    return _library(ev, "models.auto.configuration_auto", "AutoConfig")


def _library(ev: Evaluator, module: str, name: str) -> Any:
    """`name` of transformers' module `transformers.<module>`, evaluated from its source."""
    return _attr(ev, ev.loader.import_module(f"transformers.{module}", ev.current_ref), name)


def _needs_config(config: Any) -> bool:
    return config is None or _text(config) is not None


def model_from_pretrained(ev: Evaluator, func: Any) -> NativeFunction:
    """PreTrainedModel.from_pretrained(cls, name, *model_args, **kwargs): built from the config."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        if len(a) < 2:
            return Unknown("from_pretrained() without a name or path", ev2.current_ref)
        cls, name = a[0], a[1]
        quantization = k.get("quantization_config")
        kwargs = {key: v for key, v in k.items() if key not in LOADING_KWARGS}
        config = kwargs.pop("config", None)
        model_kwargs = {key: kwargs.pop(key) for key in MODEL_KWARGS if key in kwargs}
        hub = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
        found: ConfigFile | None = None
        if _needs_config(config):
            source = name if config is None else config
            located = _located_config(ev2, source, hub)
            if isinstance(located, Unknown):
                return located
            found = located[1]
            loaded = ev2.call(_attr(ev2, _config_class(ev2, cls), "from_pretrained"), (source,),
                              {**hub, **kwargs, "return_unused_kwargs": True})
            if isinstance(loaded, Unknown):
                return loaded
            config, kwargs = loaded
        else:
            found = _weak_get(_CONFIG_SOURCES, config)  # a config from AutoConfig's rule (the auto classes)
        given = "dtype" if "dtype" in model_kwargs else "torch_dtype" if "torch_dtype" in model_kwargs else None
        dtype = model_kwargs.pop("dtype", None)
        torch_dtype = model_kwargs.pop("torch_dtype", None)
        dtype = torch_dtype if dtype is None else dtype
        dtype_source = f"`{given}=`" if given is not None and dtype != "auto" else "the config's `dtype`"
        if dtype is None or dtype == "auto":  # transformers 5's default: the config's dtype
            dtype = _attr(ev2, config, "dtype")
        if dtype is not None:
            model_kwargs["dtype"] = dtype
        model = ev2.call(_attr(ev2, cls, "_from_config"), (config,), {**model_kwargs, **kwargs})
        if is_module(model):
            model = _quantized(ev2, model, quantization, k.get("device_map"))
        if not isinstance(model, Unknown):
            ev2.call(_attr(ev2, model, "eval"), (), {})  # from_pretrained returns the model in eval mode
            _LOADED[model] = (*_loaded_rows(name, found, dtype, dtype_source), *_loading_rows(ev2, model, k))
        return model

    return NativeFunction(f"{getattr(func, 'qualname', 'from_pretrained')}", impl)


def _quantized(ev: Evaluator, model: Any, given: Any, device_map: Any) -> Any:
    """The model quantized as from_pretrained does it (modeling_utils.py: `get_hf_quantizer`, then
    `hf_quantizer.preprocess_model` on the model just built, `postprocess_model` once loaded), run
    from transformers' source: for bitsandbytes, `replace_with_bnb_linear` swaps every nn.Linear
    but the skipped ones (`get_keys_to_not_convert`: lm_head / the output embedding, tied and last
    weights; `llm_int8_skip_modules`) for the layers of vramlint's `bitsandbytes` stub
    (frontends/bitsandbytes), which hold the weights as bitsandbytes stores them.
    A checkpoint's own `quantization_config` (a pre-quantized model) counts as given."""
    config = _attr(ev, model, "config")
    own = ev.protocol.getattr(config, "quantization_config", None)
    wanted = own if given is None else given
    if wanted is None or wanted is MISSING:
        return model
    if isinstance(wanted, Unknown):
        return wanted
    auto = _library(ev, "quantizers.auto", "AutoHfQuantizer")
    if own is not None and own is not MISSING and given is not None:  # get_hf_quantizer's merge
        wanted = ev.call(_attr(ev, auto, "merge_quantization_configs"), (own, given), {})
    quantizer = ev.call(_attr(ev, auto, "from_config"), (wanted,), {"pre_quantized": own is not None
                                                                    and own is not MISSING})
    if isinstance(quantizer, Unknown):
        return quantizer
    ev.protocol.setattr(config, "quantization_config", _attr(ev, quantizer, "quantization_config"))
    dtype = _attr(ev, config, "dtype")
    done = ev.call(_attr(ev, quantizer, "preprocess_model"), (), {
        "model": model, "dtype": dtype, "device_map": device_map, "checkpoint_files": None, "use_kernels": False})
    if isinstance(done, Unknown):
        return done
    _as_loaded(model, dtype)
    ev.protocol.setattr(model, "hf_quantizer", quantizer)
    done = ev.call(_attr(ev, quantizer, "postprocess_model"), (model,), {})
    return done if isinstance(done, Unknown) else model


def _as_loaded(model: Any, dtype: Any) -> None:
    """The weights as loading leaves them: the layers the quantizer made are float32 and frozen
    where they are not quantized (their bias, `requires_grad_(False)` in replace_with_bnb_linear);
    loading gives every such weight the model's dtype and sets it as a new floating
    `nn.Parameter`, which requires grad (modeling_utils.py, `_load_parameter_into_model`)."""
    low = dtype.name if isinstance(dtype, DType) and dtype.name in FLOAT_DTYPES else None
    for _, t in named_tensors(model, "params"):
        if type(t) is not TensorValue or t.dtype not in FLOAT_DTYPES:
            continue  # a quantized weight (the bitsandbytes frontend's QuantizedTensor) stays frozen
        if low is not None and t.dtype == "float32":
            t.dtype = low
        t.requires_grad = True


def auto_from_pretrained(ev: Evaluator, func: Any) -> NativeFunction:
    """_BaseAutoModelClass.from_pretrained(cls, name, *model_args, **kwargs): AutoConfig, then the
    class the auto mapping gives for that config, then its from_pretrained (above)."""
    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        if len(a) < 2:
            return Unknown("from_pretrained() without a name or path", ev2.current_ref)
        cls, name = a[0], a[1]
        kwargs = dict(k)
        config = kwargs.pop("config", None)
        hub = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
        loading = {key: kwargs.pop(key) for key in (*MODEL_KWARGS, *LOADING_KWARGS) if key in kwargs}
        if _needs_config(config):
            source = name if config is None else config
            located = _located_config(ev2, source, hub)
            if isinstance(located, Unknown):
                return located
            loaded = ev2.call(_attr(ev2, _library(ev2, "models.auto.configuration_auto", "AutoConfig"),
                                    "from_pretrained"), (source,),
                              {**hub, **kwargs, "return_unused_kwargs": True})
            if isinstance(loaded, Unknown):
                return loaded
            config, kwargs = loaded
            if not isinstance(config, Unknown):
                _CONFIG_SOURCES[config] = located[1]
        get_class = _library(ev2, "models.auto.auto_factory", "_get_model_class")
        model_class = ev2.call(get_class, (config, _attr(ev2, cls, "_model_mapping")), {})
        if isinstance(model_class, Unknown):
            return model_class
        return ev2.call(_attr(ev2, model_class, "from_pretrained"), (name, *a[2:]),
                        {**hub, **kwargs, **loading, "config": config})

    return NativeFunction(f"{getattr(func, 'qualname', 'from_pretrained')}", impl)


def from_config(ev: Evaluator, func: Any) -> NativeFunction:
    """PreTrainedModel._from_config(cls, config, dtype=...) from source, then its parameters in the
    dtype it resolved. transformers builds the model under `local_torch_dtype(dtype)`
    (`torch.set_default_dtype`), which the torch stubs do not keep: every floating parameter made
    there has that dtype. Buffers are left as built: transformers' rotary `inv_freq` is made float32
    explicitly, whatever the default."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        model = ev2.call(func, a, k)
        if not is_module(model):
            return model
        dtype = _attr(ev2, _attr(ev2, model, "config"), "dtype")
        if isinstance(dtype, DType) and dtype.name in FLOAT_DTYPES:
            for _, t in named_tensors(model, "params"):
                if isinstance(t, TensorValue) and t.dtype == "float32":
                    t.dtype = dtype.name
        return model

    return NativeFunction(f"{getattr(func, 'qualname', '_from_config')}", impl)


_TRUST_PARAMS = ("trust_remote_code", "model_name", "has_local_code", "has_remote_code", "error_message",
                 "upstream_repo")


def resolve_trust_remote_code(ev: Evaluator, func: Any) -> NativeFunction:
    """dynamic_module_utils.resolve_trust_remote_code: its decisions, without the error message it
    builds first (`os.path.isdir(model_name)`, a question about the user's disk that would leave the
    model's count undecided) or the prompt it would show. A config with an `auto_map` (Phi-3's)
    whose architecture transformers has is loaded with transformers' own code, as without vramlint."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        bound = {**dict(zip(_TRUST_PARAMS, a)), **k}
        trust, local, remote = (bound.get(n) for n in ("trust_remote_code", "has_local_code", "has_remote_code"))
        for v in (trust, local, remote):
            if isinstance(v, Unknown):
                return v
        name = bound.get("model_name")
        refused = Unknown(f"`{name}` needs the remote code its config's auto_map names, which vramlint does not run "
                          f"(transformers would ask, then refuse without trust_remote_code=True)", _user_ref(ev2))
        if trust is None:
            if local:
                trust = False
            elif remote:
                return refused
        if remote and not local and not trust:
            return refused
        return trust

    return NativeFunction("resolve_trust_remote_code", impl)


# Rules by the replaced function's qualified name (module.qualname), Frontend.function_rules.
FUNCTION_RULES = {
    "transformers.configuration_utils.PreTrainedConfig.get_config_dict": get_config_dict,
    "transformers.modeling_utils.PreTrainedModel.from_pretrained": model_from_pretrained,
    "transformers.modeling_utils.PreTrainedModel._from_config": from_config,
    "transformers.models.auto.auto_factory._BaseAutoModelClass.from_pretrained": auto_from_pretrained,
    "transformers.dynamic_module_utils.resolve_trust_remote_code": resolve_trust_remote_code,
}
