"""What every finding-oriented format reports, file by file: the file's analysis errors (VL000)
then its findings, as one kind of row; and each one's identity across commits.

The fingerprint (SARIF's `partialFingerprints`, GitLab Code Quality's `fingerprint`) hashes the
rule, the file (relative to the current folder, as code scanning sees the checkout) and what the
finding is about (its model and `Finding.subject`: a layer's path, an op), never its line or its
figures: a finding stays the same one when code above it moves or the estimate changes by a byte.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import PurePath

from vramlint.analysis.results import FileAnalysis
from vramlint.engine.values import Location

ERROR_CODE = "VL000"
ERROR_NAME = "analysis-error"
# The key of SARIF's `partialFingerprints` (versioned: hashing something else is a new key).
FINGERPRINT_KEY = "vramlintFinding/v1"


@dataclass(frozen=True)
class Problem:
    code: str
    name: str
    severity: str
    message: str
    model: str | None
    file: str  # the analysed file, as given
    location: Location | None
    subject: str = ""

    @property
    def path(self) -> str:
        """The file the problem is in (its location's, else the analysed file)."""
        return self.location.path if self.location is not None else self.file

    @property
    def line(self) -> int | None:
        return self.location.line if self.location is not None and self.location.line >= 1 else None

    def fingerprint(self) -> str:
        return fingerprint(self.code, self.path, self.model, self.subject)


def problems(fa: FileAnalysis) -> list[Problem]:
    out = [Problem(ERROR_CODE, ERROR_NAME, "error", e.reason, None, fa.path, e.location, e.reason) for e in fa.errors]
    out += [Problem(f.code, f.name, f.severity, f.message, f.model, fa.path, f.location, f.subject)
            for f in fa.findings]
    return out


def relative_to_cwd(path: str) -> str | None:
    """`path` relative to the current directory, with forward slashes; None if outside it."""
    cwd = os.getcwd()
    for base, target in ((os.path.abspath(cwd), os.path.abspath(path)),
                         (os.path.realpath(cwd), os.path.realpath(path))):
        try:
            rel = os.path.relpath(target, base)
        except ValueError:  # another drive (Windows)
            continue
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep) and not os.path.isabs(rel):
            return PurePath(rel).as_posix()
    return None


def shown_path(path: str) -> str:
    """A path as the CI formats write it: relative to the current folder inside it, else absolute."""
    return relative_to_cwd(path) or PurePath(os.path.abspath(path)).as_posix()


def fingerprint(code: str, path: str, model: str | None, subject: str) -> str:
    data = "\0".join((code, shown_path(path), model or "", subject))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]
