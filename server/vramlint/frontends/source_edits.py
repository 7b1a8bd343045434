"""Text edits of a Python file that the frontends' quick fixes share: the imports a fix needs,
added after the file's last top-level import."""

from __future__ import annotations

import libcst as cst

from vramlint.frontends.interface import SourceEdit


def indent_of(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def imported_names(module: cst.Module) -> set[str]:
    """The names the module's top-level imports bind ("torch", "get_peft_model"...)."""
    out: set[str] = set()
    for stmt in module.body:
        for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ():
            if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    if isinstance(bound, cst.Name):
                        out.add(bound.value)
                    elif isinstance(bound, cst.Attribute):  # `import a.b` binds `a`
                        root: cst.BaseExpression = bound
                        while isinstance(root, cst.Attribute):
                            root = root.value
                        if isinstance(root, cst.Name):
                            out.add(root.value)
    return out


def import_edits(module: cst.Module, positions: object, imported: set[str],
             needs: dict[str, tuple[str, ...]]) -> tuple[SourceEdit, ...]:
    """One edit adding the imports of `needs` ({module: names}; no names: `import module`) that the
    file lacks, after its last top-level import (or at its top)."""
    lines: list[str] = []
    for mod, names in needs.items():
        if not names and mod not in imported:
            lines.append(f"import {mod}")
        missing = [n for n in names if n not in imported]
        if missing:
            lines.append(f"from {mod} import {', '.join(missing)}")
    if not lines:
        return ()
    last = None
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, (cst.Import, cst.ImportFrom))
                                                              for s in stmt.body):
            last = stmt
    if last is None:
        return (SourceEdit(1, 0, 1, 0, "\n".join(lines) + "\n"),)
    end = positions[last].end  # type: ignore[index]
    return (SourceEdit(end.line, end.column, end.line, end.column, "\n" + "\n".join(lines)),)
