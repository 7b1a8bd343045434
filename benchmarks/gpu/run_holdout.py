"""On a CUDA machine: measure the hold-out cases (benchmarks/holdout.py) with the calibration
protocol (measure.py, the calibration set's script: benchmarks/data/calibration/README.md) and write
one JSON line per case.

    python3 benchmarks/gpu/run_holdout.py --out benchmarks/results/holdout-h200.jsonl [--jobs 4]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import measure  # noqa: E402

from holdout import CASES  # noqa: E402

measure.CASES[:] = CASES
measure.MODELS = os.path.join(HERE, "models")

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="holdout.jsonl")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--case")
    ap.add_argument("--only", default="")
    ap.add_argument("--dry", action="store_true")
    a = ap.parse_args()
    # measure.main() re-runs this file per case (`--case ID`), so its CASES are the hold-out ones.
    dry = ["--dry"] if a.dry else []
    sys.argv = ([sys.argv[0], "--all", "--jobs", str(a.jobs), "--out", a.out, "--only", a.only] if not a.case else
                [sys.argv[0], "--case", a.case]) + dry
    measure.main()
