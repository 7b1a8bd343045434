"""The frontends of the analysis, composed: the one place that names them all.

`analysis/api.py` builds its loader from these; the analysis core asks `frontend_of(model)` for a
model's own semantics and `training_setup_handlers()` for the training-setup scan. A new frontend
(Lightning...) is a package under `frontends/` with a `frontend.py`, added to FRONTENDS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vramlint.engine.registrations import LazyRegistry, reader_rule
from vramlint.frontends.accelerate.frontend import FRONTEND as ACCELERATE
from vramlint.frontends.bitsandbytes.frontend import FRONTEND as BITSANDBYTES
from vramlint.frontends.deepspeed.frontend import FRONTEND as DEEPSPEED
from vramlint.frontends.diffusers.frontend import FRONTEND as DIFFUSERS
from vramlint.frontends.hf_datasets.frontend import FRONTEND as DATASETS
from vramlint.frontends.interface import FixRequest, Frontend, PlanRequest, ProposedFix
from vramlint.frontends.keras.frontend import FRONTEND as KERAS
from vramlint.frontends.lightning.frontend import FRONTEND as LIGHTNING
from vramlint.frontends.peft.frontend import FRONTEND as PEFT
from vramlint.frontends.scripts.frontend import FRONTEND as SCRIPTS
from vramlint.frontends.timm.frontend import FRONTEND as TIMM
from vramlint.frontends.torch.frontend import FRONTEND as TORCH
from vramlint.frontends.torchvision_data.frontend import FRONTEND as TORCHVISION_DATA
from vramlint.frontends.tqdm.frontend import FRONTEND as TQDM
from vramlint.frontends.transformers.frontend import FRONTEND as TRANSFORMERS

if TYPE_CHECKING:
    from vramlint.engine.loader import NativeModuleFactory
    from vramlint.frontends.training_setup import TrainingSetupHandler
    from vramlint.memory.distributed import ParallelPlan
    from vramlint.memory.generation import GenerationPlan

# Order matters only where two frontends' training-setup handlers map the same optimizer class
# name (the first wins) and for the first frontend that owns a model.
FRONTENDS: tuple[Frontend, ...] = (TORCH, TRANSFORMERS, KERAS, DIFFUSERS, BITSANDBYTES, PEFT, TORCHVISION_DATA, TQDM,
                                   SCRIPTS, LIGHTNING, ACCELERATE, DATASETS, DEEPSPEED, TIMM)


def frontend_of(model: Any) -> Frontend | None:
    """The frontend whose own semantics apply to a built model (None: plain torch.nn)."""
    return next((f for f in FRONTENDS if f.owns_model(model)), None)


def held_model(value: Any) -> Any:
    """The model an object holds, as the frontends say (a transformers pipeline's), else None."""
    return next((m for f in FRONTENDS if (m := f.held_model(value)) is not None), None)


def native_modules() -> list[NativeModuleFactory]:
    return [m for f in FRONTENDS for m in f.native_modules]


def decorator_rules() -> dict[str, Callable[..., Any]]:
    return {name: rule for f in FRONTENDS for name, rule in f.decorator_rules.items()}


def function_rules() -> dict[str, Callable[..., Any]]:
    rules = {name: rule for f in FRONTENDS for name, rule in f.function_rules.items()}
    reads: dict[str, list[tuple[str, Any]]] = {}
    for reg in (r for f in FRONTENDS for r in f.lazy_registries):
        for name, name_of in reg.readers.items():
            reads.setdefault(name, []).append((reg.decorator, name_of))
    rules.update({name: reader_rule(each) for name, each in reads.items()})
    return rules


def lazy_registries() -> dict[str, LazyRegistry]:
    """The registries filled as their readers need them, by registering decorator."""
    return {r.decorator: r for f in FRONTENDS for r in f.lazy_registries}


def model_origin(model: Any) -> tuple[tuple[str, str], ...]:
    """How `model` was loaded (a checkpoint, its config's source, its dtype), as the frontends say."""
    return tuple(row for f in FRONTENDS if f.origin is not None for row in f.origin(model))


def memory_fixes(request: FixRequest) -> list[ProposedFix]:
    """The frontends' code changes that make `request`'s model take less memory (quick fixes)."""
    return [fix for f in FRONTENDS if f.memory_fixes is not None for fix in f.memory_fixes(request)]


def taped_prefixes() -> tuple[str, ...]:
    return tuple(p for f in FRONTENDS for p in f.taped_prefixes)


def training_setup_handlers() -> tuple[TrainingSetupHandler, ...]:
    return tuple(f.training_setup for f in FRONTENDS if f.training_setup is not None)


def generation_plan(*args: Any) -> GenerationPlan | None:
    """The first frontend's reading of a generation call of the model (Frontend.generation's arguments)."""
    for f in FRONTENDS:
        plan = f.generation(*args) if f.generation is not None else None
        if plan is not None:
            return plan
    return None


def parallel_plan(request: PlanRequest) -> ParallelPlan | None:
    """The first frontend's reading of how the file trains the model on several GPUs (None: one GPU)."""
    for f in FRONTENDS:
        plan = f.parallel_plan(request) if f.parallel_plan is not None else None
        if plan is not None:
            return plan
    return None
