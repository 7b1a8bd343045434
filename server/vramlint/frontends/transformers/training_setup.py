"""What Hugging Face training code states, for the training-setup scan (vramlint.frontends.training_setup):
`TrainingArguments(...)` and TRL's configs (`SFTConfig(...)`...): `optim=` / `adafactor=`, `bf16=` /
`fp16=`, `per_device_train_batch_size=`, `gradient_checkpointing=`, `gradient_accumulation_steps=`,
`fsdp=`, and SFTConfig's `max_length=` (the sequence length of a token model's inputs); with no
SFTConfig that says it, a tokenizer call's `max_length=` (`tokenizer(texts, truncation=True,
max_length=512, padding="max_length")`) or run_clm's chunking by `block_size` (`range(0, total_length,
block_size)`) gives it, as the file states it (the dataset given to the Trainer is not followed).

The model they apply to is the `model=` of the `Trainer(...)` the file builds: the torch handler
collects those calls (kind "trainer": Lightning's Trainer shares the name).
"""

from __future__ import annotations

import libcst as cst

from vramlint.frontends.training_setup import (
    UNKNOWN,
    Candidate,
    Outcome,
    Scanner,
    TrainingSetupHandler,
    decide_accumulation,
    dotted,
    split_args,
    trained_model,
)

# TrainingArguments(optim=...) (transformers.training_args.OptimizerNames values) ->
# vramlint.memory.optimizers.OPTIMIZERS keys.
HF_OPTIMIZERS: dict[str, str] = {
    "adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_hf": "adamw", "adamw_apex_fused": "adamw",
    "adamw_anyprecision": "adamw", "adamw_torch_xla": "adamw", "adamw_torch_npu_fused": "adamw",
    "adafactor": "adafactor", "adamw_bnb_8bit": "adam8bit", "adamw_8bit": "adam8bit",
    "paged_adamw_8bit": "adam8bit", "paged_adamw_32bit": "adamw", "lion_32bit": "lion",
    "paged_lion_32bit": "lion", "sgd": "sgd", "adagrad": "adagrad", "rmsprop": "rmsprop",
    "rmsprop_bnb": "rmsprop", "rmsprop_bnb_32bit": "rmsprop", "lion_8bit": "lion8bit", "paged_lion_8bit": "lion8bit",
}
HF_DEFAULT_OPTIMIZER = "adamw"  # TrainingArguments.optim's default, adamw_torch
HF_DEFAULT_BATCH = 8  # TrainingArguments.per_device_train_batch_size
# TRL's configs subclass TrainingArguments through `_BaseConfig` (trl 1.16.0, trl/trainer/base_config.py),
# which turns gradient checkpointing on by default and bf16 on unless fp16 is set.
TRL_VERSION = "1.16.0"
# SFTConfig.max_length (trl/trainer/sft_config.py): the tokens a sample is truncated to, or, with
# packing=True, the length of every packed sequence. Older TRL named it max_seq_length.
SFT_DEFAULT_MAX_LENGTH = 1024
SFT_LENGTH_KEYWORDS = ("max_length", "max_seq_length")
TRL_CONFIGS = frozenset(("SFTConfig", "DPOConfig", "ORPOConfig", "KTOConfig", "CPOConfig",
                         "RewardConfig", "GRPOConfig", "PPOConfig"))
KBIT_PREPARE = "prepare_model_for_kbit_training"  # peft's; use_gradient_checkpointing=True by default
TRIGGERS = ("TrainingArguments", *sorted(TRL_CONFIGS), KBIT_PREPARE, "max_length", "block_size")
# Ranks of the sequence lengths (Outcome.sequence_lengths): SFTConfig's own max_length, then a
# tokenizer padding to max_length or run_clm's block_size (exact), a truncating tokenizer (an upper
# bound), TRL's default.
RANK_SFT, RANK_EXACT, RANK_BOUND, RANK_DEFAULT = 0, 1, 2, 3
# Tokenizer methods that take max_length (a tokenizer called directly: `tokenizer(...)`).
TOKENIZER_METHODS = frozenset(("encode", "encode_plus", "batch_encode_plus", "__call__"))
# The configs that subclass TRL's `_BaseConfig` (all of TRL_CONFIGS but PPOConfig, in trl 1.16.0).
TRL_BASE_CONFIGS = TRL_CONFIGS - {"PPOConfig"}
TRAINER_KIND = "trainer"  # the torch handler's kind for `...Trainer(...)` calls


def _calls(s: Scanner, node: cst.Call, last: str) -> str | None:
    if last == KBIT_PREPARE:
        return "kbit_prepare"
    if last.endswith("TrainingArguments") or last in TRL_CONFIGS:
        return "hf_args"
    if last == "range" and len(node.args) == 3 and "block_size" in dotted(node.args[2].value):
        return "block_size"
    return "tokenizer_call" if "tok" in last.lower() and _has_max_length(node) else None


def _methods(s: Scanner, node: cst.Call, method: str) -> str | None:
    """`self.tokenizer(...)`, `tokenizer.encode(..., max_length=...)`."""
    if not _has_max_length(node):
        return None
    func = node.func
    receiver = dotted(func.value) if type(func) is cst.Attribute else ""
    if "tok" in method.lower() or (method in TOKENIZER_METHODS and "tok" in receiver.rsplit(".", 1)[-1].lower()):
        return "tokenizer_call"
    return None


def _has_max_length(node: cst.Call) -> bool:
    return any(a.keyword is not None and a.keyword.value == "max_length" for a in node.args)


def _tokenizer_call(s: Scanner, c: Candidate, out: Outcome) -> None:
    """A tokenizer's `max_length`: exactly that many tokens per sample with padding="max_length",
    at most that many with truncation (padded per batch to the longest): counted as the bound,
    since the estimate must err towards not fitting."""
    node = c.kw["max_length"]
    n = s.value(node)
    if type(n) is not int or n <= 0:
        out.defer("sequence_length", c, f"max_length={s.code(node)} is not decidable")
        return
    padding = s.value(c.kw["padding"]) if "padding" in c.kw else False
    shown = f"{c.name}(..., max_length={s.code(node, 30)}"
    named = s.why(node, n)  # read through a name: its value, and where the name got it
    if padding == "max_length":
        out.sequence_lengths.append((RANK_EXACT, s.found(n, c, f"{shown}, padding='max_length')", why=named)))
    else:
        bound = f"at most {n} tokens, padded per batch"
        out.sequence_lengths.append((RANK_BOUND, s.found(n, c, f"{shown})", why=f"{named}; {bound}" if named else bound)))


def _block_size(s: Scanner, c: Candidate, out: Outcome) -> None:
    """run_clm's `group_texts`: the tokens concatenated and cut into chunks of `block_size`."""
    node = c.pos[2] if len(c.pos) > 2 else None
    n = s.value(node) if node is not None else UNKNOWN
    if type(n) is int and n > 0 and node is not None:
        out.sequence_lengths.append((RANK_EXACT, s.found(n, c, f"chunks of {s.code(node, 30)}: range(...)",
                                                         why="" if type(node) is cst.Integer else f"= {n}")))


def _kbit_prepare(s: Scanner, c: Candidate, out: Outcome) -> None:
    """peft's `prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)` calls
    `model.gradient_checkpointing_enable()` on a quantized model (peft/utils/other.py)."""
    pos, kw, _ = split_args(c.call)
    flag = kw.get("use_gradient_checkpointing", pos[1] if len(pos) > 1 else None)
    v = True if flag is None else s.value(flag)
    if v is True and pos:
        out.checkpoints.append(s.found(True, c, f"{c.name}(...)", s.target_of(pos[0], c.cls)))
    elif v is UNKNOWN and flag is not None:
        out.defer("checkpointing", c, f"use_gradient_checkpointing={s.code(flag)} is not decidable")


def _trainer_model(s: Scanner) -> str | None:
    """The variable given as `model=` to the file's first Trainer (or first positional, with `args=`)."""
    return next((m for c in s.cands if c.kind == TRAINER_KIND and (m := trained_model(c.call)) is not None), None)


def _optimizer(s: Scanner, c: Candidate, out: Outcome, trainer_model: str | None, defaults: bool) -> None:
    """Only the file's first arguments object counts for the optimizer; one the file builds wins over it."""
    kw = c.kw
    if out.fallback_optimizers:
        return
    if "optim" in kw:
        node = kw["optim"]
        v = s.value(node)
        if type(node) is cst.Attribute and "OptimizerNames" in dotted(node):
            v = node.attr.value.lower()
        if isinstance(v, str) and v in HF_OPTIMIZERS:
            out.fallback_optimizers.append(s.found(HF_OPTIMIZERS[v], c, f"{c.name}(optim={v!r})", trainer_model))
        else:
            out.defer("optimizer", c, f"optim={s.code(node)} is not a known optimizer")
    elif "adafactor" in kw and s.value(kw["adafactor"]) is True:
        out.fallback_optimizers.append(s.found("adafactor", c, f"{c.name}(adafactor=True)", trainer_model))
    elif defaults:
        out.fallback_optimizers.append(s.found(HF_DEFAULT_OPTIMIZER, c, f"{c.name}(...)", trainer_model,
                                               why="the Trainer's default optimizer, AdamW"))


def _batch(s: Scanner, c: Candidate, out: Outcome, defaults: bool) -> None:
    kw = c.kw
    if "per_device_train_batch_size" in kw:
        node = kw["per_device_train_batch_size"]
        n = s.value(node)
        if type(n) is int and n > 0:
            what = f"{c.name}(per_device_train_batch_size={s.code(node, 30)})"
            out.batches.append((0, s.found(n, c, what, why=s.why(node, n))))
        else:
            out.defer("batch_size", c, f"per_device_train_batch_size={s.code(node)} is not decidable")
    elif defaults:
        out.batches.append((3, s.found(HF_DEFAULT_BATCH, c, f"{c.name}(...)",
                                       why=f"per_device_train_batch_size default {HF_DEFAULT_BATCH}")))


def _precision(s: Scanner, c: Candidate, out: Outcome, trl: bool) -> None:
    kw = c.kw
    for flag, prec in (("bf16", "amp-bf16"), ("fp16", "amp-fp16")):
        if flag in kw:
            v = s.value(kw[flag])
            if v is True:
                out.autocasts.append(s.found(prec, c, f"{c.name}({flag}=True)"))
            elif v is UNKNOWN:
                out.defer("autocast", c, f"{flag}={s.code(kw[flag])} is not decidable")
    if trl and "bf16" not in kw and "fp16" not in kw:
        out.autocasts.append(s.found("amp-bf16", c, f"{c.name}(...)", why=f"TRL {TRL_VERSION}'s default bf16=True"))


def _checkpointing(s: Scanner, c: Candidate, out: Outcome, trainer_model: str | None, trl: bool) -> None:
    node = c.kw.get("gradient_checkpointing")
    if node is not None and s.value(node) is True:
        out.checkpoints.append(s.found(True, c, f"{c.name}(gradient_checkpointing=True)", trainer_model))
    elif node is None and trl:
        out.checkpoints.append(s.found(True, c, f"{c.name}(...)", trainer_model,
                                       why=f"TRL {TRL_VERSION}'s default gradient_checkpointing=True"))


def _sequence_length(s: Scanner, c: Candidate, out: Outcome, defaults: bool) -> None:
    """SFTConfig's max_length: each sample's tokens at most (all of them with packing=True)."""
    key = next((k for k in SFT_LENGTH_KEYWORDS if k in c.kw), None)
    if key is None:
        if defaults:
            out.sequence_lengths.append((RANK_DEFAULT, s.found(SFT_DEFAULT_MAX_LENGTH, c, f"{c.name}(...)",
                                                               why=f"TRL {TRL_VERSION}'s default max_length")))
        return
    node = c.kw[key]
    n = s.value(node)
    if type(n) is int and n > 0:
        out.sequence_lengths.append((RANK_SFT, s.found(n, c, f"{c.name}({key}={s.code(node, 30)})")))
    else:
        out.defer("sequence_length", c, f"{key}={s.code(node)} is not decidable")


def _arguments(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`TrainingArguments(...)` / a TRL config. Their defaults (AdamW, batch 8; TRL's bf16 and
    checkpointing; SFTConfig's max_length) count only for a call spelled out (no `**kwargs` that
    may set them)."""
    trainer_model = _trainer_model(s)
    trl_defaults = not c.star and c.last in TRL_BASE_CONFIGS
    defaults = trl_defaults or (not c.star and c.last.endswith("TrainingArguments"))
    _optimizer(s, c, out, trainer_model, defaults)
    _precision(s, c, out, trl_defaults)
    _batch(s, c, out, defaults)
    _checkpointing(s, c, out, trainer_model, trl_defaults)
    if c.last == "SFTConfig":
        _sequence_length(s, c, out, not c.star)
    decide_accumulation(s, c, out, "gradient_accumulation_steps")
    kw = c.kw
    if "fsdp" in kw:
        v = s.value(kw["fsdp"])
        if (isinstance(v, str) and v.strip()) or v is True or type(kw["fsdp"]) is cst.List:
            out.distributed.append(s.found("fsdp", c, f"{c.name}(fsdp=...)", trainer_model))


HANDLER = TrainingSetupHandler(
    name="transformers",
    triggers=TRIGGERS,
    deciders={"hf_args": _arguments, "kbit_prepare": _kbit_prepare, "tokenizer_call": _tokenizer_call,
              "block_size": _block_size},
    calls=_calls,
    methods=_methods,
)
