"""The persistent cache of analyses (docs/cache.md): `store.py` (entries on disk), `keys.py` (what
an entry is keyed by), `analysis.py` (the cached entry points the CLI and the language server use)."""
