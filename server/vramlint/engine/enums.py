"""enum.Enum: members become instances with `name` and `value`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import _module
from vramlint.engine.values import (
    ClassMethod,
    ClassValue,
    FunctionValue,
    Instance,
    NativeFunction,
    Property,
    StaticMethod,
    Unknown,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


class _EnumNative:
    def init_subclass(self, ev: Evaluator, cls: ClassValue) -> None:
        cls.flags.add("enum")
        # The enum's own hooks come first even when a data type precedes Enum among the bases
        # (`class Act(str, Enum)`: else `Act("relu")` would be str's constructor).
        cls.native = self
        members = {}
        last = 0
        for k, v in list(cls.ns.items()):
            if k.startswith("_") or isinstance(v, (FunctionValue, NativeFunction, StaticMethod, ClassMethod, Property, ClassValue)):
                continue
            if isinstance(v, _Auto):  # numbered per class, after the previous integer value
                v = last + 1
                if any(b.name == "StrEnum" and b.module_name == "enum" for b in cls.mro):
                    v = k.lower()
                elif cls.is_subclass_of(ev.builtins["str"]):
                    v = str(v)  # `class C(str, Enum)`: the mix-in converts the number
            if isinstance(v, int) and not isinstance(v, bool):
                last = v
            mixin = isinstance(v, (str, int)) and (cls.is_subclass_of(ev.builtins["str"])
                                                   or cls.is_subclass_of(ev.builtins["int"]))
            m = MixinMember(cls) if mixin else Instance(cls)
            m.attrs["name"] = k
            m.attrs["_name_"] = k
            m.attrs["value"] = v
            m.attrs["_value_"] = v
            cls.ns[k] = m
            members[k] = m
        cls.ns["__members__"] = members

    def construct(self, ev: Evaluator, cls: ClassValue, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        if not a:
            return Unknown("enum lookup without a value", ev.current_ref)
        v = a[0]
        if isinstance(v, Instance) and v.cls is cls:
            return v
        for m in cls.ns.get("__members__", {}).values():
            if m.attrs.get("value") == v and not isinstance(v, Unknown):
                return m
        return Unknown(f"{cls.name}({v!r}) is not a known member", ev.current_ref)

    def class_getitem(self, ev: Evaluator, cls: ClassValue, idx: Any) -> Any:
        members = cls.ns.get("__members__", {})
        if isinstance(idx, str) and idx in members:
            return members[idx]
        raise ev.raise_error("KeyError", repr(idx))

    def iterate_class(self, ev: Evaluator, cls: ClassValue) -> Any:
        return list(cls.ns.get("__members__", {}).values())


class MixinMember(Instance):
    """A member of `class T(str, Enum)` (or an int enum): it *is* its value to dicts and sets, as
    in CPython (`{T.L: 10}["L"]`, peft's `get_peft_model` table keyed by a str-enum)."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self.attrs["value"])

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        value = other.attrs.get("value") if isinstance(other, MixinMember) else other
        return not isinstance(value, Instance) and bool(self.attrs["value"] == value)


class _Auto:
    """`enum.auto()`: its value is given when the class is made (1, 2, ... within each enum)."""


_ENUM = _EnumNative()


def enum_module(loader: Loader) -> Any:
    obj = loader.builtins["object"]
    enum = ClassValue("Enum", (obj,), {"__class_getitem__": True}, "enum", native=_ENUM)
    int_enum = ClassValue("IntEnum", (loader.builtins["int"], enum), {}, "enum", native=_ENUM)
    str_enum = ClassValue("StrEnum", (loader.builtins["str"], enum), {}, "enum", native=_ENUM)

    def auto(ev: Evaluator, a: Any, k: Any) -> Any:
        return _Auto()

    return _module("enum", {"Enum": enum, "IntEnum": int_enum, "StrEnum": str_enum, "Flag": enum,
                            "IntFlag": int_enum, "auto": NativeFunction("enum.auto", auto),
                            "unique": NativeFunction("enum.unique", lambda ev, a, k: a[0], lambda ev, v, a, k: v)})
