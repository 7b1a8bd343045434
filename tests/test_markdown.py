"""`vramlint check --format markdown`: one table row per model, the findings below, and the
escaping that keeps names and messages from the analysed code from breaking the table or
mentioning anyone."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_cli import EXAMPLE, vramlint
from vramlint.analysis.results import FileAnalysis, Finding, ModelResult, ParamCounts
from vramlint.engine.values import Location
from vramlint.render import markdown


def cells(row: str) -> list[str]:
    """A GFM row's cells: split at the pipes that are not escaped."""
    out, cell, escaped = [], "", False
    for ch in row.strip()[1:-1]:
        if ch == "|" and not escaped:
            out.append(cell.strip())
            cell = ""
        else:
            cell += ch
        escaped = ch == "\\" and not escaped
    return [*out, cell.strip()]


def plain(cell: str) -> str:
    """The text a reader sees (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", cell)


def test_the_bundled_example_as_a_table() -> None:
    r = vramlint("check", str(EXAMPLE), "--format", "markdown")
    doc = json.loads(vramlint("check", str(EXAMPLE), "--format", "json").stdout)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "### vramlint"
    header = cells(lines[2])
    assert header == list(markdown.HEADERS)
    assert set(lines[3]) <= set("|-: ")
    rows = [cells(line) for line in lines[4:] if line.startswith("| ")]
    (f,) = doc["files"]
    assert [plain(r[1]) for r in rows] == [m["name"] for m in f["models"]]
    assert all(len(r) == len(header) for r in rows)
    instance = next(r for r in rows if r[1] == "model")
    model = next(m for m in f["models"] if m["name"] == "model")
    assert instance[0].endswith(f"mlp.py:{model['line']}`")
    assert instance[2] == f"{model['params']['total']:,}" and instance[6] == "✓"
    findings = [line for line in lines if line.startswith("- **")]
    assert len(findings) == len(f["findings"])
    assert all(f"{x['code']} {x['name']}" in line for x, line in zip(f["findings"], findings))


def test_names_and_messages_from_code_are_escaped() -> None:
    hostile = "a|b *c* _d_ [e](http://x) <img> @someone `tick`"
    model = ModelResult(name=hostile, kind="instance", where=Location("m|x.py", 3, 0, 3, 1),
                        params=ParamCounts(7, 7, 0, 7), tree=None, construction="module level")
    finding = Finding("VL301", "unresolved-input", "info", "`x | y` is unknown; see @alice's *note* | here",
                      model=hostile, where=Location("m|x.py", 3, 0, 3, 1))
    out = markdown.render([FileAnalysis("m|x.py", models=[model], findings=[finding])])
    row = next(line for line in out.splitlines() if line.startswith("| `m"))
    assert len(cells(row)) == len(markdown.HEADERS)  # no pipe of the name or the path split a cell
    name = cells(row)[1]
    assert "@" not in name and "&#64;someone" in name
    for raw in ("*c*", "_d_", "[e]", "<img>", "`tick`"):
        assert raw not in name
    line = next(line for line in out.splitlines() if line.startswith("- **info**"))
    assert "`x \\| y`" in line  # vramlint's code span kept, its pipe escaped for tables
    assert "&#64;alice" in line and "\\*note\\*" in line and "\\| here" in line


def test_no_models(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    r = vramlint("check", str(tmp_path / "empty.py"), "--format", "markdown")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["### vramlint", "", "No models found.", "", "No findings."]


def test_the_largest_batch_when_computed() -> None:
    r = vramlint("check", str(EXAMPLE), "--format", "markdown", "--model", "model", "--max-batch")
    doc = json.loads(vramlint("check", str(EXAMPLE), "--format", "json", "--model", "model", "--max-batch").stdout)
    (row,) = [cells(line) for line in r.stdout.splitlines()[4:] if line.startswith("| ")]
    largest = doc["files"][0]["models"][0]["memory"]["max_batch"]
    assert isinstance(largest, int) and row[7] == f"{largest:,}"
