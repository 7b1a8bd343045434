"""Optimizers: the state they keep per parameter and the temporaries of one `step()`.

State is counted in copies of the parameter (same dtype and shape: `torch.zeros_like(p)`), as
PyTorch allocates it; the step counters are CPU tensors and do not count. Temporaries follow the
default `foreach` implementations on CUDA (torch/optim/*.py `_multi_tensor_*`): Adam's
`_foreach_sqrt(exp_avg_sqs)` makes one parameter-sized copy for every parameter at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# (numel, bytes) per parameter tensor.
Params = list[tuple[int, int]]


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    description: str
    state: Callable[[Params], list[int]]  # bytes of each state tensor
    step_temp: Callable[[Params], list[int]]  # bytes of each temporary alive at once in step()


def _copies(n: int) -> Callable[[Params], list[int]]:
    return lambda ps: [b for _, b in ps for _ in range(n)]


def _none(ps: Params) -> list[int]:
    return []


def _largest(ps: Params) -> list[int]:
    return [max((b for _, b in ps), default=0)]


def _adam8bit_state(ps: Params) -> list[int]:
    # bitsandbytes: two uint8 states plus one float32 absmax per 256-element block each;
    # tensors under 4,096 elements keep 32-bit states.
    out = []
    for n, _ in ps:
        if n < 4096:
            out += [n * 4, n * 4]
        else:
            out += [n, n, -(-n // 256) * 4, -(-n // 256) * 4]
    return out


def _adafactor_state(ps: Params) -> list[int]:
    # torch.optim.Adafactor: factored second moment (a row and a column vector) for matrices,
    # a full one for vectors; no first moment by default.
    out = []
    for n, b in ps:
        out.append(b if n < 2 else int((2 * n) ** 0.5) * (b // max(n, 1)) * 2)
    return out


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("sgd", "SGD: no state", _none, _none),
    "sgd-momentum": OptimizerSpec("sgd-momentum", "SGD with momentum: one momentum buffer", _copies(1), _none),
    "adam": OptimizerSpec("adam", "Adam: exp_avg and exp_avg_sq", _copies(2), _copies(1)),
    "adamw": OptimizerSpec("adamw", "AdamW: exp_avg and exp_avg_sq", _copies(2), _copies(1)),
    "amsgrad": OptimizerSpec("amsgrad", "Adam(amsgrad=True): exp_avg, exp_avg_sq, max_exp_avg_sq", _copies(3), _copies(1)),
    "adagrad": OptimizerSpec("adagrad", "Adagrad: the sum of squares", _copies(1), _copies(1)),
    "rmsprop": OptimizerSpec("rmsprop", "RMSprop: square_avg", _copies(1), _copies(1)),
    "adafactor": OptimizerSpec("adafactor", "Adafactor: factored second moments", _adafactor_state, _largest),
    "adam8bit": OptimizerSpec("adam8bit", "8-bit Adam (bitsandbytes): two 8-bit states + block scales",
                              _adam8bit_state, _none),
    "lion": OptimizerSpec("lion", "Lion: exp_avg", _copies(1), _largest),
}
