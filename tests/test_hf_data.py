"""Hugging Face token batches (issue 16): `datasets` + tokenizer calls + collators give a causal-LM
script its sequence length and batch, each with its source, with no flags.

Truth: tests/fixtures/truth/hf-data-5.17.0.json, made by make_hf_data_truth.py with the REAL
transformers 5.17.0 (tokenizers 0.23.3, torch 2.13.0, CPU) from a word-level tokenizer built
offline (tests/fixtures/tokenizer/): each case's script is analysed here and its output's keys,
shapes and dtypes compared.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.libsources import TRANSFORMERS_VERSION, library_source
from tests.test_training_setup import scan
from vramlint.analysis import api
from vramlint.engine.limits import AnalysisBudget
from vramlint.engine.provenance import source_of
from vramlint.engine.values import Unknown
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
TOKENIZER = FIXTURES / "tokenizer"
TRUTH = json.loads((FIXTURES / "truth" / "hf-data-5.17.0.json").read_text(encoding="utf-8"))

Evaluate = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="module")
def evaluate(tmp_path_factory: pytest.TempPathFactory) -> Evaluate:
    """Run a script's module level with vramlint's evaluator; its namespace."""
    folder = tmp_path_factory.mktemp("hfdata")
    settings = Settings(extra_paths=(str(library_source("transformers", TRANSFORMERS_VERSION)),))
    count = iter(range(1000))

    def run(src: str) -> dict[str, Any]:
        path = str(folder / f"hf_{next(count)}.py")
        loader = api.get_loader(api.search_paths(settings), settings.environment, settings.torch_version)
        dotted, root = api.module_name_for(path)
        loader.add_root(root, after=len(settings.extra_paths))
        ev = loader.evaluator
        saved, ev.analysis = ev.analysis, AnalysisBudget(120, None, None)
        out: dict[str, Any] = {}
        try:
            api._with_big_stack(lambda: out.update(mod=loader.load_main(os.path.abspath(path), src, dotted)[0]))
        finally:
            ev.analysis = saved
        return dict(out["mod"].ns)

    return run


def describe(value: Any) -> Any:
    """As make_hf_data_truth.py describes real outputs."""
    if isinstance(value, TensorValue):
        return {"shape": list(value.shape), "dtype": value.dtype}
    if isinstance(value, list) and value and isinstance(value[0], list):
        return {"shape": [len(value), *{len(v) for v in value}], "dtype": "list"}
    if isinstance(value, list):
        return {"shape": [len(value)], "dtype": "list"}
    return {"type": type(value).__name__, "value": repr(value)[:200]}


def header() -> str:
    return f"TOKENIZER = {str(TOKENIZER)!r}\n" + TRUTH["header"]


@pytest.mark.parametrize("case", sorted(TRUTH["cases"]))
def test_shapes_as_real_transformers(evaluate: Evaluate, case: str) -> None:
    truth = TRUTH["cases"][case]
    out = evaluate(header() + truth["code"])["out"]
    assert isinstance(out, dict), out
    assert {k: describe(v) for k, v in out.items()} == truth["out"]


def test_length_sources(evaluate: Evaluate) -> None:
    ns = evaluate(header() + (
        "exact = tok(['a'], truncation=True, max_length=16, padding='max_length', return_tensors='pt')\n"
        "bound = tok(['a'], truncation=True, max_length=24, padding=True, return_tensors='pt')\n"
        "model = tok(['a'], truncation=True, return_tensors='pt')\n"))
    exact, bound, model = (ns[n]["input_ids"].shape[1] for n in ("exact", "bound", "model"))
    assert (exact, bound, model) == (16, 24, 32)
    assert source_of(exact).startswith("16 tokens: tokenizer(..., padding='max_length', max_length=16) at hf_")
    assert source_of(bound).startswith("at most 24 tokens: tokenizer(..., truncation=True, max_length=24) at hf_")
    assert source_of(bound).endswith("padded per batch")
    assert "model_max_length" in source_of(model)


def test_padding_without_pad_token_raises(evaluate: Evaluate) -> None:
    # transformers raises "Asking to pad but the tokenizer does not have a padding token" (GPT-2's case).
    ns = evaluate(header() + "tok.pad_token = None\nout = tok(['a'], padding='max_length', max_length=8)\n")
    assert isinstance(ns.get("out"), Unknown) or "out" not in ns


def test_unknown_tokenizer_config(evaluate: Evaluate) -> None:
    ns = evaluate("from transformers import AutoTokenizer\n"
                  "tok = AutoTokenizer.from_pretrained('no-such-org/no-such-model')\n"
                  "n = tok.model_max_length\n"
                  "fixed = tok(['a'], truncation=True, max_length=64, padding='max_length', return_tensors='pt')\n")
    assert isinstance(ns["n"], Unknown)
    assert "tokenizer_config.json" in ns["n"].reason
    assert ns["fixed"]["input_ids"].shape == (1, 64)


DATASET_SCRIPT = (
    "from datasets import load_dataset\n"
    "raw = load_dataset('wikitext', 'wikitext-2-raw-v1')\n"
    "tok.pad_token = tok.eos_token\n"
    "def tokenize(batch):\n"
    "    return tok(batch['text'], truncation=True, max_length=20, padding='max_length')\n"
    "ds = raw.map(tokenize, batched=True, remove_columns=['text'])\n"
    "train = ds['train'].shuffle(seed=0).select(range(100)).filter(lambda r: len(r['input_ids']) > 0)\n"
    "row = train[0]\n"
    "n = len(ds['train'].select(range(100)))\n"
    "batch = DataCollatorForLanguageModeling(tok, mlm=False)([train[0]] * 8)\n"
    "torch_ds = ds['train'].with_format('torch')\n"
    "trow = torch_ds[0]\n"
)


def test_dataset_map_and_collator(evaluate: Evaluate) -> None:
    ns = evaluate(header() + DATASET_SCRIPT)
    assert sorted(ns["row"]) == ["attention_mask", "input_ids"]
    assert len(ns["row"]["input_ids"]) == 20
    assert ns["n"] == 100
    batch = ns["batch"]
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
        k: ((8, 20), "int64") for k in ("input_ids", "attention_mask", "labels")}
    assert source_of(batch["input_ids"].shape[1]).startswith("20 tokens: tokenizer(..., padding='max_length'")
    assert ns["trow"]["input_ids"].shape == (20,) and ns["trow"]["input_ids"].dtype == "int64"


def test_run_clm_group_texts(evaluate: Evaluate) -> None:
    ns = evaluate(header() + (
        "from itertools import chain\n"
        "from datasets import load_dataset\n"
        "raw = load_dataset('wikitext', 'wikitext-2-raw-v1')\n"
        "block_size = 16\n"
        "def tokenize_function(examples):\n"
        "    return tok(examples['text'])\n"
        "def group_texts(examples):\n"
        "    concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}\n"
        "    total_length = len(concatenated[list(examples.keys())[0]])\n"
        "    total_length = (total_length // block_size) * block_size\n"
        "    result = {k: [t[i : i + block_size] for i in range(0, total_length, block_size)]\n"
        "              for k, t in concatenated.items()}\n"
        "    result['labels'] = result['input_ids'].copy()\n"
        "    return result\n"
        "tokenized = raw.map(tokenize_function, batched=True, remove_columns=raw['train'].column_names)\n"
        "lm = tokenized.map(group_texts, batched=True)\n"
        "batch = default_data_collator([lm['train'][0]] * 4)\n"))
    ids = ns["batch"]["input_ids"]
    assert ids.shape == (4, 16) and ns["batch"]["labels"].shape == (4, 16)
    assert "dataset.map(group_texts)" in source_of(ids.shape[1])


# ---------------------------------------------------------------------- the training-setup scan
TRAINER_SCRIPT = '''
from datasets import load_dataset
from transformers import AutoTokenizer, Trainer, TrainingArguments
from trl import SFTConfig

tokenizer = AutoTokenizer.from_pretrained("gpt2")
def tokenize(batch):
    return tokenizer(batch["text"], truncation=True, max_length=384{padding})
ds = load_dataset("wikitext", "wikitext-2-raw-v1").map(tokenize, batched=True)
args = {config}
trainer = Trainer(model=model, args=args, train_dataset=ds["train"])
'''


def test_scan_reads_the_tokenizers_max_length() -> None:
    exact = scan(TRAINER_SCRIPT.format(padding=', padding="max_length"', config="TrainingArguments(output_dir='o')"))
    assert exact.sequence_length is not None and exact.sequence_length.value == 384
    assert exact.sequence_length.text == "tokenizer(..., max_length=384, padding='max_length') at line 8"
    bound = scan(TRAINER_SCRIPT.format(padding="", config="TrainingArguments(output_dir='o')"))
    assert bound.sequence_length is not None and bound.sequence_length.value == 384
    assert "at most 384 tokens, padded per batch" in bound.sequence_length.text
    # SFTConfig's own max_length wins; its default (1024) does not.
    sft = scan(TRAINER_SCRIPT.format(padding="", config="SFTConfig(output_dir='o', max_length=128)"))
    assert sft.sequence_length is not None and sft.sequence_length.value == 128
    default = scan(TRAINER_SCRIPT.format(padding="", config="SFTConfig(output_dir='o')"))
    assert default.sequence_length is not None and default.sequence_length.value == 384
    undecided = scan(TRAINER_SCRIPT.format(padding="", config="TrainingArguments(output_dir='o')")
                     .replace("max_length=384", "max_length=n"))
    assert undecided.sequence_length is None
    assert any("max_length=n is not decidable" in n for n in undecided.notes)


def test_scan_reads_run_clm_block_size() -> None:
    s = scan('''
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--block_size", type=int, default=128)
args = parser.parse_args()
block_size = args.block_size
def group_texts(examples):
    total_length = len(examples["input_ids"])
    return {k: [t[i : i + block_size] for i in range(0, total_length, block_size)] for k, t in examples.items()}
''')
    assert s.sequence_length is not None and s.sequence_length.value == 128
    assert s.sequence_length.text == "chunks of block_size: range(...) at line 9 (= 128)"


# ---------------------------------------------------------------------- end to end
LOOP_SCRIPT = '''
import torch
from datasets import load_dataset
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, LlamaConfig, LlamaForCausalLM


def main():
    tokenizer = AutoTokenizer.from_pretrained("gpt2")
    tokenizer.pad_token = tokenizer.eos_token
    raw = load_dataset("wikitext", "wikitext-2-raw-v1", split="train")

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=256, padding="max_length")

    train_ds = raw.map(tokenize, batched=True, remove_columns=["text"])
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    {batches}
    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for batch in loader:
        out = model(**batch)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()


if __name__ == "__main__":
    main()
'''


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    folder = tmp_path_factory.mktemp("hf_e2e")
    settings = Settings(memory=True, extra_paths=(str(library_source("transformers", TRANSFORMERS_VERSION)),))
    count = iter(range(1000))
    return lambda src: api.analyze_source(str(folder / f"train_{next(count)}.py"), src, settings)


@pytest.mark.parametrize("batches", [
    "loader = DataLoader(train_ds, batch_size=8, shuffle=True, collate_fn=collator)",
    "loader = [collator([train_ds[i] for i in range(8)]) for _ in range(100)]",
])
def test_fine_tuning_script_gets_its_token_batch(analyse: Callable[[str], Any], batches: str) -> None:
    result = analyse(LOOP_SCRIPT.replace("{batches}", batches))
    model = next(m for m in result.models if m.name == "main.model")
    assert model.memory is not None, model.memory_unknowns
    # The input ids (from the first layer); the recorded call also passes the attention mask and labels.
    inputs = {(tuple(s.shape), s.dtype) for s in model.setup["inputs"]}
    assert inputs == {((256,), "int64")}
    assert model.setup["batch_size"] == 8
    assert "256" in (model.inputs_from or "")
    if "DataLoader" not in batches:  # the recorded call: its batch cites the tokenizer and the collator
        assert "tokenizer(..., padding='max_length', max_length=256)" in model.inputs_from
        assert "collated by DataCollatorForLanguageModeling" in model.inputs_from


def test_odd_calls_end_in_located_unknowns(evaluate: Evaluate) -> None:
    """Bad input never crashes: each odd call is an unknown saying why, or the error Python would raise."""
    ns = evaluate(header() + (
        "from datasets import Dataset, load_dataset\n"
        "a = tok(['a'], max_length=-3, truncation=True, padding='max_length')\n"
        "b = tok(['a'], max_length='x')\n"
        "c = load_dataset(5).map(lambda r: 5)['train'][0]\n"
        "d = default_data_collator([])\n"
        "e = Dataset.from_dict({'a': [1, 2], 'b': [1]})[0]\n"
        "f = tok.decode([1])\n"
        "g = len(load_dataset('imdb', split='train'))\n"
        "h = Dataset.from_list([{'input_ids': [1, 2, 3]}])\n"
        "try:\n"
        "    i = h[5]\n"
        "except IndexError:\n"
        "    i = 'IndexError'\n"))
    for name in "abcdefg":
        assert isinstance(ns[name], Unknown), (name, ns[name])
        assert "internal error" not in ns[name].reason
    assert "not a positive number of tokens" in ns["a"].reason
    assert ns["i"] == "IndexError"


def test_scan_says_the_value_of_a_named_max_length() -> None:
    code = (TRAINER_SCRIPT.format(padding=', padding="max_length"', config="TrainingArguments(output_dir='o')")
            .replace("max_length=384", "max_length=MAX_LEN").replace("tokenizer = ", "MAX_LEN = 512\ntokenizer = "))
    s = scan(code)
    lines = textwrap.dedent(code).splitlines()
    at = next(i for i, line in enumerate(lines, 1) if "MAX_LEN = 512" in line)
    assert s.sequence_length is not None and s.sequence_length.value == 512
    assert s.sequence_length.text == ("tokenizer(..., max_length=MAX_LEN, padding='max_length') at line 9 "
                                      f"(= 512, set at line {at})")
