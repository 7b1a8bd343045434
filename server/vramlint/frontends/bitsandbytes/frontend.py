"""The bitsandbytes frontend's registration (frontends/interface.py): its `bitsandbytes` stub module
(stubs.py), so that transformers' and peft's own bnb code runs without the package installed."""

from __future__ import annotations

from vramlint.frontends.bitsandbytes.stubs import bitsandbytes_module
from vramlint.frontends.interface import Frontend

FRONTEND = Frontend(name="bitsandbytes", native_modules=(bitsandbytes_module,))
