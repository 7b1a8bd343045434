"""What Keras keeps for backward vs what vramlint says, for a few Keras models (CPU, no GPU needed).

    python benchmarks/keras_saved.py --keras-python /tmp/kerasvenv/bin/python

The Keras side runs in another interpreter that has Keras 3 and torch (see
tests/fixtures/keras/make_truth.py for how to install it): each model's forward on a batch of 32
under torch.autograd.graph.saved_tensors_hooks, Keras's torch backend, counting every saved
storage once (weights and the batch itself excluded). The vramlint side is the estimate's "kept
for backward" at the end of the forward, the loss excluded. Keras's torch backend runs
channels-last convolutions and pooling through permuted copies and BatchNormalization as separate
ops, where TensorFlow (and vramlint's rules, PyTorch's fused CUDA kernels) keep less: the ratio
says how much.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

from vramlint.analysis.api import analyze_file  # noqa: E402
from vramlint.settings import Settings  # noqa: E402

BATCH = 32
MODELS = {  # each defines `model`
    "mlp": "model = keras.Sequential([keras.Input(shape=(1000,)), layers.Dense(100, activation='relu'), "
           "layers.Dense(100, activation='relu'), layers.Dense(10)])",
    "cnn": "model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Conv2D(32, 3, activation='relu'), "
           "layers.MaxPooling2D(), layers.Conv2D(64, 3, activation='relu'), layers.MaxPooling2D(), layers.Flatten(), "
           "layers.Dropout(0.5), layers.Dense(10)])",
    "conv-bn": "model = keras.Sequential([keras.Input(shape=(32, 32, 3)), layers.Conv2D(16, 3, padding='same'), "
               "layers.BatchNormalization(), layers.Activation('relu'), layers.GlobalAveragePooling2D(), "
               "layers.Dense(10)])",
    "separable": "model = keras.Sequential([keras.Input(shape=(32, 32, 8)), layers.DepthwiseConv2D(3), "
                 "layers.SeparableConv2D(16, 3, strides=2, padding='same'), layers.Conv2DTranspose(8, 3, strides=2), "
                 "layers.AveragePooling2D(2), layers.Flatten(), layers.Dense(4)])",
    "lstm": "model = keras.Sequential([keras.Input(shape=(20, 16)), layers.LSTM(32), layers.Dense(4)])",
    "gru": "model = keras.Sequential([keras.Input(shape=(20, 16)), layers.GRU(32, return_sequences=True), "
           "layers.GRU(16), layers.Dense(4)])",
    "mlp-block": "model = keras.Sequential([keras.Input(shape=(16, 32)), layers.Dense(32), layers.LayerNormalization(), "
                 "layers.Dense(64, activation='gelu'), layers.Dense(8)])",
    "attention": "inp = keras.Input(shape=(16, 32))\n"
                 "x = layers.MultiHeadAttention(num_heads=4, key_dim=8)(inp, inp)\n"
                 "x = layers.LayerNormalization()(layers.Add()([inp, x]))\n"
                 "model = keras.Model(inp, layers.Dense(4)(layers.GlobalAveragePooling1D()(x)))",
    "embedding": "inp = keras.Input(shape=(24,), dtype='int32')\n"
                 "x = layers.Embedding(1000, 32)(inp)\n"
                 "x = layers.Conv1D(16, 3, activation='relu')(x)\n"
                 "model = keras.Model(inp, layers.Dense(2)(layers.GlobalMaxPooling1D()(x)))",
    "groupnorm": "model = keras.Sequential([keras.Input(shape=(16, 16, 8)), layers.GroupNormalization(groups=4), "
                 "layers.Conv2D(8, 3), layers.UpSampling2D(), layers.Flatten(), layers.Dense(3)])",
}

MEASURE = """
import os, sys, json
os.environ["KERAS_BACKEND"] = "torch"
import keras, torch
from keras import layers
out = {}
for name, code in json.loads(sys.argv[1]).items():
    keras.backend.clear_session()
    ns = {"keras": keras, "layers": layers}
    exec(code, ns)
    model = ns["model"]
    shape = [int(sys.argv[2]), *model.input_shape[1:]]
    x = torch.zeros(shape, dtype=torch.int32 if "int" in str(model.inputs[0].dtype) else torch.float32)
    weights = {w.value.untyped_storage().data_ptr() for w in model.weights}
    seen = {}
    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in weights and st.data_ptr() != x.untyped_storage().data_ptr():
            seen[st.data_ptr()] = st.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x, training=True)
    out[name] = sum(seen.values())
print(json.dumps(out))
"""


def vramlint_saved(code: str) -> int:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.py"
        path.write_text(f"import keras\nfrom keras import layers\n\n{code}\n")
        (m,) = [m for m in analyze_file(str(path), Settings(memory=True, batch_size=BATCH)).models
                if m.name == "model"]
        assert m.memory is not None, m.memory_unknowns
        # What the layers keep, without the loss added after the forward (the root's own ops).
        return sum(layer.saved_bytes for layer in m.memory.layers if layer.path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keras-python", required=True, help="a Python with keras 3 and torch")
    ap.add_argument("--write", type=Path, help="store Keras's figures (JSON) for tests/test_keras.py")
    args = ap.parse_args()
    run = subprocess.run([args.keras_python, "-c", MEASURE, json.dumps(MODELS), str(BATCH)], capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-2000:])
    keras_saved = json.loads(run.stdout.strip().splitlines()[-1])
    if args.write:
        versions = subprocess.run([args.keras_python, "-c", "import keras, torch; print(keras.__version__, "
                                   "torch.__version__)"], capture_output=True, text=True,
                                  env={**os.environ, "KERAS_BACKEND": "torch"}).stdout.split()
        args.write.write_text(json.dumps({"batch": BATCH, "keras": versions[0], "torch": versions[1],
                                          "models": MODELS, "saved_bytes": keras_saved}, indent=1,
                                         sort_keys=True) + "\n")
    print(f"{'model':10} {'Keras (torch backend)':>22} {'vramlint':>10} {'Keras / vramlint':>17}")
    for name, code in MODELS.items():
        ours = vramlint_saved(code)
        print(f"{name:10} {keras_saved[name]:>22,} {ours:>10,} {keras_saved[name] / ours:>17.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
