"""The transformers frontend's registration (frontends/interface.py). transformers is read from
its own source like any library; only the decorators that change what a forward receives have rules."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.transformers.decorators import DECORATOR_RULES

FRONTEND = Frontend(name="transformers", decorator_rules=DECORATOR_RULES)
