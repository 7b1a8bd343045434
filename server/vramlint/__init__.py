"""vramlint: static GPU memory estimates for PyTorch models, from the source code."""

from vramlint.analysis.api import analyze_file, analyze_source
from vramlint.analysis.results import (
    FileAnalysis,
    ModelResult,
    ModuleNode,
    ParamCounts,
    UnknownInfo,
)
from vramlint.settings import ConfigError, InputSpec, Settings

__version__ = "0.1.0"
__all__ = [
    "analyze_file", "analyze_source", "FileAnalysis", "ModelResult", "ModuleNode", "ParamCounts",
    "UnknownInfo", "Settings", "InputSpec", "ConfigError", "__version__",
]
