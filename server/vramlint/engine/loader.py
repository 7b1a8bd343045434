"""Finding, parsing and evaluating modules: the workspace, extra paths, installed packages.

Like Python's import system, but:
- native stubs (torch, the standard library modules model code uses) are never read from source;
- a package's `__init__.py` runs only when an attribute that is not a submodule is asked of it,
  and module-level imports bind lazily, so importing one torchvision model file does not
  evaluate all of torchvision;
- every module is evaluated once per process and content (library code is shared by all analyses).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

from vramlint.engine import gc_policy, reads
from vramlint.engine.deferred import force_deferred_classes
from vramlint.engine.evaluator import Evaluator, module_bound_names
from vramlint.engine.name_reads import TrackedNamespace
from vramlint.engine.protocol import Protocol
from vramlint.engine.registrations import LazyRegistry, Registered, run_earlier_registrations
from vramlint.engine.script_inputs import ScriptInputs
from vramlint.engine.signals import AnalysisStopped
from vramlint.engine.source import (
    ELIDED_NAME,
    LITERAL_NAME,
    SourceModule,
    decode_source,
    read_source_file,
    too_large,
)
from vramlint.engine.values import (
    MISSING,
    ClassValue,
    LazyBinding,
    ModuleValue,
    NativeFunction,
    SourceRef,
    Unknown,
)

_REPLACED = "__vramlint_replaced__"  # see stdlib_runtime.SysModules

NativeModuleFactory = Callable[["Loader", str], "ModuleValue | None"]

# Steps one top-level statement of a module may take (an endless loop there stops at this).
MODULE_STATEMENT_STEPS = 300_000
# ... of the analysed file, where one statement may build a whole model (`model = create_model(...)`),
# as much as a factory's construction gets (analysis.running.MODEL_STEPS).
MAIN_STATEMENT_STEPS = 3_000_000
MAX_FILE_BYTES = 1024 * 1024  # the default of `max-file-size` (Settings sets it per analysis)
MAX_REEXPORTS = 8  # links of a re-export chain Loader.import_origin follows


class Loader:
    def __init__(self, search_paths: Iterable[str], native_resolvers: list[NativeModuleFactory]) -> None:
        self.search_paths = [os.path.abspath(p) for p in search_paths]
        self.native_resolvers = native_resolvers
        # os.environ as the analysed code sees it (Settings.environment): only what is configured.
        self.environment: dict[str, str] = {}
        self.torch_version = "2.13.0"  # Settings.torch_version: torch.__version__, its metadata
        self.registers_cache: dict[str, dict[str, str]] = {}  # exports.registering_decorators
        # Registries that frontends declare lazy, by decorator, and the modules left pending for
        # them with what each registers (engine/registrations.py).
        self.lazy_registries: dict[str, LazyRegistry] = {}
        self.registrations: dict[str, dict[str, Registered]] = {}
        self.modules: dict[str, ModuleValue | Unknown] = {}
        self.module_problems: dict[str, list[Unknown]] = {}
        self.statement_problems: dict[str, dict[Any, list[Unknown]]] = {}
        # Top-level statements the evaluation gave up on (steps or call depth ran out).
        self.statement_aborts: dict[str, dict[Any, Unknown]] = {}
        self.overlays: dict[str, str] = {}
        self.max_file_bytes = MAX_FILE_BYTES
        # The analysed file's namespace notes its reads (engine/name_reads.py): the language
        # server's, which reuses unchanged classes' results across edits (analysis/reuse.py).
        self.track_names = False
        # The module each analysed file was last loaded as, by dotted name: its models were built
        # on it, and a build may have changed it (a class attribute set in an `__init__`).
        self.analysed: dict[str, ModuleValue] = {}
        # Imported files that were not read (not regular, too large...), located at the import
        # that asked for them; analysis/api.py reports those of each analysis.
        self.unread: dict[str, str] = {}  # module -> why
        self.read_failures: list[Unknown] = []
        # Files a frontend's rule looked for and did not find (a checkpoint's config.json): each
        # unknown says what to provide; analysis/api.py reports those of each analysis.
        self.missing_files: list[Unknown] = []
        # Frontends' rules for library decorators, by qualified name (module.qualname).
        self.decorator_rules: dict[str, Any] = {}
        # Frontends' replacements for library functions that must not run from source (they read
        # files or the network), by qualified name: rule(evaluator, the function) -> what is bound.
        self.function_rules: dict[str, Any] = {}
        # The configuration's per-model tables of the analysis under way (Settings.model_config).
        self.model_tables: Mapping[str, Mapping[str, Any]] = {}
        # The analysed script's command line, `--set` overrides and workspace (set per analysis).
        self.script_inputs = ScriptInputs()
        self._dir_cache: dict[str, set[str] | None] = {}
        self._dir_mtimes: dict[str, int | None] = {}  # when listed (the cache's dependencies: dist-infos)
        # The paths the last find_module_file looked for, True where its listing said absent: a
        # failed import depends on them (a package installed later must invalidate, not any new file).
        self._searched: dict[str, bool] = {}
        self.export_cache: dict[str, Any] = {}  # `import *` names by module (exports.py)
        self._failed: set[str] = set()  # modules not found on the search path
        self._current_root: str | None = None  # the analysed file's top folder (add_root)
        self._added_root: str | None = None  # ... when add_root put it on the search path
        self._importing: set[str] = set()  # files run_file is evaluating (engine/deferred.py)
        self.module_statement_steps = MODULE_STATEMENT_STEPS
        self.instantiation_observers: list[Callable[..., None]] = []
        # What frontends keep per loader (their classes, made on first use), by frontend name.
        self.frontend_state: dict[str, Any] = {}
        self.protocol = Protocol(self)
        from vramlint.engine.builtins import make_builtins

        self.builtins: dict[str, Any] = {}
        self.builtins.update(make_builtins(self))
        # What source.py puts in place of an expression too long or deep to parse: its
        # argument is the reason, the call's position the place.
        self.builtins[ELIDED_NAME] = NativeFunction(
            ELIDED_NAME, lambda ev, a, k: Unknown(str(a[0]) if a else "expression not analysed", ev.current_ref)
        )
        self.builtins[LITERAL_NAME] = NativeFunction(LITERAL_NAME, _literal_value)
        self.evaluator = Evaluator(self)
        obj = self.builtins["object"]
        self.unknown_base = ClassValue("<unknown base>", (obj,), {}, "builtins")

    def add_root(self, root: str, after: int) -> None:
        """Make `root` importable (inserted after the first `after` entries) if it is not yet.

        It replaces the previous analysed file's root: as for Python, only the script's own
        folder is searched, and the modules found in the previous one (another project's
        `blocks.py`, `config.py`...) are dropped instead of being reused under the same name."""
        root = os.path.abspath(root)
        if root == self._current_root:
            return
        old = self._added_root
        self._current_root, self._added_root = root, None
        if old is not None and old in self.search_paths:
            self.search_paths.remove(old)
        if root not in self.search_paths:
            self.search_paths.insert(min(after, len(self.search_paths)), root)
            self._added_root = root
        # Imports that failed before may resolve now.
        for name, mod in list(self.modules.items()):
            if isinstance(mod, Unknown) or (old is not None and isinstance(mod, ModuleValue)
                                            and _is_under(mod.ns.get("__file__"), old)):
                del self.modules[name]
        self.export_cache.clear()
        self.registers_cache.clear()
        self._dir_cache.clear()

    # ------------------------------------------------------------------ classes of data
    def builtin_class_of(self, v: Any) -> ClassValue | None:
        by_type = self.builtins["__types__"]
        for t in type(v).__mro__:
            k = by_type.get(t)
            if k is not None:
                return k  # type: ignore[no-any-return]
        return None

    # ------------------------------------------------------------------ files
    def _listdir(self, d: str) -> set[str] | None:
        if d not in self._dir_cache:
            self._dir_mtimes[d] = reads.dir_mtime(d)  # before listing: a change since invalidates
            try:
                self._dir_cache[d] = set(os.listdir(d))
            except OSError:
                self._dir_cache[d] = None
        return self._dir_cache[d]

    def find_module_file(self, dotted: str) -> tuple[str | None, bool]:
        """(path, is_package) of the source of `dotted` on the search path."""
        parts = dotted.split(".")
        self._searched = {}
        for root in self.search_paths:
            d = root
            ok = True
            for p in parts[:-1]:
                entries = self._listdir(d)
                if entries is None or p not in entries:
                    self._searched[d if entries is None else os.path.join(d, p)] = entries is not None
                    ok = False
                    break
                d = os.path.join(d, p)
            if not ok:
                continue
            entries = self._listdir(d)
            if entries is None:
                self._searched[d] = False
                continue
            last = parts[-1]
            pkg = os.path.join(d, last)
            if last in entries:
                init = os.path.join(pkg, "__init__.py")
                if os.path.isfile(init):
                    return init, True
                if os.path.isdir(pkg):  # namespace package
                    return pkg, True
                self._searched[pkg] = self._searched[init] = False
            else:
                self._searched[pkg] = True
            if last + ".py" in entries:
                return pkg + ".py", False
            self._searched[pkg + ".py"] = True
        return None, False

    def read_text(self, path: str) -> tuple[str | None, str | None]:
        """(text, None), or (None, why not): regular files up to `max_file_bytes` only."""
        if path in self.overlays:
            text = self.overlays[path]
            reads.note_text(path, text)
            problem = too_large(text, self.max_file_bytes)
            return (None, problem) if problem else (text, None)
        data, problem = read_source_file(path, self.max_file_bytes)
        if data is None:
            return None, problem
        text, _ = decode_source(data)
        return text, None

    # ------------------------------------------------------------------ imports
    def import_module(self, dotted: str, ref: SourceRef | None) -> ModuleValue | Unknown:
        if not dotted:
            return Unknown("empty module name", ref)
        hit = self.modules.get(dotted)
        if hit is not None:
            if type(hit) is ModuleValue:
                reads.note_import(_path_of(ref), hit.ns.get("__file__"))
            elif dotted in self._failed:
                reads.note_failed_import(dotted)
            if isinstance(hit, Unknown) and ref is not None and hit.ref is not ref:
                # A cached failure: point at this import, not at the first file that tried.
                hit = Unknown(hit.reason, ref)
            if isinstance(hit, Unknown) and dotted in self.unread:
                self.read_failures.append(hit)
            return hit
        for resolve in self.native_resolvers:
            native = resolve(self, dotted)
            if native is not None:
                self.modules[dotted] = native
                return native
        top = dotted.split(".")[0]
        if top in sys.stdlib_module_names:
            u = Unknown(f"standard library module `{dotted}` is not modelled", ref)
            self.modules[dotted] = u
            return u
        path, is_pkg = self.find_module_file(dotted)
        if path is None:
            u = Unknown(f"module `{dotted}` not found (add its folder to extra-paths?)", ref)
            self.modules[dotted] = u
            self._failed.add(dotted)
            reads.note_failed_import(dotted, {p: None if absent else reads.path_kind(p)
                                              for p, absent in self._searched.items()})
            return u
        if self.registrations and run_earlier_registrations(self, dotted, ref):
            hit = self.modules.get(dotted)  # (one of them imported it)
            if hit is not None:
                return hit
        reads.note_import(_path_of(ref), path)
        # Parents exist as (lazy) packages.
        if "." in dotted:
            parent = self.import_module(dotted.rpartition(".")[0], ref)
        else:
            parent = None
        mod = ModuleValue(dotted)
        mod.ns["__name__"] = dotted
        mod.ns["__file__"] = path
        self.modules[dotted] = mod
        if is_pkg:
            mod.package_path = os.path.dirname(path) if path.endswith("__init__.py") else path
            mod.ns["__path__"] = [mod.package_path]
            if path.endswith("__init__.py"):
                mod.ns["__vramlint_pending_init__"] = path  # runs on first attribute miss
        else:
            problem = self.run_file(mod, path)
            if problem is not None:
                u = Unknown(f"cannot import `{dotted}` from {path}: {problem}", ref)
                self.modules[dotted] = u
                self.unread[dotted] = problem
                self.read_failures.append(u)
                return u
        if isinstance(parent, ModuleValue):
            parent.ns.setdefault(dotted.rpartition(".")[2], mod)
        return mod

    def run_file(self, mod: ModuleValue, path: str) -> str | None:
        """Evaluate the file `path` into `mod`; why it could not be read, if it could not."""
        text, problem = self.read_text(path)
        if text is None:
            self.module_problems[mod.name] = [Unknown(problem or "unreadable", None)]
            return problem or "unreadable"
        with self._library_load(path):
            source = self.evaluator.analysis.parse(path, text, mod.name)
            self._importing.add(path)
            try:
                self.run_source(mod, source)
            except AnalysisStopped:
                self.forget_partial(mod)
                raise
            finally:
                self._importing.discard(path)
        return None

    def importing(self, path: str) -> bool:
        """Whether `path` is being evaluated by an import (not as the analysed file)."""
        return path in self._importing

    def unimported_source_package(self, top: str, hints: tuple[str, ...], qualified: str) -> bool:
        """Whether the top-level package `top` is read from source and not imported yet, and
        neither the module `qualified` names (or its package) mentions any of `hints`."""
        if top in self.modules or top in sys.stdlib_module_names:
            return False
        if any(resolve(self, top) is not None for resolve in self.native_resolvers):
            return False
        package, attr = qualified.rpartition(".")[0], qualified
        paths = [self.find_module_file(name)[0] for name in (package, attr)]
        if paths[0] is None:
            return False
        for path in paths:
            if path is None or not path.endswith(".py"):
                continue
            text, _ = self.read_text(path)
            if text is None or any(h in text for h in hints):
                return False
        return True

    def note_deferred_problems(self, name: str, stmt: Any, sink: list[Unknown], gave_up: Unknown | None) -> None:
        """A deferred class statement's problems (engine/deferred.py), noted for its module's
        statement as if it had run in place (in statement order)."""
        if sink:
            self.module_problems.setdefault(name, []).extend(sink)
            table = {**self.statement_problems.get(name, {}), stmt: sink}
            mod = self.modules.get(name)
            source = mod.source if isinstance(mod, ModuleValue) else None
            self.statement_problems[name] = _in_order(table, source) if source is not None else table
        if gave_up is not None:
            self.statement_aborts.setdefault(name, {})[stmt] = gave_up

    def _library_load(self, path: str) -> Any:
        """Loading a library module (not one of the analysed file's folder, which an edit or
        the next file replaces) makes what lives as long as the process: its parse tree
        (~10 nodes a line) and evaluated namespace. The cyclic collector would scan that heap
        again and again while it grows (a cold transformers model file spent a third of its
        time in full collections that freed almost nothing), so it pauses for the load and the
        result is frozen out of later scans (`gc.freeze`). Workspace modules are loaded as usual."""
        if self._current_root is not None and _is_under(path, self._current_root):
            return _no_pause()
        return _collector_paused()

    def forget_partial(self, mod: ModuleValue) -> None:
        """Drop a module whose evaluation the analysis's budget or a cancellation interrupted:
        the next analysis evaluates it afresh instead of finding it cached half-defined. (The
        modules it imported and finished stay: they are complete.)"""
        if self.modules.get(mod.name) is mod:
            del self.modules[mod.name]
        for table in (self.module_problems, self.statement_problems, self.statement_aborts):
            table.pop(mod.name, None)
        self.export_cache.clear()
        self.registers_cache.clear()

    def run_source(self, mod: ModuleValue, source: SourceModule, steps: int = MODULE_STATEMENT_STEPS) -> list[Unknown]:
        mod.source = source
        for table in (self.module_problems, self.statement_problems, self.statement_aborts):
            table.pop(mod.name, None)  # (a deferred class run while the module runs notes its own)
        mod.ns.setdefault("__name__", mod.name)
        per_stmt: dict[Any, list[Unknown]] = {}
        aborted: dict[Any, Unknown] = {}
        if source.tree is None:
            problems = [Unknown(source.syntax_error.message if source.syntax_error else "unparsable", None)]
        else:
            ev = self.evaluator
            saved = (ev.issue_sinks, ev.depth, ev.current_ref)
            ev.issue_sinks = []
            ev.current_ref = None  # not a ref left over from an earlier analysis
            try:
                results = ev.exec_module(source, mod, steps, aborted)
            finally:
                ev.issue_sinks, ev.depth, ev.current_ref = saved
            problems = [u for _, sink in results for u in sink]
            per_stmt = {stmt: sink for stmt, sink in results if sink}
        deferred = self.statement_problems.pop(mod.name, None)  # deferred classes run meanwhile
        self.module_problems[mod.name] = problems + self.module_problems.pop(mod.name, [])
        self.statement_problems[mod.name] = per_stmt if not deferred else _in_order({**per_stmt, **deferred}, source)
        self.statement_aborts[mod.name] = {**aborted, **self.statement_aborts.pop(mod.name, {})}
        return problems

    def import_top(self, dotted: str, ref: SourceRef | None = None) -> Any:
        mod = self.import_module(dotted, ref)
        if isinstance(mod, Unknown):
            return mod
        return self.import_module(dotted.split(".")[0], ref)

    def import_from(self, full: str, attr: str, ref: SourceRef | None) -> Any:
        mod = self.import_module(full, ref)
        if isinstance(mod, Unknown):
            return Unknown(f"`{attr}` from {mod.reason}", ref)
        if _REPLACED in mod.ns:  # `sys.modules[name] = obj` ran: Python asks obj
            return self.module_attr(mod, attr, MISSING, ref)
        v = mod.ns.get(attr, MISSING)
        # `from . import heads` in a package's __init__ binds `heads` lazily in that same
        # namespace: resolving it finds itself in progress, and means the submodule.
        selfref = type(v) is LazyBinding and v.in_progress and mod.package_path is not None
        if v is not MISSING and not selfref:
            return self.evaluator.force(v) if type(v) is LazyBinding else v
        pending = mod.ns.get("__vramlint_pending_init__")
        if pending is not None and self._init_may_bind(pending, mod.name, attr):
            # `from torchvision.models import alexnet`: the package's __init__ rebinds the
            # submodule's name to the function (`from .alexnet import *`), as Python runs it first.
            self._run_init(mod, mod.ns.pop("__vramlint_pending_init__"))
            return self.import_from(full, attr, ref)
        if mod.package_path is not None:
            sub = self.import_module(f"{full}.{attr}", ref)
            if isinstance(sub, ModuleValue):
                return sub
        return self.module_attr(mod, attr, MISSING, ref)

    def pending_import(self, v: Any) -> tuple[str, str] | None:
        """(module, attr) of `from module import attr` if `v` is its lazy binding, unresolved."""
        if type(v) is not LazyBinding or v.done or v.in_progress:
            return None
        resolve = v.resolve
        if isinstance(resolve, partial) and resolve.func == self.import_from:
            return resolve.args[0], resolve.args[1]
        return None

    def import_origin(self, full: str, attr: str) -> str:
        """`module.attr` where `from full import attr` finds its value, following re-exports
        (`transformers.utils` re-exports `transformers.utils.auto_docstring.auto_docstring`)
        through packages, whose pending `__init__` runs as import_from would run it, but without
        evaluating the module that defines the value: what a rule by qualified name needs to
        know before evaluating (Evaluator.apply_decorator)."""
        for _ in range(MAX_REEXPORTS):
            mod = self.modules.get(full)
            if mod is None and self.find_module_file(full)[1]:
                mod = self.import_module(full, None)  # a package: its __init__ waits
            if not isinstance(mod, ModuleValue) or _REPLACED in mod.ns:
                break
            pending = mod.ns.get("__vramlint_pending_init__")
            if attr not in mod.ns and pending is not None and self._init_may_bind(pending, mod.name, attr):
                self._run_init(mod, mod.ns.pop("__vramlint_pending_init__"))
            target = self.pending_import(mod.ns.get(attr))
            if target is None:
                break
            full, attr = target
        return f"{full}.{attr}"

    def module_attr(self, mod: ModuleValue, name: str, default: Any, ref: SourceRef | None = None) -> Any:
        ns = mod.ns
        if _REPLACED in ns:
            v = self._replaced_attr(ns[_REPLACED], name, ref)
            if v is not MISSING:
                return v
        if name in ns:
            v = ns[name]
            if type(v) is LazyBinding:
                v = self.evaluator.force(v)
                ns[name] = v
            elif type(v) is ModuleValue:  # a submodule an earlier analysis bound here
                reads.note_import(mod.ns.get("__file__"), v.ns.get("__file__"))
            return v
        if mod.getattr_hook is not None:
            v = mod.getattr_hook(name)
            if v is not MISSING:
                ns[name] = v
                return v
        pending = ns.pop("__vramlint_pending_init__", None)
        if pending is not None:
            self._run_init(mod, pending)
            return self.module_attr(mod, name, default, ref)
        if name == "__dict__" and mod.source is not None:
            # `models.__dict__[name]()`: the namespace itself, every lazy import resolved.
            for k, v in list(ns.items()):
                if type(v) is LazyBinding:
                    ns[k] = self.evaluator.force(v)
            return ns
        structure = ns.get("_import_structure")
        if type(structure) is dict and mod.package_path is not None and not name.startswith("__"):
            v = self._structure_attr(mod, structure, name, ref)
            if v is not MISSING:
                ns[name] = v
                return v
        if mod.package_path is not None:
            sub = self.import_module(f"{mod.name}.{name}", ref)
            if isinstance(sub, ModuleValue):
                return sub
        if default is not MISSING:
            return default
        bad = mod.source.syntax_error if mod.source is not None else None
        if bad is not None:  # it defines nothing: "has no attribute" would mislead
            where = f"{os.path.basename(bad.location.path)}:{bad.location.line}"
            return Unknown(f"`{name}` is unknown: module `{mod.name}` has a {bad.message} ({where})",
                           ref or self.evaluator.current_ref)
        return Unknown(f"module `{mod.name}` has no attribute `{name}`", ref or self.evaluator.current_ref)

    def _structure_attr(self, mod: ModuleValue, structure: dict[Any, Any], name: str, ref: SourceRef | None) -> Any:
        """A name a package's `_import_structure` places in a submodule, from that submodule, as
        transformers' and diffusers' `_LazyModule` hands it out. The analysis takes their `if
        TYPE_CHECKING:` branch of eager imports instead (the static view), and a release's branch
        may omit a name its table has (diffusers 0.42.1: `StableCascadeUNet`). MISSING if none."""
        for sub, names in structure.items():
            if (isinstance(sub, str) and sub and isinstance(names, (list, tuple, set, frozenset))
                    and any(isinstance(n, str) and n == name for n in names)):  # (an Unknown among them compares to nothing)
                found = self.import_module(f"{mod.name}.{sub}", ref)
                if not isinstance(found, ModuleValue):
                    return found  # (an Unknown: why the submodule did not import)
                return self.module_attr(found, name, MISSING, ref)
        return MISSING

    def fresh_environment(self) -> None:
        """os.environ as configured again: an analysed file may have set variables, which must
        not leak into the next analysis of the process (the `os` module is shared)."""
        os_module = self.modules.get("os")
        if isinstance(os_module, ModuleValue):
            os_module.ns["environ"] = dict(self.environment)
        sys_module = self.modules.get("sys")
        if isinstance(sys_module, ModuleValue):  # the analysed script's command line
            sys_module.ns["argv"] = self.script_inputs.sys_argv()

    def never_binds(self, mod: ModuleValue, name: str) -> bool:
        """True when `mod`'s source binds `name` nowhere (no assignment, definition, import or
        `global` of it, no star import, no module `__getattr__`), so that a miss is Python's
        AttributeError (`hasattr(mod, "__all__")` is False) rather than an unknown that a failed
        statement could explain."""
        src = mod.source
        if (src is None or src.tree is None or src.syntax_error is not None or name in mod.ns
                or mod.getattr_hook is not None or _REPLACED in mod.ns or mod.package_path is not None):
            return False
        names = src.node_cache.get(src.tree)
        if names is None:
            names = src.node_cache[src.tree] = module_bound_names(src.tree)
        return isinstance(names, frozenset) and name not in names

    def _replaced_attr(self, obj: Any, name: str, ref: SourceRef | None) -> Any:
        """`name` of the object that replaced a module in sys.modules (a lazy module's
        `__getattr__` imports on demand); MISSING on AttributeError, so the module's own
        namespace and submodules are tried next, as `from package import name` does."""
        from vramlint.engine.signals import RaiseSignal

        ev = self.evaluator
        prev = ev.current_ref
        if ref is not None:
            ev.current_ref = ref
        try:
            return self.protocol.getattr(obj, name)
        except RaiseSignal as sig:
            if self.protocol.is_exception(sig, "AttributeError"):
                return MISSING
            return ev.exception_unknown(sig, None, None)
        finally:
            ev.current_ref = prev

    def _init_may_bind(self, path: str, name: str, attr: str) -> bool:
        """Whether a package's __init__.py may bind `attr` (a star import may bind anything)."""
        text, _ = self.read_text(path)
        if text is None:
            return False
        tree = self.evaluator.analysis.parse(path, text, name).tree
        names = module_bound_names(tree) if tree is not None else frozenset()
        return names is None or attr in names

    def _run_init(self, mod: ModuleValue, path: str) -> None:
        """A package's deferred `__init__.py`; one that an analysis's stop interrupts stays
        pending, so it runs again (whole) on the next attribute miss."""
        try:
            problem = self.run_file(mod, path)
        except AnalysisStopped:
            mod.ns["__vramlint_pending_init__"] = path
            raise
        if problem is not None:
            self.read_failures.append(
                Unknown(f"package `{mod.name}`: cannot run {path}: {problem}", self.evaluator.current_ref))

    def star_names(self, mod: ModuleValue) -> list[str]:
        pending = mod.ns.pop("__vramlint_pending_init__", None)
        if pending is not None:
            self._run_init(mod, pending)
        all_ = mod.ns.get("__all__")
        if type(all_) is LazyBinding:
            all_ = self.evaluator.force(all_)
        if isinstance(all_, (list, tuple)) and all(isinstance(x, str) for x in all_):
            return list(all_)
        return [k for k in mod.ns if not k.startswith("_")]

    # ------------------------------------------------------------------ the analysed file
    def load_main(self, path: str, text: str, dotted: str) -> tuple[ModuleValue, SourceModule, list[Unknown]]:
        """Evaluate the file being analysed (replacing an earlier version of it).

        A module already evaluated from the same path and content (imported by an earlier
        analysis) is reused as it is, unless an earlier analysis of this file built on it."""
        existing = self.modules.get(dotted)
        if isinstance(existing, ModuleValue) and existing.ns.get("__file__") == path:
            # Not the module an earlier analysis of this file built its models on: the same text
            # would then analyse differently (the editor's second pass, with the estimate).
            if existing.source is not None and existing.source.text == text and self.analysed.get(dotted) is not existing:
                force_deferred_classes(self.evaluator, existing.ns)  # its classes are models to find
                self.analysed[dotted] = existing
                return existing, existing.source, self.module_problems.get(dotted, [])
            pending = existing.ns.pop("__vramlint_pending_init__", None)
            if pending is not None:
                source = self.evaluator.analysis.parse(path, text, dotted)
                try:
                    problems = self.run_source(existing, source, MAIN_STATEMENT_STEPS)
                except AnalysisStopped:
                    self.forget_partial(existing)
                    raise
                self.analysed[dotted] = existing
                return existing, source, problems
        # In the editor, the file's namespace notes what its statements and builds read (analysis/reuse.py).
        mod = ModuleValue(dotted, TrackedNamespace() if self.track_names else None)
        mod.ns["__name__"] = dotted
        mod.ns["__file__"] = path
        if os.path.basename(path) == "__init__.py":
            mod.package_path = os.path.dirname(path)
            mod.ns["__path__"] = [mod.package_path]
        self.modules[dotted] = mod
        if "." in dotted:
            self.import_module(dotted.rpartition(".")[0], None)
        source = self.evaluator.analysis.parse(path, text, dotted)
        try:
            problems = self.run_source(mod, source, MAIN_STATEMENT_STEPS)
        except AnalysisStopped:
            self.forget_partial(mod)
            raise
        self.analysed[dotted] = mod
        return mod, source, problems

    def forget_failed_imports(self) -> None:
        """Look again for what was not found (a package added or installed since), with fresh
        directory listings."""
        for name, mod in list(self.modules.items()):
            if isinstance(mod, Unknown):
                del self.modules[name]
        self._dir_cache.clear()


def _in_order(table: dict[Any, list[Unknown]], source: SourceModule) -> dict[Any, list[Unknown]]:
    """A module's per-statement problems in the order of its statements."""
    order = {id(stmt): i for i, stmt in enumerate(source.tree.body if source.tree is not None else ())}
    return dict(sorted(table.items(), key=lambda kv: order.get(id(kv[0]), len(order))))


# Library loads under way, in all threads: the collector runs again when the last one ends.
_paused = 0
_paused_lock = threading.Lock()
_collector_was_enabled = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    global _paused, _collector_was_enabled
    with _paused_lock:
        if _paused == 0:
            gc_policy.before_lasting_freeze()
            _collector_was_enabled = gc.isenabled()
            if _collector_was_enabled:
                # Garbage left by earlier analyses (an editor's) must not be frozen with the
                # load: collected first, over what is not frozen yet (small after a first load).
                gc.collect()
            gc.disable()
        _paused += 1
    finished = False
    try:
        yield
        finished = True
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0:
                if finished:  # an interrupted load is dropped (forget_partial): left to the collector
                    gc.freeze()
                if _collector_was_enabled:
                    gc.enable()


@contextmanager
def _no_pause() -> Iterator[None]:
    yield


def _path_of(ref: SourceRef | None) -> str | None:
    """The file of the statement that imports (for the cache's import edges)."""
    return ref.module.path if ref is not None else None


def _is_under(path: Any, folder: str) -> bool:
    return isinstance(path, str) and (path == folder or path.startswith(folder.rstrip(os.sep) + os.sep))


def _literal_value(ev: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`__vramlint_literal__(i)` (engine/source.py): a fresh copy of the large display it
    replaced, as evaluating the display would give."""
    import copy

    ref = ev.current_ref
    literals = ref.module.literals if ref is not None else []
    i = args[0] if args else None
    if not isinstance(i, int) or not 0 <= i < len(literals):
        return Unknown("literal not analysed", ref)
    value = literals[i]
    if isinstance(value, list) and all(isinstance(x, (int, float, complex, str, bytes, bool)) for x in value):
        return list(value)  # the common case (a table of numbers): no deep copy needed
    return copy.deepcopy(value)
