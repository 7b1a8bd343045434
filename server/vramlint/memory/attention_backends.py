"""Which kernel `torch.nn.functional.scaled_dot_product_attention` runs on a CUDA device, and
what that kernel keeps for backward.

The choice follows torch's own runtime dispatch (aten/src/ATen/native/transformers/cuda/
sdp_utils.cpp `select_sdp_backend`, with the shared checks of sdp_utils_cpp.h): walk the
priority order and take the first backend whose checks all pass. Each `_check_*` below is one
of torch's filters, named after it. What each kernel keeps comes from
tools/autograd/derivatives.yaml (the `_scaled_dot_product_*_attention` entries) and the
kernels' allocations (flash_attn/flash_api.cpp, mem_eff_attention/kernel_forward.h,
attention.cpp `_scaled_dot_product_attention_math`).

Pure data and small functions: no framework is named (the torch frontend fills `SdpaInputs`
from a call, the memory rule turns `Kept` into the tape's saved tensors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CUDNN, FLASH, EFFICIENT, MATH = "cudnn", "flash", "efficient", "math"
BACKENDS = (CUDNN, FLASH, EFFICIENT, MATH)
# ATen/Context.h `sdp_priority_order`: cuDNN comes after math, so by default it is reached
# only when math is disabled; `check_prefer_cudnn_attention` moves it first (below).
DEFAULT_ORDER = (FLASH, EFFICIENT, MATH, CUDNN)
CUDNN_FIRST = (CUDNN, FLASH, EFFICIENT, MATH)
# torch.nn.attention.SDPBackend member names -> ours.
SDP_BACKEND_NAMES = {"FLASH_ATTENTION": FLASH, "EFFICIENT_ATTENTION": EFFICIENT,
                     "CUDNN_ATTENTION": CUDNN, "MATH": MATH}
LOW_PRECISION = ("float16", "bfloat16")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "bool": 1}


@dataclass(frozen=True)
class KernelEnv:
    """What the dispatch depends on besides the call: the card, the torch release, and the
    user's switches (`torch.backends.cuda.enable_*_sdp`, `torch.nn.attention.sdpa_kernel`)."""

    sm: int = 90  # compute capability x10 (memory/devices.py Device.sm); the calibration H200
    torch_version: tuple[int, int, int] = (2, 13, 0)
    enabled: frozenset[str] = frozenset(BACKENDS)
    priority: tuple[str, ...] | None = None  # sdpa_kernel(..., set_priority=True)
    # torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp(True): math stays in half precision.
    fp16_bf16_reduction_math: bool = False

    @property
    def cudnn_version(self) -> int:
        """The cuDNN the torch wheel bundles, as versionRuntimeCuDNN() reports it: 9.19.0 with
        torch 2.11+cu130 (benchmarks/data/calibration/README.md), assumed for later releases;
        below 9.15.1 before 2.11 (transformers#48163: "what changes at 2.11 is the bundled
        cuDNN crossing the threshold")."""
        return 91900 if self.torch_version >= (2, 11, 0) else 91000


def parse_version(text: str) -> tuple[int, int, int]:
    """"2.11.0+cu130" -> (2, 11, 0); anything unreadable is the pinned 2.13 family."""
    parts: list[int] = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if len(parts) < 2:
        return (2, 13, 0)
    return (parts[0], parts[1], parts[2] if len(parts) > 2 else 0)


@dataclass(frozen=True)
class SdpaInputs:
    """One call's shapes and flags (after autocast: `dtype` is the dtype the kernel runs in)."""

    q: tuple[int, ...]
    k: tuple[int, ...]
    v: tuple[int, ...]
    dtype: str
    mask: tuple[int, ...] | None = None
    mask_dtype: str | None = None
    mask_requires_grad: bool = False
    is_causal: bool = False
    dropout_p: float = 0.0
    enable_gqa: bool = False
    q_grad: bool = True
    k_grad: bool = True
    v_grad: bool = True
    nested: bool = False
    v_contiguous: bool = True  # a strided v (a permuted slice of a packed qkv) is copied by math's matmul

    @property
    def requires_grad(self) -> bool:
        """sdp_utils_cpp.h `input_requires_grad`: any of q, k, v (grad mode on)."""
        return self.q_grad or self.k_grad or self.v_grad


@dataclass(frozen=True)
class Choice:
    backend: str
    # Why each backend tried before it was passed over: (backend, torch's check that failed).
    rejected: tuple[tuple[str, str], ...] = ()

    def describe(self, x: SdpaInputs, env: KernelEnv) -> str:
        """"flash (bfloat16, head dim 64, sm90)": for the estimate's notes."""
        parts = [x.dtype, f"head dim {x.q[-1]}" if x.q[-1] == x.v[-1] else f"head dims {x.q[-1]}/{x.v[-1]}"]
        if x.mask is not None:
            parts.append("mask")
        if x.dropout_p > 0:
            parts.append(f"dropout {x.dropout_p:g}")
        parts.append(f"sm{env.sm}")
        why = "; ".join(f"{b}: {r}" for b, r in self.rejected)
        return f"{self.backend} ({', '.join(parts)})" + (f", passed over {why}" if why else "")


# ---------------------------------------------------------------------- the priority order
def prefers_cudnn(env: KernelEnv) -> bool:
    """sdp_utils.cpp `check_prefer_cudnn_attention`: cuDNN first on sm90 / sm10x when the
    runtime cuDNN is newer than 9.15.0 (torch >= 2.9; `TORCH_CUDNN_SDPA_DEPRIORITIZED` unset).
    torch 2.5.0 alone also put it first on sm90; 2.5.1 made it opt-in (pytorch#138522)."""
    major = env.sm // 10
    if env.torch_version[:2] == (2, 5) and env.torch_version[2] == 0:
        return env.sm == 90
    return env.torch_version >= (2, 9, 0) and env.cudnn_version > 91500 and major in (9, 10)


def priority_order(env: KernelEnv) -> tuple[str, ...]:
    if env.priority is not None:  # sdpa_kernel(backends, set_priority=True): those first, in order
        return tuple(env.priority) + tuple(b for b in DEFAULT_ORDER if b not in env.priority)
    return CUDNN_FIRST if prefers_cudnn(env) else DEFAULT_ORDER


# ---------------------------------------------------------------------- torch's checks
# Each returns None when the check passes, else torch's reason (shortened).
def _check_tensor_shapes(x: SdpaInputs) -> str | None:
    """sdp_utils_cpp.h `check_tensor_shapes`: every fused kernel wants 4-D q, k, v."""
    return None if len(x.q) == len(x.k) == len(x.v) == 4 else "q, k, v not 4-D"


def _check_nonzero_sequence_lengths(x: SdpaInputs) -> str | None:
    return None if x.q[-2] != 0 and x.k[-2] != 0 else "zero sequence length"


def _check_batch_size_and_num_heads(x: SdpaInputs, same_kv_heads: bool) -> str | None:
    """sdp_utils_cpp.h `check_batch_size_and_num_heads_dense` / `check_grouped_query_attention`:
    equal batch; equal heads, or with `enable_gqa` key/value heads dividing the query heads
    (flash and memory-efficient also want as many value heads as key heads)."""
    if not x.q[0] == x.k[0] == x.v[0]:
        return "batch sizes differ"
    hq, hk, hv = x.q[1], x.k[1], x.v[1]
    if hq == hk == hv:
        return None
    if not x.enable_gqa:
        return "heads differ without enable_gqa"
    if same_kv_heads and hk != hv:
        return "key and value heads differ"
    if hq % hk or hq % hv:
        return "key/value heads do not divide query heads"
    return None


def _check_head_dim_flash(x: SdpaInputs) -> str | None:
    """`check_head_dim_size_flash`: q, k, v share one head dim, at most 256."""
    if not x.q[-1] == x.k[-1] == x.v[-1]:
        return "head dims differ"
    return None if x.q[-1] <= 256 else "head dim over 256"


def _check_flash_hardware(env: KernelEnv) -> str | None:
    """`check_flash_attention_hardware_support`: sm80 to sm121."""
    return None if 80 <= env.sm <= 121 else f"sm{env.sm} outside [sm80, sm121]"


def _check_flash_sm86_89_120_training(x: SdpaInputs, env: KernelEnv) -> str | None:
    """`check_requires_grad_and_head_dim_gt192_constraints_on_sm86_89_or_120`: its backward
    fails on sm86-89 / sm120-121 for head dims in (192, 224], or (224, 256] with dropout."""
    if not x.requires_grad or not (86 <= env.sm <= 89 or 120 <= env.sm <= 121):
        return None
    d = x.q[-1]
    ok = d <= 192 or (x.dropout_p == 0 and d > 224)
    return None if ok else f"training with head dim {d} on sm{env.sm}"


def _check_flash_causal_square(x: SdpaInputs) -> str | None:
    """`check_flash_causal_non_square_seqlens`: is_causal needs seqlen_q == seqlen_k."""
    return "is_causal with seqlen_q != seqlen_k" if x.is_causal and x.q[-2] != x.k[-2] else None


def _check_dtypes_low_precision(x: SdpaInputs, env: KernelEnv) -> str | None:
    """`check_dtypes_low_precision`: fp16 and bf16 from sm80, fp16 only before."""
    allowed = LOW_PRECISION if env.sm >= 80 else ("float16",)
    return None if x.dtype in allowed else f"{x.dtype} not in {'/'.join(allowed)}"


def minimum_gemm_alignment(dtype: str, sm: int) -> int:
    """sdp_utils.cpp `minimum_gemm_alignment` (with `use_tensor_cores`): 4 from sm80, and
    128 bits' worth of elements where tensor cores run (sm80+, or half precision on sm7x)."""
    half = dtype in LOW_PRECISION
    use_tc = sm >= 80 or (sm >= 70 and half)
    mn = 4 if sm >= 80 else 1
    return max(mn, 128 // (16 if half else 32)) if use_tc else mn


def _check_head_dim_efficient(x: SdpaInputs, env: KernelEnv) -> str | None:
    """`check_head_dim_size_mem_efficient`: q and k share a head dim; the q and v head dims
    are multiples of the GEMM alignment."""
    align = minimum_gemm_alignment(x.dtype, env.sm)
    if x.q[-1] != x.k[-1]:
        return "q and k head dims differ"
    if x.q[-1] % align or x.v[-1] % align or x.q[-1] <= 0 or x.v[-1] <= 0:
        return f"head dim not a multiple of {align}"
    return None


def _check_efficient_hardware(env: KernelEnv) -> str | None:
    """`check_mem_efficient_hardware_support`: sm50 to sm121."""
    return None if 50 <= env.sm <= 121 else f"sm{env.sm} outside [sm50, sm121]"


def _check_efficient_dtypes(x: SdpaInputs, env: KernelEnv) -> str | None:
    """`can_use_mem_efficient_attention`: fp16/fp32/bf16 from sm80, fp16/fp32 before."""
    allowed = ("float16", "float32", "bfloat16") if env.sm >= 80 else ("float16", "float32")
    return None if x.dtype in allowed else f"{x.dtype} not supported"


def _check_attn_mask_shape(x: SdpaInputs) -> str | None:
    """sdp_utils_cpp.h `check_attn_mask_shape` (cuDNN): no mask needing a gradient; a 2-D
    [L, S] or 4-D [B, H, L, S] mask, each dim equal or 1."""
    m = x.mask
    if m is None:
        return None
    if x.mask_requires_grad:
        return "mask requires grad"

    def fits(dim: int, target: int) -> bool:
        return dim == target or dim == 1

    if len(m) < 2 or not fits(m[-2], x.q[-2]) or not fits(m[-1], x.k[-2]):
        return "mask shape"
    if len(m) == 2 or (len(m) == 4 and fits(m[0], x.q[0]) and fits(m[1], x.q[1])):
        return None
    return "mask shape"


def _check_cudnn_hardware(env: KernelEnv) -> str | None:
    return None if 80 <= env.sm <= 121 else f"sm{env.sm} outside [sm80, sm121]"


def _check_cudnn_dropout(x: SdpaInputs, env: KernelEnv) -> str | None:
    """`check_cudnn_dropout`: dropout in steps of 1/16; and `can_use_cudnn_attention`: no
    dropout with cuDNN 9.11-9.13."""
    if x.dropout_p * 16 != math.floor(x.dropout_p * 16):
        return "dropout not a multiple of 1/16"
    if x.dropout_p > 0 and 91100 < env.cudnn_version < 91400:
        return "dropout with cuDNN 9.11-9.13"
    return None


def _check_cudnn_tensor_shapes(x: SdpaInputs, env: KernelEnv) -> str | None:
    """`check_cudnn_tensor_shapes`: batch and heads <= 65535; head dims <= 128 (192/128 on
    sm90/sm10x with cuDNN >= 9.11; 256 needs cuDNN > 9.22) and multiples of 8; no key length
    1; no query length 1 with dropout."""
    if x.q[0] > 65535 or x.q[1] > 65535:
        return "batch or heads over 65535"
    d_qk, d_v = x.q[-1], x.v[-1]
    sm90_or_10x = env.sm == 90 or env.sm // 10 == 10
    limit = 128
    if sm90_or_10x and env.cudnn_version > 92200:
        limit = 256
    elif sm90_or_10x and env.cudnn_version >= 91100 and d_qk == 192 and d_v == 128:
        limit = 192
    if d_qk > limit or d_v > limit:
        return f"head dim over {limit}"
    if d_qk % 8 or d_v % 8:
        return "head dim not a multiple of 8"
    if x.k[-2] == 1:
        return "key length 1"
    if x.dropout_p > 0 and x.q[-2] == 1:
        return "query length 1 with dropout"
    return None


def _first(*reasons: str | None) -> str | None:
    return next((r for r in reasons if r is not None), None)


def flash_rejects(x: SdpaInputs, env: KernelEnv) -> str | None:
    """sdp_utils.cpp `can_use_flash_attention`, in its order (nested tensors are not traced)."""
    if FLASH not in env.enabled:
        return "disabled"
    if (r := _check_tensor_shapes(x)) is not None:
        return r
    return _first("attn_mask given" if x.mask is not None else None, _check_head_dim_flash(x),
                  _check_flash_hardware(env), _check_flash_sm86_89_120_training(x, env),
                  _check_flash_causal_square(x), _check_dtypes_low_precision(x, env),
                  _check_batch_size_and_num_heads(x, same_kv_heads=True), _check_nonzero_sequence_lengths(x))


def efficient_rejects(x: SdpaInputs, env: KernelEnv) -> str | None:
    """sdp_utils.cpp `can_use_mem_efficient_attention` (CUDA build, dense inputs)."""
    if EFFICIENT not in env.enabled:
        return "disabled"
    if (r := _first(_check_efficient_hardware(env), _check_tensor_shapes(x))) is not None:
        return r
    if x.nested and x.requires_grad:
        return "training with nested tensors"  # check_requires_grad_and_nested
    return _first(_check_head_dim_efficient(x, env), _check_nonzero_sequence_lengths(x),
                  _check_batch_size_and_num_heads(x, same_kv_heads=True), _check_efficient_dtypes(x, env))


def cudnn_rejects(x: SdpaInputs, env: KernelEnv) -> str | None:
    """sdp_utils.cpp `can_use_cudnn_attention` (nested tensors need an opt-in variable)."""
    if CUDNN not in env.enabled:
        return "disabled"
    if x.nested:
        return "nested tensors"
    if (r := _check_tensor_shapes(x)) is not None:
        return r
    return _first(_check_dtypes_low_precision(x, env), _check_attn_mask_shape(x), _check_cudnn_hardware(env),
                  _check_cudnn_dropout(x, env), _check_nonzero_sequence_lengths(x),
                  _check_batch_size_and_num_heads(x, same_kv_heads=False), _check_cudnn_tensor_shapes(x, env))


_REJECTS = {FLASH: flash_rejects, EFFICIENT: efficient_rejects, CUDNN: cudnn_rejects,
            MATH: lambda x, env: None if MATH in env.enabled else "disabled"}


def choose_backend(x: SdpaInputs, env: KernelEnv) -> Choice | None:
    """sdp_utils.cpp `select_sdp_backend`: the first backend of the priority order whose checks
    pass; None where none does (torch raises "No available kernel")."""
    rejected: list[tuple[str, str]] = []
    for backend in priority_order(env):
        reason = _REJECTS[backend](x, env)
        if reason is None:
            return Choice(backend, tuple(rejected))
        rejected.append((backend, reason))
    return None


# ---------------------------------------------------------------------- what each one keeps
@dataclass(frozen=True)
class KeptTensor:
    """A tensor the kernel keeps for backward that is not one of the call's own tensors."""

    nbytes: int
    dtype: str
    label: str
    intermediate: bool = False  # made in any forward (math's matrices), not only for backward


@dataclass
class Kept:
    backend: str
    keeps_q: bool = True  # the call's own q, k, v, output and mask tensors
    keeps_k: bool = True
    keeps_v: bool = True
    keeps_out: bool = True
    keeps_mask: bool = False
    extras: list[KeptTensor] = field(default_factory=list)
    backward_temp: int = 0  # transient bytes of the backward beyond the input gradients
    # The output [B, H, L, Dv] laid out as [B, L, H, Dv] (the fused kernels), or contiguous (math).
    transposed_output: bool = True


def _ceil(n: int, m: int) -> int:
    return -(-n // m) * m


def kept_for_backward(backend: str, x: SdpaInputs, env: KernelEnv | None = None) -> Kept:
    """What `backend` keeps for the backward of one call, and its backward's temporaries."""
    env = env or KernelEnv()
    b, hq, lq = x.q[0], x.q[-3] if len(x.q) >= 3 else 1, x.q[-2]
    if backend == MATH:
        return _math_kept(x, env)
    lse_rows = lq
    if backend == EFFICIENT:
        # mem_eff_attention kernel_forward.h: logsumexp [B, H, ceil(M / kAlignLSE) * kAlignLSE],
        # kAlignLSE = 32, allocated only when a gradient will be computed (compute_log_sumexp).
        lse_rows = _ceil(lq, 32)
    rows = _numel(x.q[:-2]) * lse_rows
    # flash_api.cpp mha_fwd: softmax_lse [B, H, L] float; cuDNN: softmax stats [B, H, L, 1]
    # float. The philox seed/offset of dropout are host-side scalars (no device memory).
    label = {FLASH: "flash log-sum-exp", EFFICIENT: "memory-efficient log-sum-exp",
             CUDNN: "cuDNN softmax stats"}[backend]
    kept = Kept(backend, extras=[KeptTensor(rows * 4, "float32", label)])
    # derivatives.yaml: the efficient and cuDNN backwards take attn_bias (the mask) too.
    kept.keeps_mask = x.mask is not None and backend in (EFFICIENT, CUDNN)
    if backend == FLASH:
        kept.backward_temp = _flash_backward_temp(x)
    elif backend == CUDNN:
        # cudnn-frontend's SDPA backward node (cuDNN 9: no dP workspace unless dBias or
        # deterministic): `dQ_accum` [B, H, L, D] and `softmax_sum` [B, H, L] in float32, the
        # graph's workspace, which torch allocates through the caching allocator.
        kept.backward_temp = _numel(x.q) * 4 + _numel(x.q[:-1]) * 4
    elif backend == EFFICIENT and x.mask is not None and x.mask_requires_grad:
        # attention.cpp _efficient_attention_backward: grad_bias [B, H, L, S] in the bias dtype.
        kept.backward_temp = b * hq * lq * x.k[-2] * DTYPE_BYTES.get(x.mask_dtype or x.dtype, 4)
    return kept


def _flash_backward_temp(x: SdpaInputs) -> int:
    """flash_api.cpp mha_bwd: softmax_d [B, H, L128] and dq_accum [B, L128, H, D32] in float32
    (L rounded up to 128, the head dim to 32, or 256 above 192); with fewer key/value heads
    (GQA), dk/dv expanded to the query heads before they are summed back."""
    b, hq, lq, d = x.q[0], x.q[1], x.q[-2], x.q[-1]
    l128 = _ceil(lq, 128)
    d32 = _ceil(d, 32) if d <= 192 else 256
    temp = b * hq * l128 * 4 + b * l128 * hq * d32 * 4
    if x.k[1] != hq:
        temp += 2 * b * x.k[-2] * hq * d * DTYPE_BYTES.get(x.dtype, 2)
    return temp


def _math_kept(x: SdpaInputs, env: KernelEnv) -> Kept:
    """attention.cpp `_scaled_dot_product_attention_math`, a composite: autograd keeps what each
    of its ops keeps. Half-precision q, k, v are first cast to float32 ("Keep query, key, value
    in high precision", unless allow_fp16_bf16_reduction_math_sdp), q and k are each scaled by
    sqrt(scale) (both kept by the first matmul), the scores go through _safe_softmax (its output
    kept), dropout (a bool mask on CUDA, and its output kept by the second matmul) and the
    matmul with v (kept: the float32 copy, or v itself). The L x S matrices are the cost."""
    acc = "float32" if x.dtype in LOW_PRECISION and not env.fp16_bf16_reduction_math else x.dtype
    size = DTYPE_BYTES.get(acc, 4)
    lead = _numel(x.q[:-2])  # B x H (query heads: GQA's k and v are repeated to them)
    lq, s, d, dv = x.q[-2], x.k[-2], x.q[-1], x.v[-1]
    scores_grad = x.q_grad or x.k_grad
    kept = Kept(MATH, keeps_q=False, keeps_k=False, keeps_out=False, transposed_output=False)
    if x.k_grad:
        kept.extras.append(KeptTensor(lead * lq * d * size, acc, "math: scaled q", True))
    if x.q_grad:
        kept.extras.append(KeptTensor(lead * s * d * size, acc, "math: scaled k", True))
    if scores_grad or x.v_grad:
        kept.extras.append(KeptTensor(lead * lq * s * size, acc, "math: attention weights (softmax)", True))
    if x.dropout_p > 0:
        kept.extras.append(KeptTensor(lead * lq * s, "bool", "math: attention dropout mask"))
        if x.v_grad:
            kept.extras.append(KeptTensor(lead * lq * s * size, acc, "math: attention weights after dropout", True))
    # The float32 cast or the GQA repeat make a new v; so does the 4-D matmul's reshape of a
    # strided one (at::matmul folds the batch dims: a copy unless they are contiguous).
    v_copied = acc != x.dtype or x.v[-3:-2] != x.q[-3:-2] or not x.v_contiguous
    kept.keeps_v = scores_grad and not v_copied
    if scores_grad and v_copied:
        kept.extras.append(KeptTensor(lead * s * dv * size, acc, "math: value (cast, repeated or made contiguous)",
                                      True))
    # Backward: the gradient of the weights, then of the scores (softmax backward), live together.
    kept.backward_temp = 2 * lead * lq * s * size
    return kept


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
