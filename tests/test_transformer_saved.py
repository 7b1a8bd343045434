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
- A mask: the memory-efficient kernel keeps a copy padded to 16 columns per call, the CPU's flash
  kernel the mask it is given, its math path none (`masks_delta`).
Not confirmed on a GPU for these modules: the H200 check of tests/test_memory_saved.py's
docstring covered the "sdpa" and "dropout" cases, not masks.
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.test_memory_saved import (
    HEADER,
    build_torch,
    rounded,
    torch_saved,
    vramlint_estimate,
    vramlint_loss,
)
from vramlint.analysis.api import analyze_source

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
    batch: int = B
    heads: int = H
    embed: int = E


def attention_delta(a: Attention) -> int:
    """CUDA - CPU bytes kept by one attention call (the module docstring's first two items)."""
    f = 4  # float32
    b, h, e = a.batch, a.heads, a.embed
    padded_lse = rounded(b * h * (-(-a.tgt // 32) * 32) * f)
    out = rounded(b * a.tgt * e * f)
    if a.dropout == 0:
        return padded_lse - rounded(b * h * a.tgt * f) + out  # the CUDA copy of the output
    d = e // h
    scores = rounded(b * h * a.tgt * a.src * f)
    math_keeps = rounded(b * h * a.tgt * d * f) + rounded(b * h * d * a.src * f) + 3 * scores
    own_q = rounded(b * a.tgt * e * f) if a.cross else 0
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


def masks_delta(mask: str, calls: int, dropout: float) -> int:
    """CUDA - CPU bytes kept of the masks. CUDA's memory-efficient kernel keeps each call's mask
    as a bias whose last dim is padded to a multiple of 16 (attention.cu `preprocess_mask` /
    `pad_bias<16>`: a copy per call; memory/attention_backends.py). The CPU's flash kernel (no
    dropout) keeps the mask it is given: the float mask the code made (one storage), or each
    call's [B*H, 1, S] padding mask (merged per head, a copy); its math path (dropout) adds the
    mask to the scores and keeps none."""
    def padded(rows: int) -> int:
        return rounded(rows * (-(-L // 16) * 16) * 4)

    if mask == "padding":
        return calls * padded(B * H) - (0 if dropout else calls * rounded(B * H * L * 4))
    if mask == "float-mask":
        return calls * padded(L) - (0 if dropout else rounded(L * L * 4))
    return 0


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
        delta += masks_delta(mask, {"Transformer": 6, "TransformerEncoder": 2}.get(stack, 4), dropout)
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


# ---------------------------------------------------------------------- the cases
def test_multihead_attention_out_proj_gets_its_gradient(tmp_path: Path) -> None:
    """Issue 15: a model of one nn.MultiheadAttention(256, 8) showed gradients of 789,504 bytes
    (in_proj's weight and bias) against weights of 1,052,672: out_proj, used through
    F.multi_head_attention_forward, had none."""
    text = HEADER + textwrap.dedent("""\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = nn.MultiheadAttention(256, 8)

            def forward(self, x):
                return self.attn(x, x, x)[0]


        model = Net()
        x = torch.randn(16, 4, 256)
        out = model(x)
        """)
    model, _ = build_torch(text)
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert weights == 1_052_672
    est = vramlint_estimate(text, tmp_path / "mha.py")
    assert est.weights == est.gradients == weights


VIT = """\
class ViT(nn.Module):
    def __init__(self, img=224, patch=16, dim=192, depth=12, heads=3, classes=1000):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (img // patch) ** 2 + 1, dim))
        layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=4 * dim, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.encoder(x)
        return self.head(self.norm(x[:, 0]))


model = ViT()
x = torch.randn(2, 3, 224, 224)
out = model(x)
"""


def test_vit_keeps_what_torch_keeps(tmp_path: Path) -> None:
    """Issue 15: the ViT of nn.TransformerEncoder(nn.TransformerEncoderLayer(192, 3, 768,
    dropout=0.0, activation="gelu", batch_first=True, norm_first=True), 12) at 197 tokens kept
    nothing for linear2 and the GELU (training was estimated 42% under the real peak). Each layer
    keeps GELU's input and linear2's input (GELU's output), [2, 197, 768] float32 each; in all,
    what torch keeps (with the CUDA attention differences of the 12 layers)."""
    text = HEADER + VIT
    model, inputs_ = build_torch(text)
    saved, _ = torch_saved(model, inputs_, vramlint_loss)
    delta = 12 * attention_delta(Attention(0.0, 197, 197, batch=2, heads=3, embed=192))
    est = vramlint_estimate(text, tmp_path / "vit.py")
    assert est.activations == sum(rounded(s.nbytes) for s in saved) + delta
    per_layer = {lm.path: lm for lm in est.layers}
    hidden = rounded(2 * 197 * 768 * 4)
    for i in range(12):
        assert per_layer[f"encoder.layers.{i}.linear2"].saved_bytes == hidden
        layer = per_layer[f"encoder.layers.{i}"]  # F.gelu, called by the layer's own forward
        assert layer.ops == ("gelu",) and layer.saved_bytes == hidden


SEQ2SEQ = """\
class Seq2Seq(nn.Module):
    def __init__(self, vocab=100, d=32):
        super().__init__()
        self.src_emb = nn.Embedding(vocab, d)
        self.tgt_emb = nn.Embedding(vocab, d)
        self.transformer = nn.Transformer(d, 4, 2, 2, 64, 0.0, batch_first=True)
        self.generator = nn.Linear(d, vocab)

    def forward(self, src):
        tgt = src[:, :-1]
        mask = {mask}(tgt.size(1))
        out = self.transformer(self.src_emb(src), self.tgt_emb(tgt), tgt_mask=mask)
        return self.generator(out)


model = Seq2Seq()
x = torch.randint(0, 100, (2, 10))
out = model(x)
"""


@pytest.mark.parametrize("mask", ["self.transformer.generate_square_subsequent_mask",
                                  "nn.Transformer.generate_square_subsequent_mask"])
def test_seq2seq_on_nn_transformer(mask: str, tmp_path: Path) -> None:
    """Issue 15: Transformer.generate_square_subsequent_mask (a static method, called on the
    instance or the class) was missing: a seq2seq model on nn.Transformer got no estimate. The
    parameters and what autograd keeps are torch's (the decoder finds the mask causal, so no mask
    reaches its self-attention)."""
    text = HEADER + SEQ2SEQ.format(mask=mask)
    model, inputs_ = build_torch(text)
    saved, _ = torch_saved(model, inputs_, vramlint_loss)
    enc = attention_delta(Attention(0.0, 10, 10))
    dec = attention_delta(Attention(0.0, 9, 9)) + attention_delta(Attention(0.0, 9, 10, cross=True))
    est = vramlint_estimate(text, tmp_path / "seq2seq.py")
    assert est.activations == sum(rounded(s.nbytes) for s in saved) + 2 * enc + 2 * dec
    assert est.weights == est.gradients == sum(rounded(p.numel() * 4) for p in model.parameters())
    fa = analyze_source(str(tmp_path / "seq2seq.py"), text)
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.params.total == sum(p.numel() for p in model.parameters())


def test_generate_square_subsequent_mask_values(tmp_path: Path) -> None:
    """The mask's values (vramlint tracks them up to 256 elements): a layer sized by how many are
    -inf and how many are 0 has torch's parameters."""
    text = HEADER + textwrap.dedent("""\
        m = nn.Transformer.generate_square_subsequent_mask(5)
        model = nn.Linear(int((m == float("-inf")).sum()), int((m == 0).sum()))
        """)
    ns: dict[str, Any] = {}
    exec(compile(text, "<mask>", "exec"), ns)
    fa = analyze_source(str(tmp_path / "m.py"), text)
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.params.total == sum(p.numel() for p in ns["model"].parameters()) == 10 * 15 + 15


FUNCTIONAL_MHA = """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.in_proj = nn.Parameter(torch.randn(3 * {E}, {E}))
        self.in_bias = nn.Parameter(torch.zeros(3 * {E}))
        self.out = nn.Linear({E}, {E})
        self.head = nn.Linear({E}, 10)

    def forward(self, x):
        y, _ = F.multi_head_attention_forward(x, x, x, {E}, {H}, self.in_proj, self.in_bias, None, None, False, 0.0,
                                              self.out.weight, self.out.bias, need_weights={need_weights})
        return self.head(y)


model = Net()
x = torch.randn({L}, {B}, {E})
out = model(x)
"""


@pytest.mark.parametrize("need_weights", [False, True])
def test_functional_multi_head_attention_forward(need_weights: bool, tmp_path: Path) -> None:
    """F.multi_head_attention_forward called by the code: what it keeps and its parameters' gradients."""
    text = HEADER + FUNCTIONAL_MHA.format(E=E, H=H, L=L, B=B, need_weights=need_weights)
    model, inputs_ = build_torch(text)
    saved, _ = torch_saved(model, inputs_, vramlint_loss)
    est = vramlint_estimate(text, tmp_path / "fmha.py")
    delta = 0 if need_weights else attention_delta(Attention(0.0))
    assert est.activations == sum(rounded(s.nbytes) for s in saved) + delta
    assert est.weights == est.gradients == sum(rounded(p.numel() * 4) for p in model.parameters())


SUBCLASS = """\
class SandwichLayer(nn.TransformerEncoderLayer):
    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src + self._sa_block(self.norm1(src), src_mask, src_key_padding_mask, is_causal=is_causal)
        return self.norm2(x + self._ff_block(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = SandwichLayer({E}, {H}, {FF}, 0.0, batch_first=True)
        self.head = nn.Linear({E}, 10)

    def forward(self, x):
        return self.head(self.layer(x))


model = Net()
x = torch.randn({B}, {L}, {E})
out = model(x)
"""


def test_a_subclass_calling_the_layers_blocks(tmp_path: Path) -> None:
    """A layer of the code built on TransformerEncoderLayer's own _sa_block and _ff_block."""
    text = HEADER + SUBCLASS.format(E=E, H=H, FF=FF, B=B, L=L)
    model, inputs_ = build_torch(text)
    saved, _ = torch_saved(model, inputs_, vramlint_loss)
    est = vramlint_estimate(text, tmp_path / "sub.py")
    assert est.activations == sum(rounded(s.nbytes) for s in saved) + attention_delta(Attention(0.0))
    assert est.weights == est.gradients == sum(rounded(p.numel() * 4) for p in model.parameters())


MERGE = """\
class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        q = torch.zeros(3, 5, 8)
        merged, kind = self.attn.merge_masks({attn_mask}, {padding}, q)
        self.out = nn.Parameter(torch.zeros(merged.shape))
        self.kind = nn.Parameter(torch.zeros(kind))


probe = Probe()
"""


@pytest.mark.parametrize(("attn_mask", "padding"), [
    ("torch.zeros(5, 5)", "None"), ("None", "torch.zeros(3, 5)"), ("torch.zeros(5, 5)", "torch.zeros(3, 5)"),
    ("torch.zeros(6, 5, 5)", "None")])
def test_merge_masks_shapes_are_torchs(attn_mask: str, padding: str, tmp_path: Path) -> None:
    """MultiheadAttention.merge_masks: the merged mask's shape and the mask type, as torch's."""
    text = HEADER + MERGE.format(attn_mask=attn_mask, padding=padding)
    ns: dict[str, Any] = {}
    exec(compile(text, "<merge>", "exec"), ns)
    expected = {n: tuple(p.shape) for n, p in ns["probe"].named_parameters()}
    fa = analyze_source(str(tmp_path / "merge.py"), text)
    (probe,) = [m for m in fa.models if m.name == "probe"]
    assert probe.params.total == sum(p.numel() for p in ns["probe"].parameters()), expected
