"""Recurrent layers: RNN, LSTM (proj_size), GRU and their Cells."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vramlint.engine.values import Unknown
from vramlint.frontends.torch import shapes
from vramlint.frontends.torch.catalog import (
    LayerArgs,
    LayerParts,
    LayerSpec,
    first_input,
    forward_rule,
    register,
)
from vramlint.frontends.torch.tensors import TensorValue, shape_text

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def rnn_rule(kind: str) -> Callable[[LayerArgs], LayerParts]:
    def rule(a: LayerArgs) -> LayerParts:
        inp, hid = a.dim(a.input_size, "input_size"), a.dim(a.hidden_size, "hidden_size")
        layers = a.dim(a.num_layers, "num_layers")
        proj = a.dim(a.values.get("proj_size", 0), "proj_size")
        if not isinstance(layers, int):
            a.flag(layers)  # raises: the number of layers decides which parameters exist
        dirs = 2 if a.flag(a.bidirectional) else 1
        bias = a.flag(a.bias)
        gate = GATES[kind] * hid
        real_hidden = proj if a.flag(proj > 0) else hid
        params: dict[str, tuple[object, ...] | None] = {}
        for layer in range(layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                layer_in = inp if layer == 0 else real_hidden * dirs
                params["weight_ih" + sfx] = (gate, layer_in)
                params["weight_hh" + sfx] = (gate, real_hidden)
                if bias:
                    params["bias_ih" + sfx] = (gate,)
                    params["bias_hh" + sfx] = (gate,)
                if a.flag(proj > 0):
                    params["weight_hr" + sfx] = (proj, hid)
        return LayerParts(params=params, attrs={"mode": kind})

    return rule


def cell_rule(kind: str) -> Callable[[LayerArgs], LayerParts]:
    def rule(a: LayerArgs) -> LayerParts:
        inp, hid = a.dim(a.input_size, "input_size"), a.dim(a.hidden_size, "hidden_size")
        gate = GATES[kind] * hid
        bias = a.flag(a.bias)
        return LayerParts(params={
            "weight_ih": (gate, inp), "weight_hh": (gate, hid),
            "bias_ih": (gate,) if bias else None, "bias_hh": (gate,) if bias else None,
        })

    return rule


RNN = ("input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0, "
       "bidirectional=False, device=None, dtype=None")
LSTM = ("input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False, "
        "proj_size=0, device=None, dtype=None")
GRU = ("input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False, "
       "device=None, dtype=None")
register(
    LayerSpec("RNNBase", "*args, **kwargs", module="torch.nn.modules.rnn", abstract=True),
    LayerSpec("RNN", RNN, rnn_rule("RNN"), base="RNNBase"),
    LayerSpec("LSTM", LSTM, rnn_rule("LSTM"), base="RNNBase"),
    LayerSpec("GRU", GRU, rnn_rule("GRU"), base="RNNBase"),
    LayerSpec("RNNCellBase", "*args, **kwargs", module="torch.nn.modules.rnn", abstract=True),
    LayerSpec("RNNCell", "input_size, hidden_size, bias=True, nonlinearity='tanh', device=None, dtype=None",
              cell_rule("RNN"), base="RNNCellBase"),
    LayerSpec("LSTMCell", "input_size, hidden_size, bias=True, device=None, dtype=None", cell_rule("LSTM"),
              base="RNNCellBase"),
    LayerSpec("GRUCell", "input_size, hidden_size, bias=True, device=None, dtype=None", cell_rule("GRU"),
              base="RNNCellBase"),
)


# ---------------------------------------------------------------------- forward (output shapes)
@forward_rule("RNN", "LSTM", "GRU", saves="rnn")
def rnn_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = shapes.as_tensor(ev, first_input(a, k, "input"), m.cls.name)
    if not isinstance(x, TensorValue):
        return x
    at = m.attrs
    shape = x.shape
    assert isinstance(shape, tuple)
    if len(shape) not in (2, 3):
        return shapes.mismatch(ev, f"{m.cls.name} expects a 2-D or 3-D input, got shape {shape_text(shape)}")
    hidden, proj = at.get("hidden_size"), at.get("proj_size", 0) or 0
    dirs = 2 if at.get("bidirectional") else 1
    out_size = (proj if proj else hidden) * dirs
    layers = at.get("num_layers", 1) * dirs
    if len(shape) == 2:
        seq, batch = shape[0], None
    elif at.get("batch_first"):
        batch, seq = shape[0], shape[1]
    else:
        seq, batch = shape[0], shape[1]
    if len(shape) == 2:
        output = TensorValue((seq, out_size), x.dtype)
    elif at.get("batch_first"):
        output = TensorValue((batch, seq, out_size), x.dtype)
    else:
        output = TensorValue((seq, batch, out_size), x.dtype)
    lead = (layers,) if batch is None else (layers, batch)
    h = TensorValue((*lead, proj if proj else hidden), x.dtype)
    if m.cls.name == "LSTM" or at.get("mode") == "LSTM":
        return (output, (h, TensorValue((*lead, hidden), x.dtype)))
    return (output, h)


def cell_forward(ev: Any, m: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    x = shapes.as_tensor(ev, first_input(a, k, "input"), m.cls.name)
    if not isinstance(x, TensorValue):
        return x
    assert isinstance(x.shape, tuple)
    h = TensorValue((*x.shape[:-1], m.attrs.get("hidden_size")), x.dtype)
    if m.cls.name == "LSTMCell":
        return (h, TensorValue(h.shape, x.dtype))
    return h


_ = Unknown


forward_rule("RNNCell", saves="rnncell")(cell_forward)
forward_rule("LSTMCell", saves="lstmcell")(cell_forward)
forward_rule("GRUCell", saves="grucell")(cell_forward)
