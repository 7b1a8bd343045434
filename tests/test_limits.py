"""The limits that hold for any input (docs/limits.md): the analysis budget (time, steps,
cancellation), the file-size cap, non-regular files, and linear scans of whole source texts.

Timings are asserted loosely ("finished well within N s"): the point is that nothing hangs or
takes minutes, not how fast a loaded CI machine is.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import vramlint
from vramlint.analysis.api import AnalysisCancelled, get_loader, search_paths
from vramlint.settings import InputSpec, load_settings

ENDLESS_FORWARD = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 10)

    def forward(self, x):
        x = self.fc(x)
        while True:
            x = x + 1
        return x


model = Net()
model(torch.randn(4, 10))
"""

# A library whose top level takes seconds (each loop under the per-statement step budget), and
# defines what the model needs only at its end: a half-evaluated cached copy would lack WIDTH.
SLOW_LIBRARY = ("import torch.nn as nn\n\n" + "for _ in range(100_000):\n    pass\n" * 20
                + "WIDTH = 16\n\n\ndef make():\n    return nn.Linear(WIDTH, WIDTH)\n")
USES_LIBRARY = "from slowlib import make\n\nmodel = make()\n"


def _in_thread(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """(result or exception, seconds) of fn run in a thread, failing past 120 s instead of hanging."""
    out: list[object] = []

    def target() -> None:
        try:
            out.append(fn(*args, **kwargs))
        except BaseException as err:  # handed to the test
            out.append(err)

    start = time.monotonic()
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "analysis did not finish within 120 s"
    return out[0], time.monotonic() - start


def test_time_budget_stops_an_endless_forward_at_the_loop(tmp_path: Path) -> None:
    """The loop runs in the memory estimate's forward trace, after both models were built."""
    path = tmp_path / "endless.py"
    text = ENDLESS_FORWARD.replace("model(torch.randn(4, 10))\n", "")
    path.write_text(text)
    settings = vramlint.Settings(memory=True, time_budget=2.0, batch_size=4, inputs=(InputSpec((10,)),))
    result, seconds = _in_thread(vramlint.analyze_file, str(path), settings)
    assert isinstance(result, vramlint.FileAnalysis)
    assert seconds < 60
    stops = [w for w in result.warnings if w.reason.startswith("analysis stopped: time budget of 2 s")]
    assert stops and stops[0].location is not None and stops[0].location.line == 12  # `while True:`
    # What was done before the stop stands: both models were built and counted.
    assert {m.name: m.params.total for m in result.models} == {"Net": 110, "model": 110}


def test_time_budget_in_the_files_own_top_level(tmp_path: Path) -> None:
    """The module-level `model(...)` call runs the endless forward while the file itself is
    evaluated: the analysis ends with the stop, located at the loop."""
    path = tmp_path / "endless.py"
    path.write_text(ENDLESS_FORWARD)
    result, seconds = _in_thread(vramlint.analyze_file, str(path), vramlint.Settings(time_budget=1.0))
    assert isinstance(result, vramlint.FileAnalysis)
    assert seconds < 60
    assert [(w.reason[:40], w.location.line if w.location else None) for w in result.warnings] \
        == [("analysis stopped: time budget of 1 s exc", 12)]


def test_step_budget_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.vramlint]\nstep-budget = 200000\n")
    path = tmp_path / "endless.py"
    path.write_text(ENDLESS_FORWARD)
    settings = load_settings(tmp_path)
    assert settings.step_budget == 200_000
    result, _ = _in_thread(vramlint.analyze_file, str(path), settings)
    assert any(w.reason.startswith("analysis stopped: step budget of 200,000 steps") for w in result.warnings)


@pytest.mark.parametrize("line", ["time-budget = 0", "time-budget = \"1m\"", "step-budget = 1.5",
                                  "max-file-size = -1", "max-file-size = true"])
def test_limit_settings_are_validated(tmp_path: Path, line: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.vramlint]\n{line}\n")
    with pytest.raises(vramlint.ConfigError, match=line.split(" ")[0]):
        load_settings(tmp_path)


def test_cancel_stops_an_endless_analysis_quickly(tmp_path: Path) -> None:
    path = tmp_path / "endless.py"
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    try:
        result, seconds = _in_thread(vramlint.analyze_source, str(path), ENDLESS_FORWARD,
                                     vramlint.Settings(memory=True), cancel=cancel)
    finally:
        timer.cancel()
    assert isinstance(result, AnalysisCancelled)
    assert seconds < 15  # uncancelled, the model's own step budget takes about a minute


def test_cancel_during_a_library_module_leaves_no_half_evaluated_copy(tmp_path: Path) -> None:
    (tmp_path / "slowlib.py").write_text(SLOW_LIBRARY)
    path = tmp_path / "main.py"
    path.write_text(USES_LIBRARY)
    settings = vramlint.Settings(extra_paths=(str(tmp_path),))
    loader = get_loader(search_paths(settings))
    cancel = threading.Event()

    def cancel_once_the_library_runs() -> None:
        deadline = time.monotonic() + 60
        while "slowlib" not in loader.modules and time.monotonic() < deadline:
            time.sleep(0.005)
        cancel.set()

    watcher = threading.Thread(target=cancel_once_the_library_runs, daemon=True)
    watcher.start()
    result, seconds = _in_thread(vramlint.analyze_file, str(path), settings, cancel=cancel)
    watcher.join()
    assert isinstance(result, AnalysisCancelled)
    assert "slowlib" not in loader.modules  # dropped, not cached half-evaluated
    again, _ = _in_thread(vramlint.analyze_file, str(path), settings)
    assert isinstance(again, vramlint.FileAnalysis)
    assert [(m.name, m.params.total) for m in again.models] == [("model", 16 * 16 + 16)]


def test_a_set_cancel_event_stops_before_starting(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(AnalysisCancelled):
        vramlint.analyze_source(str(tmp_path / "x.py"), "x = 1\n", cancel=cancel)
