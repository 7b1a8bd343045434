"""What autograd keeps for backward: vramlint's saved-tensor rules against real torch (CPU).

Each case is one source text. vramlint analyses it statically; torch runs the same text (it
defines `model` and `x`), then the model's forward and vramlint's automatic loss under
`torch.autograd.graph.saved_tensors_hooks`. The truth is every tensor autograd packs, one per
storage, less the storages of parameters, buffers, the inputs and the targets, each rounded up
to the caching allocator's 512-byte block: what vramlint's `MemoryEstimate.activations` counts.

vramlint models CUDA; where a CPU kernel keeps something else than its CUDA counterpart, the
case carries the documented difference (`cuda_delta`, from the one list of them in
tests/support/saved.py) and the CPU truth is adjusted by it.
Checked once on an H200 (torch 2.11+cu130): for every case, the CPU truth plus `cuda_delta`
equals the growth of `torch.cuda.memory_allocated()` over the forward and the loss (less the
targets and the loss scalar), and the same hooks run on CUDA (for sdpa, once its two host-side
int64 philox scalars are left out).

Where vramlint is wrong (not a device difference), the case stays an equality check marked
`xfail(strict=True)`, and declares by how many bytes vramlint is off (`Gap`): the test fails as
expected only with exactly that difference (`KnownGap`), so any other change of the numbers,
a fix included, fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The harness (tests/support/saved.py); the other saved-tensor tests import it from here too.
from tests.support.saved import (  # noqa: F401
    BLOCK,
    Gap,
    KnownGap,
    LossFn,
    Saved,
    build_torch,
    dropout_mask_delta,
    lse_padding_delta,
    rounded,
    torch_saved,
    torch_saved_bytes,
    vramlint_estimate,
    vramlint_loss,
    vramlint_saved_bytes,
)

torch = pytest.importorskip("torch")

# ---------------------------------------------------------------------- the cases
HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n\n"


@dataclass(frozen=True)
class Case:
    id: str
    body: str  # defines `model` and `x`, and calls `model(x)` (the call vramlint traces)
    loss: str = "cross_entropy"  # the loss vramlint appends (checked against the output)
    gaps: tuple[Gap, ...] = ()
    # CUDA - CPU bytes for what a CPU kernel keeps differently (explained where used).
    cuda_delta: int = 0

    @property
    def text(self) -> str:
        return HEADER + self.body

    @property
    def all_gaps(self) -> tuple[Gap, ...]:
        return self.gaps


def seq(*layers: str, x: str = "torch.randn(8, 16)") -> str:
    return f"model = nn.Sequential({', '.join(layers)})\nx = {x}\nout = model(x)\n"


def mlp(act: str) -> str:
    return seq("nn.Linear(16, 32)", act, "nn.Linear(32, 4)")


CONV_IN = "torch.randn(4, 3, 8, 8)"

FROZEN_EMBEDDING = """\
def make_inputs_require_grad(module, inputs, output):
    output.requires_grad_(True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.emb.weight.requires_grad_(False)
        self.handle = self.emb.register_forward_hook(make_inputs_require_grad)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.tanh(self.drop(self.emb(x))).mean(1))
"""

CASES = [
    # The question network: 4 x [256, 100] ReLU outputs (each also the next Linear's input)
    # and the [256, 10] log-probabilities.
    Case("question-mlp", seq("nn.Linear(1000, 100)", "nn.ReLU()",
                             *["nn.Linear(100, 100)", "nn.ReLU()"] * 3,
                             "nn.Linear(100, 10)", x="torch.randn(256, 1000)")),
    Case("relu", mlp("nn.ReLU()")),
    Case("relu-inplace", mlp("nn.ReLU(inplace=True)")),
    Case("sigmoid", mlp("nn.Sigmoid()")),
    Case("tanh", mlp("nn.Tanh()")),
    Case("gelu", mlp("nn.GELU()")),
    Case("silu", mlp("nn.SiLU()")),
    # silu_ and hardtanh_ (ReLU6) read their input in backward: autograd keeps a copy of it.
    Case("silu-inplace", mlp("nn.SiLU(inplace=True)")),
    Case("relu6-inplace", mlp("nn.ReLU6(inplace=True)")),
    Case("leaky-relu", mlp("nn.LeakyReLU(0.1)")),
    # leaky_relu_ reads its result in backward: no copy.
    Case("leaky-relu-inplace", mlp("nn.LeakyReLU(0.1, inplace=True)")),
    Case("softmax-linear", mlp("nn.Softmax(dim=-1)")),
    # CPU dropout (aten::_dropout, not the fused native_dropout CUDA uses) keeps a float mask
    # of the input's dtype, [8, 32] float32 = 1024 B; CUDA's native_dropout keeps a bool mask,
    # 256 B, one 512-byte block (seen on an H200).
    Case("dropout", seq("nn.Linear(16, 32)", "nn.ReLU()", "nn.Dropout(0.1)", "nn.Linear(32, 4)"),
         cuda_delta=dropout_mask_delta(8 * 32, 4)),
    Case("conv-batchnorm-relu", seq("nn.Conv2d(3, 8, 3, padding=1)", "nn.BatchNorm2d(8)",
                                    "nn.ReLU(inplace=True)", "nn.Flatten()", "nn.Linear(8 * 8 * 8, 10)",
                                    x=CONV_IN)),
    Case("maxpool", seq("nn.Conv2d(3, 8, 3, padding=1)", "nn.ReLU()", "nn.MaxPool2d(2)", "nn.Flatten()",
                        "nn.Linear(8 * 4 * 4, 10)", x=CONV_IN)),
    Case("avgpool", seq("nn.Conv2d(3, 8, 3, padding=1)", "nn.AvgPool2d(2)", "nn.Flatten()",
                        "nn.Linear(8 * 4 * 4, 10)", x=CONV_IN)),
    # adaptive_avg_pool2d to 1x1 is input.mean((-1, -2), keepdim=True) in ATen (every device):
    # the mean keeps nothing, so the conv output is not kept.
    Case("adaptive-avgpool-1", seq("nn.Conv2d(3, 8, 3, padding=1)", "nn.AdaptiveAvgPool2d(1)", "nn.Flatten()",
                                   "nn.Linear(8, 10)", x=CONV_IN)),
    Case("adaptive-avgpool-2", seq("nn.Conv2d(3, 8, 3, padding=1)", "nn.AdaptiveAvgPool2d((2, 2))",
                                   "nn.Flatten()", "nn.Linear(8 * 2 * 2, 10)", x=CONV_IN)),
    Case("layernorm", mlp("nn.LayerNorm(32)")),
    Case("groupnorm", seq("nn.Conv2d(3, 8, 3, padding=1)", "nn.GroupNorm(4, 8)", "nn.Flatten()",
                          "nn.Linear(8 * 8 * 8, 10)", x=CONV_IN)),
    Case("embedding", seq("nn.Embedding(100, 16)", "nn.Flatten()", "nn.Linear(12 * 16, 10)",
                          x="torch.randint(0, 100, (4, 12))")),
    # A [B, T, V] output: cross-entropy over [B*T, V].
    Case("lm-head-3d", seq("nn.Embedding(100, 16)", "nn.LayerNorm(16)", "nn.Linear(16, 100)",
                           x="torch.randint(0, 100, (4, 12))")),
    # A [B] output (Flatten(0) of [B, 1]): vramlint takes MSE, which keeps the output.
    Case("mse-1d-output", seq("nn.Linear(16, 32)", "nn.ReLU()", "nn.Linear(32, 1)", "nn.Flatten(0)"),
         loss="mse"),
    Case("residual", """\
class Residual(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        return x + self.fc(F.relu(self.norm(x)))


model = nn.Sequential(nn.Linear(16, 32), Residual(32), Residual(32), nn.Linear(32, 4))
x = torch.randn(8, 16)
out = model(x)
"""),
    Case("cat-branches", """\
class TwoBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.b = nn.Linear(16, 24)
        self.head = nn.Linear(56, 4)

    def forward(self, x):
        h = torch.cat([torch.tanh(self.a(x)), F.gelu(self.b(x))], dim=1)
        return self.head(h)


model = TwoBranch()
x = torch.randn(8, 16)
out = model(x)
"""),
    # The [2, 10, 10] scores are the output; the matmul keeps q and k (two Linear outputs).
    Case("matmul-activations", """\
class Scores(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(16, 16)
        self.k = nn.Linear(16, 16)

    def forward(self, x):
        q = self.q(x)
        k = self.k(x)
        return q @ k.transpose(-2, -1)


model = Scores()
x = torch.randn(2, 10, 16)
out = model(x)
"""),
    # view / permute / contiguous / transpose / reshape in a user forward: the matmul of the
    # transposed [4, 8, 6] input copies it ([32, 6]); the final reshape is a view.
    Case("user-module-views", """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 48)
        self.fc2 = nn.Linear(6, 6)
        self.fc3 = nn.Linear(48, 10)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = h.view(-1, 8, 6).permute(0, 2, 1).contiguous()
        h = F.gelu(h.transpose(1, 2))
        h = self.fc2(h)
        h = h.reshape(h.shape[0], -1)
        return self.fc3(h)


model = Net()
x = torch.randn(4, 16)
out = model(x)
"""),
    # Explicit attention on a fused qkv: the 4-D matmuls copy the permuted q, k, v into
    # [8, 10, 8] / [8, 8, 10] batches, the softmax keeps its [2, 4, 10, 10] output, the
    # transpose + reshape copies the attention output for the projection.
    Case("attention-explicit", """\
class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / (c // self.heads) ** 0.5)
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


model = nn.Sequential(SelfAttention(32, 4), nn.Linear(32, 50))
x = torch.randn(2, 10, 32)
out = model(x)
"""),
    # The same with `q, k, v = qkv` (iterating a tensor gives views) and Tensor.softmax.
    Case("attention-unpacked", """\
class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


model = nn.Sequential(SelfAttention(32, 4), nn.Linear(32, 50))
x = torch.randn(2, 10, 32)
out = model(x)
"""),
    # CPU torch runs _scaled_dot_product_flash_attention_for_cpu: it keeps q, k, v, the output
    # and a float32 log-sum-exp [2, 4, 10] (320 B, one block). In float32 CUDA runs the
    # memory-efficient kernel instead: the same tensors, but its log-sum-exp is padded to a
    # multiple of 32 query rows, [2, 4, 32] = 1024 B (its two 0-d int64 philox seed/offset are
    # host tensors); hence cuda_delta = +512 (measured on an H200, torch 2.11). cuDNN / flash
    # (half precision) keep an unpadded one.
    # Every one of those kernels returns the output [B, H, L, D] laid out as [B, L, H, D], so
    # `y.transpose(1, 2)` is contiguous and the reshape is a view: the projection keeps the
    # attention output itself, no copy (seen on the CPU, and on CUDA in float32 and bfloat16).
    Case("sdpa", """\
class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        q = self.q(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = self.k(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = self.v(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, c))


model = nn.Sequential(Attention(32, 4), nn.Linear(32, 50))
x = torch.randn(2, 10, 32)
out = model(x)
""", cuda_delta=lse_padding_delta(2 * 4, 10)),  # the padded log-sum-exp (CUDA)
    # A head dim of 6 in float32 with dropout: CUDA runs the math kernel too (memory-efficient
    # wants head dims in multiples of 4 from sm80: sdp_utils.cpp minimum_gemm_alignment; flash
    # and cuDNN half precision), as the CPU does (its flash kernel takes no dropout). Math keeps
    # the scaled q and k, the softmax output, the dropout mask and output, and v; its output is
    # contiguous [B, H, L, D], so the reshape for the projection copies. CUDA's fused dropout
    # keeps a bool mask where the CPU keeps a float32 one: cuda_delta (memory/attention_backends.py).
    Case("sdpa-math-dropout", """\
class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.1)
        return self.out(y.transpose(1, 2).reshape(b, t, c))


model = nn.Sequential(Attention(24, 4), nn.Linear(24, 50))
x = torch.randn(2, 10, 24)
out = model(x)
""", cuda_delta=rounded(2 * 4 * 10 * 10) - rounded(2 * 4 * 10 * 10 * 4)),
    # nn.Unfold (im2col) copies the windows out: its backward needs only sizes, and it is not a
    # view like Tensor.unfold. The Linear keeps the Unfold's output.
    Case("unfold-layer", seq("nn.Conv2d(3, 8, 3, padding=1)", "nn.Unfold(3, padding=1)", "nn.Flatten()",
                             "nn.Linear(8 * 9 * 64, 10)", x=CONV_IN)),
    # A forward hook making a frozen embedding's output require a gradient (transformers'
    # enable_input_require_grads, for LoRA under checkpointing): the dropout after it keeps its
    # mask (CPU: a float mask, as in "dropout"), the tanh its output. Without the hook (removed
    # by its handle) nothing before the Linear needs a gradient, and only its input is kept.
    Case("forward-hook-requires-grad", FROZEN_EMBEDDING + "\n\nmodel = Net()\nx = torch.randint(0, 100, (4, 12))\n"
         "out = model(x)\n", cuda_delta=dropout_mask_delta(4 * 12 * 16, 4)),
    Case("forward-hook-removed", FROZEN_EMBEDDING + "\n\nmodel = Net()\nmodel.handle.remove()\n"
         "x = torch.randint(0, 100, (4, 12))\nout = model(x)\n"),
    # torch.diff is composite (narrow, then sub): its backward keeps nothing; the tanh keeps its output.
    Case("diff", """\
class Differences(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32)
        self.head = nn.Linear(31, 4)

    def forward(self, x):
        return self.head(torch.tanh(torch.diff(self.fc(x), dim=-1)))


model = Differences()
x = torch.randn(8, 16)
out = model(x)
"""),
    Case("F.unfold-repeat-interleave", """\
class Windows(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 9 * 2, 10)

    def forward(self, x):
        w = F.unfold(self.conv(x), 3, padding=1).repeat_interleave(2, dim=1)
        return self.fc(w.transpose(1, 2)).mean(1)


model = Windows()
x = torch.randn(4, 3, 8, 8)
out = model(x)
"""),
    # torch.diff is slicing and a subtraction (with prepend, a cat first): nothing is kept, not
    # the Linear output it reads.
    Case("diff", """\
class Differences(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = self.fc(x)
        return self.head(torch.diff(h, prepend=h[:, :1], dim=-1))


model = Differences()
x = torch.randn(8, 16)
out = model(x)
"""),
    # F.alpha_dropout runs only with training=True (its default is False, unlike F.dropout's):
    # then it keeps a noise of the input's size and dtype, on every device (not fused); F.dropout
    # keeps CUDA's bool mask (CPU: a float mask, as in "dropout").
    Case("functional-dropouts", """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = self.fc(x)
        return self.head(F.alpha_dropout(h, 0.5) + F.dropout(h, 0.5) + F.alpha_dropout(h, 0.2, training=True))


model = Net()
x = torch.randn(8, 16)
out = model(x)
""", cuda_delta=dropout_mask_delta(8 * 32, 4)),
    # F.pad: reflection and replication padding keep their input, constant padding nothing.
    Case("F.pad-modes", """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(3 * 4 * 8 * 8, 10)

    def forward(self, x):
        h = F.gelu(self.conv(x))  # kept by the padding only (GELU keeps its input)
        y = torch.cat([F.pad(h, (1, 1, 1, 1), mode="reflect"), F.pad(h, (1, 1, 1, 1), mode="replicate"),
                       F.pad(h, (1, 1, 1, 1))], dim=1)
        return self.fc(y.flatten(1))


model = Net()
x = torch.randn(4, 3, 8, 8)
out = model(x)
"""),
    # A convolution's padding_mode pads with F.pad first: the convolution keeps the padded
    # [4, 4, 10, 10] copy, reflection padding keeps its input too, circular padding nothing.
    Case("conv-padding-modes", seq("nn.Conv2d(3, 4, 1)", "nn.GELU()", "nn.Conv2d(4, 4, 3, padding=1, padding_mode='reflect')",
                                   "nn.Conv2d(4, 4, 3, padding=1, padding_mode='circular')", "nn.Flatten()",
                                   "nn.Linear(4 * 8 * 8, 10)", x=CONV_IN)),
]


def _param(case: Case) -> Any:
    gaps = case.all_gaps
    marks = [pytest.mark.xfail(strict=True, raises=KnownGap, reason="; ".join(g.reason for g in gaps))] \
        if gaps else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_saved_bytes_match_torch(case: Case, tmp_path: Path) -> None:
    model, inputs = build_torch(case.text)
    saved, which = torch_saved(model, inputs, vramlint_loss)
    assert which == case.loss, f"the output takes {which}, the case says {case.loss}"
    truth = sum(rounded(s.nbytes) for s in saved) + case.cuda_delta
    est = vramlint_estimate(case.text, tmp_path / "case.py")
    got = est.activations
    detail = (f"vramlint {got} B, torch {truth} B (CUDA-adjusted by {case.cuda_delta}); torch keeps:\n  "
              + "\n  ".join(map(str, saved))
              + "\nvramlint per module: " + ", ".join(f"{lm.path or '(model)'}={lm.saved_bytes}" for lm in est.layers))
    gaps = case.all_gaps
    if gaps and got - truth == sum(g.delta for g in gaps):
        raise KnownGap(detail)
    assert got == truth, detail


def test_question_network_truth() -> None:
    """The ground truth itself, by hand on the question network: the four ReLU outputs (each
    also the next Linear's input), the log-probabilities, nll_loss's total_weight; not the
    batch, the targets or the weights."""
    case = next(c for c in CASES if c.id == "question-mlp")
    model, inputs = build_torch(case.text)
    saved, _ = torch_saved(model, inputs, vramlint_loss)
    relu_outputs = [s for s in saved if s.shape == (256, 100)]
    assert len(relu_outputs) == 4 and all(s.dtype == "float32" and s.nbytes == 102400 for s in relu_outputs)
    assert any(s.shape == (256, 10) and s.nbytes == 10240 for s in saved)  # log-probabilities
    # The first Linear's input is the batch (not counted); the only other storage is nll_loss's
    # 0-d total_weight (a 512-byte block on the GPU).
    assert [s for s in saved if s.shape not in ((256, 100), (256, 10))] == [Saved((), "float32", 4, "None")]
    assert torch_saved_bytes(model, inputs, vramlint_loss) == 4 * 102400 + rounded(10240) + BLOCK
