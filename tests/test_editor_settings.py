"""The editor's settings, typed once (vramlint.lsp.editor_settings): the VS Code manifest declares
exactly the keys the server reads, with the same types and defaults; the extension forwards every
key its manifest declares (client/test/settings.test.ts); the server validates each value as the
configuration file's key of the same meaning."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vramlint.lsp.editor_settings import EditorSettings, editor_settings, manifest
from vramlint.settings import DTYPES, SETUP_KEYS, InputSpec

ROOT = Path(__file__).resolve().parents[1]


def declared() -> dict[str, dict[str, Any]]:
    """`contributes.configuration.properties` of the extension's manifest."""
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    properties: dict[str, dict[str, Any]] = package["contributes"]["configuration"]["properties"]
    return properties


def client_settings() -> set[str]:
    """The extension's own settings (client/src/settings.ts `CLIENT_SETTINGS`): it never forwards them."""
    text = (ROOT / "client" / "src" / "settings.ts").read_text(encoding="utf-8")
    m = re.search(r"export const CLIENT_SETTINGS = \[([^\]]*)\]", text)
    assert m is not None, "CLIENT_SETTINGS not found in client/src/settings.ts"
    return {f"vramlint.{name}" for name in re.findall(r"'([^']+)'", m.group(1))}


def picked(entry: Any, like: Any) -> Any:
    """`entry` with only the fields `like` has, recursively (the manifest adds descriptions, enums, bounds)."""
    if isinstance(like, dict) and isinstance(entry, dict):
        return {k: picked(entry[k], v) for k, v in like.items() if k in entry}
    return entry


def test_the_manifest_declares_what_the_server_reads() -> None:
    server, manifest_keys = manifest(), declared()
    assert {"vramlint.checkpointing", "vramlint.maxLayerParams", "vramlint.inputs"} <= set(server)
    assert client_settings() == {"vramlint.interpreter", "vramlint.importStrategy", "vramlint.trace.server"}
    assert set(manifest_keys) == set(server) | client_settings(), "package.json's settings are not the server's"
    for key, schema in server.items():
        assert picked(manifest_keys[key], schema) == schema, f"package.json's {key}: expected {schema}"


def test_the_manifest_is_checked_field_by_field() -> None:
    """The comparison sees a wrong type, default or item type (a test that can fail)."""
    server = manifest()
    for key, field_, wrong in (("vramlint.batchSize", "type", "integer"), ("vramlint.codeLens", "default", False),
                               ("vramlint.precision", "default", "fp32")):
        assert picked({**server[key], field_: wrong}, server[key]) != server[key]
    inputs = server["vramlint.inputs"]
    bad = {**inputs, "items": {"type": "object", "properties": {"shape": {"type": "string"}, "dtype": {"type": "string"}}}}
    assert picked(bad, inputs) != inputs


def test_every_setup_key_can_come_from_the_editor() -> None:
    """The setup keys of a model (settings.SETUP_KEYS: what the configuration file sets) are all
    settable from the editor, so a new one cannot be left out of it."""
    full = editor_settings({"vramlint": {
        "gpu": "L4", "batchSize": 4, "precision": "bf16", "optimizer": "sgd", "mode": "infer", "checkpointing": True,
        "maxLayerParams": 10, "context": 2048, "worldSize": 8, "nodes": 2, "inputs": [{"shape": [3, 8, 8], "dtype": "float16"}]}})
    assert full[1] == []
    assert set(full[0].setup) == set(SETUP_KEYS)
    assert full[0].setup["device"] == "L4" and full[0].setup["inputs"] == (InputSpec((3, 8, 8), "float16"),)


def test_the_input_dtypes_are_the_servers() -> None:
    dtype = declared()["vramlint.inputs"]["items"]["properties"]["dtype"]
    assert dtype["enum"] == sorted(DTYPES) and dtype["default"] == "float32"


def test_defaults_and_the_manifests_spelling_of_unset_set_nothing() -> None:
    defaults = {key.removeprefix("vramlint."): entry["default"] for key, entry in declared().items()}
    nested: dict[str, Any] = {}
    for key, value in defaults.items():  # as VS Code gives the section back: dotted keys nested
        *path, last = key.split(".")
        at = nested
        for part in path:
            at = at.setdefault(part, {})
        at[last] = value
    settings, problems = editor_settings({"vramlint": nested})
    assert problems == [] and settings == EditorSettings() and settings.setup == {}


@pytest.mark.parametrize(("raw", "problem"), [
    ({"batchSize": 0}, "vramlint.batchSize: expected a positive integer, got 0"),
    ({"checkpointing": "yes"}, "vramlint.checkpointing: expected true or false, got 'yes'"),
    ({"maxLayerParams": 2.5}, "vramlint.maxLayerParams: expected a positive integer, got 2.5"),
    ({"context": 0}, "vramlint.context: expected a positive integer, got 0"),
    ({"inputs": [{"shape": [3], "dtype": "complex"}]}, "vramlint.inputs: `dtype` must be one of"),
    ({"inputs": {"shape": [3]}}, "vramlint.inputs: expected a list of tables"),
    ({"gpu": "no-such-card"}, "vramlint.gpu: unknown GPU 'no-such-card'"),
    ({"precision": "fp8"}, "vramlint.precision: expected one of"),
    ({"extraPaths": "src"}, "vramlint.extraPaths: expected a list of folders (strings), got 'src'"),
    ({"inlayHints": {"layers": 0}}, "vramlint.inlayHints.layers: expected true or false, got 0"),
    ({"inlayHints": True}, "vramlint.inlayHints: expected an object, got True"),
    ({"codeLens": "off"}, "vramlint.codeLens: expected true or false, got 'off'"),
])
def test_a_bad_value_is_reported_and_skipped_the_rest_applies(raw: dict[str, Any], problem: str) -> None:
    settings, problems = editor_settings({"vramlint": {**raw, "optimizer": "adamw", "codeLens": False, **raw}})
    assert len(problems) == 1 and problems[0].startswith(problem), problems
    assert settings.optimizer == "adamw"
    key = next(iter(raw))
    if key != "codeLens":
        assert settings.code_lens is False
    assert settings.setup.keys() == {"optimizer"}


def test_display_settings_and_the_first_name_of_shapes() -> None:
    settings, problems = editor_settings({"vramlint": {"inlayHints": {"forward": False}, "codeLens": False,
                                                       "extraPaths": ["/src", "rel"], "interpreter": ["python3"]}})
    assert problems == []
    assert (settings.inlay_hints.layers, settings.inlay_hints.shapes, settings.code_lens) == (True, False, False)
    assert settings.extra_paths[0] == "/src" and Path(settings.extra_paths[1]).is_absolute()


@pytest.mark.parametrize("raw", [None, [], "vramlint", {"vramlint": 3}, {"vramlint": None}])
def test_no_section_is_the_defaults(raw: Any) -> None:
    assert editor_settings(raw) == (EditorSettings(), [])


def test_the_section_itself_is_read_too() -> None:
    """A client that sends the section's content without the `vramlint` key (as the server always accepted)."""
    settings, _ = editor_settings({"gpu": "T4", "batchSize": 2})
    assert settings.setup == {"device": "T4", "batch_size": 2}
