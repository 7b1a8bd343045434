"""`hydra`, as vramlint's own module: `@hydra.main(config_path=..., config_name=...)` composes the
config a run would get and calls the function with it.

Composition follows hydra 1.1+: the primary config `<config_path>/<config_name>.yaml` (config_path
relative to the decorated function's file, as hydra resolves it), its `defaults` list in order
(`- model: resnet18` loads `<config_path>/model/resnet18.yaml` under the key `model`; `- base` a
config of the same folder at the top; `_self_` where the primary's own keys merge, last when not
listed; `optional`, `override`, `@package` and `# @package _global_` understood; `null` skips a
group), then the command line: the script's `args` and `--set` (a group name picks that group's
option, `key=value` sets a dotted key, `+key=value` adds one). Each value is tagged with its file,
key and line. `hydra.utils.instantiate(cfg.x)` builds `_target_` when the evaluator can import it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import sourced
from vramlint.engine.script_inputs import ScriptEntry
from vramlint.engine.signals import RaiseSignal
from vramlint.engine.values import (
    Args,
    FunctionValue,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Partial,
    Unknown,
)
from vramlint.frontends.scripts.omegaconf import (
    ConfigNode,
    command_line_items,
    merge_into,
    set_dotted,
    to_container,
)
from vramlint.frontends.scripts.yaml_files import load_yaml_file, parse_scalar

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

_MAX_DEPTH = 10  # nested defaults lists


class _Problem(Exception):
    def __init__(self, unknown: Unknown) -> None:
        super().__init__(unknown.reason)
        self.unknown = unknown


class HydraTask(ScriptEntry):
    """A function under `@hydra.main`: calling it composes the config and runs the function."""

    __slots__ = ("func", "config_dir", "config_name")
    type_name = "function"

    def __init__(self, func: Any, config_dir: str | None, config_name: str | None) -> None:
        self.func = func
        self.config_dir = config_dir
        self.config_name = config_name

    def entry_function(self, ev: Evaluator) -> Any:
        return self.func

    def entry_arguments(self, ev: Evaluator) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (compose(ev, self.config_dir, self.config_name),), {}

    def call(self, ev: Evaluator, args: Args, kwargs: Kwargs) -> Any:
        if args or kwargs:  # called with a config: the plain function
            return ev.call(self.func, args, kwargs)
        return ev.call(self.func, *self.entry_arguments(ev))

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        return ev.protocol.getattr(self.func, name)


def _main(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    config_path = a[0] if a else k.get("config_path")
    config_name = a[1] if len(a) > 1 else k.get("config_name")
    return NativeFunction("hydra.main()", lambda ev2, a2, k2: _decorate(ev2, a2[0], config_path, config_name),
                          lambda ev2, v, a2, k2: _decorate(ev2, v, config_path, config_name))


def _main_decorator(ev: Evaluator, func: Any, a: Args, k: Kwargs) -> Any:
    return _decorate(ev, func, a[0] if a else k.get("config_path"), a[1] if len(a) > 1 else k.get("config_name"))


def _decorate(ev: Evaluator, func: Any, config_path: Any, config_name: Any) -> Any:
    here = os.path.dirname(func.module.path) if isinstance(func, FunctionValue) else None
    config_dir = None
    if isinstance(config_path, str) and here is not None:
        config_dir = os.path.normpath(os.path.join(here, config_path))
    return HydraTask(func, config_dir, config_name if isinstance(config_name, str) else None)


def compose(ev: Evaluator, config_dir: str | None, config_name: str | None) -> Any:
    """The config hydra would pass: defaults lists, the primary config, then the command line."""
    items = command_line_items(ev)
    if config_dir is None or config_name is None:
        data: dict[str, Any] = {}
        _apply_values(data, items, set())
        return ConfigNode(data)
    choices = {key.lstrip("+~"): value for key, value, _ in items}
    groups: set[str] = set()
    try:
        data = _compose_file(ev, config_dir, config_dir, config_name, (), choices, groups, 0)
    except _Problem as err:
        return err.unknown
    _apply_values(data, items, groups)
    return ConfigNode(data)


def _apply_values(data: dict[str, Any], items: list[tuple[str, str, str]], groups: set[str]) -> None:
    for key, text, source in items:
        plain = key.lstrip("+~")
        if plain in groups:
            continue  # a group choice, applied while composing
        set_dotted(data, plain, sourced(parse_scalar(text), source))


def _compose_file(ev: Evaluator, root_dir: str, folder: str, name: str, package: tuple[str, ...],
                  choices: dict[str, str], groups: set[str], depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise _Problem(Unknown(f"hydra defaults nested more than {_MAX_DEPTH} deep", ev.current_ref))
    file = name if name.endswith((".yaml", ".yml")) else name + ".yaml"
    got = load_yaml_file(ev, file, base=folder, prefix=package)
    if isinstance(got, Unknown):
        raise _Problem(got)
    _, content, text = got
    if text.lstrip().startswith("# @package _global_"):
        package = ()
    content = content if isinstance(content, dict) else {}
    defaults = content.pop("defaults", [])
    result: dict[str, Any] = {}
    entries = list(defaults) if isinstance(defaults, list) else []
    if "_self_" not in entries:
        entries.append("_self_")
    for entry in entries:
        if entry == "_self_":
            merge_into(result, _placed(content, package))
        elif isinstance(entry, str):
            merge_into(result, _compose_file(ev, root_dir, folder, entry.lstrip("/"), package, choices, groups,
                                             depth + 1))
        elif isinstance(entry, dict) and len(entry) == 1:
            (key, option), = entry.items()
            merge_into(result, _group_entry(ev, root_dir, str(key), option, choices, groups, depth))
    return result


def _group_entry(ev: Evaluator, root_dir: str, key: str, option: Any, choices: dict[str, str], groups: set[str],
                 depth: int) -> dict[str, Any]:
    words = key.split()
    if not words:
        return {}
    optional = "optional" in words[:-1]
    group, _, pkg = words[-1].lstrip("/").partition("@")
    groups.add(group)
    option = choices.get(group, option)
    if option is None or option == "null" or isinstance(option, (list, dict)):
        return {}
    package = tuple(p for p in (pkg or group.replace("/", ".")).split(".") if p and p != "_group_")
    if pkg == "_global_":
        package = ()
    folder = os.path.join(root_dir, group)
    try:
        return _compose_file(ev, root_dir, folder, str(option), package, choices, groups, depth + 1)
    except _Problem:
        if optional:
            return {}
        raise


def _placed(content: dict[str, Any], package: tuple[str, ...]) -> dict[str, Any]:
    out: Any = content
    for p in reversed(package):
        out = {p: out}
    return out  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- hydra.utils
def _target(ev: Evaluator, path: str) -> Any:
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod = ev.loader.import_module(".".join(parts[:i]), ev.current_ref)
        if isinstance(mod, ModuleValue):
            obj: Any = mod
            for attr in parts[i:]:
                obj = ev.protocol.getattr(obj, attr)
            return obj
    return Unknown(f"hydra: _target_ {path!r} cannot be imported", ev.current_ref)


def _instantiate(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    if not a:
        return Unknown("instantiate() of nothing", ev.current_ref)
    spec = to_container(ev, a[0])
    if not isinstance(spec, dict):
        return spec
    return _build(ev, spec, k, 0)


def _build(ev: Evaluator, spec: Any, extra: Kwargs, depth: int) -> Any:
    if isinstance(spec, list):
        return [_build(ev, x, {}, depth + 1) for x in spec]
    if not isinstance(spec, dict):
        return spec
    recursive = spec.get("_recursive_", True) is not False
    kwargs = {str(key): (_build(ev, v, {}, depth + 1) if recursive and depth < 20 else v)
              for key, v in spec.items() if not str(key).startswith("_") or key == "_args_"}
    args = kwargs.pop("_args_", [])
    kwargs.update(extra)
    target = spec.get("_target_")
    if target is None:
        return kwargs
    if not isinstance(target, str):
        return Unknown("hydra: a _target_ that is not a string", ev.current_ref)
    fn = _target(ev, str(target))
    if isinstance(fn, Unknown):
        return fn
    if spec.get("_partial_") is True:
        return Partial(fn, tuple(args), kwargs)
    try:
        return ev.call(fn, tuple(args), kwargs)
    except RaiseSignal as sig:
        return ev.exception_unknown(sig, None, None)


def _utils(loader: Loader) -> dict[str, Any]:
    def script_dir(ev: Evaluator) -> Any:
        return ev.loader.script_inputs.script_dir or Unknown("the original working directory", ev.current_ref)

    return {
        "instantiate": NativeFunction("hydra.utils.instantiate", _instantiate),
        "call": NativeFunction("hydra.utils.call", _instantiate),
        "get_class": NativeFunction("hydra.utils.get_class", lambda ev, a, k: _target(ev, str(a[0]))),
        "get_method": NativeFunction("hydra.utils.get_method", lambda ev, a, k: _target(ev, str(a[0]))),
        "get_object": NativeFunction("hydra.utils.get_object", lambda ev, a, k: _target(ev, str(a[0]))),
        "get_original_cwd": NativeFunction("hydra.utils.get_original_cwd", lambda ev, a, k: script_dir(ev)),
        "to_absolute_path": NativeFunction("hydra.utils.to_absolute_path", lambda ev, a, k: a[0] if isinstance(
            a[0], str) and a[0].startswith("/") else os.path.join(str(script_dir(ev)), str(a[0]))),
    }


def hydra_module(loader: Loader, name: str) -> ModuleValue | None:
    if name.split(".")[0] != "hydra":
        return None
    from vramlint.engine.builtins import NoOp, _module

    if name == "hydra":
        utils = _module("hydra.utils", _utils(loader))
        return _module("hydra", {"main": NativeFunction("hydra.main", _main, _main_decorator), "utils": utils,
                                 "initialize": NoOp("hydra.initialize"), "initialize_config_dir": NoOp("initialize"),
                                 "compose": NativeFunction("hydra.compose", lambda ev, a, k: Unknown(
                                     "hydra.compose() is not modelled (use @hydra.main)", ev.current_ref))})
    if name == "hydra.utils":
        return _module(name, _utils(loader))
    return _module(name, {}, fallback="chain")  # hydra.core.config_store, hydra.core.hydra_config...

