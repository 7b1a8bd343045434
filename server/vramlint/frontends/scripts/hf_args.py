"""transformers' `HfArgumentParser((ModelArguments, TrainingArguments)).parse_args_into_dataclasses()`:
each dataclass built as a dataclass CLI builds it (cli_apps.dataclass_from_cli: field defaults,
the script's args, `--set`), tagged. The parser itself runs from transformers' source (it
subclasses the engine's argparse model); only this method, which would parse `sys.argv` through
transformers' own type machinery, is replaced."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, ClassValue, Instance, Kwargs, NativeFunction, Unknown
from vramlint.frontends.scripts.cli_apps import dataclass_from_cli

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


def _types(ev: Evaluator, self: Any) -> list[Any] | Unknown:
    types = self.attrs.get("dataclass_types") if isinstance(self, Instance) else None
    if isinstance(types, (list, tuple)):
        return list(types)
    return Unknown("HfArgumentParser: its dataclass types are not known", ev.current_ref)


def _into_dataclasses(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    types = _types(ev, a[0] if a else None)
    if isinstance(types, Unknown):
        return types
    out = [dataclass_from_cli(ev, t, "HfArgumentParser") if isinstance(t, ClassValue) else t for t in types]
    return tuple(out)


def _rule(ev: Evaluator, func: Any) -> Any:
    return NativeFunction("HfArgumentParser.parse_args_into_dataclasses", _into_dataclasses)


FUNCTION_RULES = {"transformers.hf_argparser.HfArgumentParser.parse_args_into_dataclasses": _rule}
