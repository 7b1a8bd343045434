"""Quick fixes. On an over-budget finding (VL001): set the largest batch size that fits, or
switch to bf16 mixed precision, each titled with the estimate it would give (the file analysed
again with the change); on an unresolved input (VL301): insert a `# vramlint:` directive with a
placeholder input shape. Changes go into the model's in-file directive, the one place that
applies to this model alone."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from lsprotocol import types

from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.render.units import fmt_bytes
from vramlint.settings import DIRECTIVE

Reanalyze = Callable[[str], FileAnalysis]


def code_actions(fa: FileAnalysis, text: str, uri: str, diagnostics: Sequence[types.Diagnostic],
                 reanalyze: Reanalyze) -> list[types.CodeAction]:
    out: list[types.CodeAction] = []
    by_name = {m.name: m for m in fa.models}
    for d in diagnostics:
        data = d.data if isinstance(d.data, dict) else {}
        m = by_name.get(str(data.get("model")))
        if m is None or m.location is None:
            continue
        if d.code == "VL001" and m.memory is not None:
            if m.memory.max_batch:
                out.append(_fix(uri, text, m, {"batch-size": str(m.memory.max_batch)}, d, reanalyze,
                                f"Set batch-size={m.memory.max_batch}, the largest that fits"))
            if m.memory.precision == "fp32":
                out.append(_fix(uri, text, m, {"precision": "amp-bf16"}, d, reanalyze,
                                "Use bf16 mixed precision (precision=amp-bf16)"))
        elif d.code == "VL301":
            out.append(_fix(uri, text, m, _placeholder(d.message), d, None,
                            "Insert a vramlint directive with the input shape (edit the placeholder)"))
    return out


def _placeholder(message: str) -> dict[str, str]:
    keras = re.search(r"the model's input \[([^\]]*)\] has a dimension of unknown size", message)
    if keras:  # a Keras input with None sizes: the same shape, 128 in place of each None
        dims = [d.strip() for d in keras.group(1).split(",")]
        return {"input-shape": ",".join("128" if d == "None" else d for d in dims)}
    if "Embedding" in message:
        return {"input-shape": "128", "input-dtype": "int64", "batch-size": "8"}
    if "Conv" in message:
        return {"input-shape": "3,224,224", "batch-size": "32"}
    if "batch size" in message:
        return {"batch-size": "32"}
    return {"input-shape": "3,224,224", "batch-size": "32"}


def directive_edit(text: str, model_line: int, updates: dict[str, str]) -> tuple[str, types.TextEdit]:
    """The text with `updates` in the model's directive (the comment line above it, made if
    missing), and the edit that makes it."""
    lines = text.splitlines(keepends=True)
    i = model_line - 1
    above = lines[i - 1] if i >= 1 else ""
    m = DIRECTIVE.search(above) if above.lstrip().startswith("#") else None
    if m is not None:
        items = dict(item.partition("=")[::2] for item in m.group(1).split())
        items.update(updates)
        indent = above[: len(above) - len(above.lstrip())]
        new_line = f"{indent}# vramlint: {' '.join(f'{k}={v}' for k, v in items.items())}\n"
        edit = types.TextEdit(types.Range(types.Position(i - 1, 0), types.Position(i, 0)), new_line)
        new_text = "".join(lines[: i - 1]) + new_line + "".join(lines[i:])
    else:
        target = lines[i] if i < len(lines) else ""
        indent = re.match(r"\s*", target).group(0) if target else ""  # type: ignore[union-attr]
        new_line = f"{indent}# vramlint: {' '.join(f'{k}={v}' for k, v in updates.items())}\n"
        edit = types.TextEdit(types.Range(types.Position(i, 0), types.Position(i, 0)), new_line)
        new_text = "".join(lines[:i]) + new_line + "".join(lines[i:])
    return new_text, edit


def _fix(uri: str, text: str, m: ModelResult, updates: dict[str, str], d: types.Diagnostic,
         reanalyze: Reanalyze | None, title: str) -> types.CodeAction:
    assert m.location is not None
    new_text, edit = directive_edit(text, m.location.line, updates)
    if reanalyze is not None:
        after = next((x for x in reanalyze(new_text).models if x.name == m.name and x.memory is not None), None)
        if after is not None and after.memory is not None:
            e = after.memory
            verdict = "fits" if e.fits else "still does not fit"
            title += f": {fmt_bytes(e.device_total)} of {fmt_bytes(e.device_memory)}, {verdict}"
    return types.CodeAction(title, kind=types.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=False,
                            edit=types.WorkspaceEdit(changes={uri: [edit]}))
