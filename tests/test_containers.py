"""Container protocols the catalog models and test_catalog.py's cases did not reach (surviving
mutants of frontends/torch/catalog/containers.py): `Sequential + Sequential`, `key in ModuleDict`
and `key in ParameterDict` deciding which layers exist. Checked like test_catalog.py: the same
snippet run by real torch, every parameter's name, shape, dtype and trainability equal.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

import vramlint
from tests.test_catalog import HEADER, _run_torch, _tree_tensors, net

CASES = {
    "Sequential-add": "m = nn.Sequential(nn.Linear(2, 3)) + nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 5))",
    "ModuleDict-contains": net("""
        self.d = nn.ModuleDict({"a": nn.Linear(2, 3)})
        self.x = nn.Linear(3, 5) if "a" in self.d else nn.Linear(3, 7)
        self.y = nn.Linear(3, 9) if "b" in self.d else nn.Linear(3, 11)
    """),
    "ModuleDict-keys-values-items": net("""
        self.d = nn.ModuleDict({"ab": nn.Linear(2, 3), "cde": nn.Linear(2, 4)})
        self.k = nn.ModuleList([nn.Linear(2, len(k)) for k in self.d.keys()])
        self.v = nn.ModuleList([nn.Linear(m.out_features, 5) for m in self.d.values()])
        self.i = nn.ModuleList([nn.Linear(len(k), m.out_features) for k, m in self.d.items()])
    """),
    "ParameterDict-contains": net("""
        self.p = nn.ParameterDict({"w": nn.Parameter(torch.zeros(4))})
        self.x = nn.Linear(2, 5) if "w" in self.p else nn.Linear(2, 7)
        self.y = nn.Linear(2, 9) if "v" in self.p else nn.Linear(2, 11)
    """),
}


@pytest.mark.parametrize("cid", list(CASES))
def test_container_protocols_match_torch(cid: str, tmp_path: Any) -> None:
    src = textwrap.dedent(CASES[cid])
    expected, tensors = _run_torch(src)
    text = HEADER + src
    path = tmp_path / "model.py"
    path.write_text(text)
    (r,) = [r for r in vramlint.analyze_source(str(path), text).models if r.name == "m"]
    assert r.error is None and not r.unknowns, (r.error, r.unknowns)
    assert (r.params.total, r.params.trainable, r.params.buffers) == expected
    assert r.tree is not None and _tree_tensors(r.tree) == tensors
