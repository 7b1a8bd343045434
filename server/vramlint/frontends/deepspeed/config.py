"""A DeepSpeed configuration (the JSON file, or the dict the code passes) read into the fields of a
ParallelPlan: what the memory of each GPU depends on, each with where it was read.

Keys and defaults are DeepSpeed 0.19's (deepspeed/runtime/zero/config.py `DeepSpeedZeroConfig`,
deepspeed/runtime/config.py): ZeRO stage 0 when `zero_optimization` is absent; `overlap_comm`
defaults to True under stage 3 only (`overlap_comm_valid`); `bf16` (alias `bfloat16`) / `fp16`
`enabled`. "auto" is not DeepSpeed's: transformers' `HfTrainerDeepSpeedConfig` and accelerate
fill it from the TrainingArguments / the Accelerator and the model's hidden size
(transformers/integrations/deepspeed.py `trainer_config_process`, `trainer_config_finalize`); the
caller gives those values (`auto`), else DeepSpeed's default applies, with a note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vramlint.memory.distributed import Sourced

MAX_CONFIG_BYTES = 1 << 20  # a DeepSpeed config is a few hundred bytes; anything past 1 MiB is not one

# DeepSpeedZeroConfig's defaults (sizes in elements).
DEFAULTS: dict[str, Any] = {
    "reduce_bucket_size": 500_000_000, "allgather_bucket_size": 500_000_000,
    "stage3_prefetch_bucket_size": 50_000_000, "stage3_max_live_parameters": 1_000_000_000,
    "stage3_param_persistence_threshold": 100_000, "contiguous_gradients": True,
}
# zero_optimization key -> ParallelPlan field.
SIZE_FIELDS = {
    "reduce_bucket_size": "reduce_bucket_size", "allgather_bucket_size": "allgather_bucket_size",
    "stage3_prefetch_bucket_size": "prefetch_bucket_size", "stage3_max_live_parameters": "max_live_parameters",
    "stage3_param_persistence_threshold": "param_persistence_threshold",
}
OFFLOAD_DEVICES = ("cpu", "nvme")


class Undecided:
    """A value the code computes that vramlint could not (a leaf of a config dict)."""

    def __init__(self, why: str) -> None:
        self.why = why


@dataclass
class Reading:
    """ParallelPlan keyword arguments read from a configuration, their sources, and notes."""

    fields: dict[str, Any] = field(default_factory=dict)
    sources: list[Sourced] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Auto:
    """What "auto" takes, by dotted key ("bf16.enabled", "zero_optimization.reduce_bucket_size"):
    (value, where it comes from). `who`: the library that fills it ("transformers' Trainer")."""

    values: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    who: str = ""


def parse_json(data: bytes, shown: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the config, None) or (None, a located note: "ds_config.json:3:5: invalid JSON: ...")."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return None, f"{shown}: not UTF-8 text (byte {err.start}): the DeepSpeed config is not read"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"{shown}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}: the DeepSpeed config is not read"
    except (ValueError, RecursionError):
        return None, f"{shown}: invalid JSON (nested too deeply): the DeepSpeed config is not read"
    if not isinstance(value, dict):
        return None, f"{shown}: a DeepSpeed config is a JSON object, not {type(value).__name__}: not read"
    return value, None


def read_config(cfg: Mapping[str, Any], where: str, auto: Auto | None = None) -> Reading:
    """The plan's fields from a DeepSpeed config; `where` names it ("ds_config.json",
    "code: deepspeed.initialize(...) at line 12")."""
    return _Reader(cfg, where, auto or Auto()).read()


class _Reader:
    def __init__(self, cfg: Mapping[str, Any], where: str, auto: Auto) -> None:
        self.cfg, self.where, self.auto = cfg, where, auto
        self.out = Reading()

    def read(self) -> Reading:
        zero = self.section("zero_optimization")
        stage = self.number("zero_optimization.stage", zero, "stage", 0, "zero stage")
        if stage not in (0, 1, 2, 3):
            self.out.notes.append(f"{self.where}: zero_optimization.stage = {stage}: not a ZeRO stage (0-3); 0 assumed")
            stage = 0
        self.out.fields["stage"] = stage
        self.offloads(zero, stage)
        for key, name in SIZE_FIELDS.items():
            if key.startswith("stage3_") and stage < 3:
                continue
            self.out.fields[name] = self.number(f"zero_optimization.{key}", zero, key, DEFAULTS[key], key)
        self.out.fields["overlap_comm"] = self.flag("zero_optimization.overlap_comm", zero, "overlap_comm",
                                                    stage == 3, "overlap_comm")
        self.out.fields["contiguous_gradients"] = self.flag("zero_optimization.contiguous_gradients", zero,
                                                            "contiguous_gradients", True, "contiguous_gradients")
        self.precision()
        self.batching()
        return self.out

    # -- values --------------------------------------------------------------------------------

    def section(self, key: str) -> Mapping[str, Any]:
        value = self.cfg.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.out.notes.append(f"{self.where}: {key} is not an object: ignored")
            return {}
        return value

    def raw(self, dotted: str, section: Mapping[str, Any], key: str) -> tuple[Any, str] | None:
        """The value as written (None: absent), "auto" replaced by what fills it, and its source."""
        if key not in section:
            return None
        value = section[key]
        if isinstance(value, Undecided):
            self.out.notes.append(f"{self.where}: {dotted}: {value.why}: DeepSpeed's default assumed")
            return None
        if value == "auto":
            filled = self.auto.values.get(dotted)
            if filled is None:
                who = f" ({self.auto.who} fills it from what the code does not show)" if self.auto.who else \
                    " (only transformers' Trainer and accelerate fill \"auto\")"
                self.out.notes.append(f"{self.where}: {dotted} = \"auto\"{who}: DeepSpeed's default assumed")
                return None
            return filled[0], f"{filled[1]} (\"auto\" in {self.where})"
        return value, self.where

    def number(self, dotted: str, section: Mapping[str, Any], key: str, default: int, what: str) -> int:
        got = self.raw(dotted, section, key)
        if got is None:
            return default
        value, source = got
        # DeepSpeed's configs write sizes as floats (5e8) and pydantic's `pp_int` takes them.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0 \
                or value > 1 << 62:
            self.out.notes.append(f"{self.where}: {dotted} = {value!r} is not a count: {default:,} assumed")
            return default
        self.out.sources.append(Sourced(what, f"{int(value):,}" if what != "zero stage" else str(int(value)), source))
        return int(value)

    def flag(self, dotted: str, section: Mapping[str, Any], key: str, default: bool, what: str) -> bool:
        got = self.raw(dotted, section, key)
        if got is None:
            return default
        value, source = got
        if not isinstance(value, bool):
            self.out.notes.append(f"{self.where}: {dotted} = {value!r} is not true/false: {default} assumed")
            return default
        self.out.sources.append(Sourced(what, str(value), source))
        return value

    def device(self, dotted: str, section: Mapping[str, Any]) -> str | None:
        got = self.raw(f"{dotted}.device", section, "device")
        if got is None:
            return None
        value, source = got
        if value in (None, "none"):
            return None
        if value not in OFFLOAD_DEVICES:
            self.out.notes.append(f"{self.where}: {dotted}.device = {value!r} is not cpu, nvme or none: none assumed")
            return None
        self.out.sources.append(Sourced(dotted.rsplit(".", 1)[-1], str(value), source))
        return str(value)

    # -- sections ------------------------------------------------------------------------------

    def offloads(self, zero: Mapping[str, Any], stage: int) -> None:
        opt = self.offload_section(zero, "offload_optimizer", "cpu_offload")
        par = self.offload_section(zero, "offload_param", "cpu_offload_params")
        if opt is not None and stage == 0:
            self.out.notes.append(f"{self.where}: offload_optimizer needs ZeRO stage 1-3: ignored at stage 0")
            opt = None
        if par is not None and stage < 3:
            # DeepSpeedZeroConfig: offload_param "is valid only with stage 3".
            self.out.notes.append(f"{self.where}: offload_param applies to ZeRO stage 3 only: ignored at stage {stage}")
            par = None
        self.out.fields["offload_optimizer"] = opt
        self.out.fields["offload_params"] = par

    def offload_section(self, zero: Mapping[str, Any], key: str, legacy: str) -> str | None:
        section = zero.get(key)
        if isinstance(section, Mapping):
            return self.device(f"zero_optimization.{key}", section)
        # The legacy booleans (`cpu_offload: true`), which DeepSpeedZeroConfig still translates.
        if zero.get(legacy) is True:
            self.out.sources.append(Sourced(key, "cpu", f"{self.where} ({legacy})"))
            return "cpu"
        return None

    def precision(self) -> None:
        bf16 = self.section("bf16") or self.section("bfloat16")
        fp16 = self.section("fp16")
        key = "bf16" if "bf16" in self.cfg else "bfloat16"
        if self.flag(f"{key}.enabled", bf16, "enabled", False, "bf16"):
            self.out.fields["low_precision"] = "bfloat16"
        elif self.flag("fp16.enabled", fp16, "enabled", False, "fp16"):
            self.out.fields["low_precision"] = "float16"
        else:
            self.out.fields["low_precision"] = None

    def batching(self) -> None:
        steps = self.number("gradient_accumulation_steps", self.cfg, "gradient_accumulation_steps", 1,
                            "gradient accumulation steps")
        if steps > 1:
            self.out.notes.append(
                f"{self.where}: gradient_accumulation_steps = {steps}: the estimate is of one micro-batch; "
                "between micro-steps each rank keeps its gradients (whole under ZeRO 0-1, its partition under 2-3)")
        self.number("train_micro_batch_size_per_gpu", self.cfg, "train_micro_batch_size_per_gpu", 0,
                    "micro-batch per GPU")
