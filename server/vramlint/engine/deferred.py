"""Class statements of an imported module whose evaluation waits until the class is used.

torchvision's `utils.py` (imported by every model file for `_log_api_usage_once`) defines
`class _ImageDrawTV(ImageDraw.ImageDraw)`: evaluating that statement reads PIL's `ImageDraw.py`
and `Image.py` (5,400 lines, a tenth of a torchvision analysis) for a class no model uses. Such
a statement is bound as a `LazyBinding` that runs it on first use, as module-level imports
already are, when waiting cannot change what it defines or what else runs:

- the module is being imported (`Loader.run_file`), not analysed: the analysed file's classes are
  its models (and a module an earlier import evaluated, reused as the analysed one, has its
  deferred classes run first: `force_deferred_classes`);
- it is a plain top-level statement: no decorators, no keywords (metaclass, `__init_subclass__`
  arguments), and a body of methods (with only builtin decorators and literal defaults),
  docstrings and literal class attributes, so that its definition runs no code and reads no
  name but its bases' (and rebinding a name later cannot change it);
- a base comes from a package not imported yet, of another top-level package than the module's
  (what reading it would cost), whose module does not mention `__init_subclass__`, metaclasses
  or `__subclasses__` (so no registry misses the subclass), and the names its bases start from
  are bound by no later statement of the module.

The statement's problems are recorded for the module's statement when it runs, as if it had run
in place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.code_facts import bound_names
from vramlint.engine.eval_base import Scope
from vramlint.engine.values import LazyBinding, Unknown
from vramlint.engine.walk import iter_nodes

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

_BUILTIN_DECORATORS = frozenset({"property", "staticmethod", "classmethod"})
_ACCESSORS = frozenset({"setter", "getter", "deleter"})
_LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.Ellipsis)
_CONSTANT_NAMES = frozenset({"None", "True", "False"})
# Text of a base's module that may make a subclass's definition matter by itself.
_REGISTRY_HINTS = ("__init_subclass__", "metaclass", "__subclasses__")


@dataclass
class DeferredClass:
    """The resolver of a deferred class statement's binding: runs the statement where it was."""

    ev: Evaluator
    node: cst.ClassDef
    scope: Scope

    def __call__(self) -> Any:
        ev, node, scope = self.ev, self.node, self.scope
        saved = (ev.issue_sinks, ev.current_ref)
        ev.issue_sinks = []
        ev.current_ref = None
        try:
            sink, gave_up = ev.run_top_statement(node, scope, ev.loader.module_statement_steps,
                                                 lambda: ev.define_class(node, scope))
        finally:
            ev.issue_sinks, ev.current_ref = saved
        ev.loader.note_deferred_problems(scope.module.name, node, sink, gave_up)
        value = scope.vars.get(node.name.value)
        return value if value is not None else Unknown(f"class `{node.name.value}` is not defined", None)


def defer_class(ev: Evaluator, node: cst.ClassDef, scope: Scope) -> bool:
    """Bind `node`'s class lazily if its statement may wait (see the module's docstring)."""
    if not _plain_statement(node) or not ev.loader.importing(scope.module.path):
        return False
    roots = _base_roots(node)
    if roots is None or not any(_costly_foreign(ev, scope, r) for r in roots):
        return False
    if _rebound_later(node, scope, roots):
        return False
    scope.vars[node.name.value] = LazyBinding(DeferredClass(ev, node, scope))
    return True


def force_deferred_classes(ev: Evaluator, ns: dict[str, Any]) -> None:
    """Run the deferred class statements of a module's namespace (it becomes the analysed file)."""
    for v in list(ns.values()):
        if type(v) is LazyBinding and isinstance(v.resolve, DeferredClass) and not v.done:
            ev.force(v)


def _plain_statement(node: cst.ClassDef) -> bool:
    if node.decorators or node.keywords or not isinstance(node.body, cst.IndentedBlock):
        return False
    return all(_plain_member(stmt) for stmt in node.body.body)


def _plain_member(stmt: cst.CSTNode) -> bool:
    if isinstance(stmt, cst.FunctionDef):
        p = stmt.params
        return all(_plain_decorator(d.decorator) for d in stmt.decorators) and all(
            x.default is None or _literal(x.default) for x in (*p.posonly_params, *p.params, *p.kwonly_params))
    if isinstance(stmt, cst.SimpleStatementLine):
        return all(_plain_small(small) for small in stmt.body)
    return False


def _plain_small(small: cst.CSTNode) -> bool:
    if isinstance(small, cst.Pass):
        return True
    if isinstance(small, cst.Expr):
        return isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))
    if isinstance(small, cst.Assign):
        return all(isinstance(t.target, cst.Name) for t in small.targets) and _literal(small.value)
    return False


def _plain_decorator(d: cst.BaseExpression) -> bool:
    if isinstance(d, cst.Name):
        return d.value in _BUILTIN_DECORATORS
    return isinstance(d, cst.Attribute) and isinstance(d.value, cst.Name) and d.attr.value in _ACCESSORS


def _literal(e: cst.BaseExpression) -> bool:
    if isinstance(e, _LITERALS):
        return True
    if isinstance(e, cst.Name):
        return e.value in _CONSTANT_NAMES
    if isinstance(e, cst.UnaryOperation) and isinstance(e.operator, cst.Minus):
        return isinstance(e.expression, (cst.Integer, cst.Float))
    if isinstance(e, (cst.Tuple, cst.List)):
        return all(isinstance(el, cst.Element) and _literal(el.value) for el in e.elements)
    return False


def _base_roots(node: cst.ClassDef) -> list[str] | None:
    """The names the bases start from (`ImageDraw` of `ImageDraw.ImageDraw`); None if a base is
    not a dotted name."""
    roots: list[str] = []
    for arg in node.bases:
        if arg.star or arg.keyword is not None:
            return None
        e: cst.BaseExpression = arg.value
        while isinstance(e, cst.Attribute):
            e = e.value
        if not isinstance(e, cst.Name):
            return None
        roots.append(e.value)
    return roots


def _costly_foreign(ev: Evaluator, scope: Scope, root: str) -> bool:
    """Whether the base's name is a pending `from M import N` of another top-level package than
    the module's, none of which is imported yet, read from source and mentioning no registry hook."""
    target = ev.loader.pending_import(scope.vars.get(root))
    if target is None:
        return False
    top = target[0].split(".")[0]
    if not top or top == scope.module.name.split(".")[0]:
        return False
    return ev.loader.unimported_source_package(top, _REGISTRY_HINTS, f"{target[0]}.{target[1]}")


def _rebound_later(node: cst.ClassDef, scope: Scope, roots: list[str]) -> bool:
    """Whether a later top-level statement binds a name the bases start from (or the class's
    own, which the deferred statement would then overwrite), or the statement is not a
    top-level one of the module's own body."""
    tree = scope.module.tree
    if tree is None:
        return True
    body = list(tree.body)
    at = next((i for i, stmt in enumerate(body) if stmt is node), None)
    if at is None:
        return True
    later = bound_names(body[at + 1:])
    if "del" in scope.module.text:
        later |= _deleted_names(body[at + 1:])
    if _MAY_BIND_UNSEEN.search(scope.module.text):  # (a walk of the whole module only then)
        later |= _global_names(tree)
    return node.name.value in later or any(r in later for r in roots)


def _deleted_names(body: Sequence[cst.CSTNode]) -> set[str]:
    return {x.value for stmt in body for n in iter_nodes(stmt) if isinstance(n, cst.Del)
            for x in iter_nodes(n.target) if isinstance(x, cst.Name)}


def _global_names(tree: cst.Module) -> set[str]:
    """Names a function declares `global` (it may rebind them whenever it runs), and every
    name where the module can bind names no statement shows (`import *`, `globals()`...)."""
    names: set[str] = set()
    for n in iter_nodes(tree):
        if isinstance(n, cst.Global):
            names.update(g.name.value for g in n.names)
        elif isinstance(n, cst.ImportStar) or (isinstance(n, cst.Name) and n.value in _DYNAMIC_BINDERS):
            return _EVERY_NAME
    return names


class _EveryName(frozenset[str]):
    """Contains every name."""

    def __contains__(self, name: object) -> bool:
        return True


_EVERY_NAME: Any = _EveryName()
_DYNAMIC_BINDERS = frozenset({"globals", "vars", "setattr", "exec"})
# What `_global_names` looks for, in the module's text: without a match it would find nothing.
_MAY_BIND_UNSEEN = re.compile(r"\b(global|globals|vars|setattr|exec)\b|\bimport\s*\*")
