"""The transformers frontend's registration (frontends/interface.py). transformers is read from
its own source like any library; only the decorators that change what a forward receives have
rules, `from_pretrained` reads only the checkpoint's config (pretrained.py) and says where it came
from (`origin`), its Trainer's arguments (TrainingArguments, TRL's configs) tell the training
setup, and a model that does not fit gets LoRA / QLoRA quick fixes (fixes.py)."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.transformers.decorators import DECORATOR_RULES
from vramlint.frontends.transformers.fixes import memory_fixes
from vramlint.frontends.transformers.pretrained import FUNCTION_RULES, origin
from vramlint.frontends.transformers.training_setup import HANDLER as TRAINING_SETUP

# `from_pretrained` reads a checkpoint's files: its rules read only the config, offline.
FRONTEND = Frontend(name="transformers", decorator_rules=DECORATOR_RULES, function_rules=FUNCTION_RULES,
                    training_setup=TRAINING_SETUP, origin=origin, memory_fixes=memory_fixes)
