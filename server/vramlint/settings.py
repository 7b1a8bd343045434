"""Settings of an analysis and where they come from (`[tool.vramlint]` in pyproject.toml)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(Exception):
    """Invalid configuration: the message names the file and the key."""


@dataclass(frozen=True)
class InputSpec:
    """One argument of `forward`: its shape per sample (the batch dimension excluded) and dtype."""

    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class Settings:
    extra_paths: tuple[str, ...] = ()  # like pyright's extraPaths: searched before installed packages
    models: tuple[str, ...] = ()  # only these models (class, variable or factory names)
    config_file: str | None = None
    inputs: tuple[InputSpec, ...] = ()  # when given, each model's forward is traced on them
    batch_size: int | None = None  # None: not given (a trace on `inputs` then uses 1)
    # The memory estimate (vramlint.memory): off unless asked for; inputs come from `inputs` or
    # from a call of the model in the file (`model(torch.randn(256, 1000))`).
    memory: bool = False
    precision: str = "fp32"  # fp32 | amp-bf16 | amp-fp16 | bf16 | fp16
    optimizer: str = "adam"  # see vramlint.memory.optimizers.OPTIMIZERS
    device: str = "H100"  # see vramlint.memory.devices.DEVICES
    checkpointing: bool = False  # call the model's gradient_checkpointing_enable() first
    max_batch: bool = False  # also find the largest batch that fits the device (a second trace)


KNOWN_KEYS = {"extra-paths"}


def find_pyproject(start: Path) -> Path | None:
    d = start if start.is_dir() else start.parent
    for p in (d, *d.parents):
        candidate = p / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(start: Path, base: Settings | None = None) -> Settings:
    """Settings from the nearest pyproject.toml's [tool.vramlint], over `base`."""
    base = base or Settings()
    path = find_pyproject(start.resolve())
    if path is None:
        return base
    table = read_tool_table(path)
    if not table:
        return base
    extra = _string_list(table, "extra-paths", path)
    resolved = tuple(str((path.parent / p).resolve()) for p in extra)
    return replace(base, extra_paths=base.extra_paths + resolved, config_file=str(path))


def read_tool_table(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    table = data.get("tool", {}).get("vramlint", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.vramlint] must be a table")
    for key in table:
        if key not in KNOWN_KEYS:
            raise ConfigError(f"{path}: unknown key `{key}` in [tool.vramlint] (known: {', '.join(sorted(KNOWN_KEYS))})")
    return table


def _string_list(table: dict[str, Any], key: str, path: Path) -> list[str]:
    v = table.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{path}: `{key}` in [tool.vramlint] must be a list of strings")
    return v


__all__ = ["Settings", "ConfigError", "load_settings", "field"]
