"""The logic of the repository's GitHub Action (`action.yml`, docs/ci.md), testable without GitHub.

`python -m vramlint.ci.github_action check`: `vramlint check` on the action's paths, once as SARIF
into a file for code scanning (its path is the step's `sarif-file` output) and once as workflow
annotations; exits with the check's code.

`python -m vramlint.ci.github_action diff`: `vramlint diff --format markdown` against the pull
request's base (`origin/<base branch>...`: the merge base of HEAD and it; the `base` input overrides it),
appended to `$GITHUB_STEP_SUMMARY` and/or posted as one pull-request comment that later runs
update in place (found by the hidden marker line `render/diff.MARKER`); exits with the diff's code
(1 over `fail-on-increase`).

The inputs arrive as `INPUT_<NAME>` environment variables (action.yml's steps set them: a
composite action does not); GitHub's own variables (`GITHUB_EVENT_PATH`, `GITHUB_API_URL`...) as
the runner sets them. The comment goes through GitHub's REST API with `urllib` and `GITHUB_TOKEN`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vramlint.render.diff import MARKER

# The inputs this script reads: action.yml declares the same (tests/test_github_action.py).
INPUTS = ("paths", "args", "check-args", "sarif", "summary", "comment", "fail-on-increase", "base")
COMMENT_LIMIT = 65000  # GitHub refuses comment bodies over 65,536 characters
VRAMLINT = [sys.executable, "-m", "vramlint"]


@dataclass(frozen=True)
class Inputs:
    paths: tuple[str, ...]
    args: tuple[str, ...]  # both commands' (the setup options: --gpu, --batch-size...)
    check_args: tuple[str, ...]  # check's alone (--fail-on, --model)
    sarif: bool
    summary: bool
    comment: bool
    fail_on_increase: str | None
    base: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Inputs:
        def get(name: str) -> str:
            return env.get("INPUT_" + name.upper().replace("-", "_"), "").strip()

        return cls(paths=tuple(shlex.split(get("paths"))) or (".",), args=tuple(shlex.split(get("args"))),
                   check_args=tuple(shlex.split(get("check-args"))),
                   sarif=_flag(get("sarif"), "sarif"), summary=_flag(get("summary"), "summary"),
                   comment=_flag(get("comment"), "comment"), fail_on_increase=get("fail-on-increase") or None,
                   base=get("base") or None)


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("true", "yes", "1", "on"):
        return True
    if value.lower() in ("", "false", "no", "0", "off"):
        return False
    raise ValueError(f"input `{name}`: expected true or false, got {value!r}")


def check_commands(inputs: Inputs, sarif_file: str) -> list[tuple[list[str], str | None]]:
    """The `vramlint check` runs: (command, the file its stdout goes to; None: the log). The
    second run reads the first's results from the cache."""
    base = [*VRAMLINT, "check", *inputs.paths, *inputs.args, *inputs.check_args]
    runs: list[tuple[list[str], str | None]] = []
    if inputs.sarif:
        runs.append(([*base, "--format", "sarif", "--fail-on", "never"], sarif_file))
    runs.append(([*base, "--format", "github"], None))
    return runs


def diff_command(inputs: Inputs, base: str | None) -> list[str]:
    cmd = [*VRAMLINT, "diff", *([base] if base else []), "--format", "markdown"]
    cmd += [arg for p in inputs.paths for arg in ("--path", p)]
    if inputs.fail_on_increase is not None:
        cmd += ["--fail-on-increase", inputs.fail_on_increase]
    return [*cmd, *inputs.args]


def pull_request_number(env: Mapping[str, str]) -> int | None:
    """The pull request of the event that runs the workflow (pull_request, pull_request_target)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            event = json.load(fh)
    except (OSError, ValueError):
        return None
    number = (event.get("pull_request") or {}).get("number") if isinstance(event, dict) else None
    return number if isinstance(number, int) else None


def default_base(env: Mapping[str, str]) -> str | None:
    """In a pull request: `origin/<base branch>...`, the merge base of HEAD and the base branch,
    which is the branch's tip for the merge commit actions/checkout checks out (the base branch must
    be fetched: fetch-depth: 0). Else None: vramlint's own default (the merge base with the default
    branch)."""
    branch = env.get("GITHUB_BASE_REF")
    return f"origin/{branch}..." if branch else None


# ---------------------------------------------------------------------- the sticky comment
class GitHub:
    """The few REST calls the comment needs."""

    def __init__(self, api: str, repository: str, token: str) -> None:
        self.api, self.repository, self.token = api.rstrip("/"), repository, token

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.api}{path}", data=data, method=method, headers={
            "Accept": "application/vnd.github+json", "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "vramlint-action",
            **({"Content-Type": "application/json"} if data is not None else {})})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def comments(self, number: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in range(1, 51):  # 5,000 comments: far more than a pull request has
            batch = self.request("GET", f"/repos/{self.repository}/issues/{number}/comments?per_page=100&page={page}")
            out.extend(batch)
            if len(batch) < 100:
                break
        return out

    def upsert(self, number: int, body: str) -> str:
        """Update vramlint's comment (the first with the marker) or create it: "updated"/"created"."""
        mine = next((c for c in self.comments(number) if MARKER in (c.get("body") or "")), None)
        if mine is not None:
            self.request("PATCH", f"/repos/{self.repository}/issues/comments/{mine['id']}", {"body": body})
            return "updated"
        self.request("POST", f"/repos/{self.repository}/issues/{number}/comments", {"body": body})
        return "created"


def comment_body(markdown: str) -> str:
    body = markdown if MARKER in markdown else f"{MARKER}\n{markdown}"
    if len(body) > COMMENT_LIMIT:
        body = body[:COMMENT_LIMIT].rsplit("\n", 1)[0] + "\n\n(truncated: the job summary has the whole table)\n"
    return body


def post_comment(env: Mapping[str, str], markdown: str) -> str:
    """Post or update the comment; a failure (a fork's read-only token) is a warning, not the job's."""
    number = pull_request_number(env)
    if number is None:
        return "skipped: not a pull request"
    token, repository = env.get("GITHUB_TOKEN", ""), env.get("GITHUB_REPOSITORY", "")
    if not token or not repository:
        return "skipped: no GITHUB_TOKEN or GITHUB_REPOSITORY"
    try:
        return GitHub(env.get("GITHUB_API_URL", "https://api.github.com"), repository, token).upsert(
            number, comment_body(markdown))
    except (urllib.error.URLError, OSError, ValueError) as err:
        print(f"::warning title=vramlint::could not comment on pull request #{number} ({err}); a pull request "
              "from a fork gets a read-only token: use the job summary there", flush=True)
        return f"failed: {err}"


# ---------------------------------------------------------------------- the steps
def run_check(inputs: Inputs, env: Mapping[str, str]) -> int:
    sarif_file = os.path.join(env.get("RUNNER_TEMP") or ".", "vramlint.sarif")
    code = 0
    for cmd, out in check_commands(inputs, sarif_file):
        print(f"$ {shlex.join(cmd[2:])}", flush=True)
        if out is None:
            code = subprocess.run(cmd).returncode
            continue
        with open(out, "w", encoding="utf-8") as fh:
            r = subprocess.run(cmd, stdout=fh)
        if r.returncode == 0:
            _output(env, "sarif-file", out)
        else:
            code = r.returncode
    return code


def run_diff(inputs: Inputs, env: Mapping[str, str]) -> int:
    base = inputs.base or default_base(env)
    cmd = diff_command(inputs, base)
    print(f"$ {shlex.join(cmd[2:])}", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode not in (0, 1):
        # The message in a code block (a fence it cannot close: it holds no run of four backticks).
        report = f"{MARKER}\n### vramlint diff failed\n\n````\n{r.stderr.strip().replace('````', '')}\n````\n"
    else:
        report = r.stdout
    print(report, flush=True)
    if inputs.summary and env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as fh:
            fh.write(report.replace(MARKER + "\n", "") + "\n")
    if inputs.comment:
        print(f"pull-request comment: {post_comment(env, report)}", flush=True)
    return r.returncode


def _output(env: Mapping[str, str], name: str, value: str) -> None:
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as fh:
            fh.write(f"{name}={value}\n")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    if argv not in (["check"], ["diff"]):
        print("usage: python -m vramlint.ci.github_action check|diff", file=sys.stderr)
        return 2
    try:
        inputs = Inputs.from_env(env)
    except ValueError as err:
        print(f"::error title=vramlint::{err}", flush=True)
        return 2
    return run_check(inputs, env) if argv == ["check"] else run_diff(inputs, env)


if __name__ == "__main__":
    sys.exit(main())
