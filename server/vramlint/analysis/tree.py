"""A built model counted: its parameters and buffers (tied weights once), its module tree with
each node's parameters and, after a trace, output shapes."""

from __future__ import annotations

from typing import Any

from vramlint.analysis.results import ModuleNode, ParamCounts, TensorInfo
from vramlint.engine.values import MISSING, Instance, Unknown
from vramlint.frontends.torch.module import is_module, params_and_buffers, state_of
from vramlint.frontends.torch.tensors import TensorValue


def _dims(shape: Any) -> tuple[int | None, ...] | None:
    if isinstance(shape, Unknown):
        return None
    return tuple([d if isinstance(d, int) else None for d in shape])


def _int_shape(t: TensorValue) -> bool:
    """Whether every dimension is an int: what `_tensor_unknowns` finds nothing wrong with."""
    shape = t.shape
    if isinstance(shape, Unknown):
        return False
    for d in shape:  # (a loop, not all() over a generator: this runs for every tensor of every model)
        if not isinstance(d, int):
            return False
    return True


def _tensor_unknowns(t: Any, name: str) -> list[Unknown]:
    if isinstance(t, Unknown):
        return [t]
    if not isinstance(t, TensorValue):
        return [Unknown(f"`{name}` is not a tensor", None)]
    if isinstance(t.shape, Unknown):
        return [t.shape]
    return [d for d in t.shape if isinstance(d, Unknown)] + [
        Unknown(f"`{name}` has a non-integer dimension {d!r}", None)
        for d in t.shape if not isinstance(d, (int, Unknown))
    ]


def _tensor_info(name: str, t: Any) -> TensorInfo:
    if not isinstance(t, TensorValue):
        return TensorInfo(name, None, "unknown", None, False)
    n = t.counted_numel()
    return TensorInfo(name, _dims(t.shape), t.dtype, n if isinstance(n, int) else None,
                      bool(t.requires_grad and t.is_param))


def count_params(root: Instance) -> tuple[ParamCounts, list[Unknown]]:
    unknowns: list[Unknown] = []
    total: int | None = 0
    trainable: int | None = 0
    known = 0
    params, buffer_list = params_and_buffers(root)
    for name, t in params:
        if not (isinstance(t, TensorValue) and _int_shape(t)):  # (else _tensor_unknowns finds none)
            unknowns.extend(_tensor_unknowns(t, name))
            total = trainable = None
            continue
        n = t.counted_numel()  # a 4-bit weight counts its values, as transformers and peft do
        known += n
        if total is not None:
            total += n
        if trainable is not None and t.requires_grad:
            trainable += n
    buffers: int | None = 0
    for name, t in buffer_list:
        n = t.numel() if isinstance(t, TensorValue) else None
        if isinstance(n, int) and buffers is not None:
            buffers += n
        else:
            buffers = None
            unknowns.extend(_tensor_unknowns(t, name))  # why the buffer count is missing
    return ParamCounts(total, trainable, buffers, known), unknowns


def build_tree(inst: Instance, path: str = "", seen: set[int] | None = None, outputs: bool = False) -> ModuleNode:
    node, _ = _build_tree(inst, path, set() if seen is None else seen, outputs)
    return node


def _build_tree(inst: Instance, path: str, seen: set[int], outputs: bool) -> tuple[ModuleNode, dict[int, int | None]]:
    """The node and the parameters of its subtree by identity (so tied weights count once)."""
    st = state_of(inst)
    params: list[TensorInfo] = []
    sizes: dict[int, int | None] = {}
    for name, t in st.params.items():  # (one loop for its rows and its sizes: this runs per module)
        if t is not None:
            params.append(_tensor_info(name, t))
            n = t.numel() if isinstance(t, TensorValue) and _int_shape(t) else None
            sizes[id(t)] = n if isinstance(n, int) else None
    cls = inst.cls
    node = ModuleNode(
        path=path,
        class_name=cls.name,
        qualname=f"{cls.module_name}.{cls.qualname}",
        ref=st.ref,
        params=params,
        buffers=[_tensor_info(n, t) for n, t in st.buffers.items() if t is not None],
    )
    if outputs and st.output is not MISSING:
        node.output_shape = shape_of(st.output)
        node.calls = st.calls
        node.output_shapes = [shape_of(o) for o in st.call_outputs]
    seen.add(id(inst))
    for name, child in st.modules.items():
        if is_module(child) and id(child) not in seen:
            sub, sub_sizes = _build_tree(child, f"{path}.{name}" if path else name, seen, outputs)
            node.children.append(sub)
            sizes.update(sub_sizes)
    total = 0
    for n in sizes.values():
        if n is None:
            total = -1
            break
        total += n
    node.param_count = None if total < 0 else total
    return node, sizes


def output_unknowns(v: Any, depth: int = 0) -> list[Unknown]:
    if isinstance(v, Unknown):
        return [v]
    if isinstance(v, TensorValue):
        return _tensor_unknowns(v, "output")
    if depth < 3 and isinstance(v, (tuple, list, dict)):
        items = v.values() if isinstance(v, dict) else v
        return [u for x in items for u in output_unknowns(x, depth + 1)]
    return []


def shape_of(v: Any) -> tuple[int | None, ...] | None:
    """The shape of a tensor, or of the first tensor in a tuple/list/dict output."""
    if isinstance(v, TensorValue):
        return _dims(v.shape)
    items = list(v.values()) if isinstance(v, dict) else list(v) if isinstance(v, (tuple, list)) else []
    for x in items:
        s = shape_of(x)
        if s is not None:
            return s
    return None
