"""`from_pretrained(name_or_path, ...)` offline (issue 13, part 1): the checkpoint's config.json from
a local folder, the Hugging Face cache or the configuration, and the model built from it as
transformers builds it, analysed from transformers 5.17.0's own source.

Truth: tests/fixtures/hub/truth.json, made by tests/fixtures/hub/make_hub_fixtures.py with the real
transformers 5.17.0 and torch 2.13.0 (`AutoModelForCausalLM.from_config(config)` on the meta device),
beside the config.json files it wrote.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import TRANSFORMERS_VERSION, library_source
from vramlint.analysis.results import ModuleNode
from vramlint.frontends.transformers.pretrained import hub_cache, locate_config
from vramlint.settings import ConfigError, load_settings

HUB = Path(__file__).parent / "fixtures/hub"
TRUTH = json.loads((HUB / "truth.json").read_text())
FAMILIES = sorted(TRUTH["families"])
COMMIT = "0123456789abcdef0123456789abcdef01234567"

Analyse = Callable[..., vramlint.FileAnalysis]


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Analyse:
    return analyser(tmp_path_factory.mktemp("from_pretrained"), (library_source("transformers", TRANSFORMERS_VERSION),))


def analyser(folder: Path, roots: tuple[Path, ...]) -> Analyse:
    """Analyse a source text as a file of `folder`, with `roots` (libraries' sources) on the search
    path, an `environment` table and per-model tables."""
    count = iter(range(10_000))

    def run(src: str, environment: dict[str, str] | None = None,
            model_config: dict[str, dict[str, str]] | None = None) -> vramlint.FileAnalysis:
        settings = vramlint.Settings(extra_paths=tuple(map(str, roots)),
                                     environment=tuple(sorted((environment or {}).items())),
                                     model_config=model_config or {})
        return vramlint.analyze_source(str(folder / f"fp_{next(count)}.py"), src, settings)

    return run


def fake_cache(cache: Path, repo_id: str, family: str, revision: str = "main") -> Path:
    """A Hugging Face hub cache holding one checkpoint's config.json, as huggingface_hub lays it out."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    shutil.copy(HUB / family / "config.json", snapshot / "config.json")
    return cache


def models_of(result: vramlint.FileAnalysis) -> dict[str, vramlint.ModelResult]:
    assert not result.errors, result.errors
    return {m.name: m for m in result.models}


def param_dtypes(node: ModuleNode | None) -> set[str]:
    def walk(n: ModuleNode) -> Iterator[str]:
        yield from (p.dtype for p in n.params)
        for c in n.children:
            yield from walk(c)

    assert node is not None
    return set(walk(node))


def assert_truth(model: vramlint.ModelResult, truth: dict[str, object]) -> None:
    assert model.error is None, model.error
    assert not model.unknowns, [u.reason for u in model.unknowns[:5]]
    assert model.tree is not None and model.tree.class_name == truth["class"]
    assert (model.params.total, model.params.trainable, model.params.buffers) == (
        truth["params"], truth["trainable"], truth["buffers"])
    assert param_dtypes(model.tree) == {truth["dtype"]}


@pytest.mark.parametrize("family", FAMILIES)
def test_local_folder(family: str, analyse: Analyse) -> None:
    # dtype left out: transformers 5 loads with dtype="auto", the config's dtype.
    src = (
        "from transformers import AutoModelForCausalLM, AutoModel\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(HUB / family)!r})\n"
        f"base = AutoModel.from_pretrained({str(HUB / family)!r})\n"
    )
    found = models_of(analyse(src))
    assert_truth(found["model"], TRUTH["families"][family]["AutoModelForCausalLM"])
    assert_truth(found["base"], TRUTH["families"][family]["AutoModel"])


@pytest.mark.parametrize("family", FAMILIES)
def test_hub_name_from_the_cache(family: str, analyse: Analyse, tmp_path: Path) -> None:
    cache = fake_cache(tmp_path / "hub", f"org/{family}-tiny", family)
    src = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained('org/{family}-tiny', torch_dtype=torch.bfloat16)\n"
    )
    truth = dict(TRUTH["families"][family]["AutoModelForCausalLM"], dtype="bfloat16")
    assert_truth(models_of(analyse(src, {"HF_HUB_CACHE": str(cache)}))["model"], truth)


def test_issue_repro_tinyllama_by_name(analyse: Analyse, tmp_path: Path) -> None:
    # Issue 13's example, which printed "no models found": the checkpoint in the local cache.
    cache = fake_cache(tmp_path / "hub", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "tinyllama")
    src = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM\n"
        "model = AutoModelForCausalLM.from_pretrained('TinyLlama/TinyLlama-1.1B-Chat-v1.0', torch_dtype=torch.bfloat16)\n"
    )
    model = models_of(analyse(src, {"HF_HUB_CACHE": str(cache)}))["model"]
    assert_truth(model, TRUTH["families"]["tinyllama"]["AutoModelForCausalLM"])
    assert model.params.total == 1_100_048_384
    # How it was loaded, for the hover on from_pretrained and the reports.
    config = cache / "models--TinyLlama--TinyLlama-1.1B-Chat-v1.0" / "snapshots" / COMMIT / "config.json"
    assert model.origin == (("checkpoint", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
                            ("config", f"{config} (Hugging Face cache {cache})"),
                            ("dtype", "bfloat16 (`torch_dtype=`)"),
                            ("attention", "sdpa (transformers default)"))


def test_origin_says_attention_quantization_and_device_map(analyse: Analyse) -> None:
    src = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM, BitsAndBytesConfig\n"
        "bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True,\n"
        "                         bnb_4bit_compute_dtype=torch.bfloat16)\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r}, quantization_config=bnb,\n"
        "                                             attn_implementation='eager', device_map='auto')\n"
    )
    rows = dict(models_of(analyse(src))["model"].origin)
    assert rows["attention"] == "eager (`attn_implementation=`)"
    assert rows["quantization"] == "4-bit nf4, double quantization, compute bfloat16 (`quantization_config=`)"
    assert rows["device_map"] == "'auto' (one GPU: the whole model on it)"


def test_cache_under_hf_home_and_revision(analyse: Analyse, tmp_path: Path) -> None:
    fake_cache(tmp_path / "home" / "hub", "org/tiny", "qwen2", revision="v1.0")
    src = (
        "from transformers import Qwen2ForCausalLM\n"
        "model = Qwen2ForCausalLM.from_pretrained('org/tiny', revision='v1.0', dtype='float16')\n"
        f"pinned = Qwen2ForCausalLM.from_pretrained('org/tiny', revision={COMMIT!r})\n"
    )
    found = models_of(analyse(src, {"HF_HOME": str(tmp_path / "home")}))
    assert_truth(found["model"], dict(TRUTH["families"]["qwen2"]["AutoModelForCausalLM"], dtype="float16"))
    assert_truth(found["pinned"], TRUTH["families"]["qwen2"]["AutoModelForCausalLM"])
    assert dict(found["model"].origin)["dtype"] == "float16 (`dtype=`)"
    config_dtype = json.loads((HUB / "qwen2" / "config.json").read_text())["dtype"]
    assert dict(found["pinned"].origin)["dtype"] == f"{config_dtype} (the config's `dtype`)"


def test_config_from_the_configuration(analyse: Analyse) -> None:
    src = (
        "from transformers import AutoModelForCausalLM\n"
        "model = AutoModelForCausalLM.from_pretrained('microsoft/Phi-3-tiny')\n"
    )
    tables = {"microsoft/Phi-3-tiny": {"config": str(HUB / "phi3" / "config.json")}}
    assert_truth(models_of(analyse(src, model_config=tables))["model"],
                 TRUTH["families"]["phi3"]["AutoModelForCausalLM"])


def test_auto_config_then_concrete_class(analyse: Analyse) -> None:
    # AutoConfig.from_pretrained, then `Class(config)` and `_from_config` with dtype and attention.
    src = (
        "import torch\n"
        "from transformers import AutoConfig, MistralForCausalLM\n"
        f"config = AutoConfig.from_pretrained({str(HUB / 'mistral')!r})\n"
        "model = MistralForCausalLM._from_config(config, dtype=torch.bfloat16, attn_implementation='eager')\n"
        "attn = model.config._attn_implementation\n"
        "same = MistralForCausalLM(config)\n"
    )
    result = analyse(src)
    found = models_of(result)
    truth = TRUTH["families"]["mistral"]["AutoModelForCausalLM"]
    assert_truth(found["model"], dict(truth, dtype="bfloat16"))
    assert found["same"].params.total == truth["params"]


def test_config_object_given(analyse: Analyse) -> None:
    # `config=` a config object: used as it is, the name only says where weights would come from.
    src = (
        "from transformers import AutoConfig, AutoModelForCausalLM\n"
        f"config = AutoConfig.from_pretrained({str(HUB / 'qwen2')!r})\n"
        "model = AutoModelForCausalLM.from_pretrained('org/weights-only', config=config, dtype='float16')\n"
    )
    truth = dict(TRUTH["families"]["qwen2"]["AutoModelForCausalLM"], dtype="float16")
    assert_truth(models_of(analyse(src))["model"], truth)


def test_attn_implementation_is_recorded_on_the_config(analyse: Analyse) -> None:
    # Probes whose sizes say what the analysed code reads back from the model.
    src = (
        "import torch.nn as nn\n"
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r}, attn_implementation='eager')\n"
        "attn = nn.Linear(1, 2 if model.config._attn_implementation == 'eager' else 3, bias=False)\n"
        "mode = nn.Linear(1, 5 if model.training is False else 7, bias=False)\n"
    )
    found = models_of(analyse(src))
    assert found["model"].params.total == TRUTH["families"]["llama"]["AutoModelForCausalLM"]["params"]
    assert found["attn"].params.total == 2  # recorded on the config, as _from_config does
    assert found["mode"].params.total == 5  # from_pretrained returns the model in eval mode


def test_config_overrides_by_keyword(analyse: Analyse) -> None:
    # Keywords that are config attributes update the config, as transformers does.
    src = (
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r}, num_hidden_layers=1)\n"
        f"full = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r})\n"
    )
    found = models_of(analyse(src))
    full = found["full"].params.total
    assert full is not None and found["model"].params.total is not None
    assert found["model"].params.total < full  # one of the two layers


def test_no_config_anywhere_says_what_to_provide(analyse: Analyse, tmp_path: Path) -> None:
    # A name vramlint's table of popular checkpoints lacks (TinyLlama's is in it: test_hub_table.py).
    src = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM\n"
        "model = AutoModelForCausalLM.from_pretrained('TinyLlama/TinyLlama-1.1B-private', torch_dtype=torch.bfloat16)\n"
    )
    result = analyse(src, {"HF_HUB_CACHE": str(tmp_path / "empty")})
    assert "model" not in {m.name for m in result.models}
    text = " ".join(u.reason for u in (*result.warnings, *result.errors, *result.unevaluated))
    assert "TinyLlama/TinyLlama-1.1B-private" in text and "never downloads" in text
    for hint in ("local folder", str(tmp_path / "empty"), "tool.vramlint.models"):
        assert hint in text, hint


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "[" * 100_000 + "]" * 100_000])
def test_a_broken_config_json_is_a_located_unknown(content: str, analyse: Analyse, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(content)
    src = f"from transformers import AutoModel\nmodel = AutoModel.from_pretrained({str(tmp_path)!r})\n"
    result = analyse(src)
    found = [u for u in result.unevaluated if str(tmp_path / "config.json") in u.reason]
    assert found and found[0].location is not None and found[0].location.line == 2


def test_locate_config_order(tmp_path: Path) -> None:
    cache = fake_cache(tmp_path / "hub", "org/m", "gpt2")
    table = {"org/m": {"config": str(HUB / "llama" / "config.json")}}
    found = locate_config("org/m", {"HF_HUB_CACHE": str(cache)}, table)
    assert not isinstance(found, str) and "cache" in found.source  # the cache before the configuration
    found = locate_config("org/m", {"HF_HUB_CACHE": str(tmp_path / "none")}, table)
    assert not isinstance(found, str) and "tool.vramlint.models" in found.source
    assert isinstance(locate_config(str(tmp_path), {}, table), str)  # a folder without config.json


def test_hub_cache_folder() -> None:
    assert hub_cache({"HF_HUB_CACHE": "/a"}) == "/a"
    assert hub_cache({"HF_HOME": "/h"}) == "/h/hub"
    assert hub_cache({"XDG_CACHE_HOME": "/x"}) == "/x/huggingface/hub"
    assert hub_cache({}) == str(Path.home() / ".cache/huggingface/hub")
    assert hub_cache({"HF_HUB_CACHE": "/a"}, cache_dir="/c") == "/c"


def test_per_model_config_key_in_the_configuration(tmp_path: Path) -> None:
    # Relative to the configuration file, whatever folder vramlint runs in.
    (tmp_path / "configs").mkdir()
    shutil.copy(HUB / "gpt2" / "config.json", tmp_path / "configs" / "gpt2.json")
    (tmp_path / "pyproject.toml").write_text('[tool.vramlint.models."org/gpt2-tiny"]\nconfig = "configs/gpt2.json"\n')
    settings = load_settings(tmp_path)
    assert settings.model_config["org/gpt2-tiny"]["config"] == str((tmp_path / "configs" / "gpt2.json").resolve())
    (tmp_path / "pyproject.toml").write_text('[tool.vramlint.models."org/gpt2-tiny"]\nconfig = 3\n')
    with pytest.raises(ConfigError, match=r"`config` in \[tool.vramlint.models.\"org/gpt2-tiny\"\]"):
        load_settings(tmp_path)


def test_the_unknown_is_located_at_the_users_call(analyse: Analyse, tmp_path: Path) -> None:
    src = (
        "from transformers import AutoModelForCausalLM\n"
        "\n"
        "model = AutoModelForCausalLM.from_pretrained('org/absent')\n"
    )
    result = analyse(src, {"HF_HUB_CACHE": str(tmp_path)})
    found = [u for u in result.unevaluated if "org/absent" in u.reason]
    assert found and found[0].location is not None and found[0].location.line == 3
    assert "modeling_auto.py" not in found[0].reason


def test_the_configs_dtype_is_the_estimates_precision(tmp_path: Path) -> None:
    """No dtype= (transformers 5 loads the config's dtype): the parameters are bf16, and so is the
    precision the estimate states, from the parameters; a dtype= in the code still says where."""
    root = library_source("transformers", TRANSFORMERS_VERSION)
    settings = vramlint.Settings(extra_paths=(str(root),), memory=True, inputs=(vramlint.InputSpec((16,), "int64"),))
    src = (f"from transformers import AutoModelForCausalLM\n"
           f"model = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r})\n")
    (m,) = vramlint.analyze_source(str(tmp_path / "auto.py"), src, settings).models
    assert m.memory is not None and m.setup is not None
    assert (m.setup["precision"], m.setup.source("precision")) == ("bf16", "the model's parameters")
    assert m.memory.precision == "bf16"
    # A float32 checkpoint (Gemma 2's fixture) stays at the default.
    src = src.replace("llama", "gemma2")
    (m,) = vramlint.analyze_source(str(tmp_path / "fp32.py"), src, settings).models
    assert m.setup is not None and (m.setup["precision"], m.setup.source("precision")) == ("fp32", "default")


def test_a_loaded_model_trains_in_training_mode(tmp_path: Path) -> None:
    """from_pretrained returns the model in eval mode; a training step runs in training mode, as
    trainers set it. Were it traced in eval mode, transformers' decoder layers would skip gradient
    checkpointing (`self.gradient_checkpointing and self.training`): with checkpointing the
    layers keep only their inputs, far less than without."""
    src = ("from transformers import AutoModelForCausalLM\n"
           f"model = AutoModelForCausalLM.from_pretrained({str(HUB / 'llama')!r})\n")
    root = library_source("transformers", TRANSFORMERS_VERSION)
    kept = {}
    for checkpointing in (False, True):
        settings = vramlint.Settings(extra_paths=(str(root),), memory=True, checkpointing=checkpointing,
                                     inputs=(vramlint.InputSpec((64,), "int64"),), batch_size=2)
        model = models_of(vramlint.analyze_source(str(tmp_path / f"train_{checkpointing}.py"), src, settings))["model"]
        assert model.memory is not None, [u.reason for u in model.memory_unknowns[:3]]
        kept[checkpointing] = model.memory.activations
    assert kept[True] < kept[False] / 2, kept
