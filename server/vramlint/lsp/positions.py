"""Between the analysis's locations (1-based lines, code-point columns) and LSP positions
(0-based lines, UTF-16 code units by default)."""

from __future__ import annotations

from lsprotocol import types

from vramlint.engine.values import Location


def utf16(line_text: str, col: int) -> int:
    prefix = line_text[:col]
    return col if prefix.isascii() else len(prefix.encode("utf-16-le")) // 2


def to_range(loc: Location, lines: list[str]) -> types.Range:
    def pos(line: int, col: int) -> types.Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return types.Position(max(line - 1, 0), utf16(text, col))

    return types.Range(pos(loc.line, loc.column), pos(loc.end_line, loc.end_column))


def line_end(lines: list[str], line: int) -> types.Position:
    """The end of a 1-based line, for a hint placed after the code."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return types.Position(max(line - 1, 0), utf16(text, len(text.rstrip())))


def contains(loc: Location, line: int, col: int) -> bool:
    """Whether 1-based `line`, code-point `col` falls within `loc`."""
    if not loc.line <= line <= loc.end_line:
        return False
    if line == loc.line and col < loc.column:
        return False
    return not (line == loc.end_line and col > loc.end_column)


def from_utf16(line_text: str, character: int) -> int:
    """The code-point column of an LSP character offset."""
    if line_text.isascii():
        return character
    units = 0
    for i, ch in enumerate(line_text):
        if units >= character:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line_text)
