"""Every catalog layer built with simple arguments and called on inputs of every rank, generated
from torch's own signatures: for tests/test_specs.py (output shapes against torch) and
tests/test_fuzz.py (ranks and dtypes).

A constructor's required arguments come from `ARG_VALUES`, by parameter name, sized for inputs
whose dimensions are all 4 (so that torch accepts many cases); the few layers that need more
than their required arguments name them in `CONSTRUCTOR_OVERRIDES`. A forward's required
arguments are the case's input, except those that must be something else (class targets,
indices, lengths): `argument_variants` gives, per case, the few ways to pass them.

Everything is source text, evaluated as it is by real torch and by vramlint.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import pkgutil
from typing import Any

from vramlint.frontends.torch import catalog
from vramlint.frontends.torch.catalog import CATALOG, LayerSpec, parse_signature

for _family in pkgutil.iter_modules(catalog.__path__):  # each family file registers its specs and rules
    importlib.import_module(f"{catalog.__name__}.{_family.name}")

# Inputs: every dim 4 (channels and features match the constructors), and distinct sizes.
SHAPES: list[tuple[int, ...]] = [(4,) * rank for rank in range(6)] + [(2, 4, 6, 8, 10)[:rank] for rank in range(1, 6)]

# A required constructor argument's value, by its name.
ARG_VALUES = {
    "in_channels": "4", "out_channels": "3", "in_features": "4", "out_features": "3", "in1_features": "4",
    "in2_features": "4", "num_features": "4", "num_channels": "4", "num_groups": "2", "normalized_shape": "4",
    "kernel_size": "2", "output_size": "3", "padding": "1", "value": "0.5", "upscale_factor": "2",
    "downscale_factor": "2", "groups": "2", "dim": "1", "unflattened_size": "(2, 2)", "size": "2",
    "threshold": "0.1", "norm_type": "2", "num_embeddings": "10", "embedding_dim": "3", "input_size": "4",
    "hidden_size": "3", "embed_dim": "4", "num_heads": "2", "d_model": "4", "nhead": "2", "n_classes": "10",
    "cutoffs": "[2]", "num_classes": "5", "num_layers": "1",
    "encoder_layer": "nn.TransformerEncoderLayer(4, 2, 8)", "decoder_layer": "nn.TransformerDecoderLayer(4, 2, 8)",
}
# Layers whose required arguments are not enough (or whose defaults do not fit 4-sized inputs).
CONSTRUCTOR_OVERRIDES = {
    "FractionalMaxPool2d": "nn.FractionalMaxPool2d(2, output_size=2)",
    "FractionalMaxPool3d": "nn.FractionalMaxPool3d(2, output_size=2)",
    "Transformer": "nn.Transformer(4, 2, 1, 1, 8)",
    "TransformerEncoder": "nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 1, enable_nested_tensor=False)",
    "Sequential": "nn.Sequential(nn.Linear(4, 3), nn.ReLU())",
    **{n: f"nn.{n}(scale_factor=2)" for n in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")},
}
# Layers no generated case can call: the parametrizations, which only torch.nn.utils'
# weight_norm / spectral_norm / orthogonal build (vramlint's torch.nn.utils.parametrizations does
# not expose these private classes to model code), their forward reading the layer's originals.
NOT_CALLED = {"ParametrizationList": "built by torch.nn.utils.parametrize, called with no input",
              "_Orthogonal": "private: built by parametrizations.orthogonal",
              "_SpectralNorm": "private: built by parametrizations.spectral_norm",
              "_WeightNorm": "private: built by parametrizations.weight_norm"}
# Forward arguments that are not "the input": the ways to pass them, as text of (x, shape).
TARGETS = ("target", "target_", "targets")


def torch_class(torch: Any, spec: LayerSpec) -> type:
    module = torch.nn if spec.module == "torch.nn" else importlib.import_module(spec.module)
    cls = getattr(module, spec.name)
    assert isinstance(cls, type)
    return cls


def source_module(spec: LayerSpec) -> str:
    """How the generated source reaches the layer's class."""
    return "nn" if spec.module == "torch.nn" else spec.module


def constructor(torch: Any, name: str) -> str:
    """`nn.Conv2d(in_channels=4, out_channels=3, kernel_size=2)`: torch's required arguments."""
    if name in CONSTRUCTOR_OVERRIDES:
        return CONSTRUCTOR_OVERRIDES[name]
    spec = CATALOG[name]
    params = _required(inspect.signature(torch_class(torch, spec).__init__))
    if not params and spec.signature != "*args, **kwargs":  # torch's RNNs take (*args, **kwargs)
        params = _required(parse_signature(spec.signature))
    args = [f"{p.name}={ARG_VALUES[p.name]}" for p in params]
    return f"{source_module(spec)}.{name}({', '.join(args)})"


def _required(sig: inspect.Signature) -> list[inspect.Parameter]:
    return [p for p in sig.parameters.values() if p.name != "self" and p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def forward_params(torch: Any, name: str) -> list[str]:
    """The names of the forward's required arguments, in order."""
    return [p.name for p in _required(inspect.signature(torch_class(torch, CATALOG[name]).forward))]


def _choices(param: str, x: str, shape: tuple[int, ...]) -> list[str]:
    if param in TARGETS:  # a float target of the input's shape, or integer class targets
        out = [x, f"torch.ones({shape}, dtype=torch.int64)"]
        if shape:
            out.append(f"torch.ones({shape[:-1]}, dtype=torch.int64)")
        return out
    if param == "indices":  # MaxUnpool: 0 is a valid index everywhere
        return [f"torch.zeros({shape}, dtype=torch.int64)"]
    if param in ("input_lengths", "target_lengths"):  # CTCLoss on [T, N, C]: N lengths, all full
        if len(shape) < 3:
            return [f"torch.tensor({shape[0] if shape else 1})"]
        return [f"torch.full(({shape[1]},), {shape[0] if param == 'input_lengths' else shape[1]})"]
    return [x]


def argument_variants(params: list[str], x: str, shape: tuple[int, ...]) -> list[list[str]]:
    """Each way to call the forward on input `x` (text) of `shape`: a list of argument texts."""
    return [list(args) for args in itertools.product(*(_choices(p, x, shape) for p in params))]


# A few string options, by parameter name, that change what a constructor creates or what its
# forward keeps.
STRING_OPTIONS = {"nonlinearity": ("relu",), "mode": ("sum", "max"), "padding_mode": ("reflect", "circular"),
                  "approximate": ("tanh",)}


def constructor_variants(torch: Any, name: str, skipped_flags: set[str], dtype: str | None = "float16") -> list[str]:
    """The base constructor, then each boolean flag of torch's signature flipped (but
    `skipped_flags`), each string option, and `dtype=` where the constructor takes one."""
    base = constructor(torch, name)
    out = [base]
    try:
        params = list(inspect.signature(torch_class(torch, CATALOG[name]).__init__).parameters.values())
    except (TypeError, ValueError):
        return out
    if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self" for p in params):
        params = list(parse_signature(CATALOG[name].signature).parameters.values())  # torch's RNNs: (*args, **kwargs)
    close = base[:-1] + (", " if not base.endswith("()") else "")
    for p in params:
        if isinstance(p.default, bool) and p.name not in skipped_flags:
            out.append(f"{close}{p.name}={not p.default})")
        for option in STRING_OPTIONS.get(p.name, ()) if isinstance(p.default, str) else ():
            out.append(f"{close}{p.name}={option!r})")
        if p.name == "dtype" and dtype is not None:
            out.append(f"{close}dtype=torch.{dtype})")
    return out
