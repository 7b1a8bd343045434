"""The ground truth of per-GPU memory under DDP, FSDP2, FSDP1 and tensor parallelism, measured by
running the training scripts of tests/data/distributed/ for real with torch.distributed on the CPU
(gloo backend, one local process per rank), and counting what each rank holds.

    /work/main/.venv/bin/python tools/distributed_truth.py            # every case, world sizes 2 and 4
    /work/main/.venv/bin/python tools/distributed_truth.py ddp fsdp2 --world-sizes 2 --out -

Each rank runs the case script as `__main__` (runpy) under a TorchDispatchMode that tracks every
storage an op creates or touches, by weak reference (a storage's bytes are read when sampled, so
FSDP's `untyped_storage().resize_()` of the unsharded parameters is seen). The window measured is
the 3rd training iteration (from the 2nd `optimizer.step()`'s return to the 3rd's; MEASURED_STEP):

- model states at the step boundary (after the 3rd step): the optimizer's parameters (FSDP2's
  DTensor local shards, FSDP1's flat parameter shards, TP's DTensor local tensors), their
  gradients, and the tensors of `optimizer.state` (AdamW's `step` scalars apart: on a GPU they
  stay on the host);
- every live storage, sampled after each op, by class (CLASSES): parameters, gradients, optimizer
  state, unsharded parameters (FSDP's gathered ones), unsharded gradients (before FSDP's
  reduce-scatter), communication buffers, other (activations, temporaries). A communication
  buffer is a storage that a collective or FSDP's copy-in op reads or writes (c10d /
  _c10d_functional ops, `fsdp.all_gather_copy_in`, `fsdp.chunk_cat`) or a DDP gradient bucket
  (`GradBucket.buffer()` through a comm hook, which also gives each bucket's exact size), and is
  none of the above; the largest total of them live at once, and the classes at the peak;
- the peak of all live bytes (indicative: a CPU run has no caching allocator).

The figures are the tensors' bytes (what a CUDA run would allocate before the caching allocator's
512-byte rounding). Written to tests/data/distributed/truth.json (see its README.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import runpy
import socket
import sys
import tempfile
import time
import traceback
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "distributed"
# case name -> (script, what it shows); every case runs at each world size.
CASES: dict[str, tuple[str, str]] = {
    "ddp": ("ddp.py", "DistributedDataParallel, defaults (25 MiB buckets, first bucket 1 MiB)"),
    "ddp_bucket_view": ("ddp_bucket_view.py", "DDP, gradient_as_bucket_view=True"),
    "ddp_bucket_1mb": ("ddp_bucket_1mb.py", "DDP, bucket_cap_mb=1"),
    "fsdp2": ("fsdp2.py", "fully_shard per block + root, 1-D mesh, reshard_after_forward=True"),
    "fsdp2_no_reshard": ("fsdp2_no_reshard.py", "fully_shard(..., reshard_after_forward=False)"),
    "fsdp2_mixed": ("fsdp2_mixed.py", "fully_shard, MixedPrecisionPolicy(bf16 params, fp32 reduce)"),
    "fsdp1_full_shard": ("fsdp1_full_shard.py", "FSDP1 FULL_SHARD, transformer_auto_wrap_policy"),
    "fsdp1_shard_grad_op": ("fsdp1_shard_grad_op.py", "FSDP1 SHARD_GRAD_OP, transformer_auto_wrap_policy"),
    "fsdp1_no_shard": ("fsdp1_no_shard.py", "FSDP1 NO_SHARD, transformer_auto_wrap_policy"),
    "tp": ("tp.py", "parallelize_module: ColwiseParallel fc1, RowwiseParallel fc2 of each block "
           "(hidden 1204: DTensor's from_local assumes even shards)"),
    "tp_attention": ("tp_attention.py", "parallelize_module on a transformer: q, k, v and fc1 "
                     "colwise, o and fc2 rowwise (dim 300, 4 heads, hidden 1204)"),
}
WORLD_SIZES = (2, 4)
TIMEOUT_S = 240.0  # per case and world size: a hang in a collective ends here, not never

# Ops whose tensors are communication buffers (torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py:
# all_gather_copy_in copies the shards into the all-gather output, chunk_cat the unsharded
# gradients into the reduce-scatter input; the c10d ops are the collectives themselves).
COLLECTIVE_NAMESPACES = ("c10d", "_c10d_functional", "c10d_functional", "_dtensor")
# Functional collectives' ops that hand a collective's output on without a buffer of their own.
PASS_THROUGH = ("wait_tensor", "_wrap_tensor_autograd", "mesh_get_process_group")


@dataclass
class _Storage:
    ref: weakref.ref[Any]
    serial: int  # _cdata addresses are reused once a storage is freed: the tags stay with this


# What a live storage is, in this order: a storage counts in the first class it belongs to.
CLASSES = ("parameters", "gradients", "optimizer_state", "unsharded_parameters",
           "unsharded_gradients", "communication", "other")
# The iteration measured: the 3rd, the first in the steady state. DDP rebuilds its buckets in the
# order the gradients came in the 1st backward, at the 2nd forward (DistributedDataParallel.
# _pre_forward -> Reducer::rebuild_buckets, torch/csrc/distributed/c10d/reducer.cpp): the 2nd
# iteration holds the old buckets and the new ones, and broadcasts the new order.
MEASURED_STEP = 3


@dataclass
class Sample:
    """One moment of the iteration: live bytes by class, and the communication buffers by tag."""

    by_class: dict[str, int]
    by_tag: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_class.values())

    @property
    def communication(self) -> int:
        return self.by_class.get("communication", 0)


def _label(tags: set[str]) -> str:
    """One name per storage: what FSDP or DDP made it for, else the collective that wrote it,
    else the one that read it."""
    specific = sorted(t for t in tags if not t.startswith("collective:"))
    outputs = sorted(t for t in tags if t.endswith(":out"))
    return (specific or outputs or sorted(tags))[0]


def _storages(obj: Any) -> list[Any]:
    """The untyped storages under a tensor, through wrapper subclasses (DTensor's local tensor)."""
    import torch
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    if not isinstance(obj, torch.Tensor):
        return []
    if is_traceable_wrapper_subclass(obj):
        attrs, _ = obj.__tensor_flatten__()
        return [s for a in attrs for s in _storages(getattr(obj, a))]
    if obj.device.type == "meta":
        return []
    try:
        return [obj.untyped_storage()]
    except (RuntimeError, NotImplementedError):  # sparse, functional wrappers
        return []


def _local(t: Any) -> Any:
    from torch.distributed.tensor import DTensor

    return t.to_local() if isinstance(t, DTensor) else t


class Probe:
    """Tracks the storages of one rank and the optimizer's state in the iteration measured."""

    def __init__(self) -> None:
        self.tracked: dict[int, _Storage] = {}
        self.steps: dict[int, int] = {}
        self.optimizer: Any = None
        self.window = False
        self.snapshots: list[list[tuple[int, int, str]]] = []
        self.tags: dict[int, set[str]] = {}
        self.serials = 0
        self.final_grads: set[int] = set()
        self.boundary: dict[str, Any] = {}
        self.ddp_buckets: dict[int, int] = {}  # bucket index -> bytes, in the iteration measured
        self.ddp_bucket_storages: set[int] = set()
        self.ddp_options: dict[str, Any] = {}
        self.ops = 0

    # ------------------------------------------------------------------ storages
    def track(self, obj: Any, tag: str | None = None) -> None:
        for st in _storages(obj):
            key = st._cdata
            entry = self.tracked.get(key)
            if entry is None or entry.ref() is None:
                self.serials += 1
                entry = _Storage(weakref.ref(st, lambda _r, k=key: self._forget(k, _r)), self.serials)
                self.tracked[key] = entry
            if tag:
                # Tags are kept by serial and read when the iteration is over: DDP's rebuilt buckets
                # are known as buckets only when its comm hook sees them, late in the backward.
                self.tags.setdefault(entry.serial, set()).add(tag)

    def _forget(self, key: int, ref: Any) -> None:
        entry = self.tracked.get(key)
        if entry is not None and entry.ref is ref:
            del self.tracked[key]

    # ------------------------------------------------------------------ model states
    def _params(self) -> list[Any]:
        return [p for g in self.optimizer.param_groups for p in g["params"]] if self.optimizer else []

    def _state_tensors(self) -> tuple[list[Any], list[Any]]:
        """The optimizer state's tensors, and its scalar `step` counters apart."""
        import torch

        tensors, steps = [], []
        for state in (self.optimizer.state.values() if self.optimizer else ()):
            for name, v in state.items():
                if isinstance(v, torch.Tensor):
                    (steps if name == "step" else tensors).append(v)
        return tensors, steps

    def _keys(self, tensors: list[Any]) -> set[int]:
        return {st._cdata for t in tensors for st in _storages(t)}

    def _param_tensors(self) -> list[Any]:
        """The sharded parameters: FSDP1 swaps a FlatParameter's data for the unsharded flat
        parameter between its all-gather and its reshard; `_local_shard` is the shard throughout
        (torch/distributed/fsdp/_flat_param.py, FlatParamHandle._init_shard_metadata)."""
        return [getattr(p, "_local_shard", p) for p in self._params()]

    def _grad_tensors(self) -> tuple[list[Any], list[Any]]:
        """Sharded and unsharded gradients now: FSDP1's FlatParameter.grad is the unsharded flat
        gradient until its post-backward reduce-scatter; the sharded one then waits in
        `_saved_grad_shard` until the end of backward (_runtime_utils._accumulate_sharded_grad)."""
        sharded, unsharded = [], []
        for p in self._params():
            shard = getattr(p, "_local_shard", None)
            if p.grad is not None:
                full = shard is not None and p.grad.numel() != shard.numel()
                (unsharded if full else sharded).append(p.grad)
            if getattr(p, "_saved_grad_shard", None) is not None:
                sharded.append(p._saved_grad_shard)
        return sharded, unsharded

    def _unsharded(self) -> list[Any]:
        """FSDP1's unsharded flat parameters (FlatParameter._full_param_padded, and the low-precision
        _mp_shard / _full_prec_full_param_padded: torch/distributed/fsdp/_flat_param.py), which the
        all-gather writes into directly; FSDP2's are tagged by its copy-out op instead."""
        names = ("_full_param_padded", "_full_prec_full_param_padded", "_mp_shard")
        return [getattr(p, n) for p in self._params() for n in names if hasattr(p, n)]

    def snapshot(self) -> list[tuple[int, int, str]]:
        """Every live storage now: (serial, bytes, class), the class "" where only the tags known
        at the end of the iteration say what it is."""
        sharded, unsharded = self._grad_tensors()
        classes = (("parameters", self._keys(self._param_tensors())),
                   ("gradients", self._keys(sharded)),
                   ("optimizer_state", self._keys(self._state_tensors()[0])),
                   ("unsharded_parameters", self._keys(self._unsharded())),
                   ("unsharded_gradients", self._keys(unsharded)))
        out = []
        for key, entry in list(self.tracked.items()):
            st = entry.ref()
            if st is None:
                continue
            cls = next((name for name, keys in classes if key in keys), "")
            out.append((entry.serial, st.nbytes(), cls))
        return out

    def observe(self) -> None:
        if self.window:
            self.snapshots.append(self.snapshot())

    def classify(self, snap: list[tuple[int, int, str]]) -> Sample:
        """A snapshot's bytes by class, with what is known at the end of the iteration: the
        tags, and which storages hold the gradients at the step (FSDP's reduce-scatter output and
        DDP's buckets under gradient_as_bucket_view are the gradients from their allocation on)."""
        by: dict[str, int] = dict.fromkeys(CLASSES, 0)
        by_tag: dict[str, int] = {}
        for serial, n, cls in snap:
            tags = self.tags.get(serial, set())
            if not cls:
                if serial in self.final_grads:
                    cls = "gradients"
                elif "fsdp_unsharded_param" in tags:
                    cls = "unsharded_parameters"
                elif "fsdp_unsharded_grad" in tags:
                    cls = "unsharded_gradients"
                elif tags:
                    cls = "communication"
                else:
                    cls = "other"
            by[cls] += n
            if tags and cls in ("communication", "other"):
                tag = _label(tags)
                by_tag[tag] = by_tag.get(tag, 0) + n
        return Sample(by, by_tag)

    def model_states(self) -> dict[str, Any]:
        """Bytes of the parameters, gradients and optimizer state: the tensors' own bytes
        (numel x itemsize) and the distinct storages under them (FSDP2's padded shards)."""
        params = self._params()
        grads = [p.grad for p in params if p.grad is not None]
        state, steps = self._state_tensors()

        def nbytes(ts: list[Any]) -> int:
            return sum(_local(t).numel() * _local(t).element_size() for t in ts)

        def storage_bytes(ts: list[Any]) -> int:
            seen: dict[int, int] = {}
            for t in ts:
                for st in _storages(t):
                    seen[st._cdata] = st.nbytes()
            return sum(seen.values())

        return {
            "parameters": nbytes(params), "parameters_storage": storage_bytes(params),
            "parameter_count": len(params),
            "parameter_dtypes": sorted({str(_local(p).dtype) for p in params}),
            "gradients": nbytes(grads), "gradients_storage": storage_bytes(grads),
            "optimizer_state": nbytes(state), "optimizer_state_storage": storage_bytes(state),
            "optimizer_step_scalars": nbytes(steps),
            "local_shapes": [list(_local(p).shape) for p in params],
        }

    # ------------------------------------------------------------------ hooks
    def on_step(self, optimizer: Any) -> None:
        n = self.steps[id(optimizer)] = self.steps.get(id(optimizer), 0) + 1
        self.optimizer = optimizer
        if n == MEASURED_STEP - 1:
            self.window = True
            self.observe()
        elif n == MEASURED_STEP:
            self.observe()
            self.boundary = self.model_states()
            self.final_grads = {self.tracked[k].serial for k in self._keys(self._grad_tensors()[0])
                                if k in self.tracked}
            self.window = False

    def on_bucket(self, bucket: Any) -> None:
        buf = bucket.buffer()
        self.track(buf, "ddp_bucket")
        if self.window:
            self.ddp_buckets[bucket.index()] = buf.numel() * buf.element_size()

    def result(self) -> dict[str, Any]:
        def dump(s: Sample | None) -> dict[str, Any] | None:
            return None if s is None else {"total": s.total, **s.by_class,
                                           "by_tag": dict(sorted(s.by_tag.items()))}

        samples = [self.classify(snap) for snap in self.snapshots]
        comm_max = max(samples, key=lambda s: s.communication, default=None)
        out: dict[str, Any] = {"model_states": self.boundary}
        out["communication_max"] = comm_max.communication if comm_max else 0
        out["communication_max_by_tag"] = dict(sorted(comm_max.by_tag.items())) if comm_max else {}
        for cls in ("unsharded_parameters", "unsharded_gradients"):
            out[f"{cls}_max"] = max((s.by_class[cls] for s in samples), default=0)
        out["peak"] = dump(max(samples, key=lambda s: s.total, default=None))
        out["iteration_start"] = dump(samples[0] if samples else None)
        if self.ddp_buckets:
            out["ddp_buckets"] = [self.ddp_buckets[i] for i in sorted(self.ddp_buckets)]
            out["ddp_options"] = self.ddp_options
        out["ops_in_iteration"] = self.ops
        return out


def _mode(probe: Probe) -> Any:
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Tracker(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = func._schema.name
            op = name.split("::")[-1]
            collective = func.namespace in COLLECTIVE_NAMESPACES and op not in PASS_THROUGH
            flat_in, _ = tree_flatten((args, kwargs))
            if name == "fsdp::all_gather_copy_in":
                probe.track(args[1], "fsdp_all_gather_output")
                for t in args[0]:  # the shards themselves, or their low-precision copy
                    probe.track(t, "fsdp_all_gather_input")
            elif name == "fsdp::chunk_cat":
                probe.track(kwargs.get("out", args[-1]), "fsdp_reduce_scatter_input")
                for t in args[0]:
                    probe.track(t, "fsdp_unsharded_grad")
            elif name == "fsdp::split_with_sizes_copy":
                for t in kwargs["out"]:
                    probe.track(t, "fsdp_unsharded_param")
            # A collective's inputs and outputs apart (an in-place one, c10d's `allreduce_` of
            # a DDP bucket, has the same storage in both).
            for t in flat_in:
                probe.track(t, f"collective:{op}:in" if collective else None)
            for t in tree_flatten(out)[0]:
                probe.track(t, f"collective:{op}:out" if collective else None)
            if probe.window:
                probe.ops += 1
                probe.observe()
            return out

    return Tracker()


def _install_hooks(probe: Probe) -> None:
    """Global optimizer hooks (the window) and a DDP comm hook that reads each bucket's buffer
    before the default all-reduce (torch/distributed/algorithms/ddp_comm_hooks/default_hooks.py)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel
    from torch.optim.optimizer import register_optimizer_step_post_hook

    register_optimizer_step_post_hook(lambda opt, _a, _k: probe.on_step(opt))
    init = DistributedDataParallel.__init__

    def ddp_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        probe.ddp_options = {k: kwargs[k] for k in ("bucket_cap_mb", "gradient_as_bucket_view") if k in kwargs}

        def hook(state: Any, bucket: Any) -> Any:
            probe.on_bucket(bucket)
            return default_hooks.allreduce_hook(state, bucket)

        # DDP._check_comm_hook wants `bucket` unannotated or annotated with the class itself
        # (this module's annotations are strings).
        hook.__annotations__ = {}
        self.register_comm_hook(None, hook)

    DistributedDataParallel.__init__ = ddp_init  # type: ignore[method-assign]


def _located(exc: BaseException, script: str) -> str:
    """The error at its line in the case (or its model.py), else where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    here = [f for f in frames if Path(f.filename).parent == Path(script).parent]
    where = (here or frames or [None])[-1]
    at = f"{Path(where.filename).name}:{where.lineno}: " if where is not None else ""
    return f"{at}{type(exc).__name__}: {exc}"


def _rank_main(rank: int, world: int, port: int, script: str, outdir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch

    torch.set_num_threads(1)
    probe = Probe()
    try:
        _install_hooks(probe)
        sys.path.insert(0, str(Path(script).parent))  # as `python script.py` does: its model.py
        gc.collect()  # the same start whatever the parent process did (pytest or the command line)
        with _mode(probe):
            runpy.run_path(script, run_name="__main__")
        result = probe.result()
    except BaseException as exc:  # the case's own failure is its result
        failure = {"error": _located(exc, script), "traceback": traceback.format_exc(limit=8)}
        Path(outdir, f"rank{rank}.json").write_text(json.dumps(failure))
        # A non-zero exit makes ProcessContext.join end the other ranks, which would otherwise
        # wait for this one in a collective until gloo's 30-minute timeout.
        os._exit(1)
    Path(outdir, f"rank{rank}.json").write_text(json.dumps(result))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_script(script: Path, world: int, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Runs a training script under `world` local processes, as torchrun would; each rank's
    figures, or the first error at its line, or a timeout (every rank then ended)."""
    import torch.multiprocessing as mp

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vramlint-truth-") as outdir:
        ctx = mp.start_processes(_rank_main, args=(world, _free_port(), str(script), outdir),
                                 nprocs=world, join=False, start_method="fork")
        problem = None
        try:
            while not ctx.join(timeout=max(1.0, timeout - (time.monotonic() - start))):
                if time.monotonic() - start > timeout:
                    problem = f"TimeoutError: {script.name} at world size {world}: no result within {timeout:.0f} s"
                    break
        except mp.ProcessExitedException as exc:  # a rank failed; join has ended the others
            problem = str(exc)
        for p in ctx.processes:  # ours, by their own handles
            if p.is_alive():
                p.terminate()
                p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        files = sorted(Path(outdir).glob("rank*.json"), key=lambda f: int(f.stem[4:]))
        ranks = [json.loads(f.read_text()) for f in files]
    out: dict[str, Any] = {"seconds": round(time.monotonic() - start, 1)}
    failed = [r for r in ranks if "error" in r]
    if failed:
        out.update(failed[0])
    elif problem is not None or len(ranks) != world:
        out["error"] = problem or f"{len(ranks)} of {world} ranks gave a result"
    else:
        out["ranks"] = ranks
    return out


def run_case(case: str, world: int, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Runs one case of CASES under `world` local processes."""
    return run_script(DATA / CASES[case][0], world, timeout)


def versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__, "python": platform.python_version(), "backend": "gloo",
            "device": "cpu", "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help=f"cases to run (default all: {', '.join(CASES)})")
    ap.add_argument("--world-sizes", default=",".join(map(str, WORLD_SIZES)))
    ap.add_argument("--out", default=str(DATA / "truth.json"), help="JSON file, or - for stdout")
    args = ap.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}: choose from {list(CASES)}")
    worlds = [int(w) for w in args.world_sizes.split(",")]
    start = time.monotonic()
    cases: dict[str, Any] = {}
    for case in args.cases or list(CASES):
        script, what = CASES[case]
        cases[case] = {"script": script, "what": what, "world_sizes": {}}
        for w in worlds:
            res = run_case(case, w)
            cases[case]["world_sizes"][str(w)] = res
            status = res.get("error", "ok")
            print(f"{case} x{w}: {res['seconds']} s {status}", file=sys.stderr)
    doc = {**versions(), "generated_by": "tools/distributed_truth.py",
           "seconds": round(time.monotonic() - start, 1), "cases": cases}
    text = json.dumps(doc, indent=1) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
