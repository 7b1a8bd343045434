"""The import system as analysed code sees it: `sys.modules`, `importlib`, `types.ModuleType`,
`inspect.getsource`, `os.path`.

All of it answers from the loader's own view of the world (its search path and native stubs),
so what code finds out about a module agrees with what importing it would do:
- `sys.modules[name]` holds the modules the loader has imported; assigning an object there (the
  lazy-module idiom `sys.modules[__name__] = _LazyModule(...)`) makes later attribute lookups on
  that module go to the object, as Python's import system does;
- `importlib.import_module` imports through the loader; `importlib.util.find_spec` says whether
  the loader can find a module without running it;
- `importlib.metadata` reads the `*.dist-info` folders on the search path.
"""

from __future__ import annotations

import os
import posixpath
import sys
from typing import TYPE_CHECKING, Any

from vramlint.engine import reads
from vramlint.engine.source import read_source_file
from vramlint.engine.values import (
    MISSING,
    Args,
    ClassValue,
    ExceptionValue,
    FunctionValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Unknown,
    Value,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


REPLACED = "__vramlint_replaced__"  # ns key of a module whose sys.modules entry was replaced


def module_entry(v: Any) -> Any:
    """What `sys.modules[name]` holds for a loaded module: its replacement object, if any."""
    if isinstance(v, ModuleValue):
        rep = v.ns.get(REPLACED)
        return v if rep is None else rep
    return v


def module_type_class(loader: Loader) -> ClassValue:
    """types.ModuleType (one per loader); ModuleValues are its instances."""
    types_map = loader.builtins["__types__"]
    cls = types_map.get(ModuleValue)
    if cls is None:
        def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            self_ = a[0]
            if isinstance(self_, Instance):
                self_.attrs["__name__"] = a[1] if len(a) > 1 else k.get("name")
                self_.attrs["__doc__"] = a[2] if len(a) > 2 else k.get("doc")
            return None

        cls = ClassValue("ModuleType", (loader.builtins["object"],),
                         {"__init__": NativeFunction("ModuleType.__init__", init)}, "types")
        types_map[ModuleValue] = cls
    return cls  # type: ignore[no-any-return]


class SysModules(Value):
    """sys.modules, backed by the loader's table of modules."""

    __slots__ = ("loader",)
    type_name = "dict"

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def _get(self, name: Any) -> Any:
        return module_entry(self.loader.modules.get(name)) if isinstance(name, str) else None

    def getitem(self, ev: Evaluator, idx: Any) -> Any:
        if isinstance(idx, Unknown):
            return idx
        v = self._get(idx)
        if v is None or isinstance(v, Unknown):
            raise ev.raise_error("KeyError", repr(idx))
        return v

    def setitem(self, ev: Evaluator, idx: Any, value: Any) -> None:
        if not isinstance(idx, str):
            ev.record(idx if isinstance(idx, Unknown) else Unknown("sys.modules key is not a string", ev.current_ref))
            return
        if isinstance(value, ModuleValue):
            self.loader.modules[idx] = value
            return
        mod = self.loader.modules.get(idx)
        if not isinstance(mod, ModuleValue):
            mod = ModuleValue(idx, {"__name__": idx})
            self.loader.modules[idx] = mod
        mod.ns[REPLACED] = value

    def iterate(self, ev: Evaluator) -> Any:
        return [k for k, v in self.loader.modules.items() if isinstance(v, ModuleValue)]

    def length(self, ev: Evaluator) -> Any:
        return len(self.iterate(ev))

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name == "get":
            def get(ev2: Evaluator, a: Args, k: Kwargs) -> Any:
                if isinstance(a[0], Unknown):
                    return a[0]
                v = self._get(a[0])
                return v if v is not None and not isinstance(v, Unknown) else (a[1] if len(a) > 1 else None)

            return NativeFunction("sys.modules.get", get)
        if name == "keys":
            return NativeFunction("sys.modules.keys", lambda ev2, a, k: self.iterate(ev2))
        if name == "__contains__":
            return NativeFunction("sys.modules.__contains__", lambda ev2, a, k: self._get(a[0]) is not None)
        return MISSING


def _resolve_name(ev: Evaluator, name: Any, package: Any) -> Any:
    """importlib's absolute name for `name` relative to `package`."""
    if not isinstance(name, str):
        return name if isinstance(name, Unknown) else Unknown("import_module of a non-string", ev.current_ref)
    if not name.startswith("."):
        return name
    if not isinstance(package, str):
        if isinstance(package, Unknown):
            return package
        raise ev.raise_error("TypeError", f"the 'package' argument is required to perform a relative import for {name!r}")
    level = len(name) - len(name.lstrip("."))
    parts = package.split(".")
    if level - 1 >= len(parts):
        raise ev.raise_error("ImportError", "attempted relative import beyond top-level package")
    base = ".".join(parts[: len(parts) - (level - 1)])
    rest = name[level:]
    return f"{base}.{rest}" if rest else base


def _import_module(loader: Loader) -> NativeFunction:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        full = _resolve_name(ev, a[0] if a else k.get("name"), a[1] if len(a) > 1 else k.get("package"))
        if isinstance(full, Unknown):
            return full
        mod = loader.import_module(full, ev.current_ref)
        if isinstance(mod, Unknown):
            if full.split(".")[0] in sys.stdlib_module_names or not _not_found(loader, full):
                return mod
            raise ev.raise_error("ModuleNotFoundError", f"No module named {full!r}")
        return module_entry(mod)

    return NativeFunction("importlib.import_module", impl)


def _not_found(loader: Loader, dotted: str) -> bool:
    """Whether the loader can find no module `dotted` (native stub or source on the search path)."""
    hit = loader.modules.get(dotted)
    if isinstance(hit, ModuleValue):
        return False
    if isinstance(hit, Unknown):
        return hit.reason.startswith("module `")  # "module `x` not found"
    for resolve in loader.native_resolvers:
        if resolve(loader, dotted) is not None:
            return False
    if dotted.split(".")[0] in sys.stdlib_module_names:
        return False
    return loader.find_module_file(dotted)[0] is None


def _find_spec(loader: Loader) -> NativeFunction:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        full = _resolve_name(ev, a[0] if a else k.get("name"), a[1] if len(a) > 1 else k.get("package"))
        if isinstance(full, Unknown):
            return full
        if _not_found(loader, full):
            return None
        spec = Instance(loader.builtins["object"])
        spec.attrs.update({"name": full, "parent": full.rpartition(".")[0], "loader": None,
                           "origin": loader.find_module_file(full)[0], "submodule_search_locations": None})
        return spec

    return NativeFunction("importlib.util.find_spec", impl)


def _dist_infos(loader: Loader) -> dict[str, tuple[str, str]]:
    """Normalised distribution name -> (version, dist-info folder), from the search path."""
    cache = getattr(loader, "_vramlint_dist_infos", None)
    if cache is not None:
        _note_roots(loader)
        return cache  # type: ignore[no-any-return]
    out: dict[str, tuple[str, str]] = {}
    for root in loader.search_paths:
        for entry in sorted(loader._listdir(root) or ()):
            if not entry.endswith(".dist-info"):
                continue
            name, _, version = entry[: -len(".dist-info")].partition("-")
            key = _normalize(name)
            if key not in out and version:
                out[key] = (version, os.path.join(root, entry))
    loader._vramlint_dist_infos = out  # type: ignore[attr-defined]
    _note_roots(loader)
    return out


def _note_roots(loader: Loader) -> None:
    """Installing or upgrading a package changes its folder's listing: a cached answer must go."""
    reads.note_dirs({root: (loader._dir_mtimes.get(root), reads.dist_infos(loader._listdir(root) or ()))
                     for root in loader.search_paths if root in loader._dir_mtimes})


def _normalize(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _metadata_module(loader: Loader) -> ModuleValue:
    from vramlint.engine.builtins import BuiltinType, _module

    b = loader.builtins
    not_found = ClassValue("PackageNotFoundError", (b["ModuleNotFoundError"],), {}, "importlib.metadata",
                           native=BuiltinType(ModuleNotFoundError, lambda ev, c, a, k: ExceptionValue(c, a)))

    def version(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        name = a[0] if a else k.get("distribution_name")
        if not isinstance(name, str):
            return name if isinstance(name, Unknown) else Unknown("version() of a non-string", ev.current_ref)
        if _normalize(name) == "torch":  # modelled, at the configured release, installed or not
            return loader.torch_version
        hit = _dist_infos(loader).get(_normalize(name))
        if hit is None:
            from vramlint.engine.signals import RaiseSignal

            raise RaiseSignal(ExceptionValue(not_found, (name,)), ev.current_ref)
        return hit[0]

    def packages_distributions(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        out: dict[str, list[str]] = {}
        for _, folder in _dist_infos(loader).values():
            # Regular files only, and small (a workspace can hold a link to a device here).
            data, _ = read_source_file(os.path.join(folder, "top_level.txt"), 1 << 16)
            if data is None:
                continue
            tops = [t.strip() for t in data.decode("utf-8", "replace").splitlines() if t.strip()]
            dist = os.path.basename(folder)[: -len(".dist-info")].partition("-")[0]
            for t in tops:
                if t != "torch":
                    out.setdefault(t, []).append(dist)
        out["torch"] = ["torch"]  # modelled: present whatever is installed
        return out

    return _module("importlib.metadata", {
        "version": NativeFunction("importlib.metadata.version", version),
        "packages_distributions": NativeFunction("importlib.metadata.packages_distributions", packages_distributions),
        "PackageNotFoundError": not_found,
    })


def _getsource(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    obj = a[0] if a else None
    if isinstance(obj, ModuleValue) and obj.source is not None:
        return obj.source.text
    if isinstance(obj, (FunctionValue, ClassValue)):
        node: Any
        if isinstance(obj, FunctionValue):
            module, node = obj.module, obj.node
        elif obj.ref is not None:
            module, node = obj.ref.module, obj.ref.node
        else:
            raise ev.raise_error("TypeError", f"{obj!r} is a built-in class")
        if module.tree is not None:
            return module.tree.code_for_node(node)
    if isinstance(obj, Unknown):
        return obj
    raise ev.raise_error("TypeError", "source code not available")


def import_system_module(loader: Loader, name: str) -> ModuleValue | None:
    """importlib, importlib.util, importlib.metadata, importlib.machinery."""
    from vramlint.engine.builtins import LazyModuleRef, _module

    if name == "importlib":
        return _module(name, {
            "import_module": _import_module(loader),
            "invalidate_caches": NativeFunction("importlib.invalidate_caches", lambda ev, a, k: None),
            "util": LazyModuleRef(loader, "importlib.util"),
            "metadata": LazyModuleRef(loader, "importlib.metadata"),
            "machinery": LazyModuleRef(loader, "importlib.machinery"),
        })
    if name == "importlib.util":
        return _module(name, {"find_spec": _find_spec(loader)})
    if name == "importlib.metadata":
        return _metadata_module(loader)
    if name == "importlib.machinery":
        obj = loader.builtins["object"]
        return _module(name, {"ModuleSpec": ClassValue("ModuleSpec", (obj,), {}, name)})
    return None


def pkgutil_get_data(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """pkgutil.get_data(package, resource): the bytes of a data file shipped beside a package's
    modules on the analysis path (timm's pruned-model descriptions). Read, never executed: a
    regular file, at most `max-file-size` bytes (engine/source.read_source_file)."""
    import os

    from vramlint.engine.source import read_source_file
    from vramlint.engine.values import ModuleValue

    package, resource = (a[0] if a else k.get("package")), (a[1] if len(a) > 1 else k.get("resource"))
    if not isinstance(package, str) or not isinstance(resource, str):
        return Unknown("pkgutil.get_data of a non-string name", ev.current_ref)
    mod = ev.loader.import_module(package, ev.current_ref)
    folder = None
    if isinstance(mod, ModuleValue):  # a package's own folder, or the folder of a module's file
        folder = mod.package_path or (os.path.dirname(mod.source.path) if mod.source is not None else None)
    if folder is None:
        return Unknown(f"pkgutil.get_data: package `{package}` has no source on the analysis path", ev.current_ref)
    parts = resource.split("/")
    if os.path.isabs(resource) or ".." in parts:
        return Unknown("pkgutil.get_data outside the package", ev.current_ref)
    data, problem = read_source_file(os.path.join(folder, *parts), ev.loader.max_file_bytes)
    if data is None:
        raise ev.raise_error("FileNotFoundError", f"{resource}: {problem}")
    return data


def os_path_namespace() -> dict[str, Any]:
    """os.path functions of strings (POSIX rules; the file system is never asked)."""
    from vramlint.engine.builtins import pure

    ns: dict[str, Any] = {name: pure(f"os.path.{name}", getattr(posixpath, name)) for name in (
        "join", "dirname", "basename", "split", "splitext", "normpath", "isabs", "commonprefix",
    )}
    ns["sep"] = "/"
    # `os.path.dirname(os.path.abspath(__file__))`: `__file__` is absolute, so its abspath is
    # its normal form; a relative path would need the working directory, which is not known.
    for name in ("abspath", "realpath"):
        ns[name] = NativeFunction(f"os.path.{name}", _absolute_path)
    return ns


def _absolute_path(ev: Evaluator, a: Any, k: Any) -> Any:
    path = a[0] if a else k.get("path")
    if isinstance(path, str) and path.startswith("/"):
        return posixpath.normpath(path)
    return Unknown("the absolute path of a relative path depends on the working directory", ev.current_ref)


def inspect_additions() -> dict[str, Any]:
    return {"getsource": NativeFunction("inspect.getsource", _getsource),
            "signature": NativeFunction("inspect.signature", _signature)}


# inspect.Parameter.kind values, as names (compared by identity in analysed code only via these).
_KINDS = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "VAR_POSITIONAL", "KEYWORD_ONLY", "VAR_KEYWORD")


def _signature(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """inspect.signature of a function of the analysed code: its parameters in order (`self` dropped
    for bound methods, and for classes, whose signature is their __init__'s)."""
    import libcst as cst

    from vramlint.engine.values import BoundMethod

    target, skip = a[0] if a else k.get("obj"), 0
    if isinstance(target, ClassValue):
        init, _ = target.lookup("__init__")
        target, skip = init, 1
    if isinstance(target, BoundMethod):
        target, skip = target.func, 1
    if not isinstance(target, FunctionValue):
        return Unknown("inspect.signature of a callable that is not analysed code", ev.current_ref)
    p = target.node.params
    order: list[tuple[cst.Param, str]] = [(x, "POSITIONAL_ONLY") for x in p.posonly_params]
    order += [(x, "POSITIONAL_OR_KEYWORD") for x in p.params]
    if isinstance(p.star_arg, cst.Param):
        order.append((p.star_arg, "VAR_POSITIONAL"))
    order += [(x, "KEYWORD_ONLY") for x in p.kwonly_params]
    if p.star_kwarg is not None:
        order.append((p.star_kwarg, "VAR_KEYWORD"))
    params: dict[str, Any] = {}
    obj = ev.loader.builtins["object"]
    for param, kind in order[skip:]:
        name = param.name.value
        inst = Instance(obj)
        inst.attrs.update(name=name, kind=kind, default=target.defaults.get(name, _EMPTY))
        params[name] = inst
    sig = Instance(obj)
    sig.attrs["parameters"] = params
    return sig


_EMPTY = object()  # inspect.Parameter.empty
