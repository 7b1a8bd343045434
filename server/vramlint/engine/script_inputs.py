"""What a training script is given: its command line, `--set` overrides, and the configuration
files of its workspace (`open(path)` + `json.load`, `tomllib.load`; YAML and OmegaConf/hydra are a
frontend's, frontends/scripts/).

A script's settings live in its argument parser's defaults and in the YAML/JSON/TOML files beside
it; the evaluator reads those files so that `cfg.train.batch_size` is the value a run would use.
Reading is confined (the one reader, `read_workspace_file`): a file is read only when it is a
regular file, at most `max-file-size` bytes, inside the script's workspace once every symlink is
resolved; FIFOs and devices are never opened. Anything else, and a malformed file, is a located
Unknown saying why, never an exception out of vramlint.

Relative paths are resolved as `python train.py` run from the script's own folder would resolve
them, then (when not found there) from the workspace root, as `python scripts/train.py` run from
the project's root would: the two ways scripts are launched.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from vramlint.engine import reads
from vramlint.engine.provenance import source_of, sourced
from vramlint.engine.source import read_source_file
from vramlint.engine.values import Args, Kwargs, NativeFunction, Unknown, Value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader
    from vramlint.engine.values import ModuleValue

# Folders that mark a project's root: the workspace is the nearest ancestor of the script holding one.
_PROJECT_MARKERS = (".git", "pyproject.toml", "vramlint.toml", "setup.py", "setup.cfg")
MAX_DATA_ITEMS = 200_000  # values of one configuration file (YAML aliases can multiply a small file)


@dataclass
class ScriptInputs:
    """The analysed script's command line and workspace (Loader.script_inputs, set per analysis)."""

    argv: tuple[str, ...] = ()  # what follows `python train.py`
    argv_source: str = ""  # "args in pyproject.toml [tool.vramlint.models.\"train.py\"]"
    # `--set key=value`, in order: applied as if given on the command line.
    overrides: tuple[tuple[str, str], ...] = ()
    root: str | None = None  # the workspace: files are read only under it
    script_dir: str | None = None
    used_overrides: set[str] = field(default_factory=set)
    consulted: bool = False  # a parser or config of the script looked at the overrides
    script: str = "train.py"  # sys.argv[0]

    def sys_argv(self) -> list[str]:
        return [self.script, *self.argv]


def workspace_root(script: str, config_file: str | None) -> str:
    """The folder files may be read from: the configuration file's folder when the script is
    under it, else the nearest ancestor holding a project marker (.git, pyproject.toml...), else
    the script's own folder."""
    script_dir = os.path.dirname(os.path.realpath(script))
    if config_file:
        base = os.path.dirname(os.path.realpath(config_file))
        if _is_under(script_dir, base):
            return base
    d = script_dir
    while True:
        if any(reads.exists(os.path.join(d, m)) for m in _PROJECT_MARKERS):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return script_dir
        d = parent


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def display_path(inputs: ScriptInputs, path: str) -> str:
    """A read file's name as the setup shows it: relative to the script's folder when it is in
    it (`conf/config.yaml`), else to the workspace's root."""
    for folder in (inputs.script_dir, inputs.root):
        if folder and _is_under(path, os.path.realpath(folder)):
            return os.path.relpath(path, os.path.realpath(folder))
    return path


def resolve_path(inputs: ScriptInputs, path: str, base: str | None = None) -> tuple[str | None, str | None]:
    """(the real path of a file the script names, None) or (None, why it is not read)."""
    if inputs.root is None:
        return None, "no workspace to read files from"
    path = os.path.expanduser(path) if path.startswith("~") else path
    if os.path.isabs(path):
        candidates = [path]
    else:
        folders = [base] if base else [inputs.script_dir, inputs.root]
        candidates = [os.path.join(f, path) for f in folders if f]
    root = os.path.realpath(inputs.root)
    shown = display_path(inputs, os.path.join(base, path)) if base else path
    why = f"{shown}: no such file in the workspace"
    for c in candidates:
        real = os.path.realpath(c)
        if not _is_under(real, root):
            why = f"{path} is outside the workspace ({inputs.root}): not read"
            continue
        reads.note_probe(c)  # a file created later must invalidate a cached "no such file"
        if os.path.lexists(c):
            return real, None
    return None, why


def read_workspace_file(ev: Evaluator, path: Any, base: str | None = None) -> tuple[str, bytes] | Unknown:
    """(the real path, the bytes) of a workspace file the script names, or a located Unknown."""
    inputs: ScriptInputs = ev.loader.script_inputs
    library = _library_caller(ev, inputs)
    if library is not None:
        return Unknown(f"file contents are not read (by a library: {library})", ev.current_ref)
    name = _path_text(path)
    if name is None:
        return path if isinstance(path, Unknown) else Unknown(
            f"a file named by a {getattr(path, 'type_name', type(path).__name__)} is not read", ev.current_ref)
    real, why = resolve_path(inputs, name, base)
    if real is None:
        return Unknown(why or "not read", ev.current_ref)
    data, problem = read_source_file(real, ev.loader.max_file_bytes)
    if data is None:
        return Unknown(f"{display_path(inputs, real)}: {problem}", ev.current_ref)
    return real, data


def _library_caller(ev: Evaluator, inputs: ScriptInputs) -> str | None:
    """The file of the library whose code asks to read a file, if it is one: only the script's
    own code (its workspace's modules) reads configuration files; a library's reads stay unknown,
    as before files were read at all, wherever the library is installed."""
    ref = ev.current_ref
    caller = os.path.realpath(ref.module.path) if ref is not None and ref.module.path else None
    if caller is None or inputs.root is None or inputs.script_dir is None:
        return None
    if not _is_under(caller, os.path.realpath(inputs.root)):
        return caller
    for folder in ev.loader.search_paths:
        real = os.path.realpath(folder)
        if _is_under(caller, real) and not _is_under(inputs.script_dir, real):
            return caller  # on an extra path or site-packages inside the workspace (a .venv)
    return None


def _path_text(path: Any) -> str | None:
    if isinstance(path, str):
        return str(path)
    to_str = getattr(path, "to_str", None)  # a pathlib value (stdlib_pathlib.PathValue)
    return to_str() if callable(to_str) and isinstance(path, Value) else None


def decode(ev: Evaluator, real: str, data: bytes) -> str | Unknown:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return Unknown(f"{display_path(ev.loader.script_inputs, real)}: not UTF-8 text (byte {err.start})",
                       ev.current_ref)


# ---------------------------------------------------------------------- parsed data, tagged
def tag_data(ev: Evaluator, data: Any, label: str | Callable[[], str],
             lines: dict[tuple[Any, ...], int] | None = None) -> Any:
    """The data of a configuration file as evaluator values, each scalar tagged with where it was
    read (`conf/train.yaml: train.batch_size (line 4)`); None past MAX_DATA_ITEMS values.
    A callable `label` is asked only for data that has a scalar to tag: locating a string parsed
    in a library (transformers' `json.loads(os.getenv("SM_FRAMEWORK_PARAMS", "{}"))`) costs the
    positions of its whole file."""
    count = [0]
    resolved: list[str] = []

    def name() -> str:
        if not resolved:
            resolved.append(label() if callable(label) else label)
        return resolved[0]

    def walk(v: Any, key: tuple[Any, ...]) -> Any:
        count[0] += 1
        if count[0] > MAX_DATA_ITEMS:
            raise _TooMany
        if isinstance(v, dict):
            return {k: walk(x, (*key, k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, (*key, i)) for i, x in enumerate(v)]
        line = lines.get(key) if lines else None
        where = ".".join(str(k) for k in key) or "(top level)"
        return sourced(v, f"{name()}: {where}" + (f" (line {line})" if line else ""))

    try:
        return walk(data, ())
    except _TooMany:
        return Unknown(f"{name()}: more than {MAX_DATA_ITEMS:,} values: not read", ev.current_ref)


class _TooMany(Exception):
    pass


# ---------------------------------------------------------------------- open()
class FileValue(Value):
    """`open(path)` of a workspace file for reading: read only when asked (`json.load(f)`, `f.read()`)."""

    __slots__ = ("path", "binary", "_text")
    type_name = "TextIOWrapper"

    def __init__(self, path: Any, binary: bool) -> None:
        self.path = path
        self.binary = binary

    def contents(self, ev: Evaluator) -> tuple[str, str | bytes] | Unknown:
        """(the file's real path, its text or bytes)."""
        got = read_workspace_file(ev, self.path)
        if isinstance(got, Unknown):
            return got
        real, data = got
        if self.binary:
            return real, data
        text = decode(ev, real, data)
        return text if isinstance(text, Unknown) else (real, text)

    def text(self, ev: Evaluator) -> Any:
        """The contents, a text tagged with the file's name (so `yaml.safe_load(f.read())` can
        say where its values were read)."""
        got = self.contents(ev)
        if isinstance(got, Unknown):
            return got
        return sourced(got[1], display_path(ev.loader.script_inputs, got[0]))

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name == "read":
            return NativeFunction("read", lambda ev2, a, k: self.text(ev2))
        if name == "readlines":
            return NativeFunction("readlines", lambda ev2, a, k: _lines(self.contents(ev2)))
        if name == "name":
            return _path_text(self.path)
        if name in ("close", "__exit__"):
            return NativeFunction(name, lambda ev2, a, k: None)
        if name == "__enter__":
            return NativeFunction(name, lambda ev2, a, k: self)
        return Unknown(f"file.{name} is not modelled", ev.current_ref)

    def enter(self, ev: Evaluator) -> Any:
        return self

    def iterate(self, ev: Evaluator) -> Any:
        return _lines(self.contents(ev))


def _lines(got: Any) -> Any:
    if isinstance(got, Unknown):
        return got
    data = got[1]
    return data.splitlines(keepends=True)


def builtin_open(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """`open(path)` / `open(path, "rb")`: a file of the workspace, read lazily; writing modes and
    anything else are unknown (nothing is ever written)."""
    path = a[0] if a else k.get("file")
    mode = a[1] if len(a) > 1 else k.get("mode", "r")
    if isinstance(path, Unknown):
        return path
    if not isinstance(mode, str) or set(mode) - set("rtb") or not mode:
        return Unknown("file contents are not read (only files opened for reading are)", ev.current_ref)
    if _path_text(path) is None:
        return Unknown("open() of a file descriptor or an unknown path", ev.current_ref)
    return FileValue(path, "b" in mode)


def file_text(ev: Evaluator, f: Any, binary_ok: bool = False) -> tuple[str, str | bytes] | Unknown:
    """(real path, contents) of what a loader was given: an open file, or (for `...loads`) a string."""
    if isinstance(f, FileValue):
        if f.binary and not binary_ok:
            return Unknown("a file opened in binary mode", ev.current_ref)
        return f.contents(ev)
    if isinstance(f, Unknown):
        return f
    return Unknown(f"reading from a {getattr(f, 'type_name', type(f).__name__)} is not modelled", ev.current_ref)


def _label(ev: Evaluator, real: str | None, text: Any = None) -> str:
    if real is None and source_of(text):  # the text of a file read with `f.read()`
        return str(source_of(text))
    if real is None:
        ref = ev.current_ref
        where = f"{os.path.basename(ref.location.path)}:{ref.location.line}" if ref is not None else "the script"
        return f"a string parsed at {where}"
    return display_path(ev.loader.script_inputs, real)


# ---------------------------------------------------------------------- json, tomllib
def _json_parse(ev: Evaluator, text: Any, real: str | None) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return text if isinstance(text, Unknown) else Unknown("json of a non-string", ev.current_ref)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        where = f" (line {err.lineno})" if isinstance(err, json.JSONDecodeError) else ""
        msg = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply"
        return Unknown(f"{_label(ev, real, text)}: malformed JSON: {msg}{where}", ev.current_ref)
    return tag_data(ev, data, partial(_label, ev, real, text))


def _toml_parse(ev: Evaluator, text: Any, real: str | None) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return Unknown(f"{_label(ev, real)}: not UTF-8 text", ev.current_ref)
    if not isinstance(text, str):
        return text if isinstance(text, Unknown) else Unknown("tomllib of a non-string", ev.current_ref)
    label = _label(ev, real, text)
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as err:
        return Unknown(f"{label}: malformed TOML: {err}", ev.current_ref)
    return tag_data(ev, data, label)


def loader_functions(name: str, parse: Any, binary: bool) -> dict[str, NativeFunction]:
    """`load(f)` and `loads(s)` of a parser `parse(ev, text, real path or None)`."""

    def load(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        got = file_text(ev, a[0] if a else k.get("fp"), binary_ok=binary)
        return got if isinstance(got, Unknown) else parse(ev, got[1], got[0])

    def loads(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return parse(ev, a[0] if a else k.get("s"), None)

    return {"load": NativeFunction(f"{name}.load", load), "loads": NativeFunction(f"{name}.loads", loads)}


def json_module(loader: Loader) -> ModuleValue:
    from vramlint.engine.builtins import NoOp, _module

    ns: dict[str, Any] = loader_functions("json", _json_parse, binary=True)
    ns["dump"] = NoOp("json.dump")  # writing: nothing is written
    ns["dumps"] = NativeFunction("json.dumps", lambda ev, a, k: Unknown("json.dumps() text", ev.current_ref))
    ns["JSONDecodeError"] = loader.builtins["ValueError"]
    return _module("json", ns)


def tomllib_module(loader: Loader, name: str) -> ModuleValue:
    from vramlint.engine.builtins import _module

    ns: dict[str, Any] = loader_functions(name, _toml_parse, binary=True)
    ns["TOMLDecodeError"] = loader.builtins["ValueError"]
    return _module(name, ns)


def override_for(inputs: ScriptInputs, *names: str) -> tuple[str, str] | None:
    """The last `--set` whose key is one of `names` (spelled with `-` or `_`, with or without
    leading dashes): (its text, the value). Marks it used."""
    inputs.consulted = True
    wanted = {n.lstrip("-").replace("-", "_") for n in names if n}
    for key, value in reversed(inputs.overrides):
        if key.lstrip("-").replace("-", "_") in wanted:
            inputs.used_overrides.add(key)
            return f"--set {key}={value}", value
    return None


# ---------------------------------------------------------------------- a script's entry point
class ScriptEntry(Value):
    """A function wrapped by a command-line framework (a click command, a hydra task): what a bare
    `main()` of the script runs, and with which arguments, so that the analysis runs that function
    keeping its locals (its models), as for a plain `main()`."""

    __slots__ = ()

    def entry_function(self, ev: Evaluator) -> Any:
        raise NotImplementedError

    def entry_arguments(self, ev: Evaluator) -> tuple[tuple[Any, ...], dict[str, Any]]:
        raise NotImplementedError


class EntryRunner(NativeFunction):
    """A library function that runs the function it is given with the command line's values
    (`fire.Fire(main)`, `typer.run(main)`): `arguments(ev, fn)` says with which."""

    __slots__ = ("arguments",)

    def __init__(self, name: str, impl: Any, arguments: Any) -> None:
        super().__init__(name, impl)
        self.arguments = arguments


@dataclass
class EntryPoint:
    func: Any  # the FunctionValue that runs
    arguments: Any  # (ev) -> (args, kwargs)


def entry_point(ev: Evaluator, call: Any, ns: dict[str, Any]) -> EntryPoint | None:
    """The function a script's `main()` / `app()` / `fire.Fire(main)` statement runs, when a
    command-line framework wraps it (see ScriptEntry, EntryRunner)."""
    import libcst as cst

    from vramlint.engine.values import FunctionValue, LazyBinding, ModuleValue

    def value(name: str, where: dict[str, Any]) -> Any:
        v = where.get(name)
        return ev.force(v) if type(v) is LazyBinding else v

    if not isinstance(call, cst.Call):
        return None
    head = call.func
    if isinstance(head, cst.Name) and not call.args:
        v = value(head.value, ns)
        fn = v.entry_function(ev) if isinstance(v, ScriptEntry) else None
        return EntryPoint(fn, v.entry_arguments) if isinstance(fn, FunctionValue) else None
    if len(call.args) != 1 or call.args[0].keyword is not None or not isinstance(call.args[0].value, cst.Name):
        return None
    runner = value(head.value, ns) if isinstance(head, cst.Name) else None
    if isinstance(head, cst.Attribute) and isinstance(head.value, cst.Name):
        mod = value(head.value.value, ns)
        runner = value(head.attr.value, mod.ns) if isinstance(mod, ModuleValue) else None
    fn = value(call.args[0].value.value, ns)
    if isinstance(runner, EntryRunner) and isinstance(fn, FunctionValue):
        return EntryPoint(fn, lambda ev2: runner.arguments(ev2, fn))
    return None
