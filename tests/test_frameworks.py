"""Training frameworks' scripts, read with no flags: PyTorch Lightning and Lightning Fabric
(frontends/lightning/), HF Accelerate (frontends/accelerate/), and `torch.compile`.

Counts are checked against real torch (the same layers built and counted by torch itself); the
setup against the values a real run of the script would use, read off the script by hand."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from tests.support.libsources import ACCELERATE_VERSION, library_source
from vramlint.analysis.api import analyze_source
from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.settings import Settings


def analyse(tmp_path: Path, code: str, extra_paths: tuple[str, ...] = ()) -> FileAnalysis:
    text = textwrap.dedent(code)
    path = tmp_path / "train.py"
    path.write_text(text)
    return analyze_source(str(path), text, Settings(memory=True, extra_paths=extra_paths))


def model_named(result: FileAnalysis, name: str) -> ModelResult:
    found = next((m for m in result.models if m.name == name), None)
    assert found is not None, ([m.name for m in result.models], result.warnings, result.errors)
    return found


def line_of(code: str, needle: str) -> int:
    return next(i for i, line in enumerate(textwrap.dedent(code).splitlines(), 1) if needle in line)


def torch_count(*layers: torch.nn.Module) -> int:
    return sum(p.numel() for layer in layers for p in layer.parameters())


# -- Lightning ----------------------------------------------------------------------------------

LIT_CLASSIFIER = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import lightning as L


class LitClassifier(L.LightningModule):
    def __init__(self, d_in=784, hidden=512, n_classes=10, lr=1e-3, **extra):
        super().__init__()
        self.save_hyperparameters(ignore=["n_classes"])
        self.net = nn.Sequential(nn.Linear(self.hparams.d_in, self.hparams["hidden"]), nn.ReLU(),
                                 nn.Linear(hidden, n_classes + self.hparams.width))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 10)}


def main():
    model = LitClassifier(d_in=300, hidden=128, width=6)
    loader = [(torch.randn(48, 300), torch.randint(0, 16, (48,)))]
    trainer = L.Trainer(max_epochs=3, precision="bf16-mixed", accumulate_grad_batches=4, devices=1)
    trainer.fit(model, train_dataloaders=loader)


if __name__ == "__main__":
    main()
'''


def test_lightning_module_is_counted_as_torch_counts_it(tmp_path: Path) -> None:
    """save_hyperparameters() records __init__'s arguments (defaults, `**extra`, less `ignore`)
    into `hparams`, read by attribute and by item; the module's layers are an nn.Module's.
    Before: the script's `lightning` import was unresolved (lightning's own source, where
    installed, stopped at "'LitClassifier' object has no attribute '_hparams'")."""
    result = analyse(tmp_path, LIT_CLASSIFIER)
    model = model_named(result, "main.model")
    want = torch_count(torch.nn.Linear(300, 128), torch.nn.Linear(128, 10 + 6))
    assert model.params.total == want, [u.reason for u in model.unknowns]
    assert not result.warnings


def test_lightning_trainer_states_the_setup_and_fit_runs_one_training_step(tmp_path: Path) -> None:
    result = analyse(tmp_path, LIT_CLASSIFIER)
    model = model_named(result, "main.model")
    assert model.setup is not None and model.memory is not None, model.memory_unknowns
    trainer_line = line_of(LIT_CLASSIFIER, "L.Trainer(")
    assert model.setup["precision"] == "amp-bf16"
    assert f"L.Trainer(precision='bf16-mixed') at line {trainer_line}" in model.setup.source("precision")
    assert model.setup["optimizer"] == "adamw"
    assert f"line {line_of(LIT_CLASSIFIER, 'torch.optim.AdamW')}" in model.setup.source("optimizer")
    # The inputs are the model's call inside training_step, which trainer.fit ran on the first batch.
    assert [list(s.shape) for s in model.setup["inputs"]] == [[300]]
    assert model.setup["batch_size"] == 48
    assert f"line {line_of(LIT_CLASSIFIER, 'self(x)')}" in model.setup.source("inputs")
    assert any(n.startswith("gradient accumulation (L.Trainer(accumulate_grad_batches=4)") for n in model.memory.notes)


@pytest.mark.parametrize(("precision", "expected"), [
    ('"16-mixed"', "amp-fp16"), ('"bf16-mixed"', "amp-bf16"), ('"bf16-true"', "bf16"), ("16", "amp-fp16"),
    ('"bf16"', "amp-bf16"), ('"32"', None),
])
def test_lightning_precisions(tmp_path: Path, precision: str, expected: str | None) -> None:
    code = LIT_CLASSIFIER.replace('precision="bf16-mixed"', f"precision={precision}")
    model = model_named(analyse(tmp_path, code), "main.model")
    assert model.setup is not None
    if expected is None:  # full precision: nothing to read, the default is the same
        assert (model.setup["precision"], model.setup.source("precision")) == ("fp32", "default")
    else:
        assert model.setup["precision"] == expected
        assert f"precision={precision.replace(chr(34), chr(39))}" in model.setup.source("precision")


LIT_DATAMODULE = '''
import torch
from torch import nn
import torch.nn.functional as F
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, LearningRateMonitor
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only


class PrintCallback(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        print("start")


class TokenData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 16, seq_len: int = 128, vocab: int = 1000):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage=None):
        self.train = [torch.randint(0, self.hparams.vocab, (self.hparams.batch_size, self.hparams.seq_len + 1))]

    def train_dataloader(self):
        return self.train


class LitLM(pl.LightningModule):
    def __init__(self, vocab=1000, dim=128, layers=2, lr=3e-4):
        super().__init__()
        self.save_hyperparameters()
        self.emb = nn.Embedding(vocab, dim)
        self.blocks = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, 4, 4 * dim, batch_first=True), layers)
        self.head = nn.Linear(dim, vocab)

    def training_step(self, batch, batch_idx):
        logits = self.head(self.blocks(self.emb(batch[:, :-1])))
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)

    @rank_zero_only
    def report(self):
        print(self.device)


if __name__ == "__main__":
    pl.seed_everything(0)
    dm = TokenData(batch_size=8, seq_len=64)
    model = LitLM(dim=64)
    trainer = pl.Trainer(precision="16-mixed", callbacks=[ModelCheckpoint(monitor="loss"), LearningRateMonitor(),
                         PrintCallback()], logger=TensorBoardLogger("logs"), gradient_clip_val=1.0)
    trainer.fit(model, datamodule=dm)
'''


def test_lightning_module_without_forward_is_estimated_on_its_training_step(tmp_path: Path) -> None:
    """The datamodule's setup() and train_dataloader() give fit its first batch; the module defines
    no forward (its training_step calls its layers): its estimate traces that step on that batch."""
    result = analyse(tmp_path, LIT_DATAMODULE)
    model = model_named(result, "model")
    layer = torch.nn.TransformerEncoderLayer(64, 4, 256, batch_first=True)
    blocks = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    assert model.params.total == torch_count(torch.nn.Embedding(1000, 64), blocks, torch.nn.Linear(64, 1000))
    assert model.setup is not None and model.memory is not None, model.memory_unknowns
    assert [list(s.shape) for s in model.setup["inputs"]] == [[65]]  # seq_len + 1 tokens
    assert model.setup["batch_size"] == 8
    assert f"trainer.fit(...) at line {line_of(LIT_DATAMODULE, 'trainer.fit(')}" in model.setup.source("inputs")
    assert model.setup["optimizer"] == "sgd-momentum" and model.setup["precision"] == "amp-fp16"
    assert model.memory.activations > 0
    # The class on its own (built with its defaults) has no fit call: said, not guessed.
    alone = model_named(result, "LitLM")
    assert alone.memory is None and "defines no forward" in alone.memory_unknowns[0].reason
    assert not result.warnings


def test_fit_takes_a_datamodule_in_the_loaders_place(tmp_path: Path) -> None:
    code = LIT_DATAMODULE.replace("trainer.fit(model, datamodule=dm)", "trainer.fit(model, dm)")
    model = model_named(analyse(tmp_path, code), "model")
    assert model.setup is not None and model.setup["batch_size"] == 8


def test_installed_lightning_source_is_never_evaluated(tmp_path: Path) -> None:
    """A `lightning` package on the search path (as where it is installed) is not read: its modules
    read their caller's frame, which the evaluator does not model."""
    package = tmp_path / "site" / "lightning"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('lightning source was read')\nLightningModule = None\n")
    result = analyse(tmp_path, LIT_CLASSIFIER, extra_paths=(str(tmp_path / "site"),))
    model = model_named(result, "main.model")
    assert model.params.total == torch_count(torch.nn.Linear(300, 128), torch.nn.Linear(128, 16))


FABRIC = '''
import torch
import torch.nn as nn
from lightning.fabric import Fabric


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def run(fabric):
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model, optimizer = fabric.setup(model, optimizer)
    loader = fabric.setup_dataloaders([(torch.randn(24, 3, 32, 32), torch.randint(0, 10, (24,)))])
    for x, y in loader:
        with fabric.autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        fabric.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
    fabric.print(fabric.world_size, fabric.device)
    return model


def main():
    fabric = Fabric(accelerator="cuda", devices=1, precision="bf16-mixed")
    fabric.launch()
    with fabric.init_module():
        model = run(fabric)


if __name__ == "__main__":
    main()
'''


def test_fabric_setup_returns_the_model_and_its_loop_gives_the_inputs(tmp_path: Path) -> None:
    result = analyse(tmp_path, FABRIC)
    model = model_named(result, "main.model")
    assert model.params.total == torch_count(torch.nn.Conv2d(3, 16, 3), torch.nn.Linear(16 * 32 * 32, 10))
    assert model.setup is not None and model.memory is not None, model.memory_unknowns
    assert [list(s.shape) for s in model.setup["inputs"]] == [[3, 32, 32]] and model.setup["batch_size"] == 24
    assert model.setup["precision"] == "amp-bf16" and "Fabric(precision='bf16-mixed')" in model.setup.source("precision")
    assert model.setup["optimizer"] == "adam"
    assert not result.warnings


# -- Accelerate ---------------------------------------------------------------------------------

ACCELERATE = '''
import torch
import torch.nn as nn
from accelerate import Accelerator
from accelerate.utils import set_seed


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(512, 1024), nn.GELU(), nn.Linear(1024, 10))

    def forward(self, x):
        return self.fc(x)


def main():
    set_seed(0)
    accelerator = Accelerator(mixed_precision="bf16", gradient_accumulation_steps=2)
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    loader = [(torch.randn(32, 512), torch.randint(0, 10, (32,)))]
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    model.train()
    for x, y in loader:
        with accelerator.accumulate(model):
            with accelerator.autocast():
                loss = nn.functional.cross_entropy(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.save_state("out")
    accelerator.print("done", accelerator.device)
    unwrapped = accelerator.unwrap_model(model)
    accelerator.log({"loss": 1.0})


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("installed", [False, True], ids=["accelerate absent", "accelerate's source on the path"])
def test_accelerate_prepare_keeps_the_model(tmp_path: Path, installed: bool) -> None:
    """Without accelerate, `accelerate` is vramlint's; with its source on the path (as installed),
    that source is read and only its Accelerator class replaced for the script's code. Either way
    the script runs through prepare() to its loop. Before: the import was unresolved (absent), or
    the real Accelerator(...) raised in its process-group setup, ending main() (present)."""
    extra = (str(library_source("accelerate", ACCELERATE_VERSION)),) if installed else ()
    result = analyse(tmp_path, ACCELERATE, extra_paths=extra)
    model = model_named(result, "main.model")
    assert model.params.total == torch_count(torch.nn.Linear(512, 1024), torch.nn.Linear(1024, 10))
    assert model.setup is not None and model.memory is not None, model.memory_unknowns
    assert [list(s.shape) for s in model.setup["inputs"]] == [[512]] and model.setup["batch_size"] == 32
    assert f"line {line_of(ACCELERATE, 'model(x)')}" in model.setup.source("inputs")
    assert model.setup["precision"] == "amp-bf16"
    assert "Accelerator(mixed_precision='bf16')" in model.setup.source("precision")
    assert model.setup["optimizer"] == "adamw"
    assert any(n.startswith("gradient accumulation (Accelerator(gradient_accumulation_steps=2)")
               for n in model.memory.notes)
    assert not result.warnings, result.warnings
    assert not model.unknowns, [u.reason for u in model.unknowns]


# -- torch.compile ------------------------------------------------------------------------------

COMPILED = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))

    def forward(self, x):
        return self.body(x)


def main():
    code = compile("x = 1", "<string>", "exec")
    model = torch.compile(Net(), mode="max-autotune")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(10):
        loss = model(torch.randn(128, 256)).sum()
        loss.backward()
        opt.step()


def other():
    eager = Net()
    eager(torch.randn(4, 256))


if __name__ == "__main__":
    other()
    main()
'''

NOTE = "memory estimated as eager; the compiled graph may keep less (activation recomputation) or more (CUDA graphs)"


def test_torch_compile_is_the_same_module_and_the_estimate_says_it_is_eager(tmp_path: Path) -> None:
    result = analyse(tmp_path, COMPILED)
    model = model_named(result, "main.model")
    assert model.params.total == torch_count(torch.nn.Linear(256, 512), torch.nn.Linear(512, 10))
    assert model.memory is not None, model.memory_unknowns
    line = line_of(COMPILED, "torch.compile(")
    assert f"torch.compile ({'torch.compile(Net())'} at line {line}): {NOTE}" in model.memory.notes
    # Python's compile() compiles no model; another model of the file is not compiled.
    assert sum("torch.compile" in n for n in model.memory.notes) == 1
    eager = model_named(result, "other.eager")
    assert eager.memory is not None and not any("torch.compile" in n for n in eager.memory.notes)
    alone = model_named(result, "Net").memory  # the class on its own (estimated only with a batch)
    assert alone is None or not any("torch.compile" in n for n in alone.notes)


def test_module_compile_method(tmp_path: Path) -> None:
    code = COMPILED.replace('model = torch.compile(Net(), mode="max-autotune")', "model = Net()\n    model.compile()")
    model = model_named(analyse(tmp_path, code), "main.model")
    assert model.memory is not None
    assert f"torch.compile (model.compile() at line {line_of(code, 'model.compile()')}): {NOTE}" in model.memory.notes


def test_a_training_step_batch_of_several_tensors_gives_the_batch_size(tmp_path: Path) -> None:
    """A forward-less module estimated on its step gets the `(x, y)` batch: its size is the
    tensors' first dimension inside it (before: 1, as no argument was a tensor itself)."""
    code = '''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import lightning as L


    class Lit(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 5))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.backbone(x), y)

        def configure_optimizers(self):
            return [torch.optim.Adam(self.parameters())], []


    if __name__ == "__main__":
        model = Lit()
        L.Trainer(precision="bf16-true").fit(model, [(torch.randn(20, 32), torch.randint(0, 5, (20,)))])
    '''
    model = model_named(analyse(tmp_path, code), "model")
    assert model.setup is not None and model.memory is not None, model.memory_unknowns
    assert model.setup["batch_size"] == 20
    assert model.setup["precision"] == "bf16" and model.setup["optimizer"] == "adam"
