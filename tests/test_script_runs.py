"""A script's models get their inputs from wherever the script calls them (engine/script_calls.py):
inside `train()` called from `main()`, in loops, on tensors made in other functions. The script
runs as Python would run it, with nothing given on the command line; a loop stops when it comes
round to the same call of the same model."""

from __future__ import annotations

import textwrap
from pathlib import Path

from vramlint.analysis.api import analyze_source
from vramlint.analysis.results import ModelResult
from vramlint.settings import Settings

MLP = '''
import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, d_in=1000, hidden=4096, d_out=10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))

    def forward(self, x):
        return self.net(x)
'''


def analyse(tmp_path: Path, code: str, name: str) -> ModelResult:
    text = textwrap.dedent(code)
    path = tmp_path / "train.py"
    path.write_text(text)
    result = analyze_source(str(path), text, Settings(memory=True))
    return next(m for m in result.models if m.name == name)


def line_of(code: str, needle: str) -> int:
    return next(i for i, line in enumerate(textwrap.dedent(code).splitlines(), 1) if needle in line)


def setup_of(model: ModelResult, key: str) -> tuple[object, str]:
    assert model.setup is not None
    return model.setup[key], model.setup.source(key)


TRAIN_IN_MAIN = MLP + '''

def train(model, data, epochs=3):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        for x, y in data:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()


def main():
    model = MLP()
    x = torch.randn(256, 1000)
    y = torch.randint(0, 10, (256,))
    train(model, [(x, y)])


if __name__ == "__main__":
    main()
'''


def test_inputs_made_in_main_and_called_in_train(tmp_path: Path) -> None:
    """The issue's first script: the batch is made in main(), passed through train(model, [(x, y)])."""
    for name in ("main.model",):
        m = analyse(tmp_path, TRAIN_IN_MAIN, name)
        assert m.memory is not None, m.memory_unknowns
        assert setup_of(m, "batch_size")[0] == 256
        inputs, source = setup_of(m, "inputs")
        assert [(s.shape, s.dtype) for s in inputs] == [((1000,), "float32")]  # type: ignore[attr-defined]
        assert source == f"code: the call at line {line_of(TRAIN_IN_MAIN, 'loss_fn(model(x), y)')}"
        assert setup_of(m, "optimizer") == ("adam", f"code: torch.optim.Adam(...) at line {line_of(TRAIN_IN_MAIN, 'optim.Adam')}")


TOKENS_IN_LOOP = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 8000
SEQ_LEN = 256
BATCH = 32


class TinyLM(nn.Module):
    def __init__(self, vocab, d=128):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        return self.head(self.mlp(self.emb(idx)))


def main():
    model = TinyLM(VOCAB)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for step in range(100_000):
        tokens = torch.randint(0, VOCAB, (BATCH, SEQ_LEN + 1))
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
'''


def test_token_batch_sliced_in_a_long_loop(tmp_path: Path) -> None:
    """The issue's second script: `model(tokens[:, :-1])` in a loop of 100,000 steps. The loop stops
    when it comes round (a full run would take minutes), and the setup is the file's: AdamW for
    the model that `main()` names `model`."""
    m = analyse(tmp_path, TOKENS_IN_LOOP, "main.model")
    assert m.memory is not None, m.memory_unknowns
    inputs, _ = setup_of(m, "inputs")
    assert [(s.shape, s.dtype) for s in inputs] == [((256,), "int64")]  # type: ignore[attr-defined]
    assert setup_of(m, "batch_size")[0] == 32
    assert setup_of(m, "optimizer")[0] == "adamw"
    assert tuple(m.output_shape or ()) == (32, 256, 8000)


UNMODELLED_IN_LOOP = MLP + '''

def main():
    model = MLP()
    log = open("log.txt", "w")
    for epoch in range(10):
        x = torch.randn(64, 1000)
        out = model(x)
        pickle.dump(out, log)


if __name__ == "__main__":
    import pickle
    main()
'''


def test_what_the_loop_cannot_evaluate_leaves_the_count_exact(tmp_path: Path) -> None:
    """A model's count is inexact only for what the statement that built it could not decide:
    an unmodelled call further down the training loop does not make it "unknown"."""
    m = analyse(tmp_path, UNMODELLED_IN_LOOP, "main.model")
    assert m.params.total == 1000 * 4096 + 4096 + 4096 * 10 + 10
    assert not m.unknowns
    assert setup_of(m, "batch_size")[0] == 64


TWO_CALLS = MLP + '''

def step(model, a, b):
    return model(a), model(b)


if __name__ == "__main__":
    model = MLP(d_in=32)
    for i in range(5):
        step(model, torch.randn(8, 32), torch.randn(8, 32))
'''


def test_two_calls_in_one_step_are_not_a_loop(tmp_path: Path) -> None:
    """A model called twice per step (a siamese pair) is called at two places: the first call's
    inputs stand."""
    m = analyse(tmp_path, TWO_CALLS, "model")
    assert m.memory is not None, m.memory_unknowns
    assert setup_of(m, "inputs")[1] == f"code: the call at line {line_of(TWO_CALLS, 'return model(a)')}"


def test_check_prints_where_each_setting_came_from(tmp_path: Path) -> None:
    """`vramlint check train.py` with no flags: the estimate, then each setting with its source."""
    import subprocess
    import sys

    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN_IN_MAIN))
    r = subprocess.run([sys.executable, "-m", "vramlint", "check", "train.py"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = lines.index(next(line for line in lines if "main.model (instance)" in line))
    block = lines[at + 1:at + 8]
    call = line_of(TRAIN_IN_MAIN, "loss_fn(model(x), y)")
    assert block[0].startswith(f"    memory (batch 256, fp32, adam, H100-80GB; inputs from code: the call at line {call})")
    assert block[3] == f"      setup: batch size 256 from code: the call at line {call}"
    assert block[4] == f"             optimizer adam from code: torch.optim.Adam(...) at line {line_of(TRAIN_IN_MAIN, 'optim.Adam')}"
    assert block[5] == "             defaults: precision fp32, GPU H100-80GB, mode train, checkpointing off"
    # Nothing asks for what the script gives: not even for the class MLP, whose instance it calls.
    assert not any("--batch-size" in line or "--input-shape" in line for line in lines)


MAIN_WITH_ARGUMENTS = MLP + '''
import sys


def get_config():
    return {"batch_size": 48, "hidden": 2048}


def main(cfg, steps=10):
    model = MLP(hidden=cfg["hidden"])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        loss = model(torch.randn(cfg["batch_size"], 1000)).sum()
        loss.backward()
        opt.step()
    return 0


if __name__ == "__main__":
    config = get_config()
    sys.exit(main(config))
'''


def test_main_called_with_arguments_keeps_its_models(tmp_path: Path) -> None:
    """`sys.exit(main(config))`: main() runs on the main block's `config`, and its locals are models."""
    m = analyse(tmp_path, MAIN_WITH_ARGUMENTS, "main.model")
    assert m.params.total == 1000 * 2048 + 2048 + 2048 * 10 + 10
    assert m.memory is not None, m.memory_unknowns
    assert setup_of(m, "batch_size")[0] == 48
    assert setup_of(m, "optimizer")[0] == "sgd"


TOP_LEVEL_LOOP = '''
import torch
from torch import nn

model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters())
for epoch in range(1_000_000):
    for batch in [torch.randn(512, 10)] * 10:
        loss = model(batch).pow(2).mean()
        loss.backward()
        opt.step()
print("done")
'''


def test_a_top_level_loop_that_comes_round_is_not_reported_as_unfinished(tmp_path: Path) -> None:
    """A training loop at the top level of a script ends when it comes round (as in main()): the
    statement is not "not fully evaluated", and the model's inputs are those of its call."""
    text = textwrap.dedent(TOP_LEVEL_LOOP)
    path = tmp_path / "train.py"
    path.write_text(text)
    result = analyze_source(str(path), text, Settings(memory=True))
    assert not [w for w in result.warnings if "not fully evaluated" in w.reason or "stopped" in w.reason]
    (m,) = [m for m in result.models if m.name == "model"]
    assert m.memory is not None and setup_of(m, "batch_size")[0] == 512


UNGUARDED_MAIN = '''
import torch
import torch.nn as nn


def main():
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(100):
        loss = criterion(model(torch.randn(32, 20)), torch.randint(0, 2, (32,)))
        loss.backward()
        opt.step()


main()
'''


def test_an_entry_point_called_without_a_main_guard(tmp_path: Path) -> None:
    """`main()` at the top level of a script without `if __name__ == "__main__":` is its main
    block; its loss module holds no parameters and is not reported as a model."""
    text = textwrap.dedent(UNGUARDED_MAIN)
    path = tmp_path / "train.py"
    path.write_text(text)
    result = analyze_source(str(path), text, Settings(memory=True))
    assert [m.name for m in result.models] == ["main.model"]
    (m,) = result.models
    assert m.memory is not None and setup_of(m, "batch_size")[0] == 32
    assert setup_of(m, "optimizer")[0] == "sgd-momentum"
