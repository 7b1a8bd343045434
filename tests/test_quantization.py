"""QLoRA: `from_pretrained(..., quantization_config=BitsAndBytesConfig(...))` analysed without
bitsandbytes installed (vramlint's own `bitsandbytes` stub, frontends/bitsandbytes), transformers'
quantizer and peft's bnb LoRA layers run from their source.

The truth (tests/fixtures/truth/quantization-bnb-0.50.2.json, made by make_quantization_truth.py with
REAL transformers 5.17.0 + bitsandbytes 0.50.2 + peft 0.21.2 on the CPU) stores each case's script:
transformers' `num_parameters()`, the trainable count, every parameter's bytes as bitsandbytes holds
it (packed data plus its QuantState tensors, or int8 plus SCB), and peft's own counts after
`prepare_model_for_kbit_training` + `get_peft_model`. The storage formula itself is checked against
bitsandbytes' source as cited in frontends/bitsandbytes/storage.py.
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
from vramlint.frontends.bitsandbytes.storage import Packed4bit, int8_state_bytes
from vramlint.memory.timeline import rounded

HERE = Path(__file__).parent
TRUTH = json.loads((HERE / "fixtures/truth/quantization-bnb-0.50.2.json").read_text())
CASES = TRUTH["cases"]
HUB = HERE / "fixtures" / "hub"


@pytest.fixture(scope="module")
def analyse(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], vramlint.FileAnalysis]:
    libraries = (("transformers", TRANSFORMERS_VERSION), ("peft", PEFT_VERSION), ("accelerate", ACCELERATE_VERSION))
    settings = vramlint.Settings(extra_paths=tuple(str(library_source(d, v)) for d, v in libraries), memory=True,
                                 inputs=(vramlint.InputSpec((16,), "int64"),))
    folder = tmp_path_factory.mktemp("quantized")

    def run(stem: str, src: str) -> vramlint.FileAnalysis:
        return vramlint.analyze_source(str(folder / f"{stem}.py"), src, settings)

    return run


def _model(result: vramlint.FileAnalysis, name: str = "model", index: int = 0) -> vramlint.ModelResult:
    assert not result.errors, result.errors
    found = [m for m in result.models if m.name == name]
    assert found, "`model` was not built: " + "; ".join(f"{w.reason} at {w.location}" for w in result.warnings)
    return found[index]


def test_truth_records_its_versions() -> None:
    assert TRUTH["versions"]["transformers"] == TRANSFORMERS_VERSION
    assert TRUTH["versions"]["peft"] == PEFT_VERSION
    assert TRUTH["versions"]["bitsandbytes"] == "0.50.2"


@pytest.mark.parametrize("shape", [(128, 256), (96, 80), (3, 7), (11008, 4096)])
def test_4bit_storage_formula(shape: tuple[int, int]) -> None:
    """bitsandbytes 0.50.2: packed data `((n + 1) // (itemsize * 2), 1)` (_ops.py:232-235); float32
    absmax per 64 values (functional.py:917, _ops.py:233); double quant (functional.py:938-951):
    uint8 absmax, float32 absmax per 256 blocks, the 256-value code, the offset; the 16-value code."""
    n = shape[0] * shape[1]
    blocks = -(-n // 64)
    plain = Packed4bit(n)
    assert plain.data_bytes == (n + 1) // 2
    assert plain.state_bytes == blocks * 4 + 16 * 4
    double = Packed4bit(n, double_quant=True)
    assert double.state_bytes == blocks + -(-blocks // 256) * 4 + 256 * 4 + 4 + 16 * 4
    assert Packed4bit(n, storage_itemsize=2).packed_elements == (n + 1) // 4
    assert int8_state_bytes(shape[0]) == shape[0] * 4


@pytest.mark.parametrize("key", sorted(CASES))
def test_quantized_counts_and_bytes(analyse: Callable[[str, str], vramlint.FileAnalysis], key: str) -> None:
    case = CASES[key]
    src = case["script"].replace("FOLDER", str(HUB / case["family"]))
    m = _model(analyse(key, src))
    assert m.params.total == case["num_parameters"]
    assert m.params.trainable == case["trainable"]
    assert m.memory is not None, m.memory_unknowns
    # Each weight's storage and quantization state, in 512-byte allocator blocks as every tensor.
    assert m.memory.weights == sum(rounded(b) for b in case["param_bytes"])


QLORA = """import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                         bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained("FOLDER", quantization_config=bnb, dtype=torch.bfloat16)
model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
model = get_peft_model(model, {lora})
args = TrainingArguments(output_dir="out", bf16=True, per_device_train_batch_size=4, optim="paged_adamw_8bit")
trainer = Trainer(model=model, args=args, train_dataset=None)
"""


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_qlora_script_counts_equal_peft(analyse: Callable[[str, str], vramlint.FileAnalysis], family: str) -> None:
    case = CASES[f"{family}-nf4-double"]
    src = QLORA.format(lora=case["lora"]).replace("FOLDER", str(HUB / family))
    m = _model(analyse(f"qlora_{family}", src), index=-1)
    assert (m.params.trainable, m.params.total) == (case["peft_trainable"], case["peft_total"])
    assert m.setup is not None
    assert m.setup["optimizer"] == "adam8bit"
    assert m.setup["checkpointing"] is True
    assert "prepare_model_for_kbit_training" in m.setup.source("checkpointing")
    # bf16=True is autocast: the weights stay as the model holds them after prepare_model_for_kbit_training
    # (4-bit data and state; embeddings, norms, lm_head upcast to float32; LoRA in float32), as real peft.
    assert m.setup["precision"] == "amp-bf16"
    assert m.memory is not None
    assert m.memory.weights == sum(rounded(b) for b in case["peft_param_bytes"])
    assert m.memory.gradients > 0 and m.memory.optimizer_state > 0


def test_qlora_cli_breakdown(tmp_path: Path) -> None:
    """The CLI end to end: the QLoRA script's counts and a memory breakdown."""
    import subprocess
    import sys

    script = tmp_path / "qlora.py"
    script.write_text(QLORA.format(lora=CASES["llama-nf4-double"]["lora"]).replace("FOLDER", str(HUB / "llama")))
    extra = [arg for d, v in (("transformers", TRANSFORMERS_VERSION), ("peft", PEFT_VERSION),
                              ("accelerate", ACCELERATE_VERSION)) for arg in ("--extra-path", str(library_source(d, v)))]
    out = subprocess.run([sys.executable, "-m", "vramlint", "check", str(script), *extra, "--input-shape", "16",
                          "--input-dtype", "int64"], capture_output=True, text=True, timeout=300)
    case = CASES["llama-nf4-double"]
    assert f"{case['peft_total']:,} parameters, {case['peft_trainable']:,} trainable" in out.stdout, out.stdout + out.stderr
    assert "optimizer state" in out.stdout and "weights" in out.stdout


DENSE_4BIT = """import torch
import bitsandbytes as bnb

model = torch.nn.Sequential(bnb.nn.Linear4bit(4096, 4096, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4"))
"""


def test_dequantization_buffer_in_the_peak(tmp_path: Path) -> None:
    """bitsandbytes 0.50.2 backends/cuda/ops.py:934-979: up to 4 rows run the fused 4-bit kernel; more
    rows dequantize the weight to a full compute-dtype matrix before F.linear
    (`_dequant_linear_fallback`), a transient of 4096 * 4096 * 2 bytes here. Analysed without
    bitsandbytes installed (the analysis imports vramlint's own `bitsandbytes`)."""
    path = tmp_path / "dense.py"
    path.write_text(DENSE_4BIT)

    def peak(batch: int) -> vramlint.ModelResult:
        settings = vramlint.Settings(memory=True, batch_size=batch, inputs=(vramlint.InputSpec((4096,), "bfloat16"),))
        result = vramlint.analyze_file(str(path), settings)
        return _model(result)

    small, large = peak(2), peak(8)
    assert small.params.total == large.params.total == 4096 * 4096  # the values, as transformers counts them
    assert small.memory is not None and large.memory is not None
    packed = Packed4bit(4096 * 4096, double_quant=True)  # Linear4bit's compress_statistics=True by default
    assert small.memory.weights == rounded(packed.data_bytes + packed.state_bytes)
    dense = 4096 * 4096 * 2
    grown = large.memory.inference_peak - small.memory.inference_peak
    assert dense <= grown < dense + 1024 * 1024  # the dequantized weight, plus 6 more rows of input/output


@pytest.mark.parametrize(("cls", "key"), [("PagedAdamW8bit", "adam8bit"), ("AdamW8bit", "adam8bit"),
                                          ("Adam8bit", "adam8bit"), ("PagedAdamW", "adamw"),
                                          ("PagedLion32bit", "lion"), ("Lion8bit", "lion8bit"),
                                          ("PagedLion8bit", "lion8bit")])
def test_bnb_optimizer_classes(tmp_path: Path, cls: str, key: str) -> None:
    """bitsandbytes' optimizers built on a model's parameters (no bitsandbytes installed): 8-bit Adam is
    two uint8 states plus a float32 absmax per 256 values each (optim/optimizer.py:524-529)."""
    path = tmp_path / "opt.py"
    path.write_text("import torch\nimport bitsandbytes as bnb\n\nmodel = torch.nn.Linear(4096, 4096)\n"
                    f"opt = bnb.optim.{cls}(model.parameters(), lr=1e-4)\n")
    settings = vramlint.Settings(memory=True, inputs=(vramlint.InputSpec((4096,), "float32"),))
    m = _model(vramlint.analyze_file(str(path), settings))
    assert m.setup is not None and m.setup["optimizer"] == key
    assert f"bnb.optim.{cls}" in m.setup.source("optimizer")


def test_prequantized_checkpoint(analyse: Callable[[str, str], vramlint.FileAnalysis], tmp_path: Path) -> None:
    """A checkpoint saved quantized (its config.json holds the `quantization_config`, as the hub's
    "-bnb-4bit" checkpoints) loads quantized without a `quantization_config=` (get_hf_quantizer's
    `pre_quantized`): the same weights as the real NF4 double-quant load of the same model."""
    config = json.loads((HUB / "llama" / "config.json").read_text())
    config["quantization_config"] = {
        "quant_method": "bitsandbytes", "load_in_4bit": True, "load_in_8bit": False, "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "bfloat16", "bnb_4bit_quant_storage": "uint8",
        "llm_int8_skip_modules": None, "llm_int8_threshold": 6.0, "llm_int8_has_fp16_weight": False,
        "llm_int8_enable_fp32_cpu_offload": False}
    (tmp_path / "config.json").write_text(json.dumps(config))
    src = ("import torch\nfrom transformers import AutoModelForCausalLM\n\n"
           f"model = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}, dtype=torch.bfloat16)\n")
    m = _model(analyse("prequantized", src))
    case = CASES["llama-nf4-double"]
    assert (m.params.total, m.params.trainable) == (case["num_parameters"], case["trainable"])
    assert m.memory is not None
    assert m.memory.weights == sum(rounded(b) for b in case["param_bytes"])


def test_8bit_optimizer_state_formulas() -> None:
    """bitsandbytes optim/optimizer.py: 8-bit state from min_8bit_size = 4,096 elements (:414, :502, :674),
    uint8 states with one float32 absmax per block of 256 (:518-529 Adam's two, :686-694 Lion's one)."""
    from vramlint.memory.optimizers import OPTIMIZERS

    small, large = (4095, 4095 * 4), (4096 * 5 + 1, (4096 * 5 + 1) * 4)
    blocks = -(-(4096 * 5 + 1) // 256)
    assert OPTIMIZERS["adam8bit"].state([small, large]) == [4095 * 4, 4095 * 4, 4096 * 5 + 1, 4096 * 5 + 1,
                                                           blocks * 4, blocks * 4]
    assert OPTIMIZERS["lion8bit"].state([small, large]) == [4095 * 4, 4096 * 5 + 1 + blocks * 4]
    assert OPTIMIZERS["lion8bit"].step_temp([small, large]) == []
