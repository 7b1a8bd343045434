"""The diffusers frontend's registration (frontends/interface.py). diffusers is read from its own
source like any library; only `@register_to_config` must run rather than be taken as the identity."""

from __future__ import annotations

from vramlint.frontends.diffusers.decorators import DECORATOR_RULES
from vramlint.frontends.interface import Frontend

FRONTEND = Frontend(name="diffusers", decorator_rules=DECORATOR_RULES)
