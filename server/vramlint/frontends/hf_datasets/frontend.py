"""The `datasets` frontend's registration (frontends/interface.py): vramlint's own `datasets` module
(stubs.py), so that a training script's `load_dataset(...).map(tokenize)` gives its rows' tokens
without the package installed, its data read or the network used."""

from __future__ import annotations

from vramlint.frontends.hf_datasets.stubs import datasets_module
from vramlint.frontends.interface import Frontend

FRONTEND = Frontend(name="datasets", native_modules=(datasets_module,))
