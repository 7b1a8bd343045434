"""The torch frontend's `parallel_plan`: the marks torch's multi-GPU calls left on a model's module
tree (distributed.py) read into a ParallelPlan (memory/distributed.py).

Module paths are the wrapped model's own (DDP's `module.` and FSDP1's `_fsdp_wrapped_module.`
are left out), "" the root. The world size is the product of the device mesh's shape where the
code gives one (`init_device_mesh("cuda", (2, 4))`), else 0: the analysis fills it from the setup
(--world-size, WORLD_SIZE...). `shard_size` is 0 where it is the world (a full shard) and the world
is not in the code; under HYBRID_SHARD without a mesh it is 0 too, a node's GPUs (a note says so).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Instance, Unknown
from vramlint.frontends.torch.distributed import (
    Mark,
    any_marks,
    call_text,
    enum_name,
    marks_of,
    mesh_state,
    where,
    wrapped,
)
from vramlint.frontends.torch.module import is_module, state_of
from vramlint.frontends.torch.tensors import DType
from vramlint.memory.distributed import (
    SHARD_GRADIENTS,
    SHARD_NOTHING,
    SHARD_PARAMETERS,
    ParallelPlan,
    Sourced,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.frontends.interface import PlanRequest

# FSDP1's ShardingStrategy -> (what is sharded, label, shards within a node)
FSDP1_STRATEGIES = {
    "FULL_SHARD": (SHARD_PARAMETERS, "full-shard", False),
    "SHARD_GRAD_OP": (SHARD_GRADIENTS, "shard-grad-op", False),
    "NO_SHARD": (SHARD_NOTHING, "no-shard", False),
    "HYBRID_SHARD": (SHARD_PARAMETERS, "hybrid-shard", True),
    "_HYBRID_SHARD_ZERO2": (SHARD_GRADIENTS, "hybrid-shard-zero2", True),
}


@dataclass
class Reading:
    """A plan being read: its fields by name, where each came from, what could not be read."""

    path: str  # the analysed file: sources in it say "at line N"
    fields: dict[str, Any] = field(default_factory=dict)
    sources: list[Sourced] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def source(self, mark: Mark) -> str:
        return f"code: {mark.call} {where(mark.ref, self.path)}".rstrip()

    def set(self, name: str, value: Any, mark: Mark | None, shown: str | None = None) -> None:
        self.fields[name] = value
        if mark is not None:
            self.sources.append(Sourced(name, shown if shown is not None else str(value), self.source(mark)))


def parallel_plan(request: PlanRequest) -> ParallelPlan | None:
    """Frontend.parallel_plan: None when no torch API marked the model."""
    ev = request.evaluator
    if not any_marks(ev):  # (every model of a file asks: a walk of its modules for nothing)
        return None
    model = wrapped(request.model) or request.model
    found = sorted(((p, m) for p, mod in _modules(model) for m in marks_of(ev, mod)), key=lambda pm: pm[1].order)
    if not found:
        return None
    return plan_from_marks(request.source.path, found)


def plan_from_marks(path: str, found: list[tuple[str, Mark]]) -> ParallelPlan:
    """The plan of marks (module path, mark) in the order made; `path` the analysed file."""
    r = Reading(path)
    by_kind: dict[str, list[tuple[str, Mark]]] = {}
    for module_path, mark in found:
        by_kind.setdefault(mark.kind, []).append((module_path, mark))
    if "fsdp2" in by_kind:
        _fsdp2(r, by_kind["fsdp2"])
    elif "fsdp1" in by_kind:
        _fsdp1(r, by_kind["fsdp1"])
    elif "ddp" in by_kind:
        _ddp(r, by_kind["ddp"][-1][1])
    else:
        r.fields.update(strategy="tp", world_size=0, label="tp")
    if "tp" in by_kind:
        _tensor_parallel(r, by_kind["tp"])
    strategies = [k for k in ("fsdp2", "fsdp1", "ddp") if k in by_kind]
    if len(strategies) > 1:
        r.notes.append(f"the model is wrapped by {' and '.join(strategies)}: read as {strategies[0]}")
    # The call that made the strategy: the last of its kind (FSDP's root call, the DDP wrapper).
    main = by_kind[strategies[0] if strategies else "tp"][-1][1]
    r.sources.insert(0, Sourced("strategy", r.fields["label"], r.source(main)))
    return ParallelPlan(**r.fields, sources=tuple(r.sources), notes=tuple(r.notes))


def _modules(model: Instance, prefix: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Instance]]:
    """The model's modules by their own paths: a wrapper inside the tree (a block wrapped in FSDP1
    by hand) counts as the module it wraps, at the wrapper's path."""
    seen = set() if seen is None else seen
    if id(model) in seen:
        return
    seen.add(id(model))
    yield prefix, model
    for name, child in state_of(model).modules.items():
        if is_module(child):
            yield from _modules(wrapped(child) or child, f"{prefix}.{name}" if prefix else name, seen)


def _join(prefix: str, path: str) -> str:
    return ".".join(p for p in (prefix, path) if p)


# ---------------------------------------------------------------------- meshes, dtypes
def _mesh(r: Reading, mesh: Any, what: str) -> tuple[tuple[int, ...], int] | None:
    """A mesh argument's shape and world (the product of the mesh it was sliced from), None when
    not given or not known (a note says why)."""
    if mesh is None:
        return None
    st = mesh_state(mesh)
    if st is None:
        reason = mesh.reason if isinstance(mesh, Unknown) else f"{type(mesh).__name__} is not a DeviceMesh"
        r.notes.append(f"{what}: the device mesh is not known ({reason}): world size from the setup")
        return None
    bad = next((d for d in (*st.shape, *st.root) if not isinstance(d, int) or isinstance(d, bool) or d < 1), None)
    if bad is not None:
        reason = bad.reason if isinstance(bad, Unknown) else f"dimension {bad!r}"
        r.notes.append(f"{what}: the device mesh's shape is not known ({reason}): world size from the setup")
        return None
    world = 1
    for d in st.root:
        world *= d
    return tuple(st.shape), world


def _set_world(r: Reading, mesh: Any, world: int) -> None:
    st = mesh_state(mesh)
    if r.fields.get("world_size"):
        return
    r.fields["world_size"] = world
    src = f"code: {call_text(st.ref, 'init_device_mesh')} {where(st.ref, r.path)}".rstrip() if st else "code"
    r.sources.append(Sourced("world size", str(world), src))


def _odd(what: str, v: Any, mark: Mark | None, assumed: str) -> str:
    """A note for an argument that is not known (an Unknown: its reason) or not understood."""
    why = v.reason if isinstance(v, Unknown) else f"{type(v).__name__} {v!r}"[:80]
    return f"{what}{f' in {mark.call}' if mark is not None else ''} is not known ({why}): {assumed}"


def _dtype(v: Any) -> str | None:
    return v.name if isinstance(v, DType) else None


def _precision(r: Reading, policy: Any, mark: Mark, what: str) -> None:
    """MixedPrecisionPolicy / MixedPrecision: param_dtype and reduce_dtype."""
    if policy is None:
        return
    if not isinstance(policy, Instance):
        r.notes.append(_odd(what, policy, mark, "parameters in their own dtype"))
        return
    for name in ("param_dtype", "reduce_dtype"):
        dt = _dtype(policy.attrs.get(name))
        if dt is not None:
            r.set(name, dt, mark)
        elif policy.attrs.get(name) is not None:
            r.notes.append(_odd(f"{what}'s {name}", policy.attrs.get(name), mark, "unchanged"))


def _flag(r: Reading, mark: Mark, name: str, default: bool) -> bool:
    v = mark.args.get(name, default)
    if isinstance(v, bool):
        if v != default:
            r.set(name, v, mark)
        return v
    r.notes.append(_odd(name, v, mark, f"{default} assumed (torch's default)"))
    return default


# ---------------------------------------------------------------------- DDP
def _ddp(r: Reading, mark: Mark) -> None:
    """DistributedDataParallel(module, bucket_cap_mb=None (25 MiB), gradient_as_bucket_view,
    find_unused_parameters, static_graph): one copy of everything per rank."""
    r.fields.update(strategy="ddp", world_size=0, shard_size=1, stage=SHARD_NOTHING, label="ddp")
    cap = mark.args.get("bucket_cap_mb")
    if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0:
        r.set("bucket_cap_mb", float(cap), mark, f"{cap:g}")
    elif cap is not None:
        r.notes.append(_odd("bucket_cap_mb", cap, mark, "25 MiB assumed (torch's default)"))
    for name in ("gradient_as_bucket_view", "find_unused_parameters", "static_graph"):
        r.fields[name] = _flag(r, mark, name, False)
    got = _mesh(r, mark.mesh, mark.call)
    if got is not None:
        _set_world(r, mark.mesh, got[1])


# ---------------------------------------------------------------------- FSDP2
def _fsdp2(r: Reading, marks: list[tuple[str, Mark]]) -> None:
    """fully_shard on each unit: the units in the order called; the mesh, mixed precision and
    offload of the root's call (the last where no root call); reshard_after_forward as most units
    have it (torch 2.13: None, the default, is True except on the root, which keeps its
    parameters after forward)."""
    units: list[str] = []
    for path, _ in marks:
        if path not in units:
            units.append(path)
    main = next((m for p, m in reversed(marks) if p == ""), marks[-1][1])
    r.fields.update(strategy="fsdp2", units=tuple(units))
    r.sources.append(Sourced("FSDP units", _units_text(units), _lines(r, [m for _, m in marks])))
    reshard = _reshard(r, marks)
    got = _mesh(r, main.mesh, main.call)
    hybrid = got is not None and len(got[0]) == 2
    if got is not None:
        _set_world(r, main.mesh, got[1])
        r.fields["shard_size"] = got[0][-1]
    else:
        r.fields.update(world_size=0, shard_size=0)
    if got is not None and len(got[0]) > 2:
        r.notes.append(f"{main.call}: a mesh of {len(got[0])} dimensions (dp_mesh_dims?) read as HSDP over its last")
    r.fields["stage"] = SHARD_GRADIENTS if reshard is False else SHARD_PARAMETERS
    _precision(r, main.args.get("mp_policy"), main, "mp_policy")
    offload = _offload2(r, main)
    kind = "hybrid-shard" if hybrid else "shard-grad-op" if reshard is False else "full-shard"
    r.fields["label"] = f"fsdp2 {kind}" + (" + cpu offload" if offload else "")


def _reshard(r: Reading, marks: list[tuple[str, Mark]]) -> bool | int:
    values = []
    for path, mark in marks:
        v = mark.args.get("reshard_after_forward")
        if v is None:
            v = path != ""  # torch's lazy init: the root does not reshard
        elif not isinstance(v, (bool, int)):
            r.notes.append(_odd("reshard_after_forward", v, mark, "True assumed"))
            v = True
        values.append((path, v, mark))
    blocks = [v for p, v, _ in values if p != ""] or [v for _, v, _ in values]
    value = Counter(blocks).most_common(1)[0][0]
    told = next((m for _, v, m in values if v == value and m.args.get("reshard_after_forward") is not None), None)
    r.fields["reshard_after_forward"] = value
    if told is not None:
        r.sources.append(Sourced("reshard_after_forward", str(value), r.source(told)))
    if len(set(blocks)) > 1:  # (the root apart: torch's own default keeps it unsharded)
        r.notes.append("reshard_after_forward differs between units: " + ", ".join(
            f"{p or '(root)'} {v}" for p, v, _ in values[:8]) + (" ..." if len(values) > 8 else ""))
    return value


def _offload2(r: Reading, mark: Mark) -> bool:
    """CPUOffloadPolicy: sharded parameters, gradients and the optimizer step on the host."""
    policy = mark.args.get("offload_policy")
    if isinstance(policy, Instance) and policy.cls.name == "CPUOffloadPolicy":
        r.set("offload_params", "cpu", mark, "cpu (CPUOffloadPolicy)")
        r.fields["offload_optimizer"] = "cpu"
        return True
    if policy is not None and not (isinstance(policy, Instance) and policy.cls.name == "OffloadPolicy"):
        r.notes.append(_odd("offload_policy", policy, mark, "no offload assumed"))
    return False


def _units_text(units: list[str]) -> str:
    shown = [u or "(root)" for u in units]
    text = ", ".join(shown[:4]) + (f", ... {shown[-1]}" if len(shown) > 5 else ", " + shown[4] if len(shown) == 5 else "")
    return f"{len(units)} unit{'s' if len(units) != 1 else ''}: {text}"


def _lines(r: Reading, marks: list[Mark]) -> str:
    """"code: fully_shard(...) at lines 12, 14"."""
    lines = sorted({m.ref.statement_location.line for m in marks
                    if m.ref is not None and m.ref.statement_location.path == r.path})
    if not lines:
        return r.source(marks[-1])
    text = f"line {lines[0]}" if len(lines) == 1 else "lines " + ", ".join(map(str, lines))
    return f"code: {marks[-1].call} at {text}"


# ---------------------------------------------------------------------- FSDP1
def _fsdp1(r: Reading, marks: list[tuple[str, Mark]]) -> None:
    """FullyShardedDataParallel: the units its auto-wrap policy (and any FSDP wrapping by hand
    inside the model) made, post-order, the root last; the root call's options."""
    units: list[str] = []
    undecided = ""
    for path, mark in marks:
        if mark.units is None:
            undecided = undecided or f"{mark.call}: {mark.why}"
            continue
        units += [u for u in (_join(path, x) for x in mark.units) if u not in units]
    main = next((m for p, m in reversed(marks) if p == ""), marks[-1][1])
    strategy = _sharding_strategy(r, main)
    stage, kind, hybrid = FSDP1_STRATEGIES[strategy]
    r.fields.update(strategy="fsdp1", stage=stage, units=() if undecided else tuple(units))
    if undecided:
        r.notes.append(f"{undecided}: the FSDP units are not known")
    else:
        r.sources.append(Sourced("FSDP units", _units_text(units), _lines(r, [m for _, m in marks])))
    got = _mesh(r, main.mesh, main.call)
    if got is not None:
        _set_world(r, main.mesh, got[1])
    else:
        r.fields["world_size"] = 0
    if strategy == "NO_SHARD":
        r.fields["shard_size"] = 1
    elif got is not None:
        r.fields["shard_size"] = got[0][-1]
    else:
        r.fields["shard_size"] = 0
        if hybrid:
            r.notes.append(f"{strategy} shards within a node: the shard size is a node's GPUs (world size / nodes)")
    _precision(r, main.args.get("mixed_precision"), main, "mixed_precision")
    offload = _offload1(r, main)
    if main.args.get("use_orig_params") is True:
        r.sources.append(Sourced("use_orig_params", "True", r.source(main)))
    r.fields["label"] = f"fsdp1 {kind}" + (" + cpu offload" if offload else "")


def _sharding_strategy(r: Reading, mark: Mark) -> str:
    v = mark.args.get("sharding_strategy")
    name = enum_name(v) if v is not None else "FULL_SHARD"
    if isinstance(v, str) and v.upper() in FSDP1_STRATEGIES:  # Lightning's FSDPStrategy takes names
        name = v.upper()
    if name not in FSDP1_STRATEGIES:
        r.notes.append(_odd("sharding_strategy", v, mark, "FULL_SHARD assumed (torch's default)"))
        return "FULL_SHARD"
    if v is not None:
        r.sources.append(Sourced("sharding_strategy", name, r.source(mark)))
    return name


def _offload1(r: Reading, mark: Mark) -> bool:
    """CPUOffload(offload_params=True): parameters and gradients on the host, the optimizer step
    there too."""
    v = mark.args.get("cpu_offload")
    on = v.attrs.get("offload_params") if isinstance(v, Instance) and v.cls.name == "CPUOffload" else v
    if on is True:
        r.set("offload_params", "cpu", mark, "cpu (CPUOffload(offload_params=True))")
        r.fields["offload_optimizer"] = "cpu"
        return True
    if on not in (None, False):
        r.notes.append(_odd("cpu_offload", v, mark, "no offload assumed"))
    return False


# ---------------------------------------------------------------------- tensor parallelism
def _tensor_parallel(r: Reading, marks: list[tuple[str, Mark]]) -> None:
    """parallelize_module calls: (module path, style) over the model's paths; the mesh's size is
    the tensor-parallel group's (a 1-D mesh, or the `tp` dimension of a 2-D one)."""
    plan: list[tuple[str, str]] = []
    for path, mark in marks:
        plan += [(_join(path, p), s) for p, s in mark.styles if (_join(path, p), s) not in plan]
        if mark.why:
            r.notes.append(f"{mark.call}: {mark.why}")
    r.fields["tp_plan"] = tuple(plan)
    r.sources.append(Sourced("tensor-parallel plan", f"{len(plan)} module{'s' if len(plan) != 1 else ''}",
                             _lines(r, [m for _, m in marks])))
    mark = marks[-1][1]
    got = _mesh(r, mark.mesh, mark.call)
    if got is None:
        r.fields["tp_size"] = 0
        r.notes.append("the tensor-parallel mesh's size is not in the code: tp_size 0 (the world)")
        return
    r.set("tp_size", got[0][-1], mark)
    _set_world(r, mark.mesh, got[1])
    if r.fields["strategy"] != "tp":
        r.fields["label"] += " + tp"


def tp_of(ev: Evaluator, module: Instance) -> list[tuple[str, str]]:
    """The (path, style) pairs parallelize_module gave `module`'s tree (tests, hover)."""
    return [(_join(p, q), s) for p, m in _modules(module) for mark in marks_of(ev, m) for q, s in mark.styles]
