"""Command-line apps built from functions and dataclasses: `click`, `typer`, `fire`, `tyro`.

Each runs the script's function as the command line would: with its options' defaults (click's
`default=`, typer's `typer.Option(128)` or the parameter's default, fire's and tyro's parameter
defaults, a dataclass's field defaults), replaced by the script's `args` (`--batch-size 256`) and
the `--set name=value` overrides; each value tagged with where it came from ("click option
--batch-size at train.py:9"). A required option nobody gives is an Unknown saying so.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.provenance import place, sourced
from vramlint.engine.script_inputs import EntryRunner, ScriptEntry, override_for
from vramlint.engine.signals import RaiseSignal
from vramlint.engine.values import (
    MISSING,
    Args,
    ClassValue,
    FunctionValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    SourceRef,
    Unknown,
    Value,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


@dataclass
class CliParam:
    name: str  # the function's parameter
    decls: tuple[str, ...] = ()  # "--batch-size", "-b"
    default: Any = MISSING
    type: Any = None  # a converter the evaluator calls on a string, or None (the default's type)
    is_flag: bool = False
    multiple: bool = False
    required: bool = False
    positional: bool = False
    source: str = ""  # "click option --batch-size at train.py:9"
    ref: SourceRef | None = None
    literal: bool = False  # fire: command-line values are Python literals


def _where(ev: Evaluator, ref: SourceRef | None = None) -> str:
    return place(ref or ev.current_ref, statement=False)


# ---------------------------------------------------------------------- values of parameters
def _from_argv(ev: Evaluator, p: CliParam, positionals: list[str]) -> tuple[Any, str] | None:
    """(raw value, source) from the script's `args`, if they give this parameter."""
    inputs = ev.loader.script_inputs
    argv = list(inputs.argv)
    names = p.decls or (f"--{p.name}", f"--{p.name.replace('_', '-')}")
    if p.positional:
        return (positionals.pop(0), f"{p.name} from {inputs.argv_source}") if positionals else None
    found: list[str] = []
    for i, arg in enumerate(argv):
        key, eq, value = arg.partition("=")
        if key in names:
            if p.is_flag and not eq:
                found.append("true")
            elif eq:
                found.append(value)
            elif i + 1 < len(argv):
                found.append(argv[i + 1])
        elif p.is_flag and key in {"--no-" + n.lstrip("-") for n in names}:
            found.append("false")
    if not found:
        return None
    raw: Any = found if p.multiple else found[-1]
    return raw, f"{names[0]} {' '.join(found)} ({inputs.argv_source})"


def _positionals(ev: Evaluator, params: list[CliParam]) -> list[str]:
    """The script's `args` that are not options or their values (best effort: an option takes one value)."""
    argv = list(ev.loader.script_inputs.argv)
    flags = {d for p in params if p.is_flag for d in p.decls}
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-"):
            i += 1 if ("=" in a or a in flags) else 2
            continue
        out.append(a)
        i += 1
    return out


def _convert(ev: Evaluator, p: CliParam, raw: Any, source: str) -> Any:
    if isinstance(raw, list):
        return [_convert(ev, p, x, source) for x in raw]
    if not isinstance(raw, str):
        return sourced(raw, source)
    if p.is_flag or isinstance(p.default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on", "y")
    conv = p.type
    if conv is None and p.literal:
        try:
            return sourced(ast.literal_eval(raw), source)
        except (ValueError, SyntaxError):
            return sourced(raw, source)
    if conv is None and isinstance(p.default, (int, float)):
        conv = ev.loader.builtins["float" if isinstance(p.default, float) else "int"]
    if conv is None:
        return sourced(raw, source)
    try:
        return sourced(ev.call(conv, (raw,), {}), source)
    except RaiseSignal:
        return Unknown(f"{p.name}: invalid value {raw!r} ({source})", p.ref or ev.current_ref)


def param_value(ev: Evaluator, p: CliParam, positionals: list[str]) -> Any:
    override = override_for(ev.loader.script_inputs, p.name, *p.decls)
    if override is not None:
        text, raw = override
        return _convert(ev, p, [raw] if p.multiple else raw, text)
    got = _from_argv(ev, p, positionals)
    if got is not None:
        return _convert(ev, p, got[0], got[1])
    if p.default is MISSING or (p.required and p.default is None):
        if p.required or p.default is MISSING:
            return Unknown(f"{p.source or p.name}: required and the script is given no value for it (give it with "
                           f"`args = [...]` in the configuration, or --set {p.name}=VALUE)", p.ref or ev.current_ref)
        return None
    if isinstance(p.default, str) and p.type is not None:
        return _convert(ev, p, p.default, p.source)
    if isinstance(p.default, (list, tuple)):
        return type(p.default)(sourced(x, p.source) for x in p.default)
    return sourced(p.default, p.source)


def param_values(ev: Evaluator, params: list[CliParam]) -> dict[str, Any]:
    positionals = _positionals(ev, params)
    return {p.name: param_value(ev, p, positionals) for p in params}


def run_with(ev: Evaluator, func: Any, params: list[CliParam]) -> Any:
    return ev.call(func, (), param_values(ev, params))


# ---------------------------------------------------------------------- a function's signature
def _annotation_type(ev: Evaluator, annotation: cst.Annotation | None) -> Any:
    """int/float/str of `x: int`, `Annotated[int, ...]`, `Optional[int]`; None otherwise."""
    node: Any = annotation.annotation if annotation is not None else None
    while isinstance(node, cst.Subscript) and node.slice:
        node = node.slice[0].slice.value if isinstance(node.slice[0].slice, cst.Index) else None
    if isinstance(node, cst.Name) and node.value in ("int", "float", "str"):
        return ev.loader.builtins[node.value]
    return None


def signature_params(ev: Evaluator, fn: FunctionValue, kind: str, literal: bool = False) -> list[CliParam]:
    """Parameters of a function as a CLI's options: typer's `typer.Option(...)` defaults unwrapped."""
    out: list[CliParam] = []
    node = fn.node
    if not isinstance(node, cst.FunctionDef):
        return out
    for prm in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params):
        name = prm.name.value
        ref = SourceRef(fn.module, prm)
        default = fn.defaults.get(name, MISSING)
        p = CliParam(name, default=default, type=_annotation_type(ev, prm.annotation), ref=ref, literal=literal,
                     source=f"{kind} default of {name} at {_where(ev, ref)}")
        if isinstance(default, TyperParam):
            p.default = MISSING if default.default is Ellipsis else default.default
            p.decls = tuple(d for d in default.decls if d.startswith("-"))
            p.positional = default.kind == "argument"
            p.source = f"typer {default.kind} {p.decls[0] if p.decls else name} at {default.where}"
            p.required = p.default is MISSING
        p.is_flag = isinstance(p.default, bool)
        out.append(p)
    return out


# ---------------------------------------------------------------------- click
class CliCommand(ScriptEntry):
    """A function under `@click.command()` / `@click.option(...)`: calling it runs the function with
    its options' values."""

    __slots__ = ("func", "params", "pass_context", "commands")
    type_name = "Command"

    def __init__(self, func: Any) -> None:
        self.func = func
        self.params: list[CliParam] = []
        self.pass_context = False
        self.commands: dict[str, Any] | None = None  # a group's

    def entry_function(self, ev: Evaluator) -> Any:
        return self.func

    def entry_arguments(self, ev: Evaluator) -> tuple[tuple[Any, ...], dict[str, Any]]:
        from vramlint.engine.builtins import NoOp

        leading = (NoOp("click.Context", chain=True),) if self.pass_context else ()
        return leading, param_values(ev, self.params)

    def call(self, ev: Evaluator, args: Args, kwargs: Kwargs) -> Any:
        if args or kwargs:
            return ev.call(self.func, args, kwargs)
        result = ev.call(self.func, *self.entry_arguments(ev))
        if self.commands:
            argv = [a for a in ev.loader.script_inputs.argv if not a.startswith("-")]
            chosen = self.commands.get(argv[0]) if argv else None
            if chosen is not None:
                return ev.call(chosen, (), {})
        return result

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name in ("command", "group") and self.commands is not None:
            return NativeFunction(f"group.{name}", lambda ev2, a, k: NativeFunction(
                "group.command()", lambda ev3, a3, k3: self._add(ev3, a3[0], a, k)),
                lambda ev2, v, a, k: self._add(ev2, v, a, k))
        if name == "add_command":
            return NativeFunction("add_command", lambda ev2, a, k: self._add(ev2, a[0], a[1:], k, made=True))
        if name in ("main", "__call__"):
            return NativeFunction(name, lambda ev2, a, k: self.call(ev2, (), {}))
        return ev.protocol.getattr(self.func, name)

    def _add(self, ev: Evaluator, fn: Any, a: Args, k: Kwargs, made: bool = False) -> Any:
        cmd = fn if made else _command_of(fn)
        name = a[0] if a and isinstance(a[0], str) else k.get("name")
        if not isinstance(name, str):
            f = cmd.func if isinstance(cmd, CliCommand) else cmd
            name = getattr(f, "name", "command").replace("_", "-")
        if self.commands is not None:
            self.commands[name] = cmd
        return cmd


def _command_of(fn: Any) -> Any:
    return fn if isinstance(fn, CliCommand) else CliCommand(fn) if isinstance(fn, FunctionValue) else fn


def _click_name(decls: tuple[str, ...]) -> str:
    bare = [d for d in decls if not d.startswith("-")]
    if bare:
        return bare[0]
    longs = sorted((d.split("/")[0] for d in decls if d.startswith("--")), key=len, reverse=True)
    chosen = longs[0] if longs else decls[0].split("/")[0]
    return chosen.lstrip("-").replace("-", "_").lower()


def _click_param(ev: Evaluator, a: Args, k: Kwargs, kind: str) -> CliParam | Unknown:
    decls = tuple(x for x in a if isinstance(x, str))
    if not decls or len(decls) != len(a):
        return Unknown(f"click.{kind}() with names that are not known strings", ev.current_ref)
    slashed = any("/" in d for d in decls)
    flags = tuple(part for d in decls for part in d.split("/") if part.startswith("-"))
    default = k.get("default", MISSING)
    is_flag = bool(k.get("is_flag")) or slashed or isinstance(default, bool)
    if is_flag and default is MISSING:
        default = False
    required = bool(k.get("required", kind == "argument" and default is MISSING))
    if default is MISSING and not required:
        default = None
    shown = flags[0] if flags else decls[0]
    return CliParam(_click_name(decls), flags, default, _click_type(k.get("type")), is_flag, bool(k.get("multiple")),
                    required, kind == "argument", f"click {kind} {shown} at {_where(ev)}", ev.current_ref)


def _click_type(t: Any) -> Any:
    return None if t is None or isinstance(t, ClickType) and t.convert is None else (
        t.convert if isinstance(t, ClickType) else t)


class ClickType(Value):
    """click.Choice / IntRange / Path...: how a string becomes the value (None: as it is)."""

    __slots__ = ("convert",)

    def __init__(self, convert: Any) -> None:
        self.convert = convert


def _decorator_ref(func: Any, first: Any) -> SourceRef | None:
    """The `@click.option("--batch-size", ...)` line of a function (decorators run without a
    current expression): the decorator whose first argument is `first`."""
    node = getattr(func, "node", None)
    for dec in getattr(node, "decorators", ()):
        call = dec.decorator
        if isinstance(call, cst.Call) and call.args and isinstance(call.args[0].value, cst.SimpleString) \
                and call.args[0].value.evaluated_value == first:
            return SourceRef(func.module, dec)
    return None


def _param_decorator(kind: str) -> NativeFunction:
    def decorate(ev: Evaluator, fn: Any, a: Args, k: Kwargs) -> Any:
        cmd = _command_of(fn)
        saved = ev.current_ref
        ref = _decorator_ref(cmd.func if isinstance(cmd, CliCommand) else fn, a[0] if a else None)
        ev.current_ref = ref or saved
        try:
            p = _click_param(ev, a, k, kind)
        finally:
            ev.current_ref = saved
        if isinstance(cmd, CliCommand) and isinstance(p, CliParam):
            cmd.params.insert(0, p)
        return cmd

    return NativeFunction(f"click.{kind}", lambda ev, a, k: NativeFunction(
        f"click.{kind}()", lambda ev2, a2, k2: decorate(ev2, a2[0], a, k)), decorate)


def _command_decorator(group: bool) -> NativeFunction:
    def decorate(ev: Evaluator, fn: Any, a: Args, k: Kwargs) -> Any:
        cmd = _command_of(fn)
        if group and isinstance(cmd, CliCommand):
            cmd.commands = {}
        return cmd

    name = "click.group" if group else "click.command"
    return NativeFunction(name, lambda ev, a, k: (decorate(ev, a[0], (), {}) if len(a) == 1 and isinstance(
        a[0], FunctionValue) else NativeFunction(f"{name}()", lambda ev2, a2, k2: decorate(ev2, a2[0], a, k))),
        decorate)


def _pass_context(ev: Evaluator, fn: Any, a: Args, k: Kwargs) -> Any:
    cmd = _command_of(fn)
    if isinstance(cmd, CliCommand):
        cmd.pass_context = True
    return cmd


def click_module(loader: Loader, name: str) -> ModuleValue | None:
    if name not in ("click", "click.types"):
        return None
    from vramlint.engine.builtins import NoOp, _module

    b = loader.builtins
    as_is = ClickType(None)
    ns: dict[str, Any] = {
        "command": _command_decorator(False), "group": _command_decorator(True),
        "option": _param_decorator("option"), "argument": _param_decorator("argument"),
        "pass_context": NativeFunction("click.pass_context", lambda ev, a, k: _pass_context(ev, a[0], (), {}),
                                       _pass_context),
        "Choice": NativeFunction("click.Choice", lambda ev, a, k: as_is),
        "Path": NativeFunction("click.Path", lambda ev, a, k: as_is),
        "IntRange": NativeFunction("click.IntRange", lambda ev, a, k: ClickType(b["int"])),
        "FloatRange": NativeFunction("click.FloatRange", lambda ev, a, k: ClickType(b["float"])),
        "INT": ClickType(b["int"]), "FLOAT": ClickType(b["float"]), "STRING": as_is, "BOOL": ClickType(b["bool"]),
        "echo": NativeFunction("click.echo", lambda ev, a, k: None), "secho": NativeFunction("click.secho", lambda ev, a, k: None),
        "Context": NoOp("click.Context", chain=True),
    }
    return _module(name, ns)


# ---------------------------------------------------------------------- typer
class TyperParam(Value):
    """typer.Option(128, "--batch-size") / typer.Argument(...) as a parameter's default."""

    __slots__ = ("default", "decls", "kind", "where")

    def __init__(self, default: Any, decls: tuple[str, ...], kind: str, where: str) -> None:
        self.default = default
        self.decls = decls
        self.kind = kind
        self.where = where


def _typer_param(kind: str) -> NativeFunction:
    def make(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        default = a[0] if a else k.get("default", Ellipsis)
        if "default_factory" in k:
            default = ev.call(k["default_factory"], (), {})
        decls = tuple(x for x in a[1:] if isinstance(x, str))
        return TyperParam(default, decls, kind, _where(ev))

    return NativeFunction(f"typer.{kind.capitalize()}", make)


@dataclass
class _TyperApp:
    commands: list[Any] = field(default_factory=list)


class TyperApp(ScriptEntry):
    __slots__ = ("app",)
    type_name = "Typer"

    def __init__(self) -> None:
        self.app = _TyperApp()

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name == "command":
            return NativeFunction("Typer.command", lambda ev2, a, k: NativeFunction(
                "Typer.command()", lambda ev3, a3, k3: self._add(a3[0]), lambda ev3, v, a3, k3: self._add(v)),
                lambda ev2, v, a, k: self._add(v))
        if name == "callback":
            return NativeFunction("Typer.callback", lambda ev2, a, k: NativeFunction(
                "Typer.callback()", lambda ev3, a3, k3: a3[0], lambda ev3, v, a3, k3: v), lambda ev2, v, a, k: v)
        if name == "add_typer":
            return NativeFunction("Typer.add_typer", lambda ev2, a, k: None)
        return Unknown(f"Typer.{name} is not modelled", ev.current_ref)

    def _add(self, fn: Any) -> Any:
        self.app.commands.append(fn)
        return fn

    def entry_function(self, ev: Evaluator) -> Any:
        commands = self.app.commands
        argv = [a for a in ev.loader.script_inputs.argv if not a.startswith("-")]
        return commands[0] if len(commands) == 1 else next(
            (c for c in commands if isinstance(c, FunctionValue) and argv and c.name.replace("_", "-") == argv[0]), None)

    def entry_arguments(self, ev: Evaluator) -> tuple[tuple[Any, ...], dict[str, Any]]:
        fn = self.entry_function(ev)
        return (), param_values(ev, signature_params(ev, fn, "typer")) if isinstance(fn, FunctionValue) else {}

    def call(self, ev: Evaluator, args: Args, kwargs: Kwargs) -> Any:
        chosen = self.entry_function(ev)
        if chosen is None:
            return Unknown("typer app: which command runs is not given (`args = [\"COMMAND\"]` in the configuration)",
                           ev.current_ref)
        return _run_function(ev, chosen, "typer")


def _run_function(ev: Evaluator, fn: Any, kind: str, literal: bool = False) -> Any:
    if isinstance(fn, FunctionValue):
        return run_with(ev, fn, signature_params(ev, fn, kind, literal))
    if isinstance(fn, ClassValue):
        if "dataclass" in fn.flags:
            return dataclass_from_cli(ev, fn, kind)
        init, _ = fn.lookup("__init__")
        if isinstance(init, FunctionValue):
            params = signature_params(ev, init, kind, literal)[1:]
            return run_with(ev, fn, params)
        return ev.call(fn, (), {})
    if isinstance(fn, Unknown):
        return fn
    return Unknown(f"{kind} of a {getattr(fn, 'type_name', type(fn).__name__)} is not modelled", ev.current_ref)


def _arguments(kind: str, literal: bool = False) -> Any:
    def arguments(ev: Evaluator, fn: FunctionValue) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (), param_values(ev, signature_params(ev, fn, kind, literal))

    return arguments


def _runner(name: str, kind: str) -> EntryRunner:
    """`typer.run(main)`, `tyro.cli(main)`: main called with its options' values."""
    return EntryRunner(name, lambda ev, a, k: _run_function(ev, a[0] if a else None, kind), _arguments(kind))


def typer_module(loader: Loader, name: str) -> ModuleValue | None:
    if name != "typer":
        return None
    from vramlint.engine.builtins import NoOp, _module

    return _module(name, {
        "Typer": NativeFunction("typer.Typer", lambda ev, a, k: TyperApp()),
        "run": _runner("typer.run", "typer"),
        "Option": _typer_param("option"), "Argument": _typer_param("argument"),
        "echo": NativeFunction("typer.echo", lambda ev, a, k: None), "Context": NoOp("typer.Context", chain=True),
        "Exit": loader.builtins["Exception"],
    })


# ---------------------------------------------------------------------- fire, tyro, dataclasses
def fire_module(loader: Loader, name: str) -> ModuleValue | None:
    if name != "fire":
        return None
    from vramlint.engine.builtins import _module

    def fire(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        component = a[0] if a else k.get("component")
        if component is None:
            return Unknown("fire.Fire() of the whole module is not modelled", ev.current_ref)
        if isinstance(component, (dict, Instance)):
            return component
        return _run_function(ev, component, "fire", literal=True)

    return _module(name, {"Fire": EntryRunner("fire.Fire", fire, _arguments("fire", literal=True))})


def _field_line(cls: ClassValue, name: str) -> str:
    node = cls.ref.node if cls.ref is not None else None
    body = getattr(getattr(node, "body", None), "body", ())
    for stmt in body:
        for small in getattr(stmt, "body", ()):
            if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.target.value == name:
                assert cls.ref is not None
                loc = SourceRef(cls.ref.module, small).location
                return f"{os.path.basename(loc.path)}:{loc.line}"
    return "?"


def dataclass_from_cli(ev: Evaluator, cls: ClassValue, kind: str, prefix: str = "") -> Any:
    """An instance of a dataclass as a dataclass CLI makes it: field defaults, `--set field=value`
    (`--set train.batch_size=...` for a nested one) and `--field value` in the script's args."""
    try:
        inst = ev.protocol.instantiate(cls, (), {})
    except RaiseSignal as sig:
        return ev.exception_unknown(sig, None, None)
    return _retag(ev, inst, kind, prefix) if isinstance(inst, Instance) else inst


def _retag(ev: Evaluator, inst: Instance, kind: str, prefix: str) -> Instance:
    """A dataclass instance's fields (nested ones too), tagged and overridden in place."""
    for n, _ in inst.cls.ns.get("__dataclass_fields__", []):
        v = inst.attrs.get(n, MISSING)
        if v is MISSING or isinstance(v, Unknown):
            continue
        if isinstance(v, Instance) and "dataclass" in v.cls.flags:
            _retag(ev, v, kind, f"{prefix}{n}.")
            continue
        p = CliParam(f"{prefix}{n}", (f"--{prefix}{n}", f"--{prefix}{n}".replace("_", "-")), v,
                     source=f"{kind} default of {inst.cls.name}.{n} at {_field_line(inst.cls, n)}")
        p.is_flag = isinstance(v, bool)
        inst.attrs[n] = param_value(ev, p, [])
    return inst


def tyro_module(loader: Loader, name: str) -> ModuleValue | None:
    if name not in ("tyro", "simple_parsing"):
        return None
    from vramlint.engine.builtins import _module

    if name == "tyro":
        return _module(name, {"cli": _runner("tyro.cli", "tyro")})
    return _module(name, simple_parsing_ns(loader))


def simple_parsing_ns(loader: Loader) -> dict[str, Any]:
    """simple_parsing: `parse(Config)`, and its ArgumentParser (argparse's, plus `add_arguments(Cls,
    dest=...)`, whose dataclass instance parse_args puts at `dest`)."""
    base = loader.import_module("argparse", None)
    parser_cls = loader.protocol.getattr(base, "ArgumentParser") if isinstance(base, ModuleValue) else None

    def add_arguments(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        self, cls = a[0], a[1] if len(a) > 1 else k.get("dataclass")
        dest = a[2] if len(a) > 2 else k.get("dest", getattr(cls, "name", "config").lower())
        if isinstance(self, Instance):
            self.attrs.setdefault("__vramlint_dataclasses__", []).append((dest, cls))
        return None

    def parse_args(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        assert isinstance(parser_cls, ClassValue)
        base_parse = parser_cls.ns["parse_args"]
        ns = ev.call(base_parse, a, k)
        self = a[0]
        if isinstance(ns, Instance) and isinstance(self, Instance):
            for dest, cls in self.attrs.get("__vramlint_dataclasses__", []):
                ns.attrs[dest] = dataclass_from_cli(ev, cls, "simple_parsing") if isinstance(cls, ClassValue) else cls
        return ns

    ns: dict[str, Any] = {"parse": NativeFunction("simple_parsing.parse", lambda ev, a, k: _run_function(
        ev, a[0] if a else k.get("config_class"), "simple_parsing"))}
    if isinstance(parser_cls, ClassValue):
        ns["ArgumentParser"] = ClassValue("ArgumentParser", (parser_cls,), {
            "add_arguments": NativeFunction("add_arguments", add_arguments),
            "parse_args": NativeFunction("parse_args", parse_args)}, "simple_parsing")
    ns["field"] = loader.protocol.getattr(loader.import_module("dataclasses", None), "field")
    return ns
