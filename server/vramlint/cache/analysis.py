"""Cached analyses: `analysis.api`'s entry points, looked up in and written to a `Cache`.

`api.analyze_file` / `api.analyze_source` stay uncached (tests and API callers use them); the CLI
and the language server come through here."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vramlint.analysis.paths import module_name_for, search_paths
from vramlint.analysis.results import FileAnalysis
from vramlint.cache.keys import entry_key
from vramlint.cache.store import DEFAULT_MAX_BYTES, DIR_NAME, Cache
from vramlint.engine import reads
from vramlint.engine.reads import Deps, read_source_file
from vramlint.settings import ConfigError, Settings, read_tool_table


def key_for(path: str, content_digest: str, settings: Settings) -> str:
    return entry_key(path, content_digest, settings, search_paths(settings), module_name_for(path))


def _api() -> Any:
    """The analysis, imported when a file is analysed: answering from the cache needs only the
    results' classes, not the engine and the frontends (a warm `vramlint check` starts faster)."""
    from vramlint.analysis import api

    return api


def lookup_file(cache: Cache, path: str, settings: Settings) -> FileAnalysis | None:
    """The cached result of the file as it is on disk, if valid (the parent of `--jobs` asks)."""
    data, _ = read_source_file(path, settings.max_file_size)
    if data is None:
        return None
    return cache.get(key_for(path, reads.digest(data), settings))


def analyze_file(path: str, settings: Settings, cache: Cache | None, *,
                 cancel: threading.Event | None = None) -> FileAnalysis:
    """`api.analyze_file` through the cache (None: not cached)."""
    if cache is None:
        api = _api()
        return api.analyze_file(path, settings) if cancel is None else api.analyze_file(path, settings, cancel=cancel)
    data, problem = read_source_file(path, settings.max_file_size)
    if data is None:  # unreadable: nothing to key it by (and nothing slow to save)
        return _api().analyze_data(path, data, problem, settings, cancel=cancel)
    key = key_for(path, reads.digest(data), settings)
    hit = cache.get(key)
    if hit is not None:
        return hit
    api = _api()
    result, deps = _recorded(lambda: api.analyze_data(path, data, problem, settings, cancel=cancel))
    if deps is not None and cacheable(result):
        cache.put(key, result, deps)
    return result


def lookup_source(cache: Cache, path: str, text: str, settings: Settings,
                  overlays: dict[str, str] | None = None) -> FileAnalysis | None:
    """The cached result of `text` as the content of `path` (an editor's buffer), if valid."""
    return cache.get(source_key(path, text, settings), overlays)


def source_key(path: str, text: str, settings: Settings) -> str:
    return key_for(path, reads.digest(text.encode("utf-8", "surrogatepass")), settings)


def analyze_source_recorded(path: str, text: str, settings: Settings, *, cancel: threading.Event | None = None,
                            defer_searches: bool = False) -> tuple[FileAnalysis, Deps | None]:
    """`api.analyze_source`, with what it read (for `store_source`, which may come later: storing
    a result resolves its positions, which an editor does after showing it)."""
    return _recorded(lambda: _api().analyze_source(path, text, settings, cancel=cancel,
                                                   defer_searches=defer_searches))


def store_source(cache: Cache, path: str, text: str, settings: Settings, result: FileAnalysis,
                 deps: Deps | None) -> None:
    if deps is not None and cacheable(result):
        # (An editor's result may have left its searches for later: the entry carries them.)
        cache.put(source_key(path, text, settings), _api().complete_searches(result), deps)


def _recorded(run: Callable[[], FileAnalysis]) -> tuple[FileAnalysis, Deps | None]:
    # One analysis at a time per process (api's lock), so the read log is this analysis's alone.
    with _api()._lock:
        reads.start()
        try:
            result = run()
        finally:
            deps = reads.finish()
    return result, deps


def cacheable(result: FileAnalysis) -> bool:
    """A result that depends on the machine's speed (a time budget ran out) is not kept: the next
    run, on a quieter machine, may finish."""
    return not any("time budget" in w.reason for w in (*result.warnings, *result.errors))


def open_cache(settings: Settings, cache_dir: str | None = None, enabled: bool = True) -> Cache | None:
    """The cache the settings use, or None when it is off (`--no-cache`, `VRAMLINT_NO_CACHE=1`).
    Its folder, first found: `cache_dir` (`--cache-dir`), `VRAMLINT_CACHE_DIR`, `cache-dir` in the
    configuration (relative to its folder), `.vramlint_cache` next to the configuration file, else
    in the current folder (as ruff's)."""
    if not enabled or os.environ.get("VRAMLINT_NO_CACHE", "") not in ("", "0"):
        return None
    return Cache(Path(cache_root(settings, cache_dir)), max_bytes=_max_bytes())


def cache_root(settings: Settings, cache_dir: str | None = None) -> str:
    if cache_dir:
        return os.path.abspath(cache_dir)
    env = os.environ.get("VRAMLINT_CACHE_DIR")
    if env:
        return os.path.abspath(env)
    if settings.config_file:
        base = os.path.dirname(os.path.abspath(settings.config_file))
        configured = _configured_dir(settings.config_file, _mtime(settings.config_file))
        return os.path.join(base, configured) if configured else os.path.join(base, DIR_NAME)
    return os.path.join(os.getcwd(), DIR_NAME)


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


@functools.lru_cache(maxsize=32)  # the editor asks on every analysis: read once per version of the file
def _configured_dir(path: str, mtime_ns: int) -> str | None:
    config = Path(path)
    try:
        value = read_tool_table(config).get("cache-dir")
    except ConfigError:
        return None
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{config}: `cache-dir`: expected a folder's path, got {value!r}")
    return os.path.expanduser(value) if value else None


def _max_bytes() -> int:
    raw = os.environ.get("VRAMLINT_CACHE_MAX_MB", "")
    return int(raw) * 1024 * 1024 if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BYTES
