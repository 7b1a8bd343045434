"""Forward trace of transformers 5.17 GPT-2 and BERT language models on input ids [2, 64]: the logits'
shape, and every module's output shape against torch's forward hooks (fixture made by
tests/fixtures/truth/make_forward_shapes.py)."""

from __future__ import annotations

import json
import pathlib

import pytest

import vramlint
from tests.support.libsources import library_source

TRUTH = pathlib.Path(__file__).parent / "fixtures/truth/transformers-5.17.0-forward-shapes.json"
SRC = ("from transformers import GPT2LMHeadModel, GPT2Config, BertForMaskedLM, BertConfig\n"
       "gpt = GPT2LMHeadModel(GPT2Config())\nbert = BertForMaskedLM(BertConfig())\n")
EXPECTED = {"gpt": (2, 64, 50257), "bert": (2, 64, 30522)}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = library_source("transformers", "5.17.0")
    settings = vramlint.Settings(extra_paths=(str(root),), inputs=(vramlint.InputSpec((64,), "int64"),), batch_size=2)
    path = tmp_path_factory.mktemp("tfx") / "hf.py"
    path.write_text(SRC)
    r = vramlint.analyze_source(str(path), SRC, settings)
    return {m.name: m for m in r.models}


NAMES = sorted(EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_logits_shape(models: dict[str, object], name: str) -> None:
    m = models[name]
    assert [(u.reason, str(u.location)) for u in m.forward_unknowns] == []  # type: ignore[attr-defined]
    assert m.output_shape == EXPECTED[name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", NAMES)
def test_every_module_output_shape_matches_torch(models: dict[str, object], name: str) -> None:
    truth = json.loads(TRUTH.read_text())[name]
    ours: dict[str, tuple[int | None, ...]] = {}
    stack = [models[name].tree]  # type: ignore[attr-defined]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if node.output_shape is not None:
            ours[node.path] = node.output_shape
        stack.extend(node.children)
    assert set(ours) == set(truth)
    assert {p: list(s) for p, s in ours.items()} == truth
