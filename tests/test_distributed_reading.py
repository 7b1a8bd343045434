"""torch's multi-GPU APIs read from the analysed code into a ParallelPlan (frontends/torch/distributed.py,
frontends/torch/parallel_plan.py): DDP, FSDP2's fully_shard, FSDP1 and its auto-wrap policies, device
meshes, tensor parallelism.

The plan is asked for as the analysis asks it (`registry.parallel_plan` on the model each result is
estimated from, during the analysis); truths are real torch 2.13 on the CPU where a structure is
compared (DDP's parameter names, the modules FSDP1's auto-wrap policies wrap).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from vramlint.analysis import api
from vramlint.analysis.findings import find_problems
from vramlint.analysis.results import FileAnalysis
from vramlint.engine.values import Unknown
from vramlint.frontends import registry
from vramlint.frontends.interface import PlanRequest
from vramlint.frontends.training_setup import scan_training_setup
from vramlint.memory.distributed import (
    SHARD_GRADIENTS,
    SHARD_NOTHING,
    SHARD_PARAMETERS,
    ParallelPlan,
)
from vramlint.settings import Settings


def analyse(tmp_path: Path, code: str, name: str = "train.py",
            settings: Settings | None = None) -> tuple[FileAnalysis, dict[str, ParallelPlan | None]]:
    """The file's analysis with the memory estimate, and each estimated model's plan as the
    registry gives it while the analysis runs (the marks are the analysis's own)."""
    path = tmp_path / name
    text = textwrap.dedent(code)
    path.write_text(text)
    plans: dict[str, ParallelPlan | None] = {}
    original = api.model_with_memory

    def estimate(*args: Any) -> Any:
        result = original(*args)
        name, value, loader, trace = args[0], args[3], args[7], args[8]
        scan = scan_training_setup(trace.source, registry.training_setup_handlers())
        plans[name] = registry.parallel_plan(PlanRequest(loader.evaluator, value, name, trace.source, scan,
                                                         str(tmp_path), lambda node: module_value(loader, trace, node)))
        return result

    api.model_with_memory = estimate  # type: ignore[assignment]
    try:
        fa = api.analyze_source(str(path), text, settings or Settings(memory=True))
    finally:
        api.model_with_memory = original  # type: ignore[assignment]
    return fa, plans


def import_file(path: Path, name: str) -> Any:
    """The file run by Python with real torch (the truth side)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def module_value(loader: Any, trace: Any, node: Any) -> Any:
    """An expression's value at the file's module level, as the analysis gives `value_of`."""
    from vramlint.engine.evaluator import Scope

    try:
        return loader.evaluator.eval(node, Scope(trace.mod.ns, None, trace.mod.ns, trace.source))
    except Exception as err:  # noqa: BLE001 - whatever stops it, the value is not known
        return Unknown(f"not evaluated: {err}")


def line_of(code: str, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(textwrap.dedent(code).splitlines(), 1) if needle in line]
    return hits[nth - 1]


def sources(plan: ParallelPlan) -> dict[str, tuple[str, str]]:
    return {s.what: (s.value, s.source) for s in plan.sources}


NET = '''
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


class Net(nn.Module):
    def __init__(self, d=64, n=3):
        super().__init__()
        self.emb = nn.Linear(32, d)
        self.layers = nn.ModuleList([Block(d) for _ in range(n)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.emb(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))
'''
NET_PARAMS = (32 * 64 + 64) + 3 * ((64 * 256 + 256) + (256 * 64 + 64)) + 2 * 64 + (64 * 10 + 10)


# ---------------------------------------------------------------------- DDP
DDP_SCRIPT = '''
import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(1024, 4096)
        self.b = nn.Linear(4096, 1024)
    def forward(self, x):
        return self.b(torch.relu(self.a(x)))

model = DDP(Net().cuda(), bucket_cap_mb=50)
opt = torch.optim.AdamW(model.parameters())
for step in range(10):
    x = torch.randn(32, 1024, device="cuda")
    loss = model(x).sum()
    loss.backward()
    opt.step()
'''


def test_ddp_script_estimates_the_wrapped_model_on_its_call(tmp_path: Path) -> None:
    """The issue's script: `model = DDP(Net().cuda())` then `model(x)` gave "Net: no inputs" (DDP
    was an unknown). The wrapper is transparent: the model is Net's count, estimated on the
    call's batch, listed once, and the class needs no inputs of its own."""
    fa, plans = analyse(tmp_path, DDP_SCRIPT)
    assert [(m.name, m.kind) for m in fa.models] == [("Net", "class"), ("model", "instance")]
    model = fa.models[1]
    assert model.params.total == 1024 * 4096 + 4096 + 4096 * 1024 + 1024
    assert model.memory is not None and model.inputs_from.startswith("code: the call at line")
    assert model.memory.batch_size == 32
    assert model.tree is not None and model.tree.class_name == "Net"  # Net's own tree, no `module.`
    assert [c.path for c in model.tree.children] == ["a", "b"]
    assert not [f for f in find_problems(fa) if f.code == "VL301"]
    plan = plans["model"]
    assert plan is not None and (plan.strategy, plan.label, plan.stage, plan.shard_size) == ("ddp", "ddp", SHARD_NOTHING, 1)
    assert plan.world_size == 0  # not in the code: the analysis's setup gives it
    assert plan.bucket_cap_mb == 50.0 and not plan.gradient_as_bucket_view
    at = f"code: DDP(...) at line {line_of(DDP_SCRIPT, 'model = DDP')}"
    assert sources(plan) == {"strategy": ("ddp", at), "bucket_cap_mb": ("50", at)}


DDP_MAIN = '''
import os
import torch
import torch.nn as nn
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(128, 512)
        self.b = nn.Linear(512, 10)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def train(model, opt):
    for step in range(5):
        x = torch.randn(8, 128)
        loss = model(x).sum()
        loss.backward()
        opt.step()


def main():
    dist.init_process_group("nccl")
    rank = int(os.environ.get("LOCAL_RANK", 0))
    model = DistributedDataParallel(Net().to(rank), device_ids=[rank], gradient_as_bucket_view=True,
                                    static_graph=True, find_unused_parameters=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, opt)


if __name__ == "__main__":
    main()
'''


def test_ddp_in_main_gets_the_inputs_of_the_call_in_train(tmp_path: Path) -> None:
    fa, plans = analyse(tmp_path, DDP_MAIN)
    assert [(m.name, m.kind) for m in fa.models] == [("Net", "class"), ("main.model", "instance")]
    model = fa.models[1]
    assert model.memory is not None and model.memory.batch_size == 8
    assert model.inputs_from == f"code: the call at line {line_of(DDP_MAIN, 'loss = model(x)')}"
    plan = plans["main.model"]
    assert plan is not None and plan.strategy == "ddp"
    assert (plan.gradient_as_bucket_view, plan.static_graph, plan.find_unused_parameters) == (True, True, False)
    assert plan.bucket_cap_mb == 25.0
    assert set(sources(plan)) == {"strategy", "gradient_as_bucket_view", "static_graph"}


def test_ddp_is_a_module_named_as_torch_names_it(tmp_path: Path) -> None:
    """DDP is an nn.Module whose child `module` is the model: its parameter names are the model's
    with `module.` before them, as real torch's (a gloo group of one process on the CPU)."""
    code = '''
    import torch.nn as nn
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    def build():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)))

    def names(store=None):
        if store is not None:
            dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        ddp = DDP(build(), bucket_cap_mb=50)
        return [n for n, _ in ddp.named_parameters()], type(ddp.module).__name__, isinstance(ddp, nn.Module)
    '''
    path = tmp_path / "ddp_names.py"
    path.write_text(textwrap.dedent(code))
    run = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import torch.distributed as dist, ddp_names; "
           "print(repr(ddp_names.names(dist.HashStore())))")
    real = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120, check=True)
    truth = eval(real.stdout.strip().splitlines()[-1])
    assert truth[0][0] == "module.0.weight"
    loader = api.get_loader(api.search_paths(Settings()))
    mod, _, _ = loader.load_main(str(path), path.read_text(), "ddp_names")
    ours = loader.evaluator.call(mod.ns["names"], (), {})
    assert ours == truth


# ---------------------------------------------------------------------- FSDP2
FSDP2 = NET + '''
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard, MixedPrecisionPolicy


def main():
    torch.distributed.init_process_group("nccl")
    mesh = init_device_mesh("cuda", (8,))
    model = Net()
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in model.layers:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    sharded = fully_shard(model, mesh=mesh, mp_policy=mp)
    assert sharded is model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(10):
        x = torch.randn(16, 32, device="cuda")
        loss = model(x).sum()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
'''


def test_fully_shard_per_block_then_the_root(tmp_path: Path) -> None:
    fa, plans = analyse(tmp_path, FSDP2)
    model = next(m for m in fa.models if m.name == "main.model")
    assert model.params.total == NET_PARAMS  # fully_shard returns the module, unchanged
    assert model.memory is not None and model.memory.batch_size == 16
    plan = plans["main.model"]
    assert plan is not None
    assert (plan.strategy, plan.label, plan.stage) == ("fsdp2", "fsdp2 full-shard", SHARD_PARAMETERS)
    assert plan.units == ("layers.0", "layers.1", "layers.2", "")
    assert (plan.world_size, plan.shard_size) == (8, 8)
    assert plan.reshard_after_forward is True
    assert (plan.param_dtype, plan.reduce_dtype) == ("bfloat16", "float32")
    src = sources(plan)
    loop, root = line_of(FSDP2, "fully_shard(block"), line_of(FSDP2, "sharded = fully_shard")
    assert src["strategy"] == ("fsdp2 full-shard", f"code: fully_shard(...) at line {root}")
    assert src["FSDP units"] == ("4 units: layers.0, layers.1, layers.2, (root)",
                                 f"code: fully_shard(...) at lines {loop}, {root}")
    assert src["world size"] == ("8", f"code: init_device_mesh(...) at line {line_of(FSDP2, 'init_device_mesh(')}")
    assert src["param_dtype"] == ("bfloat16", f"code: fully_shard(...) at line {root}")
    assert plan.notes == ()


def test_fully_shard_hybrid_mesh_offload_and_no_reshard(tmp_path: Path) -> None:
    """HSDP: a 2-D mesh (replicate, shard) shards over its last dimension; reshard_after_forward=False
    on the blocks keeps the gradients' stage (ZeRO-2); CPUOffloadPolicy puts the shards on the host.
    Imported from the composable path too."""
    code = NET + '''
    from torch.distributed import init_device_mesh
    from torch.distributed._composable.fsdp import fully_shard, CPUOffloadPolicy

    mesh = init_device_mesh("cuda", (2, 4), mesh_dim_names=("replicate", "shard"))
    model = Net()
    for block in model.layers:
        fully_shard(block, mesh=mesh, reshard_after_forward=False, offload_policy=CPUOffloadPolicy())
    fully_shard(model, mesh=mesh, reshard_after_forward=False, offload_policy=CPUOffloadPolicy())
    out = model(torch.randn(4, 32))
    '''
    code = textwrap.dedent(NET) + textwrap.dedent(code[len(NET):])
    fa, plans = analyse(tmp_path, code)
    plan = plans["model"]
    assert plan is not None
    assert (plan.world_size, plan.shard_size, plan.stage) == (8, 4, SHARD_GRADIENTS)
    assert plan.reshard_after_forward is False
    assert (plan.offload_params, plan.offload_optimizer) == ("cpu", "cpu")
    assert plan.label == "fsdp2 hybrid-shard + cpu offload"
    assert sources(plan)["reshard_after_forward"][0] == "False"


def test_fully_shard_on_an_unknown_mesh_leaves_the_world_to_the_setup(tmp_path: Path) -> None:
    code = NET + '''
    import os
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cuda", (int(os.environ["WORLD_SIZE"]),))
    model = Net()
    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    out = model(torch.randn(4, 32))
    '''
    code = textwrap.dedent(NET) + textwrap.dedent(code[len(NET):])
    fa, plans = analyse(tmp_path, code)
    plan = plans["model"]
    assert plan is not None and plan.strategy == "fsdp2"
    assert (plan.world_size, plan.shard_size) == (0, 0)
    assert any("device mesh" in n and "world size from the setup" in n for n in plan.notes)
    # ... and with WORLD_SIZE in the configured environment, the mesh is known
    fa, plans = analyse(tmp_path, code, settings=Settings(memory=True, environment=(("WORLD_SIZE", "16"),)))
    plan = plans["model"]
    assert plan is not None and (plan.world_size, plan.shard_size) == (16, 16) and plan.notes == ()


def test_no_multi_gpu_api_no_plan(tmp_path: Path) -> None:
    code = NET + '''
    model = Net()
    out = model(torch.randn(4, 32))
    '''
    fa, plans = analyse(tmp_path, textwrap.dedent(NET) + textwrap.dedent(code[len(NET):]))
    assert plans and set(plans.values()) == {None}


# ---------------------------------------------------------------------- FSDP1 and its auto-wrap policies
FSDP1_NET = '''
import functools

import torch
import torch.nn as nn
from torch.distributed.fsdp import CPUOffload, MixedPrecision, ShardingStrategy
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp.wrap import (
    CustomPolicy,
    ModuleWrapPolicy,
    always_wrap_policy,
    lambda_auto_wrap_policy,
    size_based_auto_wrap_policy,
    transformer_auto_wrap_policy,
)


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        h = self.norm(x)
        a, _ = self.attn(h, h, h)
        x = x + a
        return x + self.fc2(torch.relu(self.fc1(x)))


class Net(nn.Module):
    def __init__(self, d=64, n=3):
        super().__init__()
        self.emb = nn.Linear(32, d)
        self.bn = nn.BatchNorm1d(16)
        self.layers = nn.ModuleList([Block(d) for _ in range(n)])
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 10))

    def forward(self, x):
        x = self.bn(self.emb(x))
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def my_policy(module, recurse, nonwrapped_numel):
    return recurse or nonwrapped_numel >= 40000


POLICY = {policy}
MIXED = {mixed}

if __name__ == "__main__":
    model = FSDP(Net(), auto_wrap_policy=POLICY, mixed_precision=MIXED)
    out = model(torch.randn(4, 16, 32))
'''

POLICIES = [
    "functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={Block})",
    "functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={Block, nn.LayerNorm})",
    "functools.partial(size_based_auto_wrap_policy, min_num_params=20000)",
    "functools.partial(size_based_auto_wrap_policy, min_num_params=10000)",
    "functools.partial(size_based_auto_wrap_policy, min_num_params=100)",
    "size_based_auto_wrap_policy",
    "ModuleWrapPolicy({Block, nn.Linear})",
    "CustomPolicy(lambda m: isinstance(m, (Block, nn.Sequential)))",
    "functools.partial(lambda_auto_wrap_policy, lambda_fn=lambda m: isinstance(m, nn.Linear))",
    "always_wrap_policy",
    "my_policy",
]


def torch_units(path: Path, name: str) -> tuple[str, ...]:
    """The modules real torch's FSDP1 auto-wrapping wraps (`_wrap_utils._auto_wrap`, which
    FullyShardedDataParallel.__init__ runs, with a stand-in wrapper: no process group needed), by
    path, in the order torch wraps them, then the root."""
    import torch.nn as nn
    from torch.distributed.fsdp._wrap_utils import _auto_wrap

    mod = import_file(path, name)
    root = mod.Net()
    paths = {id(m): p for p, m in root.named_modules()}
    order: list[str] = []

    class Wrapper(nn.Module):
        def __init__(self, module: nn.Module, **kwargs: Any) -> None:
            super().__init__()
            order.append(paths[id(module)])
            self.module = module

    _auto_wrap(root, mod.POLICY, set(), set(), {"mixed_precision": mod.MIXED}, Wrapper)
    return (*order, "")


@pytest.mark.parametrize("mixed", ["None", "MixedPrecision(param_dtype=torch.bfloat16)"])
@pytest.mark.parametrize("policy", POLICIES)
def test_fsdp1_units_are_torchs(tmp_path: Path, policy: str, mixed: str) -> None:
    """Each auto-wrap policy gives the modules torch wraps, in torch's order (with mixed precision,
    torch also wraps each BatchNorm alone); the count stays the model's."""
    code = FSDP1_NET.replace("{policy}", policy).replace("{mixed}", mixed)
    fa, plans = analyse(tmp_path, code, name="fsdp1_net.py")
    truth = torch_units(tmp_path / "fsdp1_net.py", f"fsdp1_net_{len(policy)}_{len(mixed)}")
    plan = plans["model"]
    assert plan is not None and plan.strategy == "fsdp1" and plan.notes == ()
    assert plan.units == truth
    assert fa.models[-1].params.total == sum(p.numel() for p in _real_net(tmp_path).parameters())
    if mixed != "None":
        assert plan.param_dtype == "bfloat16"


def _real_net(tmp_path: Path) -> Any:
    mod = import_file(tmp_path / "fsdp1_net.py", "fsdp1_net_count")
    return mod.Net()


FSDP1_OPTIONS = FSDP1_NET.replace("{policy}", "None").replace("{mixed}", "None").replace(
    '''    model = FSDP(Net(), auto_wrap_policy=POLICY, mixed_precision=MIXED)''',
    '''    from torch.distributed.device_mesh import init_device_mesh
    mesh = init_device_mesh("cuda", (2, 8), mesh_dim_names=("replicate", "shard"))
    model = FSDP(Net(), sharding_strategy=ShardingStrategy.{strategy}, device_mesh={mesh},
                 cpu_offload=CPUOffload(offload_params={offload}), use_orig_params=True)''')


@pytest.mark.parametrize(("strategy", "mesh", "expected"), [
    ("FULL_SHARD", "None", (0, 0, SHARD_PARAMETERS, "fsdp1 full-shard")),
    ("SHARD_GRAD_OP", "mesh['shard']", (16, 8, SHARD_GRADIENTS, "fsdp1 shard-grad-op")),
    ("NO_SHARD", "None", (0, 1, SHARD_NOTHING, "fsdp1 no-shard")),
    ("HYBRID_SHARD", "mesh", (16, 8, SHARD_PARAMETERS, "fsdp1 hybrid-shard")),
    ("_HYBRID_SHARD_ZERO2", "None", (0, 0, SHARD_GRADIENTS, "fsdp1 hybrid-shard-zero2")),
])
def test_fsdp1_sharding_strategies(tmp_path: Path, strategy: str, mesh: str, expected: tuple[Any, ...]) -> None:
    code = FSDP1_OPTIONS.replace("{strategy}", strategy).replace("{mesh}", mesh).replace("{offload}", "False")
    fa, plans = analyse(tmp_path, code)
    plan = plans["model"]
    assert plan is not None and plan.units == ("",)  # no policy: the root alone
    assert (plan.world_size, plan.shard_size, plan.stage, plan.label) == expected
    at = f"code: FSDP(...) at line {line_of(code, 'model = FSDP(')}"
    assert sources(plan)["sharding_strategy"] == (strategy, at)
    assert sources(plan)["use_orig_params"] == ("True", at)
    assert plan.offload_params is None
    hybrid_note = [n for n in plan.notes if "node's GPUs" in n]
    assert bool(hybrid_note) == (strategy.startswith("_HYBRID"))


def test_fsdp1_cpu_offload(tmp_path: Path) -> None:
    code = FSDP1_OPTIONS.replace("{strategy}", "FULL_SHARD").replace("{mesh}", "None").replace("{offload}", "True")
    fa, plans = analyse(tmp_path, code)
    plan = plans["model"]
    assert plan is not None and (plan.offload_params, plan.offload_optimizer) == ("cpu", "cpu")
    assert plan.label == "fsdp1 full-shard + cpu offload"


def test_fsdp1_policy_that_cannot_be_decided(tmp_path: Path) -> None:
    """A policy from a package vramlint cannot read, a lambda it cannot evaluate: the units are
    unknown (a note says why), the rest of the plan stands, nothing crashes."""
    for policy in ("functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={unknown_lib.Block})",
                   "CustomPolicy(lambda m: unknown_lib.should_wrap(m))",
                   "functools.partial(size_based_auto_wrap_policy, min_num_params=unknown_lib.N)"):
        code = "import unknown_lib\n" + FSDP1_NET.replace("{policy}", policy).replace("{mixed}", "None")
        fa, plans = analyse(tmp_path, code)
        plan = plans["model"]
        assert plan is not None and plan.strategy == "fsdp1" and plan.units == (), policy
        assert any("auto_wrap_policy not decided" in n and "FSDP units are not known" in n for n in plan.notes), plan.notes
        assert fa.models[-1].params.total is not None


# ---------------------------------------------------------------------- tensor parallelism
LLAMA = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)

    def forward(self, x):
        return self.wo(self.wq(x) + self.wk(x) + self.wv(x))


class FeedForward(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w1 = nn.Linear(d, 4 * d, bias=False)
        self.w2 = nn.Linear(4 * d, d, bias=False)
        self.w3 = nn.Linear(d, 4 * d, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.attention_norm = nn.LayerNorm(d)
        self.attention = Attention(d)
        self.ffn_norm = nn.LayerNorm(d)
        self.feed_forward = FeedForward(d)

    def forward(self, x):
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    def __init__(self, d=64, n=2):
        super().__init__()
        self.tok_embeddings = nn.Embedding(100, d)
        self.layers = nn.ModuleList([Block(d) for _ in range(n)])
        self.norm = nn.LayerNorm(d)
        self.output = nn.Linear(d, 100, bias=False)

    def forward(self, tokens):
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.output(self.norm(x))


PLAN = {
    "tok_embeddings": RowwiseParallel(input_layouts=Replicate(), output_layouts=Shard(1)),
    "norm": SequenceParallel(),
    "output": ColwiseParallel(input_layouts=Shard(1), output_layouts=Replicate()),
    "layers.*.attention_norm": SequenceParallel(),
    "layers.*.attention": PrepareModuleInput(input_layouts=(Shard(1),), desired_input_layouts=(Replicate(),)),
    "layers.*.attention.w[qkv]": ColwiseParallel(),
    "layers.*.attention.wo": RowwiseParallel(output_layouts=Shard(1)),
    "layers.*.feed_forward.w1": ColwiseParallel(),
    "layers.*.feed_forward.w2": RowwiseParallel(output_layouts=Shard(1)),
    "layers.*.feed_forward.w3": ColwiseParallel(),
    "layers.*.no_such": ColwiseParallel(),
}
'''


def torch_tp_plan(tmp_path: Path, name: str, plan: str, target: str, extra: str = "") -> list[tuple[str, str]]:
    """The (module path, style) pairs real torch's parallelize_module applies (its plan expansion,
    torch/distributed/tensor/parallel/api.py), with each style's `_apply` recording instead of
    sharding: no process group needed."""
    from torch.distributed.tensor.parallel import api, style

    path = tmp_path / f"{name}_torch.py"
    path.write_text(LLAMA + extra)
    mod = import_file(path, name)
    model = mod.Llama()
    paths = {id(m): p for p, m in model.named_modules()}
    seen: list[tuple[str, str]] = []
    names = {"ColwiseParallel": "colwise", "RowwiseParallel": "rowwise", "SequenceParallel": "sequence",
             "PrepareModuleInput": "prepare-input"}
    originals = {}
    for cls_name in names:
        cls = getattr(style, cls_name)
        originals[cls_name] = cls._apply

        def record(self: Any, module: Any, mesh: Any, _n: str = cls_name) -> Any:
            seen.append((paths[id(module)], names[_n]))
            return module

        cls._apply = record
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if target == "model":
                api.parallelize_module(model, object(), getattr(mod, plan))
            else:
                for block in model.layers:
                    api.parallelize_module(block, object(), getattr(mod, plan))
    finally:
        for cls_name, fn in originals.items():
            getattr(style, cls_name)._apply = fn
    return seen


def test_parallelize_module_expands_the_plan_as_torch(tmp_path: Path) -> None:
    code = LLAMA + '''
mesh = init_device_mesh("cuda", (4,))
model = Llama()
model = parallelize_module(model, mesh, PLAN)
logits = model(torch.randint(0, 100, (2, 16)))
'''
    fa, plans = analyse(tmp_path, code, name="llama_tp.py")
    plan = plans["model"]
    assert plan is not None and (plan.strategy, plan.label) == ("tp", "tp")
    assert (plan.tp_size, plan.world_size, plan.data_parallel) == (4, 4, 1)
    assert sorted(plan.tp_plan) == sorted(torch_tp_plan(tmp_path, "llama_tp", "PLAN", "model"))
    assert ("layers.1.attention.wk", "colwise") in plan.tp_plan
    assert plan.notes == ("parallelize_module(...): plan key 'layers.*.no_such': no submodule matches 'no_such'",)
    assert sources(plan)["tensor-parallel plan"][1] == f"code: parallelize_module(...) at line {line_of(code, 'model = parallelize_module')}"
    assert fa.models[-1].params.total == sum(p.numel() for p in _real_llama(tmp_path).parameters())


def _real_llama(tmp_path: Path) -> Any:
    path = tmp_path / "llama_count.py"
    path.write_text(LLAMA)
    mod = import_file(path, "llama_count")
    return mod.Llama()


def test_fsdp2_with_tensor_parallel_on_a_2d_mesh(tmp_path: Path) -> None:
    """torchtitan's layout: TP inside each block over mesh["tp"], FSDP2 over mesh["dp"]."""
    block_plan = '''
BLOCK_PLAN = {
    "attention.wq": ColwiseParallel(),
    "attention.wk": ColwiseParallel(),
    "attention.wv": ColwiseParallel(),
    "attention.wo": RowwiseParallel(),
    "feed_forward.w1": ColwiseParallel(),
    "feed_forward.w2": RowwiseParallel(),
    "feed_forward.w3": ColwiseParallel(),
}
'''
    code = LLAMA + block_plan + '''
from torch.distributed.fsdp import fully_shard

mesh = init_device_mesh("cuda", (2, 4), mesh_dim_names=("dp", "tp"))
model = Llama()
for block in model.layers:
    parallelize_module(block, mesh["tp"], BLOCK_PLAN)
    fully_shard(block, mesh=mesh["dp"])
fully_shard(model, mesh=mesh["dp"])
logits = model(torch.randint(0, 100, (2, 16)))
'''
    fa, plans = analyse(tmp_path, code, name="llama_2d.py")
    plan = plans["model"]
    assert plan is not None
    assert (plan.strategy, plan.label) == ("fsdp2", "fsdp2 full-shard + tp")
    assert (plan.world_size, plan.shard_size, plan.tp_size, plan.data_parallel) == (8, 2, 4, 2)
    assert plan.units == ("layers.0", "layers.1", "")
    truth = torch_tp_plan(tmp_path, "llama_2d", "BLOCK_PLAN", "blocks", block_plan)
    assert sorted(plan.tp_plan) == sorted(truth)
    assert plan.notes == ()


def test_parallelize_module_odd_arguments(tmp_path: Path) -> None:
    """A plan that is not a style nor a dict, a mesh from an unknown value: notes, no crash."""
    code = LLAMA + '''
mesh = init_device_mesh("cuda", (torch.cuda.device_count(),))
model = Llama()
parallelize_module(model, mesh, {"layers.*.attention.wq": ColwiseParallel(), "output": 3})
logits = model(torch.randint(0, 100, (2, 16)))
'''
    fa, plans = analyse(tmp_path, code, name="llama_odd.py")
    plan = plans["model"]
    assert plan is not None and plan.strategy == "tp"
    assert plan.tp_plan == (("layers.0.attention.wq", "colwise"), ("layers.1.attention.wq", "colwise"))
    assert plan.tp_size == 0 and plan.world_size == 0
    assert any("plan key 'output': 3 is not a ParallelStyle" in n for n in plan.notes), plan.notes
    assert any("device mesh's shape is not known" in n for n in plan.notes)


# ---------------------------------------------------------------------- Lightning
LIT = NET + '''
import torch.nn.functional as F
import lightning as L
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy


class Lit(L.LightningModule):
    def __init__(self, d=64):
        super().__init__()
        self.emb = nn.Linear(32, d)
        self.blocks = nn.ModuleList([Block(d) for _ in range(2)])
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.emb(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters())


def main():
    model = Lit()
    loader = [(torch.randn(8, 32), torch.randint(0, 10, (8,)))]
    trainer = L.Trainer({trainer})
    trainer.fit(model, loader)


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize(("trainer", "expected"), [
    ('strategy="ddp", devices=4, num_nodes=2', ("ddp", 8, 2, 1, ())),
    ('strategy="ddp_find_unused_parameters_true", devices=2', ("ddp", 2, 1, 1, ())),
    ("devices=4", ("ddp", 4, 1, 1, ())),  # strategy "auto" over several devices is DDP
    ('strategy=DDPStrategy(static_graph=True, bucket_cap_mb=100), devices=[0, 1]', ("ddp", 2, 1, 1, ())),
    ('strategy="fsdp", devices=8', ("fsdp1 full-shard", 8, 1, 8, ("",))),
    ('strategy=FSDPStrategy(sharding_strategy="HYBRID_SHARD", auto_wrap_policy={Block}), devices=4, num_nodes=2',
     ("fsdp1 hybrid-shard", 8, 2, 4, ("blocks.0", "blocks.1", ""))),
    ('strategy="fsdp_cpu_offload", devices=2, precision="bf16-mixed"', ("fsdp1 full-shard + cpu offload", 2, 1, 2, ("",))),
])
def test_lightning_trainer_strategy(tmp_path: Path, trainer: str, expected: tuple[Any, ...]) -> None:
    code = LIT.replace("{trainer}", trainer)
    fa, plans = analyse(tmp_path, code)
    plan = plans["main.model"]
    assert plan is not None
    label, world, nodes, shard, units = expected
    assert (plan.label, plan.world_size, plan.nodes, plan.shard_size, plan.units) == (label, world, nodes, shard, units)
    at = f"code: L.Trainer(...) at line {line_of(code, 'L.Trainer(')}"
    assert sources(plan)["strategy"] == (label, at)
    assert sources(plan)["world size"][1].startswith(at)
    assert plan.notes == ()
    if "find_unused" in trainer:
        assert plan.find_unused_parameters
    if "DDPStrategy" in trainer:
        assert plan.static_graph and plan.bucket_cap_mb == 100.0
    if "bf16-mixed" in trainer:  # FSDPPrecision: parameters in float32, gradients reduced in bfloat16
        assert (plan.param_dtype, plan.reduce_dtype) == (None, "bfloat16")


@pytest.mark.parametrize("trainer", ["devices=1", 'strategy="auto"', 'accelerator="cpu"'])
def test_lightning_one_device_or_not_ours_no_plan(tmp_path: Path, trainer: str) -> None:
    fa, plans = analyse(tmp_path, LIT.replace("{trainer}", trainer))
    assert plans["main.model"] is None


def test_lightning_devices_not_in_code(tmp_path: Path) -> None:
    fa, plans = analyse(tmp_path, LIT.replace("{trainer}", 'strategy="ddp", devices="auto"'))
    plan = plans["main.model"]
    assert plan is not None and plan.strategy == "ddp" and plan.world_size == 0
    assert plan.notes == ("the Trainer's devices are not in the code: world size from the setup",)


# ---------------------------------------------------------------------- odd arguments
ODD = NET + '''
import unknown_lib
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP, fully_shard
from torch.distributed.device_mesh import init_device_mesh

lost_ddp = DDP(unknown_lib.Net())
lost_fsdp = FSDP(unknown_lib.Net())
lost_shard = fully_shard(unknown_lib.Net())
ddp = DDP(Net(), bucket_cap_mb=unknown_lib.CAP, static_graph=unknown_lib.flag)
fsdp = FSDP(Net(), sharding_strategy=unknown_lib.S, cpu_offload=unknown_lib.c, mixed_precision="bf16")
mesh = init_device_mesh("cuda", unknown_lib.shape, mesh_dim_names=unknown_lib.names)
sharded = Net()
fully_shard(sharded, mesh=mesh["dp"], reshard_after_forward=unknown_lib.r, offload_policy=unknown_lib.o)
for m in (ddp, fsdp, sharded):
    y = m(torch.randn(2, 32))
'''


def test_odd_arguments_give_notes_never_a_failure(tmp_path: Path) -> None:
    """Unknown arguments (a package vramlint cannot read) leave the fields they decide at torch's
    defaults, each with a note naming why; a wrapper of an unknown model is no model, as the
    unknown model itself is not; every statement runs."""
    fa, plans = analyse(tmp_path, textwrap.dedent(NET) + textwrap.dedent(ODD[len(NET):]))
    assert not [w for w in fa.warnings if "statement not" in w.reason], fa.warnings
    assert [m.name for m in fa.models if m.kind == "instance"] == ["ddp", "fsdp", "sharded"]
    assert all(m.params.total == NET_PARAMS and m.memory is not None for m in fa.models if m.kind == "instance")
    ddp, fsdp, sharded = plans["ddp"], plans["fsdp"], plans["sharded"]
    assert ddp is not None and (ddp.bucket_cap_mb, ddp.static_graph) == (25.0, False)
    assert [n.split(" is not known")[0] for n in ddp.notes] == ["bucket_cap_mb in DDP(...)", "static_graph in DDP(...)"]
    assert all("unknown_lib" in n for n in ddp.notes)
    assert fsdp is not None and (fsdp.label, fsdp.units) == ("fsdp1 full-shard", ("",))
    assert [n.split(" is not known")[0] for n in fsdp.notes] == [
        "sharding_strategy in FSDP(...)", "mixed_precision in FSDP(...)", "cpu_offload in FSDP(...)"]
    assert sharded is not None and (sharded.world_size, sharded.units, sharded.reshard_after_forward) == (0, ("",), True)
    assert len(sharded.notes) == 3 and any("device mesh's shape is not known" in n for n in sharded.notes)


def test_fsdp1_wrapped_by_hand_inside_the_model(tmp_path: Path) -> None:
    """Blocks wrapped in FSDP by hand as the model is built, then the model: the units are the
    blocks at their own paths (not `_fsdp_wrapped_module`), then the root; the count is the model's."""
    code = NET + '''
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

model = Net()
for i, block in enumerate(model.layers):
    model.layers[i] = FSDP(block)
model = FSDP(model, use_orig_params=True)
out = model(torch.randn(4, 32))
'''
    fa, plans = analyse(tmp_path, code)
    result = next(m for m in fa.models if m.name == "model")
    assert result.params.total == NET_PARAMS and result.memory is not None
    plan = plans["model"]
    assert plan is not None and plan.units == ("layers.0", "layers.1", "layers.2", "")


# ---------------------------------------------------------------------- transformers' TrainingArguments(fsdp=...)
HF_LIKE = '''
import torch
import torch.nn as nn


class DecoderLayer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        return x + self.mlp(self.input_layernorm(x))


class Inner(nn.Module):
    def __init__(self, vocab, d, n):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([DecoderLayer(d) for _ in range(n)])
        self.norm = nn.LayerNorm(d)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class CausalLM(nn.Module):
    """Shaped as a transformers model is, for accelerate's FSDP2 preparation."""

    _no_split_modules = ["DecoderLayer", "NotInThisModel"]
    base_model_prefix = "model"

    def __init__(self, vocab=100, d=32, n=3, tie=False):
        super().__init__()
        self.model = Inner(vocab, d, n)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        if tie:
            self.lm_head.weight = self.model.embed_tokens.weight

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, ids):
        return self.lm_head(self.model(ids))
'''

HF_SCRIPT = '''
import torch
from transformers import Trainer, TrainingArguments
from hf_like import CausalLM

model = CausalLM(tie={tie})
args = TrainingArguments(output_dir="out", fsdp={fsdp}, fsdp_config={config}, bf16=True)
trainer = Trainer(model=model, args=args)
logits = model(torch.randint(0, 100, (2, 8)))
'''


def accelerate_units(tmp_path: Path, tie: bool, config: dict[str, Any]) -> tuple[str, ...]:
    """The units accelerate 1.16's own `fsdp2_prepare_model` makes (utils/fsdp_utils.py, from its
    wheel), run on the same model with real torch, `fully_shard` recording (and changing the
    module's class as torch does, so accelerate skips what is already sharded)."""
    from tests.support.libsources import ACCELERATE_VERSION, library_source

    # accelerate imports safetensors (not installed here, unused by this function): stand-ins
    # while it imports. (Only those: the torch modules its import loads stay loaded.)
    stubs = {name: mock.MagicMock() for name in ("safetensors", "safetensors.torch") if name not in sys.modules}
    root = str(library_source("accelerate", ACCELERATE_VERSION))
    sys.modules.update(stubs)
    try:
        with mock.patch.object(sys, "path", [root, *sys.path]):
            from accelerate.utils.fsdp_utils import fsdp2_prepare_model
    finally:
        for name in stubs:
            sys.modules.pop(name, None)
    return _run_accelerate(fsdp2_prepare_model, tmp_path, tie, config)


def _run_accelerate(prepare: Any, tmp_path: Path, tie: bool, config: dict[str, Any]) -> tuple[str, ...]:
    import types

    import torch
    import torch.distributed.fsdp as fsdp
    from torch.distributed.fsdp.wrap import (
        size_based_auto_wrap_policy,
        transformer_auto_wrap_policy,
    )

    model = import_file(tmp_path / "hf_like.py", f"hf_like_truth_{tie}").CausalLM(tie=tie)
    paths = {id(m): p for p, m in model.named_modules()}
    order: list[str] = []

    def record(module: Any, **kwargs: Any) -> Any:
        for m in module if isinstance(module, list) else [module]:
            order.append(paths[id(m)])
            m.__class__ = type(f"FSDP{type(m).__name__}", (fsdp.FSDPModule, type(m)), {})
        return module

    size = config.get("auto_wrap_policy") == "SIZE_BASED_WRAP"
    plugin = types.SimpleNamespace(
        auto_wrap_policy=size_based_auto_wrap_policy if size else transformer_auto_wrap_policy,
        transformer_cls_names_to_wrap=config.get("transformer_layer_cls_to_wrap"),
        min_num_params=config.get("min_num_params", 0), reshard_after_forward=True, cpu_offload=None,
        mixed_precision_policy=None, cpu_ram_efficient_loading=False, ignored_modules=None,
        set_auto_wrap_policy=lambda m: None)
    accelerator = types.SimpleNamespace(state=types.SimpleNamespace(fsdp_plugin=plugin), torch_device_mesh=None,
                                        mixed_precision="no", is_main_process=True, device=torch.device("cpu"))
    with mock.patch.object(fsdp, "fully_shard", record):
        prepare(accelerator, model)
    return tuple(order)


@pytest.mark.parametrize(("tie", "fsdp", "config"), [
    (False, '"full_shard auto_wrap"', {}),
    (True, "True", {"fsdp_transformer_layer_cls_to_wrap": ["DecoderLayer"]}),
    (False, '"shard_grad_op auto_wrap offload"', {"auto_wrap_policy": "SIZE_BASED_WRAP", "min_num_params": 5000}),
])
def test_training_arguments_fsdp_units_are_accelerates(tmp_path: Path, tie: bool, fsdp: str,
                                                       config: dict[str, Any]) -> None:
    (tmp_path / "hf_like.py").write_text(textwrap.dedent(HF_LIKE))
    code = HF_SCRIPT.replace("{tie}", str(tie)).replace("{fsdp}", fsdp).replace("{config}", repr(config))
    fa, plans = analyse(tmp_path, code)
    plan = plans["model"]
    assert plan is not None and plan.strategy == "fsdp2"
    truth = accelerate_units(tmp_path, tie, {k.removeprefix("fsdp_"): v for k, v in config.items()})
    assert plan.units == truth
    assert (plan.param_dtype, plan.reduce_dtype) == ("bfloat16", "bfloat16")
    at = f"code: TrainingArguments(...) at line {line_of(code, 'args = TrainingArguments')}"
    assert sources(plan)["strategy"] == (plan.label, at)
    if "offload" in fsdp:
        assert plan.label == "fsdp2 shard-grad-op + cpu offload" and plan.reshard_after_forward is False
    else:
        assert plan.label == "fsdp2 full-shard" and plan.reshard_after_forward is True
    assert plan.notes == ()


def test_training_arguments_fsdp_config_file_and_odd_values(tmp_path: Path) -> None:
    (tmp_path / "hf_like.py").write_text(textwrap.dedent(HF_LIKE))
    code = HF_SCRIPT.replace("{tie}", "False").replace("{fsdp}", "True").replace("{config}", '"fsdp.json"')
    fa, plans = analyse(tmp_path, code)
    plan = plans["model"]
    assert plan is not None and plan.units[-1] == ""
    assert plan.notes == ("fsdp_config='fsdp.json': a JSON file is not read; transformers' defaults assumed",)
    code = HF_SCRIPT.replace("{tie}", "False").replace("{fsdp}", "True").replace(
        "{config}", '{"transformer_layer_cls_to_wrap": ["NoSuchLayer"]}')
    fa, plans = analyse(tmp_path, code)
    plan = plans["model"]
    assert plan is not None and plan.units == ()
    assert plan.notes == ("the FSDP units are not known: the transformer layer class NoSuchLayer is not in the "
                          "model (accelerate raises)",)
