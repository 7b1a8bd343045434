"""`torchvision.datasets`: each dataset's sample, without reading its files.

torchvision's own dataset classes read files (`os.path.isfile`, `pickle`, PIL), which an analysis
must not; vramlint serves these stubs instead (torchvision.models stays torchvision's source).
A sample is what torchvision's `__getitem__` returns, `(image, target)`: a PIL image of the
dataset's size and mode (images.ImageValue) passed through the `transform`, and an int class
index passed through the `target_transform`.

Where the sizes come from (torchvision 0.26.0's docstrings and the datasets' files):
MNIST, FashionMNIST, KMNIST, EMNIST, QMNIST: 28x28 grayscale ("L"); CIFAR10, CIFAR100, SVHN:
32x32 RGB; STL10: 96x96 RGB; EuroSAT 64x64 RGB; USPS 16x16 "L"; Omniglot 105x105 "L"; FakeData:
its `image_size` (C, H, W), default (3, 224, 224). Folder datasets (ImageFolder, ImageNet,
Places365, Food101...) hold images of any size: only a transform that fixes it (Resize((h, w)),
CenterCrop, RandomResizedCrop, RandomCrop) makes the sample's shape known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import (
    MISSING,
    Args,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    SourceRef,
    Unknown,
)
from vramlint.frontends.torch.data import SampleOrigin, data_classes, shape_text, where
from vramlint.frontends.torch.tensors import TensorValue
from vramlint.frontends.torchvision_data.images import ImageValue
from vramlint.frontends.torchvision_data.transforms import pipeline_text

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

MNIST_CLASSES = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
                 "8 - eight", "9 - nine")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


@dataclass(frozen=True)
class DatasetSpec:
    """One torchvision dataset class: its constructor's positional parameters, its images' size
    and mode (None: any size, read from files), its number of samples per split, its classes."""

    params: tuple[str, ...]
    size: tuple[int, int] | None  # (width, height)
    mode: str = "RGB"
    lengths: dict[str, int] = field(default_factory=dict)  # split -> samples ("train", "test" for train=)
    classes: tuple[str, ...] | int | None = None  # names, or only how many (names not modelled)


_MNIST = ("root", "train", "transform", "target_transform", "download")
_SPLIT = ("root", "split", "transform", "target_transform", "download")
_FOLDER = ("root", "transform", "target_transform", "loader", "is_valid_file", "allow_empty")
_TRAIN_TEST_MNIST = {"train": 60000, "test": 10000}

SPECS: dict[str, DatasetSpec] = {
    "MNIST": DatasetSpec(_MNIST, (28, 28), "L", _TRAIN_TEST_MNIST, MNIST_CLASSES),
    "FashionMNIST": DatasetSpec(_MNIST, (28, 28), "L", _TRAIN_TEST_MNIST, FASHION_CLASSES),
    "KMNIST": DatasetSpec(_MNIST, (28, 28), "L", _TRAIN_TEST_MNIST, 10),
    "EMNIST": DatasetSpec(("root", "split"), (28, 28), "L"),
    "QMNIST": DatasetSpec(("root", "what", "compat", "train"), (28, 28), "L", {}, MNIST_CLASSES),
    "CIFAR10": DatasetSpec(_MNIST, (32, 32), "RGB", {"train": 50000, "test": 10000}, CIFAR10_CLASSES),
    "CIFAR100": DatasetSpec(_MNIST, (32, 32), "RGB", {"train": 50000, "test": 10000}, 100),
    "SVHN": DatasetSpec(_SPLIT, (32, 32), "RGB", {"train": 73257, "test": 26032, "extra": 531131}),
    "STL10": DatasetSpec(("root", "split", "folds", "transform", "target_transform", "download"), (96, 96), "RGB",
                         {"train": 5000, "test": 8000, "unlabeled": 100000, "train+unlabeled": 105000},
                         STL10_CLASSES),
    "EuroSAT": DatasetSpec(("root", "transform", "target_transform", "download"), (64, 64), "RGB", {}, 10),
    "USPS": DatasetSpec(_MNIST, (16, 16), "L", {"train": 7291, "test": 2007}),
    "Omniglot": DatasetSpec(("root", "background", "transform", "target_transform", "download"), (105, 105), "L"),
    # any size: read from image files
    "ImageFolder": DatasetSpec(_FOLDER, None),
    "DatasetFolder": DatasetSpec(("root", "loader", "extensions", "transform", "target_transform"), None),
    "ImageNet": DatasetSpec(("root", "split"), None, "RGB", {"train": 1281167, "val": 50000}, 1000),
    "Places365": DatasetSpec(("root", "split", "small", "download", "transform", "target_transform"), None,
                             "RGB", {}, 365),
    "Food101": DatasetSpec(_SPLIT, None, "RGB", {"train": 75750, "test": 25250}, 101),
    "Flowers102": DatasetSpec(_SPLIT, None, "RGB", {"train": 1020, "val": 1020, "test": 6149}),
    "OxfordIIITPet": DatasetSpec(("root", "split", "target_types", "transforms", "transform", "target_transform"),
                                 None, "RGB", {}, 37),
    "StanfordCars": DatasetSpec(_SPLIT, None, "RGB", {}, 196),
    "Caltech101": DatasetSpec(("root", "target_type", "transform", "target_transform", "download"), None),
    "Caltech256": DatasetSpec(("root", "transform", "target_transform", "download"), None),
    "DTD": DatasetSpec(("root", "split", "partition", "transform", "target_transform"), None, "RGB", {}, 47),
    "FGVCAircraft": DatasetSpec(("root", "split", "annotation_level", "transform", "target_transform"), None),
    "Country211": DatasetSpec(_SPLIT, None, "RGB", {}, 211),
    "SUN397": DatasetSpec(("root", "transform", "target_transform", "download"), None),
    "GTSRB": DatasetSpec(_SPLIT, None, "RGB", {"train": 26640, "test": 12630}, 43),
    "INaturalist": DatasetSpec(("root", "version", "target_type", "transform", "target_transform"), None),
}

_DEFAULT_SPLIT = {"ImageNet": "train", "Places365": "train-standard", "OxfordIIITPet": "trainval"}


@dataclass(frozen=True)
class VisionOrigin(SampleOrigin):
    """A torchvision dataset's origin: where it was made, and where (for the unknowns it yields)."""

    made: str = ""
    ref: SourceRef | None = None


def _bind(spec: DatasetSpec, a: Args, k: Kwargs) -> dict[str, Any]:
    values = dict(zip(spec.params, a))
    values.update(k)
    return values


def _length(name: str, spec: DatasetSpec, values: dict[str, Any]) -> Any:
    if "split" in spec.params or name in _DEFAULT_SPLIT:
        split = values.get("split", _DEFAULT_SPLIT.get(name, "train"))
    else:
        split = "train" if values.get("train", True) is True else "test"
    n = spec.lengths.get(split) if isinstance(split, str) else None
    return n


def _init(name: str, spec: DatasetSpec) -> NativeFunction:
    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst, values = a[0], _bind(spec, a[1:], k)
        for key in ("root", "train", "split", "transform", "target_transform"):
            if key in values:
                inst.attrs[key] = values[key]
        inst.attrs.setdefault("transform", None)
        inst.attrs.setdefault("target_transform", None)
        if isinstance(spec.classes, tuple):
            inst.attrs["classes"] = list(spec.classes)
            inst.attrs["class_to_idx"] = {c: i for i, c in enumerate(spec.classes)}
        made = f"{name} at {where(ev)}"
        inst.state = VisionOrigin(made, _length(name, spec, values), made=made, ref=ev.current_ref)
        return None

    return NativeFunction(f"torchvision.datasets.{name}.__init__", init)


def _fakedata_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst = a[0]
    values = _bind(DatasetSpec(("size", "image_size", "num_classes", "transform", "target_transform"), None),
                   a[1:], k)
    inst.attrs.update(size=values.get("size", 1000), image_size=values.get("image_size", (3, 224, 224)),
                      num_classes=values.get("num_classes", 10), transform=values.get("transform"),
                      target_transform=values.get("target_transform"))
    made = f"FakeData at {where(ev)}"
    size = inst.attrs["size"]
    inst.state = VisionOrigin(made, size if isinstance(size, int) else None, made=made, ref=ev.current_ref)
    return None


def _image(ev: Evaluator, inst: Instance, name: str, spec: DatasetSpec | None, origin: VisionOrigin) -> Any:
    """The raw sample image, before the transform."""
    if spec is None:  # FakeData: (C, H, W)
        size = inst.attrs.get("image_size")
        if not (isinstance(size, (tuple, list)) and len(size) == 3):
            return Unknown("FakeData's image_size is not a known (C, H, W)", ev.current_ref)
        mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(size[0], "RGB") if isinstance(size[0], int) else "RGB"
        return ImageValue(size[2], size[1], mode)
    if spec.size is not None:
        return ImageValue(spec.size[0], spec.size[1], spec.mode)
    u = Unknown(f"{origin.made}: the images' size is unknown (they are read from files): give --input-shape, "
                "or a transform that fixes the size (Resize((224, 224)), CenterCrop(224), RandomResizedCrop(224))",
                origin.ref)
    return ImageValue(u, u, spec.mode)


def _sample_text(sample: Any) -> str:
    if isinstance(sample, TensorValue):
        return shape_text(sample.shape)
    if isinstance(sample, ImageValue):
        return f"a {sample.width}x{sample.height} {sample.mode} PIL image"
    return "an unknown sample"


def _getitem(name: str, spec: DatasetSpec | None) -> NativeFunction:
    def getitem(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        origin = inst.state if isinstance(inst.state, VisionOrigin) else VisionOrigin(name, None, made=name)
        img = _image(ev, inst, name, spec, origin)
        transform, target_transform = inst.attrs.get("transform"), inst.attrs.get("target_transform")
        if transform is not None and not isinstance(img, Unknown):
            img = ev.call(transform, (img,), {})
        target: Any = 0  # a class index (its value is not known, its type is)
        if target_transform is not None:
            target = ev.call(target_transform, (target,), {})
        after = f" after {pipeline_text(transform)}" if transform is not None else " (no transform)"
        inst.state = VisionOrigin(f"{origin.made}: {_sample_text(img)}{after}", origin.length, made=origin.made,
                                  ref=origin.ref)
        return (img, target)

    return NativeFunction(f"torchvision.datasets.{name}.__getitem__", getitem)


def _len(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    origin = a[0].state
    if isinstance(origin, SampleOrigin) and isinstance(origin.length, int):
        return origin.length
    return Unknown(f"the number of samples of {a[0].cls.name} is not known", ev.current_ref)


def _getattr(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, attr = a[0], a[1]
    if attr.startswith("__"):
        raise ev.raise_error("AttributeError", f"'{inst.cls.name}' object has no attribute '{attr}'")
    return Unknown(f"`{inst.cls.name}.{attr}` is not modelled by vramlint (it is read from the dataset's files)",
                   ev.current_ref)


def _vision_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """VisionDataset(root, transforms=None, transform=None, target_transform=None), subclassed by users."""
    inst = a[0]
    names = ("root", "transforms", "transform", "target_transform")
    for i, key in enumerate(names):
        value = a[i + 1] if len(a) > i + 1 else k.get(key, MISSING)
        inst.attrs[key] = None if value is MISSING else value
    return None


def dataset_classes(loader: Loader) -> dict[str, ClassValue]:
    found: dict[str, ClassValue] | None = loader.frontend_state.get("torchvision.datasets")
    if found is not None:
        return found
    base = data_classes(loader)["Dataset"]
    mod = "torchvision.datasets"
    vision = ClassValue("VisionDataset", (base,), {"__init__": NativeFunction(f"{mod}.VisionDataset.__init__",
                                                                              _vision_init)}, mod)
    common = {"__len__": NativeFunction(f"{mod}.__len__", _len), "__getattr__": NativeFunction(f"{mod}.__getattr__",
                                                                                                 _getattr)}
    classes = {"VisionDataset": vision}
    for name, spec in SPECS.items():
        classes[name] = ClassValue(name, (vision,), {"__init__": _init(name, spec), "__getitem__": _getitem(name, spec),
                                                     **common}, mod)
    classes["FakeData"] = ClassValue("FakeData", (vision,), {
        "__init__": NativeFunction(f"{mod}.FakeData.__init__", _fakedata_init),
        "__getitem__": _getitem("FakeData", None), **common}, mod)
    loader.frontend_state["torchvision.datasets"] = classes
    return classes


MODULES = ("torchvision.datasets", "torchvision.datasets.folder", "torchvision.datasets.vision",
           "torchvision.datasets.mnist", "torchvision.datasets.cifar", "torchvision.datasets.fakedata")


def datasets_module(loader: Loader, dotted: str) -> ModuleValue:
    classes = dataset_classes(loader)

    def missing(attr: str) -> Any:
        return Unknown(f"`torchvision.datasets.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)

    ns: dict[str, Any] = dict(classes)
    ns["default_loader"] = NativeFunction("torchvision.datasets.folder.default_loader", lambda ev, a, k: ImageValue(
        Unknown("an image file's size is not read", ev.current_ref), Unknown("an image file's size is not read",
                                                                             ev.current_ref), "RGB"))
    ns["IMG_EXTENSIONS"] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
    return ModuleValue(dotted, ns, getattr_hook=missing)
