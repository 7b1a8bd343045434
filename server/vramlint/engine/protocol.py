"""Python's object model over abstract values: attributes, items, calls of objects, iteration.

Kept apart from the statement/expression interpreter so frontends can extend it: a `Value`
subclass may define `get_attribute`, `binop`, `getitem`, `setitem`, `iterate`, `truth`,
`call`, `length`; a native class (ClassValue.native) may define `construct`, `getattr`,
`setattr`, `iterate` hooks for its instances.
"""

from __future__ import annotations

import collections
import copy
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.construction_memo import inert
from vramlint.engine.name_reads import note_shared_mutation
from vramlint.engine.signals import RaiseSignal, Undecided
from vramlint.engine.values import (
    MISSING,
    BoundMethod,
    ClassMethod,
    ClassValue,
    Deque,
    EvalDefaultDict,
    ExceptionValue,
    FunctionValue,
    Instance,
    ModuleValue,
    NativeFunction,
    NTuple,
    Partial,
    Property,
    StaticMethod,
    SubclassedDict,
    SuperValue,
    Unknown,
    Value,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

# Methods of plain Python data that analysed code may call, by type. They run on the real
# objects; a method that stores its argument (append...) accepts Unknowns, the others return
# the first Unknown among their arguments instead of computing with it.
_STORE_METHODS = {"append", "insert", "extend", "setdefault", "update", "add", "__setitem__"}
_NATIVE_METHODS: dict[type, set[str]] = {
    str: {
        "join", "format", "split", "rsplit", "strip", "lstrip", "rstrip", "startswith", "endswith",
        "replace", "lower", "upper", "title", "capitalize", "find", "rfind", "index", "count",
        "isdigit", "isalpha", "isnumeric", "isupper", "islower", "partition", "rpartition",
        "zfill", "ljust", "rjust", "center", "splitlines", "encode", "casefold", "removeprefix",
        "removesuffix", "isalnum", "isspace", "isidentifier", "isdecimal", "swapcase", "isascii", "istitle",
    },
    list: {"append", "extend", "insert", "pop", "index", "count", "copy", "reverse", "remove", "clear", "sort"},
    tuple: {"index", "count"},
    dict: {"items", "keys", "values", "get", "pop", "update", "setdefault", "copy", "popitem", "clear"},
    set: {"add", "update", "discard", "remove", "union", "intersection", "difference", "copy", "pop",
          "issubset", "issuperset", "isdisjoint", "symmetric_difference", "clear", "intersection_update",
          "difference_update", "symmetric_difference_update"},
    frozenset: {"union", "intersection", "difference", "issubset", "issuperset", "isdisjoint",
                "symmetric_difference", "copy"},
    int: {"bit_length", "to_bytes"},
    float: {"is_integer", "hex"},
    bytes: {"decode"},
    range: {"index", "count"},
}
_NATIVE_METHODS[collections.OrderedDict] = _NATIVE_METHODS[dict] | {"move_to_end"}
_NATIVE_METHODS[Deque] = _NATIVE_METHODS[list] | {"appendleft", "extendleft", "popleft", "rotate"}
_NATIVE_METHODS[EvalDefaultDict] = _NATIVE_METHODS[dict]


class Protocol:
    # The loader's evaluator, which sets it when it is made (after this object: Evaluator.__init__).
    ev: Evaluator

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self._strict_copy = False  # deepcopy shares nothing mutable, or fails (strict_copy)

    def unknown(self, reason: str) -> Unknown:
        return Unknown(reason, self.ev.current_ref)

    def hook(self, cls: ClassValue, name: str) -> Any:
        """The first native hook `name` along the MRO of `cls` (cached on the class, which it
        depends on only: a weak dictionary made a weak reference per look-up)."""
        per = cls.hooks
        if per is None:
            per = cls.hooks = {}
        elif name in per:
            return per[name]
        found = None
        for k in cls.mro:
            if k.native is not None and getattr(k.native, name, None) is not None:
                found = getattr(k.native, name)
                break
        per[name] = found
        return found

    def type_of(self, v: Any) -> ClassValue | Unknown:
        if isinstance(v, Instance):
            return v.cls
        if isinstance(v, SubclassedDict) and v.cls is not None:
            return v.cls  # type: ignore[no-any-return]
        if isinstance(v, NTuple):
            return v.cls
        if isinstance(v, ExceptionValue):
            return v.cls
        if isinstance(v, Unknown):
            return v
        if isinstance(v, Value) and hasattr(v, "value_class"):
            return v.value_class(self.ev)  # type: ignore[no-any-return]
        b = self.loader.builtin_class_of(v)
        return b if b is not None else self.unknown(f"type of {type(v).__name__}")

    # ------------------------------------------------------------------ attributes
    def getattr(self, obj: Any, name: str, default: Any = MISSING) -> Any:
        ev = self.ev
        b = ev.budget  # ev.charge(), inline (see Evaluator.exec_stmt)
        b.steps += 1
        if b.steps > b.limit:
            ev.charge(0)  # raises BudgetExceeded
        a = ev.analysis
        a.steps += 1
        if a.steps >= a.next_check:
            ev.charge(0)
        # An instance first (most reads are `self.x`): no Unknown is an Instance, so the order
        # of these two tests changes no answer.
        if isinstance(obj, Instance):
            user_ga, _ = obj.cls.lookup("__getattribute__")
            if isinstance(user_ga, FunctionValue):
                return self._user_getattribute(obj, user_ga, name, default)
            return self._instance_attr(obj, name, default)
        if isinstance(obj, Unknown):
            return obj
        if isinstance(obj, ModuleValue):
            v = self.loader.module_attr(obj, name, default)
            if ev.constructions.depth:
                ev.constructions.note_read(obj.ns, name, v)
            if isinstance(v, Unknown) and default is MISSING and self.loader.never_binds(obj, name):
                raise ev.raise_error("AttributeError", f"module '{obj.name}' has no attribute '{name}'")
            return v
        if isinstance(obj, SubclassedDict) and obj.cls is not None:
            from vramlint.engine.builtins import BuiltinType

            if obj.attrs is not None and name in obj.attrs:
                return obj.attrs[name]
            if name == "__dict__":
                if obj.attrs is None:
                    obj.attrs = {}
                return obj.attrs
            v, owner = obj.cls.lookup(name)
            if v is not MISSING and owner is not None and not isinstance(owner.native, BuiltinType):
                return self.bind_descriptor(v, obj.cls, obj)
            if name not in _NATIVE_METHODS[dict]:
                # Python's last resort after the instance, the class and dict's own methods
                # (EasyDict-style configs: `cfg.width` reads `cfg["width"]`).
                ga, _ = obj.cls.lookup("__getattr__")
                if isinstance(ga, FunctionValue):
                    return self.ev.call(ga, (obj, name), {})
        if isinstance(obj, ClassValue):
            return self._class_attr(obj, name, default)
        if isinstance(obj, SuperValue):
            return self._super_attr(obj, name, default)
        if isinstance(obj, NTuple):
            fields = obj.cls.ns.get("_fields", ())
            if name in fields:
                return obj[fields.index(name)]
            if name == "_asdict":
                return NativeFunction("_asdict", lambda ev, a, k: dict(zip(fields, obj)))
            if name == "_replace":
                def _replace(ev: Evaluator, a: Any, k: dict[str, Any]) -> Any:
                    items = list(obj)
                    for key, val in k.items():
                        if key in fields:
                            items[fields.index(key)] = val
                    return NTuple(tuple(items), obj.cls)
                return NativeFunction("_replace", _replace)
            return self._class_attr(obj.cls, name, default, instance=obj)
        if isinstance(obj, FunctionValue):
            if name == "__class__":
                return self.type_of(obj)
            if name == "__name__":
                return obj.name
            if name == "__qualname__":
                return obj.qualname
            if name == "__module__":
                return obj.module.name
            if name in obj.attrs:
                return obj.attrs[name]
            return self._missing(obj, name, default)
        if isinstance(obj, Partial):
            if name == "func":
                return obj.func
            if name == "args":
                return obj.args
            if name == "keywords":
                return dict(obj.kwargs)
            return self._missing(obj, name, default)
        if isinstance(obj, ExceptionValue):
            if name in obj.attrs:
                return obj.attrs[name]
            if name == "args":
                return obj.args
            return self._class_attr(obj.cls, name, default, instance=obj)
        if isinstance(obj, BoundMethod):
            if name == "__self__":
                return obj.self_value
            if name == "__func__":
                return obj.func
            return self.getattr(obj.func, name, default)
        if isinstance(obj, NativeFunction):
            if name == "__name__":
                return obj.name.rpartition(".")[2]
            return self._missing(obj, name, default)
        if isinstance(obj, Value):
            if name == "__class__" and hasattr(obj, "value_class"):
                return obj.value_class(ev)  # what type() says (`weight.__class__.__name__`)
            get = getattr(obj, "get_attribute", None)
            if get is not None:
                v = get(ev, name)
                if v is not MISSING:
                    return v
            return self._missing(obj, name, default)
        return self._native_attr(obj, name, default)

    def _user_getattribute(self, obj: Instance, fn: FunctionValue, name: str, default: Any) -> Any:
        """`obj.name` through a `__getattribute__` of analysed source; on AttributeError, Python
        falls back to `__getattr__`, then to getattr's default."""
        try:
            return self.ev.call(BoundMethod(obj, fn), (name,), {})
        except RaiseSignal as sig:
            if not self.is_exception(sig, "AttributeError"):
                raise
            ga, _ = obj.cls.lookup("__getattr__")
            if isinstance(ga, (FunctionValue, NativeFunction)):
                try:
                    return self.ev.call(BoundMethod(obj, ga), (name,), {})
                except RaiseSignal as sig2:
                    if default is MISSING or not self.is_exception(sig2, "AttributeError"):
                        raise
            if default is not MISSING:
                return default
            raise

    def generic_getattr(self, obj: Any, name: str) -> Any:
        """object.__getattribute__: the attribute without `__getattribute__`/`__getattr__` overrides."""
        if isinstance(obj, Instance):
            return self._instance_attr(obj, name, MISSING, fallback=False)
        return self.getattr(obj, name)

    def is_exception(self, sig: RaiseSignal, class_name: str) -> bool:
        """Whether a raised exception is an instance of the builtin exception `class_name`."""
        want = self.loader.builtins.get(class_name)
        exc = sig.exc
        return isinstance(exc, ExceptionValue) and isinstance(want, ClassValue) and exc.cls.is_subclass_of(want)

    def _missing(self, obj: Any, name: str, default: Any) -> Any:
        if default is not MISSING:
            return default
        tname = obj.cls.name if isinstance(obj, Instance) else getattr(obj, "type_name", type(obj).__name__)
        raise self.ev.raise_error("AttributeError", f"'{tname}' object has no attribute '{name}'")

    def _native_attr(self, obj: Any, name: str, default: Any) -> Any:
        # A subclass of plain data (a SubclassedDict, torch's Device str) has the data attributes
        # its class lists in `native_attributes` (before its base's methods: Device.index is
        # not str.index), and its base's methods.
        if name in getattr(type(obj), "native_attributes", ()):
            return getattr(obj, name)
        methods = next((_NATIVE_METHODS[t] for t in type(obj).__mro__ if t in _NATIVE_METHODS), None)
        if methods is not None and name in methods:
            return NativeFunction(f"{type(obj).__name__}.{name}", _native_method(obj, name))
        if isinstance(obj, complex) and name in ("real", "imag"):
            return getattr(obj, name)
        if isinstance(obj, int) and name in ("real", "numerator"):
            return obj
        if isinstance(obj, slice) and name in ("start", "stop", "step"):
            return getattr(obj, name)
        if isinstance(obj, range) and name in ("start", "stop", "step"):
            return getattr(obj, name)
        if name == "__class__":
            return self.type_of(obj)
        if default is not MISSING:
            return default
        if obj is None:
            raise self.ev.raise_error("AttributeError", f"'NoneType' object has no attribute '{name}'")
        return self.unknown(f"attribute `{name}` of {type(obj).__name__} is not modelled")

    def _instance_attr(self, obj: Instance, name: str, default: Any, fallback: bool = True) -> Any:
        if name in obj.attrs:
            return obj.attrs[name]
        get = self.hook(obj.cls, "getattr")
        if get is not None:
            v = get(self.ev, obj, name)
            if v is not MISSING:
                return v
        if name == "__class__":
            return obj.cls
        if name == "__dict__":
            return obj.attrs
        return self._class_attr(obj.cls, name, default, instance=obj, fallback=fallback)

    def _class_attr(self, cls: ClassValue, name: str, default: Any, instance: Any = MISSING,
                    fallback: bool = True) -> Any:
        v, _owner = cls.lookup(name)
        if v is MISSING:
            if instance is MISSING:
                if name == "__name__":
                    return cls.name
                if name == "__qualname__":
                    return cls.qualname
                if name == "__module__":
                    return cls.module_name
                if name == "__mro__":
                    return tuple(cls.mro)
                if name == "__bases__":
                    return cls.bases
                if name == "__subclasses__":
                    if self.ev.constructions.depth:
                        self.ev.constructions.impure += 1  # (what it lists changes as classes are made)
                    return NativeFunction(f"{cls.name}.__subclasses__", lambda ev, a, k: [
                        sub for ref in cls.subclasses if (sub := ref()) is not None])
                if name == "__dict__":
                    self.ev.constructions.note_mutation()  # (what gets the namespace may change it)
                    return cls.ns
            if instance is not MISSING and fallback:
                ga, _ = cls.lookup("__getattr__")
                if isinstance(ga, (FunctionValue, NativeFunction)):
                    return self.ev.call(ga, (instance, name), {})
            if cls is self.loader.unknown_base or any(k is self.loader.unknown_base for k in cls.mro):
                return self.unknown(f"attribute `{name}` may come from an unknown base class of {cls.name}")
            if instance is not MISSING:
                return self._missing(instance, name, default)
            return self._missing(cls, name, default)
        if self.ev.constructions.depth:
            self.ev.constructions.note_class_attribute(v)
        return self.bind_descriptor(v, cls, instance)

    def bind_descriptor(self, v: Any, cls: ClassValue, instance: Any) -> Any:
        if isinstance(v, StaticMethod):
            return v.func
        if isinstance(v, ClassMethod):
            target = cls if instance is MISSING else self.type_of(instance)
            return BoundMethod(target, v.func)
        if isinstance(v, Instance):
            get, _ = v.cls.lookup("__get__")
            if isinstance(get, (FunctionValue, NativeFunction)):
                # A descriptor of analysed code (`__get__(self, obj, objtype)`), as type.__getattribute__ calls it.
                return self.ev.call(get, (v, None if instance is MISSING else instance, cls), {})
        if instance is MISSING:
            return v
        if isinstance(v, (FunctionValue, NativeFunction, Partial)) and not isinstance(v, Partial):
            return BoundMethod(instance, v)
        if isinstance(v, Property):
            return self.ev.call(v.fget, (instance,), {})
        return v

    def _super_attr(self, sup: SuperValue, name: str, default: Any) -> Any:
        obj = sup.obj
        meta = self.metaclass_of(obj) if isinstance(obj, ClassValue) and sup.start not in obj.mro else None
        if meta is not None and sup.start in meta.mro:
            # super() in a metaclass's method: the rest of the metaclass's MRO, bound to the class.
            for k in meta.mro[meta.mro.index(sup.start) + 1:]:
                if name in k.ns:
                    return self.bind_descriptor(k.ns[name], k, obj)
            return self._missing(obj, name, default)
        cls = obj if isinstance(obj, ClassValue) else self.type_of(obj)
        if isinstance(cls, Unknown):
            return cls
        mro = cls.mro
        try:
            start = mro.index(sup.start) + 1
        except ValueError:
            start = 1
        for k in mro[start:]:
            if name in k.ns:
                v = k.ns[name]
                if isinstance(obj, ClassValue):
                    return self.bind_descriptor(v, k, MISSING) if not isinstance(v, ClassMethod) else BoundMethod(obj, v.func)
                return self.bind_descriptor(v, k, obj)
        if name == "__init__":
            return NativeFunction("object.__init__", lambda ev, a, k: None)
        return self._missing(obj, name, default)

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        if isinstance(obj, SubclassedDict) and obj.cls is not None:
            user, _ = obj.cls.lookup("__setattr__")
            if isinstance(user, FunctionValue):
                self.ev.call(user, (obj, name, value), {})
                return
        if isinstance(obj, Instance):
            user, _ = obj.cls.lookup("__setattr__")
            if isinstance(user, FunctionValue):
                self.ev.call(user, (obj, name, value), {})
                return
        self.generic_setattr(obj, name, value)

    def generic_setattr(self, obj: Any, name: str, value: Any) -> None:
        """object.__setattr__: properties, frontend hooks (nn.Module registries), then the instance dict."""
        if isinstance(obj, Instance):
            prop, _ = obj.cls.lookup(name)
            if isinstance(prop, Property) and prop.fset is not None:
                self.ev.call(prop.fset, (obj, value), {})
                return
            hook = self.hook(obj.cls, "setattr")
            if hook is not None and hook(self.ev, obj, name, value):
                return
            obj.attrs[name] = value
        elif isinstance(obj, SubclassedDict):
            prop, _ = obj.cls.lookup(name) if obj.cls is not None else (MISSING, None)
            if isinstance(prop, Property) and prop.fset is not None:
                self.ev.call(prop.fset, (obj, value), {})
                return
            if obj.attrs is None:
                obj.attrs = {}
            obj.attrs[name] = value
        elif isinstance(obj, (ClassValue, ModuleValue)):
            note_shared_mutation()  # state every later build may read (analysis/reuse.py)
            self.ev.constructions.note_mutation()  # and every remembered construction
            obj.ns[name] = value
        elif isinstance(obj, (FunctionValue, ExceptionValue)):
            if isinstance(obj, FunctionValue):
                self.ev.constructions.note_mutation()
            obj.attrs[name] = value
        elif isinstance(obj, Value) and hasattr(obj, "set_attribute"):
            obj.set_attribute(self.ev, name, value)
        # Setting attributes on plain data or unknowns has no effect we track.

    def delattr(self, obj: Any, name: str) -> None:
        if isinstance(obj, Instance):
            hook = self.hook(obj.cls, "delattr")
            if hook is not None and hook(self.ev, obj, name):
                return
            obj.attrs.pop(name, None)

    # ------------------------------------------------------------------ items
    def getitem(self, obj: Any, idx: Any) -> Any:
        if isinstance(obj, Unknown):
            return obj
        if isinstance(obj, (list, tuple, str, bytes, range)):
            if isinstance(idx, Unknown):
                return idx
            if isinstance(idx, slice):
                if any(isinstance(x, Unknown) for x in (idx.start, idx.stop, idx.step)):
                    return next(x for x in (idx.start, idx.stop, idx.step) if isinstance(x, Unknown))
                try:
                    r = obj[idx]
                except (TypeError, ValueError) as err:
                    raise self.ev.raise_error("TypeError", str(err)) from None
                return r  # a slice of a named tuple is a plain tuple, as in Python
            if isinstance(idx, bool) or not isinstance(idx, int):
                if isinstance(idx, Instance):
                    ix = self.ev.call(self.getattr(idx, "__index__"), (), {})
                    return self.getitem(obj, ix)
                raise self.ev.raise_error("TypeError", "indices must be integers")
            try:
                return obj[idx]
            except IndexError:
                raise self.ev.raise_error("IndexError", "index out of range") from None
        if isinstance(obj, SubclassedDict) and obj.cls is not None:
            user, _ = obj.cls.lookup("__getitem__")
            if isinstance(user, FunctionValue):
                return self.ev.call(user, (obj, idx), {})
        if isinstance(obj, dict):
            if isinstance(idx, Unknown):
                return idx
            if type(obj) is EvalDefaultDict and obj.factory is not None:
                try:
                    if idx not in obj:
                        obj[idx] = self.ev.call(obj.factory, (), {})  # as defaultdict.__missing__
                except TypeError:
                    return self.unknown("unhashable key")
            try:
                return obj[idx]
            except KeyError:
                if any(isinstance(k, Unknown) for k in obj):
                    return self.unknown("key lookup among unknown keys")
                raise self.ev.raise_error("KeyError", repr(idx)) from None
            except TypeError:
                return self.unknown("unhashable key")
        if isinstance(obj, ClassValue):
            cg, _ = obj.lookup("__class_getitem__")
            if cg is MISSING or cg is None:
                return obj  # generic alias such as List[int]: the class itself is good enough
            if obj.native is not None and hasattr(obj.native, "class_getitem"):
                return obj.native.class_getitem(self.ev, obj, idx)
            return obj
        if isinstance(obj, Instance):
            return self._call_dunder(obj, "__getitem__", (idx,))
        if isinstance(obj, Value) and hasattr(obj, "getitem"):
            return obj.getitem(self.ev, idx)
        return self.unknown(f"subscript of {getattr(obj, 'type_name', type(obj).__name__)}")

    def setitem(self, obj: Any, idx: Any, value: Any) -> None:
        if isinstance(obj, list):
            if isinstance(idx, Unknown):
                self.ev.record(idx)
                return
            try:
                if isinstance(idx, slice):
                    items = self.ev.list_of(value)
                    if isinstance(items, Unknown):
                        return
                    obj[idx] = items
                else:
                    obj[idx] = value
            except (IndexError, TypeError, ValueError) as err:
                raise self.ev.raise_error("IndexError", str(err)) from None
        elif isinstance(obj, SubclassedDict) and isinstance(obj.cls.lookup("__setitem__")[0], FunctionValue):
            self.ev.call(obj.cls.lookup("__setitem__")[0], (obj, idx, value), {})
        elif isinstance(obj, dict):
            try:
                obj[idx] = value
            except TypeError:
                self.ev.record(self.unknown("unhashable dict key"))
        elif isinstance(obj, Instance):
            self._call_dunder(obj, "__setitem__", (idx, value))
        elif isinstance(obj, Value) and hasattr(obj, "setitem"):
            obj.setitem(self.ev, idx, value)

    def delitem(self, obj: Any, idx: Any) -> None:
        if isinstance(obj, (list, dict)) and not isinstance(idx, Unknown):
            try:
                del obj[idx]
            except (IndexError, KeyError, TypeError):
                raise self.ev.raise_error("KeyError", repr(idx)) from None
        elif isinstance(obj, Instance):
            self._call_dunder(obj, "__delitem__", (idx,))

    def _call_dunder(self, obj: Instance, name: str, args: tuple[Any, ...]) -> Any:
        fn, _ = obj.cls.lookup(name)
        if fn is MISSING:
            return self.unknown(f"{obj.cls.name} does not support `{name}`")
        return self.ev.call(self.bind_descriptor(fn, obj.cls, obj), args, {})

    # ------------------------------------------------------------------ iteration, truth, length
    def iterate(self, obj: Any) -> Any:
        if isinstance(obj, NTuple):
            return list(obj)
        if isinstance(obj, Instance):
            hook = self.hook(obj.cls, "iterate")
            fn, _ = obj.cls.lookup("__iter__")
            if isinstance(fn, FunctionValue) or (fn is not MISSING and hook is None):
                it = self.ev.call(self.bind_descriptor(fn, obj.cls, obj), (), {})
                return self.ev.list_of(it)
            if hook is not None:
                return hook(self.ev, obj)
            gi, _ = obj.cls.lookup("__getitem__")
            if isinstance(gi, FunctionValue):
                return self._iterate_by_getitem(obj, gi)
            if gi is not MISSING:
                return self.unknown(f"iteration over {obj.cls.name} by __getitem__")
            return self.unknown(f"{obj.cls.name} is not iterable")
        if isinstance(obj, ModuleValue) or isinstance(obj, ClassValue):
            if isinstance(obj, ClassValue) and obj.native is not None and hasattr(obj.native, "iterate_class"):
                return obj.native.iterate_class(self.ev, obj)
            if isinstance(obj, ClassValue) and "enum" in obj.flags:
                return [v for k, v in obj.ns.items() if not k.startswith("_") and not isinstance(v, (FunctionValue, StaticMethod, ClassMethod, Property))]
            return self.unknown("not iterable")
        if isinstance(obj, Value) and hasattr(obj, "iterate"):
            return obj.iterate(self.ev)
        return self.unknown(f"iteration over {getattr(obj, 'type_name', type(obj).__name__)}")

    def _iterate_by_getitem(self, obj: Instance, getitem: FunctionValue) -> Any:
        """Python's old sequence protocol (also what `collections.abc.Sequence.__iter__` does):
        `obj[0]`, `obj[1]`, ... until one raises IndexError (transformers' _PerLayerConfigView)."""
        from vramlint.engine.evaluator import MAX_SEQUENCE

        out: list[Any] = []
        for i in range(MAX_SEQUENCE):
            self.ev.charge()
            try:
                out.append(self.ev.call(self.bind_descriptor(getitem, obj.cls, obj), (i,), {}))
            except RaiseSignal as sig:
                if self.is_exception(sig, "IndexError"):
                    return out
                raise
        return self.unknown(f"iteration over {obj.cls.name} by __getitem__: more than {MAX_SEQUENCE} items")

    def truth(self, obj: Any) -> bool:
        if isinstance(obj, Instance):
            fn, _ = obj.cls.lookup("__bool__")
            if fn is MISSING:
                fn, _ = obj.cls.lookup("__len__")
            if fn is MISSING:
                return True
            r = self.ev.call(self.bind_descriptor(fn, obj.cls, obj), (), {})
            return self.ev.truth(r)
        if isinstance(obj, NTuple):
            return len(obj) > 0
        if isinstance(obj, Value) and hasattr(obj, "truth"):
            r = obj.truth(self.ev)
            if isinstance(r, Unknown):
                raise Undecided(r)
            return bool(r)
        return True

    def length(self, obj: Any) -> Any:
        user = self.ev.user_dict_dunder(obj, "__len__")
        if user is not None:
            return self.ev.call(user, (), {})
        if isinstance(obj, (str, bytes, list, tuple, dict, set, frozenset, range, *_DICT_VIEWS)):
            return len(obj)  # type: ignore[arg-type]
        if isinstance(obj, Unknown):
            return obj
        if isinstance(obj, Instance):
            return self._call_dunder(obj, "__len__", ())
        if isinstance(obj, Value) and hasattr(obj, "length"):
            return obj.length(self.ev)
        items = self.iterate(obj)
        return items if isinstance(items, Unknown) else len(items)

    def contains(self, container: Any, item: Any) -> Any:
        if isinstance(container, Instance):
            fn, _ = container.cls.lookup("__contains__")
            if fn is not MISSING:
                return self.ev.call(self.bind_descriptor(fn, container.cls, container), (item,), {})
        items = self.iterate(container)
        if isinstance(items, Unknown):
            return items
        return self.ev.contains(list(items), item)

    # ------------------------------------------------------------------ operators
    def binop(self, op: type, left: Any, right: Any, inplace: bool = False) -> Any:
        from vramlint.engine.evaluator import BINOP_NAMES

        name = BINOP_NAMES[op]
        for obj, other, reflected in ((left, right, False), (right, left, True)):
            if isinstance(obj, Instance):
                names = ([f"__i{name}__"] if inplace and not reflected else []) + [
                    f"__r{name}__" if reflected else f"__{name}__"
                ]
                for dn in names:
                    fn, _ = obj.cls.lookup(dn)
                    if fn is not MISSING:
                        r = self.ev.call(self.bind_descriptor(fn, obj.cls, obj), (other,), {})
                        if r is not NotImplemented:
                            return r
            elif isinstance(obj, Value) and hasattr(obj, "binop"):
                r = obj.binop(self.ev, f"i{name}" if inplace and not reflected else name, other, reflected)
                if r is not NotImplemented:
                    return r
        if isinstance(left, ClassValue) and op is cst.BitOr:
            return left  # `int | None` in annotations
        return self.unknown(f"operator `{name}` on {type(left).__name__} and {type(right).__name__}")

    def unary(self, op: cst.BaseUnaryOp, v: Any) -> Any:
        names = {cst.Minus: "__neg__", cst.Plus: "__pos__", cst.BitInvert: "__invert__"}
        dn = names.get(type(op))
        if isinstance(v, Instance) and dn is not None:
            return self._call_dunder(v, dn, ())
        if isinstance(v, Value) and hasattr(v, "unary") and dn is not None:
            return v.unary(self.ev, dn)
        return self.unknown("unary operator on an abstract value")

    def compare(self, op: type, dunder: str, left: Any, right: Any) -> Any:
        for obj, other in ((left, right), (right, left)):
            if isinstance(obj, Instance):
                fn, _ = obj.cls.lookup(dunder if obj is left else _REFLECT[dunder])
                if isinstance(fn, FunctionValue):
                    return self.ev.call(self.bind_descriptor(fn, obj.cls, obj), (other,), {})
            elif isinstance(obj, Value) and hasattr(obj, "compare"):
                r = obj.compare(self.ev, dunder if obj is left else _REFLECT[dunder], other)
                if r is not NotImplemented:
                    return r
        if dunder in ("__eq__", "__ne__"):
            same = left is right or _value_equal(left, right)
            return same if dunder == "__eq__" else not same
        if isinstance(left, (ClassValue, FunctionValue)) or isinstance(right, (ClassValue, FunctionValue)):
            raise self.ev.raise_error("TypeError", "unorderable values")
        return self.unknown("comparison of abstract values")

    # ------------------------------------------------------------------ calls
    def metaclass_of(self, cls: ClassValue) -> ClassValue | None:
        """The metaclass of analysed source a class was made with (or inherited), else None."""
        for k in cls.mro:  # (a loop, not next() over a generator: every instantiation asks)
            ns = k.ns
            if "__vramlint_metaclass__" in ns:
                return ns["__vramlint_metaclass__"]  # type: ignore[no-any-return]
        return None

    def instantiate(self, cls: ClassValue, args: tuple[Any, ...], kwargs: dict[str, Any], meta: bool = True) -> Any:
        ev = self.ev
        metaclass = self.metaclass_of(cls) if meta else None
        if isinstance(metaclass, ClassValue):
            for hook in ("__new__", "__init__", "__prepare__"):
                fn, owner = metaclass.lookup(hook)
                if isinstance(fn, (FunctionValue, StaticMethod, ClassMethod)) and owner is not None and owner.native is None:
                    # It could reshape the class as it was made: what is built from it is not exact.
                    ev.record(Unknown(f"metaclass {metaclass.name}.{hook} of {cls.name} is not evaluated", ev.current_ref))
            # `class Net(nn.Module, metaclass=Meta)`: calling Net is Meta.__call__(Net, ...), as in CPython.
            call, owner = metaclass.lookup("__call__")
            if isinstance(call, FunctionValue):
                return ev.call(call, (cls, *args), kwargs)
        construct = self.hook(cls, "construct")
        if construct is not None:
            return construct(ev, cls, args, kwargs)
        observers = self.loader.instantiation_observers
        for obs in observers:
            obs(cls, args, kwargs)
        if not observers and ev.tape is None and cls.native is None:
            memo = ev.constructions  # engine/construction_memo.py: a repeat is a copy of the first
            key = memo.key(cls, args, kwargs)
            if key is not None:
                return memo.construct(ev, key, lambda: self._make(cls, args, kwargs))
        return self._make(cls, args, kwargs)

    def _make(self, cls: ClassValue, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`__new__` (or a fresh instance and its frontend state), then `__init__`."""
        ev = self.ev
        new, _ = cls.lookup("__new__")
        if isinstance(new, (FunctionValue, StaticMethod)):
            fn = new.func if isinstance(new, StaticMethod) else new
            obj = ev.call(fn, (cls, *args), kwargs)
            if not (isinstance(obj, Instance) and obj.cls.is_subclass_of(cls)):
                return obj
        else:
            obj = Instance(cls)
            init_state = self.hook(cls, "init_state")
            if init_state is not None:
                init_state(ev, obj)
        init, owner = cls.lookup("__init__")
        if init is not MISSING:
            ev.call(self.bind_descriptor(init, cls, obj), args, kwargs)
        return obj

    def call_object(self, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if isinstance(obj, Instance):
            if self.ev.constructions.depth:
                self.ev.constructions.impure += 1  # a module's call is noted on it, and not copied
            fn, _ = obj.cls.lookup("__call__")
            if fn is MISSING:
                raise self.ev.raise_error("TypeError", f"'{obj.cls.name}' object is not callable")
            return self.ev.call(self.bind_descriptor(fn, obj.cls, obj), args, kwargs)
        if isinstance(obj, StaticMethod):
            return self.ev.call(obj.func, args, kwargs)
        if isinstance(obj, Value) and hasattr(obj, "call"):
            return obj.call(self.ev, args, kwargs)
        if isinstance(obj, ModuleValue):
            raise self.ev.raise_error("TypeError", "'module' object is not callable")
        return self.unknown(f"call of a {getattr(obj, 'type_name', type(obj).__name__)} value")

    def enter(self, ctx: Any) -> Any:
        if isinstance(ctx, Instance):
            fn, _ = ctx.cls.lookup("__enter__")
            if fn is not MISSING:
                return self.ev.call(self.bind_descriptor(fn, ctx.cls, ctx), (), {})
        if isinstance(ctx, Value) and hasattr(ctx, "enter"):
            return ctx.enter(self.ev)
        return ctx

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        """copy.deepcopy of abstract objects: instances and their state are copied, classes,
        functions and modules are shared (as Python does)."""
        t = type(obj)
        if t in _ATOMIC:  # (most attributes of modules: a test, not the chain below)
            return obj
        memo = {} if memo is None else memo
        if id(obj) in memo:
            return memo[id(obj)]
        strict = self._strict_copy
        if isinstance(obj, Instance):
            if strict and t is not Instance:
                raise _NotCopied(t)  # (an enum's member, copied below as a plain instance)
            new = Instance(obj.cls)
            memo[id(obj)] = new
            attrs = new.attrs
            for k, v in obj.attrs.items():
                attrs[k] = v if type(v) in _ATOMIC else self.deepcopy(v, memo)
            if obj.state is not None:
                st = type(obj.state)
                # (a subclass's state copied by its base's deepcopy loses its own fields)
                if strict and ("deepcopy" not in st.__dict__ or getattr(st, "shares_mutable_fields", False)):
                    raise _NotCopied(st)
                new.state = obj.state.deepcopy(self, memo)
            return new
        if strict and t not in _PLAIN_CONTAINERS and issubclass(t, (list, tuple, dict, set)):
            # Copied below as the plain type (a defaultdict's factory lost): only an immutable
            # tuple (a torch.Size of ints) may be shared.
            if not (issubclass(t, tuple) and inert(obj)):
                raise _NotCopied(t)
            return obj
        if isinstance(obj, list):
            out: list[Any] = []
            memo[id(obj)] = out
            out.extend(x if type(x) in _ATOMIC else self.deepcopy(x, memo) for x in obj)
            return out
        if isinstance(obj, NTuple):
            return NTuple(tuple(self.deepcopy(x, memo) for x in obj), obj.cls)
        if isinstance(obj, tuple):
            return tuple(x if type(x) in _ATOMIC else self.deepcopy(x, memo) for x in obj)
        if isinstance(obj, dict):
            d: dict[Any, Any] = {}
            memo[id(obj)] = d
            for k, v in obj.items():
                d[k] = v if type(v) in _ATOMIC else self.deepcopy(v, memo)
            return d
        if isinstance(obj, set):
            if strict and not all(inert(x) for x in obj):
                raise _NotCopied(t)
            return set(obj)
        if t is BoundMethod:  # as copy.deepcopy rebinds a method to the copy of its object
            bm = BoundMethod(self.deepcopy(obj.self_value, memo), obj.func)
            memo[id(obj)] = bm
            return bm
        if isinstance(obj, Value) and hasattr(obj, "deepcopy"):
            if strict and getattr(obj, "shares_mutable_fields", False):
                raise _NotCopied(t)
            new_v = obj.deepcopy(self, memo)
            memo[id(obj)] = new_v
            return new_v
        if strict and not inert(obj):
            raise _NotCopied(t)
        return obj

    def strict_copy(self, obj: Any) -> Any:
        """A deep copy sharing nothing that may change (engine/construction_memo.py), else None."""
        self._strict_copy = True
        try:
            return self.deepcopy(obj)
        except _NotCopied:
            return None
        except INTERNAL_COPY_ERRORS:  # a frontend state without a deepcopy, say: not remembered
            return None
        finally:
            self._strict_copy = False

    def shallowcopy(self, obj: Any) -> Any:
        if isinstance(obj, Instance):
            new = Instance(obj.cls)
            new.attrs = dict(obj.attrs)
            new.state = obj.state.shallowcopy() if obj.state is not None else None
            return new
        if isinstance(obj, (list, dict, set)):
            return copy.copy(obj)
        return obj


# What deepcopy returns as it is, by exact type (most attributes of modules).
_ATOMIC = frozenset({int, float, complex, str, bytes, bool, type(None), ClassValue, FunctionValue, ModuleValue})
_PLAIN_CONTAINERS = frozenset({list, tuple, dict, set, NTuple})
# A frontend's `deepcopy` of state it cannot copy fails like this (strict_copy then gives None).
INTERNAL_COPY_ERRORS = (AttributeError, TypeError, RecursionError)


class _NotCopied(Exception):
    """strict_copy met an object it would have to share and that may change."""


_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))

_REFLECT = {
    "__eq__": "__eq__",
    "__ne__": "__ne__",
    "__lt__": "__gt__",
    "__le__": "__ge__",
    "__gt__": "__lt__",
    "__ge__": "__le__",
}


def _native_method(obj: Any, name: str) -> Any:
    method = getattr(obj, name)
    stores = name in _STORE_METHODS

    def impl(ev: Evaluator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from vramlint.engine.evaluator import any_unknown, contains_unknown

        if name == "extend" and isinstance(obj, list) and args:
            items = ev.list_of(args[0])
            if isinstance(items, Unknown):
                ev.record(items)
                return None
            obj.extend(items)
            return None
        if name == "update" and isinstance(obj, dict) and args and not isinstance(args[0], dict):
            items = ev.list_of(args[0])
            if isinstance(items, Unknown):
                ev.record(items)
                return None
            args = (dict(items),)  # type: ignore[arg-type]
        if name == "join" and isinstance(obj, str) and args:
            items = ev.list_of(args[0])
            if isinstance(items, Unknown):
                return items
            if not all(isinstance(x, str) for x in items):
                u = contains_unknown(items)
                return u if u is not None else ev.protocol.unknown("str.join of non-strings")
            return obj.join(items)
        if name == "sort" and kwargs.get("key") is not None:
            return ev.protocol.unknown("list.sort with a key function")
        if not stores:
            u = any_unknown(args, tuple(kwargs.values()))
            if u is not None:
                return u
            if name in ("count", "index", "get", "pop") and contains_unknown(obj):
                # The answer could depend on an element we do not know.
                if not (name == "get" and isinstance(obj, dict) and args and args[0] in obj):
                    if not (name == "pop" and isinstance(obj, list)):
                        return contains_unknown(obj)
        try:
            return method(*args, **kwargs)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise ev.raise_error(type(err).__name__, str(err)) from None

    return impl


def _value_equal(left: Any, right: Any) -> bool:
    """Equality an instance's Python class defines (a `class T(str, Enum)` member equals its
    value, `T.LORA == "LORA"`, as in CPython); other instances are equal only to themselves."""
    for obj in (left, right):
        if isinstance(obj, Instance) and type(obj).__eq__ is not object.__eq__:
            return bool(left == right)
    return False
