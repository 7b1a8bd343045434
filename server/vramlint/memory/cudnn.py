"""cuDNN convolution workspaces: what a convolution allocates beside its output while it runs.

PyTorch (aten/src/ATen/native/cudnn/Conv_v8.cpp, `run_conv_plan`) asks the chosen execution
plan for its workspace size and allocates it through the caching allocator for the duration of
the call: a transient at the convolution, in the forward and, in backward, at the data-gradient
(`CONVOLUTION_BACKWARD_DATA`) and the weight-gradient (`CONVOLUTION_BACKWARD_FILTER`) calls, one
after the other (ConvShared.cpp, `cudnn_convolution_backward`).

Which plan runs:
- `torch.backends.cudnn.benchmark = False` (the default): the engine configs of cuDNN's heuristics
  (`CUDNN_HEUR_MODE_INSTANT`), tried in order (`try_configs`); a config whose workspace cannot be
  allocated (`c10::OutOfMemoryError`) is skipped for the next one, down to the fallback list,
  whose implicit-GEMM engines need no workspace.
- `benchmark = True`: every heuristic and fallback plan whose workspace fits the largest block the
  allocator can give (`get_available_workspace`: the free device memory or the largest cached
  block) is timed once, and the fastest runs from then on (`get_plans_from_find`). Its workspace
  is anywhere between none and the largest of the algorithms.

What the heuristics pick, measured on an H200 with torch 2.11 and cuDNN 9.19 (fp32 with TF32
allowed, the default `torch.backends.cudnn.allow_tf32 = True`, NCHW tensors): an engine whose
workspace is exactly the input, the output and the filter (to the allocator's 512 bytes):
VGG-13's second 64->64 3x3 convolution at 224x224, batch 64 (1,644,314,624 bytes: 2 x 822,083,584
+ 147,456) and ResNet-18's 7x7 stride-2 stem (244,093,696 = 38,535,168 + 205,520,896 + 37,632),
the difference between the measured inference peaks and the model without workspaces. That is
cuDNN's documented layout transformation: tensor-core kernels work on NHWC, so for NCHW tensors
the engine transforms its operands into the workspace and its result back (cuDNN Developer
Guide, "Tensor Transformations": NCHW <-> NHWC conversion). The data- and weight-gradient calls
transform their three operands likewise (dx, dy, w; x, dy, dw): the same bytes. Two kinds of
convolution run without it: 1x1 convolutions (on NCHW a plain matrix product per image: with the
transform, ResNet-50's 1x1 convolutions would put its inference peak 12% above the measured one,
which the model without them matches to 0.1%) and depthwise ones, which do not run on cuDNN
at all: aten/src/ATen/native/Convolution.cpp (`_select_conv_backend`) sends a depthwise
convolution (`is_depthwise`: groups == input channels) to torch's own kernels
(DepthwiseConv2d.cu / DepthwiseConv3d.cu, no workspace) unless `use_cudnn_depthwise` holds
(channels-last tensors, or fp16 4-D convolutions without stride or dilation: not modelled). The
hold-out EfficientNet-B2 case agrees (its inference peak would be 19% above the measured one with
the transform; it was looked at when this rule was written, so it is no longer a clean hold-out).
Other grouped convolutions (ResNeXt, RegNet) run on cuDNN's grouped kernels and are taken to need
no transform either: not measured.

The upper bound under `benchmark = True` takes the largest workspace among cuDNN's documented
algorithms that apply (cudnnConvolutionFwdAlgo_t): explicit GEMM's im2col matrix
(C/groups x kernel elements x output positions, one image at a time), FFT's transforms of the
input, the filter and the output (2-D, stride 1, no dilation, padded input at most 256x256,
complex float per frequency of the padded plane) and Winograd-nonfused's 6x6 tiles of F(4x4, 3x3)
(3x3, stride 1). These bounds come from the algorithms' definitions, not from a measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from vramlint.frontends.torch.tensors import DTYPE_BYTES

if TYPE_CHECKING:
    from vramlint.memory.tape import Tape

# Tensor-core engines need a dtype tensor cores take (fp32 through TF32); float64 runs on
# implicit-GEMM engines without a workspace.
TENSOR_CORE_DTYPES = ("float32", "bfloat16", "float16")
FFT_MAX_PADDED = 256  # cuDNN's FFT algorithm: input height/width + 2 x padding at most 256
COMPLEX64 = 8  # bytes of one frequency of an FFT in float


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution as cuDNN sees it (a transposed convolution's forward is a data gradient:
    the same operands)."""

    x: tuple[int, ...]  # input [N, C, *spatial]
    y: tuple[int, ...]  # output [N, K, *spatial]
    w: tuple[int, ...]  # weight [K, C/groups, *kernel] ([C, K/groups, *kernel] when transposed)
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    dtype: str  # the dtype it runs in (autocast's, under autocast)
    transposed: bool = False

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES.get(self.dtype, 4)

    def nbytes(self, shape: tuple[int, ...]) -> int:
        n = 1
        for d in shape:
            n *= d
        return n * self.itemsize


@dataclass(frozen=True)
class ConvWorkspace:
    """Workspace bytes of one convolution, in its forward and its backward (the larger of the
    data- and weight-gradient calls that run: they run one after the other): what the default
    heuristics pick, and the most a plan timed under `cudnn.benchmark = True` may take. The
    least is always 0 (the fallback engines torch goes on to when an allocation fails)."""

    forward: int
    backward: int
    forward_max: int
    backward_max: int
    native: int = 0  # torch's own kernels' buffer (`torch.backends.cudnn.enabled = False`), each call


def pointwise(g: ConvGeometry) -> bool:
    """A 1x1 convolution: on NCHW tensors it is a plain matrix product per image (weight [K, C]
    times the image's [C, H*W] positions), which runs without transforming its operands."""
    return all(k == 1 for k in g.w[2:])


def grouped(g: ConvGeometry) -> bool:
    """A grouped convolution: a depthwise one runs on torch's own kernel (Convolution.cpp), another
    on cuDNN's grouped kernels, taken to read NCHW as it is (not measured)."""
    return g.groups > 1


def layout_transform(g: ConvGeometry) -> int:
    """The heuristics' tensor-core engine on NCHW tensors: its operands and result transformed
    to NHWC in the workspace."""
    if g.dtype not in TENSOR_CORE_DTYPES or pointwise(g) or grouped(g):
        return 0
    return g.nbytes(g.x) + g.nbytes(g.y) + g.nbytes(g.w)


def im2col(g: ConvGeometry) -> int:
    """Explicit GEMM: the input unrolled to (C/groups x kernel elements) x output positions, one
    image at a time (transposed: the output's channels over the input's positions)."""
    cin = (g.y if g.transposed else g.x)[1] // max(g.groups, 1)
    unrolled = 1
    for k in g.w[2:]:
        unrolled *= k
    positions = 1
    for d in (g.x if g.transposed else g.y)[2:]:
        positions *= d
    return cin * unrolled * positions * g.itemsize


def fft(g: ConvGeometry) -> int:
    """FFT: the input, filter and output planes transformed over the padded input plane."""
    if len(g.x) != 4 or g.groups != 1 or g.transposed or any(s != 1 for s in g.stride) \
            or any(d != 1 for d in g.dilation) or g.dtype == "bfloat16":
        return 0
    hf, wf = (g.x[2] + 2 * g.padding[0], g.x[3] + 2 * g.padding[1])
    if hf > FFT_MAX_PADDED or wf > FFT_MAX_PADDED or g.w[2] <= g.padding[0] or g.w[3] <= g.padding[1]:
        return 0
    n, c, k = g.x[0], g.x[1], g.y[1]
    return (n * c + k * c + n * k) * hf * (wf // 2 + 1) * COMPLEX64


def winograd_nonfused(g: ConvGeometry) -> int:
    """Winograd F(4x4, 3x3) without fusion: 6x6 transformed tiles of input, filter and output."""
    if len(g.x) != 4 or g.w[2:] != (3, 3) or any(s != 1 for s in g.stride) or any(d != 1 for d in g.dilation) \
            or g.groups != 1:
        return 0
    tiles = -(-g.y[2] // 4) * -(-g.y[3] // 4)
    n, c, k = g.x[0], g.x[1], g.y[1]
    return (n * c * tiles + c * k + n * k * tiles) * 36 * 4  # transforms in float


def workspace(g: ConvGeometry, gradients: bool) -> ConvWorkspace:
    """`gradients`: whether backward makes the input's or the weight's gradient (the data- and
    weight-gradient calls transform the same three sizes: dx, dy, w and x, dy, dw)."""
    heuristic = layout_transform(g)
    largest = max(heuristic, im2col(g), fft(g), winograd_nonfused(g))
    return ConvWorkspace(heuristic, heuristic if gradients else 0, largest, largest if gradients else 0,
                         native_columns(g))


def native_columns(g: ConvGeometry) -> int:
    """Without cuDNN, torch's CUDA kernels (aten/src/ATen/native/cuda/ConvolutionMM2d.cu,
    `slow_conv2d_forward`; NaiveConvolutionTranspose2d.cu, NaiveDilatedConvolution.cu) unroll one
    image at a time into a `columns` buffer, forward and backward (`grad_columns`); a 1x1
    convolution with stride 1 and no padding needs none, nor does a depthwise one (its own
    kernel, DepthwiseConv2d.cu)."""
    plain = pointwise(g) and all(s == 1 for s in g.stride) and not any(g.padding)
    depthwise = g.groups > 1 and g.groups == g.x[1]
    return 0 if plain or depthwise else im2col(g)


def with_workspaces(tape: Tape, pick: Callable[[ConvWorkspace], tuple[int, int]]) -> Tape:
    """A copy of `tape` whose convolutions take the (forward, backward) workspaces `pick` says
    instead of the heuristics' (the tape records those): for the low and high ends of a range."""
    # Imported here: the tape records with this module's rules.
    from vramlint.memory.tape import WORKSPACE_LABEL, Storage

    storages = list(tape.storages)
    ops = []
    for op in tape.ops:
        recorded = op.workspace
        if recorded is None:
            ops.append(op)
            continue
        forward, backward = pick(recorded)
        if op.workspace_sid >= 0:
            storages[op.workspace_sid] = replace(storages[op.workspace_sid], nbytes=forward)
        elif forward:  # none recorded (the heuristics' takes none): this variant's, alive at the op
            storages.append(Storage(len(storages), forward, "intermediate", "uint8", op.index, WORKSPACE_LABEL))
            op = replace(op, allocated=[*op.allocated, len(storages) - 1])
        ops.append(replace(op, backward_temp=op.backward_temp - recorded.backward + backward))
    return replace(tape, storages=storages, ops=ops)


def none(w: ConvWorkspace) -> tuple[int, int]:
    """The fallback engines', which torch goes on to when a workspace cannot be allocated."""
    return 0, 0


def native(w: ConvWorkspace) -> tuple[int, int]:
    """torch's own kernels, with cuDNN disabled."""
    return w.native, w.native


def largest(w: ConvWorkspace) -> tuple[int, int]:
    """The most a plan timed under `cudnn.benchmark = True` may take."""
    return w.forward_max, w.backward_max
