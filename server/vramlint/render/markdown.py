"""GitHub-flavoured Markdown (`vramlint check --format markdown`): one table with a row per model
and the findings below it, for a pull-request comment or `$GITHUB_STEP_SUMMARY`.

Everything that comes from the analysed code (names, paths, reasons) is escaped: Markdown's
punctuation is backslash-escaped, `@` is written as an entity (no one is mentioned by a model's
name), newlines become spaces, and `|` is escaped everywhere, code spans included (a table cell
ends at a bare `|` even inside backticks in GFM). vramlint's own messages keep their code spans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vramlint.analysis.results import FileAnalysis, Finding, ModelResult
from vramlint.render.sarif import relative_to_cwd
from vramlint.render.units import fmt_bytes

# What can start emphasis, a link, an HTML tag, an entity, math, strikethrough or end a table cell
# (`(`, `#`, `+`, `!` only mean something after `]` or at a line's start, which escaped text never is).
_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|~&$])")
_SPAN = re.compile(r"`([^`\n]*)`")
MARKS = {True: "✓", False: "✗", None: "?"}
HEADERS = ("Location", "Model", "Parameters", "Training peak", "Inference peak", "GPU", "Fits", "Largest batch")


def escape(text: str) -> str:
    """Plain text from the analysed code, safe anywhere in a Markdown line or table cell."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(text.splitlines())).replace("@", "&#64;")


def code(text: str) -> str:
    """`text` as a code span (a table-safe one); escaped plain text if it holds a backtick."""
    text = " ".join(text.splitlines())
    return escape(text) if "`" in text or not text.strip() else f"`{text.replace('|', chr(92) + '|')}`"


def message(text: str) -> str:
    """A vramlint message: its `code spans` kept as spans, the rest escaped."""
    out, last = [], 0
    for m in _SPAN.finditer(text):
        out += [escape(text[last:m.start()]), code(m.group(1))]
        last = m.end()
    return "".join([*out, escape(text[last:])])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """A GFM table; the cells are already Markdown (escaped); `right`: right-aligned columns."""
    rule = ["---:" if i in right else "---" for i in range(len(headers))]
    return [f"| {' | '.join(r)} |" for r in (headers, rule, *rows)]


def where(path: str, line: int | None) -> str:
    shown = relative_to_cwd(path) or path
    return code(f"{shown}:{line}" if line is not None else shown)


def count(n: int | None) -> str:
    return f"{n:,}" if n is not None else "unknown"


def model_row(path: str, m: ModelResult) -> list[str]:
    loc = where(path, m.location.line if m.location else None)
    name = escape(m.name)
    if m.used_in:
        return [loc, name, f"in {', '.join(escape(u) for u in m.used_in)}", "", "", "", "", ""]
    if m.error is not None:
        return [loc, name, "could not be built", "", "", "", MARKS[None], ""]
    e = m.memory
    params = count(m.params.total)
    if e is None:
        return [loc, name, params, "", "", "", MARKS[None], ""]
    infer = m.setup is not None and m.setup["mode"] == "infer"
    fits = e.inference_need <= e.device_memory if infer else e.fits
    batch = f"{e.max_batch:,}" if e.max_batch is not None else ""
    return [loc, name, params, fmt_bytes(e.train_peak), fmt_bytes(e.inference_peak),
            escape(f"{e.device} ({fmt_bytes(e.device_memory)})"), MARKS[fits], batch]


def finding_line(path: str, f: Finding) -> str:
    loc = f.location
    at = where(loc.path if loc else path, loc.line if loc else None)
    return f"- **{f.severity}** {f.code} {escape(f.name)} at {at}: {message(f.message)}"


def render(files: list[FileAnalysis], title: str = "vramlint") -> str:
    rows = [model_row(fa.path, m) for fa in files for m in fa.models]
    findings = [finding_line(fa.path, f) for fa in files for f in fa.findings]
    errors = [f"- **error** VL000 at {where(e.location.path if e.location else fa.path, e.location.line if e.location else None)}:"
              f" {escape(e.reason)}" for fa in files for e in fa.errors]
    out = [f"### {title}", ""]
    if rows:
        out += [*table(HEADERS, rows, right=(2, 3, 4, 7)), ""]
    else:
        out += ["No models found.", ""]
    if errors or findings:
        out += [f"**Findings** ({len(errors) + len(findings)})", "", *errors, *findings, ""]
    else:
        out += ["No findings.", ""]
    return "\n".join(out).rstrip() + "\n"
