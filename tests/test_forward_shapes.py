"""Output shapes of layers and functions, against real torch.

Each case builds a layer, calls it on a zero tensor inside a module's __init__ and records the
output's dimensions as parameters (`d0`, `d1`...), the pattern model code uses to size a layer
from a dummy forward. vramlint's tree must show the same dimensions torch computes.
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

class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        with torch.no_grad():
            y = {call}
        while isinstance(y, tuple):
            y = y[0]
        for i, d in enumerate(y.shape):
            setattr(self, f"d{{i}}", nn.Parameter(torch.zeros(d)))

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
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shape_matches_torch(name: str, tmp_path: Path) -> None:
    source = PROBE.format(call=CASES[name])
    path = tmp_path / "probe.py"
    path.write_text(source)
    torch.manual_seed(0)
    expected = [tuple(p.shape) for _, p in runpy.run_path(str(path))["probe"].named_parameters()]
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert probe.error is None and not probe.unknowns, [u.reason for u in probe.unknowns]
    assert probe.tree is not None
    got = [p.shape for p in probe.tree.params]
    assert got == expected


def test_a_shape_mismatch_is_an_explained_unknown(tmp_path: Path) -> None:
    source = PROBE.format(call="nn.Linear(100, 10)(torch.zeros(4, 128))")
    result = vramlint.analyze_source(str(tmp_path / "probe.py"), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert probe.params.total is None
    assert any("expects 100 input features" in u.reason for u in probe.unknowns)
