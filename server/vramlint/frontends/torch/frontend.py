"""The torch frontend's registration (frontends/interface.py): the `torch` and `numpy` stub
packages, and the calls the memory model records. Its modules and tensors are the base other
frontends build on (a Keras layer is a module of this kind), so it owns no model of its own."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.torch.distributed import held_model
from vramlint.frontends.torch.fixes import memory_fixes
from vramlint.frontends.torch.numpy_stub import numpy_module
from vramlint.frontends.torch.parallel_plan import parallel_plan
from vramlint.frontends.torch.stubs import torch_module
from vramlint.frontends.torch.training_setup import HANDLER as TRAINING_SETUP

FRONTEND = Frontend(
    name="torch",
    native_modules=(torch_module, numpy_module),
    # torch.* functions and Tensor methods: what autograd sees (memory/autograd_rules.py).
    taped_prefixes=("torch.", "Tensor."),
    training_setup=TRAINING_SETUP,
    memory_fixes=memory_fixes,
    # A DDP / FSDP1 wrapper holds the model the estimate is of (distributed.py).
    held_model=held_model,
    # What DDP / fully_shard / FullyShardedDataParallel / parallelize_module calls left on the model.
    parallel_plan=parallel_plan,
)
