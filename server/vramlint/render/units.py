"""Byte counts for people: binary units, as nvidia-smi and torch.cuda.memory_summary print them."""

from __future__ import annotations


def fmt_range(bounds: tuple[int, int] | None) -> str:
    """` (1.20-2.70 GiB by cuDNN's algorithm)` after a peak that depends on it; "" else."""
    if bounds is None:
        return ""
    low, high = fmt_bytes(bounds[0]), fmt_bytes(bounds[1])
    if low.split()[-1] == high.split()[-1]:
        low = low.rsplit(" ", 1)[0]
    return f" ({low}-{high} by cuDNN's algorithm)"


def fmt_bytes(n: int | float | None) -> str:
    if n is None:
        return "unknown"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}" if unit == "GiB" else f"{n / size:.1f} {unit}"
    return f"{int(n)} B"
