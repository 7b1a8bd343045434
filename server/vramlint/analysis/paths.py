"""Where a file's module is imported from, and the search path of an analysis: light (no engine),
for the cache's keys (vramlint/cache/keys.py) as well as the analysis (api.py)."""

from __future__ import annotations

import os
import sys

from vramlint.settings import Settings


def module_name_for(path: str) -> tuple[str, str]:
    """(dotted module name, the folder to import it from) for a file, like Python would."""
    path = os.path.abspath(path)
    d, base = os.path.split(path)
    stem = base[:-3] if base.endswith(".py") else base
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(d, "__init__.py")):
        d, pkg = os.path.split(d)
        parts.insert(0, pkg)
        if not pkg:
            break
    return ".".join(parts) or stem, d


def search_paths(settings: Settings) -> tuple[str, ...]:
    """Extra paths, then the interpreter's sys.path (installed packages)."""
    paths = [*settings.extra_paths]
    paths += [p for p in sys.path if p and os.path.isdir(p)]
    seen: set[str] = set()
    out = []
    for p in paths:
        ap = os.path.abspath(p)
        if ap not in seen:
            seen.add(ap)
            out.append(ap)
    return tuple(out)
