"""The torch.nn layer catalog: one LayerSpec per layer class.

A spec is data (the constructor's signature, its base class) plus, for layers with weights, a
small rule function from the bound arguments to the parameters, buffers and child modules the
layer creates. Beside it, in the same family file, `forward_rule` registers the layer's forward
(its output shapes) and what autograd keeps when it runs (`saves`); a base class torch never
calls is declared `abstract`. tests/test_specs.py checks that every spec has both, against torch.
Families live in their own files: `linear.py`, `conv.py`, `norm.py`,
`embedding.py`, `recurrent.py`, `attention.py` (MultiheadAttention, Transformer),
`parameter_free.py` (activations, pooling, dropout...), `containers.py` (Sequential...).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import (
    MISSING,
    ClassValue,
    Instance,
    NativeFunction,
    Unknown,
    UnknownValueError,
)
from vramlint.frontends.torch.module import ModuleNative, state_of
from vramlint.frontends.torch.tensors import TensorValue, dtype_name
from vramlint.memory.autograd_rules import MODULE_OPS

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


@dataclass
class LayerParts:
    """What a layer's constructor creates. Shapes are tuples of ints (or Unknowns)."""

    params: dict[str, tuple[Any, ...] | None] = field(default_factory=dict)
    buffers: dict[str, tuple[tuple[Any, ...], str] | None] = field(default_factory=dict)
    children: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)  # parameters created with requires_grad=False


Rule = Callable[["LayerArgs"], LayerParts]
# What calling the layer returns (its forward, as shapes): (evaluator, layer, args, kwargs) -> output.
ForwardRule = Callable[["Evaluator", Instance, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class LayerSpec:
    name: str
    signature: str
    rule: Rule | None = None
    base: str = "Module"
    module: str = "torch.nn"
    # A base class torch never runs a forward of (`_forward_unimplemented`: _ConvNd, RNNBase...): only
    # its subclasses are called, so it has no forward rule of its own.
    abstract: bool = False


class LayerArgs:
    """Bound constructor arguments, readable as attributes, plus helpers for rules."""

    def __init__(self, ev: Evaluator, spec: LayerSpec, values: dict[str, Any]) -> None:
        # The arguments as plain attributes, so a rule's read (`args.in_channels`) is no Python call
        # (85k reads building torchvision). A parameter named like a method (`dim`) or one of the three
        # fields below stays readable through `values` and `__getattr__`, as before: the class wins.
        d = self.__dict__
        d.update(values)
        for name in _LAYER_ARGS_OWN.intersection(values):
            del d[name]
        self.ev = ev
        self.spec = spec
        self.values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def make(self, layer: str, *args: Any, **kwargs: Any) -> Any:
        """A child layer of the catalog, built as if the code had called it."""
        cls = self.ev.loader.frontend_state["torch"].layers[layer]
        return self.ev.protocol.instantiate(cls, args, kwargs)

    def dim(self, v: Any, what: str) -> Any:
        """A size argument: a non-negative int, or Unknown; anything else is an error in the code."""
        if isinstance(v, Unknown):
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, TensorValue):
                return v.to_python(self.ev)
            raise self.ev.raise_error("TypeError", f"{self.spec.name}: {what} must be an int, got {type(v).__name__}")
        if v < 0:
            raise self.ev.raise_error("ValueError", f"{self.spec.name}: {what} must be non-negative, got {v}")
        return v

    def flag(self, v: Any) -> bool:
        """A boolean argument (raises UnknownValueError on Unknown, handled by the caller)."""
        return bool(v)

    def ntuple(self, v: Any, n: int) -> tuple[Any, ...]:
        if isinstance(v, (tuple, list)):
            return tuple(v)
        return (v,) * n


# The names LayerArgs itself defines, which an argument of the same name must not hide.
_LAYER_ARGS_OWN = frozenset({*vars(LayerArgs), "ev", "spec", "values"})

CATALOG: dict[str, LayerSpec] = {}


def register(*specs: LayerSpec) -> None:
    for s in specs:
        CATALOG[s.name] = s


_SIG_CACHE: dict[str, inspect.Signature] = {}


def parse_signature(text: str) -> inspect.Signature:
    """An inspect.Signature from a parameter list written as in Python source."""
    sig = _SIG_CACHE.get(text)
    if sig is not None:
        return sig
    fn = ast.parse(f"def f(self, {text}): pass").body[0]
    assert isinstance(fn, ast.FunctionDef)
    a = fn.args
    params: list[inspect.Parameter] = []
    pos = a.posonlyargs + a.args
    defaults = [MISSING] * (len(pos) - len(a.defaults)) + [ast.literal_eval(d) for d in a.defaults]
    for i, (arg, d) in enumerate(zip(pos, defaults, strict=True)):
        kind = inspect.Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs) else inspect.Parameter.POSITIONAL_OR_KEYWORD
        params.append(inspect.Parameter(arg.arg, kind, default=inspect.Parameter.empty if d is MISSING else d))
    if a.vararg:
        params.append(inspect.Parameter(a.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append(inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY,
                                        default=inspect.Parameter.empty if d is None else ast.literal_eval(d)))
    if a.kwarg:
        params.append(inspect.Parameter(a.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    sig = inspect.Signature(params)
    _SIG_CACHE[text] = sig
    return sig


def bind_arguments(ev: Evaluator, sig: inspect.Signature, a: tuple[Any, ...], k: dict[str, Any],
                   shown: str) -> dict[str, Any]:
    """A constructor call's arguments by name, defaults applied (`self` excluded); a TypeError as
    Python would raise it, naming `shown` ("nn.Linear()")."""
    fast = _binder(sig).bind(a, k)
    if fast is not None:
        return fast
    try:
        bound = sig.bind(*a, **k)
    except TypeError as err:
        raise ev.raise_error("TypeError", f"{shown}: {err}") from None
    bound.apply_defaults()
    values = dict(bound.arguments)
    values.pop("self", None)
    return values


class _Binder:
    """`inspect.Signature.bind` + `apply_defaults` for the calls that bind (a layer is constructed
    thousands of times per file; inspect's general binding was a tenth of building torchvision's
    models). Anything unusual (an error, a keyword naming a positional-only or a `*` parameter)
    answers None and goes to inspect, which raises Python's error."""

    def __init__(self, sig: inspect.Signature) -> None:
        P = inspect.Parameter
        self.params = [(p.name, p.kind, p.default) for p in sig.parameters.values()]
        self.positional = [p.name for p in sig.parameters.values() if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
        self.varargs = any(p.kind == P.VAR_POSITIONAL for p in sig.parameters.values())
        self.varkw = any(p.kind == P.VAR_KEYWORD for p in sig.parameters.values())
        self.by_keyword = {p.name for p in sig.parameters.values() if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)}
        self.special = {p.name for p in sig.parameters.values() if p.kind in (P.POSITIONAL_ONLY, P.VAR_POSITIONAL, P.VAR_KEYWORD)}

    def bind(self, a: tuple[Any, ...], k: dict[str, Any]) -> dict[str, Any] | None:
        n = len(self.positional)
        if len(a) > n and not self.varargs:
            return None
        given = dict(zip(self.positional, a))
        extra_kw: dict[str, Any] = {}
        for name, v in k.items():
            if name in given or name in self.special:
                return None
            if name in self.by_keyword:
                given[name] = v
            elif self.varkw:
                extra_kw[name] = v
            else:
                return None
        values: dict[str, Any] = {}
        P = inspect.Parameter
        for name, kind, default in self.params:
            if name in given:
                values[name] = given[name]
            elif kind == P.VAR_POSITIONAL:
                values[name] = tuple(a[n:])
            elif kind == P.VAR_KEYWORD:
                values[name] = extra_kw
            elif default is not P.empty:
                values[name] = default
            else:
                return None  # a required argument missing
        values.pop("self", None)
        return values


_BINDERS: dict[int, tuple[inspect.Signature, _Binder]] = {}


def _binder(sig: inspect.Signature) -> _Binder:
    hit = _BINDERS.get(id(sig))
    if hit is None or hit[0] is not sig:
        hit = _BINDERS[id(sig)] = (sig, _Binder(sig))
    return hit[1]


class LayerNative(ModuleNative):
    def __init__(self, spec: LayerSpec) -> None:
        self.spec = spec


def _layer_init(spec: LayerSpec) -> NativeFunction:
    sig = parse_signature(spec.signature)

    def init(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        inst: Instance = a[0]
        values = bind_arguments(ev, sig, a, k, f"nn.{spec.name}()")
        st = state_of(inst)
        if spec.rule is None:
            parts = LayerParts()
        else:
            try:
                parts = spec.rule(LayerArgs(ev, spec, values))
            except UnknownValueError as err:
                # The rule needed a value we do not know: the parameters are unknown as a whole.
                bad = TensorValue(Unknown(f"nn.{spec.name}: {err.unknown.reason}", err.unknown.ref or ev.current_ref))
                bad.is_param = True
                st.params["<unknown>"] = bad
                parts = LayerParts()
        for name, v in values.items():
            if name not in ("device", "dtype") and name not in parts.attrs:
                inst.attrs[name] = v
        inst.attrs.update(parts.attrs)
        dtype = dtype_name(values.get("dtype"))
        for name, shape in parts.params.items():
            if shape is None:  # `bias=False`: torch registers None, so `conv.bias is None`
                inst.attrs.pop(name, None)
                st.params[name] = None
                continue
            t = TensorValue(tuple(shape), dtype)
            t.is_param = True
            t.requires_grad = name not in parts.frozen
            inst.attrs.pop(name, None)
            st.params[name] = t
        for name, spec_b in parts.buffers.items():
            inst.attrs.pop(name, None)
            if spec_b is None:
                st.buffers[name] = None
                continue
            shape, bdtype = spec_b
            st.buffers[name] = TensorValue(tuple(shape), bdtype if bdtype != "float" else dtype)
        for name, child in parts.children.items():
            inst.attrs.pop(name, None)
            st.modules[name] = child
        return None

    return NativeFunction(f"{spec.name}.__init__", init)


def build_catalog_classes(module_class: ClassValue) -> dict[str, ClassValue]:
    """ClassValues for every spec (bases first), made once per loader."""
    from vramlint.frontends.torch.catalog import (  # noqa: F401  (registers the specs)
        attention,
        containers,
        conv,
        embedding,
        linear,
        norm,
        parameter_free,
        recurrent,
    )

    classes: dict[str, ClassValue] = {}

    def get(name: str) -> ClassValue:
        if name == "Module":
            return module_class
        if name in classes:
            return classes[name]
        spec = CATALOG[name]
        base = get(spec.base)
        ns: dict[str, Any] = {"__init__": _layer_init(spec)}
        if name in FORWARD:
            # A subclass's own forward reaches it through `super().forward(x)` (CLIP's LayerNorm
            # that casts to float first, Gemma's RMSNorm...), as in torch.
            ns["forward"] = _layer_forward(name)
        for method in RESETS.get(name, ()):
            ns[method] = NativeFunction(f"{name}.{method}", _returns_none)
        extra = EXTRA_NAMESPACES.get(name)
        if extra is not None:
            ns.update(extra())
        native = CUSTOM_NATIVES.get(name, LayerNative)(spec)
        cls = ClassValue(name, (base,), ns, spec.module, native=native)
        classes[name] = cls
        return cls

    for name in list(CATALOG):
        get(name)
    return classes


# Forward rules by layer class name, registered by each family file next to its parameter rule,
# and what autograd keeps when each layer runs (`forward_rule`'s `saves`).
FORWARD: dict[str, ForwardRule] = {}
SAVES: dict[str, str] = {}
# `saves` of a layer whose forward runs other layers and ops (Sequential, Transformer): the tape
# records those one by one, and the layer itself is not an op.
COMPOSITE = "<composite>"
# `saves` of a layer whose forward raises, as torch's does (ModuleList: call its elements).
RAISES = "<raises>"


def forward_rule(*names: str, saves: str) -> Callable[[ForwardRule], ForwardRule]:
    """The one way to give layers a forward: `@forward_rule("Conv2d", saves="conv")` over the rule,
    or `forward_rule(*names, saves=...)(rule)` for a rule made by a factory.

    `saves` says what autograd keeps when the layer runs, as the memory model's op whose rule
    applies (memory/autograd_rules.py: "conv", "pad", "max_pool"...; one the memory model
    declares assumed keeps its inputs and is reported as unmodelled), COMPOSITE or RAISES."""

    def register_rule(fn: ForwardRule) -> ForwardRule:
        for n in names:
            if n in FORWARD:
                raise ValueError(f"two forward rules for nn.{n}")
            FORWARD[n] = fn
            SAVES[n] = saves
            if saves not in (COMPOSITE, RAISES):
                MODULE_OPS[n] = saves
        return fn

    return register_rule


def first_input(a: tuple[Any, ...], k: dict[str, Any], *names: str) -> Any:
    """The first positional argument of a forward call, or the named keyword."""
    if a:
        return a[0]
    for n in names:
        if n in k:
            return k[n]
    return Unknown("forward called without an input")


def _layer_forward(name: str) -> NativeFunction:
    """A catalog layer's forward: its rule, recorded on the memory tape as one op."""
    rule = FORWARD[name]

    def forward(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        inst, args = a[0], a[1:]
        if ev.tape is None:
            return rule(ev, inst, args, k)
        return ev.tape.call(ev, f"nn.{name}", args, k, lambda: rule(ev, inst, args, k), module=inst)

    return NativeFunction(f"{name}.forward", forward)


def _returns_none(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> None:
    return None


# Methods that re-draw or reset a layer's values, by the class that defines them in torch 2.13
# (tests/test_catalog.py checks this table against torch): they change no shape, so they do
# nothing here, but code that calls them (`self.fc.reset_parameters()` in an __init__) must not
# fail where torch would not.
RESETS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("AdaptiveLogSoftmaxWithLoss", "Bilinear", "Embedding", "EmbeddingBag", "GroupNorm",
                     "LayerNorm", "Linear", "PReLU", "RMSNorm", "RNNCellBase", "_ConvNd"), ("reset_parameters",)),
    "_NormBase": ("reset_parameters", "reset_running_stats"),
    "RNNBase": ("reset_parameters", "flatten_parameters"),
    "MultiheadAttention": ("_reset_parameters",),
    "Transformer": ("_reset_parameters",),
}

# Containers and a few layers add methods or hooks of their own.
EXTRA_NAMESPACES: dict[str, Callable[[], dict[str, Any]]] = {}
CUSTOM_NATIVES: dict[str, Callable[[LayerSpec], LayerNative]] = {}
