"""What each operation allocates and what autograd keeps for its backward.

The rules follow PyTorch's `tools/autograd/derivatives.yaml` (which inputs/outputs a backward
formula reads) and the CUDA kernels' extra outputs (dropout's bool mask, max-pool's int64
indices, norm statistics, attention's log-sum-exp). A multiplication keeps one operand only when
the other one needs a gradient, as the generated autograd code does (`should_compute_output`).

Ops are named canonically: `torch.nn.functional.relu`, `torch.relu`, `Tensor.relu` and the
`nn.ReLU` layer are all "relu"; a trailing underscore or `inplace=True` marks an in-place call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramlint.frontends.torch.tensors import DTYPE_BYTES, TensorValue, numel
from vramlint.memory import attention_backends as attn
from vramlint.memory import cudnn

if TYPE_CHECKING:
    from vramlint.engine.values import Instance


@dataclass(frozen=True)
class Extra:
    """A tensor kept for backward that is not an output of the op (a mask, indices, statistics)."""

    nbytes: int
    dtype: str
    label: str
    # An intermediate of a composite op (made in any forward, grad or not) rather than a tensor
    # made only for backward (a mask, indices, statistics).
    intermediate: bool = False


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: list[TensorValue]
    outputs: list[TensorValue]
    module: Instance | None
    inplace: bool
    training: bool = True
    # Whether a tensor receives a gradient (the tape knows: parameters, and what was computed from them).
    grad_of: Callable[[TensorValue], bool] = lambda t: False
    compute_dtype: str | None = None  # the dtype autocast runs the op in (None: its inputs')
    # The card, torch release and kernel switches that decide which attention kernel runs.
    kernels: attn.KernelEnv = field(default_factory=attn.KernelEnv)
    layouts: list[Any] = field(default_factory=list)  # each input's Layout (None: contiguous)

    def dtype_of(self, t: TensorValue) -> str:
        return self.compute_dtype or t.dtype

    def arg(self, i: int, name: str, default: Any = None) -> Any:
        """Argument `i` (counting the layer's own inputs for module calls) or keyword `name`;
        for a layer, its attribute `name`."""
        if self.module is not None:
            return self.module.attrs.get(name, self.kwargs.get(name, default))
        if len(self.args) > i:
            return self.args[i]
        return self.kwargs.get(name, default)

    @property
    def x(self) -> TensorValue | None:
        return self.inputs[0] if self.inputs else None

    @property
    def out(self) -> TensorValue | None:
        return self.outputs[0] if self.outputs else None

    def needs_grad(self, t: TensorValue | None) -> bool:
        return t is not None and self.grad_of(t)


# A tensor's layout: None (contiguous), a permutation of its dims (the memory order), or NONCONTIGUOUS.
Layout = tuple[int, ...] | None
NONCONTIGUOUS: tuple[int, ...] = (-1,)


@dataclass
class Effect:
    kind: str = "new"  # "new": fresh outputs | "view": outputs share input 0's storage | "inplace"
    saves: list[TensorValue | Extra] = field(default_factory=list)
    grad: str = "new"  # backward: "new" input gradients | "pass" the output's gradient through | "none"
    backward_temp: int = 0
    # The memory order of the (first) output's dims: None = contiguous; a permutation (sdpa's
    # output is [B, H, L, D] over memory laid out [B, L, H, D]); NONCONTIGUOUS = strided otherwise.
    layout: Layout = None
    assumed: bool = False
    note: str = ""  # which kernel the op was assumed to run ("attention: flash (bfloat16, ...)")
    workspace: cudnn.ConvWorkspace | None = None  # a convolution's cuDNN workspaces (memory/cudnn.py)

    def alias_of(self, ins: list[TensorValue]) -> TensorValue | None:
        """The input whose storage the outputs share (views, in-place ops), if any."""
        if self.kind in ("view", "inplace") and ins:
            return ins[0]
        return None


Rule = Callable[[Call], Effect]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn

    return deco


def nbytes(shape: Any, dtype: str) -> int:
    n = numel(shape) if isinstance(shape, tuple) else 0
    return n * DTYPE_BYTES.get(dtype, 4) if isinstance(n, int) else 0


# ---------------------------------------------------------------------- names
# A layer's op, by its class name: filled by the frontends' layer catalogs (each torch layer's
# forward rule says which op's rule gives what autograd keeps: frontends/torch/catalog).
MODULE_OPS: dict[str, str] = {}
ALIASES = {
    "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "conv_transpose1d": "conv", "conv_transpose2d": "conv",
    "conv_transpose3d": "conv", "max_pool1d": "max_pool", "max_pool2d": "max_pool", "max_pool3d": "max_pool",
    "adaptive_max_pool1d": "max_pool", "adaptive_max_pool2d": "max_pool", "adaptive_max_pool3d": "max_pool",
    "avg_pool1d": "avg_pool", "avg_pool2d": "avg_pool", "avg_pool3d": "avg_pool", "adaptive_avg_pool1d": "avg_pool",
    "adaptive_avg_pool2d": "avg_pool", "adaptive_avg_pool3d": "avg_pool",
    "truediv": "div", "floordiv": "floor_divide", "true_divide": "div", "multiply": "mul", "subtract": "sub",
    "bmm": "matmul", "mm": "matmul", "einsum": "matmul", "upsample": "interpolate",
    "relu6": "hardtanh", "swapaxes": "transpose", "mT": "transpose", "reshape_as": "reshape", "view_as": "view",
    "expand_as": "expand", "type_as": "to", "float": "to", "half": "to", "double": "to", "bfloat16": "to",
    "long": "to", "int": "to", "bool": "to", "type": "to", "softmin": "softmax", "neg": "negative",
    "amax": "max_reduce", "amin": "max_reduce", "clip": "clamp", "radd": "add", "rsub": "sub", "rmul": "mul",
    "rtruediv": "div", "rmatmul": "matmul", "fill_": "fill", "max_unpool1d": "max_unpool",
    "max_unpool2d": "max_unpool", "max_unpool3d": "max_unpool", "fractional_max_pool2d": "max_pool",
    "fractional_max_pool3d": "max_pool", "lp_pool1d": "avg_pool", "lp_pool2d": "avg_pool", "lp_pool3d": "avg_pool",
    "pixel_unshuffle": "pixel_shuffle", "native_channel_shuffle": "channel_shuffle",
    # torch.nn.functional's other names for modelled ops (measured with saved_tensors_hooks, torch
    # 2.13: the *_with_indices forms keep the input and the indices; gumbel_softmax, with hard=False,
    # its softmax's output)
    **{f"{kind}{n}d_with_indices": "max_pool" for n in (1, 2, 3) for kind in ("max_pool", "adaptive_max_pool")},
    "fractional_max_pool2d_with_indices": "max_pool", "fractional_max_pool3d_with_indices": "max_pool",
    "upsample_nearest": "interpolate", "upsample_bilinear": "interpolate", "gumbel_softmax": "softmax",
    # the F. forms of the losses whose layers' ops are declared assumed (ASSUMED)
    "cosine_embedding_loss": "cosineembeddingloss", "margin_ranking_loss": "marginrankingloss",
    "triplet_margin_loss": "tripletmarginloss", "poisson_nll_loss": "poissonnllloss",
    "gaussian_nll_loss": "gaussiannllloss", "hinge_embedding_loss": "hingeembeddingloss",
    "soft_margin_loss": "softmarginloss", "multilabel_margin_loss": "multilabelmarginloss",
    "multilabel_soft_margin_loss": "multilabelsoftmarginloss", "multi_margin_loss": "multimarginloss",
    "triplet_margin_with_distance_loss": "tripletmarginwithdistanceloss", "ctc_loss": "ctcloss",
}


def canonical(raw: str, module: Instance | None, kwargs: dict[str, Any]) -> tuple[str, bool]:
    """("relu", inplace?) for "torch.nn.functional.relu_", "Tensor.__iadd__", a ReLU layer..."""
    if module is not None:
        # A layer's op by the class whose forward rule ran ("nn.Conv2d"), which a subclass
        # calling `super().forward(x)` is not (`class MyConv(nn.Conv2d)`).
        cls = raw.removeprefix("nn.") if raw.startswith("nn.") else module.cls.name
        name = MODULE_OPS.get(cls, cls.lower())
        return ALIASES.get(name, name), module.attrs.get("inplace") is True
    name = _FUNCTIONAL_RENAMES.get(raw) or raw.rsplit(".", 1)[-1]
    inplace = kwargs.get("inplace") is True
    if name.startswith("__i") and name.endswith("__") and name[3:-2] in _BINARY:
        name, inplace = name[3:-2], True
    elif name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
    elif name.endswith("_") and not name.startswith("_") and name not in ("fill_",):
        name, inplace = name[:-1], True
    return ALIASES.get(name, name), inplace


# F.unfold (im2col) copies windows out, F.fold sums them back: not Tensor.unfold, which is a view.
_FUNCTIONAL_RENAMES = {"torch.nn.functional.unfold": "im2col", "torch.nn.functional.fold": "col2im"}
_BINARY = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"}

# Ops that never carry a gradient (integer results, comparisons, factories, metadata).
NOT_DIFFERENTIABLE = {
    "eq", "ne", "lt", "le", "gt", "ge", "argmax", "argmin", "arange", "zeros", "ones", "full", "empty", "randn",
    "rand", "randint", "randperm", "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like",
    "tensor", "as_tensor", "linspace", "logspace", "eye", "tril_indices", "triu_indices", "detach", "sign",
    "floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite", "and", "or", "xor", "invert", "not",
    "bernoulli", "multinomial", "nonzero", "argsort", "bucketize", "searchsorted", "floor_divide", "mod",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "all", "any", "logical_not", "logical_and",
    "logical_or", "fill", "zero", "one_hot",
}


def differentiable(name: str) -> bool:
    return name not in NOT_DIFFERENTIABLE


# ---------------------------------------------------------------------- autocast (CUDA op lists)
# torch/amp autocast_mode.cpp: ops cast to the lower precision, and ops run in float32.
AUTOCAST_LOWER = {
    "conv", "linear", "matmul", "addmm", "baddbmm", "addbmm", "addmv", "bilinear", "prelu", "chain_matmul",
    "multi_dot", "scaled_dot_product_attention", "multihead_attention", "rnn", "conv_tbc",
}
AUTOCAST_FP32 = {
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal", "rsqrt",
    "sinh", "tan", "pow", "softplus", "layer_norm", "group_norm", "norm", "cosine_similarity", "nll_loss",
    "kl_div", "l1_loss", "mse_loss", "binary_cross_entropy_with_logits", "dist", "cdist", "renorm", "logsumexp",
    "softmax", "log_softmax", "cumprod", "cumsum", "prod", "sum", "cross_entropy", "rms_norm", "smooth_l1_loss",
}


# ---------------------------------------------------------------------- the rules
VIEWS = {
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "T", "unsqueeze", "squeeze", "expand",
    "narrow", "select", "split", "chunk", "unbind", "getitem", "detach", "alias", "as_strided", "diagonal",
    "movedim", "identity", "real", "imag", "view_as_real", "split_with_sizes", "unfold", "tensor_split",
}
# Views whose result is laid out like their input (same element order).
ORDER_KEEPING = {"view", "reshape", "flatten", "unflatten", "unsqueeze", "squeeze", "detach", "alias", "identity"}


def effect_of(call: Call, layouts: list[Layout]) -> Effect:
    """What `call` allocates and keeps. `layouts[i]` is input i's layout: a reshape of a
    transposed tensor copies, of a contiguous one it is a view."""
    name = call.name
    layout = layouts[0] if layouts else None
    if name in ("reshape", "flatten", "contiguous") and layout is not None:
        return Effect(grad="new")  # a copy, contiguous
    if name == "contiguous":
        return Effect("view", grad="pass")
    if name == "getitem":
        return _getitem(call, layout)
    if name in VIEWS:
        return Effect("view", grad="pass", layout=_view_layout(call, layout))
    call.layouts = layouts
    eff = RULES.get(name, assumed)(call)
    if name == "conv":
        geometry = conv_geometry(call)
        if geometry is not None:
            weight = call.module.state.params.get("weight") if call.module is not None and call.module.state else \
                (call.inputs[1] if len(call.inputs) > 1 else None)
            gradients = call.needs_grad(call.x) or (isinstance(weight, TensorValue) and call.needs_grad(weight))
            eff.workspace = cudnn.workspace(geometry, gradients)
            eff.backward_temp += eff.workspace.backward
    if name in ("linear", "matmul") and layout is not None and _folds(call):
        _keep_folded_copy(call, eff)
    if call.inplace and eff.kind == "new":
        eff.kind = "inplace"
        eff.layout = layout
        if eff.grad == "new" and name in _PASS_WHEN_INPLACE:
            eff.grad = "pass"
        x = call.x
        if name in INPLACE_KEEPS_RESULT:
            eff.saves = [t for t in eff.saves if t is not x] + _keep(x)
        elif x is not None and any(t is x for t in eff.saves):
            # The backward formula reads the input, which the op overwrites: autograd keeps
            # a copy of the original (`original_self.clone()`).
            eff.saves = [t for t in eff.saves if t is not x] + [
                Extra(nbytes(x.shape, x.dtype), x.dtype, f"copy of the input of in-place {name}")]
    return eff


def _folds(call: Call) -> bool:
    """A matmul of a >= 3-D input by a matrix folds the input to 2-D (ATen's _matmul_impl:
    `tensor1.reshape({-1, size})`; linear of a non-contiguous input goes through it too)."""
    x = call.x
    if x is None or not isinstance(x.shape, tuple) or len(x.shape) < 3:
        return False
    if call.module is not None or call.name == "linear":
        return True
    other = call.inputs[1] if len(call.inputs) > 1 else None
    return other is not None and isinstance(other.shape, tuple) and len(other.shape) <= 2


def _keep_folded_copy(call: Call, eff: Effect) -> None:
    """The fold of a non-contiguous input is a copy, and the copy is what mm keeps for the weight's
    gradient (seen with saved_tensors_hooks: nn.MultiheadAttention's in-projection of a
    batch_first input, a Linear of a transposed tensor)."""
    x = call.x
    assert x is not None
    dt = call.dtype_of(x)
    eff.saves = [Extra(nbytes(x.shape, dt), dt, "input folded to 2-D (a copy)") if t is x else t for t in eff.saves]


def _view_layout(call: Call, layout: Layout) -> Layout:
    """The layout of a view of a tensor laid out `layout`."""
    x = call.x
    if call.name in ORDER_KEEPING or x is None or not isinstance(x.shape, tuple):
        # Same element order: a contiguous tensor stays contiguous; a permuted one reshaped by
        # view() is strided in a way dim permutations do not describe.
        return layout if layout is None or call.name not in ("view", "unflatten", "unsqueeze", "squeeze") \
            else NONCONTIGUOUS
    rank = len(x.shape)
    perm = list(range(rank)) if layout is None else list(layout)
    if perm == list(NONCONTIGUOUS) or len(perm) != rank:
        return NONCONTIGUOUS
    if call.name in ("transpose", "t", "T", "swapaxes", "movedim"):
        a, b = (_dim_arg(call, 1, rank), _dim_arg(call, 2, rank)) if call.name != "t" else (0, rank - 1)
        if a is None or b is None:
            return NONCONTIGUOUS
        perm[a], perm[b] = perm[b], perm[a]
    elif call.name == "permute":
        dims = call.args[1:] if call.module is None else ()
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if len(dims) != rank or not all(isinstance(d, int) for d in dims):
            return NONCONTIGUOUS
        perm = [perm[d % rank] for d in dims]
    else:
        return NONCONTIGUOUS  # slices, expand, diagonal...: strided
    return None if perm == list(range(rank)) else tuple(perm)


def _dim_arg(call: Call, i: int, rank: int) -> int | None:
    d = call.args[i] if len(call.args) > i else None
    return d % rank if isinstance(d, int) and rank else None


_PASS_WHEN_INPLACE = {"add", "sub"}
# In-place ops whose backward formula reads the result (derivatives.yaml): the overwritten
# tensor itself is kept, no copy. Measured with saved_tensors_hooks on torch 2.13: relu_,
# leaky_relu_, elu_, selu_, celu_, sigmoid_, tanh_, exp_, sqrt_ keep the result; hardtanh_
# (ReLU6), silu_, hardswish_, hardsigmoid_, mish_, threshold_, clamp_ keep a copy.
INPLACE_KEEPS_RESULT = {"relu", "leaky_relu", "elu", "selu", "celu", "sigmoid", "tanh", "exp", "sqrt", "rsqrt", "rrelu"}


def _getitem(call: Call, layout: Layout) -> Effect:
    idx = call.args[1] if len(call.args) > 1 else None
    items = idx if isinstance(idx, tuple) else (idx,)
    advanced: list[TensorValue | Extra] = [t for t in items if isinstance(t, TensorValue)]
    if advanced:
        # Advanced indexing gathers into a new tensor; backward scatters into zeros of the input's size.
        return Effect(saves=advanced, grad="new")
    # x[i] and x[a:b] along the first dim keep a contiguous tensor contiguous.
    leading = len(items) == 1 and (isinstance(items[0], int) or isinstance(items[0], slice) and items[0].step in (None, 1))
    return Effect("view", grad="pass", layout=layout if leading else NONCONTIGUOUS)


def _keep(*ts: TensorValue | None) -> list[TensorValue | Extra]:
    return [t for t in ts if t is not None]


# Ops a layer names (frontends/torch/catalog) that are not modelled yet: the backward is assumed to
# read every input, the common case for arithmetic, and the estimate reports them as unmodelled.
# Any other op is assumed the same way, but these are declared, so that a layer without a rule is
# a decision, not an omission (tests/test_specs.py).
ASSUMED = {
    "adaptivelogsoftmaxwithloss", "cosine_similarity", "pairwise_distance", "ctcloss",
    "local_response_norm", "crossmaplrn2d", "lstmcell", "grucell", "parametrizationlist",
    "_weightnorm", "_spectralnorm", "_orthogonal", "cosineembeddingloss", "marginrankingloss", "tripletmarginloss",
    "poissonnllloss", "gaussiannllloss", "hingeembeddingloss", "softmarginloss", "multilabelmarginloss",
    "multilabelsoftmarginloss", "multimarginloss", "tripletmarginwithdistanceloss", "normalize",
}


@rule(*sorted(ASSUMED))
def assumed(c: Call) -> Effect:
    return Effect(saves=[t for t in c.inputs if not t.is_param], assumed=True)


@rule("relu", "sigmoid", "tanh", "exp", "sqrt", "rsqrt", "softmax", "log_softmax")
def keeps_output(c: Call) -> Effect:
    return Effect(saves=_keep(c.out))


@rule("gelu", "silu", "mish", "hardswish", "hardsigmoid", "leaky_relu", "hardtanh", "softplus", "elu", "selu",
      "celu", "log", "sin", "cos", "abs", "square", "erf", "log1p", "log2", "threshold", "logsigmoid",
      "tanhshrink", "hardshrink", "softshrink", "clamp", "clamp_min", "clamp_max",
      "log10", "atan", "asin", "acos", "tan", "sinh", "cosh", "erfinv", "expm1", "sgn", "glu", "reflection_pad")
def keeps_input(c: Call) -> Effect:
    return Effect(saves=_keep(c.x))


@rule("rrelu")
def rrelu(c: Call) -> Effect:
    """RReLU in training draws a slope per element: rrelu_with_noise keeps the input and the
    noise (the input's size and dtype); in eval it is a leaky ReLU, which keeps the input."""
    x = c.x
    if not c.training or x is None:
        return Effect(saves=_keep(x))
    dt = c.dtype_of(x)
    return Effect(saves=[x, Extra(nbytes(x.shape, dt), dt, "rrelu noise")])


@rule("softsign")
def softsign(c: Call) -> Effect:
    """x / (1 + |x|), composite: the division keeps x and the denominator (saved_tensors_hooks,
    torch 2.13)."""
    x = c.x
    if x is None:
        return Effect()
    dt = c.dtype_of(x)
    return Effect(saves=[x, Extra(nbytes(x.shape, dt), dt, "softsign denominator", True)])


@rule("reciprocal")
def reciprocal(c: Call) -> Effect:
    return Effect(saves=_keep(c.out))


@rule("pad")
def pad(c: Call) -> Effect:
    """F.pad: constant and circular padding keep nothing; reflection and replication padding
    keep their input (as the layers: catalog/parameter_free.py)."""
    mode = c.arg(2, "mode", "constant") if c.module is None else "constant"
    return Effect(saves=_keep(c.x) if mode in ("reflect", "replicate") else [])


@rule("add", "sub", "negative", "pos", "cat", "concat", "concatenate", "stack", "hstack", "vstack",
      "roll", "flip", "tril", "triu", "repeat", "tile", "clone", "pixel_shuffle", "channel_shuffle", "interpolate",
      "sum", "mean", "cumsum", "nan_to_num", "zero_pad", "copy", "rot90", "im2col", "col2im", "repeat_interleave",
      "diff", "affine_grid")
def keeps_nothing(c: Call) -> Effect:
    # Their backward needs only sizes (or reshapes the gradient): nothing is kept. (torch.diff
    # is composite: slices and a subtraction.)
    return Effect(grad="pass" if c.name in ("add", "sub", "cat", "concat", "stack") else "new")


@rule("mul", "matmul", "linear", "conv", "dot", "outer", "bilinear", "prelu")
def keeps_other_operand(c: Call) -> Effect:
    """a·b: the gradient of a reads b and that of b reads a; a parameter operand (a layer's
    weight) is already counted as a weight."""
    if c.module is not None:
        weight = c.module.state.params.get("weight") if c.module.state is not None else None
        saves: list[TensorValue | Extra] = []
        trains = weight is not None and weight.requires_grad
        padded = _padded_input(c, trains)
        if padded is not None:  # padding_mode='reflect' | 'replicate' | 'circular': F.pad first
            saves += padded
        elif trains:
            saves += _keep(c.x)
        if c.needs_grad(c.x) and weight is not None:
            saves.append(weight)
        return Effect(saves=saves)
    if len(c.inputs) < 2:
        return Effect(saves=[])  # times a Python number: nothing to keep
    return Effect(saves=_operands(c, c.inputs[0], c.inputs[1]))


def conv_geometry(c: Call) -> cudnn.ConvGeometry | None:
    """A convolution's operands and hyper-parameters (a Conv layer's attributes, or F.conv*d's
    and F.conv_transpose*d's arguments); None when a size is unknown."""
    x, y = c.x, c.out
    if c.module is not None:
        w = c.module.state.params.get("weight") if c.module.state is not None else None
        transposed = c.module.attrs.get("transposed") is True
    else:
        w = c.inputs[1] if len(c.inputs) > 1 else None
        # F.conv_transpose*d: the weight is [C_in, C_out/groups, ...], a convolution's [C_out, C_in/groups, ...]
        transposed = isinstance(w, TensorValue) and x is not None and _transposed_weight(x, w, c.arg(6, "groups", 1))
    if x is None or y is None or not isinstance(w, TensorValue):
        return None
    shapes = [t.shape for t in (x, y, w)]
    if not all(isinstance(s, tuple) and all(isinstance(d, int) for d in s) for s in shapes):
        return None
    xs, ys, ws = (tuple(int(d) for d in s) for s in shapes)  # type: ignore[union-attr]
    nd = len(ws) - 2
    if nd < 1 or len(xs) not in (nd + 1, nd + 2):
        return None
    if len(xs) == nd + 1:  # an unbatched input runs as a batch of one
        xs, ys = (1, *xs), (1, *ys)
    # F.conv*d(input, weight, bias, stride, padding, dilation, groups);
    # F.conv_transpose*d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    groups = c.arg(6, "groups", 1)
    stride = _ints(c.arg(3, "stride", 1), nd)
    dilation = _ints(c.arg(7 if transposed else 5, "dilation", 1), nd)
    padding_arg = c.arg(4, "padding", 0)
    padding: tuple[int, ...] | None
    if padding_arg in ("same", "valid"):
        padding = tuple(0 if padding_arg == "valid" else d * (k - 1) // 2
                        for d, k in zip(dilation or (1,) * nd, ws[2:]))
    else:
        padding = _ints(padding_arg, nd)
    if not isinstance(groups, int) or stride is None or dilation is None or padding is None:
        return None
    return cudnn.ConvGeometry(xs, ys, ws, stride, padding, dilation, groups, c.dtype_of(x), transposed)


def _transposed_weight(x: TensorValue, w: TensorValue, groups: Any) -> bool:
    xs, ws = x.shape, w.shape
    if not isinstance(xs, tuple) or not isinstance(ws, tuple) or len(ws) < 3 or not isinstance(groups, int):
        return False
    channels = xs[-len(ws) + 1]
    return channels != ws[1] * groups and channels == ws[0]


def _ints(v: Any, n: int) -> tuple[int, ...] | None:
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    if len(vals) == 1:
        vals = vals * n
    return vals if len(vals) == n and all(isinstance(d, int) for d in vals) else None


def _padded_input(c: Call, trains: bool) -> list[TensorValue | Extra] | None:
    """A convolution with a padding_mode other than 'zeros' pads its input with F.pad, then
    convolves with no padding: it keeps the padded copy when its weight `trains` (and reflection
    and replication padding keep the input); None for zero padding."""
    m, x = c.module, c.x
    mode = m.attrs.get("padding_mode", "zeros") if m is not None else "zeros"
    if mode == "zeros" or x is None or not isinstance(x.shape, tuple):
        return None
    pads = m.attrs.get("padding") if m is not None else None
    pads = pads if isinstance(pads, tuple) and all(isinstance(p, int) for p in pads) else ()
    spatial = len(pads)
    shape = x.shape
    if spatial and len(shape) >= spatial:
        head = shape[:len(shape) - spatial]
        shape = (*head, *(d + 2 * p if isinstance(d, int) else d for d, p in zip(shape[len(head):], pads, strict=True)))
    dt = c.dtype_of(x)
    kept: list[TensorValue | Extra] = [Extra(nbytes(shape, dt), dt, f"{mode}-padded input")] if trains else []
    return kept + ([x] if mode in ("reflect", "replicate") else [])


def _operands(c: Call, a: TensorValue, b: TensorValue) -> list[TensorValue | Extra]:
    saves: list[TensorValue | Extra] = []
    if c.needs_grad(b):
        saves.append(a)
    if c.needs_grad(a):
        saves.append(b)
    return saves


@rule("addmm", "addbmm", "baddbmm")
def addmm(c: Call) -> Effect:
    """addmm(bias, mat1, mat2) (transformers' Conv1D), baddbmm(mask, q, k^T) (nn.MultiheadAttention's
    weights under a mask): the two matrices as for matmul."""
    if len(c.inputs) < 3:
        return Effect(saves=[t for t in c.inputs], assumed=True)
    return Effect(saves=_operands(c, c.inputs[1], c.inputs[2]))


@rule("setitem")
def setitem(c: Call) -> Effect:
    return Effect(grad="pass")


@rule("requires_grad")
def requires_grad(c: Call) -> Effect:
    """`t.requires_grad_()`: a flag on the same tensor (the tape marks it); nothing is kept."""
    return Effect("view", grad="pass")


@rule("div")
def div(c: Call) -> Effect:
    if len(c.inputs) < 2:
        return Effect()
    a, b = c.inputs[:2]
    saves: list[TensorValue | Extra] = [b, a] if c.needs_grad(b) else [b]
    return Effect(saves=saves)


@rule("pow")
def power(c: Call) -> Effect:
    return Effect(saves=_keep(c.x) + ([c.out] if len(c.inputs) > 1 else []))  # type: ignore[list-item]


@rule("dequantize")
def dequantize(c: Call) -> Effect:
    """A quantized weight made a float matrix for one matmul: frozen, so nothing is kept (the
    backward dequantizes again)."""
    return Effect(grad="new")


@rule("to")
def cast(c: Call) -> Effect:
    x, out = c.x, c.out
    if x is not None and out is not None and x.dtype == out.dtype:
        return Effect("view", grad="pass")
    return Effect(grad="new")


@rule("masked_fill", "where", "index_select", "gather", "take_along_dim", "embedding", "max_unpool")
def keeps_index(c: Call) -> Effect:
    # The index/mask (an integer or bool input) is kept; for embedding, the token ids.
    return Effect(saves=[t for t in c.inputs if t.dtype in ("int64", "int32", "bool", "uint8")])


# The dropouts: the identity in eval mode (the timeline's inference pass skips them).
DROPOUT_OPS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout", "alpha_dropout"}
# Channel dropouts of an unbatched input (one rank less), which torch unsqueezes to a batch of 1.
_UNBATCHED_RANK = {"dropout1d": 2, "dropout3d": 4}
_EVAL_BY_DEFAULT = {"alpha_dropout", "feature_alpha_dropout"}


@rule(*sorted(DROPOUT_OPS))
def dropout(c: Call) -> Effect:
    """What each dropout keeps (ATen Dropout.cpp; saved_tensors_hooks, torch 2.13): F.dropout,
    which CUDA runs as the fused native_dropout, a bool mask, 1 byte per element; alpha dropout
    (not fused, on any device) its noise, the input's size and dtype; the channel dropouts
    (dropout1d/2d/3d, feature_alpha_dropout) a noise of one value per (sample, channel)."""
    p = c.arg(1, "p", 0.5)
    x = c.x
    # F.alpha_dropout and F.feature_alpha_dropout default to training=False, the others to True.
    called = c.module is not None or c.arg(2, "training", c.name not in _EVAL_BY_DEFAULT) is True
    if not c.training or not called or p == 0 or x is None:
        return Effect("view", grad="pass")
    if c.name == "dropout":
        return Effect(saves=[Extra(nbytes(x.shape, "bool"), "bool", "dropout mask")])
    dt = c.dtype_of(x)
    if c.name == "alpha_dropout" or not isinstance(x.shape, tuple) or len(x.shape) < 2:
        return Effect(saves=[Extra(nbytes(x.shape, dt), dt, "alpha dropout noise")])
    channels = x.shape[:1] if len(x.shape) == _UNBATCHED_RANK.get(c.name) else x.shape[:2]
    return Effect(saves=[Extra(nbytes(channels, dt), dt, "channel dropout noise")])


@rule("max_pool")
def max_pool(c: Call) -> Effect:
    saves = _keep(c.x)
    returned = c.outputs[1] if len(c.outputs) > 1 and c.outputs[1].dtype == "int64" else None
    if returned is not None:  # return_indices=True: the indices kept are the ones returned
        saves.append(returned)
    elif c.out is not None:
        saves.append(Extra(nbytes(c.out.shape, "int64"), "int64", "max-pool indices"))
    return Effect(saves=saves)


@rule("avg_pool")
def avg_pool(c: Call) -> Effect:
    out = c.out
    if c.name == "avg_pool" and out is not None and isinstance(out.shape, tuple) and len(out.shape) >= 3 \
            and all(d == 1 for d in out.shape[2:]) and _adaptive(c):
        return Effect()  # adaptive pooling to 1x1 is a mean: its backward needs only sizes
    return Effect(saves=_keep(c.x))


def _adaptive(c: Call) -> bool:
    if c.module is not None:
        return c.module.cls.name.startswith("Adaptive")
    return c.args is not None and "output_size" in c.kwargs or len(c.args) == 2


def _stats(c: Call, rows: Any, label: str) -> list[TensorValue | Extra]:
    """mean and inverse std per row, float32."""
    b = rows * 4 if isinstance(rows, int) else 0
    return [Extra(b, "float32", f"{label} mean"), Extra(b, "float32", f"{label} rstd")]


@rule("batch_norm", "instance_norm")
def batch_norm(c: Call) -> Effect:
    x = c.x
    if x is None or not isinstance(x.shape, tuple) or len(x.shape) < 2:
        return Effect(saves=_keep(x))
    channels = x.shape[1] * (x.shape[0] if c.name == "instance_norm" else 1)
    saves = _keep(x) + _stats(c, channels, "batch-norm")
    if c.name == "instance_norm" and c.module is not None:
        # instance_norm is batch_norm over [1, N*C, ...]: it repeats the weight and the running
        # statistics N times, and batch_norm keeps those copies (saved_tensors_hooks, torch 2.13).
        st = c.module.state
        copies = [n for n in ("weight",) if st is not None and st.params.get(n) is not None]
        copies += [n for n in ("running_mean", "running_var") if st is not None and st.buffers.get(n) is not None]
        dt = c.dtype_of(x)
        saves += [Extra(nbytes((channels,), dt), dt, f"repeated {n}") for n in copies]
    return Effect(saves=saves)


@rule("layer_norm", "rms_norm", "group_norm")
def layer_norm(c: Call) -> Effect:
    x = c.x
    if x is None or not isinstance(x.shape, tuple):
        return Effect(saves=_keep(x))
    if c.name == "group_norm":
        groups = c.arg(1, "num_groups", 1)
        rows = x.shape[0] * groups if isinstance(groups, int) and isinstance(x.shape[0], int) else 0
    else:
        normalized = c.arg(1, "normalized_shape", (x.shape[-1],))
        k = len(normalized) if isinstance(normalized, (tuple, list)) else 1
        rows = numel(x.shape[:-k]) if k <= len(x.shape) else 0
    stats = _stats(c, rows, c.name)
    return Effect(saves=_keep(x) + (stats[1:] if c.name == "rms_norm" else stats))


@rule("cross_entropy")
def cross_entropy(c: Call) -> Effect:
    """log_softmax (its output, the input's size, is kept) then nll_loss (keeps the target).
    Backward makes the gradient of the log-probabilities before that of the input."""
    x = c.x
    if x is None:
        return Effect()
    dt = c.dtype_of(x)
    size = nbytes(x.shape, dt)
    target = c.inputs[1:2]
    if target and target[0].dtype not in ("int64", "int32", "uint8"):
        # class probabilities: -(target * log_softmax(x)).sum(), no nll_loss and no total_weight
        return Effect(saves=[Extra(size, dt, "log-probabilities"), *target], backward_temp=size)
    return Effect(saves=[Extra(size, dt, "log-probabilities"), TOTAL_WEIGHT, *target], backward_temp=size)


@rule("rnncell")
def rnn_cell(c: Call) -> Effect:
    """nn.RNNCell: rnn_tanh_cell / rnn_relu_cell are composite on every device (two linears, then
    tanh or relu): they keep the input, the hidden state (zeros when not given) and the output."""
    x, out = c.x, c.out
    if x is None or out is None:
        return Effect(saves=_keep(x), assumed=True)
    given = [t for t in c.inputs[1:] if not t.is_param]  # the layer's weights come after its arguments
    hx: list[TensorValue | Extra] = [*given[:1]] or [Extra(nbytes(out.shape, out.dtype), out.dtype, "zero hidden state")]
    return Effect(saves=[x, *hx, out])


@rule("linearcrossentropyloss")
def linear_cross_entropy(c: Call) -> Effect:
    """nn.LinearCrossEntropyLoss: the projection keeps its input (for the weight's gradient), then
    cross-entropy its log-probabilities and total_weight (saved_tensors_hooks, torch 2.13)."""
    x, m = c.x, c.module
    linear = m.state.modules.get("linear") if m is not None and m.state is not None else None
    classes = linear.attrs.get("out_features") if linear is not None else None
    if x is None or not isinstance(x.shape, tuple) or not isinstance(classes, int):
        return Effect(saves=_keep(x), assumed=True)
    dt = c.dtype_of(x)
    logp = nbytes((*x.shape[:-1], classes), dt)
    return Effect(saves=[x, Extra(logp, dt, "log-probabilities"), TOTAL_WEIGHT], backward_temp=logp)


# nll_loss keeps `total_weight`, a 0-d float32 tensor (one 512-byte block on the GPU).
TOTAL_WEIGHT = Extra(4, "float32", "nll_loss total_weight")


@rule("nll_loss")
def nll_loss(c: Call) -> Effect:
    return Effect(saves=[*c.inputs[:2], TOTAL_WEIGHT])


@rule("kl_div")
def kl_div(c: Call) -> Effect:
    """kl_div(input, target): the input's gradient reads the target only; the target's (when it
    has one) the input too (derivatives.yaml)."""
    x, target = c.x, (c.inputs[1] if len(c.inputs) > 1 else None)
    return Effect(saves=_keep(target) + (_keep(x) if c.needs_grad(target) else []))


@rule("mse_loss", "l1_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy",
      "huber_loss", "smooth_l1_loss")
def pointwise_loss(c: Call) -> Effect:
    return Effect(saves=list(c.inputs[:2]))


@rule("scaled_dot_product_attention")
def sdpa(c: Call) -> Effect:
    """The kernel torch's dispatch picks (memory/attention_backends.py) and what it keeps:
    flash, memory-efficient and cuDNN keep q, k, v, the output and a float32 log-sum-exp (no
    L x S matrix); the math fallback keeps float32 L x S attention weights."""
    x = sdpa_inputs(c)
    if x is None:
        return Effect(saves=[*c.inputs[:3], *_keep(c.out)], assumed=True)
    q, k, v = c.inputs[:3]
    mask = c.arg(3, "attn_mask")
    return attention_effect(c, x, (q, k, v, c.out, mask if isinstance(mask, TensorValue) else None))


def sdpa_inputs(c: Call) -> attn.SdpaInputs | None:
    """F.scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
    is_causal=False, scale=None, enable_gqa=False), as the dispatch sees it (None: a shape
    is not known)."""
    if len(c.inputs) < 3:
        return None
    q, k, v = c.inputs[:3]
    mask = c.arg(3, "attn_mask")
    shapes = [t.shape for t in (q, k, v)] + ([mask.shape] if isinstance(mask, TensorValue) else [])
    if not all(isinstance(s, tuple) and all(isinstance(d, int) for d in s) and len(s) >= 2 for s in shapes):
        return None
    p = c.arg(4, "dropout_p", 0.0)
    m = mask if isinstance(mask, TensorValue) else None
    return attn.SdpaInputs(
        q.shape, k.shape, v.shape, c.dtype_of(q),  # type: ignore[arg-type]
        mask=m.shape if m is not None else None,  # type: ignore[arg-type]
        mask_dtype=(c.dtype_of(m) if m.dtype != "bool" else "bool") if m is not None else None,
        mask_requires_grad=c.needs_grad(m), is_causal=c.arg(5, "is_causal", False) is True,
        dropout_p=float(p) if isinstance(p, (int, float)) and c.training else 0.0,
        enable_gqa=c.arg(7, "enable_gqa", False) is True,
        q_grad=c.needs_grad(q), k_grad=c.needs_grad(k), v_grad=c.needs_grad(v),
        v_contiguous=len(c.layouts) < 3 or c.layouts[2] is None)


def attention_effect(c: Call, x: attn.SdpaInputs,
                     own: tuple[TensorValue | None, ...]) -> Effect:
    """What attention keeps, by the kernel torch's dispatch picks for `x` on `c.kernels`.
    `own` = (q, k, v, output, mask) of the call; a None (a layer whose q/k/v are internal,
    nn.MultiheadAttention) is counted as a tensor of its size made by the forward."""
    choice = attn.choose_backend(x, c.kernels)
    backend = choice.backend if choice is not None else attn.MATH
    kept = attn.kept_for_backward(backend, x, c.kernels)
    saves: list[TensorValue | Extra] = []
    q, k, v, out, mask = (tuple(own) + (None,) * 5)[:5]
    out_shape = (*x.q[:-1], x.v[-1])
    for flag, t, shape, label in ((kept.keeps_q, q, x.q, "q"), (kept.keeps_k, k, x.k, "k"),
                                  (kept.keeps_v, v, x.v, "v"), (kept.keeps_out, out, out_shape, "output")):
        if flag:
            saves.append(t if t is not None else Extra(nbytes(shape, x.dtype), x.dtype, f"attention {label}", True))
    if kept.keeps_mask and x.mask is not None:
        saves.append(_bias(x, mask))
    saves += [Extra(e.nbytes, e.dtype, e.label, e.intermediate) for e in kept.extras]
    layout: Layout = (0, 2, 1, 3) if kept.transposed_output and len(x.q) == 4 else None
    note = f"attention: {choice.describe(x, c.kernels)}" if choice is not None else \
        "attention: no kernel of torch's fits (torch raises \"No available kernel\"); math assumed"
    return Effect(saves=saves, layout=layout, backward_temp=kept.backward_temp, note=note)


def _bias(x: attn.SdpaInputs, mask: TensorValue | None) -> TensorValue | Extra:
    """The mask the efficient / cuDNN backward takes (attention.cpp): a bool mask is converted
    to the query's dtype (`convert_boolean_attn_mask`), and `preprocess_mask` pads its last dim
    to a multiple of 16 (`pad_bias<16>`: a padded copy) unless it is aligned already."""
    assert x.mask is not None
    s = x.mask[-1]
    if mask is not None and x.mask_dtype != "bool" and s % 16 == 0:
        return mask
    dtype = x.dtype if x.mask_dtype in (None, "bool") else x.mask_dtype
    return Extra(nbytes((*x.mask[:-1], -(-s // 16) * 16), dtype), dtype, "attention mask as bias")


@rule("multihead_attention")
def multihead_attention(c: Call) -> Effect:
    """nn.MultiheadAttention in training (torch.nn.functional.multi_head_attention_forward):
    the packed input projection, a contiguous copy of q/k/v, attention (sdpa when the weights
    are not returned, else the explicit softmax matrix), the output copy fed to out_proj."""
    x, out = c.x, c.out
    m = c.module
    if x is None or out is None or m is None or not isinstance(x.shape, tuple) or len(x.shape) != 3:
        return Effect(saves=_keep(x), assumed=True)
    dt = c.dtype_of(x)
    e = nbytes(x.shape, dt)
    heads = m.attrs.get("num_heads", 1)
    batch_first = m.attrs.get("batch_first") is True
    b, length = (x.shape[0], x.shape[1]) if batch_first else (x.shape[1], x.shape[0])
    saves: list[TensorValue | Extra] = [
        x, Extra(3 * e, dt, "q/k/v", True), Extra(e, dt, "attention output", True),
        Extra(e, dt, "attention output (contiguous)", True)]
    need_weights = c.kwargs.get("need_weights", True) is not False
    if need_weights and all(isinstance(v, int) for v in (b, length, heads)):
        scores = b * heads * length * length * DTYPE_BYTES.get(dt, 4)
        saves.append(Extra(scores, dt, "attention weights"))
        p = m.attrs.get("dropout", 0.0)
        if p:
            saves.append(Extra(b * heads * length * length, "bool", "attention dropout mask"))
    elif all(isinstance(v, int) for v in (b, length, heads)):
        saves.append(Extra(b * heads * length * 4, "float32", "attention log-sum-exp"))
    return Effect(saves=saves, backward_temp=3 * e)


@rule("rnn")
def rnn(c: Call) -> Effect:
    """cuDNN RNNs keep the input, the output and a reserve of the gates of every step and layer.
    A torch layer is described by its attributes; a frontend recording the op itself says
    `rnn=(gates, hidden size, steps)` (Keras's layers: frontends/keras/catalog/recurrent.py)."""
    x, out = c.x, c.out
    m = c.module
    given = c.kwargs.get("rnn")
    if x is None or out is None or not isinstance(x.shape, tuple) or (m is None and given is None):
        return Effect(saves=_keep(x), assumed=True)
    if given is not None:
        gates, hidden, steps = given
        layers, dirs = 1, 1
    else:
        assert m is not None
        gates = {"LSTM": 4, "GRU": 3}.get(m.cls.name, 1)
        hidden = m.attrs.get("hidden_size", 0)
        steps = numel(x.shape[:-1])
        layers = m.attrs.get("num_layers", 1)
        dirs = 2 if m.attrs.get("bidirectional") else 1
    reserve = steps * layers * dirs * gates * hidden * 2 * DTYPE_BYTES.get(c.dtype_of(x), 4) \
        if all(isinstance(v, int) for v in (steps, layers, hidden)) else 0
    return Effect(saves=_keep(x, out) + [Extra(reserve, c.dtype_of(x), "cuDNN RNN reserve")])


@rule("max_reduce", "norm", "logsumexp", "std", "var", "max", "min", "prod", "cumprod", "pdist")
def keeps_input_and_output(c: Call) -> Effect:
    return Effect(saves=_keep(c.x, c.out))


@rule("maximum", "minimum", "atan2", "addcmul", "addcdiv", "lerp", "cross", "cdist", "dist", "grid_sample")
def keeps_inputs(c: Call) -> Effect:
    return Effect(saves=[t for t in c.inputs if not t.is_param])


@rule("index_put", "scatter", "scatter_add", "masked_scatter", "index_add", "index_copy")
def scatter(c: Call) -> Effect:
    return Effect(saves=[t for t in c.inputs if t.dtype in ("int64", "int32", "bool")])


@rule("embedding_bag")
def embedding_bag(c: Call) -> Effect:
    """_embedding_bag's backward reads the indices, the offsets, and three of its outputs
    (derivatives.yaml). As CUDA makes them (aten/src/ATen/native/cuda/EmbeddingBag.cu,
    _embedding_bag_cuda; not measured on a GPU): offset2bag, one int64 per index, in every mode;
    bag_size, one per offset; max_indices [bags, dim] in mode 'max', else empty. A 2-D input's
    offsets are made by F.embedding_bag (one per row). The CPU differs: tests/support/saved.py."""
    idx, out = c.x, c.out
    if idx is None or out is None or not isinstance(idx.shape, tuple) or not isinstance(out.shape, tuple):
        return Effect(saves=[t for t in c.inputs if not t.is_param], assumed=True)
    given = [t for t in c.inputs[1:] if not t.is_param]
    offsets = given[0] if given and len(idx.shape) == 1 else None
    rows = idx.shape[0] if len(idx.shape) == 2 else (offsets.shape[0] if offsets is not None
                                                       and isinstance(offsets.shape, tuple) else None)
    saves: list[TensorValue | Extra] = [idx, *given]
    if rows is not None and len(idx.shape) == 2:
        saves.append(Extra(nbytes((rows,), "int64"), "int64", "embedding_bag offsets"))
    saves.append(Extra(nbytes(idx.shape, "int64"), "int64", "embedding_bag offset2bag"))
    if rows is not None:
        saves.append(Extra(nbytes((rows,), "int64"), "int64", "embedding_bag bag_size"))
    if c.arg(6, "mode", "mean") == "max":
        saves.append(Extra(nbytes(out.shape, "int64"), "int64", "embedding_bag max_indices"))
    return Effect(saves=saves)


@rule(*sorted(NOT_DIFFERENTIABLE))
def no_grad_op(c: Call) -> Effect:
    return Effect(grad="none")
