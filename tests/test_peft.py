"""LoRA models (peft 0.21.2 over transformers 5.17.0), analysed from both libraries' own source,
have the total and trainable parameter counts peft itself reports (`get_nb_trainable_parameters`,
what `print_trainable_parameters()` prints).

The truth (tests/fixtures/truth/peft-0.21.2.json, made by make_peft_truth.py with real peft on the
CPU) stores each case's script; the same text is analysed here. The cases cover target_modules as
a list, a regex and "all-linear", modules_to_save, bias="lora_only"/"all", DoRA and rsLoRA, on
Llama, Qwen2, Mistral and GPT-2 (whose Conv1D layers LoRA wraps with fan_in_fan_out).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import (
    ACCELERATE_VERSION,
    PEFT_VERSION,
    TRANSFORMERS_VERSION,
    library_source,
)

TRUTH = json.loads((Path(__file__).parent / f"fixtures/truth/peft-{PEFT_VERSION}.json").read_text())
CASES = TRUTH["cases"]


def _library_paths() -> tuple[str, ...]:
    """transformers', peft's and accelerate's (which peft imports) unpacked wheels: the sources
    the analysis reads, as in a user's environment."""
    libraries = (("transformers", TRANSFORMERS_VERSION), ("peft", PEFT_VERSION), ("accelerate", ACCELERATE_VERSION))
    return tuple(str(library_source(dist, version)) for dist, version in libraries)


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], vramlint.FileAnalysis]:
    """Analyse a source text with transformers and peft on the search path."""
    settings = vramlint.Settings(extra_paths=_library_paths())
    folder = tmp_path_factory.mktemp("peft_models")

    def run(stem: str, src: str) -> vramlint.FileAnalysis:
        return vramlint.analyze_source(str(folder / f"{stem}.py"), src, settings)

    return run


def _model(result: vramlint.FileAnalysis) -> vramlint.ModelResult:
    assert not result.errors, result.errors
    found = [m for m in result.models if m.name == "model"]
    assert found, "`model` was not built: " + "; ".join(f"{w.reason} at {w.location}" for w in result.warnings)
    return found[0]


def test_truth_records_its_versions() -> None:
    assert TRUTH["versions"]["peft"] == PEFT_VERSION
    assert TRUTH["versions"]["transformers"] == TRANSFORMERS_VERSION
    assert TRUTH["versions"]["accelerate"] == ACCELERATE_VERSION
    assert TRUTH["versions"]["torch"].split("+")[0] == "2.13.0"


@pytest.mark.parametrize("case", sorted(CASES))
def test_lora_counts_match_peft(case: str, analyse: Callable[[str, str], vramlint.FileAnalysis]) -> None:
    truth = CASES[case]
    model = _model(analyse(case.replace("-", "_"), truth["source"]))
    assert model.error is None, model.error
    why = [f"{u.reason} at {u.location}" for u in model.unknowns[:5]]
    assert (model.params.total, model.params.trainable) == (truth["params"], truth["trainable"]), why


BLOCK = 512  # PyTorch's caching allocator rounds every block up to 512 bytes


def _blocks(nbytes: int) -> int:
    return -(-nbytes // BLOCK) * BLOCK


@pytest.mark.parametrize("case", ["llama-list", "gpt2-bias-all"])
def test_lora_training_keeps_gradients_and_adamw_state_of_trainable_tensors_only(
        case: str, tmp_path: Path) -> None:
    """The frozen base weights have requires_grad=False: a training step keeps fp32 gradients
    and AdamW's two moments (exp_avg, exp_avg_sq) for the tensors peft leaves trainable, one
    block each, and none for the base model's; the weights are those of every parameter."""
    truth = CASES[case]
    settings = vramlint.Settings(extra_paths=_library_paths(), inputs=(vramlint.InputSpec((16,), "int64"),), batch_size=2,
                                 optimizer="adamw", precision="fp32", memory=True)
    model = _model(vramlint.analyze_source(str(tmp_path / "lora.py"), truth["source"], settings))
    memory = model.memory
    assert memory is not None, [u.reason for u in model.memory_unknowns[:5]]
    tensors = truth["trainable_tensors"]
    assert sum(tensors) == truth["trainable"]
    assert memory.gradients == sum(_blocks(4 * n) for n in tensors)
    assert memory.optimizer_state == sum(2 * _blocks(4 * n) for n in tensors)
    assert memory.weights >= 4 * truth["params"] > 10 * memory.optimizer_state


SAVED = sorted(case for case in CASES if "saved_bytes" in CASES[case])


@pytest.mark.parametrize("case", SAVED)
def test_lora_keeps_for_backward_what_torch_keeps(case: str, tmp_path: Path) -> None:
    """Frozen layers keep no input for a weight gradient, the LoRA branches keep theirs (DoRA
    also its weight norm): the bytes autograd keeps for backward equal real torch's (measured by
    make_peft_truth.py as tests/test_memory_saved.py does), with and without LoRA.

    The CPU truth and vramlint's CUDA model differ by one documented kernel difference: CUDA's
    float32 memory-efficient attention pads its log-sum-exp to 32 query rows (autograd_rules.sdpa),
    the CPU kernel does not: 32 rows instead of seq, x batch x 4 heads x 4 bytes, in each of 2 layers."""
    truth = CASES[case]
    shape = TRUTH["saved_input"]
    settings = vramlint.Settings(extra_paths=_library_paths(), inputs=(vramlint.InputSpec((shape["seq"],), "int64"),),
                                 batch_size=shape["batch"], optimizer="sgd", precision="fp32", memory=True)
    rows = shape["batch"] * 4  # batch x heads
    lse_padding = 2 * (_blocks(32 * rows * 4) - _blocks(shape["seq"] * rows * 4))
    for label, source in (("lora", truth["source"]), ("full", truth["full_source"])):
        model = _model(vramlint.analyze_source(str(tmp_path / f"{label}.py"), source, settings))
        assert model.memory is not None, [u.reason for u in model.memory_unknowns[:5]]
        assert model.memory.activations == truth["saved_bytes"][label] + lse_padding, label


TRAINER_SCRIPT = """\
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments
from peft import LoraConfig, get_peft_model

config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=1000)
model = LlamaForCausalLM(config)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
args = TrainingArguments(output_dir="out", gradient_checkpointing={flag}, per_device_train_batch_size=2)
trainer = Trainer(model=model, args=args)
"""


def test_trainer_checkpointing_reaches_the_model_peft_wraps(tmp_path: Path) -> None:
    """`TrainingArguments(gradient_checkpointing=True)` on a PeftModel: the Trainer calls
    `model.gradient_checkpointing_enable()`, which PeftModel's `__getattr__` forwards to the
    transformers model it wraps; the decoder layers then keep only their inputs. The name bound
    twice (the base model, then its LoRA wrapper) is one model, reported at its last binding."""
    settings = vramlint.Settings(extra_paths=_library_paths(), inputs=(vramlint.InputSpec((16,), "int64"),),
                                 precision="fp32", memory=True)
    kept = {}
    for flag in (True, False):
        result = vramlint.analyze_source(str(tmp_path / f"trainer_{flag}.py"), TRAINER_SCRIPT.format(flag=flag), settings)
        assert [(m.name, m.location.line) for m in result.models] == [("model", 7)]
        model = _model(result)
        assert model.memory is not None, [u.reason for u in model.memory_unknowns[:5]]
        assert model.setup is not None and model.setup["checkpointing"] is flag
        assert not [n for n in model.memory.notes if "checkpointing was asked for" in n]
        kept[flag] = model.memory.activations
    assert kept[True] < kept[False] / 2


SFT_SCRIPT = """\
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model
from trl import SFTConfig, SFTTrainer

config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=1000)
model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=8, target_modules="all-linear"))
args = SFTConfig(output_dir="out", per_device_train_batch_size=2, gradient_accumulation_steps=4, max_length=32)
trainer = SFTTrainer(model=model, args=args, train_dataset=dataset)
"""


def test_sft_config_gives_the_token_inputs_and_trl_defaults(tmp_path: Path) -> None:
    """No input shapes given: SFTConfig's max_length is the tokens per sample (TRL pads or packs to
    it), its batch the micro-batch; TRL's defaults (bf16, gradient checkpointing) apply, and
    the accumulation is said, not multiplied in. The same estimate as the shapes given by hand."""
    settings = vramlint.Settings(extra_paths=_library_paths(), memory=True)
    model = _model(vramlint.analyze_source(str(tmp_path / "sft.py"), SFT_SCRIPT, settings))
    assert model.memory is not None and model.setup is not None, [u.reason for u in model.memory_unknowns[:5]]
    assert model.inputs_from is not None and model.inputs_from.startswith("code: SFTConfig(max_length=32) at line 8")
    assert [(s.shape, s.dtype) for s in model.setup["inputs"]] == [((32,), "int64")]
    assert (model.setup["batch_size"], model.setup["precision"], model.setup["checkpointing"]) == (2, "amp-bf16", True)
    assert any(n.startswith("gradient accumulation (SFTConfig(gradient_accumulation_steps=4) at line 8)")
               for n in model.memory.notes)
    by_hand = vramlint.Settings(extra_paths=_library_paths(), memory=True, inputs=(vramlint.InputSpec((32,), "int64"),),
                                batch_size=2, precision="amp-bf16", checkpointing=True, optimizer="adamw")
    (same,) = [m for m in vramlint.analyze_source(str(tmp_path / "lora.py"), SFT_SCRIPT.split("args =")[0],
                                                   by_hand).models if m.name == "model"]
    assert same.memory is not None and same.memory.train_peak == model.memory.train_peak


def test_adapters_stay_float32_on_a_model_loaded_in_bf16(tmp_path: Path) -> None:
    """`from_pretrained(dtype=torch.bfloat16)` then LoRA: peft makes the adapters float32
    (`autocast_adapter_dtype=True`, its default). The precision the code states is bf16, but the
    model was loaded in it: the estimate does not cast the adapters down, so their gradients
    (float32) and AdamW's two moments take 4 and 8 bytes per trainable parameter, one block per tensor."""
    truth = CASES["llama-list"]
    src = truth["source"].replace("get_peft_model(LlamaForCausalLM(config),",
                                  "get_peft_model(LlamaForCausalLM._from_config(config, dtype=torch.bfloat16),")
    src = "import torch\n" + src
    assert "dtype=torch.bfloat16" in src
    settings = vramlint.Settings(extra_paths=_library_paths(), inputs=(vramlint.InputSpec((16,), "int64"),),
                                 batch_size=2, optimizer="adamw", precision="bf16", memory=True)
    model = _model(vramlint.analyze_source(str(tmp_path / "lora_bf16.py"), src, settings))
    assert model.memory is not None, [u.reason for u in model.memory_unknowns[:5]]
    tensors = truth["trainable_tensors"]
    assert model.memory.gradients == sum(_blocks(4 * n) for n in tensors)
    assert model.memory.optimizer_state == sum(2 * _blocks(4 * n) for n in tensors)
    # The frozen base: bf16, two bytes per parameter (the adapters four).
    frozen = truth["params"] - truth["trainable"]
    assert model.memory.weights >= 2 * frozen + 4 * truth["trainable"]
    assert model.memory.weights < 4 * frozen
