"""Short texts the features share: a model's one-line summary, a layer's, a forward line's.

Each figure has the name the CLI gives it (`vramlint check`, `report`, `explain`): "training peak"
(what torch.cuda.max_memory_allocated() reports for a training step), "inference peak", "device total"
(the training peak with the allocator's fragmentation and the CUDA context: what the card must hold).
"""

from __future__ import annotations

from vramlint.analysis.results import ModelResult, ModuleNode
from vramlint.memory.estimate import LineTensor
from vramlint.render.distributed import per_gpu, plan_details, plan_of
from vramlint.render.setup import setup_rows
from vramlint.render.units import fmt_bytes, fmt_range


def count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def model_line(m: ModelResult) -> str:
    """`131.4K params · training peak 67.5 MiB · device total 900.0 MiB / 79.19 GiB · batch 256 · fp32 · adam`
    (the code lens); with `mode = "infer"`, the inference peak and what inference needs of the card."""
    parts = [f"{count(m.params.total)} params"]
    e = m.memory
    if e is not None:
        if e.distributed is not None:  # the figures after it are each GPU's
            parts.append(per_gpu(e))
        if _infer(m):
            fits = e.inference_need <= e.device_memory
            parts += [f"{'generation' if e.generation else 'inference'} peak {fmt_bytes(e.infer_peak)}",
                      f"inference needs {fmt_bytes(e.inference_need)} / {fmt_bytes(e.device_memory)}"]
        else:
            fits = e.fits
            parts += [f"training peak {fmt_bytes(e.train_peak)}",
                      f"device total {fmt_bytes(e.device_total)} / {fmt_bytes(e.device_memory)}"]
        parts[-1] += "" if fits else " (does NOT fit)"
        parts += [f"batch {e.batch_size}", e.precision, e.optimizer]
        if m.setup is not None and m.setup["checkpointing"]:
            parts.append("checkpointing")
    elif m.memory_unknowns:
        parts.append("memory: needs inputs")
    return " · ".join(parts)


def shape_text(shape: tuple[int | None, ...], batch: int | None) -> str:
    dims = ["?" if d is None else ("B" if i == 0 and d == batch else str(d)) for i, d in enumerate(shape)]
    return "[" + ", ".join(dims) + "]"


def line_tensor_hint(t: LineTensor, batch: int | None) -> str:
    return f"{shape_text(t.shape, batch)} · {fmt_bytes(t.bytes)}"


def layer_hint(node: ModuleNode) -> str:
    return f"{count(node.param_count)} params"


def _infer(m: ModelResult) -> bool:
    return m.setup is not None and m.setup["mode"] == "infer"


def model_markdown(m: ModelResult) -> str:
    e = m.memory
    lines = [f"**{m.name}** ({m.kind}): {m.params.total:,} parameters" if m.params.total is not None
             else f"**{m.name}** ({m.kind}): parameters unknown"]
    if m.origin:
        lines += ["", "Loaded:"] + [f"- {label}: {value}" for label, value in m.origin]
    if e is not None:
        need, what = (e.inference_need, "generation" if e.generation else "inference") if _infer(m) else \
            (e.device_total, "training")
        share = need / e.device_memory if e.device_memory else 0
        verdict = "fits" if need <= e.device_memory else "**does NOT fit**"
        d = e.distributed
        lines += [
            "",
            f"| {per_gpu(e)} | |" if d is not None else "| | |", "|---|---:|",
            f"| weights | {fmt_bytes(e.weights)} |", f"| gradients | {fmt_bytes(e.gradients)} |",
            f"| optimizer state | {fmt_bytes(e.optimizer_state)} |", f"| kept for backward | {fmt_bytes(e.activations)} |",
            f"| batch | {fmt_bytes(e.inputs)} |", f"| cuBLAS workspaces | {fmt_bytes(e.workspace)} |",
            f"| **training peak** | **{fmt_bytes(e.train_peak)}**{fmt_range(e.train_range)} |",
            f"| inference peak | {fmt_bytes(e.inference_peak)}{fmt_range(e.inference_range)} |",
            *([f"| KV cache | {fmt_bytes(e.generation.kv_cache)} |", f"| generation peak | {fmt_bytes(e.generation.peak)} |"]
              if e.generation else []),
            *([f"| communication buffers | {fmt_bytes(d.communication)} |"]
              + ([f"| offloaded to the host | {fmt_bytes(d.host)} |"] if d.host else []) if d is not None else []),
            f"| device total | {fmt_bytes(e.device_total)} |",
            *([f"| whole model on one GPU | {fmt_bytes(d.one_gpu_peak)} |"] if d is not None else []),
            "",
            f"{what} {verdict} in the {e.device} ({fmt_bytes(e.device_memory)}): needs {fmt_bytes(need)}"
            f"{' per GPU' if d is not None else ''} with the CUDA context ({share:.0%})",
        ]
    if m.setup is not None:
        lines += ["", "Setup:"]
        plan = plan_of(e)
        lines += [f"- {label}: `{value}` ({source})" if value is not None else f"- {label}: not given"
                  for label, value, source in setup_rows(m.setup, plan)]
        lines += [f"- {what}: `{value}` ({source})" for what, value, source in (plan_details(plan) if plan else [])]
    for u in m.memory_unknowns[:1]:
        lines += ["", f"No memory estimate: {u.reason}"]
    return "\n".join(lines)


def layer_markdown(node: ModuleNode, batch: int | None) -> str:
    lines = [f"**{node.path or '(model)'}**: `{node.class_name}`, {node.param_count or 0:,} parameters"]
    if node.output_shape is not None:
        lines.append(f"- output: `{shape_text(node.output_shape, batch)}`")
    if node.saved_bytes:
        lines.append(f"- kept for backward: {fmt_bytes(node.saved_bytes)}")
    return "\n".join(lines)
