"""torch.nn's transformer modules against real torch (CPU), on generated configurations.

What autograd keeps: nn.TransformerEncoderLayer and nn.TransformerDecoderLayer over every
combination of norm_first, batch_first, the activation (its names, torch's functions, modules, a
function of the code), dropout 0 and > 0, bias and layer_norm_eps; nn.TransformerEncoder /
TransformerDecoder (final norm included) and nn.Transformer over the ways of giving masks (none,
a causal mask found causal by torch's `_detect_is_causal_mask`, the `is_causal` hint, bool
padding masks, a float mask). The truth is tests/test_memory_saved.py's: every tensor autograd
packs, one per storage, each rounded to the allocator's 512-byte block, adjusted by the
documented CPU/CUDA differences (`cuda_delta` below). Parameters and gradients: every parameter
the forward uses gets its gradient (nn.MultiheadAttention's out_proj included).

The CPU/CUDA differences (vramlint models CUDA, float32 here), all in `cuda_delta`:
- Attention without dropout: the CPU runs `_scaled_dot_product_flash_attention_for_cpu`, CUDA the
  memory-efficient kernel (float32: flash and cuDNN need half precision). Both keep q, k, v, the
  output and a float32 log-sum-exp, but CUDA pads the log-sum-exp to a multiple of 32 query rows
  (confirmed on an H200 for tests/test_memory_saved.py's "sdpa" case), and writes its output as
  [B, L, H, D] (attention.cu: `at::empty({B, M, num_heads, Kv})`), while the CPU kernel's output
  follows q's strides: nn.MultiheadAttention's q is laid out [L, B, H, D], so on the CPU the
  output projection's `permute(2, 0, 1, 3).reshape(...)` is a view of the output, on CUDA a copy
  ([L*B, E], kept by the projection).
- Attention with dropout (training): the CPU runs the math path (it keeps the scaled q, the scaled
  k^T, v, the softmax output, a float dropout mask and the dropped weights; its output is
  contiguous, so the projection copies it as on CUDA); CUDA runs the memory-efficient kernel (q,
  k, v, the output, the padded log-sum-exp; the mask is regenerated from a philox seed and offset,
  host scalars). In self-attention q, k and v are views of one storage, kept either way; in
  encoder-decoder attention q is a storage of its own, kept on CUDA only; a mask is kept on CUDA
  only (the math path adds it to the scores).
- nn.Dropout (p > 0): the CPU keeps a float mask of the input's dtype, CUDA's fused
  native_dropout a bool one.
Not confirmed on a GPU for these modules: the H200 check of the file's docstring covered the
"sdpa" and "dropout" cases; a float or padding mask given to the memory-efficient kernel may be
padded to an aligned last dimension on CUDA (attention.cpp's `pad_bias`), which the
scaled_dot_product_attention rule does not model (the SDPA backend rule's concern).
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_memory_saved import (
    HEADER,
    build_torch,
    rounded,
    torch_saved,
    vramlint_estimate,
    vramlint_loss,
)

torch = pytest.importorskip("torch")

E, H, FF, B, L = 32, 4, 64, 2, 10  # model width, heads, feed-forward width, batch, sequence length
ACTIVATIONS = ('"relu"', '"gelu"', "F.gelu", "F.silu", "nn.GELU()", "nn.ReLU()", "squared_relu")


@dataclass(frozen=True)
class Attention:
    """What one scaled_dot_product_attention call of nn.MultiheadAttention is given."""

    dropout: float
    tgt: int = L
    src: int = L
    # q projected apart from k and v (encoder-decoder attention): its own storage, which the
    # math path does not keep (it keeps the scaled copy) and the memory-efficient kernel does.
    cross: bool = False


def attention_delta(a: Attention) -> int:
    """CUDA - CPU bytes kept by one attention call (the module docstring's first two items)."""
    f = 4  # float32
    padded_lse = rounded(B * H * (-(-a.tgt // 32) * 32) * f)
    out = rounded(B * a.tgt * E * f)
    if a.dropout == 0:
        return padded_lse - rounded(B * H * a.tgt * f) + out  # the CUDA copy of the output
    d = E // H
    scores = rounded(B * H * a.tgt * a.src * f)
    math_keeps = rounded(B * H * a.tgt * d * f) + rounded(B * H * d * a.src * f) + 3 * scores
    own_q = rounded(B * a.tgt * E * f) if a.cross else 0
    return out + padded_lse + own_q - math_keeps


def dropout_delta(n: int) -> int:
    """CUDA's bool mask - the CPU's float one, for a dropout over n float32 elements."""
    return rounded(n) - rounded(4 * n)


def layer_delta(decoder: bool, dropout: float) -> int:
    """One encoder (decoder) layer: one (two) attention calls; with dropout, nn.Dropout after each
    attention, after the activation, and after the feed-forward block."""
    attention = attention_delta(Attention(dropout)) + (attention_delta(Attention(dropout, cross=True)) if decoder else 0)
    if not dropout:
        return attention
    return attention + (3 if decoder else 2) * dropout_delta(B * L * E) + dropout_delta(B * L * FF)


# ---------------------------------------------------------------------- the cases
FUNCTIONS = """\
def squared_relu(x):
    return F.relu(x) ** 2


"""


def net(layer: str, call: str, before: str = "") -> str:
    """A model of `layer` (self.layer) and a classification head; `call` is the layer's arguments,
    over `x` (and `mem`, a Linear of x, as a decoder's memory)."""
    return HEADER + FUNCTIONS + textwrap.dedent(f"""\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.mem = nn.Linear({E}, {E})
                self.layer = {layer}
                self.head = nn.Linear({E}, 10)

            def forward(self, x):
                mem = self.mem(x)
                {before}
                y = self.layer({call})
                return self.head(y)


        model = Net()
        """)


def inputs(batch_first: bool) -> str:
    return f"x = torch.randn({B}, {L}, {E})\n" if batch_first else f"x = torch.randn({L}, {B}, {E})\n"


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    cuda_delta: int


def layer_cases() -> list[Case]:
    """Every combination of the layer axes; bias and layer_norm_eps alternate along it, by the
    parity of the other axes (so that each takes both values for every activation and layer)."""
    cases = []
    product = itertools.product((False, True), (False, True), ACTIVATIONS, (0.0, 0.1), (False, True))
    for norm_first, batch_first, act, dropout, decoder in product:
        bias = (norm_first + batch_first + ACTIVATIONS.index(act) + (dropout > 0)) % 2 == 0
        eps = 1e-5 if (norm_first + ACTIVATIONS.index(act)) % 2 == 0 else 1e-6
        kind = "TransformerDecoderLayer" if decoder else "TransformerEncoderLayer"
        layer = (f"nn.{kind}({E}, {H}, {FF}, {dropout}, {act}, {eps}, batch_first={batch_first}, "
                 f"norm_first={norm_first}, bias={bias})")
        text = net(layer, "x, mem" if decoder else "x") + inputs(batch_first) + "out = model(x)\n"
        cid = (f"{'decoder' if decoder else 'encoder'}-{'pre' if norm_first else 'post'}-norm-"
               f"{'batch' if batch_first else 'seq'}-first-{act.strip(chr(34))}-dropout{dropout}-bias{bias}")
        cases.append(Case(cid, text, layer_delta(decoder, dropout)))
    return cases


# Masks as code gives them: (what the model's forward computes before the call, the call's mask
# arguments for an encoder stack, for a decoder stack, for nn.Transformer).
MASKS = {
    "no-mask": ("", "", "", ""),
    # torch finds the generated mask causal (_detect_is_causal_mask): no mask reaches the attention.
    "causal-detected": ("m = nn.Transformer.generate_square_subsequent_mask(x.size(1 if BF else 0))",
                        ", mask=m", ", tgt_mask=m", ", src_mask=m, tgt_mask=m"),
    "causal-hint": ("m = nn.Transformer.generate_square_subsequent_mask(x.size(1 if BF else 0))",
                    ", mask=m, is_causal=True", ", tgt_mask=m, tgt_is_causal=True",
                    ", tgt_mask=m, tgt_is_causal=True"),
    "padding": ("p = torch.zeros(x.size(0 if BF else 1), x.size(1 if BF else 0), dtype=torch.bool)",
                ", src_key_padding_mask=p", ", tgt_key_padding_mask=p, memory_key_padding_mask=p",
                ", src_key_padding_mask=p, tgt_key_padding_mask=p, memory_key_padding_mask=p"),
    "float-mask": ("m = torch.zeros(x.size(1 if BF else 0), x.size(1 if BF else 0))",
                   ", mask=m", ", tgt_mask=m, memory_mask=m", ", src_mask=m, tgt_mask=m, memory_mask=m"),
}
STACKS = ("TransformerEncoder", "TransformerDecoder", "Transformer")


def masks_delta(mask: str, calls: int) -> int:
    """With dropout, what the memory-efficient kernel keeps of the masks and the math path does not
    (it adds them to the scores): each call's [B*H, 1, S] padding mask (expanded per head, a copy),
    or the float mask the code made (one storage, whatever the number of calls)."""
    if mask == "padding":
        return calls * rounded(B * H * L * 4)
    return rounded(L * L * 4) if mask == "float-mask" else 0


def stack_cases() -> list[Case]:
    cases = []
    for i, (stack, mask, norm_first, batch_first) in enumerate(
            itertools.product(STACKS, MASKS, (False, True), (False, True))):
        dropout = 0.1 if i % 3 == 0 else 0.0
        common = f"{FF}, {dropout}, batch_first={batch_first}, norm_first={norm_first}"
        before, enc_args, dec_args, tf_args = MASKS[mask]
        before = before.replace("BF", str(batch_first))
        if stack == "Transformer":
            layer = f"nn.Transformer({E}, {H}, 2, 2, {common})"
            call, delta = f"x, x{tf_args}", 2 * layer_delta(False, dropout) + 2 * layer_delta(True, dropout)
        elif stack == "TransformerEncoder":
            layer = f"nn.TransformerEncoder(nn.TransformerEncoderLayer({E}, {H}, {common}), 2, nn.LayerNorm({E}))"
            call, delta = f"x{enc_args}", 2 * layer_delta(False, dropout)
        else:
            layer = f"nn.TransformerDecoder(nn.TransformerDecoderLayer({E}, {H}, {common}), 2, nn.LayerNorm({E}))"
            call, delta = f"x, mem{dec_args}", 2 * layer_delta(True, dropout)
        if dropout:
            delta += masks_delta(mask, {"Transformer": 6, "TransformerEncoder": 2}.get(stack, 4))
        text = net(layer, call, before) + inputs(batch_first) + "out = model(x)\n"
        cid = f"{stack}-{mask}-{'pre' if norm_first else 'post'}-norm-{'batch' if batch_first else 'seq'}-first"
        cases.append(Case(cid, text, delta))
    return cases


def _check(case: Case, tmp_path: Path) -> None:
    model, inputs_ = build_torch(case.text)
    saved, which = torch_saved(model, inputs_, vramlint_loss)
    assert which == "cross_entropy"
    truth = sum(rounded(s.nbytes) for s in saved) + case.cuda_delta
    est = vramlint_estimate(case.text, tmp_path / "case.py")
    detail = (f"vramlint {est.activations} B, torch {truth} B (CUDA-adjusted by {case.cuda_delta}); torch keeps:\n  "
              + "\n  ".join(map(str, saved))
              + "\nvramlint per module: " + ", ".join(f"{lm.path or '(model)'}={lm.saved_bytes}" for lm in est.layers))
    assert est.activations == truth, detail
    # every parameter gets a gradient (SGD: the gradients are the trainable weights, each rounded)
    grads = sum(rounded(p.numel() * 4) for p in model.parameters())
    assert est.gradients == grads, f"gradients {est.gradients} B, torch's parameters {grads} B"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in layer_cases()])
def test_layer_saved_bytes_match_torch(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in stack_cases()])
def test_stack_saved_bytes_match_torch(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path)


def test_the_cases_cover_every_axis() -> None:
    """The generated layer cases hold each value of each axis (none left out by the alternation)."""
    ids = [c.id for c in layer_cases()]
    for part in ("pre-norm", "post-norm", "batch-first", "seq-first", "dropout0.0", "dropout0.1", "biasTrue",
                 "biasFalse", "encoder", "decoder", *(a.strip('"') for a in ACTIVATIONS)):
        assert any(part in i for i in ids), part
