"""The peft frontend's registration (frontends/interface.py). peft is read from its own source like
any library (LoRA's `get_peft_model` needs no rule); only what reads an adapter's files from a folder
or the Hub has rules (pretrained.py): `PeftModel.from_pretrained` reads the adapter's
adapter_config.json, offline, and no weights."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.peft.pretrained import FUNCTION_RULES

FRONTEND = Frontend(name="peft", function_rules=FUNCTION_RULES)
