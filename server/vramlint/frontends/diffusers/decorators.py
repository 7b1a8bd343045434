"""diffusers' decorators that the engine must run rather than take as the identity.

`@register_to_config` on a model's `__init__` (configuration_utils.py) records the arguments in
`self._internal_dict`, which `self.config` reads while the model builds itself (UNet2DConditionModel
sizes its blocks from `self.config`). Taken as the identity, every diffusers model fails with
"no attribute '_internal_dict'". Its wrapper is ordinary Python (inspect.signature, a dict of the
bound arguments): the engine evaluates diffusers' own code for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

RUN = ("diffusers.configuration_utils.register_to_config",)


def run_decorator(qualified: str) -> Any:
    module, _, name = qualified.rpartition(".")

    def rule(ev: Evaluator, func: Any) -> Any:
        real = ev.loader.import_from(module, name, None)
        return ev.call(real, (func,), {})

    return rule


DECORATOR_RULES = {name: run_decorator(name) for name in RUN}
