"""The torch.nn catalog checked against real torch.

Each case is a snippet of model code that leaves a module in the module-level variable `m`.
vramlint analyzes the snippet statically; the same snippet is then executed with real torch,
and the parameter count, the trainable count and the buffer element count must agree, as must
every module's own parameters and buffers (name, shape, dtype, trainable).
"""

from __future__ import annotations

import sys
import textwrap
import types
import warnings
from typing import Any

import pytest

import vramlint
from vramlint.frontends.torch.catalog.parameter_free import SIGNATURES

torch = pytest.importorskip("torch")

HEADER = "import copy\nimport torch\nimport torch.nn as nn\nfrom collections import OrderedDict\n"


def net(body: str, tail: str = "m = Net()") -> str:
    """A `class Net(nn.Module)` whose __init__ is `body` (after super().__init__()), then `tail`."""
    init = textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 8)
    return f"class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n{init}\n{tail}\n"


CASES: list[tuple[str, str]] = [
    # ------------------------------------------------------------------ linear
    ("Linear", "m = nn.Linear(10, 20)"),
    ("Linear-nobias", "m = nn.Linear(10, 20, bias=False)"),
    ("Linear-positional-bias", "m = nn.Linear(7, 3, False)"),
    ("Bilinear", "m = nn.Bilinear(4, 6, 5)"),
    ("Bilinear-nobias", "m = nn.Bilinear(4, 6, 5, bias=False)"),
    ("Identity", "m = nn.Identity(54, unused='x')"),
    # ------------------------------------------------------------------ conv
    ("Conv1d", "m = nn.Conv1d(4, 8, 3)"),
    ("Conv1d-same-dilation", "m = nn.Conv1d(4, 8, 5, padding='same', dilation=2)"),
    ("Conv2d", "m = nn.Conv2d(3, 16, 3, stride=2, padding=1)"),
    ("Conv2d-tuple-groups-nobias", "m = nn.Conv2d(4, 8, (3, 5), groups=2, bias=False)"),
    ("Conv2d-depthwise-same", "m = nn.Conv2d(8, 8, 3, padding='same', groups=8)"),
    ("Conv2d-positional", "m = nn.Conv2d(6, 12, 3, 1, 1, 1, 3, False)"),
    ("Conv3d", "m = nn.Conv3d(4, 8, 3)"),
    ("Conv3d-groups-tuple", "m = nn.Conv3d(4, 8, (1, 3, 3), groups=4, padding=(0, 1, 1))"),
    ("ConvTranspose1d", "m = nn.ConvTranspose1d(4, 8, 3)"),
    ("ConvTranspose1d-groups", "m = nn.ConvTranspose1d(4, 8, 3, groups=2)"),
    ("ConvTranspose2d-outpad-groups",
     "m = nn.ConvTranspose2d(4, 6, (2, 3), stride=2, output_padding=1, groups=2)"),
    ("ConvTranspose2d-nobias", "m = nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False)"),
    ("ConvTranspose3d", "m = nn.ConvTranspose3d(2, 4, 3, bias=False)"),
    ("ConvTranspose3d-groups", "m = nn.ConvTranspose3d(6, 9, (1, 2, 2), stride=(1, 2, 2), groups=3)"),
    # ------------------------------------------------------------------ norm
    ("BatchNorm1d", "m = nn.BatchNorm1d(16)"),
    ("BatchNorm2d", "m = nn.BatchNorm2d(32)"),
    ("BatchNorm3d", "m = nn.BatchNorm3d(8)"),
    ("BatchNorm2d-noaffine", "m = nn.BatchNorm2d(32, affine=False)"),
    ("BatchNorm2d-notrack", "m = nn.BatchNorm2d(32, track_running_stats=False)"),
    ("BatchNorm1d-neither", "m = nn.BatchNorm1d(5, affine=False, track_running_stats=False)"),
    ("SyncBatchNorm", "m = nn.SyncBatchNorm(12)"),
    ("SyncBatchNorm-noaffine-notrack", "m = nn.SyncBatchNorm(12, affine=False, track_running_stats=False)"),
    ("SyncBatchNorm-convert", "m = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3), "
                              "nn.BatchNorm2d(8), nn.BatchNorm1d(4, bias=False)))"),
    ("BatchNorm2d-nobias", "m = nn.BatchNorm2d(8, bias=False)"),
    ("GroupNorm-nobias", "m = nn.GroupNorm(2, 8, bias=False)"),
    ("InstanceNorm2d-affine-nobias", "m = nn.InstanceNorm2d(8, affine=True, bias=False)"),
    ("LayerNorm-int", "m = nn.LayerNorm(16)"),
    ("LayerNorm-tuple", "m = nn.LayerNorm((4, 8))"),
    ("LayerNorm-list", "m = nn.LayerNorm([3, 5])"),
    ("LayerNorm-noaffine", "m = nn.LayerNorm(16, elementwise_affine=False)"),
    ("LayerNorm-nobias", "m = nn.LayerNorm(16, bias=False)"),
    ("GroupNorm", "m = nn.GroupNorm(4, 16)"),
    ("GroupNorm-noaffine", "m = nn.GroupNorm(2, 8, affine=False)"),
    ("InstanceNorm1d", "m = nn.InstanceNorm1d(8)"),
    ("InstanceNorm2d-affine", "m = nn.InstanceNorm2d(8, affine=True)"),
    ("InstanceNorm3d-affine-track", "m = nn.InstanceNorm3d(8, affine=True, track_running_stats=True)"),
    ("InstanceNorm2d-track", "m = nn.InstanceNorm2d(6, track_running_stats=True)"),
    ("RMSNorm", "m = nn.RMSNorm(16)"),
    ("RMSNorm-tuple-noaffine", "m = nn.RMSNorm((4, 8), elementwise_affine=False)"),
    ("RMSNorm-tuple", "m = nn.RMSNorm([4, 8], eps=1e-6)"),
    ("LocalResponseNorm", "m = nn.LocalResponseNorm(2)"),
    ("CrossMapLRN2d", "m = nn.CrossMapLRN2d(3)"),
    # ------------------------------------------------------------------ embedding
    ("Embedding", "m = nn.Embedding(100, 16)"),
    ("Embedding-padding_idx", "m = nn.Embedding(10, 4, padding_idx=0)"),
    ("Embedding-freeze", "m = nn.Embedding(10, 4, _freeze=True)"),
    ("Embedding-weight", "m = nn.Embedding(7, 3, _weight=torch.zeros(7, 3))"),
    ("Embedding-from_pretrained", "m = nn.Embedding.from_pretrained(torch.zeros(5, 3))"),
    ("Embedding-from_pretrained-unfrozen", "m = nn.Embedding.from_pretrained(torch.zeros(5, 3), freeze=False)"),
    ("EmbeddingBag", "m = nn.EmbeddingBag(10, 4, mode='sum')"),
    ("EmbeddingBag-from_pretrained", "m = nn.EmbeddingBag.from_pretrained(torch.ones(6, 2))"),
    # ------------------------------------------------------------------ recurrent
    ("RNN", "m = nn.RNN(10, 20)"),
    ("RNN-relu-2layers", "m = nn.RNN(10, 20, num_layers=2, nonlinearity='relu')"),
    ("RNN-positional", "m = nn.RNN(10, 20, 2, 'tanh', False, True, 0.0, True)"),
    ("LSTM", "m = nn.LSTM(10, 20)"),
    ("LSTM-bidir", "m = nn.LSTM(10, 20, 2, bidirectional=True)"),
    ("LSTM-nobias-3layers", "m = nn.LSTM(10, 20, 3, bias=False)"),
    ("LSTM-proj", "m = nn.LSTM(10, 20, proj_size=5)"),
    ("LSTM-proj-bidir-2layers", "m = nn.LSTM(10, 20, 2, proj_size=5, bidirectional=True, batch_first=True)"),
    ("LSTM-positional", "m = nn.LSTM(10, 20, 2, False, True, 0.0, True)"),
    ("GRU", "m = nn.GRU(8, 16)"),
    ("GRU-bidir-batch_first", "m = nn.GRU(8, 16, 2, batch_first=True, bidirectional=True)"),
    ("GRU-nobias", "m = nn.GRU(8, 16, bias=False)"),
    ("RNNCell", "m = nn.RNNCell(10, 20)"),
    ("RNNCell-nobias", "m = nn.RNNCell(10, 20, bias=False, nonlinearity='relu')"),
    ("LSTMCell", "m = nn.LSTMCell(10, 20)"),
    ("GRUCell", "m = nn.GRUCell(10, 20)"),
    ("GRUCell-nobias", "m = nn.GRUCell(10, 20, False)"),
    # ------------------------------------------------------------------ attention
    ("MultiheadAttention", "m = nn.MultiheadAttention(16, 4)"),
    ("MultiheadAttention-kdim-vdim", "m = nn.MultiheadAttention(16, 4, kdim=8, vdim=12)"),
    ("MultiheadAttention-kdim-only", "m = nn.MultiheadAttention(16, 2, kdim=8)"),
    ("MultiheadAttention-nobias", "m = nn.MultiheadAttention(16, 4, bias=False)"),
    ("MultiheadAttention-bias_kv", "m = nn.MultiheadAttention(16, 4, add_bias_kv=True, add_zero_attn=True)"),
    ("MultiheadAttention-kdim-bias_kv-nobias",
     "m = nn.MultiheadAttention(12, 3, bias=False, add_bias_kv=True, kdim=6, vdim=6, batch_first=True)"),
    ("TransformerEncoderLayer", "m = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64)"),
    ("TransformerEncoderLayer-nobias-gelu",
     "m = nn.TransformerEncoderLayer(32, 4, 64, 0.0, nn.GELU(), norm_first=True, bias=False)"),
    ("TransformerDecoderLayer", "m = nn.TransformerDecoderLayer(32, 4, dim_feedforward=64, batch_first=True)"),
    ("TransformerDecoderLayer-nobias", "m = nn.TransformerDecoderLayer(16, 2, 32, bias=False)"),
    ("TransformerEncoder-3",
     "m = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64), num_layers=3)"),
    ("TransformerEncoder-3-norm",
     "m = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64), 3, norm=nn.LayerNorm(32))"),
    ("TransformerEncoder-shared-layer-var",
     "layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)\n"
     "m = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)"),
    ("TransformerDecoder",
     "m = nn.TransformerDecoder(nn.TransformerDecoderLayer(32, 4, 64), 2, nn.LayerNorm(32))"),
    ("TransformerDecoder-nonorm", "m = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 2, 32), 4)"),
    ("Transformer-default", "m = nn.Transformer()"),
    ("Transformer-small",
     "m = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=1, "
     "dim_feedforward=48, batch_first=True)"),
    ("Transformer-small-nobias",
     "m = nn.Transformer(16, 2, 1, 2, 24, bias=False, norm_first=True)"),
    ("Transformer-custom-encoder",
     "enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 24), 2)\n"
     "m = nn.Transformer(16, 2, num_decoder_layers=1, dim_feedforward=24, custom_encoder=enc)"),
    # ------------------------------------------------------------------ weights without a family
    ("PReLU", "m = nn.PReLU()"),
    ("PReLU-8", "m = nn.PReLU(num_parameters=8)"),
    ("CrossEntropyLoss-weight", "m = nn.CrossEntropyLoss(weight=torch.ones(10))"),
    ("CrossEntropyLoss", "m = nn.CrossEntropyLoss(label_smoothing=0.1)"),
    ("NLLLoss-weight", "m = nn.NLLLoss(torch.ones(5))"),
    ("BCELoss-weight", "m = nn.BCELoss(weight=torch.ones(2, 3))"),
    ("BCEWithLogitsLoss-pos_weight", "m = nn.BCEWithLogitsLoss(pos_weight=torch.ones(3))"),
    ("BCEWithLogitsLoss-both", "m = nn.BCEWithLogitsLoss(weight=torch.ones(4), pos_weight=torch.ones(4))"),
    # ------------------------------------------------------------------ containers
    ("Sequential",
     "m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))"),
    ("Sequential-OrderedDict",
     "m = nn.Sequential(OrderedDict([('fc1', nn.Linear(4, 8)), ('act', nn.GELU()), ('fc2', nn.Linear(8, 2))]))"),
    ("Sequential-slice", "m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4), nn.Linear(4, 5))[1:]"),
    ("Sequential-index", "m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4), nn.Linear(4, 5))[-1]"),
    ("Sequential-append-star",
     "layers = [nn.Linear(4, 4) for _ in range(3)]\n"
     "layers.append(nn.LayerNorm(4))\n"
     "m = nn.Sequential(*layers)\n"
     "m.append(nn.Linear(4, 1))"),
    ("Sequential-nested-shared",
     "lin = nn.Linear(6, 6)\n"
     "m = nn.Sequential(lin, nn.Tanh(), lin, nn.Sequential(nn.Linear(6, 2), nn.Softmax(dim=-1)))"),
    ("ModuleList-ops", net("""
        self.layers = nn.ModuleList([nn.Linear(2, 2)])
        self.layers.append(nn.Linear(2, 3))
        self.layers.extend([nn.Linear(3, 4), nn.Linear(4, 5)])
        self.layers.insert(1, nn.Linear(2, 2, bias=False))
        self.first = self.layers[0]
        self.tail = self.layers[-2:]
        self.extra = nn.Linear(self.layers[3].out_features, 7)
        self.count = nn.Linear(len(self.layers), 1)
    """)),
    ("ModuleList-loop", net("""
        dims = [3, 8, 16, 32]
        self.blocks = nn.ModuleList()
        for i in range(len(dims) - 1):
            self.blocks.append(nn.Sequential(nn.Conv2d(dims[i], dims[i + 1], 3), nn.BatchNorm2d(dims[i + 1])))
        self.blocks += [nn.Conv2d(32, 32, 1)]
    """)),
    ("ModuleDict", net("""
        self.heads = nn.ModuleDict({'cls': nn.Linear(8, 10), 'box': nn.Linear(8, 4)})
        self.heads['seg'] = nn.Conv2d(8, 3, 1)
        self.heads.update({'depth': nn.Conv2d(8, 1, 3)})
        self.proj = nn.Linear(self.heads['cls'].out_features, 2)
    """)),
    ("ModuleDict-items", net("""
        self.a = nn.ModuleDict([('x', nn.Linear(2, 2)), ('y', nn.Linear(2, 3))])
        self.b = nn.ModuleList([nn.Linear(k.out_features, 1) for k in self.a.values()])
    """)),
    ("ParameterList", net("""
        self.ps = nn.ParameterList([nn.Parameter(torch.zeros(3)), nn.Parameter(torch.ones(2, 2))])
        self.ps.append(nn.Parameter(torch.zeros(4, 4), requires_grad=False))
        self.ps.append(torch.zeros(5))
    """)),
    ("ParameterDict", net("""
        self.pd = nn.ParameterDict({'a': nn.Parameter(torch.zeros(3)), 'b': torch.zeros(2, 2)})
        self.pd['c'] = nn.Parameter(torch.randn(6))
        self.pd.update({'d': nn.Parameter(torch.ones(1, 7), requires_grad=False)})
    """)),
    # ------------------------------------------------------------------ parameters and buffers
    ("Parameter-zeros", net("self.p = nn.Parameter(torch.zeros(3, 4))")),
    ("Parameter-randn-normal_", net("self.p = nn.Parameter(torch.randn(2, 5).normal_())")),
    ("Parameter-uniform_-frozen", net("self.p = nn.Parameter(torch.empty(4).uniform_(), requires_grad=False)")),
    ("Parameter-scalar-and-None", net("""
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.gamma = nn.Parameter(1e-6 * torch.ones(16))
        self.register_parameter('beta', None)
    """)),
    ("register_buffer", net("""
        self.fc = nn.Linear(8, 8)
        self.register_buffer('pos', torch.zeros(1, 16, 8))
        self.register_buffer('mask', torch.ones(4, 4).tril(), persistent=False)
        self.register_buffer('idx', torch.arange(10))
        self.register_buffer('empty', None)
    """)),
    ("init-in-place", net("""
        self.fc = nn.Linear(8, 8)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.w = nn.Parameter(torch.empty(3, 3))
        nn.init.kaiming_normal_(self.w)
    """)),
    # ------------------------------------------------------------------ freezing, tying, casting
    ("frozen-requires_grad_", net("""
        self.enc = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 16))
        self.head = nn.Linear(16, 2)
        self.enc.requires_grad_(False)
    """)),
    ("frozen-loop", net("""
        self.enc = nn.LSTM(8, 16, 2)
        self.head = nn.Linear(16, 2)
        for p in self.enc.parameters():
            p.requires_grad = False
    """)),
    ("frozen-named-loop", net("""
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        self.fc = nn.Linear(8, 4)
        for name, p in self.named_parameters():
            if name.startswith('backbone'):
                p.requires_grad = False
    """)),
    ("frozen-weight-only", net("""
        self.fc = nn.Linear(8, 4)
        self.fc.weight.requires_grad = False
    """)),
    ("frozen-requires_grad_-instance", "m = nn.Linear(5, 5).requires_grad_(False)"),
    ("weight-tying", net("""
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight
    """)),
    ("weight-tying-with-bias", net("""
        self.emb = nn.Embedding(10, 4)
        self.body = nn.Linear(4, 4)
        self.head = nn.Linear(4, 10)
        self.emb.weight = self.head.weight
    """)),
    ("half", net("""
        self.fc = nn.Linear(8, 4)
        self.bn = nn.BatchNorm1d(4)
    """, tail="m = Net().half()")),
    ("half-instance", "m = nn.Conv2d(3, 4, 3).half()"),
    ("to-dtype-eval", "m = nn.LSTM(4, 4).to(torch.bfloat16).eval()"),
    ("dtype-kwarg", "m = nn.Linear(4, 4, dtype=torch.float16, device='cpu')"),
    # ------------------------------------------------------------------ user subclasses
    ("subclass-LayerNorm2d", """
class LayerNorm2d(nn.LayerNorm):
    def __init__(self, num_channels, eps=1e-6, affine=True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

m = nn.Sequential(LayerNorm2d(8), LayerNorm2d(4, affine=False))
"""),
    ("subclass-Conv2d-extra-param", """
class ScaledConv(nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = nn.Parameter(torch.ones(self.out_channels, 1, 1))

m = ScaledConv(3, 6, kernel_size=3, bias=False)
"""),
    ("subclass-Linear-no-init", """
class MyLinear(nn.Linear):
    pass

m = MyLinear(6, 3)
"""),
    ("subclass-Sequential", """
class Block(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

m = nn.Sequential(Block(3, 8), Block(8, 16))
"""),
    ("subclass-ModuleList", """
class Stack(nn.ModuleList):
    def __init__(self, n, d):
        super().__init__([nn.Linear(d, d) for _ in range(n)])

m = Stack(3, 5)
"""),
    # ------------------------------------------------------------------ deep copies
    ("deepcopy-listcomp", net("""
        block = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.layers = nn.ModuleList([copy.deepcopy(block) for _ in range(3)])
    """)),
    ("deepcopy-tied-inside", net("""
        block = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        block[1].weight = block[0].weight
        self.layers = nn.ModuleList([copy.deepcopy(block) for _ in range(2)])
        self.shared = nn.ModuleList([block, block])
    """)),
    ("shared-module-list", net("""
        lin = nn.Linear(4, 4)
        self.layers = nn.ModuleList([lin for _ in range(3)])
    """)),
    # A replaced child keeps its place in children(), as a dict entry does (torchvision fine-tuning).
    ("reassigned-child-keeps-its-slot", net("""
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc = nn.Linear(16, 10)
    """, "net = Net()\nnet.conv1 = nn.Conv2d(1, 8, 3)\nm = nn.Sequential(*list(net.children())[:-1])")),
    ("reregistered-buffer-and-module-keep-their-slots", net("""
        self.register_buffer("a", torch.zeros(3))
        self.register_buffer("b", torch.zeros(4))
        self.register_buffer("a", torch.zeros(5))
        self.add_module("x", nn.Linear(2, 2))
        self.add_module("y", nn.Linear(3, 3))
        self.add_module("x", nn.Linear(4, 4))
    """, "n = Net()\nm = nn.Sequential(*list(n.children())[1:])\nm.register_buffer('first', list(n.buffers())[0])")),
]


# Harder corners: argument spellings, attribute plumbing, re-registration, odd imports.
CASES += [
    ("Linear-keywords", "m = nn.Linear(in_features=3, out_features=4, bias=True)"),
    ("Conv2d-padding_mode", "m = nn.Conv2d(3, 4, 3, padding=1, padding_mode='reflect')"),
    ("ConvTranspose2d-dilation", "m = nn.ConvTranspose2d(4, 4, 3, dilation=2, groups=4)"),
    ("BatchNorm2d-momentum-None", "m = nn.BatchNorm2d(8, momentum=None, eps=1e-3)"),
    ("SyncBatchNorm-process_group", "m = nn.SyncBatchNorm(4, process_group=None)"),
    ("LayerNorm-torch.Size", "m = nn.LayerNorm(torch.Size([2, 3]))"),
    ("Embedding-max_norm-sparse", "m = nn.Embedding(10, 4, max_norm=1.0, sparse=True)"),
    ("EmbeddingBag-padding-offsets", "m = nn.EmbeddingBag(10, 4, padding_idx=2, include_last_offset=True)"),
    ("Embedding-from_pretrained-randn-padding",
     "w = torch.randn(6, 3)\nm = nn.Embedding.from_pretrained(w, freeze=True, padding_idx=0)"),
    ("LSTM-proj-nobias", "m = nn.LSTM(6, 12, 2, bias=False, proj_size=3)"),
    ("GRU-dropout", "m = nn.GRU(input_size=6, hidden_size=12, num_layers=3, dropout=0.1)"),
    ("RNN-kw-nonlinearity-bias", "m = nn.RNN(6, 12, nonlinearity='relu', bias=False, bidirectional=True)"),
    ("MultiheadAttention-kdim-equal", "m = nn.MultiheadAttention(16, 4, kdim=16, vdim=16)"),
    ("MultiheadAttention-vdim-only", "m = nn.MultiheadAttention(16, 4, vdim=7)"),
    ("TransformerEncoderLayer-gelu-str", "m = nn.TransformerEncoderLayer(16, 2, 32, activation='gelu')"),
    ("TransformerEncoderLayer-prelu-module", "m = nn.TransformerEncoderLayer(16, 2, 32, activation=nn.PReLU())"),
    ("TransformerDecoderLayer-prelu-module", "m = nn.TransformerDecoderLayer(16, 2, 32, activation=nn.PReLU(4))"),
    ("Transformer-custom-both",
     "enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 24), 1)\n"
     "dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 2, 24), 2, nn.LayerNorm(16))\n"
     "m = nn.Transformer(16, 2, custom_encoder=enc, custom_decoder=dec)"),
    ("from-torch-import-nn", "from torch import nn as tnn\nm = tnn.Sequential(tnn.Linear(2, 2), tnn.ReLU())"),
    ("modules-conv-path", "from torch.nn.modules.conv import Conv2d\nm = Conv2d(3, 3, 1)"),
    ("torch.nn-dotted", "m = torch.nn.GRUCell(3, 5)"),
    ("Sequential-add_module", net("""
        self.body = nn.Sequential()
        self.body.add_module('conv', nn.Conv2d(3, 4, 3))
        self.body.add_module('bn', nn.BatchNorm2d(4))
        self.register_module('head', nn.Linear(4, 2))
    """)),
    ("Sequential-insert-pop-del", net("""
        self.s = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3), nn.Linear(3, 4))
        self.s.insert(0, nn.Linear(2, 2, bias=False))
        self.s.pop(1)
        del self.s[0]
    """)),
    ("ModuleList-pop-del", net("""
        self.l = nn.ModuleList([nn.Linear(i + 1, i + 2) for i in range(5)])
        self.l.pop(0)
        del self.l[1]
        self.l[0] = nn.Conv1d(2, 2, 1)
    """)),
    ("setattr-loop", net("""
        for i in range(3):
            setattr(self, f'layer{i}', nn.Linear(4, 4 + i))
        self.out = nn.Linear(getattr(self, 'layer2').out_features, 1)
    """)),
    ("replace-param", net("""
        self.fc = nn.Linear(8, 4)
        self.fc.weight = nn.Parameter(torch.zeros(4, 2))
        self.fc.bias = None
    """)),
    ("param-alias", net("""
        self.p = nn.Parameter(torch.zeros(3, 3))
        self.q = self.p
        self.fc = nn.Linear(3, 3)
        self.w = self.fc.weight
    """)),
    ("Parameter-misc-factories", net("""
        self.a = nn.Parameter(torch.Tensor(3, 4))
        self.b = nn.Parameter(torch.zeros(3), False)
        self.c = nn.Parameter(torch.full((2, 3), 0.5))
        self.d = nn.Parameter(torch.eye(4))
        self.e = nn.Parameter(torch.arange(6.0).reshape(2, 3))
        self.f = nn.Parameter(torch.zeros(1, 1, 8).expand(1, 4, 8).clone())
        self.g = nn.Parameter(torch.cat([torch.zeros(2), torch.ones(3)]))
    """)),
    ("buffer-factories", net("""
        self.register_buffer('a', torch.linspace(0, 1, 7))
        self.register_buffer('b', torch.randint(0, 5, (3, 2)))
        self.register_buffer('c', torch.zeros(4, dtype=torch.long))
        self.register_buffer('d', torch.stack([torch.zeros(3), torch.ones(3)]))
        self.register_buffer('e', torch.tensor([1.0, 2.0, 3.0]))
    """)),
    ("requires_grad_-reenable", net("""
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.requires_grad_(False)
        self.b.requires_grad_(True)
    """)),
    ("deepcopy-frozen", net("""
        block = nn.Linear(4, 4)
        block.weight.requires_grad = False
        self.blocks = nn.ModuleList([copy.deepcopy(block) for _ in range(2)])
    """)),
    ("apply-init", net("""
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.apply(self._init)
    """, tail="""
    def _init(self, mod):
        if isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, std=0.02)

m = Net()""")),
    ("isinstance-checks", net("""
        self.l = nn.ModuleList([nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.Linear(3, 3)])
        for mod in self.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.Conv2d)):
                mod.requires_grad_(False)
    """)),
    ("attribute-plumbing", net("""
        self.conv = nn.Conv2d(3, 16, kernel_size=3)
        self.bn = nn.BatchNorm2d(self.conv.out_channels)
        self.fc = nn.Linear(self.bn.num_features * self.conv.kernel_size[0], 10)
        self.ln = nn.LayerNorm(self.fc.out_features)
        self.emb = nn.Embedding(self.ln.normalized_shape[0], self.conv.in_channels)
        self.rnn = nn.LSTM(self.emb.embedding_dim, 4)
        self.attn = nn.MultiheadAttention(self.rnn.hidden_size * 2, 2)
        self.out = nn.Linear(self.attn.embed_dim, self.attn.head_dim)
    """)),
    ("weight-shape-plumbing", net("""
        self.fc = nn.Linear(8, 4)
        self.fc2 = nn.Linear(self.fc.weight.shape[0], self.fc.weight.size(1))
        self.p = nn.Parameter(torch.zeros_like(self.fc.weight))
    """)),
    ("net-args-super-forms", """
class A(nn.Module):
    def __init__(self, d=16, n=2):
        super(A, self).__init__()
        self.layers = nn.ModuleList(nn.Linear(d, d) for _ in range(n))

class B(A):
    def __init__(self):
        nn.Module.__init__(self)
        self.x = nn.Linear(3, 3)

m = nn.Sequential(A(d=8, n=3), B())
"""),
    ("module-constant-config", """
HIDDEN = 24
LAYERS = [HIDDEN // 2, HIDDEN // 4]

class Net(nn.Module):
    def __init__(self, dims=tuple(LAYERS)):
        super().__init__()
        self.stem = nn.Linear(HIDDEN, dims[0])
        self.rest = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(dims, dims[1:])])

m = Net()
"""),
]


# Containers edited after construction, and the layers outside the families above.
CASES += [
    ("ModuleDict-pop-del", net("""
        self.d = nn.ModuleDict({'a': nn.Linear(2, 2), 'b': nn.Linear(2, 3), 'c': nn.Linear(3, 3)})
        self.kept = self.d.pop('a')
        del self.d['b']
    """)),
    ("ModuleList-del-slice", net("""
        self.l = nn.ModuleList([nn.Linear(i + 1, i + 2) for i in range(6)])
        del self.l[1:3]
        self.last = self.l.pop(-1)
        self.l.insert(2, nn.Linear(9, 9))
    """)),
    ("Sequential-pop-negative", net("""
        self.s = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4), nn.Linear(4, 5))
        self.s.pop(-2)
        self.s.append(nn.LayerNorm(5))
    """)),
    ("ParameterDict-del", net("""
        self.pd = nn.ParameterDict({'a': nn.Parameter(torch.zeros(3)), 'b': nn.Parameter(torch.zeros(4))})
        del self.pd['a']
    """)),
    ("ParameterList-index-shared", net("""
        p = nn.Parameter(torch.zeros(3))
        self.pl = nn.ParameterList([p, p, nn.Parameter(torch.ones(2))])
        self.first = self.pl[0]
    """)),
    ("AdaptiveLogSoftmaxWithLoss", "m = nn.AdaptiveLogSoftmaxWithLoss(64, 1000, [10, 100, 500])"),
    ("AdaptiveLogSoftmaxWithLoss-headbias-div",
     "m = nn.AdaptiveLogSoftmaxWithLoss(30, 50, cutoffs=(5, 20), div_value=2.0, head_bias=True)"),
    ("MultiMarginLoss-weight", "m = nn.MultiMarginLoss(weight=torch.ones(7))"),
    ("MultiLabelSoftMarginLoss-weight", "m = nn.MultiLabelSoftMarginLoss(torch.ones(3))"),
    ("NLLLoss2d-weight", "m = nn.NLLLoss2d(weight=torch.ones(4))"),
]
if hasattr(torch.nn, "LinearCrossEntropyLoss"):
    CASES += [
        ("LinearCrossEntropyLoss", "m = nn.LinearCrossEntropyLoss(16, 10)"),
        ("LinearCrossEntropyLoss-bias-weight-outfeatures",
         "m = nn.LinearCrossEntropyLoss(16, 10, out_features=(2, 3), bias=True, weight=torch.ones(10))"),
    ]


# Construction code in the styles real models use.
CASES += [
    ("config-dataclass-kwargs", """
from dataclasses import dataclass

@dataclass
class Cfg:
    d: int = 16
    heads: int = 4
    layers: int = 2
    dropout: float = 0.0

class Net(nn.Module):
    def __init__(self, cfg: Cfg):
        super().__init__()
        kw = dict(dim_feedforward=cfg.d * 4, dropout=cfg.dropout, batch_first=True)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(cfg.d, cfg.heads, **kw), cfg.layers)
        self.norm = nn.LayerNorm(cfg.d, **{'eps': 1e-6})

m = Net(Cfg(d=8, heads=2))
"""),
    ("property-and-classattr", """
class Net(nn.Module):
    width = 12

    def __init__(self, depth=2):
        super().__init__()
        self.depth = depth
        self.layers = nn.Sequential(*(self.block(i) for i in range(self.n_blocks)))

    @property
    def n_blocks(self):
        return self.depth + 1

    def block(self, i):
        return nn.Linear(self.width, self.width, bias=i % 2 == 0)

m = Net(depth=3)
"""),
    ("freeze-helper-and-zip", """
def freeze(module):
    for p in module.parameters():
        p.requires_grad_(False)
    return module

class Net(nn.Module):
    def __init__(self, chans=(3, 8, 16)):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3) for a, b in zip(chans, chans[1:]))
        self.bns = nn.ModuleList([freeze(nn.BatchNorm2d(c)) for c in chans[1:]])

m = Net()
"""),
    ("residual-blocks-inheritance", """
class Block(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout * self.expansion, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout * self.expansion)
        self.down = None
        if stride != 1 or cin != cout * self.expansion:
            self.down = nn.Sequential(nn.Conv2d(cin, cout * self.expansion, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout * self.expansion))

class Wide(Block):
    expansion = 2

class Net(nn.Module):
    def __init__(self, block=Wide, widths=(4, 8)):
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            layers.append(block(cin, w, stride=2))
            cin = w * block.expansion
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

m = Net()
"""),
]


# Tensor methods on parameters, repeated modules.
CASES += [
    ("param-methods", net("""
        self.fc = nn.Linear(4, 4)
        self.fc.weight.data.normal_(0, 0.02)
        self.fc.bias.requires_grad_(False)
        self.p = nn.Parameter(torch.zeros(3)).requires_grad_(False)
        q = nn.Parameter(torch.ones(2, 2))
        q.requires_grad = False
        self.q = q
        self.register_buffer('h', torch.zeros(3, 4).to(torch.float16))
        self.register_buffer('i', torch.zeros(5).long())
    """)),
    ("repeated-list-multiplication", net("""
        block = nn.Linear(4, 4)
        self.seq = nn.Sequential(*[block] * 3)
        self.lst = nn.ModuleList([nn.Conv2d(2, 2, [3, 3])] * 2)
    """)),
    ("deepcopy-buffers-and-half", net("""
        base = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        base[0].weight.requires_grad = False
        self.copies = nn.ModuleList([copy.deepcopy(base) for _ in range(2)]).half()
        self.base = base
    """)),
]


def _free_layer_args(name: str) -> str:
    """Constructor arguments for the parameter-free layers that need some."""
    if name.startswith(("ZeroPad", "ReflectionPad", "ReplicationPad", "CircularPad")):
        return "1"
    if name.startswith("ConstantPad"):
        return "1, 0.5"
    if name.startswith(("MaxPool", "AvgPool", "MaxUnpool")):
        return "2"
    if name.startswith("Adaptive"):
        return "1"
    if name.startswith("LPPool"):
        return "2, 3"
    if name.startswith("FractionalMaxPool"):
        return "2, output_ratio=0.5"
    return {
        "Threshold": "0.1, 20.0", "Unflatten": "1, (2, 5)", "PixelShuffle": "2", "PixelUnshuffle": "2",
        "ChannelShuffle": "2", "Fold": "(4, 5), 2", "Unfold": "2",
    }.get(name, "")


CASES += [(f"free-{name}", f"m = nn.{name}({_free_layer_args(name)})") for name in SIGNATURES]


Tensors = set[tuple[str, str, tuple[int, ...], str, bool]]


def _run_torch(src: str) -> tuple[tuple[int, int, int], Tensors]:
    """(total, trainable, buffer elements) and every (kind, name, shape, dtype, trainable) of real torch."""
    mod = types.ModuleType("catalog_case")  # a real module: dataclasses look their module up
    sys.modules[mod.__name__] = mod
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. TransformerEncoder's nested-tensor notice
            exec(compile(HEADER + src, "<case>", "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    m = mod.m
    assert isinstance(m, torch.nn.Module)
    params = list(m.parameters())
    counts = (sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad),
              sum(b.numel() for b in m.buffers()))
    tensors: Tensors = set()
    for prefix, sub in m.named_modules():  # each module once, like vramlint's tree
        for kind, items in (("param", sub.named_parameters(recurse=False, remove_duplicate=False)),
                            ("buffer", sub.named_buffers(recurse=False, remove_duplicate=False))):
            for name, t in items:
                full = f"{prefix}.{name}" if prefix else name
                trainable = kind == "param" and t.requires_grad
                tensors.add((kind, full, tuple(t.shape), str(t.dtype).removeprefix("torch."), trainable))
    return counts, tensors


def _tree_tensors(node: Any, prefix: str = "") -> Tensors:
    """The same from vramlint's module tree."""
    out: Tensors = set()
    for kind, infos in (("param", node.params), ("buffer", node.buffers)):
        for t in infos:
            out.add((kind, prefix + t.name, tuple(t.shape), t.dtype, kind == "param" and t.trainable))
    for child in node.children:
        out |= _tree_tensors(child, prefix + child.path.rsplit(".", 1)[-1] + ".")
    return out


@pytest.mark.parametrize("src", [pytest.param(textwrap.dedent(src), id=cid) for cid, src in CASES])
def test_catalog_matches_torch(src: str, tmp_path: Any) -> None:
    expected, tensors = _run_torch(src)
    text = HEADER + src
    path = tmp_path / "model.py"
    path.write_text(text)
    result = vramlint.analyze_source(str(path), text)
    models = {r.name: r for r in result.models}
    assert "m" in models, f"no model `m`; got {sorted(models)}; errors {result.errors}"
    r = models["m"]
    assert r.error is None, r.error
    assert not r.unknowns, r.unknowns
    got = (r.params.total, r.params.trainable, r.params.buffers)
    assert got == expected, f"(total, trainable, buffers): vramlint {got} != torch {expected}"
    assert r.tree is not None
    mine = _tree_tensors(r.tree)
    assert mine == tensors, f"only vramlint: {sorted(mine - tensors)}; only torch: {sorted(tensors - mine)}"


# torch.nn classes the catalog leaves out on purpose: lazy layers have no shapes until their first
# forward, DataParallel wraps a model at run time, Container is deprecated.
NOT_IN_CATALOG = {"Module", "Container", "DataParallel"}


def test_catalog_covers_torch_nn() -> None:
    import importlib

    from vramlint.frontends.torch.catalog import CATALOG

    for family in ("attention", "containers", "conv", "embedding", "linear", "norm", "parameter_free",
                   "recurrent"):
        importlib.import_module(f"vramlint.frontends.torch.catalog.{family}")
    layers = {name for name, v in vars(torch.nn).items()
              if isinstance(v, type) and issubclass(v, torch.nn.Module)}
    missing = sorted(n for n in layers - set(CATALOG) - NOT_IN_CATALOG if not n.startswith("Lazy"))
    assert not missing, f"torch.nn layers missing from the catalog: {missing}"


def test_case_ids_unique() -> None:
    ids = [cid for cid, _ in CASES]
    assert len(ids) == len(set(ids))


RESET_METHODS = ("reset_parameters", "_reset_parameters", "reset_running_stats", "flatten_parameters")


def test_layer_methods_match_torch(tmp_path: Any) -> None:
    """Every catalog layer has the reset methods its torch class has (and no others), and a
    forward wherever the catalog has a forward rule: code calls `self.fc.reset_parameters()` in an
    __init__, and subclasses call `super().forward(x)`."""
    from vramlint.analysis.api import get_loader, search_paths
    from vramlint.frontends.torch.catalog import CATALOG, FORWARD
    from vramlint.settings import Settings

    names = sorted(n for n in CATALOG if isinstance(getattr(torch.nn, n, None), type))
    lines = [f"{n}__{m} = hasattr(nn.{n}, {m!r})" for n in names for m in (*RESET_METHODS, "forward")]
    text = "import torch.nn as nn\n" + "\n".join(lines) + "\n"
    path = tmp_path / "methods.py"
    mod, _, _ = get_loader(search_paths(Settings())).load_main(str(path), text, "methods")
    for n in names:
        for m in RESET_METHODS:
            assert mod.ns[f"{n}__{m}"] == hasattr(getattr(torch.nn, n), m), (n, m)
        if n in FORWARD:
            assert mod.ns[f"{n}__forward"] is True, n


SUBCLASS_FORWARD = """
import torch
import torch.nn as nn


class LayerNorm(nn.LayerNorm):  # CLIP's: normalise in float32, return the input's dtype
    def forward(self, x):
        orig = x.dtype
        return super().forward(x.float()).to(orig)


class Conv(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) + 1


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = Conv(3, 8, 3, padding=1)
        self.ln = LayerNorm(8)
        self.fc = nn.Linear(8, 4)
        self.fc.reset_parameters()
        self.bn = nn.BatchNorm1d(4)
        self.bn.reset_running_stats()

    def forward(self, x):
        y = self.conv(x).mean((2, 3))
        return self.bn(self.fc(self.ln(y)))


m = Net()
out = m(torch.randn(2, 3, 16, 16))
"""


def test_subclass_forward_calls_the_layers_forward(tmp_path: Any) -> None:
    """`super().forward(x)` in a subclass of a catalog layer runs the layer's rule, and the
    model's output shape and parameters are torch's."""
    path = tmp_path / "model.py"
    path.write_text(SUBCLASS_FORWARD)
    result = vramlint.analyze_source(str(path), SUBCLASS_FORWARD, vramlint.Settings(memory=True))
    (r,) = [r for r in result.models if r.name == "m"]
    assert r.error is None and not r.unknowns and not r.forward_unknowns, (r.error, r.unknowns, r.forward_unknowns)
    ns: dict[str, Any] = {}
    exec(compile(SUBCLASS_FORWARD, str(path), "exec"), ns)
    assert r.params.total == sum(p.numel() for p in ns["m"].parameters())
    assert r.output_shape == tuple(ns["out"].shape)
    assert r.memory is not None
