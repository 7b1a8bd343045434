"""vramlint: static GPU memory estimates for PyTorch models, from the source code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "analyze_file", "analyze_source", "FileAnalysis", "ModelResult", "ModuleNode", "ParamCounts",
    "UnknownInfo", "Settings", "InputSpec", "ConfigError", "__version__",
]

if TYPE_CHECKING:
    from vramlint.analysis.api import analyze_file, analyze_source
    from vramlint.analysis.results import (
        FileAnalysis,
        ModelResult,
        ModuleNode,
        ParamCounts,
        UnknownInfo,
    )
    from vramlint.settings import ConfigError, InputSpec, Settings

# Where each public name lives: imported on first use, so that `vramlint check` answering from
# its cache (or `vramlint --version`) does not load the engine and the frontends.
_HOMES = {"analyze_file": "vramlint.analysis.api", "analyze_source": "vramlint.analysis.api",
          **dict.fromkeys(("FileAnalysis", "ModelResult", "ModuleNode", "ParamCounts", "UnknownInfo"),
                          "vramlint.analysis.results"),
          **dict.fromkeys(("Settings", "InputSpec", "ConfigError"), "vramlint.settings")}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'vramlint' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
