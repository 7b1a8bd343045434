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
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

from vramlint.analysis.api import analyze_file  # noqa: E402
from vramlint.settings import Settings  # noqa: E402

BATCH = 32
MODELS = {
    "mlp": "keras.Sequential([keras.Input(shape=(1000,)), layers.Dense(100, activation='relu'), "
           "layers.Dense(100, activation='relu'), layers.Dense(10)])",
    "cnn": "keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Conv2D(32, 3, activation='relu'), "
           "layers.MaxPooling2D(), layers.Conv2D(64, 3, activation='relu'), layers.MaxPooling2D(), layers.Flatten(), "
           "layers.Dropout(0.5), layers.Dense(10)])",
    "conv-bn": "keras.Sequential([keras.Input(shape=(32, 32, 3)), layers.Conv2D(16, 3, padding='same'), "
               "layers.BatchNormalization(), layers.Activation('relu'), layers.GlobalAveragePooling2D(), layers.Dense(10)])",
    "lstm": "keras.Sequential([keras.Input(shape=(20, 16)), layers.LSTM(32), layers.Dense(4)])",
    "attention": "keras.Sequential([keras.Input(shape=(16, 32)), layers.Dense(32), layers.LayerNormalization(), "
                 "layers.Dense(64, activation='gelu'), layers.Dense(8)])",
}

MEASURE = """
import os, sys, json
os.environ["KERAS_BACKEND"] = "torch"
import keras, torch
from keras import layers
out = {}
for name, expr in json.loads(sys.argv[1]).items():
    keras.backend.clear_session()
    model = eval(expr)
    shape = [int(sys.argv[2]), *model.input_shape[1:]]
    x = torch.zeros(shape)
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


def vramlint_saved(expr: str) -> int:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.py"
        path.write_text(f"import keras\nfrom keras import layers\n\nmodel = {expr}\n")
        (m,) = analyze_file(str(path), Settings(memory=True, batch_size=BATCH)).models
        assert m.memory is not None, m.memory_unknowns
        # What the layers keep, without the loss added after the forward (the root's own ops).
        return sum(layer.saved_bytes for layer in m.memory.layers if layer.path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keras-python", required=True, help="a Python with keras 3 and torch")
    args = ap.parse_args()
    run = subprocess.run([args.keras_python, "-c", MEASURE, json.dumps(MODELS), str(BATCH)], capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-2000:])
    keras_saved = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"{'model':10} {'Keras (torch backend)':>22} {'vramlint':>10} {'Keras / vramlint':>17}")
    for name, expr in MODELS.items():
        ours = vramlint_saved(expr)
        print(f"{name:10} {keras_saved[name]:>22,} {ours:>10,} {keras_saved[name] / ours:>17.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
