"""Recurrent layers: SimpleRNN, LSTM, GRU (`reset_after`), and the wrappers Bidirectional and
TimeDistributed."""

from __future__ import annotations

import math
from typing import Any

from vramlint.engine.values import Args, Instance, Kwargs, Unknown
from vramlint.frontends.keras.catalog import (
    KArgs,
    KerasLayerSpec,
    Weight,
    ones,
    op,
    register,
    shape_mismatch,
    spec_name,
    tensor_in,
)
from vramlint.frontends.keras.layer import is_keras, kstate
from vramlint.frontends.torch.tensors import TensorValue, shape_text

GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
RNN_SIG = ("units, activation='tanh', {extra}use_bias=True, kernel_initializer='glorot_uniform', "
           "recurrent_initializer='orthogonal', bias_initializer='zeros', {forget}kernel_regularizer=None, "
           "recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, "
           "recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, "
           "return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False, "
           "{tail}**kwargs")


def rnn_weights(a: KArgs, shape: Any) -> list[Weight]:
    if not isinstance(shape, tuple) or len(shape) != 3:
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: expected an input of rank 3 (batch, timesteps, "
                                             f"features), got {shape_text(shape)}")
    features = shape[-1]
    if features is None:
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: the last dimension of the input should be defined")
    f, u = a.size(features, "features"), a.size(a.units, "units")
    g = GATES[spec_name(a.owner)] * u
    w: list[Weight] = [("kernel", (f, g), True), ("recurrent_kernel", (u, g), True)]
    if a.use_bias:
        # GRU with reset_after (Keras's default) has separate input and recurrent biases.
        w.append(("bias", (2, g) if a.values.get("reset_after") else (g,), True))
    return w


def rnn_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], layer.cls.name)
    assert isinstance(x.shape, tuple)
    if len(x.shape) != 3:
        raise shape_mismatch(ev, layer.cls.name, f"expected an input of rank 3, got {shape_text(x.shape)}")
    units = layer.attrs.get("units")
    b, t = x.shape[0], x.shape[1]
    seq = TensorValue((b, t, units) if layer.attrs.get("return_sequences") else (b, units), x.dtype)
    states = [TensorValue((b, units), x.dtype) for _ in range(2 if spec_name(layer) == "LSTM" else 1)]
    result: Any = [seq, *states] if layer.attrs.get("return_state") else seq
    steps = b * t if isinstance(b, int) and isinstance(t, int) else None
    return _recurrent_op(ev, layer, x, result, GATES[spec_name(layer)], units, steps)


def _recurrent_op(ev: Any, layer: Instance, x: TensorValue, result: Any, gates: int, hidden: Any,
                  steps: Any) -> Any:
    """The layer as one op for the memory model, whose rule for a cuDNN recurrent layer keeps the
    input, the output and the gates of every step: its weights are read, its shape told."""
    weights = tuple(t for t in kstate(layer).params.values() if isinstance(t, TensorValue))
    return op(ev, "keras.rnn", (x, *weights), result, {"rnn": (gates, hidden, steps)})


def _rnn_spec(name: str) -> KerasLayerSpec:
    extra = "recurrent_activation='sigmoid', " if name != "SimpleRNN" else ""
    forget = "unit_forget_bias=True, " if name == "LSTM" else ""
    tail = "reset_after=True, use_cudnn='auto', " if name == "GRU" else "use_cudnn='auto', " if name == "LSTM" else ""
    return KerasLayerSpec(name, RNN_SIG.format(extra=extra, forget=forget, tail=tail), rnn_weights, rnn_call)


# ---------------------------------------------------------------------- convolutional LSTMs
def conv_lstm_weights(a: KArgs, shape: Any) -> list[Weight]:
    from vramlint.frontends.keras.catalog import channel_axis

    n = int(a.spec.name[-2])
    if not isinstance(shape, tuple) or len(shape) != n + 3:
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: expected an input of rank {n + 3} (batch, time, "
                                             f"...), got {shape_text(shape)}")
    c = shape[1:][channel_axis(a.data_format, n + 2)]
    if c is None:
        raise a.ev.raise_error("ValueError", f"{a.spec.name}: the channel dimension of the input should be defined")
    f = a.size(a.filters, "filters")
    k = a.sizes(a.kernel_size, n, "kernel_size")
    w: list[Weight] = [("kernel", (*k, a.size(c, "channels"), 4 * f), True), ("recurrent_kernel", (*k, f, 4 * f), True)]
    if a.use_bias:
        w.append(("bias", (4 * f,), True))
    return w


def conv_lstm_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    from vramlint.frontends.keras.catalog import conv_length, ints, spatial_of

    x = tensor_in(ev, args[0], layer.cls.name)
    n = int(spec_name(layer)[-2])
    first, spatial = spatial_of(ev, layer, x, n, lead=2)
    assert isinstance(x.shape, tuple)
    ks = ints(ev, layer, "kernel_size", n)
    st = ints(ev, layer, "strides", n, default=1)
    padding = str(layer.attrs.get("padding", "valid")).lower()
    out = [conv_length(s, kk, padding, ss) for s, kk, ss in zip(spatial, ks, st, strict=True)]
    f = layer.attrs.get("filters")
    frame = (f, *out) if first else (*out, f)
    b, t = x.shape[0], x.shape[1]
    seq = TensorValue((b, t, *frame) if layer.attrs.get("return_sequences") else (b, *frame), x.dtype)
    result: Any = [seq, TensorValue((b, *frame), x.dtype), TensorValue((b, *frame), x.dtype)] \
        if layer.attrs.get("return_state") else seq
    # Keras runs the cell step by step: each step's convolutions keep their inputs (recorded as one
    # recurrent op with the LSTM's four gates, a hidden map per batch and time step).
    per_step = math.prod(frame) if all(isinstance(d, int) for d in frame) else None
    steps = b * t if isinstance(b, int) and isinstance(t, int) else None
    return _recurrent_op(ev, layer, x, result, 4, per_step, steps)


def _conv_lstm_spec(n: int) -> KerasLayerSpec:
    one = ones(n)
    return KerasLayerSpec(
        f"ConvLSTM{n}D", f"filters, kernel_size, strides={one}, padding='valid', data_format=None, "
        f"dilation_rate={one}, activation='tanh', recurrent_activation='sigmoid', use_bias=True, "
        "kernel_initializer='glorot_uniform', recurrent_initializer='orthogonal', bias_initializer='zeros', "
        "unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, "
        "activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, "
        "dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False, "
        "go_backwards=False, stateful=False, **kwargs", conv_lstm_weights, conv_lstm_call)


# ---------------------------------------------------------------------- wrappers
def bidirectional_children(a: KArgs) -> dict[str, Any]:
    layer = a.layer
    if isinstance(layer, Unknown):
        raise a.ev.raise_error("ValueError", f"Bidirectional: {layer.reason}")
    if not is_keras(layer):
        raise a.ev.raise_error("ValueError", "Bidirectional: the wrapped layer must be a Keras layer")
    backward = a.backward_layer
    if isinstance(backward, Unknown):
        raise a.ev.raise_error("ValueError", f"Bidirectional: backward_layer: {backward.reason}")
    if backward is not None and not is_keras(backward):
        raise a.ev.raise_error("ValueError", "Bidirectional: backward_layer must be a Keras layer")
    if backward is None:
        backward = a.ev.protocol.deepcopy(layer)
        backward.attrs["go_backwards"] = not layer.attrs.get("go_backwards", False)
    name = kstate(layer).name
    kstate(layer).name = f"forward_{name}"
    kstate(backward).name = f"backward_{kstate(backward).name}"
    return {"forward_layer": layer, "backward_layer": backward}


def bidirectional_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    st = kstate(layer)
    fwd, bwd = st.modules.get("forward_layer"), st.modules.get("backward_layer")
    if fwd is None or bwd is None:
        return Unknown("Bidirectional: its layers are not known", ev.current_ref)
    kw = {"training": k["training"]} if "training" in k else {}
    f = ev.call(fwd, args[:1], kw)
    b = ev.call(bwd, args[:1], kw)
    if not isinstance(f, TensorValue) or not isinstance(b, TensorValue):
        return f if isinstance(f, Unknown) else b if isinstance(b, Unknown) else \
            Unknown("Bidirectional with return_state is not modelled", ev.current_ref)
    mode = layer.attrs.get("merge_mode", "concat")
    if mode is None:
        return [f, b]
    assert isinstance(f.shape, tuple)
    if mode == "concat":
        last = f.shape[-1] * 2 if isinstance(f.shape[-1], int) else f.shape[-1]
        return op(ev, "torch.cat", ([f, b],), TensorValue((*f.shape[:-1], last), f.dtype))
    name = {"sum": "torch.add", "mul": "torch.mul", "ave": "torch.add"}.get(mode, "torch.add")
    return op(ev, name, (f, b), TensorValue(f.shape, f.dtype))


def time_distributed_children(a: KArgs) -> dict[str, Any]:
    layer = a.layer
    if not is_keras(layer):
        raise a.ev.raise_error("ValueError", "TimeDistributed: the wrapped value must be a Keras layer")
    return {"layer": layer}


def time_distributed_call(ev: Any, layer: Instance, args: Args, k: Kwargs) -> Any:
    x = tensor_in(ev, args[0], "TimeDistributed")
    inner = kstate(layer).modules.get("layer")
    assert isinstance(x.shape, tuple)
    if inner is None or len(x.shape) < 3:
        raise shape_mismatch(ev, "TimeDistributed", f"expected an input of rank >= 3, got {shape_text(x.shape)}")
    b, t = x.shape[0], x.shape[1]
    flat_b = b * t if isinstance(b, int) and isinstance(t, int) else Unknown("TimeDistributed of unknown steps")
    flat = op(ev, "torch.reshape", (x,), TensorValue((flat_b, *x.shape[2:]), x.dtype))
    y = ev.call(inner, (flat,), {"training": k["training"]} if "training" in k else {})
    if not isinstance(y, TensorValue) or not isinstance(y.shape, tuple):
        return y
    return op(ev, "torch.reshape", (y,), TensorValue((b, t, *y.shape[1:]), y.dtype))


register(
    *(_rnn_spec(n) for n in GATES),
    *(_conv_lstm_spec(n) for n in (1, 2, 3)),
    KerasLayerSpec("Bidirectional", "layer, merge_mode='concat', weights=None, backward_layer=None, **kwargs",
                   call=bidirectional_call, children=bidirectional_children),
    KerasLayerSpec("TimeDistributed", "layer, **kwargs", call=time_distributed_call,
                   children=time_distributed_children),
)
