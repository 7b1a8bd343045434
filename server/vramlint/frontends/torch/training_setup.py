"""What PyTorch training code states, for the training-setup scan (vramlint.frontends.training_setup).

torch.optim and bitsandbytes optimizers; autocast and GradScaler; DataLoader batch sizes;
`model.half()` / `.to(torch.bfloat16)` / `torch.set_default_dtype` / `from_pretrained(torch_dtype=...)`
casts; torch.utils.checkpoint and `gradient_checkpointing_enable()`; DDP / FSDP / DataParallel; and
the launchers built on torch: Accelerate's `Accelerator(mixed_precision=...)`, Lightning's
`Trainer(precision=..., strategy=...)` and Fabric; `torch.compile(model)` and `model.compile()`.
"""

from __future__ import annotations

from typing import Any, cast

import libcst as cst

from vramlint.frontends.training_setup import (
    MAX_DEPTH,
    UNKNOWN,
    Candidate,
    Decider,
    Outcome,
    Scanner,
    TrainingSetupHandler,
    decide_accumulation,
    dotted,
    trained_model,
)

# Optimizer classes -> vramlint.memory.optimizers.OPTIMIZERS keys (SGD's momentum and Adam's
# amsgrad variants are decided from the arguments by the scan).
OPTIMIZER_NAMES: dict[str, str] = {
    "SGD": "sgd", "Adam": "adam", "AdamW": "adamw", "Adagrad": "adagrad", "RMSprop": "rmsprop",
    "Adafactor": "adafactor", "Lion": "lion",
    # bitsandbytes
    "Adam8bit": "adam8bit", "AdamW8bit": "adam8bit", "PagedAdam8bit": "adam8bit", "PagedAdamW8bit": "adam8bit",
    "Adam32bit": "adam", "AdamW32bit": "adamw", "PagedAdam": "adam", "PagedAdamW": "adamw",
    "PagedAdam32bit": "adam", "PagedAdamW32bit": "adamw", "Lion32bit": "lion", "PagedLion": "lion",
    "PagedLion32bit": "lion", "Lion8bit": "lion8bit", "PagedLion8bit": "lion8bit",
    "FusedAdam": "adamw",  # apex / DeepSpeed: adam_w_mode=True by default; same state as Adam
}

DISTRIBUTED_NAMES: dict[str, str] = {
    "DistributedDataParallel": "ddp", "DDP": "ddp", "DDPStrategy": "ddp",
    "FullyShardedDataParallel": "fsdp", "FSDP": "fsdp", "fully_shard": "fsdp", "FSDPStrategy": "fsdp",
    "DataParallel": "dp",
}

TORCH_DTYPES: dict[str, str] = {
    "bfloat16": "bf16", "float16": "fp16", "half": "fp16",
    "float32": "fp32", "float": "fp32", "float64": "other", "double": "other",
}
STRING_DTYPES: dict[str, str] = {
    "bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16", "half": "fp16",
    "float32": "fp32", "fp32": "fp32", "float": "fp32",
}
# Methods only modules have (in practice): a receiver they are called on is a model.
MODULE_METHODS = frozenset(("parameters", "named_parameters", "train", "eval", "modules", "named_modules",
                            "children", "named_children", "gradient_checkpointing_enable",
                            "set_grad_checkpointing"))
# Methods returning the module itself, followed down a chain (`model.to(device).half()`).
CHAIN_METHODS = frozenset(("to", "cuda", "cpu", "half", "bfloat16", "float", "train", "eval",
                           "requires_grad_", "type"))
CAST_METHODS = {"half": "fp16", "bfloat16": "bf16"}
CHECKPOINT_METHODS = ("gradient_checkpointing_enable", "set_grad_checkpointing")
CHECKPOINT_NAMES = frozenset(("checkpoint", "checkpoint_sequential"))
# Each name `_calls` and OPTIMIZER_NAMES recognise contains one of these (an aliased import still
# names the original; a cast names its dtype, `half` or `float16`).
TRIGGERS = ("SGD", "Adam", "Adagrad", "RMSprop", "Adafactor", "Lion", "autocast", "GradScaler", "DataLoader",
            "DataParallel", "DDP", "FSDP", "FullySharded", "fully_shard", "checkpoint", "half", "float16",
            "set_default_dtype", "Accelerator", "Trainer", "Fabric", "compile", "benchmark", "enabled")


def _calls(s: Scanner, node: cst.Call, last: str) -> str | None:
    if last == "autocast":
        return "autocast"
    if last.endswith("GradScaler"):
        return "scaler"
    if last == "DataLoader":
        return "dataloader"
    if last in DISTRIBUTED_NAMES:
        return "distributed"
    if last in CHECKPOINT_NAMES:
        return "checkpoint"
    if last == "from_pretrained":
        return "from_pretrained"
    if last == "set_default_dtype":
        return "default_dtype"
    if last == "Accelerator":
        return "accelerator"
    if last == "compile":
        return "compile"
    if last.endswith("Trainer") or last == "Fabric":
        return "trainer"  # Lightning's, also transformers' (whose handler reads its model= from it)
    return None


def _methods(s: Scanner, node: cst.Call, method: str) -> str | None:
    if method in MODULE_METHODS:
        recv = cast(cst.Attribute, node.func).value
        if type(recv) is cst.Name:
            s.module_like.add(recv.value)
    if method in CAST_METHODS or method == "to":
        return "cast"
    if method in CHECKPOINT_METHODS:
        return "ckpt_method"
    if method == "compile" and "keras" not in s.text:  # Keras's model.compile(...) is its handler's
        return "compile"
    return "" if method in MODULE_METHODS else None


def dtype(s: Scanner, node: Any, depth: int = 0, strings: bool = False) -> Any:
    """"bf16" | "fp16" | "fp32" | "other" for a torch dtype expression (also a string such as
    "bfloat16" with `strings`), else UNKNOWN."""
    if depth > MAX_DEPTH or not isinstance(node, cst.CSTNode):
        return UNKNOWN

    def again(v: Any, d: int) -> Any:
        return dtype(s, v, d, strings)

    t = type(node)
    if t is cst.Attribute or t is cst.Name:
        q = s.qualify(dotted(node))  # type: ignore[arg-type]
        mod, _, last = q.rpartition(".")
        if mod == "torch" and last in TORCH_DTYPES:
            return TORCH_DTYPES[last]
        if t is cst.Name:
            return s.consistent(s.names.get(node.value), again, depth)  # type: ignore[attr-defined]
        return s.consistent(s.attrs.get(node.attr.value), again, depth)  # type: ignore[attr-defined]
    if t is cst.Subscript:
        key = s.subscript_key(node)  # type: ignore[arg-type]
        return UNKNOWN if key is None else s.consistent(s.attrs.get(key), again, depth)
    if strings and (t is cst.SimpleString or t is cst.ConcatenatedString):
        v = node.evaluated_value  # type: ignore[attr-defined]
        return STRING_DTYPES.get(v, "other") if isinstance(v, str) and v != "auto" else UNKNOWN
    return UNKNOWN


def _looks_like_class(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    if last in ("from_pretrained", "from_config", "create_model"):
        return True
    return bool(last) and last[0].isupper() and not last.endswith("Tensor")


# -- deciders, by kind --------------------------------------------------------------------------


def _autocast(s: Scanner, c: Candidate, out: Outcome) -> None:
    q, pos, kw = c.qual, c.pos, c.kw
    if not (q.startswith("torch.") or "." not in q):
        return  # accelerator.autocast(), a user's autocast
    if "cpu.amp" in q:
        return
    # torch.cuda.amp.autocast(enabled, dtype, ...); torch.autocast(device_type, dtype, enabled, ...).
    # A bare `autocast` of unknown origin: the first form unless its first argument is a string.
    cuda_form = "cuda.amp" in q or ("." not in q and (not pos or type(pos[0]) is not cst.SimpleString))
    device_node = kw.get("device_type", None if cuda_form or not pos else pos[0])
    device = s.value(device_node) if device_node is not None else UNKNOWN
    if isinstance(device, str) and device != "cuda":
        return  # autocast("cpu"): not GPU training
    enabled_node = kw.get("enabled", (pos[0] if pos else None) if cuda_form else pos[2] if len(pos) > 2 else None)
    if enabled_node is not None and s.value(enabled_node) is False:
        return
    dtype_node = kw.get("dtype", pos[1] if len(pos) > 1 else None)
    if dtype_node is None:
        out.autocasts.append(s.found("amp-fp16", c, f"{c.name}(...)", why="float16 by default"))
        return
    d = dtype(s, dtype_node)
    if d in ("bf16", "fp16"):
        out.autocasts.append(s.found(f"amp-{d}", c, f"{c.name}(..., dtype={s.code(dtype_node, 30)})"))
    elif d is UNKNOWN:
        out.defer("autocast", c, f"dtype={s.code(dtype_node)} is not decidable")


def _scaler(s: Scanner, c: Candidate, out: Outcome) -> None:
    """A GradScaler: fp16 autocast, unless an autocast says its dtype."""
    pos, kw = c.pos, c.kw
    if not (c.qual.startswith("torch.") or "." not in c.name):
        return
    if pos and type(pos[0]) is cst.SimpleString and pos[0].evaluated_value not in ("cuda",):
        return  # GradScaler("cpu")
    enabled = s.value(kw["enabled"]) if "enabled" in kw else True
    if enabled is True:
        out.fallback_autocasts.append(s.found("amp-fp16", c, f"{c.name}(...)", why="loss scaling: fp16 autocast"))
    elif enabled is UNKNOWN:
        out.defer("autocast", c, f"enabled={s.code(kw['enabled'])} is not decidable")


def _dataloader(s: Scanner, c: Candidate, out: Outcome) -> None:
    pos, kw = c.pos, c.kw
    if "batch_sampler" in kw:
        return
    node = kw.get("batch_size", pos[1] if len(pos) > 1 else None)
    if node is None:
        return  # DataLoader's default is 1, but an unsaid batch size is more likely set elsewhere
    n = s.value(node)
    if n is None:
        return
    if type(n) is not int or n <= 0:
        out.defer("batch_size", c, f"batch_size={s.code(node)} is not decidable")
        return
    # Prefer the training loader (an evaluation one often has a larger batch): by the name it
    # is assigned to, else the dataset's text; a shuffled one is a training one.
    dataset = kw.get("dataset", pos[0] if pos else None)
    words = (s.spine_target.get(c.node) or (s.code(dataset) if dataset is not None else "")).lower()
    shuffle = s.value(kw["shuffle"]) if "shuffle" in kw else None
    evaluation = any(w in words for w in ("val", "test", "eval"))
    rank = 0 if shuffle is True or ("train" in words and not evaluation) else 2 if evaluation else 1
    what = f"{c.name}(..., batch_size={s.code(node, 30)})"
    out.batches.append((rank, s.found(n, c, what, why=s.why(node, n))))


def _distributed(s: Scanner, c: Candidate, out: Outcome) -> None:
    arg = c.kw.get("module", c.pos[0] if c.pos else None)
    target = s.target_of(arg, c.cls) if arg is not None else None
    out.distributed.append(s.found(DISTRIBUTED_NAMES[c.last], c, f"{c.name}(...)", target))


def _checkpoint(s: Scanner, c: Candidate, out: Outcome) -> None:
    """torch.utils.checkpoint's functions, called or passed (not another library's `checkpoint`)."""
    q = c.qual
    if "." in q and q.rsplit(".", 2)[-2] in ("checkpoint", "checkpointing") or q.endswith("checkpoint_sequential"):
        out.checkpoints.append(s.found(True, c, c.name if c.extra == "reference" else f"{c.name}(...)"))


def _checkpoint_method(s: Scanner, c: Candidate, out: Outcome) -> None:
    recv = cast(cst.Attribute, c.call.func).value
    args = [a for a in c.call.args if a.keyword is None]
    if c.name == "set_grad_checkpointing" and args and s.value(args[0].value) is not True:
        return
    out.checkpoints.append(s.found(True, c, f"{s.code(recv)}.{c.name}()", s.recv_target(recv, c.cls)))


def _cast(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`x.half()`, `x.bfloat16()`, `x.to(torch.bfloat16)` on a model (not a tensor)."""
    pos, kw = c.pos, c.kw
    recv = cast(cst.Attribute, c.call.func).value
    if c.name == "to":
        dnode = kw.get("dtype")
        candidates = [dnode] if dnode is not None else pos
        d: Any = UNKNOWN
        for a in candidates:
            d = dtype(s, a)
            if d is not UNKNOWN:
                dnode = a
                break
        if d not in ("bf16", "fp16"):
            if d is UNKNOWN and "dtype" in kw and _module_receiver(s, c, recv) is not None:
                out.defer("cast", c, f"dtype={s.code(kw['dtype'])} is not decidable")
            return
        assert dnode is not None
        what = f"{s.code(recv, 30)}.to({'dtype=' if 'dtype' in kw else ''}{s.code(dnode, 30)})"
    else:
        if c.call.args:
            return
        d = CAST_METHODS[c.name]
        what = f"{s.code(recv, 30)}.{c.name}()"
    target = _module_receiver(s, c, recv)
    if target is None:
        return
    out.casts.append(s.found(d, c, what, target or None))


def _module_receiver(s: Scanner, c: Candidate, recv: cst.BaseExpression) -> str | None:
    """The target of a cast when its receiver is a model ("" for a model with no name), None
    when it may be a tensor: a statement `x.half()` (in place only for modules), a receiver
    a module method is called on, a chain rooted at a class's constructor."""
    statement = c.node in s.statement
    node = recv
    for _ in range(64):  # down `model.to(device).cuda()`
        if type(node) is cst.Call and type(node.func) is cst.Attribute and node.func.attr.value in CHAIN_METHODS:
            node = node.func.value
        else:
            break
    if type(node) is cst.Call:
        name = dotted(node.func)
        if name and _looks_like_class(name):
            return s.spine_target.get(c.node, "")
        return None
    if type(node) is cst.Name:
        if node.value == "self":
            return c.cls if c.cls else "" if statement else None
        name = node.value
        if statement or name in s.module_like or _looks_like_class(s.bindings.get(name, "")):
            return name
        return None
    if type(node) is cst.Attribute and statement:
        return dotted(node) or ""
    return None


def _from_pretrained(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`X.from_pretrained(..., torch_dtype=torch.bfloat16)` (the hub libraries' loaders take torch dtypes)."""
    kw = c.kw
    arg = kw.get("torch_dtype", kw.get("dtype"))
    if arg is None or "quantization_config" in kw:
        # A quantized model (QLoRA) is not cast whole: its weights are int8/4-bit, the rest is in
        # the dtype loading gave (which prepare_model_for_kbit_training upcasts), as the model holds them.
        return
    d = dtype(s, arg, strings=True)
    what = f"{c.name}(..., {'torch_dtype' if 'torch_dtype' in kw else 'dtype'}={s.code(arg)})"
    if d in ("bf16", "fp16"):
        out.casts.append(s.found(d, c, what, s.spine_target.get(c.node)))
    elif d is UNKNOWN:
        out.defer("cast", c, f"{s.code(arg)} is not a decidable dtype")


def _default_dtype(s: Scanner, c: Candidate, out: Outcome) -> None:
    d = dtype(s, c.pos[0]) if c.pos else UNKNOWN
    if d in ("bf16", "fp16") and (c.qual.startswith("torch.") or "." not in c.name):
        out.casts.append(s.found(d, c, f"{c.name}({s.code(c.pos[0])})"))


def _accelerator(s: Scanner, c: Candidate, out: Outcome) -> None:
    """Accelerate's `Accelerator(mixed_precision=..., gradient_accumulation_steps=...)`."""
    decide_accumulation(s, c, out, "gradient_accumulation_steps")
    mp = c.kw.get("mixed_precision")
    if mp is None:
        return
    v = s.value(mp)
    if v in ("bf16", "fp16"):
        out.autocasts.append(s.found(f"amp-{v}", c, f"{c.name}(mixed_precision={v!r})"))
    elif v is UNKNOWN:
        out.defer("autocast", c, f"mixed_precision={s.code(mp)} is not decidable")


def _trainer(s: Scanner, c: Candidate, out: Outcome) -> None:
    """Lightning's Trainer / Fabric: `precision=`, `strategy=`, `accumulate_grad_batches=`. A trainer given the model it
    trains (`model=`, or first with `args=`: transformers' and TRL's) is recorded with it."""
    kw = c.kw
    decide_accumulation(s, c, out, "accumulate_grad_batches")
    model = trained_model(c.call)
    if model is not None:
        out.trainers.append(s.found(c.last, c, f"{c.name}(model={model}, ...)", model))
    if "precision" in kw:
        v = s.value(kw["precision"])
        p = str(v) if type(v) in (int, str) else None
        if p in ("bf16", "bf16-mixed"):
            out.autocasts.append(s.found("amp-bf16", c, f"{c.name}(precision={v!r})"))
        elif p in ("16", "16-mixed"):
            out.autocasts.append(s.found("amp-fp16", c, f"{c.name}(precision={v!r})"))
        elif p in ("bf16-true", "16-true"):
            out.casts.append(s.found("bf16" if p.startswith("bf") else "fp16", c, f"{c.name}(precision={v!r})"))
        elif v is UNKNOWN:
            out.defer("autocast", c, f"precision={s.code(kw['precision'])} is not decidable")
    if "strategy" in kw:
        v = s.value(kw["strategy"])
        if isinstance(v, str):
            kind = "fsdp" if v.startswith("fsdp") else "ddp" if v.startswith("ddp") else None
            if kind is not None:
                out.distributed.append(s.found(kind, c, f"{c.name}(strategy={v!r})"))


def _compile(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`torch.compile(model, ...)` (not Python's `compile(source, ...)`) or `model.compile(...)`."""
    func = c.call.func
    recv = func.value if type(func) is cst.Attribute else None
    if recv is not None and s.qualify(dotted(recv)) != "torch":  # a module's own: `model.compile()`
        target = _module_receiver(s, c, recv)
        if target is not None:
            out.compiles.append(s.found(True, c, f"{s.code(recv, 30)}.compile()", target or None))
        return
    if recv is None and c.qual != "torch.compile":
        return
    arg = c.kw.get("model", c.pos[0] if c.pos else None)
    # The compiled variable: the argument's (`torch.compile(model)`), else the one assigned
    # (`model = torch.compile(Net())`).
    target = (s.target_of(arg, c.cls) if arg is not None else None) or s.spine_target.get(c.node)
    shown = f"{s.code(func)}({s.code(arg, 30) if arg is not None else ''})"
    out.compiles.append(s.found(True, c, shown, target))


# torch.backends.cudnn's flags that change a convolution's workspace (vramlint.memory.cudnn), and
# the value that does: -> what the scan reports.
CUDNN_FLAGS = {"torch.backends.cudnn.benchmark": (True, "benchmark"), "torch.backends.cudnn.enabled": (False, "disabled")}


def _cudnn(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`torch.backends.cudnn.benchmark = True`, `torch.backends.cudnn.enabled = False` (also through
    `from torch.backends import cudnn`): the value every assignment of that attribute name in the
    file gives."""
    flag = CUDNN_FLAGS.get(c.qual)
    if flag is None:
        return
    value = s.value(c.node)
    if value is flag[0] and not any(f.value == flag[1] for f in out.convolutions):
        out.convolutions.append(s.found(flag[1], c, f"{s.code(c.node)} = {value}"))


DECIDERS: dict[str, Decider] = {
    "autocast": _autocast, "scaler": _scaler, "dataloader": _dataloader, "distributed": _distributed,
    "checkpoint": _checkpoint, "ckpt_method": _checkpoint_method, "cast": _cast,
    "from_pretrained": _from_pretrained, "default_dtype": _default_dtype, "accelerator": _accelerator,
    "trainer": _trainer, "compile": _compile, "cudnn": _cudnn,
}

HANDLER = TrainingSetupHandler(
    name="torch",
    triggers=TRIGGERS,
    deciders=DECIDERS,
    calls=_calls,
    methods=_methods,
    optimizers=OPTIMIZER_NAMES,
    chain_methods=CHAIN_METHODS,
    references=dict.fromkeys(CHECKPOINT_NAMES, "checkpoint") | {"benchmark": "cudnn", "enabled": "cudnn"},
    unshadowed=frozenset(("cast", "ckpt_method")),  # method calls: `x.half()` is not the file's `half`
)
