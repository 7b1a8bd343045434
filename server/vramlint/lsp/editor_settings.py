"""The editor's settings, typed once: the `vramlint` section of `initializationOptions` and
`workspace/didChangeConfiguration` (docs/lsp.md).

`EditorSettings` declares every key the server reads, its type and its default; cattrs structures
the section into it (camelCase keys, as jedi-language-server's initialization options). The VS Code
extension's manifest (`package.json`, `contributes.configuration`) is tested against `manifest()`
(tests/test_editor_settings.py), and the extension forwards every key its manifest declares
(client/test/settings.test.ts): a key added here fails those tests until both sides have it.

A setup key (GPU, batch, precision...) is validated as the configuration file's key of the same
meaning (`vramlint.settings.validate_setup_value`); VS Code spells "not set" with its default
(`""`, `"auto"`, `null`, `[]`), which the server reads as not set. A bad value is reported and
skipped; the other keys apply.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cattrs import Converter
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn, override

from vramlint.settings import InputSpec, setup_key, validate_setup_value

SECTION = "vramlint"


def _setup(config_key: str, unset: Any = None) -> Any:
    """A setup key, checked as the configuration file's `config_key`; `unset` is how the VS Code
    manifest spells "not set" (its default)."""
    return field(default=None, metadata={"config": config_key, "unset": unset})


@dataclass(frozen=True)
class InlayHints:
    layers: bool = True  # after each layer's construction: its parameter count
    shapes: bool = True  # after each forward line: its tensor (`forward`, its first name, is read too)


@dataclass(frozen=True)
class EditorSettings:
    gpu: str | None = _setup("gpu", unset="")
    batch_size: int | None = _setup("batch-size")
    precision: str | None = _setup("precision", unset="auto")
    optimizer: str | None = _setup("optimizer", unset="auto")
    mode: str | None = _setup("mode", unset="auto")
    checkpointing: bool | None = _setup("checkpointing")
    max_layer_params: int | None = _setup("max-layer-params")
    context: int | None = _setup("context")
    world_size: int | None = _setup("world-size")
    nodes: int | None = _setup("nodes")
    inputs: tuple[InputSpec, ...] | None = _setup("inputs", unset=[])
    extra_paths: tuple[str, ...] = ()  # absolute (the client resolves them against its workspace)
    inlay_hints: InlayHints = field(default_factory=InlayHints)
    code_lens: bool = True

    @property
    def setup(self) -> dict[str, Any]:
        """The setup keys the editor sets, by `Settings` field name (`gpu` -> `device`)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "config" in f.metadata and value is not None:
                out[setup_key(f.metadata["config"]) or f.name] = value
        return out


def camel(name: str) -> str:
    """`batch_size` -> `batchSize`: the key as the client spells it."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# ---------------------------------------------------------------------- structuring
def _bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _paths(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError(f"expected a list of folders (strings), got {value!r}")
    return tuple(os.path.abspath(os.path.expanduser(p)) for p in value)


def _setup_hook(f: dataclasses.Field[Any]) -> Callable[[Any, Any], Any]:
    config_key, unset = f.metadata["config"], f.metadata["unset"]

    def structure(value: Any, _: Any) -> Any:
        if value is None or value == unset:
            return None
        return validate_setup_value(config_key, value)

    return structure


def _object_hook(cls: type, converter: Converter) -> Callable[[Any, Any], Any]:
    """A dataclass from a JSON object, keys in camelCase; unknown keys ignored (the extension's own
    settings, `interpreter`..., may come in a pulled section)."""
    overrides = {}
    for f in dataclasses.fields(cls):
        hook = _setup_hook(f) if "config" in f.metadata else _paths if f.name == "extra_paths" else None
        overrides[f.name] = override(rename=camel(f.name), struct_hook=hook)
    # mypy: a `**` key could be one of its `_cattrs_` flags.
    structure: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]

    def checked(value: Any, t: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {value!r}")
        return structure(value, t)

    return checked


def _converter() -> Converter:
    c = Converter()
    c.register_structure_hook(bool, _bool)
    for cls in (InlayHints, EditorSettings):
        c.register_structure_hook(cls, _object_hook(cls, c))
    return c


CONVERTER = _converter()


def editor_settings(raw: Any) -> tuple[EditorSettings, list[str]]:
    """The editor's settings from `initializationOptions` or a configuration change (the `vramlint`
    section, or the section itself), and the problems of the values skipped."""
    section = raw.get(SECTION, raw) if isinstance(raw, dict) else None
    if not isinstance(section, dict):
        return EditorSettings(), []
    section = copy.deepcopy(section)
    hints = section.get("inlayHints")
    if isinstance(hints, dict) and "shapes" not in hints and "forward" in hints:
        hints["shapes"] = hints.pop("forward")  # the setting's first name
    problems: list[str] = []
    while True:  # each pass drops the keys the one before rejected: ends within one pass per key
        try:
            return _nodes_checked(CONVERTER.structure(section, EditorSettings), problems)
        except ClassValidationError as err:
            rejected = list(_rejected(err))
            if not rejected:  # not a key's value: keep the defaults rather than loop
                return EditorSettings(), [*problems, f"{SECTION}: {err}"]
            for path, reason in rejected:
                problems.append(f"{SECTION}.{'.'.join(path)}: {reason}")
                _drop(section, path)


def _nodes_checked(settings: EditorSettings, problems: list[str]) -> tuple[EditorSettings, list[str]]:
    """Nodes that do not divide the world size, both from the editor: the nodes are skipped, as a
    bad value is (settings.check_world does the same for the configuration file and the flags)."""
    world, nodes = settings.world_size, settings.nodes
    if world is None or nodes is None or world % nodes == 0:
        return settings, problems
    return dataclasses.replace(settings, nodes=None), [
        *problems, f"{SECTION}.nodes: {nodes} does not divide {SECTION}.worldSize {world}: each node runs as many ranks"]


def _rejected(err: ClassValidationError) -> Iterator[tuple[list[str], str]]:
    """The key path and the reason of each value the structuring rejected."""
    attributes, _ = err.group_exceptions()
    for exc, note in attributes:
        key = camel(note.name)
        if isinstance(exc, ClassValidationError):
            yield from (([key, *path], reason) for path, reason in _rejected(exc))
        else:
            yield [key], str(exc)


def _drop(section: dict[str, Any], path: list[str]) -> None:
    """Removes the value at `path` (the whole top key when the path is not there as such)."""
    inner: Any = section
    for key in path[:-1]:
        inner = inner.get(key) if isinstance(inner, dict) else None
    if isinstance(inner, dict) and path[-1] in inner:
        del inner[path[-1]]
    else:
        section.pop(path[0], None)


# ---------------------------------------------------------------------- the VS Code manifest
def manifest() -> dict[str, dict[str, Any]]:
    """What `package.json`'s `contributes.configuration.properties` must declare for each key the
    server reads: its JSON type and default (nested objects flattened to dotted keys, as VS Code's
    settings are; VS Code gives them back as an object)."""
    return dict(_properties(EditorSettings, f"{SECTION}."))


def _properties(cls: type, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], prefix + camel(f.name)
        if dataclasses.is_dataclass(tp):
            yield from _properties(typing.cast(type, tp), key + ".")
        elif "config" in f.metadata:
            unset = f.metadata["unset"]
            schema = _schema(_without_none(tp))
            if unset is None:
                schema["type"] = [schema["type"], "null"]
            yield key, {**schema, "default": unset}
        else:
            default = f.default_factory() if callable(f.default_factory) else f.default
            yield key, {**_schema(tp), "default": list(default) if isinstance(default, tuple) else default}


def _without_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if isinstance(tp, types.UnionType) and len(args) == 1 else tp


JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of a value of type `tp` (types only: the manifest adds descriptions, enums, bounds)."""
    if tp in JSON_TYPES:
        return {"type": JSON_TYPES[tp]}
    if typing.get_origin(tp) in (tuple, list):
        return {"type": "array", "items": _schema(typing.get_args(tp)[0])}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return {"type": "object", "properties": {camel(f.name): _schema(hints[f.name])
                                                 for f in dataclasses.fields(tp)}}
    raise TypeError(f"no JSON type for {tp!r}")


__all__ = ["EditorSettings", "InlayHints", "editor_settings", "manifest", "camel"]
