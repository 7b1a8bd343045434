"""What `from module import *` binds, read from the module's source without running it.

Star imports bind lazily, like every module-level import here: each exported name is bound to
a LazyBinding that imports it on first use. Where the module only re-exports a name it imported
itself (`from .functional import InterpolationMode`), the binding points straight at the origin,
so a package `__init__` made of star imports (torchvision.transforms, transformers' models
table) costs a scan, not the evaluation of every submodule.

The scan takes the static view of a type checker: `if TYPE_CHECKING:` blocks are taken (the
evaluator's `typing.TYPE_CHECKING` is True for the same reason); other conditional blocks
contribute the names of all their branches.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vramlint.engine.loader import Loader


@dataclass(frozen=True)
class Export:
    name: str  # the name `import *` binds
    module: str  # where to import it from
    attr: str  # its name there


# `__all__ = [...]` of plain strings, read without parsing the whole (possibly large) file,
# and the one-line top-level `from x import a, b as c` that may re-export some of its names.
# Both are linear in the text: no two parts of a pattern can match the same characters, so a
# failed match never rescans (`[\w, ]+?\s*` on a line of 20,000 spaces took 28 s).
_ALL_START = re.compile(r"^__all__[ \t]*=[ \t]*([\[(])", re.M)
_FROM_LINE = re.compile(r"^from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+([^\n#]*)(?:#[^\n]*)?$", re.M)
_NAMES = re.compile(r"[\w, \t]+")


def _line_starts(text: str, word: str) -> Iterator[int]:
    """The offsets where a line of `text` starts with `word`, in order: where `^word` can match
    with re.M, found by str.find (a regex tries every line start: `__all__` is near the end of a
    4,000-line modeling file, and transformers' models table scans 2,000 files)."""
    i = 0 if text.startswith(word) else text.find("\n" + word) + 1
    if i == 0 and not text.startswith(word):
        return
    while True:
        yield i
        i = text.find("\n" + word, i) + 1
        if i == 0:
            return


def _all_literal(text: str) -> str | None:
    """The text of the first top-level `__all__ = [...]` / `(...)` (up to the first closing
    bracket, as the literal of plain strings it must be), or None."""
    m = next((m for i in _line_starts(text, "__all__") if (m := _ALL_START.match(text, i))), None)
    if m is None:
        return None
    end = text.find("]" if m.group(1) == "[" else ")", m.end())
    return None if end < 0 else text[m.start(1):end + 1]


def scan_exports(loader: Loader, dotted: str, active: set[str] | None = None) -> list[Export] | None:
    """The names `from dotted import *` binds, or None if they cannot be read from source."""
    cache: dict[str, list[Export] | None] = loader.export_cache
    if dotted in cache:
        return cache[dotted]
    active = set() if active is None else active
    if dotted in active:
        return []  # a cycle of star imports: the names come from the other side
    active.add(dotted)
    try:
        result = _scan(loader, dotted, active)
    finally:
        active.discard(dotted)
    cache[dotted] = result
    return result


def _scan(loader: Loader, dotted: str, active: set[str]) -> list[Export] | None:
    path, is_pkg = loader.find_module_file(dotted)
    if path is None or not path.endswith(".py"):
        return None
    text, _ = loader.read_text(path)
    if text is None:
        return None
    fast = _all_literal(text)
    if fast is not None and "__all__ +=" not in text and "__all__.extend" not in text:
        try:
            names = ast.literal_eval(fast)
        except (ValueError, SyntaxError):
            names = None
        if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
            origins = _reexports(text, dotted if is_pkg else dotted.rpartition(".")[0])
            return [Export(n, *origins[n]) if n in origins else Export(n, dotted, n) for n in names]
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    package = dotted if is_pkg else dotted.rpartition(".")[0]
    scanner = _Scanner(loader, dotted, package, active)
    scanner.block(tree.body)
    if scanner.all_names is not None:
        chosen = scanner.all_names
    else:
        chosen = [n for n in scanner.names if not n.startswith("_")]
    return [Export(n, *scanner.origins[n]) if n in scanner.origins else Export(n, dotted, n) for n in chosen]


# A top-level decorator without arguments right before a definition: `@register_model`.
# `@register_model()` too (a call on one line): its call makes the decorator.
_BARE_DECORATOR = re.compile(r"^@([A-Za-z_]\w*)(\([^\n]*\))?[ \t]*(?:#[^\n]*)?\n(?:@[^\n]*\n)*(?:def|class|async)[ \t]",
                             re.M)


def registering_decorators(loader: Loader, dotted: str) -> dict[str, str]:
    """The decorators by which importing `dotted` registers something as it runs, by the name the
    module uses -> their qualified name: each decorates a top-level definition, is imported from
    another module and records its argument (timm's `@register_model`, torchvision's
    `@register_model()`, whose call makes such a decorator). `from .resnet import *` must then run
    the module, as Python does, or `create_model("resnet50")` finds an empty registry, unless a
    frontend declares the registry lazy (engine/registrations.py). (Only the decorators' own
    modules are evaluated to decide.)"""
    cache: dict[str, dict[str, str]] = loader.registers_cache
    if dotted in cache:
        return cache[dotted]
    cache[dotted] = {}  # a cycle: decided by the outer call
    path, is_pkg = loader.find_module_file(dotted)
    text = loader.read_text(path)[0] if path is not None and path.endswith(".py") else None
    found: dict[str, str] = {}
    if text is not None and "@" in text:
        from vramlint.engine.evaluator import is_registering_decorator, is_registering_factory
        from vramlint.engine.values import FunctionValue

        uses = {(name, bool(call)) for name, call in _BARE_DECORATOR.findall(text)}
        origins = _reexports(text, dotted if is_pkg else dotted.rpartition(".")[0]) if uses else {}
        for name, called in sorted(u for u in uses if u[0] in origins):
            module, attr = origins[name]
            if module == dotted:
                continue
            dec = loader.import_from(module, attr, None)
            test = is_registering_factory if called else is_registering_decorator
            if isinstance(dec, FunctionValue) and test(dec.node):
                found[name] = f"{dec.module.name}.{dec.qualname}"
    cache[dotted] = found
    return found


def _reexports(text: str, package: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for i in _line_starts(text, "from"):
        m = _FROM_LINE.match(text, i)
        if m is None or not _NAMES.fullmatch(m.group(2).rstrip()):
            continue  # `from x import (`, or not names
        src = m.group(1)
        level = len(src) - len(src.lstrip("."))
        mod = src[level:]
        if level:
            parts = package.split(".") if package else []
            if level - 1 > len(parts):
                continue
            base = ".".join(parts[: len(parts) - (level - 1)])
            mod = f"{base}.{mod}" if mod and base else (mod or base)
        for item in m.group(2).split(","):
            words = item.split()
            if len(words) == 1:
                out[words[0]] = (mod, words[0])
            elif len(words) == 3 and words[1] == "as":
                out[words[2]] = (mod, words[0])
    return out


class _Scanner:
    def __init__(self, loader: Loader, dotted: str, package: str, active: set[str]) -> None:
        self.loader = loader
        self.dotted = dotted
        self.package = package
        self.active = active
        self.names: dict[str, None] = {}
        self.origins: dict[str, tuple[str, str]] = {}
        self.all_names: list[str] | None = None

    def bind(self, name: str, origin: tuple[str, str] | None = None) -> None:
        self.names[name] = None
        if origin is None:
            self.origins.pop(name, None)
        else:
            self.origins[name] = origin

    def resolve(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.package.split(".") if self.package else []
        base = ".".join(parts[: len(parts) - (node.level - 1)]) if node.level - 1 <= len(parts) else ""
        return f"{base}.{node.module}" if node.module and base else (node.module or base)

    def block(self, stmts: list[ast.stmt]) -> None:
        for st in stmts:
            self.statement(st)

    def statement(self, st: ast.stmt) -> None:
        if isinstance(st, ast.ImportFrom):
            mod = self.resolve(st)
            for alias in st.names:
                if alias.name == "*":
                    for e in scan_exports(self.loader, mod, self.active) or []:
                        self.bind(e.name, (e.module, e.attr))
                else:
                    self.bind(alias.asname or alias.name, (mod, alias.name))
        elif isinstance(st, ast.Import):
            for alias in st.names:
                self.bind(alias.asname or alias.name.split(".")[0])
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.bind(st.name)
        elif isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        if n.id == "__all__" and isinstance(st, ast.Assign):
                            self._read_all(st.value)
                        else:
                            self.bind(n.id)
        elif isinstance(st, ast.If):
            if _is_type_checking(st.test):
                self.block(st.body)
            else:
                self.block(st.body)
                self.block(st.orelse)
        elif isinstance(st, ast.Try):
            self.block(st.body)
            for h in st.handlers:
                self.block(h.body)
            self.block(st.orelse)
            self.block(st.finalbody)
        elif isinstance(st, (ast.With, ast.For, ast.While)):
            self.block(st.body)

    def _read_all(self, value: ast.expr) -> None:
        try:
            names = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return
        if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
            self.all_names = list(names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )
