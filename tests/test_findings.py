"""The findings (analysis/findings.py, docs/rules.md) on real analyses: each rule's positive and
negative cases, its threshold, its message and its location, in the API, the CLI and the editor.

VL102 (activation-hotspot): one op keeps at least 20% of the training peak for backward. The
expected figures are computed by hand from the model's shapes (an attention matrix is
batch x heads x L x L float32), not copied from vramlint's output.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from tests.test_lsp import Session, by_code, cli_findings, client, line_of, lsp, lsp_findings  # noqa: F401 (fixtures)
from vramlint.analysis.api import analyze_source
from vramlint.analysis.findings import HOTSPOT_SHARE, RULE_BY_CODE, activation_hotspot
from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.render.units import fmt_bytes
from vramlint.settings import Settings

B, L, HEADS, C = 2, 2048, 4, 64
ATTENTION = f"""\
import torch
from torch import nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, c={C}, heads={HEADS}):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(c, 3 * c)
        self.out = nn.Linear(c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        att = att.softmax(dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, c))


model = Attention()
out = model(torch.randn({B}, {L}, {C}))
"""
# The same attention through flash / memory-efficient attention: no L x L matrix is kept.
FLASH = ATTENTION.replace("""        att = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        att = att.softmax(dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, c))""",
                          """        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, t, c))""")
# The softmax output: [B, heads, L, L] float32, kept by the softmax and the matmul with v.
SCORES = B * HEADS * L * L * 4


def analyse(tmp_path: Path, text: str, name: str = "attn.py") -> FileAnalysis:
    path = tmp_path / name
    path.write_text(text)
    return analyze_source(str(path), text, Settings(memory=True))


def model_named(fa: FileAnalysis, name: str = "model") -> ModelResult:
    (m,) = [m for m in fa.models if m.name == name]
    assert m.memory is not None, m.memory_unknowns
    return m


def test_vl102_reports_an_explicit_attention_matrix(tmp_path: Path) -> None:
    fa = analyse(tmp_path, ATTENTION)
    m = model_named(fa)
    assert m.memory is not None
    share = SCORES / m.memory.train_peak
    assert share >= HOTSPOT_SHARE  # the case is one: 128 MiB of a peak under 640 MiB
    (f,) = [f for f in fa.findings if f.code == "VL102"]
    assert (f.name, f.severity, f.model) == ("activation-hotspot", "warning", "model")
    assert f.message == f"`softmax` in `model` keeps {fmt_bytes(SCORES)} for backward, {share:.0%} of the training peak"
    assert f.location is not None
    assert (f.location.path, f.location.line) == (str(tmp_path / "attn.py"), line_of(ATTENTION, "att.softmax") + 1)


def test_vl102_is_quiet_for_flash_attention(tmp_path: Path) -> None:
    fa = analyse(tmp_path, FLASH)
    m = model_named(fa)
    assert m.memory is not None
    assert all(h.bytes < HOTSPOT_SHARE * m.memory.train_peak for h in m.memory.hotspots)
    assert [f for f in fa.findings if f.code == "VL102"] == []


def test_vl102_is_quiet_when_the_weights_dominate(tmp_path: Path) -> None:
    """An MLP's kept activations are small next to its weights, gradients and Adam's state."""
    text = ("import torch\nfrom torch import nn\n\nmodel = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), "
            "nn.Linear(2048, 10))\nout = model(torch.randn(8, 512))\n")
    fa = analyse(tmp_path, text, "mlp.py")
    e = model_named(fa).memory
    assert e is not None and e.hotspots  # ops keep tensors, just not a fifth of the peak
    assert [f for f in fa.findings if f.code == "VL102"] == []


def test_vl102_threshold_is_a_share_of_the_training_peak(tmp_path: Path) -> None:
    """Exactly HOTSPOT_SHARE of the peak is a hotspot; a byte less is not. Every op over it is
    reported, the largest first; an estimate without a training peak reports none."""
    m = model_named(analyse(tmp_path, ATTENTION))
    e = m.memory
    assert e is not None and e.hotspots
    top = e.hotspots[0]
    at = -(-int(HOTSPOT_SHARE * e.train_peak * 10) // 10)  # the smallest integer >= 20% of the peak

    def codes(*sizes: int, peak: int = e.train_peak) -> list[str]:
        hot = [dataclasses.replace(top, bytes=s, op=f"op{i}") for i, s in enumerate(sizes)]
        est = dataclasses.replace(e, hotspots=hot, train_peak=peak)
        return [f.message.split("`")[1] for f in activation_hotspot(dataclasses.replace(m, memory=est))]

    assert codes(at) == ["op0"]
    assert codes(at - 1) == []
    assert codes(e.train_peak, at, at - 1) == ["op0", "op1"]
    assert codes(at, peak=0) == []
    assert list(activation_hotspot(dataclasses.replace(m, memory=None))) == []


def test_vl102_names_the_submodule_and_its_share(tmp_path: Path) -> None:
    """A hotspot inside a layer names that layer; the share is rounded to a whole percent."""
    m = model_named(analyse(tmp_path, ATTENTION))
    e = m.memory
    assert e is not None
    hot = dataclasses.replace(e.hotspots[0], module="blocks.3.attn", bytes=e.train_peak // 3)
    (f,) = activation_hotspot(dataclasses.replace(m, memory=dataclasses.replace(e, hotspots=[hot])))
    assert f.message == f"`softmax` in `blocks.3.attn` keeps {fmt_bytes(e.train_peak // 3)} for backward, " \
                        "33% of the training peak"
    # Code in another file (a library's layer) is not located there: the finding is the model's.
    other = dataclasses.replace(hot, where=None)
    (g,) = activation_hotspot(dataclasses.replace(m, memory=dataclasses.replace(e, hotspots=[other])))
    assert g.location is not None and m.where is not None
    assert g.location.line == line_of(ATTENTION, "model = Attention()") + 1


def test_vl102_in_the_rule_table() -> None:
    r = RULE_BY_CODE["VL102"]
    assert (r.code, r.name, r.severity) == ("VL102", "activation-hotspot", "warning")


def test_vl102_in_the_cli(tmp_path: Path) -> None:
    """`vramlint check` prints the warning at the softmax, and a warning does not fail the run."""
    (tmp_path / "attn.py").write_text(ATTENTION)
    run = subprocess.run([sys.executable, "-m", "vramlint", "check", "attn.py"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    line = line_of(ATTENTION, "att.softmax") + 1
    (hit,) = [s for s in run.stdout.splitlines() if "VL102" in s]
    assert hit.startswith(f"attn.py:{line}:") and "warning VL102 [activation-hotspot] `softmax` in `model` keeps " \
        f"{fmt_bytes(SCORES)} for backward" in hit
    doc = json.loads(subprocess.run([sys.executable, "-m", "vramlint", "check", "attn.py", "--format", "json"],
                                    capture_output=True, text=True, cwd=tmp_path, timeout=120).stdout)
    (f,) = [f for f in doc["files"][0]["findings"] if f["code"] == "VL102"]
    assert (f["severity"], f["line"]) == ("warning", line)


@pytest.mark.asyncio
async def test_vl102_in_the_editor(lsp: Session) -> None:  # noqa: F811 (the fixture)
    uri = await lsp.open("attn.py", ATTENTION)
    diags = lsp.client.diagnostics[uri]
    (d,) = by_code(diags, "VL102")
    assert d.severity == types.DiagnosticSeverity.Warning
    assert d.range.start.line == line_of(ATTENTION, "att.softmax")
    assert lsp_findings(diags) == cli_findings(lsp.root / "attn.py")
