"""Fixed costs of a CUDA device: cuBLAS workspaces, the CUDA context, the host process.

Measured on an H200 with torch 2.11 / CUDA 13
(benchmarks/data/calibration/h200-context-and-workspaces.json):
the first matmul allocates a 32 MiB cuBLAS workspace through the caching allocator, backward
(autograd's own thread, so another handle) another 32 MiB; the context plus the loaded cuBLAS and
cuDNN libraries take ~830 MiB of device memory outside the allocator. Before Hopper PyTorch's
default cuBLAS workspace is `:4096:2:16:8` = 8,519,680 bytes per handle, plus cuBLASLt's
(1 MiB; 4 MiB on Ampere cards with 24 GB or more).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Device:
    name: str
    memory: int  # bytes the driver reports as total
    sm: int  # compute capability x10 (90 = Hopper)

    @property
    def blas_workspace(self) -> int:
        """cuBLAS (+ cuBLASLt) workspace per (handle, stream), allocated through the caching allocator."""
        if self.sm >= 90:
            return 32 * MiB
        lt = 4 * MiB if self.sm in (80, 86, 89) and self.memory >= 24 * 10**9 else 1 * MiB
        return 8_519_680 + lt

    @property
    def context(self) -> int:
        """The CUDA context plus cuBLAS/cuDNN code, outside the caching allocator (measured on
        the H200: 621 MiB after init, 760-870 MiB once the libraries are loaded)."""
        return 830 * MiB


DEVICES: dict[str, Device] = {d.name.lower(): d for d in (
    Device("H200", 150_109_880_320, 90),
    Device("H100-80GB", 85_029_158_912, 90),
    Device("A100-80GB", 85_097_742_336, 80),
    Device("A100-40GB", 42_505_273_344, 80),
    Device("L40S", 47_697_362_944, 89),
    Device("L4", 23_580_639_232, 89),
    Device("A10", 23_836_098_560, 86),
    Device("RTX-4090", 25_393_692_672, 89),
    Device("RTX-3090", 25_438_126_080, 86),
    Device("V100-32GB", 34_089_730_048, 70),
    Device("V100-16GB", 16_945_512_448, 70),
    Device("T4", 15_655_829_504, 75),
)}
ALIASES = {"h100": "h100-80gb", "a100": "a100-80gb", "4090": "rtx-4090", "3090": "rtx-3090", "v100": "v100-32gb"}

# Host memory of a training process besides the model: Python, torch and the CUDA runtime
# (VmHWM of the calibration runs minus the model's CPU copy: 1.0-1.2 GB), and torch on the CPU alone.
HOST_RUNTIME_CUDA = 1100 * MiB
HOST_RUNTIME_CPU = 350 * MiB

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(gib|gb)")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY = {_key(k): d for k, d in DEVICES.items()} | {_key(a): DEVICES[t] for a, t in ALIASES.items()}


def device_named(name: str) -> Device | None:
    """A card by name (`H100`, `h100-80gb`, `RTX 4090`, `a100_40gb`...) or a size (`24GiB`, `80GB`:
    a card of that much memory, with pre-Hopper workspaces)."""
    found = _BY_KEY.get(_key(name))
    if found is not None:
        return found
    m = _SIZE.fullmatch(name.strip().lower())
    if m is None:
        return None
    size = float(m.group(1)) * (2**30 if m.group(2) == "gib" else 10**9)
    return Device(name.strip(), int(size), 80)
