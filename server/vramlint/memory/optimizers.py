"""Optimizers: the state they keep per parameter and the temporaries of one `step()`.

State is counted in copies of the parameter (same dtype and shape: `torch.zeros_like(p)`), as
PyTorch allocates it; the step counters are CPU tensors and do not count. Temporaries follow the
default `foreach` implementations on CUDA (torch/optim/*.py `_multi_tensor_*`): Adam's
`_foreach_sqrt(exp_avg_sqs)` makes one parameter-sized copy for every parameter at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Per parameter tensor: (numel, bytes) or (numel, bytes, shape); Adafactor's state needs the shape.
Params = Sequence[tuple[Any, ...]]


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer, defined once: its key (the `optimizer` setting's value, `--optimizer`, the
    editor's `vramlint.optimizer` choice: package.json's enum is tested against OPTIMIZERS), what
    its state is, and how much memory state and step take. Frontends map their own class names
    to the key (frontends/*/training_setup.py)."""

    name: str
    description: str  # what the state is: the "optimizer state" row of `vramlint explain`
    summary: str  # the editor's description of the choice (package.json's enumDescriptions)
    state: Callable[[Params], list[int]]  # bytes of each state tensor
    step_temp: Callable[[Params], list[int]]  # bytes of each temporary alive at once in step()


def _copies(n: int) -> Callable[[Params], list[int]]:
    return lambda ps: [p[1] for p in ps for _ in range(n)]


def _none(ps: Params) -> list[int]:
    return []


def _largest(ps: Params) -> list[int]:
    return [max((p[1] for p in ps), default=0)]


def _adam8bit_state(ps: Params) -> list[int]:
    # bitsandbytes: two uint8 states plus one float32 absmax per 256-element block each;
    # tensors under 4,096 elements keep 32-bit states.
    out = []
    for p in ps:
        n = p[0]
        if n < 4096:
            out += [n * 4, n * 4]
        else:
            out += [n, n, -(-n // 256) * 4, -(-n // 256) * 4]
    return out


def _lion8bit_state(ps: Params) -> list[int]:
    # bitsandbytes optim/optimizer.py Optimizer1State.init_state: one uint8 state plus a float32
    # absmax per 256-element block; tensors under 4,096 elements (min_8bit_size) keep a 32-bit state.
    return [p[0] * 4 if p[0] < 4096 else p[0] + -(-p[0] // 256) * 4 for p in ps]


def _adafactor_state(ps: Params) -> list[int]:
    """torch.optim.Adafactor: no first moment; for a parameter of 2+ dims a factored second
    moment, row_var (shape[:-1] + (1,)) and col_var (shape[:-2] + (1, shape[-1])); for a vector
    a full `variance`; in the parameter's dtype."""
    out = []
    for p in ps:
        n, b = p[0], p[1]
        shape = tuple(p[2]) if len(p) > 2 else (n,)
        itemsize = b // n if n else 0
        if len(shape) > 1 and shape[-1] and shape[-2]:
            out += [n // shape[-1] * itemsize, n // shape[-2] * itemsize]
        else:
            out.append(b)
    return out


SPECS = (
    OptimizerSpec("sgd", "SGD: no state", "SGD without momentum: no state.", _none, _none),
    OptimizerSpec("sgd-momentum", "SGD with momentum: one momentum buffer",
                  "SGD with momentum: one buffer per parameter.", _copies(1), _none),
    OptimizerSpec("adam", "Adam: exp_avg and exp_avg_sq", "Adam: two moments per parameter.", _copies(2), _copies(1)),
    OptimizerSpec("adamw", "AdamW: exp_avg and exp_avg_sq", "AdamW: two moments per parameter.",
                  _copies(2), _copies(1)),
    OptimizerSpec("amsgrad", "Adam(amsgrad=True): exp_avg, exp_avg_sq, max_exp_avg_sq",
                  "Adam with amsgrad: three buffers per parameter.", _copies(3), _copies(1)),
    # _multi_tensor_adagrad: std = _foreach_sqrt(state_sums) and numerator = _foreach_mul(grads, -clr),
    # both parameter-sized and alive together at _foreach_addcdiv_.
    OptimizerSpec("adagrad", "Adagrad: the sum of squares", "Adagrad: one buffer per parameter.",
                  _copies(1), _copies(2)),
    OptimizerSpec("rmsprop", "RMSprop: square_avg", "RMSprop: one buffer per parameter.", _copies(1), _copies(1)),
    # _multi_tensor_adafactor: var_estimates (row_var @ col_var for matrices, variance.clone() for
    # vectors) is parameter-sized for every parameter at once; the previous (dtype, ndim) group's
    # list stays referenced (`updates`) until the next one is built, so all groups add up.
    OptimizerSpec("adafactor", "Adafactor: factored second moments", "Adafactor: factored second moments.",
                  _adafactor_state, _copies(1)),
    OptimizerSpec("adam8bit", "8-bit Adam (bitsandbytes): two 8-bit states + block scales",
                  "8-bit Adam (bitsandbytes): two 8-bit moments per parameter.", _adam8bit_state, _none),
    OptimizerSpec("lion", "Lion: exp_avg", "Lion: one momentum buffer per parameter.", _copies(1), _largest),
    OptimizerSpec("lion8bit", "8-bit Lion (bitsandbytes): one 8-bit state + block scales",
                  "8-bit Lion (bitsandbytes): one 8-bit momentum per parameter.", _lion8bit_state, _none),
)
# In the order the editor lists them.
OPTIMIZERS: dict[str, OptimizerSpec] = {spec.name: spec for spec in SPECS}
