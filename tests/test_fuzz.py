"""Fuzz: random mutations of real model files never crash or hang the analysis.

A few hundred mutated copies of the repository's own model files (tests/support/fuzz.py: deleted
tokens, exchanged identifiers, duplicated or deleted lines, changed numbers, truncated files),
drawn from a fixed seed, each analysed as `vramlint check` does (memory estimate on) and rendered
in every output format. Each must end in a FileAnalysis, render, give strict JSON and SARIF, and
finish well within a generous per-case limit.

The cases run in a worker process: a hang kills that worker (and fails the test with the case's
text) instead of blocking the run, and the next case gets a fresh worker.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import select
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import vramlint
from tests.support.fuzz import ROOT, Case, cases
from tests.support.layer_cases import SHAPES
from vramlint.analysis.api import get_loader, search_paths
from vramlint.engine.evaluator import Evaluator
from vramlint.engine.values import MISSING, Unknown
from vramlint.frontends.torch.tensors import TensorValue

SEED = 17
CASES = 400
CASE_LIMIT = 60.0  # seconds per case: far above the slowest (about 1 s), far below CI limits


@dataclass
class Outcome:
    case: Case
    status: str  # "ok", "crash" or "hang"
    detail: str = ""
    analysed: bool = False


class Worker:
    """A `python -m tests.support.fuzz` process answering one case at a time."""

    def __init__(self) -> None:
        self.stderr = tempfile.TemporaryFile()  # read back if the worker dies
        # `-m` from the repository root: `tests.support` imports as it does here.
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.fuzz"], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)

    def run(self, case: Case, limit: float) -> Outcome:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"path": case.path, "text": case.text}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            return Outcome(case, "hang", f"no answer within {limit:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            status = self.proc.wait()
            self.stderr.seek(0)
            tail = self.stderr.read().decode(errors="replace")[-3000:]
            return Outcome(case, "crash", f"the worker died (exit status {status}):\n{tail}")
        reply = json.loads(line)
        return Outcome(case, reply["status"], reply.get("detail", ""), reply.get("analysed", False))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def run_cases(all_cases: list[Case], limit: float) -> list[Outcome]:
    outcomes = []
    worker = Worker()
    try:
        for case in all_cases:
            outcome = worker.run(case, limit)
            outcomes.append(outcome)
            if outcome.status != "ok":  # a hung or dead worker: the next case gets a fresh one
                worker.close()
                worker = Worker()
    finally:
        worker.close()
    return outcomes


def describe(o: Outcome) -> str:
    """A failure, with the mutated text saved where the message says, to reproduce it."""
    fd, saved = tempfile.mkstemp(prefix=f"vramlint-fuzz-{o.case.index}-", suffix=".py")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(o.case.text)
    origin = os.path.relpath(o.case.path, ROOT)
    return f"case {o.case.index}: {o.status}: {origin} after {'; '.join(o.case.mutations)} (text in {saved})\n{o.detail}"


def test_mutated_model_files_never_crash_or_hang() -> None:
    all_cases = cases(SEED, CASES)
    start = time.monotonic()
    outcomes = run_cases(all_cases, CASE_LIMIT)
    elapsed = time.monotonic() - start
    failures = [o for o in outcomes if o.status != "ok"]
    assert not failures, f"{len(failures)} of {len(outcomes)} cases failed:\n\n" + "\n\n".join(map(describe, failures))
    # The mutations must stay plausible: most cases have to reach the evaluator, or the fuzz
    # would only exercise the syntax-error path.
    analysed = sum(o.analysed for o in outcomes)
    assert analysed >= len(outcomes) // 3, f"only {analysed} of {len(outcomes)} mutated files parsed"
    print(f"fuzz: {len(outcomes)} cases, {analysed} parsed and analysed, {elapsed:.1f} s")


def test_the_cases_are_drawn_from_a_fixed_seed() -> None:
    """The same seed gives the same cases (a failure can be reproduced), covering every kind."""
    first, again = cases(SEED, 60), cases(SEED, 60)
    assert [c.text for c in first] == [c.text for c in again]
    kinds = {m.split()[0] for c in cases(SEED, CASES) for m in c.mutations}
    assert kinds == {"delete-token", "swap-names", "replace-name", "duplicate-line", "delete-line",
                     "change-number", "truncate"}


# ---------------------------------------------------------------------- every forward rule, every rank

# Each layer is built and called as tests/support/layer_cases.py generates it from torch's
# signatures (sized for inputs whose dimensions are all 4, so that torch accepts many cases), with
# the case's tensor for every argument of its forward.
DTYPES = ("float32", "int64", "bool")


def _first_shape(v: Any) -> Any:
    """The shape of the first tensor in an output (RNNs and attention return tuples)."""
    while isinstance(v, (tuple, list)) and v:
        v = v[0]
    return v


def _torch_outcomes(torch: Any, ctor: str, arity: int) -> list[tuple[int, ...] | str]:
    """Per case, torch's output shape, or the name of the exception it raised."""
    torch.manual_seed(0)
    out: list[tuple[int, ...] | str] = []
    with warnings.catch_warnings():  # torch's advice (nested tensors, implicit dims) is not the point here
        warnings.simplefilter("ignore")
        layer = eval(ctor, {"nn": torch.nn, "torch": torch})
        for shape in SHAPES:
            for dtype in DTYPES:
                x = torch.zeros(shape, dtype=getattr(torch, dtype))
                try:
                    y = _first_shape(layer(*[x] * arity))
                    out.append(tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__)
                except Exception as err:
                    out.append(type(err).__name__)
    return out


def _evaluate(tmp_path: Path, name: str, lines: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Run `lines` as a module with vramlint's evaluator: its namespace, and the internal errors
    it met (`line N: reason`). An exception escaping here is a crash of vramlint."""
    path = tmp_path / f"{name}.py"
    met: list[str] = []
    original = Evaluator.internal_error

    def recorded(self: Evaluator, err: Exception, ref: Any) -> Any:
        u = original(self, err, ref)
        met.append(f"line {u.location.line if u.location else '?'}: {u.reason}")
        return u

    loader = get_loader(search_paths(vramlint.Settings()))
    Evaluator.internal_error = recorded  # type: ignore[method-assign]
    try:
        mod, _, _ = loader.load_main(str(path), "\n".join(lines) + "\n", f"rank_fuzz_{name}")
    finally:
        Evaluator.internal_error = original  # type: ignore[method-assign]
    return mod.ns, met


def _vramlint_outcomes(tmp_path: Path, name: str, ctor: str, arity: int) -> tuple[list[Any], list[str]]:
    """Per case, what vramlint gives for the same code (the value of `y<i>`, MISSING if the
    statement raised), and the internal errors it met."""
    lines = ["import torch", "import torch.nn as nn", f"layer = {ctor}"]
    i = 0
    for shape in SHAPES:
        for dtype in DTYPES:
            lines += [f"x{i} = torch.zeros({shape}, dtype=torch.{dtype})",
                      f"y{i} = layer({', '.join([f'x{i}'] * arity)})"]
            i += 1
    ns, met = _evaluate(tmp_path, f"torch_{name}", lines)
    return [ns.get(f"y{j}", MISSING) for j in range(i)], met


def _outcome_problem(name: str, given: str, want: Any, value: Any) -> str | None:
    """What is wrong with vramlint's `value` for a case where torch gave `want` (a shape, or the
    name of the exception it raised), if anything."""
    y = _first_shape(value)
    if isinstance(y, Unknown) and not y.reason.strip():
        return f"{name} on {given}: an Unknown without a reason"
    if not isinstance(want, tuple):
        return None  # torch raised: a located error, an Unknown or a shape (dtypes are not checked) will do
    shown = y.shape if isinstance(y, TensorValue) else y
    if not isinstance(shown, tuple) or tuple(shown) != want:
        return f"{name} on {given}: torch gives {list(want)}, vramlint {shown!r}"
    return None


def test_every_forward_rule_on_inputs_of_every_rank(tmp_path: Path) -> None:
    """Each catalog layer with a forward rule, on float32, int64 and bool inputs of rank 0 to 5:
    vramlint never fails inside (a wrong rank is a located shape mismatch, as torch raises), and
    where real torch succeeds, vramlint gives torch's output shape."""
    torch = pytest.importorskip("torch")
    from tests.support.layer_cases import NOT_CALLED, constructor, forward_params
    from vramlint.frontends.torch import catalog

    for family in pkgutil.iter_modules(catalog.__path__):  # each family registers its rules
        importlib.import_module(f"{catalog.__name__}.{family.name}")
    assert len(catalog.FORWARD) > 100
    problems = []
    compared = 0
    cases = [(shape, dtype) for shape in SHAPES for dtype in DTYPES]
    for name in sorted(set(catalog.FORWARD) - set(NOT_CALLED)):
        ctor, arity = constructor(torch, name), len(forward_params(torch, name))
        expected = _torch_outcomes(torch, ctor, arity)
        got, internal = _vramlint_outcomes(tmp_path, name, ctor, arity)
        problems += [f"{name}: internal error at {m}" for m in internal]
        for (shape, dtype), want, value in zip(cases, expected, got, strict=True):
            compared += isinstance(want, tuple)
            problem = _outcome_problem(name, f"{dtype}{list(shape)}", want, value)
            problems += [problem] if problem else []
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert compared > 1000  # torch accepts about a third of the cases: those are compared shape for shape


# The same for Keras layers (no ground truth here: Keras is not a test dependency): every layer
# with a call rule, on float32 and int32 inputs of rank 0 to 5, never fails inside vramlint.
KERAS_CONSTRUCTORS = {
    "MultiHeadAttention": "layers.MultiHeadAttention(2, 4)", "GroupQueryAttention": "layers.GroupQueryAttention(4, 2, 1)",
    **{f"{k}{n}D": f"layers.{k}{n}D(2, 3)" for n in (1, 2, 3) for k in ("Conv", "ConvLSTM")},
    **{f"Conv{n}DTranspose": f"layers.Conv{n}DTranspose(2, 3)" for n in (1, 2, 3)},
    "DepthwiseConv1D": "layers.DepthwiseConv1D(3)", "DepthwiseConv2D": "layers.DepthwiseConv2D(3)",
    "SeparableConv1D": "layers.SeparableConv1D(2, 3)", "SeparableConv2D": "layers.SeparableConv2D(2, 3)",
    "Dense": "layers.Dense(3)", "EinsumDense": "layers.EinsumDense('ab,bc->ac', 3)",
    "Embedding": "layers.Embedding(10, 3)", "Activation": "layers.Activation('relu')",
    **{k: f"layers.{k}(0.5)" for k in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                                        "AlphaDropout", "GaussianDropout", "GaussianNoise", "Rescaling",
                                        "RandomRotation", "RandomZoom", "RandomContrast", "RandomBrightness",
                                        "RandomHue", "RandomSaturation")},
    "RandomTranslation": "layers.RandomTranslation(0.1, 0.1)", "Reshape": "layers.Reshape((-1,))",
    "Permute": "layers.Permute((2, 1))", "RepeatVector": "layers.RepeatVector(2)", "Resizing": "layers.Resizing(2, 2)",
    "RandomCrop": "layers.RandomCrop(2, 2)", "CenterCrop": "layers.CenterCrop(2, 2)",
    "Lambda": "layers.Lambda(lambda t: t)", "Dot": "layers.Dot(1)", "SimpleRNN": "layers.SimpleRNN(3)",
    "LSTM": "layers.LSTM(3)", "GRU": "layers.GRU(3)", "Bidirectional": "layers.Bidirectional(layers.LSTM(3))",
    "TimeDistributed": "layers.TimeDistributed(layers.Dense(3))",
}
# How a layer takes its inputs: a list of two (merging layers), two arguments, or one.
KERAS_LISTS = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "Attention",
               "AdditiveAttention"}
KERAS_PAIRS = {"MultiHeadAttention", "GroupQueryAttention"}


def test_every_keras_call_rule_on_inputs_of_every_rank(tmp_path: Path) -> None:
    from vramlint.frontends.keras import catalog

    for family in pkgutil.iter_modules(catalog.__path__):
        importlib.import_module(f"{catalog.__name__}.{family.name}")
    specs = sorted(name for name, spec in catalog.CATALOG.items() if spec.call is not None)
    assert len(specs) > 80
    problems = []
    for name in specs:
        ctor = KERAS_CONSTRUCTORS.get(name, f"layers.{name}()")
        lines = ["import keras", "from keras import layers"]
        for i, (shape, dtype) in enumerate((s, d) for s in SHAPES for d in ("float32", "int32")):
            x = f"x{i}"
            args = f"[{x}, {x}]" if name in KERAS_LISTS else f"{x}, {x}" if name in KERAS_PAIRS else x
            # a new layer per case: a Keras layer is built for the first input it sees
            lines += [f"{x} = keras.ops.zeros({shape}, dtype='{dtype}')", f"y{i} = {ctor}({args})"]
        _, internal = _evaluate(tmp_path, f"keras_{name}", lines)
        problems += [f"{name}: internal error at {m}" for m in internal]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


# And every Tensor method and torch.nn.functional function vramlint models, called the ways a
# token deleted or a number changed leaves a call: no argument, a dim, 0, a tensor, a tuple.
CALL_ARGS = ("", "1", "-1", "0", "5", "x", "(1, 2)", "2, 3")


def test_every_tensor_method_and_functional_on_odd_arguments(tmp_path: Path) -> None:
    from vramlint.frontends.torch.functional import FUNCTIONS
    from vramlint.frontends.torch.tensors import TENSOR_METHODS

    calls = [f"x.{name}({{}})" for name in sorted(TENSOR_METHODS)] + [f"F.{name}(x{{}})" for name in sorted(FUNCTIONS)]
    assert len(calls) > 150
    problems = []
    for call in calls:
        lines = ["import torch", "import torch.nn.functional as F"]
        for shape in SHAPES[:4]:
            for dtype in DTYPES:
                for args in CALL_ARGS:
                    lines += [f"x = torch.zeros({shape}, dtype=torch.{dtype})",
                              f"y = {call.format((', ' if call.startswith('F.') and args else '') + args)}"]
        _, internal = _evaluate(tmp_path, call.split("(")[0].replace(".", "_"), lines)
        problems += [f"{call.format('...')}: internal error at {m}" for m in internal]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
