"""`vramlint diff [BASE]`: the working tree against a git revision, per model.

What is compared: the Python files under `--path` (default: the current folder) that changed
since the base (committed or not, untracked files included) and those whose imports reach a
changed file of the repository (analysis/dependents.py), in both trees; every Python file under
the paths with `--all`, or when a configuration file (`pyproject.toml`, `vramlint.toml`) changed.
Each tree is analysed with its own configuration (the one nearest its files), under the same flags.

The base's files are written from git's objects (`git cat-file`) to a folder under the system's
temporary folder, kept per repository and commit (cli/git.py), and analysed through the same
persistent cache as the working tree's: a second run against the same base reads the base's
results from the cache.

Exit codes: 0; 1 with `--fail-on-increase PERCENT` when a model's peak that must fit the GPU (the
training peak, or the inference peak with `mode = "infer"`) grew by more than PERCENT, or a file of
the working tree could not be analysed; 2 usage errors: no git, not a repository, a bad revision.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

from vramlint.analysis.dependents import affected
from vramlint.analysis.diff import Comparison, compare, problems_of
from vramlint.analysis.results import FileAnalysis
from vramlint.cache.analysis import open_cache
from vramlint.cache.store import Cache
from vramlint.cli import git
from vramlint.cli.pool import analyze_all
from vramlint.settings import Settings

CONFIG_NAMES = ("pyproject.toml", "vramlint.toml")


def add_parser(sub: argparse._SubParsersAction, setup: argparse.ArgumentParser) -> None:
    from vramlint.cli.main import _positive

    p = sub.add_parser("diff", parents=[setup], help="the working tree against a git revision: each model's "
                       "parameters, peaks and largest batch, before and after")
    p.add_argument("base", nargs="?", metavar="BASE",
                   help="the revision to compare with; REV... the merge base of HEAD and REV (default: the merge "
                        "base of HEAD and the default branch: origin/HEAD, else main, master, origin/main, origin/master)")
    p.add_argument("--path", action="append", dest="paths", default=[], metavar="PATH",
                   help="a file or folder to compare (default: .); repeatable")
    p.add_argument("--all", action="store_true", dest="all_files",
                   help="compare every Python file under the paths, not only those a change can reach")
    p.add_argument("--output-format", "--format", dest="format", choices=["text", "json", "markdown"], default="text",
                   help="text (default); json: the document of docs/ci.md; markdown: for a pull-request comment "
                        "or $GITHUB_STEP_SUMMARY")
    p.add_argument("--fail-on-increase", type=_percent, metavar="PERCENT",
                   help="exit 1 when a model's peak that must fit the GPU (training, or inference with mode = "
                        "infer) grew by more than PERCENT percent")
    p.add_argument("--jobs", type=_positive, metavar="N", help="files analysed in parallel (default: all cores)")
    p.set_defaults(model=[])  # every model (settings_for reads the filter `check --model` sets)


def _percent(v: str) -> float:
    try:
        p = float(v.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 5 or 2.5, got {v!r}") from None
    if not p >= 0 or p == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a percentage of 0 or more, got {v!r}")
    return p


def run_diff(args: argparse.Namespace) -> int:
    from vramlint.render import diff as render

    comparison = diff(args)
    if args.format == "json":
        print(json.dumps(render.document(comparison), indent=2))
    elif args.format == "markdown":
        print(render.markdown(comparison))
    else:
        print(render.text(comparison))
    return 1 if comparison.failed() else 0


@dataclass(frozen=True)
class _Trees:
    root: str  # the working tree's
    base_root: str  # the base's export
    base: git.Base
    changes: git.Changes


def diff(args: argparse.Namespace) -> Comparison:
    from vramlint.cli.main import settings_for

    paths = args.paths or ["."]
    trees = _trees(paths, args.base)
    rels = [_relative(trees.root, p) for p in paths]
    head_files, base_files = _selected(trees, rels, args.all_files)
    head_settings = settings_for(args, Path(paths[0]).resolve())
    start = Path(trees.base_root) / rels[0]
    base_settings = settings_for(args, start if start.exists() else Path(trees.base_root))
    cache = open_cache(head_settings, args.cache_dir, enabled=not args.no_cache)
    jobs = args.jobs or os.cpu_count() or 1
    head = _analyse(trees.root, head_files, head_settings, jobs, cache)
    old = _analyse(trees.base_root, base_files, base_settings, jobs, cache)
    head_rel, base_rel = _rel_map(trees.root, head), _rel_map(trees.base_root, old)
    return Comparison(trees.base.revision, trees.base.commit, trees.base.merge_base,
                      models=compare(old, head, base_rel, head_rel, trees.changes.renames),
                      problems=problems_of("base", old, base_rel) + problems_of("working tree", head, head_rel),
                      files=sorted(set(head_files) | set(base_files)), fail_on_increase=args.fail_on_increase)


def _trees(paths: list[str], rev: str | None) -> _Trees:
    """The repository, the base, what changed since it, and the base's files (usage errors: exit 2)."""
    from vramlint.cli.main import UsageError

    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UsageError("; ".join(f"{p}: no such file or directory" for p in missing))
    first = paths[0] if os.path.isdir(paths[0]) else os.path.dirname(paths[0]) or "."
    try:
        root = os.path.realpath(git.repo_root(first))
        base = git.resolve_base(root, rev)
        changes = git.changes_since(root, base.commit)
        return _Trees(root, os.path.realpath(git.export(root, base.commit)), base, changes)
    except git.GitError as err:
        raise UsageError(str(err)) from None


def _selected(trees: _Trees, rels: list[str], everything: bool) -> tuple[list[str], list[str]]:
    """The files to analyse in each tree (relative paths): those under the paths that a change can
    reach (analysis/dependents.py), or all of them with --all or a changed configuration file."""
    from vramlint.cli.main import UsageError

    try:
        head_all = [f for f in git.python_files(trees.root) if not _skipped(f)]
    except git.GitError as err:
        raise UsageError(str(err)) from None
    base_all = _python_files(trees.base_root)
    head_under = {f for f in head_all if _under(f, rels)}
    base_under = {f for f in base_all if _under(f, rels)}
    changed, renames = trees.changes.changed, trees.changes.renames
    if everything or any(Path(p).name in CONFIG_NAMES for p in changed):
        wanted = head_under | {renames.get(f, f) for f in base_under}
    else:
        wanted = affected(trees.root, head_all, changed, head_under) | \
            {renames.get(f, f) for f in affected(trees.base_root, base_all, changed, base_under)}
    back = {new: old for old, new in renames.items()}
    return sorted(f for f in wanted if f in head_under), sorted(b for b in (back.get(f, f) for f in wanted)
                                                                 if b in base_under)


def _analyse(root: str, files: list[str], settings: Settings, jobs: int, cache: Cache | None) -> list[FileAnalysis]:
    return list(analyze_all([os.path.join(root, f) for f in files], settings, jobs, cache))


def _rel_map(root: str, results: list[FileAnalysis]) -> dict[str, str]:
    return {fa.path: _relative(root, fa.path) for fa in results}


def _relative(root: str, path: str) -> str:
    from vramlint.cli.main import UsageError

    rel = os.path.relpath(os.path.realpath(path), root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise UsageError(f"{path}: outside the repository {root}")
    return Path(rel).as_posix()


def _under(rel: str, roots: list[str]) -> bool:
    return any(r == "." or rel == r or rel.startswith(r.rstrip("/") + "/") for r in roots)


def _skipped(rel: str) -> bool:
    """In a folder `check` does not walk (a virtual environment, build output, a dot folder)."""
    from vramlint.cli.main import SKIP_DIRS

    return any(d in SKIP_DIRS or d.startswith(".") for d in Path(rel).parts[:-1])


def _python_files(root: str) -> list[str]:
    """Every Python file of the exported base, relative to it (skipped folders as `check` skips them)."""
    out = []
    for dirpath, _, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out += [Path(rel, name).as_posix().removeprefix("./") for name in filenames if name.endswith(".py")]
    return sorted(f for f in out if not _skipped(f))
