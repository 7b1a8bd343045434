"""Tracing a model's forward on given inputs: every module's output shape, against real torch
(forward hooks on the same model, built on the meta device)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

import vramlint
from vramlint.settings import InputSpec

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]

CNN = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + idt)


class ResNetish(nn.Module):
    def __init__(self, widths=(16, 32, 64), classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        blocks = []
        cin = widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class Tagger(nn.Module):
    def __init__(self, vocab=100, dim=32, hidden=48, tags=7):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.attn = nn.MultiheadAttention(2 * hidden, 4, batch_first=True)
        self.out = nn.Linear(2 * hidden, tags)

    def forward(self, tokens):
        h, _ = self.rnn(self.emb(tokens))
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.out(a + h)


class PatchViT(nn.Module):
    def __init__(self, image=32, patch=8, dim=48, depth=2, heads=4, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.encoder(x)[:, 0])
'''


def _first_tensor_shape(out: Any) -> tuple[int, ...] | None:
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        for x in out:
            s = _first_tensor_shape(x)
            if s is not None:
                return s
    return None


def torch_shapes(model: Any, *inputs: Any) -> dict[str, tuple[int, ...]]:
    seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, m in model.named_modules():
        def hook(mod: Any, args: Any, out: Any, name: str = name) -> None:
            s = _first_tensor_shape(out)
            if s is not None:
                seen.setdefault(name, s)
        hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    return seen


def vramlint_shapes(node: vramlint.ModuleNode) -> dict[str, tuple[int | None, ...]]:
    out = {node.path: node.output_shape} if node.output_shape is not None else {}
    for child in node.children:
        out.update(vramlint_shapes(child))
    return out


def load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


CASES = [
    # (file, model name in the file, how real torch builds it, inputs)
    ("cnn", "ResNetish", lambda m: m.ResNetish(), [InputSpec((3, 64, 64))]),
    ("cnn", "Tagger", lambda m: m.Tagger(), [InputSpec((12,), "int64")]),
    ("cnn", "PatchViT", lambda m: m.PatchViT(), [InputSpec((3, 32, 32))]),
    ("mlp", "MLP", lambda m: m.MLP(), [InputSpec((1000,))]),
    ("gpt", "GPT", lambda m: m.GPT(m.GPTConfig()), [InputSpec((64,), "int64")]),
]


@pytest.mark.parametrize(("file", "name", "build", "inputs"), CASES, ids=[c[1] for c in CASES])
def test_every_module_output_shape_matches_torch(file: str, name: str, build: Any, inputs: list[InputSpec],
                                                 tmp_path: Path) -> None:
    if file == "cnn":
        path = tmp_path / "cnn.py"
        path.write_text(CNN)
    else:
        path = ROOT / "examples" / f"{file}.py"
    batch = 4
    result = vramlint.analyze_file(str(path), vramlint.Settings(inputs=tuple(inputs), batch_size=batch))
    (model,) = [m for m in result.models if m.name == name]
    assert model.forward_unknowns == [], [u.reason for u in model.forward_unknowns]
    assert model.tree is not None
    ours = vramlint_shapes(model.tree)

    module = load(path, f"trace_{file}_{name}")
    with torch.device("meta"):
        real = build(module)
        args = [torch.zeros(batch, *spec.shape, dtype=getattr(torch, spec.dtype)) for spec in inputs]
        if any(spec.dtype == "int64" for spec in inputs):
            args = [a if a.dtype != torch.int64 else torch.zeros_like(a) for a in args]
        theirs = torch_shapes(real, *args)
    assert ours == theirs
    assert model.output_shape == theirs[""]


def test_without_inputs_there_is_no_trace() -> None:
    result = vramlint.analyze_file(str(ROOT / "examples" / "mlp.py"))
    assert all(m.output_shape is None and m.tree is not None and m.tree.output_shape is None for m in result.models)
