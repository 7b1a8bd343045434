"""Facts read from a block's libcst tree without running it: the names it binds, the objects
it changes in place, whether it returns or always raises, whether a decorator only registers
the function it is given. The evaluator uses them for undecided conditions and decorators; the
loader and model discovery for what a module defines."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.walk import iter_nodes

if TYPE_CHECKING:
    from vramlint.engine.source import SourceModule


def if_branches(node: cst.If) -> list[Sequence[cst.CSTNode]]:
    """The statement lists an `if`/`elif`/`else` chain may run (an empty one when there is no `else`)."""
    out: list[Sequence[cst.CSTNode]] = []
    cur: cst.If | None = node
    while cur is not None:
        out.append(_stmts(cur.body))
        orelse = cur.orelse
        if orelse is None:
            out.append(())
            cur = None
        elif type(orelse) is cst.If:
            cur = orelse
        else:
            out.append(_stmts(orelse.body))
            cur = None
    return out


def _stmts(body: Any) -> Sequence[cst.CSTNode]:
    if type(body) is cst.SimpleStatementSuite:
        return [cst.SimpleStatementLine(body=body.body)]
    return body.body  # type: ignore[no-any-return]


def _smalls(stmt: cst.CSTNode) -> Sequence[cst.CSTNode]:
    return stmt.body if type(stmt) is cst.SimpleStatementLine else ()  # type: ignore[attr-defined,no-any-return]


def always_raises(body: Sequence[cst.CSTNode]) -> bool:
    return bool(body) and any(type(x) is cst.Raise for x in _smalls(body[-1]))


def returns(body: Sequence[cst.CSTNode]) -> bool:
    """A `return` anywhere in the branch outside nested functions, classes and lambdas."""
    def descend(n: cst.CSTNode) -> bool:
        return type(n) not in (cst.FunctionDef, cst.ClassDef, cst.Lambda)
    return any(type(n) is cst.Return for stmt in body for n in iter_nodes(stmt, descend))


_PLAIN_SMALL = (cst.Assign, cst.AnnAssign, cst.Pass, cst.Import, cst.ImportFrom)


def plain_block(body: Sequence[cst.CSTNode]) -> bool:
    """Assignments to names, imports, definitions, docstrings and nested such `if`s: what can be
    run on a copy of the variables without touching objects the other path would see."""
    for stmt in body:
        if type(stmt) in (cst.FunctionDef, cst.ClassDef):
            continue
        if type(stmt) is cst.If:
            if not all(plain_block(b) for b in if_branches(stmt)):
                return False
            continue
        if type(stmt) is not cst.SimpleStatementLine:
            return False
        for small in _smalls(stmt):
            if type(small) is cst.Expr and type(small.value) in (cst.SimpleString, cst.ConcatenatedString):
                continue
            if type(small) not in _PLAIN_SMALL:
                return False
            targets = ([t.target for t in small.targets] if type(small) is cst.Assign
                       else [small.target] if type(small) is cst.AnnAssign else [])
            if not all(type(t) is cst.Name for t in targets):
                return False
    return True


def _leaf_targets(t: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The single targets of an assignment target (`a, (b.c, *d[0])` gives a, b.c, d[0])."""
    if isinstance(t, (cst.Tuple, cst.List)):
        for el in t.elements:
            yield from _leaf_targets(el.value)
    elif type(t) is cst.StarredElement:
        yield from _leaf_targets(t.value)
    else:
        yield t


def _stores(body: Sequence[cst.CSTNode], descend: Callable[[cst.CSTNode], bool]) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
    """(statement node, single target) of every assignment, loop target and `del` in a block."""
    for stmt in body:
        for n in iter_nodes(stmt, descend):
            kind = type(n)
            if kind is cst.Assign:
                for t in n.targets:  # type: ignore[attr-defined]
                    for leaf in _leaf_targets(t.target):
                        yield n, leaf
            elif kind in (cst.AnnAssign, cst.AugAssign, cst.For, cst.Del):
                for leaf in _leaf_targets(n.target):  # type: ignore[attr-defined]
                    yield n, leaf


def bound_names(body: Sequence[cst.CSTNode]) -> set[str]:
    """Names a branch binds (assignments, loop and `with` targets, imports, definitions)."""
    out: set[str] = set()

    def descend(n: cst.CSTNode) -> bool:
        return type(n) not in (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.ListComp, cst.SetComp,
                               cst.DictComp, cst.GeneratorExp)

    out.update(leaf.value for n, leaf in _stores(body, descend)  # type: ignore[attr-defined]
               if type(leaf) is cst.Name and type(n) is not cst.Del)
    for stmt in body:
        for n in iter_nodes(stmt, descend):
            kind = type(n)
            if kind is cst.AsName:
                out.update(leaf.value for leaf in _leaf_targets(n.name)  # type: ignore[attr-defined]
                           if type(leaf) is cst.Name)
            elif kind in (cst.FunctionDef, cst.ClassDef):
                out.add(n.name.value)  # type: ignore[attr-defined]
            elif kind in (cst.Import, cst.ImportFrom) and not isinstance(n.names, cst.ImportStar):  # type: ignore[attr-defined]
                for alias in n.names:  # type: ignore[attr-defined]
                    if alias.asname is None:
                        name = alias.name
                        while type(name) is cst.Attribute:
                            name = name.value
                        out.add(name.value)
    return out


_REGISTERING: dict[int, bool] = {}


def is_registering_decorator(node: cst.FunctionDef | cst.Lambda) -> bool:
    """A decorator that changes something outside itself and returns the function it was given,
    unchanged (`def register_model(fn): ...; _registry[name] = fn; return fn`): running it has
    the registration as its only effect. Wrappers (a nested def) and decorators that return
    anything else are not run (see `apply_decorator`)."""
    key = id(node)
    hit = _REGISTERING.get(key)
    if hit is None:
        hit = _REGISTERING[key] = _registering(node)
    return hit


def _registering(node: cst.FunctionDef | cst.Lambda) -> bool:
    if type(node) is not cst.FunctionDef or type(node.body) is not cst.IndentedBlock:
        return False
    params = node.params.params or node.params.posonly_params
    if len(params) != 1 or node.asynchronous is not None:
        return False
    arg = params[0].name.value
    body = node.body.body
    last = body[-1] if body else None
    if type(last) is not cst.SimpleStatementLine or len(last.body) != 1:
        return False
    ret = last.body[0]
    if type(ret) is not cst.Return or type(ret.value) is not cst.Name or ret.value.value != arg:
        return False
    if any(type(n) in (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.Yield)
           for stmt in body for n in iter_nodes(stmt, lambda n: True)):
        return False
    returns_ = [n for stmt in body for n in iter_nodes(stmt, lambda n: True) if type(n) is cst.Return]
    if any(type(r.value) is not cst.Name or r.value.value != arg for r in returns_):
        return False
    return bool(mutated_roots(body) - {arg})


def is_registering_factory(node: cst.FunctionDef | cst.Lambda) -> bool:
    """`def register_model(name=None): def wrapper(fn): REG[name or fn.__name__] = fn; return fn;
    return wrapper`: a call of it makes a registering decorator."""
    if type(node) is not cst.FunctionDef or type(node.body) is not cst.IndentedBlock or not node.body.body:
        return False
    inner = {s.name.value: s for s in node.body.body if type(s) is cst.FunctionDef}
    last = node.body.body[-1]
    if type(last) is not cst.SimpleStatementLine or len(last.body) != 1 or type(last.body[0]) is not cst.Return:
        return False
    ret = last.body[0].value
    return type(ret) is cst.Name and ret.value in inner and is_registering_decorator(inner[ret.value])


# Methods that change the object they are called on (containers, and torch's registration).
_MUTATORS = frozenset({
    "append", "extend", "insert", "update", "setdefault", "add", "pop", "popitem", "remove",
    "discard", "clear", "sort", "reverse", "appendleft", "extendleft", "__setitem__",
    "__delitem__", "add_module", "register_module", "register_buffer", "register_parameter",
})


def _root_path(n: cst.BaseExpression) -> tuple[str | None, str | None]:
    """The name at the root of a target and the attribute right after it (`os.environ[k]`:
    ("os", "environ"); `d[k]`: ("d", None))."""
    first: str | None = None
    while type(n) in (cst.Attribute, cst.Subscript):
        first = n.attr.value if type(n) is cst.Attribute else None  # type: ignore[attr-defined]
        n = n.value  # type: ignore[attr-defined]
    return (n.value if type(n) is cst.Name else None), first  # type: ignore[attr-defined]


def mutated_roots(body: Sequence[cst.CSTNode]) -> set[str]:
    """Names whose objects a block changes in place: `d[k] = v`, `a.b = v`, `del d[k]`,
    `x.append(v)`, `d.update(...)` (the name at the root of the target)."""
    return {root for root, _ in mutated_paths(body)}


def mutated_paths(body: Sequence[cst.CSTNode]) -> set[tuple[str, str | None]]:
    """(root name, first attribute) of what a block changes in place (see `_root_path`)."""

    def descend(n: cst.CSTNode) -> bool:
        return type(n) not in (cst.FunctionDef, cst.ClassDef, cst.Lambda)

    changed = [leaf for _, leaf in _stores(body, descend) if type(leaf) in (cst.Attribute, cst.Subscript)]
    changed += [n.func.value for stmt in body for n in iter_nodes(stmt, descend)  # type: ignore[attr-defined]
                if type(n) is cst.Call and type(n.func) is cst.Attribute  # type: ignore[attr-defined]
                and n.func.attr.value in _MUTATORS]  # type: ignore[attr-defined]
    return {(root, first) for t in changed for root, first in [_root_path(t)] if root is not None}  # type: ignore[arg-type]


def module_bound_names(tree: cst.Module) -> frozenset[str] | None:
    """Every name a module's code can bind at module level (None: `import *` or
    `globals()`/`setattr` make that unknowable)."""
    names = set(bound_names(tree.body))
    if "__getattr__" in names:
        return None  # PEP 562: the module's own __getattr__ answers for names it does not bind
    for n in iter_nodes(tree, lambda n: True):
        kind = type(n)
        if kind is cst.Global:
            names.update(g.name.value for g in n.names)  # type: ignore[attr-defined]
        elif kind is cst.ImportStar:
            return None
        elif kind is cst.Name and n.value in ("globals", "vars", "setattr", "exec"):  # type: ignore[attr-defined]
            return None
    return frozenset(names)


def dotted_name(node: cst.BaseExpression) -> str:
    if type(node) is cst.Name:
        return node.value
    if type(node) is cst.Attribute:
        return f"{dotted_name(node.value)}.{node.attr.value}"
    return ""


def is_classvar(ann: cst.BaseExpression, name: str = "ClassVar") -> bool:
    """`ClassVar`, `ClassVar[...]`, `typing.ClassVar[...]` or the same as a string (syntactically,
    as dataclasses does for string annotations); `name="InitVar"` for dataclasses.InitVar."""
    if type(ann) is cst.Subscript:
        ann = ann.value
    if type(ann) is cst.SimpleString:
        text = ann.raw_value.strip()
        return text.startswith((name, f"typing.{name}", f"dataclasses.{name}"))
    return dotted_name(ann).split(".")[-1] == name


def postponed_annotations(module: SourceModule) -> bool:
    cache = module.node_cache
    key = "postponed-annotations"
    if key not in cache:  # type: ignore[operator]
        tree = module.tree
        cache[key] = tree is not None and any(  # type: ignore[index]
            type(small) is cst.ImportFrom and small.module is not None and dotted_name(small.module) == "__future__"
            and not isinstance(small.names, cst.ImportStar) and any(a.name.value == "annotations" for a in small.names)
            for stmt in tree.body if type(stmt) is cst.SimpleStatementLine for small in stmt.body)
    return bool(cache[key])  # type: ignore[index]


def contains_yield(body: cst.BaseSuite, cache: dict[cst.CSTNode, Any], text: str | None = None) -> bool:
    """Whether a function body yields (`text`: its module's, which a body's `yield` is part of)."""
    hit = cache.get(body)
    if hit is None:
        if text is not None and "yield" not in text:
            hit = False  # no walk of the body: most modules have no generator at all
        else:
            # Nested functions, lambdas and classes have their own generator-ness.
            nested = (cst.FunctionDef, cst.Lambda, cst.ClassDef)  # (exact types: libcst's are final)
            hit = any(type(n) is cst.Yield for n in iter_nodes(body, lambda n: type(n) not in nested))
        cache[body] = hit
    return bool(hit)
