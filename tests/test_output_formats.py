"""SARIF and GitHub Actions renderers (render/sarif.py, render/github.py), from hand-built results.

The SARIF log is read back by a real consumer (sarif-tools, from PyPI) as well as inspected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import vramlint
from vramlint.analysis.api import analyze_source
from vramlint.analysis.results import FileAnalysis, Finding, UnknownInfo
from vramlint.engine.values import Location
from vramlint.render import github, sarif

sarif_loader = pytest.importorskip("sarif.loader", reason="sarif-tools is in the test extra")


def loc(path: str | Path, line: int, column: int, end_line: int | None = None,
        end_column: int | None = None) -> Location:
    return Location(str(path), line, column, end_line if end_line is not None else line,
                    end_column if end_column is not None else column)


def sample(root: Path) -> list[FileAnalysis]:
    """Two files in `root`: one with a finding of each severity (one unlocated), one broken."""
    model = root / "pkg" / "model.py"
    broken = root / "broken.py"
    return [
        FileAnalysis(str(model), findings=[
            Finding("VL001", "over-budget-train", "error", "training needs 93.1 GiB, budget 80 GiB",
                    model="Big", where=loc(model, 12, 4, 12, 20)),
            Finding("VL101", "oversized-layer", "warning", "input shape unknown", model="Big",
                    where=loc(model, 30, 0)),
            Finding("VL301", "unresolved-input", "info", "bf16 would halve activations", model="Big"),
            Finding("VL001", "over-budget-train", "error", "training needs 81 GiB, budget 80 GiB",
                    model="Other", where=loc(model, 50, 8)),
        ]),
        FileAnalysis(str(broken), errors=[
            UnknownInfo("syntax error: invalid syntax", loc(broken, 3, 7, 3, 8)),
        ]),
    ]


def write_and_load(tmp_path: Path, files: list[FileAnalysis]) -> tuple[dict[str, Any], Any]:
    out = tmp_path / "out.sarif"
    out.write_text(sarif.render(files), encoding="utf-8")
    return json.loads(out.read_text(encoding="utf-8")), sarif_loader.load_sarif_file(str(out))


# --- SARIF ---------------------------------------------------------------------------------------


def test_sarif_log_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc, _ = write_and_load(tmp_path, sample(tmp_path))
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "vramlint"
    assert driver["version"] == vramlint.__version__
    assert driver["informationUri"].startswith("https://")
    # Every rule that occurs, once, sorted; results point at them by id and index.
    assert [r["id"] for r in driver["rules"]] == ["VL000", "VL001", "VL101", "VL301"]
    assert [r["name"] for r in driver["rules"]] == [
        "analysis-error", "over-budget-train", "oversized-layer", "unresolved-input"]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
        assert rule["helpUri"].endswith("docs/rules.md#" + rule["id"].lower())
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"


def test_sarif_read_back_by_sarif_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _, log = write_and_load(tmp_path, sample(tmp_path))
    assert log.get_distinct_tool_names() == ["vramlint"]
    assert log.get_result_count() == 5
    records = [(r["Code"], r["Severity"], r["Location"], r["Line"], r["Description"])
               for r in log.get_records()]
    assert records == [
        ("VL001", "error", "pkg/model.py", 12, "training needs 93.1 GiB, budget 80 GiB"),
        ("VL101", "warning", "pkg/model.py", 30, "input shape unknown"),
        # No location: attached to the file, and sarif-tools defaults the line to 1.
        ("VL301", "note", "pkg/model.py", "1", "bf16 would halve activations"),
        ("VL001", "error", "pkg/model.py", 50, "training needs 81 GiB, budget 80 GiB"),
        ("VL000", "error", "broken.py", 3, "syntax error: invalid syntax"),
    ]
    assert log.get_rules_by_id("VL101")[0]["name"] == "oversized-layer"
    report = log.get_report()
    assert report.get_issue_count_for_severity("error") == 3
    assert report.get_issue_count_for_severity("warning") == 1
    assert report.get_issue_count_for_severity("note") == 1


def test_sarif_levels_regions_and_relative_uris(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc, _ = write_and_load(tmp_path, sample(tmp_path))
    results = doc["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "warning", "note", "error", "error"]
    phys = [r["locations"][0]["physicalLocation"] for r in results]
    for p in phys:
        assert p["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert phys[0]["artifactLocation"]["uri"] == "pkg/model.py"
    # 1-based columns; the end column is the one after the range, like the 0-based exclusive end.
    assert phys[0]["region"] == {"startLine": 12, "startColumn": 5, "endLine": 12, "endColumn": 21}
    assert phys[1]["region"] == {"startLine": 30, "startColumn": 1}  # empty range: no end
    assert "region" not in phys[2]
    assert phys[4] == {"artifactLocation": {"uri": "broken.py", "uriBaseId": "%SRCROOT%"},
                       "region": {"startLine": 3, "startColumn": 8, "endLine": 3, "endColumn": 9}}
    assert results[0]["properties"] == {"model": "Big"}
    assert "properties" not in results[4]


def test_sarif_relative_path_given_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    f = Finding("VL001", "over-budget-train", "error", "m", where=loc("sub dir/a b.py", 2, 0))
    doc, log = write_and_load(tmp_path, [FileAnalysis("sub dir/a b.py", findings=[f])])
    art = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert art == {"uri": "sub%20dir/a%20b.py", "uriBaseId": "%SRCROOT%"}
    assert log.get_records()[0]["Location"] == "sub%20dir/a%20b.py"


def test_sarif_absolute_uri_outside_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    outside = tmp_path / "elsewhere" / "model.py"
    f = Finding("VL101", "oversized-layer", "warning", "m", where=loc(outside, 7, 2))
    doc, log = write_and_load(tmp_path, [FileAnalysis(str(outside), findings=[f])])
    art = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert art == {"uri": outside.as_uri()}
    assert art["uri"].startswith("file:///")
    assert log.get_records()[0]["Location"] == outside.as_uri()
    assert log.get_records()[0]["Line"] == 7


def test_sarif_unknown_location_and_file_error_without_location(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = [FileAnalysis("a.py", errors=[UnknownInfo("cannot read file: denied")],
                          findings=[Finding("VL301", "unresolved-input", "info", "tip")])]
    doc, log = write_and_load(tmp_path, files)
    results = doc["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("VL000", "error"), ("VL301", "note")]
    for r in results:
        assert r["locations"] == [{"physicalLocation": {
            "artifactLocation": {"uri": "a.py", "uriBaseId": "%SRCROOT%"}}}]
    assert [rec["Location"] for rec in log.get_records()] == ["a.py", "a.py"]


def test_sarif_empty(tmp_path: Path) -> None:
    doc, log = write_and_load(tmp_path, [FileAnalysis("clean.py")])
    assert doc["runs"][0]["results"] == []
    assert doc["runs"][0]["tool"]["driver"]["rules"] == []
    assert log.get_result_count() == 0


def test_sarif_message_is_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = 'needs 1.5 GiB: 100% of "budget",\nsee ümlaut'
    doc, log = write_and_load(tmp_path, [FileAnalysis("a.py", findings=[
        Finding("VL001", "over-budget-train", "error", text, where=loc("a.py", 1, 0))])])
    assert doc["runs"][0]["results"][0]["message"]["text"] == text
    assert log.get_records()[0]["Description"] == text


def test_sarif_of_a_real_syntax_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fa = analyze_source(str(tmp_path / "bad.py"), "import torch\ndef f(:\n    pass\n")
    assert fa.errors
    _, log = write_and_load(tmp_path, [fa])
    [record] = log.get_records()
    assert (record["Code"], record["Severity"], record["Location"], record["Line"]) == (
        "VL000", "error", "bad.py", 2)


# --- GitHub Actions ------------------------------------------------------------------------------


def test_github_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert github.render(sample(tmp_path)).splitlines() == [
        "::error file=pkg/model.py,line=12,col=5,title=VL001 over-budget-train::"
        "training needs 93.1 GiB, budget 80 GiB",
        "::warning file=pkg/model.py,line=30,col=1,title=VL101 oversized-layer::input shape unknown",
        "::notice file=pkg/model.py,title=VL301 unresolved-input::bf16 would halve activations",
        "::error file=pkg/model.py,line=50,col=9,title=VL001 over-budget-train::"
        "training needs 81 GiB, budget 80 GiB",
        "::error file=broken.py,line=3,col=8,title=VL000 analysis-error::"
        "syntax error: invalid syntax",
    ]


def test_github_escaping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    f = Finding("VL001", "over-budget-train", "warning", "100% full:\r\nsplit, here: yes",
                where=loc("we,ird:name%.py", 4, 1))
    [line] = github.render([FileAnalysis("we,ird:name%.py", findings=[f])]).splitlines()
    assert line == ("::warning file=we%2Cird%3Aname%25.py,line=4,col=2,"
                    "title=VL001 over-budget-train::100%25 full:%0D%0Asplit, here: yes")


def test_github_property_escaping_of_title() -> None:
    assert github.escape_property("a:b,c%d\ne") == "a%3Ab%2Cc%25d%0Ae"
    assert github.escape_data("a:b,c%d\r\ne") == "a:b,c%25d%0D%0Ae"


def test_github_absolute_path_outside_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    outside = tmp_path / "model.py"
    f = Finding("VL101", "oversized-layer", "info", "m", where=loc(outside, 2, 0))
    out = github.render([FileAnalysis(str(outside), findings=[f])])
    assert out == f"::notice file={github.escape_property(str(outside))},line=2,col=1," \
                  "title=VL101 oversized-layer::m"


def test_github_file_error_without_location_and_empty(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = github.render([FileAnalysis("x.py", errors=[UnknownInfo("cannot read file: denied")]),
                         FileAnalysis("clean.py")])
    assert out == "::error file=x.py,title=VL000 analysis-error::cannot read file: denied"
    assert github.render([FileAnalysis("clean.py")]) == ""
