"""`vramlint explain` (render/explain.py): the rows of the training peak and the text, checked by
hand on the question network (tests/test_memory.py's QUESTION: Adam on an H100, batch 256), whose
every term test_memory.py derives by hand too.

At the optimizer step nothing is in flight: the peak is exactly the weights, their gradients,
Adam's two moments, the foreach step's temporary, the batch and the two cuBLAS workspaces. When
the peak is in backward instead, the step's temporaries are not part of it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.test_findings import ATTENTION
from tests.test_memory import QUESTION, blocks
from vramlint.analysis.api import analyze_source
from vramlint.analysis.results import ModelResult, UnknownInfo
from vramlint.memory.devices import DEVICES
from vramlint.render.explain import explain, peak_rows
from vramlint.render.units import fmt_bytes
from vramlint.settings import Settings

MiB = 2**20
WEIGHTS = blocks(400_000) + blocks(400) + 3 * (blocks(40_000) + blocks(400)) + blocks(4_000) + blocks(40)
BATCH = blocks(256 * 1000 * 4) + blocks(256 * 8)  # the float32 batch and the int64 targets
WORKSPACES = 2 * 32 * MiB  # Hopper: the forward handle and autograd's thread
PEAK = 5 * WEIGHTS + BATCH + WORKSPACES
# The hand count: the input and each Linear's output, plus a gradient of each Linear's output.
FORWARD = 1000 + 100 + 100 + 100 + 100 + 10
GRADIENTS = 100 + 100 + 100 + 100 + 10
PARAMS = 1000 * 100 + 100 + 3 * (100 * 100 + 100) + 100 * 10 + 10


def model(tmp_path: Path, text: str = QUESTION) -> ModelResult:
    path = tmp_path / "q.py"
    path.write_text(text)
    fa = analyze_source(str(path), text, Settings(memory=True, optimizer="adam", device="H100"))
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.memory is not None
    return m


def test_peak_rows_at_the_optimizer_step(tmp_path: Path) -> None:
    m = model(tmp_path)
    assert m.memory is not None and m.memory.train_peak == PEAK
    rows = {r.label: r.bytes for r in peak_rows(m.memory, PARAMS)}
    assert rows == {
        "weights": WEIGHTS, "optimizer state": 2 * WEIGHTS, "batch": BATCH, "cuBLAS workspaces": WORKSPACES,
        "gradients": WEIGHTS, "kept for backward": 0, "optimizer step temporaries": WEIGHTS,
        "+ transient at the peak": 0}


def test_peak_rows_in_backward_leave_the_step_out(tmp_path: Path) -> None:
    """The explicit attention's peak is in backward: the step's temporaries are 0 in the sum, and
    their note says how much they take after the peak; the rows still add up to the peak."""
    m = model(tmp_path, ATTENTION)
    e = m.memory
    assert e is not None and e.train_peak_phase != "optimizer step" and e.optimizer_temp > 0
    rows = {r.label: r for r in peak_rows(e, m.params.total or 0)}
    step = rows["optimizer step temporaries"]
    assert step.bytes == 0 and step.note == f"{fmt_bytes(e.optimizer_temp)} during the step, after the peak"
    assert sum(r.bytes for r in rows.values()) == e.train_peak
    assert "buffers" not in rows  # no BatchNorm: no row for buffers


def test_peak_rows_show_buffers_when_there_are_some(tmp_path: Path) -> None:
    text = ("import torch\nfrom torch import nn\nmodel = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), "
            "nn.Linear(32, 10))\nx = torch.randn(16, 64)\nout = model(x)\n")
    m = model(tmp_path, text)
    assert m.memory is not None
    rows = {r.label: r.bytes for r in peak_rows(m.memory, m.params.total or 0)}
    # running_mean, running_var (float32, 32 each) and num_batches_tracked (int64).
    assert rows["buffers"] == m.memory.buffers >= 2 * 32 * 4 + 8


def test_explain_text_by_hand(tmp_path: Path) -> None:
    m = model(tmp_path)
    text = explain("q.py", m)
    lines = text.splitlines()
    assert lines[0] == f"model (q.py:3): {PARAMS:,} parameters; batch 256, fp32, adam, H100-80GB; " \
                       f"inputs from {m.inputs_from}"
    assert f"  forward elements   {FORWARD:>12,} per sample" in lines
    assert f"  gradient elements  {GRADIENTS:>12,} per sample" in lines
    elements = (FORWARD + GRADIENTS) * 256
    textbook = elements * 4
    assert f"  total              {FORWARD + GRADIENTS:>12,} x 256 = {elements:,} elements = " \
           f"{fmt_bytes(textbook)} at 4 bytes" in lines
    assert f"  {'weights':<30} {fmt_bytes(WEIGHTS):>11}   {PARAMS:,} parameters" in lines
    assert f"  {'= training peak':<30} {fmt_bytes(PEAK):>11}" in lines
    assert f"The training peak is {PEAK / textbook:.1f}x the hand count; without the fixed cuBLAS workspaces " \
           f"{(PEAK - WORKSPACES) / textbook:.1f}x." in lines
    h100 = DEVICES["h100-80gb"].memory
    (total,) = [line for line in lines if line.startswith(f"  {'device total':<30}")]
    assert total.endswith(f"reserved at the card's edge (caching allocator) + CUDA context (fits in {fmt_bytes(h100)})")


def test_explain_without_an_estimate_says_why(tmp_path: Path) -> None:
    text = "import torch.nn as nn\nmodel = nn.Linear(3, 4)\n"
    path = tmp_path / "m.py"
    fa = analyze_source(str(path), text, Settings(memory=True))
    (m,) = fa.models
    assert m.memory is None
    out = explain("m.py", m)
    assert out.startswith("m.py: model: no memory estimate: ") and "unknown" not in out


def test_explain_without_an_estimate_gives_at_most_three_reasons(tmp_path: Path) -> None:
    m = model(tmp_path)
    reasons = [UnknownInfo(f"reason {i}") for i in range(5)]
    assert explain("q.py", dataclasses.replace(m, memory=None, memory_unknowns=reasons[:2],
                                               forward_unknowns=reasons[2:])) == \
        "q.py: model: no memory estimate: reason 0; reason 1; reason 2"
    assert explain("q.py", dataclasses.replace(m, memory=None, memory_unknowns=[], forward_unknowns=[])) == \
        "q.py: model: no memory estimate: unknown"


def test_peak_row_notes_say_what_part_is_counted(tmp_path: Path) -> None:
    """At the optimizer step all gradients exist (the note is what they are) and nothing kept for
    backward is left (the note gives the whole, after the forward)."""
    m = model(tmp_path)
    e = m.memory
    assert e is not None
    notes = {r.label: r.note for r in peak_rows(e, PARAMS)}
    assert notes["gradients"] == "one per trainable weight, kept until the next zero_grad"
    assert notes["kept for backward"] == (f"{fmt_bytes(e.activations)} after the forward; layer inputs, "
                                          "activation outputs, masks, statistics, log-probabilities")


@pytest.mark.parametrize(("precision", "width"), [("fp32", 4), ("amp-bf16", 4), ("amp-fp16", 4), ("bf16", 2),
                                                  ("fp16", 2)])
def test_the_hand_count_is_in_the_weights_dtype(precision: str, width: int, tmp_path: Path) -> None:
    """People count in the weights' dtype: float32 under autocast (its master weights), 2 bytes for
    a model cast to bf16 / fp16."""
    path = tmp_path / "q.py"
    fa = analyze_source(str(path), QUESTION, Settings(memory=True, precision=precision))
    (m,) = [m for m in fa.models if m.name == "model"]
    elements = (FORWARD + GRADIENTS) * 256
    assert f"{elements:,} elements = {fmt_bytes(elements * width)} at {width} bytes" in explain("q.py", m)
