"""`vramlint check`'s conventions from ruff: `--output-format` (concise, full, json, json-lines,
sarif, github, gitlab, junit; `--format` and `text` kept), `--exit-zero`, `--statistics`,
`--quiet` / `--silent`, `output-format` in the configuration, colour (TTY, NO_COLOR,
FORCE_COLOR) and the progress bar; SARIF's fingerprints. Run as the real executable, on files
with real findings (a VL101 layer, a VL201 shape mismatch, a syntax error)."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.test_cli import vramlint
from tests.test_cli_ci import MISMATCH as CI_MISMATCH
from tests.test_cli_ci import run_all, write
from tests.test_suppressions import VGG, attention
from vramlint.analysis.api import analyze_source
from vramlint.cli.progress import FileProgress
from vramlint.render import sarif
from vramlint.render.colour import colour_wanted
from vramlint.render.problems import FINGERPRINT_KEY
from vramlint.settings import Settings

# test_cli_ci's shape mismatch, called on a batch: VL201 for the instance, VL301 for the class.
MISMATCH = "import torch\n" + CI_MISMATCH + "\n\nnet = Net()\ny = net(torch.randn(8, 64))\n"
ESC = "\x1b["


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vgg.py: VL101 (warning); mismatch.py: VL201 (error); broken.py: a syntax error (VL000)."""
    root = tmp_path_factory.mktemp("project")
    write(root, "vgg.py", VGG.format(comment=""))
    write(root, "mismatch.py", MISMATCH)
    write(root, "broken.py", "def f(:\n    pass\n")
    return root


@pytest.fixture(scope="module")
def outputs(project: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """One run per format, in parallel, the cache warmed by a first run."""
    vramlint("check", ".", cwd=project)
    names = ["concise", "full", "text", "json", "json-lines", "sarif", "github", "gitlab", "junit"]
    runs = run_all(project, *[("check", ".", "--output-format", n) for n in names])
    return dict(zip(names, runs))


def test_every_format_exits_1_on_the_error(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for name, r in outputs.items():
        assert r.returncode == 1, (name, r.stderr)
        assert ESC not in r.stdout  # a pipe: no colour


def test_text_is_full_and_format_is_an_alias(project: Path, outputs: dict[str, Any]) -> None:
    assert outputs["text"].stdout == outputs["full"].stdout
    old = vramlint("check", ".", "--format", "json", cwd=project)
    assert json.loads(old.stdout)["files"] == json.loads(outputs["json"].stdout)["files"]


def test_report_takes_output_format_too(project: Path) -> None:
    """`report` (and `diff`: tests/test_diff.py) take ruff's option name as check does."""
    new = vramlint("report", "vgg.py", "--model", "model", "--output-format", "json", cwd=project)
    old = vramlint("report", "vgg.py", "--model", "model", "--format", "json", cwd=project)
    assert new.returncode == old.returncode == 0, new.stderr
    assert json.loads(new.stdout)["files"] == json.loads(old.stdout)["files"]


def test_concise(outputs: dict[str, Any]) -> None:
    lines = outputs["concise"].stdout.splitlines()
    assert lines[-1] == "2 errors, 1 warning, 1 info"
    assert len(lines) == 5  # one line per problem, no model lines, no memory figures
    assert any(line.startswith("./broken.py:1:") and ": error: " in line for line in lines)
    assert any(line.startswith("./mismatch.py:") and " error VL201 [shape-mismatch] " in line for line in lines)
    assert any(line.startswith("./vgg.py:7:") and " warning VL101 [oversized-layer] " in line for line in lines)


def test_full_has_models_and_findings(outputs: dict[str, Any]) -> None:
    out = outputs["full"].stdout
    assert "vgg.py:4:1: model (instance): 822,130,442 parameters" in out
    assert "memory (" in out and "warning VL101 [oversized-layer]" in out


def test_json_lines(outputs: dict[str, Any]) -> None:
    objects = [json.loads(line) for line in outputs["json-lines"].stdout.splitlines()]
    assert sorted((o["code"], o["file"]) for o in objects) == [
        ("VL000", "./broken.py"), ("VL101", "./vgg.py"), ("VL201", "./mismatch.py"), ("VL301", "./mismatch.py")]
    vl101 = next(o for o in objects if o["code"] == "VL101")
    assert vl101["severity"] == "warning" and vl101["line"] == 7 and vl101["model"] == "model"


def test_gitlab_code_quality(outputs: dict[str, Any]) -> None:
    issues = json.loads(outputs["gitlab"].stdout)
    by_code = {i["check_name"]: i for i in issues}
    assert sorted(by_code) == ["VL000", "VL101", "VL201", "VL301"]
    assert by_code["VL101"]["location"] == {"path": "vgg.py", "lines": {"begin": 7}}
    assert by_code["VL101"]["severity"] == "minor" and by_code["VL201"]["severity"] == "major"
    assert by_code["VL101"]["description"].startswith("VL101 [oversized-layer] `4` (Linear) holds")
    assert by_code["VL000"]["location"]["path"] == "broken.py"
    assert by_code["VL301"]["severity"] == "info"
    assert len({i["fingerprint"] for i in issues}) == 4


def test_junit(outputs: dict[str, Any]) -> None:
    root = ET.fromstring(outputs["junit"].stdout)
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == ["broken.py", "mismatch.py", "vgg.py"]
    vgg = suites["vgg.py"]
    [case] = vgg.findall("testcase")
    assert case.get("name") == "model" and vgg.get("failures") == "1"
    [failure] = case.findall("failure")
    assert failure.get("type") == "VL101" and failure.text is not None and failure.text.startswith("vgg.py:7:")
    mismatch_cases = {c.get("name"): c for c in suites["mismatch.py"].findall("testcase")}
    assert [f.get("type") for f in mismatch_cases["net"].findall("failure")] == ["VL201"]
    assert [f.get("type") for f in mismatch_cases["Net"].findall("failure")] == ["VL301"]  # the class
    broken = suites["broken.py"]
    assert broken.get("errors") == "1" and broken.find("testcase/error").get("type") == "VL000"  # type: ignore[union-attr]
    assert root.get("failures") == str(sum(int(s.get("failures", "0")) for s in suites.values()))


def test_sarif_fingerprints_and_rules(outputs: dict[str, Any]) -> None:
    run = json.loads(outputs["sarif"].stdout)["runs"][0]
    for result in run["results"]:
        assert len(result["partialFingerprints"][FINGERPRINT_KEY]) == 32
    for rule in run["tool"]["driver"]["rules"]:
        assert rule["fullDescription"]["text"].startswith(rule["id"])
        assert rule["help"]["text"] and rule["helpUri"] in rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in run["tool"]["driver"]["rules"]}
    assert levels == {"VL000": "error", "VL101": "warning", "VL201": "error", "VL301": "note"}


def test_github_unchanged(outputs: dict[str, Any]) -> None:
    lines = outputs["github"].stdout.splitlines()
    assert any(line.startswith("::warning file=vgg.py,line=7,col=") for line in lines)
    assert any(line.startswith("::error file=broken.py,line=1,") for line in lines)


def test_exit_zero_statistics_quiet_silent(project: Path, outputs: dict[str, Any]) -> None:
    zero, stats, stats_json, quiet, silent, concise_quiet = run_all(
        project, ("check", ".", "--exit-zero"), ("check", ".", "--statistics"),
        ("check", ".", "--statistics", "--output-format", "json"), ("check", ".", "-q"),
        ("check", ".", "--silent"), ("check", ".", "--quiet", "--output-format", "concise"))
    assert zero.returncode == 0 and zero.stdout == outputs["full"].stdout
    assert stats.returncode == 1
    assert [line.split("\t") for line in stats.stdout.splitlines()] == [
        ["1", "VL000", "analysis-error"], ["1", "VL101", "oversized-layer"], ["1", "VL201", "shape-mismatch"],
        ["1", "VL301", "unresolved-input"]]
    assert json.loads(stats_json.stdout) == [{"code": "VL000", "name": "analysis-error", "count": 1},
                                             {"code": "VL101", "name": "oversized-layer", "count": 1},
                                             {"code": "VL201", "name": "shape-mismatch", "count": 1},
                                             {"code": "VL301", "name": "unresolved-input", "count": 1}]
    # --quiet: the findings (and analysis errors), no models, no summary.
    assert quiet.returncode == 1 and "parameters;" not in quiet.stdout and "memory (" not in quiet.stdout
    assert len(quiet.stdout.splitlines()) == 4 and "VL101" in quiet.stdout
    assert concise_quiet.stdout.splitlines() == outputs["concise"].stdout.splitlines()[:-1]
    assert silent.returncode == 1 and silent.stdout == ""


def test_output_format_in_the_configuration(tmp_path: Path, project: Path) -> None:
    write(tmp_path, "vgg.py", VGG.format(comment=""))
    write(tmp_path, "pyproject.toml", '[tool.vramlint]\noutput-format = "json-lines"\n')
    configured, flagged = run_all(tmp_path, ("check", "vgg.py"), ("check", "vgg.py", "--output-format", "concise"))
    assert [json.loads(line)["code"] for line in configured.stdout.splitlines()] == ["VL101"]
    assert flagged.stdout.splitlines()[-1] == "1 warning"  # the flag beats it
    write(tmp_path, "pyproject.toml", '[tool.vramlint]\noutput-format = "xml"\n')
    bad = vramlint("check", "vgg.py", cwd=tmp_path)
    assert bad.returncode == 2 and "`output-format` in [tool.vramlint]: expected one of full, concise" in bad.stderr


def test_help_lists_the_formats_and_options() -> None:
    r = vramlint("check", "--help")
    flat = " ".join(r.stdout.split())
    for name in ("--output-format", "--format", "--exit-zero", "--statistics", "--quiet", "--silent",
                 "concise:", "json-lines:", "gitlab:", "junit:"):
        assert name in flat, name


# --- colour ----------------------------------------------------------------------------------------


def env(**more: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**base, **more}


def check(project: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    exe = [sys.executable, "-m", "vramlint"]
    return subprocess.run([*exe, "check", "vgg.py", *args], capture_output=True, text=True, cwd=project,
                          env=env(**environ), timeout=300)


def test_colour_forced_refused_and_machine_formats(project: Path) -> None:
    forced = check(project, FORCE_COLOR="1")
    assert f"{ESC}1;33mwarning{ESC}0m" in forced.stdout and f"{ESC}1mVL101{ESC}0m" in forced.stdout
    assert f"{ESC}1mvgg.py:7:" in forced.stdout  # the path
    assert ESC in check(project, "--output-format", "concise", FORCE_COLOR="1").stdout
    assert ESC not in check(project, FORCE_COLOR="1", NO_COLOR="1").stdout  # NO_COLOR wins
    assert ESC not in check(project, "--output-format", "json", FORCE_COLOR="1").stdout
    # Colour changes nothing else.
    plain = check(project)
    assert forced.stdout.replace(f"{ESC}0m", "").replace(f"{ESC}1;33m", "").replace(f"{ESC}1m", "") \
        .replace(f"{ESC}2m", "") == plain.stdout


def run_on_a_terminal(project: Path, **environ: str) -> str:
    """`check vgg.py` with stdout on a pseudo-terminal: what the terminal shows."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vramlint", "check", "vgg.py"], stdout=follower,
                            stderr=subprocess.DEVNULL, cwd=project, env=env(**environ))
    os.close(follower)
    shown = read_terminal(leader, timeout=120)
    proc.wait(timeout=60)
    os.close(leader)
    return shown


def read_terminal(leader: int, timeout: float) -> str:
    """What a child wrote to its pseudo-terminal, until it closes it (or `timeout` seconds)."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def test_colour_on_a_terminal_only(project: Path) -> None:
    shown = run_on_a_terminal(project)
    assert f"{ESC}1;33mwarning{ESC}0m" in shown
    assert ESC not in run_on_a_terminal(project, NO_COLOR="1")


def test_colour_rules() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert colour_wanted(Tty(), {}) and not colour_wanted(io.StringIO(), {})
    assert colour_wanted(io.StringIO(), {"FORCE_COLOR": "1"})
    assert not colour_wanted(Tty(), {"NO_COLOR": "1"}) and not colour_wanted(Tty(), {"TERM": "dumb"})
    assert colour_wanted(Tty(), {"NO_COLOR": ""})  # no-color.org: set and not empty


# --- progress --------------------------------------------------------------------------------------


def test_progress_bar_after_the_delay() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=80)
    with FileProgress(3, delay=0.05, console=console) as progress:
        deadline = time.monotonic() + 30
        while not progress.shown and time.monotonic() < deadline:
            time.sleep(0.01)
        progress.advance()
        time.sleep(0.3)
    assert progress.shown and "analysing" in buf.getvalue() and "1/3" in buf.getvalue()


def test_no_progress_bar_when_quick_single_quiet_or_not_a_terminal() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True)
    with FileProgress(3, delay=30, console=console) as quick:  # the run ends before the delay
        quick.advance()
    with FileProgress(1, delay=0, console=console) as single:
        time.sleep(0.1)
    with FileProgress(3, enabled=False, delay=0, console=console) as quiet:
        time.sleep(0.1)
    with FileProgress(3, delay=0, stream=io.StringIO()) as piped:  # stderr not a terminal
        time.sleep(0.1)
    assert not any(p.shown for p in (quick, single, quiet, piped)) and buf.getvalue() == ""


def run_with_stderr_on_a_terminal(cwd: Path, *args: str) -> tuple[str, str, int]:
    """`check` with stderr on a pseudo-terminal and stdout to a file: (stdout, the terminal, rc)."""
    leader, follower = pty.openpty()
    with open(cwd / "stdout.txt", "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vramlint", "check", *args], stdout=out, stderr=follower,
                                cwd=cwd, env=env())
        os.close(follower)
        shown = read_terminal(leader, timeout=300)
        rc = proc.wait(timeout=300)
    os.close(leader)
    return (cwd / "stdout.txt").read_text(encoding="utf-8"), shown, rc


# A file whose module level takes the evaluator a second or two (a million loop iterations).
SLOW = "x = 0\nfor i in range(1_000_000):\n    x += i\n"


def test_progress_bar_of_a_real_run(tmp_path: Path) -> None:
    """Three slow files and three with a finding, one at a time and uncached: seconds, so the
    bar shows on the terminal (stderr) while the results go, whole, to stdout; with -q it does not."""
    for i in range(3):
        write(tmp_path / "src", f"a{i}.py", attention())
        write(tmp_path / "src", f"s{i}.py", SLOW)
    args = ("src", "--jobs", "1", "--no-cache", "--output-format", "concise")
    stdout, terminal, rc = run_with_stderr_on_a_terminal(tmp_path, *args)
    assert rc == 0 and "analysing" in terminal and "/6" in terminal
    assert [line.split(":")[0] for line in stdout.splitlines()[:-1]] == [f"src/a{i}.py" for i in range(3)]
    assert stdout.splitlines()[-1] == "3 warnings" and ESC not in stdout
    quiet_out, quiet_terminal, _ = run_with_stderr_on_a_terminal(tmp_path, *args, "-q")
    assert quiet_terminal == "" and quiet_out.splitlines() == stdout.splitlines()[:-1]


# --- fingerprints ----------------------------------------------------------------------------------


def fingerprints(tmp_path: Path, text: str) -> dict[str, tuple[str, int]]:
    fa = analyze_source(str(tmp_path / "attn.py"), text, Settings(memory=True))
    results = sarif.log([fa])["runs"][0]["results"]
    return {r["ruleId"]: (r["partialFingerprints"][FINGERPRINT_KEY],
                          r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results}


def test_fingerprints_stable_when_lines_move(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = fingerprints(tmp_path, attention())
    moved = fingerprints(tmp_path, "# a comment\n\n\n" + attention())
    assert before["VL102"][1] + 3 == moved["VL102"][1]  # the line moved...
    assert before["VL102"][0] == moved["VL102"][0]  # ...the identity did not
    # A different file, or a finding about something else, is another finding.
    monkeypatch.chdir(tmp_path.parent)
    assert fingerprints(tmp_path, attention())["VL102"][0] != before["VL102"][0]  # path now tmp/attn.py


def test_fingerprints_differ_by_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fa = analyze_source(str(tmp_path / "two.py"), "import torch.nn as nn\n"
                        "a = nn.Sequential(nn.Linear(4096, 4096), nn.Linear(8, 8))\n"
                        "b = nn.Sequential(nn.Linear(8, 8), nn.Linear(4096, 4096))\n", Settings())
    results = [r for r in sarif.log([fa])["runs"][0]["results"] if r["ruleId"] == "VL101"]
    assert len(results) == 2
    assert len({r["partialFingerprints"][FINGERPRINT_KEY] for r in results}) == 2
