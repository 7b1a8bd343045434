"""How a file launches DeepSpeed, read from its code: the ZeRO plan of `Frontend.parallel_plan`.

Entry points, the first in source order that names DeepSpeed:
- `deepspeed.initialize(model=..., config=dict | "ds.json")`, also `config_params=` and
  `args` carrying `deepspeed_config` (an argparse default the file gives);
- transformers' `TrainingArguments(deepspeed="ds.json" | dict)` (and TRL's configs, any
  `...Arguments` / `...Config` call with `deepspeed=`): "auto" takes the arguments' values
  (`bf16`, `fp16`, `gradient_accumulation_steps`, `per_device_train_batch_size`) and the model's
  hidden size, as transformers' `HfTrainerDeepSpeedConfig` does;
- Lightning's `Trainer(strategy="deepspeed_stage_3_offload")` (the registered names) and
  `DeepSpeedStrategy(stage=..., offload_optimizer=..., offload_parameters=..., config=...)`, with
  the Trainer's `precision`, `devices` and `num_nodes`;
- accelerate's `DeepSpeedPlugin(zero_stage=..., offload_optimizer_device=..., hf_ds_config=...)`
  with the Accelerator's `mixed_precision`.

Arguments are read off the syntax (frontends/training_setup.py's `Scanner`: literals, and names
whose every binding in the file is the same literal) or, for module-level names, from the
evaluated module (`PlanRequest.value_of`). A JSON config is read only inside the workspace
(`PlanRequest.root`; relative to the analysed file's folder, then the workspace's root), a
regular file of at most 1 MiB; what cannot be read is a located note, never an error. The world
size is the code's only where Lightning's `devices` x `num_nodes` say it (0: the setup decides).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from vramlint.engine.script_inputs import ScriptInputs, display_path, resolve_path
from vramlint.engine.source import SourceModule, read_source_file
from vramlint.engine.values import Instance, Unknown
from vramlint.engine.walk import iter_nodes
from vramlint.frontends.deepspeed.config import (
    MAX_CONFIG_BYTES,
    Auto,
    Reading,
    Undecided,
    parse_json,
    read_config,
)
from vramlint.frontends.interface import PlanRequest
from vramlint.frontends.training_setup import UNKNOWN, Scanner, _compose, dotted, split_args
from vramlint.memory.distributed import ParallelPlan, Sourced

# Lightning's registered strategy names (lightning/pytorch/strategies/deepspeed.py
# `register_strategies`) -> DeepSpeedStrategy's arguments.
LIGHTNING_STRATEGIES: dict[str, dict[str, Any]] = {
    "deepspeed": {},
    "deepspeed_stage_1": {"stage": 1},
    "deepspeed_stage_2": {"stage": 2},
    "deepspeed_stage_2_offload": {"stage": 2, "offload_optimizer": True},
    "deepspeed_stage_3": {"stage": 3},
    "deepspeed_stage_3_offload": {"stage": 3, "offload_optimizer": True, "offload_parameters": True},
    "deepspeed_stage_3_offload_nvme": {"stage": 3, "offload_optimizer": True, "offload_parameters": True,
                                       "offload_params_device": "nvme", "offload_optimizer_device": "nvme"},
}
# DeepSpeedStrategy.__init__'s defaults that shape the config it builds (`_create_default_config`).
LIGHTNING_DEFAULTS: dict[str, Any] = {
    "zero_optimization": True, "stage": 2, "offload_optimizer": False, "offload_parameters": False,
    "offload_params_device": "cpu", "offload_optimizer_device": "cpu", "contiguous_gradients": True,
    "overlap_comm": True, "allgather_bucket_size": 200_000_000, "reduce_bucket_size": 200_000_000,
}
# Lightning's precision -> DeepSpeed's (lightning/fabric/strategies/deepspeed.py `_format_precision_config`).
LIGHTNING_PRECISION = {"16-mixed": "fp16", "16-true": "fp16", "16": "fp16", "bf16-mixed": "bf16",
                       "bf16-true": "bf16", "bf16": "bf16"}
ACCELERATE_PRECISION = {"fp16": "fp16", "bf16": "bf16"}
# TrainingArguments-like classes that take `deepspeed=` (transformers, TRL).
HF_SUFFIXES = ("Arguments", "Config")
MAX_DATA_DEPTH = 12
# Syntax nodes read for the values of one file's entry points: names bound to dicts that name
# other dicts, each many times, must not multiply into a hang.
MAX_DATA_NODES = 20_000


@dataclass
class _Entry:
    """One entry point found: the DeepSpeed config it gives (or why not), the extra facts it states."""

    at: str  # "deepspeed.initialize(...) at line 12"
    config: Mapping[str, Any] | None = None
    config_where: str = ""
    auto: Auto = field(default_factory=Auto)
    world: int = 0
    nodes: int = 1
    extra: list[Sourced] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    zero_init: bool = False

    @property
    def where(self) -> str:
        return f"code: {self.at}"


class _Context:
    """The file being read: its syntax tables, its module-level values, its workspace."""

    def __init__(self, request: PlanRequest) -> None:
        self.request = request
        self.source = request.source
        tree = request.source.tree
        assert tree is not None  # read_plan reads only parsed files
        # No handlers: the walk only fills the bindings (names, attributes, argparse defaults) that
        # `value` reads.
        self.scanner = Scanner(request.source, tree, _compose(()))
        self.scanner.run()
        self.base = os.path.dirname(os.path.realpath(request.source.path)) if request.source.path else None
        self.calls: list[cst.Call] = [n for n in iter_nodes(tree) if type(n) is cst.Call]  # type: ignore[misc]
        self.read_nodes = 0
        self.local_names = _function_locals(tree)
        self.current: cst.Call | None = None  # the entry point being read

    def line(self, node: cst.CSTNode) -> int:
        return self.scanner.line(node)

    def entry(self, call: cst.Call) -> _Entry:
        return _Entry(f"{dotted(call.func)}(...) at line {self.line(call)}")

    def qual(self, call: cst.Call) -> str:
        return self.scanner.qualify(dotted(call.func))

    # -- values --------------------------------------------------------------------------------

    def data(self, node: cst.BaseExpression | None, depth: int = 0, evaluate: bool = True) -> Any:
        """The plain data an argument stands for (dicts, lists, strings, numbers), UNKNOWN when
        not decided; undecided leaves of a dict become `Undecided` (noted where they matter).
        `evaluate`: ask the evaluated module too (not for a node made here, outside the file)."""
        self.read_nodes += 1
        if node is None or depth > MAX_DATA_DEPTH or self.read_nodes > MAX_DATA_NODES:
            return UNKNOWN
        t = type(node)
        if t is cst.Dict:
            return self._dict(node, depth)  # type: ignore[arg-type]
        if t in (cst.List, cst.Tuple):
            return [self.data(el.value, depth + 1) for el in node.elements]  # type: ignore[attr-defined]
        if t is cst.Call:
            return self._json_load(node)  # type: ignore[arg-type]
        if t in (cst.Name, cst.Attribute, cst.Subscript) and not (t is cst.Name and node.value in  # type: ignore[attr-defined]
                                                                  ("True", "False", "None")):
            got = plain(self.request.value_of(node)) if evaluate and self._module_level(node) else UNKNOWN
            if got is not UNKNOWN:
                return got
            bound = self._single_binding(node)
            if bound is not None:
                return self.data(bound, depth + 1)
        return self.scanner.value(node)

    def _module_level(self, node: cst.BaseExpression) -> bool:
        """Whether the module's value of `node`'s root name is the one the entry point sees: not a
        local of the function the call is in (`value_of` evaluates at module level)."""
        root = node
        while isinstance(root, (cst.Attribute, cst.Subscript)):
            root = root.value
        local = self.local_names.get(id(self.current), frozenset()) if self.current is not None else frozenset()
        return isinstance(root, cst.Name) and root.value not in local

    def _dict(self, node: cst.Dict, depth: int) -> Any:
        out: dict[str, Any] = {}
        for el in node.elements:
            if isinstance(el, cst.StarredDictElement):
                more = self.data(el.value, depth + 1)
                if not isinstance(more, dict):
                    return UNKNOWN
                out.update(more)
                continue
            assert isinstance(el, cst.DictElement)
            key = self.scanner.value(el.key)
            if not isinstance(key, str):
                continue
            value = self.data(el.value, depth + 1)
            out[key] = Undecided(f"`{self.scanner.code(el.value, 40)}` is not decided by vramlint") \
                if value is UNKNOWN else value
        return out

    def _single_binding(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The one value a name (or `x.attr`, `x["key"]`) is bound to in the file, if a dict or list."""
        s = self.scanner
        if type(node) is cst.Name:
            bound = s.names.get(node.value)
        elif type(node) is cst.Attribute:
            bound = s.attrs.get(node.attr.value)
        else:
            key = s.subscript_key(node)  # type: ignore[arg-type]
            bound = s.attrs.get(key) if key is not None else None
        if bound and len(bound) == 1 and type(bound[0]) in (cst.Dict, cst.List, cst.Call):
            return bound[0]  # type: ignore[no-any-return]
        return None

    def _json_load(self, call: cst.Call) -> Any:
        """`json.load(open("ds.json"))`: the file's name, read as a config path (the caller reads it)."""
        name = self.scanner.qualify(dotted(call.func))
        pos, kw, _ = split_args(call)
        if name in ("json.load", "load") and pos and type(pos[0]) is cst.Call and \
                dotted(pos[0].func) in ("open", "io.open"):
            inner = split_args(pos[0])[0]
            path = self.data(inner[0]) if inner else UNKNOWN
            return _Path(path) if isinstance(path, str) else UNKNOWN
        return UNKNOWN

    # -- the JSON file -------------------------------------------------------------------------

    def read_file(self, path: str) -> tuple[dict[str, Any] | None, str, str | None]:
        """(the config, its name as shown, None) or (None, its name, why it was not read)."""
        if not self.request.root:
            return None, path, f"{path}: no workspace to read the DeepSpeed config from"
        inputs = ScriptInputs(root=self.request.root, script_dir=self.base)
        real, why = resolve_path(inputs, path)
        if real is None:
            return None, path, f"{why} (the DeepSpeed config)"
        shown = display_path(inputs, real)
        data, problem = read_source_file(real, MAX_CONFIG_BYTES)
        if data is None:
            problem = "larger than 1 MiB: not read" if problem and "larger" in problem else problem  # not max-file-size
            return None, shown, f"{shown}: {problem} (the DeepSpeed config)"
        config, note = parse_json(data, shown)
        return config, shown, note

    def config_of(self, node: cst.BaseExpression | None, entry: _Entry) -> None:
        """Fill `entry.config` from an argument that is a dict or a JSON file's path."""
        value = self.data(node)
        if isinstance(value, _Path):
            value = value.path
        if isinstance(value, dict):
            entry.config, entry.config_where = value, entry.where
        elif isinstance(value, str):
            entry.config, entry.config_where, note = self.read_file(value)
            if note:
                entry.notes.append(f"{note}; named at {entry.at}")
        elif node is not None:
            entry.notes.append(f"{entry.at}: the DeepSpeed config "
                               f"`{self.scanner.code(node, 40)}` is not decided by vramlint")

    def value(self, node: cst.BaseExpression | None) -> Any:
        return UNKNOWN if node is None else self.data(node)


class _Path:
    """A config given as a file's name through `json.load(open(name))`."""

    def __init__(self, path: str) -> None:
        self.path = path


def plain(value: Any) -> Any:
    """An evaluator value as plain data (tagged strings and numbers as their base types), UNKNOWN
    for anything else; undecided leaves of a dict become `Undecided`. At most MAX_DATA_NODES
    values are looked at (a dict holding the same dict many times over)."""
    budget = [MAX_DATA_NODES]

    def convert(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if depth > MAX_DATA_DEPTH or budget[0] < 0:
            return UNKNOWN
        if v is None or isinstance(v, bool):
            return v
        for kind in (int, float, str):
            if isinstance(v, kind):
                return kind(v)
        if isinstance(v, dict):
            out: dict[str, Any] = {}
            for k, item in v.items():
                if isinstance(k, str):
                    got = convert(item, depth + 1)
                    out[str(k)] = Undecided(_why(item)) if got is UNKNOWN else got
            return out
        if isinstance(v, (list, tuple)):
            return [convert(item, depth + 1) for item in v]
        return UNKNOWN

    return convert(value, 0)


def _function_locals(tree: cst.Module) -> dict[int, frozenset[str]]:
    """id(call) -> the names the innermost function around it binds (parameters, assignments,
    loop and `with` targets, imports): there the module's value of a name is not the call's."""
    out: dict[int, frozenset[str]] = {}
    for fn in iter_nodes(tree):  # pre-order: an inner function comes after, and overrides, its outer one
        if type(fn) is not cst.FunctionDef:
            continue
        bound: set[str] = set()
        calls: list[int] = []
        for n in iter_nodes(fn):
            t = type(n)
            if t is cst.Param:
                bound.add(n.name.value)  # type: ignore[attr-defined]
            elif t in (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.NamedExpr, cst.AsName):
                target = n.name if t is cst.AsName else n.target  # type: ignore[attr-defined]
                bound.update(x.value for x in iter_nodes(target) if type(x) is cst.Name)
            elif t is cst.Call:
                calls.append(id(n))
        names = frozenset(bound)
        out.update((c, names) for c in calls)
    return out


def _why(value: Any) -> str:
    return value.reason if isinstance(value, Unknown) else "not decided by vramlint"


# ----------------------------------------------------------------------------------- entry points

def _initialize(ctx: _Context, call: cst.Call) -> _Entry | None:
    from vramlint.frontends.deepspeed.stubs import INITIALIZE_PARAMS

    pos, kw, _ = split_args(call)
    args = {**dict(zip(INITIALIZE_PARAMS, pos)), **kw}
    if not _trains(ctx, args.get("model")):
        return None
    entry = ctx.entry(call)
    node = args.get("config") or args.get("config_params")
    if node is None and "args" in args:
        # `deepspeed.initialize(args=args, ...)`: the config's path is `args.deepspeed_config`
        # (deepspeed.add_config_arguments), set where the file gives an argparse default.
        path = ctx.scanner.consistent(ctx.scanner.attrs.get("deepspeed_config"), ctx.scanner.value, 0)
        if not isinstance(path, str):
            entry.notes.append(f"{entry.at}: the DeepSpeed config comes from the command line "
                               "(--deepspeed_config), which the code does not show")
            return entry
        entry.config, entry.config_where, note = ctx.read_file(path)
        if note:
            entry.notes.append(f"{note}; named by args.deepspeed_config at {entry.at}")
        return entry
    if node is None:
        entry.notes.append(f"{entry.at}: no DeepSpeed config given (config=...)")
        return entry
    ctx.config_of(node, entry)
    return entry


def _trains(ctx: _Context, node: cst.BaseExpression | None) -> bool:
    """Whether a call's `model=` is the model analysed (or says nothing that rules it out)."""
    if type(node) is not cst.Name:
        return True
    name = ctx.request.name
    return node.value == name or ctx.request.scan.constructor_of(node.value) in (name, None) \
        or (ctx.request.scan.constructor_of(node.value) or "").rsplit(".", 1)[-1] == name


def _hf_arguments(ctx: _Context, call: cst.Call) -> _Entry | None:
    _, kw, _ = split_args(call)
    node = kw.get("deepspeed")
    if node is None or ctx.value(node) is None:
        return None
    entry = ctx.entry(call)
    values: dict[str, tuple[Any, str]] = {}
    line = ctx.line(call)
    name = dotted(call.func).rsplit(".", 1)[-1]
    for arg, key in (("bf16", "bf16.enabled"), ("fp16", "fp16.enabled"),
                     ("gradient_accumulation_steps", "gradient_accumulation_steps"),
                     ("per_device_train_batch_size", "train_micro_batch_size_per_gpu")):
        got = ctx.value(kw.get(arg))
        if got is not UNKNOWN:
            values[key] = (got, f"{name}({arg}={got}) at line {line}")
        elif arg in ("bf16", "fp16") and arg not in kw:
            values[key] = (False, f"{name}'s default {arg}=False")
        elif arg == "gradient_accumulation_steps" and arg not in kw:
            values[key] = (1, f"{name}'s default {arg}=1")
    values.update(_hidden_size_autos(ctx))
    entry.auto = Auto(values, "transformers' Trainer")
    ctx.config_of(node, entry)
    # transformers builds a model loaded after TrainingArguments(deepspeed=<ZeRO-3>) under
    # deepspeed.zero.Init (`is_deepspeed_zero3_enabled()` in from_pretrained).
    entry.zero_init = True
    return entry


def _hidden_size_autos(ctx: _Context) -> dict[str, tuple[Any, str]]:
    """The "auto" values transformers and accelerate derive from the model's hidden size
    (`trainer_config_finalize`: hidden_size^2, 0.9 hidden_size^2, 10 hidden_size)."""
    hidden = _hidden_size(ctx.request)
    if hidden is None:
        return {}
    where = f"the model's hidden_size {hidden}"
    return {"zero_optimization.reduce_bucket_size": (hidden * hidden, f"{where}: hidden_size^2"),
            "zero_optimization.stage3_prefetch_bucket_size": (int(0.9 * hidden * hidden),
                                                             f"{where}: 0.9 x hidden_size^2"),
            "zero_optimization.stage3_param_persistence_threshold": (10 * hidden, f"{where}: 10 x hidden_size")}


def _hidden_size(request: PlanRequest) -> int | None:
    model = request.model
    config = model.attrs.get("config") if isinstance(model, Instance) else None
    if config is None:
        return None
    try:
        hidden = request.evaluator.protocol.getattr(config, "hidden_size", None)
        if not isinstance(hidden, int):
            sizes = request.evaluator.protocol.getattr(config, "hidden_sizes", None)
            hidden = max(sizes) if isinstance(sizes, list) and sizes and all(isinstance(s, int) for s in sizes) \
                else None
    except Exception:  # noqa: BLE001 - a config's property that fails only costs the "auto" values
        return None
    return int(hidden) if isinstance(hidden, int) and not isinstance(hidden, bool) and hidden > 0 else None


def _lightning(ctx: _Context, call: cst.Call, kwargs: Mapping[str, Any], entry: _Entry) -> None:
    """The config DeepSpeedStrategy builds from its arguments (`_create_default_config`), or the
    one it is given (`config=`, which replaces them all)."""
    if "config" in kwargs and kwargs["config"] is not None:
        ctx.config_of(kwargs["config"], entry)
        return
    got = {**LIGHTNING_DEFAULTS, **{k: v for k, v in kwargs.items() if k != "config"}}
    if not got["zero_optimization"]:
        entry.config, entry.config_where = {}, entry.where
        return
    zero: dict[str, Any] = {k: got[k] for k in ("stage", "contiguous_gradients", "overlap_comm",
                                                "allgather_bucket_size", "reduce_bucket_size")}
    if got["offload_optimizer"]:
        zero["offload_optimizer"] = {"device": got["offload_optimizer_device"]}
    if got["offload_parameters"]:
        zero["offload_param"] = {"device": got["offload_params_device"]}
    entry.config, entry.config_where = {"zero_optimization": zero}, entry.where


def _strategy_object(ctx: _Context, call: cst.Call) -> _Entry | None:
    """`DeepSpeedStrategy(stage=3, offload_optimizer=True, ...)`."""
    _, kw, _ = split_args(call)
    entry = ctx.entry(call)
    values: dict[str, Any] = {}
    for key, node in kw.items():
        value = node if key == "config" else ctx.value(node)
        if value is UNKNOWN:
            entry.notes.append(f"{entry.at}: {key}=`{ctx.scanner.code(node, 30)}` is not decided: "
                               "DeepSpeedStrategy's default assumed")
            continue
        values[key] = value
    _lightning(ctx, call, values, entry)
    _lightning_trainer_facts(ctx, entry)
    return entry


def _strategy_name(ctx: _Context, call: cst.Call) -> _Entry | None:
    """`Trainer(strategy="deepspeed_stage_3_offload")` (Lightning's Trainer or Fabric)."""
    _, kw, _ = split_args(call)
    name = ctx.value(kw.get("strategy"))
    if not isinstance(name, str) or name not in LIGHTNING_STRATEGIES:
        return None
    entry = ctx.entry(call)
    _lightning(ctx, call, LIGHTNING_STRATEGIES[name], entry)
    entry.config_where = f"code: strategy=\"{name}\" at line {ctx.line(call)} (Lightning's registered strategy)"
    _lightning_trainer_facts(ctx, entry)
    return entry


def _lightning_trainer_facts(ctx: _Context, entry: _Entry) -> None:
    """The Trainer's (or Fabric's) precision, devices and num_nodes, where the file gives them."""
    for call in ctx.calls:
        if dotted(call.func).rsplit(".", 1)[-1] not in ("Trainer", "Fabric"):
            continue
        _, kw, _ = split_args(call)
        line = ctx.line(call)
        precision = ctx.value(kw.get("precision"))
        low = LIGHTNING_PRECISION.get(str(precision)) if precision is not UNKNOWN else None
        if low is not None:
            # _format_precision_config adds the section only where the config has none: "auto"
            # here stands for "the Trainer's", so the source shown is the Trainer's line.
            entry.auto = Auto({f"{low}.enabled": (True, f"Trainer(precision={precision!r}) at line {line}")})
            entry.config = {low: {"enabled": "auto"}, **(entry.config or {})}
        devices, nodes = ctx.value(kw.get("devices")), ctx.value(kw.get("num_nodes"))
        nodes = nodes if type(nodes) is int and nodes > 0 else 1
        if type(devices) is int and devices > 0:
            entry.world, entry.nodes = devices * nodes, nodes
            entry.extra.append(Sourced("world size", str(devices * nodes),
                                       f"code: Trainer(devices={devices}, num_nodes={nodes}) at line {line}"))
        return


def _accelerate_plugin(ctx: _Context, call: cst.Call) -> _Entry | None:
    """accelerate's `DeepSpeedPlugin(zero_stage=2, offload_optimizer_device="cpu", hf_ds_config=...)`."""
    _, kw, _ = split_args(call)
    entry = ctx.entry(call)
    mixed = _accelerator_precision(ctx)
    values: dict[str, tuple[Any, str]] = {}
    if mixed is not None:
        low, where = mixed
        values = {"bf16.enabled": (low == "bf16", where), "fp16.enabled": (low == "fp16", where)}
    values.update(_hidden_size_autos(ctx))
    entry.auto = Auto(values, "accelerate")
    if "hf_ds_config" in kw:
        ctx.config_of(kw["hf_ds_config"], entry)
        return entry
    stage = ctx.value(kw.get("zero_stage"))
    zero: dict[str, Any] = {"stage": stage if type(stage) is int else 2}  # accelerate's default (ACCELERATE_DEEPSPEED_ZERO_STAGE)
    for arg, key in (("offload_optimizer_device", "offload_optimizer"), ("offload_param_device", "offload_param")):
        device = ctx.value(kw.get(arg))
        if isinstance(device, str):
            zero[key] = {"device": device}
    steps = ctx.value(kw.get("gradient_accumulation_steps"))
    entry.config = {"zero_optimization": zero,
                    **({"bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}} if mixed is not None else {}),
                    **({"gradient_accumulation_steps": steps} if type(steps) is int else {})}
    entry.config_where = entry.where
    init = ctx.value(kw.get("zero3_init_flag"))
    entry.zero_init = init is not False  # accelerate's default: True under stage 3 (ACCELERATE_DEEPSPEED_ZERO3_INIT)
    return entry


def _accelerator_precision(ctx: _Context) -> tuple[str, str] | None:
    for call in ctx.calls:
        if dotted(call.func).rsplit(".", 1)[-1] == "Accelerator":
            value = ctx.value(split_args(call)[1].get("mixed_precision"))
            if isinstance(value, str):
                return ACCELERATE_PRECISION.get(value, "no"), \
                    f"Accelerator(mixed_precision={value!r}) at line {ctx.line(call)}"
    return None


def _kind(ctx: _Context, call: cst.Call) -> Callable[[_Context, cst.Call], _Entry | None] | None:
    qual = ctx.qual(call)
    last = qual.rsplit(".", 1)[-1]
    if last == "initialize" and qual.split(".", 1)[0] == "deepspeed":
        return _initialize
    if last == "DeepSpeedStrategy":
        return _strategy_object
    if last == "DeepSpeedPlugin":
        return _accelerate_plugin
    if last in ("Trainer", "Fabric") and any(a.keyword is not None and a.keyword.value == "strategy"
                                             for a in call.args):
        return _strategy_name
    if last.endswith(HF_SUFFIXES) and any(a.keyword is not None and a.keyword.value == "deepspeed"
                                          for a in call.args):
        return _hf_arguments
    return None


# ------------------------------------------------------------------------------------------ plan

def _mentions_deepspeed(source: SourceModule) -> bool:
    """Whether the file's text names DeepSpeed, in any case (once per version of the file: every
    model of the file asks)."""
    key = ("mentions-deepspeed",)
    hit = source.node_cache.get(key)  # type: ignore[call-overload]
    if hit is None:
        hit = source.node_cache[key] = "deepspeed" in source.text.lower()  # type: ignore[index]
    return bool(hit)


def read_plan(request: PlanRequest) -> ParallelPlan | None:
    """The ZeRO plan the file states for `request.model`, or None when it does not use DeepSpeed."""
    source = request.source
    if source.tree is None or not _mentions_deepspeed(source):
        return None
    ctx = _Context(request)
    for call in ctx.calls:
        reader = _kind(ctx, call)
        ctx.current = call
        entry = reader(ctx, call) if reader is not None else None
        if entry is not None:
            return _plan(ctx, entry)
    return None


def _plan(ctx: _Context, entry: _Entry) -> ParallelPlan:
    reading = read_config(entry.config, entry.config_where or entry.where, entry.auto) \
        if entry.config is not None else Reading(fields={"stage": 0}, notes=[
            f"{entry.at}: the DeepSpeed config is not read: ZeRO stage 0 (DeepSpeed's default) assumed"])
    f = reading.fields
    stage = f.get("stage", 0)
    label = _label(stage, f.get("offload_optimizer"), f.get("offload_params"))
    init_call = next((c for c in ctx.calls if ctx.qual(c).endswith("zero.Init")), None)
    zero_init = stage == 3 and (entry.zero_init or init_call is not None)
    sources = [Sourced("strategy", label, entry.where), *entry.extra, *reading.sources]
    if zero_init:
        sources.append(Sourced("zero.Init", "True", f"code: {ctx.entry(init_call).at}" if init_call is not None
                               else entry.where))
    fields = {k: v for k, v in f.items() if v is not None or k in ("offload_optimizer", "offload_params",
                                                                   "low_precision")}
    return ParallelPlan(
        strategy="deepspeed", world_size=entry.world, nodes=entry.nodes,
        # 0: the analysis shards over the data-parallel world once it knows it (complete_plan).
        shard_size=0 if stage >= 1 else 1, label=label, zero_init=zero_init,
        sources=tuple(sources), notes=tuple(entry.notes + reading.notes), **fields)


def _label(stage: int, optimizer: str | None, params: str | None) -> str:
    """"deepspeed zero-3 + cpu offload" (both offloaded, or the optimizer below stage 3)."""
    label = f"deepspeed zero-{stage}"
    if optimizer and (params == optimizer or stage < 3):
        return f"{label} + {optimizer} offload"
    if optimizer:
        return f"{label} + {optimizer} optimizer offload" + (f", {params} parameter offload" if params else "")
    return f"{label} + {params} parameter offload" if params else label

