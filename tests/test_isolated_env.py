"""The answer does not depend on what is installed beside vramlint (issue 12, item 9).

The same file is analysed by the real CLI twice: in the test environment (torch 2.13 installed,
with its `*.dist-info`, and transformers importable), and in an interpreter that sees only vramlint and the packages vramlint
itself imports (`python -S`, no site-packages: what pre-commit, pipx or the bundled VS Code
extension give). The model code asks its environment about torch the ways libraries do
(`importlib.metadata.version`, `importlib.util.find_spec`, `torch.__version__`,
`packages_distributions`), and transformers' own source (an extra path) builds a model: both runs
must print the same counts, and torch is seen at the configured `torch-version` (default 2.13.0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import packaging
import pytest

from tests.support.libsources import (
    ACCELERATE_VERSION,
    BITSANDBYTES_VERSION,
    PEFT_VERSION,
    TRANSFORMERS_VERSION,
    library_source,
)

ROOT = Path(__file__).resolve().parents[1]

MODEL = """\
import importlib.metadata
import importlib.util

import torch
import torch.nn as nn
from transformers import LlamaConfig, LlamaForCausalLM

major, minor = (int(x) for x in importlib.metadata.version("torch").split(".")[:2])
found = importlib.util.find_spec("torch") is not None
same = torch.__version__.startswith(f"{major}.{minor}")
dists = importlib.metadata.packages_distributions().get("torch", [])
probe = nn.Linear(major * 100 + minor, 1 + found + 2 * same + 4 * len(dists))
model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, hidden_size=256, intermediate_size=512,
                                     num_attention_heads=4, num_key_value_heads=2, vocab_size=1000))
"""

# What vramlint imports at run time from site-packages (the rest is the standard library).
_DEPS = """\
import os, site, sys
import vramlint.cli.main, vramlint.lsp.server
roots = [p for p in sys.path if p.endswith("site-packages")]
tops = {os.path.relpath(m.__file__, r).split(os.sep)[0] for m in list(sys.modules.values())
        for r in roots if (getattr(m, "__file__", None) or "").startswith(r + os.sep)}
print("\\n".join(sorted(tops)))
"""


def _counts(cmd: list[str], env: dict[str, str], path: Path, extra: list[str], cwd: Path) -> dict[str, object]:
    out = subprocess.run([*cmd, "check", str(path), *extra, "--format", "json"],
                         capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert out.stdout, out.stderr
    data = json.loads(out.stdout)
    return {m["name"]: m["params"] for f in data["files"] for m in f["models"]}


def _isolated_env(tmp_path: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment of an interpreter run with `-S` that sees vramlint's source and its own
    dependencies only, linked into one folder: no torch, no transformers."""
    deps = subprocess.run([sys.executable, "-c", _DEPS], capture_output=True, text=True, check=True,
                          env={**base, "PYTHONPATH": str(ROOT / "server")}).stdout.split()
    assert "torch" not in deps
    only = tmp_path / "only-vramlint"
    only.mkdir()
    for top in deps:
        src = next(Path(r) / top for r in sys.path if r.endswith("site-packages") and (Path(r) / top).exists())
        (only / top).symlink_to(src)
    isolated = {**base, "PYTHONPATH": os.pathsep.join([str(ROOT / "server"), str(only)])}
    for package in ("torch", "transformers", "bitsandbytes"):
        check = subprocess.run([sys.executable, "-S", "-c", f"import importlib.util as u; print(u.find_spec({package!r}))"],
                               capture_output=True, text=True, env=isolated)
        assert check.stdout.strip() == "None", f"{package} must not be importable in the isolated interpreter"
    return isolated


def test_same_answer_with_and_without_torch_installed(tmp_path: Path) -> None:
    hf = library_source("transformers", TRANSFORMERS_VERSION)
    path = tmp_path / "train.py"
    path.write_text(MODEL)
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    isolated = _isolated_env(tmp_path, base)

    # Installed: transformers importable by the interpreter that runs vramlint (on its sys.path),
    # beside torch. Alone: only vramlint's own dependencies; the model's source through extra-paths.
    installed = {**base, "PYTHONPATH": os.pathsep.join([str(ROOT / "server"), str(hf)])}
    full = _counts([sys.executable, "-m", "vramlint"], installed, path, [], tmp_path)
    alone = _counts([sys.executable, "-S", "-m", "vramlint"], isolated, path, ["--extra-path", str(hf)], tmp_path)
    assert full == alone
    expected_probe = (213 + 1) * (1 + 1 + 2 + 4)  # torch 2.13 seen, found, same release, one distribution
    assert full["probe"]["total"] == expected_probe, full
    assert isinstance(full["model"]["total"], int), full


@pytest.mark.parametrize("version", ["2.5.1"])
def test_torch_version_is_configurable(tmp_path: Path, version: str) -> None:
    (tmp_path / "vramlint.toml").write_text(f'torch-version = "{version}"\n')
    path = tmp_path / "train.py"
    path.write_text(MODEL)
    hf = library_source("transformers", TRANSFORMERS_VERSION)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}, "PYTHONPATH": str(ROOT / "server")}
    counts = _counts([sys.executable, "-m", "vramlint"], env, path, ["--extra-path", str(hf)], tmp_path)
    assert counts["probe"]["total"] == (205 + 1) * 8


# A newcomer's QLoRA script (issue 13): a checkpoint's config in a local folder, loaded in 4-bit.
QLORA = """\
import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments

bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                         bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained("{folder}", quantization_config=bnb)
model = prepare_model_for_kbit_training(model)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir="out", per_device_train_batch_size=2, bf16=True, optim="paged_adamw_8bit")
trainer = Trainer(model=model, args=args)
"""


def test_qlora_same_answer_with_only_vramlint_transformers_and_peft(tmp_path: Path) -> None:
    """The QLoRA script analysed by an interpreter that has torch, transformers, peft, accelerate
    and bitsandbytes importable, and by one with vramlint's own dependencies only (transformers',
    peft's and accelerate's source through extra-paths, as a virtualenv with only vramlint,
    transformers and peft gives: no torch, no bitsandbytes): the same models, counts, setup and
    memory breakdown, to the byte."""
    libraries = [library_source(dist, version) for dist, version in (
        ("transformers", TRANSFORMERS_VERSION), ("peft", PEFT_VERSION), ("accelerate", ACCELERATE_VERSION))]
    bnb = library_source("bitsandbytes", BITSANDBYTES_VERSION)
    path = tmp_path / "qlora.py"
    path.write_text(QLORA.format(folder=ROOT / "tests/fixtures/hub/llama"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    isolated = _isolated_env(tmp_path, base)
    installed = {**base, "PYTHONPATH": os.pathsep.join([str(ROOT / "server"), *map(str, libraries), str(bnb)])}
    check = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('bitsandbytes'))"],
                           capture_output=True, text=True, env=installed)
    assert check.stdout.strip() != "None", "bitsandbytes must be importable in the installed run"
    flags = ["--input-shape", "64", "--input-dtype", "int64", "--gpu", "RTX-4090", "--format", "json"]
    # What pip installs with them besides torch: their pure-Python dependencies (peft reads
    # `packaging.version`), linked from the test environment into a folder of their own.
    deps = tmp_path / "their-dependencies"
    deps.mkdir()
    (deps / "packaging").symlink_to(Path(packaging.__file__).parent)
    extra = [arg for lib in (*libraries, deps) for arg in ("--extra-path", str(lib))]

    def models(cmd: list[str], env: dict[str, str], more: list[str]) -> list[dict[str, object]]:
        out = subprocess.run([*cmd, "check", str(path), *flags, *more], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=600)
        assert out.stdout, out.stderr
        return [m for f in json.loads(out.stdout)["files"] for m in f["models"]]

    full = models([sys.executable, "-m", "vramlint"], installed, [])
    alone = models([sys.executable, "-S", "-m", "vramlint"], isolated, extra)
    assert full == alone
    (model,) = full
    assert model["memory"] is not None and model["params"]["trainable"] < model["params"]["total"]
    setup = {k: v["value"] for k, v in model["setup"].items()}  # type: ignore[index, union-attr]
    assert (setup["optimizer"], setup["precision"], setup["checkpointing"]) == ("adam8bit", "amp-bf16", True)
