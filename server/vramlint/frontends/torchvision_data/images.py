"""A PIL image as the evaluator sees it: its size and mode, no pixels.

torchvision's datasets yield PIL images (MNIST: 28x28 "L", CIFAR10: 32x32 "RGB"), which the
transforms resize, crop and turn into tensors. Code reads `img.size`, `img.mode`, calls
`img.convert("RGB")`; nothing else of an image shapes a batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import MISSING, NativeFunction, Unknown, Value

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator

# Channels of a PIL mode, as ToTensor gives them.
MODE_CHANNELS = {"1": 1, "L": 1, "P": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3,
                 "HSV": 3, "RGBA": 4, "CMYK": 4}


class ImageValue(Value):
    """A PIL.Image.Image of `width` x `height` (ints, or Unknowns saying why) in `mode`."""

    __slots__ = ("width", "height", "mode")
    type_name = "PIL.Image.Image"

    def __init__(self, width: Any, height: Any, mode: str) -> None:
        self.width = width
        self.height = height
        self.mode = mode

    def __repr__(self) -> str:
        return f"Image({self.width}x{self.height}, {self.mode})"

    @property
    def channels(self) -> int:
        return MODE_CHANNELS.get(self.mode, 3)

    def get_attribute(self, ev: Evaluator, name: str) -> Any:
        if name == "size":
            return (self.width, self.height)
        if name in ("width", "height", "mode"):
            return getattr(self, name)
        if name == "convert":
            return NativeFunction("Image.convert", lambda ev, a, k: ImageValue(
                self.width, self.height, a[0] if a and isinstance(a[0], str) else k.get("mode", self.mode)))
        if name == "resize":
            return NativeFunction("Image.resize", self._resize)
        if name == "copy":
            return NativeFunction("Image.copy", lambda ev, a, k: ImageValue(self.width, self.height, self.mode))
        return MISSING

    def _resize(self, ev: Evaluator, a: Any, k: Any) -> Any:
        size = a[0] if a else k.get("size")
        if isinstance(size, (tuple, list)) and len(size) == 2:
            return ImageValue(size[0], size[1], self.mode)
        return Unknown("Image.resize with an unknown size", ev.current_ref)
