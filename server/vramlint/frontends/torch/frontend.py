"""The torch frontend's registration (frontends/interface.py): the `torch` and `numpy` stub
packages, and the calls the memory model records. Its modules and tensors are the base other
frontends build on (a Keras layer is a module of this kind), so it owns no model of its own."""

from __future__ import annotations

from vramlint.frontends.interface import Frontend
from vramlint.frontends.torch.fixes import memory_fixes
from vramlint.frontends.torch.numpy_stub import numpy_module
from vramlint.frontends.torch.stubs import torch_module
from vramlint.frontends.torch.training_setup import HANDLER as TRAINING_SETUP

FRONTEND = Frontend(
    name="torch",
    native_modules=(torch_module, numpy_module),
    # torch.* functions and Tensor methods: what autograd sees (memory/autograd_rules.py).
    taped_prefixes=("torch.", "Tensor."),
    training_setup=TRAINING_SETUP,
    memory_fixes=memory_fixes,
)
