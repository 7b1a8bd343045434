"""Definitions: `import` (lazily bound at module level), `def` and `lambda` (FunctionValue),
decorators (known ones transform; registering ones run; others are the identity) and `class`
(bases, body, `__set_name__`, metaclass, `__init_subclass__`). Bound as methods of `Evaluator`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine import reads
from vramlint.engine.code_facts import dotted_name, is_registering_decorator, is_registering_factory
from vramlint.engine.deferred import defer_class
from vramlint.engine.eval_base import Scope
from vramlint.engine.exports import Export, registering_decorators, scan_exports
from vramlint.engine.registrations import defer
from vramlint.engine.signals import RaiseSignal, Undecided
from vramlint.engine.values import (
    MISSING,
    ClassMethod,
    ClassValue,
    FunctionValue,
    Instance,
    LazyBinding,
    ModuleValue,
    NativeFunction,
    Property,
    StaticMethod,
    Unknown,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


def _assumed_identity(value: Any) -> Any:
    if isinstance(value, FunctionValue):
        value.wrapped = True
    return value


def s_import(self: Evaluator, node: cst.Import, scope: Scope) -> None:
    lazy = scope.parent is None and not scope.is_class
    for alias in node.names:
        dotted = dotted_name(alias.name)
        ref = self.ref(scope, alias)  # a failed import is reported here
        if alias.asname is not None:
            name = alias.asname.name.value  # type: ignore[union-attr]
            value: Any = _lazy(self, partial(self.loader.import_module, dotted, ref), lazy)
        else:
            name = dotted.split(".")[0]
            value = _lazy(self, partial(self.loader.import_top, dotted, ref), lazy)
        self.bind(name, value, scope)


def s_importfrom(self: Evaluator, node: cst.ImportFrom, scope: Scope) -> None:
    level = len(node.relative)
    modname = dotted_name(node.module) if node.module is not None else ""
    base = scope.module.name
    package = base if scope.module.path.endswith("__init__.py") else base.rpartition(".")[0]
    if level:
        parts = package.split(".") if package else []
        if level - 1 > len(parts):
            self.record(self.unknown("relative import beyond the top package", scope, node))
            return
        anchor = ".".join(parts[: len(parts) - (level - 1)])
        full = f"{anchor}.{modname}" if modname and anchor else (modname or anchor)
    else:
        full = modname
    lazy = scope.parent is None and not scope.is_class
    if isinstance(node.names, cst.ImportStar):
        exports = scan_exports(self.loader, full) if lazy else None
        decorators = registering_decorators(self.loader, full) if exports is not None else {}
        if exports is not None and decorators:
            # It fills a registry (and its __all__) as it runs: it must run now, unless a frontend
            # declares the registry lazy (its names are then read from its source).
            path, _ = self.loader.find_module_file(full)
            text = self.loader.read_text(path)[0] if path is not None else None
            registered = defer(self.loader, full, decorators, text) if text is not None else None
            if registered is None:
                exports = None
            else:
                # What a reader finds depends on every pending module's source, as when all ran:
                # each is an import of this module for the persistent cache (engine/reads.py).
                reads.note_import(scope.module.path, path)
                known = {e.name for e in exports}
                exports = [*exports, *(Export(n, full, n) for n in registered if n not in known)]
        if exports is not None:
            for e in exports:
                if e.module == scope.module.name:
                    continue  # a cycle of star imports handing this module's own names back
                ref = self.ref(scope, node)
                self.bind(e.name, LazyBinding(partial(self.loader.import_from, e.module, e.attr, ref)), scope)
            return
        mod = self.loader.import_module(full, self.ref(scope, node))
        if isinstance(mod, ModuleValue):
            for k in self.loader.star_names(mod):
                scope.vars[k] = mod.ns[k] if k in mod.ns else self.protocol.getattr(mod, k)
        return
    for alias in node.names:
        attr = str(alias.name.value)  # type: ignore[union-attr]
        name = str(alias.asname.name.value) if alias.asname is not None else attr  # type: ignore[union-attr]
        ref = self.ref(scope, alias)
        value = _lazy(self, partial(self.loader.import_from, full, attr, ref), lazy)
        self.bind(name, value, scope)


def _lazy(self: Evaluator, fn: Callable[[], Any], lazy: bool) -> Any:
    return LazyBinding(fn) if lazy else fn()


def force(self: Evaluator, binding: LazyBinding) -> Any:
    if not binding.done:
        if binding.in_progress:
            return Unknown("circular import", self.current_ref)
        binding.in_progress = True
        try:
            binding.value = binding.resolve()
            binding.done = True
        finally:
            binding.in_progress = False
    return binding.value


def s_functiondef(self: Evaluator, node: cst.FunctionDef, scope: Scope) -> None:
    func = self.make_function(node, node.name.value, scope)
    value: Any = func
    if self.loader.function_rules:
        rule = self.loader.function_rules.get(f"{func.module.name}.{func.qualname}")
        if rule is not None:
            value = rule(self, func)
    for dec in reversed(node.decorators):
        value = self.apply_decorator(dec.decorator, value, scope)
    self.bind(node.name.value, value, scope)


def make_function(self: Evaluator, node: cst.FunctionDef | cst.Lambda, name: str, scope: Scope) -> FunctionValue:
    defaults: dict[str, Any] = {}
    params = node.params
    for p in (*params.posonly_params, *params.params, *params.kwonly_params):
        if p.default is not None:
            defaults[p.name.value] = self.eval(p.default, scope)
    # A function's own scope is a closure even when its parent is None (a top-level
    # function's scope has none): only the module scope is not.
    closure = scope if scope.parent is not None or scope.is_class or scope.func is not None else None
    # Class bodies are not closures in Python: skip them.
    while closure is not None and closure.is_class:
        closure = closure.parent
    qual = name
    if scope.func is not None:
        qual = f"{scope.func.qualname}.<locals>.{name}"
    elif scope.is_class:
        qual = f"{scope.vars.get('__qualname__', '?')}.{name}"
    return FunctionValue(node, name, qual, scope.module, closure, defaults, scope.globals)


def apply_decorator(self: Evaluator, expr: cst.BaseExpression, value: Any, scope: Scope) -> Any:
    """Known decorators transform; any other is taken as the identity (and not evaluated:
    registries and legacy-argument wrappers would only blur what the function builds)."""
    head = expr.func if type(expr) is cst.Call else expr
    if type(head) is cst.Name and self.loader.decorator_rules:
        rule = self.loader.decorator_rules.get(_import_origin(self, head.value, scope) or "")
        if getattr(rule, "unevaluated", False):
            # A decorator a frontend knows does nothing the analysis sees (transformers'
            # auto_docstring, whose module is 4,700 lines): known by where its name is imported
            # from, so that neither it nor its module is evaluated.
            return _assumed_identity(value)
    try:
        dec = self.eval(head, scope)
    except (RaiseSignal, Undecided):
        return _assumed_identity(value)
    if isinstance(dec, FunctionValue) and type(expr) is not cst.Call:
        # A library's decorator with a rule (frontends): what it does to the function.
        rule = self.loader.decorator_rules.get(f"{dec.module.name}.{dec.qualname}")
        if rule is not None:
            return rule(self, value)
    if isinstance(dec, NativeFunction) and dec.decorator is not None:
        if type(expr) is cst.Call:
            args, kwargs = self.eval_args(expr.args, scope)
            return dec.decorator(self, value, args, kwargs)
        return dec.decorator(self, value, (), {})
    if isinstance(dec, FunctionValue) and is_registering_decorator(dec.node):
        # `@register_model`: it records the function in a registry (timm's factories, their
        # pretrained configs) and returns it unchanged. Run it, so that what reads the
        # registry later (`create_model("resnet50")`) finds what the real run would.
        if type(expr) is not cst.Call:
            _register(self, dec, value)
        return value
    if isinstance(dec, FunctionValue) and type(expr) is cst.Call and is_registering_factory(dec.node):
        # `@register_model()` (torchvision): the call makes the registering decorator.
        try:
            args, kwargs = self.eval_args(expr.args, scope)
            inner = self.call(dec, args, kwargs)
        except (RaiseSignal, Undecided):
            inner = None
        if isinstance(inner, FunctionValue):
            _register(self, inner, value)
        return value
    if isinstance(dec, ClassValue) and dec.native is not None and hasattr(dec.native, "decorate"):
        return dec.native.decorate(self, value)
    if isinstance(dec, ClassValue) and type(expr) is not cst.Call and dec.lookup("__get__")[0] is not MISSING:
        # A descriptor class used as a decorator (`@classproperty`): the class attribute holds
        # what it makes of the function.
        return self.protocol.instantiate(dec, (value,), {})
    return _assumed_identity(value)


def _import_origin(self: Evaluator, name: str, scope: Scope) -> str | None:
    """`module.attr` that `name` is imported from (Loader.import_origin), when it is bound by a
    module-level import not yet resolved; else None (it is then evaluated as usual)."""
    if scope.func is not None:
        return None  # a function's names may be its own or its closure's
    v = scope.vars[name] if name in scope.vars else scope.globals.get(name)
    target = self.loader.pending_import(v)
    return None if target is None else self.loader.import_origin(*target)


def _register(self: Evaluator, dec: FunctionValue, value: Any) -> None:
    sink: list[Unknown] = []
    self.issue_sinks.append(sink)
    try:
        self.call(dec, (value,), {})
    except (RaiseSignal, Undecided):
        pass  # as if the decorator were the identity (the policy for every other decorator)
    finally:
        self.issue_sinks.pop()
    for u in sink:
        self.record(u)


def s_classdef(self: Evaluator, node: cst.ClassDef, scope: Scope) -> None:
    if scope.parent is None and not scope.is_class and scope.func is None and defer_class(self, node, scope):
        return  # an imported module's class that costs a package to define waits for its use (engine/deferred.py)
    self.define_class(node, scope)


def define_class(self: Evaluator, node: cst.ClassDef, scope: Scope) -> None:
    bases: list[ClassValue] = []
    for arg in node.bases:
        b = self.eval(arg.value, scope)
        if isinstance(b, ClassValue):
            bases.append(b)
        elif isinstance(b, Unknown):
            self.record(Unknown(f"base class of {node.name.value} is unknown: {b.reason}", self.ref(scope, arg)))
            bases.append(self.loader.unknown_base)
    if not bases:
        bases = [self.builtins["object"]]
    qual = node.name.value
    if scope.is_class:
        qual = f"{scope.vars.get('__qualname__', '?')}.{qual}"
    elif scope.func is not None:
        qual = f"{scope.func.qualname}.<locals>.{qual}"
    ns: dict[str, Any] = {"__qualname__": qual, "__module__": scope.module.name}
    body_scope = Scope(ns, scope, scope.globals, scope.module, is_class=True)
    body_scope.func = scope.func
    self.exec_block(node.body, body_scope)
    ref = self.ref(scope, node)
    if isinstance(ns.get("__init_subclass__"), FunctionValue):
        ns["__init_subclass__"] = ClassMethod(ns["__init_subclass__"])  # implicit, as in type.__new__
    cls = ClassValue(node.name.value, tuple(bases), ns, scope.module.name, qual, ref)
    for v in ns.values():
        f = v.func if isinstance(v, (StaticMethod, ClassMethod)) else v
        if isinstance(v, Property):
            f = v.fget
        if isinstance(f, FunctionValue) and f.owner is None:
            f.owner = cls
    for b in cls.mro[1:]:
        hook = getattr(b.native, "init_subclass", None) if b.native is not None else None
        if hook is not None:
            hook(self, cls)
            break
    _set_names(self, cls)
    _metaclass(self, cls, node, scope)
    _init_subclass(self, cls, node, scope)
    value: Any = cls
    if self.loader.function_rules:  # a library class a frontend replaces (Accelerate's Accelerator)
        rule = self.loader.function_rules.get(f"{scope.module.name}.{qual}")
        if rule is not None:
            value = rule(self, cls)
    for dec in reversed(node.decorators):
        value = self.apply_decorator(dec.decorator, value, scope)
    self.bind(node.name.value, value, scope)


def _set_names(self: Evaluator, cls: ClassValue) -> None:
    """`__set_name__(owner, name)` of each class attribute that defines it, as type.__new__ calls it."""
    for name, v in list(cls.ns.items()):
        if isinstance(v, Instance):
            hook, _ = v.cls.lookup("__set_name__")
            if isinstance(hook, FunctionValue):
                try:
                    self.call(hook, (v, cls, name), {})
                except RaiseSignal as sig:
                    self.record(self.exception_unknown(sig, None, None))


def _metaclass(self: Evaluator, cls: ClassValue, node: cst.ClassDef, scope: Scope) -> None:
    """`metaclass=Meta` of analysed source: calls of the class go through Meta.__call__
    (Protocol.instantiate, which also says when Meta's `__new__`/`__init__` were not run)."""
    expr = next((kw.value for kw in node.keywords if kw.keyword is not None and kw.keyword.value == "metaclass"), None)
    if expr is None:
        return
    meta = self.eval(expr, scope)
    if not isinstance(meta, ClassValue) or meta.native is not None or meta.module_name in ("abc", "typing"):
        return  # type, ABCMeta and other natives: nothing of analysed code runs
    cls.ns["__vramlint_metaclass__"] = meta


def _init_subclass(self: Evaluator, cls: ClassValue, node: cst.ClassDef, scope: Scope) -> None:
    """Call the nearest `__init_subclass__` of analysed source among the bases, with the
    class statement's keywords (`class A(Base, flag=True)`), as `type.__new__` does."""
    hook: Any = None
    for k in cls.mro[1:]:
        if "__init_subclass__" in k.ns:
            hook = k.ns["__init_subclass__"]
            break
    if not (isinstance(hook, ClassMethod) and isinstance(hook.func, FunctionValue)):
        return
    kwargs = {kw.keyword.value: self.eval(kw.value, scope) for kw in node.keywords
              if kw.keyword is not None and kw.keyword.value != "metaclass"}
    try:
        self.call(hook.func, (cls,), kwargs)
    except RaiseSignal as sig:
        self.record(self.exception_unknown(sig, scope, node))
