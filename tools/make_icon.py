"""Draws the VS Code extension's icon (client/images/icon.png, 128x128, the `icon` of package.json):
a training step's memory as stacked bars (weights, gradients and optimizer state, activations
rising through the forward pass and freed through the backward) under the GPU's budget, a dashed
red line. Written with zlib and struct alone, deterministic: tests/test_package_json.py checks that
the committed file is what this script draws.

    python tools/make_icon.py            # writes client/images/icon.png
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZE = 128
SAMPLES = 4  # supersampling per axis: smooth corners and edges
OUT = Path(__file__).resolve().parent.parent / "client" / "images" / "icon.png"

Color = tuple[int, int, int]
BACKGROUND: Color = (27, 36, 51)
WEIGHTS: Color = (78, 140, 255)
STATE: Color = (155, 109, 255)
ACTIVATIONS: Color = (255, 179, 71)
BUDGET: Color = (255, 92, 92)

# The bars: (activations) in pixels, over a constant weights + state base; forward up, backward down.
ACTIVATION_HEIGHTS = [4, 14, 24, 34, 44, 30, 16, 6]
BAR_LEFT, BAR_WIDTH, BAR_GAP, BASELINE = 18, 9, 3, 108
WEIGHTS_HEIGHT, STATE_HEIGHT = 14, 22
BUDGET_Y, BUDGET_THICKNESS = 24, 4


def in_rounded_square(x: float, y: float, radius: float = 24.0) -> bool:
    """Whether a point is inside the icon's rounded square (the whole 128x128 canvas)."""
    cx = min(max(x, radius), SIZE - radius)
    cy = min(max(y, radius), SIZE - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def color_at(x: float, y: float) -> Color | None:
    """The colour of a point of the drawing, None outside the icon (transparent)."""
    if not in_rounded_square(x, y):
        return None
    if BUDGET_Y <= y < BUDGET_Y + BUDGET_THICKNESS and 12 <= x < SIZE - 12 and int(x - 12) % 12 < 8:
        return BUDGET
    for i, activations in enumerate(ACTIVATION_HEIGHTS):
        left = BAR_LEFT + i * (BAR_WIDTH + BAR_GAP)
        if not left <= x < left + BAR_WIDTH:
            continue
        height = BASELINE - y
        if 0 <= height < WEIGHTS_HEIGHT:
            return WEIGHTS
        if WEIGHTS_HEIGHT <= height < WEIGHTS_HEIGHT + STATE_HEIGHT:
            return STATE
        if WEIGHTS_HEIGHT + STATE_HEIGHT <= height < WEIGHTS_HEIGHT + STATE_HEIGHT + activations:
            return ACTIVATIONS
    return BACKGROUND


def pixel(px: int, py: int) -> bytes:
    """One RGBA pixel, the average of SAMPLES x SAMPLES points (alpha: the share inside the icon)."""
    r = g = b = inside = 0
    for sy in range(SAMPLES):
        for sx in range(SAMPLES):
            c = color_at(px + (sx + 0.5) / SAMPLES, py + (sy + 0.5) / SAMPLES)
            if c is not None:
                r, g, b, inside = r + c[0], g + c[1], b + c[2], inside + 1
    if inside == 0:
        return bytes(4)
    return bytes((r // inside, g // inside, b // inside, 255 * inside // SAMPLES**2))


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png() -> bytes:
    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(SIZE)) for y in range(SIZE))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(png())
    print(f"{OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
