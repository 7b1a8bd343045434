"""The GitHub Action without GitHub: action.yml parses and passes every input the script reads,
the inputs become the right vramlint commands, the diff lands in the job summary, and the sticky
comment is created once and then updated in place, against a fake REST API on a local port."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_diff import NET, git, net_params
from vramlint.ci import github_action as action
from vramlint.render.diff import MARKER

ROOT = Path(__file__).resolve().parents[1]


def action_yml() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def test_action_yml_declares_what_the_script_reads() -> None:
    doc = action_yml()
    assert doc["runs"]["using"] == "composite"
    inputs = set(doc["inputs"])
    # Two inputs are the action's own: the interpreter it installs into and the comment's token.
    assert inputs == set(action.INPUTS) | {"python-version", "github-token"}
    steps = doc["runs"]["steps"]
    passed = {key for s in steps for key in (s.get("env") or {}) if key.startswith("INPUT_")}
    assert passed == {"INPUT_" + name.upper().replace("-", "_") for name in action.INPUTS}
    # Each INPUT_X a step sets carries the input of the same name (a typo would pass another's value).
    for s in steps:
        for key, value in (s.get("env") or {}).items():
            if key.startswith("INPUT_"):
                name = key[len("INPUT_"):].lower().replace("_", "-")
                assert value == f"${{{{ inputs.{name} }}}}", (key, value)
    runs = [s["run"] for s in steps if "run" in s]
    assert any('pip install' in r and '"$ACTION_PATH"' in r for r in runs)
    assert {"python -m vramlint.ci.github_action check", "python -m vramlint.ci.github_action diff"} <= set(runs)
    # No expression is expanded into a shell script (an input would be code): they go through env.
    assert not any("${{" in r for r in runs)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "${{ steps.check.outputs.sarif-file }}"


def env_of(**inputs: str) -> dict[str, str]:
    return {"INPUT_" + k.upper(): v for k, v in inputs.items()}


def test_inputs_to_commands() -> None:
    inputs = action.Inputs.from_env(env_of(paths="src  models/net.py", args="--gpu a100-40gb --batch-size 8",
                                           check_args="--fail-on warning", sarif="true",
                                           fail_on_increase="5"))
    (sarif, sarif_out), (annotations, out) = action.check_commands(inputs, "/tmp/r/vramlint.sarif")
    head = [sys.executable, "-m", "vramlint", "check", "src", "models/net.py", "--gpu", "a100-40gb", "--batch-size", "8",
            "--fail-on", "warning"]
    assert sarif == [*head, "--format", "sarif", "--fail-on", "never"] and sarif_out == "/tmp/r/vramlint.sarif"
    assert annotations == [*head, "--format", "github"] and out is None
    assert action.diff_command(inputs, "abc123") == [
        sys.executable, "-m", "vramlint", "diff", "abc123", "--format", "markdown", "--path", "src", "--path",
        "models/net.py", "--fail-on-increase", "5", "--gpu", "a100-40gb", "--batch-size", "8"]
    plain = action.Inputs.from_env({})
    assert plain.paths == (".",) and not plain.sarif and plain.fail_on_increase is None
    assert [c for c, _ in action.check_commands(plain, "x")] == [[sys.executable, "-m", "vramlint", "check", ".",
                                                                  "--format", "github"]]
    assert action.diff_command(plain, None)[3:] == ["diff", "--format", "markdown", "--path", "."]
    with pytest.raises(ValueError, match="input `comment`: expected true or false, got 'maybe'"):
        action.Inputs.from_env(env_of(comment="maybe"))
    assert action.main(["check"], env_of(sarif="perhaps")) == 2


# ---------------------------------------------------------------------- a fake GitHub
class FakeGitHub:
    def __init__(self, comments: list[dict[str, Any]], status: int = 200) -> None:
        self.comments, self.status = comments, status
        self.calls: list[tuple[str, str, Any]] = []


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub([])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, body: Any, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.calls.append((method, self.path, body))
            assert self.headers["Authorization"] == "Bearer secret-token"
            if fake.status != 200:
                return self.answer({"message": "Resource not accessible by integration"}, fake.status)
            m = re.fullmatch(r"/repos/o/r/issues/7/comments\?per_page=100&page=(\d+)", self.path)
            if method == "GET" and m:
                page = int(m.group(1))
                return self.answer(fake.comments[(page - 1) * 100:page * 100])
            if method == "POST" and self.path == "/repos/o/r/issues/7/comments":
                fake.comments.append({"id": 1000 + len(fake.comments), "body": body["body"]})
                return self.answer(fake.comments[-1], 201)
            m = re.fullmatch(r"/repos/o/r/issues/comments/(\d+)", self.path)
            if method == "PATCH" and m:
                c = next(c for c in fake.comments if c["id"] == int(m.group(1)))
                c["body"] = body["body"]
                return self.answer(c)
            return self.answer({"message": "Not Found"}, 404)

        def do_GET(self) -> None:
            self.handle_any("GET")

        def do_POST(self) -> None:
            self.handle_any("POST")

        def do_PATCH(self) -> None:
            self.handle_any("PATCH")

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def pr_env(tmp_path: Path, api: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    return {"GITHUB_EVENT_PATH": str(event), "GITHUB_API_URL": api, "GITHUB_REPOSITORY": "o/r",
            "GITHUB_TOKEN": "secret-token"}


def test_the_sticky_comment_is_created_then_updated(github: tuple[FakeGitHub, str], tmp_path: Path) -> None:
    fake, api = github
    # 150 other comments: vramlint's is looked for on the second page too.
    fake.comments.extend({"id": i, "body": f"comment {i}"} for i in range(150))
    env = pr_env(tmp_path, api)
    assert action.post_comment(env, f"{MARKER}\nfirst\n") == "created"
    assert fake.calls[-1] == ("POST", "/repos/o/r/issues/7/comments", {"body": f"{MARKER}\nfirst\n"})
    assert action.post_comment(env, "second, without the marker\n") == "updated"
    mine = [c for c in fake.comments if MARKER in c["body"]]
    assert mine == [{"id": 1150, "body": f"{MARKER}\nsecond, without the marker\n"}]
    assert fake.calls[-1][0] == "PATCH" and fake.calls[-1][1] == "/repos/o/r/issues/comments/1150"
    assert [c[1] for c in fake.calls if c[0] == "GET"][-2:] == [
        "/repos/o/r/issues/7/comments?per_page=100&page=1", "/repos/o/r/issues/7/comments?per_page=100&page=2"]


def test_a_read_only_token_warns(github: tuple[FakeGitHub, str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    fake, api = github
    fake.status = 403
    assert action.post_comment(pr_env(tmp_path, api), "x").startswith("failed: HTTP Error 403")
    assert "::warning title=vramlint::could not comment on pull request #7" in capsys.readouterr().out
    assert action.post_comment({"GITHUB_TOKEN": "t"}, "x") == "skipped: not a pull request"


def test_a_long_comment_is_truncated() -> None:
    body = action.comment_body("row\n" * 30000)
    assert body.startswith(MARKER) and len(body) <= action.COMMENT_LIMIT + 100
    assert body.endswith("(truncated: the job summary has the whole table)\n")


def test_the_diff_step_end_to_end(github: tuple[FakeGitHub, str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A pull request's checkout: origin/main, a branch that widens the model; the step writes the
    summary and the comment, and fails over its threshold."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake, api = github
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "model.py").write_text(NET.format(width=128))
    git(origin, "add", ".")
    git(origin, "commit", "-qm", "base")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-qb", "wider")
    (clone / "model.py").write_text(NET.format(width=1024))
    git(clone, "commit", "-qam", "wider")
    git(clone, "remote", "set-head", "origin", "--delete")  # as actions/checkout leaves it: no origin/HEAD
    git(clone, "branch", "-D", "main")  # nor a local main: only origin/main, from GITHUB_BASE_REF
    monkeypatch.chdir(clone)
    summary = tmp_path / "summary.md"
    env = {**pr_env(tmp_path, api), "GITHUB_BASE_REF": "main", "GITHUB_STEP_SUMMARY": str(summary),
           **env_of(summary="true", comment="true", fail_on_increase="1")}
    assert action.main(["diff"], env) == 1  # the training peak grew by more than 1%
    text = summary.read_text()
    assert MARKER not in text
    assert text.startswith("### vramlint: the working tree against the merge base of HEAD and `origin/main` (`")
    assert f"{net_params(128):,} → {net_params(1024):,}" in text
    (posted,) = fake.comments
    assert posted["body"].startswith(MARKER) and f"{net_params(1024):,}" in posted["body"]
    assert action.main(["diff"], env) == 1
    assert len(fake.comments) == 1  # updated in place, not a second comment
    assert summary.read_text().count("### vramlint") == 2  # the summary is appended to, as GitHub's is


def test_the_check_step(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """SARIF into the runner's temporary folder (the step's output names it), annotations in the log."""
    # 10^10 parameters trained with Adam on a batch of 8: far over an 80 GB card (VL001, an error).
    (tmp_path / "big.py").write_text("import torch\nimport torch.nn as nn\n\nbig = nn.Linear(100_000, 100_000)\n"
                                     "big(torch.randn(8, 100_000))\n")
    output = tmp_path / "output"
    env = {**env_of(paths=str(tmp_path / "big.py"), sarif="true"), "RUNNER_TEMP": str(tmp_path),
           "GITHUB_OUTPUT": str(output)}
    code = action.main(["check"], env)
    log = capfd.readouterr().out
    sarif = json.loads((tmp_path / "vramlint.sarif").read_text())
    assert output.read_text() == f"sarif-file={tmp_path / 'vramlint.sarif'}\n"
    rules = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    annotations = [line for line in log.splitlines() if line.startswith("::")]
    assert "VL001" in rules and {a.split("title=")[1].split(" ")[0] for a in annotations} == rules
    assert code == 1  # the check's exit code: an error finding (the SARIF run, --fail-on never, did not decide it)


def test_a_shallow_checkout_says_why_in_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No origin/<base branch> (actions/checkout's default fetch-depth of 1): the step fails with
    vramlint's message, in the log and the summary."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "topic")
    (repo / "m.py").write_text("import torch.nn as nn\nm = nn.Linear(2, 2)\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "only")
    monkeypatch.chdir(repo)
    summary = tmp_path / "summary.md"
    env = {"GITHUB_BASE_REF": "main", "GITHUB_STEP_SUMMARY": str(summary), **env_of(summary="true")}
    assert action.main(["diff"], env) == 2
    text = summary.read_text()
    assert text.startswith("### vramlint diff failed") and "'origin/main': unknown revision" in text
    assert "fetch-depth: 0" in text
