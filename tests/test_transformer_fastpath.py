"""Which path torch's nn.TransformerEncoderLayer takes, against torch itself.

In eval mode under no_grad, TransformerEncoderLayer.forward calls the fused
`torch._transformer_encoder_layer_fwd` when its conditions hold (torch/nn/modules/transformer.py);
the fused kernel (aten/src/ATen/native/transformers/transformer.cpp) runs the activation inside
linear1's addmm and adds the residuals in place, so inference allocates less. vramlint's choice
(`encoder_layer_fast_path`) is checked on generated calls against the real module with the fused
function wrapped to record whether it ran; and, end to end, the layer's inference ops are marked
as the fast path's exactly when torch takes it.
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any

import pytest

import vramlint.memory.tape as tape_module
from tests.test_memory_saved import HEADER
from vramlint.analysis.api import analyze_source
from vramlint.frontends.torch.catalog.attention_ops import EncoderLayerCall, encoder_layer_fast_path
from vramlint.settings import Settings

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "F.relu": F.relu, "F.gelu": F.gelu, "F.silu": F.silu,
               "nn.GELU()": nn.GELU(), "nn.ReLU()": nn.ReLU(), "nn.SiLU()": nn.SiLU()}
# how the layer is called: (train mode, grad enabled, src_mask, src_key_padding_mask, unbatched input)
CALLS = {
    "eval-no-grad": (False, False, False, False, False),
    "eval-grad": (False, True, False, False, False),
    "train-no-grad": (True, False, False, False, False),
    "eval-no-grad-src-mask": (False, False, True, False, False),
    "eval-no-grad-padding": (False, False, False, True, False),
    "eval-no-grad-unbatched": (False, False, False, False, True),
}


def _torch_takes_fast_path(monkeypatch: Any, layer: Any, call: tuple[bool, ...]) -> bool:
    train, grad, src_mask, padding, unbatched = call
    ran: list[bool] = []
    real = torch._transformer_encoder_layer_fwd

    def wrapped(*a: Any, **k: Any) -> Any:
        ran.append(True)
        return real(*a, **k)

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", wrapped)
    layer.train(train)
    e = layer.self_attn.embed_dim
    shape = (5, e) if unbatched else (2, 5, e) if layer.self_attn.batch_first else (5, 2, e)
    kwargs = {}
    if src_mask:
        kwargs["src_mask"] = torch.zeros(5, 5, dtype=torch.bool)
    if padding and not unbatched:
        kwargs["src_key_padding_mask"] = torch.zeros(2, 5, dtype=torch.bool)
    with torch.set_grad_enabled(grad):
        layer(torch.randn(shape), **kwargs)
    monkeypatch.undo()
    return bool(ran)


def _vramlint_call(layer: Any, call: tuple[bool, ...], hooks: bool) -> EncoderLayerCall:
    """The call as vramlint describes it, read off the torch module's configuration."""
    train, grad, _src_mask, _padding, unbatched = call
    attn = layer.self_attn
    return EncoderLayerCall(
        src_dim=2 if unbatched else 3, training=train, grad_enabled=grad, batch_first=attn.batch_first,
        in_proj_bias=attn.in_proj_bias is not None, qkv_same_embed_dim=attn._qkv_same_embed_dim,
        activation_relu_or_gelu=layer.activation_relu_or_gelu, eps_equal=layer.norm1.eps == layer.norm2.eps,
        nested_with_masks=False, num_heads=attn.num_heads, autocast=False, hooks=hooks)


# (batch_first, bias, activation, heads, norm1.eps == norm2.eps, a forward hook)
LAYERS = list(itertools.product((False, True), (False, True), ACTIVATIONS, (2, 1), (True, False), (False, True)))


def test_fast_path_choice_is_torchs(monkeypatch: Any) -> None:
    """Every generated call (layer configuration x how it is called): vramlint's choice is torch's."""
    wrong, n = [], 0
    for batch_first, bias, act, heads, eps_equal, hooks in LAYERS:
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(8, heads, 16, 0.0, ACTIVATIONS[act], batch_first=batch_first, bias=bias)
        if not eps_equal:
            layer.norm2.eps = 1e-6
        if hooks:
            layer.linear1.register_forward_hook(lambda m, i, o: None)
        for call in CALLS:
            n += 1
            taken = _torch_takes_fast_path(monkeypatch, layer, CALLS[call])
            why = encoder_layer_fast_path(_vramlint_call(layer, CALLS[call], hooks))
            if (why == "") != taken:
                wrong.append((batch_first, bias, act, heads, eps_equal, hooks, call, taken, why))
    assert n == 2 * 2 * len(ACTIVATIONS) * 2 * 2 * 2 * len(CALLS)
    assert not wrong, wrong


def test_the_generated_calls_take_both_paths(monkeypatch: Any) -> None:
    """The generated cases are not all one way: an even number of heads takes the fast path, an
    odd one does not (the same layer otherwise)."""
    for heads, expected in ((2, True), (1, False)):
        layer = nn.TransformerEncoderLayer(8, heads, 16, 0.0, "relu", batch_first=True)
        assert _torch_takes_fast_path(monkeypatch, layer, CALLS["eval-no-grad"]) is expected


# ---------------------------------------------------------------------- end to end (vramlint's reading)
MODEL = """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(32, {heads}, 64, 0.1, {act}, batch_first={bf}, bias={bias})
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.layer(x))


model = Net()
{extra}x = torch.randn({shape})
out = model(x)
"""
E2E_ACTS = ('"relu"', "F.gelu", "nn.GELU()", "F.silu")


@pytest.mark.parametrize(("bf", "bias", "act", "heads", "eps_equal", "hooks"),
                         list(itertools.product((False, True), (False, True), E2E_ACTS, (2, 1), (True, False),
                                                (False, True))))
def test_inference_marks_the_fast_path_as_torch_takes_it(monkeypatch: Any, tmp_path: Path, bf: bool, bias: bool,
                                                        act: str, heads: int, eps_equal: bool, hooks: bool) -> None:
    extra = ("model.layer.norm2.eps = 1e-6\n" if not eps_equal else "") + \
        ("model.layer.linear1.register_forward_hook(lambda m, i, o: None)\n" if hooks else "")
    text = HEADER + MODEL.format(heads=heads, act=act, bf=bf, bias=bias, extra=extra,
                                 shape="2, 5, 32" if bf else "5, 2, 32")
    ns: dict[str, Any] = {}
    exec(compile(text, "<case>", "exec"), ns)
    layer = ns["model"].layer
    taken = _torch_takes_fast_path(monkeypatch, layer, CALLS["eval-no-grad"])
    tapes: list[Any] = []
    init = tape_module.Tape.__init__

    def record(self: Any, *a: Any, **k: Any) -> None:
        init(self, *a, **k)
        tapes.append(self)

    monkeypatch.setattr(tape_module.Tape, "__init__", record)
    fa = analyze_source(str(tmp_path / "m.py"), textwrap.dedent(text), Settings(memory=True))
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.memory is not None
    marked = any(op.inference_alias for op in tapes[-1].ops)
    assert marked == taken


def test_fast_path_lowers_the_inference_peak(tmp_path: Path) -> None:
    """The fused kernel does not hold linear1's output and the activation's at once: with two
    heads (the fast path) inference needs less than with one (the same sizes otherwise), by at
    least a [2, 64, 512] hidden activation less the [2, 64, 32] output of linear2 that the fused
    path holds beside the hidden one."""
    peaks = {}
    for heads in (2, 1):
        text = HEADER + MODEL.format(heads=heads, act='"relu"', bf=True, bias=True, extra="", shape="2, 64, 32") \
            .replace("64, 0.1", "512, 0.1")
        fa = analyze_source(str(tmp_path / f"m{heads}.py"), text, Settings(memory=True))
        (m,) = [m for m in fa.models if m.name == "model"]
        assert m.memory is not None
        peaks[heads] = m.memory.inference_peak
    assert peaks[1] - peaks[2] >= 2 * 64 * (512 - 32) * 4
