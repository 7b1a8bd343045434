"""Registries that a library's modules fill as they are imported, filled when they are read.

`import timm` runs every one of timm's 98 model files, because `timm.models`' `__init__` star-imports
them and each registers its models (`@register_model`) as it runs: `timm.create_model("resnet50")`
analysed 106,000 lines for the 2,600 it needs (17 s cold). Where a frontend declares the registry
(`LazyRegistry`: its decorator, the library functions that read it), such a star import leaves the
registering module pending: its names are bound lazily (read from its source, with the names it
registers, which the real run appends to its `__all__`), and the readers run the pending modules first:
those that register the name a reader is asked for, or all of them when the reader reads every entry
(`list_models()`) or asks for a name that no module's source shows registering (a name made at run
time). A module also runs as soon as any of its names is used, as every lazily imported module does.

What a reader sees is what the real import would have left: the modules that could have written its
entry have run, in the order of the original imports. What this module does not see: a registry read
other than through a declared reader (a module-level dict read directly), and a module whose names the
scan misreads while another module's scan claims the same name (the name then runs only the latter).
A module that calls the decorator other than as a top-level `@decorator` before a definition runs for
every read (its names cannot be read from its text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader
    from vramlint.engine.values import FunctionValue, SourceRef

# How a reader's call names the entry it reads (its arguments -> the registered name), None when
# it reads every entry or the name cannot be told.
NameOfCall = Callable[[tuple[Any, ...], dict[str, Any]], str | None]


def _no_names(text: str) -> Iterable[str]:
    return ()


@dataclass(frozen=True)
class LazyRegistry:
    """A registry a library's modules fill as they are imported, declared by a frontend."""

    # The registering decorator, by qualified name (module.qualname).
    decorator: str
    # The library functions that read the registry, by qualified name: how a call names the entry
    # it reads (None: it reads every entry, `list_models()`).
    readers: Mapping[str, NameOfCall | None]
    # The other functions of the decorator's module that write the registry (as a module runs):
    # not readers. (tests check that readers and writers are every function that reads it.)
    writers: tuple[str, ...] = ()
    # Names a module's source registers other than by the decorator (timm's deprecated aliases).
    also_registers: Callable[[str], Iterable[str]] = field(default=_no_names)


@dataclass(frozen=True)
class Registered:
    """What a deferred module registers, read from its source."""

    names: frozenset[str]
    opaque: bool  # it uses the decorator otherwise than on a top-level definition: it runs for every read


# A top-level definition's line: the first one after a top-level decorator is what it decorates
# (a decorator's arguments may span lines, but no top-level statement starts inside them).
_DEFINITION = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)
# The registered name given to a decorator's call (torchvision's `@register_model(name="...")`).
_NAME_ARGUMENT = re.compile(r"""\(\s*(?:name\s*=\s*)?(['"])(\w[\w.-]*)\1""")


def read_registered(text: str, local: str) -> Registered:
    """The names `text`'s top-level `@local` / `@local(...)` definitions register: the definition's
    name, or the name given to the decorator's call."""
    names: set[str] = set()
    opaque = False
    word = re.compile(rf"(?<![\w.]){re.escape(local)}\b")
    for m in word.finditer(text):
        at = m.start()
        line_start = text.rfind("\n", 0, at) + 1
        before = text[line_start:at]
        after = text[m.end():m.end() + 1]
        if before == "@":
            d = _DEFINITION.search(text, m.end())
            if d is None:
                opaque = True
                continue
            given = _NAME_ARGUMENT.match(text, m.end()) if after == "(" else None
            names.add(given.group(2) if given else d.group(1))
        elif after == "(" or before.lstrip().startswith("@"):
            opaque = True  # a call (`register_model(fn)`) or an indented `@local`
    return Registered(frozenset(names), opaque)


def defer(loader: Loader, dotted: str, decorators: Mapping[str, str], text: str) -> list[str] | None:
    """Leave `dotted` pending if every registering decorator it uses (local name -> qualified name)
    is a lazy registry's: the names it registers (bound lazily by the star import), else None (it
    must run now)."""
    specs = [loader.lazy_registries.get(q) for q in decorators.values()]
    if not decorators or any(s is None for s in specs):
        return None
    names: list[str] = []
    for (local, qualified), spec in zip(decorators.items(), specs):
        assert spec is not None
        reg = read_registered(text, local)
        extra = frozenset(spec.also_registers(text))
        reg = Registered(reg.names | extra, reg.opaque)
        loader.registrations.setdefault(qualified, {})[dotted] = reg
        names.extend(sorted(reg.names))
    return names


def run_registrations(loader: Loader, decorator: str, name: str | None, ref: SourceRef | None) -> None:
    """Run the pending modules that may register `name` with `decorator` (None: every entry), in
    the order they were imported."""
    table = loader.registrations.get(decorator)
    if not table:
        return
    every = name is None or not any(name in reg.names for reg in table.values())
    for dotted, reg in list(table.items()):
        if dotted not in loader.modules and (every or reg.opaque or name in reg.names):
            loader.import_module(dotted, ref)


def run_earlier_registrations(loader: Loader, dotted: str, ref: SourceRef | None) -> bool:
    """Before a pending module runs (for a reader, or for a name of its own): the pending modules
    imported before it that register a name it registers too, or whose names are not known, so
    that its registrations overwrite theirs, as in the real import. Whether `dotted` is pending."""
    pending = False
    for table in loader.registrations.values():
        reg = table.get(dotted)
        if reg is None:
            continue
        pending = True
        for other, earlier in list(table.items()):
            if other == dotted:
                break
            if other not in loader.modules and (reg.opaque or earlier.opaque or not reg.names.isdisjoint(earlier.names)):
                loader.import_module(other, ref)
    return pending


def reader_rule(reads: list[tuple[str, NameOfCall | None]]) -> Callable[[Evaluator, FunctionValue], Any]:
    """A function rule (Frontend.function_rules) for a reader of registries (their decorators, and
    how its call names the entry it reads): the modules that may have written it run first."""

    def rule(ev: Evaluator, func: FunctionValue) -> Any:
        from vramlint.engine.values import NativeFunction

        def read(ev: Evaluator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            for decorator, name_of in reads:
                name = name_of(args, kwargs) if name_of is not None else None
                run_registrations(ev.loader, decorator, name, ev.current_ref)
            return ev.call(func, args, kwargs)

        return NativeFunction(func.qualname, read)

    return rule
