"""The Lightning frontend's registration (frontends/interface.py): vramlint's own `lightning`,
`pytorch_lightning` and `lightning_fabric` modules (stubs.py), whose LightningModule is a module of
the torch frontend's kind (module.py) and whose Trainer.fit runs one training step (trainer.py).
A LightningModule without a forward of its own is estimated on that step (`model_inputs`). The
setup a Trainer or Fabric states is read by the torch frontend's training-setup handler."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.lightning.module import model_inputs, owns_model
from vramlint.frontends.lightning.parallel import parallel_plan
from vramlint.frontends.lightning.stubs import lightning_module

FRONTEND = Frontend(name="lightning", native_modules=(lightning_module,), owns_model=owns_model,
                    model_inputs=model_inputs, parallel_plan=parallel_plan)
