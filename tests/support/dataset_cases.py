"""DataLoader batches over torchvision datasets and transform pipelines, as scripts: the same
pipeline runs under real torchvision (tests/fixtures/truth/make_dataset_truth.py, which records
the batch) and under vramlint (tests/test_datasets.py, which compares).

Real torchvision cannot download MNIST or CIFAR10 here, so the real run stands a FakeData of
the same image size and mode in for them (FakeData's `ToPILImage` gives an "L" image for one
channel, "RGB" for three: what MNIST and CIFAR10 yield); vramlint runs the named dataset. An
ImageFolder is real on both sides: a temporary folder of 64x48 (width x height) RGB PNGs.
"""

from __future__ import annotations

from dataclasses import dataclass

# What each dataset yields, for the stand-in: (C, H, W).
IMAGE_SIZES = {"MNIST": (1, 28, 28), "FashionMNIST": (1, 28, 28), "KMNIST": (1, 28, 28), "CIFAR10": (3, 32, 32),
               "CIFAR100": (3, 32, 32), "SVHN": (3, 32, 32), "STL10": (3, 96, 96)}
FOLDER_IMAGE = (64, 48)  # width, height of the ImageFolder's files

CIFAR_NORM = "transforms.Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))"
IMAGENET_NORM = "transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])"


@dataclass(frozen=True)
class DatasetCase:
    id: str
    dataset: str  # a torchvision.datasets class name, or "FakeData(<args>)"
    transform: str | None
    loader: str = "batch_size=8"
    target_transform: str | None = None

    def script(self, real: bool, folder: str = "data/train") -> str:
        args = []
        if self.transform is not None:
            args.append("transform=tf")
        if self.target_transform is not None:
            args.append(f"target_transform={self.target_transform}")
        if self.dataset.startswith("FakeData("):
            inner = self.dataset[len("FakeData("):-1]
            ctor = f"datasets.FakeData({', '.join([inner, 'size=256', *args] if inner else ['size=256', *args])})"
        elif self.dataset == "ImageFolder":
            ctor = f"datasets.ImageFolder({', '.join([repr(folder), *args])})"
        elif real:
            ctor = f"datasets.FakeData({', '.join(['size=256', f'image_size={IMAGE_SIZES[self.dataset]}', *args])})"
        else:
            split = "split='train'" if self.dataset in ("SVHN", "STL10") else "train=True"
            ctor = f"datasets.{self.dataset}({', '.join([repr('./data'), split, *args])})"
        return "\n".join([
            "import torch",
            "from torch.utils.data import DataLoader",
            "from torchvision import datasets, transforms",
            "from torchvision.transforms import v2",
            f"tf = {self.transform}",
            f"ds = {ctor}",
            f"loader = DataLoader(ds, {self.loader})",
            "batch = next(iter(loader))",
            "",
        ])


def _c(*items: str) -> str:
    return f"transforms.Compose([{', '.join(items)}])"


def _v2(*items: str) -> str:
    return f"v2.Compose([{', '.join(items)}])"


CASES: tuple[DatasetCase, ...] = (
    DatasetCase("mnist-to-tensor", "MNIST", "transforms.ToTensor()", "batch_size=64, shuffle=True"),
    DatasetCase("mnist-normalize", "MNIST", _c("transforms.ToTensor()", "transforms.Normalize((0.1307,), (0.3081,))")),
    DatasetCase("mnist-pil-to-tensor", "MNIST", "transforms.PILToTensor()"),
    DatasetCase("mnist-resize-32", "MNIST", _c("transforms.Resize(32)", "transforms.ToTensor()")),
    DatasetCase("mnist-grayscale-3", "MNIST", _c("transforms.Grayscale(num_output_channels=3)",
                                                 "transforms.ToTensor()")),
    DatasetCase("mnist-pad-2", "MNIST", _c("transforms.Pad(2)", "transforms.ToTensor()")),
    DatasetCase("mnist-v2", "MNIST", _v2("v2.ToImage()", "v2.ToDtype(torch.float32, scale=True)")),
    DatasetCase("fashion-drop-last", "FashionMNIST", "transforms.ToTensor()", "batch_size=10, drop_last=True"),
    DatasetCase("mnist-unbatched", "MNIST", "transforms.ToTensor()", "batch_size=None"),
    DatasetCase("cifar-crop-flip", "CIFAR10", _c("transforms.RandomCrop(32, padding=4)",
                                                 "transforms.RandomHorizontalFlip()", "transforms.ToTensor()",
                                                 CIFAR_NORM), "batch_size=128, shuffle=True, num_workers=0"),
    DatasetCase("cifar-resize-224", "CIFAR10", _c("transforms.Resize(224)", "transforms.ToTensor()", CIFAR_NORM)),
    DatasetCase("cifar-autoaugment", "CIFAR10", _c("transforms.AutoAugment()", "transforms.ToTensor()",
                                                   "transforms.RandomErasing()")),
    DatasetCase("cifar-augment-mix", "CIFAR100", _c("transforms.RandAugment()", "transforms.TrivialAugmentWide()",
                                                    "transforms.ColorJitter(0.4, 0.4, 0.4)",
                                                    "transforms.RandomRotation(15)", "transforms.RandomVerticalFlip()",
                                                    "transforms.ToTensor()")),
    DatasetCase("cifar-grayscale", "CIFAR10", _c("transforms.Grayscale()", "transforms.ToTensor()")),
    DatasetCase("cifar-center-crop", "CIFAR10", _c("transforms.CenterCrop(28)", "transforms.ToTensor()")),
    DatasetCase("cifar-v2-rrc", "CIFAR10", _v2("v2.RandomResizedCrop(224)", "v2.RandomHorizontalFlip()",
                                               "v2.ToImage()", "v2.ToDtype(torch.float32, scale=True)",
                                               "v2.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))")),
    DatasetCase("cifar-target-tensor", "CIFAR10", "transforms.ToTensor()",
                target_transform="transforms.Lambda(lambda y: torch.tensor(y))"),
    DatasetCase("cifar-lambda", "CIFAR10", _c("transforms.ToTensor()",
                                              "transforms.Lambda(lambda x: x.unsqueeze(0))")),
    DatasetCase("svhn", "SVHN", _c("transforms.ToTensor()", CIFAR_NORM), "batch_size=32"),
    DatasetCase("stl10-crop", "STL10", _c("transforms.RandomCrop(96, padding=12)", "transforms.ToTensor()")),
    DatasetCase("stl10-resize-pair", "STL10", _c("transforms.Resize((64, 80))", "transforms.ToTensor()")),
    DatasetCase("fakedata-default", "FakeData()", "transforms.ToTensor()", "batch_size=4"),
    DatasetCase("fakedata-resize-aspect", "FakeData(image_size=(3, 100, 150))",
                _c("transforms.Resize(64)", "transforms.ToTensor()"), "batch_size=4"),
    DatasetCase("fakedata-eval", "FakeData(image_size=(3, 300, 400), num_classes=5)",
                _c("transforms.Resize(256)", "transforms.CenterCrop(224)", "transforms.ToTensor()", IMAGENET_NORM),
                "batch_size=4"),
    DatasetCase("folder-rrc", "ImageFolder", _c("transforms.RandomResizedCrop(224)",
                                                "transforms.RandomHorizontalFlip()", "transforms.ToTensor()",
                                                IMAGENET_NORM), "batch_size=4, shuffle=True"),
    DatasetCase("folder-resize-pair", "ImageFolder", _c("transforms.Resize((128, 96))", "transforms.ToTensor()"),
                "batch_size=4"),
    DatasetCase("folder-eval", "ImageFolder", _c("transforms.Resize(256)", "transforms.CenterCrop(224)",
                                                 "transforms.ToTensor()", IMAGENET_NORM), "batch_size=4"),
    DatasetCase("folder-v2", "ImageFolder", _v2("v2.ToImage()", "v2.Resize((64, 64))",
                                                "v2.ToDtype(torch.float32, scale=True)"), "batch_size=4"),
    # The folder's images are of unknown size to vramlint: without a transform that fixes it, the
    # batch's height and width are unknown (and say so); the real run records them for reference.
    DatasetCase("folder-resize-short", "ImageFolder", _c("transforms.Resize(32)", "transforms.ToTensor()"),
                "batch_size=4"),
)
