"""All of torch.nn, enumerated from the torch in the venv: every module, its static and class
methods, and every public torch.nn.functional function is modelled, or left out on purpose in
tests/support/torch_api.py with its reason.

"Modelled" is checked, not declared:
- a module: a layer spec whose constructor rule gives torch's parameters and buffers (names,
  shapes, dtypes, trainable) for generated constructor arguments (the required ones, then each
  boolean flag flipped, a few string options and a dtype), here; and a forward rule giving
  torch's output shapes (tests/test_specs.py) that says what autograd keeps
  (tests/test_module_saved.py checks those bytes against torch);
- a function: a shape rule giving torch's output shapes on generated inputs (here), and an
  autograd rule of the memory model (a rule, a view, not differentiable, or declared assumed).
"""

from __future__ import annotations

import inspect
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest

import vramlint
from tests.support.layer_cases import NOT_CALLED, SHAPES, constructor_variants
from tests.support.torch_api import (
    COMPOSITE_FUNCTIONS,
    LEFT_OUT_FUNCTIONS,
    LEFT_OUT_METHODS,
    LEFT_OUT_MODULES,
    NOT_FUNCTIONS,
)
from tests.test_catalog import _tree_tensors
from tests.test_specs import assert_torchs_output_shapes
from vramlint.analysis.api import get_loader, search_paths
from vramlint.engine.values import MISSING, Unknown
from vramlint.frontends.torch.catalog import CATALOG, FORWARD, RAISES, SAVES
from vramlint.frontends.torch.functional import FUNCTIONS
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.memory import autograd_rules

torch = pytest.importorskip("torch")
F = torch.nn.functional


# ---------------------------------------------------------------------- modules
def test_every_module_is_modelled_or_left_out() -> None:
    names = set(torch.nn.modules.__all__)
    missing = sorted(n for n in names - set(LEFT_OUT_MODULES)
                     if n not in CATALOG or (n not in FORWARD and not CATALOG[n].abstract))
    assert not missing, f"torch.nn modules the catalog does not model: {missing}"
    assert not set(LEFT_OUT_MODULES) - names, f"stale: {sorted(set(LEFT_OUT_MODULES) - names)}"
    assert not set(LEFT_OUT_MODULES) & set(CATALOG), "a module both modelled and left out"


def _public_methods() -> list[str]:
    """"Class.method" for each public static or class method torch.nn's modules define."""
    out = []
    for name in torch.nn.modules.__all__:
        cls = getattr(torch.nn, name)
        out += [f"{name}.{m}" for m, v in vars(cls).items()
                if isinstance(v, (staticmethod, classmethod)) and not m.startswith("_")]
    return sorted(out)


def test_every_static_and_class_method_is_modelled_or_left_out(tmp_path: Path) -> None:
    wanted = [m for m in _public_methods() if m.split(".")[0] not in LEFT_OUT_MODULES]
    checked = [m for m in wanted if m not in LEFT_OUT_METHODS]
    assert "Embedding.from_pretrained" in checked  # the enumeration sees them
    lines = ["import torch.nn as nn"] + [f"m{i} = nn.{m}" for i, m in enumerate(checked)]
    mod, _, _ = get_loader(search_paths(vramlint.Settings())).load_main(
        str(tmp_path / "methods.py"), "\n".join(lines) + "\n", "enumeration_methods")
    missing = [m for i, m in enumerate(checked) if isinstance(mod.ns.get(f"m{i}", MISSING), (Unknown, type(MISSING)))]
    assert not missing, f"static/class methods of torch.nn the catalog does not model: {missing}"
    stale = sorted(set(LEFT_OUT_METHODS) - set(wanted))
    assert not stale, f"stale: {stale}"


# ---------------------------------------------------------------------- parameters, generated
# Flags whose flip torch rejects with the generated arguments, or that change no parameter.
SKIPPED_FLAGS = {"inplace", "return_indices", "ceil_mode", "count_include_pad", "_freeze", "sparse",
                 "scale_grad_by_freq", "include_last_offset", "batch_first", "norm_first", "log_input", "full",
                 "swap", "log_target", "zero_infinity", "keepdim", "enable_nested_tensor", "mask_check"}


def _torch_tensors(m: Any) -> set[tuple[str, str, tuple[int, ...], str, bool]]:
    out = set()
    for prefix, sub in m.named_modules():
        for kind, items in (("param", sub.named_parameters(recurse=False)), ("buffer", sub.named_buffers(recurse=False))):
            for n, t in items:
                out.add((kind, f"{prefix}.{n}" if prefix else n, tuple(t.shape), str(t.dtype).removeprefix("torch."),
                         kind == "param" and t.requires_grad))
    return out


# Generated constructors vramlint gets wrong, each exactly (the test fails if one becomes right).
PARAM_GAPS: dict[str, str] = {}
HEADER = ("import torch\nimport torch.nn as nn\nimport torch.nn.utils.parametrize\n"
          "import torch.nn.utils.parametrizations\n")
BUILT = sorted(n for n in CATALOG if not CATALOG[n].abstract and n not in NOT_CALLED)


@pytest.mark.parametrize("name", BUILT)
def test_generated_constructors_make_torchs_parameters(name: str, tmp_path: Path) -> None:
    variants = constructor_variants(torch, name, SKIPPED_FLAGS)
    mod = types.ModuleType("enumeration_case")
    sys.modules[mod.__name__] = mod
    expected: dict[int, Any] = {}
    try:
        exec(compile(HEADER, "<header>", "exec"), mod.__dict__)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, text in enumerate(variants):
                try:
                    expected[i] = _torch_tensors(eval(text, mod.__dict__))
                except Exception:
                    continue  # torch rejects this combination: nothing to compare
    finally:
        del sys.modules[mod.__name__]
    assert 0 in expected, f"torch rejects the base constructor {variants[0]}"
    text = HEADER + "".join(f"m{i} = {variants[i]}\n" for i in expected)
    path = tmp_path / "model.py"
    result = vramlint.analyze_source(str(path), text)
    models = {r.name: r for r in result.models}
    wrong: dict[str, str] = {}
    for i, want in expected.items():
        r = models.get(f"m{i}")
        if r is None or r.tree is None or r.error or r.unknowns:
            wrong[variants[i]] = f"no module ({r.error if r else result.errors} {r.unknowns if r else ''})"
            continue
        got = _tree_tensors(r.tree)
        if got != want:
            wrong[variants[i]] = f"only vramlint {sorted(got - want)}, only torch {sorted(want - got)}"
    known = {v for v in variants if v in PARAM_GAPS}
    fixed = sorted(known - set(wrong))
    assert not fixed, f"known gaps now right, take them out of PARAM_GAPS: {fixed}"
    unexpected = {v: why for v, why in wrong.items() if v not in known}
    assert not unexpected, "\n".join(f"{v}: {why}" for v, why in unexpected.items())
    if known:
        pytest.xfail("; ".join(sorted({PARAM_GAPS[v] for v in known})))


# Flags that change a forward's output (the shapes of every variant are checked, the base
# constructor's in tests/test_specs.py).
FORWARD_FLAGS = SKIPPED_FLAGS - {"return_indices", "ceil_mode", "batch_first", "keepdim", "include_last_offset"}
SHAPED = sorted(n for n in FORWARD if SAVES[n] != RAISES and n not in NOT_CALLED)


@pytest.mark.parametrize("name", SHAPED)
def test_generated_constructor_variants_give_torchs_output_shapes(name: str, tmp_path: Path) -> None:
    """Each variant (flags flipped, string options) of a layer, on inputs of every rank: where
    torch returns, vramlint gives the same shapes (bidirectional, batch_first, return_indices...)."""
    variants = constructor_variants(torch, name, FORWARD_FLAGS, dtype=None)[1:]
    for i, ctor in enumerate(variants):
        try:
            eval(ctor, {"torch": torch, "nn": torch.nn})
        except (ValueError, TypeError):
            continue  # torch rejects the combination (ConvTranspose with padding_mode='reflect')
        try:
            assert_torchs_output_shapes(name, tmp_path / str(i), ctor)
        except AssertionError as err:
            if "no generated case" not in str(err):  # torch rejects this variant on every input
                raise


# ---------------------------------------------------------------------- torch.nn.functional
def public_functions() -> list[str]:
    return sorted(n for n, v in vars(F).items() if not n.startswith("_") and callable(v)
                  and not isinstance(v, type) and not inspect.ismodule(v))


def _autograd_rule(name: str) -> str | None:
    """The memory model's decision for F.name: its op, if it has a rule, is a view, or is not
    differentiable."""
    op, _ = autograd_rules.canonical(f"torch.nn.functional.{name}", None, {})
    known = op in autograd_rules.RULES or op in autograd_rules.VIEWS or op in autograd_rules.NOT_DIFFERENTIABLE
    return op if known else None


def test_every_functional_is_modelled_or_left_out() -> None:
    names = set(public_functions()) - set(NOT_FUNCTIONS)
    no_shape = sorted(n for n in names - set(LEFT_OUT_FUNCTIONS) if n not in FUNCTIONS)
    no_rule = sorted(n for n in names - set(LEFT_OUT_FUNCTIONS) - set(COMPOSITE_FUNCTIONS) if _autograd_rule(n) is None)
    assert not no_shape, f"torch.nn.functional functions without a shape rule: {no_shape}"
    assert not no_rule, f"torch.nn.functional functions without an autograd rule: {no_rule}"
    stale = sorted((set(LEFT_OUT_FUNCTIONS) | set(NOT_FUNCTIONS) | set(COMPOSITE_FUNCTIONS)) - set(public_functions()))
    assert not stale, f"stale: {stale}"
    assert not set(LEFT_OUT_FUNCTIONS) & set(FUNCTIONS), "a function both modelled and left out"


def _target(shape: tuple[int, ...]) -> str:
    """Class indices for an input of `shape` ([N, C, ...] -> [N, ...]; [C] -> [])."""
    return f"torch.zeros({shape[:1] + shape[2:] if len(shape) > 1 else ()}, dtype=torch.int64)"


def _weight(*dims: int) -> str:
    return f"torch.zeros({dims})"


# How to call each function on input `{x}` (a float tensor of zeros, every shape of SHAPES):
# `{t}` is class indices for it. Where an argument must be sized, it fits dims of 4.
ELEMENTWISE = ("relu", "relu_", "relu6", "elu", "elu_", "selu", "selu_", "celu", "celu_", "gelu", "silu", "mish",
               "hardswish", "hardsigmoid", "sigmoid", "tanh", "leaky_relu", "leaky_relu_", "hardtanh",
               "hardtanh_", "softplus", "softsign", "logsigmoid", "tanhshrink", "hardshrink", "softshrink",
               "rrelu", "rrelu_", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
               "feature_alpha_dropout", "normalize", "gumbel_softmax", "instance_norm")
LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
          "binary_cross_entropy_with_logits", "kl_div", "cross_entropy", "soft_margin_loss", "poisson_nll_loss",
          "hinge_embedding_loss", "multilabel_soft_margin_loss")
CALLS: dict[str, tuple[str, ...]] = {
    **{n: (f"F.{n}({{x}})",) for n in ELEMENTWISE},
    **{n: (f"F.{n}({{x}}, {{x}})", f"F.{n}({{x}}, {{x}}, reduction='none')") for n in LOSSES},
    "threshold": ("F.threshold({x}, 0.1, 0.0)",), "threshold_": ("F.threshold_({x}, 0.1, 0.0)",),
    "prelu": ("F.prelu({x}, torch.ones(1))",),
    **{n: (f"F.{n}({{x}}, dim=-1)", f"F.{n}({{x}}, 0, dtype=torch.float64)") for n in ("softmax", "log_softmax",
                                                                                      "softmin")},
    "glu": ("F.glu({x})",),
    "layer_norm": ("F.layer_norm({x}, [4])",), "rms_norm": ("F.rms_norm({x}, [4])",),
    "group_norm": ("F.group_norm({x}, 2)",), "local_response_norm": ("F.local_response_norm({x}, 2)",),
    "batch_norm": ("F.batch_norm({x}, None, None, training=True)",),
    "channel_shuffle": ("F.channel_shuffle({x}, 2)",), "native_channel_shuffle": ("F.native_channel_shuffle({x}, 2)",),
    "pixel_shuffle": ("F.pixel_shuffle({x}, 2)",), "pixel_unshuffle": ("F.pixel_unshuffle({x}, 2)",),
    "linear": (f"F.linear({{x}}, {_weight(3, 4)})", f"F.linear({{x}}, {_weight(4)})"),
    "bilinear": (f"F.bilinear({{x}}, {{x}}, {_weight(3, 4, 4)})",),
    **{f"conv{n}d": (f"F.conv{n}d({{x}}, {_weight(3, 4, *(2,) * n)})",
                     f"F.conv{n}d({{x}}, {_weight(4, 2, *(3,) * n)}, None, 2, 1, 1, 2)") for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": (f"F.conv_transpose{n}d({{x}}, {_weight(4, 3, *(2,) * n)})",
                               f"F.conv_transpose{n}d({{x}}, {_weight(4, 3, *(2,) * n)}, None, 2, 0, 1, 2)")
       for n in (1, 2, 3)},
    **{f"max_pool{n}d": (f"F.max_pool{n}d({{x}}, 2)", f"F.max_pool{n}d({{x}}, 3, 1, 1, return_indices=True)")
       for n in (1, 2, 3)},
    **{f"max_pool{n}d_with_indices": (f"F.max_pool{n}d_with_indices({{x}}, 2)",) for n in (1, 2, 3)},
    **{f"avg_pool{n}d": (f"F.avg_pool{n}d({{x}}, 2)", f"F.avg_pool{n}d({{x}}, 3, 2, 1, True)") for n in (1, 2, 3)},
    **{f"adaptive_avg_pool{n}d": (f"F.adaptive_avg_pool{n}d({{x}}, 3)",) for n in (1, 2, 3)},
    **{f"adaptive_max_pool{n}d": (f"F.adaptive_max_pool{n}d({{x}}, 3)", f"F.adaptive_max_pool{n}d({{x}}, 1, True)")
       for n in (1, 2, 3)},
    **{f"adaptive_max_pool{n}d_with_indices": (f"F.adaptive_max_pool{n}d_with_indices({{x}}, 3)",) for n in (1, 2, 3)},
    **{f"lp_pool{n}d": (f"F.lp_pool{n}d({{x}}, 2, 2)",) for n in (1, 2, 3)},
    **{f"max_unpool{n}d": (f"F.max_unpool{n}d({{x}}, torch.zeros_like({{x}}, dtype=torch.int64), 2)",)
       for n in (1, 2, 3)},
    **{f"fractional_max_pool{n}d": (f"F.fractional_max_pool{n}d({{x}}, 2, output_ratio={(0.5,) * n})",
                                    f"F.fractional_max_pool{n}d({{x}}, 2, output_size=2, return_indices=True)")
       for n in (2, 3)},
    **{f"fractional_max_pool{n}d_with_indices": (f"F.fractional_max_pool{n}d_with_indices({{x}}, 2, output_size=2)",)
       for n in (2, 3)},
    "scaled_dot_product_attention": ("F.scaled_dot_product_attention({x}, {x}, {x})",),
    "embedding": ("F.embedding({x}.long(), torch.zeros(10, 3))",),
    "embedding_bag": ("F.embedding_bag({x}.long(), torch.zeros(10, 3))",
                      "F.embedding_bag({x}.long().flatten(), torch.zeros(10, 3), torch.tensor([0, 2]))"),
    "one_hot": ("F.one_hot({x}.long(), 3)",),
    "interpolate": ("F.interpolate({x}, scale_factor=2)", "F.interpolate({x}, size=5, mode='nearest')"),
    "upsample": ("F.upsample({x}, scale_factor=2)",),
    "upsample_nearest": ("F.upsample_nearest({x}, scale_factor=2)",),
    "upsample_bilinear": ("F.upsample_bilinear({x}, scale_factor=2)",),
    "pad": ("F.pad({x}, (1, 2))", "F.pad({x}, (1, 1, 2, 0), mode='reflect')"),
    "unfold": ("F.unfold({x}, 2)",), "fold": ("F.fold({x}, (3, 3), 2)",),
    "nll_loss": ("F.nll_loss({x}, {t})", "F.nll_loss({x}, {t}, reduction='none')"),
    "cosine_similarity": ("F.cosine_similarity({x}, {x})",),
    "pairwise_distance": ("F.pairwise_distance({x}, {x}, keepdim=True)",),
    "pdist": ("F.pdist({x})",),
    "cosine_embedding_loss": ("F.cosine_embedding_loss({x}, {x}, torch.ones(4))",
                              "F.cosine_embedding_loss({x}, {x}, torch.ones(4), reduction='none')"),
    "margin_ranking_loss": ("F.margin_ranking_loss({x}, {x}, {x})",
                            "F.margin_ranking_loss({x}, {x}, {x}, reduction='none')"),
    "triplet_margin_loss": ("F.triplet_margin_loss({x}, {x}, {x})",
                            "F.triplet_margin_loss({x}, {x}, {x}, reduction='none')"),
    "triplet_margin_with_distance_loss": ("F.triplet_margin_with_distance_loss({x}, {x}, {x})",
                                          "F.triplet_margin_with_distance_loss({x}, {x}, {x}, reduction='none')"),
    "gaussian_nll_loss": ("F.gaussian_nll_loss({x}, {x}, torch.ones_like({x}))",
                          "F.gaussian_nll_loss({x}, {x}, torch.ones_like({x}), reduction='none')"),
    "multi_margin_loss": ("F.multi_margin_loss({x}, {t})", "F.multi_margin_loss({x}, {t}, reduction='none')"),
    "multilabel_margin_loss": ("F.multilabel_margin_loss({x}, {x}.long())",
                               "F.multilabel_margin_loss({x}, {x}.long(), reduction='none')"),
    "ctc_loss": ("F.ctc_loss({x}, torch.ones(4, 2, dtype=torch.int64), torch.full((4,), 4), torch.full((4,), 2))",
                 "F.ctc_loss({x}, torch.ones(4, 2, dtype=torch.int64), torch.full((4,), 4), torch.full((4,), 2), "
                 "reduction='none')"),
    "affine_grid": ("F.affine_grid(torch.zeros(4, 2, 3), [4, 3, 5, 6], align_corners=False)",
                    "F.affine_grid(torch.zeros(2, 3, 4), [2, 3, 4, 5, 6], align_corners=False)"),
    "grid_sample": ("F.grid_sample({x}, torch.zeros(4, 5, 6, 2), align_corners=False)",
                    "F.grid_sample({x}, torch.zeros(4, 2, 5, 6, 3), align_corners=False)"),
}


def _shapes(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return tuple(_shapes(e) for e in v)
    if isinstance(v, torch.Tensor):
        return (tuple(v.shape), str(v.dtype).removeprefix("torch."))
    if isinstance(v, TensorValue):
        return (tuple(v.shape), v.dtype) if isinstance(v.shape, tuple) else v.shape
    return v


MODELLED_FUNCTIONS = sorted(set(public_functions()) - set(NOT_FUNCTIONS) - set(LEFT_OUT_FUNCTIONS)
                           - set(COMPOSITE_FUNCTIONS))


def test_every_modelled_function_has_generated_calls() -> None:
    assert not set(MODELLED_FUNCTIONS) - set(CALLS), sorted(set(MODELLED_FUNCTIONS) - set(CALLS))


@pytest.mark.parametrize("name", sorted(set(MODELLED_FUNCTIONS) & set(CALLS)))
def test_functional_gives_torchs_output_shapes(name: str, tmp_path: Path) -> None:
    """Each generated call on every input shape: where torch returns, vramlint gives the same
    shapes and dtypes."""
    calls = [(tpl.format(x=f"x{i}", t=_target(shape)), shape) for tpl in CALLS[name] for i, shape in enumerate(SHAPES)]
    ns: dict[str, Any] = {"torch": torch, "F": F}
    expected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call, _ in calls:
            for i, s in enumerate(SHAPES):
                ns[f"x{i}"] = torch.zeros(s)  # fresh: in-place calls change their input
            try:
                torch.manual_seed(0)
                expected.append(_shapes(eval(call, ns)))
            except Exception:
                expected.append(None)
    lines = ["import torch", "import torch.nn.functional as F"]
    lines += [f"x{i} = torch.zeros({shape})" for i, shape in enumerate(SHAPES)]
    lines += [f"y{j} = {call}" for j, (call, _) in enumerate(calls)]
    mod, _, _ = get_loader(search_paths(vramlint.Settings())).load_main(
        str(tmp_path / f"{name}.py"), "\n".join(lines) + "\n", f"enumeration_f_{name}")
    compared = [(f"{call} on {list(shape)}", want, _shapes(mod.ns.get(f"y{j}", MISSING)))
                for j, ((call, shape), want) in enumerate(zip(calls, expected, strict=True)) if want is not None]
    assert compared, f"torch accepts no generated call of F.{name}"
    wrong = [f"{call}: torch {want}, vramlint {got!r}" + (f" ({got.reason})" if isinstance(got, Unknown) else "")
             for call, want, got in compared if got != want]
    assert not wrong, "\n".join(wrong)
