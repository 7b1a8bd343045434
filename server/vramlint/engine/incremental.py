"""Re-parsing an edited file by its top-level statements (the editor's keystrokes).

An editor sends a file's whole text on every edit, and libcst's parse of a 1,500-line file costs
about as much as the rest of its analysis. An edit changes one or two top-level statements: the
text is cut where the previous version's statements were, the statements whose text is unchanged
keep their libcst nodes, and only the changed run (with one unchanged statement on each side, so
that comments and blank lines between statements are owned as a whole-file parse owns them) is
parsed again. The module assembled from them is checked to print back to the new text piece by
piece; anything unusual (the file's first or last statement, a different indentation, comments
libcst would give to another node, a syntax error) falls back to a whole-file parse. Positions
are unaffected: they are computed from the module and the text, never stored in nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from vramlint.engine import fast_parse


@dataclass(frozen=True)
class Pieces:
    """A module's text cut at its top-level statements: the header (comments before the first
    statement), one piece per statement but the last (each with the blank lines and comments
    libcst gives it), then the tail (the last statement and the footer, never re-parsed alone)."""

    header: str
    statements: tuple[str, ...]
    tail: str


def reparse(previous: cst.Module, pieces: Pieces, text: str) -> tuple[cst.Module, Pieces] | None:
    """`text` parsed reusing `previous`'s unchanged top-level statements (`pieces`: its text cut
    at them), with the new module's pieces; None where only a whole-file parse is right (the
    caller then parses `text` itself)."""
    span = _changed_span(pieces, text)
    if span is None:
        return None
    first, last, start, end = span
    region = text[start:end]
    try:
        with fast_parse.parsing():
            part = cst.parse_module(region)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return None  # the whole-file parse reports the error where Python does
    if (part.footer or not part.body or part.default_indent != previous.default_indent
            or part.default_newline != previous.default_newline):
        return None
    body = list(part.body)
    # Comments before the run's first statement: libcst's header of the part, the statement's own
    # leading lines in the whole file.
    body[0] = body[0].with_changes(leading_lines=[*part.header, *body[0].leading_lines])
    module = previous.with_changes(body=[*previous.body[:first], *body, *previous.body[last + 1:]])
    texts = tuple(module.code_for_node(s) for s in body)
    if "".join(texts) != region:
        return None
    statements = (*pieces.statements[:first], *texts, *pieces.statements[last + 1:])
    return module, Pieces(pieces.header, statements, pieces.tail)


def pieces_of(module: cst.Module, text: str) -> Pieces | None:
    """`module`'s pieces (printed once per module parsed whole), None if they do not add up to
    `text` exactly or the module is too short to gain anything."""
    if len(module.body) < 4:
        return None
    header = "".join(module.code_for_node(line) for line in module.header)
    statements = tuple(module.code_for_node(s) for s in module.body[:-1])
    head = header + "".join(statements)
    return Pieces(header, statements, text[len(head):]) if text.startswith(head) else None


def _changed_span(pieces: Pieces, text: str) -> tuple[int, int, int, int] | None:
    """The run of statements to parse again: (first, last) indexes into the previous module's
    body and their (start, end) offsets in `text`; None unless the run lies strictly between the
    first statement and the tail."""
    if not text.startswith(pieces.header) or not text.endswith(pieces.tail):
        return None
    statements = pieces.statements
    n = len(statements)
    pos, first = len(pieces.header), 0
    while first < n and text.startswith(statements[first], pos):
        pos += len(statements[first])
        first += 1
    end, last = len(text) - len(pieces.tail), n - 1
    while last >= first and end - len(statements[last]) >= pos and text.startswith(statements[last], end - len(statements[last])):
        end -= len(statements[last])
        last -= 1
    # One unchanged statement on each side: how libcst splits the comments and blank lines
    # between two statements depends on both of them.
    first, last = first - 1, last + 1
    if first < 1 or last > n - 1:
        return None
    return first, last, pos - len(statements[first]), end + len(statements[last])
