"""Output shapes of layers and functions, against real torch.

Each case builds a layer, calls it on a zero tensor inside a module's __init__ and records the
output's dimensions as parameters (`d0`, `d1`...), the pattern model code uses to size a layer
from a dummy forward, and its dtype as a buffer. vramlint's tree must show the same dimensions
and dtype torch computes. The small modules defined in PROBE give the cases statements (in-place
updates) and forwards that loop over containers and return tuples or dicts.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import vramlint

torch = pytest.importorskip("torch")

PROBE = """
import torch
import torch.nn as nn
import torch.utils.checkpoint
import torch.nn.functional as F

class InPlace(nn.Module):
    def forward(self, x, y):
        x += y
        x *= 2
        x.mul_(2)
        x[0] = 1
        return x.relu_()

class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.layers.append(nn.Linear(4, 6))
        self.heads = nn.ModuleDict({{"a": nn.Linear(6, 2), "b": nn.Linear(6, 5)}})

    def forward(self, x):
        for i, layer in enumerate(self.layers[:-1]):
            x = x + layer(x) * i
        x = self.layers[-1](x)
        outs = {{name: head(x) for name, head in self.heads.items()}}
        for name in self.heads:
            outs[name + "2"] = self.heads[name](x).sum(-1)
        return x, outs

class InstanceForward(nn.Module):
    # timm's fasternet: the forward is chosen in __init__ and set on the instance
    def __init__(self, split=True):
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.forward = self.forward_split if split else self.forward_plain

    def forward_plain(self, x):
        return self.proj(x)

    def forward_split(self, x):
        return self.proj(x).split(2, -1)[0]

class OverriddenForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.forward = self.forward_wide

    def forward(self, x):
        return x

    def forward_wide(self, x):
        return torch.cat([x, x], -1)

class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        with torch.no_grad():
            y = {call}
        while isinstance(y, tuple):
            y = y[0]
        for i, d in enumerate(y.shape):
            setattr(self, f"d{{i}}", nn.Parameter(torch.zeros(d)))
        self.register_buffer("dtype", torch.zeros((), dtype=y.dtype))

probe = Probe()
"""

CASES = {
    "linear": "nn.Linear(7, 5)(torch.zeros(3, 4, 7))",
    "linear-unbatched": "nn.Linear(7, 5)(torch.zeros(7))",
    "bilinear": "nn.Bilinear(3, 4, 6)(torch.zeros(2, 3), torch.zeros(2, 4))",
    "conv1d": "nn.Conv1d(3, 8, 5, stride=2, padding=1)(torch.zeros(2, 3, 31))",
    "conv2d": "nn.Conv2d(3, 8, 3, stride=2, padding=1)(torch.zeros(2, 3, 17, 17))",
    "conv2d-dilated": "nn.Conv2d(3, 8, (3, 5), dilation=(2, 1), padding=(1, 2))(torch.zeros(1, 3, 20, 21))",
    "conv2d-same": "nn.Conv2d(3, 4, 5, padding='same')(torch.zeros(1, 3, 9, 11))",
    "conv2d-unbatched": "nn.Conv2d(3, 4, 3)(torch.zeros(3, 9, 9))",
    "conv3d": "nn.Conv3d(2, 4, 3, stride=(1, 2, 2))(torch.zeros(1, 2, 8, 9, 10))",
    "conv-transpose1d": "nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1)(torch.zeros(1, 4, 10))",
    "conv-transpose2d": "nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)(torch.zeros(1, 4, 7, 7))",
    "maxpool2d": "nn.MaxPool2d(3, stride=2)(torch.zeros(1, 2, 15, 16))",
    "maxpool2d-ceil": "nn.MaxPool2d(3, stride=2, ceil_mode=True)(torch.zeros(1, 2, 14, 16))",
    "maxpool2d-ceil-padding": "nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True)(torch.zeros(1, 1, 5, 6))",
    "maxpool1d-indices": "nn.MaxPool1d(2, return_indices=True)(torch.zeros(1, 3, 9))",
    "avgpool2d": "nn.AvgPool2d(2, stride=2, padding=1)(torch.zeros(2, 3, 9, 9))",
    "avgpool3d": "nn.AvgPool3d(2)(torch.zeros(1, 1, 4, 6, 8))",
    "adaptive-avg": "nn.AdaptiveAvgPool2d((1, 1))(torch.zeros(2, 5, 9, 9))",
    "adaptive-avg-none": "nn.AdaptiveAvgPool2d((None, 3))(torch.zeros(2, 5, 9, 9))",
    "adaptive-max1d": "nn.AdaptiveMaxPool1d(4)(torch.zeros(2, 5, 9))",
    "batchnorm": "nn.BatchNorm2d(3)(torch.zeros(2, 3, 4, 4))",
    "layernorm": "nn.LayerNorm(6)(torch.zeros(2, 5, 6))",
    "groupnorm": "nn.GroupNorm(2, 4)(torch.zeros(2, 4, 3))",
    "relu": "nn.ReLU()(torch.zeros(2, 3))",
    "gelu-dropout": "nn.Dropout(0.1)(nn.GELU()(torch.zeros(2, 3, 4)))",
    "glu": "nn.GLU()(torch.zeros(2, 8))",
    "softmax": "nn.Softmax(dim=-1)(torch.zeros(2, 3))",
    "flatten": "nn.Flatten()(torch.zeros(2, 3, 4, 5))",
    "flatten-range": "nn.Flatten(0, 1)(torch.zeros(2, 3, 4, 5))",
    "unflatten": "nn.Unflatten(1, (2, -1))(torch.zeros(3, 8))",
    "embedding": "nn.Embedding(10, 4)(torch.zeros(2, 7, dtype=torch.long))",
    "embedding-bag": "nn.EmbeddingBag(10, 4)(torch.zeros(3, 5, dtype=torch.long))",
    "lstm": "nn.LSTM(6, 5, 2)(torch.zeros(7, 3, 6))",
    "lstm-batch-first-bi": "nn.LSTM(6, 5, batch_first=True, bidirectional=True)(torch.zeros(3, 7, 6))",
    "lstm-proj": "nn.LSTM(6, 5, proj_size=2)(torch.zeros(7, 3, 6))",
    "gru-unbatched": "nn.GRU(6, 5)(torch.zeros(7, 6))",
    "rnn-hidden": "nn.RNN(6, 5, 3)(torch.zeros(7, 2, 6))[1]",
    "lstm-cell": "nn.LSTMCell(6, 5)(torch.zeros(3, 6))",
    "gru-cell": "nn.GRUCell(6, 5)(torch.zeros(3, 6))",
    "mha": "nn.MultiheadAttention(8, 2)(torch.zeros(5, 3, 8), torch.zeros(6, 3, 8), torch.zeros(6, 3, 8))",
    "mha-weights": "nn.MultiheadAttention(8, 2, batch_first=True)(torch.zeros(3, 5, 8), torch.zeros(3, 6, 8), torch.zeros(3, 6, 8))[1]",
    "encoder-layer": "nn.TransformerEncoderLayer(8, 2, 16)(torch.zeros(5, 3, 8))",
    "encoder": "nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)(torch.zeros(5, 3, 8))",
    "transformer": "nn.Transformer(8, 2, 1, 1, 16)(torch.zeros(5, 3, 8), torch.zeros(4, 3, 8))",
    "upsample": "nn.Upsample(scale_factor=2)(torch.zeros(1, 3, 5, 6))",
    "pixel-shuffle": "nn.PixelShuffle(2)(torch.zeros(1, 8, 3, 4))",
    "zero-pad": "nn.ZeroPad2d((1, 2, 3, 4))(torch.zeros(1, 2, 5, 5))",
    "sequential": "nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))(torch.zeros(2, 3, 8, 8))",
    "loss": "nn.CrossEntropyLoss()(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)).unsqueeze(0)",
    "F.linear": "F.linear(torch.zeros(2, 3), torch.zeros(5, 3))",
    "F.conv2d": "F.conv2d(torch.zeros(1, 3, 9, 9), torch.zeros(4, 3, 3, 3), stride=2)",
    "F.max_pool2d": "F.max_pool2d(torch.zeros(1, 3, 9, 9), 2)",
    "F.adaptive_avg_pool2d": "F.adaptive_avg_pool2d(torch.zeros(1, 3, 9, 9), (2, 3))",
    "F.interpolate": "F.interpolate(torch.zeros(1, 3, 4, 5), size=(8, 9))",
    "F.sdpa": "F.scaled_dot_product_attention(torch.zeros(2, 4, 5, 8), torch.zeros(2, 4, 6, 8), torch.zeros(2, 4, 6, 3))",
    "F.pad": "F.pad(torch.zeros(1, 2, 3), (1, 1))",
    "F.embedding": "F.embedding(torch.zeros(3, 4, dtype=torch.long), torch.zeros(10, 6))",
    "F.relu-view": "F.relu(torch.zeros(2, 3, 4)).view(2, -1)",
    "einsum": "torch.einsum('b h i d, b h j d -> b h i j', torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 6, 4))",
    "einsum-implicit": "torch.einsum('ij,jk', torch.zeros(3, 4), torch.zeros(4, 5))",
    "checkpoint": "torch.utils.checkpoint.checkpoint(nn.Linear(4, 6), torch.zeros(2, 4), use_reentrant=False)",
    "checkpoint-sequential": "torch.utils.checkpoint.checkpoint_sequential(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)), 2, torch.zeros(2, 4), use_reentrant=False)",
    "tensor-ops": "torch.cat([torch.zeros(2, 3), torch.ones(2, 5)], dim=1).unsqueeze(0).transpose(1, 2)",
    # tensor methods and torch functions: shapes
    "reshape-view": "torch.reshape(torch.zeros(2, 3, 4).reshape(4, -1).reshape((3, 8)).view(-1), (-1, 3)).view(2, 4, 3)",
    "flatten-method": "torch.flatten(torch.zeros(2, 3, 4, 5).flatten(-2), 1).unsqueeze(0).flatten(0, 1)",
    "flatten-scalar": "torch.zeros(()).flatten()",
    "permute-contiguous": "torch.permute(torch.zeros(2, 3, 4, 5), (0, 2, 3, 1)).contiguous().permute(-1, 0, 2, 1)",
    "transpose-swapaxes-t": "torch.zeros(2, 3, 4).transpose(-1, 0).swapaxes(1, 2).mT[0].t()",
    "split-int": "torch.zeros(7, 4).split(3)[-1]",
    "split-sections": "torch.split(torch.zeros(2, 7), [2, 5], dim=1)[1]",
    "split-last-dim": "torch.zeros(2, 9).split(4, -1)[2]",
    "chunk": "torch.zeros(2, 7).chunk(3, dim=1)[2]",
    "chunk-fewer": "torch.chunk(torch.zeros(5, 2), 4)[-1]",
    "cat-promotes": "torch.cat((torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 1)), -1)",
    "stack": "torch.stack([torch.stack((torch.zeros(3), torch.ones(3)), 1)] * 4, dim=-1)",
    "stack-promotes": "torch.stack([torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.float64)])",
    "index-int-slice": "torch.zeros(4, 5, 6)[1, :3, ::2]",
    "index-negative": "torch.zeros(4, 5, 6)[-2:, 1:-1, -1]",
    "index-none-ellipsis": "torch.zeros(4, 5, 6)[None, ..., None, -1]",
    "index-ellipsis-step": "torch.zeros(2, 3, 8)[..., 1::3]",
    "index-list": "torch.zeros(4, 5, 6)[:, [0, 2, -1]]",
    "index-tensor": "torch.zeros(10, 6)[torch.zeros(2, 3, dtype=torch.long)]",
    "index-tensor-middle": "torch.zeros(4, 10, 6)[:, torch.arange(3)]",
    "index-tensors-adjacent": "torch.zeros(4, 5, 6)[:, torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, dtype=torch.long)]",
    "index-tensors-apart": "torch.zeros(4, 5, 6)[torch.arange(2), :, torch.zeros(3, 1, dtype=torch.long)]",
    "index-tensor-int": "torch.zeros(4, 5, 6)[torch.arange(2), 0, [1, 2]]",
    "index-int-then-list": "torch.zeros(4, 5, 6)[0, :, [1, 2]]",
    "index-bool-scalar": "torch.zeros(4, 5)[:, False]",
    "squeeze-unsqueeze": "torch.zeros(1, 3, 1, 4).squeeze().unsqueeze(-1).unsqueeze(1)",
    "squeeze-dims": "torch.squeeze(torch.zeros(1, 3, 1, 4, 1).squeeze(2).squeeze(1), -1).squeeze((0, 1))",
    "expand": "torch.zeros(3, 1).expand(2, -1, 4).expand(torch.Size([5, 2, 3, 4]))",
    "expand-as": "torch.zeros(3, 1).expand_as(torch.zeros(2, 3, 4))",
    "repeat": "torch.zeros(2, 3).repeat(2, 1, 3).repeat((1, 2, 1))",
    "matmul-1d-1d": "torch.zeros(3) @ torch.zeros(3)",
    "matmul-1d-2d": "torch.zeros(3) @ torch.zeros(3, 5)",
    "matmul-2d-1d": "torch.matmul(torch.zeros(4, 3), torch.zeros(3))",
    "matmul-1d-batched": "torch.zeros(3).matmul(torch.zeros(2, 3, 5))",
    "matmul-batched-1d": "torch.zeros(2, 4, 3) @ torch.zeros(3)",
    "matmul-broadcast": "torch.zeros(2, 1, 4, 3) @ torch.zeros(5, 3, 6)",
    "matmul-int": "torch.zeros(2, 3, dtype=torch.long) @ torch.zeros(3, 5, dtype=torch.long)",
    "bmm-mm": "torch.bmm(torch.zeros(2, 4, 3), torch.zeros(2, 3, 5)).bmm(torch.zeros(2, 5, 1))[0].mm(torch.zeros(1, 6))",
    # elementwise: broadcasting and dtype promotion
    "broadcast": "torch.zeros(4, 1, 3) + torch.zeros(5, 1) * torch.ones(3) - torch.ones(1, 1, 1, 1)",
    "int-times-float-scalar": "torch.zeros(2, 3, dtype=torch.long) * 2.5",
    "int-true-divide": "torch.arange(6).view(2, 3) / 2",
    "int-floor-divide": "torch.arange(6).view(2, 3) // 2 + 1",
    "int-plus-float-tensor": "torch.arange(3) + torch.zeros(2, 1)",
    "int32-plus-int": "torch.zeros(2, dtype=torch.int32) + 2",
    "int32-plus-zero-dim": "torch.zeros(2, dtype=torch.int32) + torch.tensor(3)",
    "uint8-times-int": "torch.zeros(2, dtype=torch.uint8) * 2",
    "half-times-float": "2.0 * torch.zeros(2, dtype=torch.float16)",
    "half-plus-zero-dim-double": "torch.zeros(2, dtype=torch.float16) + torch.zeros((), dtype=torch.float64)",
    "int-plus-zero-dim-double": "torch.arange(3) + torch.tensor(2.5, dtype=torch.float64)",
    "float-plus-double": "torch.zeros(2, dtype=torch.float64) + torch.zeros(3, 1)",
    "half-plus-bfloat16": "torch.zeros(2, dtype=torch.float16) + torch.zeros(2, dtype=torch.bfloat16)",
    "uint8-plus-int8": "torch.zeros(2, dtype=torch.uint8) - torch.zeros(2, dtype=torch.int8)",
    "bool-plus-int": "torch.zeros(2, dtype=torch.bool) + 1",
    "bool-plus-float": "torch.zeros(2, dtype=torch.bool) + 1.5",
    "compare": "torch.zeros(2, 1) > torch.zeros(3)",
    "compare-and": "(torch.arange(3) == 1) & (torch.zeros(2, 1) <= 0.5)",
    "in-place": "InPlace()(torch.zeros(2, 3), torch.ones(3, dtype=torch.float64))",
    "in-place-methods": "F.relu_(torch.zeros(2, 3).mul_(2).add_(1).relu_())",
    "F.relu-inplace": "F.relu(torch.zeros(2, 3), inplace=True)",
    # activations and softmax
    "activations": "F.silu(F.gelu(F.leaky_relu(torch.sigmoid(torch.tanh(F.elu(torch.zeros(2, 3)))), 0.1)))",
    "activation-layers": "nn.Hardswish()(nn.LeakyReLU(0.2)(nn.SiLU()(nn.Tanh()(nn.Sigmoid()(torch.zeros(2, 3))))))",
    "sigmoid-of-int": "torch.sigmoid(torch.arange(3))",
    "relu-of-int": "torch.arange(3).relu()",
    "exp-sqrt-of-int": "torch.arange(3).exp() + torch.arange(3).sqrt()",
    "softmax-fns": "torch.log_softmax(F.softmax(torch.zeros(2, 3), dim=-1).softmax(0), 1)",
    "F.softmax-dtype": "F.softmax(torch.zeros(2, 3, dtype=torch.float16), dim=-1, dtype=torch.float32)",
    "F.log_softmax-dtype": "F.log_softmax(torch.zeros(2, 3), -1, dtype=torch.float64)",
    "softmax-method-dtype": "torch.zeros(2, 3).softmax(-1, dtype=torch.float64)",
    # attention, resizing, pooling
    "F.sdpa-mask": "F.scaled_dot_product_attention(torch.zeros(2, 5, 8), torch.zeros(2, 6, 8), torch.zeros(2, 6, 4), attn_mask=torch.ones(5, 6, dtype=torch.bool))",
    "F.sdpa-causal-gqa": "F.scaled_dot_product_attention(torch.zeros(1, 4, 5, 8), torch.zeros(1, 2, 5, 8), torch.zeros(1, 2, 5, 8), is_causal=True, enable_gqa=True)",
    "F.interpolate-scale": "F.interpolate(torch.zeros(1, 2, 5, 7), scale_factor=1.5, mode='bilinear', align_corners=False)",
    "F.interpolate-scale-tuple": "F.interpolate(torch.zeros(1, 2, 5, 7), scale_factor=(2, 0.5))",
    "F.interpolate-1d": "F.interpolate(torch.zeros(1, 2, 5), scale_factor=3, mode='linear')",
    "F.interpolate-size-int": "F.interpolate(torch.zeros(1, 2, 5, 7), size=4, mode='nearest')",
    "F.interpolate-3d": "F.interpolate(torch.zeros(1, 2, 3, 4, 5), size=(2, 4, 6), mode='trilinear')",
    "maxpool1d-ceil-dilation": "nn.MaxPool1d(3, stride=2, dilation=2, ceil_mode=True)(torch.zeros(2, 3, 12))",
    "maxpool2d-indices": "nn.MaxPool2d(2, return_indices=True)(torch.zeros(1, 2, 7, 6))[1]",
    "avgpool1d-ceil": "nn.AvgPool1d(3, stride=2, ceil_mode=True)(torch.zeros(2, 3, 10))",
    "avgpool2d-ceil-padding": "nn.AvgPool2d(3, 2, padding=1, ceil_mode=True)(torch.zeros(1, 1, 6, 7))",
    "adaptive-avg1d-unbatched": "nn.AdaptiveAvgPool1d(5)(torch.zeros(2, 8))",
    "adaptive-avg2d-upsample": "nn.AdaptiveAvgPool2d(7)(torch.zeros(1, 3, 5, 5))",
    "adaptive-max2d-indices": "nn.AdaptiveMaxPool2d((2, 3), return_indices=True)(torch.zeros(1, 2, 7, 6))[1]",
    "F.max_pool1d": "F.max_pool1d(torch.zeros(2, 3, 11), 3, 2, 1)",
    "F.max_pool2d-indices": "F.max_pool2d(torch.zeros(1, 3, 9, 9), 2, ceil_mode=True, return_indices=True)[1]",
    "F.avg_pool1d": "F.avg_pool1d(torch.zeros(2, 3, 11), 4, stride=3, padding=2, ceil_mode=True)",
    "F.avg_pool2d": "F.avg_pool2d(torch.zeros(1, 3, 9, 10), (2, 3), stride=(1, 2))",
    "F.adaptive_max_pool2d-indices": "F.adaptive_max_pool2d(torch.zeros(1, 3, 9, 9), 4, return_indices=True)[1]",
    "F.adaptive_avg_pool1d": "F.adaptive_avg_pool1d(torch.zeros(2, 3, 11), 4)",
    # factories
    "arange-int": "torch.arange(2, 11, 3)",
    "arange-float": "torch.arange(0, 1, 0.25)",
    "arange-float-end": "torch.arange(10.0)",
    "arange-dtype": "torch.arange(5, dtype=torch.float16)",
    "zeros-int32": "torch.zeros((2, 3), dtype=torch.int32)",
    "ones-bool": "torch.ones([2, 3], dtype=torch.bool)",
    "zeros-size-kw": "torch.zeros(size=(2, 3))",
    "randn-double": "torch.randn(2, 3, dtype=torch.float64)",
    "randn-size": "torch.randn(torch.Size([2, 3]))",
    "full-int": "torch.full((2, 3), 7)",
    "full-float": "torch.full([2], 1.5)",
    "full-bool": "torch.full((2, 2), True)",
    "full-dtype": "torch.full((2,), 3, dtype=torch.float16)",
    # sizes
    "size-shape-dim": "(lambda x: torch.zeros(x.size(-1), x.dim(), *x.shape[1:], x.size()[0], x.ndim, len(x.shape)))(torch.zeros(2, 3, 4))",
    # forwards: containers, tuples, dicts
    "module-list-loop": "Blocks()(torch.zeros(2, 3, 4))",
    "module-dict-return": "Blocks()(torch.zeros(2, 4))[1]['b']",
    "module-dict-index": "Blocks()(torch.zeros(2, 4))[1]['a2']",
    "instance-forward": "InstanceForward(True)(torch.zeros(2, 4))",
    "instance-forward-plain": "InstanceForward(False)(torch.zeros(2, 4))",
    "instance-forward-over-class": "OverriddenForward()(torch.zeros(2, 3))",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shape_matches_torch(name: str, tmp_path: Path) -> None:
    source = PROBE.format(call=CASES[name])
    path = tmp_path / "probe.py"
    path.write_text(source)
    torch.manual_seed(0)
    real = runpy.run_path(str(path))["probe"]
    expected = [tuple(p.shape) for _, p in real.named_parameters()]
    dtype = real.dtype.dtype
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert probe.error is None and not probe.unknowns, [u.reason for u in probe.unknowns]
    assert probe.tree is not None
    got = [p.shape for p in probe.tree.params]
    assert got == expected
    assert [b.dtype for b in probe.tree.buffers] == [str(dtype).removeprefix("torch.")]


def test_a_shape_mismatch_is_an_explained_unknown(tmp_path: Path) -> None:
    source = PROBE.format(call="nn.Linear(100, 10)(torch.zeros(4, 128))")
    result = vramlint.analyze_source(str(tmp_path / "probe.py"), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert probe.params.total is None
    assert any("expects 100 input features" in u.reason for u in probe.unknowns)


MASKED = {
    "bool-mask": "torch.zeros(4, 5)[torch.zeros(4, 5) > 0]",
    "bool-mask-rows": "torch.zeros(4, 5)[torch.arange(4) < 2, 1:]",
    "bool-mask-last-dims": "torch.zeros(2, 3, 4)[..., torch.zeros(3, 4) > 0]",
}


@pytest.mark.parametrize("name", sorted(MASKED))
def test_a_boolean_mask_selects_an_unknown_number_of_entries(name: str, tmp_path: Path) -> None:
    # How many entries a mask selects depends on its values: that dim is unknown, the others are torch's.
    source = PROBE.format(call=MASKED[name])
    path = tmp_path / "probe.py"
    path.write_text(source)
    expected = [tuple(p.shape) for _, p in runpy.run_path(str(path))["probe"].named_parameters()]
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert [u.reason for u in probe.unknowns] == ["boolean mask indexing"]
    assert probe.tree is not None
    got = [p.shape for p in probe.tree.params]
    assert len(got) == len(expected) and (None,) in got
    assert all(g in ((None,), e) for g, e in zip(got, expected))


def test_an_in_place_update_cannot_grow_its_tensor(tmp_path: Path) -> None:
    source = PROBE.format(call="InPlace()(torch.zeros(1, 3), torch.ones(2, 3))")
    path = tmp_path / "probe.py"
    path.write_text(source)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        runpy.run_path(str(path))
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert any("in-place add broadcasts (1, 3) to (2, 3)" in u.reason for u in probe.unknowns)
