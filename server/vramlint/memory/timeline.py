"""One steady-state training iteration and one inference pass, simulated allocation by allocation.

Training (what `torch.cuda.max_memory_allocated()` sees in iteration 2 and later):
`zero_grad(set_to_none=True)` leaves weights, buffers, optimizer state, the batch and the cuBLAS
workspaces; the forward allocates each op's outputs and the tensors its backward needs, and a
tensor dies at its last use unless autograd keeps it; backward runs the ops in reverse, making
input gradients, parameter gradients (which stay), and freeing what each op kept; then
`optimizer.step()` adds its temporaries. Inference: under `no_grad` nothing is kept, a tensor
dies after its last use.

Every allocation is rounded up to the caching allocator's 512-byte blocks. Beside the sums, each
run records its allocations and frees one by one (`events`, keyed by storage; a gradient under
`GRAD + storage`, a backward's temporaries under `TEMP`): the caching allocator's simulation
(memory/allocator.py, memory/reserved.py) replays them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vramlint.memory.allocator import FREE, Event
from vramlint.memory.autograd_rules import DROPOUT_OPS
from vramlint.memory.tape import Op, Tape

BLOCK = 512
GRAD = 1 << 32  # event key of a storage's gradient: GRAD + storage
TEMP = 1 << 33  # event key of a backward's temporaries


def rounded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK if n > 0 else 0


@dataclass
class Phase:
    """Where the peak happened and what was allocated at that moment."""

    name: str  # "forward" | "backward" | "optimizer step"
    op: str  # the op running at the peak ("" when none)
    module: str
    bytes: int
    # What of `bytes` is parameter gradients and tensors kept for backward at that moment (the rest
    # being the fixed base and transients): explain's rows add up to the peak with them.
    gradients: int = 0
    kept: int = 0
    communication: int = 0  # buffers of collectives (several GPUs: memory/distributed.py)


@dataclass
class Mark:
    """One sample of a recorded run (`simulate_training(..., recorder=[])`): what was allocated at
    an op's high point (its outputs and temporaries allocated), for the memory timeline of a
    report (memory/series.py). Recorded only when asked for: the estimate needs only the peak."""

    phase: str
    index: int  # the op's index on the tape (-1: none, the start or the optimizer's step)
    op: str
    module: str
    total: int  # allocated bytes at that moment
    gradients: int  # of `total`, parameter gradients (Phase.gradients)
    kept: int  # of `total`, tensors kept for backward (Phase.kept)
    communication: int  # of `total`, collectives' buffers
    events: int  # how many of the run's allocation events had happened (for the allocator's replay)


@dataclass
class TrainingRun:
    peak: int
    peak_at: Phase
    saved_bytes: int  # what autograd keeps at the end of the forward (activations for backward)
    param_grad_bytes: int
    after_forward: int
    timeline: list[tuple[str, int]] = field(default_factory=list)  # (event, allocated) samples
    events: list[Event] = field(default_factory=list)  # forward and backward, one by one (not the step)
    forward_events: int = 0  # how many of `events` are the forward's
    communication_max: int = 0  # the most bytes of collectives' buffers allocated at once
    grad_keys: set[int] = field(default_factory=set)  # event keys of gradients kept after backward (sharded ones)


@dataclass
class InferenceRun:
    peak: int
    peak_at: Phase
    events: list[Event] = field(default_factory=list)  # the forward's allocations and frees


def _last_uses(tape: Tape, outputs: set[int], alias: dict[int, int] | None = None) -> dict[int, int]:
    def res(sid: int) -> int:
        return alias.get(sid, sid) if alias else sid

    last: dict[int, int] = {}
    for op in tape.ops:
        for sid in (*op.reads, *op.outputs, *op.allocated):
            last[res(sid)] = op.index
    for sid, until in tape.held_until.items():
        if last.get(res(sid), -1) < until:
            last[res(sid)] = until
    end = len(tape.ops)
    for sid in outputs:
        last[res(sid)] = end
    return last


@dataclass(frozen=True)
class Step:
    """An allocation a parallel plan adds around an op (memory/distributed.py): `kind` "alloc" (kept
    until a "free" of the same key), "free", "transient" (allocated and freed while the op runs), "grad"
    (a sharded gradient, kept like a parameter's), "drop_grads" (the parameter gradients of `sids`
    are freed: reduce-scattered into a shard). `comm`: a buffer of a collective."""

    kind: str
    key: int = 0
    nbytes: int = 0
    comm: bool = False
    sids: tuple[int, ...] = ()


@dataclass
class Schedule:
    """What a parallel plan allocates and frees around each op (op index -> steps), in the forward
    before and after the op runs and in the backward before and after the op's backward.
    `grads_in_buckets`: the parameter gradients are views of buffers already allocated (DDP's
    gradient_as_bucket_view) and take no memory of their own."""

    forward_before: dict[int, list[Step]] = field(default_factory=dict)
    forward_after: dict[int, list[Step]] = field(default_factory=dict)
    backward_before: dict[int, list[Step]] = field(default_factory=dict)
    backward_after: dict[int, list[Step]] = field(default_factory=dict)
    grads_in_buckets: bool = False
    communication: int = 0  # buffers of collectives in `base` (allocated before the iteration)
    # Parameters whose gradients are views of a buffer a step allocates (FSDP1's flat gradient).
    grad_views: set[int] = field(default_factory=set)


def simulate_training(tape: Tape, base: int, optimizer_temp: int, output_sids: set[int],
                      schedule: Schedule | None = None, recorder: list[Mark] | None = None) -> TrainingRun:
    """`base`: bytes allocated when the iteration starts (weights, buffers, optimizer state, the
    batch, workspaces). `output_sids`: storages of the forward's result (alive until the loss).
    The phases of the module docstring, in order: forward (the loss included), backward, the
    optimizer's step. `schedule`: what a parallel plan adds (one GPU's share of several);
    `recorder`: a list that receives a `Mark` at every op (None, the estimate's case: nothing kept)."""
    storages = tape.storages
    transient = {s.sid for s in storages if s.kind in ("activation", "extra", "intermediate", "cast")}
    keepers = _keepers(tape, transient)
    mem = _Memory(live=base, peak=base, peak_at=Phase("forward", "", "", base),
                  size={s.sid: rounded(s.nbytes) for s in storages}, samples=[("start", base)],
                  schedule=schedule or Schedule(), recorder=recorder)
    mem.comm_live = mem.comm_max = mem.schedule.communication
    mem.peak_at.communication = mem.comm_live
    if recorder is not None:
        recorder.append(Mark("start", -1, "", "", base, 0, 0, mem.comm_live, 0))
    _forward(tape, mem, _forward_releases(_last_uses(tape, output_sids), transient, keepers), transient, keepers)
    after_forward = mem.live
    forward_events = len(mem.events)
    saved_bytes = sum(mem.size[s] for s in mem.alive)
    mem.samples.append(("after forward", mem.live))
    param_grad_bytes = _backward(tape, mem, transient, keepers)
    mem.samples.append(("after backward", mem.live))
    mem.bump("optimizer step", None, optimizer_temp)
    mem.samples.append(("optimizer step", mem.live + optimizer_temp))
    return TrainingRun(mem.peak, mem.peak_at, saved_bytes, param_grad_bytes, after_forward, mem.samples, mem.events,
                       forward_events, mem.comm_max, set(mem.kept_grads))


@dataclass
class _Memory:
    """What is allocated as the simulated iteration runs, and its peak so far."""

    live: int
    peak: int
    peak_at: Phase
    size: dict[int, int]  # storage -> its rounded bytes
    samples: list[tuple[str, int]]
    alive: set[int] = field(default_factory=set)  # transient storages allocated now
    # Running totals of the parameter gradients and the tensors kept for backward within `live`.
    grads_live: int = 0
    kept_live: int = 0
    events: list[Event] = field(default_factory=list)
    grad_keys: dict[int, int] = field(default_factory=dict)  # storage -> event key of its gradient buffer
    schedule: Schedule = field(default_factory=Schedule)
    comm_live: int = 0  # of `live`, buffers of collectives
    comm_max: int = 0
    extra: dict[int, tuple[int, bool]] = field(default_factory=dict)  # a schedule's allocations: key -> (bytes, comm)
    kept_grads: dict[int, int] = field(default_factory=dict)  # sharded gradients: key -> bytes
    recorder: list[Mark] | None = None

    def bump(self, phase: str, op: Op | None, extra: int = 0, comm: int = 0) -> None:
        """A new peak if `live` (plus `extra` bytes of temporaries, `comm` of them a collective's)
        is above the last one."""
        self.comm_max = max(self.comm_max, self.comm_live + comm)
        if self.recorder is not None:
            self.recorder.append(Mark(phase, op.index if op else -1, op.name if op else "", op.module if op else "",
                                      self.live + extra, self.grads_live, self.kept_live, self.comm_live + comm,
                                      len(self.events)))
        if self.live + extra > self.peak:
            self.peak = self.live + extra
            self.peak_at = Phase(phase, op.name if op else "", op.module if op else "", self.peak,
                                 self.grads_live, self.kept_live, self.comm_live + comm)

    def apply(self, steps: list[Step], phase: str, op: Op, param_grads: dict[int, int] | None = None) -> None:
        """A parallel plan's steps around `op` (see Step)."""
        for st in steps:
            if st.kind == "alloc" and st.key not in self.extra:
                self.extra[st.key] = (st.nbytes, st.comm)
                self.live += st.nbytes
                self.comm_live += st.nbytes if st.comm else 0
                self.events.append((st.key, st.nbytes))
                self.bump(phase, op)
            elif st.kind == "free" and st.key in self.extra:
                n, comm = self.extra.pop(st.key)
                self.live -= n
                self.comm_live -= n if comm else 0
                self.events.append((st.key, FREE))
            elif st.kind == "transient":
                self.bump(phase, op, st.nbytes, st.nbytes if st.comm else 0)
                self.events += [(st.key, st.nbytes), (st.key, FREE)]
            elif st.kind == "grad":
                self.kept_grads[st.key] = self.kept_grads.get(st.key, 0) + st.nbytes
                self.live += st.nbytes
                self.grads_live += st.nbytes
                self.events.append((st.key, st.nbytes))
                self.bump(phase, op)
            elif st.kind == "drop_grads" and param_grads is not None:
                for sid in st.sids:
                    if sid in param_grads:
                        n = param_grads.pop(sid)
                        self.live -= n
                        self.grads_live -= n
                        self.events.append((GRAD + sid, FREE))

    def free(self, sid: int, kept: bool = False) -> None:
        """Release a transient storage if it is alive (`kept`: one autograd kept for backward)."""
        if sid in self.alive:
            self.alive.discard(sid)
            self.live -= self.size[sid]
            self.events.append((sid, FREE))
            if kept:
                self.kept_live -= self.size[sid]


def _keepers(tape: Tape, transient: set[int]) -> dict[int, int]:
    """Who keeps each storage for backward: storage -> the earliest op (the last to run backward)
    that keeps it. Ops inside a checkpointed region keep nothing in the forward; the region keeps
    its inputs, from its first op."""
    keepers: dict[int, int] = {}
    for op in tape.ops:
        if not op.requires_grad:
            continue
        kept = op.saved if op.region < 0 else []
        for sid in kept:
            if sid in transient:
                keepers[sid] = min(keepers.get(sid, op.index), op.index)
    region_first: dict[int, int] = {}
    for op in tape.ops:
        if op.region >= 0:
            region_first.setdefault(op.region, op.index)
    for r, inputs in enumerate(tape.regions):
        for sid in inputs:
            if sid in transient and r in region_first:
                keepers[sid] = min(keepers.get(sid, region_first[r]), region_first[r])
    return keepers


def _forward_releases(last: dict[int, int], transient: set[int], keepers: dict[int, int]) -> dict[int, list[int]]:
    """op index -> the transient storages that die after it runs (their last use; not the kept ones)."""
    release_at: dict[int, list[int]] = {}
    for sid, at in last.items():
        if sid in transient and sid not in keepers:
            release_at.setdefault(at, []).append(sid)
    return release_at


def _forward(tape: Tape, mem: _Memory, release_at: dict[int, list[int]], transient: set[int],
             keepers: dict[int, int]) -> None:
    """The forward, the loss included: each op allocates its outputs and what its backward needs,
    then the storages whose last use it was die; the forward's result lives until the loss."""
    sched = mem.schedule
    for op in tape.ops:
        mem.apply(sched.forward_before.get(op.index, []), "forward", op)
        for sid in op.allocated:
            if sid in transient and sid not in mem.alive:
                mem.alive.add(sid)
                mem.live += mem.size[sid]
                mem.events.append((sid, mem.size[sid]))
                if sid in keepers:
                    mem.kept_live += mem.size[sid]
        mem.bump("forward", op)
        for sid in release_at.get(op.index, ()):
            mem.free(sid)
        mem.apply(sched.forward_after.get(op.index, []), "forward", op)
    for sid in release_at.get(len(tape.ops), ()):
        mem.free(sid)


def _backward(tape: Tape, mem: _Memory, transient: set[int], keepers: dict[int, int]) -> int:
    """Backward: the ops in reverse, each making its inputs' gradients (parameter gradients stay),
    freeing its output's gradient and what it kept; a checkpointed region's forward runs again
    when backward reaches it. Returns the bytes of the parameter gradients."""
    storages = tape.storages
    grads: dict[int, int] = {}  # activation storage -> bytes of its gradient buffer
    param_grads: dict[int, int] = {}
    released_keepers: dict[int, list[int]] = {}
    for sid, at in keepers.items():
        released_keepers.setdefault(at, []).append(sid)
    region_saved, region_release = _checkpointed(tape, transient)
    recomputed: set[int] = set()
    region_done: set[int] = set()
    for op in reversed(tape.ops):
        if not op.requires_grad:  # no backward of its own; a plan's steps around it still run
            mem.apply(mem.schedule.backward_before.get(op.index, []), "backward", op, param_grads)
            mem.apply(mem.schedule.backward_after.get(op.index, []), "backward", op, param_grads)
            continue
        if op.region >= 0 and op.region not in region_done:
            # Backward reaches a checkpointed region: its forward runs again, keeping what its ops need.
            region_done.add(op.region)
            for sid in set(region_saved.get(op.region, [])):
                if sid not in mem.alive:
                    mem.alive.add(sid)
                    recomputed.add(sid)
                    mem.live += mem.size[sid]
                    mem.events.append((sid, mem.size[sid]))
                    mem.kept_live += mem.size[sid]
            mem.bump("backward (recomputing a checkpointed region)", op)
        mem.apply(mem.schedule.backward_before.get(op.index, []), "backward", op, param_grads)
        temp = _gradients_of(op, tape, mem, grads, param_grads)
        mem.bump("backward", op, rounded(temp))
        if temp > 0:
            mem.events += [(TEMP, rounded(temp)), (TEMP, FREE)]
        for sid in op.outputs:
            if sid in grads and sid not in op.grad_inputs and storages[sid].kind != "param":
                mem.live -= grads.pop(sid)
                mem.events.append((mem.grad_keys.pop(sid), FREE))
        for sid in released_keepers.get(op.index, ()):
            mem.free(sid, kept=True)
        if op.region >= 0:
            for sid in op.saved:
                if sid in recomputed and min(region_release.get(sid, [op.index])) == op.index:
                    mem.free(sid, kept=True)
        mem.apply(mem.schedule.backward_after.get(op.index, []), "backward", op, param_grads)
    for sid in list(grads):
        mem.live -= grads.pop(sid)  # gradients of the inputs: dropped at the end of backward
        mem.events.append((mem.grad_keys.pop(sid), FREE))
    return sum(param_grads.values()) + sum(mem.kept_grads.values())


def _checkpointed(tape: Tape, transient: set[int]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Of checkpointed regions: region -> the storages its recomputation keeps, and storage -> the
    ops of a region that keep it (the first of them to run backward releases it)."""
    region_saved: dict[int, list[int]] = {}
    for op in tape.ops:
        if op.region >= 0 and op.requires_grad:
            region_saved.setdefault(op.region, []).extend(s for s in op.saved if s in transient)
    region_release: dict[int, list[int]] = {}
    for op in tape.ops:
        if op.region >= 0 and op.requires_grad:
            for sid in op.saved:
                if sid in transient:
                    region_release.setdefault(sid, []).append(op.index)
    return region_saved, region_release


def _gradients_of(op: Op, tape: Tape, mem: _Memory, grads: dict[int, int], param_grads: dict[int, int]) -> int:
    """One op's backward: the gradients of its inputs, allocated (or accumulated, or passed
    through); returns the bytes of temporaries it needs while it runs."""
    size = mem.size
    temp = op.backward_temp
    for sid in op.grad_inputs:
        st = tape.storages[sid]
        if st.kind == "param":
            if sid in param_grads:
                temp += size[sid]  # computed, then added to the existing gradient
            elif mem.schedule.grads_in_buckets or sid in mem.schedule.grad_views:
                param_grads[sid] = 0  # written into its bucket (DDP's, FSDP1's flat gradient), allocated apart
            else:
                param_grads[sid] = size[sid]
                mem.live += size[sid]
                mem.grads_live += size[sid]
                mem.events.append((GRAD + sid, size[sid]))
            continue
        if op.grad == "pass" and any(o in grads for o in op.outputs) and sid not in grads:
            src = next(o for o in op.outputs if o in grads)
            if src != sid:
                grads[sid] = grads.pop(src)
                mem.grad_keys[sid] = mem.grad_keys.pop(src)
            continue
        if sid in grads and sid not in op.outputs:
            temp += size[sid]  # a second consumer's contribution, accumulated
        elif sid in grads:
            temp += size[sid]  # in place: the input's gradient replaces the output's
        else:
            grads[sid] = size[sid]
            mem.live += size[sid]
            mem.grad_keys[sid] = GRAD + sid
            mem.events.append((GRAD + sid, size[sid]))
    return temp




def simulate_inference(tape: Tape, base: int, output_sids: set[int], schedule: Schedule | None = None,
                       recorder: list[Mark] | None = None) -> InferenceRun:
    """A `no_grad` forward in eval mode: no tensor is kept for backward, dropout is the identity,
    max-pool makes no indices; every tensor dies after its last use. `schedule`: a parallel
    plan's forward steps (FSDP gathers each unit's parameters in inference too); `recorder`: as
    simulate_training's (a parallel plan's buffers count as transient there)."""
    storages = tape.storages
    alias: dict[int, int] = {}
    for op in tape.ops:
        if (op.name in DROPOUT_OPS or op.inference_alias) and op.reads:
            for sid in op.allocated:
                if storages[sid].kind == "activation":
                    alias[sid] = alias.get(op.reads[0], op.reads[0])
    last = _last_uses(tape, output_sids, alias)
    release_at: dict[int, list[int]] = {}
    for sid, at in last.items():
        release_at.setdefault(at, []).append(sid)
    live = peak = base
    peak_at = Phase("forward", "", "", base)
    alive: set[int] = set()
    events: list[Event] = []
    steps = _InferenceSteps(schedule) if schedule is not None else None
    if recorder is not None:
        recorder.append(Mark("start", -1, "", "", base, 0, 0, 0, 0))
    for op in tape.ops[:tape.forward_end]:  # inference has no loss
        if steps is not None:
            live = steps.run(steps.schedule.forward_before.get(op.index, []), live, events)
        for sid in op.allocated:
            st = storages[sid]
            if st.kind in ("activation", "cast") and sid not in alias and sid not in alive:
                alive.add(sid)
                live += rounded(st.nbytes)
                events.append((sid, rounded(st.nbytes)))
        # a composite op's intermediates live while it runs
        inner = sum(rounded(storages[s].nbytes) for s in op.allocated if storages[s].kind == "intermediate")
        if live + inner > peak:
            peak = live + inner
            peak_at = Phase("forward", op.name, op.module, peak)
        between = [s for s in op.allocated if storages[s].kind == "intermediate"]
        events += [(s, rounded(storages[s].nbytes)) for s in between] + [(s, FREE) for s in between]
        if steps is not None and live + steps.transient > peak:
            peak, peak_at = live + steps.transient, Phase("forward", op.name, op.module, live + steps.transient)
        if recorder is not None:
            high = live + max(inner, steps.transient if steps is not None else 0)
            recorder.append(Mark("forward", op.index, op.name, op.module, high, 0, 0, 0, len(events)))
        for sid in release_at.get(op.index, ()):
            if sid in alive:
                alive.discard(sid)
                live -= rounded(storages[sid].nbytes)
                events.append((sid, FREE))
        if steps is not None:
            live = steps.run(steps.schedule.forward_after.get(op.index, []), live, events)
    return InferenceRun(peak, peak_at, events)


@dataclass
class _InferenceSteps:
    """A parallel plan's forward steps in an inference pass (no gradients)."""

    schedule: Schedule
    sizes: dict[int, int] = field(default_factory=dict)
    transient: int = 0  # the largest transient of the last steps run (counted at the op's peak check)

    def run(self, steps: list[Step], live: int, events: list[Event]) -> int:
        self.transient = 0
        for st in steps:
            if st.kind == "alloc" and st.key not in self.sizes:
                self.sizes[st.key] = st.nbytes
                live += st.nbytes
                events.append((st.key, st.nbytes))
            elif st.kind == "free" and st.key in self.sizes:
                live -= self.sizes.pop(st.key)
                events.append((st.key, FREE))
            elif st.kind == "transient":
                self.transient = max(self.transient, st.nbytes)
                events += [(st.key, st.nbytes), (st.key, FREE)]
        return live
