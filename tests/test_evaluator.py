"""The evaluator against real PyTorch: the Python that model definitions use, counted exactly.

Each case is a small project written to a temporary folder. The target file is analysed by
vramlint (which never imports torch) and also imported and run with real torch; the parameter,
trainable-parameter and buffer counts of every named model must agree exactly, with nothing left
undecided.

A check is written like a call against the target module's namespace: ``"model"`` (a module-level
variable holding a module), ``"Net(16, depth=3)"`` (a class, built by vramlint with the arguments
of its first call site in the file, else its defaults: the check gives the same ones) or
``"make_net"`` (a factory function called without arguments).
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import vramlint
from vramlint.analysis.api import module_name_for

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------------------------- harness
@dataclass
class Case:
    id: str
    files: dict[str, str]
    checks: list[str]
    target: str = "model.py"
    extra_paths: tuple[str, ...] = ()  # folders relative to the project root
    expect: dict[str, int] = field(default_factory=dict)  # name -> total, beyond torch's answer


def write_project(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _under(path: str | None, roots: list[str]) -> bool:
    if not path:
        return False
    path = os.path.abspath(path)
    return any(path == r or path.startswith(r + os.sep) for r in roots)


def torch_counts(target: Path, extra_paths: list[str], checks: list[str]) -> dict[str, tuple[int, int, int]]:
    """Import the target with real torch and count what each check builds."""
    dotted, root = module_name_for(str(target))
    roots = [os.path.abspath(p) for p in [*extra_paths, root]]
    saved_path = list(sys.path)
    before = set(sys.modules)
    sys.path[:0] = roots
    importlib.invalidate_caches()
    try:
        mod = importlib.import_module(dotted)
        out = {}
        for check in checks:
            obj = eval(check, vars(mod))
            if not isinstance(obj, torch.nn.Module):
                obj = obj()  # a class with its defaults, or a factory
            assert isinstance(obj, torch.nn.Module), check
            params = list(obj.parameters())
            out[check] = (
                sum(p.numel() for p in params),
                sum(p.numel() for p in params if p.requires_grad),
                sum(b.numel() for b in obj.buffers()),
            )
        return out
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - before:
            m = sys.modules[name]
            paths = [getattr(m, "__file__", None), *list(getattr(m, "__path__", []) or [])]
            if any(_under(p, roots) for p in paths):
                del sys.modules[name]


def model_name(check: str) -> str:
    return check.split("(", 1)[0].strip()


def analyse(tmp_path: Path, case: Case) -> dict[str, vramlint.ModelResult]:
    write_project(tmp_path, case.files)
    settings = vramlint.Settings(extra_paths=tuple(str(tmp_path / p) for p in case.extra_paths))
    result = vramlint.analyze_file(str(tmp_path / case.target), settings)
    assert not result.errors, result.errors
    return {m.name: m for m in result.models}


def run_case(tmp_path: Path, case: Case) -> dict[str, vramlint.ModelResult]:
    models = analyse(tmp_path, case)
    truth = torch_counts(tmp_path / case.target, [str(tmp_path / p) for p in case.extra_paths], case.checks)
    for check in case.checks:
        name = model_name(check)
        assert name in models, f"{name} not found; models: {sorted(models)}"
        m = models[name]
        assert m.error is None, f"{check}: {m.error}"
        assert m.unknowns == [], f"{check}: {m.unknowns}"
        got = (m.params.total, m.params.trainable, m.params.buffers)
        assert got == truth[check], f"{check}: vramlint {got} != torch {truth[check]}"
        if name in case.expect:
            assert m.params.total == case.expect[name]
    return models


# ------------------------------------------------------------------------------------------ cases
CASES: list[Case] = []


def case(id: str, files: dict[str, str] | str, *checks: str, target: str = "model.py",
         extra_paths: tuple[str, ...] = (), expect: dict[str, int] | None = None) -> None:
    if isinstance(files, str):
        files = {target: files}
    CASES.append(Case(id, files, list(checks), target, extra_paths, expect or {}))


case("arithmetic_and_math", """
import math
import torch.nn as nn

BASE = 64
HIDDEN = BASE * 4 // 3          # 85
PAD = 17 % 5                    # 2
SQ = 2 ** 5                     # 32
C = math.ceil(100 / 7)          # 15
F = int(math.sqrt(144)) + math.floor(2.7) + int(math.log2(16)) + math.isqrt(50)
G = math.gcd(12, 18) * math.prod([1, 2, 3]) + math.factorial(4) + int(math.pi)
E = int(1e2) + round(3.6) + round(2.5) + abs(-2) + max(1, 5, 3) + min([4, 9]) + sum([1, 2, 3])
q, r = divmod(50, 7)
BITS = (1 << 4) | (0xF0 & 0x3C) ^ 1
NEG = -(-37 // 8)
FL = int(64 * 0.75) + int(float("3.9")) + int("12") + int(7.0 / 2)
POW = pow(3, 3) + 10 ** -1 * 10 + 2.0 ** 2
DIV = (7 // -2) + (-7 % 3) + int(-7 / 2)


def make_divisible(v, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


dims = [BASE, HIDDEN, PAD + SQ, C, F, G, E, q * 10 + r, BITS, NEG, FL, int(POW), DIV + 20,
        make_divisible(37), make_divisible(16 * 1.25), make_divisible(3, 4)]
model = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(dims, dims[1:])])
""", "model")

case("comparisons_and_boolean_logic", """
import torch.nn as nn

CFG = {"width": 0, "depth": 3, "bias": None, "act": "gelu"}
width = CFG.get("width") or 24
depth = CFG["depth"] if 0 < CFG["depth"] <= 4 else 1
bias = CFG["bias"] is not None and CFG["bias"]
use_act = CFG["act"] in ("relu", "gelu") and not CFG["act"] == "none"
extra = 1 if (width > 20 and depth != 3) or width == 0 else 2
flags = [width >= 24, depth < 3, 1 <= depth < 3 < width, "a" < "b", [1, 2] < [1, 3], (1, 2) == (1, 2)]
n_true = sum(flags) + all([1, 2]) + any([0, 0]) + (None is None) + ("x" not in "abc")

layers = []
for _ in range(depth + extra + n_true):
    layers.append(nn.Linear(width, width, bias=bias or width > 100))
    if use_act:
        layers.append(nn.GELU())
model = nn.Sequential(*layers)
""", "model")

case("tuples_lists_dicts", """
from collections import OrderedDict
import torch.nn as nn

stages = (16, 32, 64, 128)
first, last = stages[0], stages[-1]
mid = list(stages[1:-1])
mid += [48]
mid.append(96)
mid.extend((8, 8))
mid.insert(0, 4)
mid.remove(8)
mid.pop()
order = sorted(mid, reverse=True)
rev = stages[::-1]
d = {"a": 3, "b": 5}
d.update(c=7)
d["d"] = d.pop("a") + d.setdefault("e", 1)
merged = {**d, "f": len(d), **dict(g=2)}
keys = list(merged.keys())
total = sum(merged.values()) + merged.get("zz", 10) + keys.index("c") + order.count(48)
pairs = list(merged.items())
t = tuple(order) + (first,) * 2
s = {1, 2, 3} | {3, 4}
s2 = s & {2, 3, 9}
od = OrderedDict()
for name, v in pairs:
    od[name] = nn.Linear(v, v + 1)
od["tail"] = nn.Linear(len(t) + len(s) + len(s2) + rev[0] + total, last)
model = nn.Sequential(od)
""", "model")

case("comprehensions", """
import torch.nn as nn

grid = [[1, 2, 3], [4, 5, 6]]
flat = [x for row in grid for x in row if x % 2 == 0]              # [2, 4, 6]
square = {i: i * i for i in range(1, 5) if i != 2}                 # {1:1, 3:9, 4:16}
uniq = {x // 2 for x in range(10)}                                  # 0..4
nested = [[a * b for b in range(1, 3)] for a in range(1, 4)]        # [[1,2],[2,4],[3,6]]
gen_total = sum(c for c in flat if c > 2)                           # 10
widths = [w * 8 for w in flat] + [v for v in square.values()] + [len(uniq)]
cond = [w if w > 10 else w * 10 for w in widths]


class Net(nn.Module):
    def __init__(self, dims=(8, 16, 32)):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.heads = nn.ModuleDict({f"h{i}": nn.Linear(dims[-1], n) for i, n in enumerate(cond)})
        self.grid = nn.ModuleList([nn.ModuleList([nn.Linear(v, v) for v in row]) for row in nested])
        self.extra = nn.Linear(gen_total, max(w for w in widths))


model = Net()
""", "model", "Net")

case("loops_break_continue_else", """
import torch.nn as nn

layers = []
for i in range(10):
    if i % 3 == 0:
        continue
    if i > 7:
        break
    layers.append(nn.Linear(i, i + 1))
else:
    layers.append(nn.Linear(100, 100))   # not reached: the loop breaks

for i, (a, b) in enumerate(zip([1, 2, 3], [4, 5, 6]), start=2):
    layers.append(nn.Linear(a * i, b))
for w in reversed([3, 5, 7]):
    layers.append(nn.Linear(w, 2))
for name in ["x", "yy"]:
    layers.append(nn.Linear(len(name), 1))
else:
    layers.append(nn.Linear(9, 9))       # reached: no break

n = 1
while n < 50:
    n *= 3
    if n == 9:
        continue
    layers.append(nn.Linear(n, 1))
else:
    layers.append(nn.Linear(n, n))

k = 0
while True:
    k += 1
    if k >= 4:
        break
layers.append(nn.Linear(k, k))
for x in range(2, 20, 5):
    for y in range(x):
        if y == 2:
            break
    else:
        layers.append(nn.Linear(x, 100))  # only x == 2
model = nn.Sequential(*layers)
""", "model")

case("if_else_on_known_conditions", """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, kind="mlp", width=32, norm=None, depth=2):
        super().__init__()
        if kind == "mlp":
            self.body = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])
        elif kind == "conv":
            self.body = nn.Conv2d(3, width, 3)
        else:
            raise ValueError(kind)
        if norm is None:
            self.norm = nn.Identity()
        elif norm == "bn":
            self.norm = nn.BatchNorm1d(width)
        else:
            self.norm = nn.LayerNorm(width)
        if depth > 1:
            if width >= 32:
                self.head = nn.Linear(width, 10)
            else:
                self.head = nn.Linear(width, 5)
        if not hasattr(self, "head"):
            self.head = None


model = Net("conv", 16, norm="bn")
mlp = Net(norm="ln", depth=3)
""", "Net('conv', 16, norm='bn')", "model", "mlp")

case("functions_methods_and_arguments", """
import torch.nn as nn


def linear(i, o, *, bias=True, scale=1):
    return nn.Linear(i * scale, o * scale, bias=bias)


def stack(*dims, act=None, **kw):
    out = []
    for a, b in zip(dims, dims[1:]):
        out.append(linear(a, b, **kw))
        if act is not None:
            out.append(act())
    return out


def pos_only(a, b, /, c=2):
    return a * b + c


class Net(nn.Module):
    WIDTH = 12

    def __init__(self, n_in=4, *extra, n_out=3, **opts):
        super().__init__()
        self.layers = nn.Sequential(*stack(n_in, *extra, self.WIDTH, act=nn.ReLU, **opts))
        self.head = self.make_head(self.WIDTH, n_out)
        self.aux = Net.build_aux(pos_only(2, 3))
        self.other = self.from_width(5)

    def make_head(self, w, n):
        return nn.Linear(w, n, bias=self._use_bias())

    def _use_bias(self):
        return False

    @staticmethod
    def build_aux(n):
        return nn.Linear(n, n)

    @classmethod
    def from_width(cls, w):
        return nn.Linear(w, cls.WIDTH)


model = Net(4, 6, 8, n_out=2, bias=False, scale=2)
""", "Net(4, 6, 8, n_out=2, bias=False, scale=2)", "model")

case("super_multilevel_and_mixins", """
import torch.nn as nn


class Base(nn.Module):
    def __init__(self, dim):
        super(Base, self).__init__()
        self.dim = dim
        self.stem = nn.Linear(dim, dim)


class Middle(Base):
    def __init__(self, dim, hidden=None):
        super().__init__(dim)
        self.hidden = hidden or dim * 2
        self.mid = nn.Linear(dim, self.hidden)


class Leaf(Middle):
    def __init__(self, dim=8):
        super().__init__(dim, hidden=dim * 3)
        self.out = nn.Linear(self.hidden, 1)


class InitMixin:
    def init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


class HeadMixin:
    def __init__(self, *, num_classes=10, **kw):
        super().__init__(**kw)
        self.head = nn.Linear(self.width, num_classes)


class Trunk(nn.Module):
    def __init__(self, width=16, **kw):
        super().__init__(**kw)
        self.width = width
        self.body = nn.Linear(width, width)


class Classifier(InitMixin, HeadMixin, Trunk):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.init_weights()


class Diamond(Leaf, InitMixin):
    pass


leaf = Leaf(6)
clf = Classifier(width=32, num_classes=5)
"""
, "Leaf(6)", "clf", "Diamond", "Classifier(width=32, num_classes=5)")

case("closures_nested_functions_lambdas", """
import torch.nn as nn


def make_builder(scale):
    count = 0

    def build(n):
        nonlocal count
        count += 1
        return nn.Linear(n * scale, n * scale + count)

    def total():
        return count

    return build, total


build, total = make_builder(2)
a = build(3)
b = build(4)
sq = lambda x: x * x
act = lambda: nn.ReLU()
pick = (lambda kind: {"relu": nn.ReLU, "tanh": nn.Tanh}[kind])("tanh")
ordered = sorted([5, 1, 3], key=lambda v: -v)
mapped = list(map(lambda v: v + 1, filter(lambda v: v > 1, ordered)))
model = nn.Sequential(a, b, act(), pick(), nn.Linear(sq(total() + 1), max(mapped, key=lambda v: v % 5)))
""", "model")

case("functools_partial", """
from functools import partial
import functools
import torch.nn as nn

norm = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
conv3 = functools.partial(nn.Conv2d, kernel_size=3, padding=1, bias=False)


def block(cin, cout, stride, *, norm_layer, groups=1):
    return nn.Sequential(conv3(cin, cout, stride=stride, groups=groups), norm_layer(cout), nn.ReLU())


make = partial(block, norm_layer=norm)
make_dw = partial(make, groups=8)
lin = partial(nn.Linear, 16)


class Net(nn.Module):
    def __init__(self, norm_layer=None):
        super().__init__()
        if norm_layer is None:
            norm_layer = partial(nn.GroupNorm, 4)
        self.a = make(3, 16, 2)
        self.b = make_dw(16, 32, 1)
        self.c = block(32, 32, 1, norm_layer=norm_layer)
        self.fc = lin(10)
        self.nested = partial(partial(nn.Linear, bias=False), 4)(5)


model = Net(norm)
""", "Net(norm)", "model")

case("dataclasses", """
from dataclasses import dataclass, field, replace
import dataclasses
import torch.nn as nn


@dataclass
class Base:
    vocab: int = 100
    dim: int = 16


@dataclass
class Config(Base):
    layers: list = field(default_factory=lambda: [32, 32])
    heads: int = 4
    tags: dict = field(default_factory=dict)
    hidden: int = field(init=False)
    dropout: float = 0.1

    def __post_init__(self):
        self.hidden = self.dim * self.heads
        self.layers = [w + self.dim for w in self.layers]


@dataclasses.dataclass(frozen=True)
class Frozen:
    n: int = 3


class Net(nn.Module):
    def __init__(self, cfg: Config = Config()):
        super().__init__()
        self.emb = nn.Embedding(cfg.vocab, cfg.dim)
        dims = [cfg.dim, *cfg.layers, cfg.hidden]
        self.mlp = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(dims, dims[1:])])
        self.extra = nn.ModuleList([nn.Linear(2, 2) for _ in range(Frozen().n + len(cfg.tags))])


cfg = Config(vocab=50, layers=[8, 8, 8])
small = replace(cfg, dim=4)
model = Net(small)
asdict_model = nn.Linear(sum(v for v in dataclasses.asdict(Frozen(7)).values()), 1)
""", "model", "asdict_model", "Net(small)")

case("namedtuples", """
import collections
from collections import namedtuple
from typing import NamedTuple
import torch.nn as nn


class Stage(NamedTuple):
    channels: int
    blocks: int
    stride: int = 1


Spec = namedtuple("Spec", ["expand", "out", "repeat"], defaults=[2])
Pair = collections.namedtuple("Pair", "a b")

STAGES = [Stage(16, 1), Stage(24, 2, 2), Stage(32, 1)._replace(blocks=3)]
SPECS = [Spec(1, 8), Spec(6, 12, 1)]


class Net(nn.Module):
    def __init__(self, stages=STAGES, specs=SPECS):
        super().__init__()
        layers = []
        cin = 3
        for ch, n, stride in stages:
            for i in range(n):
                layers.append(nn.Conv2d(cin, ch, 3, stride if i == 0 else 1))
                cin = ch
        for s in specs:
            for _ in range(s.repeat):
                layers.append(nn.Conv2d(cin, cin * s.expand, 1))
                layers.append(nn.Conv2d(cin * s.expand, s.out, 1))
                cin = s.out
        p = Pair(cin, len(stages[0]))
        a, b = p
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(a + p.b + b, p[0] + sum(len(Stage._fields) for _ in range(2)))


model = Net()
""", "model", "Net")

case("plain_config_classes_and_class_attributes", """
import torch.nn as nn


class Cfg:
    width = 32
    depth = 2
    acts = ("relu", "relu", "tanh")

    class Head:
        classes = 7


class RunCfg(Cfg):
    depth = 3

    def __init__(self, **overrides):
        for k, v in overrides.items():
            setattr(self, k, v)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes):
        super().__init__()
        self.fc1 = nn.Linear(cin, planes)
        self.fc2 = nn.Linear(planes, planes * self.expansion)


class Bottleneck(BasicBlock):
    expansion = 4

    def __init__(self, cin, planes):
        super().__init__(cin, planes)
        self.fc3 = nn.Linear(planes * self.expansion, planes * type(self).expansion)


class Net(nn.Module):
    def __init__(self, block, cfg):
        super().__init__()
        self.layers = nn.ModuleList()
        cin = cfg.width
        for _ in range(cfg.depth):
            self.layers.append(block(cin, 8))
            cin = 8 * block.expansion
        self.head = nn.Linear(cin, cfg.Head.classes + len(cfg.acts))
        Net.built = getattr(Net, "built", 0) + 1


basic = Net(BasicBlock, Cfg)
bottleneck = Net(Bottleneck, RunCfg(width=16))
""", "basic", "bottleneck")

case("resnet_like", """
import torch.nn as nn


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)


def resnet18(num_classes=1000):
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


def resnet50(num_classes=1000):
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, zero_init_residual=True)
""", "resnet18", "resnet50", expect={"resnet18": 11_689_512, "resnet50": 25_557_032})

# User decorators are taken as the identity (not run): `register` returns its class unchanged, so
# the model is the same, but what it stores (REGISTRY) is not relied on.
case("decorators", """
import functools
import torch
import torch.nn as nn

REGISTRY = {}


def register(name):
    def deco(cls):
        REGISTRY[name] = cls
        return cls
    return deco


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


def identity(obj):
    return obj


@register("mlp")
@identity
class MLP(nn.Module):
    @logged
    def __init__(self, dim=8, hidden=32):
        super().__init__()
        self._hidden = hidden
        self.fc1 = nn.Linear(dim, self.hidden)
        self.fc2 = nn.Linear(self.hidden, self.out_dim)
        self.init_weights()

    @property
    def hidden(self):
        return self._hidden

    @property
    def out_dim(self):
        return self.hidden // 2

    @torch.no_grad()
    def init_weights(self):
        self.fc1.weight.fill_(0.0)
        self.fc1.bias.zero_()


@logged
def build(width=4):
    return MLP(width, hidden=width * 4)


model = build(6)
""", "model", "MLP", "build")

case("generators_building_layers", """
import torch.nn as nn


def pairs(dims):
    for a, b in zip(dims, dims[1:]):
        yield a, b


def blocks(dims, act=True):
    for i, (a, b) in enumerate(pairs(dims)):
        yield nn.Linear(a, b)
        if act and i < len(dims) - 2:
            yield nn.ReLU()


def all_layers():
    yield from blocks([8, 16, 32])
    yield nn.Dropout(0.1)
    yield from (nn.Linear(32, 32) for _ in range(2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*all_layers())
        gen = blocks([4, 5, 6, 7], act=False)   # next() advances: `rest` is the other two
        self.first = next(gen)
        self.rest = nn.ModuleList(list(gen))
        self.names = nn.ModuleDict({f"l{i}": layer for i, layer in enumerate(blocks([2, 3]))})


model = Net()
""", "model", "Net")

case("getattr_setattr_hasattr", """
import torch.nn as nn


class Cfg:
    act = "GELU"
    depth = 3


class Net(nn.Module):
    def __init__(self, cfg=Cfg()):
        super().__init__()
        for i in range(getattr(cfg, "depth", 1)):
            setattr(self, f"layer{i}", nn.Linear(8, 8))
        self.act = getattr(nn, cfg.act)()
        if hasattr(self, "layer2") and not hasattr(self, "layer3"):
            self.last = nn.Linear(8, getattr(cfg, "classes", 5))
        width = getattr(self, "layer0").out_features
        self.proj = nn.Linear(width, self.layer1.in_features * 2)
        if hasattr(nn, "Mish"):
            self.mish = nn.Mish()
        norm_cls = getattr(nn, "LayerNorm")
        self.norm = norm_cls(self.proj.out_features)
        setattr(self, "tied", getattr(self, "layer0"))


model = Net()
""", "model", "Net")

case("isinstance_modules_init_and_freezing", """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, freeze_backbone=True):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        self.scale = nn.Parameter(torch.ones(1, 4))
        self.register_buffer("mask", torch.zeros(4, 4))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif type(m) is nn.Linear:
                nn.init.trunc_normal_(m.weight, std=0.02)
        n_lin = sum(1 for m in self.head.modules() if isinstance(m, nn.Linear))
        self.extra = nn.ModuleList(nn.Linear(n_lin, 1) for _ in range(n_lin))
        if freeze_backbone:
            for p in self.backbone.parameters():
                p.requires_grad = False
        self.extra[0].requires_grad_(False)
        for name, p in self.head.named_parameters():
            if name.endswith("bias"):
                p.requires_grad_(False)
        self.head[1].weight.requires_grad = not isinstance(self.head[1], nn.Conv2d)


model = Net()
""", "model", "Net")

case("string_formatting_and_add_module", """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, num=3, prefix="blk"):
        super().__init__()
        for i in range(num):
            self.add_module("conv%d" % (i + 1), nn.Conv2d(4, 4, 1))
            self.add_module(f"{prefix}_{i:02d}", nn.Linear(i + 1, 2))
            self.add_module("{}.{}".format("norm", i).replace(".", "_"), nn.LayerNorm(4))
        name = "-".join(["a", "b"]).upper() + "%s%03d" % ("x", 7)
        self.register_module(name.lower().replace("-", "_"), nn.Linear(len(name), 1))
        self.stages = nn.ModuleDict()
        for w, tag in zip([2, 4], "ab"):
            self.stages[f"stage_{tag.upper()}{w!s}"] = nn.Linear(w, w * 2)
        self.width = int("16".strip()) + len("%-5s|" % "ab") + int("3" * 2)
        self.fc = nn.Linear(self.width, 1)
        arch = "resnet34"
        if arch.startswith("resnet") and arch[6:].isdigit():
            self.depth = nn.Linear(int(arch.split("resnet")[1]), 1)


model = Net(4)
""", "Net(4)", "model")

case("try_except_and_with", """
import contextlib
import torch
import torch.nn as nn

try:
    from torch.nn import SiLU as Act
except ImportError:
    Act = nn.ReLU

CFG = {"width": 12}
try:
    depth = CFG["depth"]
except KeyError:
    depth = 2
except Exception:
    depth = 100
else:
    depth = 50
finally:
    CFG["seen"] = True

try:
    width = int("not a number")
except (TypeError, ValueError) as err:
    width = CFG["width"] if isinstance(err, ValueError) else 1


class BadWidth(Exception):
    pass


def checked(w):
    if w > 64:
        raise BadWidth("too wide")
    return w


class Ctx:
    def __init__(self):
        self.entered = 0

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, *exc):
        return False


@contextlib.contextmanager
def scope(n):
    yield n * 2


class Net(nn.Module):
    def __init__(self, w=width):
        super().__init__()
        try:
            w = checked(w * 10)
        except BadWidth:
            w = checked(w)
        with Ctx() as c, scope(w) as doubled:
            self.fc = nn.Linear(w + c.entered, doubled)
        with torch.no_grad():
            self.fc.weight.zero_()
        layers = []
        for _ in range(depth):
            try:
                layers.append(nn.Linear(doubled, doubled))
            finally:
                layers.append(Act())
        self.body = nn.Sequential(*layers)


model = Net()
""", "model", "Net")

case("walrus_and_star_unpacking", """
import torch.nn as nn

dims = [10, 20, 30, 40, 50]
first, *middle, last = dims
head, *tail = "abc"
*init, final = (1, 2, 3)
(a, b), c = (4, 5), 6
for x, *rest in [(1, 2, 3), (4, 5)]:
    pass
combined = [*middle, *init, final, *tail] + [len(rest)]


def make(*ws, **kw):
    return nn.Sequential(*(nn.Linear(w, w, **kw) for w in ws))


opts = {"bias": False}
layers = []
if (n := len(middle)) > 2:
    layers.append(nn.Linear(n, n))
big = [y for v in dims if (y := v * 2) > 50]
layers.append(make(*big[:2], **opts))
layers.append(make(*[a, b, c], **{**opts, "bias": True}))
model = nn.Sequential(*layers, nn.Linear(first, last), nn.Linear(len(combined), len(head)))
""", "model")

case("global_constants_modified", """
import torch.nn as nn

WIDTH = 8
DEPTH = 1
SETTINGS = {"classes": 3}
USED = []


def configure(width, depth=2):
    global WIDTH, DEPTH
    WIDTH = width
    DEPTH = depth


configure(24)
SETTINGS["classes"] += 7
WIDTH += 8


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH))
        self.head = nn.Linear(WIDTH, SETTINGS["classes"])
        USED.append(1)


def bump():
    global DEPTH
    DEPTH = DEPTH * 2


bump()
model = Net()
""", "model", "Net")

case("enum_configs", """
import enum
from enum import Enum, IntEnum, auto
import torch.nn as nn


class Size(Enum):
    SMALL = 16
    LARGE = 64


class Act(str, Enum):
    RELU = "relu"
    GELU = "gelu"


class Depth(IntEnum):
    SHALLOW = 1
    DEEP = 3


class Kind(enum.Enum):
    A = auto()
    B = auto()


class Color(str, Enum):
    RED = auto()   # str mix-in without StrEnum: str(1)
    BLUE = "blue"


ACTS = {Act.RELU: nn.ReLU, Act.GELU: nn.GELU}


class Net(nn.Module):
    def __init__(self, size=Size.LARGE, act="gelu", depth=Depth.DEEP):
        super().__init__()
        act = Act(act)
        w = size.value
        self.layers = nn.Sequential(*[nn.Linear(w, w) for _ in range(depth.value)], ACTS[act]())
        self.by_name = nn.Linear(Size["SMALL"].value, len(Size.LARGE.name))
        self.count = nn.Linear(len(list(Size)) + Depth.DEEP.value + Kind.B.value + len(Color.RED.value), 2)
        if size is Size.LARGE and act == Act.GELU and act.value == "gelu":
            self.extra = nn.Linear(w, Size(16).value)
        self.members = nn.ModuleList(nn.Linear(s.value, 1) for s in Size)


model = Net(Size.SMALL, "relu", Depth.SHALLOW)
large = Net()
""", "model", "Net(Size.SMALL, 'relu', Depth.SHALLOW)", "large")

case("copy_itertools_operator", """
import copy
import itertools
import operator
from functools import reduce
import torch.nn as nn


def clones(module, n):
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


widths = list(itertools.accumulate([4, 4, 8]))                 # [4, 8, 16]
chained = list(itertools.chain([1, 2], (3,), range(4, 6)))       # [1, 2, 3, 4, 5]
prod = reduce(operator.mul, [2, 3, 4], 1)                         # 24
combos = list(itertools.product([1, 2], repeat=2))
pairs = list(itertools.combinations(range(4), 2))
cyc = list(itertools.islice([7, 9, 7, 9, 7, 9], 1, 5, 2)) + list(itertools.repeat(9, 2))
shallow = copy.copy(widths)
shallow.append(32)

model = nn.Sequential(
    clones(nn.Linear(widths[-1], widths[-1]), 3),
    nn.Linear(sum(chained), prod),
    nn.Linear(len(combos) + len(pairs), sum(cyc)),
    nn.Linear(len(shallow), len(widths)),
    nn.Linear(operator.add(2, 3), operator.itemgetter(1)([5, 6])),
)
""", "model")

case("next_of_itertools_count_and_cycle", """
import itertools
import torch.nn as nn

ids = itertools.count(4)
first, second = next(ids), next(ids)                  # 4, 5
halves = itertools.count(start=1, step=2)
next(halves)
odd = next(halves)                                    # 3
widths = itertools.cycle([6, 7])
next(widths)
next(widths)
again = next(widths)                                  # 6
empty = next(itertools.cycle([]), 2)                  # the default

model = nn.Sequential(nn.Linear(first, second), nn.Linear(odd, again), nn.Linear(empty, empty))
""", "model")

case("weight_tying_and_parameters", """
import math
import torch
import torch.nn as nn


class LM(nn.Module):
    def __init__(self, vocab=100, dim=16, max_len=32, tie=True):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        self.cls = nn.Parameter(torch.randn(dim) * 0.02)
        self.scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)), requires_grad=False)
        self.register_buffer("causal", torch.tril(torch.ones(max_len, max_len)).view(1, 1, max_len, max_len))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long), persistent=False)
        self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(dim, 4, dim * 4, batch_first=True) for _ in range(2)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        if tie:
            self.head.weight = self.emb.weight
        self.params = nn.ParameterList([nn.Parameter(torch.empty(dim, 2)) for _ in range(2)])
        self.pdict = nn.ParameterDict({"a": nn.Parameter(torch.ones(3))})


model = LM()
untied = LM(tie=False)
""", "model", "untied", "LM")

case("module_containers_and_registration_rules", """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = [nn.Linear(50, 50)]            # a plain list: not registered
        self.plain_dict = {"x": nn.Linear(50, 50)}  # neither
        shared = nn.Linear(6, 6)
        self.repeated = nn.Sequential(*[shared] * 3)  # one module three times: counted once
        self.fc = nn.Linear(100, 100)
        self.fc = nn.Linear(4, 4)                     # replaced
        self.gone = nn.Linear(9, 9)
        del self.gone
        self.also_gone = nn.Linear(9, 9)
        delattr(self, "also_gone")
        self.register_parameter("maybe", None)
        self.seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4), nn.Linear(4, 5))
        self.seq.append(nn.Linear(5, 6))
        del self.seq[1]
        self.head = self.seq[-1]
        self.front = self.seq[:2]
        self.ml = nn.ModuleList([nn.Linear(1, 1)])
        self.ml.extend([nn.Linear(2, 2), nn.Linear(3, 3)])
        self.ml.insert(0, nn.Linear(4, 4))
        self.ml += [nn.Linear(5, 5)]
        self.md = nn.ModuleDict({"a": nn.Linear(1, 2)})
        self.md.update({"b": nn.Linear(2, 3)})
        self.md["c"] = nn.Linear(3, 4)
        self.n_children = nn.Linear(len(list(self.children())), len(self.md) + len(self.ml))


model = Net()
model.fc = nn.Linear(model.fc.in_features, 10)   # fine-tuning: replace the head
model.ml[0].requires_grad_(False)
for p in model.seq.parameters():
    p.requires_grad = False


def frozen_backbone():
    net = Net()
    net.requires_grad_(False)
    net.new_head = nn.Linear(net.fc.out_features, 3)
    return net


def init_fn(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)


applied = Net().apply(init_fn)
""", "model", "frozen_backbone", "applied", "Net")

case("kernel_size_normalisation_and_type_checks", """
import torch.nn as nn


def pair(x):
    return x if isinstance(x, tuple) else (x, x)


def as_list(v, n):
    if isinstance(v, (list, tuple)):
        assert len(v) == n, "length mismatch"
        return list(v)
    return [v] * n


class PatchEmbed(nn.Module):
    def __init__(self, img_size=32, patch_size=4, in_chans=3, embed_dim=48):
        super().__init__()
        img_size, patch_size = pair(img_size), pair(patch_size)
        self.grid = tuple(i // p for i, p in zip(img_size, patch_size))
        self.num_patches = self.grid[0] * self.grid[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.pos = nn.Linear(self.num_patches, 1)


class Net(nn.Module):
    def __init__(self, depths=2, widths=(8, 16), kernel=(3, 5)):
        super().__init__()
        depths = as_list(depths, 2)
        widths = as_list(widths, 2)
        cin = 3
        stages = []
        for d, w in zip(depths, widths):
            for _ in range(d):
                stages.append(nn.Conv2d(cin, w, kernel, padding=tuple(k // 2 for k in pair(kernel))))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.embed = PatchEmbed(img_size=(32, 64), patch_size=8, embed_dim=cin)
        if isinstance(self.embed.proj.kernel_size, tuple) and type(depths) is list:
            self.ok = nn.Linear(int(isinstance(True, int)) + int(isinstance(1.0, (int, float))), 1)


model = Net(depths=[1, 2])
""", "model", "Net(depths=[1, 2])")

case("config_objects_dicts_and_namespaces", """
from types import SimpleNamespace
import torch.nn as nn

CONFIG = {
    "encoder": {"dims": [16, 32], "norm": True},
    "decoder": {"dims": [32, 16], "norm": False},
    "classes": 5,
}


class AttrDict:
    def __init__(self, **values):
        self._values = dict(values)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key):
        return self._values[key]

    def __contains__(self, key):
        return key in self._values


class Cfg:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def get(self, key, default=None):
        return getattr(self, key, default)


def stage(dims, norm):
    layers = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b)]
        if norm:
            layers.append(nn.LayerNorm(b))
    return nn.Sequential(*layers)


class Net(nn.Module):
    def __init__(self, encoder, decoder, classes):
        super().__init__()
        self.encoder = stage(**encoder)
        self.decoder = stage(decoder["dims"], norm=decoder.get("norm", True))
        self.head = nn.Linear(decoder["dims"][-1], classes)


model = Net(**CONFIG)
ad = AttrDict(width=12, depth=2)
ns = SimpleNamespace(width=6, heads=2)
cfg = Cfg(width=10, depth=3)
keys, values = zip(*[("a", 1), ("b", 2)])
lookup = dict(zip(keys, values))
ranked = sorted(lookup.items(), key=lambda kv: -kv[1])
other = nn.Sequential(
    *[nn.Linear(ad.width, ad["width"]) for _ in range(ad.depth if "depth" in ad else 9)],
    nn.Linear(getattr(ad, "heads", 3), 1),
    nn.Linear(ns.width * ns.heads, cfg.width),
    *[nn.Linear(cfg.width, cfg.width) for _ in range(cfg.get("depth", 1))],
    nn.Linear(cfg.get("missing", 7), lookup["b"] + len(ranked[0][0])),
    nn.Linear("%(a)d%(b)d" % {"a": 1, "b": 2} == "12" and 3 or 4, 1),
)
""", "model", "other")

case("recursion_local_classes_and_lambda_defaults", """
import torch.nn as nn


class UNetBlock(nn.Module):
    def __init__(self, ch, depth):
        super().__init__()
        self.down = nn.Conv2d(ch, ch * 2, 3)
        self.inner = UNetBlock(ch * 2, depth - 1) if depth > 1 else nn.Identity()
        self.up = nn.Conv2d(ch * 2, ch, 3)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def make_model(depth=3):
    class Local(nn.Module):
        def __init__(self):
            super().__init__()
            self.unet = UNetBlock(4, depth)
            self.fib = nn.Linear(fib(10), 2)

    return Local()


makers = [lambda i=i: nn.Linear(i + 1, i + 2) for i in range(3)]
late = [lambda: nn.Linear(k, 1) for k in range(2, 5)]   # late binding: k is 4 for all
model = nn.Sequential(*[m() for m in makers], *[f() for f in late])
""", "model", "make_model")

case("positional_encodings_and_tensor_shapes", """
import math
import torch
import torch.nn as nn


class PositionalEncoding(nn.Module):
    def __init__(self, d_model=16, max_len=50):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)


class Net(nn.Module):
    def __init__(self, dim=16, heads=4, tokens=10):
        super().__init__()
        self.pos = PositionalEncoding(dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.rel = nn.Parameter(torch.zeros((2 * tokens - 1) * (2 * tokens - 1), heads))
        coords = torch.stack(torch.meshgrid(torch.arange(tokens), torch.arange(tokens), indexing="ij"))
        self.register_buffer("coords", coords.flatten(1), persistent=False)
        self.attn = nn.MultiheadAttention(dim, heads)
        w = torch.empty(dim, dim * 2)
        self.w = nn.Parameter(w.t().contiguous())
        self.register_buffer("eye", torch.eye(dim).reshape(-1))


model = Net()
""", "model", "Net")


case("template_methods_constructors_and_kwargs", """
import torch
import torch.nn as nn


class Backbone(nn.Module):
    default_width = 8

    def __init__(self, width=None, **kwargs):
        super().__init__()
        self.width = width or self.default_width
        self.num_classes = kwargs.pop("num_classes", 1000)
        kwargs.setdefault("depth", 2)
        self.stem = self.build_stem()
        self.blocks = nn.Sequential(*[self.build_block(i) for i in range(kwargs["depth"])])
        self.head = self.build_head() if self.num_classes else nn.Identity()

    def build_stem(self):
        return nn.Conv2d(3, self.width, 3)

    def build_block(self, i):
        return nn.Conv2d(self.width, self.width, 3)

    def build_head(self):
        return nn.Linear(self.width, self.num_classes)

    @classmethod
    def from_config(cls, cfg):
        cfg = dict(cfg)
        return cls(cfg.pop("width"), **cfg)

    def clone(self):
        return type(self)(self.width, num_classes=self.num_classes)


class Wide(Backbone):
    default_width = 16

    def build_block(self, i):
        block = super().build_block(i)
        return nn.Sequential(block, nn.BatchNorm2d(self.width)) if i % 2 == 0 else block

    @property
    def feature_dim(self):
        return self.width * 2

    def build_head(self):
        return nn.Sequential(nn.Linear(self.width, self.feature_dim), nn.Linear(self.feature_dim, self.num_classes))

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"head"}

    @torch.jit.unused
    def unused(self):
        return None


class Setter(nn.Module):
    def __init__(self):
        super().__init__()
        self._dim = 1
        self.dim = 6
        self.fc = nn.Linear(self.dim, self.dim)

    @property
    def dim(self):
        return self._dim

    @dim.setter
    def dim(self, value):
        self._dim = value * 2


def timm_like(pretrained=False, **kwargs):
    model_args = dict(width=4, depth=3)
    return Wide(**dict(model_args, **kwargs))


a = Wide.from_config({"width": 12, "num_classes": 5, "depth": 3})
b = a.clone()
c = Backbone(num_classes=0)
d = Setter()
""", "a", "b", "c", "d", "timm_like", "Wide")

case("more_builtins_and_sequences", """
import torch.nn as nn

names = ["conv", "bn", "relu", "pool"]
longest = max(names, key=len)
flat = sum([[1, 2], [3]], [])
back = [names[i] for i in range(len(names) - 1, -1, -1)]
pairs = [(i, n) for i, n in enumerate(reversed(names))]
bools = True + True + int(False)
sl = "resnet50_v2"[:-3][6:]
rng = list(range(10))[2:8:3]
cnt = {n: names.count(n) for n in set(names)}
chunk = [names[i:i + 2] for i in range(0, len(names), 2)]
minmax = (min(3, 1, 2), max([4, 8, 6]), min((5, 1), (2, 9))[1])
nested = {"a": {"b": [10, {"c": 20}]}}
deep = nested["a"]["b"][1]["c"] + nested.get("a", {}).get("b")[0]
layers = [nn.Linear(len(longest), len(flat)), nn.Linear(len(back) + bools, int(sl)),
          nn.Linear(sum(rng), len(pairs) + len(cnt) + len(chunk)), nn.Linear(sum(minmax), deep),
          nn.Linear(abs(hash("x") % 1) + 1, 2 if callable(len) else 3),
          nn.Linear(len(repr([1, 2])), len(str(3.5)))]
model = nn.Sequential(*layers)
""", "model")


case("exceptions_defaults_generators_and_assignments", """
import math
import torch.nn as nn

def add(x, acc=[]):
    acc.append(x)
    return len(acc)
for v in range(3):
    n_acc = add(v)
a = nn.Linear(n_acc, 1)

class WidthError(ValueError):
    def __init__(self, w):
        super().__init__(f"bad width {w}")
        self.w = w

def check(w):
    if w % 8:
        raise WidthError(w)
    return w

def safe(w):
    try:
        return check(w)
    except WidthError as e:
        return e.w + (8 - e.w % 8)
    finally:
        pass
b = nn.Linear(safe(13), safe(16))

def first_big(xs):
    for x in xs:
        if x > 10:
            return x
    else:
        return -1
c = nn.Linear(first_big([3, 12, 40]), -first_big([1]))

def gen():
    yield 5
    return
    yield 7
g = gen()
d = nn.Linear(next(g), next(g, 9))

def f(*a, **k):
    return sum(a) + sum(k.values())
e = nn.Linear(f(1, *[2, 3], 4, *(5,), k=1, **{"j": 2}), 1)

w = 3
name = "{0}-{w:>4}|{1:.2f}".format("x", 2.5, w=w) + f"{w:{w}d}" + f"{'ab'!r}" + "%5.1f" % 2.25
h = nn.Linear(len(name), int(0.1 * 30) + math.floor(7 / 2) + True)

lst = [3, 1, 2]
lst.sort()
lst2 = sorted({5, 4})
i = nn.Linear(lst[0] + lst2[0], lst[-1])

x = y = nn.Linear(4, 4)
j = nn.Sequential(x, y)
p, q = 1, 2
p, q = q, p
cfg = {"w": 3}
cfg["w"] *= 2
k = nn.Linear(cfg["w"], p * 10 + q)

class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.n = 0
        for _ in range(3):
            self.n += 1
        self.l = nn.Linear(self.n, 1)
        global GLOBAL_W
        GLOBAL_W = 7
l = Counter()
m = nn.Linear(GLOBAL_W, 1)

def lazy_import():
    from collections import OrderedDict
    import torch.nn as tnn
    return tnn.Sequential(OrderedDict(fc=tnn.Linear(2, 2)))
n = lazy_import()

if __name__ == "__main__":
    import argparse
    args = argparse.ArgumentParser().parse_args()
    n = nn.Linear(args.x, 1)
""", *"a b c d e h i j k l m n".split(), "Counter", "lazy_import")


case("dataclass_details_and_namedtuple_methods", """
import dataclasses
from dataclasses import dataclass, field, fields, InitVar
from typing import ClassVar, List, NamedTuple, Optional
import torch.nn as nn

@dataclass(frozen=True)
class F:
    dim: int = 8
    hidden: int = 0
    registry: ClassVar[dict] = {}
    def __post_init__(self):
        if not self.hidden:
            object.__setattr__(self, "hidden", self.dim * 4)
    @property
    def ratio(self):
        return self.hidden // self.dim

@dataclass
class G:
    base: InitVar[int] = 2
    dims: List[int] = field(default_factory=list)
    n: Optional[int] = None
    def __post_init__(self, base):
        if not self.dims:
            self.dims = [base * i for i in range(1, 4)]
        self.n = len(self.dims)

@dataclass(kw_only=True)
class K:
    a: int
    b: int = 3

class Spec(NamedTuple):
    cin: int
    cout: int
    @property
    def mid(self):
        return (self.cin + self.cout) // 2
    def build(self):
        return nn.Sequential(nn.Linear(self.cin, self.mid), nn.Linear(self.mid, self.cout))

f = F(4)
g = G(base=3)
k = K(a=5)
s = Spec(4, 8)
nf = len(fields(G)) + len(dataclasses.fields(F))
d = dataclasses.asdict(k)
a = nn.Sequential(nn.Linear(f.dim, f.hidden), nn.Linear(f.ratio, g.n), *[nn.Linear(x, 1) for x in g.dims],
                  nn.Linear(k.a, k.b), s.build(), nn.Linear(*s), nn.Linear(nf, sum(d.values())), nn.Linear(**s._asdict() and {"in_features": 2, "out_features": 3}))
b = nn.Linear(len(F.registry) + 1, dataclasses.replace(f, dim=2).hidden)
""", "a", "b")


case("match_statements_and_annotations", """
import torch.nn as nn
from typing import Optional, Union, Sequence, Tuple, Dict, Any, TypeVar, Generic, Literal

T = TypeVar("T")
Shape = Tuple[int, ...]
Act = Union[str, type, None]
Pair = tuple[int, int]

class Box(Generic[T]):
    def __init__(self, v: T):
        self.v = v

def norm(kind: str | None, dim: int) -> nn.Module | None:
    match kind:
        case "bn":
            return nn.BatchNorm1d(dim)
        case "ln" | "layer":
            return nn.LayerNorm(dim)
        case None:
            return nn.Identity()
        case _:
            raise ValueError(kind)

def shape_of(s):
    match s:
        case (h, w):
            return h * w
        case [h, w, d]:
            return h * w * d
        case {"size": n}:
            return n
        case int(n) if n > 0:
            return n
    return 1

class Net(nn.Module):
    def __init__(self, dims: list[int] = [4, 8], kinds: dict[str, int] | None = None,
                 mode: Literal["a", "b"] = "a", extra: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        kinds = kinds or {"bn": 1, "layer": 2, None: 3}
        self.norms = nn.ModuleList([norm(k, dims[0] * v) for k, v in kinds.items()])
        self.fc = nn.Linear(shape_of((2, 3)) + shape_of([1, 2, 3]) + shape_of({"size": 5}) + shape_of(7) + shape_of("x"), Box(dims[-1]).v)
        self.x: nn.Module = nn.Linear(1, 1) if mode == "a" else nn.Linear(2, 2)

model = Net()


from dataclasses import dataclass
from typing import NamedTuple


@dataclass
class Conv:
    cin: int
    cout: int
    k: int = 3


class Lin(NamedTuple):
    i: int
    o: int


class Pool:
    __match_args__ = ("size",)

    def __init__(self, size):
        self.size = size


def build(spec):
    match spec:
        case Conv(cin, cout, k=1):
            return nn.Conv2d(cin, cout, 1, bias=False)
        case Conv(cin=c, cout=o, k=k):
            return nn.Conv2d(c, o, k)
        case Lin(i, o) if i == o:
            return nn.Identity()
        case Lin(i, o):
            return nn.Linear(i, o)
        case Pool(size=2) | Pool(3):
            return nn.MaxPool2d(2)
        case [first, *rest]:
            return nn.Sequential(build(first), *[build(r) for r in rest])
        case {"type": "linear", **kw}:
            return nn.Linear(**kw)
        case str() as name if name.startswith("relu"):
            return nn.ReLU()
        case float(p) | int(p):
            return nn.Dropout(p)
        case _:
            return nn.Identity()


specs = [Conv(3, 8, k=1), Conv(8, 16), Lin(4, 4), Lin(4, 5), Pool(3), {"type": "linear", "in_features": 2, "out_features": 3},
         "relu6", 0.5, object()]
built = nn.Sequential(*[build(s) for s in specs], build([Lin(2, 3), Conv(1, 2, 5)]))
""", "model", "built", "Net")

case("vit_dino_style", """
from functools import partial
import math
import torch
import torch.nn as nn


def drop_path(x, drop_prob: float = 0., training: bool = False):
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()
    return x.div(keep_prob) * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super(DropPath, self).__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop=0., attn_drop=0.,
                 drop_path=0., act_layer=nn.GELU, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)


class PatchEmbed(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        num_patches = (img_size // patch_size) * (img_size // patch_size)
        self.img_size = img_size
        self.patch_size = patch_size
        self.num_patches = num_patches
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)


class VisionTransformer(nn.Module):
    def __init__(self, img_size=[224], patch_size=16, in_chans=3, num_classes=0, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., norm_layer=nn.LayerNorm, **kwargs):
        super().__init__()
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size=img_size[0], patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = nn.ModuleList([
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                  drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[i], norm_layer=norm_layer)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        nn.init.trunc_normal_(self.cls_token, std=.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)


def vit_small(patch_size=16, **kwargs):
    model = VisionTransformer(
        patch_size=patch_size, embed_dim=96, depth=4, num_heads=6, mlp_ratio=4,
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    return model

small = vit_small(drop_path_rate=0.1)
tiny = VisionTransformer(embed_dim=48, depth=3, num_heads=3, qkv_bias=True, num_classes=1000)
""", "small", "tiny", "vit_small")


# ------------------------------------------------------------------ imports across files
case("relative_imports_in_packages", {
    "proj/__init__.py": "",
    "proj/cfg.py": """
        HIDDEN = 24
        class C:
            depth = 2
            width = 12
    """,
    "proj/blocks.py": """
        import torch.nn as nn
        from .cfg import HIDDEN

        class Block(nn.Module):
            def __init__(self, dim, hidden=HIDDEN):
                super().__init__()
                self.fc1 = nn.Linear(dim, hidden)
                self.fc2 = nn.Linear(hidden, dim)
    """,
    "proj/models/__init__.py": "",
    "proj/models/layers.py": """
        import torch.nn as nn

        def head(dim, n):
            return nn.Linear(dim, n)
    """,
    "proj/models/net.py": """
        import torch.nn as nn
        from ..blocks import Block
        from ..cfg import C
        from .layers import head
        from . import layers
        from .. import cfg as config

        class Net(nn.Module):
            def __init__(self, dim=C.width):
                super().__init__()
                self.blocks = nn.Sequential(*[Block(dim) for _ in range(C.depth)])
                self.head = head(dim, config.HIDDEN)
                self.aux = layers.head(config.HIDDEN, 1)

        model = Net()
    """,
}, "model", "Net", target="proj/models/net.py")

case("import_submodule_forms", {
    "lib/__init__.py": "",
    "lib/nets/__init__.py": "",
    "lib/nets/mlp.py": """
        import torch.nn as nn

        class MLP(nn.Module):
            def __init__(self, d=8):
                super().__init__()
                self.fc = nn.Linear(d, d * 2)
    """,
    "lib/nets/consts.py": "WIDTH = 20\n",
    "model.py": """
        import torch.nn as nn
        import lib.nets.mlp as mlp
        import lib.nets.consts
        import lib.nets.mlp

        a = mlp.MLP(lib.nets.consts.WIDTH)
        b = lib.nets.mlp.MLP()
        model = nn.Sequential(a, b)
    """,
}, "model", "a", "b")

case("star_imports", {
    "with_all.py": """
        import torch.nn as nn
        __all__ = ["Public", "WIDTH"]
        WIDTH = 9
        HIDDEN = 99

        class Public(nn.Module):
            def __init__(self, w=WIDTH):
                super().__init__()
                self.fc = nn.Linear(w, w)
    """,
    "without_all.py": """
        import torch.nn as nn
        DEPTH = 3
        _PRIVATE = 1000

        def stack(w):
            return [nn.Linear(w, w) for _ in range(DEPTH)]
    """,
    "model.py": """
        import torch.nn as nn
        HIDDEN = 4      # not in with_all.__all__: kept
        _PRIVATE = 5    # private in without_all: kept
        from with_all import *
        from without_all import *

        model = nn.Sequential(Public(), *stack(WIDTH), nn.Linear(HIDDEN, _PRIVATE), nn.Linear(DEPTH, 1))
    """,
}, "model")

case("package_reexports", {
    "zoo/__init__.py": """
        from .blocks import Block, make_block
        from .heads import *
        from . import heads
        VERSION = 2
    """,
    "zoo/blocks.py": """
        import torch.nn as nn

        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.fc = nn.Linear(d, d)

        def make_block(d):
            return Block(d)
    """,
    "zoo/heads.py": """
        import torch.nn as nn
        __all__ = ["Head"]

        class Head(nn.Linear):
            def __init__(self, d, n=3):
                super().__init__(d, n)
    """,
    "model.py": """
        import torch.nn as nn
        import zoo
        from zoo import Block, Head, make_block

        model = nn.Sequential(Block(4), make_block(zoo.VERSION), Head(5), zoo.heads.Head(2, 2), zoo.Block(3))
    """,
}, "model")

case("config_module_on_extra_paths", {
    "configs/model_cfg.py": """
        from dataclasses import dataclass

        @dataclass
        class ModelConfig:
            vocab: int = 1000
            dim: int = 32
            layers: int = 2

        DEFAULT = ModelConfig(dim=48)
    """,
    "src/train/model.py": """
        import torch.nn as nn
        from model_cfg import DEFAULT, ModelConfig

        class Net(nn.Module):
            def __init__(self, cfg: ModelConfig = DEFAULT):
                super().__init__()
                self.emb = nn.Embedding(cfg.vocab, cfg.dim)
                self.layers = nn.ModuleList(nn.Linear(cfg.dim, cfg.dim) for _ in range(cfg.layers))

        model = Net(ModelConfig(layers=3))
    """,
}, "model", "Net(ModelConfig(layers=3))", target="src/train/model.py", extra_paths=("configs",))

case("installed_package_like_folder", {
    "vendor/site/fancylib/__init__.py": """
        from fancylib.layers import FancyMLP
        from fancylib import layers
        __version__ = "1.0"
    """,
    "vendor/site/fancylib/layers/__init__.py": """
        from .mlp import FancyMLP
    """,
    "vendor/site/fancylib/layers/mlp.py": """
        import torch.nn as nn
        from ..utils import hidden_for

        class FancyMLP(nn.Module):
            def __init__(self, dim, ratio=4):
                super().__init__()
                self.fc1 = nn.Linear(dim, hidden_for(dim, ratio))
                self.fc2 = nn.Linear(hidden_for(dim, ratio), dim)
    """,
    "vendor/site/fancylib/utils.py": """
        def hidden_for(dim, ratio):
            return int(dim * ratio)
    """,
    "app/model.py": """
        import torch.nn as nn
        import fancylib
        from fancylib.layers.mlp import FancyMLP

        model = nn.Sequential(fancylib.FancyMLP(8), FancyMLP(4, ratio=2), fancylib.layers.FancyMLP(2))
    """,
}, "model", target="app/model.py", extra_paths=("vendor/site",))

case("package_with_registry_and_reexports", {
    "mm/__init__.py": """
        from . import models
        from .models import *
        from .version import __version__
    """,
    "mm/models/__init__.py": """
        from .net import *
        from .net import __all__ as _net_all
        __all__ = list(_net_all) + ["tiny"]
        from .net import tiny
    """,
    "mm/models/net.py": """
        import torch.nn as nn
        from ..ops import *
        from .. import ops
        from ..ops.conv import ConvBNAct as CBA

        __all__ = ["Net", "net_small"]

        class Net(nn.Module):
            def __init__(self, widths=(16, 32), dim=32):
                super().__init__()
                layers = []
                cin = 3
                for w in widths:
                    layers.append(CBA(cin, w, s=2))
                    cin = w
                self.stem = nn.Sequential(*layers)
                self.attn = Attention(dim, qkv_bias=True)
                self.extra = ops.conv_bn(dim, dim)

        def net_small():
            return Net((8, 32))

        def tiny():
            return Net((4, 32), dim=32)
    """,
    "mm/ops/__init__.py": """
        from .conv import ConvBNAct, conv_bn
        from .attention import Attention
        __all__ = ["ConvBNAct", "conv_bn", "Attention"]
    """,
    "mm/ops/attention.py": """
        import torch.nn as nn
        from mm.ops.conv import ConvBNAct

        class Attention(nn.Module):
            def __init__(self, dim, heads=4, qkv_bias=False):
                super().__init__()
                assert dim % heads == 0
                self.heads = heads
                self.scale = (dim // heads) ** -0.5
                self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
                self.proj = nn.Linear(dim, dim)
                self.pos = ConvBNAct(dim, dim, 3)
    """,
    "mm/ops/conv.py": """
        import torch.nn as nn
        from ..registry import register_op, OPS

        class ConvBNAct(nn.Sequential):
            def __init__(self, cin, cout, k=3, s=1, act=True):
                super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout))
                if act:
                    self.add_module("act", nn.SiLU())

        @register_op("conv_bn")
        def conv_bn(cin, cout):
            return ConvBNAct(cin, cout, act=False)
    """,
    "mm/registry.py": """
        OPS = {}
        def register_op(name):
            def wrap(fn):
                OPS[name] = fn
                return fn
            return wrap
    """,
    "mm/version.py": """
        __version__ = "0.1"
    """,
    "model.py": """
        import mm
        from mm import Net, net_small, tiny
        import mm.ops.attention as att
        a = Net()
        b = net_small()
        c = mm.models.tiny()
        d = att.Attention(8)
        e = mm.models.net.Net(widths=[32])
    """,
}, "a", "b", "c", "d", "e")


# `lru_cache`: a second call with the same arguments does not run the function again (its side
# effects happen once); `cache_clear` forgets; unhashable or instance arguments are not cached
# by vramlint (Python raises for a list; caches an instance by identity), which runs them again.
case("lru_cache_runs_once_per_arguments", {
    "widths.py": """
        import functools
        calls = []

        @functools.lru_cache(maxsize=None)
        def width(n, scale=2):
            calls.append(n)
            return n * scale

        @functools.cache
        def depth():
            calls.append("depth")
            return len(calls)
    """,
    "model.py": """
        import functools
        import torch.nn as nn
        import widths

        a = widths.width(8) + widths.width(8) + widths.width(8, scale=3) + widths.width(8)
        d1, d2 = widths.depth(), widths.depth()
        model = nn.Linear(a + len(widths.calls), d1 + d2)
        widths.width.cache_clear()
        widths.width(8)
        again = nn.Linear(len(widths.calls), 1)

        @functools.lru_cache()
        def local(n):
            return nn.Linear(n, n)

        shared = nn.ModuleList([local(4), local(4)])  # one layer, twice: 20 parameters
    """,
}, "model", "again", "shared")


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_matches_torch(tmp_path: Path, c: Case) -> None:
    run_case(tmp_path, c)


# ---------------------------------------------- the network: 1000 -> 4 x 100 -> 10
QUESTION_NETWORK = """
from collections import OrderedDict
import torch.nn as nn

IN, HIDDEN, OUT, DEPTH = 1000, 100, 10, 4

sequential = nn.Sequential(
    nn.Linear(1000, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 100), nn.ReLU(),
    nn.Linear(100, 10),
)


class LoopNet(nn.Module):
    def __init__(self, n_in=IN, hidden=HIDDEN, n_out=OUT, depth=DEPTH):
        super().__init__()
        self.layers = nn.ModuleList()
        d = n_in
        for _ in range(depth):
            self.layers.append(nn.Linear(d, hidden))
            d = hidden
        self.out = nn.Linear(d, n_out)
        self.act = nn.ReLU()


dims = [IN] + [HIDDEN] * DEPTH + [OUT]
comprehension = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])

named = nn.Sequential(OrderedDict(
    [(f"fc{i}", nn.Linear(dims[i], dims[i + 1])) for i in range(len(dims) - 1)]
))


def make_net(sizes=(IN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, OUT)):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


loop = LoopNet()
"""


def test_question_network_131410(tmp_path: Path) -> None:
    checks = ["sequential", "LoopNet", "loop", "comprehension", "named", "make_net"]
    c = Case("question", {"model.py": QUESTION_NETWORK}, checks)
    models = run_case(tmp_path, c)
    assert 1000 * 100 + 100 + 3 * (100 * 100 + 100) + 100 * 10 + 10 == 131410
    for check in checks:
        assert models[check].params.total == 131410, check
        assert models[check].params.trainable == 131410, check
    assert models["LoopNet"].kind == "class"
    assert models["loop"].kind == "instance"
    assert models["make_net"].kind == "factory"


def test_same_module_names_in_two_projects(tmp_path: Path) -> None:
    """Two projects analysed in turn, each with its own `blocks.py` and `nets` package: each
    file sees its own modules (the analysis keeps library modules between files)."""
    for width in (3, 5, 3):
        root = tmp_path / f"project{width}"
        case = Case(f"project{width}", {
            "blocks.py": f"""
                import torch.nn as nn
                WIDTH = {width}
                def block():
                    return nn.Linear(WIDTH, WIDTH)
            """,
            "nets/__init__.py": "from .head import Head\n",
            "nets/head.py": f"""
                import torch.nn as nn
                class Head(nn.Linear):
                    def __init__(self):
                        super().__init__({width}, 1)
            """,
            "model.py": """
                import torch.nn as nn
                from blocks import block, WIDTH
                from nets import Head
                model = nn.Sequential(block(), nn.Linear(WIDTH, WIDTH), Head())
            """,
        }, ["model"])
        models = run_case(root, case)
        assert models["model"].params.total == 2 * (width * width + width) + width + 1
