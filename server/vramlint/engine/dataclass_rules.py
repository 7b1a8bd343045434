"""dataclasses and NamedTuple: classes whose __init__ is generated from annotated fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import BuiltinType, _module
from vramlint.engine.values import (
    MISSING,
    ClassValue,
    FieldSpec,
    FunctionValue,
    Instance,
    NativeFunction,
    NTuple,
    SubclassedDict,
    Unknown,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


def _own_fields(cls: ClassValue) -> list[tuple[str, Any]]:
    names = cls.ns.get("__annotations_order__", [])
    out = []
    for n in dict.fromkeys(names):
        out.append((n, cls.ns.get(n, MISSING)))
    return out


def _field_default(ev: Evaluator, spec: Any) -> Any:
    if isinstance(spec, FieldSpec):
        if spec.default_factory is not None:
            return ev.call(spec.default_factory, (), {})
        return spec.default if spec.has_default else MISSING
    return spec


def make_dataclass(ev: Evaluator, cls: Any, args: Any = (), kwargs: Any = None) -> Any:
    if not isinstance(cls, ClassValue):
        return cls
    fields: dict[str, Any] = {}
    for k in reversed(cls.mro[1:]):
        for name, spec in k.ns.get("__dataclass_fields__", []):
            fields[name] = spec
    for name, spec in _own_fields(cls):
        fields[name] = spec
        # A FieldSpec in the class namespace is not a class attribute at runtime.
        if isinstance(spec, FieldSpec):
            if spec.has_default:
                cls.ns[name] = spec.default
            else:
                cls.ns.pop(name, None)
    ordered = list(fields.items())
    # InitVars: parameters of __init__ passed on to __post_init__, neither attributes nor fields.
    initvars = {n for k in cls.mro for n in k.ns.get("__initvars__", [])}
    cls.ns["__dataclass_fields__"] = [(n, s) for n, s in ordered if n not in initvars]
    cls.flags.add("dataclass")
    if "__init__" not in cls.ns:
        init_fields = [(n, s) for n, s in ordered if not (isinstance(s, FieldSpec) and not s.init)]

        def init(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
            self_, rest = a[0], a[1:]
            post_args = []
            for i, (n, spec) in enumerate(init_fields):
                if i < len(rest):
                    v = rest[i]
                elif n in k:
                    v = k[n]
                else:
                    v = _field_default(ev, spec)
                    if v is MISSING:
                        v = Unknown(f"required field `{n}` of {cls.name} has no value", ev.current_ref)
                if n in initvars:
                    post_args.append(v)
                    continue
                ev.protocol.setattr(self_, n, v)
            for n, spec in ordered:
                if isinstance(spec, FieldSpec) and not spec.init and n not in initvars:
                    d = _field_default(ev, spec)
                    if d is not MISSING:
                        ev.protocol.setattr(self_, n, d)
            post, _ = self_.cls.lookup("__post_init__")
            if isinstance(post, FunctionValue):
                ev.call(post, (self_, *post_args), {})
            return None

        cls.ns["__init__"] = NativeFunction(f"{cls.name}.__init__", init)
    return cls


def _dataclass_decorator(ev: Evaluator, value: Any, args: Any, kwargs: Any) -> Any:
    return make_dataclass(ev, value)


def _dataclass_call(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    if a and isinstance(a[0], ClassValue):
        return make_dataclass(ev, a[0])
    return NativeFunction("dataclass", lambda ev2, a2, k2: make_dataclass(ev2, a2[0]), _dataclass_decorator)


def _field(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    spec = FieldSpec()
    if "default" in k:
        spec.default = k["default"]
        spec.has_default = True
    if "default_factory" in k:
        spec.default_factory = k["default_factory"]
    if "init" in k:
        spec.init = bool(k["init"]) if not isinstance(k["init"], Unknown) else True
    if "metadata" in k:
        spec.metadata = k["metadata"]
    return spec


def _fields(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    target = a[0]
    cls = target.cls if isinstance(target, (Instance, SubclassedDict)) else target
    if not isinstance(cls, ClassValue):
        return Unknown("fields() of a non-dataclass", ev.current_ref)
    out = []
    for n, spec in cls.ns.get("__dataclass_fields__", []):
        f = Instance(ev.loader.builtins["object"])
        f.attrs["name"] = n
        f.attrs["type"] = next((k.ns["__annotations__"][n] for k in cls.mro if n in k.ns.get("__annotations__", {})),
                               Unknown(f"the annotation of field `{n}`", ev.current_ref))
        # dataclasses.Field's defaults: MISSING where none was given.
        if isinstance(spec, FieldSpec):
            f.attrs["default"] = spec.default if spec.has_default else MISSING
            f.attrs["default_factory"] = spec.default_factory if spec.default_factory is not None else MISSING
            f.attrs["init"] = spec.init
            f.attrs["metadata"] = spec.metadata if spec.metadata is not None else {}
        else:
            f.attrs["default"] = spec
            f.attrs["default_factory"] = MISSING
            f.attrs["init"] = True
            f.attrs["metadata"] = {}
        out.append(f)
    return tuple(out)


def _asdict(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    obj = a[0]
    if not isinstance(obj, Instance):
        return Unknown("asdict() of a non-dataclass", ev.current_ref)
    return {n: obj.attrs.get(n) for n, _ in obj.cls.ns.get("__dataclass_fields__", [])}


def _replace(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    obj = a[0]
    if not isinstance(obj, Instance):
        return Unknown("replace() of a non-dataclass", ev.current_ref)
    values = {n: obj.attrs.get(n) for n, _ in obj.cls.ns.get("__dataclass_fields__", [])}
    values.update(k)
    return ev.protocol.instantiate(obj.cls, (), values)


def dataclasses_module(loader: Loader) -> Any:
    return _module("dataclasses", {
        "dataclass": NativeFunction("dataclasses.dataclass", _dataclass_call, _dataclass_decorator),
        "field": NativeFunction("dataclasses.field", _field),
        "fields": NativeFunction("dataclasses.fields", _fields),
        "asdict": NativeFunction("dataclasses.asdict", _asdict),
        "replace": NativeFunction("dataclasses.replace", _replace),
        "is_dataclass": NativeFunction("dataclasses.is_dataclass", lambda ev, a, k: (
            "dataclass" in (a[0].cls.flags if isinstance(a[0], Instance) else a[0].flags if isinstance(a[0], ClassValue) else set()))),
        "MISSING": MISSING,
        "KW_ONLY": object(),
        "InitVar": loader.builtins["object"],
    })


# ---------------------------------------------------------------------- NamedTuple
class _NamedTupleNative:
    def construct(self, ev: Evaluator, cls: ClassValue, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        fields = cls.ns.get("_fields", ())
        defaults = cls.ns.get("_field_defaults", {})
        items = []
        for i, n in enumerate(fields):
            if i < len(a):
                items.append(a[i])
            elif n in k:
                items.append(k[n])
            elif n in defaults:
                items.append(defaults[n])
            else:
                items.append(Unknown(f"required field `{n}` of {cls.name} has no value", ev.current_ref))
        return NTuple(tuple(items), cls)

    def init_subclass(self, ev: Evaluator, cls: ClassValue) -> None:
        own = _own_fields(cls)
        cls.ns["_fields"] = tuple(n for n, _ in own)
        cls.ns["_field_defaults"] = {n: d for n, d in own if d is not MISSING}


_NT_NATIVE = _NamedTupleNative()


def namedtuple_base(loader: Loader) -> ClassValue:
    tup = loader.builtins["tuple"]
    return ClassValue("NamedTuple", (tup,), {}, "typing", native=_NT_NATIVE)


def make_namedtuple_class(loader: Loader, name: str, fields: list[str], defaults: list[Any]) -> ClassValue:
    cls = ClassValue(name, (namedtuple_base(loader),), {}, "collections", native=None)
    cls.ns["_fields"] = tuple(fields)
    cls.ns["_field_defaults"] = dict(zip(fields[len(fields) - len(defaults):], defaults)) if defaults else {}
    return cls


__all__ = ["BuiltinType", "make_dataclass", "dataclasses_module", "namedtuple_base"]
