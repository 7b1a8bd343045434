"""How much library model code vramlint counts exactly: exact / unknown / wrong / crash per corpus.

    python benchmarks/library_coverage.py                    # the pinned releases the tests use
    python benchmarks/library_coverage.py --corpus timm      # one corpus
    python benchmarks/library_coverage.py --corpus timm --timm-by-name   # timm.create_model(name) for each
    python benchmarks/library_coverage.py --newest           # also the newest timm, transformers, diffusers

Each model is analysed as a user's file would build it (`from timm.models.resnet import resnet50;
model = resnet50()`), the library's unpacked wheel on the analysis path, and compared with the
parameter count real torch gives (tests/fixtures/truth/, made by the scripts there):

- timm: every registered model factory (`timm.list_models()`, 1,371 at 1.0.31), default arguments;
- torchvision: every classification model, and every detection, segmentation, video and
  optical-flow model (`weights=None, weights_backbone=None`);
- transformers: every base, LM, seq2seq, image-text and image-classification class of 42 model
  types, from a small config (transformers-corpus-<version>.json, 90 models per release);
- diffusers: every model class it exports that builds from its default config;
- public: model files of public training repositories (tests/fixtures/public/, with licences).

`--newest` asks pip for the newest timm, transformers and diffusers releases, makes the truth for them with
real torch (CPU build) in its own virtual environment (`.cache/coverage-env`, created once), and
prints the same rates, so that a breaking release shows up here before a user reports it.
Figures and their date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import corpora  # noqa: E402
from tests.support.libsources import (  # noqa: E402
    TIMM_VERSION,
    TORCHVISION_VERSION,
    library_source,
)

TRUTH = ROOT / "tests" / "fixtures" / "truth"
NEWEST_TRUTH = ROOT / ".cache" / "truth-newest"
ENV = ROOT / ".cache" / "coverage-env"
TORCH = "2.13.0"  # the truth scripts check it: the counts are those of this release
Case = tuple[str, str, dict[str, Any], tuple[str, ...]]  # (name, the user's file, truth, analysis path)


def timm_cases(version: str, truth_dir: Path, by_name: bool = False) -> Iterator[Case]:
    """Each factory from its model file, or (`by_name`) through the registry: `import timm;
    model = timm.create_model(name)`, the engine's lazy registry (engine/registrations.py) running
    the model files the names need as the analyses go."""
    paths = (str(library_source("timm", version)), str(library_source("torchvision", TORCHVISION_VERSION)))
    models = json.loads((truth_dir / f"timm-{version}.json").read_text())["models"]
    if by_name:
        return ((n, f"import timm\n\nmodel = timm.create_model({n!r})\n", t, paths) for n, t in models.items())
    return ((n, corpora.timm_source(n, t["module"]), t, paths) for n, t in models.items())


def torchvision_cases() -> Iterator[Case]:
    paths = (str(library_source("torchvision", TORCHVISION_VERSION)),)
    classify = json.loads((TRUTH / f"torchvision-{TORCHVISION_VERSION}.json").read_text())["models"]
    tasks = corpora.torchvision_tasks_truth(TORCHVISION_VERSION)["models"]

    for n, t in classify.items():
        yield n, f"from torchvision.models import {n}\n\nmodel = {n}()\n", t, paths
    for n, t in tasks.items():
        yield n, corpora.torchvision_task_source(n, t), t, paths


def transformers_cases(version: str, truth_dir: Path) -> Iterator[Case]:
    paths = (str(library_source("transformers", version)),)
    models = json.loads((truth_dir / f"transformers-corpus-{version}.json").read_text())["models"]
    return ((k, corpora.transformers_corpus_source(k, t), t, paths) for k, t in models.items())


def run(label: str, cases: Iterator[Case], verbose: bool) -> list[corpora.Outcome]:
    start = time.perf_counter()
    outcomes = []
    for name, text, truth, paths in cases:
        out = corpora.analyse_source(name, text, truth, paths)
        outcomes.append(out)
        if verbose or out.status in ("wrong", "crash"):
            print(f"    {out.status:7s} {name}: {out.why[:160]}", flush=True)
    took = time.perf_counter() - start
    print(f"{corpora.rate_line(label, outcomes)}  [{took:.0f} s]", flush=True)
    reasons = Counter(o.why.split(" (")[0][:110] for o in outcomes if o.status == "unknown")
    for why, n in reasons.most_common(5):
        print(f"    {n:4d} unknown: {why}")
    return outcomes


# ---------------------------------------------------------------------- --newest
def newest(dist: str) -> str:
    """The newest release pip installs (`pip index versions`)."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", dist, "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^{re.escape(dist)} \(([^)]+)\)", out, re.M)
    if m is None:
        raise SystemExit(f"pip index versions {dist}: no version in {out!r}")
    return m.group(1)


def truth_env(transformers: str, diffusers: str) -> Path:
    """A virtual environment with real torch (CPU build) for the truth scripts: the libraries
    themselves are imported from .cache/libs, only their dependencies are installed here."""
    python = ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True)
    deps = [f"torch=={TORCH}", "pyyaml", "huggingface_hub", "safetensors", "numpy", "pillow", f"transformers=={transformers}",
            f"diffusers=={diffusers}"]
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *deps], check=True)
    return python


def make_truth(python: Path, script: str, args: list[str], out: Path) -> None:
    if out.exists():
        return
    NEWEST_TRUTH.mkdir(parents=True, exist_ok=True)
    print(f"  truth: {script} {' '.join(args)} (real torch, CPU; minutes)", flush=True)
    subprocess.run([str(python), str(TRUTH / script), *args, "--out-dir", str(NEWEST_TRUTH)], check=True,
                   stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("all", "timm", "torchvision", "transformers", "diffusers", "public"), default="all")
    parser.add_argument("--newest", action="store_true", help="also the newest timm, transformers, diffusers releases")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per model")
    parser.add_argument("--timm-by-name", action="store_true",
                        help="timm's models as `timm.create_model(name)`, not from their model files")
    args = parser.parse_args(argv)
    want: Callable[[str], bool] = lambda c: args.corpus in ("all", c)  # noqa: E731

    print(f"vramlint library coverage, {time.strftime('%Y-%m-%d')} (truth: real torch {TORCH}, CPU)")
    if want("timm"):
        how = "every registered name, by `timm.create_model(name)`" if args.timm_by_name else "every registered factory"
        run(f"timm {TIMM_VERSION} ({how})", timm_cases(TIMM_VERSION, TRUTH, args.timm_by_name), args.verbose)
    if want("torchvision"):
        run(f"torchvision {TORCHVISION_VERSION} (classification, detection, segmentation, video, flow)",
            torchvision_cases(), args.verbose)
    if want("transformers"):
        for path in sorted(TRUTH.glob("transformers-corpus-*.json")):
            version = path.stem.rpartition("-")[2]
            run(f"transformers {version} (42 model types, every kind)", transformers_cases(version, TRUTH), args.verbose)
    if want("diffusers"):
        run("diffusers 0.42.1 (every model class, default config)", corpora.diffusers_cases(), args.verbose)
    if want("public"):
        run("public repository files", corpora.public_cases(), args.verbose)
    if args.newest:
        timm_v, hf_v, diffusers_v = newest("timm"), newest("transformers"), newest("diffusers")
        print(f"newest releases: timm {timm_v}, transformers {hf_v}, diffusers {diffusers_v}")
        python = truth_env(hf_v, diffusers_v)
        if want("timm"):
            make_truth(python, "make_timm_truth.py", ["--timm-version", timm_v], NEWEST_TRUTH / f"timm-{timm_v}.json")
            run(f"timm {timm_v} (newest)", timm_cases(timm_v, NEWEST_TRUTH), args.verbose)
        if want("transformers"):
            make_truth(python, "make_transformers_truth.py", [hf_v], NEWEST_TRUTH / f"transformers-corpus-{hf_v}.json")
            run(f"transformers {hf_v} (newest)", transformers_cases(hf_v, NEWEST_TRUTH), args.verbose)
        if want("diffusers"):
            make_truth(python, "make_diffusers_truth.py", ["--diffusers-version", diffusers_v],
                       NEWEST_TRUTH / f"diffusers-{diffusers_v}.json")
            run(f"diffusers {diffusers_v} (newest)", corpora.diffusers_cases(diffusers_v, NEWEST_TRUTH, hf_v), args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
