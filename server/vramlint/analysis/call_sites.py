"""Where a file calls a name (`Net(...)`, `model(x)`, `DataLoader(...)`): the call sites whose
arguments mean the same at module level, found with one scan per file."""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import libcst as cst

from vramlint.engine.source import SourceModule
from vramlint.engine.walk import child_nodes, iter_nodes


def call_sites(source: SourceModule, name: str) -> Iterator[cst.Call]:
    """Calls `name(...)` anywhere in the file, in source order (one scan per file, cached).
    Lazy: the callers stop at the first call whose arguments they know, and a call's test for
    local names scans the functions around it (a class's first call is most often the one)."""
    calls = _CALLS.get(source)
    if calls is None:
        # Cheap pre-check: most classes are never called by name. One scan of the text for all
        # names (a search per class was quadratic: 6s for a file of 2,000 classes).
        called = _CALLED.get(source)
        if called is None:
            called = _CALLED[source] = set(_CALLED_NAME.findall(source.text))
        if name not in called:
            return iter(())
        calls = {}
        for scan in _statement_scans(source):
            for called_name, found in scan.calls.items():
                calls.setdefault(called_name, []).extend(found)
        _CALLS[source] = calls
    return (c for c, scopes in calls.get(name, []) if not _uses_locals(c, scopes, source))


def construction_at(source: SourceModule, call: cst.Call) -> str:
    """How a class built with the arguments of `call` was built, as results say it."""
    return f"arguments of the call at line {source.ref_of(call).statement_location.line}"


# The nodes that bind names of their own: a call's arguments may read those of every one around it.
_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.ClassDef)
_SCOPE_TYPES = frozenset(_SCOPES)
Scopes = tuple[cst.CSTNode, ...]


def _uses_locals(call: cst.Call, scopes: Scopes, source: SourceModule) -> bool:
    """Whether an argument of `call` names a variable local to a function (or comprehension, or
    class body) around it: `def build(): w = 64; return Net(w)`. Such a call's arguments mean
    something else at module level, where `_known_call_args` evaluates them."""
    nodes = [n for a in call.args for n in iter_nodes(a.value)]
    # `cfg.width`'s `width` and keyword names are Name nodes too, but not variables.
    not_vars = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)}
    not_vars |= {id(n.keyword) for n in nodes if isinstance(n, cst.Arg) and n.keyword is not None}
    used = {n.value for n in nodes if isinstance(n, cst.Name) and id(n) not in not_vars}
    return bool(used) and any(used & _scope_locals(scope, source) for scope in scopes)


def _scope_locals(node: cst.CSTNode, source: SourceModule) -> frozenset[str]:
    """The names a function, lambda, comprehension or class body binds for itself (once per node:
    a class's many call sites share their functions' scans)."""
    from vramlint.engine.evaluator import bound_names

    key = ("scope-locals", id(node))
    hit = source.node_cache.get(key)  # type: ignore[call-overload]
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    names: set[str] = set()
    if isinstance(node, (cst.FunctionDef, cst.Lambda)):
        p = node.params
        names |= {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)}
        names |= {x.name.value for x in (p.star_arg, p.star_kwarg) if isinstance(x, cst.Param)}
        if isinstance(node, cst.FunctionDef) and isinstance(node.body, cst.IndentedBlock):
            names |= bound_names(node.body.body)
    elif isinstance(node, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
        comp: Any = node.for_in
        while comp is not None:
            names |= {n.value for n in iter_nodes(comp.target) if isinstance(n, cst.Name)}
            comp = comp.inner_for_in
    elif isinstance(node, cst.ClassDef) and isinstance(node.body, cst.IndentedBlock):
        names |= bound_names(node.body.body)
    found = source.node_cache[key] = frozenset(names)  # type: ignore[index]
    return found


@dataclass
class _StatementScan:
    """The calls of a plain name in one top-level statement, each with the scope nodes around it."""

    statement: cst.CSTNode
    calls: dict[str, list[tuple[cst.Call, Scopes]]]


def _scan_calls(stmt: cst.CSTNode) -> dict[str, list[tuple[cst.Call, Scopes]]]:
    """A statement's calls of a plain name, by name, each with the scope nodes around it, in one walk."""
    calls: dict[str, list[tuple[cst.Call, Scopes]]] = {}
    stack: list[tuple[cst.CSTNode, Scopes]] = [(stmt, ())]
    while stack:
        n, around = stack.pop()
        kind = type(n)  # exact types: isinstance on libcst's ABCs costs a Python call per check
        if kind is cst.Call and type(n.func) is cst.Name:  # type: ignore[attr-defined]
            calls.setdefault(n.func.value, []).append((n, around))  # type: ignore[attr-defined,arg-type]
        inner = (*around, n) if kind in _SCOPE_TYPES else around
        stack.extend([(c, inner) for c in reversed(child_nodes(n)) if type(c) not in _LEAVES])
    return calls


# Nodes that hold no call (the most common ones: not walked into).
_LEAVES = frozenset({cst.Name, cst.Integer, cst.Float, cst.SimpleString, cst.Pass, cst.Ellipsis,
                     cst.ImportAlias, cst.Dot})


def _statement_scans(source: SourceModule) -> list[_StatementScan]:
    """One scan per top-level statement. An editor's next version of a file shares the unchanged
    statements' nodes with the previous one (engine/incremental.py): their scans are reused, so
    an edit scans only what it changed."""
    found = _SCANS.get(source)
    if found is not None:
        return found
    assert source.tree is not None
    earlier_ref = _LATEST.get(source.path)
    earlier = earlier_ref() if earlier_ref is not None else None
    before = {id(scan.statement): scan for scan in _SCANS.get(earlier, [])} if earlier is not None else {}
    found = []
    for stmt in source.tree.body:
        scan = before.get(id(stmt))
        if scan is None or scan.statement is not stmt:
            scan = _StatementScan(stmt, _scan_calls(stmt))
        found.append(scan)
    _SCANS[source] = found
    _LATEST[source.path] = weakref.ref(source)
    return found


_SCANS: weakref.WeakKeyDictionary[SourceModule, list[_StatementScan]] = weakref.WeakKeyDictionary()
_LATEST: dict[str, weakref.ref[SourceModule]] = {}  # the last file scanned per path


# A name followed by `(`. Only at the start of a word: without the look-behind, each position
# inside a long run of word characters (a 40,000-character comment, a string literal) started a
# match that scanned to the run's end, quadratic in the run's length (12 s for 40,000 characters).
_CALLED_NAME = re.compile(r"(?<!\w)([^\W\d]\w*)\s*\(")
_CALLS: weakref.WeakKeyDictionary[SourceModule, dict[str, list[tuple[cst.Call, Scopes]]]] = weakref.WeakKeyDictionary()
_CALLED: weakref.WeakKeyDictionary[SourceModule, set[str]] = weakref.WeakKeyDictionary()

