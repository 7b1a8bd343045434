"""The editor's setting choices (package.json's `contributes.configuration`) and the CLI's option
choices come from the Python definitions: adding an optimizer, a precision or a GPU in Python and
forgetting package.json fails here, with the JSON to paste."""

from __future__ import annotations

import argparse
import json
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
