"""How close the static memory estimate is to real GPU measurements.

Runs vramlint's estimate on every case of benchmarks/data/calibration/h200-torch2.11.jsonl (torchvision
and transformers models trained and run on an H200) and prints, per case, the estimate, the
measurement and the error; then the median and the largest absolute error. The rules of thumb
people use today are printed next to it: "weights x3", the textbook element count (activations +
gradients, the question's 1,820 x 256), and "4 x the fp32 model size for Adam" (accelerate).

    python benchmarks/accuracy.py [--plot docs/accuracy.png] [--only resnet]

Beside the peak: the predicted `torch.cuda.max_memory_reserved()` of training cases (the simulated
caching allocator) against the measured one, and the largest batch that trains on the emulated
cards of h200-max-batch.jsonl against vramlint's `--max-batch` answer for those cards.

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

CALIBRATION = ROOT / "benchmarks" / "data" / "calibration" / "h200-torch2.11.jsonl"  # README.md there: provenance
HOLDOUT = ROOT / "benchmarks" / "results" / "holdout-h200.jsonl"
MAX_BATCH = CALIBRATION.parent / "h200-max-batch.jsonl"
EMULATED_CONTEXT = 800 * 2**20  # the max-batch cases' card less what the allocator was allowed (README.md)
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
    textbook: int | None = None  # the hand count, in elements
    reserved: int | None = None  # predicted max_memory_reserved()

    @property
    def measured(self) -> int:
        return int(self.case["peak_steady"])

    @property
    def error(self) -> float | None:
        return None if self.estimate is None else (self.estimate - self.measured) / self.measured

    @property
    def reserved_error(self) -> float | None:
        measured = self.case.get("max_reserved")
        return None if self.reserved is None or not measured else (self.reserved - measured) / measured


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


def rules_of_thumb(row: Row) -> dict[str, float]:
    """Today's rules, as people apply them: the question's element count (inputs and layer
    outputs, plus one gradient per output, times the batch, at 4 bytes), "weights x3", and
    accelerate's "4x the fp32 model size for Adam"."""
    params = row.case["params"]
    width = 2 if row.case["precision"] == "bf16" else 4
    return {"hand count": float(row.textbook or 0) * width, "weights x3": 3.0 * params * width,
            "4x weights (Adam)": 4.0 * params * 4}


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
            rows.append(Row(case, value, dt, est.train_peak_phase if case["mode"] == "train" else "inference",
                            textbook=est.textbook.elements if est.textbook else None,
                            reserved=est.max_reserved if case["mode"] == "train" else est.inference_max_reserved))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="only the cases whose id contains this")
    ap.add_argument("--holdout", action="store_true",
                    help="also the hold-out cases, measured after the model was built (benchmarks/holdout.py)")
    ap.add_argument("--cases", default="", help="instead, a JSON-lines file of measurements in measure.py's format")
    ap.add_argument("--plot", default="", help="write the estimate-vs-measured plot (PNG) here")
    args = ap.parse_args()
    extra = (str(library_source("torchvision", TORCHVISION_VERSION)),
             str(library_source("transformers", TRANSFORMERS_VERSION)),
             str(ROOT / "benchmarks" / "gpu" / "models"), str(ROOT / "examples"))
    sets = [("cases", Path(args.cases))] if args.cases else \
        [("calibration", CALIBRATION)] + ([("hold-out", HOLDOUT)] if args.holdout else [])
    everything: list[Row] = []
    for title, path in sets:
        rows = run(args.only, Settings(extra_paths=extra), path)
        print_table(title, rows)
        everything += rows
    if not args.cases:
        print_max_batch(max_batch_rows(args.only, Settings(extra_paths=extra)))
    if args.plot:
        plot(everything, Path(args.plot))
        print(f"plot written to {args.plot}")
    return 0


def print_table(title: str, rows: list[Row]) -> None:
    gib = 2**30
    print(f"\n{title}: estimated vs measured peak (GiB); the rules of thumb as their error")
    print(f"{'case':32} {'estimate':>8} {'measured':>8} {'error':>7} {'resrvd':>7} {'hand':>6} {'w x3':>6} "
          f"{'adam4x':>6}  time  peak at")
    kept = [r for r in rows if r.case["id"] not in EXCLUDED]
    for r in rows:
        excluded = EXCLUDED.get(r.case["id"])
        est_s = f"{r.estimate / gib:8.3f}" if r.estimate is not None else "     n/a"
        err_s = f"{r.error * 100:+6.1f}%" if r.error is not None else "    n/a"
        thumbs = " ".join(_pct(v, r.measured) for v in rules_of_thumb(r).values())
        res_s = f"{r.reserved_error * 100:+6.1f}%" if r.reserved_error is not None else "    n/a"
        print(f"{r.case['id']:32} {est_s} {r.measured / gib:8.3f} {err_s} {res_s} {thumbs} {r.seconds:5.1f}s "
              f"{r.phase or r.error_text}{'  [excluded: ' + excluded + ']' if excluded else ''}")
    if not kept:
        return
    errors = [abs(r.error) if r.error is not None else float("inf") for r in kept]
    print(f"{len(errors)} cases: vramlint median |error| {statistics.median(errors) * 100:.1f}%, "
          f"max {max(errors) * 100:.1f}%")
    reserved = [(r.case["id"], r.reserved_error) for r in kept if r.reserved_error is not None]
    if reserved:
        worst = max(reserved, key=lambda x: abs(x[1]))
        print(f"{len(reserved)} cases, max_reserved: median |error| "
              f"{statistics.median(abs(e) for _, e in reserved) * 100:.1f}%, largest {worst[1] * 100:+.1f}% ({worst[0]})")
    for name in ("hand count", "weights x3", "4x weights (Adam)"):
        errs = [abs(rules_of_thumb(r)[name] - r.measured) / r.measured for r in kept if rules_of_thumb(r)[name]]
        if errs:
            print(f"  {name:18} median |error| {statistics.median(errs) * 100:.0f}%, max {max(errs) * 100:.0f}%")
    times = sorted(r.seconds for r in rows)
    print(f"estimate time per case: median {statistics.median(times):.2f}s, max {times[-1]:.2f}s "
          "(the first case of a library pays for loading its source)")


@dataclass
class BatchRow:
    case: dict  # a line of h200-max-batch.jsonl
    predicted: int | None

    @property
    def error(self) -> float | None:
        real = self.case["max_batch"]
        return None if self.predicted is None else (self.predicted - real) / real


def max_batch_rows(only: str, settings_base: Settings) -> list[BatchRow]:
    """vramlint's largest batch for each emulated card: the estimates at the base case's batch
    and at twice it, the allocator capped at the card less the emulation's 800 MiB."""
    from vramlint.analysis.api import analyze_source
    from vramlint.memory.estimate import max_batch

    calibration = {c["id"]: c for c in map(json.loads, CALIBRATION.read_text().splitlines())}
    rows: list[BatchRow] = []
    for rec in map(json.loads, MAX_BATCH.read_text().splitlines()):
        if only and only not in rec["id"]:
            continue
        base = calibration[rec["base_case"]]
        ests = []
        for batch in (base["batch"], 2 * base["batch"]):
            settings = Settings(extra_paths=settings_base.extra_paths, memory=True, device="H200",
                                precision=base["precision"], optimizer=base["optimizer"])
            fa = analyze_source(f"{rec['id']}.py", case_source({**base, "batch": batch}), settings)
            model = next((m for m in fa.models if m.name == "model"), None)
            ests.append(model.memory if model is not None else None)
        est, doubled = ests
        predicted = None if est is None or doubled is None else \
            max_batch(est, doubled, rec["card_GiB"] * 2**30 - EMULATED_CONTEXT)
        rows.append(BatchRow(rec, predicted))
    return rows


def print_max_batch(rows: list[BatchRow]) -> None:
    if not rows:
        return
    print("\nlargest batch that trains on an emulated card: vramlint (--max-batch) vs measured")
    print(f"{'case':32} {'card':>5} {'vramlint':>8} {'trained':>7} {'failed':>6} {'error':>7}")
    for r in rows:
        err = f"{r.error * 100:+6.1f}%" if r.error is not None else "    n/a"
        print(f"{r.case['id']:32} {r.case['card_GiB']:>3}GiB {r.predicted if r.predicted is not None else 'n/a':>8} "
              f"{r.case['max_batch']:>7} {r.case['first_failing']:>6} {err}")
    over = [r for r in rows if r.predicted is not None and r.predicted > r.case["max_batch"]]
    print(f"{len(rows)} cases: {len(over)} over-promised (a batch that does not train said to fit)")


def _pct(value: float, measured: int) -> str:
    return f"{(value - measured) / measured * 100:+5.0f}%" if value else "   n/a"


def plot(rows: list[Row], out: Path) -> None:
    """Estimate vs measured, log-log, one dot per case; the rules of thumb in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gib = 2**30
    fig, ax = plt.subplots(figsize=(6, 6), dpi=110)
    done = [r for r in rows if r.estimate is not None and r.case["id"] not in EXCLUDED]
    measured = [r.measured / gib for r in done]
    for name, marker, color in (("hand count", "1", "0.75"), ("weights x3", "x", "0.6"),
                                ("4x weights (Adam)", "+", "0.4")):
        pts = [(m, rules_of_thumb(r)[name] / gib) for m, r in zip(measured, done) if rules_of_thumb(r)[name]]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, marker=marker, color=color, label=f'"{name}"')
    for mode, color in (("train", "tab:blue"), ("infer", "tab:orange")):
        for held, face in ((False, color), (True, "none")):
            pts = [(r.measured / gib, (r.estimate or 0) / gib) for r in done
                   if r.case["mode"] == mode and r.case["id"].startswith("ho_") == held]
            if pts:
                what = "training step" if mode == "train" else "inference"
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=24, facecolors=face, edgecolors=color,
                           label=f"vramlint, {what} ({'hold-out' if held else 'calibration'})")
    lo, hi = 0.0005, 40
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="k", alpha=0.07, label="±10%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured peak (GiB, torch.cuda.max_memory_allocated, H200)")
    ax.set_ylabel("estimated peak (GiB)")
    ax.set_title("Static estimate vs GPU measurement")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


if __name__ == "__main__":
    raise SystemExit(main())
