"""Keras files in the editor and in CI: the same hovers, inlay hints, diagnostics and findings as
PyTorch files (a real LSP client, tests/test_lsp.py's fixture; the real `vramlint` executable)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import test_lsp
from tests.test_lsp import (
    Session,
    apply_edit,
    by_code,
    cli_findings,
    line_of,
    lsp_findings,
    only_edit,
    options,
)

# The language-server fixtures of test_lsp.py (a server per test, VS Code's capabilities).
client = test_lsp.client
lsp = test_lsp.lsp

CNN = """\
import keras
from keras import layers

inputs = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(32, 3, activation="relu")(inputs)
x = layers.MaxPooling2D()(x)
x = layers.Flatten()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs, outputs)

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
if __name__ == "__main__":
    model.fit(x_train, y_train, batch_size=64, epochs=5)
"""
CNN_PARAMS = 3 * 3 * 1 * 32 + 32 + 13 * 13 * 32 * 10 + 10  # 54,410

# About 100M parameters trained with Adam: over a 1 GiB budget.
BIG = """\
import tensorflow as tf

model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(4096,)),
    tf.keras.layers.Dense(8192, activation="relu"),
    tf.keras.layers.Dense(8192, activation="relu"),
    tf.keras.layers.Dense(10),
])
model.compile(optimizer=tf.keras.optimizers.Adam(1e-4), loss="mse")
model.fit(x, y, batch_size=256)
"""


@pytest.mark.asyncio
async def test_hover_hints_and_lens_on_a_functional_keras_model(lsp: Session) -> None:
    uri = await lsp.open("cnn.py", CNN)
    md = await lsp.hover(uri, line_of(CNN, "model = keras.Model"), 2)
    assert md is not None and md.startswith(f"**model** (instance): {CNN_PARAMS:,} parameters"), md
    assert "| **training peak** |" in md and "- batch size: `64` (code: model.fit(..., batch_size=64) at line 13)" in md
    assert "- optimizer: `adam` (code: model.compile(optimizer='adam') at line 11)" in md
    # The line that makes and calls a layer: the layer's hover.
    md = await lsp.hover(uri, line_of(CNN, "layers.Conv2D"), 14)
    assert md is not None and md.startswith("**conv2d**: `Conv2D`, 320 parameters"), md
    assert "- output: `[B, 26, 26, 32]`" in md
    hints = await lsp.hints(uri)
    assert "320 params" in hints[line_of(CNN, "layers.Conv2D")]
    assert "[B, 26, 26, 32]" in hints[line_of(CNN, "layers.Conv2D")]  # the replayed graph's tensor
    assert "[B, 5408]" in hints[line_of(CNN, "layers.Flatten")]
    assert "54.1K params" in hints[line_of(CNN, "layers.Dense")]
    lenses = await lsp.lenses(uri)
    assert lenses[line_of(CNN, "model = keras.Model")].startswith("54.4K params · training peak ")


@options(gpu="1GiB")
@pytest.mark.asyncio
async def test_an_over_budget_keras_model_is_diagnosed_as_in_ci(lsp: Session) -> None:
    uri = await lsp.open("big.py", BIG)
    diags = lsp.client.diagnostics[uri]
    (over,) = by_code(diags, "VL001")
    assert over.range.start.line == line_of(BIG, "model = tf.keras.Sequential")
    assert "1.00 GiB" in over.message or "1 GiB" in over.message, over.message
    assert lsp_findings(diags) == cli_findings(lsp.root / "big.py", "--gpu", "1GiB")


TEXT = """\
import keras
from keras import layers

tokens = keras.Input(shape=(None,), dtype="int32")
x = layers.Embedding(20000, 64)(tokens)
x = layers.Bidirectional(layers.LSTM(32))(x)
model = keras.Model(tokens, layers.Dense(1, activation="sigmoid")(x))
model.fit(x_train, y_train, batch_size=32)
"""


@pytest.mark.asyncio
async def test_a_sequence_of_any_length_gets_a_quick_fix_with_its_shape(lsp: Session) -> None:
    uri = await lsp.open("text.py", TEXT)
    (vl301,) = by_code(lsp.client.diagnostics[uri], "VL301")
    assert "the model's input [None] has a dimension of unknown size (None)" in vl301.message
    (action,) = await lsp.actions(uri, [vl301])
    edit = only_edit(action, uri)
    assert edit.new_text == "# vramlint: input-shape=128\n"
    diags = await lsp.edit(uri, apply_edit(TEXT, edit))
    assert by_code(diags, "VL301") == []
    md = await lsp.hover(uri, line_of(TEXT, "model = keras.Model") + 1, 2)
    assert md is not None and "| **training peak** |" in md and "- batch size: `32` (code: model.fit" in md, md


def test_the_cli_checks_keras_files(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text(BIG)
    (tmp_path / "cnn.py").write_text(CNN)
    run = subprocess.run([sys.executable, "-m", "vramlint", "check", "big.py", "cnn.py", "--gpu", "1GiB",
                          "--format", "json"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 1, run.stderr  # VL001 is an error
    files = {Path(f["path"]).name: f for f in json.loads(run.stdout)["files"]}
    (big,) = files["big.py"]["models"]
    assert big["params"]["total"] == 4096 * 8192 + 8192 + 8192 * 8192 + 8192 + 8192 * 10 + 10
    assert "VL001" in [f["code"] for f in files["big.py"]["findings"]]
    assert big["setup"]["optimizer"]["source"].startswith("code: model.compile(optimizer=Adam(...))")
    (cnn,) = files["cnn.py"]["models"]
    assert cnn["params"]["total"] == CNN_PARAMS and "VL001" not in [f["code"] for f in files["cnn.py"]["findings"]]


@pytest.mark.asyncio
async def test_layer_hints_inside_a_sequential_list(lsp: Session) -> None:
    """The bundled Keras example: each layer of the Sequential's list gets its count on its own line."""
    text = (Path(__file__).resolve().parents[1] / "examples" / "keras_cnn.py").read_text()
    uri = await lsp.open("keras_cnn.py", text)
    hints = await lsp.hints(uri)
    assert hints[line_of(text, "layers.Conv2D(32")] == "320 params"
    assert hints[line_of(text, "layers.Conv2D(64")] == "18.5K params"
    assert hints[line_of(text, "layers.Dense(num_classes")] == "16.0K params"
    md = await lsp.hover(uri, line_of(text, "layers.MaxPooling2D"), 18)
    assert md is not None and md.startswith("**max_pooling2d**: `MaxPooling2D`, 0 parameters"), md
    assert "- output: `[B, 13, 13, 32]`" in md
