"""Per-GPU memory under DDP, FSDP2, FSDP1 and tensor parallelism against real torch.distributed runs.

The truth (tests/data/distributed/truth.json, README.md there) is what each rank of a real run held:
the case scripts of tests/data/distributed/ run by tools/distributed_truth.py under 2 and 4 local
processes (gloo, CPU, torch 2.13), their storages counted by a TorchDispatchMode in the 3rd
training iteration. Here vramlint analyses the same scripts with WORLD_SIZE in the environment (as
torchrun sets it) and its rank-0 figures are compared: the model states within 2%, the
communication buffers' largest total within 10% (the issue's bar).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vramlint.analysis.api import analyze_file
from vramlint.memory.estimate import MemoryEstimate
from vramlint.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "distributed"
TRUTH: dict[str, Any] = json.loads((DATA / "truth.json").read_text())
CASES = [(case, int(world)) for case, c in TRUTH["cases"].items() for world in c["world_sizes"]]
IDS = [f"{case}-x{world}" for case, world in CASES]


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("distributed_truth", ROOT / "tools" / "distributed_truth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _rank0(case: str, world: int) -> dict[str, Any]:
    run = TRUTH["cases"][case]["world_sizes"][str(world)]
    assert "ranks" in run, f"{case} at world size {world} did not run: {run.get('error')}"
    rank0: dict[str, Any] = run["ranks"][0]
    return rank0


@functools.cache
def _estimate(case: str, world: int) -> MemoryEstimate:
    """vramlint's estimate of the script's model, launched as torchrun would with `world` ranks."""
    path = DATA / TRUTH["cases"][case]["script"]
    fa = analyze_file(str(path), Settings(memory=True, environment=(("WORLD_SIZE", str(world)),)))
    found = {m.name: m for m in fa.models}
    assert "main.model" in found, f"{path.name}: the model trained in main() is not found: {sorted(found)}"
    m = found["main.model"]
    assert m.memory is not None, (m.memory_unknowns, m.forward_unknowns)
    return m.memory


def _per_gpu(est: MemoryEstimate, case: str) -> Any:
    assert est.distributed is not None, f"{case}: no per-GPU figures (MemoryEstimate.distributed is None)"
    return est.distributed


def _within(est: int, truth: int, rel: float) -> bool:
    return abs(est - truth) <= rel * truth


@pytest.mark.parametrize(("case", "world"), CASES, ids=IDS)
def test_world_size_is_read(case: str, world: int) -> None:
    dist = _per_gpu(_estimate(case, world), case)
    assert dist.plan.world_size == world


@pytest.mark.parametrize(("case", "world"), CASES, ids=IDS)
def test_model_states_per_gpu(case: str, world: int) -> None:
    """Parameters + gradients + optimizer state of rank 0, the storages the run allocated
    (FSDP's padded shards; AdamW's `step` scalars, on the host under CUDA, left out)."""
    ms = _rank0(case, world)["model_states"]
    truth = ms["parameters_storage"] + ms["gradients_storage"] + ms["optimizer_state_storage"]
    est = _estimate(case, world)
    _per_gpu(est, case)
    got = est.weights + est.gradients + est.optimizer_state
    assert _within(got, truth, 0.02), (
        f"{case} x{world}: estimated {got} B (weights {est.weights}, gradients {est.gradients}, "
        f"optimizer {est.optimizer_state}), measured {truth} B ({ms['parameters_storage']} + "
        f"{ms['gradients_storage']} + {ms['optimizer_state_storage']})")


@pytest.mark.parametrize(("case", "world"), CASES, ids=IDS)
def test_communication_buffers_per_gpu(case: str, world: int) -> None:
    """The largest total of communication buffers live at once on rank 0 (DDP's buckets, FSDP's
    all-gather outputs and reduce-scatter inputs, TP's all-reduce outputs)."""
    rank0 = _rank0(case, world)
    truth = rank0["communication_max"]
    if case.startswith("tp"):
        # A rowwise layer's all-reduce makes a new tensor of its partial output: the partial one
        # (the collective's input) is the buffer; the output is the activation the next op reads,
        # counted with the activations (vramlint's communication is what exists only for the
        # collectives, as FSDP's all-gather and reduce-scatter buffers and DDP's buckets are).
        truth = sum(v for tag, v in rank0["communication_max_by_tag"].items() if tag.endswith(":in"))
    dist = _per_gpu(_estimate(case, world), case)
    assert _within(dist.communication_peak, truth, 0.10), (
        f"{case} x{world}: estimated {dist.communication_peak} B, measured {truth} B "
        f"({rank0['communication_max_by_tag']})")


def test_every_case_script_has_its_truth() -> None:
    tool = _tool()
    scripts = {p.name for p in DATA.glob("*.py")} - {"model.py"}
    assert scripts == {script for script, _ in tool.CASES.values()}
    assert set(TRUTH["cases"]) == set(tool.CASES)
    assert all(set(c["world_sizes"]) == {"2", "4"} for c in TRUTH["cases"].values())


def test_the_truth_regenerates() -> None:
    """The tool, run now on DDP and FSDP2 at world size 2, gives the stored figures again."""
    import torch

    if torch.__version__ != TRUTH["torch"]:
        pytest.skip(f"truth.json was measured with torch {TRUTH['torch']}, this is {torch.__version__}")
    tool = _tool()
    start = time.monotonic()
    for case in ("ddp", "fsdp2"):
        run = tool.run_case(case, 2)
        assert "ranks" in run, run.get("traceback", run.get("error"))
        stored = TRUTH["cases"][case]["world_sizes"]["2"]["ranks"]
        for rank, (now, then) in enumerate(zip(run["ranks"], stored)):
            assert now == then, (case, rank)
    assert time.monotonic() - start < 180, "the live runs take more than 3 minutes"


def test_a_failing_script_is_reported_at_its_line(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("import torch.distributed as dist\n\ndist.init_process_group('gloo')\n"
                      "raise ValueError('no data')\n")
    run = _tool().run_script(script, 2, timeout=120)
    assert run["error"] == "broken.py:4: ValueError: no data", run
    assert "ranks" not in run


def test_a_rank_that_hangs_is_ended(tmp_path: Path) -> None:
    """Rank 1 never reaches the barrier rank 0 waits in: the run ends at its timeout, every rank
    with it, instead of waiting for gloo's own 30 minutes."""
    import multiprocessing

    script = tmp_path / "hang.py"
    script.write_text("import os, time\nimport torch.distributed as dist\n\n"
                      "dist.init_process_group('gloo')\n"
                      "if os.environ['RANK'] == '0':\n    dist.barrier()\nelse:\n    time.sleep(600)\n")
    start = time.monotonic()
    run = _tool().run_script(script, 2, timeout=8)
    assert run["error"].startswith("TimeoutError: hang.py at world size 2: no result within 8 s"), run
    assert time.monotonic() - start < 60
    assert multiprocessing.active_children() == []


# FSDP1 NO_SHARD: the flat gradients (one per unit, there from the unit's first gradient) are
# modelled; the run still holds 3.2 MB more at its peak, not identified (10% under).
PEAK_GAPS = {"fsdp1_no_shard": "FSDP1 NO_SHARD: 10% under the run at the peak, 3.2 MB not identified"}


@pytest.mark.parametrize(("case", "world"), [
    pytest.param(c, w, marks=pytest.mark.xfail(strict=True, reason=PEAK_GAPS[c])) if c in PEAK_GAPS else (c, w)
    for c, w in CASES], ids=IDS)
def test_peak_per_gpu_follows_the_run(case: str, world: int) -> None:
    """The per-GPU timeline (the collectives' buffers around each op, gathered units, sharded
    gradients) against the moment the real run held the most, within 5%. The CPU run has no
    cuBLAS workspaces and no caching allocator (sizes are the tensors' own); its AdamW keeps the
    state measured apart, so both sides are compared without the optimizer: vramlint analyses
    the script with SGD (no state, no step temporaries), and the run's optimizer state is taken
    off its peak."""
    peak = _rank0(case, world)["peak"]
    truth = peak["total"] - peak["optimizer_state"]
    path = DATA / TRUTH["cases"][case]["script"]
    fa = analyze_file(str(path), Settings(memory=True, optimizer="sgd", environment=(("WORLD_SIZE", str(world)),)))
    est = next(m.memory for m in fa.models if m.name == "main.model" and m.memory is not None)
    got = est.train_peak - est.workspace
    assert _within(got, truth, 0.05), f"{case} x{world}: estimated {got} B ({est.train_peak_phase}), measured {truth} B"
