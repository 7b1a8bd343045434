"""vramlint's optimizer model (vramlint.memory.optimizers) against real torch.optim on the CPU.

State: one forward/backward/step() of a small model (Embedding, Linear, LayerNorm, Conv2d; a frozen
parameter; fp32 and bf16), then the bytes of the tensors in `opt.state[p]` against `spec.state`.
The 0-d `step` counters are left out: for the default for-loop and foreach implementations
(capturable=False, fused=False) PyTorch keeps them on the CPU even when the parameters are on CUDA,
so they take no GPU memory.

Step temporaries: CUDA allocations cannot be measured here, so the second `step()` (state already
there) runs under a TorchDispatchMode that tracks every storage an aten op allocates and when it is
freed, with `foreach=True` (the CUDA default; on the CPU foreach runs the same Python code with
per-tensor kernels). The peak of those live bytes is what `spec.step_temp` models. This sees more than
wrapping `torch._foreach_*`: Adafactor's temporaries come from `row_var @ col_var` and `.clone()`, and
a sum over foreach outputs would also count temporaries that are freed before the next one exists.

bitsandbytes' 8-bit Adam and Lion are not in torch: their documented formulas are checked on
hand-computed examples.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from vramlint.memory.optimizers import OPTIMIZERS

torch = pytest.importorskip("torch")
nn = torch.nn
TorchDispatchMode = pytest.importorskip("torch.utils._python_dispatch").TorchDispatchMode
tree_leaves = pytest.importorskip("torch.utils._pytree").tree_leaves
StorageWeakRef = pytest.importorskip("torch.multiprocessing.reductions").StorageWeakRef

# vramlint name -> torch.optim constructor, defaults otherwise (as `--optimizer NAME` assumes).
TORCH_OPTIMIZERS: dict[str, Callable[..., Any]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, foreach=True),
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=True),
    "adam": lambda ps: torch.optim.Adam(ps, foreach=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, foreach=True),
    "amsgrad": lambda ps: torch.optim.Adam(ps, amsgrad=True, foreach=True),
    "adagrad": lambda ps: torch.optim.Adagrad(ps, foreach=True),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, foreach=True),
    "adafactor": lambda ps: torch.optim.Adafactor(ps, foreach=True),
}
NOT_IN_TORCH = {"adam8bit", "lion", "lion8bit"}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def test_every_optimizer_is_covered() -> None:
    assert set(OPTIMIZERS) == set(TORCH_OPTIMIZERS) | NOT_IN_TORCH


def test_every_optimizer_a_frontend_names_has_a_spec() -> None:
    """Frontends map their own names (classes, compile() strings, `optim=` values) to OPTIMIZERS'
    keys: each key they use is defined there, once."""
    from vramlint.frontends.keras import training_setup as keras_setup
    from vramlint.frontends.registry import training_setup_handlers
    from vramlint.frontends.transformers import training_setup as hf_setup

    used = {key for h in training_setup_handlers() for key in h.optimizers.values()}
    assert {"adam", "adamw", "sgd", "adam8bit", "lion"} <= used  # the tables are really read
    used |= {*hf_setup.HF_OPTIMIZERS.values(), hf_setup.HF_DEFAULT_OPTIMIZER,
             *keras_setup.KERAS_OPTIMIZERS.values(), keras_setup.KERAS_DEFAULT_OPTIMIZER}
    assert used - set(OPTIMIZERS) == set()
    for name, spec in OPTIMIZERS.items():
        assert spec.name == name and spec.description and spec.summary


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.emb.weight.requires_grad_(False)  # frozen: no gradient, so (lazily) no state
        self.fc = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.head = nn.Linear(64, 10)

    def forward(self, x: Any) -> Any:
        h = self.norm(self.fc(self.emb(x)))
        h = self.conv(h.reshape(-1, 2, 4, 4))
        return self.head(h.flatten(1))


class LiveBytes(TorchDispatchMode):
    """Peak bytes of the storages allocated by aten ops inside the mode and still alive (op granularity)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[Any, int, str]] = {}  # data_ptr -> (weak ref, bytes, op)
        self.current = 0
        self.peak = 0
        self.at_peak: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        for key in [k for k, (ref, _, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            # 0-d results are host scalars here (step counters, `p.norm().item()`), not GPU memory
            if not isinstance(t, torch.Tensor) or t.dim() == 0:
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if storage.nbytes() == 0 or key in inputs or key in self.live:  # in-place, view, empty
                continue
            self.live[key] = (StorageWeakRef(storage), storage.nbytes(), str(func))
            self.current += storage.nbytes()
        if self.current > self.peak:
            self.peak = self.current
            self.at_peak = sorted((op, n) for _, n, op in self.live.values())
        return out


@functools.cache
def trained(name: str, dtype: str) -> tuple[Any, Any, LiveBytes]:
    """The model, its optimizer after two steps, and the temporaries of the second step."""
    torch.manual_seed(0)
    model = Net().to(DTYPES[dtype])
    opt = TORCH_OPTIMIZERS[name](model.parameters())  # the usual idiom: frozen parameters included
    x = torch.randint(0, 50, (3,))
    mode = LiveBytes()
    for i in range(2):
        opt.zero_grad()
        model(x).float().square().mean().backward()
        if i == 0:
            opt.step()  # creates the state
        else:
            with mode:
                opt.step()
    return model, opt, mode


def trainable(model: Any) -> list[Any]:
    return [p for p in model.parameters() if p.requires_grad]


def params_of(model: Any) -> list[tuple[int, int, tuple[int, ...]]]:
    return [(p.numel(), p.numel() * p.element_size(), tuple(p.shape)) for p in trainable(model)]


def state_tensors(opt: Any, p: Any) -> dict[str, Any]:
    """The GPU-resident state of `p`: everything but the CPU step counter."""
    out = {}
    for key, value in opt.state[p].items():
        if key == "step":
            assert value.dim() == 0 and value.device.type == "cpu"
            continue
        out[key] = value
    return out


def state_bytes(opt: Any, params: list[Any]) -> int:
    return sum(t.numel() * t.element_size() for p in params for t in state_tensors(opt, p).values())


CASES = [(n, d) for n in TORCH_OPTIMIZERS for d in DTYPES]
IDS = [f"{n}-{d}" for n, d in CASES]


@pytest.mark.parametrize(("name", "dtype"), CASES, ids=IDS)
def test_state_matches_torch(name: str, dtype: str) -> None:
    model, opt, _ = trained(name, dtype)
    ps = trainable(model)
    if name != "adafactor":  # Adafactor's factored state: test_adafactor_state_from_shapes
        for p in ps:  # copies of the parameter: same shape, same dtype (bf16 state for a bf16 model)
            for key, t in state_tensors(opt, p).items():
                assert (t.shape, t.dtype) == (p.shape, p.dtype), key
    assert sum(OPTIMIZERS[name].state(params_of(model))) == state_bytes(opt, ps)


@pytest.mark.parametrize("name", [n for n in TORCH_OPTIMIZERS if n != "adagrad"])
def test_frozen_parameter_gets_no_state(name: str) -> None:
    model, opt, _ = trained(name, "fp32")
    assert model.emb.weight not in opt.state or state_tensors(opt, model.emb.weight) == {}


def test_adagrad_keeps_state_for_frozen_parameters() -> None:
    # Adagrad.__init__ fills state["sum"] for every parameter it is given, gradient or not: with
    # Adagrad(model.parameters()) a frozen parameter costs a copy of itself, which vramlint (state of
    # the trainable parameters only) does not count. Adagrad(p for p in ... if p.requires_grad) avoids it.
    model, opt, _ = trained("adagrad", "fp32")
    frozen = model.emb.weight
    assert list(state_tensors(opt, frozen)) == ["sum"]
    assert state_bytes(opt, [frozen]) == frozen.numel() * frozen.element_size()


def adafactor_state_from_shapes(p: Any) -> int:
    """torch.optim.Adafactor: row_var (shape[:-1] + (1,)) and col_var (shape[:-2] + (1, shape[-1]))
    for p.dim() > 1, a full `variance` otherwise; in the parameter's dtype."""
    if p.dim() > 1:
        return (p.numel() // p.shape[-1] + p.numel() // p.shape[-2]) * p.element_size()
    return p.numel() * p.element_size()


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_adafactor_state_from_shapes(dtype: str) -> None:
    model, opt, _ = trained("adafactor", dtype)
    for p in trainable(model):
        state = state_tensors(opt, p)
        assert set(state) == ({"row_var", "col_var"} if p.dim() > 1 else {"variance"})
        assert all(t.dtype == p.dtype for t in state.values())
        assert state_bytes(opt, [p]) == adafactor_state_from_shapes(p)


@pytest.mark.parametrize(("name", "dtype"), CASES, ids=IDS)
def test_step_temporaries_match_foreach(name: str, dtype: str) -> None:
    model, _, mode = trained(name, dtype)
    expected = sum(OPTIMIZERS[name].step_temp(params_of(model)))
    assert expected == mode.peak, f"live at the peak of step(): {mode.at_peak}"


def test_adam_temporaries_are_one_sqrt_per_parameter() -> None:
    # _multi_tensor_adam: exp_avg_sq_sqrt = torch._foreach_sqrt(exp_avg_sqs), all parameters at once
    model, _, mode = trained("adam", "fp32")
    assert mode.at_peak == sorted(("aten._foreach_sqrt.default", b) for _, b, _ in params_of(model))


def test_adagrad_temporaries_are_sqrt_and_numerator() -> None:
    # _multi_tensor_adagrad: std = _foreach_sqrt(state_sums), numerator = _foreach_mul(grads, minus_clr)
    model, _, mode = trained("adagrad", "fp32")
    sizes = [b for _, b, _ in params_of(model)]
    assert mode.at_peak == sorted([("aten._foreach_mul.ScalarList", b) for b in sizes]
                                  + [("aten._foreach_sqrt.default", b) for b in sizes])


def test_adam8bit_state_formula() -> None:
    # bitsandbytes Adam8bit: under 4,096 elements two float32 states whatever the parameter's dtype;
    # from 4,096 two uint8 states and a float32 absmax per 256-element block for each of them.
    params = [(100, 400), (100, 200), (4096, 8192), (5000, 20000)]
    assert OPTIMIZERS["adam8bit"].state(params) == [
        400, 400,
        400, 400,
        4096, 4096, 16 * 4, 16 * 4,
        5000, 5000, 20 * 4, 20 * 4,  # ceil(5000 / 256) = 20 blocks
    ]
    assert OPTIMIZERS["adam8bit"].step_temp(params) == []


def test_lion_state_formula() -> None:
    # Lion (lion-pytorch): one exp_avg, a copy of the parameter
    params = [(10, 40), (3, 6), (4096, 8192)]
    assert OPTIMIZERS["lion"].state(params) == [40, 6, 8192]
