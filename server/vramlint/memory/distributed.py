"""Training on several GPUs: what each GPU holds under data parallelism (DDP), sharded data
parallelism (FSDP2 `fully_shard`, FSDP1 `FullyShardedDataParallel`, ZeRO stages 1-3 as DeepSpeed
runs them) and tensor parallelism (`parallelize_module`).

A `ParallelPlan` is what the code (or the configuration) says about the launch; the frontends read
it (frontends/torch/distributed.py, frontends/deepspeed/). The memory model turns one GPU's trace
into each rank's figures (`DistributedMemory`); every formula cites its source in docs/distributed.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vramlint.memory.tape import Tape
from vramlint.memory.timeline import Schedule, Step

MIB = 1 << 20

# What the model states are sharded over, in the ZeRO paper's stages (Rajbhandari et al. 2020,
# arXiv:1910.02054): 0 nothing (DDP, FSDP NO_SHARD), 1 the optimizer state, 2 also the gradients
# (FSDP1 SHARD_GRAD_OP, FSDP2 reshard_after_forward=False), 3 also the parameters (FSDP FULL_SHARD).
SHARD_NOTHING, SHARD_OPTIMIZER, SHARD_GRADIENTS, SHARD_PARAMETERS = 0, 1, 2, 3


@dataclass(frozen=True)
class Sourced:
    """One fact of the plan and where it was read ("code: fully_shard(...) at line 12", "flag",
    "pyproject.toml [tool.vramlint]", "ds_config.json", "default")."""

    what: str  # "world size", "strategy", "reshard_after_forward", "zero stage", ...
    value: str  # as shown to the user: "8", "fsdp2 full-shard", "False"
    source: str


@dataclass(frozen=True)
class ParallelPlan:
    """How a training script runs on several GPUs, as far as the memory of each GPU goes.

    `world_size`: the ranks (GPUs) of the job. `shard_size`: the ranks one copy of the model states
    is sharded over (the world for a full shard; a node's GPUs under FSDP HYBRID_SHARD / HSDP's
    mesh `(replicate, shard)`; 1 under DDP). `stage`: what is sharded (SHARD_* above).

    FSDP (`strategy` "fsdp2" / "fsdp1"): `units` are the module paths wrapped, "" the root, in the
    order the code wrapped them (FSDP2's `fully_shard(block)` per block, then `fully_shard(model)`;
    FSDP1's auto-wrap policy); a parameter belongs to the innermost unit above it.
    `reshard_after_forward`: FSDP2's argument (True frees a unit's gathered parameters after its
    forward; False keeps them until its backward; an int reshards to that many ranks).
    `param_dtype` / `reduce_dtype`: the mixed-precision policy's ("bfloat16", None: unchanged).

    DDP: `bucket_cap_mb` (25), `gradient_as_bucket_view` (False: the gradients and the buckets are
    two copies), `find_unused_parameters`, `static_graph`.

    ZeRO ("deepspeed"): `stage` 0-3, `offload_optimizer` / `offload_params` ("cpu" | "nvme" | None),
    the bucket sizes in elements as DeepSpeed's config names them, `low_precision` the dtype of
    the weights the GPU computes with ("bfloat16" / "float16" / None for fp32).

    Tensor parallelism ("tp", or beside FSDP in a 2-D mesh): `tp_size` ranks per tensor-parallel
    group, `tp_plan` (module path, style) with style "colwise" | "rowwise" | "sequence".
    `sources`: where each fact was read, shown by `explain` and the hover.
    """

    strategy: str
    world_size: int
    nodes: int = 1  # machines; GPUs per node = world_size // nodes (HYBRID_SHARD's shard group, DeepSpeed's host figures)
    shard_size: int = 1
    stage: int = SHARD_NOTHING
    label: str = ""  # "fsdp2 full-shard", "deepspeed zero-3 + cpu offload"
    # FSDP
    units: tuple[str, ...] = ()
    reshard_after_forward: bool | int = True
    param_dtype: str | None = None
    reduce_dtype: str | None = None
    offload_params: str | None = None
    offload_optimizer: str | None = None
    # DDP
    bucket_cap_mb: float = 25.0
    gradient_as_bucket_view: bool = False
    find_unused_parameters: bool = False
    static_graph: bool = False
    # ZeRO (DeepSpeed config keys, sizes in elements)
    reduce_bucket_size: int = 500_000_000
    allgather_bucket_size: int = 500_000_000
    prefetch_bucket_size: int = 50_000_000
    max_live_parameters: int = 1_000_000_000
    overlap_comm: bool = False
    contiguous_gradients: bool = True
    low_precision: str | None = None
    param_persistence_threshold: int = 100_000  # stage 3: parameters this small stay whole (ds_persist)
    zero_init: bool = False  # stage 3: the model is built under deepspeed.zero.Init (partitioned as built)
    # tensor parallelism
    tp_size: int = 1
    tp_plan: tuple[tuple[str, str], ...] = ()
    sources: tuple[Sourced, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def data_parallel(self) -> int:
        """Ranks that each see a different batch (the world less the tensor-parallel groups)."""
        return max(self.world_size // max(self.tp_size, 1), 1)


@dataclass
class DistributedMemory:
    """What the plan changes on each GPU (MemoryEstimate's byte figures are then per GPU, of rank 0).

    `communication`: the buffers of the collectives allocated at the per-GPU peak's moment and the
    largest at any moment (DDP's gradient buckets, FSDP's all-gather / reduce-scatter buffers,
    DeepSpeed's reduce and all-gather buckets). `host`: state offloaded to the host per rank
    (CPU-offloaded optimizer state, parameters, gradients). `one_gpu_peak`: the training peak of
    the whole model on one GPU at the same per-GPU batch, for comparison. `largest_rank`: the peak
    of the rank that holds the most where ranks differ (uneven shards, FSDP padding), else None.
    """

    plan: ParallelPlan
    communication: int
    communication_peak: int
    host: int
    one_gpu_peak: int
    largest_rank: int | None = None
    terms: list[tuple[str, int, str]] = field(default_factory=list)  # (what, bytes, source) for explain


# ---------------------------------------------------------------------------------------------
# One rank's share: what it holds at rest, and what the collectives add around each op.

# Event keys of the plan's allocations (memory/allocator.py keys them; clear of storages, GRAD, TEMP
# and reserved.py's setup keys): per unit, its gathered parameters, its all-gather buffer, its
# reduce-scatter buffer, its sharded gradients.
UNIT_KEYS = 1 << 36
GATHERED, ALL_GATHER, REDUCE_SCATTER, SHARDED_GRAD, CAST_SHARD, FLAT_GRAD = range(6)


def unit_key(unit: int, what: int) -> int:
    return UNIT_KEYS + 8 * unit + what


@dataclass(frozen=True)
class ParamInfo:
    """One parameter tensor: its path in the model, size, and where the trace read it.
    `nbytes`: in the dtype the forward computes with (FSDP's param_dtype); `state_bytes`: in the
    dtype the sharded parameter and the optimizer keep (its own)."""

    path: str
    numel: int
    nbytes: int
    state_bytes: int
    trainable: bool
    shape: tuple[int, ...]
    sid: int = -1  # its storage on the tape; -1: the forward never read it


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def rounded(n: int) -> int:
    return -(-n // 512) * 512 if n > 0 else 0


def fsdp2_shard_numel(shape: tuple[int, ...], ranks: int) -> int:
    """FSDP2 shards a parameter on dim 0 with torch.chunk and pads every rank's shard to the first's
    (torch/distributed/fsdp/_fully_shard/_fsdp_param.py `_init_sharded_param`: padded_sharded_param_size)."""
    if not shape:
        return 1
    rest = 1
    for d in shape[1:]:
        rest *= d
    return ceil_div(shape[0], ranks) * rest


def fsdp2_local_numel(shape: tuple[int, ...], ranks: int, rank: int) -> int:
    """The unpadded shard rank `rank` holds (the DTensor's local tensor, on which the optimizer
    makes its state): torch.chunk gives the last ranks less, or nothing."""
    if not shape:
        return 1 if rank == 0 else 0
    rest = 1
    for d in shape[1:]:
        rest *= d
    chunk = ceil_div(shape[0], ranks)
    return max(0, min(chunk, shape[0] - rank * chunk)) * rest


@dataclass
class RankShare:
    """What one rank holds and does (rank 0's; `largest` for the rank that holds the most where
    ranks differ). `weights` and `state_params` are tensors one by one; `communication` the buffers
    allocated before the iteration (DDP's buckets)."""

    weights: list[int]
    state_params: list[tuple[int, int, tuple[int, ...]]]  # (numel, bytes, shape) the optimizer steps on
    communication: list[int]
    schedule: Schedule
    host: int = 0
    terms: list[tuple[str, int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Where the plan keeps model states outside the timeline's tensors (ZeRO's flat partitions):
    # gradients held through the iteration, the optimizer's state (None: the optimizer's own rule
    # over `state_params`), other fixed bytes (stage 3's gathered layer, persistent parameters).
    gradients: int = 0
    optimizer_state: int | None = None
    fixed: int = 0
    state_on_host: bool = False  # the optimizer steps on the host (FSDP's CPU offload)


def unit_of(path: str, units: tuple[str, ...]) -> int:
    """The innermost unit above a parameter or module path (-1: none)."""
    best, best_len = -1, -1
    for i, u in enumerate(units):
        if (u == "" or path == u or path.startswith(u + ".")) and len(u) > best_len:
            best, best_len = i, len(u)
    return best


DEFAULT_BUCKET_CAP_MB = 25.0


def ddp_buckets(params: list[ParamInfo], cap_mb: float) -> list[int]:
    """DDP's gradient buckets after the first iteration rebuilds them (torch/csrc/distributed/c10d/
    reducer.cpp `compute_bucket_assignment_by_size`; torch/nn/parallel/distributed.py
    `BucketCapacityConfig`): the trainable parameters in reverse order, per dtype, a bucket closing
    once it reaches its limit (the first `_DEFAULT_FIRST_BUCKET_BYTES`, 1 MiB, when bucket_cap_mb
    is the default, then `bucket_cap_mb`); each bucket one flat tensor. (Before that, DDP builds one
    bucket of every parameter: the same bytes.)"""
    first_mb = 1.0 if cap_mb == DEFAULT_BUCKET_CAP_MB else cap_mb
    limits = [int(first_mb * MIB), int(cap_mb * MIB)]
    open_: dict[int, list[int]] = {}  # element size -> [bytes so far, limit index]
    out: list[int] = []
    for p in reversed([p for p in params if p.trainable]):
        elem = p.nbytes // p.numel if p.numel else 4
        b = open_.setdefault(elem, [0, 0])
        b[0] += p.nbytes
        if b[0] >= limits[min(b[1], 1)]:
            out.append(b[0])
            open_[elem] = [0, b[1] + 1]
    out += [b[0] for b in open_.values() if b[0]]
    return out


def ddp_share(plan: ParallelPlan, params: list[ParamInfo]) -> RankShare:
    """DDP: the whole model on every rank, plus the gradient buckets (allocated when DDP is built).
    With `gradient_as_bucket_view=True` the gradients are views of the buckets: the buckets are
    then the gradients, held through the iteration, and no second copy exists."""
    buckets = ddp_buckets(params, plan.bucket_cap_mb)
    total = sum(rounded(b) for b in buckets)
    view = plan.gradient_as_bucket_view
    share = RankShare([p.nbytes for p in params], [(p.numel, p.nbytes, p.shape) for p in params if p.trainable],
                      [] if view else buckets, Schedule(grads_in_buckets=view, communication=0 if view else total),
                      gradients=total if view else 0)
    share.terms.append((f"gradient buckets ({len(buckets)}, bucket_cap_mb={plan.bucket_cap_mb:g})"
                        + (": the gradients themselves (gradient_as_bucket_view)" if view else ""), total,
                        "torch/csrc/distributed/c10d/reducer.cpp"))
    if view:
        share.notes.append("gradient_as_bucket_view=True: the gradients are views of DDP's buckets (no second copy)")
    return share


@dataclass
class _Unit:
    index: int
    path: str
    params: list[ParamInfo]
    shard: int = 0  # rank 0's padded shard, in the compute dtype (what it all-gathers)
    gathered: int = 0  # the unsharded parameters, allocated tensor by tensor
    first: int = -1  # its first and last op in the forward (-1: never called)
    last: int = -1


DTYPE_SIZE = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}


def fsdp_share(plan: ParallelPlan, params: list[ParamInfo], tape: Tape) -> RankShare:
    """FSDP (torch/distributed/fsdp/_fully_shard/_fsdp_param_group.py for FSDP2,
    torch/distributed/fsdp/_flat_param.py for FSDP1): each unit's parameters sharded over
    `shard_size` ranks; before a unit's forward (and, when it resharded, its backward) an
    all-gather makes its unsharded parameters (FSDP2: a flat all-gather buffer copied out into one
    tensor per parameter, the buffer kept until the next unit's all-gather; FSDP1: straight into
    the unit's padded flat parameter); after its backward a reduce-scatter turns its unsharded
    gradients into a shard (the input buffer kept until the next reduce-scatter, the output the
    sharded gradient). The backward prefetches the next unit's all-gather."""
    n = max(plan.shard_size, 1)
    flat = plan.strategy == "fsdp1"
    units = [_Unit(i, u, []) for i, u in enumerate(plan.units)]
    loose: list[ParamInfo] = []  # parameters of no unit: replicated, as on one GPU
    for p in params:
        i = unit_of(p.path, plan.units)
        (units[i].params if i >= 0 else loose).append(p)
    weights = [p.nbytes for p in loose]
    state: list[tuple[int, int, tuple[int, ...]]] = [(p.numel, p.nbytes, p.shape) for p in loose if p.trainable]
    grad_bytes: dict[int, int] = {}  # unit -> its sharded gradients (in the parameters' own dtype)
    reduce_bytes: dict[int, int] = {}  # unit -> rank 0's reduce-scatter output, in the reduce dtype
    flat_grads: dict[int, tuple[int, bool]] = {}  # FSDP1: unit -> its flat gradient's bytes, whether it is padded
    for u in units:
        if not u.params:
            continue
        if flat:
            numel = sum(p.numel for p in u.params)
            shard = ceil_div(numel, n)
            elem = u.params[0].nbytes // max(u.params[0].numel, 1)
            selem = u.params[0].state_bytes // max(u.params[0].numel, 1)
            u.shard = shard * elem
            u.gathered = rounded(shard * n * elem)
            weights.append(shard * selem)
            trainable = sum(p.numel for p in u.params if p.trainable)
            if trainable:
                state.append((shard, shard * selem, (shard,)))
                grad_bytes[u.index] = shard * selem
            reduce_bytes[u.index] = shard * _reduce_elem(plan, elem)
            if trainable:
                flat_grads[u.index] = (rounded(numel * elem), numel % n != 0)
            continue
        for p in u.params:
            elem = p.nbytes // max(p.numel, 1)
            selem = p.state_bytes // max(p.numel, 1)
            padded = fsdp2_shard_numel(p.shape, n)
            u.shard += padded * elem
            u.gathered += rounded(padded * n * elem)
            weights.append(padded * selem)
            if p.trainable:
                local = fsdp2_local_numel(p.shape, n, 0)
                state.append((local, local * selem, p.shape))
                grad_bytes[u.index] = grad_bytes.get(u.index, 0) + padded * selem
                reduce_bytes[u.index] = reduce_bytes.get(u.index, 0) + padded * _reduce_elem(plan, elem)
    _spans(units, tape)
    sched = _fsdp_schedule(plan, units, grad_bytes, reduce_bytes, tape, flat_grads if flat else None)
    if plan.offload_params:
        # CPUOffloadPolicy / CPUOffload(offload_params=True): the shards, their gradients and the
        # optimizer's step live on the host; each all-gather first copies the unit's shard over.
        share = RankShare([], state, [], sched, host=sum(weights) + sum(grad_bytes.values()), state_on_host=True)
        share.terms.append(("host: sharded parameters and gradients (CPU offload)", share.host,
                            "torch/distributed/fsdp/_fully_shard/_fsdp_api.py CPUOffloadPolicy"))
        for u in units:
            if u.first >= 0 and u.params:
                sched.forward_before.setdefault(u.first, []).insert(
                    0, Step("transient", unit_key(u.index, SHARDED_GRAD), rounded(u.shard), comm=True))
        return share
    share = RankShare(weights, state, [], sched)
    if plan.stage >= SHARD_GRADIENTS:
        share.terms.append((f"gathered parameters of one unit (the largest of {sum(1 for u in units if u.params)})",
                            max((u.gathered for u in units), default=0),
                            "all-gather before each unit's forward and backward"))
    if loose:
        share.notes.append(f"{len(loose)} parameter tensors belong to no FSDP unit: every rank holds them whole")
    return share


def _reduce_elem(plan: ParallelPlan, elem: int) -> int:
    """Bytes per element of the gradients reduce-scattered (`reduce_dtype`, else the compute dtype)."""
    return DTYPE_SIZE.get(plan.reduce_dtype or "", elem)


def _spans(units: list[_Unit], tape: Tape) -> None:
    """Each unit's first and last op of the forward: its module's pre- and post-forward hooks."""
    end = tape.forward_end if tape.forward_end is not None else len(tape.ops)
    for op in tape.ops[:end]:
        for u in units:
            if u.path == "" or op.module == u.path or op.module.startswith(u.path + "."):
                if u.first < 0:
                    u.first = op.index
                u.last = op.index


def _fsdp_schedule(plan: ParallelPlan, units: list[_Unit], grad_bytes: dict[int, int], reduce_bytes: dict[int, int],
                   tape: Tape, flat_grads: dict[int, tuple[int, bool]] | None) -> Schedule:
    """The collectives around the ops (torch/distributed/fsdp/_fully_shard/_fsdp_param_group.py):
    - forward, FSDP2: a unit's flat all-gather output is allocated, the previous unit's (kept by
      `AllGatherState` for the overlap of copy-out and the next all-gather) freed, then the
      unsharded parameters allocated by the copy-out; the root's post-forward frees the last;
    - backward: a resharded unit is gathered again, and the next in backward order prefetched;
      there the all-gather output is freed right after its copy-out;
    - after a unit's backward: FSDP2 first drops the previous reduce-scatter input
      (`reduce_scatter_states`, one kept: `reduce_scatter_max_input_buffers`), then copies the
      unsharded gradients into a new input in `reduce_dtype`, frees them and keeps the output as
      the sharded gradient; FSDP1 (`_runtime_utils._reduce_grad`) reduce-scatters the padded flat
      gradient and drops it at once. FSDP1 gathers straight into the padded flat parameter.
    FSDP1's gradients are one flat tensor per unit (the parameters are views of the FlatParameter:
    autograd accumulates into its gradient), there from the unit's first gradient; NO_SHARD keeps
    it (all-reduced in place) and gathers nothing."""
    flat = flat_grads is not None
    flat_grads = flat_grads or {}
    sched = Schedule()
    n = max(plan.shard_size, 1)
    called = [u for u in units if u.params and u.first >= 0]
    forward = sorted(called, key=lambda u: u.first)
    backward = sorted(called, key=lambda u: -u.last)
    sid_of = {u.index: tuple(p.sid for p in u.params if p.sid >= 0) for u in units}
    kept_ag: list[int] = []  # the forward's all-gather output kept until the next copy-out (FSDP2)

    def gather(at: dict[int, list[Step]], i: int, u: _Unit, in_forward: bool) -> None:
        steps = at.setdefault(i, [])
        ag = unit_key(u.index, ALL_GATHER)
        if not flat:
            cast = unit_key(u.index, CAST_SHARD)
            if plan.param_dtype is not None:  # the shard cast to param_dtype: the all-gather's input
                steps.append(Step("alloc", cast, rounded(u.shard), comm=True))
            steps.append(Step("alloc", ag, rounded(u.shard * n), comm=True))
            steps.append(Step("free", cast))
            steps += [Step("free", k) for k in kept_ag]
            kept_ag.clear()
        steps.append(Step("alloc", unit_key(u.index, GATHERED), u.gathered))
        if not flat:
            if in_forward:
                kept_ag.append(ag)
            else:
                steps.append(Step("free", ag))

    def reshards(u: _Unit) -> bool:
        # The root unit keeps its parameters from its forward to its backward (FSDP2's lazy init
        # sets the root's post_forward_mesh_info to None; FSDP1 does not free the root's flat parameter).
        return plan.stage >= 3 and plan.reshard_after_forward is not False and u.path != ""

    if flat and plan.stage == 0:  # NO_SHARD: the flat gradients, kept
        for u in backward:
            if u.index in flat_grads:
                sched.backward_before.setdefault(u.last, []).append(
                    Step("grad", unit_key(u.index, FLAT_GRAD), flat_grads[u.index][0]))
                sched.grad_views.update(sid_of[u.index])
        return sched
    for u in forward:
        gather(sched.forward_before, u.first, u, True)
        if reshards(u):
            sched.forward_after.setdefault(u.last, []).append(Step("free", unit_key(u.index, GATHERED)))
    if forward:  # the root's post-forward frees the last all-gather output
        root_last = max(u.last for u in forward)
        sched.forward_after.setdefault(root_last, []).extend(Step("free", k) for k in kept_ag)
        kept_ag.clear()
    kept_rs: list[int] = []
    for k, u in enumerate(backward):
        if reshards(u):
            gather(sched.backward_before, u.last, u, False)
        nxt = backward[k + 1] if k + 1 < len(backward) else None
        if nxt is not None and reshards(nxt):  # the backward prefetches the next unit's all-gather
            gather(sched.backward_before, u.last, nxt, False)
        after = sched.backward_after.setdefault(u.first, [])
        padded = False
        if u.index in flat_grads:
            size, padded = flat_grads[u.index]
            sched.backward_before.setdefault(u.last, []).append(Step("alloc", unit_key(u.index, FLAT_GRAD), size))
            sched.grad_views.update(sid_of[u.index])
        if u.index in grad_bytes:
            rs = unit_key(u.index, REDUCE_SCATTER)
            after += [Step("free", key) for key in kept_rs]
            kept_rs.clear()
            if not flat or padded:  # FSDP1 reduce-scatters its flat gradient itself, or an F.pad copy of it
                after.append(Step("alloc", rs, rounded(reduce_bytes[u.index] * n), comm=True))
            after.append(Step("drop_grads", sids=sid_of[u.index]))
            after.append(Step("free", unit_key(u.index, FLAT_GRAD)))
            if not plan.offload_params:  # (offloaded: the sharded gradients are copied to the host)
                after.append(Step("grad", unit_key(u.index, SHARDED_GRAD), rounded(grad_bytes[u.index])))
            if flat:
                after.append(Step("free", rs))
            else:
                kept_rs.append(rs)
        after.append(Step("free", unit_key(u.index, GATHERED)))
    if backward:  # the root's post-backward callback waits for and drops the last reduce-scatter
        sched.backward_after.setdefault(backward[-1].first, []).extend(Step("free", key) for key in kept_rs)
    return sched


def style_of(path: str, plan: tuple[tuple[str, str], ...]) -> str | None:
    """The tensor-parallel style of the innermost planned module at or above `path`."""
    best, best_len = None, -1
    for module, style in plan:
        if (path == module or path.startswith(module + ".")) and len(module) > best_len:
            best, best_len = style, len(module)
    return best


def tensor_parallel(tape: Tape, plan: ParallelPlan, params: list[ParamInfo]) -> tuple[Tape, list[ParamInfo]]:
    """One tensor-parallel rank's tape and parameters (torch/distributed/tensor/parallel/style.py):
    ColwiseParallel shards a layer's weight and bias on the output dim and leaves its output sharded
    on the last dim; RowwiseParallel shards the weight on the input dim, takes a sharded input and
    all-reduces a whole output; SequenceParallel leaves its output sharded on the sequence dim.
    An op reading a sharded activation makes a sharded output (attention over sharded heads, the
    activation between the two linears), an op of a rowwise layer a whole one (Korthikanti et al.
    2022, arXiv:2205.05198, Table 2: the 24/t terms shard, the residual and norm terms do not)."""
    t = max(plan.tp_size, 1)
    styles = plan.tp_plan
    new_params: list[ParamInfo] = []
    param_sids: dict[int, bool] = {}
    for p in params:
        module, _, leaf = p.path.rpartition(".")
        style = style_of(module, styles)
        sharded = style == "colwise" or (style == "rowwise" and leaf != "bias")
        if sharded:
            p = replace(p, numel=ceil_div(p.numel, t), nbytes=ceil_div(p.nbytes, t), state_bytes=ceil_div(p.state_bytes, t),
                        shape=_shard_shape(p.shape, t, 0 if style == "colwise" or len(p.shape) < 2 else 1))
        if p.sid >= 0:
            param_sids[p.sid] = sharded
        new_params.append(p)
    sharded_sids = {sid for sid, sh in param_sids.items() if sh}
    end = tape.forward_end if tape.forward_end is not None else len(tape.ops)
    for op in tape.ops[:end]:
        style = style_of(op.module, styles)
        reads_sharded = any(r in sharded_sids for r in op.reads if tape.storages[r].kind != "param")
        if style == "rowwise":
            continue  # a whole (all-reduced) output
        if style in ("colwise", "sequence") or reads_sharded:
            sharded_sids.update(op.allocated)
    storages = [replace(st, nbytes=ceil_div(st.nbytes, t)) if st.sid in sharded_sids else st for st in tape.storages]
    return replace(tape, storages=storages), new_params


def _shard_shape(shape: tuple[int, ...], t: int, dim: int) -> tuple[int, ...]:
    if not shape:
        return shape
    return tuple(ceil_div(d, t) if i == dim else d for i, d in enumerate(shape))


def rank_share(plan: ParallelPlan, params: list[ParamInfo], tape: Tape) -> tuple[RankShare, Tape]:
    """Rank 0's share under `plan`, and the tape its forward records (a tensor-parallel rank's
    activations are its shards)."""
    if plan.tp_size > 1 and plan.tp_plan:
        tape, params = tensor_parallel(tape, plan, params)
    if plan.strategy == "fsdp2" and plan.stage >= SHARD_GRADIENTS or plan.strategy == "fsdp1":
        share = fsdp_share(plan, params, tape)
    elif plan.strategy == "ddp":
        share = ddp_share(plan, params)
    else:
        share = _replicated(params)
    if plan.tp_size > 1 and plan.tp_plan:
        _tp_collectives(tape, plan, share.schedule)
        share.notes.append(f"tensor parallel over {plan.tp_size} ranks: {len(plan.tp_plan)} modules sharded "
                           "(their weights and the activations between a colwise and a rowwise layer)")
    return share, tape


def _replicated(params: list[ParamInfo]) -> RankShare:
    return RankShare([p.nbytes for p in params], [(p.numel, p.nbytes, p.shape) for p in params if p.trainable], [],
                     Schedule())


def _tp_collectives(tape: Tape, plan: ParallelPlan, sched: Schedule) -> None:
    """Tensor parallelism's all-reduces (torch/distributed/tensor/parallel/style.py, functional
    collectives): a rowwise layer's partial output is all-reduced into a new tensor, so the partial
    one is alive beside it; in backward, a colwise layer's input gradient is partial and all-reduced
    the same way. Each is a transient buffer of that size."""
    planned = {module: style for module, style in plan.tp_plan}
    end = tape.forward_end if tape.forward_end is not None else len(tape.ops)
    for op in tape.ops[:end]:
        style = planned.get(op.module)
        if style == "rowwise" and op.outputs:
            size = sum(rounded(tape.storages[o].nbytes) for o in op.outputs)
            sched.forward_after.setdefault(op.index, []).append(Step("transient", TP_KEY + op.index, size, comm=True))
        elif style == "colwise" and op.requires_grad:
            size = sum(rounded(tape.storages[r].nbytes) for r in op.grad_inputs if tape.storages[r].kind != "param")
            if size:
                sched.backward_after.setdefault(op.index, []).append(
                    Step("transient", TP_KEY + op.index, size, comm=True))


TP_KEY = UNIT_KEYS + (1 << 34)  # event keys of tensor parallelism's all-reduce buffers, by op
