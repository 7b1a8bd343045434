"""What the module level of the analysed file could not evaluate.

- Imports vramlint could not resolve (finding VL303): an import that fails is an Unknown like any
  other, so a model built from it would otherwise vanish silently ("no models found", exit 0).
- For a file without models: the module-level names left unknown and the statements not fully
  evaluated, so that "no models found" says what could not be evaluated and where.

Only the analysed file's own statements are looked at: a library's failed imports are the
library's business (they show up, if they matter, as the reason of an unknown count).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import libcst as cst
from libcst.helpers import get_full_name_for_node

from vramlint.analysis.findings import RULE_BY_CODE
from vramlint.analysis.results import Finding, UnknownInfo
from vramlint.engine.loader import Loader
from vramlint.engine.source import SourceModule
from vramlint.engine.values import MISSING, LazyBinding, ModuleValue, SourceRef, Unknown

# Exceptions whose handler makes an import optional (`try: import apex except ImportError: ...`).
_IMPORT_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
_SITE_DIRS = ("site-packages", "dist-packages")


# ---------------------------------------------------------------------------- VL303
def unresolved_imports(loader: Loader, mod: ModuleValue, source: SourceModule, extra_paths: Sequence[str],
                       root: str) -> list[Finding]:
    """A VL303 finding per module-level import of the file that vramlint cannot resolve, is not
    guarded by an `except ImportError`, and whose name the analysis used (an import nothing
    reads cannot have changed a result; a star import is always evaluated)."""
    if source.tree is None:
        return []
    out = []
    for node in _module_level_imports(source.tree.body):
        for module, at, names in _targets(node):
            if names is not None and not any(_used(mod.ns, name, alias) for name, alias in names):
                continue
            missing = _missing_module(loader, module)
            if missing is None:
                continue
            bound = ", ".join(f"`{n}`" for n, a in names or () if _used(mod.ns, n, a))
            r = RULE_BY_CODE["VL303"]
            out.append(Finding(r.code, r.name, r.severity, _message(loader, missing, bound, extra_paths, root),
                               None, SourceRef(source, at), module))
    return out


def _module_level_imports(body: Sequence[cst.CSTNode], guarded: bool = False) -> Iterator[cst.Import | cst.ImportFrom]:
    """The unguarded imports run at module level: in the top-level statements and the blocks of
    top-level `if`/`for`/`while`/`with`/`try` (their bindings are module-level ones), not in
    functions or classes."""
    for stmt in body:
        if isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            if not guarded:
                yield from (s for s in stmt.body if isinstance(s, (cst.Import, cst.ImportFrom)))
        elif isinstance(stmt, (cst.Try, cst.TryStar)):
            yield from _module_level_imports(_block(stmt.body), guarded or any(_catches_import_error(h) for h in stmt.handlers))
            for part in (*stmt.handlers, stmt.orelse, stmt.finalbody):
                if part is not None:
                    yield from _module_level_imports(_block(part.body), guarded)
        elif isinstance(stmt, cst.With):
            yield from _module_level_imports(_block(stmt.body), guarded or any(_suppresses_import_error(i) for i in stmt.items))
        elif isinstance(stmt, (cst.If, cst.For, cst.While)):
            yield from _module_level_imports(_block(stmt.body), guarded)
            if stmt.orelse is not None:
                other = stmt.orelse
                yield from _module_level_imports([other] if isinstance(other, cst.If) else _block(other.body), guarded)


def _block(body: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    return body.body if isinstance(body, cst.IndentedBlock) else [body]


def _catches_import_error(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> bool:
    if handler.type is None:
        return True  # a bare `except:`
    types = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    return any(_exception_name(t.value if isinstance(t, cst.BaseElement) else t) in _IMPORT_GUARDS for t in types)


def _suppresses_import_error(item: cst.WithItem) -> bool:
    """`with contextlib.suppress(ImportError):`."""
    call = item.item
    if not isinstance(call, cst.Call) or _exception_name(call.func) != "suppress":
        return False
    return any(_exception_name(a.value) in _IMPORT_GUARDS for a in call.args)


def _exception_name(node: cst.BaseExpression) -> str | None:
    name = get_full_name_for_node(node)
    return name.rpartition(".")[2] if name else None


def _targets(node: cst.Import | cst.ImportFrom) -> Iterator[tuple[str, cst.CSTNode, list[tuple[str, cst.CSTNode]] | None]]:
    """(module imported, the node naming it, [(bound name, alias node)] or None for a star import)."""
    if isinstance(node, cst.Import):
        for alias in node.names:
            dotted = get_full_name_for_node(alias.name) or ""
            name = get_full_name_for_node(alias.asname.name) if alias.asname is not None else dotted.partition(".")[0]
            one: list[tuple[str, cst.CSTNode]] = [(name or "", alias)]
            yield dotted, alias.name, one
        return
    if node.relative or node.module is None:
        return  # the file's own package: not a matter of search paths
    dotted = get_full_name_for_node(node.module) or ""
    if isinstance(node.names, cst.ImportStar):
        yield dotted, node.module, None
        return
    names: list[tuple[str, cst.CSTNode]] = []
    for alias in node.names:
        bound = alias.asname.name if alias.asname is not None else alias.name
        names.append((get_full_name_for_node(bound) or "", alias))
    yield dotted, node.module, names


def _used(ns: dict[str, Any], name: str, alias: cst.CSTNode) -> bool:
    """Whether the analysis read the binding this import made (module-level imports bind
    lazily, resolved on first use: a read one is `done`, or was replaced by its value)."""
    v = ns.get(name, MISSING)
    if type(v) is LazyBinding:
        return v.done
    return isinstance(v, Unknown) and isinstance(v.ref, SourceRef) and v.ref.node is alias


def _missing_module(loader: Loader, dotted: str) -> str | None:
    """The first package of `dotted` (`a`, `a.b`, ...) found neither natively nor on the search
    path; None when it resolves, is natively modelled (torch, keras, numpy) or is in the
    standard library (there, what is not modelled is an unknown of its own, not a path problem)."""
    if not dotted or isinstance(loader.modules.get(dotted), ModuleValue):
        return None
    top = dotted.partition(".")[0]
    if top in sys.stdlib_module_names:
        return None
    cached = loader.modules.get(top)  # a native module (a stub) has no __file__
    if cached.ns.get("__file__") is None if isinstance(cached, ModuleValue) else \
            any(resolve(loader, top) is not None for resolve in loader.native_resolvers):
        return None
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if not isinstance(loader.modules.get(prefix), ModuleValue) and loader.find_module_file(prefix)[0] is None:
            return prefix
    return None


def _message(loader: Loader, missing: str, bound: str, extra_paths: Sequence[str], root: str) -> str:
    unknown = f"{bound} and what is built from it are unknown" if bound else "what it defines is unknown"
    return (f"module `{missing}` could not be resolved, so {unknown}; searched {_searched(loader, extra_paths, root)}; "
            f"add the folder that contains `{missing.partition('.')[0]}` with `--extra-path DIR`, "
            '`extra-paths = ["DIR"]` in [tool.vramlint], or the editor setting `vramlint.extraPaths` '
            "(or install the package where vramlint runs)")


def _searched(loader: Loader, extra_paths: Sequence[str], root: str) -> str:
    """The search path in a sentence: the file's root folder, extra-paths, the interpreter's
    sys.path (its site-packages by name: the whole list is long, and differs between a shell and
    an editor only by folders that hold no packages)."""
    extras = [os.path.abspath(p) for p in extra_paths]
    site = [p for p in loader.search_paths if os.path.basename(p) in _SITE_DIRS and p not in extras]
    return (f"the file's folder {os.path.abspath(root)}, extra-paths ({', '.join(extras) or 'none'}) and the "
            f"sys.path of {sys.executable} (site-packages: {', '.join(site) or 'none'})")


# ---------------------------------------------------------------------------- "no models found"
def unevaluated(mod: ModuleValue, source: SourceModule, problems: dict[Any, list[Unknown]]) -> list[UnknownInfo]:
    """For a file without models: module-level names whose value is unknown (at their last
    assignment) and top-level blocks (`if`, `with`, `for`...) that recorded unknowns: what a
    model defined there would be missing for."""
    if source.tree is None:
        return []
    last: dict[str, cst.CSTNode] = {}
    out: list[tuple[cst.CSTNode, UnknownInfo]] = []
    for stmt in source.tree.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for name in _assigned_names(stmt):
                last[name] = stmt
        elif not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and problems.get(stmt):
            u = problems[stmt][0]
            out.append((stmt, UnknownInfo(f"not fully evaluated: {u.reason}", SourceRef(source, stmt))))
    for name, where in last.items():
        v = mod.ns.get(name)
        if type(v) is LazyBinding:
            v = v.value if v.done else None
        if isinstance(v, Unknown):
            out.append((where, UnknownInfo(f"`{name}` is unknown: {v.reason}{_elsewhere(v, source, where)}",
                                           SourceRef(source, where))))
    order = {id(s): i for i, s in enumerate(source.tree.body)}
    return [u for _, u in sorted(out, key=lambda pair: order[id(pair[0])])]


def _assigned_names(stmt: cst.SimpleStatementLine) -> Iterator[str]:
    for small in stmt.body:
        if isinstance(small, cst.Assign):
            for t in small.targets:
                yield from target_names(t.target)
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            yield from target_names(small.target)


def target_names(target: cst.BaseExpression) -> Iterator[str]:
    """The names an assignment target binds (`a`, `a, (b, *c)`)."""
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for e in target.elements:
            yield from target_names(e.value)
    elif isinstance(target, cst.StarredElement):
        yield from target_names(target.value)


def _elsewhere(u: Unknown, source: SourceModule, stmt: cst.CSTNode) -> str:
    """Where the unknown arose, when not on the statement's own line (statement positions:
    cheap, unlike a node's, and this runs on every analysis of a file without models)."""
    if not isinstance(u.ref, SourceRef):
        return ""
    at, here = u.ref.statement_location, SourceRef(source, stmt).statement_location
    if (at.path, at.line) == (here.path, here.line):
        return ""
    return f" (line {at.line})" if at.path == here.path else f" (at {at})"
