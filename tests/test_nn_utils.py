"""torch.nn.utils reparametrizations (weight_norm, spectral_norm, parametrizations.*) against real torch:
the same parameter and buffer names, shapes and counts."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import vramlint

torch = pytest.importorskip("torch")
SOURCE = Path(__file__).parent / "fixtures" / "code" / "reparametrized.py"
NAMES = ["a", "b", "c", "d", "e", "f", "g", "h", "layer"]


def tensors(node: vramlint.ModuleNode, kind: str) -> dict[str, tuple[int | None, ...] | None]:
    own = node.params if kind == "params" else node.buffers
    out = {f"{node.path}.{t.name}" if node.path else t.name: t.shape for t in own}
    for child in node.children:
        out.update(tensors(child, kind))
    return out


@pytest.fixture(scope="module")
def analysed() -> dict[str, vramlint.ModelResult]:
    return {m.name: m for m in vramlint.analyze_file(str(SOURCE)).models}


@pytest.fixture(scope="module")
def real() -> dict[str, object]:
    return runpy.run_path(str(SOURCE))


@pytest.mark.parametrize("name", NAMES)
def test_reparametrized_layers_match_torch(name: str, analysed: dict[str, vramlint.ModelResult],
                                           real: dict[str, object]) -> None:
    ours, theirs = analysed[name], real[name]
    assert ours.unknowns == [] and ours.tree is not None
    assert tensors(ours.tree, "params") == {n: tuple(p.shape) for n, p in theirs.named_parameters()}  # type: ignore[attr-defined]
    assert tensors(ours.tree, "buffers") == {n: tuple(b.shape) for n, b in theirs.named_buffers()}  # type: ignore[attr-defined]
    assert ours.params.total == sum(p.numel() for p in theirs.parameters())  # type: ignore[attr-defined]


READS_WEIGHT = """\
import torch.nn as nn


class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 6, 3), name="weight", dim=2)
        self.b = nn.utils.weight_norm(nn.Linear(5, 7))
        self.c = nn.utils.spectral_norm(nn.Linear(3, 2))
        # Wav2Vec2's _init_weights reads `conv.weight` of its weight-normed positional conv.
        n = self.a.weight.shape[0] + self.b.weight.shape[1] + self.c.weight.shape[0] + len(list(self.a.parameters()))
        self.d = nn.Linear(n, 1)


m = M()
"""


def test_a_reparametrized_weight_still_reads(tmp_path: Path) -> None:
    """After weight_norm/spectral_norm (old hooks or parametrizations), `layer.weight` is a tensor
    of the weight's shape, as in torch, and not a parameter (the count stays torch's)."""
    ns: dict[str, object] = {}
    exec(compile(READS_WEIGHT, "<model>", "exec"), ns)
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "m.py"), READS_WEIGHT).models if r.name == "m"]
    assert not m.unknowns, [u.reason for u in m.unknowns]
    assert m.params.total == sum(p.numel() for p in ns["m"].parameters())  # type: ignore[attr-defined]
