"""`vramlint explain`: the estimate walked through for a person.

It starts from the count people make by hand (every layer's output plus a gradient for each,
times the batch) and adds, one line per cause, what a real training step allocates besides:
weights, their gradients, the optimizer's state and step temporaries, the tensors autograd keeps
that the count misses (activations' inputs, masks, statistics, log-probabilities), the batch
itself, cuBLAS workspaces and the allocator's rounding. The ratio at the end is the "3x / 4.5x"
people observe, with its causes in numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramlint.analysis.results import ModelResult
from vramlint.memory.estimate import MemoryEstimate
from vramlint.memory.optimizers import OPTIMIZERS
from vramlint.render.distributed import per_gpu, plan_details, plan_rows
from vramlint.render.units import fmt_bytes

DTYPE_BYTES = {"fp32": 4, "amp-bf16": 4, "amp-fp16": 4, "bf16": 2, "fp16": 2}
OPTIMIZER_STEP = "optimizer step"  # timeline.py's name of the phase after backward


@dataclass(frozen=True)
class Row:
    label: str
    bytes: int
    note: str


def peak_rows(e: MemoryEstimate, params: int) -> list[Row]:
    """What is allocated at the moment of the training peak, one row per cause: they add up to
    the peak. Gradients and the tensors kept for backward are counted as they stand at that moment
    (during backward, part of the gradients exist and part of what was kept is already freed), the
    step's temporaries only when the peak is the optimizer step; the rest is transient."""
    at_step = e.train_peak_phase == OPTIMIZER_STEP
    rows = [
        Row("weights", e.weights, f"{params:,} parameters"),
        *([Row("buffers", e.buffers, "running statistics and other registered buffers")] if e.buffers else []),
        Row("optimizer state", e.optimizer_state, OPTIMIZERS[e.optimizer].description),
        Row("batch", e.inputs, "inputs and targets, on the GPU"),
        Row("cuBLAS workspaces", e.workspace, "forward handle + autograd's backward thread"),
        *([Row("communication buffers", e.distributed.communication, "the collectives' buffers at that moment "
               "(below)")] if e.distributed is not None else []),
        Row("gradients", e.peak_gradients,
            _part(e.peak_gradients, e.gradients, "after backward", "one per trainable weight, kept until the next "
                  "zero_grad")),
        Row("kept for backward", e.peak_kept,
            _part(e.peak_kept, e.activations, "after the forward", "layer inputs, activation outputs, masks, "
                  "statistics, log-probabilities")),
        Row("optimizer step temporaries", e.optimizer_temp if at_step else 0,
            "foreach implementation, all parameters at once" if at_step
            else f"{fmt_bytes(e.optimizer_temp)} during the step, after the peak"),
    ]
    transient = e.train_peak - sum(r.bytes for r in rows)
    rows.append(Row("+ transient at the peak", transient, "gradients in flight, outputs being computed"))
    return rows


def _part(now: int, whole: int, when: str, what: str) -> str:
    return what if now == whole else f"{fmt_bytes(whole)} {when}; {what}"


def explain(path: str, m: ModelResult) -> str:
    e = m.memory
    if e is None:
        reasons = "; ".join(u.reason for u in (m.memory_unknowns + m.forward_unknowns)[:3]) or "unknown"
        return f"{path}: {m.name}: no memory estimate: {reasons}"
    where = f"{path}:{m.location.line}" if m.location else path
    params = m.params.total or 0
    width = DTYPE_BYTES.get(e.precision, 4)
    several, each = (f"{per_gpu(e)}; ", " per GPU") if e.distributed is not None else ("", "")
    lines = [f"{m.name} ({where}): {params:,} parameters; {several}batch {e.batch_size}{each}, {e.precision}, "
             f"{e.optimizer}, {e.device}; inputs from {m.inputs_from}", ""]
    tb = e.textbook
    textbook_bytes = None
    if tb is not None:
        per = e.batch_size or 1
        textbook_bytes = tb.elements * width
        lines += [
            "The count made by hand (inputs and the outputs of the layers with weights, plus one gradient each):",
            f"  forward elements   {tb.forward_elements // per:>12,} per sample",
            f"  gradient elements  {tb.gradient_elements // per:>12,} per sample",
            f"  total              {tb.elements // per:>12,} x {per} = {tb.elements:,} elements"
            f" = {fmt_bytes(textbook_bytes)} at {width} bytes",
            "",
        ]
    lines.append(f"What is allocated at the training peak ({e.train_peak_phase}; steady state, as "
                 "torch.cuda.max_memory_allocated() reports):")
    for row in peak_rows(e, params):
        lines.append(f"  {row.label:<30} {fmt_bytes(row.bytes):>11}   {row.note}")
    lines.append(f"  {'= training peak':<30} {fmt_bytes(e.train_peak):>11}")
    lines.append(f"  {'inference peak':<30} {fmt_bytes(e.inference_peak):>11}   no_grad forward, eval mode")
    lines.append(f"  {'device total':<30} {fmt_bytes(e.device_total):>11}   reserved at the card's edge (caching allocator) + CUDA context "
                 f"({'fits' if e.fits else 'does NOT fit'} in {fmt_bytes(e.device_memory)})")
    lines.append("")
    lines += distributed_lines(e)
    if textbook_bytes and e.distributed is None:  # the hand count is of the whole model, not one GPU's share
        lines.append(f"The training peak is {e.train_peak / textbook_bytes:.1f}x the hand count; without the fixed "
                     f"cuBLAS workspaces {(e.train_peak - e.workspace) / textbook_bytes:.1f}x.")
    for note in e.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def distributed_lines(e: MemoryEstimate) -> list[str]:
    """On several GPUs: the plan with where each fact was read, what it adds on each GPU and the
    host (memory/distributed.py's terms, each with the source of its formula), and the whole model
    on one GPU for comparison."""
    d = e.distributed
    if d is None:
        return []
    lines = [f"Several GPUs, {per_gpu(e).removeprefix('per GPU, ')}: every figure above is one GPU's (rank 0's)."]
    lines += [f"  {what:<30} {value} ({source})" for what, value, source in [*plan_rows(d.plan), *plan_details(d.plan)]]
    lines.append("What the plan adds:")
    lines += [f"  {what:<30} {fmt_bytes(n):>11}   {source}" for what, n, source in d.terms]
    lines.append(f"  {'communication buffers':<30} {fmt_bytes(d.communication):>11}   at the training peak; "
                 f"largest at any moment {fmt_bytes(d.communication_peak)}")
    if d.host:
        lines.append(f"  {'offloaded to the host':<30} {fmt_bytes(d.host):>11}   per rank, in CPU memory")
    if d.largest_rank is not None:
        lines.append(f"  {'largest rank':<30} {fmt_bytes(d.largest_rank):>11}   the training peak of the rank that "
                     "holds the most (uneven shards)")
    ratio = f" ({d.one_gpu_peak / e.train_peak:.1f}x this GPU's)" if e.train_peak else ""
    lines.append(f"  {'whole model on one GPU':<30} {fmt_bytes(d.one_gpu_peak):>11}   training peak at the same "
                 f"batch{ratio}")
    lines.append("")
    return lines
