"""The Accelerate frontend's registration (frontends/interface.py): vramlint's own `Accelerator`
(stubs.py: replacing the class read from accelerate's source, for the script's own code; the
whole `accelerate` package where it is absent). The setup an Accelerator states is read by the
torch frontend's training-setup handler."""

from __future__ import annotations

from vramlint.frontends.accelerate.stubs import CLASS_RULES, accelerate_module
from vramlint.frontends.interface import Frontend

FRONTEND = Frontend(name="accelerate", native_modules=(accelerate_module,), function_rules=CLASS_RULES)
