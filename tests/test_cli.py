"""`vramlint check`, run as the real executable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_memory import MLP_ADAM_PEAK
from vramlint.render.units import fmt_bytes

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mlp.py"


def vramlint(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("vramlint", path=os.path.dirname(sys.executable)) or shutil.which("vramlint")
    cmd = [exe] if exe else [sys.executable, "-m", "vramlint"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_text_output_on_the_bundled_example() -> None:
    r = vramlint("check", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    models = [line for line in lines if ": info " not in line and not line.startswith(" ")][:3]
    assert all("131,410 parameters" in line for line in models)
    assert lines[0] == f"{EXAMPLE}:9:1: model (instance): 131,410 parameters; output [256, 10]"
    # The instance is called on a batch in the file: its memory is estimated from that call.
    assert lines[1].startswith("    memory (batch 256, fp32, adam, H100-80GB; inputs from code: the call at line 42)")
    # The peak tests/test_memory.py derives by hand for this network.
    assert lines[2].startswith(f"      training peak {fmt_bytes(MLP_ADAM_PEAK)} (optimizer step)")
    # The class and the factory: the first layer gives the sample shape, nothing gives the batch.
    infos = [line for line in lines if ": info VL301 [unresolved-input]" in line]
    assert [i.split(":")[1] for i in infos] == ["19", "35"] and "--batch-size" in infos[0]
    assert lines[-1] == "2 infos"


def test_json_output_schema() -> None:
    r = vramlint("check", str(EXAMPLE), "--format", "json", "--layers")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "vramlint/1"
    (f,) = doc["files"]
    assert f["path"] == str(EXAMPLE)
    by_name = {m["name"]: m for m in f["models"]}
    assert set(by_name) == {"model", "MLP", "make_mlp"}
    mlp = by_name["MLP"]
    assert mlp["params"] == {"total": 131410, "trainable": 131410, "known": 131410}
    assert mlp["line"] == 19 and mlp["kind"] == "class"
    paths = [row["path"] for row in mlp["layers"]]
    assert paths[:3] == ["", "body", "body.0"]
    assert mlp["layers"][-1] == {"path": "head", "type": "Linear", "line": 28, "params": 1010, "output_shape": None,
                                 "saved_bytes": None, "own_params": [{"name": "weight", "shape": [10, 100], "numel": 1000, "trainable": True},
                                                {"name": "bias", "shape": [10], "numel": 10, "trainable": True}]}


def test_model_filter_and_unknown_model_name() -> None:
    r = vramlint("check", str(EXAMPLE), "--model", "MLP", "--format", "json")
    assert [m["name"] for m in json.loads(r.stdout)["files"][0]["models"]] == ["MLP"]
    r = vramlint("check", str(EXAMPLE), "--model", "Nope")
    assert r.returncode == 2
    assert "no model named Nope" in r.stderr and "MLP, make_mlp, model" in r.stderr


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    r = vramlint("check", str(tmp_path / "absent.py"))
    assert r.returncode == 2
    assert "absent.py: no such file or directory" in r.stderr


def test_syntax_error_is_reported_with_its_location_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch.nn as nn\nm = nn.Linear(3, 4\n")
    good = tmp_path / "good.py"
    good.write_text("import torch.nn as nn\nm = nn.Linear(3, 4)\n")
    r = vramlint("check", str(tmp_path))
    assert r.returncode == 1
    assert f"{bad}:" in r.stdout and "syntax error" in r.stdout
    assert f"{good}:2:1: m (instance): 16 parameters" in r.stdout


def test_folders_are_walked_skipping_virtualenvs(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "net.py").write_text("import torch.nn as nn\nnet = nn.Conv2d(3, 8, 3)\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "ignored.py").write_text("import torch.nn as nn\nx = nn.Linear(1, 1)\n")
    r = vramlint("check", str(tmp_path), "--format", "json")
    files = [f["path"] for f in json.loads(r.stdout)["files"]]
    assert files == [str(tmp_path / "pkg" / "net.py")]


def test_extra_paths_from_flag_and_from_pyproject(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "blocks.py").write_text("import torch.nn as nn\nWIDTH = 64\ndef block(): return nn.Linear(WIDTH, WIDTH)\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "model.py").write_text("import torch.nn as nn\nfrom blocks import block\nnet = nn.Sequential(block(), block())\n")
    r = vramlint("check", str(app / "model.py"))
    assert "net (instance): unknown parameters" in r.stdout and "blocks" in r.stdout
    r = vramlint("check", str(app / "model.py"), "--extra-path", str(lib))
    assert "net (instance): 8,320 parameters" in r.stdout
    (tmp_path / "pyproject.toml").write_text('[tool.vramlint]\nextra-paths = ["lib"]\n')
    r = vramlint("check", str(app / "model.py"))
    assert "net (instance): 8,320 parameters" in r.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[tool.vramlint\n", "invalid TOML"),
        ('[tool.vramlint]\nextra-pathz = ["x"]\n', "unknown key `extra-pathz`"),
        ("[tool.vramlint]\nextra-paths = 3\n", "`extra-paths` in [tool.vramlint] must be a list of strings"),
    ],
)
def test_invalid_configuration_is_exit_2_naming_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(content)
    (tmp_path / "m.py").write_text("x = 1\n")
    r = vramlint("check", str(tmp_path / "m.py"))
    assert r.returncode == 2
    assert str(tmp_path / "pyproject.toml") in r.stderr and message in r.stderr
    assert "Traceback" not in r.stderr


def test_blocks_built_inside_a_model_are_reported_as_such() -> None:
    torch = pytest.importorskip("torch")
    gpt = ROOT / "examples" / "gpt.py"
    r = vramlint("check", str(gpt), "--no-memory")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert f"{gpt}:92:7: GPT (class): 124,475,904 parameters" in lines
    assert lines[-1] == f"{gpt}:149:5: model (instance): 124,475,904 parameters"  # the script's main block
    assert f"{gpt}:69:7: Block (class): used in GPT, model (on its own: needs `config`)" in lines
    # The truth, from torch itself (the lm_head/wte tie counted once).
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_gpt", gpt)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_gpt"] = module
    spec.loader.exec_module(module)
    with torch.device("meta"):
        model = module.GPT(module.GPTConfig())
    assert sum(p.numel() for p in model.parameters()) == 124_475_904


def test_input_shape_traces_the_forward() -> None:
    gpt = ROOT / "examples" / "gpt.py"
    r = vramlint("check", str(gpt), "--model", "GPT", "--input-shape", "256", "--input-dtype", "int64",
                 "--batch-size", "8")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == f"{gpt}:92:7: GPT (class): 124,475,904 parameters; output [8, 1, 50304]"
    assert lines[1] == "    memory (batch 8, fp32, adam, H100-80GB; inputs from flag):"
    assert lines[2].startswith("      training peak ")
    r = vramlint("check", str(EXAMPLE), "--model", "MLP", "--input-shape", "1000", "--batch-size", "256",
                 "--format", "json", "--layers")
    (mlp,) = json.loads(r.stdout)["files"][0]["models"]
    assert mlp["output_shape"] == [256, 10]
    assert [row["output_shape"] for row in mlp["layers"][:3]] == [[256, 10], [256, 100], [256, 100]]


@pytest.mark.parametrize(("args", "message"), [
    (["--input-shape", "3,a"], "expected comma-separated integers"),
    (["--input-shape", "3", "--input-dtype", "float99"], "--input-dtype 'float99'"),
    (["--input-dtype", "int64"], "--input-dtype int64: give it after the --input-shape it applies to"),
    (["--batch-size", "0"], "--batch-size: expected a positive integer"),
])
def test_invalid_inputs_are_usage_errors(args: list[str], message: str) -> None:
    r = vramlint("check", str(EXAMPLE), *args)
    assert r.returncode == 2 and message in r.stderr


def test_a_top_level_statement_that_raises_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("import torch.nn as nn\nnet = nn.Sequential(3, nn.Linear(2, 2))\nok = nn.Linear(2, 2)\n")
    r = vramlint("check", str(f), "--no-memory")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        f"{f}:2:7: warning: statement not evaluated: it raises TypeError: Sequential: argument 0 is not a Module",
        f"{f}:3:1: ok (instance): 6 parameters",
    ]


def test_attribute_style_dict_configs(tmp_path: Path) -> None:
    f = tmp_path / "cfg.py"
    f.write_text(
        "import torch.nn as nn\n\n"
        "class AttrDict(dict):\n    def __getattr__(self, k):\n        return self[k]\n\n"
        "cfg = AttrDict(width=64, depth=3)\n"
        "net = nn.Sequential(*[nn.Linear(cfg.width, cfg.width) for _ in range(cfg.depth)])\n"
    )
    r = vramlint("check", str(f), "--no-memory")
    assert r.stdout.strip() == f"{f}:8:1: net (instance): 12,480 parameters"
