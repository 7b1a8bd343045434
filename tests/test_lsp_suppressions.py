"""Suppressions in the editor, through the real language server: a suppressed finding has no
diagnostic, an unused suppression is a VL901 diagnostic whose quick fix removes it, and the edited
file's diagnostics are then clean."""

from __future__ import annotations

import pytest

from tests import test_lsp
from tests.test_lsp import Session, apply_edit, by_code, only_edit
from tests.test_suppressions import VGG, VGG_LINE

client = test_lsp.client
lsp = test_lsp.lsp


@pytest.mark.asyncio
async def test_suppression_and_its_quick_fix_in_the_editor(lsp: Session) -> None:
    text = VGG.format(comment="  # vramlint: ignore[VL101, VL102]")
    uri = await lsp.open("vgg.py", text)
    diags = await lsp.edit(uri, text)  # the full analysis (with the estimate) after the first
    assert by_code(diags, "VL101") == []
    (unused,) = by_code(diags, "VL901")
    assert unused.range.start.line == VGG_LINE - 1 and "VL102" in unused.message
    (action,) = await lsp.actions(uri, [unused])
    assert action.title == "Remove `VL102`"
    fixed = apply_edit(text, only_edit(action, uri))
    assert fixed == VGG.format(comment="  # vramlint: ignore[VL101]")
    assert [d.code for d in await lsp.edit(uri, fixed) if d.code is not None] == []
