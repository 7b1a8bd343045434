"""The memory timeline of a report (issue 19): memory/series.py replays the estimate's training step
and inference pass with a recorder. Its peaks must be the estimate's (the same bytes, at the same
op and module), its categories must account for what is allocated at every sample without
overcounting (no negative rest), and the fixed categories must be the estimate's own figures."""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from vramlint.analysis.api import analyze_file, analyze_source
from vramlint.memory.estimate import MemoryEstimate
from vramlint.memory.series import CATEGORIES, Series, Timeline, timeline_of
from vramlint.settings import InputSpec, Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

CHECKPOINTED = """\
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
                                     for _ in range(4)])

    def forward(self, x):
        for b in self.blocks:
            x = checkpoint(b, x, use_reentrant=False)
        return x

model = Net()
out = model(torch.randn(512, 256))
"""

CNN = """\
import torch
from torch import nn

model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Dropout(0.2), nn.Linear(64, 10))
out = model(torch.randn(64, 3, 64, 64))
"""

BENCHMARKED = "import torch\ntorch.backends.cudnn.benchmark = True\n" + CNN


@dataclass(frozen=True)
class Case:
    id: str
    path: Path | None  # an example, or None: `text` in a temporary folder
    model: str
    text: str = ""
    settings: tuple[tuple[str, object], ...] = ()


CASES = [
    Case("mlp", EXAMPLES / "mlp.py", "model"),
    Case("keras-cnn", EXAMPLES / "keras_cnn.py", "model"),
    Case("gpt", EXAMPLES / "gpt.py", "model", settings=(("inputs", (InputSpec((256,), "int64"),)), ("batch_size", 4))),
    Case("fsdp-gpt", EXAMPLES / "fsdp_gpt.py", "main.model"),
    Case("checkpointed", None, "model", CHECKPOINTED),
    Case("cnn-amp", None, "model", CNN, (("precision", "amp-bf16"),)),
    Case("cnn-benchmark", None, "model", BENCHMARKED, (("optimizer", "sgd-momentum"),)),
]


def estimate_of(case: Case, tmp_path: Path) -> MemoryEstimate:
    settings = Settings(memory=True, **dict(case.settings))  # type: ignore[arg-type]
    if case.path is not None:
        fa = analyze_file(str(case.path), settings)
    else:
        fa = analyze_source(str(tmp_path / "m.py"), case.text, settings)
    (m,) = [m for m in fa.models if m.name == case.model]
    assert m.memory is not None, (m.memory_unknowns, m.forward_unknowns)
    return m.memory


def timeline_for(case: Case, tmp_path: Path) -> tuple[MemoryEstimate, Timeline]:
    e = estimate_of(case, tmp_path)
    tl = timeline_of(e)
    assert tl is not None
    return e, tl


def part(series: Series, i: int, category: str) -> int:
    return series.samples[i].parts[CATEGORIES.index(category)]


def where(series: Series) -> tuple[str, str]:
    s = series.samples[series.peak]
    return s.module, s.op


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_timeline_peaks_are_the_estimates(case: Case, tmp_path: Path) -> None:
    e, tl = timeline_for(case, tmp_path)
    assert tl.training.peak_bytes == e.train_peak
    assert tl.inference.peak_bytes == e.inference_peak
    # At the op and module the estimate names ("backward at fc2 (linear)"; "optimizer step").
    named = re.fullmatch(r"(.+?)(?: at (.+) \((.+)\))?", e.train_peak_phase)
    assert named is not None
    phase, module, op = named.groups()
    peak = tl.training.samples[tl.training.peak]
    if module is None:
        assert peak.phase == phase and (peak.op in ("", "optimizer.step()")), (peak, e.train_peak_phase)
    else:
        assert where(tl.training) == ("" if module == "(model)" else module, op), e.train_peak_phase
    # The peak is the first sample at the maximum, as the estimate's strict comparison finds it.
    assert all(s.total < peak.total for s in tl.training.samples[:tl.training.peak])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_categories_account_for_every_sample(case: Case, tmp_path: Path) -> None:
    e, tl = timeline_for(case, tmp_path)
    for series in (tl.training, tl.inference):
        for s in series.samples:
            assert len(s.parts) == len(CATEGORIES) and min(s.parts) >= 0, s  # transient, the rest, never negative
            assert sum(s.parts) == s.total
    tr = tl.training
    fixed = {"optimizer_state": e.optimizer_state, "batch": e.inputs, "workspaces": e.workspace}
    for cat, value in fixed.items():
        assert {part(tr, i, cat) for i in range(len(tr.samples))} == {value}, cat
    if e.distributed is None:
        assert {part(tr, i, "weights") for i in range(len(tr.samples))} == {e.weights + e.buffers}
        # After backward (the optimizer's step), the parameter gradients are the estimate's.
        step = next(i for i, s in enumerate(tr.samples) if s.phase == "optimizer step")
        assert part(tr, step, "gradients") == e.gradients
        assert part(tr, step, "transient") == e.optimizer_temp
        assert part(tr, step, "kept") == 0  # backward released everything it kept
    # What autograd keeps grows through the forward to the estimate's activations (with the loss).
    last_forward = max(i for i, s in enumerate(tr.samples) if s.phase in ("forward", "loss"))
    assert part(tr, last_forward, "kept") <= e.activations
    assert max(part(tr, i, "kept") for i in range(len(tr.samples))) >= e.activations - 1024 * 1024
    phases = [s.phase for s in tr.samples]
    assert phases[0] == "start" and phases[-1] == "optimizer step"
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    # "loss": the loss vramlint adds after the forward (none where the model returns its own: fsdp_gpt.py passes targets)
    loss = ["loss"] if case.id != "fsdp-gpt" else []
    assert order == ["start", "forward", *loss, "backward", "optimizer step"], order
    assert {s.phase for s in tl.inference.samples} == {"start", "forward"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_reserved_curve_is_the_allocators_replay(case: Case, tmp_path: Path) -> None:
    e, tl = timeline_for(case, tmp_path)
    assert tl.training.max_reserved == e.max_reserved
    assert tl.inference.max_reserved == e.inference_max_reserved
    for series in (tl.training, tl.inference):
        assert all(s.reserved is not None and s.reserved >= s.total for s in series.samples)


def test_under_cudnn_benchmark_the_reserved_curve_is_the_high_ends(tmp_path: Path) -> None:
    """The allocated timeline is the point estimate (the heuristics' workspaces); the allocator
    replays the range's high end (the largest workspaces a timed plan may take), as `fits` does."""
    case = next(c for c in CASES if c.id == "cnn-benchmark")
    e = estimate_of(case, tmp_path)
    assert e.train_range is not None and e.train_range[1] > e.train_peak
    tl = timeline_of(e)
    assert tl is not None and tl.training.peak_bytes == e.train_peak
    assert tl.training.max_reserved == e.max_reserved >= e.train_range[1]


def test_a_pickled_estimate_has_no_timeline_source(tmp_path: Path) -> None:
    """The cache and `--jobs`' workers pickle results: the tape does not travel (the CLI and the
    language server analyse again for a timeline)."""
    e = estimate_of(CASES[0], tmp_path)
    assert e.replay is not None
    back = pickle.loads(pickle.dumps(e))
    assert back.replay is None and timeline_of(back) is None and back.train_peak == e.train_peak


def test_timeline_budget_is_the_card_less_the_context(tmp_path: Path) -> None:
    e = estimate_of(CASES[0], tmp_path)
    tl = timeline_of(e)
    assert isinstance(tl, Timeline)
    assert tl.budget == e.device_memory - e.context > 0
