"""Generation's memory: the key/value cache an autoregressive decoder fills token by token, and
what its last step adds (the concatenation that grows the cache, the last token's logits).

A frontend reads the layout of the cache off the model it built (layers, heads, head sizes,
windows: `GenerationPlan`); this module only does the arithmetic, the same for every framework.
Formulas and sources: docs/llm.md, "Generation".
"""

from __future__ import annotations

from dataclasses import dataclass

from vramlint.memory.timeline import rounded


@dataclass(frozen=True)
class CacheLayer:
    """One layer of the cache, per sequence and per token: the elements of its keys and of its values."""

    key_elements: int
    value_elements: int
    # A sliding-window layer keeps at most this many tokens (None: every token).
    window: int | None = None


@dataclass(frozen=True)
class GenerationPlan:
    """A generation call as the frontend read it, and the cache layout of the model it runs."""

    where: str  # "code: model.generate(...) at line 12"
    line: int
    batch: int | None  # prompts (the input's first dimension), None: not shown by the code
    prompt: int | None  # prompt tokens, None: not shown by the code
    new_tokens: int | None  # max_new_tokens
    max_length: int | None  # max_length (prompt included), when given instead
    expand: int  # each prompt runs as this many sequences: max(num_beams, num_return_sequences)
    cache: str  # "dynamic" (grows by concatenation), "static" (allocated up front), "none" (use_cache=False)
    layers: tuple[CacheLayer, ...]
    vocab: int | None  # the logits' last dimension
    notes: tuple[str, ...] = ()
    # Keywords of the forward over the prompt that generate passes (`logits_to_keep=1`).
    prefill_kwargs: tuple[tuple[str, object], ...] = ()

    @property
    def context(self) -> int | None:
        """Prompt plus generated tokens, when the call shows both (or max_length)."""
        if self.prompt is not None and self.new_tokens is not None:
            return self.prompt + self.new_tokens
        return self.max_length


@dataclass(frozen=True)
class GenerationMemory:
    """The cache at the last step and the transients around it, in bytes, for `sequences` sequences."""

    where: str  # the generation call
    cache: str  # GenerationPlan.cache
    sequences: int  # batch x expand
    context: int  # prompt + generated tokens
    cached_tokens: int  # what a full layer holds at the last step: context - 1
    kv_cache: int
    concat_transient: int  # the largest layer's old keys (or values), alive while torch.cat copies them
    logits: int  # the last step's logits: the model's dtype, and generate's float32 copy
    # The forward over the prompt (its inference peak, weights included, less the prompt's cache) plus
    # the cache at the last step, the concatenation's transient and the last logits: an upper bound,
    # as if the prefill's activations were still alive at the last step.
    peak: int
    notes: tuple[str, ...] = ()


def generation_memory(plan: GenerationPlan, sequences: int, context: int, element_bytes: int,
                      prefill_peak: int) -> GenerationMemory:
    """The cache after the last forward of a generation of `context` tokens in all.

    The last generated token is never fed back: the last forward sees `context - 1` tokens, and
    that is what a full layer holds. A dynamic cache grows by `torch.cat([old, new])`, so a
    sliding-window layer holds the storage of its last concatenation: `window` tokens (its keys
    are a view of the last `window - 1`); a static cache allocates `context - 1` tokens per layer
    up front (`min(window, context - 1)` for a sliding layer) and writes in place.
    """
    cached = max(context - 1, 0)
    per_layer: list[tuple[int, int]] = []  # (bytes of keys, bytes of values) held
    before: list[int] = []  # the larger of keys/values before the last concatenation
    for layer in plan.layers:
        tokens = cached if layer.window is None else min(cached, layer.window)
        per_layer.append((layer.key_elements * tokens, layer.value_elements * tokens))
        old = max(tokens - 1, 0) if layer.window is None or cached <= layer.window else tokens
        before.append(max(layer.key_elements, layer.value_elements) * old)
    if plan.cache == "none":
        kv = transient = 0
    else:
        kv = sum(rounded(sequences * k * element_bytes) + rounded(sequences * v * element_bytes) for k, v in per_layer)
        transient = rounded(sequences * max(before, default=0) * element_bytes) if plan.cache == "dynamic" else 0
    logits = rounded(sequences * (plan.vocab or 0) * element_bytes) + rounded(sequences * (plan.vocab or 0) * 4)
    return GenerationMemory(plan.where, plan.cache, sequences, context, cached, kv, transient, logits,
                            prefill_peak + kv + transient + logits, plan.notes)
