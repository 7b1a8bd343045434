"""The few numpy functions model code uses while building layers (np.linspace for drop rates...)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from vramlint.engine.builtins import _prod, pure
from vramlint.engine.values import ClassValue, ModuleValue, NativeFunction, Unknown
from vramlint.frontends.torch import stubs
from vramlint.frontends.torch.tensors import TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader


class NumpyArray(TensorValue):
    """A numpy array made by this stub (np.linspace, np.arange): a tensor of shapes, that
    `isinstance(x, np.ndarray)` recognises. (What arithmetic makes of it is a plain tensor.)"""

    __slots__ = ()


def _as_numpy(t: Any) -> Any:
    if isinstance(t, TensorValue) and not isinstance(t, NumpyArray):
        out = NumpyArray(t.shape, t.dtype, data=t.data)
        return out
    return t


def _linspace(ev: Evaluator, a: tuple[Any, ...], k: dict[str, Any]) -> Any:
    t = stubs._linspace(ev, a, {**k, "dtype": "float64"})
    if isinstance(t, TensorValue) and t.data is not None:
        t.data = [float(x) for x in t.data]
    return _as_numpy(t)


def _ndarray(loader: Loader) -> ClassValue:
    from vramlint.engine.builtins import _InstanceCheck

    return ClassValue("ndarray", (loader.builtins["object"],), {}, "numpy",
                      native=_InstanceCheck(lambda ev, v: isinstance(v, NumpyArray)))


def numpy_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted != "numpy":
        return None
    ns: dict[str, Any] = {
        "linspace": NativeFunction("numpy.linspace", _linspace),
        "arange": NativeFunction("numpy.arange", lambda ev, a, k: _as_numpy(stubs._arange(ev, a, k))),
        "ndarray": _ndarray(loader),
        "prod": NativeFunction("numpy.prod", _prod),
        "pi": math.pi, "e": math.e, "inf": math.inf,
    }
    for name in ("sqrt", "ceil", "floor", "log", "log2", "exp"):
        ns[name] = pure(f"numpy.{name}", getattr(math, name))
    return ModuleValue("numpy", ns, getattr_hook=lambda attr: Unknown(f"`numpy.{attr}` is not modelled", None))
