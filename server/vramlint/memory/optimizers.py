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
    name: str
    description: str
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


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("sgd", "SGD: no state", _none, _none),
    "sgd-momentum": OptimizerSpec("sgd-momentum", "SGD with momentum: one momentum buffer", _copies(1), _none),
    "adam": OptimizerSpec("adam", "Adam: exp_avg and exp_avg_sq", _copies(2), _copies(1)),
    "adamw": OptimizerSpec("adamw", "AdamW: exp_avg and exp_avg_sq", _copies(2), _copies(1)),
    "amsgrad": OptimizerSpec("amsgrad", "Adam(amsgrad=True): exp_avg, exp_avg_sq, max_exp_avg_sq", _copies(3), _copies(1)),
    # _multi_tensor_adagrad: std = _foreach_sqrt(state_sums) and numerator = _foreach_mul(grads, -clr),
    # both parameter-sized and alive together at _foreach_addcdiv_.
    "adagrad": OptimizerSpec("adagrad", "Adagrad: the sum of squares", _copies(1), _copies(2)),
    "rmsprop": OptimizerSpec("rmsprop", "RMSprop: square_avg", _copies(1), _copies(1)),
    # _multi_tensor_adafactor: var_estimates (row_var @ col_var for matrices, variance.clone() for
    # vectors) is parameter-sized for every parameter at once; the previous (dtype, ndim) group's
    # list stays referenced (`updates`) until the next one is built, so all groups add up.
    "adafactor": OptimizerSpec("adafactor", "Adafactor: factored second moments", _adafactor_state, _copies(1)),
    "adam8bit": OptimizerSpec("adam8bit", "8-bit Adam (bitsandbytes): two 8-bit states + block scales",
                              _adam8bit_state, _none),
    "lion": OptimizerSpec("lion", "Lion: exp_avg", _copies(1), _largest),
}
