"""`--output-format concise` (ruff's name): one line per finding and per file that could not be
analysed, `path:line:col: severity CODE [name] message`, then the count by severity: no models,
setups or memory figures (those are `full`'s)."""

from __future__ import annotations

from vramlint.analysis.results import FileAnalysis
from vramlint.render.colour import PLAIN, Palette
from vramlint.render.text import error_lines, finding_text, severity_counts


def file_lines(fa: FileAnalysis, palette: Palette = PLAIN) -> list[str]:
    return [*error_lines(fa, palette), *(finding_text(fa.path, f, palette) for f in fa.findings)]


def summary_lines(files: list[FileAnalysis], palette: Palette = PLAIN) -> list[str]:
    return [severity_counts(files, palette) or "All checks passed!"]


def render(files: list[FileAnalysis], palette: Palette = PLAIN) -> str:
    return "\n".join([line for fa in files for line in file_lines(fa, palette)] + summary_lines(files, palette))
