"""The acceptance corpora of issue 12: library models analysed from their own source, compared
with real torch's counts (tests/fixtures/truth/). Shared by the tests and
`benchmarks/library_coverage.py`, so that both classify a result the same way.

Each model is analysed as a user would write it: a file that imports the factory and calls it
(`from timm.models.resnet import resnet50; model = resnet50()`), the library's unpacked wheel on
the analysis path (`extra_paths`), nothing imported or executed.
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vramlint
from vramlint.settings import InputSpec

TRUTH_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "truth"
STATUSES = ("exact", "unknown", "wrong", "crash")
# Where the user's file is said to be (it is never written): a folder with no packages beside it.
USER_FILE = str(Path(tempfile.gettempdir()) / "vramlint-corpus" / "user_model.py")


@dataclass
class Outcome:
    name: str
    status: str  # exact | unknown | wrong | crash
    params: int | None = None
    truth: int | None = None
    why: str = ""  # an unknown's first reason with its file:line, a wrong count, a traceback
    output: tuple[Any, ...] | None = None
    forward_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def timm_truth(version: str) -> dict[str, Any]:
    return json.loads((TRUTH_DIR / f"timm-{version}.json").read_text())  # type: ignore[no-any-return]


def timm_representatives(models: dict[str, Any]) -> dict[str, str]:
    """One factory per timm model file: the one with the fewest parameters (its forward traces fastest)."""
    best: dict[str, str] = {}
    for name, t in sorted(models.items()):
        cur = best.get(t["module"])
        if cur is None or t["params"] < models[cur]["params"]:
            best[t["module"]] = name
    return best


def timm_source(name: str, module: str) -> str:
    return f"from timm.models.{module} import {name}\n\nmodel = {name}()\n"


def _where(u: Any) -> str:
    loc = getattr(u, "location", None)
    return f" ({Path(loc.path).name}:{loc.line})" if loc is not None else " (no location)"


def classify(name: str, result: vramlint.FileAnalysis, truth: dict[str, Any]) -> Outcome:
    """The outcome of the model bound to `model` in an analysed file, against torch's numbers."""
    found = [m for m in result.models if m.name == "model"]
    if not found:
        said = [*result.errors, *result.warnings, *result.unevaluated]
        why = "; ".join(u.reason + _where(u) for u in said[:2]) or "no model found, and nothing said why"
        return Outcome(name, "unknown", None, truth["params"], why)
    m = found[0]
    if m.error is not None and any("internal error" in u.reason for u in [m.error, *m.unknowns]):
        return Outcome(name, "crash", None, truth["params"], m.error.reason)
    if m.params.total is None:
        reasons = [*m.unknowns, *([m.error] if m.error is not None else [])]
        why = (reasons[0].reason + _where(reasons[0])) if reasons else "unknown, with no reason given"
        return Outcome(name, "unknown", None, truth["params"], why)
    out = Outcome(name, "exact", m.params.total, truth["params"])
    if m.params.total != truth["params"]:
        out.status, out.why = "wrong", f"{m.params.total:,} parameters, torch has {truth['params']:,}"
    elif m.params.buffers is not None and m.params.buffers != truth["buffers"]:
        out.status, out.why = "wrong", f"{m.params.buffers:,} buffer elements, torch has {truth['buffers']:,}"
    out.output = m.output_shape
    out.forward_problems = [u.reason + _where(u) for u in m.forward_unknowns]
    return out


def analyse_timm(name: str, truth: dict[str, Any], paths: tuple[str, ...], trace: bool = False) -> Outcome:
    """One timm factory, as `model = factory()` in a user's file (with a forward on its default
    input when `trace`)."""
    inputs = (InputSpec(tuple(truth["input_size"])),) if trace else ()
    return analyse_source(name, timm_source(name, truth["module"]), truth, paths, inputs, 1 if trace else None)


def torchvision_tasks_truth(version: str) -> dict[str, Any]:
    return json.loads((TRUTH_DIR / f"torchvision-{version}-tasks.json").read_text())  # type: ignore[no-any-return]


def torchvision_task_source(name: str, truth: dict[str, Any]) -> str:
    """`model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`: the arguments the
    truth was built with (pretrained backbones freeze layers, which changes the counts)."""
    args = ", ".join(f"{k}={v!r}" for k, v in truth.get("kwargs", {}).items())
    return f"from {truth['module']} import {name}\n\nmodel = {name}({args})\n"


def analyse_source(name: str, text: str, truth: dict[str, Any], paths: tuple[str, ...],
                   inputs: tuple[InputSpec, ...] = (), batch: int | None = None) -> Outcome:
    """The model bound to `model` in `text` (a user's file), its counts against `truth`; its
    forward traced on `inputs` (batch `batch`) when they are given."""
    settings = vramlint.Settings(extra_paths=paths, inputs=inputs, batch_size=batch)
    start = time.perf_counter()
    try:
        result = vramlint.analyze_source(USER_FILE, text, settings)
        out = classify(name, result, truth)
    except Exception:  # noqa: BLE001 - a crash is an outcome to count, not to stop the run
        out = Outcome(name, "crash", None, truth["params"], traceback.format_exc(limit=-3))
    out.seconds = time.perf_counter() - start
    return out


PUBLIC_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "public"


def public_cases() -> Iterator[tuple[str, str, dict[str, Any], tuple[str, ...]]]:
    """The model files of public training repositories (tests/fixtures/public/cases.json): each
    case's user file, its truth, and its own analysis path (the repository's folders and the
    unpacked wheels of what it imports besides torch)."""
    from tests.support.libsources import EINOPS_VERSION, TORCHVISION_VERSION, library_source

    needs = {"einops": EINOPS_VERSION, "torchvision": TORCHVISION_VERSION}
    truth = json.loads((TRUTH_DIR / "public.json").read_text())["models"]
    cases = json.loads((PUBLIC_DIR / "cases.json").read_text())["cases"]

    for c in cases:
        paths = tuple(str(PUBLIC_DIR / p) for p in c["paths"])
        paths += tuple(str(library_source(d, needs[d])) for d in c.get("needs", []))
        yield c["name"], c["source"], truth[c["name"]], paths


def diffusers_cases(version: str | None = None, truth_dir: Path = TRUTH_DIR,
                    transformers: str = "5.25.0") -> Iterator[tuple[str, str, dict[str, Any], tuple[str, ...]]]:
    """Every diffusers model class that builds from its default config (truth: make_diffusers_truth.py),
    as `from diffusers import UNet2DConditionModel; model = UNet2DConditionModel()`. A transformers
    release is on the path too, as in an environment where diffusers' text encoders import."""
    from tests.support.libsources import DIFFUSERS_VERSION, library_source

    version = version or DIFFUSERS_VERSION
    truth = json.loads((truth_dir / f"diffusers-{version}.json").read_text())["models"]
    paths = (str(library_source("diffusers", version)), str(library_source("transformers", transformers)))
    for name, t in truth.items():
        yield name, f"from diffusers import {name}\n\nmodel = {name}()\n", t, paths


# The cases of each corpus that were exact when last recorded: each must stay exact, so that a
# regression fails its own test (a corpus's 95% rate alone let a model go unknown unnoticed).
# `VRAMLINT_RECORD_EXACT=1 pytest tests/test_<corpus>.py` rewrites a corpus's list from a run of
# its whole module (the rate tests record it), after a change that makes more cases exact.
EXACT_BASELINE = Path(__file__).resolve().parents[1] / "fixtures" / "exact-baseline.json"


def exact_before(corpus: str) -> frozenset[str]:
    """The names of `corpus` recorded exact (EXACT_BASELINE); empty for a corpus never recorded."""
    if not EXACT_BASELINE.exists():
        return frozenset()
    return frozenset(json.loads(EXACT_BASELINE.read_text(encoding="utf-8")).get(corpus, ()))


def still_exact(corpus: str, out: Outcome) -> str | None:
    """What is wrong when a case recorded exact is no longer (None when it is, or was not recorded)."""
    if out.status == "exact" or out.name not in exact_before(corpus):
        return None
    return (f"{out.name} was exact ({EXACT_BASELINE.name}, corpus {corpus!r}) and is now {out.status}: {out.why}")


def record_exact(corpus: str, outcomes: list[Outcome]) -> None:
    """With VRAMLINT_RECORD_EXACT=1: `corpus`'s exact cases become its recorded list."""
    import os

    if os.environ.get("VRAMLINT_RECORD_EXACT") != "1":
        return
    data = json.loads(EXACT_BASELINE.read_text(encoding="utf-8")) if EXACT_BASELINE.exists() else {}
    data[corpus] = sorted(o.name for o in outcomes if o.status == "exact")
    EXACT_BASELINE.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n", encoding="utf-8")


def rates(outcomes: list[Outcome]) -> dict[str, int]:
    c = Counter(o.status for o in outcomes)
    return {s: c.get(s, 0) for s in STATUSES}


def rate_line(label: str, outcomes: list[Outcome]) -> str:
    r = rates(outcomes)
    n = len(outcomes) or 1
    return (f"{label}: {len(outcomes)} models, exact {r['exact']} ({100 * r['exact'] / n:.1f}%), "
            f"unknown {r['unknown']}, wrong {r['wrong']}, crash {r['crash']}")


# ------------------------------------------------- transformers: ~40 model types, every kind
def transformers_corpus_truth(version: str) -> dict[str, Any]:
    """tests/fixtures/truth/transformers-corpus-VERSION.json (make_transformers_truth.py)."""
    return json.loads((TRUTH_DIR / f"transformers-corpus-{version}.json").read_text())  # type: ignore[no-any-return]


def transformers_corpus_source(name: str, truth: dict[str, Any]) -> str:
    """`model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2))`: the class built from the small
    config the truth was measured with, both imported as a user would, from `transformers`."""
    args = ", ".join(f"{k}={v!r}" for k, v in truth["kwargs"].items())
    config = truth["config"]
    return f"from transformers import {name}, {config}\n\nmodel = {name}({config}({args}))\n"


def analyse_transformers(name: str, truth: dict[str, Any], paths: tuple[str, ...], trace: bool = False) -> Outcome:
    """One corpus model as a user's file; with a forward on the truth's inputs (given
    positionally, batch first) when `trace` and the truth has a forward."""
    forward = truth.get("forward") if trace else None
    inputs = tuple(InputSpec(tuple(i["shape"][1:]), i["dtype"]) for i in forward["inputs"]) if forward else ()
    batch = forward["inputs"][0]["shape"][0] if forward else None
    return analyse_source(name, transformers_corpus_source(name, truth), truth, paths, inputs, batch)
