"""The limits that hold for any input (docs/limits.md): the analysis budget (time, steps,
cancellation), the file-size cap, non-regular files, and linear scans of whole source texts.

Timings are asserted loosely ("finished well within N s"): the point is that nothing hangs or
takes minutes, not how fast a loaded CI machine is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


def test_four_endless_classes_cost_one_budget(tmp_path: Path) -> None:
    """Four classes with an endless forward took 8 minutes (each trace ran its own step budget):
    the file's budget covers them all, and every model keeps its count."""
    one = ENDLESS_FORWARD.split("\n\n\n")[1]  # the class
    text = "import torch\nfrom torch import nn\n\n\n" + "\n\n".join(one.replace("Net", f"Net{i}") for i in range(4))
    path = tmp_path / "endless4.py"
    path.write_text(text)
    settings = vramlint.Settings(memory=True, time_budget=3.0, batch_size=4, inputs=(InputSpec((10,)),))
    result, seconds = _in_thread(vramlint.analyze_file, str(path), settings)
    assert seconds < 60
    assert [w.reason[:40] for w in result.warnings] == ["analysis stopped: time budget of 3 s exc"]
    # Net0 was built before its trace ran out of time; the classes after the stop could not be
    # built, and say so.
    first, *rest = result.models
    assert (first.name, first.params.total, first.memory) == ("Net0", 110, None)
    assert first.memory_unknowns[0].reason.startswith("no estimate: analysis stopped: time budget")
    assert [m.name for m in rest] == ["Net1", "Net2", "Net3"]
    assert all(m.error is not None and m.error.reason.startswith("analysis stopped") for m in rest)


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


# ---------------------------------------------------------------------- files that are not read
def _check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`vramlint check` in a subprocess: a hang fails the test at the timeout instead of blocking."""
    return subprocess.run([sys.executable, "-m", "vramlint", "check", "--no-memory", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.PIPE)


def _special(tmp_path: Path, kind: str, name: str) -> None:
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(kind)


SPECIAL = [("/dev/stdin", "character device|FIFO"), ("/dev/zero", "character device"), ("fifo", "FIFO"),
           ("folder", "folder")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize(("kind", "what"), SPECIAL)
def test_an_import_of_a_non_regular_file_is_reported_at_the_import(tmp_path: Path, kind: str, what: str) -> None:
    _special(tmp_path, kind, "helper.py")
    (tmp_path / "main.py").write_text("import torch.nn as nn\nfrom helper import Block\n\n"
                                      "ok = nn.Linear(10, 5)\nblock = Block()\n")
    done = _check("main.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"main\.py:2:\d+: warning: cannot import `helper` from .*helper\.py: not a regular file "
                     rf"\(a ({what})\): not read", done.stdout), done.stdout
    assert "main.py:4:1: ok (instance): 55 parameters" in done.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize(("kind", "what"), [k for k in SPECIAL if k[0] != "folder"])  # a folder is walked
def test_a_non_regular_main_file_is_not_read(tmp_path: Path, kind: str, what: str) -> None:
    _special(tmp_path, kind, "x.py")
    done = _check("x.py", cwd=tmp_path)
    assert re.search(rf"x\.py:1:1: error: not a regular file \(a ({what})\): not read", done.stdout), \
        done.stdout + done.stderr


def test_a_file_over_max_file_size_is_not_parsed(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.vramlint]\nmax-file-size = 1000\n")
    (tmp_path / "big.py").write_text("import torch.nn as nn\n\nok = nn.Linear(10, 5)\n" + "# filler\n" * 200)
    (tmp_path / "main.py").write_text("import torch.nn as nn\nfrom big import ok\n\nmodel = nn.Sequential(ok)\n")
    big = _check("big.py", cwd=tmp_path)
    assert "big.py:1:1: error: file larger than max-file-size (1,000 bytes): not analysed" in big.stdout, big.stdout
    main = _check("main.py", cwd=tmp_path)
    assert re.search(r"main\.py:2:\d+: warning: cannot import `big` .*: file larger than max-file-size",
                     main.stdout), main.stdout


def test_an_unsaved_text_over_max_file_size_is_not_parsed(tmp_path: Path) -> None:
    text = "x = [" + "1, " * 400_000 + "]\n"  # 1.2 MB: over the default cap
    result, seconds = _in_thread(vramlint.analyze_source, str(tmp_path / "big.py"), text)
    assert [e.reason for e in result.errors] == ["file larger than max-file-size (1,048,576 bytes): not analysed"]
    assert seconds < 30


# ---------------------------------------------------------------------- linear scans of the text
HEAD = "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
       "        self.fc = nn.Linear(10, 5)\n\n\n"


@pytest.mark.parametrize("filler", ["# " + "a" * 40_000, "TEXT = '" + "a" * 50_000 + "'"],
                         ids=["40k-comment", "50k-string"])
def test_long_runs_of_word_characters_are_scanned_in_linear_time(tmp_path: Path, filler: str) -> None:
    """The scan for called names was quadratic in such a run: 12.8 s and 28 s (55 s and 82 s on a
    loaded machine); now about a second."""
    result, seconds = _in_thread(vramlint.analyze_source, str(tmp_path / "m.py"), HEAD + filler + "\nmodel = Net()\n")
    assert [(m.name, m.params.total) for m in result.models] == [("Net", 55), ("model", 55)]
    assert seconds < 30


def test_export_scans_are_linear(tmp_path: Path) -> None:
    """`from x import *` reads `__all__` and re-exports with regular expressions: none may rescan."""
    lib = "from a import b" + " " * 50_000 + "(\n" + "__all__ = [\n" * 20_000 + "from" + "\n" * 20_000
    (tmp_path / "lib.py").write_text(lib)
    src = "import torch.nn as nn\nfrom lib import *\n\nok = nn.Linear(10, 5)\n"
    result, seconds = _in_thread(vramlint.analyze_source, str(tmp_path / "main.py"), src,
                                 vramlint.Settings(extra_paths=(str(tmp_path),)))
    assert [(m.name, m.params.total) for m in result.models] == [("ok", 55)]
    assert seconds < 30


# ---------------------------------------------------------------------- large displays
def test_a_1mb_list_literal_is_analysed_in_bounded_time(tmp_path: Path) -> None:
    """libcst took ~20 s (95 s on a loaded machine) and 1.4 GB to parse a 1 MB list of numbers: a
    display of over 10,000 constants is read by `ast.literal_eval` instead, its value exact."""
    text = HEAD + "DATA = [" + ", ".join(["1"] * 330_000) + "]\nmodel = nn.Linear(len(DATA), 1)\n"
    assert len(text) < 1024 * 1024  # under max-file-size: analysed
    result, seconds = _in_thread(vramlint.analyze_source, str(tmp_path / "m.py"), text)
    assert [(m.name, m.params.total) for m in result.models] == [("Net", 55), ("model", 330_001)]
    assert seconds < 60


def test_large_displays_keep_their_values(tmp_path: Path) -> None:
    words = ", ".join(f'"w{i}"' for i in range(20_000))
    ones = ", ".join(["1"] * 15_000)
    names = ", ".join(["x"] * 12_000)
    text = (f"import torch.nn as nn\n\nVOCAB = [{words}]\nVOCAB.append('extra')\n"  # lines 3-4
            f"emb = nn.Embedding(len(VOCAB), 8)\nT = ({ones},)\nt = nn.Linear(len(T), 1)\n"
            f"x = 1\nN = [{names}]\nn = nn.Linear(len(N), 1)\n")  # line 9: not constants
    result, _ = _in_thread(vramlint.analyze_source, str(tmp_path / "v.py"), text)
    counts = {m.name: m.params.total for m in result.models}
    assert counts == {"emb": 20_001 * 8, "t": 15_001, "n": None}
    assert [(w.reason, w.location.line if w.location else None) for w in result.warnings] \
        == [("literal too large to analyse (12,000 elements)", 9)]
