"""`vramlint report`: one model's per-layer table, as `torchinfo.summary` prints it, plus what
the memory model adds: the bytes each layer keeps for backward and its share of the peak, the
totals, the setup with where each value came from, and whether it fits the GPU.

Rendered with rich: a boxed table on a terminal (colours unless NO_COLOR is set), plain columns
when the output is a file or a pipe.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from vramlint.analysis.results import ModelResult, ModuleNode
from vramlint.render.distributed import per_gpu, plan_details, plan_of, summary_line
from vramlint.render.setup import setup_rows
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
        plan = plan_of(e)
        for row, text, source in [*setup_rows(m.setup, plan), *(plan_details(plan) if plan else [])]:
            console.print(f"  {row:14} not given" if text is None else f"  {row:14} {text}  [dim]({source})[/dim]")
    if m.tree is not None:
        console.print(_table(m, terminal))
    if e is None:
        for u in m.memory_unknowns:
            console.print(f"no memory estimate: {u.reason}")
        return _without_trailing_spaces(buf.getvalue())
    if e.distributed is not None:  # every figure below is one GPU's
        console.print(f"memory {per_gpu(e)}:")
    totals = Table(box=box.SIMPLE if terminal else None, show_header=False, pad_edge=False)
    totals.add_column("what")
    totals.add_column("bytes", justify="right")
    for label, value in (("weights", e.weights), ("gradients", e.gradients), ("optimizer state", e.optimizer_state),
                         ("optimizer step temporaries", e.optimizer_temp), ("kept for backward", e.activations),
                         ("batch", e.inputs), ("cuBLAS workspaces", e.workspace)):
        totals.add_row(label, fmt_bytes(value))
    totals.add_row("training peak", fmt_bytes(e.train_peak))
    totals.add_row("inference peak", fmt_bytes(e.inference_peak))
    if e.generation is not None:
        totals.add_row("KV cache", fmt_bytes(e.generation.kv_cache))
        totals.add_row("generation peak", fmt_bytes(e.generation.peak))
    totals.add_row("device total", fmt_bytes(e.device_total))
    console.print(totals)
    if e.distributed is not None:
        console.print(summary_line(e.distributed))
    console.print(f"training peak: {e.train_peak_phase}")
    infer = m.setup is not None and m.setup["mode"] == "infer"
    need = e.inference_need if infer else e.device_total
    ok = need <= e.device_memory
    verdict = (("generation " if e.generation else "inference ") if infer else "") + ("fits" if ok else "does NOT fit")
    style = "green" if ok else "bold red"
    console.print(f"[{style}]{verdict}[/{style}] on the {e.device} ({fmt_bytes(e.device_memory)}): "
                  f"needs {fmt_bytes(need)}{' per GPU' if e.distributed else ''} with the CUDA context")
    if e.max_batch is not None:
        console.print(f"largest batch that fits: {e.max_batch}{' per GPU' if e.distributed else ''}")
    for note in e.notes:
        console.print(f"note: {note}")
    return _without_trailing_spaces(buf.getvalue())


# Spaces at the end of a line, before any closing colour codes (rich pads the last column).
_TRAILING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


def _without_trailing_spaces(text: str) -> str:
    return _TRAILING.sub(r"\1", text.rstrip())


@dataclass(frozen=True)
class Row:
    """One row of the per-layer table. `saved`: bytes kept for backward; a row with rows beneath it
    (one level deeper) is their sum, so the column adds up to the model's row at every level."""

    depth: int
    name: str
    type: str
    shapes: str
    params: str
    saved: int


# The row of a module's own ops (its forward's F.relu, torch.cat...), beside its children's rows.
OWN_OPS = "(own ops)"
MAX_SHAPE_RUNS = 3  # distinct output shapes listed for a module called several times
MAX_OP_NAMES = 4  # op names in an own-ops row


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
    for row in table_rows(m.tree, m.name):
        t.add_row(("  " * row.depth) + row.name, row.type, row.shapes, row.params,
                  fmt_bytes(row.saved) if row.saved else "", f"{row.saved / peak:.1%}" if row.saved and peak else "")
    return t


def table_rows(node: ModuleNode, name: str, depth: int = 0) -> list[Row]:
    """The module tree as rows: each module, then its children, then (for a module with children
    whose own ops keep something) a row for its own ops."""
    out = [Row(depth, node.path.rsplit(".", 1)[-1] if node.path else name, node.class_name, shapes_text(node),
               f"{node.param_count:,}" if node.param_count is not None else "?", node.saved_bytes or 0)]
    for c in node.children:
        out.extend(table_rows(c, name, depth + 1))
    if node.children and node.own_saved_bytes:
        ops = ", ".join(node.own_ops[:MAX_OP_NAMES]) + (", ..." if len(node.own_ops) > MAX_OP_NAMES else "")
        out.append(Row(depth + 1, OWN_OPS, ops, "", "", node.own_saved_bytes))
    return out


def shapes_text(node: ModuleNode) -> str:
    """The output shape of each call, equal shapes in a row counted: `[8, 64]`, `[8, 64] x2`,
    `[8, 64]; [8, 4, 64]`; past the first calls or runs, `...` and the number of calls."""
    shapes = node.output_shapes or ([node.output_shape] if node.output_shape is not None else [])
    if not shapes or all(s is None for s in shapes):
        return ""
    runs: list[list[Any]] = []
    for s in shapes:
        if runs and runs[-1][0] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    calls = max(node.calls, len(shapes))
    parts = [_shape(s) + (f" x{n}" if n > 1 else "") for s, n in runs[:MAX_SHAPE_RUNS]]
    if len(runs) > MAX_SHAPE_RUNS or calls > len(shapes):  # only the first calls' outputs are recorded
        parts.append(f"... {calls} calls")
    return "; ".join(parts)


def _shape(shape: tuple[int | None, ...] | None) -> str:
    return "?" if shape is None else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
