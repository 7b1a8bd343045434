"""LLM fine-tuning in the editor (issue 13): the hover on `from_pretrained(...)` says what was
loaded and from where, the code lens on the trainer call gives the fine-tuning peak. A real LSP
client (tests/test_lsp.py's fixtures), transformers and peft read from their own source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import test_lsp
from tests.support.libsources import (
    ACCELERATE_VERSION,
    PEFT_VERSION,
    TRANSFORMERS_VERSION,
    library_source,
)
from tests.test_lsp import Session, apply_edit, by_code, line_of, options
from vramlint.render.units import fmt_bytes

client = test_lsp.client
lsp = test_lsp.lsp

LLAMA = Path(__file__).parent / "fixtures/hub/llama"  # a 2-layer Llama's config.json
LIBRARIES = [str(library_source(dist, version)) for dist, version in (
    ("transformers", TRANSFORMERS_VERSION), ("peft", PEFT_VERSION), ("accelerate", ACCELERATE_VERSION))]

# transformers' source is evaluated on the first analysis: seconds, more on a busy machine.
LIBRARY_DEADLINE = 180.0

SFT = f"""\
import torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
from trl import SFTConfig, SFTTrainer

base = AutoModelForCausalLM.from_pretrained("{LLAMA}", dtype=torch.bfloat16)
model = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
args = SFTConfig(output_dir="out", per_device_train_batch_size=2, max_length=16)
trainer = SFTTrainer(model=model, args=args, train_dataset=dataset)
"""


@options(extraPaths=LIBRARIES)
@pytest.mark.asyncio
async def test_hover_on_from_pretrained_and_lens_on_the_trainer(lsp: Session) -> None:
    uri = await lsp.open("sft.py", SFT, timeout=LIBRARY_DEADLINE)
    line = line_of(SFT, "from_pretrained")
    hover = await lsp.hover(uri, line, SFT.splitlines()[line].index("from_pretrained") + 3)
    assert hover is not None
    assert "Loaded:" in hover
    assert f"- checkpoint: {LLAMA}" in hover
    assert f"- config: {LLAMA / 'config.json'} (local folder {LLAMA})" in hover
    assert "- dtype: bfloat16 (`dtype=`)" in hover
    # Elsewhere on that line (the variable's name is another model's hover; `torch.bfloat16` none).
    assert await lsp.hover(uri, line, SFT.splitlines()[line].index("bfloat16") + 2) is None
    lenses = await lsp.lenses(uri)
    trainer = lenses[line_of(SFT, "trainer = SFTTrainer(")]
    # The fine-tuning the trainer runs: the LoRA model, SFTConfig's batch and length, TRL's
    # defaults (bf16 autocast, gradient checkpointing), AdamW.
    assert re.fullmatch(r"trains model: [\d.]+K params · training peak [\d.]+ MiB · device total [\d.]+ MiB / "
                        r"79\.19 GiB · batch 2 · amp-bf16 · adamw · checkpointing", trainer), trainer
    assert lenses[line_of(SFT, "model = get_peft_model")] == trainer.removeprefix("trains model: ")


FULL = """\
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

model = AutoModelForCausalLM.from_pretrained("{folder}")
args = TrainingArguments(output_dir="out", per_device_train_batch_size=2)
trainer = Trainer(model=model, args=args)
"""


def _llama(folder: Path) -> Path:
    """A Llama of ~110M parameters (float32): full fine-tuning with AdamW takes over 1.7 GB."""
    config = json.loads((LLAMA / "config.json").read_text())
    config.update(hidden_size=1024, intermediate_size=2816, num_hidden_layers=4, num_attention_heads=16,
                  num_key_value_heads=4, vocab_size=32000, dtype="float32")
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@options(extraPaths=LIBRARIES, gpu="2GiB", inputs=[{"shape": [64], "dtype": "int64"}])
@pytest.mark.asyncio
async def test_quick_fixes_propose_lora(lsp: Session, tmp_path: Path) -> None:
    """Full fine-tuning over the budget: the quick fixes propose LoRA (a code change: peft's
    get_peft_model after the model's statement, and its import), titled with the estimate of the
    file so changed; applied, the title holds. Gradient checkpointing is not proposed: with 64
    tokens per sample the peak is AdamW's step, which checkpointing does not lower (its
    re-analysis says so)."""
    text = FULL.format(folder=_llama(tmp_path / "llama"))
    uri = await lsp.open("full.py", text, timeout=LIBRARY_DEADLINE)
    (vl001,) = by_code(lsp.client.diagnostics[uri], "VL001")
    actions = {a.title.split(":")[0]: a for a in await lsp.actions(uri, [vl001])}
    assert "Fine-tune with LoRA (peft" in actions and "Use gradient checkpointing (checkpointing=true)" not in actions
    lora = actions["Fine-tune with LoRA (peft"]
    m = re.fullmatch(r"Fine-tune with LoRA \(peft: r=16, every linear layer\): (.+) of 2\.00 GiB, fits", lora.title)
    assert m is not None, lora.title
    assert lora.edit is not None and lora.edit.changes is not None
    edits = lora.edit.changes[uri]
    assert [e.new_text for e in edits] == [
        "\nfrom peft import LoraConfig, get_peft_model",
        '\nmodel = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))']
    changed = text
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        changed = apply_edit(changed, e)
    assert "model = get_peft_model(model, " in changed.splitlines()[4]
    start = len(lsp.statuses)
    diags = await lsp.edit(uri, changed, timeout=LIBRARY_DEADLINE)
    assert by_code(diags, "VL001") == []
    status = await lsp.status(uri, 2, after=start)
    (model,) = [x for x in status["models"] if x["name"] == "model"]
    assert model["fits"] is True and fmt_bytes(model["deviceTotal"]) == m.group(1)
