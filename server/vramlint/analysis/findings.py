"""Findings: what a file's analysis says to act on, with stable codes (docs/rules.md).

Each rule is a small function from a model's results to findings; `RULES` lists them with their
code, name and severity so that renderers (SARIF's rule table) and the docs agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vramlint.analysis.results import FileAnalysis, Finding, ModelResult, ModuleNode
from vramlint.engine.values import SourceRef
from vramlint.render.units import fmt_bytes

if TYPE_CHECKING:
    from vramlint.memory.estimate import MemoryEstimate

# An oversized layer: one layer with at least this share of all parameters (and at least
# OVERSIZED_MIN of them), unless the setup's `max-layer-params` says otherwise.
OVERSIZED_SHARE = 0.5
OVERSIZED_MIN = 1_000_000
# Tables indexed by a vocabulary: large by design, so the share rule leaves them alone (a 30,000 x 256
# token table is most of a small language model). `max-layer-params`, when set, still covers them.
EMBEDDINGS = {"Embedding", "EmbeddingBag"}  # torch.nn's and Keras's
HEADS = {"Linear": ("weight", 0), "Dense": ("kernel", -1)}  # class -> (weight, its output-features axis)
# An activation hotspot: one op whose kept tensors are at least this share of the training peak.
HOTSPOT_SHARE = 0.2


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    summary: str
    check: Callable[[ModelResult], Iterator[Finding]]
    fix: str = ""  # what to do about it, in a sentence (SARIF's rule help; docs/rules.md's **Fix:**)


def _per_gpu(e: MemoryEstimate) -> str:
    # Imported here: render/distributed.py imports the memory model, which an analysis without
    # memory never needs (its import was a twentieth of a cold analysis of torchvision).
    from vramlint.render.distributed import per_gpu

    return per_gpu(e)


def _finding(rule: str, m: ModelResult, message: str, where: object = None, subject: str = "") -> Finding:
    r = RULE_BY_CODE[rule]
    return Finding(r.code, r.name, r.severity, message, m.name, where if where is not None else m.where,  # type: ignore[arg-type]
                   subject)


def over_budget_train(m: ModelResult) -> Iterator[Finding]:
    e = m.memory
    if e is None or m.setup is None or m.setup["mode"] != "train" or e.fits:
        return
    fit = f"; the largest batch that fits: {e.max_batch}" if e.max_batch else \
        ("; not even a batch of 1 fits" if e.max_batch == 0 else "")
    several, per = (f" {_per_gpu(e)}", " per GPU") if e.distributed is not None else ("", "")
    yield _finding("VL001", m, f"training {m.name} needs {fmt_bytes(e.device_total)}{several} (peak "
                   f"{fmt_bytes(e.train_peak)}, {e.train_peak_phase}, plus the CUDA context): more than the "
                   f"{e.device}'s {fmt_bytes(e.device_memory)} at batch {e.batch_size}{per}{fit}")


def over_budget_infer(m: ModelResult) -> Iterator[Finding]:
    e = m.memory
    if e is None or m.setup is None or m.setup["mode"] != "infer":
        return
    need = e.inference_need
    what = "generation with" if e.generation is not None else "inference of"
    if need > e.device_memory:
        yield _finding("VL002", m, f"{what} {m.name} needs {fmt_bytes(need)} (peak {fmt_bytes(e.infer_peak)} "
                       f"plus the CUDA context): more than the {e.device}'s {fmt_bytes(e.device_memory)} "
                       f"at batch {e.batch_size}")


def oversized_layer(m: ModelResult) -> Iterator[Finding]:
    total = m.params.total
    if m.tree is None or not total:
        return
    limit = m.setup["max_layer_params"] if m.setup is not None else None
    leaves = list(_leaves(m.tree))
    vocabularies = {_vocabulary_size(node) for node in leaves if node.class_name in EMBEDDINGS} - {None}
    for node in leaves:
        n = sum(p.numel or 0 for p in node.params)
        if limit is not None:
            big = n > limit
            why = f"more than max-layer-params ({limit:,})"
        else:
            big = n >= OVERSIZED_MIN and n >= OVERSIZED_SHARE * total and not _vocabulary_layer(node, vocabularies)
            why = f"{n / total:.0%} of all parameters"
        if big:
            yield _finding("VL101", m, f"`{node.path}` ({node.class_name}) holds {n:,} parameters, {why}",
                           node.ref if node.ref is not None and _same_file(node.ref, m) else None, node.path)


def _vocabulary_size(node: ModuleNode) -> int | None:
    """An embedding's number of rows (its vocabulary), from its weight."""
    shape = max(node.params, key=lambda p: p.numel or 0).shape if node.params else None
    return shape[0] if shape else None


def _vocabulary_layer(node: ModuleNode, vocabularies: set[int | None]) -> bool:
    """An embedding, or an output head over one of the model's vocabularies (a Linear / Dense with as
    many outputs as an embedding has rows: the untied head of a language model, or the tied one,
    whose weight is the embedding's)."""
    if node.class_name in EMBEDDINGS:
        return True
    head = HEADS.get(node.class_name)
    if head is None:
        return False
    name, axis = head
    shape = next((p.shape for p in node.params if p.name == name), None)
    return shape is not None and len(shape) > 0 and shape[axis] in vocabularies


def activation_hotspot(m: ModelResult) -> Iterator[Finding]:
    e = m.memory
    if e is None or not e.train_peak:
        return
    for h in e.hotspots:
        if h.bytes >= HOTSPOT_SHARE * e.train_peak:
            where = h.where if h.where is not None and _same_file(h.where, m) else None
            yield _finding("VL102", m, f"`{h.op}` in `{h.module or m.name}` keeps {fmt_bytes(h.bytes)} for backward, "
                           f"{h.bytes / e.train_peak:.0%} of the training peak", where, f"{h.module}:{h.op}")


def shape_mismatch(m: ModelResult) -> Iterator[Finding]:
    seen = set()
    for u in (*m.unknowns, *m.forward_unknowns):
        if u.reason.startswith("shape mismatch") and u.reason not in seen:
            seen.add(u.reason)
            yield _finding("VL201", m, f"{m.name}: {u.reason}", u.where, u.reason)


def unresolved(m: ModelResult) -> Iterator[Finding]:
    for u in m.memory_unknowns[:1]:
        yield _finding("VL301", m, f"{m.name}: {u.reason}", u.where, u.reason)
    if m.params.total is None and m.error is None and not m.used_in:
        reasons = [u for u in m.unknowns if not u.reason.startswith("shape mismatch")]
        if reasons:
            yield _finding("VL302", m, f"{m.name}: the parameter count depends on something unknown: "
                           f"{reasons[0].reason}", reasons[0].where, reasons[0].reason)


RULES = [
    Rule("VL001", "over-budget-train", "error", "A training step does not fit the GPU", over_budget_train,
         "A smaller batch (gradient accumulation keeps the effective batch), mixed precision, gradient "
         "checkpointing, an optimizer with less state, sharding across GPUs, or a larger card."),
    Rule("VL002", "over-budget-infer", "error", "Inference does not fit the GPU", over_budget_infer,
         "A smaller batch or bf16 weights; for generation also fewer beams, a shorter context or a static cache."),
    Rule("VL101", "oversized-layer", "warning", "One layer holds most of the parameters", oversized_layer,
         "Pool before the head, factor the layer, or raise max-layer-params if it is intended."),
    Rule("VL102", "activation-hotspot", "warning", "One operation keeps a large share of the peak",
         activation_hotspot, "Fused attention (F.scaled_dot_product_attention), checkpointing the block, or "
         "a shorter sequence."),
    Rule("VL201", "shape-mismatch", "error", "Shapes that cannot work, found before running", shape_mismatch,
         "Change the layer's size or the tensor's."),
    Rule("VL301", "unresolved-input", "info", "The estimate lacks an input shape, a batch size or a value",
         unresolved, "Give --input-shape / --batch-size, `inputs` / `batch-size` in the configuration, a "
         "`# vramlint:` directive on the model's line, or call the model on a batch in the file."),
]
RULE_BY_CODE = {r.code: r for r in RULES} | {
    "VL302": Rule("VL302", "unknown-structure", "info", "The parameter count depends on something unknown", unresolved,
                  "Give the value a default, or build the model in the file with known arguments."),
    # Per file, not per model: made by analysis/module_level.py.
    "VL303": Rule("VL303", "unresolved-import", "warning", "An import vramlint cannot resolve: what it builds is "
                  "unknown", lambda m: iter(()), "Add the folder that holds the module with --extra-path or "
                  "`extra-paths`, or install the package where vramlint runs."),
    # Per file: made by analysis/suppressions.py.
    "VL901": Rule("VL901", "unused-suppression", "warning", "A `# vramlint: ignore` comment that suppresses "
                  "nothing, or names an unknown code", lambda m: iter(()),
                  "Remove the comment or the code it no longer needs (the editor's quick fix does)."),
}
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def find_problems(fa: FileAnalysis) -> list[Finding]:
    """The findings of every model, one per code and place: a class and the module-level instance
    of it share their layers, and a layer is one annotation on a pull request, not two."""
    out: list[Finding] = []
    seen: set[tuple[object, ...]] = set()
    estimated = _estimated_classes(fa.models)
    for m in fa.models:
        if m.error is not None:
            continue
        for rule in RULES:
            for f in rule.check(m):
                if f.code == "VL301" and m.kind == "class" and m.tree is not None and m.tree.qualname in estimated:
                    continue  # the file's instance of the class has its inputs: nothing to give
                key = _place(f)
                if key not in seen:
                    seen.add(key)
                    out.append(f)
    return out


def unestimated(models: list[ModelResult]) -> list[ModelResult]:
    """The models without a memory estimate that nothing else answers for (a class whose file's
    instance is estimated, a class used in another model): the memory rules did not look at them."""
    estimated = _estimated_classes(models)
    return [m for m in models if m.memory is None and not m.used_in and not (
        m.kind == "class" and m.tree is not None and m.tree.qualname in estimated)]


def _estimated_classes(models: list[ModelResult]) -> set[str]:
    """The classes an instance of the file is estimated from (its inputs found in the script):
    the class reported on its own needs no input shapes from the user then."""
    return {m.tree.qualname for m in models if m.kind == "instance" and m.memory is not None and m.tree is not None}


def _place(f: Finding) -> tuple[object, ...]:
    """What makes two findings the same: the code and the position (an unlocated finding is its
    model's own)."""
    loc = f.location
    if loc is None:
        return (f.code, f.model, f.message)
    return (f.code, loc.path, loc.line, loc.column)


def _leaves(root: ModuleNode) -> Iterator[ModuleNode]:
    """The modules with parameters of their own, in pre-order (on a stack, as _qualnames in analysis/models.py)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.params:
            yield node
        stack.extend(reversed(node.children))


def _same_file(ref: object, m: ModelResult) -> bool:
    """Whether `ref` is in the model's own file (a module's path: no position needed)."""
    path = ref.module.path if isinstance(ref, SourceRef) else getattr(ref, "path", None)
    where = m.where.module.path if isinstance(m.where, SourceRef) else getattr(m.where, "path", None)
    return path is not None and path == where
