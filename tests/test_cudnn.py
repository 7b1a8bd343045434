"""cuDNN convolution workspaces (vramlint.memory.cudnn): the heuristics' engine against the GPU
measurements, the range a run-time choice leaves, and the settings read from the code."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from benchmarks.accuracy import CALIBRATION, EXCLUDED, case_source

from tests.support.libsources import TORCHVISION_VERSION, library_source
from vramlint.analysis.api import analyze_source
from vramlint.engine.source import SourceModule
from vramlint.frontends.registry import training_setup_handlers
from vramlint.frontends.training_setup import scan_training_setup
from vramlint.memory import cudnn
from vramlint.memory.devices import DEVICES
from vramlint.memory.estimate import MemoryEstimate, reserved_at
from vramlint.settings import Settings

CASES = {c["id"]: c for c in map(json.loads, CALIBRATION.read_text().splitlines())}
CONV_CASES = [i for i, c in CASES.items() if c["source"].startswith("tv:") and "vit" not in i and i not in EXCLUDED]
FLOAT = 4


def _model(text: str, **settings: Any) -> MemoryEstimate:
    fa = analyze_source("/tmp/m.py", textwrap.dedent(text), Settings(memory=True, device="H200", **settings))
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.memory is not None, (m.memory_unknowns, m.forward_unknowns)
    return m.memory


def _case(case_id: str) -> MemoryEstimate:
    case = CASES[case_id]
    return _model(case_source(case), extra_paths=(str(library_source("torchvision", TORCHVISION_VERSION)),),
                  precision=case["precision"], optimizer=case["optimizer"] if case["optimizer"] != "none" else "sgd")


# ---------------------------------------------------------------------- against the GPU
def test_resnet18_stem_workspace_is_what_the_measured_inference_needed() -> None:
    """ResNet-18 inference (batch 64, 224x224, H200): without workspaces the estimate was 7% under.
    The stem's workspace is its input, output and filter (NCHW transformed to NHWC), and with it
    the estimate is within 0.25% of the measured peak."""
    e = _case("tv_resnet18_infer")
    stem = cudnn.ConvGeometry((64, 3, 224, 224), (64, 64, 112, 112), (64, 3, 7, 7), (2, 2), (3, 3), (1, 1), 1,
                              "float32")
    assert cudnn.workspace(stem, False) == cudnn.ConvWorkspace(
        (64 * 3 * 224 * 224 + 64 * 64 * 112 * 112 + 64 * 3 * 7 * 7) * FLOAT, 0,
        cudnn.workspace(stem, False).forward_max, 0, 3 * 7 * 7 * 112 * 112 * FLOAT)  # columns: one image
    assert e.inference_range is not None
    low, high = e.inference_range
    measured = CASES["tv_resnet18_infer"]["peak_steady"]
    assert abs(measured - high) / measured < 0.0025
    assert (measured - low) / measured > 0.06  # what was missing


@pytest.mark.parametrize("case_id", CONV_CASES)
def test_measured_peak_falls_in_the_range(case_id: str) -> None:
    """The measurements ran with `cudnn.benchmark = False`: each is within the estimate's range
    [no workspace, the heuristics' workspace], up to the model's other errors (3.5% at most on
    training steps, 0.5% on inference, which has neither backward nor optimizer)."""
    case = CASES[case_id]
    e = _case(case_id)
    infer = case["mode"] == "infer"
    peak = e.inference_peak if infer else e.train_peak
    low, high = (e.inference_range if infer else e.train_range) or (peak, peak)
    assert low <= peak <= high
    measured = case["peak_steady"]
    outside = max(low - measured, measured - high, 0) / measured
    assert outside <= (0.005 if infer else 0.035), (low, high, measured)


# ---------------------------------------------------------------------- the workspace rules
def test_what_takes_a_workspace() -> None:
    """The transform for dense 3x3 (and larger) convolutions; none for 1x1 and depthwise ones,
    nor in float64 (off the tensor cores)."""
    g = cudnn.ConvGeometry((8, 16, 64, 64), (8, 32, 32, 32), (32, 16, 3, 3), (2, 2), (1, 1), (1, 1), 1, "float32")
    transform = (8 * 16 * 64 * 64 + 8 * 32 * 32 * 32 + 32 * 16 * 9) * FLOAT
    assert cudnn.workspace(g, True).forward == transform
    # 1x1 and depthwise convolutions take none; float64 runs off the tensor cores
    point = cudnn.ConvGeometry((8, 16, 64, 64), (8, 32, 64, 64), (32, 16, 1, 1), (1, 1), (0, 0), (1, 1), 1, "float32")
    depthwise = cudnn.ConvGeometry((8, 16, 64, 64), (8, 16, 64, 64), (16, 1, 3, 3), (1, 1), (1, 1), (1, 1), 16,
                                   "float32")
    assert cudnn.layout_transform(point) == cudnn.layout_transform(depthwise) == 0
    assert cudnn.layout_transform(cudnn.ConvGeometry(g.x, g.y, g.w, g.stride, g.padding, g.dilation, 1, "float64")) == 0


def test_layer_and_functional_convolutions_record_the_same_workspace() -> None:
    text = """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)

        def forward(self, x):
            return self.conv(x)

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(32, 16, 3, 3))

        def forward(self, x):
            return F.conv2d(x, self.w, None, stride=2, padding=1)

    model = Layer() if NAME == "layer" else Functional()
    y = model(torch.randn(8, 16, 64, 64))
    """
    ranges = [_model(text.replace("NAME", repr(n))).inference_range for n in ("layer", "functional")]
    transform = (8 * 16 * 64 * 64 + 8 * 32 * 32 * 32 + 32 * 16 * 9) * FLOAT
    assert ranges[0] == ranges[1]
    assert ranges[0] is not None and ranges[0][1] - ranges[0][0] == transform


CONV_NET = """
    import torch
    import torch.nn as nn
    {setting}
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(64 * 32 * 32, 10))
    y = model(torch.randn(32, 3, 32, 32))
"""


def test_benchmark_mode_widens_the_range_and_fits_uses_its_high_end() -> None:
    default = _model(CONV_NET.format(setting=""))
    bench = _model(CONV_NET.format(setting="torch.backends.cudnn.benchmark = True"))
    assert default.train_range is not None and bench.train_range is not None
    assert bench.train_peak == default.train_peak  # the heuristics' pick stays the estimate
    assert bench.train_range[0] == default.train_range[0]
    assert bench.train_range[1] > default.train_range[1]
    # FFT over the padded 34x34 plane of the 64->64 convolution: more than the transform
    fft = (32 * 64 + 64 * 64 + 32 * 64) * 34 * 18 * 8
    assert bench.inference_range is not None and bench.inference_range[1] - default.inference_peak >= \
        fft - (32 * 64 * 32 * 32 * 2 + 64 * 64 * 9) * FLOAT
    # The allocator replays the high end's run: never less than its peak plus the 2% floor, and
    # more than the default's, whose high end is the heuristics' pick.
    context = DEVICES["h200"].context
    assert bench.device_total >= reserved_at(bench.train_range[1]) + context
    assert default.device_total >= reserved_at(default.train_peak) + context
    assert bench.device_total > default.device_total
    assert any("cudnn.benchmark = True at line 4" in n for n in bench.notes)


def test_cudnn_disabled_uses_torchs_columns_buffer() -> None:
    """`torch.backends.cudnn.enabled = False`: slow_conv2d's columns, one image at a time, no range."""
    off = _model(CONV_NET.format(setting="torch.backends.cudnn.enabled = False"))
    default = _model(CONV_NET.format(setting=""))
    assert off.train_range is None and off.inference_range is None
    assert default.inference_range is not None
    columns = 64 * 9 * 32 * 32 * FLOAT  # the second convolution's, the larger
    assert off.inference_peak == default.inference_range[0] + columns


# ---------------------------------------------------------------------- read from the code
def _scan(code: str) -> list[str]:
    source = SourceModule("train.py", textwrap.dedent(code), "train")
    return [f.value for f in scan_training_setup(source, training_setup_handlers()).convolutions]


def test_settings_read_from_the_code() -> None:
    assert _scan("import torch\ntorch.backends.cudnn.benchmark = True\n") == ["benchmark"]
    assert _scan("from torch.backends import cudnn\ncudnn.enabled = False\n") == ["disabled"]
    assert _scan("import torch.backends.cudnn as cudnn\ncudnn.benchmark = True\ncudnn.enabled = False\n") == \
        ["benchmark", "disabled"]
    # the defaults, a read, another library's flag of the same name
    assert _scan("import torch\ntorch.backends.cudnn.benchmark = False\n") == []
    assert _scan("import torch\nif torch.backends.cudnn.benchmark:\n    pass\n") == []
    assert _scan("import torch\nimport other\nother.backends.cudnn.benchmark = True\n") == []


def test_json_and_text_carry_the_range(tmp_path: Path) -> None:
    from vramlint.render.json_output import memory_json
    from vramlint.render.units import fmt_range

    e = _model(CONV_NET.format(setting=""))
    out = memory_json(e)
    assert out["range"] == list(e.train_range or ()) and out["inference_range"] == list(e.inference_range or ())
    assert out["range"][0] < out["bytes"]["train_peak"] or out["range"][1] == out["bytes"]["train_peak"]
    assert fmt_range((int(1.2 * 2**30), int(2.7 * 2**30))) == " (1.20-2.70 GiB by cuDNN's algorithm)"
    mlp = _model("import torch\nimport torch.nn as nn\nmodel = nn.Linear(10, 10)\ny = model(torch.randn(4, 10))\n")
    assert memory_json(mlp)["range"] is None and fmt_range(mlp.train_range) == ""
