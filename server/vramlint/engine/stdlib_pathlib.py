"""`pathlib` as pure paths: what code computes from a path's text (`Path(cfg).suffix == ".yaml"`,
`Path(__file__).parent / "configs"`, `.stem` as a model name) is exact; anything that would ask
the file system (`exists()`, `glob()`...) is an unknown, since vramlint never lists or stats what
analysed code names; `read_text()` and `open()` read a configuration file of the workspace as
`open()` does (engine/script_inputs.py).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, Kwargs, NativeFunction, Unknown, Value

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader
    from vramlint.engine.values import ModuleValue

_TEXT_ATTRS = ("name", "stem", "suffix", "anchor", "root", "drive")
_PURE_METHODS = ("as_posix", "is_absolute", "is_relative_to", "match", "with_name", "with_stem", "with_suffix",
                 "relative_to", "joinpath", "is_reserved")


class PathValue(Value):
    __slots__ = ("path",)
    type_name = "PosixPath"

    def __init__(self, path: PurePosixPath) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"PosixPath({str(self.path)!r})"

    def to_str(self) -> str:
        return str(self.path)

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name in _TEXT_ATTRS:
            return getattr(self.path, name)
        if name == "suffixes":
            return list(self.path.suffixes)
        if name == "parts":
            return tuple(self.path.parts)
        if name == "parent":
            return PathValue(self.path.parent)
        if name == "parents":
            return tuple(PathValue(p) for p in self.path.parents)
        if name in _PURE_METHODS:
            return NativeFunction(f"Path.{name}", lambda ev2, a, k: _pure_call(ev2, self, name, a, k))
        if name in ("open", "read_text", "read_bytes"):  # a workspace file (engine/script_inputs.py)
            return NativeFunction(f"Path.{name}", lambda ev2, a, k: _read(ev2, self, name, a, k))
        return NativeFunction(f"Path.{name}", lambda ev2, a, k: Unknown(
            f"Path.{name}(): the file system is not read", ev2.current_ref))

    def compare(self, ev: Evaluator, dunder: str, other: Any) -> Any:
        if isinstance(other, Unknown):
            return other
        if dunder in ("__eq__", "__ne__"):  # a path never equals a string, as in CPython
            same = isinstance(other, PathValue) and self.path == other.path
            return same if dunder == "__eq__" else not same
        return NotImplemented

    def binop(self, ev: Evaluator, op: str, other: Any, reflected: bool) -> Any:
        if op not in ("truediv", "itruediv"):
            return NotImplemented
        if isinstance(other, Unknown):
            return other
        o = _as_path(other)
        if o is None:
            return NotImplemented
        return PathValue(o / self.path if reflected else self.path / o)


def _read(ev: Evaluator, p: PathValue, name: str, a: Args, k: Kwargs) -> Any:
    from vramlint.engine.script_inputs import FileValue, builtin_open

    if name == "open":
        return builtin_open(ev, (p, *a), k)
    f = FileValue(p, binary=name == "read_bytes")
    if name == "read_text":
        return f.text(ev)
    got = f.contents(ev)
    return got if isinstance(got, Unknown) else got[1]


def _as_path(v: Any) -> PurePosixPath | None:
    if isinstance(v, PathValue):
        return v.path
    if isinstance(v, str):
        return PurePosixPath(v)
    return None


def _pure_call(ev: Evaluator, p: PathValue, name: str, a: Args, k: Kwargs) -> Any:
    args = []
    for x in (*a, *k.values()):
        if isinstance(x, Unknown):
            return x
    for x in a:
        args.append(str(x.path) if isinstance(x, PathValue) else x)
    try:
        r = getattr(p.path, name)(*args, **k)
    except (ValueError, TypeError) as err:
        raise ev.raise_error(type(err).__name__, str(err)) from None
    return PathValue(r) if isinstance(r, PurePosixPath) else r


def _make_path(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    parts = []
    for x in a:
        if isinstance(x, Unknown):
            return x
        p = _as_path(x)
        if p is None:
            return Unknown(f"Path() of a {getattr(x, 'type_name', type(x).__name__)}", ev.current_ref)
        parts.append(p)
    return PathValue(PurePosixPath(*parts))


def pathlib_module(loader: Loader) -> ModuleValue:
    from vramlint.engine.builtins import _module

    make = NativeFunction("pathlib.Path", _make_path)
    ns: dict[str, Any] = {name: make for name in ("Path", "PurePath", "PosixPath", "PurePosixPath")}
    return _module("pathlib", ns)
