"""From a recorded forward (the tape) to the numbers: weights, gradients, optimizer state,
activations, workspaces, the training and inference peaks, what the device and the host need."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from vramlint.memory import cudnn
from vramlint.memory.allocator import AllocatorConfig, Result
from vramlint.memory.devices import HOST_RUNTIME_CPU, HOST_RUNTIME_CUDA, Device
from vramlint.memory.distributed import (
    DistributedMemory,
    ParallelPlan,
    ParamInfo,
    RankShare,
    rank_share,
)
from vramlint.memory.generation import GenerationMemory
from vramlint.memory.optimizers import OPTIMIZERS
from vramlint.memory.reserved import Workload, largest_batch, reserved_need
from vramlint.memory.reserved import run as run_allocator
from vramlint.memory.series import ReplaySource
from vramlint.memory.tape import Storage, Tape
from vramlint.memory.timeline import (
    GRAD,
    Schedule,
    TrainingRun,
    rounded,
    simulate_inference,
    simulate_training,
)
from vramlint.memory.zero import zero_share

PRECISIONS = ("fp32", "amp-bf16", "amp-fp16", "bf16", "fp16")
MATMUL_OPS = {"linear", "matmul", "addmm", "baddbmm", "bilinear", "multihead_attention", "rnn",
              "scaled_dot_product_attention"}


# At the edge of the card the caching allocator frees its cached blocks and retries before it
# fails, so what it reserves beyond the allocated peak is the fragmentation it cannot release:
# 2.0% and 1.6% at the largest batch that trained (benchmarks/data/calibration/h200-max-batch.jsonl).
# (With room to spare it keeps much more cached: max_reserved in the calibration data.)
# Training and inference are simulated allocation by allocation (memory/reserved.py); this
# allowance remains for generation, for the largest batch when two traces do not pair, and as the
# floor of every need: a simulation that finds less (few, small tensors) is not trusted below
# what the GPU needed on both measured cards.
FRAGMENTATION = 0.02
SEGMENT = 2 << 20  # large allocations are rounded up to 2 MiB segments


def reserved_at(peak: int) -> int:
    """What the caching allocator reserves, at the edge of the card, for an allocated peak."""
    return -(-int(peak * (1 + FRAGMENTATION)) // SEGMENT) * SEGMENT


def max_batch(est: MemoryEstimate, doubled: MemoryEstimate, available: int) -> int | None:
    """The largest batch whose training step fits in `available` bytes (the card less the CUDA
    context), from the estimates at two batch sizes: each allocation's size is a line in the batch
    (memory/reserved.py runs the caching allocator capped at `available` on the sizes of a
    candidate batch). Where the two traces do not pair allocation by allocation, the peaks' line
    with the fragmentation allowance, less one more percent of the card: an answer that errs
    towards "does not fit"."""
    if est.workload is not None and doubled.workload is not None:
        found = largest_batch(est.workload, est.batch_size, doubled.workload, doubled.batch_size, available,
                              est.allocator, FRAGMENTATION)
        if found is not None:
            return found
    return linear_max_batch(est.batch_size, est.train_peak, doubled.batch_size, doubled.train_peak,
                            int(available * (1 - UNPAIRED_MARGIN)))


# The margin of the linear rule where the two traces do not pair (a batch-dependent branch, a
# different op sequence): what the simulation measures beyond the 2% allowance on smaller models.
UNPAIRED_MARGIN = 0.05


def linear_max_batch(batch: int, peak: int, batch2: int, peak2: int, available: int) -> int | None:
    """The largest batch from the peaks at two batch sizes, activations growing linearly with the
    batch, with the fixed fragmentation allowance."""
    if batch2 == batch or peak2 <= peak:
        return None
    per_sample = (peak2 - peak) / (batch2 - batch)
    fixed = peak - per_sample * batch
    n = int((available / (1 + FRAGMENTATION) - fixed) // per_sample)
    return max(n, 0)


@dataclass(frozen=True)
class TrainingSetup:
    batch_size: int
    precision: str = "fp32"
    optimizer: str = "adam"
    device: Device | None = None
    checkpointing: bool = False
    # How convolutions pick their algorithm (memory/cudnn.py): "heuristics" (the default),
    # "benchmark" (`torch.backends.cudnn.benchmark = True`), "disabled" (`cudnn.enabled = False`).
    convolutions: str = "heuristics"
    allocator: AllocatorConfig = AllocatorConfig()  # PYTORCH_CUDA_ALLOC_CONF
    # Several GPUs (memory/distributed.py): the figures are then one GPU's; `batch_size` is per GPU.
    plan: ParallelPlan | None = None


@dataclass
class Hotspot:
    """One op and what autograd keeps for it (an attention matrix, a large activation)."""

    op: str
    module: str
    bytes: int
    where: Any = field(default=None, repr=False)  # SourceRef of the code that ran it


@dataclass
class LineTensor:
    """What a line of the analysed file computed in the forward (its last op's first output, the
    first time the line ran): for the editor's hints."""

    line: int  # 1-based
    shape: tuple[int | None, ...]
    dtype: str
    bytes: int


@dataclass
class LayerMemory:
    path: str  # module path ("" for the model itself)
    saved_bytes: int  # kept for backward by the ops of this module (not its children)
    ops: tuple[str, ...] = ()  # those ops' names, each once (F.relu, torch.cat in a forward)


@dataclass
class Textbook:
    """The count people make by hand: the input and every layer's output (forward) plus a
    gradient per layer output (backward), for the whole batch, in elements."""

    forward_elements: int
    gradient_elements: int
    layers: int  # the layers with weights whose outputs were counted

    @property
    def elements(self) -> int:
        return self.forward_elements + self.gradient_elements


_searching = threading.Lock()  # one search at a time: a feature on the loop waits for the worker's


@dataclass
class EdgeNeed:
    """What the caching allocator must be allowed to reserve at the edge of the card: the least
    limit its replay of `work` succeeds at (`reserved_need`), never below `floor` (the peak plus
    the fragmentation allowance, `reserved_at`). The search for that limit replays the run five
    to eight times, a quarter of an editor's edit, while the diagnostics of a model that fits
    need only whether it fits, which the runs already made say (`fits`); so it runs when the
    figure is first asked for (a renderer, the code lens, the status item), in whatever thread
    asks, once. An analysis makes it before returning unless its caller (the language server)
    defers it (`api.analyze_source`, `api.complete_searches`). Pickled with its inputs and value."""

    work: Workload
    config: AllocatorConfig
    free: Result  # the run without a limit
    floor: int
    # Training: the card's edge (its memory less the CUDA context), and whether the run at it
    # succeeds. The need is kept consistent with that run: within the edge where it succeeds,
    # beyond it where it fails, whatever the search found. Inference: None.
    limit: int | None = None
    succeeds_at_limit: bool = True
    _value: int | None = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> int:
        if self._value is None:
            with _searching:
                if self._value is None:
                    self._value = self._search()
        return self._value

    @property
    def fits(self) -> bool:
        """Whether the need is within `limit`, without the search: the search's answer is capped
        at the limit where the run there succeeds and exceeds it where it fails, so only the
        floor can take a succeeding run past it."""
        return self.limit is None or (self.succeeds_at_limit and self.floor <= self.limit)

    def _search(self) -> int:
        need = reserved_need(self.work, self.config, self.free)
        if self.limit is not None:
            need = min(need, self.limit) if self.succeeds_at_limit else max(need, self.limit + 1)
        return max(need, self.floor)


@dataclass
class MemoryEstimate:
    batch_size: int
    precision: str
    optimizer: str
    device: str
    device_memory: int  # what the card has (bytes the driver reports)
    weights: int
    buffers: int
    gradients: int
    optimizer_state: int
    activations: int  # kept for backward at the end of the forward (the loss included)
    inputs: int  # the batch on the device
    workspace: int  # cuBLAS workspaces
    optimizer_temp: int  # temporaries of optimizer.step()
    train_peak: int
    train_peak_phase: str  # where the peak happens: "forward", "backward at <module>", "optimizer step"
    inference_peak: int
    training_need: EdgeNeed  # what the allocator must reserve for training at the edge of the card (`device_total`)
    host_peak: int  # host memory of the GPU training process
    host_peak_cpu_training: int  # training on the CPU alone
    layers: list[LayerMemory] = field(default_factory=list)
    textbook: Textbook | None = None
    max_batch: int | None = None  # the largest batch that fits the device (when asked for)
    # At the training peak: the parameter gradients and the tensors kept for backward still allocated
    # (the rest of the peak above the fixed part is transient: gradients in flight, step temporaries).
    peak_gradients: int = 0
    peak_kept: int = 0
    hotspots: list[Hotspot] = field(default_factory=list)  # the ops keeping the most, largest first
    lines: dict[int, LineTensor] = field(default_factory=dict)  # forward lines of the analysed file
    unmodelled_ops: dict[str, int] = field(default_factory=dict)  # op -> calls assumed to keep their inputs
    notes: list[str] = field(default_factory=list)
    generation: GenerationMemory | None = None  # a generation call's KV cache and peak (memory/generation.py)
    # [low, high] of the training and inference peaks where they depend on a choice made at run
    # time (cuDNN's convolution algorithms: memory/cudnn.py); None where the peak is exact.
    train_range: tuple[int, int] | None = None
    inference_range: tuple[int, int] | None = None

    # torch.cuda.max_memory_reserved() of the calibration protocol's three iterations, room to spare
    max_reserved: int = 0
    inference_max_reserved: int = 0  # the same for three inference passes (measure.py's protocol)
    inference_edge: EdgeNeed | None = None  # what inference needs the allocator to reserve at the card's edge
    context: int = 0  # the CUDA context and libraries, outside the allocator (in device_total)
    workload: Workload | None = field(default=None, repr=False)  # the run, as the allocator sees it
    inference_workload: Workload | None = field(default=None, repr=False)  # three no_grad forwards
    allocator: AllocatorConfig = AllocatorConfig()  # PYTORCH_CUDA_ALLOC_CONF the run was simulated with
    # Training on several GPUs (memory/distributed.py): every byte figure above is then one GPU's
    # (rank 0's), and this says the plan, the communication buffers and what is offloaded to the host.
    distributed: DistributedMemory | None = None
    # What the runs were simulated from, for a report's timeline (memory/series.py `timeline_of`):
    # a reference kept, nothing recorded; dropped when the estimate is pickled.
    replay: ReplaySource | None = field(default=None, repr=False, compare=False)

    @property
    def kv_cache(self) -> int | None:
        return self.generation.kv_cache if self.generation is not None else None

    @property
    def generation_peak(self) -> int | None:
        return self.generation.peak if self.generation is not None else None

    @property
    def device_total(self) -> int:
        """What the allocator must reserve for training at the edge of the card, plus the CUDA
        context (the search for the least limit runs when first asked: `EdgeNeed`)."""
        return self.training_need.value + self.context

    @property
    def fits(self) -> bool:
        """Whether a training step fits on the device (context and cached blocks included):
        `device_total <= device_memory`, known without the search (`EdgeNeed.fits`)."""
        return self.training_need.fits

    def search(self) -> None:
        """Make the searches `device_total` and `inference_reserved_need` wait for (see `EdgeNeed`)."""
        _ = self.training_need.value
        if self.inference_edge is not None:
            _ = self.inference_edge.value

    @property
    def inference_reserved_need(self) -> int:
        """What inference needs the allocator to reserve at the card's edge (0: not simulated)."""
        return self.inference_edge.value if self.inference_edge is not None else 0

    @property
    def infer_peak(self) -> int:
        """The peak of the inference workload: generation's when the code generates, else one forward's."""
        return self.generation.peak if self.generation is not None else self.inference_peak

    @property
    def inference_need(self) -> int:
        """What inference (generation, when the code generates) needs of the device: its peak,
        fragmentation, the CUDA context."""
        if self.generation is None and self.inference_reserved_need:
            return self.inference_reserved_need + self.context
        return reserved_at(self.infer_peak) + self.context


def estimate_from_tape(tape: Tape, setup: TrainingSetup, params: list[tuple[int, int, bool, tuple[int, ...]]],
                       buffers: int, output_sids: set[int], notes: list[str],
                       param_infos: list[ParamInfo] | None = None) -> MemoryEstimate:
    """`params`: (numel, bytes, trainable, shape) of every parameter, each tensor once;
    `param_infos` the same with their paths and storages, for a parallel plan (`setup.plan`)."""
    device = setup.device
    assert device is not None
    if setup.convolutions == "disabled":
        tape = cudnn.with_workspaces(tape, cudnn.native)
    opt = OPTIMIZERS[setup.optimizer]
    one_gpu_tape = tape
    share: RankShare | None = None
    if setup.plan is not None and param_infos is not None:
        if setup.plan.strategy == "deepspeed":
            share = zero_share(setup.plan, param_infos, setup.optimizer)
        else:
            share, tape = rank_share(setup.plan, param_infos, tape)
        tensors, trainable = share.weights, share.state_params
    else:
        tensors, trainable = [p[1] for p in params], [(n, b, shape) for n, b, t, shape in params if t]
    weights = sum(rounded(b) for b in tensors)
    state_tensors = opt.state(trainable) if share is None or share.optimizer_state is None else [share.optimizer_state]
    if share is not None and share.state_on_host:
        share.host += sum(state_tensors)
        state_tensors = []
    state = sum(rounded(b) for b in state_tensors)
    step_temps = [] if share is not None and share.state_on_host else opt.step_temp(trainable)
    step_temp = sum(rounded(b) for b in step_temps)
    held = share.gradients + share.fixed if share is not None else 0  # a plan's fixed partitions
    inputs = sum(rounded(s.nbytes) for s in tape.storages if s.kind == "input")
    uses_blas = any(op.name in MATMUL_OPS for op in tape.ops)
    workspace_train = 2 * device.blas_workspace if uses_blas else 0  # forward + autograd's thread
    workspace_infer = device.blas_workspace if uses_blas else 0
    comm_setup = sum(rounded(b) for b in share.communication) if share is not None else 0
    schedule = share.schedule if share is not None else None
    base = weights + rounded(buffers) + state + inputs + workspace_train + comm_setup + held
    # autocast's weight cache lives until the end of the forward (of the autocast region)
    outputs = output_sids | set(tape.weight_casts.values())
    run = simulate_training(tape, base, step_temp, outputs, schedule)
    infer_base = weights + rounded(buffers) + inputs + workspace_infer + comm_setup + (share.fixed if share else 0)
    infer = simulate_inference(tape, infer_base, outputs, schedule)
    phase = run.peak_at.name
    if run.peak_at.module or run.peak_at.op:
        phase += f" at {run.peak_at.module or '(model)'} ({run.peak_at.op})"
    layers: dict[str, int] = {}
    layer_ops: dict[str, dict[str, None]] = {}  # ordered sets
    counted: set[int] = set()
    per_op: list[Hotspot] = []
    for op in tape.ops:
        own = 0
        for sid in op.saved:
            st = tape.storages[sid]
            if sid in counted or st.kind not in ("activation", "extra", "intermediate", "cast"):
                continue
            counted.add(sid)
            own += rounded(st.nbytes)
        if own:
            layers[op.module] = layers.get(op.module, 0) + own
            layer_ops.setdefault(op.module, {})[op.name] = None
            per_op.append(Hotspot(op.name, op.module, own, op.where))
    per_op.sort(key=lambda h: -h.bytes)
    train_range, infer_range = _workspace_ranges(tape, setup, (base, step_temp, outputs), infer_base,
                                                 (run.peak, infer.peak), schedule)
    # The allocator replays the run whose convolutions take the high end's workspaces (the
    # heuristics' picks; under cudnn.benchmark the largest a timed plan may take): "fits" and the
    # largest batch never count on a smaller one.
    high, high_infer = run, infer
    if setup.convolutions == "benchmark" and train_range is not None:
        high_tape = cudnn.with_workspaces(tape, cudnn.largest)
        high = simulate_training(high_tape, base, step_temp, outputs, schedule)
        high_infer = simulate_inference(high_tape, infer_base, outputs, schedule)
    work = Workload(
        [rounded(b) for b in tensors] + _buffer_sizes(tape.storages, buffers)
        + [s.nbytes for s in tape.storages if s.kind == "input"]
        + ([b for b in (*share.communication, share.gradients, share.fixed) if b] if share is not None else []),
        [device.blas_workspace] * 2 if uses_blas else [], state_tensors, step_temps,
        high.events[:high.forward_events], high.events[high.forward_events:],
        {GRAD + s.sid for s in tape.storages if s.kind == "param"} | high.grad_keys)
    # Each run without a limit serves max_reserved and the search for the least limit.
    free = run_allocator(work, config=setup.allocator)
    limit = device.memory - device.context
    # (A run that never reserved past the limit is the run at the limit.)
    succeeds = free.max_reserved <= limit or run_allocator(work, limit, setup.allocator).ok
    training_need = EdgeNeed(work, setup.allocator, free, reserved_at(high.peak), limit, succeeds)
    infer_work = Workload(work.setup, [device.blas_workspace] if uses_blas else [], [], [], high_infer.events, [])
    infer_free = run_allocator(infer_work, config=setup.allocator)
    cpu_peak = run.peak - workspace_train
    held_grads = share.gradients if share is not None else 0
    fixed = {"weights": base - state - inputs - workspace_train - held_grads - (schedule.communication if schedule else 0),
             "optimizer_state": state, "batch": inputs, "workspaces": workspace_train, "gradients": held_grads}
    infer_fixed = {"weights": infer_base - inputs - workspace_infer - comm_setup, "batch": inputs,
                   "workspaces": workspace_infer, "collectives": comm_setup}
    replay = ReplaySource(tape, base, step_temp, outputs, schedule, infer_base, fixed, infer_fixed, work, infer_work,
                          setup.allocator)
    if share is not None:
        notes.extend(share.notes)
    distributed = _distributed(setup, share, run, one_gpu_tape, param_infos, buffers, inputs, workspace_train,
                               outputs, opt) if share is not None and param_infos is not None else None
    return MemoryEstimate(distributed=distributed,
        batch_size=setup.batch_size, precision=setup.precision, optimizer=setup.optimizer, device=device.name,
        device_memory=device.memory,
        weights=weights, buffers=rounded(buffers), gradients=run.param_grad_bytes + (share.gradients if share else 0),
        optimizer_state=state,
        activations=run.saved_bytes, inputs=inputs, workspace=workspace_train, optimizer_temp=step_temp,
        train_peak=run.peak, train_peak_phase=phase, inference_peak=infer.peak,
        peak_gradients=run.peak_at.gradients, peak_kept=run.peak_at.kept,
        training_need=training_need, max_reserved=free.max_reserved,
        context=device.context, workload=work, allocator=setup.allocator,
        inference_max_reserved=infer_free.max_reserved,
        inference_edge=EdgeNeed(infer_work, setup.allocator, infer_free, reserved_at(high_infer.peak)),
        inference_workload=infer_work,
        host_peak=HOST_RUNTIME_CUDA + weights + rounded(buffers) + inputs,
        host_peak_cpu_training=HOST_RUNTIME_CPU + cpu_peak,
        layers=[LayerMemory(p, b, tuple(layer_ops[p])) for p, b in layers.items()], hotspots=per_op[:5],
        unmodelled_ops=dict(tape.unmodelled), notes=notes, train_range=train_range, inference_range=infer_range,
        replay=replay,
    )


def _distributed(setup: TrainingSetup, share: RankShare, run: TrainingRun, one_gpu_tape: Tape,
                 params: list[ParamInfo], buffers: int, inputs: int, workspace: int,
                 outputs: set[int], opt: Any) -> DistributedMemory:
    """What the plan changes: the collectives' buffers, the host's share, and the peak the whole
    model would reach on one GPU at the same batch and compute precision (weights and optimizer
    state in the parameters' own dtype, as the plan keeps them), for comparison."""
    assert setup.plan is not None
    trainable = [(p.numel, p.state_bytes, p.shape) for p in params if p.trainable]
    one_base = (sum(rounded(p.state_bytes) for p in params) + rounded(buffers) + inputs + workspace
                + sum(rounded(b) for b in opt.state(trainable)))
    one = simulate_training(one_gpu_tape, one_base, sum(rounded(b) for b in opt.step_temp(trainable)), outputs)
    return DistributedMemory(setup.plan, communication=run.peak_at.communication,
                             communication_peak=run.communication_max, host=share.host, one_gpu_peak=one.peak,
                             terms=list(share.terms))


def _workspace_ranges(tape: Tape, setup: TrainingSetup, train: tuple[int, int, set[int]], infer_base: int,
                      peaks: tuple[int, int], schedule: Schedule | None = None,
                      ) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """[low, high] of the training and inference peaks over cuDNN's choices: low with the
    workspace-free fallback engines torch goes on to when a workspace cannot be allocated; high
    with the heuristics' picks, or under `cudnn.benchmark` the largest any timed plan may take."""
    if setup.convolutions == "disabled" or not any(op.workspace is not None for op in tape.ops):
        return None, None
    base, step_temp, outputs = train
    bounds = []
    for variant in (cudnn.none, cudnn.largest) if setup.convolutions == "benchmark" else (cudnn.none,):
        t = cudnn.with_workspaces(tape, variant)
        bounds.append((simulate_training(t, base, step_temp, outputs, schedule).peak,
                       simulate_inference(t, infer_base, outputs, schedule).peak))
    high = bounds[1] if len(bounds) > 1 else peaks
    train_range = (min(bounds[0][0], peaks[0]), max(high[0], peaks[0]))
    infer_range = (min(bounds[0][1], peaks[1]), max(high[1], peaks[1]))
    return (train_range if train_range[0] != train_range[1] else None,
            infer_range if infer_range[0] != infer_range[1] else None)


def _buffer_sizes(storages: list[Storage], total: int) -> list[int]:
    """The registered buffers one by one: those the forward read, and the rest as one tensor."""
    seen = [s.nbytes for s in storages if s.kind == "buffer"]
    rest = rounded(total) - sum(rounded(n) for n in seen)
    return seen + ([rest] if rest > 0 else [])
