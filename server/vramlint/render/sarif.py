"""SARIF 2.1.0 log of the findings (`vramlint check --format sarif`), for code-scanning tools.

One run; its rules are the codes that occur. Paths inside the current directory are written
relative to it (uriBaseId "%SRCROOT%"), other paths as absolute file URIs. Lines and columns are
1-based in SARIF; columns count Unicode code points (libcst's positions), hence `columnKind`.
Files that could not be analysed (syntax errors, unreadable, an internal error) become results of rule VL000.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from vramlint.analysis.results import FileAnalysis
from vramlint.engine.values import Location

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/vramlint/vramlint"
RULES_DOC_URI = "https://github.com/vramlint/vramlint/blob/main/docs/rules.md"
SRCROOT = "%SRCROOT%"

ERROR_CODE = "VL000"
ERROR_NAME = "analysis-error"
ERROR_DESCRIPTION = "The file could not be analysed (syntax error, unreadable file, internal error)"

LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def relative_to_cwd(path: str) -> str | None:
    """`path` relative to the current directory, with forward slashes; None if outside it."""
    cwd = os.getcwd()
    for base, target in ((os.path.abspath(cwd), os.path.abspath(path)),
                         (os.path.realpath(cwd), os.path.realpath(path))):
        try:
            rel = os.path.relpath(target, base)
        except ValueError:  # another drive (Windows)
            continue
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep) and not os.path.isabs(rel):
            return PurePath(rel).as_posix()
    return None


def artifact_location(path: str) -> dict[str, str]:
    rel = relative_to_cwd(path)
    if rel is not None:
        return {"uri": quote(rel, safe="/"), "uriBaseId": SRCROOT}
    return {"uri": Path(os.path.abspath(path)).as_uri()}


def region(loc: Location) -> dict[str, int] | None:
    if loc.line < 1:
        return None
    out = {"startLine": loc.line, "startColumn": loc.column + 1}
    # SARIF's endColumn is the column after the region, like the (0-based, exclusive) end here.
    if (loc.end_line, loc.end_column) > (loc.line, loc.column):
        out["endLine"] = loc.end_line
        out["endColumn"] = loc.end_column + 1
    return out


def physical_location(path: str, loc: Location | None) -> dict[str, Any]:
    """Where a result is: the location's file and region, or the whole file when unknown."""
    out: dict[str, Any] = {"artifactLocation": artifact_location(loc.path if loc else path)}
    reg = region(loc) if loc is not None else None
    if reg is not None:
        out["region"] = reg
    return out


def _describe(name: str) -> str:
    from vramlint.analysis.findings import RULE_BY_CODE

    summaries = {r.name: r.summary for r in RULE_BY_CODE.values()}
    return summaries.get(name) or name.replace("-", " ").capitalize()


def _rule(code: str, name: str, description: str) -> dict[str, Any]:
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": description},
        "helpUri": f"{RULES_DOC_URI}#{code.lower()}",
    }


def log(files: list[FileAnalysis]) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict."""
    from vramlint import __version__  # the package imports the analysis, which must not import us

    # (code, name, severity, message, model, path, location) in file order, file errors first.
    entries: list[tuple[str, str, str, str, str | None, str, Location | None]] = []
    for fa in files:
        for err in fa.errors:
            entries.append((ERROR_CODE, ERROR_NAME, "error", err.reason, None, fa.path, err.location))
        for f in fa.findings:
            entries.append((f.code, f.name, f.severity, f.message, f.model, fa.path, f.location))

    names: dict[str, str] = {}
    for code, name, *_ in entries:
        names.setdefault(code, name)
    codes = sorted(names)
    index = {code: i for i, code in enumerate(codes)}
    rules = [_rule(code, names[code],
                   ERROR_DESCRIPTION if code == ERROR_CODE else _describe(names[code]))
             for code in codes]

    results = []
    for code, _name, severity, message, model, path, loc in entries:
        result: dict[str, Any] = {
            "ruleId": code,
            "ruleIndex": index[code],
            "level": LEVELS.get(severity, "warning"),
            "message": {"text": message},
            "locations": [{"physicalLocation": physical_location(path, loc)}],
        }
        if model is not None:
            result["properties"] = {"model": model}
        results.append(result)

    return {
        "$schema": SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "vramlint",
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": Path(os.getcwd()).as_uri().rstrip("/") + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def render(files: list[FileAnalysis]) -> str:
    """The SARIF log as JSON text (no trailing newline)."""
    return json.dumps(log(files), indent=2)
