"""`vramlint report --html`: one model's report as ONE self-contained HTML document.

The memory timeline of the training step and of the inference pass (memory/series.py) as stacked
areas drawn here as inline SVG, the per-layer table of `vramlint report` (sortable), the totals and
the setup with where each value came from. Nothing is fetched: no URL, no font, no chart library;
all CSS is in one `<style>` element and all script in one `<script>` element, without inline
event handlers or style attributes, so that an editor's webview can allow exactly those two with
a content-security-policy nonce (`nonce=` is added by whoever shows it).

Every string that comes from the analysed code (model, module and op names, shapes, notes) is
untrusted and goes through `_e` (HTML escaping, quotes included).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from vramlint.analysis.results import ModelResult
from vramlint.memory.estimate import MemoryEstimate
from vramlint.memory.series import CATEGORIES, LABELS, Sample, Series, Timeline
from vramlint.render.distributed import per_gpu, plan_details, plan_of
from vramlint.render.report import table_rows
from vramlint.render.setup import setup_rows
from vramlint.render.units import fmt_bytes, fmt_range

WIDTH, HEIGHT = 960, 380  # the chart's viewBox
LEFT, RIGHT, TOP, BOTTOM = 78, 16, 34, 44  # its margins (axis labels, phase names)
MAX_COLUMNS = 1200  # samples drawn at most: larger runs keep each column's highest sample
PHASE_NAMES = {"start": "", "forward": "forward", "loss": "loss", "backward": "backward",
               "optimizer step": "step"}
MAX_DEPTH_CLASS = 16  # indentation classes of the layer table
NUM_CLASS = ' class="num"'


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def html_report(path: str, m: ModelResult, timeline: Timeline | None) -> str:
    """The whole document. `timeline`: the estimate's (memory/series.py `timeline_of`), None
    without an estimate."""
    e = m.memory
    where = f"{path}:{m.location.line}" if m.location else path
    params = f"{m.params.total:,} parameters" if m.params.total is not None else "parameters unknown"
    body = [f"<header><h1>{_e(m.name)}</h1><p class=\"sub\">{_e(m.kind)} at <code>{_e(where)}</code>: "
            f"{_e(params)}</p></header>"]
    if e is not None:
        body.append(_verdict(m, e))
    if timeline is not None:
        gpu = f" {per_gpu(e)}" if e is not None and e.distributed is not None else ""
        body.append(_section("Training step" + gpu, _chart(timeline.training, timeline, "training")))
        body.append(_section("Inference pass" + gpu, _chart(timeline.inference, timeline, "inference")))
        body.append(_legend(timeline))
    elif e is None:
        body.append(_section("No memory estimate", "<ul>" + "".join(f"<li>{_e(u.reason)}</li>"
                                                                   for u in m.memory_unknowns) + "</ul>"))
    if e is not None:
        body.append(_section("Totals", _totals(e)))
    if m.setup is not None:
        body.append(_section("Setup", _setup(m)))
    if m.tree is not None:
        body.append(_section("Layers", _layers(m)))
    if e is not None and e.notes:
        body.append(_section("Notes", "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in e.notes) + "</ul>"))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>vramlint report: {_e(m.name)}</title><style>{_css()}</style></head>"
            f"<body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n")


def message_html(title: str, message: str) -> str:
    """A page that only says `message` (no report to show)."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{_css()}</style></head><body><p class=\"message\">{_e(message)}</p></body></html>\n")


def _section(title: str, inner: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{inner}</section>"


def _verdict(m: ModelResult, e: MemoryEstimate) -> str:
    infer = m.setup is not None and m.setup["mode"] == "infer"
    need = e.inference_need if infer else e.device_total
    ok = need <= e.device_memory
    what = (("generation " if e.generation else "inference ") if infer else "") + ("fits" if ok else "does NOT fit")
    gpu = " per GPU" if e.distributed else ""
    return (f"<p class=\"verdict {'ok' if ok else 'bad'}\"><strong>{_e(what)}</strong> on the {_e(e.device)} "
            f"({_e(fmt_bytes(e.device_memory))}): needs {_e(fmt_bytes(need))}{gpu} with the CUDA context. "
            f"Training peak {_e(fmt_bytes(e.train_peak))}{_e(fmt_range(e.train_range))} ({_e(e.train_peak_phase)}), "
            f"inference peak {_e(fmt_bytes(e.inference_peak))}{_e(fmt_range(e.inference_range))}.</p>")


# ---------------------------------------------------------------------------------------------- chart


@dataclass(frozen=True)
class _Scale:
    n: int  # samples on the x axis
    top: int  # bytes at the top of the plot

    def x(self, i: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (i / max(self.n - 1, 1))

    def y(self, b: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - b / self.top)


def columns(samples: Sequence[Sample], peak: int, limit: int = MAX_COLUMNS) -> list[int]:
    """The indices of the samples drawn: all of them up to `limit`, else each column's highest
    (and the peak's, always), so the shape and the maximum survive."""
    if len(samples) <= limit:
        return list(range(len(samples)))
    per = len(samples) / limit
    out = []
    for c in range(limit):
        lo, hi = int(c * per), max(int((c + 1) * per), int(c * per) + 1)
        best = peak if lo <= peak < hi else max(range(lo, min(hi, len(samples))), key=lambda i: samples[i].total)
        out.append(best)
    return out


def _chart(series: Series, tl: Timeline, name: str) -> str:
    samples = series.samples
    shown = columns(samples, series.peak)
    peak = series.peak_bytes
    reserved = series.max_reserved or 0
    highest = max(peak, reserved, 1)
    budget_on = tl.budget <= highest * 1.6
    scale = _Scale(len(shown), _nice_top(max(highest, tl.budget) if budget_on else highest))
    parts = [f"<svg class=\"chart\" id=\"{name}-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" "
             f"aria-label=\"{_e(name)} memory timeline\">"]
    parts += _phases([samples[i] for i in shown], scale)
    parts += _axes(scale, len(samples))
    parts += _areas([samples[i] for i in shown], scale, name)
    if reserved:
        pts = " ".join(f"{scale.x(c):.1f},{scale.y(samples[i].reserved or 0):.1f}" for c, i in enumerate(shown))
        parts.append(f"<polyline class=\"reserved\" id=\"{name}-reserved\" points=\"{pts}\"><title>reserved by the "
                     f"caching allocator (steady state), at most {_e(fmt_bytes(reserved))}</title></polyline>")
    parts.append(_budget(tl, scale, budget_on, name))
    parts.append(_peak(series, shown, scale, name, samples[series.peak].reserved))
    parts += _hover([samples[i] for i in shown], scale)
    parts.append("</svg>")
    return "<figure>" + "".join(parts) + f"<figcaption>{_caption(series, tl, reserved)}</figcaption></figure>"


def _caption(series: Series, tl: Timeline, reserved: int) -> str:
    s = series.samples[series.peak]
    what = f"{len(series.samples):,} samples, one per op (at its outputs and temporaries)"
    res = f"; reserved by the caching allocator at most {_e(fmt_bytes(reserved))} (dashed)" if reserved else ""
    return (f"{what}. Peak {_e(fmt_bytes(s.total))} ({s.total:,} bytes){res}; the budget of the "
            f"{_e(tl.device)}: {_e(fmt_bytes(tl.budget))} (the card less the CUDA context, "
            f"{_e(fmt_bytes(tl.context))}).")


def _nice_top(b: int) -> int:
    """A round number of bytes a little above `b` (1 to 10 times a power of ten of its unit, in round steps)."""
    unit = next((u for u in (1 << 30, 1 << 20, 1 << 10) if b >= u), 1)
    v = b * 1.08 / unit
    mag = 10 ** max(len(str(int(v))) - 1, 0)
    for f in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if f * mag >= v:
            return int(f * mag * unit)
    return int(10 * mag * unit)


def _divisions(top: int) -> int:
    """Into how many steps the y axis is cut: the first of 4, 5, 6, 8 whose step is round (1, 2,
    2.5 or 5 times a power of ten of the unit)."""
    unit = next((u for u in (1 << 30, 1 << 20, 1 << 10) if top >= u), 1)
    for n in (4, 5, 6, 8):
        step = top / unit / n
        mantissa = step / 10 ** math.floor(math.log10(step)) if step > 0 else 0
        if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5)):
            return n
    return 5


def _axes(scale: _Scale, samples: int) -> list[str]:
    """The y axis in binary units with its grid, the x axis numbered by sample (op) index."""
    out = [f"<line class=\"axis\" x1=\"{LEFT}\" y1=\"{scale.y(0):.1f}\" x2=\"{WIDTH - RIGHT}\" y2=\"{scale.y(0):.1f}\"/>",
           f"<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{scale.y(0):.1f}\"/>"]
    n = _divisions(scale.top)
    for k in range(n + 1):
        b = scale.top * k / n
        y = scale.y(b)
        out.append(f"<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1f}\" x2=\"{WIDTH - RIGHT}\" y2=\"{y:.1f}\"/>")
        out.append(f"<text class=\"tick\" x=\"{LEFT - 6}\" y=\"{y + 4:.1f}\" text-anchor=\"end\">"
                   f"{_e(fmt_bytes(b) if b else '0')}</text>")
    for k in range(5):
        c = (scale.n - 1) * k / 4
        out.append(f"<text class=\"tick\" x=\"{scale.x(c):.1f}\" y=\"{scale.y(0) + 16:.1f}\" "
                   f"text-anchor=\"middle\">{round((samples - 1) * k / 4)}</text>")
    out.append(f"<text class=\"axis-label\" x=\"{LEFT}\" y=\"{HEIGHT - 6}\" "
               "text-anchor=\"start\">ops in the order they run (sample index)</text>")
    return out


def _phases(samples: list[Sample], scale: _Scale) -> list[str]:
    """memory_viz's phases as shaded bands, each named at the top."""
    out: list[str] = []
    runs: list[tuple[str, int, int]] = []
    for i, s in enumerate(samples):
        if runs and runs[-1][0] == s.phase:
            runs[-1] = (s.phase, runs[-1][1], i)
        else:
            runs.append((s.phase, i, i))
    for k, (phase, lo, hi) in enumerate(runs):
        if phase == "start":
            continue
        x0 = scale.x(lo - 0.5) if lo else scale.x(0)
        x1 = scale.x(hi + 0.5) if hi < len(samples) - 1 else scale.x(hi)
        x0, x1 = max(x0, LEFT), min(x1, WIDTH - RIGHT)
        cls = phase.replace(" ", "-")
        out.append(f"<rect class=\"phase phase-{cls}{' odd' if k % 2 else ''}\" x=\"{x0:.1f}\" y=\"{TOP}\" "
                   f"width=\"{max(x1 - x0, 0.5):.1f}\" height=\"{scale.y(0) - TOP:.1f}\"/>")
        if x1 - x0 >= 24:
            out.append(f"<text class=\"phase-label\" x=\"{(x0 + x1) / 2:.1f}\" y=\"{TOP - 8}\" "
                       f"text-anchor=\"middle\">{_e(PHASE_NAMES.get(phase, phase))}</text>")
    return out


def _areas(samples: list[Sample], scale: _Scale, name: str) -> list[str]:
    """One closed path per category: its top edge over the samples, then the one below it back."""
    out = ["<g class=\"areas\">"]
    below = [0] * len(samples)
    for k, cat in enumerate(CATEGORIES):
        above = [b + s.parts[k] for b, s in zip(below, samples, strict=True)]
        if any(s.parts[k] for s in samples):
            top = [f"{scale.x(i):.1f},{scale.y(v):.1f}" for i, v in enumerate(above)]
            bottom = [f"{scale.x(i):.1f},{scale.y(v):.1f}" for i, v in reversed(list(enumerate(below)))]
            most = max(s.parts[k] for s in samples)
            out.append(f"<path class=\"area cat-{cat}\" data-category=\"{cat}\" id=\"{name}-area-{cat}\" "
                       f"d=\"M{' L'.join(top)} L{' L'.join(bottom)} Z\"><title>{_e(LABELS[cat])}: up to "
                       f"{_e(fmt_bytes(most))}</title></path>")
        below = above
    out.append("</g>")
    return out


def _budget(tl: Timeline, scale: _Scale, on_chart: bool, name: str) -> str:
    label = f"{tl.device} budget {fmt_bytes(tl.budget)}"
    if not on_chart:
        return (f"<text class=\"budget-label off\" id=\"{name}-budget\" data-bytes=\"{tl.budget}\" "
                f"x=\"{WIDTH - RIGHT}\" y=\"{HEIGHT - 6}\" text-anchor=\"end\">{_e(label)}: above the scale</text>")
    y = scale.y(tl.budget)
    return (f"<g id=\"{name}-budget\" data-bytes=\"{tl.budget}\"><line class=\"budget\" x1=\"{LEFT}\" y1=\"{y:.1f}\" "
            f"x2=\"{WIDTH - RIGHT}\" y2=\"{y:.1f}\"/><text class=\"budget-label\" x=\"{WIDTH - RIGHT - 4}\" "
            f"y=\"{y - 5:.1f}\" text-anchor=\"end\">{_e(label)}</text></g>")


def peak_label(s: Sample) -> str:
    """"peak 70.0 MiB: backward at fc2 (linear)" (the words of the chart's peak label)."""
    if not s.op or s.phase == "optimizer step":
        return f"peak {fmt_bytes(s.total)}: {s.phase}"
    return f"peak {fmt_bytes(s.total)}: {s.phase} at {s.module or '(model)'} ({s.op})"


def _peak(series: Series, shown: list[int], scale: _Scale, name: str, reserved: int | None) -> str:
    """The peak's marker, and its label above it (above the reserved line, which it would cross)."""
    s = series.samples[series.peak]
    c = shown.index(series.peak)
    x, y = scale.x(c), scale.y(s.total)
    above = min(y, scale.y(reserved)) if reserved else y
    anchor = "end" if x > (LEFT + WIDTH) / 2 else "start"
    dx = -8 if anchor == "end" else 8
    return (f"<g class=\"peak\" id=\"{name}-peak\"><line class=\"peak-line\" x1=\"{x:.1f}\" y1=\"{y:.1f}\" "
            f"x2=\"{x:.1f}\" y2=\"{scale.y(0):.1f}\"/><circle cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"4\"/>"
            f"<text class=\"peak-label\" id=\"{name}-peak-label\" data-bytes=\"{s.total}\" data-op=\"{_e(s.op)}\" "
            f"data-module=\"{_e(s.module)}\" x=\"{x + dx:.1f}\" y=\"{max(above - 8, TOP + 12):.1f}\" "
            f"text-anchor=\"{anchor}\">{_e(peak_label(s))}</text></g>")


def _hover(samples: list[Sample], scale: _Scale) -> list[str]:
    """Invisible columns whose tooltips say each sample's op and bytes."""
    out = ["<g class=\"hover\">"]
    step = (WIDTH - LEFT - RIGHT) / max(len(samples), 1)
    for i, s in enumerate(samples):
        parts = "; ".join(f"{LABELS[c].split(' (')[0]} {fmt_bytes(b)}" for c, b in zip(CATEGORIES, s.parts, strict=True)
                          if b)
        what = f"{s.phase}: {s.module or '(model)'} ({s.op})" if s.op else s.phase
        out.append(f"<rect x=\"{scale.x(i) - step / 2:.1f}\" y=\"{TOP}\" width=\"{step:.2f}\" "
                   f"height=\"{scale.y(0) - TOP:.1f}\"><title>{_e(what)}: {_e(fmt_bytes(s.total))} ({_e(parts)})"
                   f"</title></rect>")
    out.append("</g>")
    return out


def _legend(tl: Timeline) -> str:
    """The categories either chart draws, then its lines."""
    drawn = [c for k, c in enumerate(CATEGORIES)
             if any(s.parts[k] for series in (tl.training, tl.inference) for s in series.samples)]
    items = "".join(f"<li><span class=\"swatch cat-{c}\"></span>{_e(LABELS[c])}</li>" for c in drawn)
    return (f"<ul class=\"legend\">{items}<li><span class=\"swatch reserved-swatch\"></span>reserved (caching "
            f"allocator)</li><li><span class=\"swatch budget-swatch\"></span>GPU budget</li></ul>")


# ---------------------------------------------------------------------------------------------- tables


def _totals(e: MemoryEstimate) -> str:
    rows = [("weights", e.weights), ("buffers", e.buffers), ("gradients", e.gradients),
            ("optimizer state", e.optimizer_state), ("optimizer step temporaries", e.optimizer_temp),
            ("kept for backward", e.activations), ("batch", e.inputs), ("cuBLAS workspaces", e.workspace),
            ("training peak", e.train_peak), ("inference peak", e.inference_peak)]
    if e.generation is not None:
        rows += [("KV cache", e.generation.kv_cache), ("generation peak", e.generation.peak)]
    rows += [("max reserved (caching allocator)", e.max_reserved), ("device total", e.device_total)]
    body = "".join(f"<tr><td>{_e(k)}</td><td class=\"num\" id=\"total-{_e(k.replace(' ', '-'))}\" "
                   f"data-bytes=\"{v}\">{_e(fmt_bytes(v))}</td></tr>" for k, v in rows)
    return f"<table class=\"totals\"><tbody>{body}</tbody></table>"


def _setup(m: ModelResult) -> str:
    assert m.setup is not None
    plan = plan_of(m.memory)
    rows = [*setup_rows(m.setup, plan), *(plan_details(plan) if plan else [])]
    body = "".join(f"<tr><td>{_e(label)}</td><td>{_e(value) if value is not None else '<em>not given</em>'}</td>"
                   f"<td class=\"source\">{_e(source)}</td></tr>" for label, value, source in rows)
    return f"<table class=\"setup\"><thead><tr><th>setting</th><th>value</th><th>from</th></tr></thead>" \
           f"<tbody>{body}</tbody></table>"


def _layers(m: ModelResult) -> str:
    assert m.tree is not None
    peak = m.memory.train_peak if m.memory is not None else 0
    head = "".join(f"<th{NUM_CLASS if num else ''}><button type=\"button\">{_e(h)}</button></th>"
                   for h, num in (("#", True), ("layer", False), ("type", False), ("output shape", False),
                                  ("parameters", True), ("kept for backward", True), ("of peak", True)))
    rows = []
    for i, r in enumerate(table_rows(m.tree, m.name)):
        params = r.params.replace(",", "")
        share = r.saved / peak if r.saved and peak else 0
        cells = [_td(str(i + 1), i, num=True), _td(r.name, r.name, cls=f"d{min(r.depth, MAX_DEPTH_CLASS)}"),
                 _td(r.type, r.type), _td(r.shapes, r.shapes),
                 _td(r.params, params if params.isdigit() else -1, num=True),
                 _td(fmt_bytes(r.saved) if r.saved else "", r.saved, num=True),
                 _td(f"{share:.1%}" if share else "", share, num=True)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class=\"layers sortable\" id=\"layers\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _td(text: str, key: object, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in (cls, "num" if num else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr} data-sort=\"{_e(key)}\">{_e(text)}</td>"


# ---------------------------------------------------------------------------------------------- style, script

COLOURS = {"weights": "#4e79a7", "optimizer_state": "#f28e2b", "batch": "#76b7b2", "workspaces": "#bab0ac",
           "gradients": "#e15759", "kept": "#59a14f", "collectives": "#b07aa1", "transient": "#edc948"}


def _css() -> str:
    cats = "".join(f".cat-{c}{{fill:{v};background:{v}}}" for c, v in COLOURS.items())
    depths = "".join(f".d{d}{{padding-left:{0.3 + 1.1 * d:.1f}em}}" for d in range(MAX_DEPTH_CLASS + 1))
    return BASE_CSS + cats + depths + _dark_css()


BASE_CSS = (
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1000px;"
    "padding:0 1em;color:#1f2328;background:#fff}"
    "h1{font-size:1.5em;margin:0}h2{font-size:1.15em;margin:1.6em 0 .5em}.sub{margin:.2em 0;color:#57606a}"
    "code{font:12px ui-monospace,Menlo,Consolas,monospace}"
    ".verdict{padding:.6em .8em;border-radius:6px}.verdict.ok{background:#dafbe1}.verdict.bad{background:#ffebe9}"
    "figure{margin:0}svg.chart{width:100%;height:auto;display:block}"
    "figcaption{color:#57606a;font-size:12px;margin-top:.3em}"
    ".axis{stroke:#57606a}.grid{stroke:#d0d7de;stroke-dasharray:2 3}.tick,.axis-label,.phase-label{font-size:11px;"
    "fill:#57606a}.phase-label{font-weight:600}"
    ".phase{fill:#f6f8fa}.phase.odd{fill:#eaeef2}"
    ".area{stroke:none;opacity:.92}.reserved{fill:none;stroke:#24292f;stroke-width:1.5;stroke-dasharray:6 3}"
    ".budget{stroke:#cf222e;stroke-width:1.5;stroke-dasharray:10 4}.budget-label{font-size:11px;fill:#cf222e}"
    ".peak-line{stroke:#1f2328;stroke-dasharray:3 2}.peak circle{fill:#1f2328}.peak-label{font-size:12px;"
    "font-weight:600;fill:#1f2328;paint-order:stroke;stroke:#fff;stroke-width:3px}"
    ".hover rect{fill:transparent}.hover rect:hover{fill:rgba(31,35,40,.08)}"
    ".legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em 1.2em;font-size:12px}"
    ".swatch{display:inline-block;width:.9em;height:.9em;margin-right:.35em;vertical-align:-.1em;border-radius:2px}"
    ".reserved-swatch{border-top:2px dashed #24292f;height:0}.budget-swatch{border-top:2px dashed #cf222e;height:0}"
    "table{border-collapse:collapse;font-size:13px}td,th{padding:.2em .6em;border-bottom:1px solid #d0d7de;"
    "text-align:left;vertical-align:top}.num{text-align:right;font-variant-numeric:tabular-nums}"
    "th button{font:inherit;font-weight:600;border:0;background:none;padding:0;cursor:pointer;color:inherit}"
    "th[aria-sort=ascending] button::after{content:' \\25B2'}th[aria-sort=descending] button::after{content:' \\25BC'}"
    ".source{color:#57606a}table.layers{width:100%}"
)

# Dark colours: for a browser in dark mode, and for VS Code's dark themes (its webview's body class).
DARK = (("body", "color:#e6edf3;background:#0d1117"), (".sub,figcaption,.source", "color:#8d96a0"),
        (".phase", "fill:#161b22"), (".phase.odd", "fill:#1c2129"), (".tick,.axis-label,.phase-label", "fill:#8d96a0"),
        (".peak-label", "fill:#e6edf3;stroke:#0d1117"), (".peak circle", "fill:#e6edf3"), (".peak-line", "stroke:#e6edf3"),
        (".reserved", "stroke:#e6edf3"), (".verdict.ok", "background:#12361f"), (".verdict.bad", "background:#4a1519"),
        ("td,th", "border-color:#30363d"), (".grid", "stroke:#30363d"))


def _dark_css() -> str:
    def under(prefix: str) -> str:
        out = []
        for selectors, rule in DARK:
            parts = [(prefix or "body") if s == "body" else f"{prefix} {s}".strip() for s in selectors.split(",")]
            out.append(f"{','.join(parts)}{{{rule}}}")
        return "".join(out)

    return "@media (prefers-color-scheme:dark){" + under("") + "}" + under("body.vscode-dark")

# Sorts a table by the column whose header was clicked (again: the other way round); "#" restores
# the table's order. Each cell carries its sort key in data-sort.
SCRIPT = (
    "document.querySelectorAll('table.sortable').forEach(function(t){"
    "t.querySelectorAll('th').forEach(function(th,i){th.querySelector('button').addEventListener('click',"
    "function(){var asc=th.getAttribute('aria-sort')!=='ascending';"
    "t.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort')});"
    "th.setAttribute('aria-sort',asc?'ascending':'descending');var body=t.tBodies[0];"
    "var rows=Array.prototype.slice.call(body.rows);rows.sort(function(a,b){"
    "var x=a.cells[i].getAttribute('data-sort'),y=b.cells[i].getAttribute('data-sort');"
    "var nx=parseFloat(x),ny=parseFloat(y);"
    "var c=(th.classList.contains('num')&&!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);"
    "return asc?c:-c});rows.forEach(function(r){body.appendChild(r)})})})});"
)
