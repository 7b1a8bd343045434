"""Constructs seen in public model code, each checked against real torch: a model whose size
depends on the construct must get torch's exact count, not "unknown" (issue 12's list)."""

from __future__ import annotations

from pathlib import Path

import pytest

import vramlint

torch = pytest.importorskip("torch")

HEADER = """\
import keyword
from collections import OrderedDict
import torch
import torch.nn as nn


class Config:
    depth = 3

    def blocks(self):
        return self.depth

"""

# Each expression gives an int; the model is `nn.Linear(EXPR + 1, 2)`.
EXPRESSIONS = {
    "dir-of-a-class-and-instance": "len([n for n in dir(Config()) if not n.startswith('_')]) + ('blocks' in dir(Config))",
    "keyword": "keyword.iskeyword('for') + len(keyword.kwlist) // 10",
    "ordered-dict-keys": "len(list(OrderedDict([('a', 1), ('b', 2)]).keys())) + len(OrderedDict(x=1).items())",
    "linspace-split-tolist": "len(torch.linspace(0, 0.1, 12).split([4, 8])[1].tolist()) "
                             "+ int(torch.linspace(0, 0.1, 12).split([4, 8])[1].tolist()[-1] * 100)",
    "generator": "int(torch.Generator().manual_seed(0) is not None)",
    "unbind": "len(torch.arange(6).reshape(2, 3).unbind(1)) + int(torch.arange(6).reshape(2, 3).unbind(1)[2][1])",
    "tensor-from-a-list": "torch.Tensor([1.0, 2.0, 3.0]).shape[0] + torch.Tensor(2, 5).shape[1]",
    "outer": "torch.outer(torch.arange(3), torch.arange(4)).shape[1] + int(torch.outer(torch.arange(3), torch.arange(4))[2, 3])",
    "arange-none-index": "torch.arange(5)[:, None].shape[0] + torch.arange(5)[None].shape[1]",
}


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_construct_gives_torchs_count(name: str, tmp_path: Path) -> None:
    text = HEADER + f"m = nn.Linear(int({EXPRESSIONS[name]}) + 1, 2)\n"
    ns: dict[str, object] = {}
    exec(compile(text, "<model>", "exec"), ns)
    expected = sum(p.numel() for p in ns["m"].parameters())  # type: ignore[attr-defined]
    path = tmp_path / "model.py"
    result = vramlint.analyze_source(str(path), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert not m.unknowns, [u.reason for u in m.unknowns]
    assert m.params.total == expected


def test_dir_of_a_native_object_is_an_unknown_not_a_guess(tmp_path: Path) -> None:
    text = HEADER + "m = nn.Linear(len(dir(nn.Linear(2, 2))), 2)\n"
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert m.params.total is None
    assert any("dir() of Linear" in u.reason for u in m.unknowns)


def test_sequential_of_unknown_blocks_is_unknown_not_an_error(tmp_path: Path) -> None:
    """`nn.Sequential(*blocks)` with `blocks` from a module vramlint cannot read: the model is
    there, with an unknown count that says why (it raised TypeError before)."""
    text = "import torch.nn as nn\nfrom missingpkg import blocks\nm = nn.Sequential(*blocks)\n"
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert m.params.total is None and m.error is None
    assert any("missingpkg" in u.reason for u in m.unknowns)
    assert not result.warnings
