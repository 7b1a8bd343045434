"""In-place Tensor methods and functions (`h.relu_()`, `F.relu_(h)`, `h.mul_(w)`), and functional
forms whose arguments the layers' attributes do not give (`F.group_norm(x, 32)`), against what
torch's autograd keeps (CPU, tests/test_memory_saved.py's harness): an in-place op writes its
input's storage, so what the next layer keeps is that storage, not a new tensor; relu_ and
sigmoid_ read their result in backward (no copy), hardtanh_ (clamp_) keeps a copy of its input.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.test_memory_saved import (
    HEADER,
    build_torch,
    rounded,
    torch_saved,
    vramlint_estimate,
    vramlint_loss,
)

torch = pytest.importorskip("torch")


def net(forward: str, x: str = "torch.randn(8, 16)") -> str:
    body = textwrap.indent(textwrap.dedent(forward).strip("\n"), " " * 8)
    return HEADER + f"""\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 4)

    def forward(self, x):
{body}


model = Net()
x = {x}
out = model(x)
"""


CASES = {
    "tensor-relu_": net("""
        h = self.fc1(x)
        h.relu_()
        return self.fc3(self.fc2(h).sigmoid_())
    """),
    "functional-relu_": net("""
        h = F.relu_(self.fc1(x))
        return self.fc3(self.fc2(h).tanh_())
    """),
    "tensor-mul_-add_": net("""
        h = self.fc1(x)
        g = self.fc2(h)
        g.mul_(h)
        g.add_(1.0)
        return self.fc3(g)
    """),
    # The functional form takes its group count positionally: [N, groups] mean and rstd are kept.
    "functional-group-norm": net("""
        h = F.group_norm(self.fc1(x), 32)
        return self.fc3(self.fc2(h))
    """, x="torch.randn(256, 16)"),
    "tensor-clamp_": net("""
        h = self.fc1(x).clamp_(0.0, 6.0)
        return self.fc3(self.fc2(h))
    """),
}


@pytest.mark.parametrize("cid", list(CASES))
def test_in_place_methods_keep_what_torch_keeps(cid: str, tmp_path: Path) -> None:
    text = CASES[cid]
    model, inputs = build_torch(text)
    saved, which = torch_saved(model, inputs, vramlint_loss)
    assert which == "cross_entropy"
    truth = sum(rounded(s.nbytes) for s in saved)
    got = vramlint_estimate(text, tmp_path / "case.py").activations
    assert got == truth, f"vramlint {got} B, torch {truth} B; torch keeps:\n  " + "\n  ".join(map(str, saved))
