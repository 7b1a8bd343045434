"""The training setup a file states: optimizer, precision, batch size, checkpointing, parallelism.

Purely syntactic, one walk of the libcst tree: nothing is evaluated. This module is the
framework-neutral part: the walk, the bindings, the values of arguments, and the candidates'
bookkeeping. What a framework's calls mean comes from the frontends, each a
`TrainingSetupHandler` (frontends/registry.py lists them): the calls it recognises, what it
decides from each, the optimizer class names it maps to vramlint.memory.optimizers' keys.

Calls are matched on the last component of the called name (`torch.optim.AdamW(...)`,
`optim.AdamW(...)`, `AdamW(...)`, also through import aliases such as `from torch.optim import
AdamW as TorchAdamW`); a bare name that a class or function of the same file defines is not matched.

Arguments count when they are literals, or names, attributes (`args.batch_size`, `cfg.batch_size`)
and string subscripts (`config["batch_size"]`) whose every binding in the file is the same
literal: an assignment anywhere, a class-body field (`batch_size: int = 32`, also `field(default=...)`),
an argparse option's default (`add_argument("--batch-size", type=int, default=64)`, `store_true`
meaning False), a dict literal's entry. A name bound to anything else (a parameter without a
default, a loop variable, a computed value) is not decided, and neither is the argument.

When several candidates exist the first in source order wins, with a few preferences the
handlers express (`Outcome`'s fallbacks and batch ranks: an explicit autocast dtype over a loss
scaler, an optimizer built in the file over a trainer's default, a training data loader over a
validation one). `notes` says what was seen but could not be decided, for the settings left None.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar, cast

import libcst as cst

from vramlint.engine.source import SourceModule
from vramlint.engine.values import SourceRef
from vramlint.engine.walk import iter_nodes

__all__ = ["UNKNOWN", "Candidate", "Decider", "Found", "Outcome", "Scanner", "TrainingScan", "TrainingSetupHandler",
           "decide_accumulation", "dotted", "scan_training_setup", "split_args", "trained_model"]

T = TypeVar("T")

@dataclass(frozen=True)
class Found(Generic[T]):
    """One setting read off the file.

    `target`: the variable the setting applies to, when the code says: the `X` of
    `X.parameters()` in an optimizer's first argument (the root name for `X.encoder.parameters()`),
    of `X.half()` / `X.to(torch.bfloat16)`, of `X.gradient_checkpointing_enable()`, of `DDP(X)`;
    the assigned name for `X = Net().half()` / `X = AutoModel.from_pretrained(..., torch_dtype=...)`;
    the enclosing class's name for `self.parameters()` / `self.half()` in a method; the dotted text
    for an attribute receiver (`self.model.half()` -> "self.model"). None: the file says nothing
    about which model (a `checkpoint(...)` call, `torch.set_default_dtype`, an autocast).
    `argument`: an optimizer's first positional (or `params=`) argument as written, e.g.
    "model.parameters()"; None elsewhere.
    """

    value: T
    ref: SourceRef
    text: str  # "torch.optim.AdamW(...) at line 12"
    target: str | None = None
    argument: str | None = None


@dataclass(frozen=True)
class TrainingScan:
    """What `scan_training_setup` found; None where the file does not say (or not decidably).

    optimizer: a key of vramlint.memory.optimizers.OPTIMIZERS ("sgd", "sgd-momentum", "adam",
    "adamw", "amsgrad", "adagrad", "rmsprop", "adafactor", "adam8bit", "lion", "lion8bit").
    autocast: "amp-bf16" | "amp-fp16" (autocast, GradScaler, HF `bf16=True`, Accelerate, Lightning).
    cast: "bf16" | "fp16" (parameters themselves in low precision: `model.half()`, `.to(dtype)`,
    `from_pretrained(torch_dtype=...)`, `torch.set_default_dtype`, Lightning "bf16-true").
    batch_size: a positive int. checkpointing: True. distributed: "ddp" | "fsdp" | "dp".
    trainers: the trainer calls that name the model they train (`Trainer(model=model, ...)`): the
    value is the called name ("Trainer", "SFTTrainer"), the target that model's variable.
    sequence_length: the tokens per sample a trainer pads or packs to (TRL's `max_length`, else a
    tokenizer call's `max_length` or run_clm's `block_size`), for a model whose inputs are token
    ids. accumulation: gradient accumulation steps (> 1): the estimate is of one micro-batch.
    compiles: `torch.compile(model)` / `model.compile()` calls (the estimate is of eager
    execution: `compiled_for` says which apply to a model).
    convolutions: how the file sets up the convolution library ("benchmark": the fastest
    algorithm is timed, `torch.backends.cudnn.benchmark = True`; "disabled": the framework's own
    kernels, `torch.backends.cudnn.enabled = False`), in source order.
    The tuples hold every candidate of their kind in source order (the single fields are the
    preferred one); `bindings` is `(variable, called name)` for the first `variable = C(...)`
    (also `C(...).to(...)`) of each variable, e.g. ("model", "Net").
    """

    optimizer: Found[str] | None = None
    autocast: Found[str] | None = None
    cast: Found[str] | None = None
    batch_size: Found[int] | None = None
    checkpointing: Found[bool] | None = None
    distributed: Found[str] | None = None
    sequence_length: Found[int] | None = None
    accumulation: Found[int] | None = None
    compiles: tuple[Found[bool], ...] = ()
    convolutions: tuple[Found[str], ...] = ()
    optimizers: tuple[Found[str], ...] = ()
    trainers: tuple[Found[str], ...] = ()
    casts: tuple[Found[str], ...] = ()
    checkpoints: tuple[Found[bool], ...] = ()
    bindings: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def precision(self) -> Found[str] | None:
        """The file's precision: a pure cast wins over autocast (whatever model it applies to)."""
        return self.cast or self.autocast

    def constructor_of(self, variable: str) -> str | None:
        """The called name of the first `variable = C(...)`, e.g. "Net", "torchvision.models.resnet50"."""
        return next((c for v, c in self.bindings if v == variable), None)

    def optimizer_for(self, model: str, models: Collection[str] = ()) -> Found[str] | None:
        """The optimizer of `model` (a variable name, or the class / factory name a variable is
        bound to, see `bindings`): the first whose target is it, else the first with no target
        or with a target naming none of `models` (the names of all the file's models)."""
        return self._pick(self.optimizers, model, models)

    def precision_for(self, model: str, models: Collection[str] = ()) -> Found[str] | None:
        """A cast that applies to `model` (chosen as in optimizer_for), else the autocast."""
        return self._pick(self.casts, model, models) or self.autocast

    def trainer_for(self, model: str) -> Found[str] | None:
        """The first trainer call given `model` (a variable name) to train."""
        return next((t for t in self.trainers if t.target == model), None)

    def compiled_for(self, model: str, models: Collection[str] = ()) -> Found[bool] | None:
        """A compile call that targets `model` (one that names no model applies to none)."""
        return next((f for f in self.compiles if self._matches(f, model, models) is True), None)

    def checkpointing_for(self, model: str, models: Collection[str] = ()) -> Found[bool] | None:
        """Checkpointing that applies to `model` (chosen as in optimizer_for)."""
        return self._pick(self.checkpoints, model, models)

    def _pick(self, found: tuple[Found[T], ...], model: str, models: Collection[str]) -> Found[T] | None:
        loose: Found[T] | None = None
        for f in found:
            m = self._matches(f, model, models)
            if m is True:
                return f
            if m is None and loose is None:
                loose = f
        return loose

    def _matches(self, f: Found[Any], model: str, models: Collection[str]) -> bool | None:
        """True: `f` targets `model`; False: another of `models`; None: nothing ties it to one."""
        if f.target is None:
            return None
        names = {f.target}
        bound = self.constructor_of(f.target)
        if bound is not None:
            names |= {bound, bound.rsplit(".", 1)[-1]}
        # A target that is a class (an optimizer of its `self.parameters()`, a LightningModule's
        # configure_optimizers) is the model's when the model's variable is bound to that class.
        own = self.constructor_of(model)
        if model in names or (own is not None and f.target in (own, own.rsplit(".", 1)[-1])):
            return True
        if any(m in names for m in models):
            return False
        return None

# -- what a frontend registers ----------------------------------------------------------------


@dataclass
class Candidate:
    """A call (or, for `references`, a name) a handler recognised during the walk; decided after
    it, when every binding of the file is known. `pos`, `kw`, `star`: the call's arguments
    (`split_args`), filled just before it is decided."""

    kind: str
    node: cst.CSTNode  # the call; for a reference, the Name / Attribute
    name: str  # the called name as written ("torch.optim.AdamW"), or the method
    qual: str  # with import aliases resolved
    cls: str | None  # the enclosing class
    extra: Any = None
    pos: list[cst.BaseExpression] = field(default_factory=list)
    kw: dict[str, cst.BaseExpression] = field(default_factory=dict)
    star: bool = False

    @property
    def call(self) -> cst.Call:
        return cast(cst.Call, self.node)

    @property
    def last(self) -> str:
        """The last component of the qualified name: "AdamW" for `torch.optim.AdamW`."""
        return self.qual.rsplit(".", 1)[-1]


@dataclass
class Outcome:
    """What the deciders found, in source order, before the preferred one of each kind is picked.

    `fallback_optimizers` count after every optimizer of `optimizers` (a trainer's default
    optimizer loses to one the file builds); `fallback_autocasts` likewise (a loss scaler implies
    fp16 autocast unless an autocast says its dtype). `batches` are (rank, found): the lowest rank
    wins, then source order; `sequence_lengths` likewise. `defer` records why a candidate was not decided: the note is given
    only when nothing else decided that setting.
    """

    optimizers: list[Found[str]] = field(default_factory=list)
    fallback_optimizers: list[Found[str]] = field(default_factory=list)
    autocasts: list[Found[str]] = field(default_factory=list)
    fallback_autocasts: list[Found[str]] = field(default_factory=list)
    casts: list[Found[str]] = field(default_factory=list)
    batches: list[tuple[int, Found[int]]] = field(default_factory=list)
    checkpoints: list[Found[bool]] = field(default_factory=list)
    distributed: list[Found[str]] = field(default_factory=list)
    sequence_lengths: list[tuple[int, Found[int]]] = field(default_factory=list)
    trainers: list[Found[str]] = field(default_factory=list)
    accumulations: list[Found[int]] = field(default_factory=list)
    compiles: list[Found[bool]] = field(default_factory=list)
    convolutions: list[Found[str]] = field(default_factory=list)
    pending: dict[str, list[tuple[Candidate, str]]] = field(default_factory=dict)

    def defer(self, setting: str, c: Candidate, what: str) -> None:
        """`setting`: a TrainingScan field ("optimizer", "autocast", "cast", "batch_size"...)."""
        self.pending.setdefault(setting, []).append((c, what))


Decider = Callable[["Scanner", Candidate, Outcome], None]


def _no_kind(s: Scanner, node: cst.Call, name: str) -> str | None:
    return None


def _always(text: str) -> bool:
    return True


@dataclass(frozen=True, eq=False)
class TrainingSetupHandler:
    """What one frontend teaches the scan. Kinds are the handler's own strings, each with a
    decider in `deciders` (the scan owns one kind, "optimizer": a call of a class in `optimizers`).

    triggers: texts one of which a file must contain to be walked at all (every name `calls`
    and `optimizers` recognise contains one); the scan is skipped for the rest.
    applies: whether the handler takes part for a file, from its text (a framework whose
    `compile()` and `fit()` are its own reads them only in files that name it).
    calls(scanner, call, last): the kind of a call by the last component of its qualified name,
    or None. methods(scanner, call, method): the kind of a method call `x.method(...)`; "" to
    claim it without a candidate (the scan then looks no further), None to pass.
    optimizers: class names -> vramlint.memory.optimizers.OPTIMIZERS keys.
    chain_methods: methods returning their receiver, followed down a chain (`Net().to(device)`
    binds the variable to `Net`). references: names that count even when only passed (a
    function given to a wrapper), -> their kind. unshadowed: kinds a same-named function of the
    file does not hide (method calls: `x.half()` is not the file's `half`).
    """

    name: str
    triggers: tuple[str, ...]
    deciders: Mapping[str, Decider]
    calls: Callable[[Scanner, cst.Call, str], str | None] = _no_kind
    methods: Callable[[Scanner, cst.Call, str], str | None] = _no_kind
    optimizers: Mapping[str, str] = field(default_factory=dict)
    chain_methods: frozenset[str] = frozenset()
    references: Mapping[str, str] = field(default_factory=dict)
    unshadowed: frozenset[str] = frozenset()
    applies: Callable[[str], bool] = _always


@dataclass(frozen=True)
class _Composed:
    """The handlers of one scan, merged once per handler tuple."""

    handlers: tuple[TrainingSetupHandler, ...]
    triggers: re.Pattern[str]
    deciders: dict[str, Decider]
    chain_methods: frozenset[str]
    references: dict[str, str]
    unshadowed: frozenset[str]


@functools.lru_cache(maxsize=8)
def _compose(handlers: tuple[TrainingSetupHandler, ...]) -> _Composed:
    deciders: dict[str, Decider] = {"optimizer": decide_optimizer}
    for h in handlers:
        deciders.update(h.deciders)
    # A file none of the triggers occur in states no setup: it is not walked.
    words = sorted({t for h in handlers for t in h.triggers})
    return _Composed(
        handlers,
        re.compile("|".join(re.escape(w) for w in words)) if words else re.compile(r"(?!)"),
        deciders,
        frozenset().union(*(h.chain_methods for h in handlers)),
        {k: v for h in handlers for k, v in h.references.items()},
        frozenset().union(*(h.unshadowed for h in handlers)),
    )


def setup_triggers(handlers: Sequence[TrainingSetupHandler]) -> frozenset[str]:
    """The words without which a file states no training setup for `handlers`."""
    return frozenset(t for h in handlers for t in h.triggers)


def scan_training_setup(source: SourceModule, handlers: Sequence[TrainingSetupHandler]) -> TrainingScan:
    """The training setup stated in `source` as `handlers` read it (an empty scan when it has no
    tree). Never raises."""
    if source.tree is None:
        return TrainingScan()
    composed = _compose(tuple(handlers))
    hit = _SCANS.get(source)
    if hit is not None and hit[0] is composed:
        return hit[1]
    try:
        scan = Scanner(source, source.tree, composed).run() if composed.triggers.search(source.text) \
            else TrainingScan()
    except Exception:  # odd code must never break an analysis: RecursionError, libcst oddities
        scan = TrainingScan()
    _SCANS[source] = (composed, scan)
    return scan


_SCANS: weakref.WeakKeyDictionary[SourceModule, tuple[_Composed, TrainingScan]] = weakref.WeakKeyDictionary()

# ---------------------------------------------------------------------------------------------

MAX_DEPTH = 8  # bindings followed through names
MAX_CLASS_NESTING = 50
MAX_NOTES = 12

UNKNOWN: Any = object()  # a value the file does not decide
_OPAQUE: Any = object()  # a binding that is not a literal (a parameter, a loop target, ...)


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def dotted(node: cst.BaseExpression) -> str:
    """"a.b.c" for that attribute chain of names; "" for anything else."""
    parts: list[str] = []
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is not cst.Name:
        return ""
    parts.append(node.value)
    return ".".join(reversed(parts))


def trained_model(call: cst.Call) -> str | None:
    """The variable a trainer call is given to train: `model=model`, or the first positional
    argument beside `args=` (transformers' and TRL's trainers)."""
    pos, kw, _ = split_args(call)
    m = kw.get("model", pos[0] if pos and "args" in kw else None)
    return m.value if type(m) is cst.Name else None


def split_args(call: cst.Call) -> tuple[list[cst.BaseExpression], dict[str, cst.BaseExpression], bool]:
    """Positional arguments (up to the first `*x`), keywords, and whether `*x` / `**x` occurs."""
    pos: list[cst.BaseExpression] = []
    kw: dict[str, cst.BaseExpression] = {}
    star = False
    for a in call.args:
        if a.star:
            star = True
        elif a.keyword is not None:
            kw[a.keyword.value] = a.value
        elif not star:
            pos.append(a.value)
    return pos, kw, star


class Scanner:
    """One file's walk. Handlers read it through `value`, `code`, `found`, `target_of`,
    `recv_target`, `qualify`, `optimizer_class`, `consistent`, and the tables the walk fills
    (`names`, `attrs`, `bindings`, `spine_target`, `statement`, `module_like`, `cands`)."""

    def __init__(self, source: SourceModule, tree: cst.Module, composed: _Composed) -> None:
        self.source = source
        self.tree = tree
        self.text = source.text
        self.imports: dict[str, str] = {}
        self.defined: set[str] = set()
        self.names: dict[str, list[Any]] = {}
        self.attrs: dict[str, list[Any]] = {}
        self.argparse_defaults: dict[int, str] = {}  # id(default node) -> its option ("--batch-size")
        self.module_like: set[str] = set()  # names a handler saw used as a model (`x.parameters()`)
        self.bindings: dict[str, str] = {}
        self.spine_target: dict[cst.CSTNode, str] = {}  # calls of `x = a(...).b(...)` -> "x"
        self.statement: set[cst.CSTNode] = set()  # calls of a chain that is a whole statement
        self.class_fields: set[cst.CSTNode] = set()  # class-body assignments: attribute bindings
        self.cands: list[Candidate] = []
        self.called: set[cst.CSTNode] = set()  # `references` names that are a call's function
        self.notes: list[str] = []
        self.composed = composed
        self.chain_methods = composed.chain_methods
        self.active = tuple(h for h in composed.handlers if h.applies(source.text))
        self.optimizers: dict[str, str] = {}
        for h in reversed(self.active):  # the first handler that maps a name wins
            self.optimizers.update(h.optimizers)
        self.visitors: dict[type, Callable[[Any, str | None], None]] = {
            cst.Call: self._call, cst.Assign: self._assign, cst.AnnAssign: self._ann_assign,
            cst.AugAssign: self._on_aug_assign, cst.Expr: self._on_expr, cst.Import: self._import,
            cst.ImportFrom: self._import, cst.ClassDef: self._class, cst.FunctionDef: self._on_function,
            cst.Param: self._on_param, cst.For: self._on_loop, cst.CompFor: self._on_loop,
            cst.WithItem: self._on_with_item, cst.NamedExpr: self._on_walrus, cst.Name: self._reference,
            cst.Attribute: self._reference, cst.Dict: self._on_dict,
        }

    def optimizer_class(self, name: str) -> str | None:
        """The OPTIMIZERS key of an optimizer class name, as the file's handlers map it."""
        return self.optimizers.get(name)

    # -- the walk -----------------------------------------------------------------------------

    def run(self) -> TrainingScan:
        self._walk(self.tree, None, 0)
        return self._decide()

    def _walk(self, root: cst.CSTNode, cls: str | None, depth: int) -> None:
        """Visit every node under `root` once, in source order; a class body is walked by a
        nested call so that its methods know their class (`self`)."""
        nest = depth < MAX_CLASS_NESTING
        stop = (cst.ClassDef, cst.Import, cst.ImportFrom) if nest else (cst.Import, cst.ImportFrom)
        visitors = self.visitors

        def descend(n: cst.CSTNode) -> bool:
            return type(n) not in stop

        for node in iter_nodes(root, descend):
            t = type(node)
            if t is cst.ClassDef and nest and node is not root:
                self._walk(node, node.name.value, depth + 1)  # type: ignore[attr-defined]
                continue
            visit = visitors.get(t)
            if visit is not None:
                visit(node, cls)

    def _on_aug_assign(self, node: cst.AugAssign, cls: str | None) -> None:
        self._bind_target(node.target, _OPAQUE)

    def _on_expr(self, node: cst.Expr, cls: str | None) -> None:
        self._mark_spine(node.value, None, statement=True)

    def _on_function(self, node: cst.FunctionDef, cls: str | None) -> None:
        self.defined.add(node.name.value)

    def _on_param(self, node: cst.Param, cls: str | None) -> None:
        self._bind(self.names, node.name.value, node.default if node.default is not None else _OPAQUE)

    def _on_loop(self, node: cst.For | cst.CompFor, cls: str | None) -> None:
        self._bind_target(node.target, _OPAQUE)

    def _on_with_item(self, node: cst.WithItem, cls: str | None) -> None:
        if node.asname is not None:
            self._bind_target(node.asname.name, _OPAQUE)

    def _on_walrus(self, node: cst.NamedExpr, cls: str | None) -> None:
        self._bind_target(node.target, node.value)

    def _on_dict(self, node: cst.Dict, cls: str | None) -> None:
        for el in node.elements:
            if type(el) is cst.DictElement and type(el.key) is cst.SimpleString:
                key = el.key.evaluated_value
                if isinstance(key, str):
                    self._bind(self.attrs, key, el.value)

    def _bind(self, table: dict[str, list[Any]], name: str, value: Any) -> None:
        table.setdefault(name, []).append(value)

    def _bind_target(self, target: cst.BaseExpression, value: Any) -> None:
        t = type(target)
        if t is cst.Name:
            self._bind(self.names, target.value, value)  # type: ignore[attr-defined]
        elif t is cst.Attribute:
            self._bind(self.attrs, target.attr.value, value)  # type: ignore[attr-defined]
        elif t is cst.Subscript:
            key = self.subscript_key(target)  # type: ignore[arg-type]
            if key is not None:
                self._bind(self.attrs, key, value)
        elif t is cst.Tuple or t is cst.List:
            for el in target.elements:  # type: ignore[attr-defined]
                self._bind_target(el.value, _OPAQUE)
        elif t is cst.StarredElement:
            self._bind_target(target.value, _OPAQUE)  # type: ignore[attr-defined]

    @staticmethod
    def subscript_key(node: cst.Subscript) -> str | None:
        if len(node.slice) == 1:
            idx = node.slice[0].slice
            if type(idx) is cst.Index and type(idx.value) is cst.SimpleString:
                key = idx.value.evaluated_value
                if isinstance(key, str):
                    return key
        return None

    def _assign(self, node: cst.Assign, cls: str | None = None) -> None:
        class_field = node in self.class_fields
        for t in node.targets:
            if class_field and type(t.target) is cst.Name:
                self._bind(self.attrs, t.target.value, self._field_default(node.value))
            else:
                self._bind_target(t.target, node.value)
            if type(t.target) is cst.Name:
                self._mark_spine(node.value, t.target.value, statement=False)
            elif type(t.target) in (cst.Tuple, cst.List) and type(node.value) in (cst.Tuple, cst.List):
                # `netG, netD = Generator(), Discriminator()`: each name to its call.
                names, values = t.target.elements, node.value.elements  # type: ignore[attr-defined]
                if len(names) == len(values):
                    for n, v in zip(names, values):
                        if type(n.value) is cst.Name and type(v) is cst.Element:
                            self._mark_spine(v.value, n.value.value, statement=False)

    def _ann_assign(self, node: cst.AnnAssign, cls: str | None = None) -> None:
        if node.value is None:
            return
        if node in self.class_fields and type(node.target) is cst.Name:
            self._bind(self.attrs, node.target.value, self._field_default(node.value))
            return
        self._bind_target(node.target, node.value)
        if type(node.target) is cst.Name:
            self._mark_spine(node.value, node.target.value, statement=False)

    def _field_default(self, value: cst.BaseExpression) -> Any:
        """A class field's value; `field(default=X)` is X."""
        if type(value) is cst.Call and dotted(value.func).rsplit(".", 1)[-1] == "field":
            _, kw, _ = split_args(value)
            return kw.get("default", _OPAQUE)
        return value

    def _mark_spine(self, value: cst.BaseExpression, target: str | None, statement: bool) -> None:
        """Note the calls of the chain `a(...).b(...).c(...)` that `value` is: assigned to
        `target`, or a whole statement. The first binding of `target` to a call is recorded."""
        node: cst.BaseExpression = value
        innermost: cst.Call | None = None
        for _ in range(64):
            if type(node) is not cst.Call:
                break
            call: cst.Call = node  # type: ignore[assignment]
            if statement:
                self.statement.add(call)
            elif target is not None:
                self.spine_target[call] = target
            innermost = call
            func = call.func
            if type(func) is cst.Attribute and func.attr.value in self.chain_methods:
                node = func.value
            else:
                break
        if target is not None and innermost is not None and target not in self.bindings:
            name = dotted(innermost.func)
            if name and name.rsplit(".", 1)[-1] not in self.chain_methods:
                self.bindings[target] = name

    def _import(self, node: cst.CSTNode, cls: str | None = None) -> None:
        if type(node) is cst.Import:
            for alias in node.names:
                if alias.asname is not None and type(alias.asname.name) is cst.Name:
                    self.imports[alias.asname.name.value] = dotted(alias.name)
        elif type(node) is cst.ImportFrom:
            if isinstance(node.names, cst.ImportStar):
                return
            base = "." * len(node.relative) + (dotted(node.module) if node.module is not None else "")
            for alias in node.names:
                name = dotted(alias.name)
                local = alias.asname.name.value if alias.asname is not None and type(alias.asname.name) is cst.Name else name
                if local and "." not in local:
                    self.imports[local] = f"{base}.{name}" if base and not base.endswith(".") else base + name

    def _class(self, node: cst.ClassDef, cls: str | None = None) -> None:
        self.defined.add(node.name.value)
        body = node.body
        if isinstance(body, cst.IndentedBlock):
            for stmt in body.body:
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        if type(small) is cst.Assign or type(small) is cst.AnnAssign:
                            self.class_fields.add(small)

    def qualify(self, dotted: str) -> str:
        first, _, rest = dotted.partition(".")
        full = self.imports.get(first)
        if full is None:
            return dotted
        return f"{full}.{rest}" if rest else full


    def _call(self, node: cst.Call, cls: str | None) -> None:
        func = node.func
        if type(func) is cst.Attribute:
            method = func.attr.value
            if method == "add_argument":
                self._argparse(node)
                return
            if method == "set_defaults":
                for k, v in split_args(node)[1].items():
                    self._bind(self.attrs, k, v)
                return
            for h in self.active:
                kind = h.methods(self, node, method)
                if kind is not None:
                    if kind:
                        self.cands.append(Candidate(kind, node, method, method, cls))
                    return
        name = dotted(func)
        if not name:
            return
        qual = self.qualify(name)
        last = qual.rsplit(".", 1)[-1]
        kind = "optimizer" if last in self.optimizers else None
        for h in self.active:
            if kind is not None:
                break
            kind = h.calls(self, node, last)
        if kind is not None:
            self.cands.append(Candidate(kind, node, name, qual, cls))
            if last in self.composed.references:
                self.called.add(func)

    def _reference(self, node: cst.Name | cst.Attribute, cls: str | None) -> None:
        """A `references` name (`torch.utils.checkpoint.checkpoint`) named but not called."""
        last = node.value if type(node) is cst.Name else node.attr.value  # type: ignore[union-attr]
        kind = self.composed.references.get(last)
        if kind is not None and node not in self.called:
            name = dotted(node)
            if name:
                self.cands.append(Candidate(kind, node, name, self.qualify(name), cls, extra="reference"))

    def _argparse(self, node: cst.Call) -> None:
        pos, kw, _ = split_args(node)
        flags = [f for f in (v.evaluated_value for v in pos if type(v) is cst.SimpleString) if isinstance(f, str)]
        dest_node = kw.get("dest")
        dest: str | None = None
        if type(dest_node) is cst.SimpleString and isinstance(dest_node.evaluated_value, str):
            dest = dest_node.evaluated_value
        elif flags:
            long = [f for f in flags if f.startswith("--")]
            dest = (long or flags)[0].lstrip("-").replace("-", "_")
        if not dest:
            return
        if "default" in kw:
            self._bind(self.attrs, dest, kw["default"])
            self.argparse_defaults[id(kw["default"])] = (flags or [dest])[0]
            return
        action = kw.get("action")
        act = action.evaluated_value if type(action) is cst.SimpleString else None
        self._bind(self.attrs, dest, _Const(act != "store_true") if act in ("store_true", "store_false")
                   else _Const(None) if action is None else _OPAQUE)

    # -- values -------------------------------------------------------------------------------

    def consistent(self, values: list[Any] | None, fn: Callable[[Any, int], Any], depth: int) -> Any:
        """`fn` of every binding in `values` when all give the same result, else UNKNOWN."""
        if not values or depth > MAX_DEPTH:
            return UNKNOWN
        out: Any = UNKNOWN
        for v in values:
            if v is _OPAQUE:
                return UNKNOWN
            r = v.value if isinstance(v, _Const) else fn(v, depth + 1)
            if r is UNKNOWN:
                return UNKNOWN
            if out is not UNKNOWN and (type(out) is not type(r) or out != r):
                return UNKNOWN
            out = r
        return out

    def value(self, node: Any, depth: int = 0) -> Any:
        """The literal `node` stands for, or UNKNOWN."""
        if depth > MAX_DEPTH or not isinstance(node, cst.CSTNode):
            return UNKNOWN
        t = type(node)
        if t is cst.Integer or t is cst.Float:
            return node.evaluated_value  # type: ignore[attr-defined]
        if t is cst.SimpleString or t is cst.ConcatenatedString:
            v = node.evaluated_value  # type: ignore[attr-defined]
            return v if isinstance(v, str) else UNKNOWN
        if t is cst.Name:
            n = node.value  # type: ignore[attr-defined]
            if n in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[n]
            return self.consistent(self.names.get(n), self.value, depth)
        if t is cst.Attribute:
            return self.consistent(self.attrs.get(node.attr.value), self.value, depth)  # type: ignore[attr-defined]
        if t is cst.Subscript:
            key = self.subscript_key(node)  # type: ignore[arg-type]
            return UNKNOWN if key is None else self.consistent(self.attrs.get(key), self.value, depth)
        if t is cst.UnaryOperation and type(node.operator) is cst.Minus:  # type: ignore[attr-defined]
            v = self.value(node.expression, depth + 1)  # type: ignore[attr-defined]
            return -v if type(v) in (int, float) else UNKNOWN
        if t is cst.BinaryOperation:
            return self._arith(node, depth)  # type: ignore[arg-type]
        return UNKNOWN

    def _arith(self, node: cst.BinaryOperation, depth: int) -> Any:
        a, b = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
        if type(a) is not int or type(b) is not int or abs(a) > 1 << 40 or abs(b) > 1 << 40:
            return UNKNOWN
        op = type(node.operator)
        if op is cst.Add:
            return a + b
        if op is cst.Subtract:
            return a - b
        if op is cst.Multiply:
            return a * b
        if op is cst.FloorDivide and b:
            return a // b
        if op is cst.Power and 0 <= b <= 40:
            return a**b
        if op is cst.LeftShift and 0 <= b <= 40:
            return a << b
        return UNKNOWN

    def origin(self, node: cst.CSTNode) -> str:
        """Where a name, attribute or string subscript with one binding got its value: "argparse
        default of --batch-size at line 12", "set at line 7"; "" for anything else."""
        bound = self.names.get(node.value) if isinstance(node, cst.Name) else \
            self.attrs.get(node.attr.value) if isinstance(node, cst.Attribute) else \
            self.attrs.get(self.subscript_key(node) or "") if isinstance(node, cst.Subscript) else None
        if not bound or len(bound) != 1 or not isinstance(bound[0], cst.CSTNode):
            return ""
        flag = self.argparse_defaults.get(id(bound[0]))
        at = f"line {self.line(bound[0])}"
        return f"argparse default of {flag} at {at}" if flag else f"set at {at}"

    def why(self, node: cst.CSTNode, value: Any) -> str:
        """What a `found` setting's text adds for an argument that is not a literal: its value, and
        where the name got it ("= 128, argparse default of --batch-size at line 12")."""
        if type(node) in (cst.Integer, cst.Float, cst.SimpleString):
            return ""
        origin = self.origin(node)
        return f"= {value}, {origin}" if origin else f"= {value}"

    def code(self, node: cst.CSTNode, limit: int = 60) -> str:
        try:
            text = " ".join(self.tree.code_for_node(node).split())
        except Exception:
            return "..."
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def line(self, node: cst.CSTNode) -> int:
        return SourceRef(self.source, node).statement_location.line

    def found(self, value: T, c: Candidate, what: str, target: str | None = None,
              argument: str | None = None, why: str = "") -> Found[T]:
        """`what` at line N (`why`)."""
        text = f"{what} at line {self.line(c.node)}" + (f" ({why})" if why else "")
        return Found(value, SourceRef(self.source, c.node), text, target, argument)

    def note(self, c: Candidate, what: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(f"{c.name}(...) at line {self.line(c.node)}: {what}")

    def target_of(self, node: cst.BaseExpression, cls: str | None) -> str | None:
        """The variable an expression is rooted at: `model` for `model.encoder`; the enclosing
        class for `self`; None for `self.x` and anything not rooted at a name."""
        root = node
        depth = 0
        while type(root) is cst.Attribute:
            root = root.value
            depth += 1
        if type(root) is not cst.Name:
            return None
        if root.value == "self":
            return cls if depth == 0 else None
        return root.value

    # -- decisions ----------------------------------------------------------------------------

    def _decide(self) -> TrainingScan:
        """Each candidate to its kind's decider (the handlers' dispatch table), then the
        preferred candidate of each setting."""
        out = Outcome()
        deciders = self.composed.deciders
        unshadowed = self.composed.unshadowed
        for c in self.cands:
            if "." not in c.name and c.name in self.defined and c.kind not in unshadowed:
                continue  # a class or function of this file that shares the name
            if type(c.node) is cst.Call:
                c.pos, c.kw, c.star = split_args(c.call)
            deciders[c.kind](self, c, out)
        optimizers = out.optimizers + out.fallback_optimizers
        autocasts = out.autocasts or out.fallback_autocasts
        scan = TrainingScan(
            optimizer=optimizers[0] if optimizers else None,
            autocast=autocasts[0] if autocasts else None,
            cast=out.casts[0] if out.casts else None,
            batch_size=min(out.batches, key=lambda b: b[0])[1] if out.batches else None,
            checkpointing=out.checkpoints[0] if out.checkpoints else None,
            distributed=out.distributed[0] if out.distributed else None,
            sequence_length=min(out.sequence_lengths, key=lambda f: f[0])[1] if out.sequence_lengths else None,
            accumulation=out.accumulations[0] if out.accumulations else None,
            compiles=tuple(out.compiles),
            convolutions=tuple(out.convolutions),
            optimizers=tuple(optimizers),
            trainers=tuple(out.trainers),
            casts=tuple(out.casts),
            checkpoints=tuple(out.checkpoints),
            bindings=tuple(self.bindings.items()),
        )
        for fld, items in out.pending.items():
            if getattr(scan, fld) is None:
                for c, what in items:
                    self.note(c, what)
        return replace(scan, notes=tuple(self.notes))

    def recv_target(self, recv: cst.BaseExpression, cls: str | None) -> str | None:
        """The target of a method's receiver: a name (the class for `self`), else its dotted text."""
        if type(recv) is cst.Name:
            return cls if recv.value == "self" else recv.value
        return dotted(recv) or None


def decide_accumulation(s: Scanner, c: Candidate, out: Outcome, keyword: str) -> None:
    """Gradient accumulation a call states by `keyword` (`gradient_accumulation_steps=4`), when over 1."""
    node = c.kw.get(keyword)
    if node is None:
        return
    n = s.value(node)
    if type(n) is int and n > 1:
        out.accumulations.append(s.found(n, c, f"{c.name}({keyword}={s.code(node, 30)})"))


def decide_optimizer(s: Scanner, c: Candidate, out: Outcome) -> None:
    """An optimizer class called (`torch.optim.SGD(model.parameters(), momentum=0.9)`): its key,
    with the variants OPTIMIZERS distinguishes by argument (SGD's momentum, Adam's amsgrad); its
    target is the model whose `parameters()` it is given."""
    pos, kw = c.pos, c.kw
    value = s.optimizers[c.last]
    shown = "..."
    if value == "sgd":
        mom = kw.get("momentum", pos[2] if len(pos) > 2 else None)
        if mom is not None:
            m = s.value(mom)
            if not (type(m) in (int, float) and m == 0):
                value = "sgd-momentum"
            shown = f"..., momentum={s.code(mom, 20)}"
    elif value in ("adam", "adamw") and "amsgrad" in kw and s.value(kw["amsgrad"]) is True:
        value = "amsgrad"
        shown = "..., amsgrad=True"
    params = kw.get("params", pos[0] if pos else None)
    target: str | None = None
    if params is not None:
        for n in iter_nodes(params):
            if type(n) is cst.Call and type(n.func) is cst.Attribute and \
                    n.func.attr.value in ("parameters", "named_parameters"):
                target = s.target_of(n.func.value, c.cls)
                break
    out.optimizers.append(s.found(value, c, f"{c.name}({shown})", target,
                                  s.code(params, 80) if params is not None else None))
