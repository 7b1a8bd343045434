"""Results of analysing a file: plain typed data, free of LSP and terminal concerns."""

from __future__ import annotations

from dataclasses import dataclass, field

from vramlint.engine.values import Location, SourceRef
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
    ref: SourceRef | None = field(default=None, repr=False, compare=False)  # the call that built it
    params: list[TensorInfo] = field(default_factory=list)  # its own (not its children's)
    buffers: list[TensorInfo] = field(default_factory=list)
    children: list[ModuleNode] = field(default_factory=list)
    param_count: int | None = None  # own + children, tied weights once; None if unknown
    # With inputs (Settings.inputs): the shape of what its first call returned in the forward
    # trace (None: not called, or not a tensor); unknown dims are None.
    output_shape: tuple[int | None, ...] | None = None
    # With a memory estimate: bytes kept for backward by its ops and its children's.
    saved_bytes: int | None = None

    @property
    def location(self) -> Location | None:
        # Computed on demand: positions cost a pass over the file, and library files rarely need them.
        return self.ref.location if self.ref is not None else None


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

    @property
    def location(self) -> Location | None:
        return _resolve(self.where)


@dataclass
class FileAnalysis:
    path: str
    models: list[ModelResult] = field(default_factory=list)
    errors: list[UnknownInfo] = field(default_factory=list)  # syntax errors, unreadable file
    warnings: list[UnknownInfo] = field(default_factory=list)  # e.g. undecodable bytes
