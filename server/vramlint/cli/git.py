"""The git that `vramlint diff` needs, read-only: the repository's root, the base revision, the
files changed since it, and the base's files written to a folder of vramlint's own.

Never touches the user's working tree, index, branches or stash: every command reads
(`rev-parse`, `merge-base`, `symbolic-ref`, `diff`, `ls-files`, `ls-tree`, `cat-file`, `show -s`), with `--no-optional-locks` so that
even the index's stat refresh that `git diff` may write is skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TIMEOUT = 120  # seconds per git command: a hung git (a credential prompt, a lock) must not hang vramlint
MAX_EXPORTED_FILE = 16 << 20  # base files above this are not exported (a checkpoint, a dataset)
KEPT_EXPORTS = 4  # base exports kept per repository (the least recently used go first)


class GitError(Exception):
    """git is missing, this is not a repository, a revision does not exist: a usage error."""


def git(root: str | None, *args: str, binary: bool = False) -> str:
    cmd = ["git", "--no-optional-locks", *args]
    try:
        r = subprocess.run(cmd, cwd=root, capture_output=True, timeout=TIMEOUT,
                           env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    except FileNotFoundError:
        raise GitError("git not found: vramlint diff needs git on the PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {' '.join(args)}` did not finish within {TIMEOUT} s") from None
    if r.returncode != 0:
        raise GitError(r.stderr.decode("utf-8", "replace").strip() or f"`git {' '.join(args)}` failed")
    return r.stdout.decode("utf-8", "surrogateescape")


def repo_root(cwd: str) -> str:
    try:
        return git(cwd, "rev-parse", "--show-toplevel").strip()
    except GitError as err:
        if "not a git repository" in str(err):
            raise GitError(f"{os.path.abspath(cwd)}: not a git repository (vramlint diff compares with a git revision)") from None
        raise


def commit_of(root: str, rev: str) -> str | None:
    try:
        return git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}").strip() or None
    except GitError:
        return None


@dataclass(frozen=True)
class Base:
    revision: str  # as the user named it, or the default branch ("origin/main")
    commit: str
    merge_base: bool = False  # the commit is the merge base of HEAD and `revision`


def resolve_base(root: str, rev: str | None) -> Base:
    """`rev` as given; `rev...` (as in `git diff rev...`): the merge base of HEAD and `rev`; none:
    the merge base of HEAD and the default branch: origin/HEAD if set, else the first of `main`,
    `master`, `origin/main`, `origin/master` that exists."""
    if rev is not None and not rev.endswith("..."):
        if rev.startswith("-"):
            raise GitError(f"{rev!r}: not a revision")
        commit = commit_of(root, rev)
        if commit is None:
            raise GitError(f"{rev!r}: unknown revision (a branch, tag or commit of {root})")
        return Base(rev, commit)
    if commit_of(root, "HEAD") is None:
        raise GitError(f"{root}: no commit yet; name the revision to compare with (vramlint diff REV)")
    other = rev[:-3] if rev is not None else _default_branch(root)
    if other is None:
        raise GitError("no default branch to compare with (none of origin/HEAD, main, master, origin/main, "
                       "origin/master exists): "
                       "name the revision (vramlint diff REV)")
    if other.startswith("-") or commit_of(root, other) is None:
        raise GitError(f"{other!r}: unknown revision (a branch, tag or commit of {root}; in a shallow clone, "
                       "fetch it: actions/checkout's fetch-depth: 0)")
    try:
        commit = git(root, "merge-base", "HEAD", other).strip()
    except GitError:
        raise GitError(f"HEAD and {other} have no common ancestor: name the revision (vramlint diff REV)") from None
    return Base(other, commit, merge_base=True)


def _default_branch(root: str) -> str | None:
    try:
        ref = git(root, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD").strip()
    except GitError:
        ref = ""
    if ref:
        return ref.removeprefix("refs/remotes/")
    # A CI checkout of a branch has origin/main but no local main.
    return next((b for b in ("main", "master", "origin/main", "origin/master") if commit_of(root, b) is not None), None)


@dataclass
class Changes:
    """Paths relative to the root, forward slashes: what differs between the base and the working
    tree (committed or not, and untracked files that are not ignored)."""

    changed: set[str] = field(default_factory=set)  # on either side (added, removed, modified, renamed)
    renames: dict[str, str] = field(default_factory=dict)  # base path -> working-tree path


def changes_since(root: str, commit: str) -> Changes:
    out = Changes()
    fields = git(root, "diff", "--name-status", "-M", "-z", "--no-ext-diff", commit, "--").split("\0")
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status[0] in "RC":
            old, new = fields[i + 1], fields[i + 2]
            out.changed |= {new} if status[0] == "C" else {old, new}
            if status[0] == "R":
                out.renames[old] = new
            i += 3
        else:
            out.changed.add(fields[i + 1])
            i += 2
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    out.changed |= {p for p in untracked if p}
    return out


def export(root: str, commit: str) -> str:
    """The base commit's files in a folder of their own, kept per repository and commit under the
    system's temporary folder: a second `vramlint diff` against the same commit finds it (same
    paths and mtimes), so the persistent cache answers the base's analyses."""
    tag = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:12]
    final = Path(tempfile.gettempdir()) / f"vramlint-base-{tag}-{commit[:16]}"
    if (final / ".vramlint-complete").is_file():
        os.utime(final / ".vramlint-complete")  # recently used: kept by _prune
        return str(final)
    _prune(final.parent, f"vramlint-base-{tag}-")
    scratch = Path(tempfile.mkdtemp(prefix=f"{final.name}.", dir=final.parent))
    try:
        _extract(root, commit, scratch)
        (scratch / ".vramlint-complete").write_text(commit + "\n")
        try:
            os.rename(scratch, final)
        except OSError:  # another run exported it first (or a stale incomplete one is there)
            if not (final / ".vramlint-complete").is_file():
                shutil.rmtree(final, ignore_errors=True)
                os.rename(scratch, final)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return str(final)


def _prune(folder: Path, prefix: str, keep: int = KEPT_EXPORTS - 1) -> None:
    """Remove this repository's least recently used exports beyond `keep` (one base per branch
    point is what a developer compares with; the folders would otherwise pile up)."""
    done = [p for p in folder.glob(f"{prefix}*") if (p / ".vramlint-complete").is_file()]
    done.sort(key=lambda p: (p / ".vramlint-complete").stat().st_mtime, reverse=True)
    for old in done[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _extract(root: str, commit: str, dest: Path) -> None:
    """The commit's regular files, as stored (`git ls-tree` and `git cat-file --batch`: unlike `git
    archive`, no `export-ignore` attribute drops a file and no `export-subst` rewrites one), each
    with the commit's time as its mtime and checked to stay inside `dest`. Symbolic links and
    submodules are left out."""
    when = int(git(root, "show", "-s", "--format=%ct", commit).strip() or 0)
    wanted: list[tuple[str, str]] = []
    for entry in git(root, "ls-tree", "-r", "-z", "--full-tree", "-l", commit).split("\0"):
        meta, _, path = entry.partition("\t")
        fields = meta.split()
        if len(fields) == 4 and fields[0] in ("100644", "100755") and fields[1] == "blob" \
                and fields[3].isdigit() and int(fields[3]) <= MAX_EXPORTED_FILE:
            wanted.append((fields[2], path))
    base = dest.resolve()
    with subprocess.Popen(["git", "--no-optional-locks", "cat-file", "--batch"], cwd=root, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        # Written from a thread: git answers while it reads, and a full pipe either way would block.
        feeder = threading.Thread(target=_feed, args=(proc.stdin, [sha for sha, _ in wanted]), daemon=True)
        feeder.start()
        for _, path in wanted:
            header = proc.stdout.readline().split()
            if len(header) != 3:  # "<sha> missing": nothing to write
                continue
            data = proc.stdout.read(int(header[2]))
            proc.stdout.read(1)  # the newline after each object
            target = (dest / path).resolve()
            if base not in target.parents:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.utime(target, (when, when))
        feeder.join()
    if proc.returncode != 0:
        raise GitError(f"git cat-file --batch failed reading {commit}")


def _feed(pipe: IO[bytes], shas: list[str]) -> None:
    try:
        for sha in shas:
            pipe.write(sha.encode() + b"\n")
        pipe.close()
    except OSError:  # git ended early: the reader sees it
        pass


def python_files(root: str) -> list[str]:
    """The working tree's Python files, tracked or untracked but not ignored (what a commit of
    everything would hold), relative to the root."""
    listed = git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.py").split("\0")
    return sorted({p for p in listed if p and os.path.isfile(os.path.join(root, p))})
