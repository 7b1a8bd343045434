"""torch.nn.Module semantics: registration of submodules, parameters and buffers.

Instances of nn.Module subclasses carry a ModuleState (their `_modules`, `_parameters`,
`_buffers`); attribute assignment and lookup follow Module.__setattr__/__getattr__.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vramlint.engine import inert_loops
from vramlint.engine.values import (
    MISSING,
    Args,
    BoundMethod,
    ClassValue,
    FunctionValue,
    Instance,
    Kwargs,
    NativeFunction,
    SourceRef,
    Unknown,
    UnknownData,
)
from vramlint.frontends.torch.tensors import BufferTensor, DType, TensorValue, dtype_name

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.protocol import Protocol


# A module called in a loop (a cell per time step) is called many times: the outputs of the first
# calls are enough to show what it returns.
MAX_CALL_OUTPUTS = 16


@dataclass(frozen=True, eq=False)
class Hook:
    """A forward hook: `fn(module, args[, kwargs], output)` after the forward (`pre`: `fn(module,
    args[, kwargs])` before it); a result other than None replaces the output (the arguments)."""

    fn: Any
    pre: bool
    with_kwargs: bool


class ModuleState:
    __slots__ = ("modules", "params", "buffers", "training", "ref", "output", "calls", "call_outputs", "hooks")

    def __init__(self, ref: SourceRef | None) -> None:
        self.modules: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.training = True
        # Where the module was constructed (the call that created it).
        self.ref = ref
        # What its first call returned (the forward trace of a model reads it), how many times it
        # was called, and what the first MAX_CALL_OUTPUTS calls returned (the report lists them).
        self.output: Any = MISSING
        self.calls = 0
        self.call_outputs: list[Any] = []
        # Forward hooks (register_forward_hook / register_forward_pre_hook), run in order.
        self.hooks: list[Hook] = []

    def record_call(self, out: Any) -> None:
        if self.output is MISSING:
            self.output = out
        self.calls += 1
        if len(self.call_outputs) < MAX_CALL_OUTPUTS:
            self.call_outputs.append(out)

    def forget_calls(self) -> None:
        self.output = MISSING
        self.calls = 0
        self.call_outputs = []

    def deepcopy(self, proto: Protocol, memo: dict[int, Any]) -> ModuleState:
        s = ModuleState(self.ref)
        s.training = self.training
        copy = proto.deepcopy
        # (each test spares a comprehension's call: a leaf has no modules, a container no tensors)
        if self.modules:
            s.modules = {k: copy(v, memo) for k, v in self.modules.items()}
        if self.params:
            s.params = {k: copy(v, memo) for k, v in self.params.items()}
        if self.buffers:
            s.buffers = {k: copy(v, memo) for k, v in self.buffers.items()}
        # A hook that is a method of the module (or of one inside it) is bound to the copy, as
        # copy.deepcopy rebinds methods.
        if self.hooks:
            s.hooks = [Hook(copy(h.fn, memo), h.pre, h.with_kwargs) for h in self.hooks]
        return s

    def shallowcopy(self) -> ModuleState:
        s = ModuleState(self.ref)
        s.modules, s.params, s.buffers = dict(self.modules), dict(self.params), dict(self.buffers)
        s.training = self.training
        s.hooks = list(self.hooks)
        return s


def is_module(v: Any) -> bool:
    return isinstance(v, Instance) and isinstance(v.state, ModuleState)


def state_of(v: Instance) -> ModuleState:
    assert isinstance(v.state, ModuleState)
    return v.state


class ModuleNative:
    """Native hooks shared by nn.Module and every subclass."""

    def init_state(self, ev: Evaluator, inst: Instance) -> None:
        inst.state = ModuleState(ev.current_ref)

    def getattr(self, ev: Evaluator, inst: Instance, name: str) -> Any:
        st = inst.state
        if not isinstance(st, ModuleState):
            return MISSING
        if name in st.params:
            return st.params[name]
        if name in st.buffers:
            return st.buffers[name]
        if name in st.modules:
            return st.modules[name]
        if name == "training":
            return st.training
        return MISSING

    def setattr(self, ev: Evaluator, inst: Instance, name: str, value: Any) -> bool:
        st = inst.state
        if not isinstance(st, ModuleState):
            return False
        if isinstance(value, TensorValue) and value.is_param:
            _discard(st, inst, name, st.params)
            st.params[name] = value
            return True
        if isinstance(value, BufferTensor):  # self.x = nn.Buffer(...)
            _discard(st, inst, name, st.buffers)
            st.buffers[name] = value
            return True
        if is_module(value):
            _discard(st, inst, name, st.modules)
            st.modules[name] = value
            return True
        if name in st.params and (value is None or isinstance(value, (TensorValue, Unknown))):
            st.params[name] = value
            return True
        if name in st.buffers and (value is None or isinstance(value, (TensorValue, Unknown))):
            st.buffers[name] = value
            return True
        if name in st.modules and value is None:
            st.modules[name] = None
            return True
        if name == "training" and isinstance(value, bool):
            st.training = value
            return True
        if isinstance(value, Unknown) and not isinstance(value, UnknownData):
            # `self.block = Block(8)` with Block unknown (a failed import): it may be a submodule
            # whose parameters are missing, so the count must not claim to be exact.
            ev.record(value)
        return False

    def delattr(self, ev: Evaluator, inst: Instance, name: str) -> bool:
        st = inst.state
        if isinstance(st, ModuleState):
            for d in (st.params, st.buffers, st.modules):
                if name in d:
                    del d[name]
                    return True
        return False


def _discard(st: ModuleState, inst: Instance, name: str, keep: dict[str, Any]) -> None:
    """Before `name` is set in `keep`: remove it from the other tables. Not from `keep` itself:
    torch reassigns the dict entry, so a replaced child keeps its place in `children()` (and
    `nn.Sequential(*list(net.children())[:-1])` still drops the last one)."""
    inst.attrs.pop(name, None)
    for table in (st.params, st.buffers, st.modules):
        if table is not keep:
            table.pop(name, None)


# ---------------------------------------------------------------------- traversal
def named_modules(inst: Instance, prefix: str = "", memo: set[int] | None = None) -> Iterator[tuple[str, Instance]]:
    """Pre-order, each module once, as torch's. A stack, not nested generators: each module passed
    up through every generator above it (a third of counting a deep model). A module's children
    are read when the walk resumes after yielding it, so a consumer that adds some (Keras's tracked
    layers) has them visited."""
    memo = set() if memo is None else memo
    stack = [(prefix, inst)]
    while stack:
        path, m = stack.pop()
        if id(m) in memo:
            continue
        memo.add(id(m))
        yield path, m
        children = [(f"{path}.{name}" if path else name, child)  # (is_module inline: a call per module)
                    for name, child in state_of(m).modules.items()
                    if isinstance(child, Instance) and isinstance(child.state, ModuleState)]
        stack.extend(reversed(children))


def named_tensors(inst: Instance, kind: str, recurse: bool = True) -> list[tuple[str, Any]]:
    """Parameters ('params') or buffers, each object once (tied weights count once)."""
    seen: set[int] = set()
    out: list[tuple[str, Any]] = []
    mods = named_modules(inst) if recurse else iter([("", inst)])
    for prefix, m in mods:
        _add_tensors(state_of(m).params if kind == "params" else state_of(m).buffers, prefix, seen, out)
    return out


def params_and_buffers(inst: Instance) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """named_tensors(inst, "params") and named_tensors(inst, "buffers"), from one walk of the
    modules (counting a model walked them twice)."""
    seen_p: set[int] = set()
    seen_b: set[int] = set()
    params: list[tuple[str, Any]] = []
    buffers: list[tuple[str, Any]] = []
    for prefix, m in named_modules(inst):
        st = state_of(m)
        _add_tensors(st.params, prefix, seen_p, params)
        _add_tensors(st.buffers, prefix, seen_b, buffers)
    return params, buffers


def _add_tensors(table: dict[str, Any], prefix: str, seen: set[int], out: list[tuple[str, Any]]) -> None:
    for name, t in table.items():
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        out.append((f"{prefix}.{name}" if prefix else name, t))


# ---------------------------------------------------------------------- nn.Module methods
def _self(a: Args) -> Instance:
    return a[0]  # type: ignore[no-any-return]


def _add_module(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, name = _self(a), a[1] if len(a) > 1 else k.get("name")
    mod = a[2] if len(a) > 2 else k.get("module")
    if not isinstance(name, str):
        ev.record(name if isinstance(name, Unknown) else Unknown("add_module with a non-string name", ev.current_ref))
        return None
    if mod is None or is_module(mod):
        _discard(state_of(inst), inst, name, state_of(inst).modules)
        state_of(inst).modules[name] = mod
    elif isinstance(mod, Unknown):
        ev.record(mod)
        state_of(inst).modules[name] = mod
    return None


def _register(kind: str, value_arg: str) -> Callable[..., Any]:
    """register_buffer(name, tensor) / register_parameter(name, param)."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst, name = _self(a), a[1] if len(a) > 1 else k.get("name")
        value = a[2] if len(a) > 2 else k.get(value_arg)
        if not isinstance(name, str):
            ev.record(name if isinstance(name, Unknown) else Unknown(f"{kind} name is not a string", ev.current_ref))
            return None
        table = state_of(inst).buffers if kind == "buffer" else state_of(inst).params
        _discard(state_of(inst), inst, name, table)
        table[name] = value
        return None

    return impl


def _modules(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return [m for _, m in named_modules(_self(a))]


def _named_modules(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return list(named_modules(_self(a)))


def _children(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return [m for m in state_of(_self(a)).modules.values() if m is not None]


def _named_children(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return [(n, m) for n, m in state_of(_self(a)).modules.items() if m is not None]


def _tensors(kind: str, named: bool) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        recurse = k.get("recurse", True) is not False
        items = named_tensors(_self(a), kind, recurse)
        return items if named else [t for _, t in items]

    return impl


def _apply(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, fn = _self(a), a[1]
    modules = [m for _, m in named_modules(inst)][::-1]  # children first, like Module.apply
    if inert_loops.skips_apply(ev, fn, modules):
        return inst  # a weight-initialisation function: it changes nothing vramlint computes
    for m in modules:
        ev.call(fn, (m,), {})
    return inst


def _requires_grad_(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst = _self(a)
    flag = a[1] if len(a) > 1 else k.get("requires_grad", True)
    if isinstance(flag, Unknown):
        ev.record(flag)
        return inst
    for _, p in named_tensors(inst, "params"):
        if isinstance(p, TensorValue):
            p.requires_grad = bool(flag)
    return inst


def _train(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    mode = a[1] if len(a) > 1 else k.get("mode", True)
    for _, m in named_modules(_self(a)):
        state_of(m).training = mode is not False
    return a[0]


def _eval(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    for _, m in named_modules(_self(a)):
        state_of(m).training = False
    return a[0]


def _cast_module(dtype: str | None) -> Callable[..., Any]:
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = _self(a)
        target = dtype
        if target is None:  # .to(...)
            for x in (*a[1:], k.get("dtype")):
                if isinstance(x, DType):
                    target = x.name
        if target is not None:
            for kind in ("params", "buffers"):
                for _, t in named_tensors(inst, kind):
                    if isinstance(t, TensorValue) and t.dtype in ("float32", "float16", "bfloat16", "float64"):
                        t.dtype = target
        return inst

    return impl


def _get_submodule(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inst, target = _self(a), a[1]
    if not isinstance(target, str):
        return Unknown("get_submodule of an unknown name", ev.current_ref)
    cur: Any = inst
    for part in target.split(".") if target else []:
        cur = state_of(cur).modules.get(part) if is_module(cur) else None
        if cur is None:
            raise ev.raise_error("AttributeError", f"no submodule {target}")
    return cur


def _set_submodule(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """Module.set_submodule(target, module): the parent's attribute set, as torch does
    (transformers' quantizers swap nn.Linear layers for bitsandbytes' ones with it)."""
    target = a[1] if len(a) > 1 else k.get("target")
    mod = a[2] if len(a) > 2 else k.get("module")
    if not isinstance(target, str) or not target:
        ev.record(Unknown("set_submodule of an unknown name", ev.current_ref))
        return None
    path, _, name = target.rpartition(".")
    ev.protocol.setattr(_get_submodule(ev, (a[0], path), {}), name, mod)
    return None


def _get_tensor(kind: str) -> Callable[..., Any]:
    """Module.get_parameter / get_buffer: `target` is "path.to.submodule.name"."""

    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        target = a[1] if len(a) > 1 else k.get("target")
        if not isinstance(target, str):
            return target if isinstance(target, Unknown) else Unknown(f"get_{kind} of an unknown name", ev.current_ref)
        path, _, name = target.rpartition(".")
        mod = _get_submodule(ev, (a[0], path), {})
        table = state_of(mod).params if kind == "parameter" else state_of(mod).buffers
        if name not in table:
            raise ev.raise_error("AttributeError", f"`{name}` is not a {kind}")
        return table[name]

    return impl


def _call_module(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """module(x): its forward, on abstract tensors. A forward written in the analysed code is
    evaluated; a catalog layer's comes from its forward rule (output shapes)."""
    inst: Instance = a[0]
    hooks = list(inst.state.hooks) if isinstance(inst.state, ModuleState) else []
    args, k = _run_pre_hooks(ev, inst, hooks, a[1:], k) if hooks else (a[1:], k)
    a = (inst, *args)
    script = ev.script if ev.script is not None and ev.script.active else None
    if script is not None:  # the script's own calls of its models (engine/script_calls.py)
        script.enter(inst, a[1:], k, ev.current_ref)
    tape = ev.tape
    if tape is not None:
        tape.enter_module(inst, (*a[1:], *k.values()))
    try:
        # `self.forward`, as Module.__call__ reads it: a forward set on the instance
        # (`self.forward = self.forward_fused` in __init__) comes first; then one written in the
        # code, a catalog layer's (its rule), or one wrapped by a library decorator's rule, found
        # as Python finds them, through the class's MRO.
        own = inst.attrs.get("forward", MISSING)
        fwd, _ = inst.cls.lookup("forward")
        if own is not MISSING:
            out = ev.call(own, a[1:], k)
        elif isinstance(fwd, (FunctionValue, NativeFunction)):
            out = ev.call(BoundMethod(inst, fwd), a[1:], k)
        else:
            out = Unknown(f"the forward of {inst.cls.name} is not modelled", ev.current_ref)
        if hooks:
            out = _run_hooks(ev, inst, hooks, a[1:], k, out)
    finally:
        if tape is not None:
            tape.exit_module()
        if script is not None:
            script.exit()
    st = inst.state
    if isinstance(st, ModuleState):
        st.record_call(out)
    return out


def _noop_self(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return a[0]


def _noop(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return None


def _run_pre_hooks(ev: Evaluator, inst: Instance, hooks: list[Hook], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Module.__call__'s forward pre-hooks: a result replaces the arguments (a non-tuple is the
    one positional argument; with kwargs, an (args, kwargs) pair). An unknown result keeps them."""
    for hook in hooks:
        if not hook.pre:
            continue
        if hook.with_kwargs:
            r = ev.call(hook.fn, (inst, args, kwargs), {})
            if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], tuple) and isinstance(r[1], dict):
                args, kwargs = r
        else:
            r = ev.call(hook.fn, (inst, args), {})
            if r is not None and not isinstance(r, Unknown):
                args = r if isinstance(r, tuple) else (r,)
    return args, kwargs


def _run_hooks(ev: Evaluator, inst: Instance, hooks: list[Hook], args: tuple[Any, ...],
               kwargs: dict[str, Any], out: Any) -> Any:
    """Module.__call__'s forward hooks, on the output (transformers' enable_input_require_grads
    makes the embeddings' output require a gradient with one). An unknown result keeps it."""
    for hook in hooks:
        if hook.pre:
            continue
        r = ev.call(hook.fn, (inst, args, kwargs, out) if hook.with_kwargs else (inst, args, out), {})
        if r is not None and not isinstance(r, Unknown):
            out = r
    return out


HANDLE_CLASS = ClassValue("RemovableHandle", (), {}, "torch.utils.hooks")


def _register_hook(pre: bool) -> Callable[[Evaluator, Args, Kwargs], Any]:
    """register_forward_(pre_)hook(hook, *, prepend=False, with_kwargs=False): a handle whose
    remove() takes the hook off."""
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        if len(a) < 2 or not isinstance(inst, Instance) or not isinstance(inst.state, ModuleState):
            return None
        hook = Hook(a[1], pre, k.get("with_kwargs") is True)
        hooks = inst.state.hooks
        if k.get("prepend") is True:
            hooks.insert(0, hook)
        else:
            hooks.append(hook)
        handle = Instance(HANDLE_CLASS)

        def remove(ev2: Evaluator, a2: Args, k2: Kwargs) -> Any:
            if hook in hooks:
                hooks.remove(hook)
            return None

        handle.attrs["remove"] = NativeFunction("RemovableHandle.remove", remove)
        return handle

    return impl


def module_namespace() -> dict[str, Any]:
    fns: dict[str, Callable[..., Any]] = {
        "__init__": _noop,
        "__call__": _call_module,
        "add_module": _add_module,
        "register_module": _add_module,
        "register_buffer": _register("buffer", "tensor"),
        "register_parameter": _register("parameter", "param"),
        "modules": _modules,
        "named_modules": _named_modules,
        "children": _children,
        "named_children": _named_children,
        "parameters": _tensors("params", False),
        "named_parameters": _tensors("params", True),
        "buffers": _tensors("buffers", False),
        "named_buffers": _tensors("buffers", True),
        "apply": _apply,
        "requires_grad_": _requires_grad_,
        "train": _train,
        "eval": _eval,
        "to": _cast_module(None),
        "half": _cast_module("float16"),
        "bfloat16": _cast_module("bfloat16"),
        "float": _cast_module("float32"),
        "double": _cast_module("float64"),
        "cuda": _noop_self,
        "cpu": _noop_self,
        "to_empty": _noop_self,
        "share_memory": _noop_self,
        "get_submodule": _get_submodule,
        "set_submodule": _set_submodule,
        "get_parameter": _get_tensor("parameter"),
        "get_buffer": _get_tensor("buffer"),
        "zero_grad": _noop,
        "compile": _noop,  # compiles its forward in place: the analysis follows eager execution
        "load_state_dict": _noop,
        "register_forward_hook": _register_hook(False),
        "register_forward_pre_hook": _register_hook(True),
        "register_full_backward_hook": _noop,
        "register_load_state_dict_post_hook": _noop,
        "register_state_dict_pre_hook": _noop,
        "_register_load_state_dict_pre_hook": _noop,
        "_get_name": lambda ev, a, k: a[0].cls.name,
        "extra_repr": lambda ev, a, k: "",
        "state_dict": lambda ev, a, k: Unknown("state_dict() is not modelled", ev.current_ref),
    }
    return {name: NativeFunction(f"Module.{name}", fn) for name, fn in fns.items()}


MODULE_NATIVE = ModuleNative()


def make_module_class(object_class: ClassValue) -> ClassValue:
    return ClassValue("Module", (object_class,), module_namespace(), "torch.nn", native=MODULE_NATIVE)


def make_parameter(ev: Evaluator, data: Any, requires_grad: Any = True) -> Any:
    if data is None:
        data = TensorValue((0,))
    if isinstance(data, Unknown):
        t = TensorValue(Unknown(f"parameter data: {data.reason}", data.ref or ev.current_ref))
    elif isinstance(data, TensorValue):
        t = TensorValue(data.shape, data.dtype, data=data.data)
    else:
        return Unknown("nn.Parameter of a non-tensor", ev.current_ref)
    t.is_param = True
    t.requires_grad = requires_grad is not False
    return t


def param(shape: Any, dtype: Any = None) -> TensorValue:
    t = TensorValue(tuple(shape) if isinstance(shape, (list, tuple)) else shape, dtype_name(dtype))
    t.is_param = True
    t.requires_grad = True
    return t
