"""Plain-text summary of `vramlint check` (one block per model, locations as path:line:col)."""

from __future__ import annotations

import os
import re

from vramlint.analysis.results import FileAnalysis, Finding, ModelResult, UnknownInfo
from vramlint.memory.estimate import MemoryEstimate
from vramlint.render.colour import PLAIN, Palette
from vramlint.render.distributed import per_gpu, plan_of, summary_line
from vramlint.render.setup import setup_rows
from vramlint.render.units import fmt_bytes, fmt_range


def _loc(u: UnknownInfo, path: str) -> str:
    """`path:line:col` of `u`, the analysed file's path as given (like findings); `path` when unlocated."""
    loc = u.location
    if loc is None:
        return path
    if os.path.abspath(loc.path) == os.path.abspath(path):
        return f"{path}:{loc.line}:{loc.column + 1}"
    return str(loc)


def _count(n: int | None) -> str:
    return f"{n:,}" if n is not None else "unknown"


def model_text(path: str, m: ModelResult, palette: Palette = PLAIN) -> list[str]:
    where = palette.path(f"{path}:{m.location.line}:{m.location.column + 1}" if m.location else path)
    lines: list[str] = []
    if m.used_in:
        needs = sorted({a for u in m.unknowns for a in re.findall(r"required argument `(\w+)`", u.reason)})
        alone = f"needs {', '.join(f'`{a}`' for a in needs)}" if needs else "unknown"
        return [f"{where}: {m.name} (class): used in {', '.join(m.used_in)} (on its own: {alone})"]
    if m.error is not None:
        lines.append(f"{where}: {m.name} ({m.kind}): could not be built: {m.error.reason}")
        if m.error.location:
            lines.append(f"    at {m.error.location}")
    else:
        p = m.params
        frozen = "" if p.total is None or p.trainable == p.total else f", {_count(p.trainable)} trainable"
        output = f"; output {_shape(m.output_shape)}" if m.output_shape is not None else ""
        lines.append(f"{where}: {m.name} ({m.kind}): {_count(p.total)} parameters{frozen}{output}")
        if p.total is None:
            lines.append(f"    {p.known:,} parameters are known; the rest depend on:")
    for u in m.unknowns[:10]:
        lines.append(f"    {_loc(u, path)}: {u.reason}")
    if len(m.unknowns) > 10:
        lines.append(f"    ... and {len(m.unknowns) - 10} more")
    lines.extend(memory_lines(m))
    if m.forward_unknowns:
        lines.append("    forward:")
        for u in m.forward_unknowns[:5]:
            lines.append(f"      {_loc(u, path)}: {u.reason}")
        if len(m.forward_unknowns) > 5:
            lines.append(f"      ... and {len(m.forward_unknowns) - 5} more")
    return lines


def memory_lines(m: ModelResult) -> list[str]:
    """The memory estimate: the training peak first (the number that decides whether it fits)."""
    e = m.memory
    if e is None:
        # No inputs (a class never called in the file): JSON says so; text stays one line per model.
        if m.inputs_from is None:
            return []
        why = (m.memory_unknowns or m.forward_unknowns)[:1]
        reason = why[0].reason.removeprefix("no estimate: ") if why else "the forward could not be traced"
        return [f"    memory: no estimate: {reason}"]
    infer = m.setup is not None and m.setup["mode"] == "infer"
    need, label = (e.inference_need, "generation" if e.generation else "inference") if infer else \
        (e.device_total, "training")
    fits = f"{label} fits in the {e.device} ({fmt_bytes(e.device_memory)})" if need <= e.device_memory else \
        f"{label} does NOT fit in the {e.device} ({fmt_bytes(e.device_memory)})"
    several = f"{per_gpu(e)}; " if e.distributed is not None else ""  # every figure below is one GPU's
    per = " per GPU" if e.distributed is not None else ""
    largest = [f"      largest batch that fits: {e.max_batch}{per}"] if e.max_batch is not None else []
    checkpointing = ", checkpointing" if m.setup is not None and m.setup["checkpointing"] else ""
    return [
        f"    memory ({several}batch {e.batch_size}{per}, {e.precision}, {e.optimizer}{checkpointing}, {e.device}; "
        f"inputs from {m.inputs_from}):",
        f"      training peak {fmt_bytes(e.train_peak)}{fmt_range(e.train_range)} ({e.train_peak_phase}); "
        f"inference peak {fmt_bytes(e.inference_peak)}{fmt_range(e.inference_range)}; "
        f"{f'{label} needs' if infer else 'device total'} {fmt_bytes(need)}: {fits}",
        f"      weights {fmt_bytes(e.weights)}, gradients {fmt_bytes(e.gradients)}, optimizer state "
        f"{fmt_bytes(e.optimizer_state)}, kept for backward {fmt_bytes(e.activations)}, batch {fmt_bytes(e.inputs)}, "
        f"cuBLAS workspaces {fmt_bytes(e.workspace)}",
        *([f"      {summary_line(e.distributed)}"] if e.distributed is not None else []),
        *largest,
        *generation_lines(e),
        *setup_lines(m),
    ]


def setup_lines(m: ModelResult) -> list[str]:
    """Where each setting of the estimate came from (the inputs' source is in the header): what
    the code, the configuration or a flag gave, one per line; the defaults on one line."""
    if m.setup is None:
        return []
    given, defaults = [], []
    for label, value, source in setup_rows(m.setup, plan_of(m.memory)):
        if label == "inputs":
            continue
        if source == "default":
            defaults.append(f"{label} {_plain(value)}")
        else:
            given.append(f"{label} {_plain(value)} from {source}")
    lines = [f"      {'setup: ' if i == 0 else '       '}{g}" for i, g in enumerate(given)]
    if defaults:
        lines.append(f"      {'setup: ' if not given else '       '}defaults: {', '.join(defaults)}")
    return lines


def generation_lines(e: MemoryEstimate) -> list[str]:
    """A generation call's KV cache and peak (memory/generation.py)."""
    g = e.generation
    if g is None:
        return []
    transient = f", concatenation {fmt_bytes(g.concat_transient)}" if g.cache == "dynamic" else ""
    return [f"      generation ({g.where.removeprefix('code: ')}): peak {fmt_bytes(g.peak)}; KV cache "
            f"{fmt_bytes(g.kv_cache)} ({g.cache}, {g.sequences} sequences x {g.cached_tokens} tokens){transient}, "
            f"last logits {fmt_bytes(g.logits)}"]


def _shape(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def finding_text(path: str, f: Finding, palette: Palette = PLAIN) -> str:
    """Like a compiler or ruff: `path:line:col: severity CODE [name] message`, the path as given."""
    loc = f.location
    if loc is None:
        where = path
    else:
        shown = path if os.path.abspath(loc.path) == os.path.abspath(path) else loc.path
        where = f"{shown}:{loc.line}:{loc.column + 1}"
    return f"{palette.path(where)}: {palette.severity(f.severity, f.severity)} {palette.code(f.code)} " \
        f"{palette.dim(f'[{f.name}]')} {f.message}"


def no_models_text(files: list[FileAnalysis], limit: int = 10) -> list[str]:
    """"no models found", and what the files' module level could not evaluate (a model built
    from an import that failed or an unknown call would otherwise vanish without a word)."""
    lines: list[str] = []
    for f in files:
        lines.extend(f"    {_loc(u, f.path)}: {u.reason}" for u in f.unevaluated[:limit])
        if len(f.unevaluated) > limit:
            lines.append(f"    ... and {len(f.unevaluated) - limit} more in {f.path}")
    return ["no models found; not evaluated:", *lines] if lines else ["no models found"]


def error_lines(f: FileAnalysis, palette: Palette = PLAIN) -> list[str]:
    """A file's analysis errors and warnings (undecodable bytes, a statement that stopped)."""
    return [*(f"{palette.path(_loc(e, f.path))}: {palette.severity('error', 'error')}: {e.reason}" for e in f.errors),
            *(f"{palette.path(_loc(w, f.path))}: {palette.severity('warning', 'warning')}: {w.reason}"
              for w in f.warnings)]


def file_lines(f: FileAnalysis, palette: Palette = PLAIN, quiet: bool = False) -> list[str]:
    """One file's part of the output: its errors, warnings, models and findings (`quiet`: no models)."""
    out = error_lines(f, palette)
    for m in () if quiet else f.models:
        out.extend(model_text(f.path, m, palette))
    out.extend(finding_text(f.path, x, palette) for x in f.findings)
    return out


def severity_counts(files: list[FileAnalysis], palette: Palette = PLAIN) -> str:
    """`1 error, 2 warnings`: the files' findings and analysis errors by severity; "" for none."""
    counts = {s: sum(1 for f in files for x in f.findings if x.severity == s) for s in ("error", "warning", "info")}
    counts["error"] += sum(len(f.errors) for f in files)
    return ", ".join(palette.severity(f"{n} {s}{'s' if n != 1 else ''}", s) for s, n in counts.items() if n)


def summary_lines(files: list[FileAnalysis], palette: Palette = PLAIN) -> list[str]:
    """After every file: "no models found", or the count of problems by severity."""
    out: list[str] = []
    if not any(f.models for f in files) and not any(f.errors for f in files):
        out.extend(no_models_text(files))
    counts = severity_counts(files, palette)
    return [*out, counts] if counts else out


def render(files: list[FileAnalysis]) -> str:
    return "\n".join([line for f in files for line in file_lines(f)] + summary_lines(files))


def _plain(value: str | None) -> str:
    return {None: "not given", "False": "off", "True": "on"}.get(value, value or "")
