"""Python's builtins and the small part of the standard library that model code uses.

Each is a native stand-in computing on known values and returning Unknown otherwise. Standard
library modules not listed here import as Unknown (they are never read from CPython's source).
"""

from __future__ import annotations

import builtins as _py
import collections
import itertools
import keyword
import math
import operator
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from vramlint.engine.evaluator import MAX_INT_BITS, MAX_SEQUENCE, any_unknown, contains_unknown
from vramlint.engine.signals import Undecided
from vramlint.engine.values import (
    MISSING,
    Args,
    BoundMethod,
    ClassMethod,
    ClassValue,
    Deque,
    EvalDefaultDict,
    ExceptionValue,
    FunctionValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    NTuple,
    Partial,
    Property,
    StaticMethod,
    SubclassedDict,
    Unknown,
    UnknownData,
    Value,
    as_data,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader



def pure(name: str, fn: Callable[..., Any], max_arg: int | None = None) -> NativeFunction:
    """A native for a Python function of plain values: Unknown in, Unknown out; errors raise."""

    def impl(ev: Evaluator, args: Args, kwargs: Kwargs) -> Any:
        u = any_unknown(args, tuple(kwargs.values()))
        if u is not None:
            return u
        if any(isinstance(a, Value) for a in args):
            return Unknown(f"{name}() of an abstract value", ev.current_ref)
        if max_arg is not None and any(isinstance(a, int) and a > max_arg for a in args):
            return Unknown(f"{name}() argument too large", ev.current_ref)
        try:
            r = fn(*args, **kwargs)
        except (ValueError, TypeError, OverflowError, ZeroDivisionError) as err:
            raise ev.raise_error(type(err).__name__, str(err)) from None
        if isinstance(r, int) and not isinstance(r, bool) and r.bit_length() > MAX_INT_BITS:
            return Unknown("number too large", ev.current_ref)
        return r

    return NativeFunction(name, impl)


class BuiltinType:
    """Native payload of builtin classes (int, list, ValueError...)."""

    def __init__(self, pytype: type, construct: Callable[..., Any] | None = None) -> None:
        self.pytype = pytype
        self.construct = construct


class _InstanceCheck:
    """Native payload of abstract classes checked by behaviour (Sequence, Callable...)."""

    def __init__(self, check: Callable[[Evaluator, Any], Any]) -> None:
        self.instancecheck = check


def _to_number(ev: Evaluator, v: Any, kind: type) -> Any:
    if isinstance(v, Unknown):
        return v
    if isinstance(v, (int, float, str, bool)):
        try:
            return kind(v)
        except (ValueError, OverflowError) as err:
            raise ev.raise_error("ValueError", str(err)) from None
    if isinstance(v, Instance):
        dn = {int: "__int__", float: "__float__"}[kind]
        fn, _ = v.cls.lookup(dn)
        if fn is not MISSING:
            return ev.call(ev.protocol.bind_descriptor(fn, v.cls, v), (), {})
        if kind is int:
            fn, _ = v.cls.lookup("__index__")
            if fn is not MISSING:
                return ev.call(ev.protocol.bind_descriptor(fn, v.cls, v), (), {})
    if isinstance(v, Value) and hasattr(v, "to_python"):
        py = v.to_python(ev)
        return py if isinstance(py, Unknown) else _to_number(ev, py, kind)
    return Unknown(f"{kind.__name__}() of a {getattr(v, 'type_name', type(v).__name__)}", ev.current_ref)


def _to_str(ev: Evaluator, v: Any) -> Any:
    if isinstance(v, Unknown):
        return v
    if isinstance(v, (int, float, str, bool, type(None))):
        return str(v)
    u = contains_unknown(v)
    if u is not None:
        return u
    if isinstance(v, (list, tuple, dict, set, frozenset, ClassValue)):
        return _repr_value(ev, v)
    if isinstance(v, Value) and hasattr(v, "to_str"):
        return v.to_str()
    if isinstance(v, Instance):
        for dn in ("__str__", "__repr__"):
            fn, _ = v.cls.lookup(dn)
            if isinstance(fn, FunctionValue):
                return ev.call(ev.protocol.bind_descriptor(fn, v.cls, v), (), {})
    return Unknown("str() of an object", ev.current_ref)


def _add_class_level_methods(types: dict[type, ClassValue]) -> None:
    """`str.lower`, `dict.get`... reached through the class (`map(str.strip, xs)`), and
    `dict.fromkeys`."""
    from vramlint.engine.protocol import _NATIVE_METHODS, _native_method

    def unbound(pytype: type, name: str) -> NativeFunction:
        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            if not a:
                raise ev.raise_error("TypeError", f"{pytype.__name__}.{name}() needs an argument")
            if isinstance(a[0], Unknown):
                return a[0]
            if not isinstance(a[0], pytype):
                return Unknown(f"{pytype.__name__}.{name}() of a {type(a[0]).__name__}", ev.current_ref)
            return _native_method(a[0], name)(ev, a[1:], k)

        return NativeFunction(f"{pytype.__name__}.{name}", impl)

    for pytype, names in _NATIVE_METHODS.items():
        cls = types.get(pytype)
        if cls is not None:
            for name in names:
                cls.ns.setdefault(name, unbound(pytype, name))

    def fromkeys(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        keys = ev.list_of(a[1]) if len(a) > 1 else []
        if isinstance(keys, Unknown):
            return keys
        try:
            return dict.fromkeys(keys, a[2] if len(a) > 2 else None)
        except TypeError:
            return Unknown("unhashable key in dict.fromkeys", ev.current_ref)

    types[dict].ns["fromkeys"] = ClassMethod(NativeFunction("dict.fromkeys", fromkeys))


def _repr_value(ev: Evaluator, v: Any, depth: int = 0) -> Any:
    """repr() of plain data, classes and objects with a `__repr__` of analysed source; Unknown
    for anything whose repr Python would make up (an address)."""
    if isinstance(v, (int, float, str, bool, bytes, type(None))):
        return repr(v)
    if isinstance(v, Unknown):
        return v
    if isinstance(v, ClassValue):
        return f"<class '{v.qualname}'>" if v.module_name == "builtins" else f"<class '{v.module_name}.{v.qualname}'>"
    if isinstance(v, Instance):
        fn, _ = v.cls.lookup("__repr__")
        if isinstance(fn, FunctionValue):
            return ev.call(ev.protocol.bind_descriptor(fn, v.cls, v), (), {})
        return Unknown("repr() of an object", ev.current_ref)
    if depth > 20 or not isinstance(v, (list, tuple, dict, set, frozenset)) or isinstance(v, NTuple):
        return Unknown("repr() of an object", ev.current_ref)
    ev.charge(len(v))
    parts: list[str] = []
    for x in (v.items() if isinstance(v, dict) else v):
        items = x if isinstance(v, dict) else (x,)
        strs = [_repr_value(ev, y, depth + 1) for y in items]
        bad = next((y for y in strs if not isinstance(y, str)), None)
        if bad is not None:
            return bad
        parts.append(": ".join(strs))
    body = ", ".join(parts)
    if isinstance(v, list):
        return f"[{body}]"
    if isinstance(v, tuple):
        return f"({body},)" if len(parts) == 1 else f"({body})"
    if isinstance(v, dict):
        return f"{{{body}}}"
    if not parts:
        return "set()" if isinstance(v, set) else "frozenset()"
    return f"{{{body}}}" if isinstance(v, set) else f"frozenset({{{body}}})"


def make_builtins(loader: Loader) -> dict[str, Any]:
    """Python's builtins for one loader: the classes, the constants, then the functions, each a
    module-level function of this file made into a fresh NativeFunction. (The functions reach
    the loader as `ev.loader`: `loader` is the same object.)"""
    b: dict[str, Any] = {}
    types = _builtin_classes(b)
    types[Partial] = PARTIAL
    b["__types__"] = types
    b.update(_CONSTANTS)
    b.update(_builtin_functions())
    b["property"] = ClassValue("property", (b["object"],), {"__get__": NativeFunction("property.__get__", _property_get)},
                               "builtins", native=_PropertyType(lambda: b["property"]))
    return b


_CONSTANTS: dict[str, Any] = {
    "None": None, "True": True, "False": False, "NotImplemented": NotImplemented, "Ellipsis": Ellipsis,
    "__debug__": True, "__name__": "builtins",
}

# The builtin exceptions below Exception, each with its parent.
_EXCEPTION_TREE = {
    "ArithmeticError": "Exception", "ZeroDivisionError": "ArithmeticError", "OverflowError": "ArithmeticError",
    "LookupError": "Exception", "KeyError": "LookupError", "IndexError": "LookupError",
    "ValueError": "Exception", "TypeError": "Exception", "AttributeError": "Exception",
    "NameError": "Exception", "RuntimeError": "Exception", "NotImplementedError": "RuntimeError",
    "RecursionError": "RuntimeError", "AssertionError": "Exception", "ImportError": "Exception",
    "ModuleNotFoundError": "ImportError", "StopIteration": "Exception", "OSError": "Exception",
    "FileNotFoundError": "OSError", "UnicodeError": "ValueError", "Warning": "Exception",
    "UserWarning": "Warning", "DeprecationWarning": "Warning", "FutureWarning": "Warning",
    "RuntimeWarning": "Warning", "KeyboardInterrupt": "BaseException", "SystemExit": "BaseException",
}


def _add_class(b: dict[str, Any], types: dict[type, ClassValue], name: str, pytype: type | None,
               bases: tuple[ClassValue, ...], construct: Any = None, ns: dict[str, Any] | None = None) -> ClassValue:
    """A builtin class, put in `b` under its name and in `types` under the Python type it models."""
    payload = BuiltinType(pytype, construct) if pytype is not None else None
    c = ClassValue(name, bases, ns or {}, "builtins", native=payload)
    if pytype is not None:
        types[pytype] = c
    b[name] = c
    return c


def _builtin_classes(b: dict[str, Any]) -> dict[type, ClassValue]:
    """object, the plain-data types, type, the exceptions (added to `b`); returns the ClassValue
    of each Python type the evaluator meets (`type(x)`, `isinstance`)."""
    types: dict[type, ClassValue] = {}
    klass = partial(_add_class, b, types)
    obj = klass("object", object, (), None, {
        "__init__": NativeFunction("object.__init__", lambda ev, a, k: None),
        "__init_subclass__": NativeFunction("object.__init_subclass__", lambda ev, a, k: None),
        # The defaults that `super().__getattribute__(...)` / `super().__setattr__(...)` reach.
        "__getattribute__": NativeFunction("object.__getattribute__", lambda ev, a, k: ev.protocol.generic_getattr(a[0], a[1])),
        "__setattr__": NativeFunction("object.__setattr__", lambda ev, a, k: ev.protocol.generic_setattr(a[0], a[1], a[2])),
    })
    # `object` itself must not construct natively, or every user class would.
    obj.native = None
    types[object] = obj
    klass("int", int, (obj,), _data(_construct_int))
    klass("bool", bool, (b["int"],), _data(_construct_bool))
    klass("float", float, (obj,), _data(_construct_float))
    klass("complex", complex, (obj,), lambda ev, c, a, k: pure("complex", complex).impl(ev, a, k))
    klass("str", str, (obj,), _data(_construct_str))
    klass("bytes", bytes, (obj,), lambda ev, c, a, k: Unknown("bytes()", ev.current_ref))
    klass("list", list, (obj,), _construct_seq(list))
    klass("tuple", tuple, (obj,), _construct_seq(tuple))
    klass("set", set, (obj,), _construct_seq(set))
    klass("frozenset", frozenset, (obj,), _construct_seq(frozenset))
    dict_ns = {"__init__": NativeFunction("dict.__init__", _dict_init),
               "__getitem__": NativeFunction("dict.__getitem__", _dict_getitem),
               "__setitem__": NativeFunction("dict.__setitem__", _dict_setitem)}
    klass("dict", dict, (obj,), _subclassable(_construct_dict, lambda: b["dict"]), dict_ns)
    odict = ClassValue("OrderedDict", (b["dict"],), {}, "collections",
                       native=BuiltinType(collections.OrderedDict, _subclassable(_construct_odict, lambda: odict)))
    types[collections.OrderedDict] = odict
    klass("range", range, (obj,), _construct_range)
    klass("slice", slice, (obj,), _construct_slice)
    _add_class_level_methods(types)
    klass("type", type, (obj,), _construct_type, {
        # What `super().__call__(*args)` in a metaclass's own __call__ reaches: make the instance.
        "__call__": NativeFunction("type.__call__", lambda ev, a, k: ev.protocol.instantiate(a[0], a[1:], k, meta=False)),
    })
    types[type(None)] = ClassValue("NoneType", (obj,), {}, "builtins", native=BuiltinType(type(None), lambda ev, c, a, k: None))
    types[type(Ellipsis)] = ClassValue("ellipsis", (obj,), {}, "builtins")
    # The classes of the evaluator's own callables, for `f.__class__` / `type(f)`.
    types[FunctionValue] = ClassValue("function", (obj,), {}, "builtins")
    types[NativeFunction] = ClassValue("builtin_function_or_method", (obj,), {}, "builtins")
    types[BoundMethod] = ClassValue("method", (obj,), {}, "builtins")

    base_exc = klass("BaseException", BaseException, (obj,), _construct_exception,
                     {"__init__": NativeFunction("BaseException.__init__", _exception_init)})
    klass("Exception", Exception, (base_exc,), _construct_exception)
    for name, parent in _EXCEPTION_TREE.items():
        klass(name, getattr(_py, name), (b[parent],), _construct_exception)
    return types


def _builtin_functions() -> dict[str, NativeFunction]:
    """The builtin functions, made afresh for each loader (in the order Python's builtins had
    them here before: the table is copied into the loader's builtins as it is)."""
    return {
        "len": NativeFunction("len", _len),
        "isinstance": NativeFunction("isinstance", _isinstance),
        "issubclass": NativeFunction("issubclass", _issubclass),
        "hasattr": NativeFunction("hasattr", _hasattr),
        "getattr": NativeFunction("getattr", _getattr),
        "setattr": NativeFunction("setattr", _setattr),
        "delattr": NativeFunction("delattr", _delattr),
        "callable": NativeFunction("callable", _callable),
        "super": NativeFunction("super", lambda ev, a, k: _super(ev, a)),
        "print": NativeFunction("print", lambda ev, a, k: None),
        "id": NativeFunction("id", lambda ev, a, k: id(a[0])),
        "hash": pure("hash", hash),
        "abs": NativeFunction("abs", lambda ev, a, k: _numeric_unary(ev, a[0], abs, "__abs__")),
        "round": pure("round", round),
        "divmod": pure("divmod", divmod),
        "pow": NativeFunction("pow", lambda ev, a, k: _pow(ev, a)),
        "chr": pure("chr", chr),
        "ord": pure("ord", ord),
        "hex": pure("hex", hex),
        "bin": pure("bin", bin),
        "format": pure("format", format),
        "repr": NativeFunction("repr", lambda ev, a, k: _repr(ev, a[0])),
        "ascii": pure("ascii", ascii),
        "vars": NativeFunction("vars", lambda ev, a, k: a[0].attrs if a and isinstance(a[0], Instance) else Unknown("vars()", ev.current_ref)),
        "dir": NativeFunction("dir", _dir),
        "globals": NativeFunction("globals", lambda ev, a, k: Unknown("globals()", ev.current_ref)),
        "locals": NativeFunction("locals", lambda ev, a, k: Unknown("locals()", ev.current_ref)),
        "open": NativeFunction("open", _open),
        "input": NativeFunction("input", lambda ev, a, k: Unknown("input()", ev.current_ref)),
        "eval": NativeFunction("eval", lambda ev, a, k: Unknown("eval() is not evaluated", ev.current_ref)),
        "exec": NativeFunction("exec", lambda ev, a, k: Unknown("exec() is not evaluated", ev.current_ref)),
        "__import__": NativeFunction("__import__", _import),
        "iter": NativeFunction("iter", _iter),
        "next": NativeFunction("next", _next),
        "zip": NativeFunction("zip", _zip),
        "enumerate": NativeFunction("enumerate", lambda ev, a, k: _enumerate(ev, a, k)),
        "reversed": _seq_fn("reversed", lambda ev, ls, k: list(reversed(ls[0]))),
        "sorted": NativeFunction("sorted", lambda ev, a, k: _sorted(ev, a, k)),
        "sum": NativeFunction("sum", lambda ev, a, k: _sum(ev, a)),
        "min": NativeFunction("min", lambda ev, a, k: _minmax(ev, a, k, min)),
        "max": NativeFunction("max", lambda ev, a, k: _minmax(ev, a, k, max)),
        "any": NativeFunction("any", lambda ev, a, k: _anyall(ev, a[0], True)),
        "all": NativeFunction("all", lambda ev, a, k: _anyall(ev, a[0], False)),
        "map": NativeFunction("map", lambda ev, a, k: _map(ev, a)),
        "filter": NativeFunction("filter", lambda ev, a, k: _filter(ev, a)),
        "staticmethod": NativeFunction("staticmethod", lambda ev, a, k: StaticMethod(a[0]),
                                       lambda ev, v, a, k: StaticMethod(v)),
        "classmethod": NativeFunction("classmethod", lambda ev, a, k: ClassMethod(a[0]),
                                      lambda ev, v, a, k: ClassMethod(v)),
    }


# ------------------------------------------------------------------ construction of the builtin classes

def _construct_int(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    if not a:
        return 0
    if len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], int):
        try:
            return int(a[0], a[1])
        except ValueError as err:
            raise ev.raise_error("ValueError", str(err)) from None
    return _to_number(ev, a[0], int)


def _construct_float(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    return _to_number(ev, a[0], float) if a else 0.0


def _construct_bool(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    if not a:
        return False
    try:
        return ev.truth(a[0])
    except Undecided as und:
        return und.unknown


def _construct_str(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    return _to_str(ev, a[0]) if a else ""


def _construct_seq(kind: type) -> Callable[..., Any]:
    def construct(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        if not a:
            return kind()
        items = ev.list_of(a[0])
        if isinstance(items, Unknown):
            return items
        try:
            return kind(items)
        except TypeError:
            return Unknown(f"unhashable element in {kind.__name__}()", ev.current_ref)

    return construct


def _construct_dict(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    out: dict[Any, Any] = {}
    if a:
        src = a[0]
        if isinstance(src, dict):
            out.update(src)
        else:
            items = ev.list_of(src)
            if isinstance(items, Unknown):
                return items
            for pair in items:
                p = ev.list_of(pair)
                if isinstance(p, Unknown) or len(p) != 2:
                    return Unknown("dict() of non-pairs", ev.current_ref)
                out[p[0]] = p[1]
    out.update(k)
    return out


def _construct_odict(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    d = _construct_dict(ev, cls, a, k)
    return collections.OrderedDict(d) if isinstance(d, dict) else d


def _subclassable(base: Callable[..., Any], builtin: Callable[[], ClassValue]) -> Callable[..., Any]:
    def construct(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        if cls is builtin():
            return base(ev, cls, a, k)
        d = base(ev, cls, (), {})
        out = SubclassedDict(d)
        out.cls = cls
        init, owner = cls.lookup("__init__")
        if init is not MISSING and owner is not None and not isinstance(owner.native, BuiltinType):
            ev.call(ev.protocol.bind_descriptor(init, cls, out), a, k)
        elif a or k:
            out.update(base(ev, cls, a, k))
        return out

    return construct


def _construct_range(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    u = contains_unknown(a)
    if u is not None:
        return u
    bad = next((x for x in a if isinstance(x, (float, str))), None)
    if bad is not None:  # range() takes indices, not numbers: `range(1e9)` is Python's TypeError
        raise ev.raise_error("TypeError", f"'{type(bad).__name__}' object cannot be interpreted as an integer")
    a = tuple(_to_number(ev, x, int) if not isinstance(x, int) else x for x in a)
    u = contains_unknown(a)
    if u is not None:
        return u
    try:
        return range(*a)
    except (TypeError, ValueError) as err:
        raise ev.raise_error("TypeError", str(err)) from None


def _construct_slice(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    return slice(*a)


def _construct_type(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    if len(a) == 1:
        return ev.protocol.type_of(a[0])
    if len(a) == 3 and isinstance(a[0], str) and isinstance(a[2], dict):
        bases = tuple(x for x in ev.list_of(a[1]) if isinstance(x, ClassValue)) or (ev.builtins["object"],)
        return ClassValue(a[0], bases, dict(a[2]), "<dynamic>")
    return Unknown("type() call", ev.current_ref)


def _construct_exception(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
    exc = ExceptionValue(cls, a)
    # A user exception's own __init__ runs (it may keep attributes: `self.width = w`).
    init, _ = cls.lookup("__init__")
    if isinstance(init, FunctionValue):
        ev.call(BoundMethod(exc, init), a, k)
    return exc


def _exception_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    if a and isinstance(a[0], ExceptionValue):
        a[0].args = tuple(a[1:])
    return None


def _data(construct: Callable[..., Any]) -> Callable[..., Any]:
    """int(), bool(), float(), str() of an unknown: still unknown, but never a module."""
    def wrapped(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        r = construct(ev, cls, a, k)
        return as_data(r) if isinstance(r, Unknown) else r
    return wrapped


def _dict_getitem(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    try:
        return dict.__getitem__(a[0], a[1])
    except KeyError:
        raise ev.raise_error("KeyError", repr(a[1])) from None
    except TypeError:
        return Unknown("unhashable key", ev.current_ref)


def _dict_setitem(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    try:
        dict.__setitem__(a[0], a[1], a[2])
    except TypeError:
        ev.record(Unknown("unhashable key", ev.current_ref))
    return None


def _dict_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    d = _construct_dict(ev, ev.builtins["dict"], a[1:], k)
    if isinstance(d, dict):
        dict.update(a[0], d)
    return None


# ------------------------------------------------------------------ the builtin functions
def _open(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    from vramlint.engine.script_inputs import builtin_open

    return builtin_open(ev, a, k)


def _len(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    n = ev.protocol.length(a[0])
    return as_data(n) if isinstance(n, Unknown) else n


def _isinstance(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return isinstance_of(ev, a[0], a[1])


def _issubclass(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    c, want = a[0], a[1]
    if isinstance(c, Unknown):
        return c
    if not isinstance(c, ClassValue):
        if c is None or isinstance(c, (bool, int, float, str, bytes, tuple, list, dict, Instance, FunctionValue)):
            raise ev.raise_error("TypeError", "issubclass() arg 1 must be a class")
        return Unknown("issubclass() of a non-class", ev.current_ref)
    wants = want if isinstance(want, tuple) else (want,)
    for w in wants:
        if isinstance(w, Unknown):
            return w
        if isinstance(w, ClassValue) and c.is_subclass_of(w):
            return True
    return False


def _hasattr(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    from vramlint.engine.signals import RaiseSignal

    try:
        v = ev.protocol.getattr(a[0], a[1])
    except RaiseSignal:
        return False
    if isinstance(v, Unknown) and not isinstance(a[0], Unknown):
        return v
    return not isinstance(v, Unknown) or v


def _getattr(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    if isinstance(a[1], Unknown):
        return a[1]
    if len(a) > 2:
        from vramlint.engine.signals import RaiseSignal

        try:
            return ev.protocol.getattr(a[0], a[1], a[2])
        except RaiseSignal as sig:  # e.g. a property whose getter raises AttributeError
            if ev.protocol.is_exception(sig, "AttributeError"):
                return a[2]
            raise
    return ev.protocol.getattr(a[0], a[1])


def _setattr(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    if isinstance(a[1], Unknown):
        ev.record(a[1])
        return None
    ev.protocol.setattr(a[0], a[1], a[2])
    return None


def _delattr(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    if isinstance(a[1], str):
        ev.protocol.delattr(a[0], a[1])
    return None


def _callable(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    v = a[0]
    if isinstance(v, Unknown):
        return v
    if isinstance(v, (FunctionValue, NativeFunction, ClassValue, BoundMethod, Partial)):
        return True
    if isinstance(v, Instance):
        return v.cls.lookup("__call__")[0] is not MISSING
    return False


def _super(ev: Evaluator, a: Args) -> Any:
    from vramlint.engine.values import SuperValue

    if len(a) == 2 and isinstance(a[0], ClassValue):
        return SuperValue(a[0], a[1])
    return Unknown("super() form", ev.current_ref)


def _import(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return ev.loader.import_top(a[0]) if a and isinstance(a[0], str) else Unknown("__import__", ev.current_ref)


def _iter(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    items = ev.list_of(a[0])
    return items if isinstance(items, Unknown) else _IterValue(items)


def _next(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    it = a[0]
    if isinstance(it, EndlessIterator):  # itertools.count / cycle: `ids = count(); next(ids)`
        v = it.advance(ev)
        if v is not MISSING:
            return v
        it = ()
    if isinstance(it, _IterValue):
        if it.pos < len(it.items):
            it.pos += 1
            return it.items[it.pos - 1]
        if len(a) > 1:
            return a[1]
        raise ev.raise_error("StopIteration", "")
    items = ev.list_of(it)
    if isinstance(items, Unknown):
        return items
    if items:
        return items[0]
    if len(a) > 1:
        return a[1]
    raise ev.raise_error("StopIteration", "")


def _lists_of(ev: Evaluator, a: Args) -> list[list[Any]] | Unknown:
    """Each argument as a list (iterated as Python would), or the first that cannot be."""
    out = []
    for x in a:
        items = ev.list_of(x)
        if isinstance(items, Unknown):
            return items
        out.append(items)
    return out


def _seq_fn(name: str, fn: Callable[..., Any]) -> NativeFunction:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        lists = _lists_of(ev, a)
        return lists if isinstance(lists, Unknown) else fn(ev, lists, k)

    return NativeFunction(name, impl)




class _PropertyType:
    """`property` as a class: `@property` and `property(f)` make a Property; a subclass
    (transformers' `class classproperty(property)` with its own `__get__`) makes an instance
    holding `fget`/`fset`, a descriptor like any other."""

    def __init__(self, builtin: Callable[[], ClassValue]) -> None:
        self.builtin = builtin

    def construct(self, ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        fget = a[0] if a else k.get("fget")
        fset = a[1] if len(a) > 1 else k.get("fset")
        if cls is self.builtin():
            return Property(fget, fset)
        inst = Instance(cls)
        inst.attrs.update(fget=fget, fset=fset, fdel=a[2] if len(a) > 2 else k.get("fdel"), __doc__=None)
        init, owner = cls.lookup("__init__")
        if owner is not None and owner.native is None and init is not MISSING:
            ev.call(ev.protocol.bind_descriptor(init, cls, inst), a, k)
        return inst

    def decorate(self, ev: Evaluator, value: Any) -> Any:
        return Property(value)

    def instancecheck(self, ev: Evaluator, v: Any) -> Any:
        return isinstance(v, Property) or (isinstance(v, Instance) and v.cls.is_subclass_of(self.builtin()))


def _property_get(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """property.__get__(self, obj, objtype): the getter's value on an instance, else itself."""
    desc, obj = a[0], a[1] if len(a) > 1 else None
    if obj is None:
        return desc
    fget = desc.attrs.get("fget") if isinstance(desc, Instance) else getattr(desc, "fget", None)
    return ev.call(fget, (obj,), {})


class _IterValue(Value):
    __slots__ = ("items", "pos")
    type_name = "iterator"

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.pos = 0

    def iterate(self, ev: Evaluator) -> list[Any]:
        rest = self.items[self.pos:]
        self.pos = len(self.items)
        return rest


def isinstance_of(ev: Evaluator, v: Any, want: Any) -> Any:
    if isinstance(want, Unknown):
        return want
    wants = want if isinstance(want, tuple) else (want,)
    t = ev.protocol.type_of(v)
    result: Any = False
    for w in wants:
        if isinstance(w, tuple):
            r = isinstance_of(ev, v, w)
        elif isinstance(w, ClassValue):
            check = getattr(w.native, "instancecheck", None) if w.native is not None else None
            if check is not None:
                # A subclass of the ABC (class Registry(MutableMapping)) is an instance by inheritance.
                r = True if isinstance(t, ClassValue) and t.is_subclass_of(w) else check(ev, v)
            elif isinstance(t, Unknown):
                r = t
            else:
                r = t.is_subclass_of(w)
        elif isinstance(w, Unknown):
            r = w
        else:
            r = False
        if r is True:
            return True
        if isinstance(r, Unknown):
            result = r
    return result


def _numeric_unary(ev: Evaluator, v: Any, fn: Callable[[Any], Any], dunder: str) -> Any:
    if isinstance(v, (int, float, complex)):
        return fn(v)
    if isinstance(v, Unknown):
        return v
    if isinstance(v, Value) and hasattr(v, "unary"):
        return v.unary(ev, dunder)
    return Unknown(f"{dunder} of an abstract value", ev.current_ref)


def _pow(ev: Evaluator, a: Args) -> Any:
    import libcst as cst

    if len(a) == 2:
        return ev.binop(cst.Power, a[0], a[1])
    return pure("pow", pow).impl(ev, a, {})


def _repr(ev: Evaluator, v: Any) -> Any:
    if isinstance(v, (int, float, str, bool, type(None), list, tuple, dict, set, frozenset, ClassValue)):
        return _repr_value(ev, v)
    return _to_str(ev, v)


def _enumerate(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    items = ev.list_of(a[0])
    if isinstance(items, Unknown):
        return items
    start = a[1] if len(a) > 1 else k.get("start", 0)
    if isinstance(start, Unknown):
        return start
    return [(i + start, x) for i, x in enumerate(items)]


def _sorted(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    items = ev.list_of(a[0])
    if isinstance(items, Unknown):
        return items
    u = contains_unknown(items)
    if u is not None:
        return u
    key = k.get("key")
    try:
        if key is None:
            return sorted(items, reverse=bool(k.get("reverse", False)))
        keys = [ev.call(key, (x,), {}) for x in items]
        u = contains_unknown(keys)
        if u is not None:
            return u
        order = sorted(range(len(items)), key=lambda i: keys[i], reverse=bool(k.get("reverse", False)))
        return [items[i] for i in order]
    except TypeError as err:
        raise ev.raise_error("TypeError", str(err)) from None


def _sum(ev: Evaluator, a: Args) -> Any:
    import libcst as cst

    items = ev.list_of(a[0])
    if isinstance(items, Unknown):
        return items
    total: Any = a[1] if len(a) > 1 else 0
    for x in items:
        total = ev.binop(cst.Add, total, x)
    return total


def _minmax(ev: Evaluator, a: Args, k: Kwargs, fn: Callable[..., Any]) -> Any:
    items = ev.list_of(a[0]) if len(a) == 1 else list(a)
    if isinstance(items, Unknown):
        return items
    u = contains_unknown(items)
    if u is not None:
        return u
    if not items:
        if "default" in k:
            return k["default"]
        raise ev.raise_error("ValueError", f"{fn.__name__}() arg is an empty sequence")
    key = k.get("key")
    if key is not None:
        keys = [ev.call(key, (x,), {}) for x in items]
        u = contains_unknown(keys)
        if u is not None:
            return u
        best = fn(range(len(items)), key=lambda i: keys[i])
        return items[best]
    if not all(isinstance(x, (int, float, str, tuple)) for x in items):
        return Unknown(f"{fn.__name__}() of abstract values", ev.current_ref)
    try:
        return fn(items)
    except TypeError as err:
        raise ev.raise_error("TypeError", str(err)) from None


def _anyall(ev: Evaluator, it: Any, is_any: bool) -> Any:
    items = ev.list_of(it)
    if isinstance(items, Unknown):
        return items
    pending: Any = None
    for x in items:
        try:
            t = ev.truth(x)
        except Undecided as und:
            pending = und.unknown
            continue
        if t == is_any:
            return is_any
    return pending if pending is not None else (not is_any)


def _map(ev: Evaluator, a: Args) -> Any:
    lists = []
    for x in a[1:]:
        items = ev.list_of(x)
        if isinstance(items, Unknown):
            return items
        lists.append(items)
    return [ev.call(a[0], tuple(t), {}) for t in zip(*lists)]


def _filter(ev: Evaluator, a: Args) -> Any:
    items = ev.list_of(a[1])
    if isinstance(items, Unknown):
        return items
    out = []
    for x in items:
        keep = x if a[0] is None else ev.call(a[0], (x,), {})
        try:
            if ev.truth(keep):
                out.append(x)
        except Undecided as und:
            return und.unknown
    return out


# ---------------------------------------------------------------------- standard library stubs
# What every object and every class written in Python list besides their own names.
_OBJECT_NAMES = frozenset(dir(object))
_CLASS_NAMES = _OBJECT_NAMES | {"__dict__", "__module__", "__weakref__"}
_MODULE_NAMES = frozenset({"__builtins__", "__cached__", "__doc__", "__file__", "__loader__", "__name__",
                           "__package__", "__spec__"})


class NativeDir(Value):
    """dir() of a native module (torch.nn.functional): its full list is not known, but a name
    vramlint models is certainly in it (`'silu' in dir(F)`, timm's feature checks)."""

    __slots__ = ("module",)
    type_name = "list"

    def __init__(self, module: ModuleValue) -> None:
        self.module = module

    def contains(self, ev: Evaluator, item: Any) -> Any:
        if isinstance(item, Unknown):
            return item
        if isinstance(item, str):
            v = ev.protocol.getattr(self.module, item, MISSING)
            if v is not MISSING and not isinstance(v, Unknown):
                return True
        return UnknownData(f"dir() of native module `{self.module.name}` (names vramlint does not model)",
                           ev.current_ref)


def _dir(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """dir(x) of analysed modules, classes and their instances. Objects with a native class
    (torch layers, builtins) list names vramlint does not model, so their dir() is unknown."""
    if len(a) != 1:
        return Unknown("dir() without an argument", ev.current_ref)
    x = a[0]
    if isinstance(x, ModuleValue) and x.source is not None:
        return sorted(set(x.ns) | _MODULE_NAMES)
    if isinstance(x, ModuleValue):
        return NativeDir(x)
    cls = x if isinstance(x, ClassValue) else x.cls if isinstance(x, Instance) else None
    if cls is None or any(c.native is not None and c.name != "object" for c in cls.mro):
        what = cls.name if cls is not None else getattr(x, "type_name", type(x).__name__)
        return Unknown(f"dir() of {what} is not modelled", ev.current_ref)
    names = set(_CLASS_NAMES)
    for c in cls.mro:
        names.update(c.ns)
    if isinstance(x, Instance):
        names.update(x.attrs)
    return sorted(names)


def _module(name: str, ns: dict[str, Any], fallback: str | None = None) -> ModuleValue:
    def hook(attr: str) -> Any:
        if fallback in ("noop", "chain"):
            return NoOp(f"{name}.{attr}", chain=fallback == "chain")
        return Unknown(f"`{name}.{attr}` is not modelled", None)

    return ModuleValue(name, ns, getattr_hook=hook)


class NoOp(Value):
    """A value whose attributes and calls do nothing (logging, warnings).

    With `chain`, calls return another such value (`logging.getLogger(...)` gives a logger whose
    methods do nothing); otherwise they return None."""

    __slots__ = ("name", "chain")
    type_name = "object"

    def __init__(self, name: str, chain: bool = False) -> None:
        self.name = name
        self.chain = chain

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        return NoOp(f"{self.name}.{name}", self.chain)

    def call(self, ev: Evaluator, args: Args, kwargs: Kwargs) -> Any:
        return NoOp(f"{self.name}()", True) if self.chain else None

    def enter(self, ev: Evaluator) -> Any:
        return None


def _bare_or_called(name: str, mark: Callable[[Evaluator, Any, Args, Kwargs], Any]) -> NativeFunction:
    """A decorator usable bare (`@cache`) or called (`@lru_cache(maxsize=None)`): either way
    `mark(ev, decorated, (), {})` gives what the definition binds."""
    called = NativeFunction(name, lambda ev, a, k: mark(ev, a[0], (), {}) if a else None, mark)

    def call(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        if len(a) == 1 and not k and isinstance(a[0], (FunctionValue, ClassValue)):
            return mark(ev, a[0], (), {})
        return called

    return NativeFunction(name, call, mark)


def _identity_decorator(name: str) -> NativeFunction:
    return _bare_or_called(name, lambda ev, v, a, k: v)


def _caching_decorator(name: str) -> NativeFunction:
    """`functools.lru_cache` / `cache`: the function is marked cached (FunctionValue.cached:
    eval_calls.call_function keeps its results per analysis)."""

    def mark(ev: Evaluator, v: Any, a: Args, k: Kwargs) -> Any:
        if isinstance(v, FunctionValue):
            v.cached = True
            v.attrs.setdefault("cache_clear", NativeFunction(f"{v.qualname}.cache_clear", lambda ev, a, k: _forget(ev, v)))
        return v

    return _bare_or_called(name, mark)


def _forget(ev: Evaluator, func: FunctionValue) -> None:
    for key in [key for key in ev.memos if key[0] is func]:
        del ev.memos[key]


def stdlib_module(loader: Loader, name: str) -> ModuleValue | None:
    b = loader.builtins
    if name == "math":
        ns: dict[str, Any] = {k: getattr(math, k) for k in ("pi", "e", "inf", "nan", "tau")}
        for fn in ("sqrt", "ceil", "floor", "log", "log2", "log10", "log1p", "exp", "expm1", "pow", "isqrt",
                   "gcd", "lcm", "isfinite", "isinf", "isnan", "trunc", "fabs", "sin", "cos", "tan", "atan",
                   "atan2", "asin", "acos", "tanh", "hypot", "copysign", "fmod", "radians", "degrees", "erf",
                   "isclose", "modf", "frexp", "ldexp", "dist", "fsum"):
            ns[fn] = pure(f"math.{fn}", getattr(math, fn))
        ns["prod"] = NativeFunction("math.prod", lambda ev, a, k: _prod(ev, a, k))
        ns["comb"] = pure("math.comb", math.comb, max_arg=100_000)
        ns["perm"] = pure("math.perm", math.perm, max_arg=100_000)
        ns["factorial"] = pure("math.factorial", math.factorial, max_arg=5_000)
        return _module(name, ns)
    if name == "functools":
        return _module(name, {
            "partial": PARTIAL,
            "reduce": NativeFunction("functools.reduce", _reduce),
            "wraps": _identity_decorator("functools.wraps"),
            "lru_cache": _caching_decorator("functools.lru_cache"),
            "cache": _caching_decorator("functools.cache"),
            "total_ordering": _identity_decorator("functools.total_ordering"),
            "singledispatch": _identity_decorator("functools.singledispatch"),
            "cached_property": NativeFunction("functools.cached_property", lambda ev, a, k: Property(a[0]),
                                              lambda ev, v, a, k: Property(v)),
            "update_wrapper": NativeFunction("functools.update_wrapper", lambda ev, a, k: a[0]),
        })
    if name == "operator":
        ns = {}
        for fn in ("add", "sub", "mul", "truediv", "floordiv", "mod", "neg", "eq", "ne", "lt", "le", "gt", "ge",
                   "and_", "or_", "xor", "pow"):
            ns[fn] = _operator_fn(fn)
        ns["getitem"] = NativeFunction("operator.getitem", lambda ev, a, k: ev.protocol.getitem(a[0], a[1]))
        ns["itemgetter"] = NativeFunction("operator.itemgetter", lambda ev, a, k: NativeFunction(
            "itemgetter", lambda ev2, a2, k2: ev2.protocol.getitem(a2[0], a[0])))
        ns["attrgetter"] = NativeFunction("operator.attrgetter", lambda ev, a, k: NativeFunction(
            "attrgetter", lambda ev2, a2, k2: ev2.protocol.getattr(a2[0], a[0])))
        ns["index"] = NativeFunction("operator.index", lambda ev, a, k: _to_number(ev, a[0], int))
        return _module(name, ns)
    if name == "copy":
        return _module(name, {
            "deepcopy": NativeFunction("copy.deepcopy", lambda ev, a, k: ev.protocol.deepcopy(a[0])),
            "copy": NativeFunction("copy.copy", lambda ev, a, k: ev.protocol.shallowcopy(a[0])),
        })
    if name == "keyword":
        return _module(name, {"iskeyword": pure("keyword.iskeyword", keyword.iskeyword),
                              "issoftkeyword": pure("keyword.issoftkeyword", keyword.issoftkeyword),
                              "kwlist": list(keyword.kwlist), "softkwlist": list(keyword.softkwlist)})
    if name == "itertools":
        return _module(name, _itertools_ns())
    if name in ("collections", "collections.abc", "typing", "typing_extensions"):
        return _typing_like(loader, name)
    if name == "dataclasses":
        from vramlint.engine.dataclass_rules import dataclasses_module

        return dataclasses_module(loader)
    if name == "enum":
        from vramlint.engine.enums import enum_module

        return enum_module(loader)
    if name in ("warnings", "logging"):
        return _module(name, {}, fallback="chain" if name == "logging" else "noop")
    if name == "abc":
        abc = ClassValue("ABC", (b["object"],), {}, "abc")
        return _module(name, {"ABC": abc, "ABCMeta": b["type"], "abstractmethod": _identity_decorator("abc.abstractmethod")})
    if name == "sys":
        import sys

        from vramlint.engine.stdlib_runtime import SysModules

        impl = Instance(b["object"])
        impl.attrs.update({"name": sys.implementation.name, "version": tuple(sys.implementation.version)})
        return _module(name, {"version_info": tuple(sys.version_info), "maxsize": sys.maxsize,
                              "platform": Unknown("sys.platform depends on the machine", None),
                              "modules": SysModules(loader), "implementation": impl,
                              "argv": loader.script_inputs.sys_argv(),
                              "stdout": NoOp("sys.stdout"), "stderr": NoOp("sys.stderr")})
    if name in ("os", "os.path"):
        from vramlint.engine.stdlib_runtime import os_path_namespace

        path = _module("os.path", os_path_namespace())
        if name == "os.path":
            return path
        # The environment of `python train.py` in a shell where only the configured variables
        # (`environment` in [tool.vramlint]) are set: `os.environ.get("X", default)` is the default.
        # Each analysis starts from a fresh copy (Loader.fresh_environment): code may set variables.
        def getenv(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            key, default = (a[0] if a else k.get("key")), (a[1] if len(a) > 1 else k.get("default"))
            environ = os_module.ns.get("environ")
            if not isinstance(key, str) or not isinstance(environ, dict):
                return Unknown("os.getenv of a non-string", ev.current_ref)
            return environ.get(key, default)

        os_module = _module(name, {"environ": dict(loader.environment), "getenv": NativeFunction("os.getenv", getenv),
                                   "path": path, "sep": "/", "devnull": "/dev/null"})
        return os_module
    if name == "pkgutil":
        from vramlint.engine.stdlib_runtime import pkgutil_get_data

        return _module(name, {"get_data": NativeFunction("pkgutil.get_data", pkgutil_get_data)})
    if name == "pathlib":
        from vramlint.engine.stdlib_pathlib import pathlib_module

        return pathlib_module(loader)
    if name == "argparse":
        from vramlint.engine.stdlib_argparse import argparse_module

        return argparse_module(loader)
    if name in ("json", "tomllib", "tomli"):
        from vramlint.engine.script_inputs import json_module, tomllib_module

        return json_module(loader) if name == "json" else tomllib_module(loader, name)
    if name == "re":
        from vramlint.engine.stdlib_re import re_module

        return re_module(loader)
    if name.split(".")[0] == "importlib":
        from vramlint.engine.stdlib_runtime import import_system_module

        return import_system_module(loader, name)
    if name == "numbers":
        num = ClassValue("Number", (b["object"],), {}, "numbers", native=_InstanceCheck(
            lambda ev, v: isinstance(v, (int, float, complex)) or (v if isinstance(v, Unknown) else False)))
        integral = ClassValue("Integral", (num,), {}, "numbers", native=_InstanceCheck(
            lambda ev, v: isinstance(v, int) or (v if isinstance(v, Unknown) else False)))
        return _module(name, {"Number": num, "Real": num, "Integral": integral})
    if name == "types":
        from vramlint.engine.stdlib_runtime import module_type_class

        return _module(name, {
            "SimpleNamespace": _simple_namespace(b),
            "FunctionType": ClassValue("function", (b["object"],), {}, "types", native=_InstanceCheck(
                lambda ev, v: isinstance(v, FunctionValue))),
            "MethodType": ClassValue("method", (b["object"],), {}, "types", native=_InstanceCheck(
                lambda ev, v: isinstance(v, BoundMethod))),
            "ModuleType": module_type_class(loader),
        })
    if name == "contextlib":
        return _contextlib_module()
    if name == "inspect":
        from vramlint.engine.stdlib_runtime import inspect_additions

        return _module(name, {
            "isclass": NativeFunction("inspect.isclass", lambda ev, a, k: isinstance(a[0], ClassValue)),
            "isfunction": NativeFunction("inspect.isfunction", lambda ev, a, k: isinstance(a[0], FunctionValue)),
            **inspect_additions(),
        })
    return None


class _EnteredContext(Value):
    """What a `@contextmanager` function or `nullcontext(x)` returns: `with ... as v` binds `value`.

    Generators are evaluated eagerly, so the code after a `yield` has already run when the
    `with` body runs (harmless for the set-up/tear-down that model code does around layers)."""

    __slots__ = ("value",)
    type_name = "_GeneratorContextManager"

    def __init__(self, value: Any) -> None:
        self.value = value

    def enter(self, ev: Evaluator) -> Any:
        return self.value


def _contextlib_module() -> ModuleValue:
    # Without this, `@contextmanager` was the identity and `with f() as x` bound the list of
    # everything `f` yields.
    def contextmanager(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        fn = a[0]

        def call(ev2: Evaluator, a2: Args, k2: Kwargs) -> Any:
            yielded = ev2.list_of(ev2.call(fn, a2, k2))
            if isinstance(yielded, Unknown):
                return yielded
            return _EnteredContext(yielded[0] if yielded else None)

        return NativeFunction(getattr(fn, "name", "contextmanager"), call)

    return _module("contextlib", {
        "contextmanager": NativeFunction("contextlib.contextmanager", contextmanager,
                                         lambda ev, v, a, k: contextmanager(ev, (v,), {})),
        "nullcontext": NativeFunction("contextlib.nullcontext",
                                      lambda ev, a, k: _EnteredContext(a[0] if a else k.get("enter_result"))),
    })


def _prod(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    import libcst as cst

    items = ev.list_of(a[0])
    if isinstance(items, Unknown):
        return items
    total: Any = k.get("start", 1)
    for x in items:
        total = ev.binop(cst.Multiply, total, x)
    return total


def _reduce(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    items = ev.list_of(a[1])
    if isinstance(items, Unknown):
        return items
    if len(a) > 2:
        acc, rest = a[2], items
    elif items:
        acc, rest = items[0], items[1:]
    else:
        raise ev.raise_error("TypeError", "reduce() of empty iterable with no initial value")
    for x in rest:
        acc = ev.call(a[0], (acc, x), {})
    return acc


def _operator_fn(name: str) -> NativeFunction:
    import libcst as cst

    binops = {"add": cst.Add, "sub": cst.Subtract, "mul": cst.Multiply, "truediv": cst.Divide,
              "floordiv": cst.FloorDivide, "mod": cst.Modulo, "and_": cst.BitAnd, "or_": cst.BitOr,
              "xor": cst.BitXor, "pow": cst.Power}
    cmps = {"eq": cst.Equal, "ne": cst.NotEqual, "lt": cst.LessThan, "le": cst.LessThanEqual,
            "gt": cst.GreaterThan, "ge": cst.GreaterThanEqual}
    if name in binops:
        return NativeFunction(f"operator.{name}", lambda ev, a, k: ev.binop(binops[name], a[0], a[1]))
    if name in cmps:
        return NativeFunction(f"operator.{name}", lambda ev, a, k: ev.compare(cmps[name], a[0], a[1]))
    return NativeFunction(f"operator.{name}", lambda ev, a, k: _numeric_unary(ev, a[0], operator.neg, "__neg__"))


def _partial_impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    if not a:
        return Unknown("partial() without a function", ev.current_ref)
    f = a[0]
    if isinstance(f, Partial):  # partial of a partial flattens, as in CPython
        return Partial(f.func, (*f.args, *a[1:]), {**f.kwargs, **k})
    return Partial(f, tuple(a[1:]), dict(k))


PARTIAL = ClassValue("partial", (), {}, "functools", native=BuiltinType(Partial, lambda ev, c, a, k: _partial_impl(ev, a, k)))


class EndlessIterator(Value):
    """itertools.cycle / itertools.count: zip() and islice() take the part they need."""

    __slots__ = ("name", "items", "start", "step")
    type_name = "iterator"

    def __init__(self, name: str, items: list[Any] | None = None, start: Any = 0, step: Any = 1) -> None:
        self.name = name
        self.items = items
        self.start = start
        self.step = step

    def take(self, ev: Evaluator, n: int) -> Any:
        ev.charge(n)
        if self.items is not None:
            return [self.items[i % len(self.items)] for i in range(n)] if self.items else []
        import libcst as cst

        return [ev.binop(cst.Add, self.start, ev.binop(cst.Multiply, self.step, i)) for i in range(n)]

    def iterate(self, ev: Evaluator) -> Any:
        if self.items is not None and not self.items:
            return []
        return Unknown(f"iteration over an endless itertools.{self.name}", ev.current_ref)

    def advance(self, ev: Evaluator) -> Any:
        """`next(it)`: its first item, the iterator moved past it (MISSING: a cycle of nothing)."""
        if self.items is not None:
            if not self.items:
                return MISSING
            first = self.items[0]
            self.items = [*self.items[1:], first]
            return first
        import libcst as cst

        first = self.start
        self.start = ev.binop(cst.Add, self.start, self.step)
        return first


def _zip(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    lists: list[Any] = []
    for x in a:
        items = x if isinstance(x, EndlessIterator) else ev.list_of(x)
        if isinstance(items, Unknown):
            return items
        lists.append(items)
    finite = [len(x) for x in lists if isinstance(x, list)]
    if not finite and lists:
        return Unknown("zip() of endless iterators", ev.current_ref)
    n = min(finite, default=0)
    lists = [x.take(ev, n) if isinstance(x, EndlessIterator) else x for x in lists]
    return [tuple(t) for t in zip(*lists)]


def _itertools_ns() -> dict[str, Any]:
    def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            ls = _lists_of(ev, a)
            if isinstance(ls, Unknown):
                return ls
            out = []
            for item in fn(ls, k):
                ev.charge()
                out.append(item)
                if len(out) > MAX_SEQUENCE:
                    return Unknown("itertools result too large", ev.current_ref)
            return out

        return impl

    def _repeat(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        n = a[1] if len(a) > 1 else k.get("times")
        if not isinstance(n, int) or n > MAX_SEQUENCE:
            return Unknown("itertools.repeat without a small count", ev.current_ref)
        return [a[0]] * n

    def _islice(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        if isinstance(a[0], EndlessIterator):
            stop = a[2] if len(a) > 2 else (a[1] if len(a) > 1 else None)
            if not isinstance(stop, int) or stop > MAX_SEQUENCE:
                return Unknown("itertools.islice of an endless iterator without a small bound", ev.current_ref)
            return a[0].take(ev, stop)[slice(*a[1:])]
        items = ev.list_of(a[0])
        if isinstance(items, Unknown):
            return items
        return items[slice(*a[1:])]

    def _accumulate(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        import libcst as cst

        items = ev.list_of(a[0])
        if isinstance(items, Unknown):
            return items
        out: list[Any] = []
        acc: Any = k.get("initial", MISSING)
        if acc is not MISSING:
            out.append(acc)
        for x in items:
            acc = x if acc is MISSING else (ev.call(a[1], (acc, x), {}) if len(a) > 1 else ev.binop(cst.Add, acc, x))
            out.append(acc)
        return out

    return {
        "chain": NativeFunction("itertools.chain", guarded(lambda ls, k: itertools.chain(*ls))),
        "product": NativeFunction("itertools.product", guarded(lambda ls, k: itertools.product(*ls, repeat=k.get("repeat", 1)))),
        "combinations": NativeFunction("itertools.combinations", lambda ev, a, k: guarded(
            lambda ls, k2: itertools.combinations(ls[0], a[1]))(ev, a[:1], {})),
        "permutations": NativeFunction("itertools.permutations", lambda ev, a, k: guarded(
            lambda ls, k2: itertools.permutations(ls[0], *a[1:]))(ev, a[:1], {})),
        "zip_longest": NativeFunction("itertools.zip_longest", guarded(lambda ls, k: itertools.zip_longest(*ls, fillvalue=k.get("fillvalue")))),
        "pairwise": NativeFunction("itertools.pairwise", guarded(lambda ls, k: itertools.pairwise(ls[0]))),
        "repeat": NativeFunction("itertools.repeat", _repeat),
        "islice": NativeFunction("itertools.islice", _islice),
        "cycle": NativeFunction("itertools.cycle", lambda ev, a, k: _cycle(ev, a[0])),
        "count": NativeFunction("itertools.count", lambda ev, a, k: EndlessIterator(
            "count", None, a[0] if a else k.get("start", 0), a[1] if len(a) > 1 else k.get("step", 1))),
        "accumulate": NativeFunction("itertools.accumulate", _accumulate),
    }


def _cycle(ev: Evaluator, it: Any) -> Any:
    items = ev.list_of(it)
    return items if isinstance(items, Unknown) else EndlessIterator("cycle", items)


def _simple_namespace(b: dict[str, Any]) -> ClassValue:
    def construct(ev: Evaluator, cls: ClassValue, a: Args, k: Kwargs) -> Any:
        inst = Instance(cls)
        inst.attrs.update(k)
        return inst

    return ClassValue("SimpleNamespace", (b["object"],), {}, "types", native=BuiltinType(object, construct))


class TypingForm(Value):
    """typing.Optional, List[int], TypeVar('T')...: inert values usable in annotations."""

    __slots__ = ("name",)
    type_name = "typing"

    def __init__(self, name: str) -> None:
        self.name = name

    def getitem(self, ev: Evaluator, idx: Any) -> Any:
        return self

    def call(self, ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return TypingForm(self.name)

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        return TypingForm(f"{self.name}.{name}")

    def binop(self, ev: Evaluator, op: str, other: Any, reflected: bool) -> Any:
        return self


def _typing_like(loader: Loader, name: str) -> ModuleValue:
    b = loader.builtins
    obj = b["object"]

    def check(pred: Callable[[Evaluator, Any], Any]) -> Callable[[str], ClassValue]:
        return lambda n: ClassValue(n, (obj,), {"__class_getitem__": True}, name, native=_InstanceCheck(pred))

    def is_seq(ev: Evaluator, v: Any) -> Any:
        if isinstance(v, Unknown):
            return v
        if isinstance(v, (list, tuple, str, range, NTuple)):
            return True
        if isinstance(v, Instance):
            return v.cls.lookup("__getitem__")[0] is not MISSING and v.cls.lookup("__len__")[0] is not MISSING
        return False

    def is_iterable(ev: Evaluator, v: Any) -> Any:
        if isinstance(v, Unknown):
            return v
        if isinstance(v, (list, tuple, str, range, dict, set, frozenset, NTuple, _IterValue)):
            return True
        if isinstance(v, Instance):
            return v.cls.lookup("__iter__")[0] is not MISSING or ev.protocol.hook(v.cls, "iterate") is not None
        return False

    def is_mapping(ev: Evaluator, v: Any) -> Any:
        return v if isinstance(v, Unknown) else isinstance(v, dict)

    def is_callable(ev: Evaluator, v: Any) -> Any:
        return b["callable"].impl(ev, (v,), {})

    mapping = check(is_mapping)("Mapping")
    mapping.ns.update(_mapping_mixins(mutable=False))
    mutable_mapping = ClassValue("MutableMapping", (mapping,), {"__class_getitem__": True, **_mapping_mixins(mutable=True)},
                                 name, native=_InstanceCheck(is_mapping))
    abcs = {
        "Sequence": check(is_seq), "MutableSequence": check(is_seq), "Iterable": check(is_iterable),
        "Iterator": check(is_iterable), "Collection": check(is_iterable), "Mapping": lambda n: mapping,
        "MutableMapping": lambda n: mutable_mapping, "Callable": check(is_callable), "Sized": check(is_iterable),
        "Hashable": check(lambda ev, v: True), "Generator": check(is_iterable), "Container": check(is_iterable),
    }
    ns: dict[str, Any] = {}
    if name == "collections":
        ns["OrderedDict"] = loader.builtin_class_of(collections.OrderedDict())
        ns["namedtuple"] = NativeFunction("collections.namedtuple", _namedtuple_factory(loader))
        ns["defaultdict"] = NativeFunction("collections.defaultdict", _defaultdict)
        ns["Counter"] = NativeFunction("collections.Counter", lambda ev, a, k: _counter(ev, a))
        ns["deque"] = NativeFunction("collections.deque", _deque)
        ns["abc"] = LazyModuleRef(loader, "collections.abc")
        for k2, mk in abcs.items():
            ns[k2] = mk(k2)
        return _module(name, ns)
    for k2, mk in abcs.items():
        ns[k2] = mk(k2)
    if name == "collections.abc":
        return _module(name, ns)
    from vramlint.engine.dataclass_rules import namedtuple_base

    ns.update({
        # The static view, as type checkers take it: `if TYPE_CHECKING:` imports name what a
        # package's lazy-import machinery would hand out at run time.
        "TYPE_CHECKING": True,
        "cast": NativeFunction("typing.cast", lambda ev, a, k: a[1] if len(a) > 1 else Unknown("cast", ev.current_ref)),
        "NamedTuple": namedtuple_base(loader),
        "overload": _identity_decorator("typing.overload"),
        "final": _identity_decorator("typing.final"),
        "no_type_check": _identity_decorator("typing.no_type_check"),
        "runtime_checkable": _identity_decorator("typing.runtime_checkable"),
        "Generic": ClassValue("Generic", (obj,), {"__class_getitem__": True}, name),
        "Protocol": ClassValue("Protocol", (obj,), {"__class_getitem__": True}, name),
        "List": b["list"], "Dict": b["dict"], "Tuple": b["tuple"], "Set": b["set"], "FrozenSet": b["frozenset"],
        "Type": b["type"], "OrderedDict": loader.builtin_class_of(collections.OrderedDict()),
        "get_type_hints": NativeFunction("typing.get_type_hints", lambda ev, a, k: Unknown("get_type_hints", ev.current_ref)),
    })

    def hook(attr: str) -> Any:
        return TypingForm(f"{name}.{attr}")

    return ModuleValue(name, ns, getattr_hook=hook)


def _mapping_mixins(mutable: bool) -> dict[str, Any]:
    """The mixin methods of collections.abc.Mapping / MutableMapping, in terms of the subclass's
    `__getitem__`, `__iter__`, `__setitem__` and `__delitem__`."""
    from vramlint.engine.signals import RaiseSignal

    def keys(ev: Evaluator, self: Any) -> Any:
        return ev.list_of(self)

    def lookup(ev: Evaluator, self: Any, key: Any, default: Any) -> Any:
        try:
            return ev.protocol.getitem(self, key)
        except RaiseSignal as sig:
            if default is not MISSING and ev.protocol.is_exception(sig, "KeyError"):
                return default
            raise

    def m_keys(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        ks = keys(ev, a[0])
        if isinstance(ks, Unknown):
            return ks
        try:
            return dict.fromkeys(ks).keys()
        except TypeError:
            return Unknown("unhashable mapping key", ev.current_ref)

    def m_values(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        ks = keys(ev, a[0])
        return ks if isinstance(ks, Unknown) else [ev.protocol.getitem(a[0], key) for key in ks]

    def m_items(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        ks = keys(ev, a[0])
        return ks if isinstance(ks, Unknown) else [(key, ev.protocol.getitem(a[0], key)) for key in ks]

    def m_get(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return lookup(ev, a[0], a[1], a[2] if len(a) > 2 else k.get("default"))

    def m_contains(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        sentinel = object()
        return lookup(ev, a[0], a[1], sentinel) is not sentinel

    ns = {"keys": m_keys, "values": m_values, "items": m_items, "get": m_get, "__contains__": m_contains}
    if mutable:
        def m_pop(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            v = lookup(ev, a[0], a[1], a[2] if len(a) > 2 else MISSING)
            if len(a) <= 2 or v is not a[2]:
                ev.protocol.delitem(a[0], a[1])
            return v

        def m_setdefault(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            sentinel = object()
            v = lookup(ev, a[0], a[1], sentinel)
            if v is sentinel:
                v = a[2] if len(a) > 2 else None
                ev.protocol.setitem(a[0], a[1], v)
            return v

        def m_update(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            pairs: Any = []
            if len(a) > 1:
                src = a[1]
                pairs = list(src.items()) if isinstance(src, dict) else ev.list_of(src)
                if isinstance(src, Instance):
                    pairs = m_items(ev, (src,), {})
                if isinstance(pairs, Unknown):
                    ev.record(pairs)
                    return None
            for pair in [*pairs, *k.items()]:
                key, value = pair
                ev.protocol.setitem(a[0], key, value)
            return None

        ns.update({"pop": m_pop, "setdefault": m_setdefault, "update": m_update})
    return {name: NativeFunction(f"Mapping.{name}", fn) for name, fn in ns.items()}


class LazyModuleRef(Value):
    """A submodule reached as an attribute of its package (`collections.abc`, `importlib.util`)."""

    __slots__ = ("loader", "name")

    def __init__(self, loader: Loader, name: str) -> None:
        self.loader = loader
        self.name = name

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        mod = self.loader.import_module(self.name, None)
        return ev.protocol.getattr(mod, name)


def _namedtuple_factory(loader: Loader) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        from vramlint.engine.dataclass_rules import make_namedtuple_class

        name, fields = a[0], a[1] if len(a) > 1 else k.get("field_names")
        if isinstance(fields, str):
            fields = fields.replace(",", " ").split()
        items = ev.list_of(fields)
        if isinstance(items, Unknown) or not isinstance(name, str):
            return Unknown("namedtuple() with unknown fields", ev.current_ref)
        defaults = k.get("defaults") or ()
        return make_namedtuple_class(loader, name, list(items), list(ev.list_of(defaults)))

    return impl


def _deque(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    items = ev.list_of(a[0]) if a else []
    if isinstance(items, Unknown):
        return items
    maxlen = a[1] if len(a) > 1 else k.get("maxlen")
    if maxlen is not None:
        return Unknown("deque with a maxlen is not modelled", ev.current_ref)
    return Deque(items)


def _defaultdict(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    factory = a[0] if a else None
    if isinstance(factory, ClassValue) and isinstance(factory.native, BuiltinType) and factory.native.pytype in (list, int, dict, set, float):
        out: dict[Any, Any] = collections.defaultdict(factory.native.pytype)
    elif factory is None or isinstance(factory, (ClassValue, FunctionValue, BoundMethod)):
        out = EvalDefaultDict()
        out.factory = factory
    else:
        return Unknown("defaultdict with this factory is not modelled", ev.current_ref)
    if len(a) > 1:
        if not isinstance(a[1], dict):
            return Unknown("defaultdict() from a non-dict is not modelled", ev.current_ref)
        out.update(a[1])
    out.update(k)
    return out


def _counter(ev: Evaluator, a: Args) -> Any:
    items = ev.list_of(a[0]) if a else []
    if isinstance(items, Unknown):
        return items
    try:
        return dict(collections.Counter(items))
    except TypeError:
        return Unknown("Counter of unhashable values", ev.current_ref)
