"""Diagnostics: the findings of `vramlint check` (same codes, severities, messages), the file's
errors and warnings, pushed after each analysis."""

from __future__ import annotations

import os

from lsprotocol import types

from vramlint.analysis.results import FileAnalysis
from vramlint.engine.values import Location
from vramlint.lsp.positions import to_range

RULES_URL = "https://github.com/vramlint/vramlint/blob/main/docs/rules.md"
SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
            "info": types.DiagnosticSeverity.Information}


def diagnostics(fa: FileAnalysis, text: str) -> list[types.Diagnostic]:
    lines = text.splitlines()
    here = os.path.abspath(fa.path)
    out: list[types.Diagnostic] = []

    def rng(loc: Location | None) -> types.Range:
        if loc is None or os.path.abspath(loc.path) != here:
            return types.Range(types.Position(0, 0), types.Position(0, 0))
        return to_range(loc, lines)

    for e in fa.errors:
        out.append(types.Diagnostic(rng(e.location), e.reason, severity=types.DiagnosticSeverity.Error,
                                    code="VL000", source="vramlint",
                                    code_description=types.CodeDescription(href=f"{RULES_URL}#vl000")))
    for w in fa.warnings:
        out.append(types.Diagnostic(rng(w.location), w.reason, severity=types.DiagnosticSeverity.Warning,
                                    source="vramlint"))
    for f in fa.findings:
        out.append(types.Diagnostic(
            rng(f.location), f.message, severity=SEVERITY[f.severity], code=f.code, source="vramlint",
            code_description=types.CodeDescription(href=f"{RULES_URL}#{f.code.lower()}"),
            data={"model": f.model, "name": f.name},
        ))
    return out
