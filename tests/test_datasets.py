"""Datasets -> input shapes: the batch a DataLoader yields, as vramlint's evaluator computes it.

torchvision's datasets and transforms are vramlint's stubs (frontends/torchvision_data/), the
DataLoader and collate the torch frontend's (frontends/torch/data.py). Each pipeline of
tests/support/dataset_cases.py is compared with the batch REAL torchvision 0.26 gave for it
(tests/fixtures/truth/datasets-torchvision-0.26.0.json, made by make_dataset_truth.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import vramlint
from tests.support.dataset_cases import CASES, DatasetCase
from tests.support.libsources import TORCHVISION_VERSION, library_source
from vramlint.analysis.api import get_loader, search_paths
from vramlint.engine.provenance import sourced
from vramlint.engine.values import ModuleValue, Unknown
from vramlint.frontends.torch.tensors import TensorValue

TRUTH = json.loads((Path(__file__).parent / f"fixtures/truth/datasets-torchvision-{TORCHVISION_VERSION}.json")
                   .read_text())


def evaluate(tmp_path: Path, text: str, name: str = "train",
             torchvision: bool = True) -> tuple[dict[str, Any], list[Unknown], Any]:
    """Run `text` as the script train.py (with torchvision's source on the search path, unless
    told): its namespace, what it could not do, the evaluator."""
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    extra = (str(library_source("torchvision", TORCHVISION_VERSION)),) if torchvision else ()
    settings = vramlint.Settings(extra_paths=extra)
    loader = get_loader(search_paths(settings))
    loader.evaluator.origins.clear()
    mod, _, _ = loader.load_main(str(path), text, f"datasets_{name}")
    return mod.ns, loader.module_problems.get(f"datasets_{name}", []), loader.evaluator


def describe(v: Any) -> Any:
    """A batch as the truth file writes it."""
    if isinstance(v, TensorValue):
        return {"shape": list(v.shape) if isinstance(v.shape, tuple) else v.shape, "dtype": v.dtype}
    if isinstance(v, (list, tuple)):
        return [describe(x) for x in v]
    if isinstance(v, dict):
        return {k: describe(x) for k, x in v.items()}
    return type(v).__name__


KNOWN = [c for c in CASES if c.id != "folder-resize-short"]


@pytest.mark.parametrize("case", KNOWN, ids=[c.id for c in KNOWN])
def test_batch_matches_torchvision(case: DatasetCase, tmp_path: Path) -> None:
    ns, problems, _ = evaluate(tmp_path, case.script(real=False))
    assert "batch" in ns, [p.reason for p in problems]
    assert describe(ns["batch"]) == TRUTH["batches"][case.id], case.script(real=False)


def test_folder_images_without_a_fixed_size_are_unknown_and_say_so(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "folder-resize-short")
    ns, _, _ = evaluate(tmp_path, case.script(real=False))
    images, labels = ns["batch"]
    assert images.shape[:2] == (4, 3) and labels.shape == (4,)
    height = images.shape[2]
    assert isinstance(height, Unknown)
    assert "images' size is unknown" in height.reason and "--input-shape" in height.reason
    assert height.location is not None and height.location.line == 6  # the ImageFolder(...) line


def test_cifar_batch_is_noted_with_its_sources(tmp_path: Path) -> None:
    text = ("from torch.utils.data import DataLoader\n"
            "from torchvision import datasets, transforms\n"
            "tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.ToTensor()])\n"
            "train_set = datasets.CIFAR10('./data', train=True, download=True, transform=tf)\n"
            "loader = DataLoader(train_set, batch_size=128, shuffle=True, num_workers=4)\n"
            "for images, labels in loader:\n"
            "    pass\n"
            "n = len(loader)\n"
            "classes = len(train_set.classes)\n")
    ns, _, ev = evaluate(tmp_path, text)
    assert ns["images"].shape == (128, 3, 32, 32) and ns["labels"].shape == (128,)
    assert ns["n"] == 391 and ns["classes"] == 10  # 50,000 images in batches of 128; CIFAR10's classes
    assert ev.origins.find((128, 3, 32, 32)) == ("CIFAR10 at train.py:4: 3x32x32 after RandomCrop(32, padding=4), "
                                                 "ToTensor(), DataLoader(batch_size=128) at train.py:5")


def test_the_batch_size_keeps_its_own_source(tmp_path: Path) -> None:
    # The value an argparse model returns (the configs helper's), given here directly.
    text = ("import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
            "loader = DataLoader(TensorDataset(torch.randn(100, 8)), batch_size=BS)\n"
            "(x,) = next(iter(loader))\n")
    path = tmp_path / "train.py"
    path.write_text(text)
    loader = get_loader(search_paths(vramlint.Settings()))
    loader.evaluator.origins.clear()
    mod = ModuleValue("datasets_bs")
    mod.ns["BS"] = sourced(16, "argparse default of --batch-size at train.py:3")
    source = loader.evaluator.analysis.parse(str(path), text, "datasets_bs")
    loader.run_source(mod, source)
    assert mod.ns["x"].shape == (16, 8)
    assert loader.evaluator.origins.find((16, 8)) == (
        "TensorDataset at train.py:3 (8), DataLoader(batch_size=16 from argparse default of --batch-size at "
        "train.py:3) at train.py:3")


def test_tensor_dataset_custom_dataset_and_collate(tmp_path: Path) -> None:
    text = '''
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split, Subset, ConcatDataset

x = torch.randn(1000, 20)
y = torch.randint(0, 5, (1000,))
ds = TensorDataset(x, y)
xb, yb = next(iter(DataLoader(ds, batch_size=32, shuffle=True)))
n = len(DataLoader(ds, batch_size=32))
n_drop = len(DataLoader(ds, batch_size=32, drop_last=True))
train, val = random_split(ds, [800, 200])
vb = next(iter(DataLoader(val, batch_size=50)))
n_val = len(val)
sub = next(iter(DataLoader(Subset(ds, [1, 2, 3]), batch_size=2)))
cat = next(iter(DataLoader(ConcatDataset([ds, ds]), batch_size=3)))
single = next(iter(DataLoader(ds, batch_size=None)))

class Pairs(Dataset):
    def __init__(self, n):
        self.n = n
    def __len__(self):
        return self.n
    def __getitem__(self, i):
        return {"ids": torch.zeros(12, dtype=torch.long), "score": 1.5, "label": 3, "name": "a", "flag": True}

d = next(iter(DataLoader(Pairs(10), batch_size=4)))

def pad_collate(items):
    ids = torch.stack([it["ids"] for it in items])
    return ids, torch.tensor([it["label"] for it in items])

c_ids, c_labels = next(iter(DataLoader(Pairs(10), batch_size=6, collate_fn=pad_collate)))
for step, (bx, by) in enumerate(DataLoader(ds, batch_size=16)):
    pass
for (zx, zy), (wx, wy) in zip(DataLoader(ds, batch_size=2), DataLoader(ds, batch_size=3)):
    pass
'''
    ns, problems, ev = evaluate(tmp_path, text)
    assert not problems, [p.reason for p in problems]
    collate_line = text.splitlines().index(next(s for s in text.splitlines() if "collate_fn=pad_collate" in s)) + 1
    assert ev.origins.find((6, 12)) == f"Pairs.__getitem__, DataLoader(batch_size=6, collate_fn=pad_collate) at " \
                                       f"train.py:{collate_line}"
    assert (ns["xb"].shape, ns["xb"].dtype, ns["yb"].shape, ns["yb"].dtype) == ((32, 20), "float32", (32,), "int64")
    assert (ns["n"], ns["n_drop"], ns["n_val"]) == (32, 31, 200)
    assert [t.shape for t in ns["vb"]] == [(50, 20), (50,)]
    assert [t.shape for t in ns["sub"]] == [(2, 20), (2,)]
    assert [t.shape for t in ns["cat"]] == [(3, 20), (3,)]
    assert [t.shape for t in ns["single"]] == [(20,), ()]  # batch_size=None: the sample itself
    d = ns["d"]
    assert (d["ids"].shape, d["ids"].dtype) == ((4, 12), "int64")
    assert (d["score"].dtype, d["label"].dtype, d["flag"].dtype) == ("float64", "int64", "bool")
    assert d["name"] == ["a"] * 4
    assert ns["c_ids"].shape == (6, 12) and ns["c_labels"].shape == (6,)
    assert ns["bx"].shape == (16, 20) and ns["step"] == 0
    assert ns["zx"].shape == (2, 20) and ns["wx"].shape == (3, 20)


def test_a_pil_image_batch_fails_as_in_torch(tmp_path: Path) -> None:
    # MNIST without ToTensor yields PIL images: torch's default_collate raises TypeError.
    text = ("from torch.utils.data import DataLoader\nfrom torchvision import datasets\n"
            "loader = DataLoader(datasets.MNIST('data', train=True, download=True), batch_size=64)\n"
            "images, labels = next(iter(loader))\n")
    ns, problems, _ = evaluate(tmp_path, text)
    assert "images" not in ns
    reasons = [p.reason for p in problems]
    assert any("default_collate" in r and "PIL" in r and "ToTensor" in r for r in reasons), reasons
    assert all(p.location is not None and p.location.line == 4 for p in problems)


def test_unknown_batch_size_is_located(tmp_path: Path) -> None:
    text = ("import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
            "bs = int(open('bs.txt').read())\n"
            "for x, in DataLoader(TensorDataset(torch.randn(10, 2)), batch_size=bs):\n    y = x\n")
    ns, problems, _ = evaluate(tmp_path, text)
    assert "y" not in ns
    assert problems and all(p.location is not None for p in problems)


def test_tqdm_passes_the_loader_through(tmp_path: Path) -> None:
    text = ("import torch\nfrom torch.utils.data import DataLoader, TensorDataset\nfrom tqdm import tqdm, trange\n"
            "from tqdm.auto import tqdm as auto_tqdm\n"
            "loader = DataLoader(TensorDataset(torch.randn(64, 5)), batch_size=8)\n"
            "pbar = tqdm(loader, desc='train')\n"
            "for (x,) in pbar:\n    pbar.set_postfix(loss=0.1)\n"
            "for i, (y,) in enumerate(auto_tqdm(loader, total=len(loader))):\n    pass\n"
            "for epoch in trange(3):\n    pass\n"
            "with tqdm(total=10) as bar:\n    bar.update(1)\n"
            "steps = len(tqdm(loader))\n")
    ns, problems, _ = evaluate(tmp_path, text)
    assert not problems, [p.reason for p in problems]
    assert ns["x"].shape == (8, 5) and ns["y"].shape == (8, 5)
    assert ns["epoch"] == 2 and ns["steps"] == 8


def test_datasets_and_transforms_without_torchvisions_source(tmp_path: Path) -> None:
    # An MNIST script with its own CNN needs only torchvision's datasets and transforms: vramlint's.
    text = ("import torchvision\nfrom torch.utils.data import DataLoader\nfrom torchvision import datasets, transforms\n"
            "ds = datasets.MNIST('data', train=True, download=True, transform=transforms.ToTensor())\n"
            "images, labels = next(iter(DataLoader(ds, batch_size=64)))\n"
            "resnet = torchvision.models.resnet18\n")
    ns, _, _ = evaluate(tmp_path, text, name="no_source", torchvision=False)
    assert ns["images"].shape == (64, 1, 28, 28)
    assert isinstance(ns["resnet"], Unknown) and "--extra-path" in ns["resnet"].reason


def test_iterable_dataset_and_split_of_a_torchvision_dataset(tmp_path: Path) -> None:
    text = '''
import torch
from torch.utils.data import DataLoader, IterableDataset, random_split
from torchvision import datasets, transforms

class Stream(IterableDataset):
    def __iter__(self):
        for i in range(3):
            yield torch.zeros(7), i

sx, sy = next(iter(DataLoader(Stream(), batch_size=5)))
full = datasets.CIFAR10("data", train=True, transform=transforms.ToTensor())
train, val = random_split(full, [0.9, 0.1])
vx, vy = next(iter(DataLoader(val, batch_size=100)))
sizes = (len(train), len(val), len(full))
'''
    ns, problems, ev = evaluate(tmp_path, text)
    assert not problems, [p.reason for p in problems]
    assert ns["sx"].shape == (5, 7) and ns["sy"].shape == (5,)
    assert ns["vx"].shape == (100, 3, 32, 32)
    assert ns["sizes"] == (45000, 5000, 50000)
    assert ev.origins.find((100, 3, 32, 32)).startswith("CIFAR10 at train.py:12: 3x32x32 after ToTensor()")
