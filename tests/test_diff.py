"""`vramlint diff` in real temporary git repositories: a Linear widened (committed, and not),
models added, removed and renamed, a helper module's change reaching a model in another file,
the cache answering the base's analysis on a second run, `--fail-on-increase`, and the errors
(no git, not a repository, a bad revision) that end in exit code 2 with a clear message.
The user's working tree, index, branches and stash are never touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import vramlint
from vramlint.analysis.dependents import affected, imported_names

NET = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, {width}), nn.ReLU())
        self.head = nn.Linear({width}, 10)

    def forward(self, x):
        return self.head(self.body(x))


model = Net()
out = model(torch.randn(32, 64))
"""


def linear(i: int, o: int) -> int:
    return i * o + o


def net_params(width: int) -> int:
    return linear(64, width) + linear(width, 10)


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository on `main` with one commit: model.py (Net of width 128) and other.py."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the base's export stays in the test's folder
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # and for the tests run in-process
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "model.py").write_text(NET.format(width=128))
    (r / "other.py").write_text("import torch.nn as nn\n\nother = nn.Linear(3, 4)\n")
    git(r, "add", ".")
    git(r, "commit", "-qm", "base")
    return r


def run_diff(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return vramlint("diff", *args, cwd=repo)


def diff_json(repo: Path, *args: str) -> dict[str, Any]:
    r = run_diff(repo, "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in doc["models"]}


def state(repo: Path) -> tuple[str, ...]:
    """What the user owns: the status, the branches, HEAD, the stash, the worktrees, the index's bytes."""
    # (--no-optional-locks: this check's own `git status` must not refresh the index it compares.)
    index = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return (git(repo, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all"), git(repo, "branch", "-a", "-v"),
            git(repo, "rev-parse", "HEAD"), git(repo, "stash", "list"), git(repo, "worktree", "list"), index,
            (repo / "model.py").read_text())


def test_a_widened_linear_committed_on_a_branch(repo: Path) -> None:
    git(repo, "checkout", "-qb", "feature")
    (repo / "model.py").write_text(NET.format(width=256))
    git(repo, "commit", "-qam", "wider")
    before = state(repo)
    doc = diff_json(repo)  # default base: the merge base of HEAD and main
    assert state(repo) == before
    assert doc["schema"] == "vramlint-diff/1"
    assert doc["base"] == {"revision": "main", "commit": git(repo, "rev-parse", "main").strip(), "merge_base": True}
    assert doc["files"] == ["model.py"]  # other.py did not change and imports nothing that did
    models = by_name(doc)
    assert set(models) == {"Net", "model"}
    m = models["model"]
    assert m["status"] == "changed" and m["path"] == "model.py"
    assert (m["before"]["params"], m["after"]["params"]) == (net_params(128), net_params(256))
    assert m["change"]["params"] == net_params(256) - net_params(128)
    # Twice the weights, gradients and Adam's two moments: the training peak grows.
    assert m["after"]["train_peak"] > m["before"]["train_peak"]
    assert m["change"]["train_peak"] == m["after"]["train_peak"] - m["before"]["train_peak"]
    assert m["layers"] == [
        {"path": "body.0", "change": "changed", "type_before": "Linear", "type_after": "Linear",
         "params_before": linear(64, 128), "params_after": linear(64, 256)},
        {"path": "head", "change": "changed", "type_before": "Linear", "type_after": "Linear",
         "params_before": linear(128, 10), "params_after": linear(256, 10)}]


def test_uncommitted_changes_against_head_in_text_and_markdown(repo: Path) -> None:
    (repo / "model.py").write_text(NET.format(width=96))
    before = state(repo)
    r = run_diff(repo, "HEAD")
    assert r.returncode == 0, r.stderr
    assert state(repo) == before
    lines = r.stdout.splitlines()
    assert lines[0].startswith("vramlint diff: the working tree against HEAD (")
    assert "model.py:15: model (changed)" in lines
    delta = net_params(96) - net_params(128)
    assert f"    parameters      {net_params(128):,} -> {net_params(96):,} ({delta:,}, " in r.stdout
    assert f"      ~ body.0 (Linear): {linear(64, 128):,} -> {linear(64, 96):,} parameters" in lines
    assert lines[-1] == "2 models compared: 2 changed, 0 added, 0 removed, 0 unchanged"

    md = run_diff(repo, "HEAD", "--format", "markdown").stdout.splitlines()
    assert md[0] == "<!-- vramlint-diff -->"
    assert md[1].startswith("### vramlint: the working tree against `HEAD` (`")
    row = next(line for line in md if line.startswith("| `model.py:15` | model | changed |"))
    assert f"{net_params(128):,} → {net_params(96):,}" in row and row.endswith("| ✓ |")
    assert "<details><summary>Layers of model (model.py) that changed</summary>" in md
    # ruff's option name, as check's: --output-format, --format its alias.
    assert run_diff(repo, "HEAD", "--output-format", "markdown").stdout.splitlines() == md


def test_models_added_removed_and_renamed(repo: Path) -> None:
    git(repo, "mv", "other.py", "renamed.py")
    (repo / "added.py").write_text("import torch.nn as nn\n\nnew_layer = nn.Linear(5, 7)\n")
    (repo / "model.py").unlink()
    doc = diff_json(repo, "HEAD")
    models = by_name(doc)
    assert models["new_layer"]["status"] == "added" and models["new_layer"]["before"] is None
    assert models["new_layer"]["after"]["params"] == linear(5, 7)
    assert models["model"]["status"] == "removed" and models["model"]["after"] is None
    assert models["model"]["before"]["params"] == net_params(128)
    # git sees the rename: the model is the same one, unchanged, under its new path.
    assert models["other"]["status"] == "unchanged"
    assert (models["other"]["path"], models["other"]["renamed_from"]) == ("renamed.py", "other.py")
    text = run_diff(repo, "HEAD").stdout
    assert "added.py:3: new_layer (added)" in text and "model.py:15: model (removed)" in text
    assert "other" not in text.split("\n", 1)[1]  # unchanged models are only counted


def test_a_helper_module_changes_a_model_in_another_file(repo: Path) -> None:
    (repo / "layers.py").write_text("WIDTH = 128\n")
    (repo / "model.py").write_text("from layers import WIDTH\n" + NET.format(width="WIDTH"))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "helper")
    (repo / "layers.py").write_text("WIDTH = 512\n")
    doc = diff_json(repo, "HEAD")
    assert doc["files"] == ["layers.py", "model.py"]
    m = by_name(doc)["model"]
    assert (m["before"]["params"], m["after"]["params"]) == (net_params(128), net_params(512))
    # --all compares every file; other.py's model is there, unchanged.
    everything = by_name(diff_json(repo, "HEAD", "--all"))
    assert everything["other"]["status"] == "unchanged"


def test_the_import_graph_is_read_from_syntax() -> None:
    assert imported_names("from .sub import x\nimport a.b\n", "pkg/mod.py") >= {"pkg.sub", "pkg.sub.x", "a", "a.b"}
    assert imported_names("def broken(:\n", "x.py") == set()


def test_affected_follows_imports_transitively(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "pkg" / "blocks.py").write_text("X = 1\n")
    (tmp_path / "src" / "pkg" / "net.py").write_text("from .blocks import X\n")
    (tmp_path / "train.py").write_text("from pkg.net import X\n")
    (tmp_path / "alone.py").write_text("import os\n")
    files = ["src/pkg/__init__.py", "src/pkg/blocks.py", "src/pkg/net.py", "train.py", "alone.py"]
    assert affected(str(tmp_path), files, {"src/pkg/blocks.py"}) == {"src/pkg/blocks.py", "src/pkg/net.py", "train.py"}


def test_fail_on_increase(repo: Path) -> None:
    (repo / "model.py").write_text(NET.format(width=4096))
    peaks = by_name(diff_json(repo, "HEAD"))["model"]
    grew = peaks["percent"]["train_peak"]
    assert grew > 0
    r = run_diff(repo, "HEAD", "--fail-on-increase", f"{grew / 2:.3f}")
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines()[-1] == f"fail-on-increase: model (model.py): the training peak grew by {grew:.1f}%, " \
                                        f"more than {float(f'{grew / 2:.3f}'):g}%"
    passed = run_diff(repo, "HEAD", "--fail-on-increase", f"{grew * 2:.3f}")
    assert passed.returncode == 0 and "fail-on-increase" not in passed.stdout
    assert run_diff(repo, "HEAD").returncode == 0  # without the option: a report, never a failure
    bad = run_diff(repo, "HEAD", "--fail-on-increase", "lots")
    assert bad.returncode == 2 and "expected a percentage" in bad.stderr


def test_a_syntax_error_in_the_working_tree_fails_the_gate(repo: Path) -> None:
    (repo / "model.py").write_text("class Broken(:\n")
    r = run_diff(repo, "HEAD", "--fail-on-increase", "10")
    assert r.returncode == 1
    assert "model.py: error (working tree):" in r.stdout


def test_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import torch.nn as nn\nx = nn.Linear(2, 2)\n")
    r = vramlint("diff", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("vramlint: error: ") and "not a git repository" in r.stderr
    assert r.stdout == ""


def test_a_bad_revision(repo: Path) -> None:
    r = run_diff(repo, "no-such-branch")
    assert r.returncode == 2 and "'no-such-branch': unknown revision" in r.stderr
    r = run_diff(repo, "--", "--output=/tmp/x")  # an option smuggled as a revision is refused
    assert r.returncode == 2 and "not a revision" in r.stderr


def test_no_default_branch(repo: Path) -> None:
    git(repo, "branch", "-m", "main", "trunk")
    r = run_diff(repo)
    assert r.returncode == 2 and "no default branch" in r.stderr and "vramlint diff REV" in r.stderr


def test_a_ci_checkout_of_a_branch_compares_with_origin_main(repo: Path, tmp_path: Path) -> None:
    """A push to a branch, checked out as CI does it: origin/main, no local main, no origin/HEAD."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-qb", "topic")
    git(clone, "remote", "set-head", "origin", "--delete")
    git(clone, "branch", "-D", "main")
    (clone / "model.py").write_text(NET.format(width=64))
    doc = diff_json(clone)
    assert doc["base"]["revision"] == "origin/main" and doc["base"]["merge_base"]
    assert by_name(doc)["model"]["after"]["params"] == net_params(64)


def test_git_missing(repo: Path, tmp_path: Path) -> None:
    import shutil
    import sys

    exe = shutil.which("vramlint", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "vramlint"]
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    r = subprocess.run([*cmd, "diff"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "git not found" in r.stderr


def test_the_cache_answers_the_base_on_a_second_run(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from vramlint.analysis import api
    from vramlint.cli.main import main

    (repo / "model.py").write_text(NET.format(width=200))
    monkeypatch.delenv("VRAMLINT_NO_CACHE", raising=False)
    monkeypatch.chdir(repo)
    analysed: list[str] = []
    real = api.analyze_data

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        analysed.append(os.path.basename(os.path.dirname(path)))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(api, "analyze_data", counting)
    args = ["diff", "HEAD", "--jobs", "1", "--format", "json", "--cache-dir", str(repo.parent / "cache")]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(analysed) == 2 and analysed[0] == "repo" and analysed[1].startswith("vramlint-base-")
    analysed.clear()
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert analysed == []  # both sides from the cache; the base's export was kept (same paths and mtimes)


def test_old_exports_are_pruned(repo: Path) -> None:
    from vramlint.cli import git as vgit

    commits = []
    for width in (10, 20, 30, 40, 50, 60):
        (repo / "model.py").write_text(NET.format(width=width))
        git(repo, "commit", "-qam", f"w{width}")
        commits.append(git(repo, "rev-parse", "HEAD").strip())
    exports = [vgit.export(str(repo), c) for c in commits]
    kept = sorted(p.name for p in (repo.parent / "tmp").glob("vramlint-base-*"))
    assert kept == sorted(Path(e).name for e in exports[-vgit.KEPT_EXPORTS:])
    assert (Path(exports[-1]) / "model.py").read_text() == NET.format(width=60)


def test_repeated_layers_are_grouped() -> None:
    from vramlint.analysis.diff import CHANGED, LayerChange, grouped

    def ch(path: str, before: int = 1, after: int = 2) -> LayerChange:
        return LayerChange(path, CHANGED, "Linear", "Linear", before, after)

    layers = [ch(f"h.{i}.mlp.fc") for i in range(12)] + [ch("h.3.attn", 5, 6), ch("h.7.attn", 5, 6)] + \
        [ch(f"enc.{i}.layers.{j}") for i in range(2) for j in range(2)] + [ch("head", 3, 4)]
    assert [(c.path, n) for c, n in grouped(layers)] == [
        ("h.{0..11}.mlp.fc", 12), ("h.{3,7}.attn", 2), ("enc.*.layers.*", 4), ("head", 1)]
    # A different change to one of the repeated layers is its own line.
    assert [(c.path, n) for c, n in grouped([ch("b.0"), ch("b.1"), ch("b.2", 1, 9)])] == [("b.{0..1}", 2), ("b.2", 1)]


def test_three_dots_compare_with_the_merge_base(repo: Path) -> None:
    """`vramlint diff main...`: the branch's own change, even after main moved on (as `git diff main...`)."""
    fork = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-qb", "feature")
    (repo / "model.py").write_text(NET.format(width=256))
    git(repo, "commit", "-qam", "wider")
    git(repo, "checkout", "-q", "main")
    (repo / "other.py").write_text("import torch.nn as nn\n\nother = nn.Linear(30, 40)\n")
    git(repo, "commit", "-qam", "main moves on")
    git(repo, "checkout", "-q", "feature")
    doc = diff_json(repo, "main...")
    assert doc["base"] == {"revision": "main", "commit": fork, "merge_base": True}
    assert doc["files"] == ["model.py"]
    against_tip = by_name(diff_json(repo, "main"))  # main's own change shows, reversed
    assert against_tip["other"]["status"] == "changed"
    r = run_diff(repo, f"{fork[:10]}")
    assert r.stdout.splitlines()[0] == f"vramlint diff: the working tree against {fork[:12]}"
    bad = run_diff(repo, "origin/main...")
    assert bad.returncode == 2 and "'origin/main': unknown revision" in bad.stderr and "fetch-depth: 0" in bad.stderr


def test_affected_reads_only_what_the_start_files_reach(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("try:\n    import c\nexcept ImportError:\n    pass\n")  # nested in a block
    (tmp_path / "c.py").write_text("X = 1\n")
    (tmp_path / "unrelated.py").write_text("import c\n")
    (tmp_path / "unreadable.py").write_bytes(b"\xff\xfe import c")
    files = ["a.py", "b.py", "c.py", "unrelated.py", "unreadable.py"]
    assert affected(str(tmp_path), files, {"c.py"}, start=["a.py"]) == {"a.py"}
    assert affected(str(tmp_path), files, {"c.py"}) == {"a.py", "b.py", "c.py", "unrelated.py"}
    assert affected(str(tmp_path), files, {"nothing.py"}) == set()


def test_a_model_that_stops_fitting(repo: Path) -> None:
    """On a 1 GiB card the width-128 model fits and a width-262144 one (19.7M parameters, Adam) does not."""
    (repo / "model.py").write_text(NET.format(width=262144))
    m = by_name(diff_json(repo, "HEAD", "--gpu", "1GiB"))["model"]
    assert (m["before"]["fits"], m["after"]["fits"]) == (True, False)
    text = run_diff(repo, "HEAD", "--gpu", "1GiB").stdout
    assert "    fits the 1GiB: yes -> no" in text.splitlines()
    row = next(line for line in run_diff(repo, "HEAD", "--gpu", "1GiB", "--format", "markdown").stdout.splitlines()
               if line.startswith("| `model.py:15`"))
    assert row.endswith("| ✓ → ✗ |")


def test_the_base_is_read_as_committed(repo: Path) -> None:
    """An `export-ignore` attribute (which `git archive` obeys) does not hide a base file, an
    executable file is exported, a symbolic link is not followed out of the tree."""
    (repo / ".gitattributes").write_text("models/** export-ignore\n")
    (repo / "models").mkdir()
    (repo / "models" / "net.py").write_text("import torch.nn as nn\n\nnet = nn.Linear(4, 4)\n")
    (repo / "models" / "run.py").write_text("print(1)\n")
    (repo / "models" / "run.py").chmod(0o755)
    (repo / "models" / "outside.py").symlink_to("/etc/hostname")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "models")
    (repo / "models" / "net.py").write_text("import torch.nn as nn\n\nnet = nn.Linear(4, 8)\n")
    before = state(repo)
    net = by_name(diff_json(repo, "HEAD"))["net"]
    assert state(repo) == before
    assert net["status"] == "changed" and (net["before"]["params"], net["after"]["params"]) == (20, 40)
    from vramlint.cli import git as vgit

    exported = Path(vgit.export(str(repo), git(repo, "rev-parse", "HEAD").strip()))
    assert (exported / "models" / "run.py").read_text() == "print(1)\n"
    assert not (exported / "models" / "outside.py").exists()
    assert (exported / "model.py").stat().st_mtime == int(git(repo, "show", "-s", "--format=%ct", "HEAD"))


def test_nothing_changed(repo: Path) -> None:
    r = run_diff(repo, "HEAD")
    assert r.returncode == 0
    assert r.stdout.splitlines()[1:] == ["no Python file under the paths changed since the base, nor imports one that did"]
    (repo / "notes.py").write_text("x = 1\n")
    assert run_diff(repo, "HEAD").stdout.splitlines()[1:] == ["no models in the 1 file compared"]


def test_a_renamed_file_with_a_changed_model(repo: Path) -> None:
    git(repo, "mv", "model.py", "net.py")
    (repo / "net.py").write_text(NET.format(width=120))  # similar enough for git to see a rename
    m = by_name(diff_json(repo, "HEAD"))["model"]
    assert (m["status"], m["path"], m["renamed_from"]) == ("changed", "net.py", "model.py")
    assert "net.py:15: model (changed, renamed from model.py)" in run_diff(repo, "HEAD").stdout
    md = run_diff(repo, "HEAD", "--format", "markdown").stdout
    assert "| `net.py:15` | model | changed, renamed from `model.py` |" in md
