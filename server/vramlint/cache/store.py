"""The on-disk store: one file per analysed (file, content, settings, vramlint), as ruff's
`.ruff_cache`.

Layout: `<cache dir>/CACHEDIR.TAG`, `.gitignore` (`*`), and `analysis-v<FORMAT>/<2 hex>/<key>`,
each entry a header line then a pickle of `Entry` (the detached result and what it depends on).

- Concurrency: an entry is written to a temporary file in its folder, then `os.replace`d, so a
  reader (another `--jobs` worker, another editor) sees the old entry, the new one, or none.
- Corruption: an entry that cannot be read (truncated, garbage, another format, not vramlint's
  header, not ours) is a miss; it is removed and the fresh result written in its place.
- Size: past `max_bytes` (default 512 MiB, `VRAMLINT_CACHE_MAX_MB`), the least recently used
  entries are removed (a hit refreshes its entry's mtime) until the cache is at 80% of it.
- Trust: entries are pickles, and unpickling runs code: only files under the cache folder, with
  vramlint's header, owned by the current user (POSIX) are read. The cache is local to the
  machine: do not point `--cache-dir` at a folder others can write.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vramlint.analysis.results import FileAnalysis
from vramlint.cache.keys import FORMAT
from vramlint.engine.reads import Deps, digest, dir_mtime, dist_infos, listing, path_kind
from vramlint.engine.values import SourceRef

DIR_NAME = ".vramlint_cache"
HEADER = f"vramlint-cache {FORMAT}\n".encode()
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
PRUNE_EVERY = 64  # writes between size checks of one process (and one at its first write)
CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by vramlint.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")


@dataclass
class Entry:
    result: FileAnalysis
    deps: Deps


@dataclass
class Stats:
    """What the store did in this process (tests count these, not seconds)."""

    hits: int = 0
    misses: int = 0  # no entry
    stale: int = 0  # an entry whose dependencies changed
    corrupt: int = 0  # an entry that could not be read
    writes: int = 0
    evicted: int = 0


@dataclass
class Cache:
    """A cache folder. Picklable (`--jobs` workers get it): only the folder and the cap travel."""

    root: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    stats: Stats = field(default_factory=Stats)
    _writes_since_prune: int = -1  # -1: no write yet (the first one checks the size)

    @property
    def entries(self) -> Path:
        return self.root / f"analysis-v{FORMAT}"

    def _path(self, key: str) -> Path:
        return self.entries / key[:2] / key

    # ------------------------------------------------------------------ reading
    def get(self, key: str, overlays: dict[str, str] | None = None) -> FileAnalysis | None:
        """The cached result of `key` if every file it read is as it was; None otherwise."""
        path = self._path(key)
        entry = self._load(path)
        if entry is None:
            return None
        valid, refreshed = _check(entry.deps, overlays or {})
        if not valid:
            self.stats.stale += 1
            return None
        self.stats.hits += 1
        try:
            os.utime(path)  # recently used (eviction removes the oldest first)
        except OSError:
            pass
        if refreshed is not None:  # touched files (same content, new stat): remember their new stat
            self.put(key, entry.result, refreshed)
        return entry.result

    def _load(self, path: Path) -> Entry | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError:
            self.stats.misses += 1
            return None
        try:
            st = os.fstat(fd)
            if hasattr(os, "getuid") and st.st_uid != os.getuid():
                self.stats.corrupt += 1
                return None  # not written by us: never unpickled
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read()
        except OSError:
            self.stats.misses += 1
            return None
        finally:
            os.close(fd)
        entry = _decode(data)
        if entry is None:
            self.stats.corrupt += 1
            _remove(path)
        return entry

    # ------------------------------------------------------------------ writing
    def put(self, key: str, result: FileAnalysis, deps: Deps) -> bool:
        """Store a result, detached as it is written (its source references as locations: the
        result itself is left as it is); False (and nothing written) when it cannot be."""
        try:
            data = HEADER + _dumps(Entry(result, deps))
        except Exception:  # a value that does not pickle: not cached, never a crash
            return False
        path = self._path(key)
        try:
            self._prepare_root()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                _remove(Path(tmp))
                raise
        except OSError:
            return False  # a read-only or full disk: the analysis stands, uncached
        self.stats.writes += 1
        self._writes_since_prune += 1
        if self._writes_since_prune % PRUNE_EVERY == 0:
            self.prune()
        return True

    def _prepare_root(self) -> None:
        """A new (or empty) folder becomes vramlint's: a `.gitignore` of `*` and a CACHEDIR.TAG.
        A folder that already holds other things (`--cache-dir .`) gets neither: its own
        `.gitignore` stays, and backup tools do not skip it."""
        if (self.root / "CACHEDIR.TAG").is_file():
            return
        fresh = not self.root.exists() or not any(self.root.iterdir())
        self.root.mkdir(parents=True, exist_ok=True)
        if fresh:
            (self.root / ".gitignore").write_text("# Automatically created by vramlint.\n*\n", encoding="utf-8")
            (self.root / "CACHEDIR.TAG").write_text(CACHEDIR_TAG, encoding="utf-8")

    def prune(self) -> None:
        """Keep the cache under `max_bytes`: remove the least recently used entries."""
        files: list[tuple[float, int, Path]] = []
        try:
            for sub in os.scandir(self.entries):
                if not sub.is_dir(follow_symlinks=False):
                    continue
                for e in os.scandir(sub.path):
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    files.append((st.st_mtime, st.st_size, Path(e.path)))
        except OSError:
            return
        total = sum(size for _, size, _ in files)
        if total <= self.max_bytes:
            return
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes * 0.8:
                break
            _remove(p)
            total -= size
            self.stats.evicted += 1

    def clear(self) -> list[Path]:
        """Remove what vramlint wrote (`vramlint clean`): the whole folder when vramlint made it
        (its CACHEDIR.TAG says so), else only its entries' folders; what was removed."""
        if not self.root.is_dir():
            return []
        if CACHEDIR_TAG.splitlines()[1] in _text(self.root / "CACHEDIR.TAG"):
            shutil.rmtree(self.root, ignore_errors=True)
            return [self.root]
        removed = sorted(self.root.glob("analysis-v*"))
        for d in removed:
            shutil.rmtree(d, ignore_errors=True)
        return removed

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["max_bytes"])  # type: ignore[misc]


class _Detaching(pickle.Pickler):
    """Pickles a result as `analysis.results.detached` would make it, without changing it (an
    editor is showing it meanwhile): every source reference is written as its location."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is SourceRef:
            return _same, (obj.location,)
        return NotImplemented


def _same(x: Any) -> Any:
    return x


def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Detaching(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _decode(data: bytes) -> Entry | None:
    if not data.startswith(HEADER):
        return None
    try:
        entry = pickle.loads(data[len(HEADER):])
    except Exception:  # truncated, garbage, a class that no longer exists...
        return None
    if not isinstance(entry, Entry) or not isinstance(entry.result, FileAnalysis) or not isinstance(entry.deps, Deps):
        return None
    return entry


def _check(deps: Deps, overlays: dict[str, str]) -> tuple[bool, Deps | None]:
    """Whether no dependency changed; and, where a file was touched without changing, the
    dependencies with its new stat (to write back), else None."""
    from vramlint.engine.reads import FileState

    refreshed: dict[str, FileState] = {}
    for path, state in deps.files.items():
        text = overlays.get(path)
        if text is not None:
            if digest(text.encode("utf-8", "surrogatepass")) != state.digest:
                return False, None
            continue
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return False, None
        if not stat.S_ISREG(st.st_mode):
            return False, None
        if st.st_size == state.size and st.st_mtime_ns == state.mtime_ns:
            continue
        try:
            with open(path, "rb") as f:
                data = f.read(max(state.size, 0) + 1) if state.size >= 0 else f.read()
        except OSError:
            return False, None
        if digest(data) != state.digest:
            return False, None
        refreshed[path] = FileState(state.digest, st.st_size, st.st_mtime_ns)
    for path, kind in deps.probes.items():
        if path_kind(path) != kind:
            return False, None
    for folder, (mtime, names) in deps.dirs.items():
        if dir_mtime(folder) != mtime:
            now = listing(folder)
            if now is None or dist_infos(now) != names:
                return False, None
    if not refreshed:
        return True, None
    return True, Deps({**deps.files, **refreshed}, deps.probes, deps.dirs)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
