"""Linear layers: Linear, Bilinear, Identity."""

from __future__ import annotations

from vramlint.frontends.torch.catalog import LayerArgs, LayerParts, LayerSpec, register


def linear(a: LayerArgs) -> LayerParts:
    i, o = a.dim(a.in_features, "in_features"), a.dim(a.out_features, "out_features")
    return LayerParts(params={"weight": (o, i), "bias": (o,) if a.flag(a.bias) else None})


def bilinear(a: LayerArgs) -> LayerParts:
    i1, i2 = a.dim(a.in1_features, "in1_features"), a.dim(a.in2_features, "in2_features")
    o = a.dim(a.out_features, "out_features")
    return LayerParts(params={"weight": (o, i1, i2), "bias": (o,) if a.flag(a.bias) else None})


LINEAR_SIG = "in_features, out_features, bias=True, device=None, dtype=None"
register(
    LayerSpec("Linear", LINEAR_SIG, linear),
    # MultiheadAttention's out_proj is this subclass.
    LayerSpec("NonDynamicallyQuantizableLinear", LINEAR_SIG, linear, base="Linear",
              module="torch.nn.modules.linear"),
    LayerSpec("Bilinear", "in1_features, in2_features, out_features, bias=True, device=None, dtype=None", bilinear),
    LayerSpec("Identity", "*args, **kwargs"),
)
