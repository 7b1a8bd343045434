"""The evaluator's expressions other than operators and calls: literals and strings
(f-strings), names and attributes (with private-name mangling), containers, conditional
expressions, `:=`, `yield`, comprehensions and subscripts. Bound as methods of `Evaluator`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.eval_base import (
    MAX_SEQUENCE,
    NATIVE_SCALARS,
    Scope,
    contains_unknown,
    first_unknown_of,
)
from vramlint.engine.signals import BudgetExceeded, Undecided
from vramlint.engine.values import MISSING, LazyBinding, Unknown, Value

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.source import SourceModule


def _enclosing_class_name(node: cst.CSTNode, scope: Scope) -> str | None:
    """The innermost class whose body (methods included) holds `node`, by the source's nesting."""
    if scope.is_class:
        return str(scope.vars.get("__qualname__", "")).rpartition(".")[2] or None
    func = scope.func
    if func is None:
        return None
    cache = scope.module.node_cache
    key = ("class-of", id(func.node))
    if key not in cache:
        cache[key] = _class_around(func.node, scope.module)  # type: ignore[index]
    return cache[key]  # type: ignore[index,return-value]


def _class_around(target: cst.CSTNode, module: SourceModule) -> str | None:
    tree = module.tree
    if tree is None:
        return None
    stack: list[tuple[cst.CSTNode, str | None]] = [(tree, None)]
    while stack:
        n, cls = stack.pop()
        if n is target:
            return cls
        inner = n.name.value if isinstance(n, cst.ClassDef) else cls
        stack.extend((c, inner) for c in n.children)
    return None


def _unknown_list(u: Unknown) -> Unknown:
    return u


def e_literal(self: Evaluator, node: cst.Integer | cst.Float | cst.Imaginary, scope: Scope) -> Any:
    # libcst decodes literals with ast.literal_eval, a compile, on every access: cache per node,
    # and decode an int or a float as Python's int() and float() do (the same rules for
    # prefixes, underscores and exponents), sparing the compile.
    cache = scope.module.node_cache
    v = cache.get(node, MISSING)
    if v is MISSING:
        t = type(node)
        try:
            v = int(node.value, 0) if t is cst.Integer else float(node.value) if t is cst.Float else MISSING
        except ValueError:  # (an int over Python's 4,300 digits: literal_eval says so as before)
            v = MISSING
        if v is MISSING:
            v = node.evaluated_value
        cache[node] = v
    return v


def e_string(self: Evaluator, node: cst.SimpleString, scope: Scope) -> Any:
    cache = scope.module.node_cache
    v = cache.get(node, MISSING)
    if v is MISSING:
        v = _plain_string(node.value)
        if v is None:
            try:
                v = node.evaluated_value
            except Exception:
                return self.unknown("string literal could not be decoded", scope, node)
        cache[node] = v
    return v


def _plain_string(text: str) -> str | None:
    """The value of a string literal with no prefix, no escape and no carriage return (most of
    them: a category name, a dict key) without ast.literal_eval's compile; None for the others.
    (A carriage return in a triple-quoted string reads as a newline.)"""
    if text[0] not in "'\"" or "\\" in text or "\r" in text:
        return None
    return text[3:-3] if text.startswith(('"""', "'''")) else text[1:-1]


def e_concat(self: Evaluator, node: cst.ConcatenatedString, scope: Scope) -> Any:
    left = self.eval(node.left, scope)
    right = self.eval(node.right, scope)
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(left, bytes) and isinstance(right, bytes):
        return left + right
    u = first_unknown_of(left, right)
    return u if u is not None else self.unknown("string concatenation", scope, node)


def e_fstring(self: Evaluator, node: cst.FormattedString, scope: Scope) -> Any:
    out: list[str] = []
    for part in node.parts:
        if type(part) is cst.FormattedStringText:
            out.append(part.value)
            continue
        assert type(part) is cst.FormattedStringExpression
        v = self.eval(part.expression, scope)
        u = contains_unknown(v)
        if u is not None:
            return u
        if isinstance(v, Value) and hasattr(v, "to_str") and part.conversion != "r":
            v = v.to_str()  # a value with a plain text form (a pathlib path)
        if not isinstance(v, NATIVE_SCALARS + (tuple, list, dict)):
            return self.unknown("f-string of a non-literal value", scope, part)
        spec = ""
        if part.format_spec:
            for sp in part.format_spec:
                if type(sp) is cst.FormattedStringText:
                    spec += sp.value
                else:
                    assert type(sp) is cst.FormattedStringExpression
                    sv = self.eval(sp.expression, scope)
                    if not isinstance(sv, (str, int)):
                        return self.unknown("f-string format spec", scope, part)
                    spec += str(sv)
        if part.conversion == "r":
            v = repr(v)
        elif part.conversion == "s":
            v = str(v)
        elif part.conversion == "a":
            v = ascii(v)
        try:
            out.append(format(v, spec))
        except (ValueError, TypeError):
            return self.unknown("invalid f-string format", scope, part)
    return "".join(out)


def e_name(self: Evaluator, node: cst.Name, scope: Scope) -> Any:
    # Most names are the running scope's own (always searched, even a class body's) or, in a
    # function whose only enclosing scope is the module (a method), a global or builtin (`nn`,
    # `True`): read them here, without `lookup`'s call.
    v = scope.vars.get(node.value, MISSING)
    if v is MISSING or type(v) is LazyBinding:
        v = outer_name(node.value, scope, self.builtins)
        if v is MISSING:
            return self.lookup(node.value, scope, node)  # (the same answer for these, by the long way)
    return v


def outer_name(name: str, scope: Scope, builtins: dict[str, Any]) -> Any:
    """`lookup`'s answer for a name the running scope does not bind, where it is a plain read:
    in a scope whose only parent is the module's (a method, a top-level function) or none, the
    global or builtin; MISSING where lookup has more to do (an import to resolve, enclosing
    scopes to search, a name not defined)."""
    g = scope.globals
    p = scope.parent
    if (p is not None and (p.vars is not g or p.parent is not None or p.is_class)) or name in scope.vars:
        return MISSING
    v = g.get(name, MISSING)
    if v is MISSING and name not in g:
        v = builtins.get(name, MISSING)
    return MISSING if type(v) is LazyBinding else v


def lookup(self: Evaluator, name: str, scope: Scope, node: cst.CSTNode | None = None) -> Any:
    s: Scope | None = scope
    first = True
    while s is not None:
        if first or not s.is_class:
            if name in s.vars:
                v = s.vars[name]
                if type(v) is LazyBinding:
                    v = self.force(v)
                return v
        first = False
        s = s.parent
    g = scope.globals
    if name in g:
        v = g[name]
        if type(v) is LazyBinding:
            v = self.force(v)
            g[name] = v
        return v
    if name in self.builtins:
        return self.builtins[name]
    if name == "__class__" and scope.func is not None and scope.func.owner is not None:
        return scope.func.owner
    return Unknown(f"name `{name}` is not defined", self.ref(scope, node) if node is not None else self.current_ref)


def attr_name(self: Evaluator, node: cst.Attribute, scope: Scope) -> str:
    """`x.__frozen` inside a class body or its methods is `x._FrozenDict__frozen`, as CPython
    mangles private names (`hasattr(self, "__frozen")`, a string, is not: diffusers relies on it)."""
    name = node.attr.value
    if not name.startswith("__") or name.endswith("__"):
        return name
    owner = _enclosing_class_name(node, scope)
    stripped = owner.lstrip("_") if owner else ""
    return f"_{stripped}{name}" if stripped else name


def e_attribute(self: Evaluator, node: cst.Attribute, scope: Scope) -> Any:
    value = node.value
    obj = MISSING
    if type(value) is cst.Name:  # e_name's answer without its calls, where it is a plain read
        obj = scope.vars.get(value.value, MISSING)
        if obj is MISSING or type(obj) is LazyBinding:
            obj = outer_name(value.value, scope, self.builtins)
    if obj is MISSING:
        obj = self.eval(value, scope)
    prev = self.current_ref
    module = scope.module
    ref = module.refs.get(id(node))  # (SourceModule.refs)
    self.current_ref = ref if ref is not None else module.ref_of(node)
    name = node.attr.value
    try:
        return self.protocol.getattr(obj, name if name[:2] != "__" else self.attr_name(node, scope))
    finally:
        self.current_ref = prev


def eval_elements(self: Evaluator, elements: Any, scope: Scope) -> Any:
    out: list[Any] = []
    for el in elements:
        if type(el) is cst.StarredElement:
            v = self.eval(el.value, scope)
            items = self.list_of(v)
            if isinstance(items, Unknown):
                return _unknown_list(items)
            out.extend(items)
        else:
            out.append(self.eval(el.value, scope))
    if len(out) > MAX_SEQUENCE:
        raise BudgetExceeded("sequence too large", self.current_ref)
    return out


def e_set(self: Evaluator, node: cst.Set, scope: Scope) -> Any:
    items = self.eval_elements(node.elements, scope)
    try:
        return set(items)
    except TypeError:
        return self.unknown("unhashable set element", scope, node)


def e_dict(self: Evaluator, node: cst.Dict, scope: Scope) -> Any:
    out: dict[Any, Any] = {}
    for el in node.elements:
        if type(el) is cst.StarredDictElement:
            v = self.eval(el.value, scope)
            if isinstance(v, dict):
                out.update(v)
            else:
                return v if isinstance(v, Unknown) else self.unknown("** of a non-dict", scope, el)
        else:
            assert type(el) is cst.DictElement
            k = self.eval(el.key, scope)
            try:
                out[k] = self.eval(el.value, scope)
            except TypeError:
                return self.unknown("unhashable dict key", scope, el)
    return out


def e_ifexp(self: Evaluator, node: cst.IfExp, scope: Scope) -> Any:
    try:
        cond = self.truth(self.eval(node.test, scope))
    except Undecided as und:
        return Unknown(f"could not decide `... if ... else ...`: {und.unknown.reason}", self.ref(scope, node))
    return self.eval(node.body if cond else node.orelse, scope)


def e_namedexpr(self: Evaluator, node: cst.NamedExpr, scope: Scope) -> Any:
    v = self.eval(node.value, scope)
    self.assign(node.target, v, scope)
    return v


def e_yield(self: Evaluator, node: cst.Yield, scope: Scope) -> Any:
    s: Scope | None = scope
    while s is not None and s.yields is None:
        s = s.parent
    if s is None or s.yields is None:
        return None
    if isinstance(node.value, cst.From):
        v = self.eval(node.value.item, scope)
        items = self.list_of(v)
        if isinstance(items, Unknown):
            s.yields.append(items)
        else:
            s.yields.extend(items)
    elif node.value is not None:
        s.yields.append(self.eval(node.value, scope))
    else:
        s.yields.append(None)
    return None


def _comprehension(self: Evaluator, node: Any, scope: Scope, emit: Callable[[Scope], None]) -> Unknown | None:
    inner = Scope({}, scope, scope.globals, scope.module)
    inner.func = scope.func
    inner.self_value = scope.self_value
    try:
        _run_for_in(self, node.for_in, scope, inner, emit)
    except Undecided as und:
        return Unknown(f"comprehension over unknown values: {und.unknown.reason}", self.ref(scope, node))
    return None


def _run_for_in(self: Evaluator, f: cst.CompFor, s: Scope, inner: Scope, emit: Callable[[Scope], None]) -> None:
    """One `for ... in ... if ...` of a comprehension, and the ones inside it. (A function of its
    own, not a closure calling itself: that closure would be a reference cycle holding what the
    comprehension built, left to the cyclic collector instead of freed when dropped.)"""
    src = self.eval(f.iter, s)
    for item in self.iterate(src):
        self.charge()
        self.assign(f.target, item, inner)
        ok = True
        for cond in f.ifs:
            if not self.truth(self.eval(cond.test, inner)):
                ok = False
                break
        if not ok:
            continue
        if f.inner_for_in is not None:
            _run_for_in(self, f.inner_for_in, inner, inner, emit)
        else:
            emit(inner)


def e_listcomp(self: Evaluator, node: cst.ListComp | cst.GeneratorExp, scope: Scope) -> Any:
    out: list[Any] = []
    bad = _comprehension(self, node, scope, lambda s: out.append(self.eval(node.elt, s)))
    if bad is not None:
        return _unknown_list(bad)
    if len(out) > MAX_SEQUENCE:
        raise BudgetExceeded("comprehension too large", self.current_ref)
    return out


def e_setcomp(self: Evaluator, node: cst.SetComp, scope: Scope) -> Any:
    out: list[Any] = []
    bad = _comprehension(self, node, scope, lambda s: out.append(self.eval(node.elt, s)))
    if bad is not None:
        return bad
    try:
        return set(out)
    except TypeError:
        return self.unknown("unhashable set element", scope, node)


def e_dictcomp(self: Evaluator, node: cst.DictComp, scope: Scope) -> Any:
    out: dict[Any, Any] = {}

    def emit(s: Scope) -> None:
        out[self.eval(node.key, s)] = self.eval(node.value, s)

    try:
        bad = _comprehension(self, node, scope, emit)
    except TypeError:
        return self.unknown("unhashable dict key", scope, node)
    return bad if bad is not None else out


def e_subscript(self: Evaluator, node: cst.Subscript, scope: Scope) -> Any:
    obj = self.eval(node.value, scope)
    idx = self.eval_slice(node.slice, scope)
    prev = self.current_ref
    self.current_ref = self.ref(scope, node)
    try:
        return self.protocol.getitem(obj, idx)
    finally:
        self.current_ref = prev


def eval_slice(self: Evaluator, elements: Any, scope: Scope) -> Any:
    vals = []
    for el in elements:
        s = el.slice
        if type(s) is cst.Index:
            if s.star is not None:
                v = self.eval(s.value, scope)
                items = self.list_of(v)
                vals.extend(items if isinstance(items, list) else [items])
                continue
            vals.append(self.eval(s.value, scope))
        else:
            lower = self.eval(s.lower, scope) if s.lower is not None else None
            upper = self.eval(s.upper, scope) if s.upper is not None else None
            step = self.eval(s.step, scope) if s.step is not None else None
            vals.append(slice(lower, upper, step))
    if len(elements) == 1 and not (type(elements[0].slice) is cst.Index and elements[0].slice.star):
        return vals[0]
    return tuple(vals)
