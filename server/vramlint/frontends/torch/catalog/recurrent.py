"""Recurrent layers: RNN, LSTM (proj_size), GRU and their Cells."""

from __future__ import annotations

from collections.abc import Callable

from vramlint.frontends.torch.catalog import LayerArgs, LayerParts, LayerSpec, register

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
    LayerSpec("RNNBase", "*args, **kwargs", module="torch.nn.modules.rnn"),
    LayerSpec("RNN", RNN, rnn_rule("RNN"), base="RNNBase"),
    LayerSpec("LSTM", LSTM, rnn_rule("LSTM"), base="RNNBase"),
    LayerSpec("GRU", GRU, rnn_rule("GRU"), base="RNNBase"),
    LayerSpec("RNNCellBase", "*args, **kwargs", module="torch.nn.modules.rnn"),
    LayerSpec("RNNCell", "input_size, hidden_size, bias=True, nonlinearity='tanh', device=None, dtype=None",
              cell_rule("RNN"), base="RNNCellBase"),
    LayerSpec("LSTMCell", "input_size, hidden_size, bias=True, device=None, dtype=None", cell_rule("LSTM"),
              base="RNNCellBase"),
    LayerSpec("GRUCell", "input_size, hidden_size, bias=True, device=None, dtype=None", cell_rule("GRU"),
              base="RNNCellBase"),
)
