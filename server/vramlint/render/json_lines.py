"""`--output-format json-lines` (ruff's name): one JSON object per finding per line, written as
each file is done, for tools that read a stream (`jq -c`, log shippers). Each object is a finding
of the `json` document (docs/json.md) plus `file`, the analysed file; a file that could not be
analysed is a line of code VL000."""

from __future__ import annotations

import json
from typing import Any

from vramlint.analysis.results import FileAnalysis
from vramlint.render.json_output import finding_json, unknown_json
from vramlint.render.problems import ERROR_CODE, ERROR_NAME


def objects(fa: FileAnalysis) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"code": ERROR_CODE, "name": ERROR_NAME, "severity": "error", "message": e.reason, "model": None,
         **{k: v for k, v in unknown_json(e).items() if k != "reason"}, "file": fa.path} for e in fa.errors]
    out += [{**finding_json(f), "file": fa.path} for f in fa.findings]
    return out


def lines(fa: FileAnalysis) -> list[str]:
    return [json.dumps(o, ensure_ascii=False) for o in objects(fa)]


def render(files: list[FileAnalysis]) -> str:
    return "\n".join(line for fa in files for line in lines(fa))
