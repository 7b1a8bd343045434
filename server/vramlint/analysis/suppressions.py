"""Suppression comments, as ruff's `# noqa`: `# vramlint: ignore[VL101, VL102]` on the line a
finding is reported at (a bare `# vramlint: ignore` suppresses every code there), and
`# vramlint: file-ignore[VL102]` anywhere in a file (ruff's `# ruff: noqa: VL102`).

Comments are read with the tokenizer, so the same text inside a string literal suppresses nothing.
A suppression that matched no finding, or that names an unknown code, is itself a finding, VL901
(ruff's RUF100), at the code (or the whole comment) it is about, so an editor can remove it.
Applied in the analysis core (api.py): `check`, the cache and the language server all see the result.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from collections.abc import Collection
from dataclasses import dataclass

from vramlint.analysis.findings import RULE_BY_CODE
from vramlint.analysis.results import Finding
from vramlint.engine.values import Location

UNUSED = "VL901"
_DIRECTIVE = re.compile(r"#\s*vramlint:\s*(?P<kind>file-ignore|ignore)(?![\w-])(?:\[(?P<codes>[^\]]*)\])?")
_CODE = re.compile(r"[^,\s]+")


@dataclass(frozen=True)
class CodeSpan:
    """One code of a suppression, with its 0-based columns on the comment's line."""

    code: str
    column: int
    end_column: int


@dataclass(frozen=True)
class Suppression:
    line: int  # 1-based
    column: int  # where `# vramlint:` starts (0-based, code points)
    end_column: int  # after its `]` (or `ignore`)
    file_wide: bool  # file-ignore
    codes: tuple[CodeSpan, ...]  # empty: every code (a bare `ignore`)
    bracketed: bool  # `ignore[...]`, even an empty `[]` (which names nothing)

    def names(self, code: str) -> bool:
        return not self.bracketed or any(c.code == code for c in self.codes)


def suppressions(text: str) -> list[Suppression]:
    """The suppression comments of `text`, in order. A file the tokenizer rejects (it had a
    syntax error: no findings to suppress) has none."""
    if "vramlint:" not in text or "ignore" not in text:  # most files: no tokenizing at all
        return []
    out: list[Suppression] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT and "vramlint:" in tok.string:
                out.extend(_parse(tok.string, tok.start[0], tok.start[1]))
    except (tokenize.TokenError, SyntaxError):
        return out
    return out


def _parse(comment: str, line: int, column: int) -> list[Suppression]:
    out = []
    for m in _DIRECTIVE.finditer(comment):
        codes: tuple[CodeSpan, ...] = ()
        if m.group("codes") is not None:
            base = column + m.start("codes")
            codes = tuple(CodeSpan(c.group(0), base + c.start(), base + c.end())
                          for c in _CODE.finditer(m.group("codes")))
        out.append(Suppression(line, column + m.start(), column + m.end(), m.group("kind") == "file-ignore",
                               codes, m.group("codes") is not None))
    return out


def apply(findings: list[Finding], text: str, path: str, checkable: Collection[str] | None) -> list[Finding]:
    """`findings` less those a suppression covers, plus a VL901 for each suppression (or code of
    one) that covered nothing. `checkable`: the codes this analysis could have reported (without
    the memory estimate, VL001 cannot fire, so an `ignore[VL001]` is not unused); None: all."""
    sups = suppressions(text)
    if not sups:
        return findings
    used: set[tuple[int, str | None]] = set()  # (suppression's index, code; None for a bare ignore)
    kept = [f for f in findings if not _suppressed(f, sups, path, used)]
    unused = [u for i, s in enumerate(sups) for u in _unused(i, s, used, path, text, checkable)]
    # An unused-suppression finding can itself be suppressed, by naming VL901 (as ruff lets RUF100 be suppressed).
    return kept + [u for u in unused if not _suppressed(u, sups, path, set(), explicit=True)]


def _suppressed(f: Finding, sups: list[Suppression], path: str, used: set[tuple[int, str | None]],
                explicit: bool = False) -> bool:
    loc = f.location
    here = loc is not None and _same(loc.path, path)
    hit = False
    for i, s in enumerate(sups):
        if not (s.file_wide or (here and loc is not None and loc.line == s.line)):
            continue
        if s.names(f.code) and (s.bracketed or not explicit):
            used.add((i, f.code if s.bracketed else None))
            hit = True
    return hit


def _unused(i: int, s: Suppression, used: set[tuple[int, str | None]], path: str, text: str,
            checkable: Collection[str] | None) -> list[Finding]:
    r = RULE_BY_CODE[UNUSED]
    kind = "file-ignore" if s.file_wide else "ignore"
    source_line = _line(text, s.line)

    def finding(message: str, column: int, end_column: int, subject: str) -> Finding:
        return Finding(r.code, r.name, r.severity, message, None, Location(path, s.line, column, s.line, end_column),
                       f"{kind}:{subject}:{source_line.strip()}")

    if not s.bracketed:
        if (i, None) in used or checkable is not None:  # a bare ignore might cover what could not be checked
            return []
        return [finding(f"unused suppression: no finding on line {s.line} to ignore", s.column, s.end_column, "*")]
    if not s.codes:
        return [finding(f"suppression names no code: `# vramlint: {kind}[VL101]` names the codes to ignore",
                        s.column, s.end_column, "")]
    out = []
    for c in s.codes:
        if c.code not in RULE_BY_CODE:
            out.append(finding(f"unknown code `{c.code}` in a suppression (codes: docs/rules.md)", c.column,
                               c.end_column, c.code))
        elif (i, c.code) not in used and c.code != UNUSED and (checkable is None or c.code in checkable):
            where = "in this file" if s.file_wide else f"on line {s.line}"
            out.append(finding(f"unused suppression: no {c.code} ({RULE_BY_CODE[c.code].name}) {where}",
                               c.column, c.end_column, c.code))
    return out


def _line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _same(a: str, b: str) -> bool:
    return a == b or os.path.abspath(a) == os.path.abspath(b)


def removal(text: str, line: int, column: int) -> tuple[Location, str, str] | None:
    """The edit that removes the unused part of the suppression at (1-based `line`, code-point
    `column`, where its VL901 starts): the one code when others remain, else the whole comment
    (and the line, when the comment was all of it). (range, new text, what it removes); None
    when there is no suppression there (the text changed since)."""
    source = _line(text, line)
    for s in suppressions(text):
        if s.line != line or not s.column <= column <= s.end_column:
            continue
        kind = "file-ignore" if s.file_wide else "ignore"
        others = [c.code for c in s.codes if not c.column <= column < c.end_column]
        if s.codes and 0 < len(others) < len(s.codes):
            gone = next(c.code for c in s.codes if c.column <= column < c.end_column)
            return (Location("", line, s.column, line, s.end_column), f"# vramlint: {kind}[{', '.join(others)}]",
                    f"`{gone}`")
        rest = source[s.end_column:]
        before = source[: s.column].rstrip()
        if rest.strip():  # more comment after it (`# vramlint: ignore[X]  # why`): keep that
            return Location("", line, s.column, line, len(source) - len(rest.lstrip())), "", "the suppression"
        if not before:  # the comment was the whole line
            return Location("", line, 0, line + 1, 0), "", "the suppression"
        return Location("", line, len(before), line, len(source)), "", "the suppression"
    return None
