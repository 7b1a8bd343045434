"""The tqdm frontend's registration (frontends/interface.py): a `tqdm` stub module whose progress
bars pass their iterable through (stubs.py), so `for batch in tqdm(loader)` sees the batches."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.tqdm.stubs import tqdm_module

FRONTEND = Frontend(name="tqdm", native_modules=(tqdm_module,))
