"""`vramlint diff`'s output: text, the JSON document ("vramlint-diff/1", docs/ci.md) and
GitHub-flavoured Markdown (the pull-request comment and job summary)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vramlint.analysis.diff import (
    ADDED,
    CHANGED,
    FIGURE_LABELS,
    FIGURES,
    REMOVED,
    UNCHANGED,
    Comparison,
    Figures,
    LayerChange,
    ModelDiff,
    grouped,
)
from vramlint.render import markdown as md
from vramlint.render.units import fmt_bytes

SCHEMA = "vramlint-diff/1"
BYTES = {"train_peak", "inference_peak"}
# The hidden line that marks vramlint's pull-request comment, so that it is updated in place.
MARKER = "<!-- vramlint-diff -->"


def value(figure: str, v: int | None) -> str:
    if v is None:
        return "unknown" if figure != "max_batch" else "not computed"
    return fmt_bytes(v) if figure in BYTES else f"{v:,}"


def delta(m: ModelDiff, figure: str) -> str:
    """`+1.20 MiB, +12.5%`; "" when unknown or unchanged."""
    d = m.change(figure)
    if not d:
        return ""
    shown = ("+" if d > 0 else "-") + (fmt_bytes(abs(d)) if figure in BYTES else f"{abs(d):,}")
    p = m.percent(figure)
    return f"{shown}, {p:+.1f}%" if p is not None else shown


def _fits(f: Figures | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[f.fits if f else None]


def _summary_counts(c: Comparison) -> str:
    by = {s: sum(1 for m in c.models if m.status == s) for s in (CHANGED, ADDED, REMOVED, UNCHANGED)}
    return f"{len(c.models)} model{'s' if len(c.models) != 1 else ''} compared: " + \
        ", ".join(f"{n} {s}" for s, n in by.items())


def _nothing(c: Comparison) -> str:
    if not c.files:
        return "no Python file under the paths changed since the base, nor imports one that did"
    return f"no models in the {len(c.files)} file{'s' if len(c.files) != 1 else ''} compared"


def verdict(c: Comparison) -> list[str]:
    """What `--fail-on-increase` found, one sentence per model over it (none when it passed)."""
    out = [f"{m.name} ({m.path}): the {FIGURE_LABELS[name]} grew by {p:.1f}%, more than {c.fail_on_increase:g}%"
           for m, name, p in c.increases()]
    if c.failed() and not out:
        out.append("a file of the working tree could not be analysed")
    return out


def _title(c: Comparison, quote: Callable[[str], str] = str) -> str:
    against = f"the merge base of HEAD and {quote(c.base)}" if c.merge_base else quote(c.base)
    if c.base_commit.startswith(c.base):  # named by its hash: once is enough
        return f"the working tree against {quote(c.base_commit[:12])}"
    return f"the working tree against {against} ({quote(c.base_commit[:12])})"


# ---------------------------------------------------------------------- text
def layer_text(ch: LayerChange, times: int = 1) -> str:
    """`~ body.0 (Linear): 8,320 -> 16,640 parameters`; repeated layers once, "12 x Linear ... each"."""
    name, many, each = ch.path or "(the model)", f"{times} x " if times > 1 else "", " each" if times > 1 else ""
    if ch.kind == ADDED:
        return f"+ {name} ({many}{ch.type_after}, {value('params', ch.after)} parameters{each})"
    if ch.kind == REMOVED:
        return f"- {name} ({many}{ch.type_before}, {value('params', ch.before)} parameters{each})"
    kind = ch.type_after if ch.type_before == ch.type_after else f"{ch.type_before} -> {ch.type_after}"
    return f"~ {name} ({many}{kind}): {value('params', ch.before)} -> {value('params', ch.after)} parameters{each}"


def model_text(m: ModelDiff) -> list[str]:
    side = m.after or m.before
    line = f":{side.line}" if side is not None and side.line is not None else ""
    renamed = f", renamed from {m.renamed_from}" if m.renamed_from else ""
    out = [f"{m.path}{line}: {m.name} ({m.status}{renamed})"]
    for f in FIGURES:
        b = m.before.get(f) if m.before else None
        a = m.after.get(f) if m.after else None
        if m.status == ADDED:
            shown = value(f, a)
        elif m.status == REMOVED:
            shown = value(f, b)
        else:
            d = delta(m, f)
            shown = f"{value(f, b)} -> {value(f, a)}" + (f" ({d})" if d else "")
        if a is not None or b is not None:
            out.append(f"    {FIGURE_LABELS[f]:<15} {shown}")
    if m.status == CHANGED and m.before and m.after and m.before.fits != m.after.fits:
        out.append(f"    fits the {m.after.device or 'GPU'}: {_fits(m.before)} -> {_fits(m.after)}")
    if m.layers:
        out.append("    layers:")
        out += [f"      {layer_text(ch, n)}" for ch, n in grouped(m.layers)]
    return out


def text(c: Comparison) -> str:
    out = [f"vramlint diff: {_title(c)}"]
    for m in c.changed():
        out += model_text(m)
    for p in c.problems:
        out.append(f"{p.path}: error ({p.side}): {p.message}")
    out.append(_summary_counts(c) if c.models else _nothing(c))
    out += [f"fail-on-increase: {line}" for line in verdict(c)]
    return "\n".join(out)


# ---------------------------------------------------------------------- JSON
def _figures_json(f: Figures | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"line": f.line, **{name: f.get(name) for name in FIGURES}, "fits": f.fits, "device": f.device,
            "mode": "infer" if f.infer else "train"}


def document(c: Comparison) -> dict[str, Any]:
    from vramlint import __version__

    return {
        "schema": SCHEMA, "version": __version__,
        "base": {"revision": c.base, "commit": c.base_commit, "merge_base": c.merge_base},
        "files": c.files,
        "models": [{
            "path": m.path, "name": m.name, "status": m.status, "renamed_from": m.renamed_from,
            "before": _figures_json(m.before), "after": _figures_json(m.after),
            "change": {f: m.change(f) for f in FIGURES}, "percent": {f: m.percent(f) for f in FIGURES},
            "layers": [{"path": ch.path, "change": ch.kind, "type_before": ch.type_before,
                        "type_after": ch.type_after, "params_before": ch.before, "params_after": ch.after}
                       for ch in m.layers],
        } for m in c.models],
        "problems": [{"side": p.side, "path": p.path, "message": p.message} for p in c.problems],
        "fail_on_increase": c.fail_on_increase,
        "failed": c.failed(),
    }


# ---------------------------------------------------------------------- Markdown
def _cell(m: ModelDiff, figure: str) -> str:
    b = m.before.get(figure) if m.before else None
    a = m.after.get(figure) if m.after else None
    if m.status == ADDED:
        return value(figure, a) if a is not None or figure != "max_batch" else ""
    if m.status == REMOVED:
        return value(figure, b) if b is not None or figure != "max_batch" else ""
    if figure == "max_batch" and a is None and b is None:
        return ""
    d = delta(m, figure)
    if not d and a == b:
        return value(figure, a)
    return f"{value(figure, b)} → {value(figure, a)}" + (f" ({d})" if d else "")


def _fits_cell(m: ModelDiff) -> str:
    b, a = (md.MARKS[f.fits] if f else None for f in (m.before, m.after))
    if m.status == ADDED:
        return a or ""
    if m.status == REMOVED:
        return b or ""
    return a or "" if a == b else f"{b} → {a}"


def _layer_row(ch: LayerChange, times: int) -> list[str]:
    kind = ch.type_after if ch.type_before == ch.type_after else \
        " → ".join(md.escape(t) for t in (ch.type_before, ch.type_after) if t)
    before = value("params", ch.before) if ch.kind != ADDED else ""
    after = value("params", ch.after) if ch.kind != REMOVED else ""
    name = md.code(ch.path) if ch.path else "(the model)"
    return [name + (f" (×{times}, each)" if times > 1 else ""), ch.kind, md.escape(kind or ""), before, after]


def markdown(c: Comparison) -> str:
    """The comment: the marker (hidden), a title, one row per model that changed, the layers."""
    out = [MARKER, f"### vramlint: {_title(c, md.code)}", ""]
    changed = c.changed()
    if changed:
        rows = []
        for m in changed:
            side = m.after or m.before
            status = f"{m.status}, renamed from {md.code(m.renamed_from)}" if m.renamed_from else m.status
            rows.append([md.where(m.path, side.line if side else None), md.escape(m.name), status,
                         *(_cell(m, f) for f in FIGURES), _fits_cell(m)])
        headers = ("Location", "Model", "Change", "Parameters", "Training peak", "Inference peak",
                   "Largest batch", "Fits")
        out += [*md.table(headers, rows), ""]
    else:
        out += ["No model changed.", ""]
    for m in changed:
        if m.layers:
            out += [f"<details><summary>Layers of {md.escape(m.name)} ({md.escape(m.path)}) that changed</summary>",
                    "", *md.table(("Layer", "Change", "Type", "Before", "After"), [_layer_row(ch, n) for ch, n in grouped(m.layers)],
                                  right=(3, 4)), "", "</details>", ""]
    for p in c.problems:
        out.append(f"- **error** ({p.side}) {md.code(p.path)}: {md.escape(p.message)}")
    out.append(_summary_counts(c) + "." if c.models else _nothing(c).capitalize() + ".")
    failures = verdict(c)
    if failures:
        out += ["", f"**Over the limit** (`--fail-on-increase {c.fail_on_increase:g}`):", "",
                *(f"- {md.escape(line)}" for line in failures)]
    return "\n".join(out).rstrip() + "\n"
