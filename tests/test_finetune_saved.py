"""Full and LoRA fine-tuning of the six decoder families (Llama, Qwen2, Mistral, Gemma 2, Phi-3,
GPT-2): what autograd keeps for backward, vramlint against real torch + transformers + peft.

The truth (tests/fixtures/truth/finetune-<peft>.json, made by make_finetune_truth.py on the CPU)
stores each case's script: the family's 2-layer config from tests/fixtures/hub/, the model in
float32, full fine-tuning or LoRA (r=8 on the attention projections; "all-linear" with dropout on
the LoRA branch), with and without gradient checkpointing, and one training forward with labels.
The same text is analysed here, and vramlint's `activations` (what is kept at the end of the
forward and the loss) must equal the bytes torch packed under `saved_tensors_hooks` (one storage
each, in 512-byte blocks), plus, under checkpointing, what the checkpoint holds for its
recomputation.

The truth runs on the CPU the kernels CUDA runs where they differ (fused dropout's bool mask,
attention with dropout, the memory-efficient kernel's [B, L, H, D] output: make_finetune_truth.py
says how). One CUDA difference is left to this test, as in tests/test_peft.py: CUDA's float32
memory-efficient attention pads its log-sum-exp to 32 query rows (autograd_rules.sdpa), the CPU
kernel does not. It is kept only for attention outside checkpointed layers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import ACCELERATE_VERSION, PEFT_VERSION, TRANSFORMERS_VERSION
from tests.test_peft import _blocks, _library_paths, _model

HERE = Path(__file__).parent
TRUTH = json.loads((HERE / f"fixtures/truth/finetune-{PEFT_VERSION}.json").read_text())
CASES = TRUTH["cases"]
HUB = HERE / "fixtures/hub"

def lse_padding(sdpa_calls: list[list[object]]) -> int:
    """CUDA - CPU bytes of the attention log-sum-exp: float32 rows padded to 32 per head, for
    each attention call whose saved tensors outlive the forward (not in a checkpointed layer)."""
    extra = 0
    for batch, heads, length, dtype, checkpointed in sdpa_calls:
        assert isinstance(batch, int) and isinstance(heads, int) and isinstance(length, int)
        if dtype == "float32" and not checkpointed:
            rows = batch * heads
            extra += _blocks(rows * -(-length // 32) * 32 * 4) - _blocks(rows * length * 4)
    return extra


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], vramlint.FileAnalysis]:
    settings = vramlint.Settings(extra_paths=_library_paths(), optimizer="sgd", precision="fp32", memory=True)
    folder = tmp_path_factory.mktemp("finetune")

    def run(stem: str, src: str) -> vramlint.FileAnalysis:
        return vramlint.analyze_source(str(folder / f"{stem}.py"), src, settings)

    return run


def test_truth_records_its_versions() -> None:
    versions = TRUTH["versions"]
    assert (versions["peft"], versions["transformers"], versions["accelerate"]) == \
        (PEFT_VERSION, TRANSFORMERS_VERSION, ACCELERATE_VERSION)
    assert versions["torch"].split("+")[0] == "2.13.0"
    assert {c["family"] for c in CASES.values()} == {"llama", "qwen2", "mistral", "gemma2", "phi3", "gpt2"}


def test_lse_padding_of_one_float32_attention() -> None:
    # [2, 4, 16] float32 = 512 B on the CPU; [2, 4, 32] = 1024 B on CUDA
    assert lse_padding([[2, 4, 16, "float32", False]]) == 512
    assert lse_padding([[2, 4, 16, "float32", True], [2, 4, 16, "bfloat16", False]]) == 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_finetuning_keeps_for_backward_what_torch_keeps(
        case: str, analyse: Callable[[str, str], vramlint.FileAnalysis]) -> None:
    truth = CASES[case]
    model = _model(analyse(case.replace("-", "_"), truth["source"].replace("{hub}", str(HUB))))
    memory = model.memory
    assert memory is not None, [u.reason for u in model.memory_unknowns[:5]]
    expected = truth["saved_bytes"] + lse_padding(truth["sdpa_calls"])
    detail = (f"vramlint {memory.activations} B, torch {expected} B; torch keeps:\n  "
              + "\n  ".join(map(str, truth["saved"] + truth["checkpoint_held"]))
              + "\nvramlint per module: " + ", ".join(f"{lm.path or '(model)'}={lm.saved_bytes}"
                                                      for lm in memory.layers if lm.saved_bytes))
    assert memory.activations == expected, detail


def _with_trainer(source: str) -> str:
    """The LoRA case's script with checkpointing asked for as the Trainer user does:
    `TrainingArguments(gradient_checkpointing=True)`, and `Trainer(model=model, args=args)`."""
    source = source.replace("from transformers import AutoConfig, AutoModelForCausalLM",
                            "from transformers import AutoConfig, AutoModelForCausalLM, Trainer, TrainingArguments")
    trainer = ('args = TrainingArguments(output_dir="out", gradient_checkpointing=True, per_device_train_batch_size=2)\n'
               "trainer = Trainer(model=model, args=args)\n")
    assert "model.train()\n" in source
    return source.replace("model.train()\n", trainer)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_checkpointing_from_training_arguments_keeps_what_torch_keeps(
        family: str, analyse: Callable[[str, str], vramlint.FileAnalysis]) -> None:
    """The Trainer calls `gradient_checkpointing_enable()` on the PeftModel, which peft forwards to
    the transformers model: what is kept is the truth measured with it (GPT-2: its embedding
    dropout keeps a mask, the embeddings' output needing a gradient through a forward hook)."""
    source = _with_trainer(CASES[f"{family}-lora"]["source"])
    truth = CASES[f"{family}-lora-checkpointing"]
    model = _model(analyse(f"{family}_trainer", source.replace("{hub}", str(HUB))))
    assert model.memory is not None, [u.reason for u in model.memory_unknowns[:5]]
    assert model.setup is not None and model.setup["checkpointing"] is True
    assert model.memory.activations == truth["saved_bytes"] + lse_padding(truth["sdpa_calls"])
