"""The Accelerate frontend's registration (frontends/interface.py): vramlint's own `Accelerator`
(stubs.py: always its class, the whole package only where accelerate is absent). The setup an
Accelerator states is read by the torch frontend's training-setup handler."""

from __future__ import annotations

from vramlint.frontends.accelerate.stubs import accelerate_module
from vramlint.frontends.interface import Frontend

FRONTEND = Frontend(name="accelerate", native_modules=(accelerate_module,))
