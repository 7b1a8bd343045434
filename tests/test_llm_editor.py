"""LLM fine-tuning in the editor (issue 13): the hover on `from_pretrained(...)` says what was
loaded and from where, the code lens on the trainer call gives the fine-tuning peak. A real LSP
client (tests/test_lsp.py's fixtures), transformers and peft read from their own source."""

from __future__ import annotations

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
from tests.test_lsp import Session, line_of, options

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
