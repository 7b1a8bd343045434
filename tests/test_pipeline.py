"""`pipeline(task, model=...)` offline (issue 13, part 1): the model transformers' pipeline() loads
for the task (its class from transformers' own SUPPORTED_TASKS table), built by the offline
from_pretrained, is a model of the file under the pipeline's name.

Truth: tests/fixtures/hub/truth.json (real transformers 5.17.0: `AutoModelForCausalLM` /
`AutoModel.from_config` of each fixture config, made by tests/fixtures/hub/make_hub_fixtures.py):
"text-generation" loads with AutoModelForCausalLM, "feature-extraction" with AutoModel
(transformers/pipelines/__init__.py, SUPPORTED_TASKS).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import TRANSFORMERS_VERSION, library_source
from tests.test_from_pretrained import HUB, TRUTH, analyser, assert_truth, fake_cache, models_of

Analyse = Callable[..., vramlint.FileAnalysis]


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Analyse:
    return analyser(tmp_path_factory.mktemp("pipeline"), (library_source("transformers", TRANSFORMERS_VERSION),))


def test_local_folder_and_tasks(analyse: Analyse) -> None:
    src = (
        "import torch\n"
        "import torch.nn as nn\n"
        "from transformers import pipeline\n"
        f"pipe = pipeline('text-generation', model={str(HUB / 'llama')!r}, torch_dtype=torch.float16, device_map='auto')\n"
        f"auto = pipeline('text-generation', {str(HUB / 'mistral')!r})\n"
        f"features = pipeline(task='feature-extraction', model={str(HUB / 'qwen2')!r}, dtype='bfloat16')\n"
        "probe = nn.Linear(1, pipe.model.config.hidden_size, bias=False)\n"
        "task = nn.Linear(1, 3 if pipe.task == 'text-generation' else 5, bias=False)\n"
    )
    found = models_of(analyse(src))
    families = TRUTH["families"]
    assert_truth(found["pipe"], dict(families["llama"]["AutoModelForCausalLM"], dtype="float16"))
    assert_truth(found["auto"], families["mistral"]["AutoModelForCausalLM"])  # dtype "auto": the config's
    assert_truth(found["features"], dict(families["qwen2"]["AutoModel"], dtype="bfloat16"))
    assert found["probe"].params.total == 64  # pipe.model is the model
    assert found["task"].params.total == 3


def test_hub_name_from_the_cache(analyse: Analyse, tmp_path: Path) -> None:
    cache = fake_cache(tmp_path / "hub", "org/phi3-tiny", "phi3")
    src = (
        "from transformers import pipeline\n"
        "generator = pipeline('text-generation', model='org/phi3-tiny', model_kwargs={'dtype': 'float16'})\n"
    )
    truth = dict(TRUTH["families"]["phi3"]["AutoModelForCausalLM"], dtype="float16")
    assert_truth(models_of(analyse(src, {"HF_HUB_CACHE": str(cache)}))["generator"], truth)


def test_a_model_object_is_the_pipelines_model(analyse: Analyse) -> None:
    # The model given is the one the pipeline holds: listed once, under the user's own name.
    src = (
        "import torch.nn as nn\n"
        "from transformers import AutoModelForCausalLM, pipeline\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(HUB / 'gpt2')!r})\n"
        "pipe = pipeline('text-generation', model=model)\n"
        "same = nn.Linear(1, 3 if pipe.model is model else 5, bias=False)\n"
    )
    found = models_of(analyse(src))
    assert_truth(found["model"], TRUTH["families"]["gpt2"]["AutoModelForCausalLM"])
    assert "pipe" not in found
    assert found["same"].params.total == 3


def test_in_the_main_block(analyse: Analyse) -> None:
    src = (
        "from transformers import pipeline\n"
        "def main():\n"
        f"    pipe = pipeline('text-generation', model={str(HUB / 'qwen2')!r})\n"
        "    return pipe\n"
        "if __name__ == '__main__':\n"
        "    main()\n"
    )
    found = models_of(analyse(src))
    assert_truth(found["main.pipe"], TRUTH["families"]["qwen2"]["AutoModelForCausalLM"])


def test_what_to_provide(analyse: Analyse, tmp_path: Path) -> None:
    src = (
        "from transformers import pipeline\n"
        "absent = pipeline('text-generation', model='org/absent')\n"
        "default = pipeline('text-generation')\n"
        "untold = pipeline(model='org/absent')\n"
    )
    result = analyse(src, {"HF_HUB_CACHE": str(tmp_path / "empty")})
    assert not result.models
    reasons = {u.location.line: u.reason for u in result.unevaluated if u.location is not None}
    assert "`org/absent` is not available offline" in reasons[2] and str(tmp_path / "empty") in reasons[2]
    # No model: the task's default checkpoint, which the cache does not have either.
    assert "HuggingFaceTB/SmolLM3-3B" in reasons[3] and "never downloads" in reasons[3]
    assert "without a task" in reasons[4]
