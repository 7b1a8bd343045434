"""`argparse`, modelled: a script's options get the values a run would give them.

`parser.add_argument("--batch-size", type=int, default=128)` records the option; `parse_args()`
gives a Namespace whose `batch_size` is 128 (a string default goes through `type`, as argparse
does), tagged "argparse default of --batch-size at train.py:12" (engine/provenance.py). The command
line the script is given (`args = [...]` in its configuration table) is parsed by Python's own
argparse, on a mirror of the script's parser whose values stay strings (no `type` runs there: the
script's `type` runs in the evaluator, which may be its own function); `--set dest=value`
overrides an option as if given on the command line. An option the script requires and nobody
gives is an Unknown located at its `add_argument`, saying how to give it.

ArgumentParser is a class of its own (transformers' HfArgumentParser subclasses it): its state is
the instance's `state`, a `_Parser`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramlint.engine.provenance import place, source_of, sourced
from vramlint.engine.script_inputs import ScriptInputs, override_for
from vramlint.engine.signals import RaiseSignal
from vramlint.engine.values import (
    MISSING,
    Args,
    ClassValue,
    Instance,
    Kwargs,
    NativeFunction,
    SourceRef,
    Unknown,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader
    from vramlint.engine.values import ModuleValue

SUPPRESS = argparse.SUPPRESS
_FALSE_DEFAULT = {"store_true": False, "store_false": True}
_KNOWN = {"store", "store_const", "store_true", "store_false", "append", "append_const", "count", "extend",
          "help", "version", "boolean_optional"}


@dataclass
class _Action:
    names: tuple[str, ...]  # option strings; empty for a positional
    dest: str
    kind: str  # one of _KNOWN, or "custom" (an Action class of the script)
    nargs: Any = None
    const: Any = None
    default: Any = None
    type: Any = None
    choices: Any = None
    required: bool = False
    where: str = ""  # "train.py:12"
    ref: SourceRef | None = None
    default_source: str = ""

    @property
    def label(self) -> str:
        return next((n for n in self.names if n.startswith("--")), self.names[0] if self.names else self.dest)


@dataclass
class _Subparsers:
    dest: str | None
    required: bool
    parsers: dict[str, _Parser] = field(default_factory=dict)


@dataclass
class _Parser:
    actions: list[_Action] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    prefix_chars: str = "-"
    allow_abbrev: bool = True
    argument_default: Any = None
    subparsers: _Subparsers | None = None


class _ParseError(Exception):
    pass


class _Mirror(argparse.ArgumentParser):
    """Python's parser over the script's options, raising instead of printing and exiting."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise _ParseError(message)

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        raise _ParseError(message or "exit")


# ---------------------------------------------------------------------- the module
def argparse_module(loader: Loader) -> ModuleValue:
    from vramlint.engine.builtins import _module

    b = loader.builtins
    obj = b["object"]
    action_cls = ClassValue("Action", (obj,), {"__init__": NativeFunction("Action.__init__", _action_init)}, "argparse")
    namespace = ClassValue("Namespace", (obj,), {"__init__": NativeFunction("Namespace.__init__", _namespace_init)},
                           "argparse")
    parser_ns: dict[str, Any] = {name: NativeFunction(f"ArgumentParser.{name}", fn) for name, fn in _PARSER_METHODS.items()}
    parser = ClassValue("ArgumentParser", (obj,), parser_ns, "argparse")
    group_ns = {name: parser_ns[name] for name in ("add_argument", "add_argument_group", "add_mutually_exclusive_group",
                                                   "set_defaults", "get_default")}
    group = ClassValue("_ArgumentGroup", (obj,), group_ns, "argparse")
    subparsers = ClassValue("_SubParsersAction", (obj,), {"add_parser": NativeFunction("add_parser", _add_parser)},
                            "argparse")
    formatter = ClassValue("HelpFormatter", (obj,), {}, "argparse")
    error = ClassValue("ArgumentError", (b["Exception"],), {}, "argparse")
    loader.frontend_state["argparse"] = {"parser": parser, "group": group, "namespace": namespace,
                                         "subparsers": subparsers, "action": action_cls}
    ns: dict[str, Any] = {
        "ArgumentParser": parser, "Namespace": namespace, "Action": action_cls,
        "ArgumentError": error, "ArgumentTypeError": ClassValue("ArgumentTypeError", (b["Exception"],), {}, "argparse"),
        "BooleanOptionalAction": ClassValue("BooleanOptionalAction", (action_cls,), {}, "argparse"),
        "SUPPRESS": SUPPRESS, "OPTIONAL": "?", "ZERO_OR_MORE": "*", "ONE_OR_MORE": "+", "REMAINDER": "...",
        "FileType": NativeFunction("argparse.FileType", lambda ev, a, k: NativeFunction(
            "FileType()", lambda ev2, a2, k2: Unknown("argparse.FileType opens a file", ev2.current_ref))),
    }
    for name in ("HelpFormatter", "RawTextHelpFormatter", "RawDescriptionHelpFormatter",
                 "ArgumentDefaultsHelpFormatter", "MetavarTypeHelpFormatter"):
        ns[name] = formatter
    return _module("argparse", ns)


def _classes(ev: Evaluator) -> dict[str, ClassValue]:
    got = ev.loader.frontend_state.get("argparse")
    if got is None:
        ev.loader.import_module("argparse", None)
        got = ev.loader.frontend_state["argparse"]
    return got  # type: ignore[no-any-return]


def _state(ev: Evaluator, self: Any) -> _Parser:
    if isinstance(self, Instance) and isinstance(self.state, _Parser):
        return self.state
    if isinstance(self, Instance):  # a subclass whose __init__ did not call ours yet
        self.state = _Parser()
        return self.state
    raise ev.raise_error("TypeError", "argparse method called on a non-parser")


def _where(ev: Evaluator) -> tuple[str, SourceRef | None]:
    return place(ev.current_ref, statement=False), ev.current_ref


# ---------------------------------------------------------------------- building a parser
def _init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    self = a[0]
    prefix = k.get("prefix_chars", "-")
    state = _Parser(prefix_chars=prefix if isinstance(prefix, str) and prefix else "-",
                    allow_abbrev=k.get("allow_abbrev", True) is not False,
                    argument_default=k.get("argument_default"))
    if isinstance(self, Instance):
        self.state = state
        for key in ("prog", "description", "epilog"):
            self.attrs.setdefault(key, k.get(key))
    for parent in k.get("parents") or ():
        if isinstance(parent, Instance) and isinstance(parent.state, _Parser):
            state.actions.extend(parent.state.actions)
            state.defaults.update(parent.state.defaults)
    return None


def _add_argument(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    state = _state(ev, a[0])
    names = tuple(str(n) for n in a[1:] if isinstance(n, str))
    if len(names) != len(a) - 1 or not names or not all(names):
        return Unknown("add_argument() with names that are not known strings", ev.current_ref)
    optional = names[0][0] in state.prefix_chars
    kind, custom = _kind(ev, k.get("action", "store"))
    dest = k.get("dest")
    if not isinstance(dest, str):
        dest = _dest_of(names, state.prefix_chars) if optional else names[0]
    where, ref = _where(ev)
    if "default" in k:
        default = k["default"]
    elif dest in state.defaults:
        default = state.defaults[dest]
    elif kind in _FALSE_DEFAULT:
        default = _FALSE_DEFAULT[kind]
    else:
        default = state.argument_default
    if kind == "store_true":
        const: Any = True
    elif kind == "store_false":
        const = False
    else:
        const = k.get("const")
    action = _Action(names if optional else (), dest, kind, k.get("nargs"), const, default, k.get("type"),
                     k.get("choices"), bool(k.get("required", not optional and k.get("nargs") not in ("?", "*"))),
                     where, ref, f"argparse default of {names[0] if not optional else _long(names)} at {where}")
    state.actions.append(action)
    result = Instance(_classes(ev)["action"])
    result.attrs.update({"dest": dest, "option_strings": list(action.names), "default": default,
                         "required": action.required, "help": k.get("help"), "nargs": action.nargs,
                         "const": const, "type": action.type, "choices": action.choices, "custom_action": custom})
    return result


def _long(names: tuple[str, ...]) -> str:
    return next((n for n in names if n.startswith("--")), names[0])


def _dest_of(names: tuple[str, ...], prefix: str) -> str:
    long = [n for n in names if len(n) > 1 and n[0] in prefix and n[1] in prefix]
    chosen = long[0] if long else names[0]
    return chosen.lstrip(prefix).replace("-", "_")


def _kind(ev: Evaluator, action: Any) -> tuple[str, Any]:
    if isinstance(action, str):
        kind = action.replace("-", "_")
        return (kind, None) if kind in _KNOWN else ("custom", action)
    if isinstance(action, ClassValue) and action.name == "BooleanOptionalAction" and action.module_name == "argparse":
        return "boolean_optional", None
    return "custom", action


def _action_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    self = a[0]
    if isinstance(self, Instance):
        self.attrs.update({key: k.get(key) for key in ("option_strings", "dest", "nargs", "const", "default",
                                                        "type", "choices", "required", "help", "metavar")})
    return None


def _add_group(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    group = Instance(_classes(ev)["group"])
    group.state = _state(ev, a[0])  # the group adds to its parser
    group.attrs["title"] = a[1] if len(a) > 1 else k.get("title")
    return group


def _set_defaults(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    state = _state(ev, a[0])
    where, _ = _where(ev)
    state.defaults.update(k)
    for action in state.actions:
        if action.dest in k:
            action.default = k[action.dest]
            action.default_source = f"argparse set_defaults({action.dest}=...) at {where}"
    return None


def _get_default(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    state = _state(ev, a[0])
    dest = a[1] if len(a) > 1 else k.get("dest")
    for action in state.actions:
        if action.dest == dest:
            return action.default
    return state.defaults.get(dest) if isinstance(dest, str) else None


def _add_subparsers(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    state = _state(ev, a[0])
    dest = k.get("dest")
    state.subparsers = _Subparsers(dest if isinstance(dest, str) else None, k.get("required") is True)
    sub = Instance(_classes(ev)["subparsers"])
    sub.state = state.subparsers
    return sub


def _add_parser(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    sub = a[0].state if isinstance(a[0], Instance) else None
    name = a[1] if len(a) > 1 else k.get("name")
    if not isinstance(sub, _Subparsers) or not isinstance(name, str):
        return Unknown("add_parser() of an unknown name", ev.current_ref)
    parser = Instance(_classes(ev)["parser"])
    _init(ev, (parser,), {key: v for key, v in k.items() if key in ("prefix_chars", "allow_abbrev", "parents",
                                                                       "argument_default")})
    assert isinstance(parser.state, _Parser)
    for alias in (name, *(k.get("aliases") or ())):
        if isinstance(alias, str):
            sub.parsers[alias] = parser.state
    return parser


def _namespace_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    if isinstance(a[0], Instance):
        a[0].attrs.update(k)
    return None


def _exit(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    message = a[1] if len(a) > 1 and isinstance(a[1], str) else "argparse exits"
    raise ev.raise_error("SystemExit", message)


# ---------------------------------------------------------------------- parsing
def _parse_args(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    got = _parse(ev, a, k)
    if isinstance(got, Unknown):
        return got
    namespace, extras = got
    if extras:
        return Unknown(f"argparse: unrecognized arguments: {' '.join(extras)}", ev.current_ref)
    return namespace


def _parse_known_args(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    got = _parse(ev, a, k)
    return got if isinstance(got, Unknown) else (got[0], list(got[1]))


def _parse(ev: Evaluator, a: Args, k: Kwargs) -> tuple[Instance, list[str]] | Unknown:
    state = _state(ev, a[0])
    inputs: ScriptInputs = ev.loader.script_inputs
    args = a[1] if len(a) > 1 else k.get("args")
    if args is None:
        argv, argv_source = list(inputs.argv), inputs.argv_source
    elif isinstance(args, (list, tuple)) and list(args) == list(inputs.argv):  # parse_args(sys.argv[1:])
        argv, argv_source = list(inputs.argv), inputs.argv_source
    elif isinstance(args, (list, tuple)) and all(isinstance(x, str) for x in args):
        where, _ = _where(ev)
        argv, argv_source = [str(x) for x in args], f"parse_args({list(args)!r}) at {where}"
    else:
        return Unknown("parse_args() of an unknown argument list", ev.current_ref)
    mirror = _Mirror(add_help=False, prefix_chars=state.prefix_chars, allow_abbrev=state.allow_abbrev)
    try:
        _fill(mirror, state)
        given, extras = mirror.parse_known_args(argv)
    except (_ParseError, argparse.ArgumentError, ValueError, TypeError) as err:
        return Unknown(f"argparse: {err} (the script's command line: {' '.join(argv) or 'none'})", ev.current_ref)
    target = a[2] if len(a) > 2 else k.get("namespace")
    namespace = target if isinstance(target, Instance) else Instance(_classes(ev)["namespace"])
    _fill_namespace(ev, state, vars(given), namespace, argv_source, inputs)
    return namespace, list(extras)


def _fill(mirror: argparse.ArgumentParser, state: _Parser) -> None:
    """The script's options on Python's parser: values stay strings, nothing is required (a
    missing required value is said per option, not as a failed parse), no default is set."""
    for action in state.actions:
        if action.kind == "custom" and not action.names:
            mirror.add_argument(action.dest, nargs="*", default=SUPPRESS)
            continue
        if not action.names:
            nargs = "?" if action.nargs in (None, "?") else "*" if action.nargs in ("*", "+") or isinstance(
                action.nargs, int) else action.nargs
            mirror.add_argument(action.dest, nargs=nargs, default=SUPPRESS)
            continue
        kw: dict[str, Any] = {"dest": action.dest, "default": SUPPRESS}
        kind = action.kind
        if kind in ("store", "append", "extend", "custom"):
            kw["action"] = "store" if kind == "custom" else kind
            if action.nargs is not None:
                kw["nargs"] = action.nargs if isinstance(action.nargs, (int, str)) else "?"
        elif kind in ("store_const", "help", "version"):
            kw["action"] = "store_true"
        elif kind == "append_const":
            kw["action"] = "count"
        elif kind == "boolean_optional":
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["action"] = kind
        if kind in ("help", "version"):
            kw["dest"] = f"__vramlint_{kind}__"
        mirror.add_argument(*action.names, **kw)
    sub = state.subparsers
    if sub is not None and sub.parsers:
        spa = mirror.add_subparsers(dest="__vramlint_command__")
        made: dict[int, argparse.ArgumentParser] = {}
        for name, p in sub.parsers.items():
            if id(p) in made:
                continue
            aliases = [n for n, q in sub.parsers.items() if q is p and n != name]
            child = spa.add_parser(name, aliases=aliases, add_help=False, prefix_chars=p.prefix_chars)
            made[id(p)] = child
            _fill(child, p)


def _fill_namespace(ev: Evaluator, state: _Parser, given: dict[str, Any], namespace: Instance, argv_source: str,
                    inputs: ScriptInputs) -> None:
    for action in state.actions:
        if action.kind in ("help", "version") or action.dest == SUPPRESS:
            continue
        value = _value(ev, action, given, argv_source, inputs)
        if value is not MISSING:
            namespace.attrs[action.dest] = value
    for dest, value in state.defaults.items():
        namespace.attrs.setdefault(dest, value)
    sub = state.subparsers
    if sub is not None:
        command = given.get("__vramlint_command__")
        if sub.dest is not None:
            namespace.attrs[sub.dest] = sourced(command, f"the command {command} in {argv_source}") \
                if command else None
        chosen = sub.parsers.get(command) if isinstance(command, str) else None
        if chosen is not None:
            _fill_namespace(ev, chosen, given, namespace, argv_source, inputs)
        elif sub.required:
            namespace.attrs[sub.dest or "command"] = Unknown(
                "argparse: a command is required and none is given (give it with `args = [...]` in the "
                "configuration)", ev.current_ref)


def _value(ev: Evaluator, action: _Action, given: dict[str, Any], argv_source: str, inputs: ScriptInputs) -> Any:
    """The value an option gets: `--set`, else the command line, else its default."""
    override = override_for(inputs, action.dest, *action.names)
    if override is not None:
        text, raw = override
        return _from_text(ev, action, raw if action.kind not in ("append", "extend") else [raw], text, True)
    if action.dest in given:
        raw = given[action.dest]
        shown = " ".join([action.label, *([raw] if isinstance(raw, str) else [str(x) for x in raw]
                                          if isinstance(raw, list) else [])])
        return _from_text(ev, action, raw, f"{shown} ({argv_source})" if argv_source else shown, False)
    if action.required:
        return Unknown(f"argparse: {action.label} is required and the script is given no value for it (give it "
                       f"with `args = [...]` in the configuration, or --set {action.dest}=VALUE)", action.ref)
    default = action.default
    if default == SUPPRESS:
        return MISSING
    # A default read from elsewhere (`parser.set_defaults(**yaml.safe_load(f))`) keeps its source.
    source = source_of(default) or action.default_source
    if isinstance(default, str) and action.type is not None and action.kind in ("store", "append", "extend"):
        return _convert(ev, action, default, source)
    if isinstance(default, list):
        return [x if source_of(x) else sourced(x, source) for x in default]
    return sourced(default, source)


def _from_text(ev: Evaluator, action: _Action, raw: Any, source: str, from_set: bool) -> Any:
    kind = action.kind
    if kind in ("store_true", "store_false", "store_const", "boolean_optional"):
        if from_set and isinstance(raw, str):
            on = raw.strip().lower() in ("1", "true", "yes", "on")
            return (action.const if on else action.default) if kind != "boolean_optional" else on
        return action.const if kind != "boolean_optional" else raw
    if kind == "count":
        return sourced(int(raw) if isinstance(raw, str) and raw.isdigit() else raw, source)
    if kind == "append_const":
        return [action.const] * (raw if isinstance(raw, int) else 1)
    if kind == "custom":
        return Unknown(f"argparse: the custom action of {action.label} is not modelled", action.ref)
    if isinstance(raw, list):
        items = [_convert(ev, action, x, source) for x in raw]
        return next((x for x in items if isinstance(x, Unknown)), items)
    return _convert(ev, action, raw, source)


def _convert(ev: Evaluator, action: _Action, raw: str, source: str) -> Any:
    """A string through the option's `type`, then its `choices`, as argparse does."""
    value: Any = raw
    if action.type is not None and not (isinstance(action.type, str)):
        try:
            value = ev.call(action.type, (raw,), {})
        except RaiseSignal:
            name = getattr(action.type, "name", "type")
            return Unknown(f"argparse: {action.label}: invalid {name} value: {raw!r} ({source})", action.ref)
    if isinstance(action.choices, (list, tuple, set, frozenset, range, dict)) and not isinstance(value, Unknown):
        try:
            ok = value in action.choices
        except TypeError:
            ok = True
        if not ok:
            return Unknown(f"argparse: {action.label}: invalid choice: {raw!r} ({source})", action.ref)
    return sourced(value, source)


_PARSER_METHODS = {
    "__init__": _init,
    "add_argument": _add_argument,
    "add_argument_group": _add_group,
    "add_mutually_exclusive_group": _add_group,
    "set_defaults": _set_defaults,
    "get_default": _get_default,
    "add_subparsers": _add_subparsers,
    "parse_args": _parse_args,
    "parse_known_args": _parse_known_args,
    "parse_intermixed_args": _parse_args,
    "parse_known_intermixed_args": _parse_known_args,
    "error": _exit,
    "exit": _exit,
    "print_help": lambda ev, a, k: None,
    "print_usage": lambda ev, a, k: None,
    "format_help": lambda ev, a, k: Unknown("argparse help text", ev.current_ref),
    "format_usage": lambda ev, a, k: Unknown("argparse usage text", ev.current_ref),
    "register": lambda ev, a, k: None,
}
