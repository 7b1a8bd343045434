"""Quick fixes. On an over-budget finding (VL001): set the largest batch size that fits, switch
to bf16 mixed precision, or turn on gradient checkpointing (in the model's in-file directive, the
one place that applies to this model alone), and the frontends' own code changes (LoRA, 4-bit
weights: Frontend.memory_fixes), each titled with the estimate it would give (the file analysed
again with the change); on an unresolved input (VL301): insert a `# vramlint:` directive with a
placeholder input shape; on an unused suppression (VL901): remove the code, or the comment."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from lsprotocol import types

from vramlint.analysis import suppressions
from vramlint.analysis.results import FileAnalysis, ModelResult, ModuleNode
from vramlint.engine.values import Location
from vramlint.frontends.interface import FixRequest, ProposedFix, SourceEdit
from vramlint.frontends.registry import memory_fixes
from vramlint.lsp.positions import from_utf16, to_range
from vramlint.memory.estimate import MemoryEstimate
from vramlint.render.units import fmt_bytes
from vramlint.settings import DIRECTIVE

Reanalyze = Callable[[str], FileAnalysis]


def code_actions(fa: FileAnalysis, text: str, uri: str, diagnostics: Sequence[types.Diagnostic],
                 reanalyze: Reanalyze) -> list[types.CodeAction]:
    out: list[types.CodeAction | None] = []
    by_name = {m.name: m for m in fa.models}
    for d in diagnostics:
        if d.code == suppressions.UNUSED:
            out.append(_remove_suppression(uri, text, d))
            continue
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
            if m.setup is not None and not m.setup["checkpointing"]:
                # Offered where it helps: a model with gradient_checkpointing_enable() (transformers').
                out.append(_fix(uri, text, m, {"checkpointing": "true"}, d, reanalyze,
                                "Use gradient checkpointing (checkpointing=true)", lower_than=m.memory.train_peak))
            out += [_code_fix(uri, text, m, fix, d, reanalyze) for fix in _frontend_fixes(text, m)]
        elif d.code == "VL301":
            out.append(_fix(uri, text, m, _placeholder(d.message), d, None,
                            "Insert a vramlint directive with the input shape (edit the placeholder)"))
    return [a for a in out if a is not None]


def _frontend_fixes(text: str, m: ModelResult) -> list[ProposedFix]:
    loc = m.location
    if loc is None:
        return []
    full = m.params.total is not None and m.params.trainable == m.params.total
    world = m.setup.values.get("world_size") if m.setup is not None else None
    return memory_fixes(FixRequest(text, m.name, loc.line, loc.end_line, full, repeated_blocks(m.tree),
                                   world.value if world is not None and isinstance(world.value, int) else 1,
                                   m.memory is not None and m.memory.distributed is not None))


def repeated_blocks(tree: ModuleNode | None) -> str | None:
    """The path of the model's largest container of two or more layers of one class (a
    transformer's `layers`, a ResNet stage's blocks are smaller than the whole): what FSDP wraps."""
    best: tuple[int, str] | None = None
    stack = [tree] if tree is not None else []
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        kinds = {c.class_name for c in node.children}
        if node.path and len(node.children) >= 2 and len(kinds) == 1 and node.param_count:
            if best is None or node.param_count > best[0]:
                best = (node.param_count, node.path)
    return best[1] if best is not None else None


def apply_edits(text: str, edits: Sequence[SourceEdit]) -> str:
    """`text` with `edits` (non-overlapping, positions in the original text) made."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, col: int) -> int:
        return starts[min(line, len(lines) + 1) - 1] + col if line >= 1 else 0

    out = text
    for e in sorted(edits, key=lambda e: (e.line, e.column), reverse=True):
        out = out[: offset(e.line, e.column)] + e.text + out[offset(e.end_line, e.end_column):]
    return out


def _code_fix(uri: str, text: str, m: ModelResult, fix: ProposedFix, d: types.Diagnostic,
              reanalyze: Reanalyze) -> types.CodeAction:
    lines = text.splitlines()
    edits = [types.TextEdit(to_range(Location("", e.line, e.column, e.end_line, e.end_column), lines), e.text)
             for e in fix.edits]
    return types.CodeAction(_titled(fix.title, _estimate_after(m, apply_edits(text, fix.edits), reanalyze)),
                            kind=types.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=False,
                            edit=types.WorkspaceEdit(changes={uri: edits}))


def _titled(title: str, after: MemoryEstimate | None) -> str:
    """`title: 9.1 GiB of 24.0 GiB, fits`: with the estimate of the file changed so."""
    if after is None:
        return title
    return f"{title}: {fmt_bytes(after.device_total)} of {fmt_bytes(after.device_memory)}, " + \
        ("fits" if after.fits else "still does not fit")


def _estimate_after(m: ModelResult, new_text: str, reanalyze: Reanalyze | None) -> MemoryEstimate | None:
    if reanalyze is None:
        return None
    return next((x.memory for x in reanalyze(new_text).models if x.name == m.name and x.memory is not None), None)


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
         reanalyze: Reanalyze | None, title: str, lower_than: int | None = None) -> types.CodeAction | None:
    """The directive fix; None when `lower_than` is given and the change does not bring the
    training peak below it (the simulated allocator's need can move by a few MiB with any change
    of the allocations: not a reason to propose it)."""
    assert m.location is not None
    new_text, edit = directive_edit(text, m.location.line, updates)
    after = _estimate_after(m, new_text, reanalyze)
    if lower_than is not None and (after is None or after.train_peak >= lower_than):
        return None
    return types.CodeAction(_titled(title, after), kind=types.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=False,
                            edit=types.WorkspaceEdit(changes={uri: [edit]}))


def _remove_suppression(uri: str, text: str, d: types.Diagnostic) -> types.CodeAction | None:
    """VL901's fix, as ruff's RUF100: remove the unused code from the `# vramlint: ignore[...]`
    comment, or the comment when nothing would be left."""
    lines = text.splitlines()
    line = d.range.start.line + 1
    column = from_utf16(lines[line - 1] if 0 < line <= len(lines) else "", d.range.start.character)
    found = suppressions.removal(text, line, column)
    if found is None:
        return None
    where, new_text, what = found
    return types.CodeAction(f"Remove {what}", kind=types.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=True,
                            edit=types.WorkspaceEdit(changes={uri: [types.TextEdit(to_range(where, lines), new_text)]}))
