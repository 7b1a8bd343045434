"""Issue 17: `vramlint check` over several files whatever one of them does (a crash of the
analysis, a worker process that dies or hangs), and the CLI bugs a newcomer met (input flags,
bare `vramlint`, help texts, `explain --no-memory`).

A crash of the analysis is injected: the engine bug that caused it in the issue is fixed on its
own, and these tests must keep failing a CLI that loses the other files' results. The injection
runs `vramlint` in a child Python (`-c`) that replaces `analyze_file` for one file; worker
processes are forked, so they inherit the replacement.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import vramlint
from vramlint.engine.values import Unknown
from vramlint.frontends.torch.tensors import broadcast, shape_text
from vramlint.settings import InputSpec, parse_directives

GOOD = """\
import torch.nn as nn

model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 2))
"""

# The repro: the parameter count of a model with an unknown part, printed with `%`.
CRASH = """\
import torch.nn as nn
from somewhere_unknown import Mystery

model = nn.Sequential(nn.Linear(10, 20), Mystery())
n = sum(p.numel() for p in model.parameters())
print("%.2fM" % (n / 1e6,))
"""

# Runs `vramlint` with `analyze_file` replaced for b_crash.py: `raise` raises as the engine did,
# `die` ends the (worker) process, `kill` kills it with SIGKILL, `hang` never returns, `wait`
# returns once the file named by argv[2] exists. FILE_TIME_LIMIT is 10 s: the good files, tiny,
# finish well within it even on a busy machine.
INJECT = """\
import multiprocessing, os, sys, time
multiprocessing.set_start_method("fork", force=True)
from vramlint.analysis import api
from vramlint.cli import main as cli

real, mode = api.analyze_file, sys.argv[1]

def analyze_file(path, settings=None):
    if os.path.basename(path) == "b_crash.py":
        if mode == "raise":
            raise TypeError("cannot pickle '_thread.lock' object")
        if mode == "die":
            os._exit(3)
        if mode == "kill":
            os.kill(os.getpid(), 9)
        if mode == "hang":
            time.sleep(3600)
    if mode == "wait" and os.path.basename(path) == "c_good.py":
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.05)
    return real(path, settings)

api.analyze_file = cli.analyze_file = analyze_file
try:
    from vramlint.cli import pool
    pool.FILE_TIME_LIMIT = 10
except ImportError:  # a CLI without the guard: the run then hangs, and the test's timeout fails it
    pass
sys.exit(cli.main(sys.argv[3:]))
"""

needs_fork = pytest.mark.skipif(sys.platform == "win32", reason="the injection forks worker processes")


def three_files(root: Path) -> None:
    for name, text in (("a_good.py", GOOD), ("b_crash.py", CRASH), ("c_good.py", GOOD)):
        (root / name).write_text(text)


def injected(root: Path, mode: str, *args: str, flag: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "server"),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", INJECT, mode, flag, "check", ".", "--no-memory", *args],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def kill(p: subprocess.Popen[str]) -> None:
    """The child and its worker processes (its own process group)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def run_injected(root: Path, mode: str, *args: str) -> tuple[int, str, str]:
    p = injected(root, mode, *args)
    try:
        out, err = p.communicate(timeout=120)  # a lost worker must not hang the run
    except subprocess.TimeoutExpired:
        kill(p)
        raise
    return p.returncode, out, err


def model_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "model (instance)" in line]


@needs_fork
@pytest.mark.parametrize(("mode", "jobs", "reason"), [
    ("raise", "1", "internal error: TypeError: cannot pickle '_thread.lock' object"),
    ("raise", "2", "internal error: TypeError: cannot pickle '_thread.lock' object"),
    ("die", "2", "internal error: the worker process analysing this file died (exit code 3)"),
    ("kill", "2", "internal error: the worker process analysing this file died (killed by SIGKILL)"),
    ("hang", "2", "internal error: the analysis ran past the limit of 10 s per file and was stopped"),
])
def test_one_broken_file_does_not_lose_the_others(tmp_path: Path, mode: str, jobs: str, reason: str) -> None:
    three_files(tmp_path)
    code, out, err = run_injected(tmp_path, mode, "--jobs", jobs)
    assert code == 1, err  # as for an error finding
    assert "Traceback" not in err
    lines = out.splitlines()
    # Every file, in input order; the broken one as a located error at its line 1.
    assert model_lines(out) == ["./a_good.py:3:1: model (instance): 262 parameters",
                                "./c_good.py:3:1: model (instance): 262 parameters"]
    assert f"./b_crash.py:1:1: error: {reason}" in lines[1]
    assert lines[-1] == "1 error"


@needs_fork
@pytest.mark.parametrize("mode", ["raise", "kill", "hang"])
def test_json_and_sarif_stay_valid_with_one_vl000_per_broken_file(tmp_path: Path, mode: str) -> None:
    three_files(tmp_path)
    for fmt in ("json", "sarif", "github"):
        code, out, err = run_injected(tmp_path, mode, "--jobs", "2", "--format", fmt)
        assert code == 1 and "Traceback" not in err, err
        if fmt == "json":
            files = {f["path"]: f for f in json.loads(out)["files"]}
            assert list(files) == ["./a_good.py", "./b_crash.py", "./c_good.py"]
            (error,) = files["./b_crash.py"]["errors"]
            assert error["code"] == "VL000" and error["line"] == 1 and error["reason"].startswith("internal error: ")
            assert [m["params"]["total"] for m in files["./a_good.py"]["models"] + files["./c_good.py"]["models"]] \
                == [262, 262]
        elif fmt == "sarif":
            (run,) = json.loads(out)["runs"]
            (result,) = run["results"]
            assert result["ruleId"] == "VL000" and result["level"] == "error"
            assert result["message"]["text"].startswith("internal error: ")
            location = result["locations"][0]["physicalLocation"]
            assert location["artifactLocation"]["uri"] == "b_crash.py" and location["region"]["startLine"] == 1
        else:
            (line,) = out.splitlines()
            assert line.startswith("::error file=b_crash.py,line=1,col=1,title=VL000 analysis-error::internal error")


@needs_fork
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_text_output_streams_file_by_file(tmp_path: Path, jobs: str) -> None:
    """c_good.py's analysis waits until the test has read a_good.py's line: a CLI that prints only
    at the end never shows it, and the test fails on its timeout instead of hanging."""
    three_files(tmp_path)
    flag = tmp_path / "go"
    p = injected(tmp_path, "wait", "--jobs", jobs, flag=str(flag))
    seen: list[str] = []

    def read() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            seen.append(line)
            if line.startswith("./a_good.py:"):
                flag.touch()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=120)
    if reader.is_alive():
        kill(p)
        pytest.fail(f"a_good.py's result was not printed before c_good.py finished: {seen}")
    assert p.wait(timeout=30) == 0  # nothing broken in this run
    assert model_lines("".join(seen))[-1] == "./c_good.py:3:1: model (instance): 262 parameters"


# ---------------------------------------------------------------------- input flags
TWO = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(1000, 16)
        self.fc = nn.Linear(8, 16)

    def forward(self, x, idx):
        return self.fc(x) + self.emb(idx).mean(1)


model = Net()
out = model(torch.randn(256, 8), torch.randint(0, 1000, (256, 64)))
"""

# The forward reads a value vramlint cannot know: the shape in the message has an unknown dim.
UNKNOWN_DIM = """\
import torch.nn as nn
from mylib import GROUPS


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(x.view(x.size(0), GROUPS, 64))
"""


def models_of(stdout: str) -> dict[str, Any]:
    return {m["name"]: m for f in json.loads(stdout)["files"] for m in f["models"]}


def test_input_dtype_applies_to_the_input_shape_before_it(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(TWO)
    r = vramlint("check", "two.py", "--model", "Net", "--input-shape", "8", "--input-shape", "64",
                 "--input-dtype", "int64", "--batch-size", "4", "--format", "json", cwd=tmp_path)
    net = models_of(r.stdout)["Net"]
    assert net["setup"]["inputs"] == {"value": [{"shape": [8], "dtype": "float32"}, {"shape": [64], "dtype": "int64"}],
                                      "source": "flag"}
    assert net["output_shape"] == [4, 16] and net["memory"] is not None


def test_input_shape_keeps_the_batch_the_code_gives(tmp_path: Path) -> None:
    """Without --batch-size, the call in the file gives the batch (256), not 1 labelled "flag"."""
    (tmp_path / "two.py").write_text(TWO)
    r = vramlint("check", "two.py", "--input-shape", "8", "--input-shape", "64", "--input-dtype", "int64",
                 "--format", "json", cwd=tmp_path)
    models = models_of(r.stdout)
    instance, cls = models["model"], models["Net"]
    assert instance["setup"]["batch_size"] == {"value": 256, "source": "code: the call at line 16"}
    assert instance["memory"]["batch_size"] == 256 and instance["output_shape"] == [256, 16]
    assert instance["inputs_from"] == "flag, batch 256 from code: the call at line 16"
    # The class is never called by name: nothing gives its batch, and the default says so.
    assert cls["setup"]["batch_size"] == {"value": 1, "source": "default"} and cls["inputs_from"] == "flag"


def test_a_forward_that_cannot_take_the_input_shapes_gets_one_line(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(TWO)
    memory, no_memory = (vramlint("check", "two.py", "--model", "Net", "--input-shape", "8", *more, cwd=tmp_path)
                         for more in ((), ("--no-memory",)))
    message = "Net.forward() takes 2 inputs (x, idx), but 1 input shape was given (--input-shape)"
    assert memory.returncode == 0
    assert memory.stdout.splitlines()[1] == \
        f"two.py:5:7: info VL301 [unresolved-input] Net: no inputs to estimate memory: {message}"
    assert no_memory.stdout.splitlines()[1:3] == ["    forward:", f"      two.py:5:7: {message}"]


def test_no_python_repr_of_an_unknown_in_messages(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(UNKNOWN_DIM)
    r = vramlint("check", "net.py", "--input-shape", "640", cwd=tmp_path)
    assert "Unknown(" not in r.stdout + r.stderr
    assert "Linear expects 128 input features, got a tensor of shape [1, ?, 64] (?: `GROUPS` from module " \
           "`mylib`" in r.stdout
    # A broadcast of shapes with unknown dims: the helper-module message of the issue.
    out = broadcast((512, 128), (1, 128, Unknown("required argument `d_model` of Block.__init__() has no known value")))
    assert isinstance(out, Unknown)
    assert out.reason == ("shapes [512, 128] and [1, 128, ?] (?: required argument `d_model` of Block.__init__() has "
                          "no known value) cannot be broadcast")
    # A whole shape unknown, and a Keras shape with None: no repr either.
    assert shape_text(Unknown("`SHAPE` from module `mylib` not found")) == \
        "of unknown rank (`SHAPE` from module `mylib` not found)"
    assert shape_text((None, Unknown("r"), 3)) == "[None, ?, 3] (?: r)"


@pytest.mark.parametrize(("args", "message"), [
    (["--input-shape", "3,x"], "--input-shape '3,x': expected comma-separated integers like 3,224,224"),
    (["--input-shape", "3,"], "--input-shape '3,': expected comma-separated integers"),
    (["--input-shape", "3,,224"], "--input-shape '3,,224': expected comma-separated integers"),
    (["--input-shape", "3", "--input-dtype", "int64", "--input-dtype", "int32"],
     "--input-dtype int32: the --input-shape before it has a dtype already (int64)"),
    (["--input-dtype", "int64", "--input-shape", "3"], "--input-dtype int64: give it after the --input-shape"),
])
def test_input_flags_are_validated_strictly(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from vramlint.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["check", "nothing.py", *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_input_flag_messages(tmp_path: Path) -> None:
    r = vramlint("check", "--input-shape", "3,x", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert "vramlint check: error: --input-shape '3,x': expected comma-separated integers like 3,224,224" in r.stderr


def test_directive_inputs_pair_and_validate_like_the_flags() -> None:
    text = "# vramlint: input-shape=8 input-shape=64 input-dtype=int64\nm = 1\n# vramlint: input-shape=3,x\n"
    directives, problems = parse_directives(text, "x.py")
    assert directives[0].values["inputs"] == (InputSpec((8,)), InputSpec((64,), "int64"))
    assert problems == [(3, "vramlint directive `input-shape=3,x`: expected comma-separated integers like 3,224,224")]


# ---------------------------------------------------------------------- help and usage
def test_bare_vramlint_prints_the_help() -> None:
    r = vramlint()
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("usage: vramlint [-h] [--version] COMMAND ...")
    assert "Static GPU memory estimates for PyTorch and Keras models" in r.stderr
    assert "check     analyse files and folders" in r.stderr


def test_format_has_help_per_format() -> None:
    check, report = vramlint("check", "--help"), vramlint("report", "--help")
    text = " ".join(check.stdout.split())
    for needle in ("full: each model (parameters, memory, setup) and finding", "json: the versioned document", "sarif: SARIF 2.1.0",
                   "github: GitHub Actions annotations", "--input-dtype DTYPE the dtype of the --input-shape given "
                   "just before it", "The shapes apply to every model checked (--model picks which)"):
        assert needle in text
    assert "text: the per-layer table (default); json:" in " ".join(report.stdout.split())


def test_explain_refuses_no_memory(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(GOOD)
    r = vramlint("explain", "m.py", "--model", "model", "--no-memory", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[-1] == ("vramlint explain: error: --no-memory does not apply: explain walks through "
                                         "the memory estimate (parameters only: vramlint check --no-memory)")
    assert "--no-memory" not in vramlint("explain", "--help").stdout
    # report and check keep it.
    assert vramlint("report", "m.py", "--model", "model", "--no-memory", cwd=tmp_path).returncode == 0
