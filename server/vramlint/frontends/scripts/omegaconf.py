"""`omegaconf`, as vramlint's own module: DictConfig / ListConfig over tagged data.

`OmegaConf.load("conf/train.yaml")` reads the workspace file (yaml_files.py); `cfg.train.batch_size`
and `cfg["train"]["batch_size"]` give its tagged value; `${train.batch_size}` interpolations are
resolved against the root on access; `OmegaConf.merge`, `create`, `to_container`, `select`,
`update`, `from_dotlist` and `from_cli` (the `--set` overrides and the script's `key=value` args)
work on the same data. A `???` value is an Unknown saying it is mandatory.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import sourced
from vramlint.engine.values import (
    MISSING,
    Args,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Unknown,
    Value,
)
from vramlint.frontends.scripts.yaml_files import (
    YamlProblem,
    load_yaml_file,
    parse_scalar,
    parse_yaml,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

_WHOLE = re.compile(r"^\$\{([^${}:]+)\}$")
_PART = re.compile(r"\$\{([^${}:]+)\}")
_METHODS = {"get", "items", "keys", "values", "pop", "copy", "setdefault", "update", "append", "extend", "index",
            "count", "insert", "__contains__"}


class ConfigNode(Value):
    """A DictConfig (`data` a dict) or ListConfig (a list); `root` is the top config's data,
    against which `${a.b}` interpolations resolve."""

    __slots__ = ("data", "root")

    def __init__(self, data: Any, root: Any = None) -> None:
        self.data = data
        self.root = root if root is not None else data

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return "DictConfig" if isinstance(self.data, dict) else "ListConfig"

    def value_class(self, ev: Evaluator) -> Any:
        return _classes(ev)[self.type_name]

    def wrap(self, ev: Evaluator, v: Any, key: Any) -> Any:
        if isinstance(v, (dict, list)):
            return ConfigNode(v, self.root)
        if isinstance(v, str):
            if v == "???":
                return Unknown(f"the config value `{key}` is mandatory (???) and not given (--set {key}=VALUE)",
                               ev.current_ref)
            return _interpolate(ev, v, self.root)
        return v

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name in _METHODS:
            return NativeFunction(f"{self.type_name}.{name}", lambda ev2, a, k: _method(ev2, self, name, a, k))
        if isinstance(self.data, dict):
            if name in self.data:
                return self.wrap(ev, self.data[name], name)
            raise ev.raise_error("AttributeError", f"Missing key {name}")
        return MISSING

    def set_attribute(self, ev: Evaluator, name: str, value: Any) -> None:
        if isinstance(self.data, dict):
            self.data[name] = _plain(value)

    def getitem(self, ev: Evaluator, idx: Any) -> Any:
        if isinstance(idx, Unknown):
            return idx
        try:
            v = self.data[idx]
        except (KeyError, IndexError, TypeError):
            raise ev.raise_error("KeyError", f"Missing key {idx}") from None
        return self.wrap(ev, v, idx)

    def setitem(self, ev: Evaluator, idx: Any, value: Any) -> None:
        try:
            self.data[idx] = _plain(value)
        except (IndexError, TypeError):
            raise ev.raise_error("IndexError", f"bad index {idx}") from None

    def iterate(self, ev: Evaluator) -> Any:
        if isinstance(self.data, dict):
            return list(self.data)
        return [self.wrap(ev, v, i) for i, v in enumerate(self.data)]

    def length(self, ev: Evaluator) -> Any:
        return len(self.data)

    def truth(self, ev: Evaluator) -> Any:
        return bool(self.data)

    def contains(self, ev: Evaluator, item: Any) -> Any:
        if isinstance(item, Unknown):
            return item
        try:
            return item in self.data
        except TypeError:  # an unhashable key
            return False

    def compare(self, ev: Evaluator, dunder: str, other: Any) -> Any:
        if dunder in ("__eq__", "__ne__"):
            same = to_container(ev, self) == (to_container(ev, other) if isinstance(other, ConfigNode) else other)
            return same if dunder == "__eq__" else not same
        return NotImplemented

    def deepcopy(self, ev: Evaluator, memo: Any) -> Any:
        return ConfigNode(copy.deepcopy(self.data))


def _method(ev: Evaluator, node: ConfigNode, name: str, a: Args, k: Kwargs) -> Any:
    data = node.data
    if name == "get":
        key, default = (a[0] if a else k.get("key")), (a[1] if len(a) > 1 else k.get("default_value", k.get("default")))
        found = isinstance(data, dict) and isinstance(key, (str, int, float, bool)) and key in data
        return node.wrap(ev, data[key], key) if found else default
    if name == "items" and isinstance(data, dict):
        return [(key, node.wrap(ev, v, key)) for key, v in data.items()]
    if name == "keys" and isinstance(data, dict):
        return list(data)
    if name == "values" and isinstance(data, dict):
        return [node.wrap(ev, v, key) for key, v in data.items()]
    if name == "copy":
        return ConfigNode(copy.deepcopy(data))
    if name == "pop" and isinstance(data, dict):
        key = a[0] if a else None
        return node.wrap(ev, data.pop(key), key) if key in data else (a[1] if len(a) > 1 else None)
    if name == "__contains__":
        return ConfigNode.contains(node, ev, a[0])
    if name == "append" and isinstance(data, list):
        data.append(_plain(a[0]))
        return None
    if name == "update" and isinstance(data, dict):
        data.update({key: _plain(v) for key, v in (dict(_plain(a[0])) if a else {}).items()})
        data.update({key: _plain(v) for key, v in k.items()})
        return None
    return Unknown(f"{node.type_name}.{name}() is not modelled", ev.current_ref)


def _lookup(root: Any, dotted: str) -> Any:
    cur = root
    for part in dotted.strip().split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return MISSING
    return cur


def _interpolate(ev: Evaluator, v: str, root: Any, depth: int = 0) -> Any:
    if "${" not in v:
        return v
    if depth > 20:
        return Unknown(f"interpolation {v!r} refers to itself", ev.current_ref)
    m = _WHOLE.match(v)
    if m:
        target = _lookup(root, m.group(1))
        if target is MISSING:
            return Unknown(f"interpolation {v!r}: no such key", ev.current_ref)
        if isinstance(target, (dict, list)):
            return ConfigNode(target, root)
        return _interpolate(ev, target, root, depth + 1) if isinstance(target, str) else target
    if re.search(r"\$\{[^}]*:", v):  # a resolver (`${oc.env:HOME}`, `${now:%H}`)
        return Unknown(f"the resolver in {v!r} is not evaluated", ev.current_ref)

    def sub(mm: re.Match[str]) -> str:
        t = _lookup(root, mm.group(1))
        return mm.group(0) if t is MISSING or isinstance(t, (dict, list)) else str(t)

    return _PART.sub(sub, v)


def _plain(v: Any) -> Any:
    """What a config stores: plain data (a ConfigNode's data, a dict's values unwrapped)."""
    if isinstance(v, ConfigNode):
        return v.data
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def to_container(ev: Evaluator, v: Any, root: Any = None) -> Any:
    """Plain dicts and lists, interpolations resolved."""
    if isinstance(v, ConfigNode):
        return to_container(ev, v.data, v.root)
    if isinstance(v, dict):
        return {k: to_container(ev, x, root) for k, x in v.items()}
    if isinstance(v, list):
        return [to_container(ev, x, root) for x in v]
    if isinstance(v, str) and root is not None:
        r = _interpolate(ev, v, root)
        return to_container(ev, r, root) if isinstance(r, ConfigNode) else r
    return v


def merge_into(base: Any, other: Any) -> Any:
    """OmegaConf.merge's rule: dicts merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(other, dict):
        for k, v in other.items():
            base[k] = merge_into(base[k], v) if k in base else copy.deepcopy(v)
        return base
    return copy.deepcopy(other)


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur: Any = data
    for p in parts[:-1]:
        if not isinstance(cur.get(p), dict):
            cur[p] = {}  # a key set below a value replaces it, as a dotted override does
        cur = cur[p]
    cur[parts[-1]] = value


def dotlist_data(items: list[tuple[str, str, str]]) -> dict[str, Any]:
    """`a.b=1` items, as (key, value text, source): a nested dict of tagged values."""
    out: dict[str, Any] = {}
    for key, text, source in items:
        set_dotted(out, key.lstrip("+~"), sourced(parse_scalar(text), source))
    return out


def command_line_items(ev: Evaluator) -> list[tuple[str, str, str]]:
    """The script's `key=value` arguments, then the `--set` overrides (which win)."""
    inputs = ev.loader.script_inputs
    inputs.consulted = True
    items = []
    for arg in inputs.argv:
        key, sep, value = arg.partition("=")
        if sep and not key.startswith("-"):
            items.append((key, value, f"{arg} ({inputs.argv_source})"))
    for key, value in inputs.overrides:
        inputs.used_overrides.add(key)
        items.append((key, value, f"--set {key}={value}"))
    return items


def _create(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    obj = a[0] if a else k.get("obj", {})
    if isinstance(obj, ConfigNode):
        return ConfigNode(copy.deepcopy(obj.data))
    if isinstance(obj, str):
        ref = ev.current_ref
        try:
            data = parse_yaml(obj, f"OmegaConf.create at line {ref.location.line}" if ref else "OmegaConf.create")
        except YamlProblem as err:
            return Unknown(str(err), ev.current_ref)
        return ConfigNode(data if data is not None else {})
    if isinstance(obj, (dict, list, tuple)):
        return ConfigNode(_plain(obj))
    if obj is None:
        return ConfigNode({})
    if isinstance(obj, Instance):  # a dataclass instance (structured config)
        return ConfigNode(dict(_plain(obj.attrs)))
    return Unknown(f"OmegaConf.create of a {getattr(obj, 'type_name', type(obj).__name__)}", ev.current_ref)


def _load(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    got = load_yaml_file(ev, a[0] if a else k.get("file_"))
    if isinstance(got, Unknown):
        return got
    data = got[1]
    return ConfigNode(data if data is not None else {})


def _merge(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    out: Any = {}
    for cfg in a:
        if isinstance(cfg, Unknown):
            return cfg
        if isinstance(cfg, Instance):
            cfg = dict(cfg.attrs)
        out = merge_into(out, _plain(cfg))
    return ConfigNode(out)


def _select(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    cfg, key = a[0], a[1] if len(a) > 1 else k.get("key")
    default = a[2] if len(a) > 2 else k.get("default")
    if not isinstance(cfg, ConfigNode) or not isinstance(key, str):
        return Unknown("OmegaConf.select of an unknown config", ev.current_ref)
    v = _lookup(cfg.data, key)
    return default if v is MISSING else cfg.wrap(ev, v, key)


def _update(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    cfg, key, value = a[0], a[1], a[2] if len(a) > 2 else k.get("value")
    if isinstance(cfg, ConfigNode) and isinstance(cfg.data, dict) and isinstance(key, str):
        set_dotted(cfg.data, key, _plain(value))
    return None


def _from_dotlist(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    items = a[0] if a else k.get("dotlist", [])
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        return Unknown("OmegaConf.from_dotlist of an unknown list", ev.current_ref)
    ref = ev.current_ref
    where = f" at line {ref.location.line}" if ref is not None else ""
    return ConfigNode(dotlist_data([(*x.split("=", 1), f"{x} (from_dotlist{where})") for x in items if "=" in x]))


def _from_cli(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return ConfigNode(dotlist_data(command_line_items(ev)))


def _is_config_of(kind: str) -> Any:
    return lambda ev, v: isinstance(v, ConfigNode) and v.type_name == kind


def _classes(ev: Evaluator) -> dict[str, ClassValue]:
    state = ev.loader.frontend_state.get("omegaconf")
    if state is None:
        obj = ev.loader.builtins["object"]
        from vramlint.engine.builtins import _InstanceCheck

        state = {name: ClassValue(name, (obj,), {}, "omegaconf", native=_InstanceCheck(_is_config_of(name)))
                 for name in ("DictConfig", "ListConfig")}
        ev.loader.frontend_state["omegaconf"] = state
    return state  # type: ignore[no-any-return]


def _is(kind: str | None) -> NativeFunction:
    return NativeFunction(f"OmegaConf.is_{kind}", lambda ev, a, k: isinstance(a[0], ConfigNode) and (
        kind is None or a[0].type_name == kind))


def omegaconf_module(loader: Loader, name: str) -> ModuleValue | None:
    if name not in ("omegaconf", "omegaconf.omegaconf", "omegaconf.dictconfig", "omegaconf.listconfig"):
        return None
    from vramlint.engine.builtins import NoOp, _module

    ev = loader.evaluator
    none = NativeFunction("OmegaConf.noop", lambda ev2, a, k: None)
    fns: dict[str, Any] = {
        "create": NativeFunction("OmegaConf.create", _create),
        "structured": NativeFunction("OmegaConf.structured", _create),
        "load": NativeFunction("OmegaConf.load", _load),
        "merge": NativeFunction("OmegaConf.merge", _merge),
        "unsafe_merge": NativeFunction("OmegaConf.unsafe_merge", _merge),
        "to_container": NativeFunction("OmegaConf.to_container", lambda ev2, a, k: to_container(ev2, a[0])),
        "to_object": NativeFunction("OmegaConf.to_object", lambda ev2, a, k: to_container(ev2, a[0])),
        "to_yaml": NativeFunction("OmegaConf.to_yaml", lambda ev2, a, k: Unknown("OmegaConf.to_yaml text", ev2.current_ref)),
        "select": NativeFunction("OmegaConf.select", _select),
        "update": NativeFunction("OmegaConf.update", _update),
        "from_dotlist": NativeFunction("OmegaConf.from_dotlist", _from_dotlist),
        "from_cli": NativeFunction("OmegaConf.from_cli", _from_cli),
        "is_config": _is(None), "is_dict": _is("DictConfig"), "is_list": _is("ListConfig"),
        "is_missing": NativeFunction("OmegaConf.is_missing", lambda ev2, a, k: isinstance(a[0], ConfigNode) and (
            _lookup(a[0].data, str(a[1])) == "???")),
    }
    for n in ("set_struct", "set_readonly", "resolve", "register_new_resolver", "register_resolver", "save",
              "clear_resolvers", "set_cache"):
        fns[n] = none
    omegaconf_cls = ModuleValue("OmegaConf", fns, getattr_hook=lambda attr: Unknown(f"OmegaConf.{attr} is not modelled"))
    classes = _classes(ev)
    ns: dict[str, Any] = {"OmegaConf": omegaconf_cls, "DictConfig": classes["DictConfig"],
                          "ListConfig": classes["ListConfig"], "MISSING": "???", "II": NativeFunction(
                              "II", lambda ev2, a, k: "${" + str(a[0]) + "}"), "SI": NativeFunction("SI", lambda ev2, a, k: a[0]),
                          "open_dict": NativeFunction("open_dict", lambda ev2, a, k: NoOp("open_dict")),
                          "read_write": NativeFunction("read_write", lambda ev2, a, k: NoOp("read_write"))}
    return _module(name, ns)
