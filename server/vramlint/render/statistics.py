"""`--statistics` (ruff's): how many findings of each code, instead of the findings: `count`,
`code`, `name` in columns, most frequent first; with the JSON formats, a JSON list of
{code, name, count}. Files that could not be analysed count as VL000."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from vramlint.analysis.results import FileAnalysis
from vramlint.render.colour import PLAIN, Palette
from vramlint.render.problems import problems


def counts(files: list[FileAnalysis]) -> list[dict[str, Any]]:
    tally: Counter[tuple[str, str]] = Counter((p.code, p.name) for fa in files for p in problems(fa))
    ordered = sorted(tally.items(), key=lambda item: (-item[1], item[0][0]))
    return [{"code": code, "name": name, "count": n} for (code, name), n in ordered]


def table(files: list[FileAnalysis], palette: Palette = PLAIN) -> list[str]:
    rows = counts(files)
    width = max((len(str(r["count"])) for r in rows), default=1)
    code_width = max((len(r["code"]) for r in rows), default=5)
    return [f"{r['count']:>{width}}\t{palette.code(r['code'].ljust(code_width))}\t{r['name']}" for r in rows]


def as_json(files: list[FileAnalysis]) -> str:
    return json.dumps(counts(files), indent=2)
