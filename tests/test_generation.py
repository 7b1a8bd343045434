"""Generation's KV cache: `model.generate(...)` in the analysed file gives the cache transformers
5.17.0 leaves after the last step, equal to the real run's.

The truth (tests/fixtures/truth/generation-5.17.0.json, made by make_generation_truth.py with real
transformers on the CPU: random weights, 2-layer configs of tests/fixtures/hub/) stores each case's
script and the bytes its `out.past_key_values` held: Llama (GQA, bf16 and fp32, beams, sampled
sequences, static cache), Qwen2 (with and without a cache), Phi-3, Mistral (every layer sliding), Gemma 2 (a sliding and a full
layer, dynamic and static), GPT-2 (MHA), DeepSeek-V3 (multi-latent attention: the cache holds the
compressed latents). The same text is analysed here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import TRANSFORMERS_VERSION, library_source
from vramlint.memory.generation import CacheLayer, GenerationPlan, generation_memory

REPO = Path(__file__).resolve().parents[1]
TRUTH = json.loads((REPO / f"tests/fixtures/truth/generation-{TRANSFORMERS_VERSION}.json").read_text())
CASES = TRUTH["cases"]

Analyse = Callable[..., vramlint.ModelResult]


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Analyse:
    """Analyse a script with transformers on the search path, from the repository root (the
    scripts name the hub fixtures by relative path, as the truth's run did)."""
    root = library_source("transformers", TRANSFORMERS_VERSION)
    folder = tmp_path_factory.mktemp("generation")

    def run(stem: str, src: str, **flags: object) -> vramlint.ModelResult:
        settings = vramlint.Settings(extra_paths=(str(root),), memory=True, **flags)  # type: ignore[arg-type]
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(REPO)
            result = vramlint.analyze_source(str(folder / f"{stem}.py"), src, settings)
        assert not result.errors and not result.warnings, (result.errors, result.warnings)
        (model,) = [m for m in result.models if m.name == "model"]
        return model

    return run


def test_truth_records_its_versions() -> None:
    assert TRUTH["versions"]["transformers"] == TRANSFORMERS_VERSION
    assert TRUTH["versions"]["torch"].split("+")[0] == "2.13.0"


@pytest.mark.parametrize("case", sorted(CASES))
def test_kv_cache_equals_transformers(case: str, analyse: Analyse) -> None:
    """The bytes the real cache's storages held after generate (a sliding layer's keys are a view
    of its last concatenation: the storage is what the allocator holds)."""
    truth = CASES[case]
    m = analyse(case.replace("-", "_"), truth["source"])
    assert m.memory is not None and m.memory.generation is not None, m.memory_unknowns
    g = m.memory.generation
    assert m.memory.kv_cache == truth["storage_bytes"]
    assert all(g.sequences == layer["shape"][0] for layer in truth["layers"])  # prompts x max(beams, returned)
    full = [layer["tokens"] for layer in truth["layers"] if "Sliding" not in layer["type"]]
    assert all(g.cached_tokens == tokens for tokens in full)  # context - 1: the last token is never fed back
    assert g.cache == ("static" if "static" in case else "none" if "no-cache" in case else "dynamic")
    assert m.setup is not None and (m.setup["mode"], m.setup["context"]) == ("infer", TRUTH["run"]["prompt"] + TRUTH["run"]["new_tokens"])


def test_beams_multiply_the_cache_and_the_prefill(analyse: Analyse) -> None:
    """num_beams=3: the prompt runs as 3 sequences each (generate expands the input ids before the
    first forward), so the traced forward over the prompt has batch 6."""
    m = analyse("beams", CASES["llama-beams"]["source"])
    assert m.memory is not None and m.memory.batch_size == 2 * 3
    assert m.inputs_from == "code: model.generate(...) at line 6"
    # generate asks the forward for the last token's logits only (logits_to_keep=1)
    assert m.output_shape == (6, 1, 1000)


def test_without_a_cache_the_last_step_runs_over_every_token(analyse: Analyse) -> None:
    """use_cache=False: no cache, and each step's forward runs over the whole sequence so far: the
    traced forward is the last one, over context - 1 = 16 tokens."""
    m = analyse("no_cache", CASES["qwen2-no-cache"]["source"])
    assert m.memory is not None and m.memory.kv_cache == 0
    assert m.setup is not None and m.setup["inputs"][0].shape == (16,)


def test_unknown_prompt_takes_the_context_setting(analyse: Analyse) -> None:
    """`**inputs` from a tokenizer: the prompt's length is not in the code; the `context` setting
    (prompt + generated tokens) gives it, less max_new_tokens."""
    src = ("import torch\nfrom transformers import AutoModelForCausalLM\n\n"
           'model = AutoModelForCausalLM.from_pretrained("tests/fixtures/hub/llama")\n'
           "def main(tokenizer):\n"
           '    inputs = tokenizer(["a prompt"], return_tensors="pt")\n'
           "    return model.generate(**inputs, max_new_tokens=12)\n")
    m = analyse("no_context", src)
    assert m.memory is None
    assert any("--context" in u.reason for u in m.memory_unknowns)
    m = analyse("context", src, context=17)
    assert m.memory is not None and m.memory.generation is not None
    assert m.memory.kv_cache == CASES["llama"]["storage_bytes"] // 2  # one prompt instead of two
    assert m.output_shape == (1, 1, 1000)  # the prefill of 17 - 12 = 5 tokens, last logits only
    assert m.setup is not None and m.setup.source("context") == "flag"


def test_a_flag_context_wins_over_the_code(analyse: Analyse) -> None:
    m = analyse("longer", CASES["llama"]["source"], context=33)
    assert m.memory is not None and m.memory.generation is not None
    assert m.memory.generation.cached_tokens == 32
    assert m.memory.kv_cache == 2 * CASES["llama"]["storage_bytes"]


def test_generation_peak_adds_cache_transient_and_logits(analyse: Analyse) -> None:
    m = analyse("llama", CASES["llama"]["source"])
    e = m.memory
    assert e is not None and e.generation is not None
    g = e.generation
    # the last step's logits: [2, 1, 1000] in bf16 (4,000 bytes), then generate's float32 copy
    # (8,000; generation/utils.py), each in the allocator's 512-byte blocks
    assert g.logits == 4096 + 8192
    # one layer's keys before the last torch.cat: 2 sequences x 2 heads x 15 tokens x 16 x bf16, in 512-byte blocks
    assert g.concat_transient == 2048
    # the traced prefill holds the prompt's cache (2 layers x keys and values of 2 x 2 x 5 tokens x 16
    # x bf16, 640 bytes each, 1,024 in blocks): counted once, at full length
    prompt_cache = 2 * 2 * 1024
    assert e.generation_peak == e.inference_peak - prompt_cache + g.kv_cache + g.concat_transient + g.logits


def test_sliding_window_formula() -> None:
    """The arithmetic alone: a window of 8 holds the storage of its last concatenation (8 tokens);
    a static sliding layer is allocated min(window, context - 1) tokens; use_cache=False: none."""
    layers = (CacheLayer(128, 128, 8), CacheLayer(128, 128, None))  # 512 bytes a token: no rounding to blocks
    plan = GenerationPlan("code", 1, 1, 5, 12, None, 1, "dynamic", layers, 1000)
    g = generation_memory(plan, 1, 17, 4, 0)
    assert g.kv_cache == 2 * 512 * 8 + 2 * 512 * 16
    short = generation_memory(plan, 1, 6, 4, 0)  # 5 cached tokens, under the window
    assert short.kv_cache == 2 * 2 * 512 * 5
    from dataclasses import replace

    assert generation_memory(replace(plan, cache="none"), 1, 17, 4, 0).kv_cache == 0
    assert generation_memory(replace(plan, cache="static"), 1, 17, 4, 0).concat_transient == 0


def test_cli_batched_generation_script(tmp_path: Path) -> None:
    """End to end: `vramlint check` on a batched generation script prints the generation line and
    gives `kv_cache` in the JSON."""
    script = tmp_path / "generate.py"
    script.write_text(CASES["llama-beams"]["source"].replace("tests/fixtures/hub/llama", str(REPO / "tests/fixtures/hub/llama")))
    root = library_source("transformers", TRANSFORMERS_VERSION)
    cmd = [sys.executable, "-m", "vramlint", "check", str(script), "--extra-path", str(root)]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "generation fits in the H100-80GB" in text.stdout
    assert "KV cache 24.0 KiB (dynamic, 6 sequences x 16 tokens)" in text.stdout
    assert "warning" not in text.stdout  # generate() itself is not run
    out = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    memory = json.loads(out.stdout)["files"][0]["models"][0]["memory"]
    assert memory["bytes"]["kv_cache"] == CASES["llama-beams"]["storage_bytes"]
    assert memory["generation"]["sequences"] == 6 and memory["generation"]["context"] == 17


def test_text_generation_pipeline(analyse: Analyse) -> None:
    """`pipeline("text-generation", model=model)` then `generator(prompts, max_new_tokens=...,
    batch_size=2)`: text prompts, so the context gives the prompt; the pipeline's batch_size is the batch."""
    src = ("from transformers import AutoModelForCausalLM, pipeline\n\n"
           'model = AutoModelForCausalLM.from_pretrained("tests/fixtures/hub/llama")\n'
           "def main() -> None:\n"
           '    generator = pipeline("text-generation", model=model)\n'
           '    generator(["Hello", "World"], max_new_tokens=12, batch_size=2)\n')
    m = analyse("pipeline", src, context=17)
    assert m.memory is not None and m.memory.generation is not None
    assert m.memory.kv_cache == CASES["llama"]["storage_bytes"]  # 2 prompts, 17 tokens: the generate case's cache
    assert m.memory.generation.where == "code: generator(...) (a text-generation pipeline of `model`) at line 6"


def test_a_model_that_does_not_generate_has_no_generation(analyse: Analyse) -> None:
    src = ('from transformers import AutoModelForCausalLM\n\nmodel = AutoModelForCausalLM.from_pretrained("tests/fixtures/hub/llama")\n'
           "# vramlint: input-shape=8 input-dtype=int64\nother = AutoModelForCausalLM.from_pretrained(\"tests/fixtures/hub/llama\")\n"
           "other.generate(max_new_tokens=4)\n")
    m = analyse("other", src, inputs=(vramlint.InputSpec((8,), "int64"),))
    assert m.memory is not None and m.memory.generation is None and m.memory.kv_cache is None
    assert m.setup is not None and (m.setup["mode"], m.setup["context"]) == ("train", None)


def test_generation_that_does_not_fit_is_vl002(analyse: Analyse) -> None:
    """The generate call sets mode = infer: the generation peak (not one forward's) must fit; on a
    1 GiB card, 64 prompts of 96 tokens, 4,000 new tokens and 4 beams do not (the KV cache alone is
    256 MiB: 256 sequences x 4,095 tokens x 2 layers x keys and values of 2 heads x 16 x bf16),
    though the forward over the prompts does."""
    src = ("import torch\nfrom transformers import AutoModelForCausalLM\n\n"
           'model = AutoModelForCausalLM.from_pretrained("tests/fixtures/hub/llama")\n'
           "out = model.generate(torch.randint(3, 1000, (64, 96)), max_new_tokens=4000, num_beams=4)\n")
    root = library_source("transformers", TRANSFORMERS_VERSION)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        result = vramlint.analyze_source(str(REPO / "big_generation.py"), src,
                                         vramlint.Settings(extra_paths=(str(root),), memory=True, device="1GiB"))
    (m,) = result.models
    assert m.memory is not None and m.memory.generation is not None
    assert m.memory.kv_cache == 256 * 4095 * 2 * 2 * 32 * 2
    (vl002,) = [f for f in result.findings if f.code == "VL002"]
    assert vl002.message.startswith("generation with model needs ")
    assert m.memory.inference_need > m.memory.device_memory > m.memory.inference_peak


def test_a_training_script_that_samples_stays_in_train_mode(analyse: Analyse) -> None:
    """An optimizer on the model's parameters and a generate call: the training step must fit
    (mode stays train); the generation figures are still given."""
    src = CASES["llama"]["source"] + "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)\n"
    m = analyse("trains", src)
    assert m.setup is not None and (m.setup["mode"], m.setup.source("mode")) == ("train", "default")
    assert m.setup["optimizer"] == "adamw"
    assert m.memory is not None and m.memory.kv_cache == CASES["llama"]["storage_bytes"]


def test_the_editor_shows_the_generation(analyse: Analyse) -> None:
    """The code lens gives the generation peak and what generation needs; the hover adds the KV cache."""
    from vramlint.lsp.summaries import model_line, model_markdown
    from vramlint.render.units import fmt_bytes

    m = analyse("editor", CASES["llama"]["source"])
    assert m.memory is not None and m.memory.generation_peak is not None
    assert f"generation peak {fmt_bytes(m.memory.generation_peak)}" in model_line(m)
    hover = model_markdown(m)
    assert f"| KV cache | {fmt_bytes(CASES['llama']['storage_bytes'])} |" in hover
    assert "generation fits in the H100-80GB" in hover
    assert "- context: `17` (code: model.generate(...) at line 6)" in hover


def test_a_models_own_generate_method_is_not_transformers(tmp_path: Path) -> None:
    """nanoGPT-style code: the model's class defines its own `generate`; its call is not read as
    transformers' (no KV cache layout to read, and the file's mode stays as it was)."""
    src = ("import torch\nimport torch.nn as nn\n\n"
           "class TinyLM(nn.Module):\n"
           "    def __init__(self):\n        super().__init__()\n        self.emb = nn.Embedding(100, 16)\n"
           "        self.head = nn.Linear(16, 100)\n\n"
           "    def forward(self, idx):\n        return self.head(self.emb(idx))\n\n"
           "    def generate(self, idx, max_new_tokens):\n        return idx\n\n"
           "model = TinyLM()\nlogits = model(torch.randint(0, 100, (4, 8)))\n"
           "out = model.generate(torch.randint(0, 100, (4, 8)), max_new_tokens=20)\n")
    result = vramlint.analyze_source(str(tmp_path / "tiny.py"), src, vramlint.Settings(memory=True))
    (m,) = [x for x in result.models if x.name == "model"]
    assert m.memory is not None and m.memory.generation is None
    assert m.setup is not None and (m.setup["mode"], m.setup["context"]) == ("train", None)
