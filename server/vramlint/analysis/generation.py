"""Generation in the analysed file: the frontends read the call (`Frontend.generation`), this
module turns it into the setup (`mode = infer`, the `context`), the inputs of the forward over the
prompt (the trace), and the KV cache and generation peak of the estimate (memory/generation.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vramlint.analysis.models import Trace
from vramlint.analysis.running import module_level, run_budgeted
from vramlint.engine.loader import Loader
from vramlint.engine.values import Instance
from vramlint.frontends.registry import generation_plan
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.memory.estimate import MemoryEstimate
from vramlint.memory.generation import GenerationMemory, GenerationPlan, generation_memory
from vramlint.settings import Setup, Sourced

# The cache's element size by precision: the key/value projections' output dtype.
ELEMENT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "amp-bf16": 2, "amp-fp16": 2}


def find_generation(loader: Loader, trace: Trace, name: str, model: Instance) -> GenerationPlan | None:
    """The file's generation call with this model, as a frontend reads it (None: none)."""
    source, mod = trace.source, trace.mod
    if source is None or mod is None:
        return None
    ev = loader.evaluator
    evaluate = module_level(loader, source, mod)
    try:
        plan, _, _ = run_budgeted(loader, lambda: generation_plan(ev, model, name, source, evaluate))
    except Exception:  # noqa: BLE001 - a bug reading the call costs the generation estimate, not the file's analysis
        return None
    return plan if isinstance(plan, GenerationPlan) else None


def generation_setup(plan: GenerationPlan | None, trains: bool) -> dict[str, Sourced]:
    """What the call tells the setup (below the configuration and the flags): an inference
    workload, unless the file also trains the model (an optimizer on its parameters: a training
    script that samples at the end must still fit its training step), and the context when the
    call shows the prompt and the tokens."""
    if plan is None:
        return {}
    out = {} if trains else {"mode": Sourced("infer", plan.where)}
    if plan.context is not None:
        out["context"] = Sourced(plan.context, plan.where)
    return out


def prefill_inputs(plan: GenerationPlan, setup: Setup) -> tuple[tuple[Any, ...], dict[str, Any], str] | str:
    """The forward over the prompt that generate runs first: input ids of (prompts x beams, prompt
    tokens), with generate's own keywords; a sentence when the prompt length is not known. Without
    a cache (`use_cache=False`) each step runs over every token so far: the last, over context - 1."""
    prompt = _prompt(plan, setup)
    if plan.cache == "none" and prompt is not None:
        prompt = max((setup["context"] or prompt + (plan.new_tokens or 0)) - 1, prompt)
    if prompt is None:
        return ("the prompt's length is not shown by the code: give the context (prompt + generated tokens) "
                "with --context N or `context` in the configuration")
    batch = plan.batch or setup["batch_size"] or 1
    origin = plan.where if plan.prompt is not None else f"{plan.where}, prompt from the context ({setup.source('context')})"
    return (TensorValue((batch * plan.expand, prompt), "int64"),), dict(plan.prefill_kwargs), origin


def _prompt(plan: GenerationPlan, setup: Setup) -> int | None:
    if plan.prompt is not None:
        return plan.prompt
    context = setup["context"]
    if context is None:
        return None
    new = plan.new_tokens
    return context - new if new is not None and new < context else context


def attach_generation(est: MemoryEstimate, plan: GenerationPlan, setup: Setup) -> None:
    """The KV cache at the last step and the generation peak, on the estimate."""
    context = setup["context"]
    if context is None:
        prompt = _prompt(plan, setup)
        context = prompt + (plan.new_tokens or 0) if prompt is not None else None
    if context is None:
        est.notes.append(f"{plan.where}: no KV cache counted: give the context (--context N)")
        return
    element = ELEMENT_BYTES.get(est.precision, 4)
    # The traced prefill kept the prompt's own dynamic cache in its output: counted once, at full length.
    prompt = _prompt(plan, setup)
    prompt_cache = generation_memory(replace(plan, cache="dynamic"), est.batch_size, prompt + 1, element, 0).kv_cache \
        if prompt is not None and plan.cache != "none" else 0
    gen: GenerationMemory = generation_memory(plan, est.batch_size, context, element,
                                              max(est.inference_peak - prompt_cache, 0))
    est.generation = gen
