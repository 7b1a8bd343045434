"""`torch.nn.utils`: the reparametrizations that change which parameters a layer has.

weight_norm splits `weight` into a magnitude `weight_g` and a direction `weight_v` (one row more
of parameters per output unit); spectral_norm keeps `weight_orig` and adds power-iteration buffers.
The `parametrizations` versions keep the originals under `layer.parametrizations.weight`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, Instance, Kwargs, ModuleValue, NativeFunction, Unknown
from vramlint.frontends.torch.module import is_module, state_of
from vramlint.frontends.torch.tensors import TensorValue, numel

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader



def _arg(a: Args, k: Kwargs, i: int, name: str, default: Any = None) -> Any:
    return a[i] if len(a) > i else k.get(name, default)


def _param(shape: tuple[Any, ...], like: TensorValue) -> TensorValue:
    t = TensorValue(shape, like.dtype)
    t.is_param = True
    t.requires_grad = like.requires_grad
    return t


def _computed(module: Instance, name: str, w: TensorValue) -> None:
    """`module.<name>` still reads as a tensor of the weight's shape, computed from the new
    parameters (a plain attribute for the old hooks, a property of the parametrized class for
    `parametrizations.*`): code that initialises `layer.weight` afterwards (transformers'
    `_init_weights`) reads it. Not a parameter: it is counted through its originals."""
    module.attrs[name] = TensorValue(w.shape, w.dtype)


def _target(ev: Evaluator, a: Args, k: Kwargs, what: str) -> tuple[Instance, str, TensorValue] | Unknown:
    module, name = _arg(a, k, 0, "module"), _arg(a, k, 1, "name", "weight")
    if not is_module(module):
        return module if isinstance(module, Unknown) else Unknown(f"{what} of a non-module", ev.current_ref)
    w = state_of(module).params.get(name)
    if not isinstance(w, TensorValue) or isinstance(w.shape, Unknown):
        return Unknown(f"{what}: `{name}` is not a parameter of known shape", ev.current_ref)
    return module, name, w


def _norm_dim(dim: Any, rank: int) -> Any:
    return dim + rank if isinstance(dim, int) and dim < 0 else dim


def _magnitude_shape(shape: tuple[Any, ...], dim: Any) -> tuple[Any, ...]:
    """weight_g: one value per slice along `dim` (all of it when dim is None), kept broadcastable."""
    if dim is None:
        return ()
    d = _norm_dim(dim, len(shape))
    return tuple(s if i == d else 1 for i, s in enumerate(shape))


def _default_dim(module: Instance) -> int:
    # ConvTranspose weights are (in, out, ...): their output dimension is 1.
    return 1 if any(k.name.startswith("ConvTranspose") for k in module.cls.mro) else 0


Reparametrize = Callable[["Evaluator", Args, Kwargs, Instance, str, TensorValue, tuple[Any, ...]], Any]


def reparametrization(what: str) -> Callable[[Reparametrize], Callable[..., Any]]:
    """A torch.nn.utils function of (module, name="weight", ...): resolves the parameter first."""

    def wrap(fn: Reparametrize) -> Callable[..., Any]:
        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            t = _target(ev, a, k, what)
            if isinstance(t, Unknown):
                return t
            module, name, w = t
            assert isinstance(w.shape, tuple)
            return fn(ev, a, k, module, name, w, w.shape)

        return impl

    return wrap


def _spectral_dim(a: Args, k: Kwargs, module: Instance, shape: tuple[Any, ...]) -> Any:
    dim = _norm_dim(_arg(a, k, 4, "dim", None), len(shape))
    return _default_dim(module) if dim is None else dim


def _power_iteration(shape: tuple[Any, ...], dim: Any, dtype: str) -> tuple[TensorValue, TensorValue]:
    """The u and v vectors of spectral norm: the weight seen as a (shape[dim], rest) matrix."""
    h = shape[dim]
    rest = numel(shape) // h if isinstance(h, int) and h else Unknown("spectral norm of an empty dimension")
    return TensorValue((h,), dtype), TensorValue((rest,), dtype)


@reparametrization("weight_norm")
def weight_norm(ev: Evaluator, a: Args, k: Kwargs, module: Instance, name: str, w: TensorValue,
                shape: tuple[Any, ...]) -> Any:
    st = state_of(module)
    del st.params[name]
    st.params[f"{name}_g"] = _param(_magnitude_shape(shape, _arg(a, k, 2, "dim", 0)), w)
    st.params[f"{name}_v"] = _param(shape, w)
    _computed(module, name, w)
    return module


@reparametrization("spectral_norm")
def spectral_norm(ev: Evaluator, a: Args, k: Kwargs, module: Instance, name: str, w: TensorValue,
                  shape: tuple[Any, ...]) -> Any:
    st = state_of(module)
    del st.params[name]
    st.params[f"{name}_orig"] = _param(shape, w)
    st.buffers[f"{name}_u"], st.buffers[f"{name}_v"] = _power_iteration(shape, _spectral_dim(a, k, module, shape),
                                                                       w.dtype)
    _computed(module, name, w)
    return module


def _parametrize(ev: Evaluator, module: Instance, name: str, w: TensorValue,
                 originals: dict[str, TensorValue], parametrization: Any, keeps_shape: bool = True) -> Instance:
    """Move `name` under module.parametrizations[name] (a ParametrizationList) as torch does."""
    from vramlint.frontends.torch.stubs import torch_classes

    classes = torch_classes(ev.loader).layers
    st = state_of(module)
    del st.params[name]
    holder = st.modules.get("parametrizations")
    if not isinstance(holder, Instance) or not is_module(holder):
        holder = ev.protocol.instantiate(classes["ModuleDict"], (), {})
        st.modules["parametrizations"] = holder
    plist = ev.protocol.instantiate(classes["ParametrizationList"], (), {})
    state_of(plist).params.update(originals)
    if parametrization is not None:
        state_of(plist).modules["0"] = parametrization
    state_of(holder).modules[name] = plist
    if keeps_shape:
        _computed(module, name, w)
    return module


def _inner(ev: Evaluator, cls_name: str) -> Instance:
    from vramlint.frontends.torch.stubs import torch_classes

    return ev.protocol.instantiate(torch_classes(ev.loader).layers[cls_name], (), {})  # type: ignore[no-any-return]


@reparametrization("parametrizations.weight_norm")
def p_weight_norm(ev: Evaluator, a: Args, k: Kwargs, module: Instance, name: str, w: TensorValue,
                  shape: tuple[Any, ...]) -> Any:
    g = _param(_magnitude_shape(shape, _arg(a, k, 2, "dim", 0)), w)
    return _parametrize(ev, module, name, w, {"original0": g, "original1": _param(shape, w)},
                        _inner(ev, "_WeightNorm"))


@reparametrization("parametrizations.spectral_norm")
def p_spectral_norm(ev: Evaluator, a: Args, k: Kwargs, module: Instance, name: str, w: TensorValue,
                    shape: tuple[Any, ...]) -> Any:
    inner = _inner(ev, "_SpectralNorm")
    if len(shape) > 1:
        u, v = _power_iteration(shape, _spectral_dim(a, k, module, shape), w.dtype)
        state_of(inner).buffers.update(_u=u, _v=v)
    return _parametrize(ev, module, name, w, {"original": _param(shape, w)}, inner)


@reparametrization("parametrizations.orthogonal")
def p_orthogonal(ev: Evaluator, a: Args, k: Kwargs, module: Instance, name: str, w: TensorValue,
                 shape: tuple[Any, ...]) -> Any:
    return _parametrize(ev, module, name, w, {"original": _param(shape, w)}, _inner(ev, "_Orthogonal"))


def register_parametrization(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    module, name, param = _arg(a, k, 0, "module"), _arg(a, k, 1, "tensor_name"), _arg(a, k, 2, "parametrization")
    t = _target(ev, (module, name), {}, "register_parametrization")
    if isinstance(t, Unknown):
        return t
    module, name, w = t
    # A user parametrization may change the shape: `module.<name>` is then not known.
    return _parametrize(ev, module, name, w, {"original": _param(w.shape, w)},  # type: ignore[arg-type]
                        param if is_module(param) else None, keeps_shape=False)


def _noop(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return None


def nn_utils_module(loader: Loader, dotted: str) -> ModuleValue | None:
    """Native resolver for torch.nn.utils and its submodules."""
    fns: dict[str, dict[str, Any]] = {
        "torch.nn.utils": {"weight_norm": weight_norm, "spectral_norm": spectral_norm,
                           "clip_grad_norm_": _noop, "clip_grad_value_": _noop,
                           "remove_weight_norm": lambda ev, a, k: a[0], "remove_spectral_norm": lambda ev, a, k: a[0]},
        "torch.nn.utils.parametrizations": {"weight_norm": p_weight_norm, "spectral_norm": p_spectral_norm,
                                            "orthogonal": p_orthogonal},
        "torch.nn.utils.parametrize": {"register_parametrization": register_parametrization},
    }
    if dotted not in fns:
        return None
    ns: dict[str, Any] = {name: NativeFunction(f"{dotted}.{name}", fn) for name, fn in fns[dotted].items()}
    if dotted == "torch.nn.utils":
        ns["parametrizations"] = loader.import_module("torch.nn.utils.parametrizations", None)
        ns["parametrize"] = loader.import_module("torch.nn.utils.parametrize", None)

    def hook(attr: str) -> Any:
        sub = loader.import_module(f"{dotted}.{attr}", None) if dotted == "torch.nn.utils" else None
        if isinstance(sub, ModuleValue):
            return sub
        return Unknown(f"`{dotted}.{attr}` is not modelled by vramlint", loader.evaluator.current_ref)

    return ModuleValue(dotted, ns, getattr_hook=hook)
