"""`--output-format gitlab`: a GitLab Code Quality report (a JSON array of issues: description,
check_name, fingerprint, severity, location.path, location.lines.begin), for a merge request's
code-quality widget (`artifacts: reports: codequality:`). Paths are relative to the current folder
(the project's checkout in a job). GitLab wants each fingerprint once per report: a second finding
with the same identity (render/problems.py) gets the hash of the first and its ordinal, as ruff's."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vramlint.analysis.results import FileAnalysis
from vramlint.render.problems import problems, shown_path

# Code Quality's severities: info, minor, major, critical, blocker.
SEVERITIES = {"error": "major", "warning": "minor", "info": "info"}


def issues(files: list[FileAnalysis]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for fa in files:
        for p in problems(fa):
            fp = p.fingerprint()
            n = seen.get(fp, 0)
            seen[fp] = n + 1
            if n:
                fp = hashlib.sha256(f"{fp}:{n}".encode()).hexdigest()[:32]
            out.append({
                "description": f"{p.code} [{p.name}] {p.message}",
                "check_name": p.code,
                "fingerprint": fp,
                "severity": SEVERITIES.get(p.severity, "minor"),
                "location": {"path": shown_path(p.path), "lines": {"begin": p.line or 1}},
            })
    return out


def render(files: list[FileAnalysis]) -> str:
    return json.dumps(issues(files), indent=2, ensure_ascii=False)
