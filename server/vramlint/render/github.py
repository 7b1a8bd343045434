"""GitHub Actions workflow commands (`::error file=...::message`): annotations on a pull request.

One line per finding and per file that could not be analysed (VL000). Paths inside the current
directory (the workspace, in a workflow) are written relative to it. Escaping follows
@actions/core: `%`, CR and LF in the message; additionally `:` and `,` in properties.
"""

from __future__ import annotations

from vramlint.analysis.results import FileAnalysis
from vramlint.engine.values import Location
from vramlint.render.problems import ERROR_CODE, ERROR_NAME, relative_to_cwd

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def command(severity: str, path: str, loc: Location | None, title: str, message: str) -> str:
    file = loc.path if loc is not None else path
    props = [("file", relative_to_cwd(file) or file)]
    if loc is not None and loc.line >= 1:
        props += [("line", str(loc.line)), ("col", str(loc.column + 1))]
    props.append(("title", title))
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{COMMANDS.get(severity, 'warning')} {joined}::{escape_data(message)}"


def lines(fa: FileAnalysis) -> list[str]:
    """One file's workflow commands: its errors (VL000), then its findings."""
    out = [command("error", fa.path, err.location, f"{ERROR_CODE} {ERROR_NAME}", err.reason) for err in fa.errors]
    out.extend(command(f.severity, fa.path, f.location, f"{f.code} {f.name}", f.message) for f in fa.findings)
    return out


def render(files: list[FileAnalysis]) -> str:
    """The workflow commands, one per line (no trailing newline; empty when nothing to say)."""
    return "\n".join(line for fa in files for line in lines(fa))
