"""The DeepSpeed frontend's registration (frontends/interface.py): vramlint's own `deepspeed`
package where DeepSpeed is not installed for the analysis (stubs.py: `deepspeed.initialize`
returns the model as its engine), and the ZeRO plan a file states through `deepspeed.initialize`,
transformers' `TrainingArguments(deepspeed=...)`, Lightning's DeepSpeed strategies or accelerate's
`DeepSpeedPlugin` (reading.py, config.py), which memory/zero.py turns into each GPU's share."""

from __future__ import annotations

from vramlint.frontends.deepspeed.reading import read_plan
from vramlint.frontends.deepspeed.stubs import deepspeed_module
from vramlint.frontends.interface import Frontend

FRONTEND = Frontend(name="deepspeed", native_modules=(deepspeed_module,), parallel_plan=read_plan)
