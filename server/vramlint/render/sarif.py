"""SARIF 2.1.0 log of the findings (`vramlint check --format sarif`), for code-scanning tools.

One run; its rules are the codes that occur. Paths inside the current directory are written
relative to it (uriBaseId "%SRCROOT%"), other paths as absolute file URIs. Lines and columns are
1-based in SARIF; columns count Unicode code points (libcst's positions), hence `columnKind`.
Files that could not be analysed (syntax errors, unreadable, an internal error) become results of rule VL000.
Each result has a `partialFingerprints` entry (render/problems.py) so code scanning follows a
finding across commits; each rule its descriptions, help, documentation link and default level.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vramlint.analysis.results import FileAnalysis
from vramlint.engine.values import Location
from vramlint.render.problems import ERROR_CODE, FINGERPRINT_KEY, Problem, problems, relative_to_cwd
from vramlint.render.problems import (
    ERROR_NAME as ERROR_NAME,  # re-exported: sarif.ERROR_NAME is older
)

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/vramlint/vramlint"
RULES_DOC_URI = "https://github.com/vramlint/vramlint/blob/main/docs/rules.md"
SRCROOT = "%SRCROOT%"

ERROR_DESCRIPTION = "The file could not be analysed (syntax error, unreadable file, internal error)"
ERROR_FIX = "Fix the code; for an internal error, please report it with the file (VRAMLINT_DEBUG=1 prints the traceback)."

LEVELS = {"error": "error", "warning": "warning", "info": "note"}


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


def _rule(code: str, name: str) -> dict[str, Any]:
    """A rule's metadata: its descriptions, help (what to do) with the docs' link, and its level."""
    from vramlint.analysis.findings import RULE_BY_CODE

    rule = RULE_BY_CODE.get(code)
    if rule is not None:
        summary, severity, fix = rule.summary, rule.severity, rule.fix
    elif code == ERROR_CODE:
        summary, severity, fix = ERROR_DESCRIPTION, "error", ERROR_FIX
    else:  # not one of ours (hand-built results)
        summary, severity, fix = name.replace("-", " ").capitalize(), "warning", ""
    uri = f"{RULES_DOC_URI}#{code.lower()}"
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": f"{code} {name}: {summary}."},
        "help": {"text": f"{fix} See {uri}".lstrip(), "markdown": f"{fix} [{code} in the rules]({uri})".lstrip()},
        "helpUri": uri,
        "defaultConfiguration": {"level": LEVELS.get(severity, "warning")},
    }


def _result(p: Problem, index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": p.code,
        "ruleIndex": index,
        "level": LEVELS.get(p.severity, "warning"),
        "message": {"text": p.message},
        "locations": [{"physicalLocation": physical_location(p.file, p.location)}],
        "partialFingerprints": {FINGERPRINT_KEY: p.fingerprint()},
    }
    if p.model is not None:
        result["properties"] = {"model": p.model}
    return result


def log(files: list[FileAnalysis]) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict."""
    from vramlint import __version__  # the package imports the analysis, which must not import us

    entries = [p for fa in files for p in problems(fa)]  # in file order, each file's errors first
    names: dict[str, str] = {}
    for p in entries:
        names.setdefault(p.code, p.name)
    codes = sorted(names)
    index = {code: i for i, code in enumerate(codes)}
    return {
        "$schema": SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "vramlint",
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule(code, names[code]) for code in codes],
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": Path(os.getcwd()).as_uri().rstrip("/") + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": [_result(p, index[p.code]) for p in entries],
        }],
    }


def render(files: list[FileAnalysis]) -> str:
    """The SARIF log as JSON text (no trailing newline)."""
    return json.dumps(log(files), indent=2)
