"""The tape: what one forward pass allocates and what autograd keeps, recorded op by op.

While a model's forward is traced (frontends/torch), the evaluator hands every native call
(a torch function, a Tensor method, an operator on tensors, a catalog layer's forward) to
`Tape.call`. A call that ran other recorded calls inside it is a composite (a Sequential, a
user-level helper) and is not recorded itself; a leaf call becomes an `Op`: the storages it
allocated, the tensors it read, and — from `autograd_rules` — the tensors autograd keeps for
its backward. Tensors are identified by the Python object the evaluator made; views share
their base's `Storage`, so a tensor kept by two ops, or through a view, counts once.

Under autocast the tape also plays autocast's part: the ops of the lower-precision list run in
bf16/fp16 (their float32 inputs are cast, parameters once per forward through autocast's weight
cache) and the ops of the float32 list run in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramlint.engine.signals import BudgetExceeded
from vramlint.frontends.torch.tensors import DTYPE_BYTES, FLOAT_DTYPES, BufferTensor, TensorValue
from vramlint.memory import autograd_rules as rules
from vramlint.memory.attention_backends import KernelEnv
from vramlint.memory.cudnn import ConvWorkspace

# Ops one forward trace may record. Real models record a few thousand (a 48-layer transformer
# about 5,000); an endless loop in a forward would otherwise grow the tape until memory runs
# out (2 GB a minute), so the trace stops there with a located error.
MAX_TAPE_OPS = 200_000
WORKSPACE_LABEL = "cuDNN workspace"

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.values import Instance


@dataclass
class Storage:
    """One allocation. `kind`: param | buffer | input | activation | extra (a saved tensor that is
    no op's output: masks, indices, statistics) | intermediate (inside a composite op, such as
    nn.MultiheadAttention's projections) | cast (an autocast copy) | constant (made before the
    forward, not counted)."""

    sid: int
    nbytes: int
    kind: str
    dtype: str
    op: int  # index of the op that allocated it (-1: before the forward)
    label: str = ""


@dataclass
class Op:
    index: int
    name: str  # canonical op name ("conv2d", "relu", "cross_entropy")
    module: str  # path of the innermost module being called ("" for the root)
    reads: list[int]  # storages of the tensors it read
    grad_inputs: list[int]  # storages of inputs that receive a gradient (parameters included)
    outputs: list[int]
    allocated: list[int]  # storages it created (fresh outputs, extras, casts)
    saved: list[int]  # storages autograd keeps for its backward (empty when no grad flows)
    requires_grad: bool
    grad: str  # how its backward makes input gradients: "new" | "pass" | "none"
    backward_temp: int = 0  # transient bytes of its backward beyond the input gradients
    region: int = -1  # checkpointed region (-1: none)
    assumed: bool = False  # no rule for the op: assumed to keep its inputs
    where: Any = None  # the SourceRef of the code that ran it
    # A convolution's cuDNN workspaces (memory/cudnn.py): the forward's is `workspace_sid`, an
    # intermediate storage alive while the op runs; the backward's is in `backward_temp`.
    workspace: ConvWorkspace | None = None
    workspace_sid: int = -1
    # In inference its output is written into its first input's storage (a layer whose inference
    # runs a fused kernel: torch's transformer fast path), as dropout's is.
    inference_alias: bool = False


@dataclass
class _Tensor:
    value: TensorValue  # kept so that id() stays unique while the tape lives
    sid: int
    requires_grad: bool
    layout: rules.Layout = None  # None: contiguous


@dataclass
class Tape:
    autocast: str | None = None  # "bfloat16" | "float16" under torch.autocast
    storages: list[Storage] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    tensors: dict[int, _Tensor] = field(default_factory=dict)
    module_paths: dict[int, str] = field(default_factory=dict)
    module_stack: list[str] = field(default_factory=list)
    weight_casts: dict[int, int] = field(default_factory=dict)  # param storage -> autocast copy
    regions: list[list[int]] = field(default_factory=list)  # per checkpoint region: its input storages
    region: int = -1
    unmodelled: dict[str, int] = field(default_factory=dict)  # op name -> calls without a rule
    held_until: dict[int, int] = field(default_factory=dict)  # storage -> last op while a caller holds it
    forward_end: int | None = None  # ops from here on are the loss added after the model's forward
    op_outputs: dict[int, TensorValue] = field(default_factory=dict)  # op -> its first output (for the editor)
    # The card, torch release and attention switches the kernels are chosen for (attention_backends.py).
    kernels: KernelEnv = field(default_factory=KernelEnv)
    kernel_notes: dict[str, int] = field(default_factory=dict)  # "attention: flash (...)" -> calls
    _held: list[list[int]] = field(default_factory=list)

    # ------------------------------------------------------------------ registration
    def new_storage(self, nbytes: int, kind: str, dtype: str, label: str = "") -> int:
        sid = len(self.storages)
        self.storages.append(Storage(sid, nbytes, kind, dtype, len(self.ops), label))
        return sid

    def add_input(self, t: TensorValue) -> None:
        self.tensors[id(t)] = _Tensor(t, self.new_storage(tensor_bytes(t), "input", t.dtype, "input"), False)

    def info(self, t: TensorValue) -> _Tensor:
        """The tape's record of a tensor; one made before the forward (a parameter, a buffer, a
        constant attribute) is registered on first sight."""
        rec = self.tensors.get(id(t))
        if rec is None:
            if t.is_param:
                kind, grad = "param", t.requires_grad
            elif isinstance(t, BufferTensor):
                kind, grad = "buffer", False
            else:
                kind, grad = "constant", False
            sid = len(self.storages)
            self.storages.append(Storage(sid, tensor_bytes(t), kind, t.dtype, -1, kind))
            rec = self.tensors[id(t)] = _Tensor(t, sid, grad)
        return rec

    def mark_requires_grad(self, t: TensorValue, flag: bool) -> None:
        """`t.requires_grad_(flag)` during the forward: the ops that read it from now on keep
        what its gradient needs (a tensor the tape has not seen is registered by `info`)."""
        if id(t) in self.tensors:
            self.tensors[id(t)].requires_grad = flag

    # ------------------------------------------------------------------ modules, checkpoints
    def enter_module(self, inst: Instance, args: tuple[Any, ...] = ()) -> None:
        self.module_stack.append(self.module_paths.get(id(inst), self.module_stack[-1] if self.module_stack else ""))
        self._held.append([self.tensors[id(t)].sid for t in _tensors(args) if id(t) in self.tensors])

    def exit_module(self) -> None:
        if self.module_stack:
            self.module_stack.pop()
        # The caller's variables hold a layer's inputs until the layer returns
        # (`y = self.mlp(y)`, Sequential's `input = module(input)`).
        if self._held:
            end = len(self.ops) - 1
            for sid in self._held.pop():
                if self.held_until.get(sid, -1) < end:
                    self.held_until[sid] = end

    def checkpointed(self, args: tuple[Any, ...], run: Callable[[], Any]) -> Any:
        """torch.utils.checkpoint: the region keeps only its inputs; backward recomputes it."""
        if self.region >= 0:
            return run()
        self.regions.append([self.info(t).sid for t in _tensors(args)])
        self.region = len(self.regions) - 1
        try:
            return run()
        finally:
            self.region = -1

    # ------------------------------------------------------------------ recording
    def call(self, ev: Evaluator, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             run: Callable[[], Any], module: Instance | None = None) -> Any:
        before = len(self.ops)
        out = run()
        if len(self.ops) == before:
            self.record(name, args, kwargs, out, module, ev.current_ref)
        return out

    def record(self, raw_name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
               module: Instance | None, where: Any = None) -> None:
        ins = list(_tensors(args)) + list(_tensors(tuple(kwargs.values())))
        if module is not None and module.state is not None:  # a layer reads its own parameters
            ins += [t for t in module.state.params.values() if isinstance(t, TensorValue)]
        outs = list(_tensors((out,)))
        if not outs:
            return  # sizes, shapes, Python values: nothing allocated
        if len(self.ops) >= MAX_TAPE_OPS:
            raise BudgetExceeded(f"memory trace over {MAX_TAPE_OPS:,} operations (endless loop in the forward?)",
                                 where)
        name, inplace = rules.canonical(raw_name, module, kwargs)
        in_recs = [self.info(t) for t in ins]
        fresh = [t for t in outs if id(t) not in self.tensors]
        grad_in = [r for r in in_recs if r.requires_grad]
        differentiable = rules.differentiable(name) and bool(grad_in)
        op_index = len(self.ops)
        allocated: list[int] = []
        casts: dict[int, int] = {}  # input storage -> its autocast copy, for this op
        compute = self._autocast(name, in_recs, fresh, casts, allocated) if self.autocast is not None else None
        grads = {id(r.value) for r in grad_in}
        call = rules.Call(name, args, kwargs, ins, outs, module, inplace, True, lambda t: id(t) in grads, compute,
                          self.kernels)
        effect = rules.effect_of(call, [r.layout for r in in_recs])
        if effect.note and differentiable:
            self.kernel_notes[effect.note] = self.kernel_notes.get(effect.note, 0) + 1
        if effect.assumed:
            self.unmodelled[name] = self.unmodelled.get(name, 0) + 1
        out_sids: list[int] = []
        for t in outs:
            rec = self.tensors.get(id(t))
            if rec is None:
                alias = effect.alias_of(ins)
                if alias is not None:
                    base = self.info(alias)
                    rec = _Tensor(t, base.sid, differentiable and t.dtype in FLOAT_DTYPES, effect.layout)
                else:
                    sid = self.new_storage(tensor_bytes(t), "activation", t.dtype, name)
                    allocated.append(sid)
                    rec = _Tensor(t, sid, differentiable and t.dtype in FLOAT_DTYPES, effect.layout)
                self.tensors[id(t)] = rec
            elif differentiable and t.dtype in FLOAT_DTYPES:
                rec.requires_grad = True  # in place on a tensor that now has a history
            out_sids.append(rec.sid)
        saved: list[int] = []
        if differentiable:
            for item in effect.saves:
                if isinstance(item, TensorValue):
                    sid = self.info(item).sid
                    saved.append(casts.get(sid, sid))
                else:
                    kind = "intermediate" if item.intermediate else "extra"
                    sid = self.new_storage(item.nbytes, kind, item.dtype, f"{name}: {item.label}")
                    allocated.append(sid)
                    saved.append(sid)
        workspace_sid = -1
        if effect.workspace is not None and effect.workspace.forward:
            workspace_sid = self.new_storage(effect.workspace.forward, "intermediate", "uint8", WORKSPACE_LABEL)
            allocated.append(workspace_sid)
        self.op_outputs[op_index] = outs[0]
        self.ops.append(Op(
            op_index, name, self.module_stack[-1] if self.module_stack else "",
            [self.info(t).sid for t in ins], [r.sid for r in grad_in] if differentiable else [],
            out_sids, allocated, saved, differentiable, effect.grad if differentiable else "none",
            effect.backward_temp, self.region, effect.assumed, where, effect.workspace, workspace_sid,
        ))

    def _autocast(self, name: str, in_recs: list[_Tensor], fresh: list[TensorValue],
                  casts: dict[int, int], allocated: list[int]) -> str | None:
        """Autocast's part: cast the op's float inputs and outputs; the dtype it runs in."""
        assert self.autocast is not None
        if name in rules.AUTOCAST_LOWER:
            target = self.autocast
        elif name in rules.AUTOCAST_FP32:
            target = "float32"
        else:
            return None
        for r in in_recs:
            t = r.value
            if t.dtype not in FLOAT_DTYPES or t.dtype == target or r.sid in casts:
                continue
            st = self.storages[r.sid]
            if st.kind == "param" and r.sid in self.weight_casts:
                casts[r.sid] = self.weight_casts[r.sid]
                continue
            cast = self.new_storage(t.numel() * DTYPE_BYTES[target] if isinstance(t.numel(), int) else 0,
                                    "cast", target, f"autocast copy for {name}")
            allocated.append(cast)
            casts[r.sid] = cast
            if st.kind == "param":
                self.weight_casts[r.sid] = cast
        for t in fresh:
            if t.dtype in FLOAT_DTYPES:
                t.dtype = target
        return target


def tensor_bytes(t: TensorValue) -> int:
    n = t.numel()
    return n * DTYPE_BYTES.get(t.dtype, 4) + t.attached_bytes() if isinstance(n, int) else 0


def _tensors(values: tuple[Any, ...], depth: int = 0) -> Iterator[TensorValue]:
    """The tensors among an op's arguments or results (in containers two levels deep, and in
    objects that are not modules: transformers' ModelOutput holds tensors as attributes)."""
    from vramlint.engine.values import Instance

    for v in values:
        if isinstance(v, TensorValue):
            yield v
        elif depth < 2 and isinstance(v, (tuple, list)):
            yield from _tensors(tuple(v), depth + 1)
        elif depth < 2 and isinstance(v, dict):
            yield from _tensors(tuple(v.values()), depth + 1)
        elif depth < 2 and isinstance(v, Instance) and v.state is None:
            yield from _tensors(tuple(v.attrs.values()), depth + 1)


def reachable_tensors(value: Any, limit: int = 10_000) -> list[TensorValue]:
    """Every tensor an object holds, through containers and object attributes (a model output
    holding a KV cache holding per-layer keys and values)."""
    from vramlint.engine.values import Instance

    out: list[TensorValue] = []
    seen: set[int] = set()
    stack = [value]
    while stack and len(seen) < limit:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, TensorValue):
            out.append(v)
        elif isinstance(v, (tuple, list)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, Instance) and v.state is None:  # not a module: its parameters are weights
            stack.extend(v.attrs.values())
    return out
