"""Training on several GPUs: what each GPU holds under data parallelism (DDP), sharded data
parallelism (FSDP2 `fully_shard`, FSDP1 `FullyShardedDataParallel`, ZeRO stages 1-3 as DeepSpeed
runs them) and tensor parallelism (`parallelize_module`).

A `ParallelPlan` is what the code (or the configuration) says about the launch; the frontends read
it (frontends/torch/distributed.py, frontends/deepspeed/). The memory model turns one GPU's trace
into each rank's figures (`DistributedMemory`); every formula cites its source in docs/distributed.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1 << 20

# What the model states are sharded over, in the ZeRO paper's stages (Rajbhandari et al. 2020,
# arXiv:1910.02054): 0 nothing (DDP, FSDP NO_SHARD), 1 the optimizer state, 2 also the gradients
# (FSDP1 SHARD_GRAD_OP, FSDP2 reshard_after_forward=False), 3 also the parameters (FSDP FULL_SHARD).
SHARD_NOTHING, SHARD_OPTIMIZER, SHARD_GRADIENTS, SHARD_PARAMETERS = 0, 1, 2, 3

STRATEGIES = ("ddp", "fsdp2", "fsdp1", "deepspeed", "tp")


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
