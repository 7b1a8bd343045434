"""Unchanged classes' results kept across an editor's versions of a file (the language server).

The server analyses the whole file again on every edit, and building each of its model classes
is most of that work; an edit usually changes one class. A class's result from the previous
version is kept when that version's build of it provably sees the same inputs in the new one:

- The edit replaced only plain class statements (no decorators; engine/incremental.py keeps the
  other statements' nodes), and neither version states a training setup, a `# vramlint:`
  directive or DeepSpeed anywhere (those read the whole file for every model), nor marks a
  module for several GPUs.
- The class's own statement is the same node (or was parsed again with the same text: the
  incremental parse's neighbours of the edit), it was built with its defaults or at a call site
  in a statement the edit kept (whose new line the result says), and its build read no file,
  imported nothing, noted nothing for later analyses, and set no attribute of a class or module
  (`note_shared_mutation`: state another build may read without naming it).
- No module-level name its build read (engine/name_reads.py), nor its own name, is *dirty*:
  a class named in the changed statements (a call site there may build it with other
  arguments), a name written or read by their runs, or one written or read by a statement whose
  run read a dirty name (it may have mutated what it read). Modules, classes, functions and
  constants do not turn dirty by being read: changing them means setting an attribute (which
  stops all reuse) or binding the name again (a write).
- What its build read is inert now: modules, classes, functions, constants (nothing a build may
  have mutated meanwhile without setting an attribute), and not bound meanwhile by code run
  outside the module's statements (the script's main block, another build).
- The result has no memory estimate or forward trace (those depend on the script's calls and
  the whole setup), no line number in its text, and every location of it in the file is in a
  statement the edit kept: those refs are moved to the new version.

Anything else is built as before. tests/test_reuse.py compares, over random edits of real
files, every result with reuse against a fresh analysis of the same text. Not seen: a build that
mutates a list or dict held in a class attribute of another class (`Other.registry.append(...)`)
without setting an attribute; and a build kept costs no steps of the analysis's budget, so a
file at the edge of its time budget may finish where a fresh analysis would stop.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import libcst as cst

from vramlint.analysis.call_sites import construction_at
from vramlint.analysis.results import ModelResult, ModuleNode, UnknownInfo
from vramlint.engine.loader import Loader
from vramlint.engine.name_reads import NameLog, TrackedNamespace, logging_names
from vramlint.engine.source import SourceModule
from vramlint.engine.values import (
    MISSING,
    ClassValue,
    FunctionValue,
    LazyBinding,
    Location,
    ModuleValue,
    SourceRef,
    Unknown,
)
from vramlint.engine.walk import iter_nodes
from vramlint.frontends.registry import training_setup_handlers
from vramlint.frontends.torch.distributed import any_marks
from vramlint.frontends.training_setup import setup_triggers
from vramlint.settings import Settings

MAX_FILES = 16  # files whose last version's results are kept
_FILE_WIDE = ("vramlint", "deepspeed")  # directives; DeepSpeed's reader looks at the whole file
_LINE_NUMBER = re.compile(r"\blines? \d")
_INERT = (ModuleValue, ClassValue, FunctionValue, Unknown, int, float, complex, str, bytes, type(None))

_enabled = False
last_kept = 0  # how many class results the last analysis kept (tests, benchmarks)
_versions: OrderedDict[str, _Version] = OrderedDict()
_lock = threading.Lock()


def enable(on: bool = True) -> None:
    """Keep class results across versions from now on (the language server), or not."""
    global _enabled
    _enabled = on


def forget() -> None:
    """Drop every kept version (tests)."""
    with _lock:
        _versions.clear()


def enabled() -> bool:
    return _enabled


@dataclass
class _Build:
    stmt: cst.CSTNode  # its class statement
    result: ModelResult  # a private copy, its refs into its version's source
    reads: frozenset[str]  # the module-level names the build read
    call: cst.Call | None  # the call site whose arguments built it (None: its defaults)


@dataclass
class _Version:
    settings: Settings
    loader: Loader
    source: SourceModule
    ns: TrackedNamespace
    builds: dict[str, _Build] = field(default_factory=dict)
    modules: list[tuple[str, Any]] = field(default_factory=list)  # the loader's other modules at its end
    shared: bool = False  # something set a class's or module's attribute: keep nothing of it


@dataclass
class _Edit:
    """What changed from the previous version: the dirty names (see the module's docstring);
    the ids of the nodes of the statements it replaced; the new node of each node of a statement
    parsed again with the same text (the incremental parse's neighbours of the edit)."""

    dirty: set[str]
    gone: set[int]
    same: dict[int, cst.CSTNode]


class _NotKept(Exception):
    pass


class ClassResults:
    """One analysis's use of the previous version's class results: analysis/models.py asks it for
    each class (`result`), analysis/api.py enters it around the models' builds and ends it."""

    def __init__(self, loader: Loader, path: str, settings: Settings, mod: ModuleValue, source: SourceModule) -> None:
        self.loader = loader
        self.path = path
        ns = mod.ns
        on = _enabled and source.tree is not None and _quiet(source.text)
        self.version = _Version(settings, loader, source, ns) if on and isinstance(ns, TrackedNamespace) else None
        prev = _versions.get(path) if self.version is not None else None
        if prev is not None and not (prev.settings == settings and prev.loader is loader and not prev.shared
                                     and _same_modules(prev, loader)):
            prev = None
        self.prev = prev
        self.rest = NameLog()  # what the other builds (instances, factories, the script's) did meanwhile
        self._edit: _Edit | None = None
        self._planned = False
        self.kept = 0

    def __enter__(self) -> ClassResults:
        self._logging = logging_names(self.rest)
        self._logging.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._logging.__exit__(*exc)

    # ------------------------------------------------------------------ per class
    def result(self, cls: ClassValue, stmt: cst.ClassDef,
               build: Callable[[list[cst.Call]], ModelResult]) -> ModelResult:
        """The class's result: kept from the previous version, else `build(used)` (which puts in
        `used` the call site whose arguments it used)."""
        version = self.version
        used: list[cst.Call] = []
        if version is None:
            return build(used)
        kept = self._kept(cls.name, stmt)
        if kept is not None:
            self.kept += 1
            return kept
        loader, ev = self.loader, self.loader.evaluator
        before = (ev.origins.mark(), len(loader.read_failures), len(loader.missing_files), len(loader.modules))
        with logging_names(NameLog()) as log:
            result = build(used)
        if log.shared:
            version.shared = True
        after = (ev.origins.mark(), len(loader.read_failures), len(loader.missing_files), len(loader.modules))
        if before == after and not (log.everything or log.reads_files or log.shared) and _storable(result):
            call = used[0] if used else None
            if call is None and _LINE_NUMBER.search(result.construction):
                return result
            try:
                _check_result(result, self.path)
                private = _moved(result, self._own_ref)
            except _NotKept:
                return result
            version.builds[cls.name] = _Build(stmt, private, frozenset(log.reads), call)
        return result

    def _own_ref(self, ref: SourceRef) -> SourceRef:
        if ref.module.path == self.path and self.version is not None and ref.module is not self.version.source:
            raise _NotKept  # a ref into another version of the file
        return ref

    def _kept(self, name: str, stmt: cst.ClassDef) -> ModelResult | None:
        prev, version = self.prev, self.version
        if prev is None or version is None:
            return None
        build = prev.builds.get(name)
        if build is None:
            return None
        ev = self.loader.evaluator
        if self.rest.shared or version.shared or ev.analysis.stopped is not None:
            return None
        # A name the script's main block (or another build) bound meanwhile: what the build read
        # depends on code run outside the module's statements.
        if not self.rest.writes.isdisjoint(build.reads) or name in self.rest.writes:
            return None
        edit = self._plan()
        if edit is None or name in edit.dirty or not build.reads.isdisjoint(edit.dirty):
            return None
        if build.stmt is not stmt and edit.same.get(id(build.stmt)) is not stmt:
            return None
        if not all(_inert(dict.get(version.ns, n, MISSING)) for n in build.reads):
            return None
        # A call of an instance of the class by the script gives its forward inputs.
        if any(getattr(getattr(c.model, "cls", None), "name", None) == name for c in ev.script.calls.values()):
            return None
        call = build.call
        if call is not None:
            call = edit.same.get(id(call), call)  # type: ignore[assignment]
            if id(call) in edit.gone:
                return None
        try:
            moved = _moved(build.result, self._moved_ref)
        except _NotKept:
            return None
        if call is not None:
            moved.construction = construction_at(version.source, call)
        version.builds[name] = _Build(stmt, moved, build.reads, call)
        return _moved(moved, _same)  # the caller's own: results are mutated later

    def _moved_ref(self, ref: SourceRef) -> SourceRef:
        assert self.prev is not None and self.version is not None and self._edit is not None
        if ref.module is self.prev.source:
            node = self._edit.same.get(id(ref.node), ref.node)
            if id(node) in self._edit.gone:
                raise _NotKept
            return self.version.source.ref_of(node)
        if ref.module.path == self.path:
            raise _NotKept
        return ref

    # ------------------------------------------------------------------ the edit
    def _plan(self) -> _Edit | None:
        """What the edit changed (see `_Edit`); None when it is not an edit this can tell."""
        if self._planned:
            return self._edit
        self._planned = True
        prev, version = self.prev, self.version
        assert prev is not None and version is not None
        assert prev.source.tree is not None and version.source.tree is not None
        old_body, new_body = prev.source.tree.body, version.source.tree.body
        old_ids, new_ids = {id(s) for s in old_body}, {id(s) for s in new_body}
        gone: list[cst.CSTNode] = [s for s in old_body if id(s) not in new_ids]
        added: list[cst.CSTNode] = [s for s in new_body if id(s) not in old_ids]
        # The incremental parse parses an unchanged statement on each side of the edit again: a
        # new node, the same text. Such pairs are unchanged statements.
        by_text: dict[str, list[cst.CSTNode]] = {}
        for stmt, text in zip(gone, _texts(prev.source, gone)):
            by_text.setdefault(text, []).append(stmt)
        was: dict[int, cst.CSTNode] = {id(s): s for s in new_body if id(s) in old_ids}
        same: dict[int, cst.CSTNode] = {}
        changed_new: list[cst.CSTNode] = []
        for stmt, text in zip(added, _texts(version.source, added)):
            olds = by_text.get(text)
            if olds:
                old = was[id(stmt)] = olds.pop(0)
                same.update((id(a), b) for a, b in zip(iter_nodes(old), iter_nodes(stmt)))
            else:
                changed_new.append(stmt)
        changed_old = [s for texts in by_text.values() for s in texts]
        if any(type(s) is not cst.ClassDef or s.decorators for s in (*changed_old, *changed_new)):  # type: ignore[attr-defined]
            return None
        old_logs, new_logs = prev.ns.statement_logs, version.ns.statement_logs

        def inert_name(n: str) -> bool:
            return _inert(dict.get(prev.ns, n, MISSING)) and _inert(dict.get(version.ns, n, MISSING))

        def a_class(n: str) -> bool:  # a name a call site in the changed code may build
            return any(type(v) is ClassValue for v in (dict.get(prev.ns, n, MISSING), dict.get(version.ns, n, MISSING)))

        dirty: set[str] = set()
        gone_ids: set[int] = set()
        for stmt, logs in [*((s, old_logs) for s in changed_old), *((s, new_logs) for s in changed_new)]:
            log = logs.get(id(stmt))
            if log is None or log.everything or log.shared:
                return None
            nodes = list(iter_nodes(stmt))
            if logs is old_logs:
                gone_ids.update(id(n) for n in nodes)
            dirty |= {n.value for n in nodes if type(n) is cst.Name and a_class(n.value)}  # type: ignore[attr-defined]
            dirty |= log.writes | {n for n in log.reads if not inert_name(n)}
        for stmt in new_body:
            before = was.get(id(stmt))
            if before is None:
                continue
            a, b = old_logs.get(id(before)), new_logs.get(id(stmt))
            if a is None or b is None or a.everything or b.everything or a.shared or b.shared:
                return None
            if not dirty.isdisjoint(a.reads | a.writes | b.reads | b.writes):
                dirty |= a.writes | b.writes | {n for n in a.reads | b.reads if not inert_name(n)}
        self._edit = _Edit(dirty, gone_ids, same)
        return self._edit

    # ------------------------------------------------------------------ the end
    def finish(self) -> None:
        """The analysis is done: its version's builds are what the next version may keep."""
        global last_kept
        version = self.version
        last_kept = self.kept
        if version is None:
            return
        if self.rest.shared or self.rest.everything or any_marks(self.loader.evaluator) \
                or self.loader.evaluator.analysis.stopped is not None:
            version.shared = True
        version.modules = [(k, v) for k, v in self.loader.modules.items()
                           if not (isinstance(v, ModuleValue) and v.ns is version.ns)]
        with _lock:
            _versions[self.path] = version
            _versions.move_to_end(self.path)
            while len(_versions) > MAX_FILES:
                _versions.popitem(last=False)


def _quiet(text: str) -> bool:
    """Whether nothing in `text` reads the whole file for every model's setup. (A substring
    search per word: a regular expression of alternatives takes milliseconds on a large file.)"""
    lower = text.lower()
    return not any(w in lower for w in _FILE_WIDE) and not any(w in text for w in _trigger_words())


@cache
def _trigger_words() -> frozenset[str]:
    return setup_triggers(training_setup_handlers())


def _texts(source: SourceModule, stmts: Sequence[cst.CSTNode]) -> list[str]:
    """The statements' texts: from the file's text cut at its statements (engine/incremental.py)
    where the parse made it, else printed."""
    assert source.tree is not None
    pieces = source.pieces
    index = {id(s): i for i, s in enumerate(source.tree.body)} if pieces else {}
    out = []
    for stmt in stmts:
        i = index.get(id(stmt))
        out.append(pieces.statements[i] if i is not None and i < len(pieces.statements)
                   else source.tree.code_for_node(stmt))
    return out


def _same_modules(prev: _Version, loader: Loader) -> bool:
    """Whether every module the loader held at the previous version's end is still the same
    value (none dropped or evaluated again: an edited import, a changed library file), or an
    import that failed the same way again (failed imports are looked for again every analysis)."""
    modules = loader.modules
    for k, v in prev.modules:
        now = modules.get(k)
        if now is not v and not (type(now) is Unknown and type(v) is Unknown and now.reason == v.reason):
            return False
    return True


def _inert(v: Any) -> bool:
    if v is MISSING:
        return True
    if type(v) is LazyBinding:
        return v.done and _inert(v.value)  # one not read yet is read by the build (imports' "used")
    if type(v) is tuple:
        return len(v) < 64 and all(_inert(x) for x in v)
    return isinstance(v, _INERT)


def _storable(r: ModelResult) -> bool:
    return (r.kind == "class" and r.error is None and r.memory is None
            and r.inputs_from is None and r.trained_by is None and r.output_shape is None
            and not r.forward_unknowns and not r.origin)


def _same(ref: SourceRef) -> SourceRef:
    return ref


# Where a kept result holds refs into the file, which `_moved` gives their new version's; the
# rest is checked once, when the result is stored, to hold none (nor a line number in a text).
_MOVED_FIELDS = {"where", "tree", "unknowns", "memory_unknowns", "forward_unknowns", "construction", "used_in"}
_NODE_FIELDS = {"ref", "children"}


def _check_result(r: ModelResult, path: str) -> None:
    """_NotKept unless `r` holds refs only where `_moved` moves them, no Location in the file and
    no line number in a text (but `construction`, which the kept result says again)."""
    for k, v in r.__dict__.items():
        if k not in _MOVED_FIELDS:
            _check(v, path)
    _check_where(r.where, path)
    for u in (*r.unknowns, *r.memory_unknowns, *r.forward_unknowns):
        if type(u) is not UnknownInfo:
            raise _NotKept
        _check(u.reason, path)
        _check_where(u.where, path)
    stack = [r.tree] if r.tree is not None else []
    while stack:
        node = stack.pop()
        if type(node) is not ModuleNode:
            raise _NotKept
        for k, v in node.__dict__.items():
            if k not in _NODE_FIELDS:
                _check(v, path)
        _check_where(node.ref, path)
        stack.extend(node.children)


def _check_where(where: Any, path: str) -> None:
    if not (where is None or type(where) is SourceRef or (type(where) is Location and where.path != path)):
        raise _NotKept


def _check(obj: Any, path: str) -> None:
    """_NotKept if `obj` (plain data) holds a ref, a Location in the file, a line number in a
    text, or anything but scalars, lists, tuples, dicts and dataclasses of them."""
    t = type(obj)
    if obj is None or t is bool or t is int or t is float:
        return
    if isinstance(obj, str):
        if _LINE_NUMBER.search(obj):
            raise _NotKept
        return
    if isinstance(obj, (int, float)):
        return
    if t is list or t is tuple:
        for x in obj:
            _check(x, path)
        return
    if t is Location:
        if obj.path == path:
            raise _NotKept
        return
    if t is dict or isinstance(obj, Mapping):
        for v in obj.values():
            _check(v, path)
        return
    if hasattr(t, "__dataclass_fields__") and hasattr(obj, "__dict__"):
        for v in obj.__dict__.values():
            _check(v, path)
        return
    raise _NotKept


def _moved(r: ModelResult, ref: Callable[[SourceRef], SourceRef]) -> ModelResult:
    """A copy of a checked result (`_check_result`) with its refs given by `ref` (and its own
    nodes, unknowns and lists: what later steps mutate); its plain data is shared."""
    new = object.__new__(ModelResult)
    new.__dict__.update(r.__dict__)
    new.where = _where(r.where, ref)
    new.tree = _moved_node(r.tree, ref) if r.tree is not None else None
    new.unknowns = [_moved_unknown(u, ref) for u in r.unknowns]
    new.memory_unknowns = [_moved_unknown(u, ref) for u in r.memory_unknowns]
    new.forward_unknowns = [_moved_unknown(u, ref) for u in r.forward_unknowns]
    new.used_in = list(r.used_in)
    return new


def _where(where: Any, ref: Callable[[SourceRef], SourceRef]) -> Any:
    return ref(where) if type(where) is SourceRef else where


def _moved_unknown(u: UnknownInfo, ref: Callable[[SourceRef], SourceRef]) -> UnknownInfo:
    return u if u.where is None or type(u.where) is Location else UnknownInfo(u.reason, _where(u.where, ref))


def _moved_node(node: ModuleNode, ref: Callable[[SourceRef], SourceRef]) -> ModuleNode:
    new = object.__new__(ModuleNode)
    new.__dict__.update(node.__dict__)
    new.ref = _where(node.ref, ref)
    new.children = [_moved_node(c, ref) for c in node.children]
    return new
