"""`model.generate(...)` in the analysed file: what the call asks (prompts, tokens, beams, which
cache) and the layout of the cache transformers 5.17 builds for the model (memory/generation.py
does the arithmetic).

The layout is read from the model as built, with transformers' own code where it decides:
`get_layer_types_and_kwargs(config.get_text_config(decoder=True))` (cache_utils.py), which
`DynamicCache(config=...)` and `StaticCache` call, gives each layer's kind ("full_attention",
"sliding_attention"...) and the window. Per token, a layer caches its keys and values of
`num_key_value_heads` heads of `head_dim` (GQA/MQA: fewer key/value heads than query heads), in the
dtype the key/value projections produce (the model's). DeepSeek-V2/V3's multi-latent attention
caches the compressed latents instead (modeling_deepseek_v3.py, `DeepseekV3Attention.forward`:
`past_key_values.update(kv_nope, k_rot, ...)` before `expand_kv`): `kv_lora_rank` + `qk_rope_head_dim`
elements per token, one "head".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import libcst as cst

from vramlint.engine.values import (
    MISSING,
    FunctionValue,
    Instance,
    NativeFunction,
    SourceRef,
    Unknown,
)
from vramlint.engine.walk import iter_nodes
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.memory.generation import CacheLayer, GenerationPlan

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.source import SourceModule

# generation/utils.py, `_prepare_generated_length`: "by default let's always generate 20 new tokens".
DEFAULT_NEW_TOKENS = 20
# generation/configuration_utils.py: the cache implementations allocated up front
# (ALL_STATIC_CACHE_IMPLEMENTATIONS); the others ("dynamic", None...) grow by concatenation.
STATIC_CACHES = frozenset(("static", "offloaded_static", "sliding_window", "hybrid", "hybrid_chunked",
                           "offloaded_hybrid", "offloaded_hybrid_chunked"))
# Caches that keep less on the GPU than counted: the estimate is an upper bound for them.
PARTLY_OFF_GPU = {"offloaded": "offloaded to the CPU but for the layers in use",
                  "offloaded_static": "offloaded to the CPU but for the layers in use",
                  "quantized": "quantized (all but the last tokens)"}
# cache_utils.py's DYNAMIC_LAYER_TYPE_MAPPING: the layer kinds that cache keys and values per token,
# and whether they keep only a window ("chunked" behaves as "sliding" for the cache).
ATTENTION_LAYERS = {"full_attention": False, "sliding_attention": True, "chunked_attention": True}
_ABSENT = object()


def generation_plan(ev: Evaluator, model: Instance, name: str, source: SourceModule,
                    evaluate: Callable[[cst.BaseExpression], Any]) -> GenerationPlan | None:
    """The file's first `<name>.generate(...)`, else the first call of a text-generation
    `pipeline(..., model=<name>)` (None: the file does not generate with this model). `evaluate`
    gives an argument's value at module level (an Unknown when it cannot)."""
    if not _generates(model):
        return None  # a model of the file's own with a `generate` method (nanoGPT's): not transformers' cache
    short = name.rpartition(".")[2]
    call = _generate_call(source, short)
    pipe = None if call is not None else _pipeline_call(source, short)
    if call is None and pipe is None:
        return None
    if pipe is not None:
        call, what = pipe
    else:
        assert call is not None
        what = f"{short}.generate(...)"
    kw = {a.keyword.value: a.value for a in call.args if a.keyword is not None}

    def value(key: str, default: Any) -> Any:
        if key not in kw:
            return default
        v = evaluate(kw[key])
        return v if isinstance(v, (int, str)) and not isinstance(v, Unknown) else None

    batch, prompt, notes = _prompt_of(call, kw, evaluate) if pipe is None else _pipeline_prompts(value)
    expand = max((v for v in (value("num_beams", 1), value("num_return_sequences", 1))
                  if isinstance(v, int) and not isinstance(v, bool)), default=1)
    use_cache, implementation = value("use_cache", True), value("cache_implementation", None)
    cache = "none" if use_cache is False else "static" if implementation in STATIC_CACHES else "dynamic"
    if isinstance(implementation, str) and implementation in PARTLY_OFF_GPU:
        notes.append(f"cache_implementation={implementation!r}: the cache is {PARTLY_OFF_GPU[implementation]}; "
                     "the estimate counts it all on the GPU, an upper bound")
    new_tokens, max_length = value("max_new_tokens", None), value("max_length", None)
    if "max_new_tokens" not in kw and "max_length" not in kw and not any(a.star == "**" for a in call.args):
        new_tokens = DEFAULT_NEW_TOKENS
        notes.append(f"no max_new_tokens nor max_length: transformers' default, {DEFAULT_NEW_TOKENS} new tokens")
    layers, vocab, layout_notes = cache_layout(ev, model)
    line = SourceRef(source, call).statement_location.line
    return GenerationPlan(
        where=f"code: {what} at line {line}", line=line, batch=batch, prompt=prompt,
        new_tokens=new_tokens if isinstance(new_tokens, int) else None,
        max_length=max_length if isinstance(max_length, int) else None, expand=expand, cache=cache,
        layers=layers, vocab=vocab, notes=(*notes, *layout_notes),
        prefill_kwargs=(*_prefill_kwargs(model), *((("use_cache", False),) if cache == "none" else ())))


def _generates(model: Instance) -> bool:
    """Whether the model is one of transformers' generating models (its class has GenerationMixin)."""
    return any(getattr(c, "name", None) == "GenerationMixin" and
               str(getattr(c, "module_name", "")).startswith("transformers.") for c in getattr(model.cls, "mro", ()))


def _prompt_of(call: cst.Call, kw: dict[str, cst.BaseExpression],
               evaluate: Callable[[cst.BaseExpression], Any]) -> tuple[int | None, int | None, list[str]]:
    """generate's input ids, `(prompts, prompt tokens)`, when the evaluator knows their shape."""
    pos = [a.value for a in call.args if a.keyword is None and not a.star]
    inputs = kw.get("input_ids", kw.get("inputs", pos[0] if pos else None))
    if inputs is not None:
        t = evaluate(inputs)
        if isinstance(t, TensorValue) and isinstance(t.shape, tuple) and len(t.shape) == 2:
            batch, prompt = t.shape
            return (batch if isinstance(batch, int) else None), (prompt if isinstance(prompt, int) else None), []
        return None, None, []
    if any(a.star == "**" for a in call.args):
        return None, None, ["the prompt comes from `**` arguments (a tokenizer's output): its length is the "
                            "`context` setting less the new tokens"]
    return None, None, []


def _pipeline_prompts(value: Callable[[str, Any], Any]) -> tuple[int | None, int | None, list[str]]:
    """A pipeline's prompts are text: their length is the context's; it runs `batch_size` of them
    at once (TextGenerationPipeline's default: one)."""
    batch = value("batch_size", 1)
    return (batch if isinstance(batch, int) and not isinstance(batch, bool) else None), None, \
        ["a pipeline's prompts are text: their length is the `context` setting less the new tokens"]


def _pipeline_call(source: SourceModule, name: str) -> tuple[cst.Call, str] | None:
    """`pipe = pipeline("text-generation", model=<name>, ...)` then `pipe(prompts, ...)`: that call."""
    if source.tree is None or "pipeline" not in source.text:
        return None
    pipes: set[str] = set()
    for node in iter_nodes(source.tree):
        if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) \
                and isinstance(node.value, cst.Call) and _is_generation_pipeline(node.value, name):
            pipes.add(node.targets[0].target.value)
    for node in iter_nodes(source.tree):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in pipes:
            return node, f"{node.func.value}(...) (a text-generation pipeline of `{name}`)"
    return None


def _is_generation_pipeline(call: cst.Call, name: str) -> bool:
    func = call.func.attr.value if isinstance(call.func, cst.Attribute) else \
        call.func.value if isinstance(call.func, cst.Name) else None
    if func != "pipeline":
        return False
    task = next((a.value for a in call.args if (a.keyword is None and not a.star) or
                 (a.keyword is not None and a.keyword.value == "task")), None)
    model = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "model"), None)
    return isinstance(task, cst.SimpleString) and task.evaluated_value == "text-generation" \
        and isinstance(model, cst.Name) and model.value == name


def _prefill_kwargs(model: Instance) -> tuple[tuple[str, Any], ...]:
    """What generate passes the forward over the prompt that changes its memory: `logits_to_keep=1`
    when the forward takes it (generation/utils.py: "set it to 1 to avoid computing the whole logit
    matrix"). The traced forward builds its own dynamic cache of the prompt, as generate's first
    forward fills one (without a cache, transformers' mask code would look for packed sequences)."""
    fn, _ = model.cls.lookup("forward")
    if not isinstance(fn, FunctionValue) or isinstance(fn.node, cst.Lambda):
        return ()
    p = fn.node.params
    takes = {x.name.value for x in (*p.params, *p.kwonly_params)}
    return (("logits_to_keep", 1),) if "logits_to_keep" in takes else ()


def _generate_call(source: SourceModule, name: str) -> cst.Call | None:
    if source.tree is None or ".generate" not in source.text:
        return None
    for node in iter_nodes(source.tree):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "generate" \
                and isinstance(node.func.value, cst.Name) and node.func.value.value == name:
            return node
    return None


def cache_layout(ev: Evaluator, model: Instance) -> tuple[tuple[CacheLayer, ...], int | None, tuple[str, ...]]:
    """Each layer's cached elements per token, the vocabulary, and what is left out."""
    config = _get(ev, model, "config")
    text = _get(ev, config, "get_text_config")
    if text is not None:
        config = ev.call(text, (), {"decoder": True})
    vocab = _int(_get(ev, config, "vocab_size"))
    per_token = _per_token(ev, config)
    if per_token is None:
        return (), vocab, ("the key/value heads and head size are not in the model's config: no KV cache counted",)
    kinds, window = _layer_types(ev, config)
    if kinds is None:
        return (), vocab, ("the cache's layer types could not be read: no KV cache counted",)
    layers, skipped = [], []
    for kind in kinds:
        if kind in ATTENTION_LAYERS:
            layers.append(CacheLayer(*per_token, window if ATTENTION_LAYERS[kind] else None))
        else:
            skipped.append(kind)
    notes = (f"cache layers of kinds {', '.join(sorted(set(skipped)))} are not counted",) if skipped else ()
    if _int(_get(ev, config, "kv_lora_rank")) is not None:
        notes = (*notes, "multi-latent attention: the cache holds the compressed latents (kv_lora_rank + "
                         "qk_rope_head_dim per token), expanded to every head's keys and values at each step")
    return tuple(layers), vocab, notes


def _per_token(ev: Evaluator, config: Any) -> tuple[int, int] | None:
    """(key elements, value elements) one layer caches per token and sequence."""
    latent = _int(_get(ev, config, "kv_lora_rank"))
    if latent is not None:  # multi-latent attention: the latents, one head
        rope = _int(_get(ev, config, "qk_rope_head_dim"))
        return (latent, rope) if rope is not None else None
    heads = _int(_get(ev, config, "num_attention_heads"))
    kv_heads = _int(_get(ev, config, "num_key_value_heads")) or heads
    head_dim = _int(_get(ev, config, "head_dim"))
    hidden = _int(_get(ev, config, "hidden_size"))
    if head_dim is None and hidden is not None and heads:
        head_dim = hidden // heads
    if kv_heads is None or head_dim is None:
        return None
    return kv_heads * head_dim, kv_heads * head_dim


def _layer_types(ev: Evaluator, config: Any) -> tuple[list[str] | None, int | None]:
    """transformers' own `get_layer_types_and_kwargs(config)`: the layer kinds and the window."""
    module = ev.loader.import_module("transformers.cache_utils", ev.current_ref)
    fn = _get(ev, module, "get_layer_types_and_kwargs")
    found = ev.call(fn, (config,), {}) if fn is not None else None
    if not isinstance(found, tuple) or len(found) != 2 or not isinstance(found[0], list) \
            or not all(isinstance(k, str) for k in found[0]):
        return None, None
    window = found[1].get("sliding_window") if isinstance(found[1], dict) else None
    return found[0], _int(window)


def _get(ev: Evaluator, obj: Any, name: str) -> Any:
    if obj is None or isinstance(obj, Unknown):
        return None
    v = ev.protocol.getattr(obj, name, _ABSENT)
    return None if v is _ABSENT or v is MISSING or isinstance(v, Unknown) else v


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def generate_rule(ev: Evaluator, func: Any) -> NativeFunction:
    """`GenerationMixin.generate` is not run: it would decode token by token in the evaluator
    (and on a file's module level, stop on what it cannot model); its memory is the plan above."""

    def impl(ev2: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        return Unknown("generate() is not evaluated: its memory is the KV cache estimate", ev2.current_ref)

    return NativeFunction("GenerationMixin.generate", impl)


FUNCTION_RULES = {"transformers.generation.utils.GenerationMixin.generate": generate_rule}
