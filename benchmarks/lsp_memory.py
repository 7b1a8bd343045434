"""The language server's memory over a long editing session.

    python benchmarks/lsp_memory.py [--edits 2000] [--warmup 100] [--every 250]

Opens the latency benchmark's generated 1,500-line model file (`lsp_latency.big_file`) and types
`--edits` edits into it (the same edit as that benchmark: a layer width, a new value each time),
each followed by a hover, waiting each time for the diagnostics of the new version. The server's
RSS is read after `--warmup` edits and every `--every` edits after, each time after 1.5 s idle (the
server gives freed heap pages back to the system a second after edits pause, as after any pause of
an editor's user), with the peak so far (`VmHWM`: what a burst of edits reached). The figure is the growth after warm-up, per 1,000 edits: the slope of a
least-squares line through the readings (a single reading is noisy by ~1 MB), and end minus start.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from lsprotocol import types

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.lsp_latency import Editor, big_file, edited, rss_mb  # noqa: E402

IDLE_S = 1.5


async def session(edits: int, warmup: int, every: int) -> list[tuple[int, float]]:
    """(edits done, RSS in MB) at each reading."""
    editor = Editor()
    readings: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as ws:
        root = Path(ws)
        await editor.start(root)
        text = big_file()
        big = root / "big_model.py"
        big.write_text(text)
        uri = await editor.open(big, text)
        target = next(i for i, line in enumerate(text.splitlines()) if "hidden=512" in line)
        for k in range(1, edits + 1):
            await editor.change(uri, k + 1, edited(text, k))
            await editor.client.text_document_hover_async(types.HoverParams(
                types.TextDocumentIdentifier(uri), types.Position(target + 3, 12)))
            if k == warmup or (k > warmup and (k - warmup) % every == 0) or k == edits:
                await asyncio.sleep(IDLE_S)
                readings.append((k, rss_mb(editor.pid)))
                print(f"after {k:5d} edits: RSS {readings[-1][1]:7.1f} MB "
                      f"(peak so far {rss_mb(editor.pid, 'VmHWM'):.1f} MB)", flush=True)
        await editor.stop()
    return readings


def slope_per_1000(readings: list[tuple[int, float]]) -> float:
    """MB per 1,000 edits, least squares through the readings."""
    n = len(readings)
    if n < 2:
        return float("nan")
    mx = sum(k for k, _ in readings) / n
    my = sum(r for _, r in readings) / n
    sxx = sum((k - mx) ** 2 for k, _ in readings)
    sxy = sum((k - mx) * (r - my) for k, r in readings)
    return 1000 * sxy / sxx


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--every", type=int, default=250)
    args = ap.parse_args()
    readings = asyncio.run(session(args.edits, args.warmup, args.every))
    (k0, r0), (k1, r1) = readings[0], readings[-1]
    print(f"RSS after warm-up ({k0} edits): {r0:.1f} MB; after {k1} edits: {r1:.1f} MB "
          f"(x{r1 / r0:.3f})")
    if k1 > k0:
        print(f"growth per 1,000 edits after warm-up: {slope_per_1000(readings):+.2f} MB (least squares), "
              f"{1000 * (r1 - r0) / (k1 - k0):+.2f} MB (end - start)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
