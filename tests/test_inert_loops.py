"""Weight-initialisation loops (`for m in self.modules(): ... nn.init...`) are recognised and not
run (engine/inert_loops.py), and a loop that could change anything the analysis computes runs as
before: what each model counts is what Python would build."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

import vramlint
from vramlint.engine.inert_loops import _function_shape, _shape

HEADER = "import math\nimport torch\nfrom torch import nn\n\n\n"


def count(tmp_path: Path, body: str, name: str = "Net") -> int | None:
    f = tmp_path / "net.py"
    f.write_text(HEADER + textwrap.dedent(body))
    models = {m.name: m for m in vramlint.analyze_file(str(f)).models}
    return models[name].params.total


def loop_shape(code: str) -> object:
    func = cst.parse_module(textwrap.dedent(code)).body[0]
    assert isinstance(func, cst.FunctionDef)
    loop = next(s for s in func.body.body if isinstance(s, cst.For))
    return _shape(loop, func)


# torchvision's EfficientNet (its Linear branch), RegNet's and Inception's loops, and the idioms
# of timm-style code.
SKIPPED = [
    """
    def __init__(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
    """,
    """
    def __init__(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
    """,
    """
    def __init__(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d) or isinstance(m, nn.Linear):
                stddev = float(m.stddev) if hasattr(m, "stddev") else 0.1
                torch.nn.init.trunc_normal_(m.weight, mean=0.0, std=stddev, a=-2, b=2)
    """,
]

# Each can change what is built or counted, or reads what the check cannot see through.
RUN = [
    # assigns an attribute (a new parameter)
    """
    def __init__(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.weight = nn.Parameter(torch.zeros(3))
    """,
    # calls a method of the module
    """
    def __init__(self):
        for m in self.modules():
            m.reset_parameters()
    """,
    # a temporary read after the loop
    """
    def __init__(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                width = m.out_features
        self.head = nn.Linear(width, 3)
    """,
    # leaves the loop early
    """
    def __init__(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                break
    """,
    # a tensor method, which the check does not resolve
    """
    def __init__(self):
        for m in self.modules():
            m.weight.data.normal_(0, 0.01)
    """,
    # the module as an operand: its class's `__len__` may be analysed code
    """
    def __init__(self):
        for m in self.modules():
            nn.init.normal_(m.weight, std=1 / len(m))
    """,
    # another iterable than a module's modules()
    """
    def __init__(self):
        for m in self.children():
            nn.init.zeros_(m.weight)
    """,
]


@pytest.mark.parametrize("code", SKIPPED)
def test_initialisation_loops_are_recognised(code: str) -> None:
    assert loop_shape(code) is not None


@pytest.mark.parametrize("code", RUN)
def test_loops_that_may_change_something_are_not(code: str) -> None:
    assert loop_shape(code) is None


def test_the_loop_variable_is_the_last_module_after_a_skipped_loop(tmp_path: Path) -> None:
    n = count(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Conv2d(3, 8, 3)
                self.b = nn.Linear(8, 4)
                for m in self.modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(m.weight, mode="fan_out")
                    elif isinstance(m, nn.Linear):
                        nn.init.zeros_(m.bias)
                self.head = nn.Linear(m.out_features, 2)
    """)
    assert n == (3 * 8 * 9 + 8) + (8 * 4 + 4) + (4 * 2 + 2)


def test_a_temporary_read_after_the_loop_has_its_last_value(tmp_path: Path) -> None:
    n = count(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(8, 4)
                self.b = nn.Linear(4, 6)
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        nn.init.zeros_(m.bias)
                        width = m.out_features
                self.head = nn.Linear(width, 3)
    """)
    assert n == (8 * 4 + 4) + (4 * 6 + 6) + (6 * 3 + 3)


def test_a_property_read_by_the_loop_runs(tmp_path: Path) -> None:
    """A module whose `bias` is a property that adds a layer: the loop must run it."""
    n = count(tmp_path, """
        class Odd(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            @property
            def bias(self):
                self.add_module("extra", nn.Linear(2, 2))
                return None


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.odd = Odd()
                for m in self.modules():
                    if hasattr(m, "bias") and m.bias is not None:
                        nn.init.zeros_(m.bias)
    """)
    assert n == (4 * 4 + 4) + (2 * 2 + 2)


def test_a_loop_that_replaces_a_parameter_runs(tmp_path: Path) -> None:
    n = count(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)
                for m in self.modules():
                    if isinstance(m, nn.Linear):
                        m.bias = nn.Parameter(torch.zeros(m.out_features, 5))
    """)
    assert n == 8 * 4 + 4 * 5


def test_a_shadowed_init_function_runs(tmp_path: Path) -> None:
    """`nn` of the file is not torch's: its `init.zeros_` is the file's own, which adds a layer."""
    n = count(tmp_path, """
        class _Init:
            @staticmethod
            def zeros_(t, owner=None):
                owner.add_module("extra", torch.nn.Linear(2, 2))


        class _NN:
            init = _Init()


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(8, 4)
                nn = _NN()
                for m in self.modules():
                    if isinstance(m, torch.nn.Linear):
                        nn.init.zeros_(m.bias, self)
    """)
    assert n == (8 * 4 + 4) + (2 * 2 + 2)


def test_a_function_of_the_file_runs(tmp_path: Path) -> None:
    """`init_weights(m)` passes the syntax check; the callee, resolved when the loop starts, is
    not one of the pure ones, so the loop runs (and its layer is counted)."""
    n = count(tmp_path, """
        def init_weights(m):
            if isinstance(m, nn.Linear):
                m.add_module("extra", nn.Linear(2, 2))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)
                for m in self.modules():
                    init_weights(m)
    """)
    assert n == (8 * 4 + 4) + (2 * 2 + 2)


def function_shape(code: str, arity: int) -> object:
    func = cst.parse_module(textwrap.dedent(code)).body[0]
    assert isinstance(func, cst.FunctionDef)
    return _function_shape(func, arity)


def test_apply_of_an_initialisation_method_is_recognised() -> None:
    """nanoGPT's `self.apply(self._init_weights)`: the method's body is an initialisation loop's."""
    assert function_shape('''
        def _init_weights(self, module):
            """Initialise."""
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
    ''', 2) is not None
    # reads what `self` holds (not checked), or takes more than the module
    assert function_shape('''
        def _init_weights(self, module):
            nn.init.normal_(module.weight, std=self.init_std)
    ''', 2) is None
    assert function_shape('''
        def init(module, std=0.02):
            nn.init.normal_(module.weight, std=std)
    ''', 1) is None


def test_apply_counts_what_python_builds(tmp_path: Path) -> None:
    """A skipped `apply` leaves the count as it was; an `apply` whose function adds a layer runs."""
    n = count(tmp_path, """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)
                self.emb = nn.Embedding(10, 8)
                self.apply(self._init_weights)

            def _init_weights(self, module):
                if isinstance(module, nn.Linear):
                    torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                elif isinstance(module, nn.Embedding):
                    torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
    """)
    assert n == (8 * 4 + 4) + 10 * 8
    n = count(tmp_path, """
        def grow(module):
            if isinstance(module, nn.Linear):
                module.add_module("extra", nn.Linear(2, 2))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)
                self.apply(grow)
    """)
    assert n == (8 * 4 + 4) + (2 * 2 + 2)
