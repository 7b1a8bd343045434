"""The output formats of `vramlint check --output-format` (ruff's names where they overlap), each
a renderer module of this package: what it prints per file as the file is done (streamed), and
what it prints once every file is (a document, a summary). `text` is the old name of `full`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from vramlint.analysis.results import FileAnalysis
from vramlint.render import (
    concise,
    github,
    gitlab,
    json_lines,
    json_output,
    junit,
    markdown,
    sarif,
    text,
)
from vramlint.render.colour import PLAIN, Palette


@dataclass(frozen=True)
class Options:
    palette: Palette = PLAIN  # colour: the text formats on a terminal
    quiet: bool = False  # the findings only: no models, no summary
    layers: bool = False  # JSON: each model's module tree


def _nothing(files: list[FileAnalysis], o: Options) -> list[str]:
    return []


@dataclass(frozen=True)
class OutputFormat:
    name: str
    help: str
    # One file's lines, printed as soon as it (and the files before it) is done; None: a document.
    lines: Callable[[FileAnalysis, Options], list[str]] | None = None
    end: Callable[[list[FileAnalysis], Options], list[str]] = _nothing  # after every file
    coloured: bool = False  # for people: coloured on a terminal
    machine_json: bool = False  # --statistics as JSON too


FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    OutputFormat("full", "each model (parameters, memory, setup) and finding, file by file as they are done",
                 lambda fa, o: text.file_lines(fa, o.palette, o.quiet),
                 lambda files, o: [] if o.quiet else text.summary_lines(files, o.palette), coloured=True),
    OutputFormat("concise", "one line per finding, then the count",
                 lambda fa, o: concise.file_lines(fa, o.palette),
                 lambda files, o: [] if o.quiet else concise.summary_lines(files, o.palette), coloured=True),
    OutputFormat("json", "the versioned document of docs/json.md",
                 end=lambda files, o: [json.dumps(json_output.document(files, layers=o.layers), indent=2)],
                 machine_json=True),
    OutputFormat("json-lines", "one JSON object per finding per line", lambda fa, o: json_lines.lines(fa),
                 machine_json=True),
    OutputFormat("sarif", "SARIF 2.1.0 for code scanning", end=lambda files, o: [sarif.render(files)]),
    OutputFormat("github", "GitHub Actions annotations", lambda fa, o: github.lines(fa)),
    OutputFormat("gitlab", "a GitLab Code Quality report", end=lambda files, o: [gitlab.render(files)]),
    OutputFormat("junit", "JUnit XML: a testsuite per file, a testcase per model", end=lambda files, o: [junit.render(files)]),
    OutputFormat("markdown", "a table for a pull request or a job summary ($GITHUB_STEP_SUMMARY)",
                 end=lambda files, o: markdown.render(files).splitlines()),
)}
ALIASES = {"text": "full"}  # the name before ruff's names (scripts keep working)


def output_format(name: str) -> OutputFormat:
    return FORMATS[ALIASES.get(name, name)]


def choices() -> list[str]:
    return [*FORMATS, *ALIASES]
