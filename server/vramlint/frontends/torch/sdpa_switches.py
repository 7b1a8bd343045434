"""The user's attention-kernel switches: `torch.backends.cuda.enable_flash_sdp(False)` (and the
memory-efficient, math and cuDNN ones, `allow_fp16_bf16_reduction_math_sdp`) and
`with torch.nn.attention.sdpa_kernel([SDPBackend.FLASH_ATTENTION, ...], set_priority=False):`.

They are global state in torch (at::globalContext()); here they live per loader and per
analysis, and every `F.scaled_dot_product_attention` call copies them onto the tape, whose
kernel choice (memory/attention_backends.py) reads them. A `with sdpa_kernel(...)` around the
script's training loop is not seen by the traced forward (it has exited by then); one inside
`forward`, or a switch called at module level, is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from vramlint.engine.values import Args, ClassValue, Kwargs, NativeFunction, Unknown, Value
from vramlint.memory.attention_backends import BACKENDS, SDP_BACKEND_NAMES

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

# torch/backends/cuda/__init__.py: enable_<name>_sdp(enabled) / <name>_sdp_enabled()
_SWITCHES = {"flash": "flash", "mem_efficient": "efficient", "math": "math", "cudnn": "cudnn"}


@dataclass
class Switches:
    analysis: Any = None  # the analysis they belong to (a new one starts from torch's defaults)
    enabled: frozenset[str] = frozenset(BACKENDS)
    priority: tuple[str, ...] | None = None
    reduction: bool = False  # allow_fp16_bf16_reduction_math_sdp
    saved: list[tuple[frozenset[str], tuple[str, ...] | None]] = field(default_factory=list)

    def current(self, ev: Evaluator) -> Switches:
        if self.analysis is not ev.analysis:
            self.analysis, self.enabled, self.priority, self.reduction = ev.analysis, frozenset(BACKENDS), None, False
            self.saved.clear()
        return self


def switches_of(loader: Loader) -> Switches:
    state = getattr(loader, "_sdpa_switches", None)
    if not isinstance(state, Switches):
        state = Switches()
        loader._sdpa_switches = state  # type: ignore[attr-defined]
    return state


def sync_tape(ev: Evaluator) -> None:
    """Before an attention call is recorded: the tape's kernel environment gets the switches."""
    if ev.tape is None:
        return
    s = switches_of(ev.loader).current(ev)
    ev.tape.kernels = replace(ev.tape.kernels, enabled=s.enabled, priority=s.priority,
                              fp16_bf16_reduction_math=s.reduction)


def backends_cuda_ns(loader: Loader) -> dict[str, Any]:
    def enable(backend: str) -> Any:
        def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            flag = a[0] if a else k.get("enabled")
            if not isinstance(flag, bool):
                return Unknown(f"enable_{backend}_sdp with a value not known", ev.current_ref)
            s = switches_of(loader).current(ev)
            s.enabled = s.enabled | {backend} if flag else s.enabled - {backend}
            return None

        return impl

    def enabled(backend: str) -> Any:
        return lambda ev, a, k: backend in switches_of(loader).current(ev).enabled

    def reduction(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        flag = a[0] if a else k.get("enabled")
        if isinstance(flag, bool):
            switches_of(loader).current(ev).reduction = flag
        return None

    ns: dict[str, Any] = {}
    for torch_name, ours in _SWITCHES.items():
        ns[f"enable_{torch_name}_sdp"] = NativeFunction(f"torch.backends.cuda.enable_{torch_name}_sdp", enable(ours))
        ns[f"{torch_name}_sdp_enabled"] = NativeFunction(f"torch.backends.cuda.{torch_name}_sdp_enabled", enabled(ours))
    ns["allow_fp16_bf16_reduction_math_sdp"] = NativeFunction(
        "torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp", reduction)
    ns["is_built"] = NativeFunction("torch.backends.cuda.is_built", lambda ev, a, k: True)
    return ns


class SdpaKernelContext(Value):
    """`with sdpa_kernel(backends, set_priority=False):` only those backends run inside (in that
    priority order with set_priority=True); the switches are restored on exit."""

    __slots__ = ("backends", "set_priority", "loader")
    type_name = "torch.nn.attention.sdpa_kernel"

    def __init__(self, loader: Loader, backends: tuple[str, ...], set_priority: bool) -> None:
        self.loader = loader
        self.backends = backends
        self.set_priority = set_priority

    def enter(self, ev: Evaluator) -> Any:
        s = switches_of(self.loader).current(ev)
        s.saved.append((s.enabled, s.priority))
        s.enabled = frozenset(self.backends)
        if self.set_priority:
            s.priority = self.backends
        return self

    def exit(self, ev: Evaluator) -> None:
        s = switches_of(self.loader).current(ev)
        if s.saved:
            s.enabled, s.priority = s.saved.pop()

    def call(self, ev: Evaluator, args: Args, kwargs: Kwargs) -> Any:
        return args[0] if args else None  # as a decorator: the function itself


def attention_ns(loader: Loader) -> dict[str, Any]:
    """torch.nn.attention: `SDPBackend` (its members stand for our backend names) and `sdpa_kernel`."""
    obj = loader.builtins["object"]
    sdp_backend = ClassValue("SDPBackend", (obj,), {**SDP_BACKEND_NAMES, "ERROR": "error",
                                                    "OVERRIDEABLE": "overrideable"}, "torch.nn.attention")

    def sdpa_kernel(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        given = a[0] if a else k.get("backends")
        items = [b for b in (given if isinstance(given, (list, tuple)) else [given]) if isinstance(b, str)]
        if not items or not all(b in BACKENDS for b in items) or \
                len(items) != (len(given) if isinstance(given, (list, tuple)) else 1):
            return Unknown("sdpa_kernel with backends not known", ev.current_ref)
        set_priority = (a[1] if len(a) > 1 else k.get("set_priority", False)) is True
        return SdpaKernelContext(loader, tuple(items), set_priority)

    return {"SDPBackend": sdp_backend,
            "sdpa_kernel": NativeFunction("torch.nn.attention.sdpa_kernel", sdpa_kernel)}
