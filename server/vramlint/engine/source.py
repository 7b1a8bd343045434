"""Parsed source files, cached by content hash.

Positions are computed lazily: libcst's PositionProvider costs about as much as the parse
itself, and most library modules never need a location (only what ends up in a result does).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from vramlint.engine.values import Location


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    location: Location


def decode_source(data: bytes) -> tuple[str, str | None]:
    """Decode bytes like Python does (PEP 263 cookie, BOM, else UTF-8).

    Undecodable bytes are replaced rather than rejected so the rest of the file is still
    analysed; the second value is a warning to report in that case.
    """
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    try:
        return data.decode(encoding), None
    except (UnicodeDecodeError, LookupError):
        text = data.decode("utf-8", errors="replace")
        return text, f"file is not valid {encoding}; undecodable bytes were replaced"


class SourceModule:
    """One parsed file (or an unparsable one, with its syntax error)."""

    def __init__(self, path: str, text: str, name: str) -> None:
        self.path = path
        self.text = text
        self.name = name
        self.digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        self.tree: cst.Module | None = None
        self.syntax_error: SyntaxProblem | None = None
        self._positions: dict[cst.CSTNode, CodeRange] | None = None
        # Per-node facts computed once: decoded literals (libcst re-decodes them on every
        # access), whether a function body yields.
        self.node_cache: dict[cst.CSTNode, object] = {}
        self._lock = threading.Lock()
        try:
            self.tree = cst.parse_module(text)
        except cst.ParserSyntaxError as err:
            loc = Location(path, err.raw_line, err.raw_column, err.raw_line, err.raw_column + 1)
            self.syntax_error = SyntaxProblem(f"syntax error: {err.message}", loc)
        except RecursionError:
            loc = Location(path, 1, 0, 1, 0)
            self.syntax_error = SyntaxProblem("file is too deeply nested to parse", loc)
        except Exception as err:  # libcst may raise other errors on odd input
            loc = Location(path, 1, 0, 1, 0)
            self.syntax_error = SyntaxProblem(f"could not parse: {err}", loc)

    def location_of(self, node: cst.CSTNode) -> Location:
        positions = self._position_map()
        rng = positions.get(node)
        if rng is None:
            return Location(self.path, 1, 0, 1, 0)
        return Location(
            self.path, rng.start.line, rng.start.column, rng.end.line, rng.end.column
        )

    def _position_map(self) -> dict[cst.CSTNode, CodeRange]:
        with self._lock:
            if self._positions is None:
                if self.tree is None:
                    self._positions = {}
                else:
                    try:
                        wrapper = MetadataWrapper(self.tree, unsafe_skip_copy=True)
                        self._positions = dict(wrapper.resolve(PositionProvider))
                    except RecursionError:
                        self._positions = {}
            return self._positions


_cache: dict[tuple[str, str], SourceModule] = {}
_cache_lock = threading.Lock()


def parse_source(path: str, text: str, name: str) -> SourceModule:
    """Parse `text`, reusing an earlier parse of the same path and content."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    key = (path, digest)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit.name == name:
        return hit
    mod = SourceModule(path, text, name)
    with _cache_lock:
        _cache[key] = mod
    return mod
