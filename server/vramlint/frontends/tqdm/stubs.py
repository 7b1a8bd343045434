"""The `tqdm` package: a progress bar passes its iterable through.

Training loops iterate `tqdm(loader)`; the loop must see the loader's batches, and the bar's
methods (`set_postfix`, `set_description`, `update`...) change nothing the analysis tracks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vramlint.engine.values import (
    Args,
    ClassValue,
    Kwargs,
    ModuleValue,
    NativeFunction,
    StateFreeFunction,
    StaticMethod,
    Unknown,
)

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

MODULES = ("tqdm", "tqdm.auto", "tqdm.autonotebook", "tqdm.notebook", "tqdm.std", "tqdm.rich", "tqdm.contrib")
_BAR_METHODS = ("set_description", "set_description_str", "set_postfix", "set_postfix_str", "update", "close",
                "refresh", "reset", "clear", "display", "unpause", "write")


def _init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst = a[0]
    inst.attrs["iterable"] = a[1] if len(a) > 1 else k.get("iterable")
    inst.attrs["n"] = 0
    inst.attrs["total"] = k.get("total")
    return None


def _iter(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    iterable = a[0].attrs.get("iterable")
    if iterable is None:
        return Unknown("iterating a tqdm bar made without an iterable", ev.current_ref)
    return ev.list_of(iterable)


def _len(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    total, iterable = a[0].attrs.get("total"), a[0].attrs.get("iterable")
    return total if total is not None else ev.protocol.length(iterable)


def _tqdm_class(loader: Loader) -> ClassValue:
    found: ClassValue | None = loader.frontend_state.get("tqdm")
    if found is None:
        ns: dict[str, Any] = {name: StateFreeFunction(f"tqdm.{name}", lambda ev, a, k: None) for name in _BAR_METHODS}
        ns["write"] = StaticMethod(StateFreeFunction("tqdm.write", lambda ev, a, k: None))
        ns.update({"__init__": NativeFunction("tqdm.__init__", _init), "__iter__": NativeFunction("tqdm.__iter__", _iter),
                   "__len__": NativeFunction("tqdm.__len__", _len),
                   "__enter__": NativeFunction("tqdm.__enter__", lambda ev, a, k: a[0]),
                   "__exit__": NativeFunction("tqdm.__exit__", lambda ev, a, k: False)})
        found = loader.frontend_state["tqdm"] = ClassValue("tqdm", (loader.builtins["object"],), ns, "tqdm")
    return found


def tqdm_module(loader: Loader, dotted: str) -> ModuleValue | None:
    if dotted not in MODULES:
        return None
    cls = _tqdm_class(loader)

    def trange(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        return ev.call(cls, (range(*a),), k)

    ns = {"tqdm": cls, "trange": NativeFunction("tqdm.trange", trange), "tnrange": NativeFunction("tqdm.tnrange", trange)}
    return ModuleValue(dotted, ns, getattr_hook=lambda attr: Unknown(f"`{dotted}.{attr}` is not modelled", None))
