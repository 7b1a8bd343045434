"""Calls: evaluating arguments, dispatching on what is called (analysed functions, natives,
classes, partials), binding parameters as CPython does (its TypeErrors included), running a
function body (generators run eagerly), and iteration (`iterate`, `list_of`). Bound as methods
of `Evaluator`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.code_facts import contains_yield
from vramlint.engine.eval_base import (
    DICT_VIEWS,
    INTERNAL_ERRORS,
    MAX_CALL_DEPTH,
    MAX_SEQUENCE,
    Scope,
)
from vramlint.engine.eval_expressions import outer_name
from vramlint.engine.signals import BudgetExceeded, ReturnSignal, Undecided
from vramlint.engine.values import (
    MISSING,
    BoundMethod,
    ClassValue,
    FunctionValue,
    LazyBinding,
    ModuleValue,
    NativeFunction,
    Partial,
    StaticMethod,
    SubclassedDict,
    SuperValue,
    Unknown,
    UnknownValueError,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


class _StarUnknown:
    """Marks `*args` whose contents are unknown inside a positional argument list."""

    __slots__ = ("unknown",)

    def __init__(self, unknown: Unknown) -> None:
        self.unknown = unknown


def _first_given(*vals: Any) -> Any:
    """The first value that is not None, else None (without asking any value's truth)."""
    for v in vals:
        if v is not None:
            return v
    return None


def _is_static(func: FunctionValue) -> bool:
    owner = func.owner
    if owner is None:
        return False
    raw = owner.ns.get(func.name)
    return isinstance(raw, StaticMethod)


def _generator(yields: list[Any]) -> Any:
    """A generator function's result (its body ran eagerly): an iterator over what it yielded,
    so `next(gen)` advances and a later `list(gen)` gets the rest, as with a real generator."""
    from vramlint.engine.builtins import _IterValue

    return _IterValue(yields)


def e_call(self: Evaluator, node: cst.Call, scope: Scope) -> Any:
    callee = node.func
    # A called name is most often a global (a class, `nn`'s function) or builtin (`len`): e_name's
    # answer without its calls, where it is a plain read.
    func = outer_name(callee.value, scope, self.builtins) if type(callee) is cst.Name else MISSING
    if func is MISSING:
        func = self.eval(callee, scope)
    if not node.args and isinstance(func, NativeFunction) and func.name in ("super", "locals"):
        return _no_argument_native(self, func, scope, node)
    args, kwargs = self.eval_args(node.args, scope)
    prev = self.current_ref
    module = scope.module
    ref = module.refs.get(id(node))  # (SourceModule.refs)
    self.current_ref = ref if ref is not None else module.ref_of(node)
    try:
        return self.call(func, args, kwargs)
    finally:
        self.current_ref = prev


def _no_argument_native(self: Evaluator, func: NativeFunction, scope: Scope, node: cst.Call) -> Any:
    """`super()` and `locals()`, which read the running scope."""
    if func.name == "super":
        # Zero-argument super(): the class owning the running function and its first argument.
        owner = scope.func.owner if scope.func is not None else None
        s: Scope | None = scope
        while s is not None and s.self_value is MISSING:
            s = s.parent
        obj = s.self_value if s is not None else MISSING
        if owner is None or obj is MISSING:
            return self.unknown("super() outside a method", scope, node)
        return SuperValue(owner, obj)
    # A snapshot of the running scope's variables, as CPython's locals() in a function.
    return {k: v for k, v in scope.vars.items() if type(v) is not LazyBinding}


def eval_args(self: Evaluator, cargs: Any, scope: Scope) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for a in cargs:
        value = a.value
        if not a.star and type(value) is cst.Name:
            # A variable, global or builtin (most arguments): what eval gives, without its calls.
            v = scope.vars.get(value.value, MISSING)
            if v is MISSING or type(v) is LazyBinding:
                v = outer_name(value.value, scope, self.builtins)
                if v is MISSING:
                    v = self.eval(value, scope)
            if a.keyword is not None:
                kwargs[a.keyword.value] = v
            else:
                args.append(v)
        elif a.keyword is not None:
            kwargs[a.keyword.value] = self.eval(value, scope)
        elif a.star == "*":
            v = self.eval(a.value, scope)
            items = self.list_of(v)
            if isinstance(items, Unknown):
                args.append(_StarUnknown(items))
            else:
                args.extend(items)
        elif a.star == "**":
            v = self.eval(a.value, scope)
            if isinstance(v, dict):
                for k, x in v.items():
                    if isinstance(k, str):
                        kwargs[k] = x
            else:
                kwargs["**"] = v if isinstance(v, Unknown) else Unknown("** of a non-dict", self.ref(scope, a))
        else:
            args.append(self.eval(a.value, scope))
    return tuple(args), kwargs


def call(self: Evaluator, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = self.budget  # self.charge(), inline (see Evaluator.exec_stmt)
    b.steps += 1
    if b.steps > b.limit:
        self.charge(0)  # raises BudgetExceeded
    a = self.analysis
    a.steps += 1
    if a.steps >= a.next_check:
        self.charge(0)
    try:
        t = type(func)
        # The common kinds by exact type first (one test, not the isinstance chain below, which
        # answers the same for them): a method's call, a class's instantiation (34k per
        # torchvision run).
        if t is FunctionValue:
            return self.call_function(func, args, kwargs)
        if t is BoundMethod:
            return self.call(func.func, (func.self_value, *args), kwargs)
        if t is ClassValue:
            return self.protocol.instantiate(func, args, kwargs)
        if isinstance(func, FunctionValue):
            return self.call_function(func, args, kwargs)
        if isinstance(func, BoundMethod):
            return self.call(func.func, (func.self_value, *args), kwargs)
        if isinstance(func, NativeFunction):
            for x in args:  # (a loop, not a generator: this runs on every native call)
                if type(x) is _StarUnknown:
                    # `f(*unknown)`: a native cannot bind positions it does not know (nn.Sequential(*blocks)
                    # with `blocks` unknown): its result, and what it would have built, are unknown.
                    self.record(x.unknown)
                    return x.unknown
            if self.tape is not None and func.name.startswith(self.taped_prefixes):
                seen = args if func.receiver is None else (func.receiver, *args)
                return self.tape.call(self, func.name, seen, kwargs, lambda: func.impl(self, args, kwargs))
            return func.impl(self, args, kwargs)
        if isinstance(func, ClassValue):
            return self.protocol.instantiate(func, args, kwargs)
        if isinstance(func, Partial):
            return self.call(func.func, (*func.args, *args), {**func.kwargs, **kwargs})
        if isinstance(func, Unknown):
            return func
        return self.protocol.call_object(func, args, kwargs)
    except UnknownValueError as err:  # a rule needed the value of an Unknown: the result is unknown
        return err.unknown
    except INTERNAL_ERRORS as err:
        return self.internal_error(err, self.current_ref)


def call_function(self: Evaluator, func: FunctionValue, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if func.cached:
        key = _memo_key(self, func, args, kwargs)
        if key is not None:
            memos = self.memos
            if key in memos:
                return memos[key]
            result = _run_function(self, func, args, kwargs)
            memos[key] = result  # (not when it raised: Python's cache keeps no exception)
            return result
    return _run_function(self, func, args, kwargs)


_PLAIN = (int, float, str, bytes, bool, type(None))


def _memo_key(self: Evaluator, func: FunctionValue, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """The cache key of a call of an `lru_cache`d function, as Python's (the arguments, keywords in
    their order), when every argument is plain data or a class, function or module (hashed as
    Python hashes them); else None: the call runs. Not while a forward is traced (a result made in
    one trace is not in the next one's memory), nor for a function whose module notes what is
    read of it (the language server's analysed file, analysis/reuse.py: a cached call would hide
    its reads)."""
    if self.tape is not None or type(func.globals) is not dict:
        return None
    for v in (*args, *kwargs.values()):
        if not _plain(v):
            return None
    return (func, args, tuple(kwargs.items()))


def _plain(v: Any) -> bool:
    if type(v) in _PLAIN or type(v) in (ClassValue, FunctionValue, ModuleValue):
        return True
    return type(v) is tuple and all(_plain(x) for x in v)


def _run_function(self: Evaluator, func: FunctionValue, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if self.depth >= MAX_CALL_DEPTH:
        raise BudgetExceeded(f"call depth over {MAX_CALL_DEPTH} (unbounded recursion?) in {func.qualname}", self.current_ref)
    scope = Scope({}, func.closure, func.globals, func.module)
    scope.func = func
    self.bind_params(func, args, kwargs, scope)
    if self.constructions.depth:
        self.constructions.log.append(func)  # what a remembered construction ran reads names
    node = func.node
    if isinstance(node, cst.Lambda):
        self.depth += 1
        try:
            return self.eval(node.body, scope)
        finally:
            self.depth -= 1
    if func.is_generator is None:
        func.is_generator = contains_yield(node.body, func.module.node_cache, func.module.text)
    if func.is_generator:
        scope.yields = []
    self.depth += 1
    try:
        self.exec_block(node.body, scope)
    except ReturnSignal as ret:
        if scope.yields is not None:
            return _generator(scope.yields)
        return ret.value
    finally:
        self.depth -= 1
    return _generator(scope.yields) if scope.yields is not None else None


def bind_params(self: Evaluator, func: FunctionValue, args: tuple[Any, ...], kwargs: dict[str, Any], scope: Scope) -> None:
    params = func.node.params
    v = scope.vars
    # (No generator, list or copy for the common call: this runs for every call of a function.)
    positional = params.params if not params.posonly_params else (*params.posonly_params, *params.params)
    star_unknown = None
    if _StarUnknown in map(type, args):
        star_unknown = next(a.unknown for a in args if type(a) is _StarUnknown)
        args = tuple(a for a in args if type(a) is not _StarUnknown)
    spread_unknown = None
    if kwargs:
        kwargs = dict(kwargs)
        spread_unknown = kwargs.pop("**", None)
    i = 0
    n = len(args)
    for p in positional:
        name = p.name.value
        if i < n:
            v[name] = args[i]
            i += 1
        elif name in kwargs and p not in params.posonly_params:
            v[name] = kwargs.pop(name)
        elif name in func.defaults:
            v[name] = func.defaults[name]
        else:
            v[name] = _first_given(star_unknown, spread_unknown, Unknown(
                f"required argument `{name}` of {func.qualname}() has no known value", self.current_ref
            ))
    extra = args[i:]
    if type(params.star_arg) is cst.Param:
        v[params.star_arg.name.value] = tuple(extra) if star_unknown is None else star_unknown
    for p in params.kwonly_params:
        name = p.name.value
        if name in kwargs:
            v[name] = kwargs.pop(name)
        elif name in func.defaults:
            v[name] = func.defaults[name]
        else:
            v[name] = _first_given(spread_unknown, Unknown(
                f"required argument `{name}` of {func.qualname}() has no known value", self.current_ref
            ))
    if params.star_kwarg is not None:
        # (its own dict: the caller's is copied above only when it has keywords)
        v[params.star_kwarg.name.value] = spread_unknown if spread_unknown is not None and not kwargs else (kwargs or {})
    elif kwargs and not func.wrapped:
        # CPython's TypeError (`Block(64, qk_scale=None)` where Block takes no qk_scale):
        # accepting it would count a model the real call never builds.
        name = next(iter(kwargs))
        bound = any(p.name.value == name for p in positional[:i])
        raise self.raise_error("TypeError", f"{func.qualname}() got multiple values for argument '{name}'" if bound
                               else f"{func.qualname}() got an unexpected keyword argument '{name}'")
    if extra and type(params.star_arg) is not cst.Param and not func.wrapped:
        raise self.raise_error("TypeError", f"{func.qualname}() takes {len(positional)} positional arguments "
                                            f"but {len(args)} were given")
    if positional and not (isinstance(func.owner, ClassValue) and _is_static(func)):
        scope.self_value = v.get(positional[0].name.value, MISSING)


def iterate(self: Evaluator, v: Any) -> Iterator[Any]:
    """Elements of an iterable, each charged to the budget. Raises Undecided if unknown."""
    if isinstance(v, Unknown):
        raise Undecided(v)
    if isinstance(v, (list, tuple, range, str, bytes)):
        return iter(v)
    user = self.user_dict_dunder(v, "__iter__")
    if user is not None:  # a dict subclass that iterates over something else than its keys
        items = self.list_of(self.call(user, (), {}))
        if isinstance(items, Unknown):
            raise Undecided(items)
        return iter(items)
    if isinstance(v, dict):
        return iter(list(v.keys()))
    if isinstance(v, (set, frozenset, *DICT_VIEWS)):
        return iter(list(v))  # type: ignore[call-overload]  # isinstance with a tuple of view types
    items = self.protocol.iterate(v)
    if isinstance(items, Unknown):
        raise Undecided(items)
    return iter(items)


def user_dict_dunder(self: Evaluator, v: Any, name: str) -> Any:
    """The analysed code's own `name` method of a dict subclass's instance, bound; None when
    `v` is no such instance or the class keeps dict's (a SubclassedDict is a real dict,
    which the native dict operations would otherwise serve, ignoring the override)."""
    if not isinstance(v, SubclassedDict) or v.cls is None:
        return None
    fn, _ = v.cls.lookup(name)
    return BoundMethod(v, fn) if isinstance(fn, FunctionValue) else None


def list_of(self: Evaluator, v: Any, limit: int = MAX_SEQUENCE) -> Any:
    """A Python list of the elements of `v`, or an Unknown."""
    if isinstance(v, list):
        return v
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, range):
        if len(v) > limit:
            return Unknown("range too large to enumerate", self.current_ref)
        self.charge(len(v) // 64)
        return list(v)
    try:
        out = []
        for x in self.iterate(v):
            self.charge()
            out.append(x)
            if len(out) > limit:
                return Unknown("sequence too large", self.current_ref)
        return out
    except Undecided as und:
        return und.unknown
