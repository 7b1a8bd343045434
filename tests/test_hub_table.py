"""vramlint's table of popular checkpoints' configs (issue 13, part 1: the last place
`from_pretrained` looks for a config, offline), and what it gives analysed from transformers
5.17.0's own source.

Truth: tests/fixtures/hub/table_truth.json, made by tests/fixtures/hub/make_table_truth.py with
the REAL transformers 5.17.0 and torch 2.13.0 (each table config read back by
`AutoConfig.from_pretrained`, the model built by `AutoModelForCausalLM`/`AutoModel.from_config`
on the meta device). Beside it, counts published independently of both (the model cards' and
papers' figures are rounded; these are the exact ones the TinyLlama fixture of truth.json holds).

The default run counts one checkpoint of each config class of the table (every architecture it
holds, under a minute); `VRAMLINT_HUB_TABLE_ALL=1` counts all of them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import TRANSFORMERS_VERSION, library_source
from tests.test_from_pretrained import COMMIT, fake_cache, param_dtypes
from vramlint.frontends.transformers.pretrained import (
    TABLE_NAME,
    hub_table,
    locate_config,
    parse_table,
    read_config,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parents[1]
HUB = Path(__file__).parent / "fixtures/hub"
TABLE_FILE = ROOT / "server/vramlint/frontends/transformers" / TABLE_NAME
TABLE = json.loads(TABLE_FILE.read_text())
TRUTH = json.loads((HUB / "table_truth.json").read_text())
NAMES = sorted(TRUTH["entries"], key=str.lower)
# One checkpoint per config class, the first by name: every architecture of the table.
SAMPLE = sorted({TRUTH["entries"][n]["config_class"]: n for n in reversed(NAMES)}.values(), key=str.lower)
COUNTED = NAMES if os.environ.get("VRAMLINT_HUB_TABLE_ALL") else SAMPLE
TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"

Analyse = Callable[..., vramlint.FileAnalysis]


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Analyse:
    root = library_source("transformers", TRANSFORMERS_VERSION)
    folder = tmp_path_factory.mktemp("hub_table")
    # An empty Hugging Face cache: whatever the machine has cached, only the table can answer.
    empty = tmp_path_factory.mktemp("empty_cache")
    count = iter(range(10_000))

    def run(src: str, environment: dict[str, str] | None = None,
            model_config: dict[str, dict[str, str]] | None = None) -> vramlint.FileAnalysis:
        env = {"HF_HUB_CACHE": str(empty), **(environment or {})}
        settings = vramlint.Settings(extra_paths=(str(root),), environment=tuple(sorted(env.items())),
                                     model_config=model_config or {})
        return vramlint.analyze_source(str(folder / f"ht_{next(count)}.py"), src, settings)

    return run


def model_named(result: vramlint.FileAnalysis, name: str) -> vramlint.ModelResult:
    assert not result.errors, result.errors
    found = {m.name: m for m in result.models}
    assert name in found, [u.reason for u in result.unevaluated]
    return found[name]


# ------------------------------------------------------------------ the table itself
def test_the_table_ships_with_the_wheel() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert f"frontends/transformers/{TABLE_NAME}" in package_data["vramlint"]
    assert set(hub_table()) >= {e["name"] for e in TABLE["entries"]}


@pytest.mark.parametrize("entry", TABLE["entries"], ids=lambda e: e["name"])
def test_every_entry_says_where_it_was_copied_from(entry: dict) -> None:
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry["name"])
    assert isinstance(entry["config"].get("model_type"), str)
    source = entry["source"]
    assert source["repository"] and source["path"] and re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert source.get("identified_by"), "why this source's values are this checkpoint's"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["date"])
    # The copy keeps none of the source's own runtime keys (tools/make_hub_configs.py, MLC_KEYS).
    assert not set(entry["config"]) & {"context_window_size", "prefill_chunk_size", "sliding_window_size"}


def test_the_header_says_what_it_covers_and_what_is_missing() -> None:
    assert str(len(TABLE["entries"])) in TABLE["coverage"] and "top-100" in TABLE["coverage"]
    assert TABLE["missing"] and any("bert" in m.lower() for m in TABLE["missing"])
    assert TRUTH["table_made"] == TABLE["made"], "table_truth.json is of another table: rerun make_table_truth.py"
    assert set(TRUTH["entries"]) == {e["name"] for e in TABLE["entries"]}


def test_the_table_comes_last(tmp_path: Path) -> None:
    found = locate_config(TINYLLAMA, {"HF_HUB_CACHE": str(tmp_path)}, {})
    assert not isinstance(found, str) and found.data is not None and "vramlint's table" in found.source
    assert "mlc-ai/mlc-llm" in found.source and TABLE["entries"][0]["date"] in found.source
    # The cache, then the configuration, come first.
    cache = fake_cache(tmp_path / "hub", TINYLLAMA, "llama")
    found = locate_config(TINYLLAMA, {"HF_HUB_CACHE": str(cache)}, {})
    assert not isinstance(found, str) and "cache" in found.source and found.data is None
    table = {TINYLLAMA: {"config": str(HUB / "gpt2" / "config.json")}}
    found = locate_config(TINYLLAMA, {"HF_HUB_CACHE": str(tmp_path / "none")}, table)
    assert not isinstance(found, str) and "tool.vramlint.models" in found.source
    # One commit of the main branch, at the root: another revision or a subfolder is not in it.
    for other in (dict(revision="v2"), dict(subfolder="text_encoder")):
        missing = locate_config(TINYLLAMA, {"HF_HUB_CACHE": str(tmp_path / "none")}, {}, **other)
        assert isinstance(missing, str) and "table of popular checkpoints does not have it at that revision" in missing


@pytest.mark.parametrize("text", ["{", "[]", '{"entries": 3}', '{"entries": [1, {"name": 3, "config": {}}, '
                                  '{"name": "a/b", "config": [], "aliases": 5}]}', "[" * 100_000])
def test_a_broken_table_is_an_empty_one(text: str) -> None:
    assert parse_table(text) == {}


def test_reading_an_entry_gives_a_copy(tmp_path: Path) -> None:
    # transformers' config code changes nested dicts (rope_scaling) in place: the next read must not see it.
    found = locate_config("meta-llama/Llama-3.1-8B-Instruct", {"HF_HUB_CACHE": str(tmp_path)}, {})
    assert not isinstance(found, str)
    first = read_config(found)
    assert isinstance(first, dict)
    first["rope_scaling"]["factor"] = -1
    second = read_config(found)
    assert isinstance(second, dict) and second["rope_scaling"]["factor"] == 8.0


# ------------------------------------------------------------------ analysed from transformers' source
def test_every_entry_parses_into_its_config_class(analyse: Analyse) -> None:
    """`AutoConfig.from_pretrained(name)` with only the table to read from: the config class the
    real transformers gives, and its layer count read back (probes whose sizes say what the
    analysed code saw)."""
    lines = ["import torch.nn as nn", "from transformers import AutoConfig"]
    for i, name in enumerate(NAMES):
        entry = next(e for e in TABLE["entries"] if e["name"] == name)
        layers = entry["config"].get("num_hidden_layers", entry["config"].get("n_layer"))
        lines += [f"c{i} = AutoConfig.from_pretrained({name!r})",
                  f"p{i} = nn.Linear(1, 2 if type(c{i}).__name__ == {TRUTH['entries'][name]['config_class']!r} "
                  f"and c{i}.num_hidden_layers == {layers} else 3, bias=False)"]
    result = analyse("\n".join(lines) + "\n")
    wrong = [name for i, name in enumerate(NAMES) if model_named(result, f"p{i}").params.total != 2]
    assert not wrong


@pytest.mark.parametrize("name", COUNTED)
def test_counts_equal_real_transformers(name: str, analyse: Analyse) -> None:
    truth = TRUTH["entries"][name]
    src = f"from transformers import {truth['auto']}\nmodel = {truth['auto']}.from_pretrained({name!r})\n"
    model = model_named(analyse(src), "model")
    assert model.error is None and not model.unknowns, [u.reason for u in model.unknowns[:3]]
    assert model.tree is not None and model.tree.class_name == truth["class"]
    assert (model.params.total, model.params.trainable, model.params.buffers) == (
        truth["params"], truth["trainable"], truth["buffers"])
    assert param_dtypes(model.tree) == {truth["dtype"]}
    assert "vramlint's table of popular checkpoints" in model.construction


def test_sample_covers_every_architecture() -> None:
    assert {TRUTH["entries"][n]["config_class"] for n in SAMPLE} == {t["config_class"] for t in TRUTH["entries"].values()}


def test_issue_repro_tinyllama_by_name_with_nothing_cached(analyse: Analyse) -> None:
    """Issue 13's first example printed "no models found": now the table answers, and says so."""
    src = (
        "import torch\n"
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({TINYLLAMA!r}, torch_dtype=torch.bfloat16)\n"
    )
    model = model_named(analyse(src), "model")
    # The count truth.json holds for TinyLlama-1.1B's shape (make_hub_fixtures.py), made apart from the table.
    assert model.params.total == json.loads((HUB / "truth.json").read_text())["families"]["tinyllama"][
        "AutoModelForCausalLM"]["params"] == 1_100_048_384
    assert param_dtypes(model.tree) == {"bfloat16"}
    assert "vramlint's table of popular checkpoints (mlc-ai/mlc-llm" in model.construction
    assert "tinyllama_1b_chat_v1.0" in model.construction and "2026-07-23" in model.construction


def test_the_cache_wins_over_the_table(analyse: Analyse, tmp_path: Path) -> None:
    cache = fake_cache(tmp_path / "hub", TINYLLAMA, "llama")
    src = f"from transformers import AutoModelForCausalLM\nmodel = AutoModelForCausalLM.from_pretrained({TINYLLAMA!r})\n"
    model = model_named(analyse(src, {"HF_HUB_CACHE": str(cache)}), "model")
    small = json.loads((HUB / "truth.json").read_text())["families"]["llama"]["AutoModelForCausalLM"]["params"]
    assert model.params.total == small
    assert "(Hugging Face cache " in model.construction and "config from " in model.construction
    assert ("config", f"{cache}/models--TinyLlama--TinyLlama-1.1B-Chat-v1.0/snapshots/{COMMIT}/config.json "
                      f"(Hugging Face cache {cache})") in model.origin


def test_an_alias_the_hub_redirects(analyse: Analyse) -> None:
    src = "from transformers import GPT2LMHeadModel\nmodel = GPT2LMHeadModel.from_pretrained('gpt2')\n"
    model = model_named(analyse(src), "model")
    assert model.params.total == TRUTH["entries"]["openai-community/gpt2"]["params"]


def test_a_name_the_table_lacks_still_says_what_to_provide(analyse: Analyse, tmp_path: Path) -> None:
    src = "from transformers import AutoModelForCausalLM\nmodel = AutoModelForCausalLM.from_pretrained('org/private-7b')\n"
    result = analyse(src, {"HF_HUB_CACHE": str(tmp_path)})
    assert "model" not in {m.name for m in result.models}
    text = " ".join(u.reason for u in result.unevaluated)
    for hint in ("never downloads", "table of popular checkpoints does not have it", "local folder",
                 str(tmp_path), "tool.vramlint.models"):
        assert hint in text, hint


# ------------------------------------------------------------------ configs naming remote code
def test_an_auto_map_with_transformers_own_architecture_is_counted(analyse: Analyse, tmp_path: Path) -> None:
    """Phi-3's config.json has an `auto_map` (remote code) and a model_type transformers has:
    transformers loads it with its own code. Its trust_remote_code check first asks
    `os.path.isdir(name)` for an error message, which left the count undecided."""
    data = json.loads((HUB / "phi3" / "config.json").read_text())
    data["auto_map"] = {"AutoConfig": "configuration_phi3.Phi3Config",
                        "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM"}
    (tmp_path / "config.json").write_text(json.dumps(data))
    src = f"from transformers import AutoModelForCausalLM\nmodel = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r})\n"
    model = model_named(analyse(src), "model")
    truth = json.loads((HUB / "truth.json").read_text())["families"]["phi3"]["AutoModelForCausalLM"]
    assert not model.unknowns, [u.reason for u in model.unknowns]
    assert model.params.total == truth["params"]


def test_remote_code_only_is_refused_as_transformers_does(analyse: Analyse, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "my_private_arch", "auto_map": {"AutoConfig": "configuration_x.XConfig"}}))
    src = f"from transformers import AutoConfig\nconfig = AutoConfig.from_pretrained({str(tmp_path)!r})\n"
    result = analyse(src)
    found = [u for u in result.unevaluated if "remote code" in u.reason]
    assert found and found[0].location is not None and found[0].location.line == 2
