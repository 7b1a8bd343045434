"""torch's own multi-GPU APIs as the analysed code calls them: DDP, FSDP2's `fully_shard`, FSDP1's
`FullyShardedDataParallel` and its auto-wrap policies, `init_device_mesh`, and tensor
parallelism's `parallelize_module`.

Nothing is distributed here: each call does to the module tree what torch does to it as far as
the model's structure goes (a DDP or FSDP1 wrapper is an nn.Module whose child is the model;
`fully_shard` and `parallelize_module` return their module unchanged) and leaves a *mark* on the
module it applies to: which API, its arguments, where it was called. Marks are kept per analysis,
keyed by the module; `parallel_plan.py` reads them off a model's module tree into a ParallelPlan.

The wrappers are transparent to the analysis: calling one calls the wrapped model directly, so
the script's `loss = ddp_model(x).sum()` is the wrapped model's call (its inputs), and
`held_model` gives the wrapped model as the model of the variable holding the wrapper.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import libcst as cst
from libcst.helpers import get_full_name_for_node

from vramlint.engine.builtins import NoOp
from vramlint.engine.values import (
    Args,
    ClassValue,
    Instance,
    Kwargs,
    ModuleValue,
    NativeFunction,
    SourceRef,
    StaticMethod,
    Unknown,
)
from vramlint.frontends.torch.catalog import bind_arguments, parse_signature
from vramlint.frontends.torch.module import is_module, named_tensors, state_of
from vramlint.frontends.torch.tensors import TensorValue

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import Loader

# The modules served here (the `torch` stub package routes them to `distributed_module`).
DISTRIBUTED_MODULES = frozenset((
    "torch.nn.parallel", "torch.nn.parallel.distributed",
    "torch.distributed.fsdp", "torch.distributed.fsdp.wrap", "torch.distributed.fsdp.api",
    "torch.distributed.fsdp.fully_sharded_data_parallel", "torch.distributed._composable",
    "torch.distributed._composable.fsdp", "torch.distributed.device_mesh", "torch.distributed.tensor",
    "torch.distributed.tensor.parallel", "torch.distributed.tensor.parallel.style",
    "torch.distributed.tensor.placement_types",
))

KEY = "torch.distributed.marks"
WRAPPED = {"DistributedDataParallel": "module", "FullyShardedDataParallel": "_fsdp_wrapped_module"}


# ---------------------------------------------------------------------- marks
@dataclass(frozen=True)
class Mark:
    """One API applied to a module. `args`: its arguments by name (defaults applied), as
    evaluated. `call`: the call as the code spells it ("DDP(...)"). FSDP1: `units`, the paths
    (relative to the wrapped module, "" itself) its auto-wrap policy wraps, in torch's order, None
    when the policy could not be decided (`why`). Tensor parallelism: `styles`, (path, style)."""

    kind: str  # "ddp" | "fsdp2" | "fsdp1" | "tp"
    order: int
    args: dict[str, Any]
    ref: SourceRef | None
    call: str
    units: tuple[str, ...] | None = ("",)
    why: str = ""
    styles: tuple[tuple[str, str], ...] = ()
    mesh: Any = None  # the mesh the call used (a DeviceMesh instance, an Unknown, or None)


@dataclass
class Marks:
    """The marks of one analysis (`Evaluator.analysis`): a module's marks in the order made."""

    analysis: Any
    by_module: dict[int, tuple[Instance, list[Mark]]] = field(default_factory=dict)
    count: int = 0


def _store(ev: Evaluator) -> Marks:
    found = ev.loader.frontend_state.get(KEY)
    if not isinstance(found, Marks) or found.analysis is not ev.analysis:
        found = ev.loader.frontend_state[KEY] = Marks(ev.analysis)
    return found


def add_mark(ev: Evaluator, module: Instance, kind: str, args: dict[str, Any], **extra: Any) -> Mark:
    store = _store(ev)
    store.count += 1
    ref = ev.current_ref
    mark = Mark(kind, store.count, args, ref, call_text(ref, kind), **extra)
    store.by_module.setdefault(id(module), (module, []))[1].append(mark)
    return mark


def any_marks(ev: Evaluator) -> bool:
    """Whether this analysis marked any module (most files run on one GPU: nothing to look for)."""
    found = ev.loader.frontend_state.get(KEY)
    return isinstance(found, Marks) and found.analysis is ev.analysis and bool(found.by_module)


def marks_of(ev: Evaluator, module: Instance) -> list[Mark]:
    """The marks this analysis left on `module` (none from an earlier analysis of the process)."""
    found = ev.loader.frontend_state.get(KEY)
    if not isinstance(found, Marks) or found.analysis is not ev.analysis:
        return []
    hit = found.by_module.get(id(module))
    return hit[1] if hit is not None and hit[0] is module else []


def call_text(ref: SourceRef | None, fallback: str) -> str:
    """The call as the code writes it: `DDP(...)`, `dist.fsdp.fully_shard(...)`."""
    node = ref.node if ref is not None else None
    name = get_full_name_for_node(node.func) if isinstance(node, cst.Call) else None
    return f"{name or fallback}(...)"


def where(ref: SourceRef | None, path: str) -> str:
    """"at line 12" in the analysed file `path`, else "at lib.py:12"."""
    if ref is None:
        return ""
    at = ref.statement_location
    return f"at line {at.line}" if at.path == path else f"at {at.path}:{at.line}"


# ---------------------------------------------------------------------- small helpers
def _bind(ev: Evaluator, signature: str, a: Args, k: Kwargs, shown: str) -> dict[str, Any]:
    """Arguments by name, torch's defaults applied (`signature` as in the catalog: after self)."""
    return bind_arguments(ev, parse_signature(signature), (None, *a), k, shown)


def _native(name: str, fn: Callable[[Evaluator, Args, Kwargs], Any]) -> NativeFunction:
    return NativeFunction(name, fn)


def _returns_none(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    return None


def _context(name: str) -> NativeFunction:
    """A context manager that changes nothing the analysis tracks (`ddp.no_sync()`)."""
    return NativeFunction(name, lambda ev, a, k: NoOp(f"{name}()"))


def _record_class(loader: Loader, name: str, module: str, signature: str) -> ClassValue:
    """A class whose objects keep their arguments as attributes (MixedPrecisionPolicy(...),
    ColwiseParallel(...)): what the plan reads off them."""
    cache: dict[tuple[str, str], ClassValue] = loader.frontend_state.setdefault("torch.distributed.records", {})
    if (module, name) not in cache:
        def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            a[0].attrs.update(_bind(ev, signature, a[1:], k, f"{name}()"))
            return None

        ns = {"__init__": NativeFunction(f"{name}.__init__", init),
              "__getattr__": NativeFunction(f"{name}.__getattr__", lambda ev, a, k: NoOp(f"{name}.{a[1]}", chain=True))}
        cache[(module, name)] = ClassValue(name, (loader.builtins["object"],), ns, module)
    return cache[(module, name)]


def _enum_class(loader: Loader, name: str, module: str, members: tuple[str, ...]) -> ClassValue:
    """An enum of torch (ShardingStrategy): members are instances with `name` and `value`."""
    cache: dict[tuple[str, str], ClassValue] = loader.frontend_state.setdefault("torch.distributed.enums", {})
    if (module, name) not in cache:
        cls = ClassValue(name, (loader.builtins["object"],), {}, module)
        for i, member in enumerate(members, 1):
            inst = Instance(cls)
            inst.attrs.update(name=member, value=i)
            cls.ns[member] = inst
        cache[(module, name)] = cls
    return cache[(module, name)]


def enum_name(v: Any) -> str | None:
    """A member's name (ShardingStrategy.FULL_SHARD -> "FULL_SHARD"), else None."""
    name = v.attrs.get("name") if isinstance(v, Instance) else None
    return name if isinstance(name, str) and v.cls.ns.get(name) is v else None


# ---------------------------------------------------------------------- device meshes
@dataclass(frozen=True)
class MeshState:
    """A DeviceMesh: its shape (ints, or Unknowns where the code does not say), dimension names,
    and the shape of the mesh it was sliced from (the world is its product)."""

    shape: tuple[Any, ...]
    names: tuple[str, ...] | None
    root: tuple[Any, ...]
    ref: SourceRef | None
    names_unknown: Unknown | None = None  # mesh_dim_names given but not known


def mesh_state(v: Any) -> MeshState | None:
    return v.state if isinstance(v, Instance) and isinstance(v.state, MeshState) else None


def _product(shape: tuple[Any, ...]) -> Any:
    n: Any = 1
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool):
            return d if isinstance(d, Unknown) else Unknown(f"a mesh dimension of {d!r}")
        n *= d
    return n


def _new_mesh(ev: Evaluator, shape: tuple[Any, ...], names: Any, root: tuple[Any, ...] | None = None,
              ref: SourceRef | None = None) -> Instance:
    inst = Instance(_mesh_class(ev.loader))
    unknown = names if isinstance(names, Unknown) else None
    names = tuple(names) if isinstance(names, (tuple, list)) and all(isinstance(n, str) for n in names) else None
    inst.state = MeshState(shape, names, shape if root is None else root, ref or ev.current_ref, unknown)
    inst.attrs.update(device_type="cuda", mesh_dim_names=names, ndim=len(shape), shape=shape)
    return inst


def _mesh_shape(v: Any) -> tuple[Any, ...]:
    """`init_device_mesh`'s mesh_shape: (8,), (2, 4), [world_size]; an Unknown as one dimension."""
    if isinstance(v, (tuple, list)):
        return tuple(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,)
    return (v if isinstance(v, Unknown) else Unknown(f"mesh shape {v!r}"),)


def _init_device_mesh(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    b = _bind(ev, "device_type, mesh_shape, *, mesh_dim_names=None, backend_override=None", a, k,
              "init_device_mesh()")
    return _new_mesh(ev, _mesh_shape(b["mesh_shape"]), b["mesh_dim_names"])


def _mesh_init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """DeviceMesh(device_type, mesh): `mesh` a tensor (torch.arange(8).view(2, 4)) or nested lists."""
    b = _bind(ev, "device_type, mesh=None, *, mesh_dim_names=None, backend_override=None, _init_backend=True",
              a[1:], k, "DeviceMesh()")
    mesh = b["mesh"]
    shape: tuple[Any, ...] = ()
    if isinstance(mesh, TensorValue):
        shape = mesh.shape if isinstance(mesh.shape, tuple) else (mesh.shape,)
    elif isinstance(mesh, (list, tuple)):
        cur: Any = mesh
        while isinstance(cur, (list, tuple)):
            shape, cur = (*shape, len(cur)), cur[0] if cur else None
    else:
        shape = (mesh if isinstance(mesh, Unknown) else Unknown("DeviceMesh of an unknown mesh", ev.current_ref),)
    fresh = _new_mesh(ev, tuple(shape), b["mesh_dim_names"])
    a[0].state, a[0].attrs = fresh.state, fresh.attrs
    return None


def _mesh_getitem(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """mesh["tp"], mesh["dp", "tp"]: the named dimensions' sub-mesh (the world stays the root's)."""
    st = mesh_state(a[0])
    key = a[1] if len(a) > 1 else None
    keys = key if isinstance(key, tuple) else (key,)
    if st is not None and (st.names_unknown is not None or isinstance(key, Unknown)):
        unknown = st.names_unknown if st.names_unknown is not None else key
        why = unknown.reason if isinstance(unknown, Unknown) else "unknown"
        return _new_mesh(ev, tuple(Unknown(f"mesh[{k!r}]: {why}", ev.current_ref) for k in keys), None,
                         st.root, st.ref)
    if st is None or st.names is None or not all(isinstance(n, str) and n in st.names for n in keys):
        raise ev.raise_error("KeyError", f"DeviceMesh has no dimension {key!r} (mesh_dim_names {st.names if st else None})")
    return _new_mesh(ev, tuple(st.shape[st.names.index(n)] for n in keys), keys, st.root, st.ref)


def _mesh_size(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    st = mesh_state(a[0])
    dim = a[1] if len(a) > 1 else k.get("mesh_dim")
    if st is None:
        return Unknown("size of an unknown mesh", ev.current_ref)
    if isinstance(dim, int) and -len(st.shape) <= dim < len(st.shape):
        return st.shape[dim]
    if isinstance(dim, str) and st.names is not None and dim in st.names:
        return st.shape[st.names.index(dim)]
    return _product(st.shape)


def _mesh_flatten(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    st = mesh_state(a[0])
    name = a[1] if len(a) > 1 else k.get("mesh_dim_name")
    if st is None:
        return Unknown("an unknown mesh flattened", ev.current_ref)
    return _new_mesh(ev, (_product(st.shape),), (name,) if isinstance(name, str) else None, st.root, st.ref)


def _mesh_coordinate(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    st = mesh_state(a[0])
    return [0] * len(st.shape) if st is not None else None  # rank 0's


def _mesh_class(loader: Loader) -> ClassValue:
    found: ClassValue | None = loader.frontend_state.get("torch.distributed.DeviceMesh")
    if found is None:
        ns: dict[str, Any] = {
            "__init__": _native("DeviceMesh.__init__", _mesh_init),
            "__getitem__": _native("DeviceMesh.__getitem__", _mesh_getitem),
            "size": _native("DeviceMesh.size", _mesh_size),
            "_flatten": _native("DeviceMesh._flatten", _mesh_flatten),
            "get_local_rank": _native("DeviceMesh.get_local_rank", lambda ev, a, k: 0),
            "get_rank": _native("DeviceMesh.get_rank", lambda ev, a, k: 0),
            "get_coordinate": _native("DeviceMesh.get_coordinate", _mesh_coordinate),
            "__getattr__": _native("DeviceMesh.__getattr__", lambda ev, a, k: NoOp(f"DeviceMesh.{a[1]}", chain=True)),
        }
        found = loader.frontend_state["torch.distributed.DeviceMesh"] = ClassValue(
            "DeviceMesh", (loader.builtins["object"],), ns, "torch.distributed.device_mesh")
    return found


# ---------------------------------------------------------------------- wrappers: DDP, FSDP1
DDP_SIGNATURE = ("module, device_ids=None, output_device=None, dim=0, broadcast_buffers=None, init_sync=True, "
                 "process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False, "
                 "gradient_as_bucket_view=False, static_graph=False, delay_all_reduce_named_params=None, "
                 "param_to_hook_all_reduce=None, mixed_precision=None, device_mesh=None, "
                 "skip_all_reduce_unused_params=False, bucket_cap_mb_list=None, batched_grad_copy=False, "
                 "forward_sync_buffers=None")
FSDP1_SIGNATURE = ("module, process_group=None, sharding_strategy=None, cpu_offload=None, auto_wrap_policy=None, "
                   "backward_prefetch='BACKWARD_PRE', mixed_precision=None, ignored_modules=None, param_init_fn=None, "
                   "device_id=None, sync_module_states=False, forward_prefetch=False, limit_all_gathers=True, "
                   "use_orig_params=False, ignored_states=None, device_mesh=None")


def wrapped(v: Any) -> Instance | None:
    """The module a DDP or FSDP1 wrapper holds (through nested wrappers), else None."""
    inner = None
    while isinstance(v, Instance) and is_module(v) and any(
            c.name in WRAPPED and c.module_name.startswith("torch.") for c in v.cls.mro):
        child = state_of(v).modules.get(WRAPPED[next(c.name for c in v.cls.mro if c.name in WRAPPED)])
        if not is_module(child):
            return inner
        inner = v = child
    return inner


def held_model(value: Any) -> Any:
    """Frontend.held_model: a DDP / FSDP1 wrapper's model (the estimate is of it, with the plan);
    an Unknown where the wrapped model is one (`DDP(unknown_lib.Net())` is no model of the file,
    as `unknown_lib.Net()` is not)."""
    inner = wrapped(value)
    if inner is not None or not (isinstance(value, Instance) and is_module(value)):
        return inner
    child = next((value.attrs.get(WRAPPED[c.name]) for c in value.cls.mro if c.name in WRAPPED), None)
    return child if isinstance(child, Unknown) else None


def _wrapper_call(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """wrapper(x): the wrapped module's call, as the wrapper's forward does, made directly so that
    the script's call of the wrapper is its model's call (engine/script_calls.py)."""
    inner = wrapped(a[0])
    if inner is None:
        return Unknown(f"{a[0].cls.name} without a module", ev.current_ref)
    return ev.call(inner, a[1:], k)


def _forward_getattr(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    inner = wrapped(a[0])
    if inner is None:
        raise ev.raise_error("AttributeError", f"'{a[0].cls.name}' object has no attribute '{a[1]}'")
    return ev.protocol.getattr(inner, a[1])


def fsdp1_units(ev: Evaluator, root: Instance, args: dict[str, Any]) -> dict[str, Any]:
    """The `units` (and `why`) of a Mark of FSDP1 on `root` with these arguments (auto_wrap_policy,
    mixed_precision): for launchers that wrap the model themselves (Lightning's FSDPStrategy)."""
    return _fsdp1_units(ev, root, args)


def _wrapper_init(kind: str, signature: str, child: str) -> Callable[[Evaluator, Args, Kwargs], Any]:
    def init(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        inst = a[0]
        shown = "DistributedDataParallel()" if kind == "ddp" else "FullyShardedDataParallel()"
        args = _bind(ev, signature, a[1:], k, shown)
        module = args.pop("module")
        ev.protocol.setattr(inst, child, module)  # an Unknown is kept as the child's value, and recorded
        if isinstance(module, Unknown):
            return None
        if not is_module(module):
            raise ev.raise_error("TypeError", f"{shown}: module must be an nn.Module, not {type(module).__name__}")
        extra: dict[str, Any] = {"mesh": args.get("device_mesh")}
        if kind == "fsdp1":
            extra.update(_fsdp1_units(ev, module, args))
        add_mark(ev, module, kind, args, **extra)
        return None

    return init


def _wrapper_class(loader: Loader, name: str, module_name: str, kind: str) -> ClassValue:
    cache: dict[str, ClassValue] = loader.frontend_state.setdefault("torch.distributed.wrappers", {})
    if name in cache:
        return cache[name]
    from vramlint.frontends.torch.stubs import torch_classes

    child = WRAPPED[name]
    signature = DDP_SIGNATURE if kind == "ddp" else FSDP1_SIGNATURE
    ns: dict[str, Any] = {
        "__init__": _native(f"{name}.__init__", _wrapper_init(kind, signature, child)),
        "__call__": _native(f"{name}.__call__", _wrapper_call),
        "forward": _native(f"{name}.forward", lambda ev, a, k: _wrapper_call(ev, a, k)),
        "no_sync": _context(f"{name}.no_sync"),
        "join": _context(f"{name}.join"),
        "register_comm_hook": _native(f"{name}.register_comm_hook", _returns_none),
        "_set_static_graph": _native(f"{name}._set_static_graph", _returns_none),
    }
    if kind == "fsdp1":
        # FSDP1 forwards missing attributes to the wrapped module (FullyShardedDataParallel.__getattr__).
        ns["__getattr__"] = _native(f"{name}.__getattr__", _forward_getattr)
        for static in ("state_dict_type", "summon_full_params"):
            ns[static] = StaticMethod(_context(f"{name}.{static}"))
        for static in ("set_state_dict_type", "clip_grad_norm_"):
            ns[static] = StaticMethod(_native(f"{name}.{static}", _returns_none))
    cls = ClassValue(name, (torch_classes(loader).module,), ns, module_name)
    cache[name] = cls
    return cls


# ---------------------------------------------------------------------- FSDP2: fully_shard
FULLY_SHARD_SIGNATURE = ("module, *, mesh=None, reshard_after_forward=None, shard_placement_fn=None, mp_policy=None, "
                         "offload_policy=None, ignored_params=None, dp_mesh_dims=None")
# What FSDP2 adds to a module's class (FSDPModule): methods a training loop calls.
FSDP_MODULE_METHODS = ("reshard", "unshard", "set_is_last_backward", "set_requires_gradient_sync",
                       "set_requires_all_reduce", "set_reshard_after_forward", "set_reshard_after_backward",
                       "set_modules_to_forward_prefetch", "set_modules_to_backward_prefetch",
                       "set_post_optim_event", "set_reduce_scatter_divide_factor", "set_unshard_in_backward",
                       "set_all_reduce_hook", "set_gradient_divide_factor", "set_force_sum_reduction_for_comms")


def _fully_shard(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """fully_shard(module or [modules], *, mesh, reshard_after_forward, mp_policy, offload_policy):
    marks each module and returns its argument (torch changes the module's class in place)."""
    args = _bind(ev, FULLY_SHARD_SIGNATURE, a, k, "fully_shard()")
    target = args.pop("module")
    modules = list(target) if isinstance(target, (list, tuple)) else [target]
    unknown = next((m for m in modules if isinstance(m, Unknown)), None)
    if unknown is not None:  # what it shards is not known: so is what it returns
        ev.record(unknown)
        return target if isinstance(target, Unknown) else unknown
    if not modules or not all(is_module(m) for m in modules):
        raise ev.raise_error("ValueError", "fully_shard: expects an nn.Module or a list of them")
    for m in modules:
        add_mark(ev, m, "fsdp2", args, mesh=args.get("mesh"))
        for name in FSDP_MODULE_METHODS:
            m.attrs.setdefault(name, _native(f"FSDPModule.{name}", _returns_none))
    return target


# ---------------------------------------------------------------------- FSDP1's auto-wrap policies
# torch/distributed/fsdp/wrap.py (torch 2.13): the policies are functions
# policy(module, recurse, nonwrapped_numel) -> bool, run by `_recursive_wrap`, or _Policy objects
# (ModuleWrapPolicy, CustomPolicy) whose `_run_policy` picks modules over `root.modules()`, wrapped
# in post-order by `_post_order_apply` (_wrap_utils._auto_wrap chooses).
SIZE_POLICY = "min_num_params=100000000, force_leaf_modules=None, exclude_wrap_modules=None"


class Undecidable(Exception):
    """The policy's answer for a module is not known (an Unknown argument, a lambda that could not
    be evaluated): the units are not decided."""


def _is_instance(ev: Evaluator, module: Any, classes: Any) -> bool:
    """isinstance(module, tuple(classes)) with the classes the code gave (a set, a list, one class)."""
    items = classes if isinstance(classes, (set, frozenset, list, tuple)) else (classes,)
    if not all(isinstance(c, ClassValue) for c in items):
        raise Undecidable(f"layer classes {classes!r} are not all classes")
    return isinstance(module, Instance) and any(module.cls.is_subclass_of(c) for c in items)


def _truth(v: Any, what: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, Unknown):
        raise Undecidable(f"{what}: {v.reason}")
    if isinstance(v, (int, dict)):
        return bool(v)
    raise Undecidable(f"{what} returned {type(v).__name__}")


def _module_classes_policy(param: str) -> Callable[[Evaluator, Args, Kwargs], Any]:
    """transformer_auto_wrap_policy(module, recurse, nonwrapped_numel, transformer_layer_cls)
    (also _module_wrap_policy's): recurse always, wrap a module of the classes."""
    def impl(ev: Evaluator, a: Args, k: Kwargs) -> Any:
        b = _bind(ev, f"module, recurse, nonwrapped_numel, {param}", a, k, "transformer_auto_wrap_policy()")
        return True if b["recurse"] else _is_instance(ev, b["module"], b[param])

    return impl


def _size_policy(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    """size_based_auto_wrap_policy: recurse into a module big enough (not a force-leaf one:
    MultiheadAttention), wrap one whose not-yet-wrapped parameters reach min_num_params (not a
    ModuleList / ModuleDict)."""
    b = _bind(ev, f"module, recurse, nonwrapped_numel, {SIZE_POLICY}", a, k, "size_based_auto_wrap_policy()")
    n, least = b["nonwrapped_numel"], b["min_num_params"]
    if not isinstance(n, int) or not isinstance(least, (int, float)):
        return Unknown(f"size_based_auto_wrap_policy: min_num_params {least!r}", ev.current_ref)
    classes = _torch_layer_classes(ev.loader)
    if b["recurse"]:
        leaves = b["force_leaf_modules"] if b["force_leaf_modules"] is not None else {classes["MultiheadAttention"]}
        return n >= least and not _is_instance(ev, b["module"], leaves)
    excluded = b["exclude_wrap_modules"] if b["exclude_wrap_modules"] is not None else \
        {classes["ModuleList"], classes["ModuleDict"]}
    return n >= least and not _is_instance(ev, b["module"], excluded)


def _lambda_policy(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    b = _bind(ev, "module, recurse, nonwrapped_numel, lambda_fn", a, k, "lambda_auto_wrap_policy()")
    return True if b["recurse"] else ev.call(b["lambda_fn"], (b["module"],), {})


def _torch_layer_classes(loader: Loader) -> dict[str, ClassValue]:
    from vramlint.frontends.torch.stubs import torch_classes

    return torch_classes(loader).layers


def parameter_numel(module: Instance) -> int | str:
    """module.parameters()' elements (each tensor once, as torch's `parameters()`), or why not known."""
    total = 0
    for name, t in named_tensors(module, "params"):
        n = t.numel() if isinstance(t, TensorValue) else None
        if not isinstance(n, int):
            return f"the size of parameter {name} is not known"
        total += n
    return total


def _numel(ev: Evaluator, module: Instance) -> int:
    n = parameter_numel(module)
    if isinstance(n, str):
        raise Undecidable(n)
    return n


def _children(module: Instance) -> Iterator[tuple[str, Instance]]:
    for name, child in state_of(module).modules.items():
        if is_module(child):
            yield name, child


def _recursive_wrap(ev: Evaluator, module: Instance, path: str, policy: Any, out: list[str],
                    only_children: bool = False) -> int:
    """torch's `_recursive_wrap` (wrap.py), with the wrapped paths appended to `out` in the order
    torch wraps them (post-order): returns the parameters it wrapped below and at `module`."""
    ev.charge()
    numel = _numel(ev, module)

    def ask(recurse: bool, n: int) -> bool:
        return _truth(ev.call(policy, (), {"module": module, "recurse": recurse, "nonwrapped_numel": n}),
                      "the auto_wrap_policy")

    if not ask(True, numel):
        return 0
    done = 0
    for name, child in _children(module):
        done += _recursive_wrap(ev, child, f"{path}.{name}" if path else name, policy, out)
    if not only_children and ask(False, numel - done):
        out.append(path)
        return numel
    return done


def _post_order(module: Instance, path: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Instance]]:
    """`_post_order_apply`'s order: children first, each module once."""
    seen = {id(module)} if seen is None else seen
    for name, child in _children(module):
        if id(child) not in seen:
            seen.add(id(child))
            yield from _post_order(child, f"{path}.{name}" if path else name, seen)
    yield path, module


def _policy_object_units(ev: Evaluator, root: Instance, policy: Instance) -> list[str] | None:
    """ModuleWrapPolicy / CustomPolicy (`_run_policy` then `_post_order_apply`): the paths, None
    when `policy` is not one of them."""
    kind = policy.cls.name
    if kind == "ModuleWrapPolicy":
        classes = policy.attrs.get("module_classes")
        return [p for p, m in _post_order(root) if p and _is_instance(ev, m, classes)]
    if kind == "CustomPolicy":
        fn = policy.attrs.get("lambda_fn")
        return [p for p, m in _post_order(root) if p and _truth(ev.call(fn, (m,), {}), "CustomPolicy's lambda_fn")]
    return None


def _ignored_by_precision(ev: Evaluator, args: dict[str, Any]) -> Any:
    """MixedPrecision._module_classes_to_ignore (default (_BatchNorm,)): torch wraps each module of
    these classes alone, in full precision, when auto-wrapping with mixed precision; None without
    mixed precision."""
    mp = args.get("mixed_precision")
    if mp is None:
        return None
    given = mp.attrs.get("_module_classes_to_ignore") if isinstance(mp, Instance) else None
    return given if given is not None else (_torch_layer_classes(ev.loader)["_BatchNorm"],)


def _fsdp1_units(ev: Evaluator, root: Instance, args: dict[str, Any]) -> dict[str, Any]:
    """The units FullyShardedDataParallel(root, auto_wrap_policy=...) makes: the policy's modules
    in torch's order, then the root. With `mixed_precision`, torch also wraps each BatchNorm
    alone (MixedPrecision._module_classes_to_ignore). {"units": None, "why": ...} when undecided.
    A set of classes (Lightning's FSDPStrategy(auto_wrap_policy={Block})) is a ModuleWrapPolicy."""
    policy = args.get("auto_wrap_policy")
    if policy is None:
        return {"units": ("",)}
    out: list[str] = []
    try:
        if isinstance(policy, (set, frozenset)):
            policy = _policy_class(ev.loader, "ModuleWrapPolicy", "module_classes")
            policy = ev.protocol.instantiate(policy, (args["auto_wrap_policy"],), {})
        found = _policy_object_units(ev, root, policy) if isinstance(policy, Instance) else None
        if found is not None:
            out = found
            norms = _ignored_by_precision(ev, args)
            if norms is not None:
                out = [p for p, m in _post_order(root) if p and (p in out or _is_instance(ev, m, norms))]
        else:
            _recursive_wrap(ev, root, "", _with_batch_norms(ev, policy, args), out, only_children=True)
    except Undecidable as err:
        return {"units": None, "why": f"auto_wrap_policy not decided: {err}"}
    return {"units": (*out, "")}


def _with_batch_norms(ev: Evaluator, policy: Any, args: dict[str, Any]) -> Any:
    """_auto_wrap's `_or_policy` of the policy and `_wrap_module_cls_individually` for BatchNorm
    when mixed precision is given."""
    norms = _ignored_by_precision(ev, args)
    if norms is None:
        return policy

    def either(ev2: Evaluator, a: Args, k: Kwargs) -> Any:
        if k.get("recurse"):
            return True  # _wrap_module_cls_individually always recurses
        return _truth(ev2.call(policy, (), dict(k)), "the auto_wrap_policy") or _is_instance(ev2, k["module"], norms)

    return NativeFunction("torch.distributed.fsdp.wrap._or_policy", either)


def _policy_class(loader: Loader, name: str, param: str) -> ClassValue:
    """ModuleWrapPolicy(module_classes) / CustomPolicy(lambda_fn): keeps its argument; called as a
    function policy it answers as torch's `__call__` does."""
    cls = _record_class(loader, name, "torch.distributed.fsdp.wrap", param)
    if "__call__" not in cls.ns:
        def call(ev: Evaluator, a: Args, k: Kwargs) -> Any:
            b = _bind(ev, "module, recurse, nonwrapped_numel=-1", a[1:], k, f"{name}()")
            if b["recurse"]:
                return True
            if name == "ModuleWrapPolicy":
                return _is_instance(ev, b["module"], a[0].attrs.get("module_classes"))
            return ev.call(a[0].attrs.get("lambda_fn"), (b["module"],), {})

        cls.ns["__call__"] = NativeFunction(f"{name}.__call__", call)
    return cls


# ---------------------------------------------------------------------- tensor parallelism
STYLES = {"ColwiseParallel": "colwise", "RowwiseParallel": "rowwise", "SequenceParallel": "sequence",
          "PrepareModuleInput": "prepare-input", "PrepareModuleOutput": "prepare-output",
          "PrepareModuleInputOutput": "prepare-input-output"}
STYLE_SIGNATURES = {
    "ColwiseParallel": "*, input_layouts=None, output_layouts=None, use_local_output=True",
    "RowwiseParallel": "*, input_layouts=None, output_layouts=None, use_local_output=True",
    "SequenceParallel": "*, sequence_dim=1, use_local_output=False",
    "PrepareModuleInput": "*, input_layouts=None, desired_input_layouts=None, input_kwarg_layouts=None, "
                          "desired_input_kwarg_layouts=None, use_local_output=False",
    "PrepareModuleOutput": "*, output_layouts=None, desired_output_layouts=None, use_local_output=True",
    "PrepareModuleInputOutput": "*, input_layouts=None, desired_input_layouts=None, input_kwarg_layouts=None, "
                                "desired_input_kwarg_layouts=None, use_local_input=False, output_layouts=None, "
                                "desired_output_layouts=None, use_local_output=True",
}


def style_of(v: Any) -> str | None:
    """"colwise" for a ColwiseParallel(...) (or a subclass of one), else None."""
    if not isinstance(v, Instance):
        return None
    return next((STYLES[c.name] for c in v.cls.mro if c.name in STYLES
                 and c.module_name.startswith("torch.distributed.tensor.parallel")), None)


def expand_plan(ev: Evaluator, module: Instance, plan: Any, prefix: str = "",
                key: str | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """parallelize_module's plan as torch applies it (api.py): a style applies to the module; a
    dict's keys are matched, one dotted token at a time, with fnmatch against the children's
    names ("layers.*.attention.wq"). (path, style) pairs, and what could not be applied (torch
    warns and skips a key that matches nothing); `key`: the plan's own key being followed."""
    style = style_of(plan)
    if style is not None:
        return [(prefix, style)], []
    if not isinstance(plan, dict):
        shown = f"plan key {key!r}: " if key is not None else ""
        what = f"unknown ({plan.reason})" if isinstance(plan, Unknown) else repr(plan)[:80]
        return [], [f"{shown}{what} is not a ParallelStyle or a dict of them"]
    out: list[tuple[str, str]] = []
    missed: list[str] = []
    for k, value in plan.items():
        if not isinstance(k, str):
            missed.append(f"plan key {k!r} is not a string")
            continue
        shown = key if key is not None else k
        if k == "":
            got, miss = expand_plan(ev, module, value, prefix, shown)
            out, missed = out + got, missed + miss
            continue
        token, _, rest = k.partition(".")
        children = [(n, c) for n, c in _children(module) if fnmatch.fnmatchcase(n, token)]
        if not children:
            missed.append(f"plan key {shown!r}: no submodule matches {token!r}")
        for name, child in children:
            path = f"{prefix}.{name}" if prefix else name
            got, miss = expand_plan(ev, child, {rest: value} if rest else value, path, shown)
            out, missed = out + got, missed + miss
    return out, list(dict.fromkeys(missed))


def _parallelize_module(ev: Evaluator, a: Args, k: Kwargs) -> Any:
    args = _bind(ev, "module, device_mesh=None, parallelize_plan=None, *, src_data_rank=0", a, k,
                 "parallelize_module()")
    module = args["module"]
    if isinstance(module, Unknown):
        return module
    if not is_module(module):
        raise ev.raise_error("TypeError", "parallelize_module: module must be an nn.Module")
    if args["parallelize_plan"] is None:
        return module  # torch warns and does nothing
    styles, missed = expand_plan(ev, module, args["parallelize_plan"])
    add_mark(ev, module, "tp", args, styles=tuple(styles), why="; ".join(missed), mesh=args["device_mesh"])
    return module


# ---------------------------------------------------------------------- the modules
def _fsdp_names(loader: Loader, dotted: str) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "fully_shard": _native("torch.distributed.fsdp.fully_shard", _fully_shard),
        "MixedPrecisionPolicy": _record_class(loader, "MixedPrecisionPolicy", "torch.distributed.fsdp",
                                              "param_dtype=None, reduce_dtype=None, output_dtype=None, "
                                              "cast_forward_inputs=True"),
        "CPUOffloadPolicy": _record_class(loader, "CPUOffloadPolicy", "torch.distributed.fsdp", "pin_memory=True"),
        "OffloadPolicy": _record_class(loader, "OffloadPolicy", "torch.distributed.fsdp", ""),
        "register_fsdp_forward_method": _native(f"{dotted}.register_fsdp_forward_method", _returns_none),
    }
    if dotted.startswith("torch.distributed._composable"):
        return ns
    ns.update({
        "FullyShardedDataParallel": _wrapper_class(loader, "FullyShardedDataParallel",
                                                   "torch.distributed.fsdp.fully_sharded_data_parallel", "fsdp1"),
        "ShardingStrategy": _enum_class(loader, "ShardingStrategy", "torch.distributed.fsdp.api",
                                        ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD",
                                         "_HYBRID_SHARD_ZERO2")),
        "BackwardPrefetch": _enum_class(loader, "BackwardPrefetch", "torch.distributed.fsdp.api",
                                        ("BACKWARD_PRE", "BACKWARD_POST")),
        "StateDictType": _enum_class(loader, "StateDictType", "torch.distributed.fsdp.api",
                                     ("FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT")),
        "MixedPrecision": _record_class(loader, "MixedPrecision", "torch.distributed.fsdp.api",
                                        "param_dtype=None, reduce_dtype=None, buffer_dtype=None, "
                                        "keep_low_precision_grads=False, cast_forward_inputs=False, "
                                        "cast_root_forward_inputs=True, _module_classes_to_ignore=None"),
        "CPUOffload": _record_class(loader, "CPUOffload", "torch.distributed.fsdp.api", "offload_params=False"),
        "FSDPModule": _record_class(loader, "FSDPModule", "torch.distributed.fsdp", ""),
    })
    for name in ("FullStateDictConfig", "ShardedStateDictConfig", "LocalStateDictConfig", "FullOptimStateDictConfig",
                 "ShardedOptimStateDictConfig", "StateDictConfig", "OptimStateDictConfig"):
        ns[name] = _record_class(loader, name, "torch.distributed.fsdp.api", "*args, **kwargs")
    return ns


def _wrap_names(loader: Loader) -> dict[str, Any]:
    mod = "torch.distributed.fsdp.wrap"
    return {
        "transformer_auto_wrap_policy": _native(f"{mod}.transformer_auto_wrap_policy",
                                                _module_classes_policy("transformer_layer_cls")),
        "_module_wrap_policy": _native(f"{mod}._module_wrap_policy", _module_classes_policy("module_classes")),
        "size_based_auto_wrap_policy": _native(f"{mod}.size_based_auto_wrap_policy", _size_policy),
        "lambda_auto_wrap_policy": _native(f"{mod}.lambda_auto_wrap_policy", _lambda_policy),
        "always_wrap_policy": _native(f"{mod}.always_wrap_policy", lambda ev, a, k: True),
        "ModuleWrapPolicy": _policy_class(loader, "ModuleWrapPolicy", "module_classes"),
        "CustomPolicy": _policy_class(loader, "CustomPolicy", "lambda_fn"),
        "enable_wrap": _context(f"{mod}.enable_wrap"),
        # wrap(module) outside enable_wrap returns the module (torch: only inside it does it wrap)
        "wrap": _native(f"{mod}.wrap", lambda ev, a, k: a[0] if a else k.get("module")),
    }


def _tensor_names(loader: Loader, dotted: str) -> dict[str, Any]:
    obj = loader.builtins["object"]
    placements = {name: _record_class(loader, name, "torch.distributed.tensor.placement_types", sig)
                  for name, sig in (("Shard", "dim=0"), ("Replicate", ""), ("Partial", "reduce_op='sum'"))}
    if dotted.startswith("torch.distributed.tensor.parallel"):
        ns: dict[str, Any] = {name: _record_class(loader, name, "torch.distributed.tensor.parallel.style", sig)
                              for name, sig in STYLE_SIGNATURES.items()}
        ns["ParallelStyle"] = _record_class(loader, "ParallelStyle", "torch.distributed.tensor.parallel.style", "")
        ns["parallelize_module"] = _native("torch.distributed.tensor.parallel.parallelize_module", _parallelize_module)
        ns["loss_parallel"] = _context("torch.distributed.tensor.parallel.loss_parallel")
        return ns
    from vramlint.frontends.torch.stubs import torch_classes

    # Code checks `isinstance(weight, DTensor)` (peft's LoRA layers): no analysed tensor is sharded.
    dtensor = ClassValue("DTensor", (torch_classes(loader).tensor,), {}, "torch.distributed.tensor")
    return {**placements, "DTensor": dtensor, "Placement": ClassValue("Placement", (obj,), {}, dotted),
            "DeviceMesh": _mesh_class(loader),
            "init_device_mesh": _native("torch.distributed.device_mesh.init_device_mesh", _init_device_mesh)}


def mesh_names(loader: Loader) -> dict[str, Any]:
    """What torch.distributed itself re-exports from device_mesh."""
    return {"DeviceMesh": _mesh_class(loader),
            "init_device_mesh": _native("torch.distributed.device_mesh.init_device_mesh", _init_device_mesh)}


def distributed_module(loader: Loader, dotted: str, unknown_attr: Callable[[str], Any]) -> ModuleValue:
    """The module `dotted` (one of DISTRIBUTED_MODULES)."""
    if dotted.startswith("torch.nn.parallel"):
        ns: dict[str, Any] = {"DistributedDataParallel": _wrapper_class(
            loader, "DistributedDataParallel", "torch.nn.parallel.distributed", "ddp")}
    elif dotted == "torch.distributed.fsdp.wrap":
        ns = _wrap_names(loader)
    elif dotted.startswith(("torch.distributed.fsdp", "torch.distributed._composable")):
        ns = _fsdp_names(loader, dotted)
    elif dotted == "torch.distributed.device_mesh":
        ns = mesh_names(loader)
    else:
        ns = _tensor_names(loader, dotted)
    return ModuleValue(dotted, ns, getattr_hook=unknown_attr)


__all__ = ["DISTRIBUTED_MODULES", "Mark", "MeshState", "add_mark", "distributed_module", "enum_name", "fsdp1_units",
           "held_model", "parameter_numel",
           "marks_of", "mesh_state", "style_of", "wrapped"]
