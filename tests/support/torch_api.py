"""What vramlint leaves out of torch.nn's public API on purpose, reviewed name by name.

tests/test_enumeration.py enumerates `torch.nn.modules.__all__`, the static and class methods of
those classes, and `torch.nn.functional`'s public functions (of the torch in the test venv), and
fails on any the catalog does not model unless it is listed here with its reason. A reason that
starts with NOT_YET is a gap, not a decision: the lead reviews those.
"""

from __future__ import annotations

NOT_YET = "not modelled yet"

# Names in torch.nn.modules.__all__ that have no layer spec.
LEFT_OUT_MODULES: dict[str, str] = {
    "Module": "the base class itself (frontends/torch/module.py)",
    "Container": "deprecated alias of Module's container behaviour, never instantiated by model code",
    "LinearCrossEntropyOptions": "an options dataclass of LinearCrossEntropyLoss, not a module",
    # A lazy layer creates its parameters at its first forward, from the input's size: the
    # catalog builds parameters in the constructor (LayerParts), so these need a rule run at
    # the first call. Code that uses them gets an unresolved name, never a wrong count.
    **{f"Lazy{kind}{n}d": f"{NOT_YET}: lazy layer, its parameters come from the first forward"
       for n in (1, 2, 3) for kind in ("BatchNorm", "Conv", "ConvTranspose", "InstanceNorm")},
    "LazyLinear": f"{NOT_YET}: lazy layer, its parameters come from the first forward",
}

# Static and class methods ("Class.method") of those classes, public ones, that are not modelled.
LEFT_OUT_METHODS: dict[str, str] = {}

# Functions modelled as the composites they are: the model runs their ops one by one, each with
# its own autograd rule (so no rule of their own); their kept bytes are checked where named.
COMPOSITE_FUNCTIONS: dict[str, str] = {
    "multi_head_attention_forward": "nn.MultiheadAttention's implementation, run op by op "
                                    "(catalog/attention_ops.py): tests/test_transformer_saved.py",
}

# Names torch.nn.functional imports from elsewhere that are no operation on tensors.
NOT_FUNCTIONS: dict[str, str] = {
    "Optional": "typing.Optional, imported for annotations",
    "boolean_dispatch": "torch._jit_internal helper that builds the *_with_indices dispatchers",
    "handle_torch_function": "__torch_function__ protocol helper",
    "has_torch_function": "__torch_function__ protocol helper",
    "has_torch_function_unary": "__torch_function__ protocol helper",
    "has_torch_function_variadic": "__torch_function__ protocol helper",
    "assert_int_or_pair": "argument checker of fold/unfold, not an op",
}

# Public functions of torch.nn.functional without a shape rule and an autograd rule.
LEFT_OUT_FUNCTIONS: dict[str, str] = {
    "conv_tbc": f"{NOT_YET}: time-batch-channel convolution, fairseq-era, no current model library calls it",
    "grouped_mm": f"{NOT_YET}: grouped matmul of mixture-of-experts kernels (torch 2.8+)",
    "scaled_grouped_mm": f"{NOT_YET}: float8 grouped matmul (torch 2.8+), needs a float8 dtype model",
    "scaled_mm": f"{NOT_YET}: float8 matmul with scales (torch 2.8+), needs a float8 dtype model",
    "linear_cross_entropy": f"{NOT_YET}: the chunked linear + cross-entropy (torch 2.13); its layer "
                            "nn.LinearCrossEntropyLoss is modelled",
}
