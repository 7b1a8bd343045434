"""transformers' decorators that change what a forward receives, as rules.

The engine takes decorators as the identity (it does not evaluate them: most only register or
document); transformers' `auto_docstring` is known as such before it is evaluated (`DocstringOnly`),
so its 4,700-line module is not read. One of them changes the memory: `merge_with_config_defaults`
(utils/generic.py) fills `use_cache` (and the like) from the model's config when the caller does
not pass it, so an inference forward builds a KV cache by default.
This rule does what it does, for the arguments that matter here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import MISSING, FunctionValue, NativeFunction, Unknown

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

CONFIG_DEFAULTS = ("use_cache",)  # the argument of merge_with_config_defaults that changes memory


def merge_with_config_defaults(ev: Evaluator, func: Any) -> Any:
    if not isinstance(func, FunctionValue):
        return func
    params = [p.name.value for p in (*func.node.params.posonly_params, *func.node.params.params)]

    def wrapper(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        if not a:
            return ev2.call(func, a, k)
        model = a[0]
        kwargs = dict(k)
        for name in CONFIG_DEFAULTS:
            index = params.index(name) if name in params else None
            given = a[index] if index is not None and index < len(a) else kwargs.get(name)
            if given is not None:
                continue
            value = _attr(ev2, _attr(ev2, model, "config"), name)
            if value is None or isinstance(value, Unknown):
                continue
            if name == "use_cache" and value is True and _attr(ev2, model, "gradient_checkpointing") is True \
                    and _attr(ev2, model, "training") is True:
                value = False  # "use_cache=True is incompatible with gradient checkpointing"
            if index is not None and index < len(a):
                a = (*a[:index], value, *a[index + 1:])
            else:
                kwargs[name] = value
        return ev2.call(func, a, kwargs)

    return NativeFunction(func.qualname, wrapper)


def _attr(ev: Evaluator, obj: Any, name: str) -> Any:
    if obj is None or isinstance(obj, Unknown):
        return None
    try:
        v = ev.protocol.getattr(obj, name, None)
    except Exception:  # an attribute that raises: not set
        return None
    return None if v is MISSING else v


class DocstringOnly:
    """A decorator that only writes the docstring of what it decorates (`@auto_docstring`,
    `@auto_docstring(custom_intro=...)`): the identity, as the engine takes every decorator
    without a rule, but known before it is evaluated (`unevaluated`: by where its name is
    imported from), so that its module (auto_docstring.py: 4,700 lines) is not read for it."""

    unevaluated = True

    def __call__(self, ev: Evaluator, func: Any) -> Any:
        if isinstance(func, FunctionValue):
            func.wrapped = True  # as for any decorator taken as the identity (eval_definitions)
        return func


# Rules by the decorator's qualified name (module.qualname), consulted by Evaluator.apply_decorator.
DECORATOR_RULES: dict[str, Callable[[Evaluator, Any], Any]] = {
    "transformers.utils.generic.merge_with_config_defaults": merge_with_config_defaults,
    "transformers.utils.generic.check_model_inputs": merge_with_config_defaults,
    "transformers.utils.auto_docstring.auto_docstring": DocstringOnly(),
}
