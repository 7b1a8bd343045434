"""Write tests/data/distributed/deepspeed_estimates.json: DeepSpeed's own estimates of the model
states (parameters, gradients, optimizer state) per GPU and per node, for a few models vramlint
analyses in its tests, the truth of tests/test_deepspeed.py.

DeepSpeed's estimators are pure Python over two numbers (the parameter count and, for ZeRO-3, the
largest layer's): `estimate_zero2_model_states_mem_needs` (deepspeed/runtime/zero/stage_1_and_2.py)
and `estimate_zero3_model_states_mem_needs` (deepspeed/runtime/zero/stage3.py), the functions the
`..._all_cold` / `..._all_live` printers call for each option. The counts are DeepSpeed's own too
(`stage3.model_to_params`: shared parameters once, the largest layer a module's own parameters) over
the models built with real torch.

Run it in a virtual environment with torch (CPU), deepspeed and transformers (no GPU needed):

    python3 -m venv /tmp/venv-ds && /tmp/venv-ds/bin/pip install torch==2.13.0
    DS_BUILD_OPS=0 /tmp/venv-ds/bin/pip install --no-build-isolation deepspeed transformers==5.17.0
    /tmp/venv-ds/bin/python tools/deepspeed_estimates.py
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "distributed" / "deepspeed_estimates.json"
GPUS_PER_NODE = (1, 4, 8)
NODES = (1, 2)
BUFFER_FACTOR = 1.5  # the estimators' default `additional_buffer_factor`


def _load(path: pathlib.Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def models() -> dict[str, tuple[Any, str]]:
    """The models, built with real torch, and how a test builds the same one under vramlint."""
    import torch  # noqa: F401  (the examples import it)
    from transformers import LlamaConfig, LlamaForCausalLM

    gpt = _load(ROOT / "examples" / "gpt.py", "vl_gpt")
    mlp = _load(ROOT / "examples" / "mlp.py", "vl_mlp")
    config = json.loads((ROOT / "tests" / "fixtures" / "hub" / "llama" / "config.json").read_text())
    llama = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k != "architectures"}))
    return {
        "gpt2": (gpt.GPT(gpt.GPTConfig()), "examples/gpt.py: GPT(GPTConfig()), GPT-2 124M, tied lm_head"),
        "mlp": (mlp.model, "examples/mlp.py: model, 1000-100-100-100-100-10"),
        "llama-tiny": (llama, "tests/fixtures/hub/llama/config.json: LlamaForCausalLM"),
    }


def zero2_rows(total: int) -> list[dict[str, Any]]:
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    rows = []
    for nodes in NODES:
        for gpus in GPUS_PER_NODE:
            for offload in (False, True):
                cpu, gpu = estimate_zero2_model_states_mem_needs(total, gpus, nodes, cpu_offload=offload,
                                                                 additional_buffer_factor=BUFFER_FACTOR)
                rows.append({"stage": 2, "nodes": nodes, "gpus_per_node": gpus,
                             "offload_optimizer": "cpu" if offload else None, "offload_param": None,
                             "zero_init": None, "gpu_bytes": gpu, "cpu_bytes_per_node": cpu})
    return rows


def zero3_rows(total: int, largest: int) -> list[dict[str, Any]]:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    rows = []
    # The combinations `estimate_zero3_model_states_mem_needs_all_cold` prints: parameters offloaded
    # only together with the optimizer.
    offloads = ((False, False), (True, False), (True, True))
    for nodes in NODES:
        for gpus in GPUS_PER_NODE:
            for optimizer, params in offloads:
                for zero_init in (True, False):
                    cpu, gpu, largest_mem = estimate_zero3_model_states_mem_needs(
                        total, largest, gpus, nodes, cpu_offload=optimizer, cpu_offload_params=params,
                        zero_init=zero_init, additional_buffer_factor=BUFFER_FACTOR)
                    rows.append({"stage": 3, "nodes": nodes, "gpus_per_node": gpus,
                                 "offload_optimizer": "cpu" if optimizer else None,
                                 "offload_param": "cpu" if params else None, "zero_init": zero_init,
                                 "gpu_bytes": gpu, "cpu_bytes_per_node": cpu, "largest_layer_bytes": largest_mem})
    return rows


def main() -> int:
    import deepspeed
    import torch
    from deepspeed.runtime.zero.stage3 import model_to_params

    out: dict[str, Any] = {
        "deepspeed": deepspeed.__version__, "torch": torch.__version__,
        "functions": ["deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs",
                      "deepspeed/runtime/zero/stage3.py estimate_zero3_model_states_mem_needs",
                      "deepspeed/runtime/zero/stage3.py model_to_params"],
        "additional_buffer_factor": BUFFER_FACTOR, "models": {},
    }
    for name, (model, what) in models().items():
        total, largest = model_to_params(model)
        # Each parameter tensor once (tied weights share a storage), as ZeRO-3 partitions them one by one.
        numels = list({p.data_ptr(): p.numel() for p in model.parameters()}.values())
        assert sum(numels) == total
        out["models"][name] = {"model": what, "total_params": int(total), "largest_layer_params": int(largest),
                               "param_numels": numels,
                               "estimates": zero2_rows(total) + zero3_rows(total, largest)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: deepspeed {deepspeed.__version__}, "
          + ", ".join(f"{k} {v['total_params']:,}" for k, v in out["models"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
