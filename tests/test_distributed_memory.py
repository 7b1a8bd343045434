"""The per-GPU memory model's pieces against real torch on the CPU: DDP's bucket assignment
(torch.distributed._compute_bucket_assignment_by_size, the function DDP's reducer runs), FSDP2's
shard sizes (torch.chunk on dim 0, padded), and the timeline of a sharded run."""

from __future__ import annotations

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
