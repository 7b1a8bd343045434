"""Symbolic tensors and the functional graph.

`keras.Input` gives a `KerasTensor`: a tensor of the torch frontend (its None dimensions take the
size `SYMBOLIC`) that remembers the node that made it. Calling a layer (or a `keras.ops` function,
an operator) on symbolic tensors runs it on plain tensors of the same shapes and records a node;
a functional model replays its nodes on real tensors when it is called (the forward trace, the
memory estimate), so its ops are recorded with the lines of the code that built the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, Instance, Kwargs, NativeFunction, Unknown
from vramlint.frontends.torch.tensors import TensorValue, dtype_name

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

SYMBOLIC = 1  # the size a None dimension (the batch) takes in symbolic tensors

class KerasNode:
    """One call in a functional graph: a layer (or an op) applied to symbolic arguments."""

    __slots__ = ("op", "args", "kwargs", "ref")

    def __init__(self, op: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ref: Any) -> None:
        self.op = op  # a layer Instance, or a function (ev, args, kwargs) -> value
        self.args = args
        self.kwargs = kwargs
        self.ref = ref  # the call in the code: where the replayed ops are reported


class KerasTensor(TensorValue):
    """A symbolic tensor: `keras.Input(...)` or what a layer called on one returned."""

    __slots__ = ("node", "path", "none_dims")
    shares_mutable_fields = True  # a copy shares its node of the graph (Protocol.strict_copy fails)

    def __init__(self, spec: TensorValue, node: KerasNode | None, path: tuple[Any, ...] = (),
                 none_dims: frozenset[int] = frozenset()) -> None:
        super().__init__(spec.shape, spec.dtype)
        self.node = node
        self.path = path  # where this tensor sits in the node's result
        self.none_dims = none_dims  # dimensions Keras reports as None (the batch)

    def __repr__(self) -> str:
        return f"KerasTensor{self.keras_shape()}:{self.dtype}"

    def keras_shape(self) -> tuple[Any, ...] | Unknown:
        if isinstance(self.shape, Unknown):
            return self.shape
        return tuple(None if i in self.none_dims else d for i, d in enumerate(self.shape))

    def plain(self) -> TensorValue:
        return TensorValue(self.shape, self.dtype)

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name == "shape":
            return self.keras_shape()
        if name == "dtype":
            return self.dtype
        if name == "name":
            return "keras_tensor"
        return _symbolic_method(ev, self, name)

    def binop(self, ev: Evaluator, op: str, other: Any, reflected: bool) -> Any:
        def apply(ev2: Evaluator, a: Args, k: Kwargs) -> Any:
            x, y = a
            if isinstance(x, TensorValue):
                return x.binop(ev2, op, y, reflected)
            return Unknown(f"operator {op} on a non-tensor", ev2.current_ref)

        return symbolic_apply(ev, apply, (self, other), {})

    def compare(self, ev: Evaluator, dunder: str, other: Any) -> Any:
        return symbolic_apply(ev, lambda ev2, a, k: TensorValue.compare(a[0], ev2, dunder, a[1]), (self, other), {})

    def unary(self, ev: Evaluator, dunder: str) -> Any:
        return symbolic_apply(ev, lambda ev2, a, k: TensorValue.unary(a[0], ev2, dunder), (self,), {})

    def getitem(self, ev: Evaluator, idx: Any) -> Any:
        return symbolic_apply(ev, lambda ev2, a, k: TensorValue.getitem(a[0], ev2, a[1]), (self, idx), {})

    def iterate(self, ev: Evaluator) -> Any:
        return Unknown("iteration over a symbolic Keras tensor", ev.current_ref)


def _symbolic_method(ev: Evaluator, t: KerasTensor, name: str) -> Any:
    """`x.reshape(...)`-style methods on a symbolic tensor: recorded like ops."""
    method = TensorValue.get_attribute(t.plain(), ev, name)
    if not isinstance(method, NativeFunction):
        return method

    def apply(ev2: Evaluator, a: Args, k: Kwargs) -> Any:
        real = a[0]
        m = real.get_attribute(ev2, name) if isinstance(real, TensorValue) else Unknown("method of a non-tensor")
        return ev2.call(m, a[1:], k)

    return NativeFunction(f"KerasTensor.{name}", lambda ev2, a, k: symbolic_apply(ev2, apply, (t, *a), k))


def has_symbolic(v: Any, depth: int = 0) -> bool:
    if isinstance(v, KerasTensor):
        return True
    if depth < 4 and isinstance(v, (list, tuple)):
        return any(has_symbolic(x, depth + 1) for x in v)
    if depth < 4 and isinstance(v, dict):
        return any(has_symbolic(x, depth + 1) for x in v.values())
    return False


def unwrap(v: Any, depth: int = 0) -> Any:
    """Plain tensors of the same shapes in place of symbolic ones."""
    if isinstance(v, KerasTensor):
        return v.plain()
    if depth < 4 and isinstance(v, list):
        return [unwrap(x, depth + 1) for x in v]
    if depth < 4 and isinstance(v, tuple):
        return tuple(unwrap(x, depth + 1) for x in v)
    if depth < 4 and isinstance(v, dict):
        return {k: unwrap(x, depth + 1) for k, x in v.items()}
    return v


def wrap(v: Any, node: KerasNode, none_batch: bool, path: tuple[Any, ...] = ()) -> Any:
    """Symbolic tensors in place of the plain ones a node returned."""
    if isinstance(v, TensorValue):
        dims = frozenset({0}) if none_batch and isinstance(v.shape, tuple) and v.shape else frozenset()
        return KerasTensor(v, node, path, dims)
    if len(path) < 4 and isinstance(v, list):
        return [wrap(x, node, none_batch, (*path, i)) for i, x in enumerate(v)]
    if len(path) < 4 and isinstance(v, tuple):
        return tuple(wrap(x, node, none_batch, (*path, i)) for i, x in enumerate(v))
    if len(path) < 4 and isinstance(v, dict):
        return {k: wrap(x, node, none_batch, (*path, k)) for k, x in v.items()}
    return v


def none_batch(v: Any) -> bool:
    return any(0 in t.none_dims for t in flat_symbolic(v))


def flat_symbolic(v: Any, depth: int = 0) -> Iterator[KerasTensor]:
    if isinstance(v, KerasTensor):
        yield v
    elif depth < 4 and isinstance(v, (list, tuple)):
        for x in v:
            yield from flat_symbolic(x, depth + 1)
    elif depth < 4 and isinstance(v, dict):
        for x in v.values():
            yield from flat_symbolic(x, depth + 1)


def symbolic_apply(ev: Evaluator, fn: Callable[[Evaluator, Args, Kwargs], Any], args: Args, kwargs: Kwargs) -> Any:
    """An op on arguments some of which are symbolic: computed on plain tensors, recorded as a node."""
    out = fn(ev, unwrap(args), unwrap(kwargs))
    if isinstance(out, Unknown):
        return out
    return wrap(out, KerasNode(fn, args, kwargs, ev.current_ref), none_batch((args, kwargs)))


def make_input(shape: Any, dtype: Any = None, batch_size: Any = None, ref: Any = None) -> KerasTensor | Unknown:
    """keras.Input(shape=...): a symbolic tensor with the batch (and each None) of size SYMBOLIC."""
    if isinstance(shape, Unknown):
        return shape
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        return Unknown("keras.Input: the shape is not a tuple", ref)
    dims: list[Any] = [batch_size if isinstance(batch_size, int) else SYMBOLIC]
    nones = set() if isinstance(batch_size, int) else {0}
    for i, d in enumerate(shape, start=1):
        if d is None:
            dims.append(SYMBOLIC)
            nones.add(i)
        elif isinstance(d, Unknown) or (isinstance(d, int) and not isinstance(d, bool)):
            dims.append(d)
        else:
            return Unknown(f"keras.Input: dimension {d!r} is not an int", ref)
    return KerasTensor(TensorValue(tuple(dims), keras_dtype(dtype)), None, (), frozenset(nones))


def keras_dtype(v: Any, default: str = "float32") -> str:
    if v is None:
        return default
    name = dtype_name(v, default)
    return {"int": "int32", "float": "float32", "mixed_float16": "float32", "mixed_bfloat16": "float32"}.get(name, name)


# ---------------------------------------------------------------------- the graph replayed
def run_graph(ev: Evaluator, inputs: Any, outputs: Any, given: Args) -> Any:
    """A functional model called on real tensors: its nodes evaluated in dependency order."""
    memo: dict[int, Any] = {}
    flat_in = list(flat_symbolic(inputs))
    real: list[Any]
    if len(given) == 1 and isinstance(given[0], (list, tuple)) and len(flat_in) > 1:
        real = list(given[0])
    elif len(given) == 1 and isinstance(given[0], dict) and isinstance(inputs, dict):
        real = [given[0].get(k) for k in inputs]
    else:
        real = list(given)
    if len(real) != len(flat_in):
        raise ev.raise_error("ValueError", f"the model expects {len(flat_in)} input(s), got {len(real)}")
    for kt, v in zip(flat_in, real, strict=True):
        memo[id(kt)] = v
    results: dict[int, Any] = {}
    for node in _order(outputs, memo):
        args = _substitute(ev, node.args, memo, results)
        kwargs = _substitute(ev, node.kwargs, memo, results)
        prev = ev.current_ref
        ev.current_ref = node.ref
        try:
            if isinstance(node.op, Instance):
                results[id(node)] = ev.call(node.op, args, kwargs)
            else:
                results[id(node)] = node.op(ev, args, kwargs)
        finally:
            ev.current_ref = prev
    return _substitute(ev, outputs, memo, results)


def graph_nodes(outputs: Any, known: Any) -> list[KerasNode]:
    """The nodes the outputs depend on (stopping at tensors in `known`, ids), dependencies first."""
    return _order(outputs, known)


def _order(outputs: Any, known: Any) -> list[KerasNode]:
    """The nodes the outputs depend on, each after the nodes it reads (iterative post-order)."""
    order: list[KerasNode] = []
    seen: set[int] = set()
    stack: list[tuple[KerasNode, bool]] = [(t.node, False) for t in flat_symbolic(outputs)
                                           if t.node is not None and id(t) not in known][::-1]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for t in flat_symbolic((node.args, node.kwargs)):
            if t.node is not None and id(t) not in known and id(t.node) not in seen:
                stack.append((t.node, False))
    return order


def _substitute(ev: Evaluator, v: Any, memo: dict[int, Any], results: dict[int, Any], depth: int = 0) -> Any:
    if isinstance(v, KerasTensor):
        if id(v) in memo:
            return memo[id(v)]
        if v.node is None or id(v.node) not in results:
            raise ev.raise_error("ValueError", "a model output is not connected to the model's inputs")
        out = results[id(v.node)]
        for p in v.path:
            try:
                out = out[p]
            except (KeyError, IndexError, TypeError):
                return Unknown("a layer's output does not have the structure it had when the model was built",
                               ev.current_ref)
        return out
    if depth < 4 and isinstance(v, list):
        return [_substitute(ev, x, memo, results, depth + 1) for x in v]
    if depth < 4 and isinstance(v, tuple):
        return tuple(_substitute(ev, x, memo, results, depth + 1) for x in v)
    if depth < 4 and isinstance(v, dict):
        return {k: _substitute(ev, x, memo, results, depth + 1) for k, x in v.items()}
    return v


def graph_layers(outputs: Any) -> list[Instance]:
    """The layers of a functional graph, each once, in the order their calls were made."""
    out: list[Instance] = []
    seen: set[int] = set()
    for node in _order(outputs, {}):
        if isinstance(node.op, Instance) and id(node.op) not in seen:
            seen.add(id(node.op))
            out.append(node.op)
    return out

def input_shape_of(v: Any, depth: int = 0) -> Any:
    """What Keras passes to build(): a shape tuple (None for the symbolic batch), or a list of them."""
    if isinstance(v, KerasTensor):
        return v.keras_shape()
    if isinstance(v, TensorValue):
        return v.shape if isinstance(v.shape, Unknown) else tuple(v.shape)
    if depth < 3 and isinstance(v, (list, tuple)):
        return [input_shape_of(x, depth + 1) for x in v]
    if depth < 3 and isinstance(v, dict):
        return {k: input_shape_of(x, depth + 1) for k, x in v.items()}
    return Unknown("the input of a Keras layer is not a tensor")

def input_specs(inputs: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Per-sample shapes (None where Keras has None) and dtypes of symbolic inputs."""
    out = []
    for t in flat_symbolic(inputs):
        shape = t.keras_shape()
        if isinstance(shape, tuple):
            out.append((tuple(shape[1:]), t.dtype))
    return out
