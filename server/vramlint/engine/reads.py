"""What an analysis read from the disk, for the persistent cache (vramlint/cache/).

Every reader of the engine and the frontends goes through a few chokepoints that note here what
they saw: `source.read_source_file` (source files, configs, JSON), the loader's editor overlays,
its failed imports (the folders searched: a package installed later must invalidate), and the
existence probes of rules that look for a file (`isfile`). One analysis runs at a time per process
(analysis/api.py serialises them), so one log is current at a time.

Library modules are evaluated once per process and shared by later analyses, which then read
nothing from their files. So, beside what each analysis noted itself, the log keeps for the
process which file imported which (`edges`, from the importing statement's module): an analysis
depends on the closure of what it noted over those edges, as mypy's per-file cache depends on its
transitive imports. It is conservative (an import some other analysis made through a shared
module counts), never short of what was used.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from vramlint.engine.name_reads import note_file_read

DIGEST_SIZE = 16


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


@dataclass(frozen=True)
class FileState:
    """A file's content as read: its digest, and the (size, mtime_ns) stat gave with it (-1:
    editor text, which has no stat: checked by digest)."""

    digest: str
    size: int = -1
    mtime_ns: int = -1


# What a probe found: "file", "dir", "other", or None (nothing there).
def path_kind(path: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"


def dir_mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except (OSError, ValueError):
        return None


@dataclass
class Deps:
    """What one analysis depends on, besides its own text and settings."""

    files: dict[str, FileState] = field(default_factory=dict)  # contents read
    probes: dict[str, str | None] = field(default_factory=dict)  # path -> path_kind when looked at
    # Folders whose packages' metadata was read: (mtime_ns, digest of their `*.dist-info` names).
    dirs: dict[str, tuple[int | None, str]] = field(default_factory=dict)


@dataclass
class _Process:
    """What the process has seen, shared by its analyses."""

    files: dict[str, FileState] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)  # importer's path -> what it led to
    failed: dict[str, dict[str, str | None]] = field(default_factory=dict)  # module -> paths looked for


_process = _Process()
_current: set[str] | None = None  # paths noted by the analysis under way
_probes: dict[str, str | None] = {}
_dirs: dict[str, tuple[int | None, str]] = {}


def start() -> None:
    """Begin noting for one analysis (the caller holds analysis.api's lock)."""
    global _current
    _current = set()
    _probes.clear()
    _dirs.clear()


def finish() -> Deps | None:
    """Stop noting; what the analysis depends on, the import closure included (None when not started)."""
    global _current
    noted, _current = _current, None
    if noted is None:
        return None
    seen: set[str] = set()
    todo = list(noted)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(_process.edges.get(p, ()))
    deps = Deps(probes=dict(_probes), dirs=dict(_dirs))
    for p in sorted(seen):
        state = _process.files.get(p)
        if state is not None:
            deps.files[p] = state
        elif p not in deps.probes:
            deps.probes[p] = path_kind(p)  # a module known by its path only (a namespace package)
    return deps


def recording() -> bool:
    return _current is not None


def note_bytes(path: str, data: bytes, st: os.stat_result | None, whole: bool = True) -> None:
    """A file was read (`st`: its fstat when read; not `whole`: it was over a size limit, and a
    digest that no content has stands for it: any change of its stat invalidates)."""
    note_file_read()  # a build that reads the disk is not reused (analysis/reuse.py)
    path = os.path.abspath(path)
    d = digest(data) if whole else "partial"
    state = FileState(d, st.st_size, st.st_mtime_ns) if st is not None else FileState(d)
    _process.files[path] = state
    if _current is not None:
        _current.add(path)


def note_text(path: str, text: str) -> None:
    """An editor's unsaved text stood for the file: its content is that text."""
    note_file_read()  # a build that reads the disk is not reused (analysis/reuse.py)
    path = os.path.abspath(path)
    _process.files[path] = FileState(digest(text.encode("utf-8", "surrogatepass")))
    if _current is not None:
        _current.add(path)


def note_import(importer: str | None, path: str | None) -> None:
    """A module's file was imported (or found already evaluated) by a statement of `importer`."""
    note_file_read()  # a build that reads the disk is not reused (analysis/reuse.py)
    if path is None:
        return
    if _current is not None:
        _current.add(path)
    if importer is not None and importer != path:
        _process.edges.setdefault(importer, set()).add(path)


def note_failed_import(module: str, probes: dict[str, str | None] | None = None) -> None:
    """An import found nothing: the paths it looked for (and what was there) invalidate when one
    appears, as a package installed later does."""
    note_file_read()  # a build that reads the disk is not reused (analysis/reuse.py)
    if probes is not None:
        _process.failed[module] = probes
    if _current is not None:
        _probes.update(_process.failed.get(module, {}))


def note_dirs(folders: dict[str, tuple[int | None, str]]) -> None:
    """The analysis depends on these folders' packages: (mtime_ns when listed, `dist_infos` of
    the listing). A folder whose mtime changed is listed again, and only a different set of
    installed distributions invalidates."""
    note_file_read()  # a build that reads the disk is not reused (analysis/reuse.py)
    if _current is not None:
        _dirs.update(folders)


def dist_infos(names: Iterable[str]) -> str:
    """A digest of the `*.dist-info` names of a folder's listing (the installed distributions
    and their versions)."""
    return digest("\n".join(sorted(n for n in names if n.endswith(".dist-info"))).encode("utf-8", "surrogateescape"))


def listing(folder: str) -> list[str] | None:
    try:
        return os.listdir(folder)
    except (OSError, ValueError):
        return None


def note_probe(path: str) -> str | None:
    """Look whether `path` exists (and what it is), noting it: a file created or removed later
    changes what the analysis finds."""
    note_file_read()  # a build that reads the disk is not reused (analysis/reuse.py)
    kind = path_kind(path)
    if _current is not None:
        _probes[os.path.abspath(path)] = kind
    return kind


def isfile(path: str) -> bool:
    return note_probe(path) == "file"


def isdir(path: str) -> bool:
    return note_probe(path) == "dir"


def exists(path: str) -> bool:
    return note_probe(path) is not None


def reset_process() -> None:
    """Forget what the process has seen (tests)."""
    global _process
    _process = _Process()


# ---------------------------------------------------------------------- the one reader
def read_source_file(path: str, limit: int) -> tuple[bytes | None, str | None]:
    """The bytes of a regular file of at most `limit` bytes, else (None, why it was not read).

    Devices, FIFOs, sockets and folders are never opened for reading (`/dev/stdin` would read
    the language server's own input, `/dev/zero` fill memory, a FIFO block forever), and the
    cap applies to what is read, not to the size `stat` reported (a file can grow)."""
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind:
            return None, f"not a regular file ({kind}): not read"
        # Non-blocking: if the path was swapped for a FIFO since the stat, opening must not wait.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as err:
        return None, f"cannot read file: {err.strerror or err}"
    try:
        st = os.fstat(fd)
        kind = _not_regular(st.st_mode)
        if kind:
            return None, f"not a regular file ({kind}): not read"
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        return None, f"cannot read file: {err.strerror or err}"
    finally:
        os.close(fd)
    data = b"".join(chunks)
    # What was read, for the persistent cache's dependencies (a file over the limit: its stat).
    note_bytes(path, data, st, whole=size <= limit)
    if size > limit:
        return None, f"file larger than max-file-size ({limit:,} bytes): not analysed"
    return data, None


def _not_regular(mode: int) -> str:
    """What a non-regular file is, in words ("" for a regular file)."""
    if stat.S_ISREG(mode):
        return ""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")
