"""DeepSpeed ZeRO: what each rank holds of the model states under stages 0-3, with and without
`offload_optimizer` / `offload_param` (cpu or nvme), following DeepSpeed's allocations
(deepspeed/runtime/zero/stage_1_and_2.py `DeepSpeedZeroOptimizer`, stage3.py
`DeepSpeedZeroOptimizer_Stage3`, 0.19.x) and the ZeRO paper (Rajbhandari et al. 2020,
arXiv:1910.02054, section 5: Psi parameters, K = 12 bytes of optimizer state per parameter).

Per trainable parameter, with w the bytes of the weights the GPU computes with (2 under
`fp16` / `bf16`: the engine casts the module; else the parameter's own) and N the data-parallel ranks:

- weights: w, whole on every rank (stages 0-2); a partition of w/N under stage 3 (`ds_tensor`).
- gradients: w whole (stages 0-1: `param.grad` until the reduction at the step); the rank's
  partition `grads_in_partition`, w/N (stage 2); the fp32 gradient partition the step builds
  (`single_grad_partition = flat_grad_partition.to(fp32)`), 4/N.
- optimizer state: the fp32 master partition (`single_partition_of_fp32_groups`,
  `fp32_partitioned_groups_flat`), 4/N, and the optimizer's own state over it (Adam: 8/N).
- ZeRO-3 gathers one module's parameters at a time: DeepSpeed's estimator counts the largest
  layer's parameters and gradients, 4 bytes each in 16 bits (`largest_layer_memory`).

`offload_optimizer` moves the master partition, the optimizer state and the fp32 gradient
partition to the host (the 16-bit gradient partition too: it is copied there as it is reduced);
`offload_param` (stage 3) moves the 16-bit parameter partition. "nvme" puts the offloaded state
on disk behind pinned host buffers.

`ZeroStates.model_states` is what DeepSpeed's own estimators count
(`estimate_zero2_model_states_mem_needs`, `estimate_zero3_model_states_mem_needs`), the truth
of tests/test_deepspeed.py; what DeepSpeed allocates beyond them is kept apart
(`unestimated_gpu` / `unestimated_host`, each a named term), and so are the communication
buffers. Figures are bytes per rank (rank 0: partitions are padded, so no rank holds more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vramlint.memory.distributed import (
    SHARD_GRADIENTS,
    SHARD_OPTIMIZER,
    SHARD_PARAMETERS,
    ParallelPlan,
    ParamInfo,
    RankShare,
)
from vramlint.memory.optimizers import OPTIMIZERS
from vramlint.memory.timeline import Schedule

FP32 = 4
LOW_PRECISION = ("float16", "bfloat16")
# stage_1_and_2.py: `nccl_start_alignment_factor = 2` (4-byte alignment / sizeof(fp16)): each
# parameter group is padded to a multiple of 2 * N elements before it is split into N partitions.
ALIGNMENT = 2
# stage3.py: the fp32 gradient of the step is built one sub-group at a time (`sub_group_size`,
# DeepSpeedZeroConfig's default 1e9 elements).
SUB_GROUP_SIZE = 1_000_000_000
# ZeRO-Infinity's pinned host buffers in front of NVMe (DeepSpeedZeroOffloadParamConfig:
# buffer_count 5 x buffer_size 1e8 elements of the 16-bit parameters; offload_optimizer's
# `buffer_count` 4 swap buffers of the largest sub-group's fp32 state).
NVME_PARAM_BUFFERS = 5 * 100_000_000
NVME_OPTIMIZER_BUFFERS = 4

SOURCE_12 = "deepspeed/runtime/zero/stage_1_and_2.py"
SOURCE_3 = "deepspeed/runtime/zero/stage3.py"

# One parameter tensor of the model: (numel, bytes as built, trainable).
Param = tuple[int, int, bool]


@dataclass(frozen=True)
class ZeroStates:
    """One rank's share of the model states under a ZeRO plan, in bytes.

    On the GPU: `weights` (the parameters resident between steps), `gradients`, `optimizer_state`
    (fp32 master weights + the optimizer's state), `gathered` (stage 3: the largest layer's
    parameters and gradients, gathered while it computes). Their sum is `model_states`, what
    DeepSpeed's estimators count. `unestimated_gpu`: what DeepSpeed also allocates and its
    estimator leaves out (stage 3's 16-bit gradient partition buffer, persistent parameters).
    `communication`: the reduce buckets (`reduce_bucket_size` elements, two with `overlap_comm`)
    and stage 3's prefetched parameters. On the host: `host` (offloaded state, steady),
    `host_at_load` (while the model is built, before `deepspeed.initialize` partitions it: the
    whole model per process, or the largest layer under `zero.Init`), `nvme` (ZeRO-Infinity).
    `terms`: (what, bytes, source) rows for `vramlint explain`, device "gpu" / "host" / "nvme"
    first in each `what`.
    """

    weights: int
    gradients: int
    optimizer_state: int
    gathered: int
    unestimated_gpu: int
    communication: int
    host: int
    unestimated_host: int
    host_at_load: int
    nvme: int
    terms: tuple[tuple[str, int, str], ...] = field(default=())

    @property
    def model_states(self) -> int:
        """GPU bytes as DeepSpeed's estimators count them."""
        return self.weights + self.gradients + self.optimizer_state + self.gathered

    @property
    def gpu(self) -> int:
        """Everything this module puts on one GPU: the model states, what the estimator omits, the buffers."""
        return self.model_states + self.unestimated_gpu + self.communication

    @property
    def host_total(self) -> int:
        """Host bytes per rank once training runs (the offloaded state and its buffers)."""
        return self.host + self.unestimated_host


@dataclass(frozen=True)
class _Counts:
    """The model's numbers, as ZeRO flattens them."""

    trainable: int  # elements of the parameters the optimizer updates
    frozen: int
    width: float  # bytes per element of the weights on the GPU (2 under fp16 / bf16)
    built: int  # bytes of every parameter as the code builds it (on the host before initialize)
    partition: int  # trainable elements of one rank's partition (padded)
    partition_all: int  # all elements of one rank's stage-3 partition (frozen ones too)
    persistent: int  # stage 3: elements of parameters kept whole (param_persistence_threshold)


def _width(numel: int, nbytes: int, low_precision: str | None) -> float:
    own = nbytes / numel if numel else 0.0
    # deepspeed/runtime/engine.py `_configure_distributed_model`: module.half() / .bfloat16() under
    # fp16 / bf16; parameters already narrower (quantized) keep their bytes.
    return min(own, 2.0) if low_precision in LOW_PRECISION else own


def _counts(plan: ParallelPlan, params: Sequence[Param]) -> _Counts:
    n = max(plan.data_parallel, 1)
    trainable = sum(p[0] for p in params if p[2])
    frozen = sum(p[0] for p in params if not p[2])
    total = trainable + frozen
    weight_bytes = sum(_width(p[0], p[1], plan.low_precision) * p[0] for p in params)
    if plan.stage >= SHARD_PARAMETERS:
        # stage3.py / partition_parameters.py: each parameter is split on its own, `partition_numel()`
        # = ceil(numel / N) (padded), so the partition is the sum of the per-parameter ceilings.
        partition = sum(-(-p[0] // n) for p in params if p[2])
        partition_all = sum(-(-p[0] // n) for p in params)
    else:
        # stage_1_and_2.py: one flat group padded to a multiple of ALIGNMENT * N, split in N.
        align = ALIGNMENT * n
        partition = -(-trainable // align) * align // n if n > 1 else trainable
        partition_all = partition
    persistent = sum(p[0] for p in params if p[0] <= plan.param_persistence_threshold)
    return _Counts(trainable, frozen, weight_bytes / total if total else 2.0, sum(p[1] for p in params),
                   partition, partition_all, persistent)


def _optimizer_bytes(optimizer: str, elements: int) -> int:
    """The optimizer's state over one flat fp32 partition (ZeRO hands the optimizer the flat
    master partition: one tensor, so Adafactor cannot factor it)."""
    spec = OPTIMIZERS.get(optimizer, OPTIMIZERS["adamw"])
    return sum(spec.state([(elements, elements * FP32)]))


def zero_states(plan: ParallelPlan, params: Sequence[Param], largest_layer: int, optimizer: str) -> ZeroStates:
    """One rank's model states under `plan` (strategy "deepspeed"; `plan.stage` 0-3).

    `params`: every parameter tensor (numel, bytes as built, trainable), shared ones once;
    `largest_layer`: the elements of the largest module's own parameters (DeepSpeed's
    `model_to_params`); `optimizer`: a key of memory/optimizers.py (DeepSpeed's estimator assumes Adam).
    """
    c = _counts(plan, params)
    if plan.stage >= SHARD_PARAMETERS:
        return _stage3(plan, c, largest_layer, optimizer)
    return _stages012(plan, c, optimizer)


def _stages012(plan: ParallelPlan, c: _Counts, optimizer: str) -> ZeroStates:
    n = max(plan.data_parallel, 1)
    w = c.width
    # Stage 0 is DeepSpeed's FP16_Optimizer / BF16_Optimizer: the same states, unpartitioned.
    part = c.partition if plan.stage >= SHARD_OPTIMIZER else c.trainable
    t = _Terms()
    t.gpu("weights (16-bit under fp16/bf16), whole on every rank", int(w * (c.trainable + c.frozen)),
          f"{SOURCE_12}: the module cast by the engine (fp16/bf16), not partitioned below stage 3")
    if plan.stage >= SHARD_GRADIENTS:
        grads16 = int(w * part)
        what16 = ("16-bit gradient partition (grads_in_partition)", f"{SOURCE_12}: grads_in_partition, 1/{n}")
    else:
        grads16 = int(w * c.trainable)
        what16 = ("16-bit gradients, whole until the step's reduction", f"{SOURCE_12}: param.grad (stage {plan.stage})")
    master, moments, grads32 = FP32 * part, _optimizer_bytes(optimizer, part), FP32 * part
    if plan.offload_optimizer is None:
        t.gpu(what16[0], grads16, what16[1], kind="gradients")
        t.gpu("fp32 gradient partition of the step", grads32,
              f"{SOURCE_12}: single_grad_partition = flat_grad_partition.to(fp32)", kind="gradients")
        t.gpu("fp32 master weights partition", master, f"{SOURCE_12}: single_partition_of_fp32_groups", "optimizer")
        t.gpu(f"{optimizer} state over the fp32 partition", moments, "the optimizer's step over the flat partition",
              "optimizer")
    else:
        # cpu_offload: gradients are copied into the pinned fp32 partition on the host as they are
        # reduced (async_accumulate_grad_in_cpu_via_gpu); the step runs there (DeepSpeedCPUAdam).
        t.off(plan.offload_optimizer, "fp32 gradient partition", grads32,
              f"{SOURCE_12}: single_partition_of_fp32_groups[i].grad (pinned)")
        t.off(plan.offload_optimizer, "fp32 master weights partition", master,
              f"{SOURCE_12}: single_partition_of_fp32_groups on {plan.offload_optimizer}")
        t.off(plan.offload_optimizer, f"{optimizer} state over the fp32 partition", moments,
              "DeepSpeedCPUAdam's step on the host")
        if plan.stage < SHARD_GRADIENTS:
            t.gpu(what16[0], grads16, what16[1], kind="gradients")
    if plan.stage >= SHARD_OPTIMIZER:
        _reduce_buckets(t, plan, w, doubled=plan.overlap_comm, source=f"{SOURCE_12}: setup_buckets")
    t.load(c.built, "the model as built, in each process, before deepspeed.initialize moves it to the GPU")
    return t.states()


def _stage3(plan: ParallelPlan, c: _Counts, largest: int, optimizer: str) -> ZeroStates:
    n = max(plan.data_parallel, 1)
    w = c.width
    t = _Terms()
    params16 = int(w * c.partition_all)
    if plan.offload_params is None:
        t.gpu(f"16-bit parameter partition, 1/{n}", params16, f"{SOURCE_3}: param.ds_tensor")
    else:
        t.off(plan.offload_params, f"16-bit parameter partition, 1/{n}", params16,
              f"{SOURCE_3}: param.ds_tensor on {plan.offload_params} (offload_param)")
    t.gpu("largest layer gathered: its 16-bit parameters and gradients", int(2 * w * largest),
          f"{SOURCE_3}: estimate_zero3_model_states_mem_needs largest_layer_memory", kind="gathered")
    master, moments = FP32 * c.partition, _optimizer_bytes(optimizer, c.partition)
    # _prepare_fp32_grad_for_sub_group: the step's fp32 gradient, one sub-group at a time.
    grads32 = FP32 * min(c.partition, SUB_GROUP_SIZE)
    # grad_partitions_flat_buffer: the 16-bit gradient partitions, allocated in every case (on the
    # host under offload_optimizer). DeepSpeed's estimator counts 18 bytes per parameter on the
    # GPU (16 with offload_optimizer on the host), which leaves this buffer out.
    grads16 = int(w * c.partition)
    where = plan.offload_optimizer
    if where is None:
        t.gpu("fp32 gradient partition of the step", grads32,
              f"{SOURCE_3}: _prepare_fp32_grad_for_sub_group", kind="gradients")
        t.gpu("fp32 master weights partition", master, f"{SOURCE_3}: fp32_partitioned_groups_flat", "optimizer")
        t.gpu(f"{optimizer} state over the fp32 partition", moments, "the optimizer's step over the flat partition",
              "optimizer")
        t.gpu("16-bit gradient partition buffer (not in DeepSpeed's estimator)", grads16,
              f"{SOURCE_3}: grad_partitions_flat_buffer", kind="unestimated")
    else:
        t.off(where, "fp32 gradient partition", grads32, f"{SOURCE_3}: fp32_partitioned_groups_flat[i].grad (pinned)")
        t.off(where, "fp32 master weights partition", master, f"{SOURCE_3}: fp32_partitioned_groups_flat on {where}")
        t.off(where, f"{optimizer} state over the fp32 partition", moments, "DeepSpeedCPUAdam's step on the host")
        t.host("16-bit gradient partition buffer (not in DeepSpeed's estimator)", grads16,
               f"{SOURCE_3}: grad_partitions_flat_buffer (pinned, on the host under offload_optimizer)",
               unestimated=True)
        if where == "nvme":
            t.host("pinned swap buffers in front of NVMe", NVME_OPTIMIZER_BUFFERS * FP32 * min(c.partition,
                   SUB_GROUP_SIZE), f"{SOURCE_3}: optimizer_swapper buffer_count=4", unestimated=True)
    if plan.offload_params == "nvme":
        t.host("pinned parameter buffers in front of NVMe", int(w * NVME_PARAM_BUFFERS),
               "DeepSpeedZeroOffloadParamConfig buffer_count=5 x buffer_size=1e8", unestimated=True)
    if n > 1 and c.persistent:
        # partition_parameters.py _convert_to_deepspeed_param: parameters of at most
        # param_persistence_threshold elements stay gathered between uses (ds_persist).
        t.gpu(f"parameters of <= {plan.param_persistence_threshold:,} elements kept whole (ds_persist; not in DeepSpeed's estimator)",
              int(w * c.persistent), f"{SOURCE_3}: stage3_param_persistence_threshold", kind="unestimated")
    _reduce_buckets(t, plan, w, doubled=False, source=f"{SOURCE_3}: ipg_buckets (one per dtype)")
    total = c.trainable + c.frozen
    prefetch = max(min(plan.prefetch_bucket_size, total - largest, plan.max_live_parameters - largest), 0)
    if prefetch and n > 1:
        t.gpu("parameters prefetched ahead of the layer computing", int(w * prefetch),
              f"{SOURCE_3}: stage3_prefetch_bucket_size, capped by stage3_max_live_parameters", kind="communication")
    if plan.zero_init:
        t.load(FP32 * largest, "deepspeed.zero.Init: each layer partitioned as it is built (the largest, fp32)")
    else:
        t.load(c.built, "the model as built, in each process, before deepspeed.initialize partitions it")
    return t.states()


def _reduce_buckets(t: _Terms, plan: ParallelPlan, w: float, doubled: bool, source: str) -> None:
    """The gradient reduction buckets: `reduce_bucket_size` elements of the gradients' dtype,
    allocated whole whatever the model's size, with `contiguous_gradients` (two with overlap_comm)."""
    if not plan.contiguous_gradients:
        return  # the gradients wait in param.grad until a bucket's worth is reduced: no buffer
    count = 2 if doubled else 1
    t.gpu(f"reduce bucket{'s' if count > 1 else ''}: {count} x {plan.reduce_bucket_size:,} elements",
          int(count * w * plan.reduce_bucket_size), source, kind="communication")


class _Terms:
    """The rows of a ZeroStates, summed by kind as they are added."""

    def __init__(self) -> None:
        self.sums: dict[str, int] = {}
        self.rows: list[tuple[str, int, str]] = []

    def _add(self, kind: str, what: str, nbytes: int, source: str) -> None:
        if nbytes <= 0:
            return
        self.sums[kind] = self.sums.get(kind, 0) + nbytes
        self.rows.append((what, nbytes, source))

    def gpu(self, what: str, nbytes: int, source: str, kind: str = "weights") -> None:
        self._add(kind, f"gpu: {what}", nbytes, source)

    def host(self, what: str, nbytes: int, source: str, unestimated: bool = False) -> None:
        self._add("unestimated_host" if unestimated else "host", f"host: {what}", nbytes, source)

    def off(self, device: str, what: str, nbytes: int, source: str) -> None:
        """State offloaded to `device` ("cpu": host memory; "nvme": disk)."""
        if device == "nvme":
            self._add("nvme", f"nvme: {what}", nbytes, source)
        else:
            self.host(what, nbytes, source)

    def load(self, nbytes: int, what: str) -> None:
        self.sums["host_at_load"] = nbytes
        self.rows.append((f"host at load: {what}", nbytes, "deepspeed/runtime/engine.py"))

    def states(self) -> ZeroStates:
        s = self.sums
        return ZeroStates(
            weights=s.get("weights", 0), gradients=s.get("gradients", 0), optimizer_state=s.get("optimizer", 0),
            gathered=s.get("gathered", 0), unestimated_gpu=s.get("unestimated", 0),
            communication=s.get("communication", 0), host=s.get("host", 0),
            unestimated_host=s.get("unestimated_host", 0), host_at_load=s.get("host_at_load", 0),
            nvme=s.get("nvme", 0), terms=tuple(self.rows))


def largest_layer(params: Sequence[ParamInfo]) -> int:
    """The elements of the module with the most parameters of its own (DeepSpeed's
    `model_to_params`: `module.parameters(recurse=False)`), what ZeRO-3 gathers at once."""
    per_module: dict[str, int] = {}
    for p in params:
        module = p.path.rpartition(".")[0]
        per_module[module] = per_module.get(module, 0) + p.numel
    return max(per_module.values(), default=0)


def zero_share(plan: ParallelPlan, params: Sequence[ParamInfo], optimizer: str) -> RankShare:
    """One rank's share for the timeline: ZeRO keeps its model states in flat partitions, allocated
    once (the 16-bit gradients land in them as backward makes them: the timeline's parameter
    gradients take no memory of their own); the forward's activations are the trace's."""
    zs = zero_states(plan, [(p.numel, p.state_bytes, p.trainable) for p in params], largest_layer(params), optimizer)
    share = RankShare([zs.weights], [], [zs.communication] if zs.communication else [],
                      Schedule(grads_in_buckets=True, communication=zs.communication),
                      host=zs.host_total, terms=list(zs.terms), gradients=zs.gradients,
                      optimizer_state=zs.optimizer_state, fixed=zs.gathered + zs.unestimated_gpu)
    if zs.nvme:
        share.notes.append(f"{plan.label}: {zs.nvme:,} bytes per rank offloaded to NVMe")
    return share
