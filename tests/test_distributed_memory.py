"""The per-GPU memory model's pieces against real torch on the CPU: DDP's bucket assignment
(torch.distributed._compute_bucket_assignment_by_size, the function DDP's reducer runs), FSDP2's
shard sizes (torch.chunk on dim 0, padded), and the timeline of a sharded run."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from vramlint.memory.distributed import (  # noqa: E402
    ParamInfo,
    ddp_buckets,
    fsdp2_local_numel,
    fsdp2_shard_numel,
)

SHAPES = [(1000,), (300, 1000), (5,), (7000, 1000), (200, 1000), (64, 3, 7, 7), (64,), (4096, 1022), (1022,),
          (10, 1022), (32000, 4096), (4096,)]


def _infos(shapes: list[tuple[int, ...]], dtype: torch.dtype = torch.float32) -> list[ParamInfo]:
    out = []
    for i, shape in enumerate(shapes):
        t = torch.empty(shape, dtype=dtype, device="meta")
        out.append(ParamInfo(f"p{i}", t.numel(), t.numel() * t.element_size(), t.numel() * t.element_size(),
                             True, shape))
    return out


@pytest.mark.parametrize("cap_mb", [25.0, 1.0, 50.0, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_ddp_buckets_are_torchs_assignment(cap_mb: float, dtype: torch.dtype) -> None:
    shapes = SHAPES[:10]  # small enough to allocate on the CPU
    tensors = [torch.empty(s, dtype=dtype) for s in shapes]
    first = dist._DEFAULT_FIRST_BUCKET_BYTES if cap_mb == 25.0 else int(cap_mb * (1 << 20))
    # The rebuilt buckets: parameters in the order their gradients are ready (reverse registration).
    order = list(range(len(tensors)))[::-1]
    buckets, _ = dist._compute_bucket_assignment_by_size([tensors[i] for i in order], [first, int(cap_mb * (1 << 20))],
                                                         [False] * len(tensors))
    real = sorted(sum(tensors[order[i]].numel() * tensors[order[i]].element_size() for i in b) for b in buckets)
    assert sorted(ddp_buckets(_infos(shapes, dtype), cap_mb)) == real


def test_ddp_buckets_leave_out_frozen_parameters() -> None:
    infos = _infos(SHAPES[:4])
    frozen = [ParamInfo(p.path, p.numel, p.nbytes, p.state_bytes, i != 3, p.shape) for i, p in enumerate(infos)]
    assert sum(ddp_buckets(frozen, 25.0)) == sum(p.nbytes for p in infos[:3])


@pytest.mark.parametrize("ranks", [2, 3, 4, 8])
def test_fsdp2_shards_are_torch_chunk_padded(ranks: int) -> None:
    for shape in SHAPES:
        t = torch.empty(shape, device="meta")
        chunks = torch.chunk(t, ranks, dim=0)
        rest = t.numel() // shape[0]
        assert fsdp2_shard_numel(shape, ranks) == chunks[0].numel()
        for r in range(ranks):
            local = chunks[r].numel() if r < len(chunks) else 0
            assert fsdp2_local_numel(shape, ranks, r) == local
            assert local <= fsdp2_shard_numel(shape, ranks) and fsdp2_shard_numel(shape, ranks) % rest == 0


def test_the_fsdp2_example_fits_per_gpu_and_not_on_one() -> None:
    """examples/fsdp_gpt.py: 5.2 billion parameters, AdamW, FSDP2 over the 8 ranks of its mesh."""
    from pathlib import Path

    from vramlint.analysis.api import analyze_file
    from vramlint.settings import Settings

    path = Path(__file__).resolve().parents[1] / "examples" / "fsdp_gpt.py"
    (m,) = [m for m in analyze_file(str(path), Settings(memory=True)).models if m.memory is not None]
    est = m.memory
    assert est is not None and est.distributed is not None
    plan = est.distributed.plan
    assert (plan.strategy, plan.world_size, plan.shard_size, len(plan.units)) == ("fsdp2", 8, 8, 65)
    total = m.params.total
    assert total is not None and total > 5_000_000_000
    # The shards: every rank 1/8 of the fp32 weights and gradients (padding is a few KiB).
    assert est.weights == pytest.approx(4 * total / 8, rel=0.001)
    assert est.gradients == pytest.approx(est.weights, rel=0.001)
    assert est.optimizer_state == pytest.approx(2 * est.weights, rel=0.001)
    assert est.fits and est.distributed.one_gpu_peak > est.device_memory


FIRST_OP_WITHOUT_GRAD = """
import torch
import torch.nn as nn
from torch.distributed.fsdp import fully_shard


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(256, 256)

    def forward(self, x):
        scale = torch.arange(256, dtype=torch.float32)  # the block's first op: no gradient flows
        return self.fc(x) * scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block() for _ in range(4)])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


model = Net()
for b in model.blocks:
    fully_shard(b)
fully_shard(model)
optimizer = torch.optim.AdamW(model.parameters())
loss = model(torch.randn(32, 256)).sum()
"""


def test_a_units_post_backward_runs_when_its_first_op_has_no_backward(tmp_path: Any) -> None:
    """The reduce-scatter after a unit's backward is at its first op; an op that needs no
    backward (a constant made in the forward) still has the unit's steps around it: every
    unsharded gradient is reduce-scattered into a shard, none left whole."""
    from vramlint.analysis.api import analyze_file
    from vramlint.settings import Settings

    path = tmp_path / "net.py"
    path.write_text(FIRST_OP_WITHOUT_GRAD)
    fa = analyze_file(str(path), Settings(memory=True, environment=(("WORLD_SIZE", "4"),)))
    est = next(m.memory for m in fa.models if m.name == "model" and m.memory is not None)
    assert est.distributed is not None and est.distributed.plan.shard_size == 4
    assert est.gradients == est.weights


def test_the_fsdp2_example_in_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    """The command line's JSON on examples/fsdp_gpt.py: the strategy, the world size and where each was read."""
    import json
    from pathlib import Path

    from vramlint.cli.main import main as cli_main

    path = Path(__file__).resolve().parents[1] / "examples" / "fsdp_gpt.py"
    assert cli_main(["check", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (model,) = [m for f in doc["files"] for m in f["models"] if m.get("memory")]
    memory, setup = model["memory"], model["setup"]
    assert (memory["world_size"], memory["strategy"]) == (8, "fsdp2 full-shard")
    assert setup["world_size"] == {"value": 8, "source": "code: init_device_mesh(...) at line 19"}
    plan = memory["distributed"]["plan"]
    assert plan["units"][-1] == "" and len(plan["units"]) == 65
    assert memory["bytes"]["communication"] >= 0 and memory["distributed"]["communication_peak"] > 0
