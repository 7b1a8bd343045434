"""What a cached analysis is keyed by: the file (path, content), the settings that affect its
analysis, vramlint itself (version and its own files' stat: a developer's edit invalidates) and
the interpreter (its version, its search path)."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from vramlint.settings import Settings, _same_file

FORMAT = 1  # the layout of an entry (store.py); bumped when it changes


@functools.lru_cache(maxsize=1)
def vramlint_fingerprint() -> str:
    """vramlint's version and each of its package files' (path, size, mtime): an edited rule is a
    different vramlint."""
    from vramlint import __version__

    root = Path(__file__).resolve().parents[1]
    h = hashlib.blake2b(f"{__version__}|{FORMAT}|{sys.version}|{sys.implementation.name}".encode(), digest_size=16)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            p = os.path.join(dirpath, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            h.update(f"{os.path.relpath(p, root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def settings_fingerprint(settings: Settings, path: str) -> str:
    """The settings that can change `path`'s analysis: every field, and of the per-model tables
    those that may apply to it (a table named by another file, `"other.py::Net"` or `"other.py"`,
    does not; a table named by a model or a checkpoint may, whatever file names it)."""
    parts: list[Any] = []
    for f in fields(Settings):
        if f.name == "model_config":
            continue
        value = getattr(settings, f.name)
        parts.append((f.name, _canonical(value)))
    tables = [(name, _canonical(table)) for name, table in settings.model_config.items()
              if _may_apply(name, path, settings)]
    parts.append(("model_config", sorted(tables, key=repr)))
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _may_apply(name: str, path: str, settings: Settings) -> bool:
    file, sep, _ = name.rpartition("::")
    if sep:
        return _same_file(file, path, settings)
    if name.endswith(".py"):  # a script's table (`args`)
        return _same_file(name, path, settings)
    return True


def _canonical(value: Any) -> Any:
    """A deterministic form of a setting (tables in key order)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def entry_key(path: str, content_digest: str, settings: Settings, search_path: Iterable[str],
              module: tuple[str, str]) -> str:
    """The name of a file's entry: everything its analysis is a function of, besides the files it
    reads (which the entry lists, checked when it is read)."""
    # The path as given too: results name the file as the command line did (`./m.py`, `m.py`).
    text = "\n".join([path, os.path.abspath(path), content_digest, settings_fingerprint(settings, path),
                      vramlint_fingerprint(), *search_path, "|", *module])
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
