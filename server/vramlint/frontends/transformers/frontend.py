"""The transformers frontend's registration (frontends/interface.py). transformers is read from
its own source like any library; only the decorators that change what a forward receives have
rules, `from_pretrained` reads only the checkpoint's config (pretrained.py) and says where it came
from (`origin`), its Trainer's arguments (TrainingArguments, TRL's configs) tell the training
setup, a model that does not fit gets LoRA / QLoRA quick fixes (fixes.py), and `model.generate(...)`
tells generation's KV cache (generation.py)."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.transformers.collators import FUNCTION_RULES as COLLATOR_RULES
from vramlint.frontends.transformers.decorators import DECORATOR_RULES
from vramlint.frontends.transformers.fixes import memory_fixes
from vramlint.frontends.transformers.generation import FUNCTION_RULES as GENERATE_RULES
from vramlint.frontends.transformers.generation import generation_plan
from vramlint.frontends.transformers.parallel import parallel_plan
from vramlint.frontends.transformers.pipelines import FUNCTION_RULES as PIPELINE_RULES
from vramlint.frontends.transformers.pipelines import held_model
from vramlint.frontends.transformers.pretrained import FUNCTION_RULES, origin
from vramlint.frontends.transformers.tokenization import FUNCTION_RULES as TOKENIZER_RULES
from vramlint.frontends.transformers.training_setup import HANDLER as TRAINING_SETUP

# `from_pretrained` reads a checkpoint's files: its rules read only the config, offline.
# `pipeline(...)` builds its model the same way, and holds it (`pipe.model`): pipelines.py.
# `generate(...)` is read, not run: its KV cache and the generation peak (generation.py).
# Tokenizers are made without their vocabulary (tokenization.py); collators' calls give batch shapes
# (collators.py). TrainingArguments(fsdp=...) is read into a multi-GPU plan (parallel.py).
FRONTEND = Frontend(name="transformers", decorator_rules=DECORATOR_RULES,
                    function_rules={**FUNCTION_RULES, **PIPELINE_RULES, **GENERATE_RULES, **TOKENIZER_RULES,
                                    **COLLATOR_RULES}, held_model=held_model,
                    training_setup=TRAINING_SETUP, origin=origin, memory_fixes=memory_fixes,
                    generation=generation_plan, parallel_plan=parallel_plan)
