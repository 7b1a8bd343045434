"""Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d (groups, bias)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    LayerArgs,
    LayerParts,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)


def conv_rule(nd: int, transposed: bool) -> Callable[[LayerArgs], LayerParts]:
    def rule(a: LayerArgs) -> LayerParts:
        cin, cout = a.dim(a.in_channels, "in_channels"), a.dim(a.out_channels, "out_channels")
        groups = a.dim(a.groups, "groups")
        k = tuple(a.dim(x, "kernel_size") for x in a.ntuple(a.kernel_size, nd))
        if isinstance(groups, int) and groups <= 0:
            raise a.ev.raise_error("ValueError", "groups must be a positive integer")
        if isinstance(groups, int) and isinstance(cin, int) and cin % groups:
            raise a.ev.raise_error("ValueError", "in_channels must be divisible by groups")
        if isinstance(groups, int) and isinstance(cout, int) and cout % groups:
            raise a.ev.raise_error("ValueError", "out_channels must be divisible by groups")
        weight = (cin, cout // groups, *k) if transposed else (cout, cin // groups, *k)
        padding = a.padding if isinstance(a.padding, str) else a.ntuple(a.padding, nd)
        attrs = {
            "kernel_size": k,
            "stride": a.ntuple(a.stride, nd),
            "padding": padding,
            "dilation": a.ntuple(a.dilation, nd),
            "transposed": transposed,
            "output_padding": a.ntuple(a.values.get("output_padding", 0), nd),
        }
        return LayerParts(params={"weight": weight, "bias": (cout,) if a.flag(a.bias) else None}, attrs=attrs)

    return rule


CONV = ("in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, "
        "padding_mode='zeros', device=None, dtype=None")
CONV_T = ("in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True, "
          "dilation=1, padding_mode='zeros', device=None, dtype=None")

register(
    LayerSpec("_ConvNd", "*args, **kwargs", module="torch.nn.modules.conv", abstract=True),
    LayerSpec("_ConvTransposeNd", "*args, **kwargs", base="_ConvNd", module="torch.nn.modules.conv", abstract=True),
    LayerSpec("Conv1d", CONV, conv_rule(1, False), base="_ConvNd"),
    LayerSpec("Conv2d", CONV, conv_rule(2, False), base="_ConvNd"),
    LayerSpec("Conv3d", CONV, conv_rule(3, False), base="_ConvNd"),
    LayerSpec("ConvTranspose1d", CONV_T, conv_rule(1, True), base="_ConvTransposeNd"),
    LayerSpec("ConvTranspose2d", CONV_T, conv_rule(2, True), base="_ConvTransposeNd"),
    LayerSpec("ConvTranspose3d", CONV_T, conv_rule(3, True), base="_ConvTransposeNd"),
)


# ---------------------------------------------------------------------- forward (output shapes)
def _conv_forward(nd: int, transposed: bool) -> Any:
    def rule(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
        x = first_input(a, k, "input")
        at = m.attrs
        if transposed:
            return shapes.conv_transpose(ev, x, nd, at.get("out_channels"), at.get("kernel_size"), at.get("stride"),
                                         at.get("padding"), at.get("output_padding"), at.get("dilation"), m.cls.name)
        return shapes.conv(ev, x, nd, at.get("out_channels"), at.get("kernel_size"), at.get("stride"),
                           at.get("padding"), at.get("dilation"), m.cls.name)

    return rule


for _nd in (1, 2, 3):
    forward_rule(f"Conv{_nd}d", saves="conv")(_conv_forward(_nd, False))
    forward_rule(f"ConvTranspose{_nd}d", saves="conv")(_conv_forward(_nd, True))
