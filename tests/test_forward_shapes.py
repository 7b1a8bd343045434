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
    # windows, repeats, one-hot (timm's halonet, grn, gcvit, hieradet_sam2, gemma4_vit, tnt, volo)
    "unfold-method": "torch.zeros(2, 5, 7).unfold(1, 3, 2).unfold(-2, 2, 1)",
    "unfold-halo": "F.pad(torch.zeros(2, 8, 12, 12), [2, 2, 2, 2]).unfold(2, 8, 4).unfold(3, 8, 4)",
    "unfold-whole-dim": "torch.zeros(2, 5, 7).unfold(-1, 7, 3)",
    "unfold-0d": "torch.zeros(()).unfold(0, 1, 1)",
    "addcmul": "torch.addcmul(torch.zeros(3, 1), torch.zeros(4), torch.zeros(2, 1, 1), value=2)",
    "addcmul-grn": "torch.addcmul(torch.zeros(1, 1, 1, 8), torch.zeros(1, 1, 1, 8), torch.zeros(2, 5, 5, 8))",
    "addcmul-promotes": "torch.addcmul(torch.zeros(3, 1, dtype=torch.long), torch.zeros(4, dtype=torch.float16), torch.zeros(3, 1))",
    "addcdiv-promotes": "torch.addcdiv(torch.zeros(3, 1, dtype=torch.long), torch.zeros(4), torch.ones(3, 1, dtype=torch.float64))",
    "addc-methods": "torch.zeros(3, 4).addcmul_(torch.zeros(4), torch.zeros(3, 1)).addcdiv(torch.zeros(2, 1, 4), torch.ones(4)).addcdiv_(torch.ones(4), torch.ones(1))",
    "repeat-interleave-dim": "torch.zeros(2, 3).repeat_interleave(2, dim=1)",
    "repeat-interleave-flat": "torch.zeros(2, 3).repeat_interleave(2)",
    "repeat-interleave-tensor": "torch.zeros(2, 3).repeat_interleave(torch.tensor([1, 0, 3]), dim=-1)",
    "repeat-interleave-one": "torch.repeat_interleave(torch.zeros(4, 3), torch.tensor([2]), dim=0)",
    "repeat-interleave-gcvit": "torch.zeros(1, 3, 4).repeat_interleave(8 // torch.zeros(1, 3, 4).shape[0], dim=0)",
    "repeat-interleave-values": "torch.zeros(*torch.tensor([[1, 2], [3, 1]]).repeat_interleave(torch.tensor([2, 1]), dim=0)[:, 1].tolist())",
    "repeat-interleave-indices": "torch.zeros(*(torch.repeat_interleave(torch.tensor([1, 2, 0, 1])) + 1).tolist())",
    "tile-pads-dims": "torch.zeros(2, 3).tile((2,))",
    "tile-pads-shape": "torch.tile(torch.zeros(2, 3), (2, 1, 3))",
    "tile-sam2": "torch.zeros(1, 8, 4, 4).tile((3, 2))",
    "tile-values": "torch.zeros(*torch.tensor([1, 2]).tile(2).tolist())",
    "repeat-values": "torch.zeros(*torch.tensor([[1], [2]]).repeat(1, 2).flatten().tolist())",
    "one-hot": "F.one_hot(torch.zeros(2, 3, dtype=torch.long), 5)",
    "one-hot-inferred": "F.one_hot(torch.tensor([0, 3, 1]))",
    "one-hot-gemma4": "F.one_hot(torch.arange(6).view(1, 3, 2).clamp(min=0), num_classes=8).permute(0, 2, 1, 3)",
    "one-hot-empty": "F.one_hot(torch.zeros(0, dtype=torch.long), 3)",
    "F.unfold": "F.unfold(torch.zeros(2, 3, 10, 12), (2, 3), dilation=2, padding=1, stride=(2, 1))",
    "unfold-layer-unbatched": "nn.Unfold(3, stride=2)(torch.zeros(3, 10, 12))",
    "unfold-layer-tnt": "nn.Unfold(kernel_size=4, stride=4)(torch.zeros(2, 3, 16, 16))",
    "F.fold": "F.fold(torch.zeros(2, 27, 24), (6, 8), 3)",
    "fold-layer-unbatched": "nn.Fold((5, 6), (2, 2), padding=1, stride=2)(torch.zeros(12, 12))",
    "fold-volo": "F.fold(torch.zeros(1, 36, 16), output_size=(8, 8), kernel_size=3, padding=1, stride=2)",
    "fold-of-unfold": "nn.Fold(9, 3, padding=1)(nn.Unfold(3, padding=1)(torch.zeros(2, 4, 9, 9)))",
    # devices: what code reads of them (timm's efficientvit_mit: `v.device.type != 'meta'`)
    "device": "torch.zeros(3 if torch.zeros(1).device.type == 'cpu' else 5, torch.device('cuda', 1).index + 1, "
              "torch.device(torch.device('cuda:2')).index, len(torch.device('cuda:1').type), "
              "len(f\"{torch.device('cuda', 3)}\"), len(str(torch.get_default_device()).upper()), "
              "7 if torch.zeros(1).device.index is None else 8, len(str(torch.device(type='mps', index=0)).split(':')), "
              "len(repr(torch.device('cuda', 1))) - len(repr(torch.zeros(1).device)))",
}


def _probe(tmp_path: Path, call: str) -> tuple[str, Path]:
    """The probe module computing `call`, written to a file (for real torch to run)."""
    source = PROBE.format(call=call)
    path = tmp_path / "probe.py"
    path.write_text(source)
    return source, path


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shape_matches_torch(name: str, tmp_path: Path) -> None:
    source, path = _probe(tmp_path, CASES[name])
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
    source, path = _probe(tmp_path, MASKED[name])
    expected = [tuple(p.shape) for _, p in runpy.run_path(str(path))["probe"].named_parameters()]
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert [u.reason for u in probe.unknowns] == ["boolean mask indexing"]
    assert probe.tree is not None
    got = [p.shape for p in probe.tree.params]
    assert len(got) == len(expected) and (None,) in got
    assert all(g in ((None,), e) for g, e in zip(got, expected))


def test_an_in_place_update_cannot_grow_its_tensor(tmp_path: Path) -> None:
    source, path = _probe(tmp_path, "InPlace()(torch.zeros(1, 3), torch.ones(2, 3))")
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        runpy.run_path(str(path))
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert any("in-place add broadcasts (1, 3) to (2, 3)" in u.reason for u in probe.unknowns)


RAISES = {
    "unfold-size": "torch.zeros(2, 5).unfold(1, 6, 1)",
    "unfold-step": "torch.zeros(2, 5).unfold(-1, 2, 0)",
    "unfold-dim": "torch.zeros(2, 5).unfold(2, 1, 1)",
    "addcmul-broadcast": "torch.addcmul(torch.zeros(3, 1), torch.zeros(4), torch.zeros(5, 1))",
    "addcmul-in-place-grows": "torch.zeros(3, 1).addcmul_(torch.zeros(4), torch.zeros(3, 1))",
    "addcdiv-integers": "torch.addcdiv(torch.zeros(3), torch.ones(3, dtype=torch.long), torch.ones(3, dtype=torch.long))",
    "repeat-interleave-sizes": "torch.zeros(2, 3).repeat_interleave(torch.tensor([1, 2]), dim=1)",
    "repeat-interleave-negative": "torch.zeros(2, 3).repeat_interleave(-1, dim=1)",
    "repeat-too-few-dims": "torch.zeros(2, 3).repeat(2)",
    "tile-negative": "torch.zeros(2, 3).tile(-1)",
    "one-hot-float": "F.one_hot(torch.zeros(2, 3), 5)",
    "one-hot-too-few-classes": "F.one_hot(torch.tensor([0, 3, 1]), num_classes=2)",
    "one-hot-negative": "F.one_hot(torch.tensor([0, -1]), 3)",
    "one-hot-empty-inferred": "F.one_hot(torch.zeros(0, dtype=torch.long))",
    "F.unfold-no-window": "F.unfold(torch.zeros(2, 3, 2, 2), 3)",
    "F.unfold-rank": "F.unfold(torch.zeros(2, 3, 5, 5, 5), 3)",
    "F.unfold-rank-2": "F.unfold(torch.zeros(3, 5), 3)",
    "F.unfold-stride": "F.unfold(torch.zeros(2, 3, 5, 5), 3, stride=0)",
    "F.unfold-pair": "F.unfold(torch.zeros(2, 3, 5, 5), (3, 3, 3))",
    "F.fold-blocks": "F.fold(torch.zeros(2, 27, 12), (6, 8), 3)",
    "fold-layer-channels": "nn.Fold((6, 8), 3)(torch.zeros(2, 28, 24))",
    "F.fold-non-positive": "F.fold(torch.zeros(1, 25, 9), (1, 1), 5)",
    "device-type": "torch.zeros(2, device=torch.device('gpu'))",
    "device-index-twice": "torch.device('cuda:1', 2)",
    "unsqueeze-dim": "torch.zeros(2, 3).unsqueeze(3)",
    "unsqueeze-huge-dim": "torch.zeros(2, 3).unsqueeze(99999999999999999999)",
}


@pytest.mark.parametrize("name", sorted(RAISES))
def test_an_invalid_shape_raises_torch_error(name: str, tmp_path: Path) -> None:
    # Where torch refuses the arguments, the analysed code gets torch's exception: type and message.
    source, path = _probe(tmp_path, RAISES[name])
    with pytest.raises(Exception) as real:
        runpy.run_path(str(path))
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "Probe"]  # `probe = Probe()` raised: the class
    assert probe.error is not None
    assert probe.error.reason == f"raises {type(real.value).__name__}: {real.value}"


def test_repeats_of_unknown_values_are_a_located_unknown(tmp_path: Path) -> None:
    # The size of a repeat_interleave by a tensor depends on its values: unknown when they are not followed.
    source = PROBE.format(call="torch.zeros(2, 3).repeat_interleave(torch.randint(0, 3, (3,)), dim=1)")
    result = vramlint.analyze_source(str(tmp_path / "probe.py"), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert probe.tree is not None
    assert [p.shape for p in probe.tree.params] == [(2,), (None,)]
    (unknown,) = probe.unknowns
    assert "repeat_interleave by a tensor of repeats" in unknown.reason
    lines = PROBE.format(call="@").splitlines()
    assert unknown.where is not None and unknown.where.location.line == lines.index("            y = @") + 1
