"""What Keras training code states, for the training-setup scan (vramlint.frontends.training_setup):

- `model.compile(optimizer="adam" | keras.optimizers.AdamW(...))`: the optimizer of `model`
  (Keras's default is RMSprop when compile() names none);
- `model.fit(x, y, batch_size=64)`: the batch size; fit's default is 32; `dataset.batch(64)`
  (tf.data) gives it when fit is fed a dataset;
- `keras.mixed_precision.set_global_policy("mixed_float16")` (or `keras.config.set_dtype_policy`):
  mixed precision (autocast-like: float32 weights, float16 compute), "float16"/"bfloat16" a cast.
"""

from __future__ import annotations

from typing import cast

import libcst as cst

from vramlint.frontends.training_setup import (
    Candidate,
    Decider,
    Outcome,
    Scanner,
    TrainingSetupHandler,
    dotted,
    split_args,
)

# keras.optimizers classes -> vramlint.memory.optimizers.OPTIMIZERS keys; compile()'s strings are
# their lower-case names. Nadam, Adamax, Adadelta and Ftrl keep two slots per weight, as Adam does.
KERAS_OPTIMIZER_CLASSES = {
    "Adam": "adam", "AdamW": "adamw", "SGD": "sgd", "RMSprop": "rmsprop", "Adagrad": "adagrad",
    "Adafactor": "adafactor", "Lion": "lion", "Nadam": "adam", "Adamax": "adam", "Adadelta": "adam", "Ftrl": "adam",
}
KERAS_OPTIMIZERS = {name.lower(): key for name, key in KERAS_OPTIMIZER_CLASSES.items()}
KERAS_DEFAULT_OPTIMIZER = "rmsprop"  # keras.Model.compile(optimizer="rmsprop")
KERAS_DEFAULT_BATCH = 32  # keras.Model.fit(batch_size=None)
POLICIES = {"mixed_float16": ("autocast", "amp-fp16"), "mixed_bfloat16": ("autocast", "amp-bf16"),
            "float16": ("cast", "fp16"), "bfloat16": ("cast", "bf16")}
# A file the scan walks contains one of these (an optimizer object alone, unused by compile(), still names its class).
TRIGGERS = ("compile", "fit", "set_global_policy", "set_dtype_policy", ".batch(", *KERAS_OPTIMIZER_CLASSES)
# The memory estimate's note for Keras models (`vramlint explain`, reports).
BACKEND_NOTE = (
    "Keras: the estimate is what a training step needs, with the memory rules of PyTorch's CUDA kernels (Keras's "
    "torch backend; TensorFlow's and JAX's kernels keep similar tensors, their workspaces differ). TensorFlow "
    "reserves nearly all of the GPU's memory when it starts (nvidia-smi shows the card full) unless memory growth "
    "is enabled (tf.config.experimental.set_memory_growth(gpu, True)): what the process grabs is not what the "
    "model needs")


def _methods(s: Scanner, node: cst.Call, method: str) -> str | None:
    if method in ("compile", "fit", "batch") and dotted(cast(cst.Attribute, node.func).value) not in ("torch", "re"):
        return f"keras_{method}"
    return None


def _calls(s: Scanner, node: cst.Call, last: str) -> str | None:
    return "keras_policy" if last in ("set_global_policy", "set_dtype_policy") else None


def _receiver(c: Candidate) -> cst.BaseExpression:
    return cast(cst.Attribute, c.call.func).value


def compile_optimizer(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`X.compile(optimizer=...)`: a string, or an optimizer object (its class decides)."""
    node = c.kw.get("optimizer", c.pos[0] if c.pos else None)
    recv = s.code(_receiver(c))
    target = s.recv_target(_receiver(c), c.cls)
    if node is None:
        out.optimizers.append(s.found(KERAS_DEFAULT_OPTIMIZER, c, f"{recv}.compile(...)", target,
                                      why="Keras's default optimizer"))
        return
    if type(node) is cst.Call:
        name = s.code(node.func).rsplit(".", 1)[-1]
        value = s.optimizer_class(name)  # any handler's class: a torch-backend optimizer too
        pos, kw, _ = split_args(node)
        mom = kw.get("momentum", pos[1] if len(pos) > 1 else None)  # keras SGD(learning_rate, momentum)
        if value == "sgd" and mom is not None and not (type(m := s.value(mom)) in (int, float) and m == 0):
            value = "sgd-momentum"  # a velocity per parameter, as torch's
        elif value in ("adam", "adamw") and "amsgrad" in kw and s.value(kw["amsgrad"]) is True:
            value = "amsgrad"
        if value is not None:
            out.optimizers.append(s.found(value, c, f"{recv}.compile(optimizer={name}(...))", target))
        return
    v = s.value(node)
    if isinstance(v, str) and v.lower() in KERAS_OPTIMIZERS:
        out.optimizers.append(s.found(KERAS_OPTIMIZERS[v.lower()], c, f"{recv}.compile(optimizer={v!r})", target))
    elif isinstance(v, str):
        out.defer("optimizer", c, f"optimizer={v!r} is not an optimizer vramlint models")
    elif type(node) is not cst.Name:  # a variable holding an optimizer object: its own call was seen
        out.defer("optimizer", c, f"optimizer={s.code(node)} is not decidable")


def fit_batch(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`X.fit(x, y, batch_size=N)`; without batch_size, Keras's default (unless a dataset is batched)."""
    recv = s.code(_receiver(c))
    node = c.kw.get("batch_size", c.pos[2] if len(c.pos) > 2 else None)
    if node is None:
        out.batches.append((3, s.found(KERAS_DEFAULT_BATCH, c, f"{recv}.fit(...)", why="Keras's default batch size")))
        return
    n = s.value(node)
    if type(n) is int and n > 0:
        out.batches.append((0, s.found(n, c, f"{recv}.fit(..., batch_size={s.code(node, 30)})",
                                       why=s.why(node, n))))
    elif n is None:
        out.batches.append((3, s.found(KERAS_DEFAULT_BATCH, c, f"{recv}.fit(..., batch_size=None)",
                                       why="Keras's default batch size")))
    else:
        out.defer("batch_size", c, f"batch_size={s.code(node)} is not decidable")


def dataset_batch(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`dataset.batch(N)` (tf.data): the batch a fit on that dataset trains with."""
    n = s.value(c.pos[0]) if c.pos else None
    if type(n) is int and n > 0:
        out.batches.append((1, s.found(n, c, f"{s.code(_receiver(c), 30)}.batch({s.code(c.pos[0], 20)})")))


def dtype_policy(s: Scanner, c: Candidate, out: Outcome) -> None:
    """`set_global_policy("mixed_float16")`, also with a `Policy("...")` argument."""
    node = c.pos[0] if c.pos else None
    if type(node) is cst.Call:  # mixed_precision.Policy("mixed_float16")
        args = [a.value for a in node.args]
        node = args[0] if args else None
    v = s.value(node) if node is not None else None
    if not isinstance(v, str):
        if node is not None:
            out.defer("autocast", c, f"policy {s.code(node)} is not decidable")
        return
    kind = POLICIES.get(v)
    if kind is None:
        return
    found = s.found(kind[1], c, f"{c.name}({v!r})")
    (out.autocasts if kind[0] == "autocast" else out.casts).append(found)


DECIDERS: dict[str, Decider] = {
    "keras_compile": compile_optimizer, "keras_fit": fit_batch, "keras_batch": dataset_batch,
    "keras_policy": dtype_policy,
}

HANDLER = TrainingSetupHandler(
    name="keras",
    triggers=TRIGGERS,
    deciders=DECIDERS,
    calls=_calls,
    methods=_methods,
    optimizers=KERAS_OPTIMIZER_CLASSES,
    # compile()/fit()/policies count only in Keras code (`torch.compile`, sklearn's fit...)
    applies=lambda text: "keras" in text,
)
