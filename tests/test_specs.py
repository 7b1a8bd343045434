"""Every torch.nn layer spec is complete, and its forward rule gives torch's output shapes.

A spec is complete when it has a forward rule and declares what autograd keeps when it runs
(`forward_rule(..., saves=...)` in its family file: an op the memory model has a rule for, or
declares assumed; or COMPOSITE / RAISES), or when it is an abstract base torch never calls. The
list of layers comes from real torch (`torch.nn.modules.__all__`), so a layer torch adds fails
here until the catalog has it or says why not (tests/test_enumeration.py).

The shapes are compared on generated cases (tests/support/layer_cases.py): each layer built from
torch's own signature with simple arguments, called on inputs of rank 0 to 5, with every way to
pass its targets or indices; wherever real torch returns, vramlint must give the same shapes, and
every layer must have at least one case torch accepts.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from pathlib import Path
from typing import Any

import pytest

import tests.test_memory_saved
import vramlint
from tests.support.layer_cases import (
    NOT_CALLED,
    SHAPES,
    argument_variants,
    constructor,
    forward_params,
    torch_class,
)
from vramlint.analysis.api import get_loader, search_paths
from vramlint.engine.values import MISSING, Instance, Unknown
from vramlint.frontends.torch import catalog
from vramlint.frontends.torch.catalog import CATALOG, COMPOSITE, FORWARD, RAISES, SAVES
from vramlint.frontends.torch.functional import FUNCTIONS
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.memory import autograd_rules

torch = pytest.importorskip("torch")

for _family in pkgutil.iter_modules(catalog.__path__):  # each family file registers its specs and rules
    importlib.import_module(f"{catalog.__name__}.{_family.name}")

def _is_abstract_in_torch(cls: type) -> bool:
    """torch never runs this class's own forward: Module's `_forward_unimplemented`, or one that
    calls `_check_input_dim`, defined by the subclasses only (_BatchNorm, _InstanceNorm)."""
    if cls.forward is torch.nn.Module.forward:  # type: ignore[comparison-overlap]
        return True
    check = getattr(cls, "_check_input_dim", None)
    if check is None:
        return False
    try:
        check(None, None)
    except NotImplementedError:
        return True
    except Exception:  # a subclass's check, failing on None
        return False
    return False


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_spec_has_a_forward_rule_and_says_what_autograd_keeps(name: str) -> None:
    spec = CATALOG[name]
    cls = torch_class(torch, spec)
    if spec.abstract:
        assert _is_abstract_in_torch(cls), f"nn.{name} is declared abstract but torch's has a forward"
        assert name not in FORWARD, f"abstract nn.{name} has a forward rule"
        return
    assert name in FORWARD, f"nn.{name} has no forward rule"
    saves = SAVES.get(name)
    assert saves is not None, f"nn.{name} does not say what autograd keeps"
    assert not _is_abstract_in_torch(cls) or saves == RAISES, f"torch's nn.{name} has no forward"
    if saves in (COMPOSITE, RAISES):
        assert name not in autograd_rules.MODULE_OPS
        return
    # The op must be a decision of the memory model (a rule, a view, or declared assumed), and the
    # tape must find it from a call of the layer.
    assert saves in autograd_rules.RULES or saves in autograd_rules.VIEWS, \
        f"nn.{name} keeps what op {saves!r} keeps, which the memory model does not know"
    layer = Instance.__new__(Instance)
    layer.cls = type("Cls", (), {"name": name})()  # type: ignore[assignment]
    layer.attrs = {}
    assert autograd_rules.canonical(f"nn.{name}", layer, {})[0] == saves


def test_the_assumed_ops_are_named_by_a_layer() -> None:
    """The memory model's declared-assumed ops are those some layer or function names: none is stale."""
    named = set(SAVES.values()) | {autograd_rules.canonical(f"torch.nn.functional.{n}", None, {})[0]
                                   for n in FUNCTIONS}
    assert autograd_rules.ASSUMED <= named, sorted(autograd_rules.ASSUMED - named)


# ---------------------------------------------------------------------- shapes against torch
def _shapes(v: Any) -> Any:
    """The shapes of an output: a tuple of ints for a tensor, nested for tuples (RNNs, attention)."""
    if isinstance(v, (tuple, list)):
        return tuple(_shapes(e) for e in v)
    if isinstance(v, torch.Tensor):
        return tuple(v.shape)
    if isinstance(v, TensorValue):
        return tuple(v.shape) if isinstance(v.shape, tuple) else v.shape
    return v


# The inputs: every shape in float32 (most layers) and int64 (embeddings' indices).
INPUTS = [(shape, dtype) for shape in SHAPES for dtype in ("float32", "int64")]


def _cases(name: str) -> list[tuple[str, list[str]]]:
    """Each case: the input it is about (text) and the forward's arguments (texts)."""
    params = forward_params(torch, name)
    return [(f"{dtype}{list(shape)}", args) for i, (shape, dtype) in enumerate(INPUTS)
            for args in argument_variants(params, f"x{i}", shape)]


def _torch_results(name: str, ctor: str | None = None) -> list[Any]:
    """Per case, torch's output shapes, or None where torch raised (the layer built by `ctor`,
    its generated constructor by default)."""
    torch.manual_seed(0)
    ns: dict[str, Any] = {"torch": torch, "nn": torch.nn}
    out: list[Any] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod in ("torch.nn.utils.parametrize", "torch.nn.utils.parametrizations"):
            importlib.import_module(mod)
        layer = eval(ctor or constructor(torch, name), ns)
        for i, (shape, dtype) in enumerate(INPUTS):
            ns[f"x{i}"] = torch.zeros(shape, dtype=getattr(torch, dtype))
        for _, args in _cases(name):
            try:
                out.append(_shapes(layer(*[eval(a, ns) for a in args])))
            except Exception:
                out.append(None)
    return out


def _vramlint_results(tmp_path: Path, name: str, ctor: str | None = None) -> list[Any]:
    lines = ["import torch", "import torch.nn as nn", "import torch.nn.utils.parametrize",
             "import torch.nn.utils.parametrizations", f"layer = {ctor or constructor(torch, name)}"]
    lines += [f"x{i} = torch.zeros({shape}, dtype=torch.{dtype})" for i, (shape, dtype) in enumerate(INPUTS)]
    cases = _cases(name)
    lines += [f"y{j} = layer({', '.join(args)})" for j, (_, args) in enumerate(cases)]
    path = tmp_path / f"{name}.py"
    mod, _, _ = get_loader(search_paths(vramlint.Settings())).load_main(str(path), "\n".join(lines) + "\n",
                                                                        f"specs_{name}")
    return [mod.ns.get(f"y{j}", MISSING) for j in range(len(cases))]


@pytest.mark.parametrize("name", sorted(n for n in FORWARD if SAVES[n] != RAISES and n not in NOT_CALLED))
def test_forward_rule_gives_torchs_output_shapes(name: str, tmp_path: Path) -> None:
    assert_torchs_output_shapes(name, tmp_path)


def assert_torchs_output_shapes(name: str, tmp_path: Path, ctor: str | None = None) -> None:
    """nn.`name` built by `ctor` (its generated constructor by default) gives torch's output
    shapes wherever torch returns."""
    expected = _torch_results(name, ctor)
    got = _vramlint_results(tmp_path, name, ctor)
    cases = _cases(name)
    compared, problems = 0, []
    for (given, args), want, value in zip(cases, expected, got, strict=True):
        if want is None:
            continue
        compared += 1
        shown = _shapes(value)
        if shown != want:
            reason = value.reason if isinstance(value, Unknown) else ""
            problems.append(f"{ctor or name}({', '.join(args)}) on {given}: torch {want}, vramlint {shown!r} {reason}")
    assert compared, f"no generated case of {ctor or name} runs on torch: give its constructor or arguments"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(n for n in FORWARD if SAVES[n] == RAISES))
def test_a_container_without_forward_raises_as_torch_does(name: str, tmp_path: Path) -> None:
    with pytest.raises((NotImplementedError, RuntimeError)):
        torch_class(torch, CATALOG[name])()(torch.zeros(2))
    lines = ["import torch", "import torch.nn as nn", f"y = nn.{name}()(torch.zeros(2))"]
    mod, _, _ = get_loader(search_paths(vramlint.Settings())).load_main(
        str(tmp_path / "c.py"), "\n".join(lines) + "\n", f"specs_raise_{name}")
    assert "y" not in mod.ns


PARAMETRIZED = """
import torch
import torch.nn as nn
from torch.nn.utils import parametrizations as P

norm = P.weight_norm(nn.Linear(4, 3))
spectral = P.spectral_norm(nn.Conv2d(4, 2, 3))
ortho = P.orthogonal(nn.Linear(5, 5))
shapes = [tuple(m.parametrizations.weight().shape) for m in (norm, spectral, ortho)]
"""


def test_a_parametrization_list_gives_the_parametrized_weight(tmp_path: Path) -> None:
    """`layer.parametrizations.weight()` (ParametrizationList's forward) is the weight torch computes."""
    ns: dict[str, Any] = {}
    exec(compile(PARAMETRIZED, "<parametrized>", "exec"), ns)
    mod, _, _ = get_loader(search_paths(vramlint.Settings())).load_main(
        str(tmp_path / "p.py"), PARAMETRIZED, "specs_parametrized")
    assert mod.ns["shapes"] == ns["shapes"] == [(3, 4), (2, 4, 3, 3), (5, 5)]


# ---------------------------------------------------------------------- what autograd keeps
# The layers whose `saves` was newly declared (before, their op was assumed to keep its inputs),
# each in a small model, against what torch keeps (tests/test_memory_saved.py's truth).
SAVED_CASES = {
    "ZeroPad1d": "nn.Conv1d(3, 4, 3), nn.ZeroPad1d(2), nn.Flatten(), nn.Linear(4 * 10, 10)",
    "CircularPad2d": "nn.Conv2d(3, 4, 3), nn.CircularPad2d(1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)",
    "PixelUnshuffle": "nn.Conv2d(3, 4, 3, padding=1), nn.PixelUnshuffle(2), nn.Flatten(), nn.Linear(4 * 4 * 16, 10)",
    "ReplicationPad1d": "nn.Conv1d(3, 4, 3), nn.ReplicationPad1d(2), nn.Flatten(), nn.Linear(4 * 10, 10)",
    "ReflectionPad3d": "nn.Conv3d(3, 4, 1), nn.ReflectionPad3d(1), nn.Flatten(), nn.Linear(4 * 6 * 6 * 6, 10)",
    "FractionalMaxPool2d": "nn.Conv2d(3, 4, 3, padding=1), nn.FractionalMaxPool2d(2, output_size=4), nn.Flatten(), "
                           "nn.Linear(4 * 4 * 4, 10)",
}
SAVED_INPUTS = {"ZeroPad1d": "torch.randn(4, 3, 8)", "ReplicationPad1d": "torch.randn(4, 3, 8)",
                "ReflectionPad3d": "torch.randn(2, 3, 4, 4, 4)"}


def _assert_saved_as_torch(text: str, tmp_path: Path) -> None:
    """vramlint's activations for `text` (defines `model` and `x`) are what torch keeps, and no
    op of it is assumed."""
    model, inputs = tests.test_memory_saved.build_torch(text)
    saved, _ = tests.test_memory_saved.torch_saved(model, inputs, tests.test_memory_saved.vramlint_loss)
    est = tests.test_memory_saved.vramlint_estimate(text, tmp_path / "case.py")
    assert not est.unmodelled_ops, est.unmodelled_ops
    assert est.activations == sum(tests.test_memory_saved.rounded(s.nbytes) for s in saved), "\n".join(map(str, saved))


@pytest.mark.parametrize("name", sorted(SAVED_CASES))
def test_newly_declared_layers_keep_what_torch_keeps(name: str, tmp_path: Path) -> None:
    text = tests.test_memory_saved.HEADER + (f"model = nn.Sequential({SAVED_CASES[name]})\n"
                     f"x = {SAVED_INPUTS.get(name, 'torch.randn(4, 3, 8, 8)')}\nout = model(x)\n")
    _assert_saved_as_torch(text, tmp_path)


def test_max_unpool_keeps_its_indices(tmp_path: Path) -> None:
    """MaxUnpool's backward gathers the gradient at the indices: it keeps them, not its input."""
    text = tests.test_memory_saved.HEADER + """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        y, idx = self.pool(self.conv(x))
        return self.fc(self.unpool(y, idx).flatten(1))


model = Net()
x = torch.randn(4, 3, 8, 8)
out = model(x)
"""
    _assert_saved_as_torch(text, tmp_path)


def test_a_subclass_calling_the_layers_forward_keeps_what_the_layer_keeps(tmp_path: Path) -> None:
    """`class MyConv(nn.Conv2d)` whose forward calls `super().forward(x)` is a convolution for
    autograd, not an op of its own name assumed to keep its inputs."""
    _assert_saved_as_torch(tests.test_memory_saved.HEADER + """\
class MyConv(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 3, 1)
        self.conv = MyConv(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(self.conv(self.stem(x)).flatten(1))


model = Net()
x = torch.randn(4, 3, 8, 8)
out = model(x)
""", tmp_path)
