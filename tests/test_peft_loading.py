"""`PeftModel.from_pretrained(base, adapter)` and `AutoPeftModelForCausalLM.from_pretrained(adapter)`
offline (issue 13, part 2): the adapter's adapter_config.json from a local folder, the Hugging Face
cache or the configuration, peft's own source for the rest, no weights read.

Truth: tests/fixtures/adapters/truth.json, made by tests/fixtures/adapters/make_adapter_fixtures.py
with the real peft 0.21.2, transformers 5.17.0 and torch 2.13.0 on the CPU (the adapters saved by
real `save_pretrained`, loaded back by real `PeftModel.from_pretrained` / `AutoPeftModelForCausalLM`),
beside the adapter_config.json files it wrote. The bases are tests/fixtures/hub/'s 2-layer configs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import (
    ACCELERATE_VERSION,
    PEFT_VERSION,
    TRANSFORMERS_VERSION,
    library_source,
)
from tests.test_from_pretrained import analyser
from vramlint.analysis.results import ModuleNode, TensorInfo
from vramlint.settings import ConfigError, load_settings

HUB = Path(__file__).parent / "fixtures/hub"
ADAPTERS = Path(__file__).parent / "fixtures/adapters"
TRUTH = json.loads((ADAPTERS / "truth.json").read_text())
COMMIT = "0123456789abcdef0123456789abcdef01234567"

Analyse = Callable[..., vramlint.FileAnalysis]


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Analyse:
    libraries = (("transformers", TRANSFORMERS_VERSION), ("peft", PEFT_VERSION), ("accelerate", ACCELERATE_VERSION))
    return analyser(tmp_path_factory.mktemp("peft_loading"), tuple(library_source(*lib) for lib in libraries))


def cached(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """A Hugging Face hub cache holding `files` of one repository, as huggingface_hub lays it out."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)
    return cache


def base_cache(cache: Path, family: str) -> Path:
    """The adapters' `base_model_name_or_path` (vramlint-fixtures/<family>-2l) in a cache."""
    return cached(cache, f"vramlint-fixtures/{family}-2l", {"config.json": HUB / family / "config.json"})


def tensors(node: ModuleNode | None) -> Iterator[tuple[str, TensorInfo]]:
    """Each parameter with its module's path."""
    assert node is not None
    yield from ((node.path, t) for t in node.params)
    for child in node.children:
        yield from tensors(child)


def assert_truth(model: vramlint.ModelResult, truth: dict[str, object], base_dtype: str = "bfloat16") -> None:
    assert model.error is None, model.error
    assert not model.unknowns, [f"{u.reason} at {u.location}" for u in model.unknowns[:5]]
    assert model.tree is not None and model.tree.class_name == truth["class"]
    assert (model.params.total, model.params.trainable) == (truth["params"], truth["trainable"])
    found = list(tensors(model.tree))
    assert sorted(t.numel or 0 for _, t in found if t.trainable) == sorted(truth["trainable_tensors"])  # type: ignore[type-var]
    # peft casts bf16 adapters to fp32 (autocast_adapter_dtype); the base keeps its dtype.
    assert sorted({t.dtype for path, t in found if "lora_" in path}) == truth["lora_dtypes"]
    assert {t.dtype for path, t in found if "lora_" not in path} == {base_dtype}


def models_of(result: vramlint.FileAnalysis) -> dict[str, vramlint.ModelResult]:
    assert not result.errors, result.errors
    return {m.name: m for m in result.models}


def test_truth_records_its_versions() -> None:
    assert TRUTH["versions"]["peft"] == PEFT_VERSION
    assert TRUTH["versions"]["transformers"] == TRANSFORMERS_VERSION
    assert TRUTH["versions"]["torch"].split("+")[0] == "2.13.0"


@pytest.mark.parametrize("adapter", sorted(TRUTH["adapters"]))
def test_local_adapter_folder(adapter: str, analyse: Analyse, tmp_path: Path) -> None:
    """PeftModel.from_pretrained frozen (peft's default) and trainable, and AutoPeftModelForCausalLM,
    whose base comes from the adapter's `base_model_name_or_path`, in the cache."""
    truth = TRUTH["adapters"][adapter]
    base, folder = HUB / truth["base"], ADAPTERS / adapter
    src = (
        "from transformers import AutoModelForCausalLM\n"
        "from peft import AutoPeftModelForCausalLM, PeftModel\n"
        f"frozen = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({str(base)!r}), {str(folder)!r})\n"
        f"base = AutoModelForCausalLM.from_pretrained({str(base)!r})\n"
        f"trainable = PeftModel.from_pretrained(base, {str(folder)!r}, is_trainable=True)\n"
        f"auto = AutoPeftModelForCausalLM.from_pretrained({str(folder)!r})\n"
        f"auto_trainable = AutoPeftModelForCausalLM.from_pretrained({str(folder)!r}, is_trainable=True)\n"
    )
    found = models_of(analyse(src, {"HF_HUB_CACHE": str(base_cache(tmp_path / "hub", truth["base"]))}))
    for name in ("frozen", "trainable", "auto", "auto_trainable"):
        assert_truth(found[name], truth[name])


def test_adapter_by_name_from_the_cache(analyse: Analyse, tmp_path: Path) -> None:
    # Both by Hub name: the adapter's adapter_config.json and its base's config.json in the cache.
    truth = TRUTH["adapters"]["qwen2-lora"]
    cache = base_cache(tmp_path / "hub", "qwen2")
    cached(cache, "someone/qwen2-lora", {"adapter_config.json": ADAPTERS / "qwen2-lora" / "adapter_config.json"})
    src = (
        "from transformers import AutoModelForCausalLM\n"
        "from peft import PeftModel\n"
        "base = AutoModelForCausalLM.from_pretrained('vramlint-fixtures/qwen2-2l')\n"
        "model = PeftModel.from_pretrained(base, 'someone/qwen2-lora', is_trainable=True)\n"
    )
    assert_truth(models_of(analyse(src, {"HF_HUB_CACHE": str(cache)}))["model"], truth["trainable"])


def test_adapter_config_from_the_configuration(analyse: Analyse, tmp_path: Path) -> None:
    truth = TRUTH["adapters"]["llama-lora"]
    src = (
        "from transformers import AutoModelForCausalLM\n"
        "from peft import PeftModel\n"
        f"base = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r})\n"
        "model = PeftModel.from_pretrained(base, 'someone/llama-lora')\n"
    )
    tables = {"someone/llama-lora": {"adapter_config": str(ADAPTERS / "llama-lora" / "adapter_config.json")}}
    result = analyse(src, {"HF_HUB_CACHE": str(tmp_path / "empty")}, tables)
    assert_truth(models_of(result)["model"], truth["frozen"])


def test_adapter_not_found_says_what_to_provide(analyse: Analyse, tmp_path: Path) -> None:
    src = (
        "from transformers import AutoModelForCausalLM\n"
        "from peft import PeftModel, AutoPeftModelForCausalLM\n"
        f"base = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r})\n"
        "model = PeftModel.from_pretrained(base, 'someone/absent-lora')\n"
        "auto = AutoPeftModelForCausalLM.from_pretrained('someone/absent-lora')\n"
    )
    result = analyse(src, {"HF_HUB_CACHE": str(tmp_path / "empty")})
    assert {"model", "auto"}.isdisjoint(m.name for m in result.models)
    # Beside a model (`base`): warnings, one per statement.
    found = [u for u in result.warnings if "someone/absent-lora" in u.reason]
    assert [u.location.line for u in found if u.location is not None] == [4, 5], [u.reason for u in found]
    for unknown in found:  # one clear reason each, located at the user's line
        assert "never downloads" in unknown.reason and "adapter_config.json" in unknown.reason
        for hint in ("local folder", str(tmp_path / "empty"), 'adapter_config = "path/to/adapter_config.json"'):
            assert hint in unknown.reason, hint
        assert "peft_model.py" not in unknown.reason


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"r": 8}'])
def test_a_broken_adapter_config_is_a_located_unknown(content: str, analyse: Analyse, tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(content)
    src = (
        "from peft import PeftConfig\n"
        f"config = PeftConfig.from_pretrained({str(tmp_path)!r})\n"
    )
    result = analyse(src)
    found = [u for u in (*result.unevaluated, *result.warnings) if str(tmp_path / "adapter_config.json") in u.reason]
    assert found and found[0].location is not None and found[0].location.line == 2, \
        [u.reason for u in (*result.unevaluated, *result.warnings)]


def test_peft_config_from_pretrained_runs_from_source(analyse: Analyse) -> None:
    # LoraConfig.from_pretrained: the JSON's values on peft's LoraConfig (probes read them back).
    src = (
        "import torch.nn as nn\n"
        "from peft import LoraConfig, PeftConfig\n"
        f"config = LoraConfig.from_pretrained({str(ADAPTERS / 'llama-lora')!r})\n"
        f"any_config = PeftConfig.from_pretrained({str(ADAPTERS / 'llama-lora')!r})\n"
        "rank = nn.Linear(1, config.r, bias=False)\n"
        "kind = nn.Linear(1, 3 if type(any_config).__name__ == 'LoraConfig' else 5, bias=False)\n"
        "frozen = nn.Linear(1, 7 if config.inference_mode else 11, bias=False)\n"
    )
    found = models_of(analyse(src))
    assert found["rank"].params.total == 8
    assert found["kind"].params.total == 3
    assert found["frozen"].params.total == 7  # saved by save_pretrained with inference_mode=True


def test_adapter_config_key_in_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "adapters").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vramlint.models."org/lora"]\nadapter_config = "adapters/adapter_config.json"\n')
    settings = load_settings(tmp_path)
    expected = str((tmp_path / "adapters" / "adapter_config.json").resolve())
    assert settings.model_config["org/lora"]["adapter_config"] == expected
    (tmp_path / "pyproject.toml").write_text('[tool.vramlint.models."org/lora"]\nadapter_config = 3\n')
    with pytest.raises(ConfigError, match=r"`adapter_config` in \[tool.vramlint.models.\"org/lora\"\]"):
        load_settings(tmp_path)
