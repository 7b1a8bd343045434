"""DeepSpeed's launch read from code (frontends/deepspeed/): each entry point into the ZeRO plan it
states, the JSON config read only inside the workspace (size-capped, broken files a located note),
HF's "auto" values, and `import deepspeed` served where DeepSpeed is not installed."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.libsources import TRANSFORMERS_VERSION, library_source
from vramlint.analysis import memory as analysis_memory
from vramlint.analysis.api import analyze_file
from vramlint.memory.distributed import ParallelPlan
from vramlint.settings import Settings

MODEL = """
import torch
import torch.nn as nn
import deepspeed

model = nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 10))
"""
LOOP = """
for step in range(3):
    loss = engine(torch.randn(8, 1000)).sum()
    engine.backward(loss)
    engine.step()
"""
ZERO3_OFFLOAD = """{
  "train_micro_batch_size_per_gpu": 8,
  "bf16": {"enabled": true},
  "zero_optimization": {
    "stage": 3,
    "offload_optimizer": {"device": "cpu", "pin_memory": true},
    "offload_param": {"device": "cpu"},
    "reduce_bucket_size": 5e7,
    "stage3_prefetch_bucket_size": 1e7
  }
}
"""


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> dict[str, ParallelPlan | None]:
    """The plan the frontends read for each model analysed (before the analysis completes it)."""
    seen: dict[str, ParallelPlan | None] = {}
    real = analysis_memory.find_parallel_plan

    def spy(*args: Any) -> ParallelPlan | None:
        plan = real(*args)
        seen[args[2]] = plan
        return plan

    monkeypatch.setattr(analysis_memory, "find_parallel_plan", spy)
    return seen


def project(root: Path, files: dict[str, str | bytes]) -> Path:
    """A workspace (pyproject.toml marks its root) with `files`; the path of train.py in it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.vramlint]\n", encoding="utf-8")
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return next(root / rel for rel in files if rel.endswith("train.py"))


def plan_of(path: Path, plans: dict[str, ParallelPlan | None], model: str = "model",
            settings: Settings | None = None) -> ParallelPlan:
    fa = analyze_file(str(path), settings or Settings(memory=True))
    assert model in [m.name for m in fa.models]
    plan = plans[model.rsplit(".", 1)[-1]]  # the variable the code names ("main.model" is main()'s "model")
    assert plan is not None
    return plan


def source(plan: ParallelPlan, what: str) -> tuple[str, str]:
    hit = next(s for s in plan.sources if s.what == what)
    return hit.value, hit.source


# ---------------------------------------------------------------------- deepspeed.initialize
def test_initialize_with_a_dict_in_code(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": MODEL + """
ds_config = {
    "bf16": {"enabled": True},
    "zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}, "reduce_bucket_size": 2e8},
}
engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=ds_config)
""" + LOOP})
    plan = plan_of(path, plans)
    assert (plan.strategy, plan.stage, plan.offload_optimizer, plan.offload_params) == ("deepspeed", 3, "cpu", None)
    assert plan.low_precision == "bfloat16" and plan.reduce_bucket_size == 200_000_000
    assert plan.overlap_comm is True  # DeepSpeed's default under stage 3 (overlap_comm_valid)
    assert plan.world_size == 0 and plan.shard_size == 0  # the setup gives the world
    assert plan.label == "deepspeed zero-3 + cpu optimizer offload"
    assert source(plan, "zero stage") == ("3", "code: deepspeed.initialize(...) at line 11")
    assert source(plan, "strategy")[1] == "code: deepspeed.initialize(...) at line 11"


def test_initialize_with_a_json_file_next_to_the_script(tmp_path: Path,
                                                        plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"scripts/ds_zero3.json": ZERO3_OFFLOAD, "scripts/train.py": MODEL + """
engine, _, _, _ = deepspeed.initialize(model=model, config="ds_zero3.json")
""" + LOOP})
    plan = plan_of(path, plans)
    assert (plan.stage, plan.offload_optimizer, plan.offload_params) == (3, "cpu", "cpu")
    assert plan.label == "deepspeed zero-3 + cpu offload"
    assert (plan.reduce_bucket_size, plan.prefetch_bucket_size) == (50_000_000, 10_000_000)
    assert source(plan, "offload_param") == ("cpu", "ds_zero3.json")
    assert source(plan, "micro-batch per GPU") == ("8", "ds_zero3.json")


def test_initialize_in_main_with_config_params_and_json_load(tmp_path: Path,
                                                             plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"ds.json": '{"fp16": {"enabled": true}, "zero_optimization": {"stage": 2}}',
                              "train.py": """
import json
import torch
import torch.nn as nn
import deepspeed


def main():
    model = nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 10))
    engine, _, _, _ = deepspeed.initialize(model=model, config_params=json.load(open("ds.json")))
    for step in range(3):
        loss = engine(torch.randn(8, 1000)).sum()
        engine.backward(loss)


if __name__ == "__main__":
    main()
"""})
    plan = plan_of(path, plans, "main.model")
    assert (plan.stage, plan.low_precision, plan.overlap_comm) == (2, "float16", False)
    assert plan.label == "deepspeed zero-2"


def test_initialize_with_args_deepspeed_config(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"configs/ds.json": '{"zero_optimization": {"stage": 1}}', "train.py": MODEL + """
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--deepspeed_config", default="configs/ds.json")
args = parser.parse_args()
engine, _, _, _ = deepspeed.initialize(args=args, model=model, model_parameters=model.parameters())
""" + LOOP})
    plan = plan_of(path, plans)
    assert plan.stage == 1 and source(plan, "zero stage") == ("1", "configs/ds.json")


def test_a_config_from_the_command_line_only_is_said(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": MODEL + """
import argparse
parser = argparse.ArgumentParser()
parser = deepspeed.add_config_arguments(parser)
args = parser.parse_args()
engine, _, _, _ = deepspeed.initialize(args=args, model=model)
""" + LOOP})
    plan = plan_of(path, plans)
    assert plan.stage == 0
    assert any("--deepspeed_config" in n and "line 11" in n for n in plan.notes)


# ---------------------------------------------------------------------- the JSON file, safely
def test_a_config_outside_the_workspace_is_not_read(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    (tmp_path / "outside.json").write_text(ZERO3_OFFLOAD, encoding="utf-8")
    path = project(tmp_path / "ws", {"train.py": MODEL + """
engine, _, _, _ = deepspeed.initialize(model=model, config="../outside.json")
""" + LOOP})
    plan = plan_of(path, plans)
    assert plan.stage == 0 and plan.offload_optimizer is None  # nothing of it was read
    assert any("outside the workspace" in n and "deepspeed.initialize(...) at line 7" in n for n in plan.notes)


def test_a_broken_json_config_is_located(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"ds.json": '{\n  "zero_optimization": {\n    "stage": 3,,\n  }\n}\n',
                              "train.py": MODEL + """
engine, _, _, _ = deepspeed.initialize(model=model, config="ds.json")
""" + LOOP})
    plan = plan_of(path, plans)
    assert plan.stage == 0
    assert any(n.startswith("ds.json:3:16: invalid JSON") for n in plan.notes), plan.notes


@pytest.mark.parametrize("content, why", [
    (b'{"zero_optimization": {"stage": 3}, "x": "\xff\xfe"}', "not UTF-8 text"),
    (b'{"x": "' + b"a" * (1 << 20) + b'"}', "larger than 1 MiB"),
    (b'[1, 2, 3]', "a DeepSpeed config is a JSON object"),
])
def test_odd_config_files_are_notes(tmp_path: Path, plans: dict[str, ParallelPlan | None], content: bytes,
                                    why: str) -> None:
    path = project(tmp_path, {"ds.json": content, "train.py": MODEL + """
engine, _, _, _ = deepspeed.initialize(model=model, config="ds.json")
""" + LOOP})
    plan = plan_of(path, plans)
    assert plan.stage == 0 and any(n.startswith("ds.json:") and why in n for n in plan.notes), plan.notes


def test_odd_values_in_a_config_are_notes(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"ds.json": '{"zero_optimization": {"stage": 7, "reduce_bucket_size": "big", '
                                         '"offload_optimizer": {"device": "tape"}}, "bf16": {"enabled": "auto"}}',
                              "train.py": MODEL + """
engine, _, _, _ = deepspeed.initialize(model=model, config="ds.json")
""" + LOOP})
    plan = plan_of(path, plans)
    assert (plan.stage, plan.reduce_bucket_size, plan.offload_optimizer, plan.low_precision) == \
        (0, 500_000_000, None, None)
    notes = " | ".join(plan.notes)
    assert "stage = 7" in notes and "'big' is not a count" in notes and "'tape'" in notes
    assert 'bf16.enabled = "auto"' in notes  # DeepSpeed itself does not fill "auto"


# ---------------------------------------------------------------------- transformers' TrainingArguments
def test_training_arguments_with_auto_values(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"ds_config.json": """
{
  "bf16": {"enabled": "auto"},
  "gradient_accumulation_steps": "auto",
  "train_micro_batch_size_per_gpu": "auto",
  "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}, "reduce_bucket_size": "auto"}
}
""", "train.py": MODEL + """
from transformers import TrainingArguments

args = TrainingArguments(output_dir="out", per_device_train_batch_size=8, gradient_accumulation_steps=4,
                         bf16=True, deepspeed="ds_config.json")
loss = model(torch.randn(8, 1000)).sum()
"""})
    plan = plan_of(path, plans)
    assert (plan.stage, plan.offload_optimizer, plan.low_precision) == (2, "cpu", "bfloat16")
    assert source(plan, "bf16") == ("True", 'TrainingArguments(bf16=True) at line 9 ("auto" in ds_config.json)')
    assert source(plan, "gradient accumulation steps")[0] == "4"
    assert any("gradient_accumulation_steps = 4" in n for n in plan.notes)
    # A plain torch model has no hidden_size: transformers would refuse "auto" here; DeepSpeed's default.
    assert plan.reduce_bucket_size == 500_000_000
    assert any("zero_optimization.reduce_bucket_size" in n for n in plan.notes)


def test_training_arguments_with_a_dict(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": MODEL + """
from transformers import TrainingArguments

args = TrainingArguments(output_dir="out", deepspeed={"zero_optimization": {"stage": 3}, "fp16": {"enabled": "auto"}},
                         fp16=True)
loss = model(torch.randn(8, 1000)).sum()
"""})
    plan = plan_of(path, plans)
    assert (plan.stage, plan.low_precision, plan.zero_init) == (3, "float16", True)


def test_auto_sizes_follow_the_models_hidden_size(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    # transformers' trainer_config_finalize: reduce_bucket_size = hidden_size^2, prefetch = 0.9 x
    # hidden_size^2, param persistence threshold = 10 x hidden_size (here 64, the model's config).
    path = project(tmp_path, {"train.py": """
from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

ds = {"zero_optimization": {"stage": 3, "reduce_bucket_size": "auto", "stage3_prefetch_bucket_size": "auto",
                            "stage3_param_persistence_threshold": "auto"}, "bf16": {"enabled": "auto"}}
args = TrainingArguments(output_dir="out", deepspeed=ds, bf16=True)
model = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, vocab_size=1000))
"""})
    root = library_source("transformers", TRANSFORMERS_VERSION)
    plan = plan_of(path, plans, settings=Settings(memory=True, extra_paths=(str(root),)))
    assert (plan.stage, plan.low_precision) == (3, "bfloat16")
    assert (plan.reduce_bucket_size, plan.prefetch_bucket_size, plan.param_persistence_threshold) == (4096, 3686, 640)
    assert source(plan, "reduce_bucket_size") == (
        "4,096", "the model's hidden_size 64: hidden_size^2 (\"auto\" in code: TrainingArguments(...) at line 5)")


# ---------------------------------------------------------------------- Lightning, accelerate
def test_lightning_strategy_name(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": MODEL + """
import lightning as L

trainer = L.Trainer(strategy="deepspeed_stage_3_offload", devices=4, num_nodes=2, precision="bf16-mixed")
loss = model(torch.randn(8, 1000)).sum()
"""})
    plan = plan_of(path, plans)
    assert (plan.stage, plan.offload_optimizer, plan.offload_params, plan.low_precision) == (3, "cpu", "cpu",
                                                                                            "bfloat16")
    assert (plan.world_size, plan.nodes) == (8, 2)
    assert (plan.reduce_bucket_size, plan.allgather_bucket_size, plan.overlap_comm) == (200_000_000, 200_000_000, True)
    assert source(plan, "world size") == ("8", "code: Trainer(devices=4, num_nodes=2) at line 9")
    assert source(plan, "bf16")[1].startswith("Trainer(precision='bf16-mixed') at line 9")


def test_lightning_strategy_object(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": MODEL + """
from lightning.pytorch.strategies import DeepSpeedStrategy
import lightning as L

strategy = DeepSpeedStrategy(stage=2, offload_optimizer=True, reduce_bucket_size=5e7)
trainer = L.Trainer(strategy=strategy, precision="16-mixed")
loss = model(torch.randn(8, 1000)).sum()
"""})
    plan = plan_of(path, plans)
    assert (plan.stage, plan.offload_optimizer, plan.low_precision) == (2, "cpu", "float16")
    assert plan.reduce_bucket_size == 50_000_000 and plan.world_size == 0
    assert plan.label == "deepspeed zero-2 + cpu offload"


def test_accelerate_deepspeed_plugin(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": MODEL + """
from accelerate import Accelerator, DeepSpeedPlugin

plugin = DeepSpeedPlugin(zero_stage=3, offload_optimizer_device="nvme", gradient_accumulation_steps=2)
accelerator = Accelerator(mixed_precision="bf16", deepspeed_plugin=plugin)
model = accelerator.prepare(model)
loss = model(torch.randn(8, 1000)).sum()
"""})
    plan = plan_of(path, plans)
    assert (plan.stage, plan.offload_optimizer, plan.offload_params, plan.low_precision) == (3, "nvme", None,
                                                                                            "bfloat16")
    assert plan.zero_init is True
    assert source(plan, "bf16")[1].startswith("Accelerator(mixed_precision='bf16') at line 10")


# ---------------------------------------------------------------------- the package itself
def test_import_deepspeed_runs_the_script_through_the_engine(tmp_path: Path,
                                                             plans: dict[str, ParallelPlan | None]) -> None:
    # Before: `deepspeed` was an unresolved import (VL303) and the engine an unknown, so the loop's
    # `engine(x)` never called the model: no batch, no estimate ("no inputs to estimate memory").
    path = project(tmp_path, {"train.py": MODEL + """
engine, optimizer, _, _ = deepspeed.initialize(model=model, config={"zero_optimization": {"stage": 2}})
""" + LOOP})
    fa = analyze_file(str(path), Settings(memory=True))
    assert [m.name for m in fa.models] == ["model"]  # the engine is not a second model
    model = fa.models[0]
    assert model.memory is not None and model.memory.batch_size == 8
    assert "line 10" in str(model.inputs_from)
    assert not [f for f in fa.findings if f.code == "VL303"]


def test_a_file_without_deepspeed_has_no_plan(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": """
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 10))
loss = model(torch.randn(8, 1000)).sum()
"""})
    analyze_file(str(path), Settings(memory=True))
    assert plans.get("model") is None


def _chain(prefix: str, indent: str) -> str:
    """`x0` names `x1` ten times, which names `x2` ten times... (read whole: 10^12 values)."""
    return f"{indent}{prefix}12 = {{'stage': 2}}\n" + "\n".join(
        indent + f"{prefix}{i} = {{" + ", ".join(f'"k{j}": {prefix}{i + 1}' for j in range(10)) + "}"
        for i in reversed(range(12))) + "\n"


@pytest.mark.parametrize("script", [
    # at the module level (the evaluated values are read)
    MODEL + _chain("m", "") + "engine, _, _, _ = deepspeed.initialize(model=model, config=m0)\n" + LOOP,
    # in a function (its syntax is read)
    MODEL + "\n\ndef main():\n" + _chain("f", "    ")
    + "    engine, _, _, _ = deepspeed.initialize(model=model, config=f0)\n"
    + "    loss = engine(torch.randn(8, 1000)).sum()\n\n\nif __name__ == '__main__':\n    main()\n",
    # a config that names itself, one that is neither a dict nor a path
    MODEL + "loop = {}\nloop['zero_optimization'] = loop\n"
    + "engine, _, _, _ = deepspeed.initialize(model=model, config=loop)\n" + LOOP,
    MODEL + "engine, _, _, _ = deepspeed.initialize(model=model, config=42)\n" + LOOP,
], ids=["module-level", "function", "self-reference", "not-a-config"])
def test_odd_code_finishes(tmp_path: Path, plans: dict[str, ParallelPlan | None], script: str) -> None:
    path = project(tmp_path, {"train.py": script})
    done: list[ParallelPlan] = []
    worker = threading.Thread(target=lambda: done.append(plan_of(path, plans)), daemon=True)
    worker.start()
    worker.join(30)
    assert done, "the analysis did not finish within 30 s"
    assert done[0].strategy == "deepspeed" and done[0].stage == 0


def test_a_local_config_is_not_the_modules(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    # The module's `ds_config` is not the one main() passes: the plan must not say stage 1.
    path = project(tmp_path, {"train.py": MODEL + """
ds_config = {"zero_optimization": {"stage": 1}}


def main(stage):
    ds_config = {"zero_optimization": {"stage": stage}}
    engine, _, _, _ = deepspeed.initialize(model=model, config=ds_config)
    loss = engine(torch.randn(8, 1000)).sum()


if __name__ == "__main__":
    main(3)
"""})
    plan = plan_of(path, plans)
    assert plan.stage != 1
    assert any("not decided" in n for n in plan.notes)


def test_a_model_built_under_zero_init(tmp_path: Path, plans: dict[str, ParallelPlan | None]) -> None:
    path = project(tmp_path, {"train.py": """
import torch
import torch.nn as nn
import deepspeed

with deepspeed.zero.Init():
    model = nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 10))
engine, _, _, _ = deepspeed.initialize(model=model, config={"zero_optimization": {"stage": 3}})
loss = engine(torch.randn(8, 1000)).sum()
"""})
    plan = plan_of(path, plans)
    assert plan.stage == 3 and plan.zero_init is True
    assert source(plan, "zero.Init") == ("True", "code: deepspeed.zero.Init(...) at line 5")
