"""Containers: Sequential (also from an OrderedDict), ModuleList, ModuleDict, ParameterList, ParameterDict."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, Instance, Kwargs, NativeFunction, Unknown
from vramlint.frontends.torch.catalog import (
    COMPOSITE,
    CUSTOM_NATIVES,
    EXTRA_NAMESPACES,
    RAISES,
    LayerNative,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)
from vramlint.frontends.torch.module import is_module, state_of
from vramlint.frontends.torch.tensors import TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator



def _table(inst: Instance, params: bool) -> dict[str, Any]:
    st = state_of(inst)
    return st.params if params else st.modules


class ContainerNative(LayerNative):
    params = False

    def iterate(self, ev: Evaluator, inst: Instance) -> Any:
        table = _table(inst, self.params)
        if self.spec.name in ("ModuleDict", "ParameterDict"):
            return list(table.keys())
        return [v for v in table.values()]


class ParamContainerNative(ContainerNative):
    params = True


def _index(ev: Evaluator, inst: Instance, idx: Any, params: bool) -> Any:
    table = _table(inst, params)
    keys = list(table.keys())
    if isinstance(idx, Unknown):
        return idx
    if isinstance(idx, str):
        if idx in table:
            return table[idx]
        raise ev.raise_error("KeyError", idx)
    if isinstance(idx, slice):
        return slice_container(ev, inst, idx, keys, params)
    if isinstance(idx, bool) or not isinstance(idx, int):
        return Unknown("container index", ev.current_ref)
    n = len(keys)
    if not -n <= idx < n:
        raise ev.raise_error("IndexError", f"index {idx} is out of range")
    return table[keys[idx]]


def slice_container(ev: Evaluator, inst: Instance, idx: slice, keys: list[str], params: bool) -> Any:
    if any(isinstance(x, Unknown) for x in (idx.start, idx.stop, idx.step)):
        return Unknown("slice with unknown bounds", ev.current_ref)
    table = _table(inst, params)
    chosen = keys[idx]
    new = ev.protocol.instantiate(inst.cls if inst.cls.native is not None else ev.loader.frontend_state["torch"].layers["Sequential"], (), {})
    tgt = _table(new, params)
    if inst.cls.name == "Sequential" or inst.cls.native is None:
        for k in chosen:
            tgt[k] = table[k]
    else:
        for i, k in enumerate(chosen):
            tgt[str(i)] = table[k]
    return new


def _append(params: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst, v = a[0], a[1]
        table = _table(inst, params)
        if params and isinstance(v, TensorValue):
            if not v.is_param:
                v = TensorValue(v.shape, v.dtype)
                v.is_param = True
                v.requires_grad = True
        table[str(len(table))] = v
        if isinstance(v, Unknown):
            ev.record(v)
        return inst

    return impl


def _extend(params: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        items = ev.list_of(a[1])
        if isinstance(items, Unknown):
            ev.record(items)
            return a[0]
        app = _append(params)
        for x in items:
            app(ev, (a[0], x), {})
        return a[0]

    return impl


def _insert(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, index, mod = a[0], a[1], a[2]
    table = _table(inst, False)
    items = list(table.values())
    if not isinstance(index, int):
        ev.record(Unknown("insert at an unknown index", ev.current_ref))
        return None
    items.insert(index, mod)
    table.clear()
    for i, m in enumerate(items):
        table[str(i)] = m
    return None


def _setitem(params: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst, idx, v = a[0], a[1], a[2]
        table = _table(inst, params)
        if isinstance(idx, int) and not isinstance(idx, bool):
            keys = list(table.keys())
            if -len(keys) <= idx < len(keys):
                table[keys[idx]] = v
                return None
            raise ev.raise_error("IndexError", "index out of range")
        if isinstance(idx, str):
            table[idx] = v
            return None
        ev.record(Unknown("container assignment with an unknown key", ev.current_ref))
        return None

    return impl


def _delitem(params: bool, renumber: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst, idx = a[0], a[1]
        table = _table(inst, params)
        keys = list(table.keys())
        if isinstance(idx, str):
            table.pop(idx, None)
        elif isinstance(idx, int) and not isinstance(idx, bool):
            if not -len(keys) <= idx < len(keys):
                raise ev.raise_error("IndexError", f"index {idx} is out of range")
            del table[keys[idx]]
        elif isinstance(idx, slice) and not any(isinstance(x, Unknown) for x in (idx.start, idx.stop, idx.step)):
            for key in keys[idx]:
                del table[key]
        else:
            ev.record(Unknown("container deletion with an unknown index", ev.current_ref))
            return None
        if renumber:  # Sequential and ModuleList renumber their entries after a deletion
            vals = list(table.values())
            table.clear()
            for i, m in enumerate(vals):
                table[str(i)] = m
        return None

    return impl


def _sequential_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst = a[0]
    table = state_of(inst).modules
    args = a[1:]
    if len(args) == 1 and isinstance(args[0], dict):
        for name, m in args[0].items():
            table[str(name)] = m
            if isinstance(m, Unknown):
                ev.record(m)
        return None
    for i, m in enumerate(args):
        if not (m is None or is_module(m)):
            if isinstance(m, Unknown):
                ev.record(m)
            else:
                raise ev.raise_error("TypeError", f"Sequential: argument {i} is not a Module")
        table[str(i)] = m
    return None


def _list_init(params: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        src = a[1] if len(a) > 1 else k.get("modules", k.get("values", k.get("parameters")))
        if src is not None:
            _extend(params)(ev, (a[0], src), {})
        return None

    return impl


def _dict_init(params: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        src = a[1] if len(a) > 1 else k.get("modules", k.get("parameters"))
        if src is not None:
            _update(params)(ev, (a[0], src), {})
        return None

    return impl


def _update(params: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst, src = a[0], a[1]
        table = _table(inst, params)
        if isinstance(src, dict):
            pairs = list(src.items())
        elif isinstance(src, Instance) and src.cls.name in ("ModuleDict", "ParameterDict"):
            pairs = list(_table(src, params).items())
        else:
            items = ev.list_of(src)
            if isinstance(items, Unknown):
                ev.record(items)
                return None
            pairs = [tuple(p) for p in items]
        for key, v in pairs:
            if params and isinstance(v, TensorValue) and not v.is_param:
                v = TensorValue(v.shape, v.dtype)
                v.is_param = True
                v.requires_grad = True
            table[str(key)] = v
        return None

    return impl


def _getitem(params: bool) -> Any:
    return lambda ev, a, k: _index(ev, a[0], a[1], params)


def _len(params: bool) -> Any:
    return lambda ev, a, k: len(_table(a[0], params))


def _contains(params: bool) -> Any:
    return lambda ev, a, k: a[1] in _table(a[0], params) if isinstance(a[1], str) else Unknown("in", ev.current_ref)


def _pop(params: bool, renumber: bool) -> Any:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        key = a[1] if len(a) > 1 else k.get("key", -1)
        if isinstance(key, str) or not renumber:
            return _table(inst, params).pop(key, None) if isinstance(key, str) else None
        v = _index(ev, inst, key, params)  # like torch: v = self[key]; del self[key]
        _delitem(params, renumber)(ev, (inst, key), {})
        return v

    return impl


def _add(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    left, right = a[0], a[1]
    new = ev.protocol.instantiate(ev.loader.frontend_state["torch"].layers["Sequential"], (), {})
    t = state_of(new).modules
    for m in [*state_of(left).modules.values(), *state_of(right).modules.values()]:
        t[str(len(t))] = m
    return new


def _ns(params: bool, kind: str) -> Any:
    def make() -> dict[str, Any]:
        fns: dict[str, Any] = {
            "__getitem__": _getitem(params), "__setitem__": _setitem(params),
            "__delitem__": _delitem(params, renumber=kind != "dict"),
            "__len__": _len(params), "__contains__": _contains(params),
        }
        if kind == "sequential":
            fns.update({"__init__": _sequential_init, "append": _append(False), "extend": _extend(False),
                        "insert": _insert, "pop": _pop(False, True), "__add__": _add})
        elif kind == "list":
            fns.update({"__init__": _list_init(params), "append": _append(params), "extend": _extend(params),
                        "insert": _insert, "pop": _pop(params, True), "__iadd__": lambda ev, a, k: _extend(params)(ev, a, k)})
        else:
            fns.update({
                "__init__": _dict_init(params), "update": _update(params), "pop": _pop(params, False),
                "keys": lambda ev, a, k: list(_table(a[0], params).keys()),
                "values": lambda ev, a, k: list(_table(a[0], params).values()),
                "items": lambda ev, a, k: list(_table(a[0], params).items()),
            })
        return {name: NativeFunction(f"{kind}.{name}", fn) for name, fn in fns.items()}

    return make


register(
    LayerSpec("Sequential", "*args"),
    LayerSpec("ModuleList", "modules=None"),
    LayerSpec("ModuleDict", "modules=None"),
    LayerSpec("ParameterList", "values=None"),
    LayerSpec("ParameterDict", "parameters=None"),
    # What torch.nn.utils.parametrize puts under `layer.parametrizations.<name>` (see nn_utils.py).
    LayerSpec("ParametrizationList", "*args, **kwargs", base="ModuleList", module="torch.nn.utils.parametrize"),
)
EXTRA_NAMESPACES.update({
    "Sequential": _ns(False, "sequential"), "ModuleList": _ns(False, "list"), "ModuleDict": _ns(False, "dict"),
    "ParameterList": _ns(True, "list"), "ParameterDict": _ns(True, "dict"),
})
CUSTOM_NATIVES.update({
    "Sequential": ContainerNative, "ModuleList": ContainerNative, "ModuleDict": ContainerNative,
    "ParametrizationList": ContainerNative,
    "ParameterList": ParamContainerNative, "ParameterDict": ParamContainerNative,
})
_ = OrderedDict


# ---------------------------------------------------------------------- forward
def _sequential_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = first_input(a, k, "input")
    for layer in state_of(m).modules.values():
        if layer is None:
            continue
        x = ev.call(layer, (x,), {}) if not isinstance(layer, Unknown) else layer
    return x


def _not_callable(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    # torch: Module's `_forward_unimplemented` for ModuleList/Dict, a RuntimeError of their own for
    # ParameterList/Dict.
    if m.cls.name.startswith("Parameter"):
        raise ev.raise_error("RuntimeError", f"{m.cls.name} should not be called.")
    raise ev.raise_error("NotImplementedError", f"{m.cls.name} has no forward; call its elements")


def _parametrized(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    """`layer.parametrizations.weight()`: the parametrized tensor, of its original's shape
    (weight norm's direction `original1`; the others' `original`)."""
    params = state_of(m).params
    original = params.get("original1", params.get("original"))
    if not isinstance(original, TensorValue):
        return Unknown(f"{m.cls.name} without its original tensor", ev.current_ref)
    return TensorValue(original.shape, original.dtype)


forward_rule("Sequential", saves=COMPOSITE)(_sequential_forward)
forward_rule("ModuleList", "ModuleDict", "ParameterList", "ParameterDict", saves=RAISES)(_not_callable)
forward_rule("ParametrizationList", saves="parametrizationlist")(_parametrized)
