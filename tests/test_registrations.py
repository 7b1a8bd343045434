"""Registries filled lazily (engine/registrations.py): a package that star-imports the modules
filling a registry runs each only when a reader asks for what it registers, and the reader sees
what the real import (every module run, in order) would have left. On a small library written
here, whose registry is declared lazy on its loader as a frontend would declare it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import TIMM_VERSION, TORCHVISION_VERSION, library_source
from vramlint.analysis.api import get_loader, search_paths
from vramlint.engine.loader import Loader
from vramlint.engine.registrations import LazyRegistry, read_registered, reader_rule
from vramlint.frontends.registry import FRONTENDS

REGISTRY = '''
_entries = {}

def register(fn):
    _entries[fn.__name__] = fn
    return fn

def named(name):
    def deco(fn):
        _entries[name] = fn
        return fn
    return deco

def get(name):
    return _entries[name]

def names():
    return sorted(_entries)
'''

MODULES = {
    "a": "@register\ndef small():\n    return nn.Linear(2, 3)\n\n@register\ndef dup():\n    return nn.Linear(1, 1)\n",
    "b": ("@register\ndef big():\n    return nn.Linear(20, 30)\n\n@register\ndef dup():\n    return nn.Linear(4, 4)\n\n"
          "@named('alias')\ndef aliased():\n    return nn.Linear(5, 5)\n"),
    "c": "@register\ndef seven():\n    return nn.Linear(7, 7)\n\ndef made():\n    return nn.Linear(8, 8)\n\nregister(made)\n",
}


def _library(tmp_path: Path, modules: dict[str, str]) -> Path:
    pkg = tmp_path / "reglib"
    pkg.mkdir(parents=True)
    (pkg / "_registry.py").write_text(REGISTRY)
    for name, body in modules.items():
        (pkg / f"{name}.py").write_text("import torch.nn as nn\nfrom ._registry import named, register\n\n" + body)
    (pkg / "__init__.py").write_text("".join(f"from .{n} import *\n" for n in modules)
                                     + "from ._registry import get, names\n")
    return tmp_path


def _name(args: tuple, kwargs: dict) -> str | None:
    return args[0] if args and isinstance(args[0], str) else None


def _declare(settings: vramlint.Settings) -> Loader:
    """The loader of `settings`, with reglib's registries declared lazy, as a frontend would."""
    loader = get_loader(search_paths(settings), settings.environment, settings.torch_version)
    for decorator in ("reglib._registry.register", "reglib._registry.named"):
        reads = {"reglib._registry.get": _name, "reglib._registry.names": None}
        loader.lazy_registries[decorator] = LazyRegistry(decorator=decorator, readers=reads)
    loader.function_rules["reglib._registry.get"] = reader_rule(
        [("reglib._registry.register", _name), ("reglib._registry.named", _name)])
    loader.function_rules["reglib._registry.names"] = reader_rule(
        [("reglib._registry.register", None), ("reglib._registry.named", None)])
    return loader


def _analyse(root: Path, text: str, lazy: bool = True) -> tuple[dict[str, int | None], Loader]:
    settings = vramlint.Settings(extra_paths=(str(root),))
    loader = get_loader(search_paths(settings), settings.environment, settings.torch_version)
    if lazy:
        _declare(settings)
    result = vramlint.analyze_source(str(root / "user.py"), "import torch.nn as nn\nimport reglib\n\n" + text, settings)
    return {m.name: m.params.total for m in result.models}, loader


def _ran(loader: Loader) -> set[str]:
    return {m.split(".")[1] for m in loader.modules if m.startswith("reglib.") and not m.startswith("reglib._")}


@pytest.mark.parametrize("lazy", [True, False])
def test_a_read_runs_the_modules_that_register_the_name(tmp_path: Path, lazy: bool) -> None:
    root = _library(tmp_path, MODULES)
    got, loader = _analyse(root, 'model = reglib.get("big")()\nlast = reglib.get("dup")()\n'
                                 'made = reglib.get("made")()\n', lazy)
    # The same answers either way. Lazily: `a` runs before `b` (both register `dup`), so that `b`'s
    # `dup` overwrites `a`'s as in the real import, though `b` ran first for `big`; `c` calls
    # `register(made)` itself: what it registers cannot be read, so it runs for every read.
    assert got == {"model": 20 * 30 + 30, "last": 4 * 4 + 4, "made": 8 * 8 + 8}
    assert _ran(loader) == {"a", "b", "c"}


def test_a_name_only_one_module_registers_runs_that_module(tmp_path: Path) -> None:
    root = _library(tmp_path, MODULES)
    got, loader = _analyse(root, 'model = reglib.get("small")()\nother = reglib.get("alias")()\n')
    assert got == {"model": 2 * 3 + 3, "other": 5 * 5 + 5}
    assert _ran(loader) == {"a", "b", "c"}  # `alias` is b's (`@named`'s argument names it)
    # Without `c`, and `b` sharing no name with `a` and using no other registering decorator
    # (`get` reads `named`'s entries too: a name that no module `named` registers would run them all).
    root2 = _library(tmp_path / "two", {"a": MODULES["a"], "b": "@register\ndef big():\n    return nn.Linear(20, 30)\n"})
    got, loader = _analyse(root2, 'model = reglib.get("small")()\n')
    assert got == {"model": 2 * 3 + 3}
    assert _ran(loader) == {"a"}


def test_reading_every_entry_or_an_unregistered_name_runs_every_module(tmp_path: Path) -> None:
    root = _library(tmp_path, MODULES)
    got, loader = _analyse(root, "model = nn.Linear(len(reglib.names()), 1)\n")
    assert got == {"model": 6 + 1}  # small, dup, big, alias, seven, made
    assert _ran(loader) == {"a", "b", "c"}
    root2 = _library(tmp_path / "two", {k: v for k, v in MODULES.items() if k != "c"})
    got, loader = _analyse(root2, 'model = reglib.get("made_at_run_time")()\n')
    assert "model" not in got  # a KeyError, as in Python, after every module ran
    assert _ran(loader) == {"a", "b"}


def test_a_star_imported_name_runs_its_module(tmp_path: Path) -> None:
    root = _library(tmp_path, {k: v for k, v in MODULES.items() if k != "c"})
    got, loader = _analyse(root, "model = reglib.small()\n")
    assert got == {"model": 2 * 3 + 3}
    assert _ran(loader) == {"a"}
    got, loader = _analyse(root, "model = reglib.big()\n")
    assert got == {"model": 20 * 30 + 30}
    assert _ran(loader) == {"a", "b"}  # `a` registers `dup` too: it runs first, as it would


def test_a_cached_result_depends_on_every_pending_module(tmp_path: Path) -> None:
    """The persistent cache: a file whose read ran `a` only still depends on `b`'s source (were
    `b` to register `small` too, the real import would give `b`'s), also when it is analysed after
    another file in the same process and reads nothing from the disk itself."""
    from vramlint.cache import analysis as cached
    from vramlint.cache.store import Cache

    root = _library(tmp_path, {"a": MODULES["a"], "b": "@register\ndef big():\n    return nn.Linear(20, 30)\n"})
    settings = vramlint.Settings(extra_paths=(str(root),))
    _declare(settings)
    files = [root / "one.py", root / "two.py"]
    for f in files:
        f.write_text('import reglib\n\nmodel = reglib.get("small")()\n')
    cache = Cache(tmp_path / "cache")
    assert [cached.analyze_file(str(f), settings, cache).models[0].params.total for f in files] == [9, 9]
    b = root / "reglib" / "b.py"
    old = b.stat().st_mtime_ns
    b.write_text(b.read_text() + "\n\n@register\ndef small():\n    return nn.Linear(9, 9)\n")
    os.utime(b, ns=(old + 2_000_000_000, old + 2_000_000_000))
    stale = cache.stats.stale
    for f in files:
        cached.analyze_file(str(f), settings, cache)
    assert cache.stats.stale == stale + 2
    fresh = vramlint.Settings(extra_paths=(str(root), str(tmp_path / "other")))  # a new process's loader
    _declare(fresh)
    assert cached.analyze_file(str(files[0]), fresh, Cache(tmp_path / "cache2")).models[0].params.total == 90


def test_what_a_module_registers_is_read_from_its_text() -> None:
    text = ('@register\ndef a(): ...\n\n@other\n@register(name="b_v2")\nclass B: ...\n\n'
            '@register(\n    "c",\n)\ndef c_impl(): ...\n\n@register()\n@wraps(\n    x,\n)\ndef d(): ...\n')
    assert read_registered(text, "register").names == {"a", "b_v2", "c", "d"}
    assert not read_registered(text, "register").opaque
    for text in ("register(fn)\n", "class K:\n    @register\n    def m(self): ...\n", "x = register\n@register\n"):
        assert read_registered(text, "register").opaque, text
    assert not read_registered("from ._registry import register\nmy_register(fn)\nself.register(x)\n", "register").opaque


LIBRARIES = {"timm": TIMM_VERSION, "torchvision": TORCHVISION_VERSION}
DECLARED = [pytest.param(r, id=r.decorator) for f in FRONTENDS for r in f.lazy_registries]


@pytest.mark.parametrize("registry", DECLARED)
def test_declared_readers_are_every_function_that_reads_the_registry(registry: LazyRegistry) -> None:
    """Every function of the registry's module that reads it must be declared a reader (or a
    writer, which runs as modules register), or it would read a registry some of whose modules
    never ran. Read from the library's pinned source: the registry is the module-level names that
    the registering decorator (or the decorator its factory returns) uses."""
    import ast

    module, _, decorator = registry.decorator.rpartition(".")
    root = library_source(module.split(".")[0], LIBRARIES[module.split(".")[0]])
    tree = ast.parse((root / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assigned = {t.id for st in tree.body if isinstance(st, (ast.Assign, ast.AnnAssign))
                for t in (st.targets if isinstance(st, ast.Assign) else [st.target]) if isinstance(t, ast.Name)}

    def names(f: ast.AST) -> set[str]:
        return {n.id for n in ast.walk(f) if isinstance(n, ast.Name)}

    containers = assigned & names(functions[decorator])
    assert containers, registry.decorator
    reading = {name for name, f in functions.items() if name != decorator and containers & names(f)}
    declared = {q.rpartition(".")[2] for q in (*registry.readers, *registry.writers)}
    assert reading <= declared, f"{registry.decorator}: undeclared readers {sorted(reading - declared)}"
    assert declared <= set(functions), f"{registry.decorator}: not in {module}: {sorted(declared - set(functions))}"
    assert all(q.startswith(module + ".") for q in (*registry.readers, *registry.writers))


def test_torchvision_models_runs_the_model_files_it_needs(tmp_path: Path) -> None:
    """`torchvision.models.get_model("ResNet50")` and `torchvision.models.resnet18()`: of the
    16 model files `torchvision.models` star-imports, resnet.py runs."""
    import json

    truth = json.loads((Path(__file__).parent / "fixtures/truth/torchvision-0.26.0.json").read_text())["models"]
    root = library_source("torchvision", TORCHVISION_VERSION)
    settings = vramlint.Settings(extra_paths=(str(root), str(tmp_path)))  # a fresh loader: nothing cached
    text = "import torchvision\n\na = torchvision.models.get_model('ResNet50')\nb = torchvision.models.resnet18()\n"
    result = vramlint.analyze_source(str(tmp_path / "user.py"), text, settings)
    assert {m.name: m.params.total for m in result.models} == {"a": truth["resnet50"]["params"],
                                                               "b": truth["resnet18"]["params"]}
    loader = get_loader(search_paths(settings), settings.environment, settings.torch_version)
    ran = {m for m in loader.modules if m.startswith("torchvision.models.") and not m.rpartition(".")[2].startswith("_")}
    assert ran == {"torchvision.models.resnet"}
