"""The training setup read off a file's own training code (vramlint.frontends.training_setup with the
frontends' handlers, vramlint.frontends.registry).

Each case is a small but realistic training script; the scan is syntactic, so none of them runs.
"""

from __future__ import annotations

import textwrap
import time

import pytest

from vramlint.engine.source import SourceModule
from vramlint.frontends.registry import training_setup_handlers
from vramlint.frontends.training_setup import Found, TrainingScan
from vramlint.frontends.training_setup import scan_training_setup as scan_with
from vramlint.memory.optimizers import OPTIMIZERS


def scan_training_setup(source: SourceModule) -> TrainingScan:
    return scan_with(source, training_setup_handlers())


def scan(code: str) -> TrainingScan:
    text = textwrap.dedent(code)
    return scan_training_setup(SourceModule("train.py", text, "train"))


def value(f: Found | None) -> object:  # type: ignore[type-arg]
    return None if f is None else f.value


def line_of(code: str, needle: str) -> int:
    """The 1-based line of the first line of `code` holding `needle`."""
    return next(i for i, line in enumerate(textwrap.dedent(code).splitlines(), 1) if needle in line)


CLASSIC = '''
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.fc1 = nn.Linear(5408, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 2)
        return self.fc1(torch.flatten(x, 1))


def train(model, device, loader, optimizer, epoch):
    model.train()
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser(description="MNIST")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N")
    parser.add_argument("--test-batch-size", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1.0)
    args = parser.parse_args()
    device = torch.device("cuda")
    test_loader = DataLoader(datasets.MNIST("../data", train=False), batch_size=args.test_batch_size)
    train_loader = DataLoader(datasets.MNIST("../data", train=True, transform=transforms.ToTensor()),
                              batch_size=args.batch_size, shuffle=True)
    model = Net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    for epoch in range(1, 15):
        train(model, device, train_loader, optimizer, epoch)


if __name__ == "__main__":
    main()
'''


def test_classic_loop() -> None:
    s = scan(CLASSIC)
    assert s.optimizer is not None
    assert s.optimizer.value == "adamw"  # Adadelta is not modelled: skipped
    assert s.optimizer.target == "model"
    assert s.optimizer.argument == "model.parameters()"
    line = line_of(CLASSIC, "torch.optim.AdamW(")
    assert s.optimizer.text == f"torch.optim.AdamW(...) at line {line}"
    assert s.optimizer.ref.location.line == line
    # The shuffled training loader, not the test loader before it; through the argparse default.
    assert s.batch_size is not None and s.batch_size.value == 64
    line = line_of(CLASSIC, "train_loader = DataLoader(")
    default = line_of(CLASSIC, '"--batch-size"')
    assert s.batch_size.text == (f"DataLoader(..., batch_size=args.batch_size) at line {line} "
                                 f"(= 64, argparse default of --batch-size at line {default})")
    assert s.constructor_of("model") == "Net"
    assert s.optimizer_for("Net") is s.optimizer
    assert s.optimizer_for("model") is s.optimizer
    assert (s.autocast, s.cast, s.precision, s.checkpointing, s.distributed) == (None,) * 5


HF_TRAINER = '''
import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

MODEL_NAME = "meta-llama/Llama-3.2-1B"


def main():
    tokenizer = AutoTokenizer.from_pretrained(MODEL_NAME)
    model = AutoModelForCausalLM.from_pretrained(MODEL_NAME)
    ds = load_dataset("imdb", split="train").map(lambda b: tokenizer(b["text"]), batched=True)
    training_args = TrainingArguments(
        output_dir="out",
        per_device_train_batch_size=4,
        gradient_accumulation_steps=8,
        learning_rate=2e-5,
        bf16=True,
        gradient_checkpointing=True,
        optim="adafactor",
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=ds)
    trainer.train()


if __name__ == "__main__":
    main()
'''


def test_hf_trainer() -> None:
    s = scan(HF_TRAINER)
    assert value(s.optimizer) == "adafactor"
    assert s.optimizer is not None and s.optimizer.target == "model"
    assert value(s.autocast) == "amp-bf16" and value(s.precision) == "amp-bf16"
    assert s.cast is None  # loaded in float32
    assert value(s.batch_size) == 4
    assert s.checkpointing is not None and s.checkpointing.value is True
    line = line_of(HF_TRAINER, "TrainingArguments(")
    assert s.checkpointing.text == f"TrainingArguments(gradient_checkpointing=True) at line {line}"
    assert s.distributed is None


def test_hf_trainer_defaults_and_dtype() -> None:
    s = scan('''
        import torch
        from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

        model = AutoModelForCausalLM.from_pretrained("gpt2", torch_dtype=torch.bfloat16)
        model.gradient_checkpointing_enable()
        args = TrainingArguments("out", fp16=False)
        Trainer(model=model, args=args).train()
        ''')
    assert value(s.optimizer) == "adamw"  # the Trainer's default
    assert s.optimizer is not None and "default" in s.optimizer.text
    assert value(s.batch_size) == 8
    assert s.autocast is None
    assert s.cast is not None and s.cast.value == "bf16" and s.cast.target == "model"
    assert value(s.precision) == "bf16"
    assert s.checkpointing is not None and s.checkpointing.target == "model"
    assert s.checkpointing.text == "model.gradient_checkpointing_enable() at line 6"


SFT_SCRIPT = '''
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")
config = SFTConfig(output_dir="out", {args})
trainer = SFTTrainer(model=model, args=config, train_dataset=load_dataset("trl-lib/Capybara", split="train"),
                     peft_config=LoraConfig(r=16))
trainer.train()
'''


def test_trl_configs_bring_trl_defaults() -> None:
    """TRL's configs subclass `_BaseConfig` (trl 1.16.0), whose defaults differ from
    TrainingArguments': gradient checkpointing on, bf16 on unless fp16; SFTConfig pads or packs
    each sample to max_length=1024. Each default says it is one."""
    s = scan(SFT_SCRIPT.format(args="per_device_train_batch_size=2"))
    assert value(s.batch_size) == 2 and value(s.optimizer) == "adamw"
    assert value(s.autocast) == "amp-bf16" and s.autocast is not None and "default bf16=True" in s.autocast.text
    assert value(s.checkpointing) is True and s.checkpointing is not None and s.checkpointing.target == "model"
    assert value(s.sequence_length) == 1024 and s.sequence_length is not None
    assert "default max_length" in s.sequence_length.text
    assert s.accumulation is None


def test_trl_config_values_given() -> None:
    s = scan(SFT_SCRIPT.format(args="fp16=True, gradient_checkpointing=False, max_length=2048, "
                                    "gradient_accumulation_steps=8"))
    assert value(s.autocast) == "amp-fp16"
    assert s.checkpointing is None
    assert value(s.sequence_length) == 2048 and s.sequence_length is not None
    assert s.sequence_length.text == f"SFTConfig(max_length=2048) at line {line_of(SFT_SCRIPT, 'SFTConfig(')}"
    assert value(s.accumulation) == 8
    # Older TRL's name for it; a value the file does not decide is not guessed.
    assert value(scan(SFT_SCRIPT.format(args="max_seq_length=512")).sequence_length) == 512
    undecided = scan(SFT_SCRIPT.format(args="max_length=n"))
    assert undecided.sequence_length is None
    assert any("max_length=n is not decidable" in n for n in undecided.notes)
    # `**kwargs` may set any of them: no default is assumed.
    starred = scan(SFT_SCRIPT.format(args="**kwargs"))
    assert starred.sequence_length is None and starred.checkpointing is None and starred.autocast is None


def test_training_arguments_keep_their_own_defaults() -> None:
    s = scan(SFT_SCRIPT.replace("SFTConfig(", "TrainingArguments(").replace("from trl import SFTConfig, SFTTrainer",
                                                                           "from transformers import TrainingArguments")
             .format(args="gradient_accumulation_steps=1"))
    assert s.checkpointing is None and s.autocast is None and s.sequence_length is None and s.accumulation is None


AMP_LOOP = '''
import torch
from torch import nn, optim

BATCH = 128
EPOCHS = 10

model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10)).cuda()
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
scaler = torch.amp.GradScaler("cuda")
loader = torch.utils.data.DataLoader(train_set, BATCH, shuffle=True, num_workers=4)

for epoch in range(EPOCHS):
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda"):
            loss = nn.functional.cross_entropy(model(x.cuda()), y.cuda())
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
'''


def test_amp_loop_with_grad_scaler() -> None:
    s = scan(AMP_LOOP)
    assert value(s.optimizer) == "sgd-momentum"
    assert s.optimizer is not None and s.optimizer.target == "model"
    assert value(s.batch_size) == 128  # second positional, a module-level constant
    assert s.autocast is not None and s.autocast.value == "amp-fp16"
    assert s.autocast.ref.location.line == line_of(AMP_LOOP, "torch.autocast(")  # not the GradScaler
    assert value(s.precision) == "amp-fp16"
    assert s.constructor_of("model") == "nn.Sequential"


def test_grad_scaler_alone_and_cuda_amp_forms() -> None:
    s = scan('''
        import torch
        scaler = torch.cuda.amp.GradScaler()
        ''')
    assert value(s.autocast) == "amp-fp16"
    assert s.autocast is not None and "GradScaler" in s.autocast.text
    s = scan('''
        import torch
        with torch.cuda.amp.autocast(dtype=torch.bfloat16):
            pass
        ''')
    assert value(s.autocast) == "amp-bf16"
    s = scan('''
        from torch.cuda.amp import autocast
        with autocast(True, torch.float16):
            pass
        ''')
    assert value(s.autocast) == "amp-fp16"
    s = scan('''
        import torch
        with torch.amp.autocast("cuda", dtype=torch.bfloat16):
            pass
        ''')
    assert value(s.autocast) == "amp-bf16"


def test_disabled_or_cpu_autocast_does_not_count() -> None:
    s = scan('''
        import argparse, torch
        p = argparse.ArgumentParser()
        p.add_argument("--amp", action="store_true")
        args = p.parse_args()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pass
        with torch.autocast("cuda", enabled=False):
            pass
        scaler = torch.cuda.amp.GradScaler(enabled=args.amp)
        ''')
    assert s.autocast is None and s.precision is None


BF16_CAST = '''
import torch
import torch.nn as nn

class MLP(nn.Module):
    def __init__(self, d=1024):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        return self.net(x)

def main():
    model = MLP()
    model.to(torch.bfloat16)
    model.cuda()
    x = torch.randn(32, 1024).to(torch.float16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)
    with torch.autocast("cuda", dtype=torch.float16):
        loss = model(x.cuda()).sum()
    loss.backward()
    opt.step()

main()
'''


def test_pure_bf16_cast() -> None:
    s = scan(BF16_CAST)
    assert s.cast is not None
    assert (s.cast.value, s.cast.target) == ("bf16", "model")
    assert s.cast.text == f"model.to(torch.bfloat16) at line {line_of(BF16_CAST, 'model.to(torch.bfloat16)')}"
    assert len(s.casts) == 1  # `torch.randn(...).to(torch.float16)` is a tensor
    assert value(s.autocast) == "amp-fp16"
    assert value(s.precision) == "bf16"  # the cast wins
    assert value(s.precision_for("MLP")) == "bf16"
    assert value(s.optimizer) == "amsgrad"


@pytest.mark.parametrize(("code", "expected", "target"), [
    ("model = Net()\nmodel.half()\n", "fp16", "model"),
    ("model = Net()\nmodel = model.to(dtype=torch.float16)\n", "fp16", "model"),
    ("model = Net().cuda().bfloat16()\n", "bf16", "model"),
    ("model = build()\nopt = SGD(model.parameters())\nmodel = model.to('cuda', torch.bfloat16)\n", "bf16", "model"),
    ("DTYPE = torch.bfloat16\nmodel = Net()\nmodel.to(DTYPE)\n", "bf16", "model"),
    ("torch.set_default_dtype(torch.bfloat16)\n", "bf16", None),
    ("x = batch.half()\ny = x.to(torch.bfloat16)\n", None, None),  # tensors
    ("model = Net()\nmodel.to(device)\nmodel.float()\n", None, None),
])
def test_cast_forms(code: str, expected: str | None, target: str | None) -> None:
    s = scan("import torch\n" + code)
    assert value(s.cast) == expected
    if s.cast is not None:
        assert s.cast.target == target


DDP_SCRIPT = '''
import os
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

PER_GPU_BATCH = 32


def setup():
    dist.init_process_group("nccl")
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))


def main():
    setup()
    model = ToyModel().cuda()
    ddp_model = DDP(model, device_ids=[int(os.environ["LOCAL_RANK"])])
    sampler = DistributedSampler(dataset)
    loader = DataLoader(dataset, batch_size=PER_GPU_BATCH, sampler=sampler)
    optimizer = torch.optim.RMSprop(ddp_model.parameters(), lr=1e-3)
    for x, y in loader:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(ddp_model(x), y).backward()
        optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''


def test_ddp_script() -> None:
    s = scan(DDP_SCRIPT)
    assert s.distributed is not None
    assert (s.distributed.value, s.distributed.target) == ("ddp", "model")
    assert s.distributed.text == f"DDP(...) at line {line_of(DDP_SCRIPT, 'DDP(model')}"
    assert value(s.optimizer) == "rmsprop"
    assert value(s.batch_size) == 32


@pytest.mark.parametrize(("code", "expected"), [
    ("model = torch.nn.parallel.DistributedDataParallel(model)", "ddp"),
    ("from torch.distributed.fsdp import FullyShardedDataParallel as FSDP\nmodel = FSDP(model)", "fsdp"),
    ("from torch.distributed.fsdp import fully_shard\nfor layer in model.layers:\n    fully_shard(layer)", "fsdp"),
    ("model = nn.DataParallel(model)", "dp"),
    ("trainer = L.Trainer(devices=8, strategy='fsdp')", "fsdp"),
])
def test_distributed_forms(code: str, expected: str) -> None:
    assert value(scan("import torch\nfrom torch import nn\n" + code).distributed) == expected


def test_no_training_code() -> None:
    s = scan('''
        import torch.nn as nn

        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.proj = nn.Linear(d, d)
                self.norm = nn.LayerNorm(d)

            def forward(self, x):
                return x + self.proj(self.norm(x))

        model = nn.Sequential(*[Block(256) for _ in range(4)])
        ''')
    assert s == TrainingScan(bindings=s.bindings)
    for f in ("optimizer", "autocast", "cast", "precision", "batch_size", "checkpointing", "distributed"):
        assert getattr(s, f) is None, f
    assert s.notes == ()


@pytest.mark.parametrize(("call", "expected"), [
    ("torch.optim.SGD(model.parameters(), lr=0.1)", "sgd"),
    ("torch.optim.SGD(model.parameters(), lr=0.1, momentum=0)", "sgd"),
    ("torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0)", "sgd"),
    ("torch.optim.SGD(model.parameters(), 0.1, 0.9)", "sgd-momentum"),
    ("torch.optim.SGD(model.parameters(), lr=0.1, momentum=args.momentum)", "sgd-momentum"),
    ("optim.Adam(model.parameters())", "adam"),
    ("Adam(model.parameters(), amsgrad=True)", "amsgrad"),
    ("torch.optim.AdamW(model.parameters(), amsgrad=False)", "adamw"),
    ("torch.optim.Adagrad(model.parameters())", "adagrad"),
    ("torch.optim.RMSprop(model.parameters())", "rmsprop"),
    ("transformers.Adafactor(model.parameters(), scale_parameter=False)", "adafactor"),
    ("bnb.optim.AdamW8bit(model.parameters())", "adam8bit"),
    ("bnb.optim.PagedAdamW8bit(model.parameters())", "adam8bit"),
    ("bitsandbytes.optim.Adam8bit(model.parameters())", "adam8bit"),
    ("Lion(model.parameters(), lr=1e-4)", "lion"),
    ("torch.optim.NAdam(model.parameters())", None),  # not modelled
])
def test_optimizer_names(call: str, expected: str | None) -> None:
    s = scan(f"import torch\nmodel = Net()\nopt = {call}\n")
    assert value(s.optimizer) == expected
    if expected is not None:
        assert expected in OPTIMIZERS
        assert s.optimizer is not None and s.optimizer.target == "model"


def test_optimizer_targets_and_user_classes() -> None:
    s = scan('''
        import torch
        from torch.optim import AdamW as TorchAdamW

        class Adam:  # a user's class of the same name: not torch's
            def __init__(self, params): ...

        G, D = Generator(), Discriminator()
        opt_x = Adam(G.parameters())
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
        opt_d = TorchAdamW([p for p in D.net.parameters() if p.requires_grad], lr=2e-4)
        ''')
    assert [(f.value, f.target) for f in s.optimizers] == [("adam", "G"), ("adamw", "D")]
    assert value(s.optimizer_for("D", ["G", "D"])) == "adamw"
    assert value(s.optimizer_for("G", ["G", "D"])) == "adam"
    # A tuple assignment binds each name to its class: the class's own result finds its optimizer.
    assert s.constructor_of("D") == "Discriminator"
    assert value(s.optimizer_for("Discriminator", ["Generator", "Discriminator"])) == "adamw"
    assert s.optimizers[1].argument == "[p for p in D.net.parameters() if p.requires_grad]"


def test_lightning_module_self_target() -> None:
    s = scan('''
        import lightning as L
        import torch

        class LitModel(L.LightningModule):
            def configure_optimizers(self):
                return torch.optim.Adam(self.parameters(), lr=1e-3)

            def train_dataloader(self):
                return torch.utils.data.DataLoader(self.train_ds, batch_size=self.hparams.batch_size)

        trainer = L.Trainer(precision="bf16-mixed", max_epochs=3)
        ''')
    assert s.optimizer is not None and (s.optimizer.value, s.optimizer.target) == ("adam", "LitModel")
    assert value(s.optimizer_for("LitModel")) == "adam"
    assert value(s.autocast) == "amp-bf16"
    assert s.batch_size is None  # self.hparams.batch_size: not decidable


def test_batch_size_sources() -> None:
    s = scan('''
        from dataclasses import dataclass, field
        from torch.utils.data import DataLoader

        @dataclass
        class Config:
            lr: float = 3e-4
            batch_size: int = field(default=2 * 16)

        cfg = Config()
        loader = DataLoader(ds, batch_size=cfg.batch_size)
        ''')
    assert value(s.batch_size) == 32
    s = scan('''
        from torch.utils.data import DataLoader
        config = {"batch_size": 48, "lr": 1e-3}
        loader = DataLoader(ds, batch_size=config["batch_size"])
        ''')
    assert value(s.batch_size) == 48
    s = scan('''
        from torch.utils.data import DataLoader
        def make_loader(ds, batch_size):
            return DataLoader(ds, batch_size=batch_size)
        ''')
    assert s.batch_size is None
    assert any("batch_size=batch_size" in n for n in s.notes)
    s = scan('''
        from torch.utils.data import DataLoader
        BATCH = 64
        BATCH = 32
        loader = DataLoader(ds, batch_size=BATCH)
        ''')
    assert s.batch_size is None  # rebound: ambiguous


def test_checkpoint_usage() -> None:
    s = scan('''
        import torch.nn as nn
        import torch.utils.checkpoint as cp

        class Model(nn.Module):
            def forward(self, x):
                for block in self.blocks:
                    x = cp.checkpoint(block, x, use_reentrant=False)
                return x
        ''')
    assert s.checkpointing is not None and s.checkpointing.value is True
    assert s.checkpointing.target is None
    s = scan('''
        from torch.utils.checkpoint import checkpoint_sequential
        def forward(self, x):
            return checkpoint_sequential(self.layers, 4, x)
        ''')
    assert value(s.checkpointing) is True
    s = scan('''
        import torch
        class Block:
            ckpt = torch.utils.checkpoint.checkpoint
        ''')
    assert value(s.checkpointing) is True
    s = scan('''
        def checkpoint(model, path):
            torch.save(model.state_dict(), path)
        checkpoint(model, "ckpt.pt")
        checkpoint = torch.load("ckpt.pt")
        ''')
    assert s.checkpointing is None


def test_accelerate_and_unresolved_notes() -> None:
    s = scan('''
        from accelerate import Accelerator
        accelerator = Accelerator(mixed_precision="fp16")
        ''')
    assert value(s.autocast) == "amp-fp16"
    s = scan('''
        import torch
        ptdtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        ctx = torch.amp.autocast(device_type="cuda", dtype=ptdtype)
        ''')
    assert s.autocast is None
    assert s.notes == ("torch.amp.autocast(...) at line 4: dtype=ptdtype is not decidable",)  # after the blank


ODD = [
    "",
    "   \n# only a comment\n",
    "def f(:\n",  # a syntax error: no tree
    "x = (\n",
    "torch.optim.SGD()\nSGD(*args, **kw)\nDataLoader()\nDataLoader(ds, batch_size=-1)\n",
    "DataLoader(ds, batch_size=None)\nDataLoader(ds, batch_size='8')\nDataLoader(ds, batch_size=10**100)\n",
    "a = b\nb = a\nDataLoader(ds, batch_size=a)\nwith torch.autocast('cuda', dtype=a): pass\n",
    "x.to()\n(lambda: 0)().half()\nf()(1).to(torch.float16)\n[][0].bfloat16()\n",
    "import torch as t\nt.optim.Adam(params=p)\nfrom . import x as y\nfrom .. import *\n",
    "class A:\n    class B:\n        class C:\n            def f(self):\n                self.half()\n",
    "get_args().parse().batch_size\nDataLoader(ds, batch_size=args.bs)\np.add_argument()\np.add_argument('--bs', default=4)\n",
    "TrainingArguments(**cfg)\nTrainer(*a)\nAccelerator(mixed_precision=mp)\nL.Trainer(precision=16, strategy=s)\n",
    "x = " + "a." * 900 + "b\n",
    "y = " + "(" * 150 + "1" + ")" * 150 + "\n",
]


@pytest.mark.parametrize("code", ODD)
def test_odd_code_does_not_crash(code: str) -> None:
    s = scan_training_setup(SourceModule("odd.py", code, "odd"))
    assert isinstance(s, TrainingScan)


def test_no_tree_is_empty() -> None:
    src = SourceModule("bad.py", "def f(:\n", "bad")
    assert src.tree is None
    assert scan_training_setup(src) == TrainingScan()


def test_deeply_nested_classes() -> None:
    code = "".join("    " * i + f"class C{i}:\n" for i in range(80)) + "    " * 80 + "opt = torch.optim.Adam(m.parameters())\n"
    s = scan_training_setup(SourceModule("deep.py", code, "deep"))
    assert value(s.optimizer) == "adam"


def test_large_file_is_fast() -> None:
    body = CLASSIC + "\n".join(
        f"def f{i}(x):\n    y = x.to(device)\n    z = F.relu(y) + {i}\n    return z.half()\n" for i in range(3000))
    start = time.perf_counter()
    src = SourceModule("big.py", body, "big")
    parse = time.perf_counter() - start
    src.location_of(src.tree)  # positions: computed once per file, and needed by the analysis anyway
    start = time.perf_counter()
    s = scan_training_setup(src)
    elapsed = time.perf_counter() - start
    assert value(s.optimizer) == "adamw"
    assert elapsed < max(parse, 0.5), (elapsed, parse)  # one walk: well under a parse
    assert scan_training_setup(src) is s  # cached per parse


def test_files_without_triggers_are_not_walked() -> None:
    from vramlint.frontends.keras import training_setup as keras_setup
    from vramlint.frontends.torch import training_setup as torch_setup
    from vramlint.frontends.transformers import training_setup as hf_setup

    triggers = [t for h in training_setup_handlers() for t in h.triggers]
    names = (*(n for h in training_setup_handlers() for n in (*h.optimizers, *h.references)),
             *torch_setup.DISTRIBUTED_NAMES, *hf_setup.TRL_CONFIGS, "TrainingArguments", "Seq2SeqTrainingArguments",
             "set_global_policy", "set_dtype_policy", "x.compile(", "x.fit(", "ds.batch(")
    assert set(keras_setup.KERAS_OPTIMIZER_CLASSES) <= set(names)
    for name in names:
        assert any(t in name for t in triggers), name
    src = SourceModule("m.py", "import torch.nn as nn\nmodel = nn.Linear(3, 4).to('cuda')\n", "m")
    assert scan_training_setup(src) == TrainingScan()
    assert src._positions is None  # nothing found: no positions computed


def test_the_scan_names_no_framework() -> None:
    """No handler: nothing recognised, even in a full torch script. A toy handler: its own
    optimizer class and call kind, decided through the dispatch table."""
    from vramlint.frontends.training_setup import Candidate, Outcome, Scanner, TrainingSetupHandler

    src = SourceModule("train.py", textwrap.dedent(CLASSIC), "train")
    assert scan_with(src, ()) == TrainingScan()

    def steps(s: Scanner, c: Candidate, out: Outcome) -> None:
        n = s.value(c.kw["per_step"])
        out.batches.append((0, s.found(n, c, f"{c.name}(per_step={n})")))

    toy = TrainingSetupHandler(
        name="toy", triggers=("Toy",), deciders={"toy_loop": steps}, optimizers={"ToyAdam": "adam"},
        calls=lambda s, node, last: "toy_loop" if last == "ToyLoop" else None)
    code = "import toy\nB = 12\nopt = toy.ToyAdam(net.parameters())\ntoy.ToyLoop(net, per_step=B)\n"
    s = scan_with(SourceModule("toy.py", code, "toy"), (toy,))
    assert value(s.optimizer) == "adam" and s.optimizer is not None and s.optimizer.target == "net"
    assert value(s.batch_size) == 12


def test_keras_handler_alone_knows_its_optimizers() -> None:
    """No import between frontends: the Keras handler maps keras.optimizers classes itself."""
    from vramlint.frontends.keras.training_setup import HANDLER

    code = "import keras\nmodel.compile(optimizer=keras.optimizers.AdamW(1e-3))\nmodel.fit(x, y, batch_size=64)\n"
    s = scan_with(SourceModule("k.py", code, "k"), (HANDLER,))
    assert (value(s.optimizer), value(s.batch_size)) == ("adamw", 64)
