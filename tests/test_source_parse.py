"""engine/source.py: a parse skips libcst's per-node validation (the parser's output is valid
by construction) and leaves validation on for every other construction."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst import CSTNode

from vramlint.engine import source
from vramlint.engine.source import SourceModule


def test_a_parse_does_not_validate_and_restores_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    validate = source._VALIDATE

    def counting(self: CSTNode) -> None:
        calls.append(type(self).__name__)
        validate(self)

    monkeypatch.setattr(source, "_VALIDATE", counting)
    monkeypatch.setattr(CSTNode, "__post_init__", counting)
    src = SourceModule("m.py", "import torch\nx = torch.zeros(3) + 1\n", "m")
    assert src.tree is not None and src.syntax_error is None
    assert calls == []  # no node of the parse was validated
    assert CSTNode.__post_init__ is counting  # and validation is back
    cst.Name("y")
    assert calls == ["Name"]


def test_invalid_nodes_are_still_rejected_after_a_parse() -> None:
    SourceModule("m.py", "y = 1\n", "m")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("")


def test_the_same_tree_as_libcst_parse_module() -> None:
    text = "def f(a, *b, c=1, **d):\n    return [x async for x in a] if a else {**d}\n"
    src = SourceModule("m.py", text, "m")
    assert src.tree is not None
    assert src.tree.code == text
    assert src.tree.deep_equals(cst.parse_module(text))
