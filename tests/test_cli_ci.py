"""The `vramlint` executable end to end, as CI runs it: every command, option, output format,
configuration layer and exit code.

Each test runs the real executable (`tests.test_cli.vramlint`) on small models written to
`tmp_path`, and asserts several things per invocation to stay fast.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import vramlint
from vramlint import __version__
from vramlint.analysis.api import analyze_source
from vramlint.memory.devices import DEVICES, device_named
from vramlint.memory.estimate import MemoryEstimate
from vramlint.render.units import fmt_bytes
from vramlint.settings import Settings

H100 = DEVICES["h100-80gb"]  # the default card: 85,029,158,912 bytes reported by the driver

# ---------------------------------------------------------------------- the models
MLP = """\
import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, d_in=64, hidden=128, d_out=10):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.head(self.body(x))


class TwoIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.b = nn.Linear(8, 32)

    def forward(self, x, y):
        return self.a(x) + self.b(y)
"""

# A small conv net whose inputs come from an in-file directive (the line above the model).
CONV = """\
import torch.nn as nn

# vramlint: batch-size=4 input-shape=3,32,32
net = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    nn.Flatten(), nn.Linear(8, 10),
)
"""

MISMATCH = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(64, 128)
        self.head = nn.Linear(100, 10)

    def forward(self, x):
        return self.head(self.body(x))
"""

# 537M parameters called on a batch of 64 in the file: ~11 GiB to train with Adam, ~2.9 GiB to infer.
HUGE = """\
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(16384, 16384), nn.ReLU(), nn.Linear(16384, 16384), nn.ReLU(), nn.Linear(16384, 10))
out = model(torch.randn(64, 16384))
"""

# One layer with 99% of the parameters: a VL101 warning (and a VL301 info: no batch size).
WIDE = """\
import torch.nn as nn
net = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
"""

SMALL = """\
import torch.nn as nn
m = nn.Linear(3, 4)
"""

TOKENS = """\
import torch.nn as nn

lm = nn.Sequential(nn.Embedding(100, 16), nn.Flatten(), nn.Linear(16 * 8, 4))
"""

# Checkpointing that only `gradient_checkpointing_enable()` switches on (nothing in the code
# calls `checkpoint` by name, so only the flag or the configuration turns it on).
CKPT = """\
import torch.nn as nn
import torch.utils.checkpoint as cp


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.wrap = None
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
                                     for _ in range(4)])

    def gradient_checkpointing_enable(self):
        self.wrap = getattr(cp, "check" + "point")

    def forward(self, x):
        for b in self.blocks:
            x = b(x) if self.wrap is None else self.wrap(b, x, use_reentrant=False)
        return x
"""

FINDING = re.compile(r"^(?P<path>\S+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning|info) "
                     r"(?P<code>VL\d{3}) \[(?P<name>[a-z-]+)\] (?P<message>.+)$")


def run_all(cwd: Path | None, *calls: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Independent invocations side by side (each takes ~0.3 s, mostly starting up)."""
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        return list(pool.map(lambda args: vramlint(*args, cwd=cwd), calls))


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def doc_of(stdout: str) -> dict[str, Any]:
    doc = json.loads(stdout)
    assert doc["schema"] == "vramlint/1"
    return doc


def models_of(stdout: str) -> dict[str, dict[str, Any]]:
    """The models of a JSON document by name (names are unique in these tests)."""
    return {m["name"]: m for f in doc_of(stdout)["files"] for m in f["models"]}


def sources(model: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    return {k: (v["value"], v["source"]) for k, v in model["setup"].items()}


def findings(stdout: str) -> list[dict[str, str]]:
    return [m.groupdict() for line in stdout.splitlines() if (m := FINDING.match(line))]


def usage_error(r: Any, *needles: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


# ---------------------------------------------------------------------- the commands
def test_version_help_and_no_command() -> None:
    version, top, check, report, explain, nothing = run_all(
        None, ("--version",), ("--help",), ("check", "--help"), ("report", "--help"), ("explain", "--help"), ())
    assert (version.returncode, version.stdout.strip()) == (0, f"vramlint {__version__}")
    assert top.returncode == 0 and all(c in top.stdout for c in ("check", "report", "explain", "--version"))
    r = check
    assert r.returncode == 0
    for option in ("--model", "--batch-size", "--input-shape", "--input-dtype", "--precision", "--optimizer",
                   "--gpu", "--mode", "--format", "--fail-on", "--extra-path", "--config", "--jobs",
                   "--checkpointing", "--max-batch", "--no-memory", "--layers"):
        assert option in r.stdout, option
    assert report.returncode == 0 and "--format" in report.stdout and "FILE" in report.stdout
    assert explain.returncode == 0 and "--model" in explain.stdout and "--format" not in explain.stdout
    usage_error(nothing, "usage: vramlint")


def test_check_files_folders_and_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    write(tmp_path, "sub/conv.py", CONV)
    write(tmp_path, "sub/notes.txt", "not python")
    r, file, folder = run_all(tmp_path, ("check",), ("check", "mlp.py", "--model", "MLP"), ("check", "sub"))
    # No path: the current directory, walked in sorted order, paths as found (./...).
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "./mlp.py:5:7: MLP (class): 26,122 parameters"
    assert "./mlp.py:15:7: TwoIn (class): 832 parameters" in lines
    assert "./sub/conv.py:4:1: net (instance): 330 parameters; output [4, 10]" in lines
    assert "    memory (batch 4, fp32, adam, H100-80GB; inputs from directive at line 3):" in lines
    # The classes have a first Linear but no batch size: an info each, counted on the last line.
    infos = findings(r.stdout)
    assert [(f["path"], f["line"], f["code"], f["severity"]) for f in infos] == [
        ("./mlp.py", "5", "VL301", "info"), ("./mlp.py", "15", "VL301", "info")]
    assert lines[-1] == "2 infos"
    # A file, and a folder, as given (relative to the cwd).
    assert file.stdout.splitlines()[0] == "mlp.py:5:7: MLP (class): 26,122 parameters"
    assert folder.returncode == 0 and folder.stdout.startswith("sub/conv.py:4:1: net (instance)")
    # Absolute paths stay absolute; several paths in the order given.
    r = vramlint("check", str(tmp_path / "sub"), str(tmp_path / "mlp.py"), "--format", "json")
    assert [f["path"] for f in doc_of(r.stdout)["files"]] == [str(tmp_path / "sub" / "conv.py"),
                                                               str(tmp_path / "mlp.py")]


def test_model_selection(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    write(tmp_path, "conv.py", CONV)
    r, by_file, absolute, unknown, unknown_in_file = run_all(
        tmp_path, ("check", ".", "--model", "MLP", "--model", "net", "--format", "json"),
        ("check", ".", "--model", "mlp.py::TwoIn", "--format", "json"),
        ("check", str(tmp_path), "--model", f"{tmp_path / 'conv.py'}::net"), ("check", ".", "--model", "Nope"),
        ("check", ".", "--model", "conv.py::MLP"))
    assert r.returncode == 0
    assert [(f["path"], [m["name"] for m in f["models"]]) for f in doc_of(r.stdout)["files"]] == [
        ("./conv.py", ["net"]), ("./mlp.py", ["MLP"])]
    # Only the selected model's findings (TwoIn's VL301 is gone).
    assert [x["model"] for f in doc_of(r.stdout)["files"] for x in f["findings"]] == ["MLP"]
    # FILE::NAME picks the model of that file only.
    assert by_file.returncode == 0
    assert {f["path"]: [m["name"] for m in f["models"]] for f in doc_of(by_file.stdout)["files"]} == {
        "./conv.py": [], "./mlp.py": ["TwoIn"]}
    assert absolute.returncode == 0
    assert absolute.stdout.startswith(f"{tmp_path / 'conv.py'}:4:1: net (instance)")
    # Unknown names: exit 2 listing what was found (sorted, across all files).
    usage_error(unknown, "no model named Nope; models found: MLP, TwoIn, net")
    assert unknown.stdout == ""
    usage_error(unknown_in_file, "no model named MLP")


def test_batch_size_input_shapes_and_dtypes(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    write(tmp_path, "tokens.py", TOKENS)
    r, two, tokens, dims = run_all(
        tmp_path, ("check", "mlp.py", "--batch-size", "32"),
        ("check", "mlp.py", "--model", "TwoIn", "--input-shape", "16", "--input-shape", "8", "--batch-size", "4",
         "--format", "json"),
        ("check", "tokens.py", "--input-shape", "8", "--input-dtype", "int64", "--batch-size", "2", "--format", "json"),
        ("check", "mlp.py", "--model", "TwoIn", "--input-shape", "2x16", "--input-shape", "2x8", "--format", "json"))
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[:2] == [
        "mlp.py:5:7: MLP (class): 26,122 parameters; output [32, 10]",
        "    memory (batch 32, fp32, adam, H100-80GB; inputs from the first layer, Linear(64, ...), batch 32 from flag):",
    ]
    assert lines[2].startswith("      training peak ") and f": training fits in the H100-80GB ({fmt_bytes(H100.memory)})" in lines[2]
    # TwoIn's forward takes two tensors: the first layer gives only one.
    assert "    memory: no estimate: required argument `y` of TwoIn.forward() has no known value" in lines
    # Two --input-shape: one per forward argument.
    m = models_of(two.stdout)["TwoIn"]
    assert m["output_shape"] == [4, 32] and m["inputs_from"] == "flag"
    assert sources(m)["inputs"] == ([{"shape": [16], "dtype": "float32"}, {"shape": [8], "dtype": "float32"}],
                                    "flag")
    assert sources(m)["batch_size"] == (4, "flag")
    assert m["memory"]["batch_size"] == 4 and m["memory"]["bytes"]["inputs"] > 0
    # Token ids: --input-dtype goes with the --input-shape given before it (3x8 also reads as 3,8).
    m = models_of(tokens.stdout)["lm"]
    assert tokens.returncode == 0 and m["output_shape"] == [2, 4]
    assert sources(m)["inputs"] == ([{"shape": [8], "dtype": "int64"}], "flag")
    assert m["memory"] is not None and m["forward_unknowns"] == []
    assert models_of(dims.stdout)["TwoIn"]["output_shape"] == [1, 2, 32]  # batch 1 by default


def test_precision_each_value(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    weights = {}
    precisions = ("fp32", "amp-bf16", "amp-fp16", "bf16", "fp16")
    runs = run_all(tmp_path, *[("check", "mlp.py", "--model", "MLP", "--batch-size", "64", "--precision", precision,
                                "--format", "json") for precision in precisions])
    for precision, r in zip(precisions, runs):
        assert r.returncode == 0, r.stderr
        m = models_of(r.stdout)["MLP"]
        assert m["memory"]["precision"] == precision
        assert sources(m)["precision"] == (precision, "flag")
        weights[precision] = m["memory"]["bytes"]["weights"]
    # Autocast keeps fp32 master weights; a bf16/fp16 model has 2-byte weights.
    assert weights["fp32"] == weights["amp-bf16"] == weights["amp-fp16"]
    assert weights["bf16"] == weights["fp16"] < 0.6 * weights["fp32"]
    r = vramlint("check", "mlp.py", "--model", "MLP", "--batch-size", "64", "--precision", "amp-bf16",
                 cwd=tmp_path)
    assert "    memory (batch 64, amp-bf16, adam, H100-80GB;" in r.stdout


def test_optimizer_flag_and_every_value(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    optimizers = ("sgd", "sgd-momentum", "adam", "adamw", "amsgrad", "adagrad", "rmsprop", "adafactor", "adam8bit",
                  "lion")
    # Every value, one model each (a directive above each model), in one run.
    write(tmp_path, "many.py", "import torch.nn as nn\n" + "".join(
        f"\n# vramlint: optimizer={o} batch-size=8\nm_{o.replace('-', '_')} = nn.Linear(256, 256)\n"
        for o in optimizers))
    many, sgd, adamw = run_all(
        tmp_path, ("check", "many.py", "--format", "json"),
        *[("check", "mlp.py", "--model", "MLP", "--batch-size", "64", "--optimizer", o, "--format", "json")
          for o in ("sgd", "adamw")])
    assert many.returncode == 0, many.stderr
    models = models_of(many.stdout)
    state = {}
    for o in optimizers:
        m = models[f"m_{o.replace('-', '_')}"]
        assert m["memory"]["optimizer"] == o
        state[o] = m["memory"]["bytes"]["optimizer_state"]
    one = state["sgd-momentum"]  # one fp32 buffer per parameter
    assert state["sgd"] == 0
    assert state["adagrad"] == state["rmsprop"] == state["lion"] == one
    assert state["adam"] == state["adamw"] == 2 * one and state["amsgrad"] == 3 * one
    assert 0 < state["adafactor"] < one and 0 < state["adam8bit"] < one
    # The flag.
    for o, r in (("sgd", sgd), ("adamw", adamw)):
        m = models_of(r.stdout)["MLP"]
        assert m["memory"]["optimizer"] == o and sources(m)["optimizer"] == (o, "flag")
    assert models_of(sgd.stdout)["MLP"]["memory"]["bytes"]["optimizer_state"] == 0
    assert models_of(adamw.stdout)["MLP"]["memory"]["bytes"]["optimizer_state"] > 0


def test_gpu_by_name_alias_and_size(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    gpus = ("H200", "rtx4090", "24GiB", "80GB")
    bad = ("B300", "0GiB", "512MiB")
    runs = run_all(tmp_path, *[("check", "mlp.py", "--model", "MLP", "--batch-size", "8", f"--gpu={gpu}",
                                "--format", "json") for gpu in gpus],
                   *[("check", "mlp.py", f"--gpu={gpu}") for gpu in bad])
    seen = {}
    for gpu, r in zip(gpus, runs):
        assert r.returncode == 0, r.stderr
        m = models_of(r.stdout)["MLP"]
        seen[gpu] = (m["memory"]["device"], m["memory"]["device_memory"], sources(m)["device"])
    assert seen["H200"][0] == "H200" and seen["H200"][1] > 139 * 2**30
    assert seen["rtx4090"][0] == "RTX-4090" and seen["rtx4090"][2] == ("RTX-4090", "flag")
    assert seen["24GiB"][:2] == ("24GiB", 24 * 2**30)
    assert seen["80GB"][:2] == ("80GB", 80 * 10**9)
    for gpu, r in zip(bad, runs[len(gpus):]):
        usage_error(r, "--gpu", repr(gpu))
    usage_error(runs[len(gpus)], "unknown GPU 'B300'", "H100-80GB", "24GiB")
    usage_error(runs[len(gpus) + 1], "GPU '0GiB' has no memory")


def huge_estimate(path: Path) -> MemoryEstimate:
    """HUGE's estimate with Adam on an 8 GiB card, checked by hand: the peak is the optimizer step,
    where the weights, their gradients, Adam's two moments and the foreach step's temporary (five
    copies of the weights) meet the batch, the targets and two cuBLAS workspaces."""
    fa = analyze_source(str(path), HUGE, Settings(memory=True, device="8GiB"))
    (m,) = fa.models
    assert m.memory is not None
    block = 512  # the caching allocator's smallest block
    weights = sum(-(-n * 4 // block) * block for n in (16384 * 16384, 16384, 16384 * 16384, 16384, 10 * 16384, 10))
    batch, targets = 64 * 16384 * 4, block  # the float32 batch, cross-entropy's 64 int64 targets
    device = device_named("8GiB")
    assert device is not None
    assert m.memory.train_peak == 5 * weights + batch + targets + 2 * device.blas_workspace
    assert m.memory.device_total >= m.memory.train_peak + device.context
    return m.memory


def test_over_budget_mode_and_max_batch(tmp_path: Path) -> None:
    huge = write(tmp_path, "huge.py", HUGE)
    r, never, sgd, infer, infer_small, max_batch, no_max_batch = run_all(
        tmp_path, ("check", "huge.py", "--gpu", "8GiB"), ("check", "huge.py", "--gpu", "8GiB", "--fail-on", "never"),
        ("check", "huge.py", "--gpu", "8GiB", "--optimizer", "sgd"),
        ("check", "huge.py", "--gpu", "8GiB", "--mode", "infer"),
        ("check", "huge.py", "--gpu", "1GiB", "--mode", "infer", "--format", "json"),
        ("check", "huge.py", "--gpu", "24GiB", "--max-batch", "--format", "json"),
        ("check", "huge.py", "--gpu", "24GiB", "--format", "json"))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0] == "huge.py:4:1: model (instance): 537,067,530 parameters; output [64, 10]"
    assert lines[1] == "    memory (batch 64, fp32, adam, 8GiB; inputs from code: the call at line 5):"
    assert "training does NOT fit in the 8GiB (8.00 GiB)" in lines[2]
    assert "      largest batch that fits: 0" in lines  # computed when it does not fit
    (f,) = findings(r.stdout)
    assert (f["path"], f["line"], f["col"], f["severity"], f["code"], f["name"]) == (
        "huge.py", "4", "1", "error", "VL001", "over-budget-train")
    est = huge_estimate(huge)
    assert f["message"].startswith(f"training model needs {fmt_bytes(est.device_total)} "
                                   f"(peak {fmt_bytes(est.train_peak)}, optimizer step")
    assert f["message"].endswith("more than the 8GiB's 8.00 GiB at batch 64; not even a batch of 1 fits")
    assert lines[-1] == "1 error"
    # The error does not fail the run below the threshold.
    assert never.returncode == 0 and never.stdout == r.stdout
    # Less optimizer state fits.
    assert sgd.returncode == 0 and "training fits in the 8GiB" in sgd.stdout and "VL001" not in sgd.stdout
    # --mode infer: only inference has to fit (VL002 when it does not).
    assert infer.returncode == 0 and findings(infer.stdout) == []
    assert infer_small.returncode == 1
    ((x,),) = [f["findings"] for f in doc_of(infer_small.stdout)["files"]]
    assert (x["code"], x["name"], x["severity"], x["model"], x["path"], x["line"], x["column"]) == (
        "VL002", "over-budget-infer", "error", "model", str(huge), 4, 1)
    assert "more than the 1GiB's 1.00 GiB at batch 64" in x["message"]
    # --max-batch: the largest batch whose training step fits; only when asked (or over budget).
    assert max_batch.returncode == 0
    assert models_of(max_batch.stdout)["model"]["memory"]["max_batch"] > 64
    assert models_of(no_max_batch.stdout)["model"]["memory"]["max_batch"] is None


def test_checkpointing_flag(tmp_path: Path) -> None:
    write(tmp_path, "deep.py", CKPT)
    write(tmp_path, "mlp.py", MLP)
    common = ("--input-shape", "256", "--batch-size", "512", "--format", "json")
    plain_r, ckpt_r, mlp_r, text_r = run_all(
        tmp_path, ("check", "deep.py", *common), ("check", "deep.py", *common, "--checkpointing"),
        ("check", "mlp.py", "--model", "MLP", "--batch-size", "4", "--checkpointing", "--format", "json"),
        ("check", "deep.py", "--input-shape", "256", "--batch-size", "512", "--checkpointing"))
    # The text output's setup line says it.
    assert "    memory (batch 512, fp32, adam, checkpointing, H100-80GB; inputs from flag):" in text_r.stdout.splitlines()
    plain, ckpt = models_of(plain_r.stdout)["Deep"], models_of(ckpt_r.stdout)["Deep"]
    assert sources(plain)["checkpointing"] == (False, "default")
    assert sources(ckpt)["checkpointing"] == (True, "flag")
    # Each block then keeps only its input: 4 x 512 x 1024 x 4 bytes of GELU inputs/outputs are gone.
    assert ckpt["memory"]["bytes"]["activations"] < plain["memory"]["bytes"]["activations"] / 4
    assert ckpt["output_shape"] == plain["output_shape"] == [512, 256]
    # A model without gradient_checkpointing_enable(): a note says the flag did nothing.
    m = models_of(mlp_r.stdout)["MLP"]
    assert any("has no gradient_checkpointing_enable()" in n for n in m["memory"]["notes"])


def test_no_memory_and_layers(tmp_path: Path) -> None:
    write(tmp_path, "conv.py", CONV)
    write(tmp_path, "mlp.py", MLP)
    r, no_memory_json, layers = run_all(tmp_path, ("check", ".", "--no-memory"),
                                        ("check", ".", "--no-memory", "--format", "json"),
                                        ("check", "conv.py", "--layers", "--format", "json"))
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "./conv.py:4:1: net (instance): 330 parameters",
        "./mlp.py:5:7: MLP (class): 26,122 parameters",
        "./mlp.py:15:7: TwoIn (class): 832 parameters",
    ]  # no memory lines, no VL301 (nothing was asked of the memory estimate)
    for m in models_of(no_memory_json.stdout).values():
        assert m["memory"] is None and m["setup"] is None and "layers" not in m
    rows = models_of(layers.stdout)["net"]["layers"]
    assert [(row["path"], row["type"], row["output_shape"]) for row in rows] == [
        ("", "Sequential", [4, 10]), ("0", "Conv2d", [4, 8, 32, 32]), ("1", "BatchNorm2d", [4, 8, 32, 32]),
        ("2", "ReLU", [4, 8, 32, 32]), ("3", "AdaptiveAvgPool2d", [4, 8, 1, 1]), ("4", "Flatten", [4, 8]),
        ("5", "Linear", [4, 10])]
    assert rows[0]["params"] == 330 and rows[0]["saved_bytes"] >= sum(row["saved_bytes"] or 0 for row in rows[1:])
    assert rows[1]["own_params"] == [{"name": "weight", "shape": [8, 3, 3, 3], "numel": 216, "trainable": True},
                                     {"name": "bias", "shape": [8], "numel": 8, "trainable": True}]


def test_jobs_give_the_same_output_in_the_same_order(tmp_path: Path) -> None:
    write(tmp_path, "a_mlp.py", MLP)
    write(tmp_path, "b_conv.py", CONV)
    write(tmp_path, "c_mismatch.py", MISMATCH)
    write(tmp_path, "d_wide.py", WIDE)
    write(tmp_path, "e/small.py", SMALL)
    write(tmp_path, "e/tokens.py", TOKENS)
    write(tmp_path, "f_bad.py", "import torch.nn as nn\nm = nn.Linear(3, 4\n")
    for fmt in ("text", "json"):
        one, two = run_all(tmp_path, *[("check", ".", "--jobs", jobs, "--batch-size", "8", "--format", fmt)
                                       for jobs in ("1", "2")])
        assert one.returncode == two.returncode == 1  # the shape mismatch and the syntax error
        assert one.stdout == two.stdout and one.stderr == two.stderr == ""
    paths = [f["path"] for f in doc_of(one.stdout)["files"]]
    assert paths == ["./a_mlp.py", "./b_conv.py", "./c_mismatch.py", "./d_wide.py", "./f_bad.py",
                     "./e/small.py", "./e/tokens.py"]  # os.walk: a folder's files, then its subfolders


# ---------------------------------------------------------------------- findings in each format
def test_findings_in_each_format(tmp_path: Path) -> None:
    write(tmp_path, "mismatch.py", MISMATCH)
    write(tmp_path, "wide.py", WIDE)
    args = ("check", "mismatch.py", "wide.py", "--batch-size", "8")
    message = "Net: shape mismatch: Linear expects 100 input features, got a tensor of shape [8, 128]"

    text, as_json, as_sarif, as_github = run_all(
        tmp_path, args, (*args, "--format", "json"), (*args, "--format", "sarif"), (*args, "--format", "github"))
    assert text.returncode == 1
    assert [(f["path"], f["line"], f["col"], f["severity"], f["code"], f["name"]) for f in findings(text.stdout)] == [
        ("mismatch.py", "11", "16", "error", "VL201", "shape-mismatch"),
        ("wide.py", "2", "21", "warning", "VL101", "oversized-layer"),
    ]
    assert f"mismatch.py:11:16: error VL201 [shape-mismatch] {message}" in text.stdout.splitlines()
    assert "wide.py:2:21: warning VL101 [oversized-layer] `0` (Linear) holds 1,049,600 parameters, 99% of all " \
           "parameters" in text.stdout.splitlines()
    # The forward's own location is shown with the path as given too (not made absolute).
    assert f"      mismatch.py:11:16: {message[5:]}" in text.stdout.splitlines()
    assert text.stdout.splitlines()[-1] == "1 error, 1 warning"

    r = as_json
    assert r.returncode == 1
    by_path = {f["path"]: f["findings"] for f in doc_of(r.stdout)["files"]}
    assert by_path["mismatch.py"] == [{"code": "VL201", "name": "shape-mismatch", "severity": "error",
                                       "message": message, "model": "Net", "path": str(tmp_path / "mismatch.py"),
                                       "line": 11, "column": 16}]
    assert [(x["code"], x["severity"], x["model"], x["line"], x["column"]) for x in by_path["wide.py"]] == [
        ("VL101", "warning", "net", 2, 21)]

    r = as_sarif
    assert r.returncode == 1
    sarif = json.loads(r.stdout)
    assert sarif["version"] == "2.1.0" and "sarif" in sarif["$schema"]
    (run,) = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "vramlint" and run["tool"]["driver"]["version"] == __version__
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == ["VL101", "VL201"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    mismatch, wide = run["results"]
    assert (mismatch["ruleId"], mismatch["level"], mismatch["message"]["text"]) == ("VL201", "error", message)
    assert run["tool"]["driver"]["rules"][mismatch["ruleIndex"]]["id"] == "VL201"
    loc = mismatch["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "mismatch.py", "uriBaseId": "%SRCROOT%"}
    assert (loc["region"]["startLine"], loc["region"]["startColumn"]) == (11, 16)
    assert mismatch["properties"] == {"model": "Net"}
    assert (wide["ruleId"], wide["level"]) == ("VL101", "warning")

    r = as_github
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"::error file=mismatch.py,line=11,col=16,title=VL201 shape-mismatch::{message}",
        "::warning file=wide.py,line=2,col=21,title=VL101 oversized-layer::`0` (Linear) holds 1,049,600 "
        "parameters, 99%25 of all parameters",  # `%` escaped as @actions/core does
    ]
    # Infos are notices; paths relative to the current directory.
    r = vramlint("check", str(tmp_path / "wide.py"), "--format", "github", cwd=tmp_path.parent)
    assert r.returncode == 0
    assert r.stdout.splitlines()[1].startswith(
        f"::notice file={tmp_path.name}/wide.py,line=2,col=1,title=VL301 unresolved-input::net: no inputs")


def test_fail_on_thresholds_from_flag_and_configuration(tmp_path: Path) -> None:
    write(tmp_path, "wide.py", WIDE)  # a warning and an info
    write(tmp_path, "small.py", SMALL)  # an info
    expected = [("wide.py", "error", 0), ("wide.py", "warning", 1), ("wide.py", "info", 1), ("wide.py", "never", 0),
                ("small.py", "warning", 0), ("small.py", "info", 1)]
    runs = run_all(tmp_path, *[("check", file, "--fail-on", level) for file, level, _ in expected])
    for (file, level, code), r in zip(expected, runs):
        assert r.returncode == code, (file, level, r.stdout)
    assert runs[0].stdout == runs[1].stdout  # the threshold changes the exit code only
    # fail-on from the configuration; the flag beats it.
    write(tmp_path, "pyproject.toml", '[tool.vramlint]\nfail-on = "info"\n')
    configured, flagged, given = run_all(tmp_path, ("check", "small.py"), ("check", "small.py", "--fail-on", "warning"),
                                         ("check", "small.py", "--batch-size", "2"))
    assert configured.returncode == 1 and findings(configured.stdout)[0]["code"] == "VL301"
    assert flagged.returncode == 0
    # The same info with the batch size given: nothing left to report.
    assert given.returncode == 0 and findings(given.stdout) == []


# ---------------------------------------------------------------------- report and explain
def test_report_text_json_and_exit_codes(tmp_path: Path) -> None:
    write(tmp_path, "conv.py", CONV)
    write(tmp_path, "huge.py", HUGE)
    write(tmp_path, "mlp.py", MLP)
    r, over, infer, infer_small, as_json, no_estimate, unknown, absent = run_all(
        tmp_path, ("report", "conv.py", "--model", "net"),
        ("report", "huge.py", "--model", "model", "--gpu", "8GiB", "--optimizer", "adamw", "--max-batch"),
        ("report", "huge.py", "--model", "model", "--gpu", "8GiB", "--mode", "infer"),
        ("report", "huge.py", "--model", "model", "--gpu", "1GiB", "--mode", "infer"),
        ("report", "mlp.py", "--model", "TwoIn", "--input-shape", "16", "--input-shape", "8", "--batch-size", "2",
         "--format", "json"),
        ("report", "mlp.py", "--model", "MLP"), ("report", "conv.py", "--model", "nope"),
        ("report", "absent.py", "--model", "net"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:8] == [
        "net (instance, conv.py:4): 330 parameters",
        "  batch size     4  (directive at line 3)",
        "  inputs         [3, 32, 32] float32  (directive at line 3)",
        "  precision      fp32  (default)",
        "  optimizer      adam  (default)",
        "  GPU            H100-80GB  (default)",
        "  mode           train  (default)",
        "  checkpointing  False  (default)",
    ]
    header = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    assert [c.strip() for c in lines[header].split("|")] == [
        "layer", "type", "output shape", "parameters", "kept for backward", "of peak"]
    rows = [[c.strip() for c in line.split("|")] for line in lines[header + 2:header + 9]]
    assert [row[:4] for row in rows] == [
        ["net", "Sequential", "[4, 10]", "330"], ["0", "Conv2d", "[4, 8, 32, 32]", "224"],
        ["1", "BatchNorm2d", "[4, 8, 32, 32]", "16"], ["2", "ReLU", "[4, 8, 32, 32]", "0"],
        ["3", "AdaptiveAvgPool2d", "[4, 8, 1, 1]", "0"], ["4", "Flatten", "[4, 8]", "0"],
        ["5", "Linear", "[4, 10]", "90"]]
    assert rows[2][4] == "129.0 KiB" and rows[2][5].endswith("%")
    assert any(line.startswith("training peak  ") for line in lines)
    assert any(line.startswith(f"fits on the H100-80GB ({fmt_bytes(H100.memory)}): needs ") for line in lines)
    # Flags show as the source; a model over budget: "does NOT fit", exit 1; --max-batch.
    r = over
    assert r.returncode == 1
    assert "  optimizer      adamw  (flag)" in r.stdout.splitlines()
    assert "  GPU            8GiB  (flag)" in r.stdout.splitlines()
    assert "  batch size     64  (code: the call at line 5)" in r.stdout.splitlines()
    assert any(line.startswith("does NOT fit on the 8GiB (8.00 GiB): needs ") for line in r.stdout.splitlines())
    assert "largest batch that fits: 0" in r.stdout.splitlines()
    # --mode infer: the verdict and the exit code are about inference.
    assert infer.returncode == 0
    assert any(line.startswith("inference fits on the 8GiB (8.00 GiB)") for line in infer.stdout.splitlines())
    assert infer_small.returncode == 1 and "inference does NOT fit on the 1GiB" in infer_small.stdout
    # JSON: the document of one file with that model only, layers included.
    assert as_json.returncode == 0
    (f,) = doc_of(as_json.stdout)["files"]
    (m,) = f["models"]
    assert m["name"] == "TwoIn" and m["memory"]["fits"] is True
    assert [row["path"] for row in m["layers"]] == ["", "a", "b"] and m["layers"][0]["output_shape"] == [2, 32]
    # No estimate (no batch size): the table, and why; exit 0.
    assert no_estimate.returncode == 0
    assert "no memory estimate: no inputs to estimate memory" in no_estimate.stdout
    assert "  batch size     not given" in no_estimate.stdout.splitlines()
    # Usage errors.
    usage_error(unknown, "no model named nope; models found: net")
    usage_error(absent, "absent.py: no such file")


def test_explain(tmp_path: Path) -> None:
    write(tmp_path, "conv.py", CONV)
    write(tmp_path, "mlp.py", MLP)
    r, flags, no_estimate, unknown = run_all(
        tmp_path, ("explain", "conv.py", "--model", "net"),
        ("explain", "mlp.py", "--model", "MLP", "--batch-size", "16", "--optimizer", "sgd", "--precision", "bf16",
         "--gpu", "T4"),
        ("explain", "mlp.py", "--model", "MLP"), ("explain", "mlp.py", "--model", "Nope"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("net (conv.py:4): 330 parameters; batch 4, fp32, adam, H100-80GB; "
                        "inputs from directive at line 3")
    assert lines[2].startswith("The count made by hand")
    for start in ("  weights ", "  gradients ", "  optimizer state ", "  kept for backward ",
                  "  batch ", "  cuBLAS workspaces ", "  = training peak ", "  inference peak ",
                  "  device total "):
        assert any(line.startswith(start) for line in lines), start
    assert any(line.startswith("The training peak is ") for line in lines)
    # The options apply as for check.
    assert flags.returncode == 0
    assert flags.stdout.splitlines()[0] == ("MLP (mlp.py:5): 26,122 parameters; batch 16, bf16, sgd, T4; inputs from "
                                        "the first layer, Linear(64, ...), batch 16 from flag")
    # No estimate: says why, exit 1.
    assert no_estimate.returncode == 1
    assert no_estimate.stdout.startswith("mlp.py: MLP: no memory estimate: no inputs")
    usage_error(unknown, "models found: MLP, TwoIn")


def test_report_and_explain_on_a_file_that_cannot_be_analysed(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", "import torch.nn as nn\nm = nn.Linear(3, 4\n")
    for command, r in zip(("report", "explain"), run_all(tmp_path, *[(c, "bad.py", "--model", "m")
                                                                     for c in ("report", "explain")])):
        # Like `check`: a file that cannot be analysed is an error finding (exit 1), not a usage error.
        assert r.returncode == 1, (command, r.stderr)
        assert "bad.py:2:14: error: syntax error: '(' was never closed" in r.stderr
        assert "no model named" not in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------- usage errors
USAGE_ERRORS: list[tuple[list[str], list[str]]] = [
    (["check", "absent.py"], ["absent.py: no such file or directory"]),
    (["check", "mlp.py", "absent", "gone.py"], ["absent: no such file or directory", "gone.py: no such file"]),
    (["check", "--batch-size", "0"], ["--batch-size", "expected a positive integer, got '0'"]),
    (["check", "--batch-size", "x"], ["--batch-size", "expected a positive integer, got 'x'"]),
    (["check", "--jobs", "0"], ["--jobs", "expected a positive integer"]),
    (["check", "--precision", "fp8"], ["--precision", "invalid choice: 'fp8'"]),
    (["check", "--optimizer", "adamx"], ["--optimizer", "invalid choice: 'adamx'"]),
    (["check", "--mode", "eval"], ["--mode", "invalid choice: 'eval'"]),
    (["check", "--format", "xml"], ["--format", "invalid choice: 'xml'"]),
    (["check", "--input-shape", "3,a"], ["--input-shape '3,a': expected comma-separated integers"]),
    (["check", "--input-shape", "3,-1"], ["dimensions must be non-negative"]),
    (["check", "--input-shape", "3", "--input-dtype", "float99"], ["--input-dtype 'float99'"]),
    (["check", "--input-dtype", "int64"], ["--input-dtype int64: give it after the --input-shape it applies to"]),
    (["check", "--config", "absent.toml"], ["absent.toml: no such configuration file"]),
    (["check", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["check", "--fail-on", "fatal"], ["--fail-on", "invalid choice: 'fatal'"]),
    (["lint"], ["invalid choice: 'lint'"]),
    (["report", "mlp.py"], ["the following arguments are required: --model"]),
    (["report", "mlp.py", "--model", "MLP", "--format", "sarif"], ["--format", "invalid choice: 'sarif'"]),
    (["explain", "mlp.py", "--model", "MLP", "--batch-size", "-3"], ["--batch-size", "got '-3'"]),
]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    for (args, needles), r in zip(USAGE_ERRORS, run_all(tmp_path, *[tuple(args) for args, _ in USAGE_ERRORS])):
        usage_error(r, *needles)
        assert r.stdout == "", args


# ---------------------------------------------------------------------- configuration
CONFIG_ERRORS = [
    ("pyproject.toml", "[tool.vramlint]\nbatchsize = 3\n", "unknown key `batchsize` in [tool.vramlint] (known: "),
    ("pyproject.toml", '[tool.vramlint]\nbatch-size = "8"\n',
     "`batch-size` in [tool.vramlint]: expected a positive integer, got '8'"),
    ("pyproject.toml", "[tool.vramlint]\nbatch-size = true\n", "`batch-size` in [tool.vramlint]: expected a positive"),
    ("pyproject.toml", '[tool.vramlint]\ngpu = "B300"\n', "`gpu` in [tool.vramlint]: unknown GPU 'B300' (known: "),
    ("pyproject.toml", '[tool.vramlint]\ngpu = "0GiB"\n', "`gpu` in [tool.vramlint]: GPU '0GiB' has no memory"),
    ("pyproject.toml", '[tool.vramlint]\noptimizer = "adamx"\n',
     "`optimizer` in [tool.vramlint]: expected one of adafactor, adagrad, adam,"),
    ("pyproject.toml", '[tool.vramlint]\nprecision = "fp8"\n', "`precision` in [tool.vramlint]: expected one of "),
    ("pyproject.toml", '[tool.vramlint]\nmode = "eval"\n', "`mode` in [tool.vramlint]: expected one of infer, train"),
    ("pyproject.toml", '[tool.vramlint]\ncheckpointing = "yes"\n', "`checkpointing` in [tool.vramlint]: expected true"),
    ("pyproject.toml", '[tool.vramlint]\nfail-on = "fatal"\n', "`fail-on` in [tool.vramlint]: expected one of error"),
    ("pyproject.toml", "[tool.vramlint]\nextra-paths = [1]\n", "`extra-paths` in [tool.vramlint] must be a list"),
    ("pyproject.toml", '[tool.vramlint]\ninputs = [{ shape = "3" }]\n', "`inputs` in [tool.vramlint]: `shape` must"),
    ("pyproject.toml", '[tool.vramlint]\ninputs = [{ shape = [3], dtype = "f" }]\n', "`dtype` must be one of"),
    ("pyproject.toml", "[tool.vramlint]\nmodels = 3\n", "[tool.vramlint.models] must be a table of tables"),
    ("pyproject.toml", "[tool.vramlint.models.MLP]\nbatch-sise = 3\n",
     "unknown key `batch-sise` in [tool.vramlint.models.MLP] (known: batch-size, checkpointing, context, gpu"),
    ("pyproject.toml", '[tool.vramlint.models."mlp.py::MLP"]\nfail-on = "info"\n',
     'unknown key `fail-on` in [tool.vramlint.models."mlp.py::MLP"]'),
    ("pyproject.toml", '[tool.vramlint.models.MLP]\ngpu = "nope"\n',
     "`gpu` in [tool.vramlint.models.MLP]: unknown GPU 'nope'"),
    ("pyproject.toml", "[tool]\nvramlint = 3\n", "[tool.vramlint] must be a table"),
    ("pyproject.toml", "[tool.vramlint\n", "invalid TOML"),
    ("pyproject.toml", "[tool.vramlint]\n[tool.vramlint]\n", "invalid TOML"),
    ("vramlint.toml", "batch-size = 0\n", "`batch-size` in vramlint.toml: expected a positive integer, got 0"),
    ("vramlint.toml", "batchsize = 3\n", "unknown key `batchsize` in vramlint.toml"),
    ("vramlint.toml", "extra-paths = 3\n", "`extra-paths` in vramlint.toml must be a list of strings"),
    ("vramlint.toml", '[models.MLP]\noptimizer = "adamx"\n', "`optimizer` in [models.MLP]: expected one of"),
    ("vramlint.toml", "models = 1\n", "[models] must be a table of tables"),
    ("vramlint.toml", "= 1\n", "invalid TOML"),
]


def test_invalid_configuration_names_file_and_key(tmp_path: Path) -> None:
    configs = []
    for i, (name, content, _) in enumerate(CONFIG_ERRORS):
        write(tmp_path, f"case{i}/mlp.py", MLP)
        configs.append(write(tmp_path, f"case{i}/{name}", content))
    runs = run_all(tmp_path, *[("check", f"case{i}/mlp.py") for i in range(len(CONFIG_ERRORS))],
                   # report and explain read the same configuration
                   ("report", "case0/mlp.py", "--model", "MLP"), ("explain", "case3/mlp.py", "--model", "MLP"))
    for (_name, content, message), config, r in zip(CONFIG_ERRORS, configs, runs):
        usage_error(r, f"{config}: ", message)
        assert r.stdout == "", content
    usage_error(runs[-2], f"{configs[0]}: ", CONFIG_ERRORS[0][2])
    usage_error(runs[-1], f"{configs[3]}: ", CONFIG_ERRORS[3][2])


def test_invalid_configuration_given_with_config(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    # `tool` that is not a table: not a vramlint configuration when found, an error when named.
    write(tmp_path, "pyproject.toml", 'tool = "vramlint"\n')
    r = vramlint("check", "mlp.py", cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "internal error" not in r.stderr
    usage_error(vramlint("check", "mlp.py", "--config", "pyproject.toml", cwd=tmp_path),
                str(Path("pyproject.toml")), "`tool` must be a table")
    write(tmp_path, "ci.toml", '[tool.vramlint]\ngpu = "H300"\n')
    usage_error(vramlint("check", "mlp.py", "--config", "ci.toml", cwd=tmp_path), "ci.toml: `gpu` in [tool.vramlint]")


def test_pyproject_configuration_and_model_tables(tmp_path: Path) -> None:
    write(tmp_path, "lib/widths.py", "WIDTH = 32\n")
    write(tmp_path, "src/pkg/mlp.py", MLP)
    write(tmp_path, "src/pkg/uses.py", """\
        import torch.nn as nn
        from widths import WIDTH

        net = nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 2))
        """)
    write(tmp_path, "pyproject.toml", """\
        [project]
        name = "demo"

        [tool.vramlint]
        gpu = "A100-40GB"
        batch-size = 16
        precision = "amp-bf16"
        optimizer = "sgd"
        extra-paths = ["lib"]

        [tool.vramlint.models.MLP]
        batch-size = 32
        optimizer = "adamw"

        [tool.vramlint.models."src/pkg/mlp.py::TwoIn"]
        inputs = [{ shape = [16] }, { shape = [8], dtype = "float32" }]
        mode = "infer"
        """)
    tool, mlp_table = "pyproject.toml [tool.vramlint]", "pyproject.toml [tool.vramlint.models.MLP]"
    two_table = 'pyproject.toml [tool.vramlint.models."src/pkg/mlp.py::TwoIn"]'
    # Run from a subfolder: the configuration is found upwards, its paths relative to it.
    r = vramlint("check", "..", "--format", "json", cwd=tmp_path / "src")
    assert r.returncode == 0, r.stderr
    models = models_of(r.stdout)
    assert set(models) == {"MLP", "TwoIn", "net"}
    mlp, two, net = models["MLP"], models["TwoIn"], models["net"]
    assert net["params"]["total"] == 1122  # `widths` imported from extra-paths
    assert {k: v for k, v in sources(mlp).items() if k != "inputs"} == {
        "batch_size": (32, mlp_table), "precision": ("amp-bf16", tool), "optimizer": ("adamw", mlp_table),
        "device": ("A100-40GB", tool), "mode": ("train", "default"), "checkpointing": (False, "default"),
        "max_layer_params": (None, "default"), "context": (None, "default")}
    assert mlp["memory"]["batch_size"] == 32 and mlp["memory"]["device"] == "A100-40GB"
    assert sources(two)["inputs"] == ([{"shape": [16], "dtype": "float32"}, {"shape": [8], "dtype": "float32"}],
                                      two_table)
    assert sources(two)["mode"] == ("infer", two_table) and sources(two)["batch_size"] == (16, tool)
    assert two["output_shape"] == [16, 32] and two["inputs_from"] == f"{two_table}, batch 16 from {tool}"
    assert sources(net)["optimizer"] == ("sgd", tool) and net["memory"]["bytes"]["optimizer_state"] == 0
    # The text names the sources too.
    r = vramlint("check", "src/pkg/mlp.py", "--model", "MLP", cwd=tmp_path)
    assert r.stdout.splitlines()[1] == (
        "    memory (batch 32, amp-bf16, adamw, A100-40GB; inputs from the first layer, Linear(64, ...), batch 32 "
        f"from {mlp_table}):")
    # The same file's table does not apply to an identically named model elsewhere.
    write(tmp_path, "other/mlp.py", MLP)
    r = vramlint("check", "other/mlp.py", "--model", "TwoIn", "--format", "json", cwd=tmp_path)
    assert sources(models_of(r.stdout)["TwoIn"])["mode"] == ("train", "default")


def test_precedence_flag_directive_model_table_tool_table_code(tmp_path: Path) -> None:
    write(tmp_path, "train.py", """\
        import torch
        import torch.nn as nn
        from torch.utils.data import DataLoader

        # vramlint: batch-size=64 precision=bf16
        net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
        net2 = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
        net3 = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))  # vramlint: mode=infer gpu=t4

        loader = DataLoader(list(range(10)), batch_size=2)
        opt = torch.optim.RMSprop(net2.parameters())
        opt3 = torch.optim.Adagrad(net3.parameters())
        """)
    write(tmp_path, "pyproject.toml", """\
        [tool.vramlint]
        batch-size = 16
        precision = "amp-fp16"
        gpu = "A100-40GB"

        [tool.vramlint.models.net]
        batch-size = 32
        precision = "fp16"
        optimizer = "adamw"

        [tool.vramlint.models."train.py::net3"]
        optimizer = "lion"
        mode = "train"
        """)
    tool, net_table = "pyproject.toml [tool.vramlint]", "pyproject.toml [tool.vramlint.models.net]"
    net3_table = 'pyproject.toml [tool.vramlint.models."train.py::net3"]'
    keys = ("batch_size", "precision", "optimizer", "device", "mode")

    def setup(args: tuple[str, ...] = ()) -> dict[str, dict[str, tuple[Any, str]]]:
        r = vramlint("check", "train.py", "--format", "json", *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return {name: {k: v for k, v in sources(m).items() if k in keys} for name, m in models_of(r.stdout).items()}

    got = setup()
    assert got["net"] == {  # directive > model table > tool table; the model table > the code
        "batch_size": (64, "directive at line 5"), "precision": ("bf16", "directive at line 5"),
        "optimizer": ("adamw", net_table), "device": ("A100-40GB", tool), "mode": ("train", "default")}
    assert got["net2"] == {  # the tool table > the code (DataLoader); the code > the default (its optimizer)
        "batch_size": (16, tool), "precision": ("amp-fp16", tool),
        "optimizer": ("rmsprop", "code: torch.optim.RMSprop(...) at line 11"), "device": ("A100-40GB", tool),
        "mode": ("train", "default")}
    assert got["net3"] == {  # a directive on the model's own line; a table by path::name > the code
        "batch_size": (16, tool), "precision": ("amp-fp16", tool), "optimizer": ("lion", net3_table),
        "device": ("T4", "directive at line 8"), "mode": ("infer", "directive at line 8")}
    # Flags beat everything.
    got = setup(("--batch-size", "128", "--precision", "fp32", "--optimizer", "sgd", "--gpu", "L4",
                 "--mode", "train"))
    for name in ("net", "net2", "net3"):
        assert got[name] == {"batch_size": (128, "flag"), "precision": ("fp32", "flag"), "optimizer": ("sgd", "flag"),
                             "device": ("L4", "flag"), "mode": ("train", "flag")}, name
    # Without the configuration: the code, then the defaults.
    (tmp_path / "pyproject.toml").unlink()
    got = setup()
    assert got["net2"] == {
        "batch_size": (2, "code: DataLoader(..., batch_size=2) at line 10"), "precision": ("fp32", "default"),
        "optimizer": ("rmsprop", "code: torch.optim.RMSprop(...) at line 11"), "device": ("H100-80GB", "default"),
        "mode": ("train", "default")}
    assert got["net3"]["optimizer"] == ("adagrad", "code: torch.optim.Adagrad(...) at line 12")
    assert got["net"]["batch_size"] == (64, "directive at line 5")


def test_vramlint_toml_explicit_config_and_directive_warnings(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    write(tmp_path, "pyproject.toml", '[tool.vramlint]\ngpu = "T4"\nbatch-size = 2\n')
    # vramlint.toml wins over a pyproject.toml in the same folder; its top level is the table.
    write(tmp_path, "vramlint.toml", 'gpu = "L4"\nbatch-size = 8\n\n[models.MLP]\noptimizer = "sgd"\n')
    r = vramlint("check", "mlp.py", "--model", "MLP", "--format", "json", cwd=tmp_path)
    s = sources(models_of(r.stdout)["MLP"])
    assert (s["device"], s["batch_size"], s["optimizer"]) == (
        ("L4", "vramlint.toml"), (8, "vramlint.toml"), ("sgd", "vramlint.toml [models.MLP]"))
    # --config names another file (a [tool.vramlint] table in any TOML file), or a vramlint.toml elsewhere.
    write(tmp_path, "ci/ci.toml", '[tool.vramlint]\ngpu = "24GiB"\nbatch-size = 4\n'
                                  '[tool.vramlint.models."../mlp.py::MLP"]\nprecision = "bf16"\n')
    r = vramlint("check", "mlp.py", "--model", "MLP", "--config", "ci/ci.toml", "--format", "json", cwd=tmp_path)
    s = sources(models_of(r.stdout)["MLP"])
    assert (s["device"], s["batch_size"], s["optimizer"], s["precision"]) == (
        ("24GiB", "ci.toml [tool.vramlint]"), (4, "ci.toml [tool.vramlint]"), ("adam", "default"),
        ("bf16", 'ci.toml [tool.vramlint.models."../mlp.py::MLP"]'))
    write(tmp_path, "ci/vramlint.toml", "batch-size = 5\n")
    r = vramlint("check", "mlp.py", "--model", "MLP", "--config", "ci/vramlint.toml", "--format", "json", cwd=tmp_path)
    assert sources(models_of(r.stdout)["MLP"])["batch_size"] == (5, "vramlint.toml")
    usage_error(vramlint("check", "mlp.py", "--config", "ci", cwd=tmp_path), "ci: no such configuration file")


def test_directives(tmp_path: Path) -> None:
    write(tmp_path, "d.py", """\
        import torch.nn as nn
        # vramlint: batch-size=abc input-shape=4 foo=1
        net = nn.Linear(4, 4)
        other = nn.Linear(4, 4)  # vramlint: input-shape=2x4 input-dtype=float16 optimizer=lion checkpointing=true

        # vramlint: batch-size=3
        # (not the line above the model)
        far = nn.Linear(4, 4)
        """)
    r = vramlint("check", "d.py", cwd=tmp_path)
    # Malformed directives: located warnings; the rest of the directive applies; exit 0.
    assert r.returncode == 0
    assert r.stdout.splitlines()[:4] == [
        "d.py:2:1: warning: vramlint directive `batch-size=abc`: expected a positive integer, got 'abc'",
        "d.py:2:1: warning: vramlint directive `foo=1`: unknown key (known: batch-size, checkpointing, context, gpu, "
        "input-dtype, input-shape, max-layer-params, mode, nodes, optimizer, precision, world-size)",
        "d.py:3:1: net (instance): 20 parameters; output [1, 4]",
        "    memory (batch 1, fp32, adam, H100-80GB; inputs from directive at line 2):",
    ]
    r = vramlint("check", "d.py", "--format", "json", cwd=tmp_path)
    models = models_of(r.stdout)
    other = sources(models["other"])
    assert other["inputs"] == ([{"shape": [2, 4], "dtype": "float16"}], "directive at line 4")
    assert other["optimizer"] == ("lion", "directive at line 4")
    assert other["checkpointing"] == (True, "directive at line 4")
    assert models["other"]["output_shape"] == [1, 2, 4]
    assert sources(models["far"])["batch_size"] == (None, "default")


def test_extra_path_flag(tmp_path: Path) -> None:
    write(tmp_path, "lib/blocks.py", "import torch.nn as nn\ndef block(): return nn.Linear(8, 8)\n")
    write(tmp_path, "app/model.py", "from blocks import block\nimport torch.nn as nn\n"
                                    "net = nn.Sequential(block(), block())\n")
    r = vramlint("check", "app/model.py", "--no-memory", cwd=tmp_path)
    assert "net (instance): unknown parameters" in r.stdout
    for flag in ("lib", str(tmp_path / "lib")):  # relative to the cwd, or absolute
        r = vramlint("check", "app/model.py", "--no-memory", "--extra-path", flag, cwd=tmp_path)
        assert r.stdout.strip() == "app/model.py:3:1: net (instance): 144 parameters"


# ---------------------------------------------------------------------- robustness
def test_bad_files_among_good_ones(tmp_path: Path) -> None:
    write(tmp_path, "a_good.py", SMALL)
    write(tmp_path, "b_bad.py", "import torch.nn as nn\nm = nn.Linear(3, 4\n")
    (tmp_path / "c_latin.py").write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\nimport torch.nn as nn\n"
                                          b"lat = nn.Linear(5, 5)\n")
    (tmp_path / "d_bytes.py").write_bytes(b"import torch.nn as nn\n# caf\xe9 \xff\nraw = nn.Linear(6, 6)\n")
    (tmp_path / "e_bom.py").write_bytes(b"\xef\xbb\xbfimport torch.nn as nn\nbom = nn.Linear(2, 2)\n")
    (tmp_path / "f_dangling.py").symlink_to(tmp_path / "nowhere.py")  # listed, but cannot be read
    r, never, as_json, as_sarif, as_github = run_all(
        tmp_path, *[("check", ".", "--no-memory", *more) for more in ((), ("--fail-on", "never"), ("--format", "json"),
                                                                      ("--format", "sarif"), ("--format", "github"))])
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "./a_good.py:2:1: m (instance): 16 parameters",
        "./b_bad.py:2:14: error: syntax error: '(' was never closed",
        "./c_latin.py:4:1: lat (instance): 30 parameters",
        "./d_bytes.py:2:1: warning: file is not valid utf-8; undecodable bytes were replaced",
        "./d_bytes.py:3:1: raw (instance): 42 parameters",
        "./e_bom.py:2:1: bom (instance): 6 parameters",
        "./f_dangling.py:1:1: error: cannot read file: No such file or directory",
        "2 errors",
    ]
    # Never fails the run with --fail-on never; in JSON, errors and warnings per file.
    assert never.returncode == 0
    files = {f["path"]: f for f in doc_of(as_json.stdout)["files"]}
    assert files["./b_bad.py"]["errors"][0]["reason"] == "syntax error: '(' was never closed"
    assert files["./b_bad.py"]["errors"][0]["line"] == 2 and files["./b_bad.py"]["models"] == []
    assert files["./d_bytes.py"]["warnings"][0]["line"] == 2
    assert [m["name"] for m in files["./d_bytes.py"]["models"]] == ["raw"]
    # SARIF and GitHub: the files that cannot be analysed are VL000 errors.
    (run,) = json.loads(as_sarif.stdout)["runs"]
    assert [(x["ruleId"], x["level"], x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for x in run["results"]] == [("VL000", "error", "b_bad.py"), ("VL000", "error", "f_dangling.py")]
    assert as_github.returncode == 1 and as_github.stdout.splitlines() == [
        "::error file=b_bad.py,line=2,col=14,title=VL000 analysis-error::syntax error: '(' was never closed",
        "::error file=f_dangling.py,line=1,col=1,title=VL000 analysis-error::cannot read file: No such file or "
        "directory",
    ]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    write(tmp_path, "good.py", SMALL)
    locked = write(tmp_path, "locked.py", SMALL)
    locked.chmod(0)
    try:
        r = vramlint("check", ".", "--no-memory", cwd=tmp_path)
    finally:
        locked.chmod(0o644)
    assert r.returncode == 1
    assert "./good.py:2:1: m (instance): 16 parameters" in r.stdout.splitlines()
    assert "./locked.py:1:1: error: cannot read file: Permission denied" in r.stdout.splitlines()


def test_no_models(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path, "plain/util.py", "def f(x):\n    return x + 1\n")
    empty, plain, as_json, as_sarif, as_github, model = run_all(
        tmp_path, ("check", "empty"), ("check", "plain"), ("check", "empty", "--format", "json"),
        ("check", "empty", "--format", "sarif"), ("check", "empty", "--format", "github"),
        ("check", "empty", "--model", "m"))
    for r in (empty, plain):
        assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "no models found", "")
    assert as_json.returncode == 0 and doc_of(as_json.stdout)["files"] == []
    assert as_sarif.returncode == 0 and json.loads(as_sarif.stdout)["runs"][0]["results"] == []
    assert (as_github.returncode, as_github.stdout) == (0, "")
    usage_error(model, "no model named m; models found: none")


# ---------------------------------------------------------------------- gaps found and fixed
def test_an_optimizer_built_for_another_model_does_not_apply(tmp_path: Path) -> None:
    write(tmp_path, "two.py", """\
        import torch
        import torch.nn as nn

        a = nn.Linear(8, 8)
        b = nn.Linear(8, 8)
        opt = torch.optim.SGD(b.parameters(), lr=0.1)
        """)
    r = vramlint("check", "two.py", "--batch-size", "2", "--format", "json", cwd=tmp_path)
    models = models_of(r.stdout)
    assert sources(models["b"])["optimizer"] == ("sgd", "code: torch.optim.SGD(...) at line 6")
    assert sources(models["a"])["optimizer"] == ("adam", "default")


def test_a_forward_argument_nothing_gives_is_a_finding(tmp_path: Path) -> None:
    write(tmp_path, "mlp.py", MLP)
    r = vramlint("check", "mlp.py", "--model", "TwoIn", "--batch-size", "4", "--format", "github", cwd=tmp_path)
    assert "title=VL301 unresolved-input::TwoIn:" in r.stdout


def test_a_directive_on_the_models_own_line_wins(tmp_path: Path) -> None:
    write(tmp_path, "two.py", """\
        import torch.nn as nn
        a = nn.Linear(8, 8)  # vramlint: batch-size=2
        b = nn.Linear(8, 8)  # vramlint: batch-size=4
        """)
    r = vramlint("check", "two.py", "--format", "json", cwd=tmp_path)
    models = models_of(r.stdout)
    assert sources(models["a"])["batch_size"] == (2, "directive at line 2")
    assert sources(models["b"])["batch_size"] == (4, "directive at line 3")


def test_a_folder_of_10000_files(tmp_path: Path) -> None:
    """Scale: 10,000 files in one run (in parallel, all cores), every one reported, in path order."""
    for i in range(10_000):
        d = tmp_path / f"pkg{i // 1000}"
        d.mkdir(exist_ok=True)
        (d / f"m{i:05d}.py").write_text(f"import torch.nn as nn\nmodel{i} = nn.Linear({i % 50 + 1}, 2)\n"
                                        if i % 10 else "x = 1\n")
    r = vramlint("check", ".", "--no-memory", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)["files"]
    assert len(files) == 10_000
    assert [f["path"] for f in files] == sorted(f["path"] for f in files)
    assert sum(len(f["models"]) for f in files) == 9_000
    assert files[1]["models"][0]["params"]["total"] == 2 * 2 + 2
