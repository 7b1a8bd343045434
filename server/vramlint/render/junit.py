"""`--output-format junit`: JUnit XML, which CI test-report viewers read (GitLab's `reports:
junit`, Jenkins, Azure). As ruff's, one <testsuite> per file; here one <testcase> per model (the
file's own findings and analysis errors in a testcase named after the file), with a <failure>
per finding (an <error> for a file that could not be analysed, VL000). A model without findings
is a passing testcase."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vramlint.analysis.results import FileAnalysis
from vramlint.render.problems import Problem, problems, shown_path

FILE_CASE = "(file)"  # the testcase of what belongs to no model


def _case(suite: ET.Element, name: str, classname: str, found: list[Problem]) -> None:
    case = ET.SubElement(suite, "testcase", name=name, classname=classname)
    for p in found:
        where = f"{shown_path(p.path)}:{p.line}" if p.line is not None else shown_path(p.path)
        tag = "error" if p.code == "VL000" else "failure"
        el = ET.SubElement(case, tag, message=f"{p.code} [{p.name}] {p.message}", type=p.code)
        el.text = f"{where}: {p.severity} {p.code} [{p.name}] {p.message}"


def _suite(fa: FileAnalysis) -> ET.Element:
    path = shown_path(fa.path)
    suite = ET.Element("testsuite", name=path, package="vramlint")
    found = problems(fa)
    names = [m.name for m in fa.models]
    own = [p for p in found if p.model not in names]
    for name in names:
        _case(suite, name, path, [p for p in found if p.model == name])
    if own or not names:
        _case(suite, FILE_CASE, path, own)
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None and c.find("error") is None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", "0")
    return suite


def render(files: list[FileAnalysis]) -> str:
    root = ET.Element("testsuites", name="vramlint")
    suites = [_suite(fa) for fa in files]
    root.extend(suites)
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
