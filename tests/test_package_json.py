"""The editor's setting choices (package.json's `contributes.configuration`) and the CLI's option
choices come from the Python definitions: adding an optimizer, a precision or a GPU in Python and
forgetting package.json fails here, with the JSON to paste."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from vramlint.cli.main import _setup_options
from vramlint.memory.devices import DEVICES
from vramlint.memory.estimate import PRECISIONS
from vramlint.memory.optimizers import OPTIMIZERS
from vramlint.settings import _validators, parse_device

ROOT = Path(__file__).resolve().parent.parent
PROPERTIES: dict[str, Any] = json.loads((ROOT / "package.json").read_text())["contributes"]["configuration"]["properties"]


def expect(actual: Any, expected: Any, where: str) -> None:
    assert actual == expected, f"package.json {where} should be:\n{json.dumps(expected, indent=2)}"


def cli_choices(dest: str) -> list[str]:
    action = next(a for a in _setup_options()._actions if a.dest == dest)
    assert action.choices is not None
    return list(action.choices)


def test_optimizer_enum_is_the_python_list() -> None:
    setting = PROPERTIES["vramlint.optimizer"]
    expect(setting["enum"], ["auto", *OPTIMIZERS], '"vramlint.optimizer" enum')
    expect(setting["enumDescriptions"][1:], [spec.summary for spec in OPTIMIZERS.values()],
           '"vramlint.optimizer" enumDescriptions after "auto"\'s')


def test_precision_enum_is_the_python_list() -> None:
    setting = PROPERTIES["vramlint.precision"]
    expect(setting["enum"], ["auto", *PRECISIONS], '"vramlint.precision" enum')
    assert len(setting["enumDescriptions"]) == len(setting["enum"])


def test_mode_enum_is_the_cli_and_settings_choice() -> None:
    setting = PROPERTIES["vramlint.mode"]
    expect(setting["enum"], ["auto", *cli_choices("mode")], '"vramlint.mode" enum')
    assert len(setting["enumDescriptions"]) == len(setting["enum"])
    check = _validators()["mode"][1]
    for mode in setting["enum"][1:]:
        assert check(mode) == mode


def test_gpu_examples_are_the_known_devices() -> None:
    examples = PROPERTIES["vramlint.gpu"]["examples"]
    expect([e for e in examples if e.lower() in DEVICES], [d.name for d in DEVICES.values()],
           '"vramlint.gpu" examples (the sizes aside)')
    for example in examples:
        assert parse_device(example) is not None, example


def test_cli_choices_are_the_python_lists() -> None:
    assert cli_choices("optimizer") == sorted(OPTIMIZERS)
    assert cli_choices("precision") == list(PRECISIONS)
    parser = argparse.ArgumentParser(parents=[_setup_options()])
    assert parser.parse_args(["--optimizer", "lion"]).optimizer == "lion"
    with pytest.raises(SystemExit):
        parser.parse_args(["--optimizer", "adamx"])


@pytest.mark.parametrize("key", sorted(OPTIMIZERS))
def test_settings_accept_every_optimizer(key: str) -> None:
    assert _validators()["optimizer"][1](key) == key


def test_settings_reject_an_unknown_optimizer() -> None:
    with pytest.raises(ValueError, match="expected one of adafactor, adagrad, adam"):
        _validators()["optimizer"][1]("adamx")


def test_cli_gpu_help_names_every_known_card_and_the_default() -> None:
    from vramlint.memory.devices import device_named
    from vramlint.settings import DEFAULTS

    action = next(a for a in _setup_options()._actions if a.dest == "gpu")
    names = [n.strip().removesuffix(" (default)") for n in (action.help or "").split(":", 1)[1].split(",")][:-1]
    assert names == [d.name for d in DEVICES.values()]
    default = device_named(DEFAULTS["device"])
    assert default is not None and f"{default.name} (default)" in (action.help or "")


# ---------------------------------------------------------------- the .vsix as the marketplace shows it

MANIFEST: dict[str, Any] = json.loads((ROOT / "package.json").read_text())
REPOSITORY = "https://github.com/vramlint/vramlint"


def test_the_icon_is_the_drawn_128px_png() -> None:
    """tools/make_icon.py draws it; the committed file is what it draws (edit the script, not the PNG)."""
    import struct
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_icon
    finally:
        sys.path.remove(str(ROOT / "tools"))
    icon = ROOT / MANIFEST["icon"]
    data = icon.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (128, 128)  # the marketplace's minimum
    assert data == make_icon.png(), "run python tools/make_icon.py"


def test_the_marketplace_metadata() -> None:
    assert MANIFEST["repository"] == {"type": "git", "url": f"{REPOSITORY}.git"}
    assert MANIFEST["homepage"].startswith(REPOSITORY) and MANIFEST["bugs"]["url"] == f"{REPOSITORY}/issues"
    assert set(MANIFEST["galleryBanner"]) == {"color", "theme"}
    assert {"pytorch", "gpu", "vram"} <= set(MANIFEST["keywords"]) and len(MANIFEST["keywords"]) <= 30
    # With a repository and a license, vsce needs neither escape hatch.
    packaging = MANIFEST["scripts"]["package"] + (ROOT / "client" / "package-bundled.sh").read_text()
    assert "--allow-missing-repository" not in packaging and "--skip-license" not in packaging


def test_the_vsix_carries_the_icon_the_changelog_and_the_license() -> None:
    """.vscodeignore excludes everything else: these must be let through (the e2e finds them in the installed extension)."""
    allowed = {line[1:] for line in (ROOT / ".vscodeignore").read_text().splitlines() if line.startswith("!")}
    assert {MANIFEST["icon"], "CHANGELOG.md", "LICENSE", "dist/extension.js", "package.json"} <= allowed
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_changelog_has_this_version_and_the_unreleased_changes() -> None:
    """Keep a Changelog: [Unreleased] first, then each version with its date, and the links."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, re.M)
    assert versions[0] == ("Unreleased", "")
    assert (MANIFEST["version"], versions[1][1]) == versions[1] and versions[1][1]
    for name, _ in versions:
        assert re.search(rf"^\[{re.escape(name)}\]: {REPOSITORY}/", changelog, re.M), name
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{MANIFEST["version"]}"' in pyproject  # one version for the package and the extension
