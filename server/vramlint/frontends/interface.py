"""What a frontend contributes to the analysis.

A frontend teaches the engine one framework or library: torch.nn, Keras, transformers, diffusers.
The engine evaluates plain Python; everything it knows about a framework comes through the
fields below, which `frontends/registry.py` composes for `analysis/api.py`. The analysis core,
the memory model and the engine never name a framework: they ask the registry.

A frontend package (`frontends/<name>/`) can be read alone: its `frontend.py` says what it
registers, its other modules are the rules (stub modules, layer catalogs, decorators).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vramlint.engine.evaluator import Evaluator
    from vramlint.engine.loader import NativeModuleFactory
    from vramlint.engine.registrations import LazyRegistry
    from vramlint.engine.source import SourceModule
    from vramlint.engine.values import Instance
    from vramlint.frontends.training_setup import TrainingSetupHandler
    from vramlint.memory.distributed import ParallelPlan
    from vramlint.memory.generation import GenerationPlan
    from vramlint.settings import InputSpec

def _never(value: Any) -> bool:
    return False


def _none(value: Any) -> Any:
    return None


@dataclass(frozen=True)
class Frontend:
    """One framework's hooks. Every field but `name` is optional."""

    name: str
    # Stub modules the loader serves instead of reading source (`torch`, `keras`, `numpy`).
    native_modules: tuple[NativeModuleFactory, ...] = ()
    # Rules for library decorators the engine must not take as the identity, by qualified name.
    decorator_rules: Mapping[str, Callable[[Evaluator, Any], Any]] = field(default_factory=dict)
    # Library functions and classes replaced by a rule, by qualified name (module.qualname):
    # rule(evaluator, the function or class as defined) gives what the definition binds (before its
    # decorators apply). For functions that read files or the network (transformers'
    # `from_pretrained`), classes that set up a process rather than a model (Accelerate's `Accelerator`).
    function_rules: Mapping[str, Callable[[Evaluator, Any], Any]] = field(default_factory=dict)
    # Registries its modules fill as they are imported (timm's `@register_model`) whose readers are
    # known: a package that star-imports those modules runs each only when what it registers is
    # read (engine/registrations.py); each reader gets a function rule that runs them first.
    lazy_registries: tuple[LazyRegistry, ...] = ()
    # The model an object of this framework holds (a transformers pipeline's `.model`, the module a
    # DDP / FSDP1 wrapper wraps), else None: a variable holding one has that model as its model.
    held_model: Callable[[Any], Any] = _none
    # Whether a built model is one of this frontend's (its own semantics below apply to it).
    owns_model: Callable[[Any], bool] = _never
    # Before counting: what the framework does lazily (Keras builds weights on first call). Gets
    # the evaluator, the model, the other values of the file's namespace (an instance of the same
    # class built elsewhere in the file) and the configured input shapes.
    finish_model: Callable[[Evaluator, Instance, Iterable[Any], tuple[InputSpec, ...]], None] | None = None
    # The model's own declared inputs (keras.Input, input_shape=): (positional arguments, keyword
    # arguments, where they come from), or a sentence saying what is missing, or None when it has
    # none. Gets the model, the configured batch size (None: not given) and where that comes from.
    model_inputs: Callable[[Instance, int | None, str], Any] | None = None
    # False when the model's call takes its inputs in more than one form (Keras's `call` takes
    # several inputs as one list too): input shapes are then not checked against its signature.
    forward_signature_checked: bool = True
    # How a model was loaded, as (label, value) rows: a checkpoint's name, where its config came
    # from, its dtype (the editor's hover on `from_pretrained(...)`, reports). Empty when not loaded.
    origin: Callable[[Instance], tuple[tuple[str, str], ...]] | None = None
    # Notes every memory estimate of one of its models carries (`vramlint explain`, reports).
    estimate_notes: tuple[str, ...] = ()
    # Native functions whose calls the memory model records on its tape, by name prefix.
    taped_prefixes: tuple[str, ...] = ()
    # What its training code states (optimizer, precision, batch...), for the training-setup scan
    # (frontends/training_setup.py).
    training_setup: TrainingSetupHandler | None = None
    # Code changes that make a model that does not fit take less memory the framework's way
    # (LoRA, 4-bit weights), for the editor's quick fixes, which re-analyse each to title it.
    memory_fixes: Callable[[FixRequest], list[ProposedFix]] | None = None
    # What a generation call of the file asks of a model (transformers' `model.generate(...)`): the
    # prompts, tokens, beams and the model's cache layout (memory/generation.py), None when the file
    # has none. Gets the evaluator, the model, its name, the file, and a function giving an
    # expression's value at the file's module level (an Unknown when it cannot).
    generation: Callable[[Evaluator, Instance, str, SourceModule, Callable[[Any], Any]],
                         GenerationPlan | None] | None = None
    # How the file runs a model on several GPUs (DDP, FSDP, ZeRO, tensor parallelism), read from the
    # evaluated model (wrappers and `fully_shard` calls leave their marks on it) and from the file:
    # a ParallelPlan (memory/distributed.py) whose world_size is 0 where the code does not say it;
    # None when this frontend sees no multi-GPU training of the model.
    parallel_plan: Callable[[PlanRequest], ParallelPlan | None] | None = None


@dataclass(frozen=True)
class PlanRequest:
    """A model of a file, for `parallel_plan`: the evaluator (its module-level values are the
    script's), the model, its name in the file, the file, the file's training-setup scan, the
    folder configuration files may be read from (the workspace: a DeepSpeed JSON config named in
    the code is read only inside it), and a function giving an expression's value at the file's
    module level (an Unknown when it cannot)."""

    evaluator: Evaluator
    model: Instance
    name: str
    source: SourceModule
    scan: Any  # frontends.training_setup.TrainingScan
    root: str
    value_of: Callable[[Any], Any]


@dataclass(frozen=True)
class SourceEdit:
    """Replace the text from (line, column) to (end_line, end_column) with `text`: 1-based lines,
    code-point columns (engine.values.Location's convention). An insertion has equal ends."""

    line: int
    column: int
    end_line: int
    end_column: int
    text: str


@dataclass(frozen=True)
class ProposedFix:
    title: str  # "Fine-tune with LoRA (peft: r=16, every linear layer)"
    edits: tuple[SourceEdit, ...]


@dataclass(frozen=True)
class FixRequest:
    """A model of a file that does not fit, for `memory_fixes`."""

    text: str  # the file
    model: str  # its name (a module-level variable, a class...)
    line: int  # the statement that binds it, 1-based, first and last line
    end_line: int
    trains_everything: bool  # every parameter trainable: full fine-tuning
    # The model's repeated blocks (the path of its largest ModuleList / Sequential of layers of one
    # class: "layers", "model.layers"), None when it has none; the GPUs the setup trains on; whether
    # the file already trains it on several GPUs (DDP, FSDP...).
    blocks: str | None = None
    world_size: int = 1
    distributed: bool = False
