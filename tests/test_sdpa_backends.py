"""Which kernel F.scaled_dot_product_attention runs on CUDA (vramlint.memory.attention_backends),
one test per rule of torch's dispatch, and what each kernel keeps for backward.

The expected choices are torch's conditions, read in aten/src/ATen/native/transformers/cuda/
sdp_utils.cpp (`select_sdp_backend`, `can_use_{cudnn,flash,mem_efficient}_attention`) and
sdp_utils_cpp.h (the checks they share); each test names the check. No GPU is needed: the
choice is a pure function of the call and the card. What the math kernel keeps is checked
against real torch on the CPU (`saved_tensors_hooks`): the CPU runs the same composite, with a
float dropout mask where CUDA's fused dropout keeps a bool one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vramlint.analysis.api import analyze_source
from vramlint.memory.attention_backends import (
    BACKENDS,
    CUDNN,
    EFFICIENT,
    FLASH,
    MATH,
    KernelEnv,
    SdpaInputs,
    choose_backend,
    kept_for_backward,
    minimum_gemm_alignment,
    parse_version,
    priority_order,
)
from vramlint.settings import Settings

H200_211 = KernelEnv(sm=90, torch_version=(2, 11, 0))  # the calibration card and release
A100 = KernelEnv(sm=80)


def call(b: int = 2, h: int = 8, lq: int = 256, s: int | None = None, d: int = 64, dv: int | None = None,
         hk: int | None = None, dtype: str = "bfloat16", **kw: Any) -> SdpaInputs:
    s = lq if s is None else s
    hk = h if hk is None else hk
    return SdpaInputs((b, h, lq, d), (b, hk, s, d), (b, hk, s, d if dv is None else dv), dtype, **kw)


def chosen(x: SdpaInputs, env: KernelEnv = H200_211) -> str | None:
    c = choose_backend(x, env)
    return c.backend if c is not None else None


# ---------------------------------------------------------------------- the priority order
def test_cudnn_first_on_hopper_and_blackwell_from_torch_2_11() -> None:
    """check_prefer_cudnn_attention: cuDNN first on sm90 / sm10x when the runtime cuDNN is newer
    than 9.15.0; torch 2.11 bundles 9.19 (the calibration machine)."""
    assert priority_order(H200_211) == (CUDNN, FLASH, EFFICIENT, MATH)
    assert priority_order(KernelEnv(sm=100)) == (CUDNN, FLASH, EFFICIENT, MATH)
    assert chosen(call()) == CUDNN


def test_flash_first_elsewhere() -> None:
    """Context.h's default order flash, efficient, math, cuDNN: on sm80/sm89, and on sm90 with
    torch 2.10 (its bundled cuDNN is under the 9.15.1 threshold)."""
    for env in (A100, KernelEnv(sm=89), KernelEnv(sm=90, torch_version=(2, 10, 0))):
        assert priority_order(env) == (FLASH, EFFICIENT, MATH, CUDNN), env
        assert chosen(call(), env) == FLASH


def test_torch_2_5_0_alone_put_cudnn_first() -> None:
    """2.5.0 preferred cuDNN on sm90; 2.5.1 made it opt-in (pytorch#138522)."""
    assert priority_order(KernelEnv(sm=90, torch_version=(2, 5, 0)))[0] == CUDNN
    assert priority_order(KernelEnv(sm=90, torch_version=(2, 5, 1)))[0] == FLASH


def test_torch_versions_are_read_leniently() -> None:
    assert parse_version("2.11.0+cu130") == (2, 11, 0)
    assert parse_version("2.13") == (2, 13, 0)
    assert parse_version("nightly") == (2, 13, 0)


# ---------------------------------------------------------------------- flash
def test_flash_rejects_any_mask() -> None:
    """check_for_attn_mask: flash takes no attn_mask; memory-efficient does."""
    assert chosen(call(mask=(256, 256), mask_dtype="bool"), A100) == EFFICIENT


def test_flash_head_dims_equal_and_at_most_256() -> None:
    """check_head_dim_size_flash: q, k, v share the head dim, <= 256."""
    assert chosen(call(d=256), A100) == FLASH
    assert chosen(call(d=264), A100) == EFFICIENT
    assert chosen(call(d=64, dv=128), A100) == EFFICIENT  # efficient only needs q and k equal


def test_flash_hardware_sm80_to_sm121() -> None:
    """check_flash_attention_hardware_support [sm80, sm121]; memory-efficient [sm50, sm121]."""
    assert chosen(call(dtype="float16"), KernelEnv(sm=75)) == EFFICIENT
    assert chosen(call(dtype="float16"), KernelEnv(sm=121)) == FLASH


def test_flash_training_head_dim_over_192_on_sm86_89() -> None:
    """check_requires_grad_and_head_dim_gt192_constraints_on_sm86_89_or_120: training with a head
    dim in (192, 224], or (224, 256] with dropout, is not flash on sm86-89 / sm120; inference is."""
    ada = KernelEnv(sm=89)
    assert chosen(call(d=200), ada) == EFFICIENT
    assert chosen(call(d=200, q_grad=False, k_grad=False, v_grad=False), ada) == FLASH
    assert chosen(call(d=256), ada) == FLASH
    assert chosen(call(d=256, dropout_p=0.1), ada) == EFFICIENT
    assert chosen(call(d=200), A100) == FLASH


def test_flash_causal_needs_square() -> None:
    """check_flash_causal_non_square_seqlens: is_causal with seqlen_q != seqlen_k is not flash."""
    assert chosen(call(lq=1, s=256, is_causal=True), A100) == EFFICIENT
    assert chosen(call(is_causal=True), A100) == FLASH


def test_flash_half_precision_only() -> None:
    """check_dtypes_low_precision: fp16/bf16 from sm80 (fp16 only before); fp32 goes to
    memory-efficient, which takes fp32 everywhere and bf16 from sm80."""
    assert chosen(call(dtype="float32"), A100) == EFFICIENT
    assert chosen(call(dtype="float32"), H200_211) == EFFICIENT
    assert chosen(call(dtype="bfloat16"), KernelEnv(sm=75)) == MATH
    assert chosen(call(dtype="float64"), A100) == MATH


def test_grouped_query_attention_needs_enable_gqa() -> None:
    """check_batch_size_and_num_heads_dense: different head counts only with enable_gqa and
    key/value heads dividing the query heads (flash/efficient: as many value as key heads)."""
    assert chosen(call(h=8, hk=2), A100) == MATH
    assert chosen(call(h=8, hk=2, enable_gqa=True), A100) == FLASH
    assert chosen(call(h=8, hk=3, enable_gqa=True), A100) == MATH
    assert chosen(call(h=8, hk=2, enable_gqa=True), H200_211) == CUDNN


# ---------------------------------------------------------------------- memory-efficient
def test_efficient_gemm_alignment() -> None:
    """check_head_dim_size_mem_efficient with minimum_gemm_alignment: 8 elements in half
    precision on tensor cores, 4 in fp32 from sm80, 1 in fp32 before."""
    assert minimum_gemm_alignment("bfloat16", 80) == 8
    assert minimum_gemm_alignment("float32", 80) == 4
    assert minimum_gemm_alignment("float16", 70) == 8
    assert minimum_gemm_alignment("float32", 70) == 1
    assert chosen(call(dtype="float32", d=36), A100) == EFFICIENT
    assert chosen(call(dtype="float32", d=6), A100) == MATH
    assert chosen(call(dtype="float32", d=6), KernelEnv(sm=70)) == EFFICIENT
    # flash takes any head dim <= 256: 36 in bf16 is flash, whatever efficient's alignment
    assert chosen(call(dtype="bfloat16", d=36), A100) == FLASH


def test_efficient_q_and_k_head_dims_equal() -> None:
    assert chosen(call(dtype="float32", d=64, dv=32), A100) == EFFICIENT
    x = SdpaInputs((2, 8, 16, 64), (2, 8, 16, 32), (2, 8, 16, 64), "float32")
    assert chosen(x, A100) == MATH


def test_not_four_dimensional_is_math() -> None:
    """check_tensor_shapes: the fused kernels want 4-D q, k, v."""
    x = SdpaInputs((8, 256, 64), (8, 256, 64), (8, 256, 64), "bfloat16")
    assert chosen(x, A100) == MATH


# ---------------------------------------------------------------------- cuDNN
def test_cudnn_dropout_in_sixteenths() -> None:
    """check_cudnn_dropout: dropout a multiple of 1/16 (GPT-2's 0.1 is not: flash runs)."""
    assert chosen(call(dropout_p=0.125)) == CUDNN
    assert chosen(call(dropout_p=0.1)) == FLASH


def test_cudnn_head_dims() -> None:
    """check_cudnn_tensor_shapes: head dims <= 128 and multiples of 8; 192/128 on sm90 with
    cuDNN >= 9.11; 256 only with cuDNN > 9.22."""
    assert chosen(call(d=128)) == CUDNN
    assert chosen(call(d=192, dv=128)) == CUDNN
    assert chosen(call(d=256)) == FLASH
    assert chosen(call(d=72)) == CUDNN
    assert chosen(call(d=36)) == FLASH


def test_cudnn_sequence_lengths() -> None:
    """check_cudnn_tensor_shapes: no key length 1; no query length 1 with dropout."""
    assert chosen(call(lq=4, s=1)) == FLASH
    assert chosen(call(lq=1, s=64, dropout_p=0.25)) == FLASH


def test_cudnn_mask_shape_and_grad() -> None:
    """check_attn_mask_shape: a mask needing a gradient, or not [L, S] / [B|1, H|1, L|1, S|1],
    is not cuDNN (nor flash): memory-efficient takes it."""
    assert chosen(call(mask=(2, 1, 256, 256), mask_dtype="bfloat16")) == CUDNN
    assert chosen(call(mask=(256, 256), mask_dtype="bool")) == CUDNN
    assert chosen(call(mask=(8, 256, 256), mask_dtype="bool")) == EFFICIENT
    assert chosen(call(mask=(256, 256), mask_dtype="bfloat16", mask_requires_grad=True)) == EFFICIENT


def test_cudnn_batch_and_heads_limit() -> None:
    assert chosen(call(b=70000, h=1, lq=16)) == FLASH


def test_cudnn_hardware_and_dtype() -> None:
    assert chosen(call(dtype="float32")) == EFFICIENT


# ---------------------------------------------------------------------- switches
def test_disabled_backends_are_skipped() -> None:
    """check_runtime_disabled_*: a disabled backend is passed over; with none left, torch raises."""
    env = replace(H200_211, enabled=frozenset({FLASH, EFFICIENT, MATH}))
    assert chosen(call(), env) == FLASH
    env = replace(H200_211, enabled=frozenset({MATH}))
    assert chosen(call(), env) == MATH
    assert choose_backend(call(h=8, hk=2), replace(H200_211, enabled=frozenset({FLASH}))) is None


def test_set_priority_reorders() -> None:
    """sdpa_kernel(backends, set_priority=True): the listed backends first, in that order."""
    env = replace(H200_211, enabled=frozenset({EFFICIENT, FLASH}), priority=(EFFICIENT, FLASH))
    assert chosen(call(), env) == EFFICIENT


MODEL = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
{top}

class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(64, 192)

    def forward(self, x):
        q, k, v = self.qkv(x).view(4, 128, 3, 4, 16).permute(2, 0, 3, 1, 4)
{inner}
        return y.transpose(1, 2).reshape(4, 128, 64)


model = nn.Sequential(Attention(), nn.Linear(64, 10))
out = model(torch.randn(4, 128, 64))
"""


def attention_notes(tmp_path: Path, top: str = "", inner: str = "", precision: str = "amp-bf16") -> list[str]:
    inner = inner or "        y = F.scaled_dot_product_attention(q, k, v)"
    text = MODEL.format(top=top, inner=inner)
    path = tmp_path / "m.py"
    fa = analyze_source(str(path), text, Settings(memory=True, precision=precision, optimizer="sgd"))
    m = next(m for m in fa.models if m.name == "model")
    assert m.memory is not None, m.memory_unknowns
    return [n for n in m.memory.notes if n.startswith("attention:")]


def test_the_notes_say_which_kernel(tmp_path: Path) -> None:
    assert attention_notes(tmp_path) == ["attention: cudnn (bfloat16, head dim 16, sm90), 1 call"]
    fp32 = attention_notes(tmp_path, precision="fp32")
    assert len(fp32) == 1 and fp32[0].startswith("attention: efficient (float32, head dim 16, sm90)")


def test_enable_sdp_switches_at_module_level(tmp_path: Path) -> None:
    notes = attention_notes(tmp_path, top="torch.backends.cuda.enable_cudnn_sdp(False)\n"
                                          "torch.backends.cuda.enable_flash_sdp(False)")
    assert len(notes) == 1 and notes[0].startswith("attention: efficient (bfloat16"), notes


def test_sdpa_kernel_inside_forward_and_restored(tmp_path: Path) -> None:
    inner = ("        with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.MATH]):\n"
             "            y = F.scaled_dot_product_attention(q, k, v)\n"
             "        y = F.scaled_dot_product_attention(q, k, y)")
    notes = attention_notes(tmp_path, top="import torch.nn.attention", inner=inner)
    assert [n.split(" (")[0] for n in notes] == ["attention: math", "attention: cudnn"], notes


def test_sdpa_kernel_set_priority(tmp_path: Path) -> None:
    inner = ("        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION], set_priority=True):\n"
             "            y = F.scaled_dot_product_attention(q, k, v)")
    notes = attention_notes(tmp_path, top="from torch.nn.attention import SDPBackend, sdpa_kernel", inner=inner)
    assert len(notes) == 1 and notes[0].startswith("attention: efficient"), notes


def test_switches_do_not_leak_into_the_next_analysis(tmp_path: Path) -> None:
    attention_notes(tmp_path, top="torch.backends.cuda.enable_cudnn_sdp(False)")
    assert attention_notes(tmp_path)[0].startswith("attention: cudnn")


# ---------------------------------------------------------------------- what each kernel keeps
def test_fused_kernels_keep_q_k_v_output_and_a_float32_log_sum_exp() -> None:
    """derivatives.yaml: flash / efficient / cuDNN backwards take q, k, v, the output and the
    log-sum-exp: flash [B, H, L] (flash_api.cpp), cuDNN stats [B, H, L, 1], memory-efficient
    [B, H, ceil(L / 32) * 32] (kernel_forward.h kAlignLSE)."""
    x = call(b=2, h=4, lq=100)
    for backend, rows in ((FLASH, 100), (CUDNN, 100), (EFFICIENT, 128)):
        kept = kept_for_backward(backend, x)
        assert kept.keeps_q and kept.keeps_k and kept.keeps_v and kept.keeps_out
        assert [(e.nbytes, e.dtype) for e in kept.extras] == [(2 * 4 * rows * 4, "float32")]
        assert kept.transposed_output


def test_efficient_and_cudnn_keep_the_mask_flash_has_none() -> None:
    x = call(mask=(256, 256), mask_dtype="bool")
    assert kept_for_backward(EFFICIENT, x).keeps_mask and kept_for_backward(CUDNN, x).keeps_mask


def test_flash_backward_temporaries() -> None:
    """flash_api.cpp mha_bwd: softmax_d [B, H, L128] and dq_accum [B, L128, H, D32] float32."""
    kept = kept_for_backward(FLASH, call(b=2, h=4, lq=100, d=40))
    assert kept.backward_temp == 2 * 4 * 128 * 4 + 2 * 128 * 4 * 64 * 4


def test_cudnn_backward_temporaries() -> None:
    """cudnn-frontend's SDPA backward node (cuDNN 9): its workspace holds `dQ_accum`
    [B, H, L, D] and `softmax_sum` [B, H, L] in float32, unpadded."""
    kept = kept_for_backward(CUDNN, call(b=2, h=4, lq=100, d=40))
    assert kept.backward_temp == 2 * 4 * 100 * 40 * 4 + 2 * 4 * 100 * 4


torch = pytest.importorskip("torch")


def torch_math_kept(x: SdpaInputs, dropout_p: float = 0.0, mask_grad: bool = False) -> tuple[int, bool]:
    """Real torch on the CPU (which runs the math composite for these calls): the bytes autograd
    keeps beyond q, k, v themselves, and whether it keeps v."""
    dt = getattr(torch, x.dtype)
    q, k, v = (torch.randn(*s, dtype=dt, requires_grad=True) for s in (x.q, x.k, x.v))
    mask = torch.randn(x.q[-2], x.k[-2], dtype=dt, requires_grad=True) if mask_grad else None
    kw: dict[str, Any] = {"dropout_p": dropout_p, "enable_gqa": x.enable_gqa, "attn_mask": mask}
    assert torch._fused_sdp_choice(q.detach(), k.detach(), v.detach(), **{**kw, "attn_mask": mask}) == 0  # math
    packed: list[Any] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        torch.nn.functional.scaled_dot_product_attention(q, k, v, **kw)
    own = {t.untyped_storage().data_ptr(): name for name, t in (("q", q), ("k", k), ("v", v))}
    seen: dict[int, int] = {}
    for t in packed:
        st = t.untyped_storage()
        if st.data_ptr() not in own:
            seen[st.data_ptr()] = st.nbytes()
    keeps_v = any(t.untyped_storage().data_ptr() == v.untyped_storage().data_ptr() for t in packed)
    return sum(seen.values()), keeps_v


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_math_keeps_float32_attention_weights_as_torch(dtype: str) -> None:
    """attention.cpp _scaled_dot_product_attention_math, with dropout (the CPU's fused kernel
    takes none, so the CPU runs math too): scaled q and k, the softmax output, the dropout mask
    and its output, and v (a float32 copy of a bf16 one). CUDA's dropout mask is bool, the CPU's
    the input's dtype after the float32 cast: the one documented difference."""
    x = call(b=2, h=3, lq=5, d=8, dtype=dtype, dropout_p=0.1)
    truth, truth_keeps_v = torch_math_kept(x, dropout_p=0.1)
    kept = kept_for_backward(MATH, x)
    lls = 2 * 3 * 5 * 5
    cuda_delta = lls * 1 - lls * 4  # the dropout mask: bool on CUDA, float32 on the CPU
    assert sum(e.nbytes for e in kept.extras) == truth + cuda_delta
    assert kept.keeps_v == truth_keeps_v == (dtype == "float32")
    assert not kept.keeps_q and not kept.keeps_k and not kept.keeps_out


def test_math_with_a_mask_needing_a_gradient_as_torch() -> None:
    """A mask needing a gradient makes the CPU run math (check_attn_mask_shape); the in-place
    add of the mask keeps nothing."""
    x = call(b=2, h=3, lq=5, d=8, dtype="float32", mask=(5, 5), mask_dtype="float32", mask_requires_grad=True)
    truth, keeps_v = torch_math_kept(x, mask_grad=True)
    kept = kept_for_backward(MATH, x)
    assert sum(e.nbytes for e in kept.extras) == truth and kept.keeps_v and keeps_v


def test_math_grouped_query_attention_repeats_k_and_v_as_torch() -> None:
    """pre_process_group_query_attention_input: k and v repeated to the query heads (CPU math:
    with dropout)."""
    x = call(b=2, h=4, hk=2, lq=5, d=8, dtype="float32", enable_gqa=True, dropout_p=0.1)
    truth, keeps_v = torch_math_kept(x, dropout_p=0.1)
    kept = kept_for_backward(MATH, x)
    lls = 2 * 4 * 5 * 5
    assert sum(e.nbytes for e in kept.extras) == truth + lls - lls * 4
    assert not kept.keeps_v and not keeps_v


def test_every_backend_has_a_rule() -> None:
    x = call()
    for backend in BACKENDS:
        assert kept_for_backward(backend, x).backend == backend


# ---------------------------------------------------------------------- transformers
HF_MODEL = """\
import torch
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("{hub}", dtype=torch.bfloat16, attn_implementation="{impl}")
out = model(torch.randint(0, 100, (2, 64)))
"""


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_transformers_attn_implementation(impl: str, tmp_path: Path) -> None:
    """transformers' "sdpa" calls F.scaled_dot_product_attention (Llama: no padding mask, so
    is_causal and no mask: cuDNN on sm90 with torch 2.11+); "eager" is its own matmul + softmax,
    no SDPA kernel at all. ("flash_attention_2" needs the flash_attn package; without it
    transformers raises ImportError, as the analysis reports.)"""
    from tests.test_peft import _library_paths

    hub = Path(__file__).parent / "fixtures/hub/llama"
    settings = Settings(extra_paths=_library_paths(), optimizer="sgd", memory=True)
    fa = analyze_source(str(tmp_path / "m.py"), HF_MODEL.format(hub=hub, impl=impl), settings)
    m = next(m for m in fa.models if m.name == "model")
    assert m.memory is not None, m.memory_unknowns
    notes = [n for n in m.memory.notes if n.startswith("attention:")]
    if impl == "sdpa":
        assert len(notes) == 1 and notes[0].startswith("attention: cudnn (bfloat16"), notes
    else:
        assert notes == []
