"""ZeRO's per-rank model states (memory/zero.py) against DeepSpeed's own estimators.

The truth is tests/data/distributed/deepspeed_estimates.json (tools/deepspeed_estimates.py):
DeepSpeed 0.19's `estimate_zero2_model_states_mem_needs` / `estimate_zero3_model_states_mem_needs`
for every stage 2/3 x offload combination they cover, 1/4/8 GPUs per node, 1/2 nodes, over the
parameter counts DeepSpeed's `model_to_params` gives for three models built with real torch.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from vramlint.memory.distributed import ParallelPlan
from vramlint.memory.zero import ZeroStates, zero_states

DATA = pathlib.Path(__file__).parent / "data" / "distributed" / "deepspeed_estimates.json"
TRUTH = json.loads(DATA.read_text())
CASES = [(name, row) for name, model in TRUTH["models"].items() for row in model["estimates"]]
FACTOR = TRUTH["additional_buffer_factor"]


def _plan(row: dict[str, Any], **over: Any) -> ParallelPlan:
    world = row["nodes"] * row["gpus_per_node"]
    fields: dict[str, Any] = dict(
        strategy="deepspeed", world_size=world, nodes=row["nodes"], shard_size=world, stage=row["stage"],
        offload_optimizer=row["offload_optimizer"], offload_params=row["offload_param"],
        low_precision="float16", zero_init=bool(row["zero_init"]))
    fields.update(over)
    return ParallelPlan(**fields)


def _states(name: str, row: dict[str, Any], optimizer: str = "adam", **over: Any) -> ZeroStates:
    model = TRUTH["models"][name]
    # The model as its code builds it: fp32 parameters, all trainable.
    params = [(n, 4 * n, True) for n in model["param_numels"]]
    return zero_states(_plan(row, **over), params, model["largest_layer_params"], optimizer)


def _case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, r = case
    return (f"{name}-z{r['stage']}-{r['nodes']}x{r['gpus_per_node']}-opt{r['offload_optimizer']}"
            f"-par{r['offload_param']}-init{r['zero_init']}")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_model_states_match_deepspeeds_estimator(case: tuple[str, dict[str, Any]]) -> None:
    name, row = case
    states = _states(name, row)
    assert states.model_states == pytest.approx(row["gpu_bytes"], rel=0.02)


def _estimator_host_term_is_per_node(row: dict[str, Any]) -> bool:
    """DeepSpeed's ZeRO-2 estimator with cpu offload sizes the host of one node as
    `total_params * max(4 * total_gpus, 16)`: every GPU of the job loading the model on that node,
    and the whole job's 16 bytes of offloaded state on it. Per node that is right only for one
    node; with two the offloaded state splits across the nodes (stage_1_and_2.py partitions it over
    all ranks) and each node's processes load one copy each. Its ZeRO-3 estimator divides by the
    nodes (`gpus_factor = 1 / num_nodes`)."""
    return not (row["stage"] == 2 and row["offload_optimizer"] and row["nodes"] > 1)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_host_per_node_matches_deepspeeds_estimator(case: tuple[str, dict[str, Any]]) -> None:
    name, row = case
    states = _states(name, row)
    # Built whole in each process, the host holds the model before initialize and the offloaded
    # state after: the larger counts. Under zero.Init the estimator counts the largest layer only
    # where nothing is offloaded (the offloaded state is then far larger).
    at_load = states.host_at_load if not row["zero_init"] or not states.host else 0
    per_node = row["gpus_per_node"] * max(states.host, at_load)
    if _estimator_host_term_is_per_node(row):
        # The estimator multiplies its figure by additional_buffer_factor (1.5) "as estimation factor".
        assert per_node * FACTOR == pytest.approx(row["cpu_bytes_per_node"], rel=0.02)
    else:
        total = TRUTH["models"][name]["total_params"]
        assert row["cpu_bytes_per_node"] == int(total * max(4 * row["nodes"] * row["gpus_per_node"], 16) * FACTOR)
        assert per_node == pytest.approx(total * max(4 * row["gpus_per_node"], 16 / row["nodes"]), rel=0.02)


def _row(stage: int, gpus: int = 8, optimizer: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"stage": stage, "nodes": 1, "gpus_per_node": gpus, "offload_optimizer": optimizer,
            "offload_param": param, "zero_init": True}


def test_stage3_holds_the_gradient_buffer_the_estimator_leaves_out() -> None:
    # stage3.py allocates grad_partitions_flat_buffer (16-bit, 1/N of the model) on every rank:
    # 2 bytes per parameter beyond the estimator's 18 / N.
    total = TRUTH["models"]["gpt2"]["total_params"]
    states = _states("gpt2", _row(3), param_persistence_threshold=0)
    assert states.unestimated_gpu == pytest.approx(2 * total / 8, rel=0.02)
    offloaded = _states("gpt2", _row(3, optimizer="cpu"), param_persistence_threshold=0)
    assert offloaded.unestimated_gpu == 0
    assert offloaded.unestimated_host == pytest.approx(2 * total / 8, rel=0.02)


def test_stage3_keeps_small_parameters_whole() -> None:
    # Every tensor of the MLP is at most 100,000 elements (the first weight, 1000 x 100, is the
    # threshold itself: `ds_numel <= param_persistence_threshold` persists): it all stays gathered,
    # beside the 16-bit gradient partition buffer.
    numels = TRUTH["models"]["mlp"]["param_numels"]
    assert max(numels) == 100_000
    states = _states("mlp", _row(3))
    assert states.unestimated_gpu == pytest.approx(2 * sum(numels) + 2 * sum(numels) / 8, rel=0.02)
    small = _states("mlp", _row(3), param_persistence_threshold=0)
    assert small.unestimated_gpu == pytest.approx(2 * sum(numels) / 8, rel=0.02)


def test_reduce_buckets_are_allocated_whole_and_doubled_with_overlap_comm() -> None:
    # stage_1_and_2.py setup_buckets: torch.empty(reduce_bucket_size) in the gradients' dtype, a
    # second one with overlap_comm; whatever the model's size (the MLP has 131,410 parameters).
    plain = _states("mlp", _row(2), reduce_bucket_size=5_000_000)
    overlapped = _states("mlp", _row(2), reduce_bucket_size=5_000_000, overlap_comm=True)
    assert plain.communication == 2 * 5_000_000
    assert overlapped.communication == 2 * 2 * 5_000_000
    assert _states("mlp", _row(2), contiguous_gradients=False).communication == 0


def test_stage1_keeps_whole_gradients_and_stage0_partitions_nothing() -> None:
    total = TRUTH["models"]["gpt2"]["total_params"]
    one, two = _states("gpt2", _row(1)), _states("gpt2", _row(2))
    assert one.gradients - two.gradients == pytest.approx(2 * total * (1 - 1 / 8), rel=0.02)
    assert one.optimizer_state == two.optimizer_state
    zero = _states("gpt2", _row(0))
    assert zero.model_states == pytest.approx(20 * total, rel=0.02)  # 2 + 2 + 4 + 4 + 8 bytes, no partition


def test_optimizer_state_follows_the_optimizer() -> None:
    total = TRUTH["models"]["gpt2"]["total_params"]
    adam, sgd = _states("gpt2", _row(2)), _states("gpt2", _row(2), optimizer="sgd")
    assert adam.optimizer_state - sgd.optimizer_state == pytest.approx(8 * total / 8, rel=0.02)


def test_fp32_training_keeps_fp32_weights() -> None:
    total = TRUTH["models"]["gpt2"]["total_params"]
    states = _states("gpt2", _row(2), low_precision=None)
    assert states.weights == 4 * total
    # the fp32 gradient partition: 4 / N, and the same again for the step's fp32 copy
    assert states.gradients == pytest.approx(8 * total / 8, rel=0.02)


def test_nvme_offload_moves_the_state_off_the_host() -> None:
    states = _states("gpt2", _row(3, optimizer="nvme", param="nvme"))
    cpu = _states("gpt2", _row(3, optimizer="cpu", param="cpu"))
    assert states.nvme == cpu.host and states.host == 0
    assert states.model_states == cpu.model_states
    assert states.unestimated_host > cpu.unestimated_host  # the pinned swap buffers


def test_terms_sum_to_the_figures() -> None:
    states = _states("llama-tiny", _row(3, optimizer="cpu"), overlap_comm=True)
    gpu = sum(b for what, b, _ in states.terms if what.startswith("gpu:"))
    host = sum(b for what, b, _ in states.terms if what.startswith("host:"))
    assert gpu == states.gpu and host == states.host_total
    assert all(source for _, _, source in states.terms)
