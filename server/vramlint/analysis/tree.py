"""A built model counted: its parameters and buffers (tied weights once), its module tree with
each node's parameters and, after a trace, output shapes."""

from __future__ import annotations

from typing import Any

from vramlint.analysis.results import ModuleNode, ParamCounts, TensorInfo
from vramlint.engine.values import MISSING, Instance, Unknown
from vramlint.frontends.torch.module import ModuleState, params_and_buffers, state_of
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


def _int_numel(shape: Any) -> int | None:
    """numel() of a shape whose every dimension is an int (what `_int_shape` accepts), else None:
    the two in one loop, for every parameter of every model."""
    if isinstance(shape, Unknown):
        return None
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


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
    counts = _plain_counts(root)
    if counts is not None:
        return counts, []
    # Some tensor is not a plain one with int dims: the walk with names, to say which and why.
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


def _plain_counts(root: Instance) -> ParamCounts | None:
    """count_params's answer when every parameter and buffer is a tensor with int dims (it then
    finds no unknowns), without the names of params_and_buffers (a string per tensor of every
    model); None otherwise. The same walk: pre-order, each module and each tensor once."""
    seen_m: set[int] = set()
    seen_p: set[int] = set()
    seen_b: set[int] = set()
    total = trainable = buffers = 0
    stack = [root]
    while stack:
        m = stack.pop()
        if id(m) in seen_m:
            continue
        seen_m.add(id(m))
        st = state_of(m)
        for t in st.params.values():
            if t is None or id(t) in seen_p:
                continue
            seen_p.add(id(t))
            if not (isinstance(t, TensorValue) and _int_shape(t)):
                return None
            n = t.counted_numel()
            total += n
            if t.requires_grad:
                trainable += n
        for t in st.buffers.values():
            if t is None or id(t) in seen_b:
                continue
            seen_b.add(id(t))
            if not (isinstance(t, TensorValue) and _int_shape(t)):
                return None
            buffers += t.numel()
        # (reversed: the children are popped in their order, as named_modules visits them)
        stack.extend([c for c in reversed(st.modules.values()) if isinstance(c, Instance) and isinstance(c.state, ModuleState)])
    return ParamCounts(total, trainable, buffers, total)


def build_tree(inst: Instance, path: str = "", seen: set[int] | None = None, outputs: bool = False) -> ModuleNode:
    walk = _Walk()
    node = _build_tree(inst, path, set() if seen is None else seen, outputs, walk)
    _param_counts(walk.ids, walk.sizes, walk.spans)
    return node


def tree_and_counts(inst: Instance) -> tuple[ModuleNode, ParamCounts | None]:
    """build_tree(inst) and, from the same walk, count_params's counts when every parameter is a
    plain tensor and every parameter and buffer has int dims (count_params then finds no
    unknowns); else None. (Counting a model is a second walk over each of its modules and
    tensors: when nothing is traced the tree is built anyway.)"""
    walk = _Walk()
    node = _build_tree(inst, "", set(), False, walk)
    _param_counts(walk.ids, walk.sizes, walk.spans)
    if not walk.plain:
        return node, None
    total = trainable = buffers = 0
    seen: set[int] = set()
    for i, n, grad in zip(walk.ids, walk.sizes, walk.grads):
        if i not in seen:
            seen.add(i)
            total += n  # type: ignore[operator]  # (plain: every size is an int)
            if grad:
                trainable += n  # type: ignore[operator]
    seen.clear()
    for i, n in zip(walk.buffer_ids, walk.buffer_sizes):
        if i not in seen:
            seen.add(i)
            buffers += n
    return node, ParamCounts(total, trainable, buffers, total)


class _Walk:
    """What _build_tree gathers over a model, in pre-order: each parameter's id, size and whether
    it requires grad, each subtree's span of them, its buffers' ids and sizes, and whether every
    tensor is a plain one with int dims (tree_and_counts's counts)."""

    __slots__ = ("ids", "sizes", "grads", "spans", "buffer_ids", "buffer_sizes", "plain")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.sizes: list[int | None] = []
        self.grads: list[bool] = []
        self.spans: list[tuple[ModuleNode, int, int]] = []
        self.buffer_ids: list[int] = []
        self.buffer_sizes: list[int] = []
        self.plain = True


def _build_tree(inst: Instance, path: str, seen: set[int], outputs: bool, walk: _Walk) -> ModuleNode:
    """The node of `inst`, its parameters and buffers noted in `walk` in pre-order, and its
    subtree's span of them. (It runs for every module of every model: the common cases are
    written out, not called.)"""
    st = state_of(inst)
    ids = walk.ids
    sizes = walk.sizes
    start = len(ids)
    params: list[TensorInfo] = []
    for name, t in st.params.items():  # (one loop for its rows and its sizes)
        if t is None:
            continue
        n = _int_numel(t.shape) if type(t) is TensorValue else None
        if n is not None:  # a plain tensor with int dims: its numel is its count
            shape = t.shape
            params.append(TensorInfo(name, shape if type(shape) is tuple else tuple(shape), t.dtype, n,
                                     bool(t.requires_grad and t.is_param)))
            walk.grads.append(bool(t.requires_grad))
        else:
            params.append(_tensor_info(name, t))
            n = t.numel() if isinstance(t, TensorValue) and _int_shape(t) else None
            walk.plain = False
            walk.grads.append(False)
        ids.append(id(t))
        sizes.append(n if isinstance(n, int) else None)
    buffers: list[TensorInfo] = []
    if st.buffers:
        for name, t in st.buffers.items():
            if t is None:
                continue
            n = _int_numel(t.shape) if type(t) is TensorValue else None
            if n is not None:  # (as a parameter above: BatchNorm's three buffers are most of them)
                shape = t.shape
                buffers.append(TensorInfo(name, shape if type(shape) is tuple else tuple(shape), t.dtype, n,
                                          bool(t.requires_grad and t.is_param)))
                walk.buffer_ids.append(id(t))
                walk.buffer_sizes.append(n)
                continue
            info = _tensor_info(name, t)
            buffers.append(info)
            if isinstance(t, TensorValue) and _int_shape(t):
                walk.buffer_ids.append(id(t))
                # (a plain tensor's row has its numel; count_params counts a buffer's numel)
                walk.buffer_sizes.append(info.numel if type(t) is TensorValue else t.numel())  # type: ignore[arg-type]
            else:
                walk.plain = False
    cls = inst.cls
    # (path, class_name, qualname, ref, params, buffers: by position, a third faster than by name)
    node = ModuleNode(path, cls.name, f"{cls.module_name}.{cls.qualname}", st.ref, params, buffers)
    if outputs and st.output is not MISSING:
        node.output_shape = shape_of(st.output)
        node.calls = st.calls
        node.output_shapes = [shape_of(o) for o in st.call_outputs]
    seen.add(id(inst))
    children = node.children
    for name, child in st.modules.items():
        if isinstance(child, Instance) and isinstance(child.state, ModuleState) and id(child) not in seen:
            children.append(_build_tree(child, f"{path}.{name}" if path else name, seen, outputs, walk))
    walk.spans.append((node, start, len(ids)))
    return node


def _param_counts(ids: list[int], sizes: list[int | None], spans: list[tuple[ModuleNode, int, int]]) -> None:
    """Each node's parameters and its children's, a tensor tied to several modules once; None
    where one of them has an unknown size."""
    if len(set(ids)) == len(ids):  # no tied tensor (most models): sums over the spans
        sums = [0]
        nones = [0]
        for n in sizes:
            sums.append(sums[-1] + (n or 0))
            nones.append(nones[-1] + (n is None))
        for node, a, b in spans:
            node.param_count = None if nones[b] > nones[a] else sums[b] - sums[a]
        return
    for node, a, b in spans:
        by_id = dict(zip(ids[a:b], sizes[a:b]))
        values = by_id.values()
        node.param_count = None if None in values else sum(values)  # type: ignore[arg-type]


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
