"""Constructs seen in public model code, each checked against real torch: a model whose size
depends on the construct must get torch's exact count, not "unknown" (issue 12's list)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import vramlint

torch = pytest.importorskip("torch")

HEADER = """\
import keyword
from collections import OrderedDict
import torch
import torch.nn as nn


class Config:
    depth = 3

    def blocks(self):
        return self.depth

"""

# Each expression gives an int; the model is `nn.Linear(EXPR + 1, 2)`.
EXPRESSIONS = {
    "dir-of-a-class-and-instance": "len([n for n in dir(Config()) if not n.startswith('_')]) + ('blocks' in dir(Config))",
    "keyword": "keyword.iskeyword('for') + len(keyword.kwlist) // 10",
    "ordered-dict-keys": "len(list(OrderedDict([('a', 1), ('b', 2)]).keys())) + len(OrderedDict(x=1).items())",
    "linspace-split-tolist": "len(torch.linspace(0, 0.1, 12).split([4, 8])[1].tolist()) "
                             "+ int(torch.linspace(0, 0.1, 12).split([4, 8])[1].tolist()[-1] * 100)",
    "generator": "int(torch.Generator().manual_seed(0) is not None)",
    "unbind": "len(torch.arange(6).reshape(2, 3).unbind(1)) + int(torch.arange(6).reshape(2, 3).unbind(1)[2][1])",
    "tensor-from-a-list": "torch.Tensor([1.0, 2.0, 3.0]).shape[0] + torch.Tensor(2, 5).shape[1]",
    "outer": "torch.outer(torch.arange(3), torch.arange(4)).shape[1] + int(torch.outer(torch.arange(3), torch.arange(4))[2, 3])",
    "fft": "torch.fft.rfft(torch.zeros(2, 10), dim=-1).shape[1] + torch.fft.irfft(torch.zeros(3, 6)).shape[1] "
           "+ torch.fft.fft2(torch.zeros(2, 4, 5), s=(6, 7)).shape[2] + torch.fft.rfftn(torch.zeros(4, 6, 8)).shape[2] "
           "+ torch.fft.fftfreq(5).shape[0] + torch.fft.rfft2(torch.zeros(3, 8, 9)).shape[-1] "
           "+ torch.fft.fft(torch.zeros(3, 4), n=9).shape[1] + torch.fft.irfftn(torch.zeros(2, 3, 5), s=(4, 7)).shape[-1] "
           "+ torch.fft.ifftshift(torch.zeros(3, 4)).shape[1] + torch.fft.rfftfreq(9).shape[0]",
    "complex-parts": "(torch.tensor(-1j) * torch.arange(3)).real.shape[0] + torch.fft.fft(torch.zeros(5)).imag.shape[0] "
                     "+ (torch.fft.fft(torch.zeros(2)).real.dtype == torch.float32)",
    "finfo-iinfo": "torch.finfo(torch.bfloat16).bits + int(torch.finfo(torch.float16).max) % 7 "
                   "+ (torch.finfo(torch.float32).eps < 1e-6) + torch.iinfo(torch.int8).max % 5 + torch.finfo().bits",
    "unique": "sum(torch.unique(torch.tensor([3, 1, 3, 2, 1]), return_counts=True)[1].tolist()) "
              "+ torch.unique(torch.tensor([5, 5, 7])).shape[0] + torch.tensor([4, 4, 1]).unique().tolist()[0]",
    "flip": "torch.arange(6).reshape(2, 3).flip(1).tolist()[0][0] + (4 ** torch.arange(3)).flip(0).tolist()[0] "
            "+ torch.arange(8).reshape(2, 2, 2).flip((0, 2)).tolist()[0][1][0]",
    "locals": "(lambda a, b: len(locals()) + locals()['b'])(1, 5)",
    "bias-false-is-none": "(nn.Conv2d(3, 3, 3, bias=False).bias is None) + 2 * (nn.Linear(2, 2, bias=False).bias is None) "
                          "+ 4 * (nn.Conv2d(3, 3, 3).bias is None)",
    "compare-logical-bitwise": "int(torch.tensor([1, 2, 3]).ne(2).sum()) + 10 * int(torch.logical_xor(torch.tensor([1, 0]), "
                               "torch.tensor([1, 1])).sum()) + 100 * int(torch.bitwise_xor(torch.tensor([5]), torch.tensor([3]))[0]) "
                               "+ 1000 * int(torch.tensor([0, 2]).logical_and(torch.tensor([3, 3])).sum())",
    "baddbmm": "torch.baddbmm(torch.zeros(2, 3, 5), torch.zeros(2, 3, 4), torch.zeros(2, 4, 5)).shape[2] "
               "+ 10 * torch.zeros(1, 5).baddbmm(batch1=torch.zeros(2, 3, 4), batch2=torch.zeros(2, 4, 5)).shape[1]",
    "no-accelerator": "(torch.accelerator.current_accelerator() is None) + 2 * torch.accelerator.is_available() "
                      "+ 4 * torch.backends.mps.is_available() + 8 * torch.backends.mps.is_built()",
    "unary-math": "torch.expm1(torch.zeros(3, 4)).shape[1] + int(torch.tensor([0.5]).log1p().exp().item() * 10) "
                  "+ torch.erf(torch.zeros(2)).shape[0] + int(torch.exp2(torch.tensor([3.0]))[0])",
    "polar-ndarray": "torch.polar(torch.ones(2, 3), torch.zeros(2, 3)).shape[1] + (torch.polar(torch.ones(2), torch.zeros(2)).dtype == torch.complex64) "
                     "+ 2 * isinstance(__import__('numpy').linspace(0, 1, 5), __import__('numpy').ndarray) + 4 * isinstance(torch.zeros(2), __import__('numpy').ndarray)",
    "uniform-compare": "int((torch.rand([]) < 0.0).item()) + 2 * int((torch.rand(2, 3) >= 0).sum()) "
                       "+ 100 * int((1.5 > torch.rand(4)).sum()) + 1000 * int((torch.rand_like(torch.zeros(3)) < 1).sum())",
    "arange-none-index": "torch.arange(5)[:, None].shape[0] + torch.arange(5)[None].shape[1]",
}


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_construct_gives_torchs_count(name: str, tmp_path: Path) -> None:
    text = HEADER + f"m = nn.Linear(int({EXPRESSIONS[name]}) + 1, 2)\n"
    ns: dict[str, object] = {}
    exec(compile(text, "<model>", "exec", dont_inherit=True), ns)
    expected = sum(p.numel() for p in ns["m"].parameters())  # type: ignore[attr-defined]
    path = tmp_path / "model.py"
    result = vramlint.analyze_source(str(path), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert not m.unknowns, [u.reason for u in m.unknowns]
    assert m.params.total == expected


def test_backends_absent_from_the_build_raise_as_torch_does(tmp_path: Path) -> None:
    """torch.xpu's stream check raises on a build without XPU (transformers catches it)."""
    text = HEADER + ("def capturing():\n    try:\n        return torch.xpu.is_current_stream_capturing()\n"
                     "    except RuntimeError:\n        return 5\n\n\nm = nn.Linear(capturing(), 2)\n")
    _assert_exact_as_cpython(text, tmp_path)


def test_dir_of_a_native_object_is_an_unknown_not_a_guess(tmp_path: Path) -> None:
    text = HEADER + "m = nn.Linear(len(dir(nn.Linear(2, 2))), 2)\n"
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert m.params.total is None
    assert any("dir() of Linear" in u.reason for u in m.unknowns)


def test_sequential_of_unknown_blocks_is_unknown_not_an_error(tmp_path: Path) -> None:
    """`nn.Sequential(*blocks)` with `blocks` from a module vramlint cannot read: the model is
    there, with an unknown count that says why (it raised TypeError before)."""
    text = "import torch.nn as nn\nfrom missingpkg import blocks\nm = nn.Sequential(*blocks)\n"
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert m.params.total is None and m.error is None
    assert any("missingpkg" in u.reason for u in m.unknowns)
    assert not result.warnings


# ------------------------------------------------------------------ undecidable conditions
# Random small programs whose conditions vramlint cannot decide (`cond(k)` asks the file system).
# CPython runs each program under every truth assignment of its conditions; whenever vramlint
# gives an exact count it must be the count of every assignment that runs: an undecidable branch
# is merged or makes the result unknown, never silently dropped.
def _block(rng: random.Random, depth: int, in_function: bool) -> list[str]:
    lines: list[str] = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["assign", "assign", "use", "call", "if", "raise", "pass", "store", "load", "loop"]
                          + (["return"] if in_function else []))
        target = "a" if in_function else "x"
        if kind == "assign":
            lines.append(f"{target} = {rng.randint(1, 40)}")
        elif kind == "store":  # changes an object other code reads (a registry)
            lines.append(f"reg['k'] = {rng.randint(1, 40)}")
        elif kind == "load":
            lines.append(f"{target} = reg.get('k', {target})")
        elif kind == "loop":  # a loop over what cannot be known, storing into the registry
            lines += [f"for i in items({rng.randint(0, 2)}):", f"    reg['k'] = {rng.randint(1, 40)}"]
        elif kind == "use":
            lines.append(f"{target} = {target} + {rng.randint(1, 5)}")
        elif kind == "call" and not in_function:
            lines.append(f"x = f({rng.randint(1, 30)})")
        elif kind == "if" and depth < 2:
            lines += _if(rng, depth + 1, in_function)
        elif kind == "raise":
            lines.append("raise ValueError('no')")
            break
        elif kind == "return":
            lines.append(f"return a + {rng.randint(1, 9)}")
            break
        else:
            lines.append("pass")
    return lines


def _if(rng: random.Random, depth: int, in_function: bool) -> list[str]:
    out = [f"if cond({rng.randint(0, 2)}):"] + ["    " + s for s in _block(rng, depth, in_function)]
    if rng.random() < 0.3:
        out += [f"elif cond({rng.randint(0, 2)}):"] + ["    " + s for s in _block(rng, depth, in_function)]
    if rng.random() < 0.5:
        out += ["else:"] + ["    " + s for s in _block(rng, depth, in_function)]
    return out


def _program(rng: random.Random) -> str:
    body = ["reg = {}", "", "def f(a):"] + ["    " + s for s in _block(rng, 0, True)] + ["    return a", ""]
    body += [f"x = {rng.randint(1, 40)}"] + _block(rng, 0, False)
    body.append("m = nn.Linear(abs(x) % 50 + 1, 2)")
    return "\n".join(body) + "\n"


UNDECIDED_HEADER = ("from pathlib import Path\nimport torch.nn as nn\n\n\ndef cond(k):\n    return Path(f'c{k}').exists()\n\n\n"
                    "def items(k):\n    return Path(f'd{k}').iterdir()\n\n\n")


def _cpython_counts(program: str) -> set[int]:
    counts: set[int] = set()
    for bits in range(8):
        ns: dict[str, Any] = {"nn": torch.nn, "cond": lambda k, bits=bits: bool(bits >> k & 1),
                              "items": lambda k, bits=bits: range(bits >> k & 1)}
        try:
            exec(compile(program, "<program>", "exec", dont_inherit=True), ns)
        except (ValueError, NameError, UnboundLocalError):
            continue  # this path fails when run: no model to compare
        counts.add(sum(p.numel() for p in ns["m"].parameters()))
    return counts


def test_undecidable_conditions_never_give_a_wrong_exact_count(tmp_path: Path) -> None:
    rng = random.Random(5)
    exact = unknown = 0
    for i in range(120):
        program = _program(rng)
        counts = _cpython_counts(program)
        if not counts:
            continue
        text = UNDECIDED_HEADER + program
        result = vramlint.analyze_source(str(tmp_path / f"p{i}.py"), text)
        found = [r for r in result.models if r.name == "m"]
        if not found or found[0].params.total is None:
            unknown += 1
            continue
        exact += 1
        assert counts == {found[0].params.total}, f"vramlint {found[0].params.total}, CPython {counts}:\n{program}"
    # The merge keeps what every path agrees on: a good share of programs stays exact.
    assert exact >= 20 and unknown >= 5, (exact, unknown)


# ------------------------------------------------------------------ where models are found
SCRIPT = """\
import torch
import torch.nn as nn


def create():
    return nn.Linear(4, 4), nn.Sequential(nn.Linear(2, 2), nn.ReLU())


model_a, other = create()

with torch.device("meta"):
    meta_model = nn.Linear(8, 8)

try:
    guarded = nn.Conv2d(3, 4, 3)
except ImportError:
    guarded = None

if torch.cuda.is_available():
    cond_model = nn.Linear(3, 3)
else:
    cond_model = nn.Linear(3, 7)


def main():
    net = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 1))
    head = net[1]  # part of `net`: not a model of its own
    return None


if __name__ == "__main__":
    main_model = nn.Linear(6, 6)
    main()
"""


def test_models_in_blocks_tuples_and_the_main_block(tmp_path: Path) -> None:
    """Models bound by tuple targets, inside top-level `with`/`try`/`if` blocks, in the script's
    `if __name__ == "__main__":` block and as locals of the `main()` it calls, each counted as
    torch counts it; the `main()` locals taken from the same CPython run."""
    captured: dict[str, Any] = {}
    glb: dict[str, Any] = {"__name__": "__main__", "captured": captured}
    exec(compile(SCRIPT.replace("    return None\n", "    captured.update(locals())\n"), "<script>", "exec", dont_inherit=True), glb)

    def count(m: Any) -> int:
        return sum(p.numel() for p in m.parameters())

    expected = {name: count(glb[name]) for name in ("model_a", "other", "meta_model", "guarded", "main_model")}
    expected["main.net"] = count(captured["net"])
    result = vramlint.analyze_source(str(tmp_path / "script.py"), SCRIPT)
    got = {m.name: m.params.total for m in result.models}
    assert {k: got.get(k) for k in expected} == expected
    assert got.get("cond_model") is None  # the two branches build different layers: unknown, not a guess
    assert "main.head" not in got and "create" not in got


DESCRIPTORS = """\
import torch.nn as nn


class classproperty(property):  # transformers 5.x `sub_configs`
    def __get__(self, obj, objtype=None):
        return self.fget(objtype)


class Config:
    width = 8

    @classproperty
    def sub_configs(cls):
        return {"a": cls.width, "b": 2 * cls.width}

    @property
    def double(self):
        return 2 * self.width

    half = property(lambda self: self.width // 2)


class Named:
    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        return len(self.name) if obj is not None else 100


class UsesNamed:
    abcd = Named()


n = (sum(Config.sub_configs.values()) + sum(Config().sub_configs.values()) + Config().double + Config().half
     + UsesNamed().abcd + UsesNamed.abcd + isinstance(Config.__dict__["half"], property)
     + isinstance(Config.__dict__["sub_configs"], property))
m = nn.Linear(n, 2)
"""


def test_descriptors_behave_as_in_cpython(tmp_path: Path) -> None:
    """A `property` subclass with its own `__get__`, `@property`, `property(f)`, a descriptor with
    `__set_name__` and `__get__`, on the class and on instances: CPython's values."""
    _assert_exact_as_cpython(DESCRIPTORS, tmp_path)


def _assert_exact_as_cpython(text: str, tmp_path: Path) -> None:
    """`m` of `text` counted exactly, as CPython with torch builds it."""
    ns: dict[str, Any] = {}
    exec(compile(text, "<model>", "exec", dont_inherit=True), ns)
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert not m.unknowns, [u.reason for u in m.unknowns]
    assert m.params.total == sum(p.numel() for p in ns["m"].parameters())


PATHS = """\
from pathlib import Path
import torch.nn as nn

cfg = Path("configs") / "model_small.yaml"
root = "/data" / Path("runs") / "exp1"
n = (len(cfg.stem) + (20 if cfg.suffix == ".yaml" else 10) + len(str(cfg.parent / "x")) + len(cfg.parts)
     + len(root.parts) + (cfg == Path("configs/model_small.yaml")) + (cfg == "configs/model_small.yaml")
     + len(cfg.with_suffix(".json").name) + len(f"{root}") + cfg.is_absolute() + len(cfg.relative_to("configs").name))
m = nn.Linear(n, 2)
"""


def test_pathlib_is_pure_paths(tmp_path: Path) -> None:
    """What code computes from a path's text is CPython's; the file system is never asked."""
    _assert_exact_as_cpython(PATHS, tmp_path)
    text = "from pathlib import Path\nimport torch.nn as nn\nm = nn.Linear(4 if Path('w.pt').exists() else 5, 2)\n"
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "fs.py"), text).models if r.name == "m"]
    assert m.params.total is None and any("file system is not read" in u.reason for u in m.unknowns)


REGISTRY = """\
import os
from pathlib import Path
from collections import defaultdict, deque
from dataclasses import dataclass, field
import torch.nn as nn

_entrypoints = {}
_width = {}


@dataclass
class Tags:
    tags: deque = field(default_factory=deque)


tags = defaultdict(Tags)
tags["small"].tags.append("in1k")
tags["small"].tags.appendleft("in22k")


def register_model(fn):
    _entrypoints[fn.__name__] = fn
    _width[fn.__name__] = 21 if tags[fn.__name__].tags[0] == "in22k" else 10
    return fn


if Path("fused.flag").exists():  # undecidable: the file system is not read
    _FUSED = int(Path("fused.flag").read_text())
else:
    _FUSED = 1


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fused = _FUSED > 0  # unknown, but a flag: the count stays exact
        self.fc = nn.Linear(width, width)


@register_model
def small():
    return Net(_width["small"])


def create_model(name):
    return _entrypoints[name]()


m = create_model("small")
"""


def test_registries_defaultdict_deque_and_flags(tmp_path: Path) -> None:
    """timm's construction path: `@register_model` fills a registry read by `create_model`, the
    pretrained tags sit in a deque inside a `defaultdict(DefaultCfg)`, and attention layers keep
    a flag that cannot be known (it is not a module: the count stays exact)."""
    _assert_exact_as_cpython(REGISTRY, tmp_path)


def test_a_skipped_registration_is_unknown_not_stale(tmp_path: Path) -> None:
    """A decorator whose registration cannot be decided leaves the registry unknown: the
    default it would otherwise fall back on (`_width.get(name, 10)`) is not claimed exact."""
    text = REGISTRY.replace('_width[fn.__name__] = 21 if', 'if Path("w").exists():\n        _width[fn.__name__] = 21 if')
    text = text.replace('Net(_width["small"])', 'Net(_width.get("small", 10))')
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert m.params.total is None and m.unknowns


ENVIRONMENT = """\
import os
import torch.nn as nn

width = int(os.environ.get("WIDTH", "8")) + int(os.getenv("EXTRA", "0")) + ("DEBUG" in os.environ)
m = nn.Linear(width, 2)
"""


def test_environment_is_the_configured_one(tmp_path: Path) -> None:
    """os.environ holds exactly the `environment` table of the configuration: by default none,
    as in a shell where the code's variables are not set."""
    from vramlint.settings import ConfigError, load_settings

    def count(settings: vramlint.Settings) -> int | None:
        (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "env.py"), ENVIRONMENT, settings).models]
        return m.params.total

    assert count(vramlint.Settings()) == 8 * 2 + 2
    (tmp_path / "vramlint.toml").write_text('environment = { WIDTH = "64", DEBUG = "1" }\n')
    settings = load_settings(tmp_path)
    assert settings.environment == (("DEBUG", "1"), ("WIDTH", "64"))
    assert count(settings) == 65 * 2 + 2
    # A file that sets a variable does not change what the next analysis sees.
    setter = "import os\nos.environ['WIDTH'] = '32'\n" + ENVIRONMENT
    (m,) = vramlint.analyze_source(str(tmp_path / "setter.py"), setter).models
    assert m.params.total == 32 * 2 + 2
    assert count(vramlint.Settings()) == 8 * 2 + 2
    (tmp_path / "vramlint.toml").write_text("environment = { WIDTH = 64 }\n")
    with pytest.raises(ConfigError, match="environment"):
        load_settings(tmp_path)


def test_package_data_files_are_read_not_run(tmp_path: Path) -> None:
    """pkgutil.get_data reads a data file shipped in a package (timm's pruned-model widths); a
    resource outside the package is not read."""
    pkg = tmp_path / "lib" / "widthpkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "widths.txt").write_text("12,34\n")
    text = ("import pkgutil\nimport torch.nn as nn\n"
            "w = [int(x) for x in pkgutil.get_data('widthpkg', 'data/widths.txt').decode().strip().split(',')]\n"
            "m = nn.Linear(w[0], w[1])\n")
    settings = vramlint.Settings(extra_paths=(str(tmp_path / "lib"),))
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "model.py"), text, settings).models if r.name == "m"]
    assert m.params.total == 12 * 34 + 34
    outside = text.replace("data/widths.txt", "../../secret.txt")
    (tmp_path / "secret.txt").write_text("1,1")
    found = [r for r in vramlint.analyze_source(str(tmp_path / "model.py"), outside, settings).models if r.name == "m"]
    assert not found or found[0].params.total is None


def test_from_package_import_prefers_what_its_init_binds(tmp_path: Path) -> None:
    """`from torchvision.models import alexnet`: the package's `__init__` rebinds the submodule's
    name to the function (`from .alexnet import *`), as CPython runs `__init__` first."""
    pkg = tmp_path / "lib" / "zoo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .small import *\n")
    (pkg / "small.py").write_text("import torch.nn as nn\n__all__ = ['small']\n\n\ndef small():\n    return nn.Linear(3, 4)\n")
    text = "from zoo import small\n\nm = small()\n"
    import sys

    sys.path.insert(0, str(tmp_path / "lib"))
    try:
        ns: dict[str, Any] = {}
        exec(compile(text, "<model>", "exec", dont_inherit=True), ns)
    finally:
        sys.path.remove(str(tmp_path / "lib"))
        for name in [n for n in sys.modules if n == "zoo" or n.startswith("zoo.")]:
            del sys.modules[name]
    settings = vramlint.Settings(extra_paths=(str(tmp_path / "lib"),))
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "model.py"), text, settings).models if r.name == "m"]
    assert m.params.total == sum(p.numel() for p in ns["m"].parameters()) == 16


CALL_IN_FUNCTION = """\
import torch.nn as nn

w = 8


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)


def build():
    w = 64
    return Net(w)


def build_from(cfg):
    return Net(cfg.w)
"""


def test_call_site_arguments_are_not_read_in_the_wrong_scope(tmp_path: Path) -> None:
    """`Net(w)` inside build() means build's `w` (64), not the module's (8): the class is not
    counted with the module-level value; the factory gets CPython's count."""
    ns: dict[str, Any] = {}
    exec(compile(CALL_IN_FUNCTION, "<model>", "exec", dont_inherit=True), ns)
    result = vramlint.analyze_source(str(tmp_path / "model.py"), CALL_IN_FUNCTION)
    models = {r.name: r for r in result.models}
    assert models["build"].params.total == sum(p.numel() for p in ns["build"]().parameters())
    net = models["Net"]
    assert net.params.total is None and "arguments of the call" not in net.construction
    # A call whose arguments are the module's own names still counts the class with them.
    text = CALL_IN_FUNCTION + "\nmodel = Net(w)\n"
    (net,) = [r for r in vramlint.analyze_source(str(tmp_path / "m2.py"), text).models if r.name == "Net"]
    assert net.params.total == 8 * 8 + 8 and "line 20" in net.construction


STRICT_CALLS = """\
import functools

import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dim, qkv_bias=False):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)


def legacy(fn):  # a wrapper vramlint does not run: what it accepts is not the signature's
    @functools.wraps(fn)
    def inner(*args, old_name=None, **kwargs):
        return fn(*args, **kwargs)
    return inner


@legacy
def make(dim):
    return Block(dim)


ok = Block(64, qkv_bias=True)
wrapped = make(32, old_name=1)
"""


def test_calls_python_refuses_are_refused(tmp_path: Path) -> None:
    """An unexpected keyword (`qk_scale`) or one positional too many raises TypeError as in
    CPython: the model is not counted as if the argument were accepted. Behind a decorator vramlint
    takes as the identity, the signature is not the one called, so nothing is refused there."""
    for bad in ("Block(64, qkv_bias=True, qk_scale=None)", "Block(64, True, 1)", "Block(64, dim=3)"):
        text = STRICT_CALLS + f"m = {bad}\n"
        with pytest.raises(TypeError):
            exec(compile(text, "<model>", "exec", dont_inherit=True), {})
        found = [r for r in vramlint.analyze_source(str(tmp_path / "model.py"), text).models if r.name == "m"]
        assert not found or found[0].params.total is None, bad
    _assert_exact_as_cpython(STRICT_CALLS + "m = wrapped\n", tmp_path)


CONTAINER_PROTOCOLS = """\
from collections import OrderedDict
from collections.abc import Sequence
import torch.nn as nn


class LazyMapping(OrderedDict[str, str]):  # transformers' _LazyConfigMapping: its own `in`, iter, len
    def __init__(self, mapping):
        self._mapping = mapping

    def __contains__(self, item):
        return item in self._mapping

    def __iter__(self):
        return iter(list(self._mapping))

    def __len__(self):
        return len(self._mapping)


class PerLayer(Sequence):  # transformers' _PerLayerConfigView: iterated by __getitem__ alone
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return 2 * i + 1


class Old:  # the sequence protocol without any ABC
    def __getitem__(self, i):
        if i >= 3:
            raise IndexError(i)
        return 10


names = LazyMapping({"vit": "ViTConfig", "clip": "CLIPConfig"})
width = 100 * ("clip" in names) + 10 * len(names) + len(list(names)) + sum(PerLayer(4)) + sum(Old())
m = nn.Linear(width, 2)
"""


def test_dict_subclass_dunders_and_the_sequence_protocol(tmp_path: Path) -> None:
    """A dict subclass's own `__contains__`/`__iter__`/`__len__` apply (not the empty dict it
    inherits), and a class with `__getitem__` but no `__iter__` iterates until IndexError."""
    _assert_exact_as_cpython(CONTAINER_PROTOCOLS, tmp_path)


LIBRARY_IDIOMS = """\
import dataclasses
import enum

import torch
import torch.nn as nn


class Backend:  # einops: its backends are found through __subclasses__()
    pass


class TorchBackend(Backend):
    framework = "torch"


class NumpyBackend(Backend):
    framework = "numpy"


@dataclasses.dataclass
class Cfg:
    width: int = 4
    name: str = "x"


class Task(str, enum.Enum):  # peft: a table keyed by a str enum, read with plain strings
    CAUSAL_LM = "CAUSAL_LM"
    SEQ_CLS = "SEQ_CLS"


class Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.cat([x, x], dim=-1)

    @staticmethod
    def backward(ctx, g):
        return g[..., : g.shape[-1] // 2]


class Square(torch.autograd.Function):  # the style with setup_context
    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])


frameworks = [c.framework for c in Backend.__subclasses__()]
n = (len(frameworks) + 10 * (frameworks[0] == "torch") + len(dataclasses.fields(Cfg)[0].type.__name__)
     + {Task.CAUSAL_LM: 7}["CAUSAL_LM"] + ("SEQ_CLS" in {Task.SEQ_CLS}) + Double.apply(torch.zeros(2, 3)).shape[1]
     + Square.apply(torch.zeros(5)).shape[0] + torch.zeros(4, 6).to_sparse().shape[1])
m = nn.Linear(n, 2)
"""


def test_library_idioms_behave_as_in_cpython(tmp_path: Path) -> None:
    """`cls.__subclasses__()`, `dataclasses.fields(C)[i].type`, str-enum members as dict and set
    keys, `torch.autograd.Function.apply` (both styles), `.to_sparse()`: CPython's values."""
    _assert_exact_as_cpython(LIBRARY_IDIOMS, tmp_path)


PEFT_IDIOMS = """\
import dataclasses
import enum

import torch
import torch.distributed.tensor
import torch.nn as nn


class PeftType(str, enum.Enum):
    LORA = "LORA"
    IA3 = "IA3"


@dataclasses.dataclass
class LoraConfig:
    use_dora: bool = dataclasses.field(default=False, metadata={"is_lora_variant": True})
    r: int = 8


weight = nn.Linear(6, 4).weight
variants = [f.name for f in dataclasses.fields(LoraConfig) if f.metadata.get("is_lora_variant")]
n = (("LORA" in list(PeftType)) + 2 * (PeftType.LORA == "LORA") + 4 * (PeftType.LORA != "IA3")
     + 8 * ("IA3" == PeftType.LORA) + 16 * len(variants) + 32 * (weight.__class__.__name__ == "Parameter")
     + torch.linalg.norm(weight, dim=1).shape[0] + torch.linalg.vector_norm(torch.zeros(3, 5), dim=-1, keepdim=True).shape[1]
     + 64 * weight.is_leaf + 128 * isinstance(weight, torch.distributed.tensor.DTensor)
     + 256 * (getattr(torch, "float8_e8m0fnu", None) is not None))
m = nn.Linear(n, 2)
"""


def test_peft_idioms_behave_as_in_cpython(tmp_path: Path) -> None:
    """What peft's `get_peft_model` reads: a str-enum member equals its value (`==`, `!=`, `in` a
    list), `dataclasses.fields(C)[i].metadata`, a tensor's `__class__`, `torch.linalg` norms,
    `is_leaf`, `DTensor`, torch's float8 dtypes by name: CPython's values."""
    _assert_exact_as_cpython(PEFT_IDIOMS, tmp_path)


HOUSEKEEPING = """\
import torch
import torch.nn as nn


def build():
    m = nn.Linear(3, 2)
    if torch.cuda.is_available():  # peft's prepare_model_for_kbit_training
        torch.cuda.empty_cache()
    elif torch.cuda.is_available():
        pass
    return m


m = build()
"""


def test_a_branch_that_only_frees_caches_decides_nothing(tmp_path: Path) -> None:
    """Whether CUDA is available depends on the machine, but a branch that only empties the
    allocator's cache changes nothing the model is: the count stays exact."""
    _assert_exact_as_cpython(HOUSEKEEPING, tmp_path)


DISTRIBUTED = """\
import torch.distributed as dist
import torch.nn as nn

world = dist.get_world_size() if dist.is_initialized() else 1
m = nn.Linear(8 // world, 2)
"""


def test_distributed_is_one_process_of_a_launch(tmp_path: Path) -> None:
    """Without `init_process_group` there is no process group (CPython: world of 1 here); after
    it, the world size is the launcher's WORLD_SIZE from `environment`, else unknown (fairscale's
    parallel layers divide their width by it)."""
    _assert_exact_as_cpython(DISTRIBUTED, tmp_path)
    launched = DISTRIBUTED.replace("world =", "dist.init_process_group('nccl')\nworld =")

    def count(settings: vramlint.Settings) -> int | None:
        (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "ddp.py"), launched, settings).models if r.name == "m"]
        return m.params.total

    assert count(vramlint.Settings(environment=(("WORLD_SIZE", "4"),))) == (8 // 4) * 2 + 2
    assert count(vramlint.Settings()) is None


METACLASS = """\
import torch.nn as nn


class PostInit(type):  # a metaclass that adds to every instance after __init__
    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        obj.head = nn.Linear(obj.width, 2)
        return obj


class Net(nn.Module, metaclass=PostInit):
    def __init__(self, width):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(width, width)


class Wider(Net):  # the metaclass is inherited
    pass


m = nn.ModuleList([Net(3), Wider(5)])
"""


def test_metaclass_call_runs_and_its_new_is_said(tmp_path: Path) -> None:
    """A metaclass's `__call__` is what calling the class runs (inherited too); a metaclass
    `__new__` that could reshape the class is not evaluated, and the count says so."""
    _assert_exact_as_cpython(METACLASS, tmp_path)
    reshaping = METACLASS.replace("class PostInit(type):", "class PostInit(type):\n    def __new__(mcs, name, bases, ns):\n"
                                  "        return super().__new__(mcs, name, bases, ns)\n")
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "meta.py"), reshaping).models if r.name == "m"]
    assert m.params.total is None and any("metaclass PostInit.__new__" in u.reason for u in m.unknowns)


def test_a_name_a_module_never_binds_is_absent_unless_its_getattr_answers(tmp_path: Path) -> None:
    """`hasattr(mod, "__all__")` is False for a module that binds no `__all__` (timm's registry
    appends to it); a module with its own `__getattr__` (PEP 562) may still answer: not False."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "plain.py").write_text("width = 4\n")
    (lib / "lazy.py").write_text("def __getattr__(name):\n    if name == 'width':\n        return 7\n    raise AttributeError(name)\n")
    settings = vramlint.Settings(extra_paths=(str(lib),))
    text = "import torch.nn as nn\nimport plain\nm = nn.Linear(plain.width + 10 * hasattr(plain, '__all__'), 2)\n"
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "a.py"), text, settings).models if r.name == "m"]
    assert m.params.total == 4 * 2 + 2
    text = "import torch.nn as nn\nimport lazy\nm = nn.Linear(lazy.width if hasattr(lazy, 'width') else 3, 2)\n"
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "b.py"), text, settings).models if r.name == "m"]
    assert m.params.total in (None, 7 * 2 + 2)  # CPython: 16; never the fallback's 8


def test_a_skipped_branch_forgets_the_module_attribute_it_sets_not_the_module(tmp_path: Path) -> None:
    """`if cond: settings.WIDTH = 64` skipped: `settings.WIDTH` becomes unknown (never the stale 8),
    while the module's other names stay known."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "settings.py").write_text("WIDTH = 8\nDEPTH = 3\n")
    text = ("from pathlib import Path\nimport torch.nn as nn\nimport settings\n\n"
            "if Path('big.flag').exists():\n    settings.WIDTH = 64\n    for _ in Path('.').iterdir():\n        pass\n\n"
            "m = nn.Linear(settings.WIDTH, 2)\nd = nn.Linear(settings.DEPTH, 2)\n")
    found = {r.name: r.params.total for r in vramlint.analyze_source(
        str(tmp_path / "m.py"), text, vramlint.Settings(extra_paths=(str(lib),))).models}
    assert found.get("m") is None and found["d"] == 3 * 2 + 2
