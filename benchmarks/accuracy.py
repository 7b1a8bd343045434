"""How close the static memory estimate is to real GPU measurements.

Runs vramlint's estimate on every case of ../shared/calibration/h200-torch2.11.jsonl (torchvision
and transformers models trained and run on an H200) and prints, per case, the estimate, the
measurement and the error; then the median and the largest absolute error. The rules of thumb
people use today are printed next to it: "weights x3", the textbook element count (activations +
gradients, the question's 1,820 x 256), and "4 x the fp32 model size for Adam" (accelerate).

    python benchmarks/accuracy.py [--plot docs/accuracy.png] [--only resnet]

Each case is a small source file, written the way a user would write it (the model, a batch,
one call), analysed as a user's file is: nothing of the measurement is given to the estimate
besides the batch, the precision and the optimizer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
sys.path.insert(0, str(ROOT))

from tests.support.libsources import TORCHVISION_VERSION, TRANSFORMERS_VERSION, library_source  # noqa: E402

from benchmarks.holdout import SOURCES  # noqa: E402
from vramlint.analysis.api import analyze_file  # noqa: E402
from vramlint.settings import Settings  # noqa: E402

CALIBRATION = ROOT.parent / "shared" / "calibration" / "h200-torch2.11.jsonl"
HOLDOUT = ROOT / "benchmarks" / "results" / "holdout-h200.jsonl"
EXCLUDED = {
    # GradScaler skipped every optimizer step (fp16 overflow): no Adam state was ever allocated.
    "tv_resnet50_adamw_fp16amp": "GradScaler skipped every step, so the measurement has no optimizer state",
}
HF_MODELS = {
    "gpt2": "from transformers import GPT2Config, GPT2LMHeadModel\nmodel = GPT2LMHeadModel(GPT2Config())\n",
    "bert": "from transformers import BertConfig, BertForMaskedLM\nmodel = BertForMaskedLM(BertConfig())\n",
    "llama_small": (
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "model = LlamaForCausalLM(LlamaConfig(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,\n"
        "    num_attention_heads=16, num_key_value_heads=16, vocab_size=32000, max_position_embeddings=2048))\n"
    ),
}


@dataclass
class Row:
    case: dict
    estimate: int | None
    seconds: float
    phase: str = ""
    error_text: str = ""

    @property
    def measured(self) -> int:
        return int(self.case["peak_steady"])

    @property
    def error(self) -> float | None:
        return None if self.estimate is None else (self.estimate - self.measured) / self.measured


def case_source(case: dict) -> str:
    """The file a user would write: the model, one batch, one call (measure.py's protocol)."""
    kind, _, name = case["source"].partition(":")
    spec, batch = case["input"], case["batch"]
    ckpt = "model.gradient_checkpointing_enable()\n" if case["extra"].get("checkpointing") else ""
    if kind == "tv":
        model = f"import torchvision\nmodel = torchvision.models.{name}()\n"
    elif kind == "hf":
        model = HF_MODELS[name]
    else:
        model = SOURCES[case["source"]]
    train = case["mode"] == "train"
    if spec[0] == "img":
        _, c, h, w, _classes = spec
        call = f"images = torch.randn({batch}, {c}, {h}, {w})\nlogits = model(images)\n"
    elif spec[0] == "vec":
        call = f"x = torch.randn({batch}, {spec[1]})\nlogits = model(x)\n"
    elif spec[0] == "gpt":
        targets = ", idx" if train else ""
        call = f"idx = torch.randint(0, {spec[1]}, ({batch}, {spec[2]}))\nlogits, loss = model(idx{targets})\n"
    elif spec[0] == "hflm":
        labels = ", labels=ids" if train else ""  # measure.py: model(ids) for inference
        call = f"ids = torch.randint(0, {spec[1]}, ({batch}, {spec[2]}))\nout = model(input_ids=ids{labels})\n"
    else:
        raise ValueError(spec[0])
    return f"import torch\n{model}{ckpt}{call}"


def rules_of_thumb(case: dict, row: Row, est: object) -> dict[str, float]:
    """Today's rules, as people apply them."""
    params = case["params"]
    weights = params * (2 if case["precision"] == "bf16" else 4)
    return {"weights x3": 3 * weights, "adam 4x": 4 * params * 4}


def run(only: str, settings_base: Settings, path: Path = CALIBRATION) -> list[Row]:
    cases = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            if only and only not in case["id"]:
                continue
            path = Path(tmp) / f"{case['id']}.py"
            path.write_text(case_source(case))
            settings = Settings(
                extra_paths=settings_base.extra_paths, memory=True, device="H200",
                precision=case["precision"], optimizer=case["optimizer"] if case["optimizer"] != "none" else "sgd",
            )
            t0 = time.perf_counter()
            fa = analyze_file(str(path), settings)
            dt = time.perf_counter() - t0
            model = next((m for m in fa.models if m.name == "model"), None)
            est = model.memory if model is not None else None
            if est is None:
                why = "; ".join(u.reason for u in (model.memory_unknowns + model.forward_unknowns)[:3]) if model else \
                    "no model"
                rows.append(Row(case, None, dt, error_text=why or (model.error.reason if model and model.error else "")))
                continue
            value = est.inference_peak if case["mode"] == "infer" else est.train_peak
            rows.append(Row(case, value, dt, est.train_peak_phase if case["mode"] == "train" else "inference"))
    return rows


def textbook(case: dict, est: object) -> float:
    """The question's element count: activations (every layer's output) plus gradients, x4 bytes."""
    return float(getattr(est, "activations", 0))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--plot", default="")
    ap.add_argument("--holdout", action="store_true", help="the hold-out measurements instead (benchmarks/holdout.py)")
    ap.add_argument("--cases", default="", help="a JSON-lines file of measurements in measure.py's format")
    args = ap.parse_args()
    extra = (str(library_source("torchvision", TORCHVISION_VERSION)),
             str(library_source("transformers", TRANSFORMERS_VERSION)),
             str(ROOT / "benchmarks" / "gpu" / "models"), str(ROOT / "examples"))
    path = Path(args.cases) if args.cases else HOLDOUT if args.holdout else CALIBRATION
    rows = run(args.only, Settings(extra_paths=extra), path)
    gib = 2**30
    print(f"{'case':34} {'estimate':>9} {'measured':>9} {'error':>7} {'w x3':>7} {'adam 4x':>7}  time  peak at")
    errors = []
    for r in rows:
        c = r.case
        thumbs = rules_of_thumb(c, r, None)
        excluded = EXCLUDED.get(c["id"])
        err = r.error
        est_s = f"{r.estimate / gib:9.3f}" if r.estimate is not None else "      n/a"
        err_s = f"{err * 100:+6.1f}%" if err is not None else "    n/a"
        w3 = (thumbs["weights x3"] - r.measured) / r.measured
        a4 = (thumbs["adam 4x"] - r.measured) / r.measured
        print(f"{c['id']:34} {est_s} {r.measured / gib:9.3f} {err_s} {w3 * 100:+6.0f}% {a4 * 100:+6.0f}%"
              f" {r.seconds:5.1f}s {r.phase or r.error_text}{'  [excluded: ' + excluded + ']' if excluded else ''}")
        if not excluded:
            errors.append(abs(err) if err is not None else float("inf"))
    if errors:
        print(f"\n{len(errors)} cases (GiB): median |error| {statistics.median(errors) * 100:.1f}%, "
              f"max |error| {max(errors) * 100:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
