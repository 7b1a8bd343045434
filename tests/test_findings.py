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

from tests.test_cli_ci import HUGE, WIDE  # 537M parameters called on a batch of 64; one wide layer
from tests.test_lsp import Session, by_code, cli_findings, client, line_of, lsp, lsp_findings  # noqa: F401 (fixtures)
from vramlint.analysis.api import analyze_source
from vramlint.analysis.findings import (
    HOTSPOT_SHARE,
    RULE_BY_CODE,
    activation_hotspot,
    find_problems,
)
from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.engine.values import Location
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
    # Code in another file (a library's layer), or nowhere known, is not located there: the finding
    # is the model's.
    model_line = line_of(ATTENTION, "model = Attention()") + 1
    for where in (None, Location("/site-packages/lib/attention.py", 40, 8, 40, 20)):
        other = dataclasses.replace(hot, where=where)
        (g,) = activation_hotspot(dataclasses.replace(m, memory=dataclasses.replace(e, hotspots=[other])))
        assert g.location is not None and (g.location.path, g.location.line) == (str(tmp_path / "attn.py"), model_line)


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


# ---------------------------------------------------------------------- the other rules, in process
HUGE_WEIGHTS = 2 * 16384 * 16384 * 4  # bytes, the two square layers (the rest is < 1 MiB)


def findings(tmp_path: Path, text: str, name: str = "m.py", **settings: object) -> list[tuple[str, str, int]]:
    """(code, message, line) of every finding of the file."""
    path = tmp_path / name
    path.write_text(text)
    fa = analyze_source(str(path), text, Settings(memory=True, **settings))  # type: ignore[arg-type]
    return [(f.code, f.message, f.location.line if f.location else 0) for f in fa.findings]


def codes(found: list[tuple[str, str, int]]) -> list[str]:
    return sorted(c for c, _, _ in found)


def test_vl001_when_training_does_not_fit(tmp_path: Path) -> None:
    """Adam on 2 GiB of weights: weights, gradients, two moments and a step temporary are 10 GiB, more
    than an 8 GiB card even at batch 1; SGD (no state, no temporary) is 4 GiB, it fits; a 24 GiB card fits."""
    (f,) = [x for x in findings(tmp_path, HUGE, device="8GiB") if x[0] == "VL001"]
    assert f[1].startswith("training model needs ") and "optimizer step" in f[1]
    assert f[1].endswith("more than the 8GiB's 8.00 GiB at batch 64; not even a batch of 1 fits")
    assert f[2] == 4  # the model's line
    assert "VL001" not in codes(findings(tmp_path, HUGE, device="8GiB", optimizer="sgd"))
    assert "VL001" not in codes(findings(tmp_path, HUGE, device="24GiB"))
    # Inference mode: the training step need not fit.
    assert "VL001" not in codes(findings(tmp_path, HUGE, device="8GiB", mode="infer"))


def test_vl001_names_the_largest_batch_that_fits(tmp_path: Path) -> None:
    """At 16 GiB the weights' 10 GiB fit, 64 x [16384] activations per sample more do not."""
    text = HUGE.replace("torch.randn(64, 16384)", "torch.randn(65536, 16384)")
    (f,) = [x for x in findings(tmp_path, text, device="16GiB") if x[0] == "VL001"]
    batch = int(f[1].rsplit("the largest batch that fits: ", 1)[1])
    assert 0 < batch < 65536
    # 5 copies of the weights plus batch x (input, two hidden outputs kept, log-probs...) < 16 GiB.
    assert 5 * HUGE_WEIGHTS + batch * 16384 * 4 < 16 * 2**30


def test_vl002_when_inference_does_not_fit(tmp_path: Path) -> None:
    """Inference needs the 2 GiB of weights: more than 1 GiB, less than 8."""
    (f,) = [x for x in findings(tmp_path, HUGE, device="1GiB", mode="infer") if x[0] == "VL002"]
    assert f[1].startswith("inference of model needs ") and f[1].endswith("more than the 1GiB's 1.00 GiB at batch 64")
    assert "VL002" not in codes(findings(tmp_path, HUGE, device="8GiB", mode="infer"))
    assert "VL002" not in codes(findings(tmp_path, HUGE, device="1GiB", mode="train"))


def test_vl001_vl002_at_exactly_the_card_size(tmp_path: Path) -> None:
    """Needing exactly the card's memory fits; a byte more does not."""
    path = tmp_path / "m.py"
    path.write_text(HUGE)
    fa = analyze_source(str(path), HUGE, Settings(memory=True, device="1GiB", mode="infer"))
    (m,) = fa.models
    e = m.memory
    assert e is not None

    def found(**changes: object) -> list[str]:
        rm = dataclasses.replace(m, memory=dataclasses.replace(e, **changes))  # type: ignore[arg-type]
        return [f.code for f in find_problems(dataclasses.replace(fa, models=[rm]))]

    assert "VL002" not in found(device_memory=e.inference_need)
    assert "VL002" in found(device_memory=e.inference_need - 1)




def test_vl101_one_layer_with_most_parameters(tmp_path: Path) -> None:
    (f,) = [x for x in findings(tmp_path, WIDE) if x[0] == "VL101"]
    n, total = 1024 * 1024 + 1024, 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert f[1] == f"`0` (Linear) holds {n:,} parameters, {n / total:.0%} of all parameters"
    assert f[2] == 2
    # Below a million parameters, or under half of them, is no finding.
    assert "VL101" not in codes(findings(tmp_path, WIDE.replace("1024, 1024", "1024, 512").replace("1024, 10", "512, 10")))
    # A layer of exactly a million parameters is reported; one of 999,999 is not.
    million = "import torch.nn as nn\nnet = nn.Linear(999, 1000)\n"
    assert codes(findings(tmp_path, million)).count("VL101") == 1
    assert "VL101" not in codes(findings(tmp_path, million.replace("999, 1000", "1000, 999")))
    # Exactly half (two equal layers) is reported, both; a third (three equal layers) is not.
    halves = "import torch.nn as nn\nnet = nn.Sequential(nn.Linear(1024, 1024), nn.Linear(1024, 1024))\n"
    assert codes(findings(tmp_path, halves)).count("VL101") == 2
    thirds = halves.replace("nn.Linear(1024, 1024))", "nn.Linear(1024, 1024), nn.Linear(1024, 1024))")
    assert "VL101" not in codes(findings(tmp_path, thirds))


def test_vl101_leaves_vocabularies_alone_unless_a_limit_is_set(tmp_path: Path) -> None:
    """A token table and an output head over its vocabulary are large by design; `max-layer-params`
    covers them too."""
    lm = ("import torch.nn as nn\nlm = nn.Sequential(nn.Embedding(30000, 256), nn.Linear(256, 64), "
          "nn.Linear(64, 30000))\n")
    assert "VL101" not in codes(findings(tmp_path, lm))
    # A head with 93% of the parameters, over the vocabulary (30,000 rows): not reported; over 29,999
    # classes it is a plain layer, and reported.
    head = "import torch.nn as nn\nlm = nn.Sequential(nn.Embedding(30000, 16), nn.Linear(16, 256), nn.Linear(256, 30000))\n"
    assert "VL101" not in codes(findings(tmp_path, head))
    (plain,) = [m for c, m, _ in findings(tmp_path, head.replace("256, 30000", "256, 29999")) if c == "VL101"]
    assert plain.startswith("`2` (Linear) holds 7,709,743 parameters")
    limited = findings(tmp_path, lm, config={"max_layer_params": 1_000_000})
    assert sorted(m for c, m, _ in limited if c == "VL101") == [
        "`0` (Embedding) holds 7,680,000 parameters, more than max-layer-params (1,000,000)",
        "`2` (Linear) holds 1,950,000 parameters, more than max-layer-params (1,000,000)"]
    # Exactly the limit is allowed.
    assert codes(findings(tmp_path, WIDE, config={"max_layer_params": 1024 * 1024 + 1024})).count("VL101") == 0


def test_vl201_once_per_mismatch(tmp_path: Path) -> None:
    text = ("import torch\nimport torch.nn as nn\nnet = nn.Sequential(nn.Linear(64, 128), nn.Linear(100, 10))\n"
            "out = net(torch.randn(4, 64))\n")
    found = [x for x in findings(tmp_path, text) if x[0] == "VL201"]
    assert len(found) == 1 and "expects 100 input features" in found[0][1] and found[0][1].startswith("net: ")


def test_vl301_and_vl302(tmp_path: Path) -> None:
    """No batch size: VL301 (the estimate lacks an input). A parameter count that depends on an
    unknown value: VL302."""
    (f,) = [x for x in findings(tmp_path, WIDE) if x[0] == "VL301"]
    assert f[1].startswith("net: no inputs to estimate memory")
    unknown = "import os\nimport torch.nn as nn\nnet = nn.Linear(len(os.listdir('.')) * 1000, 10)\n"
    (g,) = [x for x in findings(tmp_path, unknown) if x[0] == "VL302"]
    assert g[1].startswith("net: the parameter count depends on something unknown: ")
    assert "VL302" not in codes(findings(tmp_path, WIDE))


def test_one_finding_per_place(tmp_path: Path) -> None:
    """A class and its module-level instance share their layers: one VL101, not two."""
    text = ("import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(1024, 1024)\n        self.head = nn.Linear(1024, 10)\n\n\nnet = Net()\n")
    assert codes(findings(tmp_path, text)).count("VL101") == 1


def test_vl101_of_a_layer_built_in_another_file_is_located_at_the_model(tmp_path: Path) -> None:
    """A layer whose building code is in a library is reported at the model, not in that file."""
    path = tmp_path / "wide.py"
    path.write_text(WIDE)
    fa = analyze_source(str(path), WIDE, Settings(memory=True))
    (m,) = fa.models
    assert m.tree is not None
    elsewhere = Location("/site-packages/lib/layers.py", 10, 4, 10, 30)
    tree = dataclasses.replace(m.tree, children=[dataclasses.replace(c, ref=elsewhere) for c in m.tree.children])
    (f,) = [f for f in find_problems(dataclasses.replace(fa, models=[dataclasses.replace(m, tree=tree)]))
            if f.code == "VL101"]
    assert f.location is not None and (f.location.path, f.location.line) == (str(path), 2)
