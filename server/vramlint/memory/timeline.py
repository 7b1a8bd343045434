"""One steady-state training iteration and one inference pass, simulated allocation by allocation.

Training (what `torch.cuda.max_memory_allocated()` sees in iteration 2 and later):
`zero_grad(set_to_none=True)` leaves weights, buffers, optimizer state, the batch and the cuBLAS
workspaces; the forward allocates each op's outputs and the tensors its backward needs, and a
tensor dies at its last use unless autograd keeps it; backward runs the ops in reverse, making
input gradients, parameter gradients (which stay), and freeing what each op kept; then
`optimizer.step()` adds its temporaries. Inference: under `no_grad` nothing is kept, a tensor
dies after its last use.

Every allocation is rounded up to the caching allocator's 512-byte blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vramlint.memory.tape import Op, Tape

BLOCK = 512


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


@dataclass
class TrainingRun:
    peak: int
    peak_at: Phase
    saved_bytes: int  # what autograd keeps at the end of the forward (activations for backward)
    param_grad_bytes: int
    after_forward: int
    timeline: list[tuple[str, int]] = field(default_factory=list)  # (event, allocated) samples


@dataclass
class InferenceRun:
    peak: int
    peak_at: Phase


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


def simulate_training(tape: Tape, base: int, optimizer_temp: int, output_sids: set[int]) -> TrainingRun:
    """`base`: bytes allocated when the iteration starts (weights, buffers, optimizer state, the
    batch, workspaces). `output_sids`: storages of the forward's result (alive until the loss)."""
    storages = tape.storages
    size = {s.sid: rounded(s.nbytes) for s in storages}
    transient = {s.sid for s in storages if s.kind in ("activation", "extra", "intermediate", "cast")}
    last = _last_uses(tape, output_sids)
    # Who keeps each storage for backward; ops inside a checkpointed region keep nothing in the forward.
    keepers: dict[int, int] = {}  # storage -> earliest op (last to run backward) that keeps it
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
    release_at: dict[int, list[int]] = {}
    for sid, at in last.items():
        if sid in transient and sid not in keepers:
            release_at.setdefault(at, []).append(sid)

    live = base
    peak = base
    peak_at = Phase("forward", "", "", base)
    alive: set[int] = set()
    samples: list[tuple[str, int]] = [("start", base)]
    # Running totals of the parameter gradients and the tensors kept for backward within `live`.
    grads_live = 0
    kept_live = 0

    def bump(phase: str, op: Op | None, extra: int = 0) -> None:
        nonlocal peak, peak_at
        if live + extra > peak:
            peak = live + extra
            peak_at = Phase(phase, op.name if op else "", op.module if op else "", peak, grads_live, kept_live)

    for op in tape.ops:
        for sid in op.allocated:
            if sid in transient and sid not in alive:
                alive.add(sid)
                live += size[sid]
                if sid in keepers:
                    kept_live += size[sid]
        bump("forward", op)
        for sid in release_at.get(op.index, ()):
            if sid in alive:
                alive.discard(sid)
                live -= size[sid]
    for sid in release_at.get(len(tape.ops), ()):
        if sid in alive:
            alive.discard(sid)
            live -= size[sid]
    after_forward = live
    saved_bytes = sum(size[s] for s in alive)
    samples.append(("after forward", live))

    # ------------------------------------------------------------------ backward
    grads: dict[int, int] = {}  # activation storage -> bytes of its gradient buffer
    param_grads: dict[int, int] = {}
    released_keepers: dict[int, list[int]] = {}
    for sid, at in keepers.items():
        released_keepers.setdefault(at, []).append(sid)
    recomputed: set[int] = set()
    region_saved: dict[int, list[int]] = {}
    for op in tape.ops:
        if op.region >= 0 and op.requires_grad:
            region_saved.setdefault(op.region, []).extend(s for s in op.saved if s in transient)
    region_done: set[int] = set()
    region_release: dict[int, list[int]] = {}
    for op in tape.ops:
        if op.region >= 0 and op.requires_grad:
            for sid in op.saved:
                if sid in transient:
                    region_release.setdefault(sid, []).append(op.index)

    for op in reversed(tape.ops):
        if not op.requires_grad:
            continue
        if op.region >= 0 and op.region not in region_done:
            # Backward reaches a checkpointed region: its forward runs again, keeping what its ops need.
            region_done.add(op.region)
            for sid in set(region_saved.get(op.region, [])):
                if sid not in alive:
                    alive.add(sid)
                    recomputed.add(sid)
                    live += size[sid]
                    kept_live += size[sid]
            bump("backward (recomputing a checkpointed region)", op)
        temp = op.backward_temp
        new_grads: list[int] = []
        for sid in op.grad_inputs:
            st = storages[sid]
            if st.kind == "param":
                if sid in param_grads:
                    temp += size[sid]  # computed, then added to the existing gradient
                else:
                    param_grads[sid] = size[sid]
                    live += size[sid]
                    grads_live += size[sid]
                continue
            if op.grad == "pass" and any(o in grads for o in op.outputs) and sid not in grads:
                src = next(o for o in op.outputs if o in grads)
                if src != sid:
                    grads[sid] = grads.pop(src)
                continue
            if sid in grads and sid not in op.outputs:
                temp += size[sid]  # a second consumer's contribution, accumulated
            elif sid in grads:
                temp += size[sid]  # in place: the input's gradient replaces the output's
            else:
                grads[sid] = size[sid]
                new_grads.append(sid)
                live += size[sid]
        bump("backward", op, rounded(temp))
        for sid in op.outputs:
            if sid in grads and sid not in op.grad_inputs and storages[sid].kind != "param":
                live -= grads.pop(sid)
        for sid in released_keepers.get(op.index, ()):
            if sid in alive:
                alive.discard(sid)
                live -= size[sid]
                kept_live -= size[sid]
        if op.region >= 0:
            for sid in op.saved:
                if sid in recomputed and min(region_release.get(sid, [op.index])) == op.index and sid in alive:
                    alive.discard(sid)
                    live -= size[sid]
                    kept_live -= size[sid]
    for sid in list(grads):
        live -= grads.pop(sid)  # gradients of the inputs: dropped at the end of backward
    samples.append(("after backward", live))
    param_grad_bytes = sum(param_grads.values())
    if live + optimizer_temp > peak:
        peak = live + optimizer_temp
        peak_at = Phase("optimizer step", "", "", peak, grads_live, kept_live)
    samples.append(("optimizer step", live + optimizer_temp))
    return TrainingRun(peak, peak_at, saved_bytes, param_grad_bytes, after_forward, samples)


def simulate_inference(tape: Tape, base: int, output_sids: set[int]) -> InferenceRun:
    """A `no_grad` forward in eval mode: no tensor is kept for backward, dropout is the identity,
    max-pool makes no indices; every tensor dies after its last use."""
    storages = tape.storages
    alias: dict[int, int] = {}
    for op in tape.ops:
        if op.name == "dropout" and op.reads:
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
    for op in tape.ops[:tape.forward_end]:  # inference has no loss
        for sid in op.allocated:
            st = storages[sid]
            if st.kind in ("activation", "cast") and sid not in alias and sid not in alive:
                alive.add(sid)
                live += rounded(st.nbytes)
        # a composite op's intermediates live while it runs
        inner = sum(rounded(storages[s].nbytes) for s in op.allocated if storages[s].kind == "intermediate")
        if live + inner > peak:
            peak = live + inner
            peak_at = Phase("forward", op.name, op.module, peak)
        for sid in release_at.get(op.index, ()):
            if sid in alive:
                alive.discard(sid)
                live -= rounded(storages[sid].nbytes)
    return InferenceRun(peak, peak_at)
