"""Parts of the memory model whose mutants survived the other tests (benchmarks/mutation.py),
each checked against what the part is documented to model, not against its code:

- training needs, at the edge of the card, the least the simulated caching allocator must be allowed
  to reserve for the run (in 2 MiB steps), never less than the peak plus 2%, and the CUDA context
  (830 MiB) on top; inference likewise for three no_grad forwards;
- Lion (lion-pytorch) updates one parameter at a time: one temporary, the size of the largest;
- a checkpoint inside a checkpointed region changes nothing: the outer region keeps its inputs only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_memory import QUESTION
from vramlint.analysis.api import analyze_source
from vramlint.memory.devices import DEVICES
from vramlint.memory.estimate import MemoryEstimate
from vramlint.memory.optimizers import OPTIMIZERS
from vramlint.settings import Settings

MiB = 2**20
SEGMENT = 2 * MiB
CONTEXT = 830 * MiB


def estimate(tmp_path: Path, text: str = QUESTION, **settings: Any) -> MemoryEstimate:
    path = tmp_path / "m.py"
    fa = analyze_source(str(path), text, Settings(memory=True, **settings))
    (m,) = [m for m in fa.models if m.name == "model"]
    assert m.memory is not None, m.memory_unknowns
    return m.memory


def reserved(peak: int) -> int:
    """The allocated peak plus 2%, rounded up to whole 2 MiB segments."""
    return -(-int(peak * 1.02) // SEGMENT) * SEGMENT


def test_device_total_is_the_reserved_need_plus_the_context(tmp_path: Path) -> None:
    from vramlint.memory.reserved import run

    e = estimate(tmp_path, device="H100")
    assert e.workload is not None
    need = e.device_total - CONTEXT
    # the least limit the run succeeds at, never below the peak plus 2% (in 2 MiB segments)
    assert need % SEGMENT == 0 and need >= reserved(e.train_peak)
    assert run(e.workload, need).ok and (need == reserved(e.train_peak) or not run(e.workload, need - SEGMENT).ok)
    # the MLP's tensors are all small (the first layer's weight is 400 KB): two 2 MiB segments beside
    # the two 32 MiB cuBLAS workspaces, less than the peak plus 2%
    assert e.max_reserved == run(e.workload).max_reserved
    assert run(e.workload).max_reserved < reserved(e.train_peak) == need  # the floor holds
    assert e.device_memory == DEVICES["h100-80gb"].memory and e.fits


def test_inference_need_is_its_own_reserved_need_plus_the_context(tmp_path: Path) -> None:
    from vramlint.memory.reserved import run

    e = estimate(tmp_path, device="H100")
    assert e.inference_peak < e.train_peak and e.inference_workload is not None
    need = e.inference_need - CONTEXT
    assert need % SEGMENT == 0 and need >= reserved(e.inference_peak)
    assert run(e.inference_workload, need).ok
    assert need == reserved(e.inference_peak) or not run(e.inference_workload, need - SEGMENT).ok
    # weights, the batch and one cuBLAS workspace, then three no_grad forwards: no optimizer, no gradients
    assert e.inference_workload.state == [] and e.inference_workload.workspaces == [e.workload.workspaces[0]]
    assert e.inference_need < e.device_total


def test_lion_steps_one_parameter_at_a_time() -> None:
    params = [(10, 40), (3, 6), (4096, 8192)]
    assert OPTIMIZERS["lion"].step_temp(params) == [8192]
    assert OPTIMIZERS["lion"].step_temp([]) == [0]
    assert OPTIMIZERS["sgd"].step_temp(params) == [] == OPTIMIZERS["sgd"].state(params)


NESTED = """\
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class Block(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.a = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
        self.b = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))

    def forward(self, x):
        x = checkpoint(self.a, x, use_reentrant=False) if self.inner else self.a(x)
        return self.b(x)


class Net(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.blocks = nn.ModuleList([Block(inner) for _ in range(2)])

    def forward(self, x):
        for b in self.blocks:
            x = checkpoint(b, x, use_reentrant=False)
        return x


model = Net(INNER)
x = torch.randn(512, 256)
out = model(x)
"""


def test_a_checkpoint_inside_a_checkpoint_changes_nothing(tmp_path: Path) -> None:
    outer = estimate(tmp_path, NESTED.replace("INNER", "False"))
    nested = estimate(tmp_path, NESTED.replace("INNER", "True"))
    assert nested.activations == outer.activations
    # The outer regions keep their inputs: the second block's input (the first is the batch), the loss's.
    assert outer.activations < 2 * 512 * 1024 * 4  # far less than one block's hidden activations
