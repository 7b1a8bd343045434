"""The Keras frontend against real Keras 3.

Ground truth: tests/fixtures/keras/truth.json (every model of tests/fixtures/keras/models/, counted
by Keras 3 itself) and layer_catalog.json (single layers built by Keras on a given input shape),
both made by tests/fixtures/keras/make_truth.py (how to run it: its docstring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vramlint.analysis.api import analyze_file, analyze_source
from vramlint.analysis.results import ModelResult
from vramlint.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "keras"
TRUTH = json.loads((FIXTURES / "truth.json").read_text())
CATALOG = json.loads((FIXTURES / "layer_catalog.json").read_text())["layers"]
# keras.applications builds its networks from Keras's own sources, which vramlint does not read.
NOT_MODELLED = {"applications_transfer.py"}

COUNTS = Settings()  # parameter counts only
MEMORY = Settings(memory=True)


def corpus() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for entry in TRUTH["files"].values():
        for name, m in entry["models"].items():
            out.append((entry["file"], name, m))
    return sorted(out, key=lambda x: (x[0], x[1]))


def expected_counts(m: dict[str, Any]) -> tuple[int, int]:
    """Keras's trainable and non-trainable counts. For a subclassed model built with
    `model.build(shape)` and no build() of its own, Keras 3 creates no weights until the model is
    first called (count_params() says 0, with a warning); the truth then holds the counts after a
    call (`after_symbolic_call`), the weights that train."""
    src = m.get("after_symbolic_call") or m
    return src["trainable_params"], src["non_trainable_params"]


_ANALYSES: dict[str, Any] = {}


def analysed(path: str, settings: Settings = COUNTS) -> dict[str, ModelResult]:
    key = f"{path}|{settings.memory}"
    if key not in _ANALYSES:
        _ANALYSES[key] = {m.name: m for m in analyze_file(str(ROOT / path), settings).models}
    return _ANALYSES[key]  # type: ignore[no-any-return]


MODELLED = [c for c in corpus() if Path(c[0]).name not in NOT_MODELLED]


SUMMARY: dict[str, list[bool]] = {"models": [], "layers": []}


def summary() -> list[str]:
    """The lines conftest prints after the run (only for what ran)."""
    out = []
    for what, results in SUMMARY.items():
        if results:
            out.append(f"keras {TRUTH['versions']['keras']}: {sum(results)}/{len(results)} corpus {what} match Keras's "
                       + ("trainable and non-trainable counts" if what == "models" else "weight and output shapes"))
    return out


def test_the_corpus_is_large_and_varied() -> None:
    """At least 15 models, in every style the issue names."""
    kinds = {m["kind"] for _, _, m in MODELLED}
    assert len(MODELLED) >= 15 and {"sequential", "functional", "subclassed"} <= kinds, (len(MODELLED), kinds)
    classes = {layer["class"] for _, _, m in MODELLED for layer in m["layers"]}
    for needed in ("Dense", "Conv2D", "BatchNormalization", "LSTM", "GRU", "MultiHeadAttention", "Embedding",
                   "Bidirectional", "TimeDistributed", "SeparableConv2D", "DepthwiseConv2D", "GroupNormalization"):
        assert needed in classes, needed


@pytest.mark.parametrize(("path", "name", "truth"), MODELLED, ids=[f"{Path(p).stem}::{n}" for p, n, _ in MODELLED])
def test_counts_equal_keras(path: str, name: str, truth: dict[str, Any]) -> None:
    models = analysed(path)
    assert name in models, f"{name} not found; found {sorted(models)}"
    r = models[name]
    trainable, frozen = expected_counts(truth)
    SUMMARY["models"].append((r.params.trainable, r.params.total) == (trainable, trainable + frozen))
    assert r.error is None, r.error
    assert (r.params.trainable, r.params.total) == (trainable, trainable + frozen), [u.reason for u in r.unknowns]


@pytest.mark.parametrize(("path", "name", "truth"),
                         [c for c in MODELLED if c[2].get("forward_output_shapes")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_output_shapes_equal_keras(path: str, name: str, truth: dict[str, Any]) -> None:
    """The traced forward's output (batch excluded) is Keras's; the truth script ran each model on a batch of 2."""
    r = analysed(path, MEMORY)[name]
    expected = truth["forward_output_shapes"][0]
    if any(d is None for shape in truth["input_shapes"] for d in shape[1:]):
        # A sequence of any length (keras.Input(shape=(None,))): the estimate asks for the length.
        assert r.output_shape is None
        assert any("dimension of unknown size (None)" in u.reason for u in r.memory_unknowns)
        return
    if r.output_shape is None:
        pytest.fail(f"no output shape: {[u.reason for u in r.memory_unknowns + r.forward_unknowns]}")
    assert list(r.output_shape[1:]) == expected[1:]


def test_keras_applications_are_said_to_be_unmodelled() -> None:
    fa = analyze_file(str(FIXTURES / "models" / "applications_transfer.py"), COUNTS)
    reasons = " ".join(w.reason for w in fa.warnings) + " ".join(u.reason for m in fa.models for u in m.unknowns)
    assert "keras.applications" in reasons
    assert all(m.params.total is None for m in fa.models)


# ---------------------------------------------------------------------- single layers
def _layer_source(entry: dict[str, Any]) -> str:
    shape = tuple(entry["input_shape"][1:])
    expr = entry["expression"]
    if entry["class"] in ("MultiHeadAttention", "GroupedQueryAttention"):
        call = "layer(inp, inp)"
    elif entry["class"] in ("Attention", "AdditiveAttention"):
        call = "layer([inp, inp])"
    else:
        call = "layer(inp)"
    return (f"import keras\nfrom keras import layers\n\ninp = keras.Input(shape={shape!r})\nlayer = {expr}\n"
            f"out = {call}\nmodel = keras.Model(inp, out)\n")


@pytest.mark.parametrize("entry", CATALOG, ids=[e["expression"] for e in CATALOG])
def test_layer_weights_and_output_shape_equal_keras(entry: dict[str, Any], tmp_path: Path) -> None:
    fa = analyze_source(str(tmp_path / "layer.py"), _layer_source(entry), Settings(memory=True, batch_size=4))
    (model,) = [m for m in fa.models if m.name == "model"]
    SUMMARY["layers"].append(False)
    assert model.params.total == entry["trainable_params"] + entry["non_trainable_params"], model.unknowns
    assert model.params.trainable == entry["trainable_params"]
    assert model.tree is not None
    got = sorted((tuple(p.shape or ()), p.trainable) for node in _nodes(model.tree) for p in node.params)
    want = sorted((tuple(w["shape"]), w["trainable"]) for w in entry["weights"])
    assert got == want
    assert model.output_shape is not None, model.memory_unknowns
    expected = entry["output_shape"]
    assert [d for d, e in zip(model.output_shape[1:], expected[1:], strict=True) if e is not None] == \
        [e for e in expected[1:] if e is not None]
    SUMMARY["layers"][-1] = True


def _nodes(node: Any) -> list[Any]:
    return [node, *(n for c in node.children for n in _nodes(c))]


# ---------------------------------------------------------------------- the question, and Keras semantics
QUESTION = """\
from tensorflow import keras
from tensorflow.keras import layers

model = keras.Sequential([
    layers.Dense(100, activation="relu", input_shape=(1000,)),
    layers.Dense(100, activation="relu"),
    layers.Dense(100, activation="relu"),
    layers.Dense(100, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy")
"""


def test_the_question_network_has_131410_parameters(tmp_path: Path) -> None:
    (m,) = analyze_source(str(tmp_path / "q.py"), QUESTION, COUNTS).models
    assert (m.params.total, m.params.trainable) == (131_410, 131_410)
    assert m.tree is not None and [c.param_count for c in m.tree.children] == [100_100, 10_100, 10_100, 10_100, 1_010]


def test_an_unbuilt_model_says_what_would_build_it(tmp_path: Path) -> None:
    src = "import keras\nfrom keras import layers\n\nmodel = keras.Sequential([layers.Dense(10), layers.Dense(2)])\n"
    (m,) = analyze_source(str(tmp_path / "u.py"), src, COUNTS).models
    assert m.params.total is None
    assert any("first called" in u.reason and "keras.Input" in u.reason for u in m.unknowns)
    # The configured input shape builds it (what `model.build((None, 8))` would do).
    (m,) = analyze_source(str(tmp_path / "u.py"), src, Settings(inputs=_inputs((8,)))).models
    assert m.params.total == 8 * 10 + 10 + 10 * 2 + 2


def _inputs(shape: tuple[int, ...]) -> Any:
    from vramlint.settings import InputSpec

    return (InputSpec(shape, "float32"),)


def test_trainable_false_moves_weights_to_non_trainable(tmp_path: Path) -> None:
    src = """\
import keras
from keras import layers

base = keras.Sequential([keras.Input(shape=(16,)), layers.Dense(32), layers.BatchNormalization()])
base.trainable = False
inp = keras.Input(shape=(16,))
model = keras.Model(inp, layers.Dense(4)(base(inp)))
"""
    models = {m.name: m for m in analyze_source(str(tmp_path / "t.py"), src, COUNTS).models}
    frozen = 16 * 32 + 32 + 4 * 32
    assert (models["base"].params.trainable, models["base"].params.total) == (0, frozen)
    assert (models["model"].params.trainable, models["model"].params.total) == (32 * 4 + 4, frozen + 32 * 4 + 4)


def test_a_shape_mismatch_is_a_finding(tmp_path: Path) -> None:
    src = """\
import keras
from keras import layers

inp = keras.Input(shape=(8, 8, 3))
a = layers.Conv2D(16, 3)(inp)
b = layers.Conv2D(16, 3, padding="same")(inp)
model = keras.Model(inp, layers.Add()([a, b]))
"""
    fa = analyze_source(str(tmp_path / "m.py"), src, MEMORY)
    messages = " ".join(w.reason for w in fa.warnings)
    assert "Add" in messages and "[1, 6, 6, 16]" in messages and "[1, 8, 8, 16]" in messages


def test_functional_replay_reports_the_forward_lines(tmp_path: Path) -> None:
    """The functional graph is replayed on the traced batch: each line of the model's code gets its tensor."""
    src = """\
import keras
from keras import layers

inp = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(8, 3, activation="relu")(inp)
x = layers.Flatten()(x)
out = layers.Dense(10)(x)
model = keras.Model(inp, out)
"""
    (m,) = analyze_source(str(tmp_path / "f.py"), src, Settings(memory=True, batch_size=16)).models
    assert m.memory is not None
    lines = {line: t.shape for line, t in m.memory.lines.items()}
    assert lines[5] == (16, 26, 26, 8) and lines[6] == (16, 26 * 26 * 8) and lines[7] == (16, 10)


# ---------------------------------------------------------------------- the training setup from Keras code
def _setup(tmp_path: Path, code: str) -> dict[str, tuple[Any, str]]:
    src = "import keras\nfrom keras import layers\n\nmodel = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(2)])\n"
    (m,) = analyze_source(str(tmp_path / "s.py"), src + code, MEMORY).models
    assert m.setup is not None
    return {k: (m.setup[k], m.setup.source(k)) for k in ("optimizer", "batch_size", "precision")}


def test_compile_fit_and_the_dtype_policy_set_the_estimate(tmp_path: Path) -> None:
    s = _setup(tmp_path, "keras.mixed_precision.set_global_policy('mixed_float16')\n"
                         "model.compile(optimizer=keras.optimizers.SGD(0.1), loss='mse')\n"
                         "if __name__ == '__main__':\n    model.fit(x, y, batch_size=128)\n")
    assert s["optimizer"][0] == "sgd" and "model.compile" in s["optimizer"][1]
    assert s["batch_size"] == (128, "code: model.fit(..., batch_size=128) at line 8")
    assert s["precision"][0] == "amp-fp16" and "set_global_policy" in s["precision"][1]


def test_keras_defaults_rmsprop_and_batch_32(tmp_path: Path) -> None:
    s = _setup(tmp_path, "model.compile(loss='mse')\nmodel.fit(x, y)\n")
    assert s["optimizer"][0] == "rmsprop" and "Keras's default optimizer" in s["optimizer"][1]
    assert s["batch_size"][0] == 32 and "Keras's default batch size" in s["batch_size"][1]
    s = _setup(tmp_path, "model.compile(optimizer='adamw')\nds = ds.batch(256)\nmodel.fit(ds)\n")
    assert s["optimizer"][0] == "adamw" and s["batch_size"][0] == 256


def test_string_optimizers_and_pure_policies(tmp_path: Path) -> None:
    s = _setup(tmp_path, "keras.config.set_dtype_policy('bfloat16')\nmodel.compile('nadam', 'mse')\n")
    assert s["optimizer"][0] == "adam" and s["precision"][0] == "bf16"


def test_torch_compile_is_not_keras_compile(tmp_path: Path) -> None:
    src = ("# a port of a keras model\nimport torch\nimport torch.nn as nn\n\nnet = nn.Linear(4, 4)\n"
           "model = torch.compile(net)\nopt = torch.optim.SGD(net.parameters(), lr=0.1)\n")
    (m,) = [m for m in analyze_source(str(tmp_path / "t.py"), src, MEMORY).models if m.name == "net"]
    assert m.setup is not None and m.setup["optimizer"] == "sgd", m.setup.source("optimizer")


def test_param_counts_fit_the_memory_model(tmp_path: Path) -> None:
    """Weights, gradients and Adam's two moments come from the same counts: frozen weights have no gradient."""
    src = QUESTION.replace('model.compile(optimizer="adam"', 'model.layers[0].trainable = False\nmodel.compile(optimizer="adam"')
    (m,) = analyze_source(str(tmp_path / "q.py"), src, Settings(memory=True, batch_size=64)).models
    assert m.memory is not None and m.params.total == 131_410
    trainable = 131_410 - 100_100
    assert abs(m.memory.weights - 131_410 * 4) <= 512 * 10  # each tensor rounded to the allocator's 512 B
    assert abs(m.memory.gradients - trainable * 4) <= 512 * 8
    assert abs(m.memory.optimizer_state - 2 * trainable * 4) <= 512 * 16


def test_explain_says_what_tensorflow_reserves(tmp_path: Path) -> None:
    path = tmp_path / "q.py"
    path.write_text(QUESTION)
    from vramlint.render.explain import explain

    (m,) = analyze_file(str(path), Settings(memory=True, batch_size=32)).models
    text = explain(str(path), m)
    assert "TensorFlow reserves nearly all of the GPU's memory" in text and "set_memory_growth" in text


BAD = {
    "units=-1": ("model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(-1)])", "units must be non-negative"),
    "a non-layer": ("model = keras.Sequential([keras.Input(shape=(4,)), 3])", "int is not a layer"),
    "a float dimension": ("model = keras.Sequential([keras.Input(shape=(2.5,)), layers.Dense(2)])",
                          "dimension 2.5 is not an int"),
    "a kernel larger than the input": ("i = keras.Input(shape=(4, 4, 3))\nmodel = keras.Model(i, layers.Conv2D(8, 9)(i))",
                                       "shape mismatch in Conv2D"),
    "a call that calls itself": ("class L(layers.Layer):\n    def call(self, x):\n        return self(x)\n\n"
                                 "model = keras.Sequential([keras.Input(shape=(4,)), L()])", "call depth"),
    "an output not made from the inputs": ("i = keras.Input(shape=(4,))\nj = keras.Input(shape=(4,))\n"
                                           "model = keras.Model(i, layers.Dense(2)(j))", "Graph disconnected"),
    "an undefined weight dimension": ("class L(layers.Layer):\n    def build(self, s):\n"
                                      "        self.w = self.add_weight(shape=(None, 3))\n\n    def call(self, x):\n"
                                      "        return x\n\nmodel = keras.Sequential([keras.Input(shape=(4,)), L()])",
                                      "not an int"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_keras_code_gives_a_located_reason(case: str, tmp_path: Path) -> None:
    body, reason = BAD[case]
    fa = analyze_source(str(tmp_path / "bad.py"), f"import keras\nfrom keras import layers\n\n{body}\n", MEMORY)
    said = [*fa.warnings, *(u for m in fa.models for u in (*m.unknowns, *m.memory_unknowns))]
    hit = [u for u in said if reason in u.reason]
    assert hit, [u.reason for u in said]
    assert all(u.location is not None and u.location.line >= 4 for u in hit)


# ---------------------------------------------------------------------- memory: what Keras keeps for backward
SAVED = json.loads((FIXTURES / "saved_bytes.json").read_text())
# Where Keras's torch backend runs the same kernels on the CPU (where the truth was measured) as on
# CUDA. Its LSTM and GRU run step by step on the CPU (cuDNN on a GPU, which the rule models), and
# the CPU's attention kernel lays its output out differently (a copy that CUDA's kernels avoid).
SAME_KERNELS = ["mlp", "cnn", "conv-bn", "separable", "mlp-block", "embedding", "groupnorm"]


@pytest.mark.parametrize("name", SAME_KERNELS)
def test_kept_for_backward_equals_keras(name: str, tmp_path: Path) -> None:
    """What autograd keeps in a Keras forward (torch backend, saved_tensors_hooks, batch 32, weights
    and the batch excluded: benchmarks/keras_saved.py) against the estimate's per-layer figure."""
    path = tmp_path / "model.py"
    path.write_text(f"import keras\nfrom keras import layers\n\n{SAVED['models'][name]}\n")
    (m,) = [m for m in analyze_file(str(path), Settings(memory=True, batch_size=SAVED["batch"])).models
            if m.name == "model"]
    assert m.memory is not None, m.memory_unknowns
    ours = sum(layer.saved_bytes for layer in m.memory.layers if layer.path)
    assert ours == pytest.approx(SAVED["saved_bytes"][name], rel=0.03)


def test_augmentation_and_sampling_layers(tmp_path: Path) -> None:
    """Keras's image-classification and VAE examples: augmentation layers have no weights and keep
    the shape; a custom layer drawing keras.random.normal works in the graph."""
    src = """\
import keras
from keras import layers

augment = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)])
inputs = keras.Input(shape=(180, 180, 3))
x = layers.Resizing(128, 128)(augment(inputs))
x = layers.Conv2D(8, 3, strides=2, padding="same")(layers.Rescaling(1.0 / 255)(x))
model = keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling2D()(x)))


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(shape=(keras.ops.shape(z_mean)[0], keras.ops.shape(z_mean)[1]))
        return z_mean + keras.ops.exp(0.5 * z_log_var) * eps


enc_in = keras.Input(shape=(16,))
h = layers.Dense(8)(enc_in)
z = Sampling()([layers.Dense(2)(h), layers.Dense(2)(h)])
encoder = keras.Model(enc_in, z)
"""
    models = {m.name: m for m in analyze_source(str(tmp_path / "a.py"), src, MEMORY).models}
    assert models["model"].params.total == 3 * 3 * 3 * 8 + 8 + 8 * 2 + 2
    assert models["model"].tree is not None
    sizes = {c.path: c.output_shape for c in models["model"].tree.children}
    assert sizes["resizing"] == (32, 128, 128, 3) and sizes["conv2d"] == (32, 64, 64, 8)
    assert models["encoder"].params.total == 16 * 8 + 8 + 2 * (8 * 2 + 2)
    assert models["encoder"].output_shape == (32, 2)
