"""`torchvision.transforms` and `transforms.v2` as shape rules (torchvision 0.26.0).

A transform takes a PIL image (images.ImageValue) or a tensor and gives what torchvision would,
as far as the batch's shape and dtype go: ToTensor makes a float32 CxHxW tensor, PILToTensor and
v2's ToImage uint8, Resize / CenterCrop / RandomCrop / RandomResizedCrop fix the size, Grayscale
the channels; the augmentations that keep the shape (flips, rotation, color jitter, AutoAugment,
RandomErasing, Normalize...) give their input back. Each transform keeps a text of how it was
made ("RandomCrop(32, padding=4)") for the sample's origin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import (
    Args,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    Unknown,
    Value,
)
from vramlint.frontends.torch.tensors import DType, TensorValue, dtype_name
from vramlint.frontends.torchvision_data.images import ImageValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

Apply = Callable[["Evaluator", Any], Any]
Rule = Callable[["Evaluator", Args, Kwargs], Apply]


@dataclass(frozen=True)
class Transform:
    """A made transform: how it was written, and what it does to an image or tensor."""

    text: str
    apply: Apply


def _arg(a: Args, k: Kwargs, i: int, name: str, default: Any = None) -> Any:
    return a[i] if len(a) > i else k.get(name, default)


def _text_of(v: Any) -> str:
    if isinstance(v, DType):
        return f"torch.{v.name}"
    if isinstance(v, Instance) and isinstance(v.state, Transform):
        return v.state.text
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_text_of(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
    if isinstance(v, Value):
        return getattr(v, "name", None) or v.type_name
    return repr(v)


def call_text(name: str, a: Args, k: Kwargs) -> str:
    parts = [_text_of(x) for x in a] + [f"{key}={_text_of(v)}" for key, v in k.items()]
    return f"{name}({', '.join(parts)})"


def pipeline_text(transform: Any) -> str:
    """The transforms a sample went through, for its origin: "RandomCrop(32, padding=4), ToTensor()"."""
    if isinstance(transform, Instance) and isinstance(transform.state, Transform):
        text = transform.state.text
        if text.startswith("Compose(["):
            return text[len("Compose(["):-2]
        return text
    return getattr(transform, "name", None) or "a transform"


# ---------------------------------------------------------------------- size rules
def _resized(ev: Evaluator, x: Any, height: Any, width: Any, what: str) -> Any:
    """`x` with a new spatial size (an image's, or a tensor's last two dimensions)."""
    if isinstance(x, ImageValue):
        return ImageValue(width, height, x.mode)
    if isinstance(x, TensorValue):
        if not isinstance(x.shape, tuple):
            return x
        if len(x.shape) < 2:
            raise ev.raise_error("ValueError", f"{what}: a tensor of shape {list(x.shape)} is not an image")
        return TensorValue((*x.shape[:-2], height, width), x.dtype)
    return _not_image(ev, x, what)


def _not_image(ev: Evaluator, x: Any, what: str) -> Any:
    if isinstance(x, Unknown):
        return x
    return Unknown(f"{what} of a {getattr(x, 'type_name', type(x).__name__)}, not an image or tensor", ev.current_ref)


def _spatial(x: Any) -> tuple[Any, Any] | None:
    """(height, width) of an image or image tensor."""
    if isinstance(x, ImageValue):
        return x.height, x.width
    if isinstance(x, TensorValue) and isinstance(x.shape, tuple) and len(x.shape) >= 2:
        return x.shape[-2], x.shape[-1]
    return None


def _pair(size: Any) -> tuple[Any, Any] | None:
    """(h, w) of a crop size: an int is square, a one-item sequence too; None if not a size."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 1:
        return size[0], size[0]
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return size[0], size[1]
    return None


def _crop(name: str) -> Rule:
    """CenterCrop, RandomCrop, RandomResizedCrop: the output is `size` (h, w)."""

    def rule(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
        size = _pair(_arg(a, k, 0, "size"))
        padding = _arg(a, k, 1, "padding") if name == "RandomCrop" else None

        def apply(ev: Evaluator, x: Any) -> Any:
            if size is None:
                return Unknown(f"{name}: its size is not known", ev.current_ref)
            if padding is not None:
                x = _pad(ev, x, padding, name)
            return _resized(ev, x, size[0], size[1], name)

        return apply

    return rule


def _resize_rule(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    """Resize(size): a pair is exact; an int (or one-item list) is the shorter side, the longer
    scaled to keep the aspect ratio (torchvision functional._compute_resized_output_size)."""
    size, max_size = _arg(a, k, 0, "size"), _arg(a, k, 2, "max_size")

    def apply(ev: Evaluator, x: Any) -> Any:
        hw = _spatial(x)
        if hw is None:
            return _not_image(ev, x, "Resize")
        if isinstance(size, (list, tuple)) and len(size) == 2:
            return _resized(ev, x, size[0], size[1], "Resize")
        short_to = size[0] if isinstance(size, (list, tuple)) and len(size) == 1 else size
        h, w = hw
        if not isinstance(short_to, int):
            return _resized(ev, x, Unknown("Resize: its size is not known", ev.current_ref),
                            Unknown("Resize: its size is not known", ev.current_ref), "Resize")
        if not (isinstance(h, int) and isinstance(w, int)):
            unknown = h if isinstance(h, Unknown) else w
            reason = unknown.reason if isinstance(unknown, Unknown) else "the image's size is unknown"
            # located where the size became unknown (the dataset), not at the loop that made the batch
            ref = unknown.ref if isinstance(unknown, Unknown) and unknown.ref is not None else ev.current_ref
            u = Unknown(f"{reason}; Resize({short_to}) keeps their aspect ratio", ref)
            return _resized(ev, x, u, u, "Resize")
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = short_to, int(short_to * long / short)
        if isinstance(max_size, int) and new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        return _resized(ev, x, new_h, new_w, "Resize")

    return apply


def _pad(ev: Evaluator, x: Any, padding: Any, what: str) -> Any:
    if isinstance(padding, int):
        left = top = right = bottom = padding
    elif isinstance(padding, (list, tuple)) and len(padding) in (1, 2, 4):
        p = list(padding)
        left, top, right, bottom = (p * 4)[:4] if len(p) == 1 else (p[0], p[1], p[0], p[1]) if len(p) == 2 else p
    else:
        return Unknown(f"{what}: padding {padding!r} is not modelled", ev.current_ref)
    hw = _spatial(x)
    if hw is None:
        return _not_image(ev, x, what)
    return _resized(ev, x, hw[0] + top + bottom, hw[1] + left + right, what)


def _pad_rule(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    padding = _arg(a, k, 0, "padding")
    return lambda ev, x: _pad(ev, x, padding, "Pad")


# ---------------------------------------------------------------------- conversions
def _to_tensor(dtype: str, name: str) -> Rule:
    """ToTensor (float32 in [0, 1]), PILToTensor and v2's ToImage (uint8): an image's CxHxW tensor."""

    def rule(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
        def apply(ev: Evaluator, x: Any) -> Any:
            if isinstance(x, ImageValue):
                return TensorValue((x.channels, x.height, x.width), dtype)
            if isinstance(x, TensorValue) and name == "ToImage":
                return x
            if isinstance(x, TensorValue) and type(x).__name__ == "NumpyArray" and isinstance(x.shape, tuple):
                # an HxWxC ndarray becomes CxHxW
                hwc = x.shape if len(x.shape) == 3 else (*x.shape, 1)
                return TensorValue((hwc[2], hwc[0], hwc[1]), "float32" if name == "ToTensor" else x.dtype)
            if isinstance(x, TensorValue):
                raise ev.raise_error("TypeError", f"{name}: pic should be PIL Image or ndarray. Got <class 'torch.Tensor'>")
            return _not_image(ev, x, name)

        return apply

    return rule


def _to_dtype(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    """ToDtype / ConvertImageDtype: tensors take the dtype; a PIL image passes through (v2)."""
    dtype = _arg(a, k, 0, "dtype")

    def apply(ev: Evaluator, x: Any) -> Any:
        if isinstance(x, TensorValue) and isinstance(dtype, DType):
            return TensorValue(x.shape, dtype_name(dtype))
        return x

    return apply


def _to_pil(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    mode = _arg(a, k, 0, "mode")

    def apply(ev: Evaluator, x: Any) -> Any:
        if isinstance(x, ImageValue):
            return x
        if isinstance(x, TensorValue) and isinstance(x.shape, tuple) and len(x.shape) in (2, 3):
            c = x.shape[0] if len(x.shape) == 3 else 1
            guessed = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(c, "RGB") if isinstance(c, int) else "RGB"
            return ImageValue(x.shape[-1], x.shape[-2], mode if isinstance(mode, str) else guessed)
        return _not_image(ev, x, "ToPILImage")

    return apply


def _grayscale(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    n = _arg(a, k, 0, "num_output_channels", 1)

    def apply(ev: Evaluator, x: Any) -> Any:
        if isinstance(x, ImageValue):
            return ImageValue(x.width, x.height, "L" if n == 1 else "RGB")
        if isinstance(x, TensorValue) and isinstance(x.shape, tuple) and len(x.shape) >= 3:
            return TensorValue((*x.shape[:-3], n, *x.shape[-2:]), x.dtype)
        return _not_image(ev, x, "Grayscale")

    return apply


def _normalize(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    def apply(ev: Evaluator, x: Any) -> Any:
        if isinstance(x, ImageValue):
            raise ev.raise_error("TypeError", "Normalize: img should be Tensor Image. Got <class 'PIL.Image.Image'> "
                                              "(put ToTensor() before Normalize)")
        return x

    return apply


def _keeps_shape(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    return lambda ev, x: x


def _rotation(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    expand = _arg(a, k, 2, "expand", False)
    if expand is True:
        return lambda ev, x: Unknown("RandomRotation(expand=True): the size depends on the angle", ev.current_ref)
    return lambda ev, x: x


def _sequence(first_only: bool) -> Rule:
    """Compose / RandomApply / RandomOrder (every transform, in order), RandomChoice (one: the first)."""

    def rule(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
        items = ev.list_of(_arg(a, k, 0, "transforms", []))

        def apply(ev: Evaluator, x: Any) -> Any:
            if isinstance(items, Unknown):
                return items
            for t in items[:1] if first_only else items:
                x = ev.call(t, (x,), {})
            return x

        return apply

    return rule


def _lambda(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
    fn = _arg(a, k, 0, "lambd")
    return lambda ev, x: ev.call(fn, (x,), {})


def _not_modelled(name: str) -> Rule:
    def rule(ev: Evaluator, a: Args, k: Kwargs) -> Apply:
        return lambda ev, x: Unknown(f"transforms.{name} is not modelled by vramlint", ev.current_ref)

    return rule


_SHAPE_KEEPING = (
    "RandomHorizontalFlip", "RandomVerticalFlip", "ColorJitter", "AutoAugment", "RandAugment", "TrivialAugmentWide",
    "AugMix", "RandomErasing", "GaussianBlur", "RandomAffine", "RandomPerspective", "RandomInvert", "RandomPosterize",
    "RandomSolarize", "RandomAdjustSharpness", "RandomAutocontrast", "RandomEqualize", "RandomGrayscale",
    "ElasticTransform", "LinearTransformation", "GaussianNoise", "Identity", "SanitizeBoundingBoxes", "ToPureTensor",
    "ClampBoundingBoxes", "RandomPhotometricDistort", "RandomChannelPermutation", "JPEG",
)

RULES: dict[str, Rule] = {
    **{name: _keeps_shape for name in _SHAPE_KEEPING},
    "Compose": _sequence(False), "RandomApply": _sequence(False), "RandomOrder": _sequence(False),
    "RandomChoice": _sequence(True), "Lambda": _lambda,
    "ToTensor": _to_tensor("float32", "ToTensor"), "PILToTensor": _to_tensor("uint8", "PILToTensor"),
    "ToImage": _to_tensor("uint8", "ToImage"), "ToDtype": _to_dtype, "ConvertImageDtype": _to_dtype,
    "ToPILImage": _to_pil, "Normalize": _normalize, "Grayscale": _grayscale, "RandomRotation": _rotation,
    "Resize": _resize_rule, "CenterCrop": _crop("CenterCrop"), "RandomCrop": _crop("RandomCrop"),
    "RandomResizedCrop": _crop("RandomResizedCrop"), "RandomSizedCrop": _crop("RandomResizedCrop"), "Pad": _pad_rule,
    "FiveCrop": _not_modelled("FiveCrop"), "TenCrop": _not_modelled("TenCrop"),
    "RandomZoomOut": _not_modelled("RandomZoomOut"), "RandomIoUCrop": _not_modelled("RandomIoUCrop"),
    "ScaleJitter": _not_modelled("ScaleJitter"), "RandomShortestSize": _not_modelled("RandomShortestSize"),
}


# ---------------------------------------------------------------------- classes and modules
def _transform_class(obj: ClassValue, name: str, rule: Rule, module: str) -> ClassValue:
    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        inst.state = Transform(call_text(name, a[1:], k), rule(ev, a[1:], k))
        if a[1:] and name in ("Compose", "RandomApply", "RandomChoice", "RandomOrder"):
            inst.attrs["transforms"] = a[1]  # what code reads back (`tf.transforms.insert(...)`)
        return None

    def call(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        x = a[1] if len(a) > 1 else next(iter(k.values()), None)
        if not isinstance(inst.state, Transform):
            return Unknown(f"transforms.{name} was not initialised", ev.current_ref)
        return inst.state.apply(ev, x)

    method = NativeFunction(f"{module}.{name}.__call__", call)
    return ClassValue(name, (obj,), {"__init__": NativeFunction(f"{module}.{name}.__init__", init),
                                     "__call__": method, "forward": method}, module)


def _interpolation_mode(obj: ClassValue, module: str) -> ClassValue:
    names = ("NEAREST", "NEAREST_EXACT", "BILINEAR", "BICUBIC", "BOX", "HAMMING", "LANCZOS")
    return ClassValue("InterpolationMode", (obj,), {n: n.lower() for n in names}, module)


def _functional_ns(loader: Loader, classes: dict[str, ClassValue], module: str) -> dict[str, Any]:
    """transforms.functional's few shape-changing functions, by the same rules (F.resize(img, size))."""
    fns = {"to_tensor": "ToTensor", "pil_to_tensor": "PILToTensor", "to_pil_image": "ToPILImage", "resize": "Resize",
           "center_crop": "CenterCrop", "normalize": "Normalize", "hflip": "RandomHorizontalFlip",
           "vflip": "RandomVerticalFlip", "rgb_to_grayscale": "Grayscale", "to_grayscale": "Grayscale", "pad": "Pad",
           "to_image": "ToImage", "to_dtype": "ToDtype", "convert_image_dtype": "ConvertImageDtype"}

    def fn(transform: str) -> NativeFunction:
        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            x = a[0] if a else k.pop("img", k.pop("inpt", k.pop("pic", k.pop("tensor", None))))
            return RULES[transform](ev, a[1:], k)(ev, x)

        return NativeFunction(f"{module}.{transform}", impl)

    ns: dict[str, Any] = {name: fn(t) for name, t in fns.items()}
    ns["InterpolationMode"] = classes["InterpolationMode"]
    return ns


def transforms_module(loader: Loader, dotted: str) -> ModuleValue:
    """`torchvision.transforms`, `.v2`, and their `functional`."""
    state: dict[str, Any] = loader.frontend_state.setdefault("torchvision.transforms", {})
    obj = loader.builtins["object"]
    if "classes" not in state:
        classes = {name: _transform_class(obj, name, rule, "torchvision.transforms") for name, rule in RULES.items()}
        classes["InterpolationMode"] = _interpolation_mode(obj, "torchvision.transforms")
        state["classes"] = classes
    classes = state["classes"]

    def missing(attr: str) -> Any:
        return Unknown(f"`{dotted}.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)

    if dotted.endswith(".functional"):
        return ModuleValue(dotted, _functional_ns(loader, classes, dotted), getattr_hook=missing)
    ns: dict[str, Any] = dict(classes)
    ns["functional"] = loader.import_module(f"{dotted}.functional", None)
    if dotted == "torchvision.transforms":
        ns["v2"] = loader.import_module("torchvision.transforms.v2", None)

        def hook(attr: str) -> Any:
            # `_presets` (torchvision.models' weights' transforms) is read from torchvision's source.
            if attr.startswith("_"):
                return loader.import_module(f"{dotted}.{attr}", None)
            return missing(attr)

        return ModuleValue(dotted, ns, getattr_hook=hook)
    return ModuleValue(dotted, ns, getattr_hook=missing)


MODULES = ("torchvision.transforms", "torchvision.transforms.v2", "torchvision.transforms.functional",
           "torchvision.transforms.v2.functional")

__all__ = ["MODULES", "RULES", "Transform", "pipeline_text", "transforms_module"]
