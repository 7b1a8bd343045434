"""Recurrent layers and nn.MultiheadAttention against real torch (CPU): parameters, every tensor
of their outputs, and what autograd keeps for backward.

- Parameters and outputs: each case builds the layer and calls it inside a module's __init__,
  recording every tensor of the (nested) output as a parameter of that shape, the pattern model
  code uses to size a layer from a dummy forward. vramlint's tree must hold torch's parameters
  (the layer's own and the recorded ones), name for name and shape for shape.
- Saved tensors, MultiheadAttention: vramlint's `activations` against the tensors torch's
  autograd packs (tests/test_memory_saved.py's harness, `saved_tensors_hooks` on the CPU).
- Saved tensors, RNN / LSTM / GRU: vramlint models cuDNN, which keeps the input, the output and
  a reserve of every step's gates (`memory/autograd_rules.py`); the CPU kernels keep something
  else (per-layer oneDNN workspaces), so the CPU is no ground truth here. The expected bytes are
  computed by hand from the documented formula: steps x layers x directions x gates x hidden x 2
  elements. An LSTM has 4 gates, a GRU 3, an Elman RNN 1 (torch.nn.LSTM's docs: i, f, g, o).
"""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path
from typing import Any

import pytest

import vramlint
from tests.test_memory_saved import (
    BLOCK,
    HEADER,
    Gap,
    KnownGap,
    build_torch,
    rounded,
    torch_saved,
    vramlint_estimate,
    vramlint_loss,
)
from tests.test_transformer_saved import Attention, attention_delta
from vramlint.analysis.results import ModuleNode

torch = pytest.importorskip("torch")

# ---------------------------------------------------------------------- parameters and outputs
PROBE = """\
import torch
import torch.nn as nn


def tensors(y):
    if isinstance(y, (tuple, list)):
        out = []
        for v in y:
            out.extend(tensors(v))
        return out
    return [] if y is None else [y]


class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = {layer}
        with torch.no_grad():
            y = self.layer({call})
        for i, t in enumerate(tensors(y)):
            setattr(self, "out" + str(i), nn.Parameter(torch.zeros(t.shape)))


probe = Probe()
"""

T, N = 7, 3  # sequence length, batch
RNN_CASES = {
    "rnn": ("nn.RNN(6, 5)", f"torch.zeros({T}, {N}, 6)"),
    "rnn-relu-3-layers-bidirectional": ("nn.RNN(6, 5, 3, nonlinearity='relu', bidirectional=True)",
                                        f"torch.zeros({T}, {N}, 6)"),
    "rnn-unbatched": ("nn.RNN(6, 5, 2)", f"torch.zeros({T}, 6)"),
    "lstm": ("nn.LSTM(6, 5)", f"torch.zeros({T}, {N}, 6)"),
    "lstm-2-layers-bidirectional": ("nn.LSTM(6, 5, num_layers=2, bidirectional=True)",
                                    f"torch.zeros({T}, {N}, 6)"),
    "lstm-batch-first": ("nn.LSTM(6, 5, batch_first=True)", f"torch.zeros({N}, {T}, 6)"),
    "lstm-proj": ("nn.LSTM(6, 5, proj_size=2)", f"torch.zeros({T}, {N}, 6)"),
    "lstm-proj-3-layers-bidirectional-batch-first":
        ("nn.LSTM(6, 5, 3, batch_first=True, bidirectional=True, proj_size=3)", f"torch.zeros({N}, {T}, 6)"),
    "lstm-no-bias-unbatched": ("nn.LSTM(6, 5, 2, bias=False)", f"torch.zeros({T}, 6)"),
    "gru": ("nn.GRU(6, 5)", f"torch.zeros({T}, {N}, 6)"),
    "gru-2-layers-bidirectional-batch-first": ("nn.GRU(6, 5, 2, batch_first=True, bidirectional=True)",
                                               f"torch.zeros({N}, {T}, 6)"),
    "gru-no-bias": ("nn.GRU(6, 5, bias=False)", f"torch.zeros({T}, {N}, 6)"),
    "rnn-cell": ("nn.RNNCell(6, 5)", f"torch.zeros({N}, 6)"),
    "lstm-cell": ("nn.LSTMCell(6, 5)", f"torch.zeros({N}, 6)"),
    "lstm-cell-no-bias": ("nn.LSTMCell(6, 5, bias=False)", f"torch.zeros({N}, 6)"),
    "gru-cell": ("nn.GRUCell(6, 5)", f"torch.zeros({N}, 6)"),
}
L, S = 5, 6  # target and source lengths
MHA_CASES = {
    "mha": ("nn.MultiheadAttention(8, 2)", f"torch.zeros({L}, {N}, 8), torch.zeros({S}, {N}, 8), "
                                           f"torch.zeros({S}, {N}, 8)"),
    "mha-no-weights": ("nn.MultiheadAttention(8, 2)", f"torch.zeros({L}, {N}, 8), torch.zeros({S}, {N}, 8), "
                                                      f"torch.zeros({S}, {N}, 8), need_weights=False"),
    "mha-per-head-weights": ("nn.MultiheadAttention(8, 2)",
                             f"torch.zeros({L}, {N}, 8), torch.zeros({S}, {N}, 8), torch.zeros({S}, {N}, 8), "
                             "average_attn_weights=False"),
    "mha-batch-first": ("nn.MultiheadAttention(8, 4, batch_first=True)",
                        f"torch.zeros({N}, {L}, 8), torch.zeros({N}, {S}, 8), torch.zeros({N}, {S}, 8)"),
    "mha-kdim-vdim": ("nn.MultiheadAttention(8, 2, kdim=3, vdim=4)",
                      f"torch.zeros({L}, {N}, 8), torch.zeros({S}, {N}, 3), torch.zeros({S}, {N}, 4)"),
    "mha-kdim-vdim-batch-first-no-bias":
        ("nn.MultiheadAttention(8, 2, bias=False, kdim=3, vdim=4, batch_first=True)",
         f"torch.zeros({N}, {L}, 8), torch.zeros({N}, {S}, 3), torch.zeros({N}, {S}, 4)"),
    "mha-bias-kv-zero-attn": ("nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True)",
                              f"torch.zeros({L}, {N}, 8), torch.zeros({S}, {N}, 8), torch.zeros({S}, {N}, 8)"),
    "mha-bias-kv-batch-first-per-head": ("nn.MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True)",
                                         f"torch.zeros({N}, {L}, 8), torch.zeros({N}, {S}, 8), "
                                         f"torch.zeros({N}, {S}, 8), average_attn_weights=False"),
    "mha-zero-attn-unbatched": ("nn.MultiheadAttention(8, 2, add_zero_attn=True)",
                                f"torch.zeros({L}, 8), torch.zeros({S}, 8), torch.zeros({S}, 8)"),
    # query positional, key and value by keyword
    "mha-key-value-keywords": ("nn.MultiheadAttention(8, 2)", f"torch.zeros({L}, {N}, 8), key=torch.zeros({S}, {N}, 8), "
                                                              f"value=torch.zeros({S}, {N}, 8)"),
    "mha-unbatched": ("nn.MultiheadAttention(8, 2)", f"torch.zeros({L}, 8), torch.zeros({S}, 8), torch.zeros({S}, 8)"),
}

# Other layers whose forward takes a second tensor (surviving catalog mutants): EmbeddingBag's offsets,
# the losses' reductions.
OTHER_CASES = {
    "mse-loss-no-reduction": ("nn.MSELoss(reduction='none')", "torch.zeros(3, 4), torch.zeros(3, 4)"),
    "l1-loss-mean": ("nn.L1Loss()", "torch.zeros(3, 4), torch.zeros(3, 4)"),
    "embedding-bag-offsets": ("nn.EmbeddingBag(10, 4, mode='sum')", "torch.tensor([1, 2, 3, 4, 5]), torch.tensor([0, 2])"),
    "embedding-bag-include-last-offset": ("nn.EmbeddingBag(10, 4, include_last_offset=True)",
                                          "torch.tensor([1, 2, 3, 4, 5]), torch.tensor([0, 2, 5])"),
}


def _tree_params(node: ModuleNode, prefix: str = "") -> dict[str, tuple[int | None, ...] | None]:
    out = {prefix + p.name: p.shape for p in node.params}
    for c in node.children:
        out |= _tree_params(c, f"{prefix}{c.path.rsplit('.', 1)[-1]}.")
    return out


@pytest.mark.parametrize("name", [*RNN_CASES, *MHA_CASES, *OTHER_CASES])
def test_parameters_and_every_output_match_torch(name: str, tmp_path: Path) -> None:
    layer, call = {**RNN_CASES, **MHA_CASES, **OTHER_CASES}[name]
    source = PROBE.format(layer=layer, call=call)
    path = tmp_path / "probe.py"
    path.write_text(source)
    real = runpy.run_path(str(path))["probe"]
    expected = {n: tuple(p.shape) for n, p in real.named_parameters()}
    assert any(n.startswith("out") for n in expected)  # the case records outputs
    result = vramlint.analyze_source(str(path), source)
    (probe,) = [m for m in result.models if m.name == "probe"]
    assert probe.error is None and not probe.unknowns, [u.reason for u in probe.unknowns]
    assert probe.tree is not None
    assert _tree_params(probe.tree) == expected
    assert probe.params.total == sum(p.numel() for p in real.parameters())


# ---------------------------------------------------------------------- saved tensors: attention
def attention_model(layer: str, x: str, kv: str = "x, x", kwargs: str = "") -> str:
    return HEADER + textwrap.dedent(f"""\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = {layer}
                self.head = nn.Linear(32, 10)

            def forward(self, x):
                y, _ = self.attn(x, {kv}{kwargs})
                return self.head(y)


        model = Net()
        x = {x}
        out = model(x)
        """)


SEQ_FIRST, BATCH_FIRST = "torch.randn(10, 2, 32)", "torch.randn(2, 10, 32)"
# Without the weights, what CUDA's memory-efficient attention keeps differs from the CPU kernel's
# (the padded log-sum-exp, the output's layout): tests/test_transformer_saved.py documents it, for
# the same sizes (L=10, B=2, E=32, H=4).
NO_WEIGHTS_CUDA_DELTA = attention_delta(Attention(0.0))
# id -> (source, the known gaps of vramlint's rule against the CPU truth, CUDA - CPU bytes)
ATTENTION: dict[str, tuple[str, tuple[Gap, ...], int]] = {
    # need_weights=True (the default): the explicit [B*H, L, L] softmax matrix is kept.
    "weights": (attention_model("nn.MultiheadAttention(32, 4)", SEQ_FIRST), (), 0),
    "weights-per-head": (attention_model("nn.MultiheadAttention(32, 4)", SEQ_FIRST,
                                         kwargs=", average_attn_weights=False"), (), 0),
    "weights-no-bias": (attention_model("nn.MultiheadAttention(32, 4, bias=False)", SEQ_FIRST), (), 0),
    # need_weights=False: scaled_dot_product_attention (q, k, v, output, log-sum-exp), no L x L matrix.
    "no-weights-batch-first": (attention_model("nn.MultiheadAttention(32, 4, batch_first=True)", BATCH_FIRST,
                                               kwargs=", need_weights=False"), (), NO_WEIGHTS_CUDA_DELTA),
    "no-weights": (attention_model("nn.MultiheadAttention(32, 4)", SEQ_FIRST, kwargs=", need_weights=False"),
                   (), NO_WEIGHTS_CUDA_DELTA),
    # batch-first: the in-projection folds the transposed input to 2-D, a copy it keeps.
    "weights-batch-first": (attention_model("nn.MultiheadAttention(32, 4, batch_first=True)", BATCH_FIRST), (), 0),
    # kdim/vdim: separate q, k, v projections keep the key and value inputs.
    "weights-kdim-vdim": (attention_model("nn.MultiheadAttention(32, 4, kdim=16, vdim=24)", SEQ_FIRST,
                                          kv="torch.randn(10, 2, 16), torch.randn(10, 2, 24)"), (), 0),
}


def _attention_param(cid: str) -> Any:
    gaps = ATTENTION[cid][1]
    marks = [pytest.mark.xfail(strict=True, raises=KnownGap, reason="; ".join(g.reason for g in gaps))] \
        if gaps else []
    return pytest.param(cid, id=cid, marks=marks)


@pytest.mark.parametrize("cid", [_attention_param(c) for c in ATTENTION])
def test_attention_saved_bytes_match_torch(cid: str, tmp_path: Path) -> None:
    text, gaps, cuda_delta = ATTENTION[cid]
    model, inputs = build_torch(text)
    saved, which = torch_saved(model, inputs, vramlint_loss)
    assert which == "cross_entropy"
    truth = sum(rounded(s.nbytes) for s in saved) + cuda_delta
    est = vramlint_estimate(text, tmp_path / "case.py")
    got = est.activations
    detail = f"vramlint {got} B, torch {truth} B (CUDA-adjusted by {cuda_delta}); torch keeps:\n  " + \
        "\n  ".join(map(str, saved))
    if gaps and got - truth == sum(g.delta for g in gaps):
        raise KnownGap(detail)
    assert got == truth, detail
    # out_proj is used through F.multi_head_attention_forward, not called: its weight and bias
    # get their gradients all the same (SGD: the gradients are the weights).
    assert est.gradients == est.weights == sum(rounded(p.numel() * 4) for p in model.parameters())


def test_attention_weights_are_what_need_weights_costs(tmp_path: Path) -> None:
    """Returning the weights keeps the [B*H, L, L] softmax output (float32) instead of sdpa's
    [B, H, L] log-sum-exp: the difference of the two estimates, by hand."""
    b, h, length = 2, 4, 64
    x = f"torch.randn({b}, {length}, 32)"
    layer = "nn.MultiheadAttention(32, 4, batch_first=True)"
    weights = vramlint_estimate(attention_model(layer, x), tmp_path / "a.py").activations
    flash = vramlint_estimate(attention_model(layer, x, kwargs=", need_weights=False"), tmp_path / "b.py").activations
    assert weights - flash == rounded(b * h * length * length * 4) - rounded(b * h * length * 4)


# ---------------------------------------------------------------------- saved tensors: recurrent
def recurrent_model(layer: str, out_features: int, x: str) -> str:
    return HEADER + textwrap.dedent(f"""\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = {layer}
                self.head = nn.Linear({out_features}, 10)

            def forward(self, x):
                y, _ = self.rnn(x)
                return self.head(y)


        model = Net()
        x = {x}
        out = model(x)
        """)


GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
# (layer, hidden, num_layers, directions, output features, input) -> the recurrent layer's saved bytes
RECURRENT = {
    "lstm": ("LSTM", "nn.LSTM(16, 32)", 32, 1, 1, 32, (10, 2, 16)),
    "gru": ("GRU", "nn.GRU(16, 32)", 32, 1, 1, 32, (10, 2, 16)),
    "rnn": ("RNN", "nn.RNN(16, 32)", 32, 1, 1, 32, (10, 2, 16)),
    "lstm-2-layers-bidirectional": ("LSTM", "nn.LSTM(16, 32, 2, bidirectional=True)", 32, 2, 2, 64, (10, 2, 16)),
    "gru-3-layers-batch-first": ("GRU", "nn.GRU(16, 24, 3, batch_first=True)", 24, 3, 1, 24, (2, 10, 16)),
    "rnn-bidirectional": ("RNN", "nn.RNN(16, 32, bidirectional=True)", 32, 1, 2, 64, (10, 2, 16)),
    # The projection shrinks the output, not the gates (they are hidden_size wide).
    "lstm-proj": ("LSTM", "nn.LSTM(16, 32, proj_size=8)", 32, 1, 1, 8, (10, 2, 16)),
}


@pytest.mark.parametrize("cid", list(RECURRENT))
def test_recurrent_saved_bytes_by_hand(cid: str, tmp_path: Path) -> None:
    kind, layer, hidden, layers, dirs, features, shape = RECURRENT[cid]
    x = f"torch.randn{shape}"
    est = vramlint_estimate(recurrent_model(layer, features, x), tmp_path / "case.py")
    steps = shape[0] * shape[1]
    reserve = steps * layers * dirs * GATES[kind] * hidden * 2 * 4
    output = steps * features * 4  # float32, also the head's input (one storage)
    (rnn,) = [lm for lm in est.layers if lm.path == "rnn"]
    assert rnn.saved_bytes == rounded(reserve) + rounded(output)


def test_recurrent_reserve_scales_with_the_gates(tmp_path: Path) -> None:
    """Whatever cuDNN's constant, an LSTM keeps 4/3 of a GRU's reserve and 4x an Elman RNN's."""
    saved = {}
    for kind in GATES:
        text = recurrent_model(f"nn.{kind}(16, 64)", 64, "torch.randn(32, 4, 16)")
        (rnn,) = [lm for lm in vramlint_estimate(text, tmp_path / f"{kind}.py").layers if lm.path == "rnn"]
        assert rnn.saved_bytes is not None
        saved[kind] = rnn.saved_bytes - rounded(32 * 4 * 64 * 4)  # less the output
    assert saved["LSTM"] * 3 == saved["GRU"] * 4 and saved["LSTM"] == saved["RNN"] * 4
    assert saved["RNN"] % BLOCK == 0 and saved["RNN"] > 0


def test_pixel_shuffle_of_indivisible_channels_is_a_mismatch(tmp_path: Path) -> None:
    """torch refuses PixelShuffle(2) of 6 channels (not a multiple of 2 x 2); vramlint says why
    instead of a shape, and takes 8 channels."""
    source = PROBE.format(layer="nn.PixelShuffle(2)", call="torch.zeros(1, 6, 4, 4)")
    path = tmp_path / "probe.py"
    path.write_text(source)
    with pytest.raises(RuntimeError):
        runpy.run_path(str(path))
    (probe,) = [m for m in vramlint.analyze_source(str(path), source).models if m.name == "probe"]
    assert probe.params.total is None and any("PixelShuffle" in u.reason for u in probe.unknowns)
    fine = PROBE.format(layer="nn.PixelShuffle(2)", call="torch.zeros(1, 8, 4, 4)")
    (ok,) = [m for m in vramlint.analyze_source(str(path), fine).models if m.name == "probe"]
    assert ok.tree is not None and _tree_params(ok.tree) == {"out0": (1, 2, 8, 8)}
