"""What a newcomer reads must add up and agree (issue 17, "wrong or confusing output"):

- `vramlint explain`'s rows add up to the training peak;
- a finding is reported once per layer and code, in every output format;
- VL101 leaves vocabulary tables (embeddings, language-model heads) alone, not accidents;
- `vramlint report`'s kept-for-backward column adds up, lists every call's output shape, and no
  line ends with a space;
- each figure has the same name everywhere (CLI text, report, explain, hover, code lens).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from tests.test_cli import vramlint
from vramlint.analysis.api import analyze_file
from vramlint.analysis.results import ModelResult
from vramlint.lsp import summaries
from vramlint.render import explain, report, text
from vramlint.render.units import fmt_bytes
from vramlint.settings import InputSpec, Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# A conv net with batch norm (buffers) and pooling; a transformer block with attention; a module
# with functional ops in its forward (F.relu, torch.cat) and a layer called twice on different shapes.
CONV = """\
import torch
import torch.nn as nn

net = nn.Sequential(
    nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    nn.Flatten(), nn.Linear(32, 10),
)
out = net(torch.randn(8, 3, 32, 32))
"""

BLOCK = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d=128, heads=4):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))


block = Block()
y = block(torch.randn(4, 64, 128))
"""

FUNCTIONAL = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Inner(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        h = F.relu(self.fc(x))
        return torch.cat([self.norm(h), x], dim=-1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Inner(64)
        self.proj = nn.Linear(128, 64)
        self.shared = nn.Linear(64, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = F.gelu(self.proj(self.inner(x)))
        x = self.shared(x)
        seq = self.shared(x.unsqueeze(1).expand(-1, 4, -1))
        return self.head(torch.tanh(x + seq.mean(dim=1)))


model = Net()
y = model(torch.randn(8, 64))
"""


def analysed(tmp_path: Path, name: str, source: str | None, model: str, **settings: object) -> ModelResult:
    path = EXAMPLES / name if source is None else tmp_path / name
    if source is not None:
        path.write_text(source)
    fa = analyze_file(str(path), Settings(memory=True, models=(model,), **settings))  # type: ignore[arg-type]
    (m,) = [m for m in fa.models if m.name == model]
    assert m.memory is not None, (m.memory_unknowns, m.forward_unknowns)
    return m


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelResult]:
    tmp = tmp_path_factory.mktemp("models")
    gpt = {"inputs": (InputSpec((256,), "int64"),), "batch_size": 8}  # peaks in backward
    return {
        "mlp": analysed(tmp, "mlp.py", None, "model"),
        "gpt": analysed(tmp, "gpt.py", None, "GPT", **gpt),
        "conv": analysed(tmp, "conv.py", CONV, "net"),
        "block": analysed(tmp, "block.py", BLOCK, "block"),
        "block-checkpointed": analysed(tmp, "block.py", BLOCK, "block", checkpointing=True),
        "functional": analysed(tmp, "functional.py", FUNCTIONAL, "model"),
    }


# ---------------------------------------------------------------------- explain
UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def parse_bytes(s: str) -> tuple[float, float]:
    """A `fmt_bytes` figure: its value in bytes and how far the printed digits may be off."""
    number, unit = s.split()
    decimals = len(number.partition(".")[2])
    return float(number) * UNITS[unit], 0.5 * 10**-decimals * UNITS[unit]


@pytest.mark.parametrize("name", ["mlp", "gpt", "conv", "block", "block-checkpointed", "functional"])
def test_explain_rows_add_up_to_the_training_peak(models: dict[str, ModelResult], name: str) -> None:
    m = models[name]
    e = m.memory
    assert e is not None
    # As printed: the rows between the heading and "= training peak" add up to it, to the printed digits.
    lines = explain.explain("m.py", m).splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"What .*:$", line))
    end = next(i for i, line in enumerate(lines) if line.startswith("  = training peak"))
    figures = [parse_bytes(re.split(r"\s{2,}", line.strip())[1]) for line in lines[start + 1:end]]
    total, slack = parse_bytes(lines[end].split("peak")[1].strip())
    assert abs(sum(v for v, _ in figures) - total) <= sum(s for _, s in figures) + slack, lines[start:end + 1]
    rows = explain.peak_rows(e, m.params.total or 0)
    assert all(r.bytes >= 0 for r in rows), rows
    assert sum(r.bytes for r in rows) == e.train_peak
    # At most what the step allocates in all: part of the gradients and of what is kept exist at the peak.
    by_label = {r.label: r.bytes for r in rows}
    assert by_label["gradients"] <= e.gradients and by_label["kept for backward"] <= e.activations


def test_a_peak_in_backward_has_gradients_in_flight(models: dict[str, ModelResult]) -> None:
    """GPT's peak is in backward: part of the gradients made, part of what was kept freed, and a
    transient (the gradient being computed) that is not zero, as `explain` used to print."""
    e = models["gpt"].memory
    assert e is not None and e.train_peak_phase.startswith("backward")
    rows = {r.label: r.bytes for r in explain.peak_rows(e, 0)}
    assert 0 < rows["gradients"] < e.gradients
    assert 0 < rows["kept for backward"] < e.activations
    assert rows["+ transient at the peak"] > 0 and rows["optimizer step temporaries"] == 0


# ---------------------------------------------------------------------- findings once per layer
# docs/rules.md's VL101 example, as a class and a module-level instance of it.
VGG_CLASS = """\
import torch.nn as nn


class VGGish(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 56 * 56, 4096), nn.ReLU(), nn.Linear(4096, 10))

    def forward(self, x):
        return self.head(self.features(x))


model = VGGish()
"""


def test_a_layer_of_a_class_and_its_instance_is_one_finding(tmp_path: Path) -> None:
    (tmp_path / "vgg.py").write_text(VGG_CLASS)
    r_text = vramlint("check", "vgg.py", cwd=tmp_path)
    r_sarif = vramlint("check", "vgg.py", "--format", "sarif", cwd=tmp_path)
    r_github = vramlint("check", "vgg.py", "--format", "github", cwd=tmp_path)
    assert "VGGish (class)" in r_text.stdout and "model (instance)" in r_text.stdout  # both analysed
    vl101 = [line for line in r_text.stdout.splitlines() if " VL101 " in line]
    assert vl101 == ["vgg.py:8:49: warning VL101 [oversized-layer] `head.1` (Linear) holds 822,087,680 parameters, "
                     "100% of all parameters"], r_text.stdout
    results = json.loads(r_sarif.stdout)["runs"][0]["results"]
    assert [r["ruleId"] for r in results].count("VL101") == 1
    annotations = [line for line in r_github.stdout.splitlines() if "title=VL101" in line]
    assert len(annotations) == 1 and annotations[0].startswith("::warning file=vgg.py,line=8,col=49,")
    # Each model keeps its own findings about itself (VL301 at each model's line).
    assert sum(" VL301 " in line for line in r_text.stdout.splitlines()) == 2


# ---------------------------------------------------------------------- VL101: accidents, not vocabularies
LM = """\
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self, vocab=30000, d=256, n_layer=2, heads=4, ctx=128, tie=False):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        if tie:
            self.head.weight = self.tok.weight

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))


untied = TinyLM()
tied = TinyLM(tie=True)
# A head over the vocabulary with no embedding tied to it, but the same size: a bag-of-words model.
bag = nn.Sequential(nn.EmbeddingBag(30000, 256), nn.Linear(256, 30000))
"""

# A Keras text classifier: the 30,000 x 256 table is 99% of its parameters.
KERAS_LM = """\
import keras
from keras import layers

model = keras.Sequential([
    keras.Input(shape=(128,), dtype="int32"),
    layers.Embedding(30000, 256),
    layers.GlobalAveragePooling1D(),
    layers.Dense(16, activation="relu"),
    layers.Dense(1),
])
"""


def findings(tmp_path: Path, name: str, source: str, *flags: str) -> list[str]:
    (tmp_path / name).write_text(source)
    r = vramlint("check", name, "--format", "json", "--fail-on", "warning", *flags, cwd=tmp_path)
    (f,) = json.loads(r.stdout)["files"]
    return [f"{x['code']} {x['model']} {x['message']}" for x in f["findings"]]


def test_vl101_leaves_embeddings_and_vocabulary_heads_alone(tmp_path: Path) -> None:
    lm = findings(tmp_path, "lm.py", LM)
    assert not [x for x in lm if x.startswith("VL101")], lm
    keras = findings(tmp_path, "klm.py", KERAS_LM)
    assert not [x for x in keras if x.startswith("VL101")], keras
    # The tied model really has one table with most of the parameters (what VL101 used to flag).
    fa = analyze_file(str(tmp_path / "lm.py"), Settings(models=("tied",)))
    (tied,) = fa.models
    assert tied.params.total is not None and 30000 * 256 > 0.8 * tied.params.total


def test_vl101_still_flags_a_linear_on_an_unpooled_feature_map(tmp_path: Path) -> None:
    docs = "import torch.nn as nn\n\n" + textwrap.dedent("""\
        model = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
            nn.Flatten(), nn.Linear(64 * 56 * 56, 4096), nn.ReLU(), nn.Linear(4096, 10),
        )
        """)
    assert findings(tmp_path, "vgg.py", docs) == [
        "VL101 model `4` (Linear) holds 822,087,680 parameters, 100% of all parameters",
        "VL301 model model: no inputs to estimate memory: the first layer is a Conv2d: give the sample shape "
        "(--input-shape C,H,W); give their shapes (--input-shape, `inputs` in the configuration) or call the model "
        "in the file"]


def test_max_layer_params_covers_every_layer_embeddings_included(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.vramlint]\nmax-layer-params = 5000000\n")
    lm = [x for x in findings(tmp_path, "lm.py", LM) if x.startswith("VL101")]
    assert sorted(lm) == sorted([
        "VL101 TinyLM `tok` (Embedding) holds 7,680,000 parameters, more than max-layer-params (5,000,000)",
        "VL101 TinyLM `head` (Linear) holds 7,680,000 parameters, more than max-layer-params (5,000,000)",
        "VL101 bag `0` (EmbeddingBag) holds 7,680,000 parameters, more than max-layer-params (5,000,000)",
        "VL101 bag `1` (Linear) holds 7,710,000 parameters, more than max-layer-params (5,000,000)",
    ]), lm


# ---------------------------------------------------------------------- report
def test_report_kept_for_backward_adds_up_at_every_level(models: dict[str, ModelResult]) -> None:
    for name in ("mlp", "conv", "block", "functional", "gpt"):
        m = models[name]
        assert m.tree is not None and m.memory is not None
        rows = report.table_rows(m.tree, m.name)
        assert rows[0].saved == m.tree.saved_bytes
        for i, row in enumerate(rows):
            below = []
            for r in rows[i + 1:]:
                if r.depth <= row.depth:
                    break
                if r.depth == row.depth + 1:
                    below.append(r.saved)
            if below:
                assert row.saved == sum(below), (name, row, below)
    # The functional model's own ops have rows of their own, named.
    own = [r for r in report.table_rows(models["functional"].tree, "model") if r.name == report.OWN_OPS]  # type: ignore[arg-type]
    assert [(r.depth, r.saved > 0) for r in own] == [(2, True), (1, True)]
    assert "relu" in own[0].type and "gelu" in own[1].type


def test_report_lists_every_call_and_no_line_ends_with_a_space(tmp_path: Path) -> None:
    (tmp_path / "functional.py").write_text(FUNCTIONAL)
    (tmp_path / "conv.py").write_text(CONV)
    r = vramlint("report", "functional.py", "--model", "model", cwd=tmp_path)
    conv = vramlint("report", "conv.py", "--model", "net", cwd=tmp_path)
    assert r.returncode == 0 and conv.returncode == 0, r.stderr + conv.stderr
    for out in (r.stdout, conv.stdout):
        assert not [line for line in out.splitlines() if line.endswith(" ")], out
    cells = {c[0]: c for line in r.stdout.splitlines() if "|" in line
             for c in [[x.strip() for x in line.split("|")]]}
    assert cells["shared"][2] == "[8, 64]; [8, 4, 64]"  # called on a batch, then on a sequence
    assert cells["proj"][2] == "[8, 64]"
    assert "gelu" in cells["(own ops)"][1]  # the last: the model's own


def test_shapes_text_counts_repeated_calls() -> None:
    from vramlint.analysis.results import ModuleNode

    def node(shapes: list[tuple[int | None, ...] | None], calls: int) -> ModuleNode:
        return ModuleNode("x", "Linear", "torch.nn.Linear", output_shape=shapes[0], output_shapes=shapes, calls=calls)

    assert report.shapes_text(node([(8, 64)], 1)) == "[8, 64]"
    assert report.shapes_text(node([(8, 64), (8, 64)], 2)) == "[8, 64] x2"
    assert report.shapes_text(node([(8, 64)] * 16, 40)) == "[8, 64] x16; ... 40 calls"  # the first calls recorded
    assert report.shapes_text(node([(8, 64), (8, 32), (8, 32)], 3)) == "[8, 64]; [8, 32] x2"
    assert report.shapes_text(node([(1,), (2,), (3,), (4,)], 4)) == "[1]; [2]; [3]; ... 4 calls"
    assert report.shapes_text(node([(8, None)], 1)) == "[8, ?]"


# ---------------------------------------------------------------------- one name per figure
FIGURES = {"training peak": "train_peak", "inference peak": "inference_peak", "device total": "device_total"}


def test_each_figure_has_the_same_name_everywhere(models: dict[str, ModelResult]) -> None:
    m = models["mlp"]
    e = m.memory
    assert e is not None
    surfaces = {
        "check": "\n".join(text.memory_lines(m)),
        "report": report.report("mlp.py", m),
        "explain": explain.explain("mlp.py", m),
        "hover": summaries.model_markdown(m),
    }
    for where, shown in surfaces.items():
        for name, attr in FIGURES.items():
            found = re.search(re.escape(name) + r"\W+(\d[\d.]* [KMG]?i?B)", shown)
            assert found is not None and found.group(1) == fmt_bytes(getattr(e, attr)), (where, name, shown)
    lens = summaries.model_line(m)
    for name in ("training peak", "device total"):
        found = re.search(name + r" (\d[\d.]* [KMG]?i?B)", lens)
        assert found is not None and found.group(1) == fmt_bytes(getattr(e, FIGURES[name])), lens
    assert "None" not in summaries.model_markdown(m) + lens


def test_in_infer_mode_the_lens_and_status_say_what_inference_needs(tmp_path: Path) -> None:
    """134M parameters on a 2 GiB card: training does not fit, inference does; with mode = "infer"
    the code lens and the status notification judge inference, as the CLI's verdict does."""
    from vramlint.lsp import status

    path = tmp_path / "wide.py"
    path.write_text("import torch\nimport torch.nn as nn\n\n"
                    "model = nn.Sequential(nn.Linear(8192, 8192), nn.ReLU(), nn.Linear(8192, 8192))\n"
                    "y = model(torch.randn(4, 8192))\n")
    fa = analyze_file(str(path), Settings(memory=True, mode="infer", device="2GiB"))
    (m,) = fa.models
    e = m.memory
    assert e is not None and not e.fits and e.inference_need <= e.device_memory
    lens = summaries.model_line(m)
    assert f"inference peak {fmt_bytes(e.inference_peak)} · inference needs {fmt_bytes(e.inference_need)} / " \
           f"{fmt_bytes(e.device_memory)} · batch 4" in lens and "NOT" not in lens, lens
    (s,) = status.status("file:///wide.py", 1, fa)["models"]
    assert s["mode"] == "infer" and s["fits"] is True and s["inferenceNeed"] == e.inference_need
    assert "inference fits in the 2GiB" in summaries.model_markdown(m)
    # The CLI's line gives the figure its verdict judges, and no training batch nobody asked for.
    check = "\n".join(text.memory_lines(m))
    assert f"inference needs {fmt_bytes(e.inference_need)}: inference fits in the 2GiB" in check, check
    assert e.max_batch is None and "largest batch" not in check
    train = analyze_file(str(path), Settings(memory=True, device="2GiB"))
    (s,) = status.status("file:///wide.py", 1, train)["models"]
    assert s["mode"] == "train" and s["fits"] is False
    assert "(does NOT fit)" in summaries.model_line(train.models[0])
