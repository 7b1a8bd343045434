"""The fixed costs of a device (memory/devices.py) from their documented sources, not from the code:

- cuBLAS's workspace per handle: on Hopper PyTorch configures `:4096:8` (4096 KiB x 8 = 32 MiB); before
  Hopper `:4096:2:16:8` (4096 KiB x 2 + 16 KiB x 8 = 8,519,680 bytes), plus cuBLASLt's own, 1 MiB, or
  4 MiB on cards of compute capability 8.x with 24 GB or more (PyTorch's CUDABlasHandlePool.cpp).
- A card given by size: `24GiB` is 24 x 2^30 bytes, `80GB` 80 x 10^9, both pre-Hopper.
- Host memory: the training process is Python + torch + the CUDA runtime (1,100 MiB measured) plus
  the model's CPU copy and the batch; training on the CPU alone, torch (350 MiB) plus the training
  peak without cuBLAS workspaces.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_memory import QUESTION
from vramlint.analysis.api import analyze_source
from vramlint.memory.devices import DEVICES, device_named
from vramlint.settings import Settings

KiB, MiB = 1024, 2**20
PRE_HOPPER = 4096 * KiB * 2 + 16 * KiB * 8


@pytest.mark.parametrize(("name", "workspace"), [
    ("H100", 32 * MiB), ("H200", 32 * MiB),
    ("A100", PRE_HOPPER + 4 * MiB), ("A100-40GB", PRE_HOPPER + 4 * MiB), ("RTX-4090", PRE_HOPPER + 4 * MiB),
    ("RTX-3090", PRE_HOPPER + 4 * MiB), ("L40S", PRE_HOPPER + 4 * MiB),
    ("A10", PRE_HOPPER + 1 * MiB), ("L4", PRE_HOPPER + 1 * MiB),  # 8.x, under 24 GB
    ("T4", PRE_HOPPER + 1 * MiB), ("V100", PRE_HOPPER + 1 * MiB),  # before 8.x
])
def test_cublas_workspace_per_handle(name: str, workspace: int) -> None:
    d = device_named(name)
    assert d is not None and d.blas_workspace == workspace


def test_a_card_by_size() -> None:
    for name, size in (("24GiB", 24 * 2**30), ("80GB", 80 * 10**9), ("1.5GiB", 3 * 2**29), ("8 gib", 8 * 2**30)):
        d = device_named(name)
        assert d is not None and d.memory == size and d.blas_workspace < 32 * MiB, name
    assert device_named("h100-80gb") is DEVICES["h100-80gb"] is device_named("H100")
    assert device_named("24TB") is None and device_named("B300") is None


def test_host_memory(tmp_path: Path) -> None:
    path = tmp_path / "q.py"
    fa = analyze_source(str(path), QUESTION, Settings(memory=True, device="H100"))
    (m,) = [m for m in fa.models if m.name == "model"]
    e = m.memory
    assert e is not None
    assert e.host_peak == 1100 * MiB + e.weights + e.buffers + e.inputs
    assert e.host_peak_cpu_training == 350 * MiB + e.train_peak - e.workspace
