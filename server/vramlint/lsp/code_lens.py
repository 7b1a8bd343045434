"""Code lens above each model: `131.4K params · training peak 67.5 MiB · device total 900.0 MiB / 79.19 GiB ·
batch 256 · fp32 · adam` (summaries.model_line), and above the trainer call that trains it
(`Trainer(model=model, ...)`): `trains model: ...` with the same figures, the fine-tuning peak where
the fine-tuning is set up; it runs `vramlint.showReport` (the per-layer report)."""

from __future__ import annotations

from lsprotocol import types

from vramlint.analysis.results import FileAnalysis
from vramlint.lsp import summaries
from vramlint.lsp.positions import to_range

SHOW_REPORT = "vramlint.showReport"


def code_lenses(fa: FileAnalysis, text: str, uri: str, good_text: str | None = None) -> list[types.CodeLens]:
    """`good_text`: when `fa` is the last good analysis of a file now broken, the text it was made
    of: a model whose line changed since gets no lens."""
    lines = text.splitlines()
    old = good_text.splitlines() if good_text is not None else None
    out = []
    for m in fa.models:
        loc = m.location
        if loc is None or m.used_in:
            continue
        if not _unchanged(loc.line, lines, old):
            continue
        out.append(types.CodeLens(to_range(loc, lines),
                                  types.Command(summaries.model_line(m), SHOW_REPORT, arguments=[uri, m.name])))
        trainer = m.trained_by.location if m.trained_by is not None else None
        if trainer is not None and trainer.line != loc.line and _unchanged(trainer.line, lines, old):
            out.append(types.CodeLens(to_range(trainer, lines),
                                      types.Command(f"trains {m.name}: {summaries.model_line(m)}", SHOW_REPORT,
                                                    arguments=[uri, m.name])))
    return out


def _unchanged(line: int, lines: list[str], old: list[str] | None) -> bool:
    return old is None or (line <= min(len(lines), len(old)) and lines[line - 1] == old[line - 1])
