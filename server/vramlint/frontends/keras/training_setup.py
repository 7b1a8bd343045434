"""What Keras training code states, read by the training-setup scan
(frontends/torch/training_setup.py calls these for the candidates it collects):

- `model.compile(optimizer="adam" | keras.optimizers.AdamW(...))`: the optimizer of `model`
  (Keras's default is RMSprop when compile() names none);
- `model.fit(x, y, batch_size=64)`: the batch size; fit's default is 32; `dataset.batch(64)`
  (tf.data) gives it when fit is fed a dataset;
- `keras.mixed_precision.set_global_policy("mixed_float16")` (or `keras.config.set_dtype_policy`):
  mixed precision (autocast-like: float32 weights, float16 compute), "float16"/"bfloat16" a cast.
"""

from __future__ import annotations

from typing import Any

import libcst as cst

# Keras optimizer names (compile's strings and keras.optimizers classes) -> vramlint.memory.optimizers.
# Nadam, Adamax, Adadelta and Ftrl keep two slots per weight, as Adam does.
KERAS_OPTIMIZERS = {
    "adam": "adam", "adamw": "adamw", "sgd": "sgd", "rmsprop": "rmsprop", "adagrad": "adagrad",
    "adafactor": "adafactor", "lion": "lion", "nadam": "adam", "adamax": "adam", "adadelta": "adam", "ftrl": "adam",
}
KERAS_OPTIMIZER_CLASSES = {"Nadam": "adam", "Adamax": "adam", "Adadelta": "adam", "Ftrl": "adam"}
KERAS_DEFAULT_OPTIMIZER = "rmsprop"  # keras.Model.compile(optimizer="rmsprop")
KERAS_DEFAULT_BATCH = 32  # keras.Model.fit(batch_size=None)
POLICIES = {"mixed_float16": ("autocast", "amp-fp16"), "mixed_bfloat16": ("autocast", "amp-bf16"),
            "float16": ("cast", "fp16"), "bfloat16": ("cast", "bf16")}
TRIGGERS = ("compile", "fit", "set_global_policy", "set_dtype_policy", ".batch(")
# The memory estimate's note for Keras models (`vramlint explain`, reports).
BACKEND_NOTE = (
    "Keras: the estimate is what a training step needs, with the memory rules of PyTorch's CUDA kernels (Keras's "
    "torch backend; TensorFlow's and JAX's kernels keep similar tensors, their workspaces differ). TensorFlow "
    "reserves nearly all of the GPU's memory when it starts (nvidia-smi shows the card full) unless memory growth "
    "is enabled (tf.config.experimental.set_memory_growth(gpu, True)): what the process grabs is not what the "
    "model needs")


def compile_optimizer(s: Any, c: Any, pos: list[cst.BaseExpression], kw: dict[str, cst.BaseExpression],
                      target: str | None, out: list[Any], defer: Any) -> None:
    """`X.compile(optimizer=...)`: a string, or an optimizer object (its class decides)."""
    node = kw.get("optimizer", pos[0] if pos else None)
    recv = s.code(c.call.func.value)
    if node is None:
        out.append(s.found(KERAS_DEFAULT_OPTIMIZER, c, f"{recv}.compile(...)", target,
                           why="Keras's default optimizer"))
        return
    if type(node) is cst.Call:
        name = s.code(node.func).rsplit(".", 1)[-1]
        value = _class_optimizer(name)
        if value is not None:
            out.append(s.found(value, c, f"{recv}.compile(optimizer={name}(...))", target))
        return
    v = s.value(node)
    if isinstance(v, str) and v.lower() in KERAS_OPTIMIZERS:
        out.append(s.found(KERAS_OPTIMIZERS[v.lower()], c, f"{recv}.compile(optimizer={v!r})", target))
    elif isinstance(v, str):
        defer("optimizer", c, f"optimizer={v!r} is not an optimizer vramlint models")
    elif type(node) is not cst.Name:  # a variable holding an optimizer object: its own call was seen
        defer("optimizer", c, f"optimizer={s.code(node)} is not decidable")


def _class_optimizer(name: str) -> str | None:
    from vramlint.frontends.torch.training_setup import OPTIMIZER_NAMES

    return OPTIMIZER_NAMES.get(name) or KERAS_OPTIMIZER_CLASSES.get(name)


def fit_batch(s: Any, c: Any, pos: list[cst.BaseExpression], kw: dict[str, cst.BaseExpression],
              out: list[tuple[int, Any]], defer: Any) -> None:
    """`X.fit(x, y, batch_size=N)`; without batch_size, Keras's default (unless a dataset is batched)."""
    recv = s.code(c.call.func.value)
    node = kw.get("batch_size", pos[2] if len(pos) > 2 else None)
    if node is None:
        out.append((3, s.found(KERAS_DEFAULT_BATCH, c, f"{recv}.fit(...)", why="Keras's default batch size")))
        return
    n = s.value(node)
    if type(n) is int and n > 0:
        out.append((0, s.found(n, c, f"{recv}.fit(..., batch_size={s.code(node, 30)})",
                               why="" if type(node) is cst.Integer else f"= {n}")))
    elif n is None:
        out.append((3, s.found(KERAS_DEFAULT_BATCH, c, f"{recv}.fit(..., batch_size=None)",
                               why="Keras's default batch size")))
    else:
        defer("batch_size", c, f"batch_size={s.code(node)} is not decidable")


def dataset_batch(s: Any, c: Any, pos: list[cst.BaseExpression], out: list[tuple[int, Any]]) -> None:
    """`dataset.batch(N)` (tf.data): the batch a fit on that dataset trains with."""
    n = s.value(pos[0]) if pos else None
    if type(n) is int and n > 0:
        out.append((1, s.found(n, c, f"{s.code(c.call.func.value, 30)}.batch({s.code(pos[0], 20)})")))


def dtype_policy(s: Any, c: Any, pos: list[cst.BaseExpression], autocasts: list[Any], casts: list[Any],
                 defer: Any) -> None:
    """`set_global_policy("mixed_float16")`, also with a `Policy("...")` argument."""
    node = pos[0] if pos else None
    if type(node) is cst.Call:  # mixed_precision.Policy("mixed_float16")
        args = [a.value for a in node.args]
        node = args[0] if args else None
    v = s.value(node) if node is not None else None
    if not isinstance(v, str):
        if node is not None:
            defer("autocast", c, f"policy {s.code(node)} is not decidable")
        return
    kind = POLICIES.get(v)
    if kind is None:
        return
    found = s.found(kind[1], c, f"{c.name}({v!r})")
    (autocasts if kind[0] == "autocast" else casts).append(found)
