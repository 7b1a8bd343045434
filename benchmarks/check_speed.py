"""Files per second of `vramlint check` (the real executable, as CI runs it) over library folders.

    python benchmarks/check_speed.py [--repeat 3]

Folders: torchvision 0.26's `models/` (23 files, every model built), transformers 5.17's
`models/gpt2` + `models/bert` (the modeling, configuration and tokenizer files of both), and the
Keras corpus of the tests (`tests/fixtures/keras/models/`, 30 files).
Each run is a fresh process (nothing cached between runs); the figure is the median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.libsources import TORCHVISION_VERSION, TRANSFORMERS_VERSION, library_source  # noqa: E402


def exe() -> list[str]:
    found = shutil.which("vramlint", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "vramlint"]


def count(paths: list[Path]) -> int:
    return sum(1 for p in paths for f in (p.rglob("*.py") if p.is_dir() else [p]) if "__pycache__" not in f.parts)


def time_check(paths: list[Path], extra: list[str], repeat: int) -> tuple[float, int]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run([*exe(), "check", *map(str, paths), "--format", "json", "--fail-on", "never", *extra],
                           capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"vramlint check failed ({r.returncode}): {r.stderr[-2000:]}")
    doc = json.loads(r.stdout)
    return statistics.median(times), sum(len(f["models"]) for f in doc["files"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tv = library_source("torchvision", TORCHVISION_VERSION)
    tf = library_source("transformers", TRANSFORMERS_VERSION)
    sets = {
        "torchvision/models/*.py": [p for p in sorted((tv / "torchvision" / "models").glob("*.py"))],
        "transformers/models/gpt2 + bert": [tf / "transformers" / "models" / "gpt2", tf / "transformers" / "models" / "bert"],
        "keras corpus (tests/fixtures/keras)": [ROOT / "tests" / "fixtures" / "keras" / "models"],
    }
    print(f"{'folder':34} {'files':>5} {'jobs':>5} {'seconds':>8} {'files/s':>8}  models")
    for name, paths in sets.items():
        n = count(paths)
        for jobs in ("1", str(os.cpu_count() or 1)):
            lib = tv if "torchvision" in name else tf if "transformers" in name else None
            extra = ["--extra-path", str(lib)] if lib is not None else []
            seconds, models = time_check(paths, [*extra, "--jobs", jobs], args.repeat)
            print(f"{name:34} {n:5} {jobs:>5} {seconds:8.2f} {n / seconds:8.1f}  {models}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
