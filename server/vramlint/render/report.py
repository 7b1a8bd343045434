"""`vramlint report`: one model's per-layer table, as `torchinfo.summary` prints it, plus what
the memory model adds: the bytes each layer keeps for backward and its share of the peak, the
totals, the setup with where each value came from, and whether it fits the GPU.

Rendered with rich: a boxed table on a terminal (colours unless NO_COLOR is set), plain columns
when the output is a file or a pipe.
"""

from __future__ import annotations

import io
import sys

from rich import box
from rich.console import Console
from rich.table import Table

from vramlint.analysis.results import ModelResult, ModuleNode
from vramlint.render.units import fmt_bytes


def report(path: str, m: ModelResult, width: int | None = None) -> str:
    terminal = sys.stdout.isatty()
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=terminal, width=width or (None if terminal else 140),
                      no_color=not terminal or None, highlight=False, soft_wrap=False)
    where = f"{path}:{m.location.line}" if m.location else path
    e = m.memory
    console.print(f"{m.name} ({m.kind}, {where}): {m.params.total:,} parameters" if m.params.total is not None
                  else f"{m.name} ({m.kind}, {where}): parameters unknown")
    if m.setup is not None:
        for key, label in (("batch_size", "batch size"), ("inputs", "inputs"), ("precision", "precision"),
                           ("optimizer", "optimizer"), ("device", "GPU"), ("mode", "mode"),
                           ("checkpointing", "checkpointing")):
            value = m.setup[key]
            if key == "inputs":
                if not value:
                    continue
                value = ", ".join(f"{list(s.shape)} {s.dtype}" for s in value)
            console.print(f"  {label:14} {value}  [dim]({m.setup.source(key)})[/dim]")
    if m.tree is not None:
        console.print(_table(m, terminal))
    if e is None:
        for u in m.memory_unknowns:
            console.print(f"no memory estimate: {u.reason}")
        return buf.getvalue().rstrip()
    totals = Table(box=box.SIMPLE if terminal else None, show_header=False, pad_edge=False)
    totals.add_column("what")
    totals.add_column("bytes", justify="right")
    for label, value in (("weights", e.weights), ("gradients", e.gradients), ("optimizer state", e.optimizer_state),
                         ("optimizer step temporaries", e.optimizer_temp), ("kept for backward", e.activations),
                         ("batch", e.inputs), ("cuBLAS workspaces", e.workspace)):
        totals.add_row(label, fmt_bytes(value))
    totals.add_row("training peak", fmt_bytes(e.train_peak))
    totals.add_row("inference peak", fmt_bytes(e.inference_peak))
    totals.add_row("device total", fmt_bytes(e.device_total))
    console.print(totals)
    console.print(f"training peak: {e.train_peak_phase}")
    infer = m.setup is not None and m.setup["mode"] == "infer"
    need = e.inference_need if infer else e.device_total
    ok = need <= e.device_memory
    verdict = ("inference " if infer else "") + ("fits" if ok else "does NOT fit")
    style = "green" if ok else "bold red"
    console.print(f"[{style}]{verdict}[/{style}] on the {e.device} ({fmt_bytes(e.device_memory)}): "
                  f"needs {fmt_bytes(need)} with the CUDA context")
    if e.max_batch is not None:
        console.print(f"largest batch that fits: {e.max_batch}")
    for note in e.notes:
        console.print(f"note: {note}")
    return buf.getvalue().rstrip()


def _table(m: ModelResult, terminal: bool) -> Table:
    e = m.memory
    peak = e.train_peak if e is not None else 0
    t = Table(box=box.SIMPLE_HEAD if terminal else box.ASCII2, pad_edge=False, show_edge=terminal)
    t.add_column("layer")
    t.add_column("type")
    t.add_column("output shape")
    t.add_column("parameters", justify="right")
    t.add_column("kept for backward", justify="right")
    t.add_column("of peak", justify="right")
    assert m.tree is not None
    for depth, node in _rows(m.tree):
        shape = "[" + ", ".join("?" if d is None else str(d) for d in node.output_shape) + "]" \
            if node.output_shape is not None else ""
        saved = node.saved_bytes
        t.add_row(("  " * depth) + (node.path.rsplit(".", 1)[-1] if node.path else m.name), node.class_name, shape,
                  f"{node.param_count:,}" if node.param_count is not None else "?",
                  fmt_bytes(saved) if saved else "", f"{saved / peak:.1%}" if saved and peak else "")
    return t


def _rows(node: ModuleNode, depth: int = 0) -> list[tuple[int, ModuleNode]]:
    out = [(depth, node)]
    for c in node.children:
        out.extend(_rows(c, depth + 1))
    return out
