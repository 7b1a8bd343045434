"""torch.fft: the shapes and dtypes of the discrete Fourier transforms (torch 2.13 semantics).

A complex transform keeps each transformed dimension (or takes its `n`/`s`); a real-input
transform (`rfft*`) halves the last transformed dimension to `n // 2 + 1`; its inverse (`irfft*`)
gives `2 * (m - 1)` real values unless `n`/`s` says otherwise. Values are not computed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, Kwargs, NativeFunction, Unknown
from vramlint.frontends.torch.tensors import TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator


def _complex_of(dtype: str) -> str:
    if dtype.startswith("complex"):
        return dtype
    return "complex128" if dtype == "float64" else "complex64"


def _real_of(dtype: str) -> str:
    return {"complex128": "float64", "complex64": "float32"}.get(dtype, dtype if dtype.startswith("float") else "float32")


def _transform(kind: str, multi: bool, default_dims: tuple[int, ...] | None) -> Callable[..., Any]:
    """kind: "c" (complex in, complex out), "r" (real in, half spectrum out), "ir" (half
    spectrum in, real out). multi: takes `s`/`dim` sequences (fft2, fftn) instead of `n`/`dim`."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        t = a[0] if a else k.get("input")
        if isinstance(t, Unknown):
            return t
        if not isinstance(t, TensorValue):
            return Unknown("torch.fft of a non-tensor", ev.current_ref)
        if isinstance(t.shape, Unknown):
            return t.shape
        shape = list(t.shape)
        rank = len(shape)
        size = a[1] if len(a) > 1 else k.get("s" if multi else "n")
        dim = a[2] if len(a) > 2 else k.get("dim")
        if multi:
            dims: Sequence[Any] | None = dim if dim is not None else default_dims
            sizes = size
            if dims is None:  # fftn: every dimension, or the last len(s)
                dims = tuple(range(rank - len(sizes), rank)) if isinstance(sizes, (list, tuple)) else tuple(range(rank))
        else:
            dims, sizes = (-1 if dim is None else dim,), (None if size is None else (size,))
        if isinstance(dims, int):
            dims = (dims,)
        if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) for d in dims):
            return Unknown("torch.fft with an unknown `dim`", ev.current_ref)
        if sizes is not None and (not isinstance(sizes, (list, tuple)) or len(sizes) != len(dims)):
            return Unknown("torch.fft with an unknown size", ev.current_ref)
        for i, d in enumerate(dims):
            if not -rank <= d < rank:
                raise ev.raise_error("IndexError", f"Dimension out of range (got {d})")
            d %= rank
            n = sizes[i] if sizes is not None else None
            last = i == len(dims) - 1
            if kind == "r" and last:
                shape[d] = (shape[d] if n is None else n) // 2 + 1
            elif kind == "ir" and last:
                shape[d] = 2 * (shape[d] - 1) if n is None else n
            elif n is not None:
                shape[d] = n
        dtype = _real_of(t.dtype) if kind == "ir" else _complex_of(t.dtype)
        return TensorValue(tuple(shape), dtype)

    return impl


def _same(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    t = a[0] if a else k.get("input")
    return TensorValue(t.shape, t.dtype) if isinstance(t, TensorValue) else t


def _freq(half: bool) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        n = a[0] if a else k.get("n")
        if not isinstance(n, int):
            return n if isinstance(n, Unknown) else Unknown("fftfreq of a non-integer", ev.current_ref)
        return TensorValue((n // 2 + 1 if half else n,), "float32")

    return impl


def fft_namespace() -> dict[str, Any]:
    fns: dict[str, Callable[..., Any]] = {
        "fft": _transform("c", False, None), "ifft": _transform("c", False, None),
        "rfft": _transform("r", False, None), "irfft": _transform("ir", False, None),
        "hfft": _transform("ir", False, None), "ihfft": _transform("r", False, None),
        "fft2": _transform("c", True, (-2, -1)), "ifft2": _transform("c", True, (-2, -1)),
        "rfft2": _transform("r", True, (-2, -1)), "irfft2": _transform("ir", True, (-2, -1)),
        "fftn": _transform("c", True, None), "ifftn": _transform("c", True, None),
        "rfftn": _transform("r", True, None), "irfftn": _transform("ir", True, None),
        "fftshift": _same, "ifftshift": _same, "fftfreq": _freq(False), "rfftfreq": _freq(True),
    }
    return {name: NativeFunction(f"torch.fft.{name}", fn) for name, fn in fns.items()}
