"""`vramlint report --html` (issue 19): one self-contained HTML file, safe with hostile names from
the analysed code, fetching nothing, whose chart carries the estimate's peaks; and the timeline in
`vramlint report --format json`. The browser's view of the same file: client/e2e/report-html.ts."""

from __future__ import annotations

import html
import json
import pickle
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from tests.test_cli import vramlint
from vramlint.analysis.api import analyze_file, analyze_source
from vramlint.analysis.results import FileAnalysis, detached
from vramlint.analysis.timeline import timeline_for
from vramlint.memory.series import timeline_of
from vramlint.render.html_report import MAX_COLUMNS, columns, html_report
from vramlint.render.units import fmt_bytes
from vramlint.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "examples" / "mlp.py"
EVIL = "<img src=x onerror=alert(1)>"
HOSTILE = f"""\
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("{EVIL}", nn.Linear(8, 8))
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        return self.out(torch.relu(getattr(self, "{EVIL}")(x)))

model = Net()
y = model(torch.randn(4, 8))
"""


def page_of(text: str, tmp_path: Path, name: str = "model") -> str:
    fa = analyze_source(str(tmp_path / "m.py"), text, Settings(memory=True))
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.memory is not None
    return html_report(str(tmp_path / "m.py"), replace(m, name=name), timeline_of(m.memory))


def test_strings_from_the_code_are_escaped(tmp_path: Path) -> None:
    page = page_of(HOSTILE, tmp_path, name="</title><script>alert('name')</script>")
    assert "<img" not in page and "<script>alert" not in page
    assert page.count("<script") == 1 and page.count("</script>") == 1  # ours only
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the module's name, shown as text (the layer table)
    assert "&lt;/title&gt;&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in page
    assert "forward: &lt;img src=x onerror=alert(1)&gt; (linear)" in page  # the chart's tooltip of its op


class Tags(HTMLParser):
    """Every element and its attributes, as a browser's parser sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_file_fetches_nothing_and_suits_a_webview_policy(tmp_path: Path) -> None:
    page = page_of(HOSTILE, tmp_path)
    assert not re.search(r"https?:", page)  # no URL at all (inline SVG needs no namespace in HTML)
    assert not re.search(r"@import|url\(", page)
    tags = Tags(page).tags
    names = [t for t, _ in tags]
    assert {"svg", "path", "table"} <= set(names)
    assert not {"img", "link", "iframe", "object", "embed", "image", "use", "a", "base"} & set(names)
    # One <style>, one <script> (inline), no handlers, style attributes or references to fetch:
    # a webview's nonce on the two allows everything the page runs.
    assert names.count("style") == 1 and names.count("script") == 1
    for tag, attrs in tags:
        for attr in attrs:
            assert not attr.startswith("on") and attr not in ("style", "src", "href", "xlink:href", "srcset"), (tag, attr)


def test_the_chart_carries_the_estimates_peaks(tmp_path: Path) -> None:
    fa = analyze_source(str(tmp_path / "m.py"), HOSTILE, Settings(memory=True))
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.memory is not None
    page = html_report("m.py", m, timeline_of(m.memory))
    for name, peak in (("training", m.memory.train_peak), ("inference", m.memory.inference_peak)):
        label = re.search(rf'<text class="peak-label" id="{name}-peak-label" data-bytes="(\d+)"[^>]*>([^<]*)</text>', page)
        assert label is not None, name
        assert int(label.group(1)) == peak and f"peak {fmt_bytes(peak)}" in label.group(2)
    # Every category present in the run is an area of the chart.
    for cat in ("weights", "optimizer_state", "batch", "gradients", "kept", "transient"):
        assert f'id="training-area-{cat}"' in page, cat


def test_long_runs_are_drawn_by_each_columns_highest_sample(tmp_path: Path) -> None:
    fa = analyze_source(str(tmp_path / "m.py"), HOSTILE, Settings(memory=True))
    (m,) = [m for m in fa.models if m.name == "model"]
    tl = timeline_of(m.memory)
    assert tl is not None
    samples = tl.training.samples * 200  # a long run: the peak's sample must survive the thinning
    peak = samples.index(max(samples, key=lambda s: s.total))
    shown = columns(samples, peak)
    assert len(shown) == MAX_COLUMNS and peak in shown and shown == sorted(shown)


def test_report_writes_the_html_and_json_carries_the_timeline(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    cache = tmp_path / "cache"
    r = vramlint("report", str(MLP), "--model", "model", "--html", str(out), "--cache-dir", str(cache))
    assert r.returncode == 0, r.stderr
    assert "training peak" in r.stdout and f"wrote {out}" in r.stderr
    page = out.read_text()
    for _ in range(2):  # the second from the cache, whose results keep no replay: analysed again for it
        r = vramlint("report", str(MLP), "--model", "model", "--format", "json", "--cache-dir", str(cache))
        assert r.returncode == 0, r.stderr
        memory = json.loads(r.stdout)["files"][0]["models"][0]["memory"]
        timeline = memory["timeline"]
        assert timeline["training"]["peak"]["bytes"] == memory["bytes"]["train_peak"]
        assert timeline["inference"]["peak"]["bytes"] == memory["bytes"]["inference_peak"]
        assert timeline["training"]["max_reserved"] == memory["bytes"]["max_reserved"]
        sample = timeline["training"]["samples"][timeline["training"]["peak"]["index"]]
        assert sum(sample["bytes"]) == sample["total"] == memory["bytes"]["train_peak"]
        assert len(sample["bytes"]) == len(timeline["categories"])
    assert f'data-bytes="{memory["bytes"]["train_peak"]}"' in page
    r = vramlint("report", str(MLP), "--model", "model", "--html", "-", "--no-cache")
    assert r.returncode == 0 and r.stdout.startswith("<!DOCTYPE html>") and "training peak" not in r.stdout[:200]
    r = vramlint("report", str(MLP), "--model", "model", "--html", str(tmp_path / "no" / "such" / "r.html"),
                 "--cache-dir", str(cache))
    assert r.returncode == 2 and f"{tmp_path / 'no' / 'such' / 'r.html'}: cannot write the HTML report" in r.stderr


def test_a_model_without_an_estimate_gets_a_page_that_says_why() -> None:
    fa = analyze_file(str(MLP), Settings(memory=True))
    (m,) = [m for m in fa.models if m.name == "MLP"]  # the class: nothing says its inputs
    assert m.memory is None and m.memory_unknowns
    page = html_report(str(MLP), m, None)
    assert "<svg" not in page and "No memory estimate" in page
    assert html.escape(m.memory_unknowns[0].reason, quote=True) in page
    assert 'id="layers"' in page  # the per-layer table still


def test_the_editor_analyses_again_only_for_a_result_read_from_the_cache(tmp_path: Path) -> None:
    fa = analyze_source(str(tmp_path / "m.py"), HOSTILE, Settings(memory=True))
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.memory is not None
    calls: list[int] = []

    def analyse() -> FileAnalysis:
        calls.append(1)
        return fa

    found = timeline_for(m, analyse)
    assert found is not None and found.training.peak_bytes == m.memory.train_peak and not calls
    back = pickle.loads(pickle.dumps(detached(fa)))  # as the cache gives it back: no replay source
    (cached,) = [x for x in back.models if x.name == "model"]
    assert cached.memory is not None and cached.memory.replay is None
    found = timeline_for(cached, analyse)
    assert found is not None and found.training.peak_bytes == m.memory.train_peak and calls == [1]
