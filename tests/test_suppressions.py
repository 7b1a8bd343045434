"""Suppression comments (`# vramlint: ignore[...]`, `# vramlint: file-ignore[...]`), the unused-
suppression finding VL901 and its quick fix: on real findings (VL101, VL102 from docs/rules.md's
examples), through the analysis core the CLI and the language server share."""

from __future__ import annotations

import textwrap
from pathlib import Path

from lsprotocol import types

from tests.test_findings import ATTENTION as FINDINGS_ATTENTION
from vramlint.analysis import suppressions
from vramlint.analysis.api import analyze_source
from vramlint.analysis.results import FileAnalysis
from vramlint.lsp.code_actions import code_actions
from vramlint.lsp.diagnostics import diagnostics
from vramlint.settings import Settings

# docs/rules.md's VL101 example: the classifier on an un-pooled feature map (line 6), called on a batch.
VGG = textwrap.dedent("""\
    import torch
    import torch.nn as nn

    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
        nn.Flatten(),
        nn.Linear(64 * 56 * 56, 4096), nn.ReLU(), nn.Linear(4096, 10),{comment}
    )
    y = model(torch.randn(2, 3, 224, 224))
    """)
VGG_LINE = 7

# docs/rules.md's VL102 example (tests/test_findings.py's): an explicit attention matrix kept for backward.
SOFTMAX = "att = att.softmax(dim=-1)"
SOFTMAX_LINE = next(i for i, line in enumerate(FINDINGS_ATTENTION.splitlines(), 1) if SOFTMAX in line)


def attention(comment: str = "") -> str:
    return FINDINGS_ATTENTION.replace(SOFTMAX, SOFTMAX + comment, 1)


MEMORY = Settings(memory=True)


def analyse(tmp_path: Path, text: str, settings: Settings = MEMORY, name: str = "m.py") -> FileAnalysis:
    return analyze_source(str(tmp_path / name), text, settings)


def codes(fa: FileAnalysis) -> list[tuple[str, int | None]]:
    return [(f.code, f.location.line if f.location else None) for f in fa.findings]


def test_the_examples_report_their_findings(tmp_path: Path) -> None:
    """The control: without a comment each example has its finding, where docs/rules.md says."""
    assert ("VL101", VGG_LINE) in codes(analyse(tmp_path, VGG.format(comment="")))
    assert ("VL102", SOFTMAX_LINE) in codes(analyse(tmp_path, attention("")))


def test_line_ignore_suppresses_the_code_on_its_line(tmp_path: Path) -> None:
    fa = analyse(tmp_path, VGG.format(comment="  # vramlint: ignore[VL101]"))
    assert codes(fa) == []
    assert fa.warnings == []  # not taken for a malformed `# vramlint:` setup directive


def test_line_ignore_of_another_code_suppresses_nothing(tmp_path: Path) -> None:
    fa = analyse(tmp_path, VGG.format(comment="  # vramlint: ignore[VL102]"))
    assert ("VL101", VGG_LINE) in codes(fa)
    [unused] = [f for f in fa.findings if f.code == "VL901"]
    assert unused.severity == "warning" and "VL102" in unused.message and unused.model is None
    line = VGG.format(comment="  # vramlint: ignore[VL102]").splitlines()[VGG_LINE - 1]
    loc = unused.location
    assert loc is not None and loc.line == VGG_LINE and line[loc.column:loc.end_column] == "VL102"


def test_bare_ignore_suppresses_every_code_on_its_line(tmp_path: Path) -> None:
    fa = analyse(tmp_path, VGG.format(comment="  # vramlint: ignore"))
    assert codes(fa) == []


def test_several_codes_and_the_unused_one(tmp_path: Path) -> None:
    fa = analyse(tmp_path, VGG.format(comment="  # vramlint: ignore[VL101, VL201]"))
    assert [(f.code, "VL201" in f.message) for f in fa.findings] == [("VL901", True)]


def test_file_ignore_anywhere(tmp_path: Path) -> None:
    text = "# vramlint: file-ignore[VL102]\n" + attention("")
    assert "VL102" not in [c for c, _ in codes(analyse(tmp_path, text))]
    text = attention("") + "# vramlint: file-ignore[VL102]\n"  # at the end too
    assert [c for c, _ in codes(analyse(tmp_path, text))] == []


def test_unused_file_ignore(tmp_path: Path) -> None:
    fa = analyse(tmp_path, "# vramlint: file-ignore[VL101]\n" + attention(""))
    assert [(c, line) for c, line in codes(fa)] == [("VL102", SOFTMAX_LINE + 1), ("VL901", 1)]
    assert "in this file" in fa.findings[1].message


def test_text_in_string_literals_is_not_a_comment(tmp_path: Path) -> None:
    text = VGG.format(comment="").replace("4096),", '4096 + 0 * len("# vramlint: ignore[VL101]")),', 1)
    assert '"# vramlint: ignore[VL101]"' in text.splitlines()[VGG_LINE - 1]  # a string, not a comment
    text = '"""# vramlint: file-ignore[VL101]"""\n' + text  # nor in a docstring
    fa = analyse(tmp_path, text)
    assert ("VL101", VGG_LINE + 1) in codes(fa)
    assert "VL901" not in [c for c, _ in codes(fa)]  # nothing was taken for a suppression
    assert suppressions.suppressions(text) == []


def test_unknown_code(tmp_path: Path) -> None:
    fa = analyse(tmp_path, VGG.format(comment="  # vramlint: ignore[VL101, E501]"))
    [unknown] = [f for f in fa.findings if f.code == "VL901"]
    assert "unknown code `E501`" in unknown.message
    assert "VL101" not in [c for c, _ in codes(fa)]  # the known code still applies


def test_unused_suppression_can_be_suppressed(tmp_path: Path) -> None:
    fa = analyse(tmp_path, VGG.format(comment="  # vramlint: ignore[VL102, VL901]"))
    assert "VL901" not in [c for c, _ in codes(fa)]


def test_memory_codes_not_called_unused_without_an_estimate(tmp_path: Path) -> None:
    """Without the memory estimate VL102 could not fire: its suppression is not reported unused
    (an editor's first, parameters-only analysis must not flash VL901)."""
    text = attention("  # vramlint: ignore[VL102]")
    assert codes(analyse(tmp_path, text, Settings(memory=False))) == []
    assert codes(analyse(tmp_path, text)) == []  # with it: used


def test_a_bare_ignore_that_covers_nothing(tmp_path: Path) -> None:
    fa = analyse(tmp_path, attention("") + "z = 1  # vramlint: ignore\n")
    assert codes(fa) == [("VL102", SOFTMAX_LINE), ("VL901", len(attention().splitlines()) + 1)]


def test_diagnostics_honour_suppressions(tmp_path: Path) -> None:
    text = VGG.format(comment="  # vramlint: ignore[VL101]")
    assert [d.code for d in diagnostics(analyse(tmp_path, text), text)] == []
    text = VGG.format(comment="")
    assert [d.code for d in diagnostics(analyse(tmp_path, text), text)] == ["VL101"]


def fix(tmp_path: Path, text: str) -> tuple[str, str]:
    """The VL901 quick fix of `text`'s first VL901 diagnostic: (its title, the text after it)."""
    fa = analyse(tmp_path, text)
    [diag] = [d for d in diagnostics(fa, text) if d.code == "VL901"]
    [action] = code_actions(fa, text, "file:///m.py", [diag], lambda t: fa)
    assert action.kind == types.CodeActionKind.QuickFix and action.edit is not None and action.edit.changes
    [edit] = action.edit.changes["file:///m.py"]
    lines = text.splitlines(keepends=True)
    start = sum(len(x) for x in lines[: edit.range.start.line]) + edit.range.start.character
    end = sum(len(x) for x in lines[: edit.range.end.line]) + edit.range.end.character
    return action.title, text[:start] + edit.new_text + text[end:]


def test_quick_fix_removes_the_unused_code(tmp_path: Path) -> None:
    title, after = fix(tmp_path, VGG.format(comment="  # vramlint: ignore[VL101, VL201]"))
    assert title == "Remove `VL201`"
    assert after == VGG.format(comment="  # vramlint: ignore[VL101]")
    assert "VL901" not in [c for c, _ in codes(analyse(tmp_path, after))]


def test_quick_fix_removes_the_comment(tmp_path: Path) -> None:
    title, after = fix(tmp_path, VGG.format(comment="  # vramlint: ignore[VL201]"))
    assert title == "Remove the suppression" and after == VGG.format(comment="")
    # A comment alone on its line goes with its line; a reason after it stays.
    base = attention("")
    assert fix(tmp_path, "# vramlint: file-ignore[VL101]\n" + base)[1] == base
    _, kept = fix(tmp_path, base + "z = 1  # vramlint: ignore[VL101]  # why\n")
    assert kept == base + "z = 1  # why\n"


def test_a_directive_and_a_suppression_share_a_line() -> None:
    """A setup directive followed by a suppression (or a reason) is the directive's keys alone,
    and a suppression followed by a directive still gives the directive: no malformed items."""
    from vramlint.settings import parse_directives

    text = ("a = 1  # vramlint: batch-size=4  # vramlint: ignore[VL301]\n"
            "b = 2  # vramlint: ignore[VL301]  # vramlint: batch-size=8 input-shape=10\n"
            "c = 3  # vramlint: precision=bf16  # the card has no fp32 room\n")
    found, problems = parse_directives(text, "x.py")
    assert problems == []
    assert [(d.line, d.values.get("batch_size"), d.values.get("precision")) for d in found] == [
        (1, 4, None), (2, 8, None), (3, None, "bf16")]
