"""The training setup a file states: optimizer, precision, batch size, checkpointing, parallelism.

Purely syntactic, one walk of the libcst tree: nothing is evaluated. Calls are matched on the
last component of the called name (`torch.optim.AdamW(...)`, `optim.AdamW(...)`, `AdamW(...)`,
also through import aliases such as `from torch.optim import AdamW as TorchAdamW`); a bare name
that a class or function of the same file defines is not matched.

Arguments count when they are literals, or names, attributes (`args.batch_size`, `cfg.batch_size`)
and string subscripts (`config["batch_size"]`) whose every binding in the file is the same
literal: an assignment anywhere, a class-body field (`batch_size: int = 32`, also `field(default=...)`),
an argparse option's default (`add_argument("--batch-size", type=int, default=64)`, `store_true`
meaning False), a dict literal's entry. A name bound to anything else (a parameter without a
default, a loop variable, a computed value) is not decided, and neither is the argument.

When several candidates exist the first in source order wins, with a few preferences (an explicit
autocast dtype over a GradScaler, an optimizer built in the file over the HF Trainer's default, a
DataLoader that looks like the training one over a validation one). `notes` says what was seen but
could not be decided, for the settings left None.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar, cast

import libcst as cst

from vramlint.engine.source import SourceModule
from vramlint.engine.values import SourceRef
from vramlint.engine.walk import iter_nodes
from vramlint.frontends.keras import training_setup as keras_setup

__all__ = ["Found", "TrainingScan", "scan_training_setup"]

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
    "adamw", "amsgrad", "adagrad", "rmsprop", "adafactor", "adam8bit", "lion").
    autocast: "amp-bf16" | "amp-fp16" (autocast, GradScaler, HF `bf16=True`, Accelerate, Lightning).
    cast: "bf16" | "fp16" (parameters themselves in low precision: `model.half()`, `.to(dtype)`,
    `from_pretrained(torch_dtype=...)`, `torch.set_default_dtype`, Lightning "bf16-true").
    batch_size: a positive int. checkpointing: True. distributed: "ddp" | "fsdp" | "dp".
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
    optimizers: tuple[Found[str], ...] = ()
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
        if model in names:
            return True
        if any(m in names for m in models):
            return False
        return None


def scan_training_setup(source: SourceModule) -> TrainingScan:
    """The training setup stated in `source` (an empty scan when it has no tree). Never raises."""
    if source.tree is None:
        return TrainingScan()
    hit = _SCANS.get(source)
    if hit is not None:
        return hit
    try:
        scan = _Scanner(source, source.tree).run() if _TRIGGERS.search(source.text) else TrainingScan()
    except Exception:  # odd code must never break an analysis: RecursionError, libcst oddities
        scan = TrainingScan()
    _SCANS[source] = scan
    return scan


_SCANS: weakref.WeakKeyDictionary[SourceModule, TrainingScan] = weakref.WeakKeyDictionary()

# ---------------------------------------------------------------------------------------------

OPTIMIZER_NAMES: dict[str, str] = {
    "SGD": "sgd", "Adam": "adam", "AdamW": "adamw", "Adagrad": "adagrad", "RMSprop": "rmsprop",
    "Adafactor": "adafactor", "Lion": "lion",
    # bitsandbytes
    "Adam8bit": "adam8bit", "AdamW8bit": "adam8bit", "PagedAdam8bit": "adam8bit", "PagedAdamW8bit": "adam8bit",
    "Adam32bit": "adam", "AdamW32bit": "adamw", "PagedAdam": "adam", "PagedAdamW": "adamw",
    "PagedAdam32bit": "adam", "PagedAdamW32bit": "adamw",
    "FusedAdam": "adamw",  # apex / DeepSpeed: adam_w_mode=True by default; same state as Adam
}

# HF TrainingArguments(optim=...) (transformers.training_args.OptimizerNames values).
HF_OPTIMIZERS: dict[str, str] = {
    "adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_hf": "adamw", "adamw_apex_fused": "adamw",
    "adamw_anyprecision": "adamw", "adamw_torch_xla": "adamw", "adamw_torch_npu_fused": "adamw",
    "adafactor": "adafactor", "adamw_bnb_8bit": "adam8bit", "adamw_8bit": "adam8bit",
    "paged_adamw_8bit": "adam8bit", "paged_adamw_32bit": "adamw", "lion_32bit": "lion",
    "paged_lion_32bit": "lion", "sgd": "sgd", "adagrad": "adagrad", "rmsprop": "rmsprop",
}
HF_DEFAULT_BATCH = 8  # TrainingArguments.per_device_train_batch_size

DISTRIBUTED_NAMES: dict[str, str] = {
    "DistributedDataParallel": "ddp", "DDP": "ddp", "DDPStrategy": "ddp",
    "FullyShardedDataParallel": "fsdp", "FSDP": "fsdp", "fully_shard": "fsdp", "FSDPStrategy": "fsdp",
    "DataParallel": "dp",
}

TORCH_DTYPES: dict[str, str] = {
    "bfloat16": "bf16", "float16": "fp16", "half": "fp16",
    "float32": "fp32", "float": "fp32", "float64": "other", "double": "other",
}
STRING_DTYPES: dict[str, str] = {
    "bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16", "half": "fp16",
    "float32": "fp32", "fp32": "fp32", "float": "fp32",
}
TRL_CONFIGS = frozenset(("SFTConfig", "DPOConfig", "ORPOConfig", "KTOConfig", "CPOConfig",
                         "RewardConfig", "GRPOConfig", "PPOConfig"))
# Methods only modules have (in practice): a receiver they are called on is a model.
MODULE_METHODS = frozenset(("parameters", "named_parameters", "train", "eval", "modules", "named_modules",
                            "children", "named_children", "gradient_checkpointing_enable",
                            "set_grad_checkpointing"))
# Methods returning the module itself, followed down a chain (`model.to(device).half()`).
CHAIN_METHODS = frozenset(("to", "cuda", "cpu", "half", "bfloat16", "float", "train", "eval",
                           "requires_grad_", "type"))
CAST_METHODS = {"half": "fp16", "bfloat16": "bf16"}
CHECKPOINT_NAMES = frozenset(("checkpoint", "checkpoint_sequential"))
# A file none of these occur in states no setup: it is not walked. Each trigger above contains one
# (an aliased import still names the original; a cast names its dtype, `half` or `float16`).
_TRIGGERS = re.compile("|".join((
    "SGD", "Adam", "Adagrad", "RMSprop", "Adafactor", "Lion", "autocast", "GradScaler", "DataLoader",
    "TrainingArguments", *sorted(TRL_CONFIGS), "DataParallel", "DDP", "FSDP", "FullySharded", "fully_shard",
    "checkpoint", "half", "float16", "set_default_dtype", "Accelerator", "Trainer", "Fabric",
    *(re.escape(t) for t in keras_setup.TRIGGERS),
)))
MAX_DEPTH = 8  # bindings followed through names
MAX_CLASS_NESTING = 50
MAX_NOTES = 12

_UNKNOWN: Any = object()
_OPAQUE: Any = object()  # a binding that is not a literal (a parameter, a loop target, ...)


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass
class _Cand:
    """A candidate seen during the walk, decided after it (when every binding is known)."""

    kind: str
    node: cst.CSTNode  # the call; for a "checkpoint" reference, the Name / Attribute
    name: str  # the called name as written ("torch.optim.AdamW"), or the method
    qual: str  # with import aliases resolved
    cls: str | None  # the enclosing class
    extra: Any = None

    @property
    def call(self) -> cst.Call:
        return cast(cst.Call, self.node)


def _dotted(node: cst.BaseExpression) -> str:
    parts: list[str] = []
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is not cst.Name:
        return ""
    parts.append(node.value)
    return ".".join(reversed(parts))


def _split_args(call: cst.Call) -> tuple[list[cst.BaseExpression], dict[str, cst.BaseExpression], bool]:
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


def _looks_like_class(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    if last in ("from_pretrained", "from_config", "create_model"):
        return True
    return bool(last) and last[0].isupper() and not last.endswith("Tensor")


class _Scanner:
    def __init__(self, source: SourceModule, tree: cst.Module) -> None:
        self.source = source
        self.tree = tree
        self.imports: dict[str, str] = {}
        self.defined: set[str] = set()
        self.names: dict[str, list[Any]] = {}
        self.attrs: dict[str, list[Any]] = {}
        self.module_like: set[str] = set()
        self.bindings: dict[str, str] = {}
        self.spine_target: dict[cst.CSTNode, str] = {}  # calls of `x = a(...).b(...)` -> "x"
        self.statement: set[cst.CSTNode] = set()  # calls of a chain that is a whole statement
        self.class_fields: set[cst.CSTNode] = set()  # class-body assignments: attribute bindings
        self.cands: list[_Cand] = []
        self.called: set[cst.CSTNode] = set()  # `checkpoint` names that are a call's function
        self.notes: list[str] = []
        # Keras's compile()/fit()/policies count only in Keras code (`torch.compile`, sklearn's fit...)
        self.keras = "keras" in source.text
        self.handlers: dict[type, Callable[[Any, str | None], None]] = {
            cst.Call: self._call, cst.Assign: self._assign, cst.AnnAssign: self._ann_assign,
            cst.AugAssign: self._on_aug_assign, cst.Expr: self._on_expr, cst.Import: self._import,
            cst.ImportFrom: self._import, cst.ClassDef: self._class, cst.FunctionDef: self._on_function,
            cst.Param: self._on_param, cst.For: self._on_loop, cst.CompFor: self._on_loop,
            cst.WithItem: self._on_with_item, cst.NamedExpr: self._on_walrus, cst.Name: self._reference,
            cst.Attribute: self._reference, cst.Dict: self._on_dict,
        }

    # -- the walk -----------------------------------------------------------------------------

    def run(self) -> TrainingScan:
        self._walk(self.tree, None, 0)
        return self._decide()

    def _walk(self, root: cst.CSTNode, cls: str | None, depth: int) -> None:
        """Visit every node under `root` once, in source order; a class body is walked by a
        nested call so that its methods know their class (`self`)."""
        nest = depth < MAX_CLASS_NESTING
        stop = (cst.ClassDef, cst.Import, cst.ImportFrom) if nest else (cst.Import, cst.ImportFrom)
        handlers = self.handlers

        def descend(n: cst.CSTNode) -> bool:
            return type(n) not in stop

        for node in iter_nodes(root, descend):
            t = type(node)
            if t is cst.ClassDef and nest and node is not root:
                self._walk(node, node.name.value, depth + 1)  # type: ignore[attr-defined]
                continue
            handler = handlers.get(t)
            if handler is not None:
                handler(node, cls)

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
            key = self._subscript_key(target)  # type: ignore[arg-type]
            if key is not None:
                self._bind(self.attrs, key, value)
        elif t is cst.Tuple or t is cst.List:
            for el in target.elements:  # type: ignore[attr-defined]
                self._bind_target(el.value, _OPAQUE)
        elif t is cst.StarredElement:
            self._bind_target(target.value, _OPAQUE)  # type: ignore[attr-defined]

    @staticmethod
    def _subscript_key(node: cst.Subscript) -> str | None:
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
        if type(value) is cst.Call and _dotted(value.func).rsplit(".", 1)[-1] == "field":
            _, kw, _ = _split_args(value)
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
            if type(func) is cst.Attribute and func.attr.value in CHAIN_METHODS:
                node = func.value
            else:
                break
        if target is not None and innermost is not None and target not in self.bindings:
            name = _dotted(innermost.func)
            if name and name.rsplit(".", 1)[-1] not in CHAIN_METHODS:
                self.bindings[target] = name

    def _import(self, node: cst.CSTNode, cls: str | None = None) -> None:
        if type(node) is cst.Import:
            for alias in node.names:
                if alias.asname is not None and type(alias.asname.name) is cst.Name:
                    self.imports[alias.asname.name.value] = _dotted(alias.name)
        elif type(node) is cst.ImportFrom:
            if isinstance(node.names, cst.ImportStar):
                return
            base = "." * len(node.relative) + (_dotted(node.module) if node.module is not None else "")
            for alias in node.names:
                name = _dotted(alias.name)
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
            if method in MODULE_METHODS or method in CAST_METHODS or method == "to":
                recv = func.value
                if method in MODULE_METHODS and type(recv) is cst.Name:
                    self.module_like.add(recv.value)
                if method in CAST_METHODS or method == "to":
                    self.cands.append(_Cand("cast", node, method, method, cls))
                if method in ("gradient_checkpointing_enable", "set_grad_checkpointing"):
                    self.cands.append(_Cand("ckpt_method", node, method, method, cls))
                return
            if method == "add_argument":
                self._argparse(node)
                return
            if method in ("compile", "fit", "batch") and self.keras and _dotted(func.value) not in ("torch", "re"):
                self.cands.append(_Cand(f"keras_{method}", node, method, method, cls))
                return
            if method == "set_defaults":
                for k, v in _split_args(node)[1].items():
                    self._bind(self.attrs, k, v)
                return
        name = _dotted(func)
        if not name:
            return
        qual = self.qualify(name)
        last = qual.rsplit(".", 1)[-1]
        kind: str | None = None
        if last in OPTIMIZER_NAMES or (last in keras_setup.KERAS_OPTIMIZER_CLASSES and self.keras):
            kind = "optimizer"
        elif last == "autocast":
            kind = "autocast"
        elif last.endswith("GradScaler"):
            kind = "scaler"
        elif last == "DataLoader":
            kind = "dataloader"
        elif last.endswith("TrainingArguments") or last in TRL_CONFIGS:
            kind = "hf_args"
        elif last in DISTRIBUTED_NAMES:
            kind = "distributed"
        elif last in CHECKPOINT_NAMES:
            kind = "checkpoint"
        elif last == "from_pretrained":
            kind = "from_pretrained"
        elif last == "set_default_dtype":
            kind = "default_dtype"
        elif last in ("set_global_policy", "set_dtype_policy") and self.keras:
            kind = "keras_policy"
        elif last == "Accelerator":
            kind = "accelerator"
        elif last.endswith("Trainer") or last == "Fabric":
            kind = "trainer"
        if kind is not None:
            self.cands.append(_Cand(kind, node, name, qual, cls))
            if kind == "checkpoint":
                self.called.add(func)

    def _reference(self, node: cst.Name | cst.Attribute, cls: str | None) -> None:
        """`torch.utils.checkpoint.checkpoint` (or `checkpoint_sequential`) named but not called."""
        last = node.value if type(node) is cst.Name else node.attr.value  # type: ignore[union-attr]
        if last in CHECKPOINT_NAMES and node not in self.called:
            name = _dotted(node)
            if name:
                self.cands.append(_Cand("checkpoint", node, name, self.qualify(name), cls, extra="reference"))

    def _argparse(self, node: cst.Call) -> None:
        pos, kw, _ = _split_args(node)
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
            return
        action = kw.get("action")
        act = action.evaluated_value if type(action) is cst.SimpleString else None
        self._bind(self.attrs, dest, _Const(act != "store_true") if act in ("store_true", "store_false")
                   else _Const(None) if action is None else _OPAQUE)

    # -- values -------------------------------------------------------------------------------

    def _consistent(self, values: list[Any] | None, fn: Callable[[Any, int], Any], depth: int) -> Any:
        if not values or depth > MAX_DEPTH:
            return _UNKNOWN
        out: Any = _UNKNOWN
        for v in values:
            if v is _OPAQUE:
                return _UNKNOWN
            r = v.value if isinstance(v, _Const) else fn(v, depth + 1)
            if r is _UNKNOWN:
                return _UNKNOWN
            if out is not _UNKNOWN and (type(out) is not type(r) or out != r):
                return _UNKNOWN
            out = r
        return out

    def value(self, node: Any, depth: int = 0) -> Any:
        """The literal `node` stands for, or _UNKNOWN."""
        if depth > MAX_DEPTH or not isinstance(node, cst.CSTNode):
            return _UNKNOWN
        t = type(node)
        if t is cst.Integer or t is cst.Float:
            return node.evaluated_value  # type: ignore[attr-defined]
        if t is cst.SimpleString or t is cst.ConcatenatedString:
            v = node.evaluated_value  # type: ignore[attr-defined]
            return v if isinstance(v, str) else _UNKNOWN
        if t is cst.Name:
            n = node.value  # type: ignore[attr-defined]
            if n in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[n]
            return self._consistent(self.names.get(n), self.value, depth)
        if t is cst.Attribute:
            return self._consistent(self.attrs.get(node.attr.value), self.value, depth)  # type: ignore[attr-defined]
        if t is cst.Subscript:
            key = self._subscript_key(node)  # type: ignore[arg-type]
            return _UNKNOWN if key is None else self._consistent(self.attrs.get(key), self.value, depth)
        if t is cst.UnaryOperation and type(node.operator) is cst.Minus:  # type: ignore[attr-defined]
            v = self.value(node.expression, depth + 1)  # type: ignore[attr-defined]
            return -v if type(v) in (int, float) else _UNKNOWN
        if t is cst.BinaryOperation:
            return self._arith(node, depth)  # type: ignore[arg-type]
        return _UNKNOWN

    def _arith(self, node: cst.BinaryOperation, depth: int) -> Any:
        a, b = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
        if type(a) is not int or type(b) is not int or abs(a) > 1 << 40 or abs(b) > 1 << 40:
            return _UNKNOWN
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
        return _UNKNOWN

    def dtype(self, node: Any, depth: int = 0, strings: bool = False) -> Any:
        """"bf16" | "fp16" | "fp32" | "other" for a torch dtype expression, else _UNKNOWN."""
        if depth > MAX_DEPTH or not isinstance(node, cst.CSTNode):
            return _UNKNOWN

        def again(v: Any, d: int) -> Any:
            return self.dtype(v, d, strings)

        t = type(node)
        if t is cst.Attribute or t is cst.Name:
            q = self.qualify(_dotted(node))  # type: ignore[arg-type]
            mod, _, last = q.rpartition(".")
            if mod == "torch" and last in TORCH_DTYPES:
                return TORCH_DTYPES[last]
            if t is cst.Name:
                return self._consistent(self.names.get(node.value), again, depth)  # type: ignore[attr-defined]
            return self._consistent(self.attrs.get(node.attr.value), again, depth)  # type: ignore[attr-defined]
        if t is cst.Subscript:
            key = self._subscript_key(node)  # type: ignore[arg-type]
            return _UNKNOWN if key is None else self._consistent(self.attrs.get(key), again, depth)
        if strings and (t is cst.SimpleString or t is cst.ConcatenatedString):
            v = node.evaluated_value  # type: ignore[attr-defined]
            return STRING_DTYPES.get(v, "other") if isinstance(v, str) and v != "auto" else _UNKNOWN
        return _UNKNOWN

    def code(self, node: cst.CSTNode, limit: int = 60) -> str:
        try:
            text = " ".join(self.tree.code_for_node(node).split())
        except Exception:
            return "..."
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def line(self, node: cst.CSTNode) -> int:
        return SourceRef(self.source, node).statement_location.line

    def found(self, value: T, c: _Cand, what: str, target: str | None = None,
              argument: str | None = None, why: str = "") -> Found[T]:
        """`what` at line N (`why`)."""
        text = f"{what} at line {self.line(c.node)}" + (f" ({why})" if why else "")
        return Found(value, SourceRef(self.source, c.node), text, target, argument)

    def note(self, c: _Cand, what: str) -> None:
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
        optimizers: list[Found[str]] = []
        hf_optimizers: list[Found[str]] = []
        autocasts: list[Found[str]] = []
        scalers: list[Found[str]] = []
        casts: list[Found[str]] = []
        batches: list[tuple[int, Found[int]]] = []
        checkpoints: list[Found[bool]] = []
        distributed: list[Found[str]] = []
        trainer_model = self._trainer_model()
        pending: dict[str, list[tuple[_Cand, str]]] = {}

        def defer(field: str, c: _Cand, what: str) -> None:
            pending.setdefault(field, []).append((c, what))

        for c in self.cands:
            k = c.kind
            bare = "." not in c.name
            if bare and c.name in self.defined and k not in ("cast", "ckpt_method"):
                continue  # a class or function of this file that shares the name
            pos, kw, star = _split_args(c.call) if type(c.node) is cst.Call else ([], {}, False)
            if k == "optimizer":
                optimizers.append(self._optimizer(c, pos, kw))
            elif k == "autocast":
                self._autocast(c, pos, kw, autocasts, defer)
            elif k == "scaler":
                if not (c.qual.startswith("torch.") or bare):
                    continue
                if pos and type(pos[0]) is cst.SimpleString and pos[0].evaluated_value not in ("cuda",):
                    continue  # GradScaler("cpu")
                enabled = self.value(kw["enabled"]) if "enabled" in kw else True
                if enabled is True:
                    scalers.append(self.found("amp-fp16", c, f"{c.name}(...)", why="loss scaling: fp16 autocast"))
                elif enabled is _UNKNOWN:
                    defer("autocast", c, f"enabled={self.code(kw['enabled'])} is not decidable")
            elif k == "dataloader":
                self._dataloader(c, pos, kw, batches, defer)
            elif k == "hf_args":
                self._hf_args(c, kw, star, trainer_model, hf_optimizers, autocasts, batches,
                              checkpoints, distributed, defer)
            elif k == "distributed":
                arg = kw.get("module", pos[0] if pos else None)
                target = self.target_of(arg, c.cls) if arg is not None else None
                distributed.append(self.found(DISTRIBUTED_NAMES[c.qual.rsplit(".", 1)[-1]], c, f"{c.name}(...)", target))
            elif k == "checkpoint":
                q = c.qual
                if "." in q and q.rsplit(".", 2)[-2] in ("checkpoint", "checkpointing") or \
                        q.endswith("checkpoint_sequential"):
                    checkpoints.append(self.found(True, c, c.name if c.extra == "reference" else f"{c.name}(...)"))
            elif k == "ckpt_method":
                recv = cast(cst.Attribute, c.call.func).value
                args = [a for a in c.call.args if a.keyword is None]
                if c.name == "set_grad_checkpointing" and args and self.value(args[0].value) is not True:
                    continue
                checkpoints.append(self.found(True, c, f"{self.code(recv)}.{c.name}()", self._recv_target(recv, c.cls)))
            elif k == "cast":
                self._cast(c, pos, kw, casts, defer)
            elif k == "from_pretrained":
                arg = kw.get("torch_dtype", kw.get("dtype"))
                if arg is None:
                    continue
                d = self.dtype(arg, strings=True)
                what = f"{c.name}(..., {'torch_dtype' if 'torch_dtype' in kw else 'dtype'}={self.code(arg)})"
                if d in ("bf16", "fp16"):
                    casts.append(self.found(d, c, what, self.spine_target.get(c.node)))
                elif d is _UNKNOWN:
                    defer("cast", c, f"{self.code(arg)} is not a decidable dtype")
            elif k == "default_dtype":
                d = self.dtype(pos[0]) if pos else _UNKNOWN
                if d in ("bf16", "fp16") and (c.qual.startswith("torch.") or bare):
                    casts.append(self.found(d, c, f"{c.name}({self.code(pos[0])})"))
            elif k == "accelerator":
                mp = kw.get("mixed_precision")
                if mp is None:
                    continue
                v = self.value(mp)
                if v in ("bf16", "fp16"):
                    autocasts.append(self.found(f"amp-{v}", c, f"{c.name}(mixed_precision={v!r})"))
                elif v is _UNKNOWN:
                    defer("autocast", c, f"mixed_precision={self.code(mp)} is not decidable")
            elif k == "trainer":
                self._lightning(c, kw, autocasts, casts, distributed, defer)
            elif k == "keras_compile":
                recv = cast(cst.Attribute, c.call.func).value
                keras_setup.compile_optimizer(self, c, pos, kw, self._recv_target(recv, c.cls), optimizers, defer)
            elif k == "keras_fit":
                keras_setup.fit_batch(self, c, pos, kw, batches, defer)
            elif k == "keras_batch":
                keras_setup.dataset_batch(self, c, pos, batches)
            elif k == "keras_policy":
                keras_setup.dtype_policy(self, c, pos, autocasts, casts, defer)

        optimizers += hf_optimizers
        batch = min(batches, key=lambda b: b[0])[1] if batches else None
        scan = TrainingScan(
            optimizer=optimizers[0] if optimizers else None,
            autocast=(autocasts or scalers)[0] if autocasts or scalers else None,
            cast=casts[0] if casts else None,
            batch_size=batch,
            checkpointing=checkpoints[0] if checkpoints else None,
            distributed=distributed[0] if distributed else None,
            optimizers=tuple(optimizers),
            casts=tuple(casts),
            checkpoints=tuple(checkpoints),
            bindings=tuple(self.bindings.items()),
        )
        for fld, items in pending.items():
            if getattr(scan, fld) is None:
                for c, what in items:
                    self.note(c, what)
        return replace(scan, notes=tuple(self.notes))

    def _recv_target(self, recv: cst.BaseExpression, cls: str | None) -> str | None:
        if type(recv) is cst.Name:
            return cls if recv.value == "self" else recv.value
        return _dotted(recv) or None

    def _optimizer(self, c: _Cand, pos: list[cst.BaseExpression], kw: dict[str, cst.BaseExpression]) -> Found[str]:
        last = c.qual.rsplit(".", 1)[-1]
        value = OPTIMIZER_NAMES.get(last) or keras_setup.KERAS_OPTIMIZER_CLASSES[last]
        shown = "..."
        if value == "sgd":
            mom = kw.get("momentum", pos[2] if len(pos) > 2 else None)
            if mom is not None:
                m = self.value(mom)
                if not (type(m) in (int, float) and m == 0):
                    value = "sgd-momentum"
                shown = f"..., momentum={self.code(mom, 20)}"
        elif value in ("adam", "adamw") and "amsgrad" in kw and self.value(kw["amsgrad"]) is True:
            value = "amsgrad"
            shown = "..., amsgrad=True"
        params = kw.get("params", pos[0] if pos else None)
        target: str | None = None
        if params is not None:
            for n in iter_nodes(params):
                if type(n) is cst.Call and type(n.func) is cst.Attribute and \
                        n.func.attr.value in ("parameters", "named_parameters"):
                    target = self.target_of(n.func.value, c.cls)
                    break
        return self.found(value, c, f"{c.name}({shown})", target,
                          self.code(params, 80) if params is not None else None)

    def _autocast(self, c: _Cand, pos: list[cst.BaseExpression], kw: dict[str, cst.BaseExpression],
                  out: list[Found[str]], defer: Callable[[str, _Cand, str], None]) -> None:
        q = c.qual
        if not (q.startswith("torch.") or "." not in q):
            return  # accelerator.autocast(), a user's autocast
        if "cpu.amp" in q:
            return
        # torch.cuda.amp.autocast(enabled, dtype, ...); torch.autocast(device_type, dtype, enabled, ...).
        # A bare `autocast` of unknown origin: the first form unless its first argument is a string.
        cuda_form = "cuda.amp" in q or ("." not in q and (not pos or type(pos[0]) is not cst.SimpleString))
        device_node = kw.get("device_type", None if cuda_form or not pos else pos[0])
        device = self.value(device_node) if device_node is not None else _UNKNOWN
        if isinstance(device, str) and device != "cuda":
            return  # autocast("cpu"): not GPU training
        enabled_node = kw.get("enabled", (pos[0] if pos else None) if cuda_form else pos[2] if len(pos) > 2 else None)
        if enabled_node is not None and self.value(enabled_node) is False:
            return
        dtype_node = kw.get("dtype", pos[1] if len(pos) > 1 else None)
        if dtype_node is None:
            out.append(self.found("amp-fp16", c, f"{c.name}(...)", why="float16 by default"))
            return
        d = self.dtype(dtype_node)
        if d in ("bf16", "fp16"):
            out.append(self.found(f"amp-{d}", c, f"{c.name}(..., dtype={self.code(dtype_node, 30)})"))
        elif d is _UNKNOWN:
            defer("autocast", c, f"dtype={self.code(dtype_node)} is not decidable")

    def _dataloader(self, c: _Cand, pos: list[cst.BaseExpression], kw: dict[str, cst.BaseExpression],
                    out: list[tuple[int, Found[int]]], defer: Callable[[str, _Cand, str], None]) -> None:
        if "batch_sampler" in kw:
            return
        node = kw.get("batch_size", pos[1] if len(pos) > 1 else None)
        if node is None:
            return  # DataLoader's default is 1, but an unsaid batch size is more likely set elsewhere
        n = self.value(node)
        if n is None:
            return
        if type(n) is not int or n <= 0:
            defer("batch_size", c, f"batch_size={self.code(node)} is not decidable")
            return
        # Prefer the training loader (an evaluation one often has a larger batch): by the name it
        # is assigned to, else the dataset's text; a shuffled one is a training one.
        dataset = kw.get("dataset", pos[0] if pos else None)
        words = (self.spine_target.get(c.node) or (self.code(dataset) if dataset is not None else "")).lower()
        shuffle = self.value(kw["shuffle"]) if "shuffle" in kw else None
        evaluation = any(w in words for w in ("val", "test", "eval"))
        rank = 0 if shuffle is True or ("train" in words and not evaluation) else 2 if evaluation else 1
        what = f"{c.name}(..., batch_size={self.code(node, 30)})"
        out.append((rank, self.found(n, c, what, why="" if type(node) is cst.Integer else f"= {n}")))

    def _trainer_model(self) -> str | None:
        for c in self.cands:
            if c.kind == "trainer":
                pos, kw, _ = _split_args(c.call)
                m = kw.get("model", pos[0] if pos and "args" in kw else None)
                if m is not None and type(m) is cst.Name:
                    return m.value
        return None

    def _hf_args(self, c: _Cand, kw: dict[str, cst.BaseExpression], star: bool, trainer_model: str | None,
                 optimizers: list[Found[str]], autocasts: list[Found[str]], batches: list[tuple[int, Found[int]]],
                 checkpoints: list[Found[bool]], distributed: list[Found[str]],
                 defer: Callable[[str, _Cand, str], None]) -> None:
        defaults = not star and c.qual.rsplit(".", 1)[-1].endswith("TrainingArguments")
        if not optimizers:
            if "optim" in kw:
                node = kw["optim"]
                v = self.value(node)
                if type(node) is cst.Attribute and "OptimizerNames" in _dotted(node):
                    v = node.attr.value.lower()
                if isinstance(v, str) and v in HF_OPTIMIZERS:
                    optimizers.append(self.found(HF_OPTIMIZERS[v], c, f"{c.name}(optim={v!r})", trainer_model))
                else:
                    defer("optimizer", c, f"optim={self.code(node)} is not a known optimizer")
            elif "adafactor" in kw and self.value(kw["adafactor"]) is True:
                optimizers.append(self.found("adafactor", c, f"{c.name}(adafactor=True)", trainer_model))
            elif defaults:
                optimizers.append(self.found("adamw", c, f"{c.name}(...)", trainer_model,
                                             why="the Trainer's default optimizer, AdamW"))
        for flag, prec in (("bf16", "amp-bf16"), ("fp16", "amp-fp16")):
            if flag in kw:
                v = self.value(kw[flag])
                if v is True:
                    autocasts.append(self.found(prec, c, f"{c.name}({flag}=True)"))
                elif v is _UNKNOWN:
                    defer("autocast", c, f"{flag}={self.code(kw[flag])} is not decidable")
        if "per_device_train_batch_size" in kw:
            node = kw["per_device_train_batch_size"]
            n = self.value(node)
            if type(n) is int and n > 0:
                what = f"{c.name}(per_device_train_batch_size={self.code(node, 30)})"
                batches.append((0, self.found(n, c, what, why="" if type(node) is cst.Integer else f"= {n}")))
            else:
                defer("batch_size", c, f"per_device_train_batch_size={self.code(node)} is not decidable")
        elif defaults:
            batches.append((3, self.found(HF_DEFAULT_BATCH, c, f"{c.name}(...)",
                                          why=f"per_device_train_batch_size default {HF_DEFAULT_BATCH}")))
        if "gradient_checkpointing" in kw:
            v = self.value(kw["gradient_checkpointing"])
            if v is True:
                checkpoints.append(self.found(True, c, f"{c.name}(gradient_checkpointing=True)", trainer_model))
        if "fsdp" in kw:
            v = self.value(kw["fsdp"])
            if (isinstance(v, str) and v.strip()) or v is True or type(kw["fsdp"]) is cst.List:
                distributed.append(self.found("fsdp", c, f"{c.name}(fsdp=...)", trainer_model))

    def _lightning(self, c: _Cand, kw: dict[str, cst.BaseExpression], autocasts: list[Found[str]],
                   casts: list[Found[str]], distributed: list[Found[str]],
                   defer: Callable[[str, _Cand, str], None]) -> None:
        if "precision" in kw:
            v = self.value(kw["precision"])
            p = str(v) if type(v) in (int, str) else None
            if p in ("bf16", "bf16-mixed"):
                autocasts.append(self.found("amp-bf16", c, f"{c.name}(precision={v!r})"))
            elif p in ("16", "16-mixed"):
                autocasts.append(self.found("amp-fp16", c, f"{c.name}(precision={v!r})"))
            elif p in ("bf16-true", "16-true"):
                casts.append(self.found("bf16" if p.startswith("bf") else "fp16", c, f"{c.name}(precision={v!r})"))
            elif v is _UNKNOWN:
                defer("autocast", c, f"precision={self.code(kw['precision'])} is not decidable")
        if "strategy" in kw:
            v = self.value(kw["strategy"])
            if isinstance(v, str):
                kind = "fsdp" if v.startswith("fsdp") else "ddp" if v.startswith("ddp") else None
                if kind is not None:
                    distributed.append(self.found(kind, c, f"{c.name}(strategy={v!r})"))

    def _cast(self, c: _Cand, pos: list[cst.BaseExpression], kw: dict[str, cst.BaseExpression],
              out: list[Found[str]], defer: Callable[[str, _Cand, str], None]) -> None:
        func = cast(cst.Attribute, c.call.func)
        recv = func.value
        if c.name == "to":
            dnode = kw.get("dtype")
            candidates = [dnode] if dnode is not None else pos
            d: Any = _UNKNOWN
            for a in candidates:
                d = self.dtype(a)
                if d is not _UNKNOWN:
                    dnode = a
                    break
            if d not in ("bf16", "fp16"):
                if d is _UNKNOWN and "dtype" in kw and self._module_receiver(c, recv) is not None:
                    defer("cast", c, f"dtype={self.code(kw['dtype'])} is not decidable")
                return
            assert dnode is not None
            what = f"{self.code(recv, 30)}.to({'dtype=' if 'dtype' in kw else ''}{self.code(dnode, 30)})"
        else:
            if c.call.args:
                return
            d = CAST_METHODS[c.name]
            what = f"{self.code(recv, 30)}.{c.name}()"
        target = self._module_receiver(c, recv)
        if target is None:
            return
        out.append(self.found(d, c, what, target or None))

    def _module_receiver(self, c: _Cand, recv: cst.BaseExpression) -> str | None:
        """The target of a cast when its receiver is a model ("" for a model with no name), None
        when it may be a tensor: a statement `x.half()` (in place only for modules), a receiver
        a module method is called on, a chain rooted at a class's constructor."""
        statement = c.node in self.statement
        node = recv
        for _ in range(64):  # down `model.to(device).cuda()`
            if type(node) is cst.Call and type(node.func) is cst.Attribute and node.func.attr.value in CHAIN_METHODS:
                node = node.func.value
            else:
                break
        if type(node) is cst.Call:
            name = _dotted(node.func)
            if name and _looks_like_class(name):
                return self.spine_target.get(c.node, "")
            return None
        if type(node) is cst.Name:
            if node.value == "self":
                return c.cls if c.cls else "" if statement else None
            name = node.value
            if statement or name in self.module_like or _looks_like_class(self.bindings.get(name, "")):
                return name
            return None
        if type(node) is cst.Attribute and statement:
            return _dotted(node) or ""
        return None
