"""transformers 5.17.0 models built with their default config (`GPT2LMHeadModel(GPT2Config())`...),
analysed from transformers' own source, have the parameter and buffer counts real torch reports
(tests/fixtures/truth/transformers-5.17.0.json, made by make_truth.py).

Weight tying (lm_head.weight is transformer.wte.weight) comes out of evaluating transformers'
`post_init` -> `tie_weights`, so tied weights count once, as in torch.

Each model is imported from the module that defines it
(`from transformers.models.gpt2.modeling_gpt2 import GPT2LMHeadModel`): the top-level
`transformers/__init__.py` builds its lazy import table by walking the package directory and
reading every file, which the analysis does not do (see the xfail below).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import TRANSFORMERS_VERSION, library_source

TRUTH = json.loads((Path(__file__).parent / "fixtures/truth/transformers-5.17.0.json").read_text())["models"]

# Config class prefix -> transformers.models.<package>
PACKAGES = {
    "Albert": "albert", "Bart": "bart", "Bert": "bert", "Bloom": "bloom", "CLIP": "clip", "DebertaV2": "deberta_v2",
    "DistilBert": "distilbert", "Electra": "electra", "Falcon": "falcon", "GPT2": "gpt2", "GPTNeoX": "gpt_neox",
    "Gemma": "gemma", "Llama": "llama", "Mistral": "mistral", "Mixtral": "mixtral", "OPT": "opt", "Phi": "phi",
    "Qwen2": "qwen2", "Roberta": "roberta", "T5": "t5", "ViT": "vit", "Whisper": "whisper",
}


def model_source(key: str) -> tuple[str, str]:
    """(file stem, source) of a file building the model `key`, e.g. "GPT2Model(GPT2Config())"."""
    m = re.fullmatch(r"(\w+)\((\w+)Config\(\)\)", key)
    assert m is not None, key
    cls, prefix = m.groups()
    pkg = PACKAGES[prefix]
    src = (
        f"from transformers.models.{pkg}.modeling_{pkg} import {cls}\n"
        f"from transformers.models.{pkg}.configuration_{pkg} import {prefix}Config\n"
        f"model = {cls}({prefix}Config())\n"
    )
    return f"tf_{cls}", src


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], vramlint.FileAnalysis]:
    """Analyse a source text once per test module (library modules are shared between analyses)."""
    root = library_source("transformers", TRANSFORMERS_VERSION)
    settings = vramlint.Settings(extra_paths=(str(root),))
    folder = tmp_path_factory.mktemp("transformers_models")
    cache: dict[tuple[str, str], vramlint.FileAnalysis] = {}

    def run(stem: str, src: str) -> vramlint.FileAnalysis:
        key = (stem, src)
        if key not in cache:
            cache[key] = vramlint.analyze_source(str(folder / f"{stem}.py"), src, settings)
        return cache[key]

    return run


def _model(result: vramlint.FileAnalysis) -> vramlint.ModelResult:
    assert not result.errors, result.errors
    found = [m for m in result.models if m.name == "model"]
    assert found, "`model` was not built: " + "; ".join(m.name for m in result.models)
    return found[0]


@pytest.mark.parametrize("key", sorted(TRUTH))
def test_counts_match_torch(key: str, analyse: Callable[[str, str], vramlint.FileAnalysis]) -> None:
    model = _model(analyse(*model_source(key)))
    truth = TRUTH[key]
    assert model.error is None, model.error
    assert model.params.total == truth["params"], [u.reason for u in model.unknowns[:5]]
    assert model.params.trainable == truth["trainable"]
    assert model.params.buffers == truth["buffers"]
    assert not model.unknowns, [u.reason for u in model.unknowns[:5]]


def test_lm_head_is_tied_by_tie_weights(analyse: Callable[[str, str], vramlint.FileAnalysis]) -> None:
    # The output embedding shares the input embedding's tensor: it is listed in both modules but
    # counted once (without tying, GPT-2 would have 50257 * 768 more parameters).
    model = _model(analyse(*model_source("GPT2LMHeadModel(GPT2Config())")))
    assert model.tree is not None
    children = {c.path: c for c in model.tree.children}
    lm_head = children["lm_head"]
    assert [p.name for p in lm_head.params] == ["weight"]
    assert lm_head.param_count == 50257 * 768
    assert model.params.total == TRUTH["GPT2LMHeadModel(GPT2Config())"]["params"] == 124_439_808


def test_top_level_import(analyse: Callable[[str, str], vramlint.FileAnalysis]) -> None:
    # transformers/__init__.py hands its names out through a lazy module built by listing its own
    # folders at run time; the analysis takes the static view instead (`if TYPE_CHECKING:` imports,
    # star imports read from source), as type checkers do.
    src = (
        "from transformers import BertConfig, BertForMaskedLM, GPT2LMHeadModel, GPT2Config\n"
        "gpt = GPT2LMHeadModel(GPT2Config())\n"
        "bert = BertForMaskedLM(BertConfig())\n"
    )
    result = analyse("tf_top_level", src)
    counts = {m.name: m.params.total for m in result.models}
    assert counts == {
        "gpt": TRUTH["GPT2LMHeadModel(GPT2Config())"]["params"],
        "bert": TRUTH["BertForMaskedLM(BertConfig())"]["params"],
    }
