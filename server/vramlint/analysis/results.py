"""Results of analysing a file: plain typed data, free of LSP and terminal concerns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vramlint.engine.values import Location, SourceRef
from vramlint.settings import Setup

if TYPE_CHECKING:
    from vramlint.memory.estimate import MemoryEstimate


def _resolve(where: Location | SourceRef | None) -> Location | None:
    return where.location if isinstance(where, SourceRef) else where


@dataclass(frozen=True)
class UnknownInfo:
    """Something the analysis could not determine, and where."""

    reason: str
    # A Location, or a SourceRef resolved on demand (positions cost a pass over the file).
    where: Location | SourceRef | None = field(default=None, compare=False)

    @property
    def location(self) -> Location | None:
        return _resolve(self.where)

    def key(self) -> tuple[str, object]:
        w = self.where
        return (self.reason, (w.module.path, id(w.node)) if isinstance(w, SourceRef) else w)


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int | None, ...] | None  # None: rank unknown; None inside: that dim unknown
    dtype: str
    numel: int | None
    trainable: bool


@dataclass
class ModuleNode:
    """One module of a model's tree (torchinfo's rows)."""

    path: str  # attribute path from the root, "" for the root ("features.0.conv")
    class_name: str
    qualname: str  # module.Class
    ref: SourceRef | Location | None = field(default=None, repr=False, compare=False)  # the call that built it
    params: list[TensorInfo] = field(default_factory=list)  # its own (not its children's)
    buffers: list[TensorInfo] = field(default_factory=list)
    children: list[ModuleNode] = field(default_factory=list)
    param_count: int | None = None  # own + children, tied weights once; None if unknown
    # With inputs (Settings.inputs): the shape of what its first call returned in the forward
    # trace (None: not called, or not a tensor); unknown dims are None.
    output_shape: tuple[int | None, ...] | None = None
    # With inputs: how many times the trace called it, and the shapes of its first calls' outputs.
    calls: int = 0
    output_shapes: list[tuple[int | None, ...] | None] = field(default_factory=list)
    # With a memory estimate: bytes kept for backward by its ops and its children's; of those, its
    # own ops' (functional calls in its forward) and their names.
    saved_bytes: int | None = None
    own_saved_bytes: int = 0
    own_ops: tuple[str, ...] = ()

    @property
    def location(self) -> Location | None:
        # Computed on demand: positions cost a pass over the file, and library files rarely need them.
        return _resolve(self.ref)


@dataclass
class ParamCounts:
    total: int | None
    trainable: int | None
    buffers: int | None  # elements of registered buffers
    known: int  # parameters that are known (a lower bound when total is None)


@dataclass
class ModelResult:
    name: str
    kind: str  # "class" | "instance" | "factory"
    where: Location | SourceRef | None  # where the model is defined
    params: ParamCounts
    tree: ModuleNode | None
    construction: str  # how it was built: "call at line 12", "defaults", "module level"
    unknowns: list[UnknownInfo] = field(default_factory=list)
    error: UnknownInfo | None = None  # construction failed (exception, budget)
    # For a class whose standalone count is unknown: the models of the file that contain it.
    used_in: list[str] = field(default_factory=list)
    # With inputs: the model's output shape and what its forward trace could not determine.
    output_shape: tuple[int | None, ...] | None = None
    forward_unknowns: list[UnknownInfo] = field(default_factory=list)
    # With Settings.memory: the estimate (None when it could not be made: see memory_unknowns),
    # and where the forward's inputs came from ("settings", "the call at line 12").
    memory: MemoryEstimate | None = None
    memory_unknowns: list[UnknownInfo] = field(default_factory=list)
    inputs_from: str | None = None
    # The training setup the estimate used, each value with where it came from (settings.Setup).
    setup: Setup | None = None
    # The trainer call of the file that trains this model (`Trainer(model=model, ...)`).
    trained_by: TrainerCall | None = None
    # How it was loaded, as (label, value) rows: ("checkpoint", "ORG/NAME"), ("config", where from),
    # ("dtype", ...); empty for a model built in code.
    origin: tuple[tuple[str, str], ...] = ()

    @property
    def location(self) -> Location | None:
        return _resolve(self.where)


@dataclass(frozen=True)
class TrainerCall:
    """A call that trains a model: `Trainer(model=model, ...)`, `SFTTrainer(...)`."""

    name: str  # "Trainer", "SFTTrainer"
    text: str  # "Trainer(model=model, ...) at line 12"
    where: Location | SourceRef | None = field(default=None, compare=False)

    @property
    def location(self) -> Location | None:
        return _resolve(self.where)


@dataclass(frozen=True)
class Finding:
    """A problem to act on (docs/rules.md): a stable code, a severity, a located message."""

    code: str  # "VL001"
    name: str  # "over-budget-train"
    severity: str  # "error" | "warning" | "info"
    message: str
    model: str | None = None
    where: Location | SourceRef | None = field(default=None, compare=False)
    # What the finding is about inside its model, without positions or figures (a layer's path, an
    # op and its module, a missing module's name): with the code, file and model, a finding's
    # identity across commits (SARIF's partialFingerprints, GitLab's fingerprint).
    subject: str = field(default="", compare=False)

    @property
    def location(self) -> Location | None:
        return _resolve(self.where)


@dataclass
class FileAnalysis:
    path: str
    models: list[ModelResult] = field(default_factory=list)
    errors: list[UnknownInfo] = field(default_factory=list)  # syntax errors, unreadable file
    warnings: list[UnknownInfo] = field(default_factory=list)  # e.g. undecodable bytes
    findings: list[Finding] = field(default_factory=list)  # analysis/findings.py
    # A file without models: what its module level could not evaluate (analysis/module_level.py).
    unevaluated: list[UnknownInfo] = field(default_factory=list)


def detached(fa: FileAnalysis) -> FileAnalysis:
    """The same results with every source reference resolved to a Location, free of parse trees:
    what can cross a process boundary (`vramlint check --jobs`) or be cached."""
    seen: set[int] = set()

    def fix(obj: object) -> None:
        if id(obj) in seen or obj is None or isinstance(obj, (str, int, float, bool)):
            return
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            for x in obj:
                fix(x)
            return
        if not hasattr(obj, "__dataclass_fields__"):
            return
        for name in obj.__dataclass_fields__:
            v = getattr(obj, name)
            if isinstance(v, SourceRef):
                object.__setattr__(obj, name, v.location)
            else:
                fix(v)

    fix(fa)
    return fa
