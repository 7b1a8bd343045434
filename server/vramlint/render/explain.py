"""`vramlint explain`: the estimate walked through for a person.

It starts from the count people make by hand (every layer's output plus a gradient for each,
times the batch) and adds, one line per cause, what a real training step allocates besides:
weights, their gradients, the optimizer's state and step temporaries, the tensors autograd keeps
that the count misses (activations' inputs, masks, statistics, log-probabilities), the batch
itself, cuBLAS workspaces and the allocator's rounding. The ratio at the end is the "3x / 4.5x"
people observe, with its causes in numbers.
"""

from __future__ import annotations

from vramlint.analysis.results import ModelResult
from vramlint.memory.optimizers import OPTIMIZERS
from vramlint.render.units import fmt_bytes

DTYPE_BYTES = {"fp32": 4, "amp-bf16": 4, "amp-fp16": 4, "bf16": 2, "fp16": 2}


def explain(path: str, m: ModelResult) -> str:
    e = m.memory
    if e is None:
        reasons = "; ".join(u.reason for u in (m.memory_unknowns + m.forward_unknowns)[:3]) or "unknown"
        return f"{path}: {m.name}: no memory estimate: {reasons}"
    where = f"{path}:{m.location.line}" if m.location else path
    params = m.params.total or 0
    width = DTYPE_BYTES.get(e.precision, 4)
    lines = [f"{m.name} ({where}): {params:,} parameters; batch {e.batch_size}, {e.precision}, {e.optimizer}, "
             f"{e.device}; inputs from {m.inputs_from}", ""]
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
    rows = [
        ("weights", e.weights, f"{params:,} parameters"),
        ("gradients", e.gradients, "one per trainable weight, kept until the next zero_grad"),
        ("optimizer state", e.optimizer_state, OPTIMIZERS[e.optimizer].description),
        ("optimizer.step() temporaries", e.optimizer_temp, "foreach implementation, all parameters at once"),
        ("kept for backward", e.activations, "layer inputs, activation outputs, masks, statistics, log-probabilities"),
        ("the batch on the GPU", e.inputs, "inputs and targets"),
        ("cuBLAS workspaces", e.workspace, "forward handle + autograd's backward thread"),
    ]
    lines.append("What one training step allocates (steady state, as torch.cuda.max_memory_allocated() reports):")
    for label, value, note in rows:
        lines.append(f"  {label:<30} {fmt_bytes(value):>11}   {note}")
    transient = e.train_peak - sum(v for _, v, _ in rows if _ != "optimizer.step() temporaries")
    lines.append(f"  {'+ transient at the peak':<30} {fmt_bytes(max(transient, 0)):>11}   "
                 f"gradients in flight, outputs being computed ({e.train_peak_phase})")
    lines.append(f"  {'= training peak':<30} {fmt_bytes(e.train_peak):>11}")
    lines.append(f"  {'inference peak':<30} {fmt_bytes(e.inference_peak):>11}   no_grad forward, eval mode")
    lines.append(f"  {'device total':<30} {fmt_bytes(e.device_total):>11}   peak + CUDA context and libraries "
                 f"({'fits' if e.fits else 'does NOT fit'} in {fmt_bytes(e.device_memory)})")
    lines.append("")
    if textbook_bytes:
        lines.append(f"The training peak is {e.train_peak / textbook_bytes:.1f}x the hand count; without the fixed "
                     f"cuBLAS workspaces {(e.train_peak - e.workspace) / textbook_bytes:.1f}x.")
    for note in e.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
