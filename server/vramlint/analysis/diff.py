"""`vramlint diff`'s comparison: two sets of file analyses (a base revision's and the working
tree's) as per-model changes. Plain data, free of git and of terminal concerns (cli/diff.py
reads the revision, render/diff.py prints the result).

Models are keyed by the file's path relative to its tree's root (a rename maps the base's path to
the new one) and the model's name. Layers are compared by their attribute path in the module
tree: a layer whose own parameters or class changed, and the top of each added or removed
subtree (its descendants, and the ancestors whose totals only follow, are not listed again).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from vramlint.analysis.results import FileAnalysis, ModelResult, ModuleNode

ADDED, REMOVED, CHANGED, UNCHANGED = "added", "removed", "changed", "unchanged"
# The figures compared, in the order every renderer shows them.
FIGURES = ("params", "train_peak", "inference_peak", "max_batch")
FIGURE_LABELS = {"params": "parameters", "train_peak": "training peak", "inference_peak": "inference peak",
                 "max_batch": "largest batch"}


@dataclass(frozen=True)
class Figures:
    """One model's numbers on one side (None: unknown, or not computed: `max_batch` needs --max-batch)."""

    params: int | None
    train_peak: int | None
    inference_peak: int | None
    max_batch: int | None
    fits: bool | None  # the peak its mode names (training, or inference with mode = "infer") fits the GPU
    infer: bool  # mode = "infer": the inference peak is the one that must fit
    line: int | None
    device: str | None

    def get(self, name: str) -> int | None:
        value = getattr(self, name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class LayerChange:
    """A layer of the module tree that differs: `before`/`after` its parameters (own and
    children's), None on the side where it does not exist (added, removed) or where unknown."""

    path: str  # attribute path from the model ("body.0"); "" is the model itself
    kind: str  # ADDED | REMOVED | CHANGED
    type_before: str | None
    type_after: str | None
    before: int | None
    after: int | None


@dataclass(frozen=True)
class ModelDiff:
    path: str  # relative to the tree's root, with forward slashes (the working tree's, for a rename)
    name: str
    status: str  # ADDED | REMOVED | CHANGED | UNCHANGED
    before: Figures | None
    after: Figures | None
    layers: tuple[LayerChange, ...] = ()
    renamed_from: str | None = None  # the base's path, when git saw a rename

    def change(self, figure: str) -> int | None:
        """after - before, None when either is unknown or absent."""
        a = self.after.get(figure) if self.after else None
        b = self.before.get(figure) if self.before else None
        return None if a is None or b is None else a - b

    def percent(self, figure: str) -> float | None:
        """The relative change in percent (None: unknown, or from zero)."""
        delta = self.change(figure)
        b = self.before.get(figure) if self.before else None
        return None if delta is None or not b else 100.0 * delta / b

    @property
    def gating_peak(self) -> str:
        """The peak `--fail-on-increase` looks at: the one that must fit (the mode's)."""
        side = self.after or self.before
        return "inference_peak" if side is not None and side.infer else "train_peak"


@dataclass(frozen=True)
class Problem:
    """A file of either side that could not be analysed (its errors), so its models are absent."""

    side: str  # "base" | "working tree"
    path: str
    message: str


@dataclass
class Comparison:
    base: str  # the revision as the user named it ("main"), or the default branch ("origin/main")
    base_commit: str
    merge_base: bool = False  # the base is the merge base of HEAD and `base` (the default branch)
    models: list[ModelDiff] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # the files compared (relative paths)
    fail_on_increase: float | None = None  # the threshold in percent (`--fail-on-increase`), if any

    def changed(self) -> list[ModelDiff]:
        return [m for m in self.models if m.status != UNCHANGED]

    def increases(self) -> list[tuple[ModelDiff, str, float]]:
        """Models whose peak that must fit grew by more than `fail_on_increase` percent: (model,
        figure, its growth in percent). Added models have nothing to grow from."""
        if self.fail_on_increase is None:
            return []
        grown = ((m, m.gating_peak, m.percent(m.gating_peak)) for m in self.models if m.status == CHANGED)
        return [(m, name, p) for m, name, p in grown if p is not None and p > self.fail_on_increase]

    def failed(self) -> bool:
        """`--fail-on-increase`'s verdict: a peak grew past it, or a file of the working tree could
        not be analysed (its models could have grown unseen)."""
        if self.fail_on_increase is None:
            return False
        return bool(self.increases()) or any(p.side == "working tree" for p in self.problems)


def figures_of(m: ModelResult) -> Figures:
    e = m.memory
    infer = m.setup is not None and m.setup["mode"] == "infer"
    fits = None
    if e is not None:
        fits = e.inference_need <= e.device_memory if infer else e.fits
    return Figures(params=m.params.total, train_peak=e.train_peak if e else None,
                   inference_peak=e.inference_peak if e else None, max_batch=e.max_batch if e else None,
                   fits=fits, infer=infer, line=m.location.line if m.location else None,
                   device=e.device if e else None)


def _own(node: ModuleNode) -> int | None:
    if any(p.numel is None for p in node.params):
        return None
    return sum(p.numel or 0 for p in node.params)


def _walk(node: ModuleNode) -> Iterator[ModuleNode]:
    yield node
    for child in node.children:
        yield from _walk(child)


def layer_changes(before: ModuleNode | None, after: ModuleNode | None) -> tuple[LayerChange, ...]:
    """What differs between two module trees, in the working tree's order (removed layers after)."""
    if before is None or after is None:
        return ()
    old = {n.path: n for n in _walk(before)}
    new = {n.path: n for n in _walk(after)}
    out: list[LayerChange] = []

    def top_of_subtree(path: str, present: Mapping[str, ModuleNode]) -> bool:
        parent = path.rpartition(".")[0] if "." in path else ""
        return path == "" or parent in present

    for path, n in new.items():
        o = old.get(path)
        if o is None:
            if top_of_subtree(path, old):
                out.append(LayerChange(path, ADDED, None, n.class_name, None, n.param_count))
        elif o.class_name != n.class_name or _own(o) != _own(n):
            out.append(LayerChange(path, CHANGED, o.class_name, n.class_name, o.param_count, n.param_count))
    for path, o in old.items():
        if path not in new and top_of_subtree(path, new):
            out.append(LayerChange(path, REMOVED, o.class_name, None, o.param_count, None))
    return tuple(out)


_INDEX = re.compile(r"(?:(?<=\.)|^)\d+(?=\.|$)")


def grouped(layers: Sequence[LayerChange]) -> list[tuple[LayerChange, int]]:
    """The same change made to repeated layers (`h.0.mlp` ... `h.11.mlp`) as one, with its count
    and its path's index range (`h.{0..11}.mlp`): a deeper model's twelve blocks are one line."""
    groups: dict[tuple[object, ...], list[LayerChange]] = {}
    for ch in layers:
        key = (_INDEX.sub("*", ch.path), ch.kind, ch.type_before, ch.type_after, ch.before, ch.after)
        groups.setdefault(key, []).append(ch)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append((members[0], 1))
            continue
        # Name the range where exactly one index varies; `*` where several do.
        indexes = [[m.group() for m in _INDEX.finditer(ch.path)] for ch in members]
        varying = [i for i in range(len(indexes[0])) if len({ix[i] for ix in indexes}) > 1]
        first = members[0].path
        if len(varying) == 1:
            numbers = sorted(int(ix[varying[0]]) for ix in indexes)
            span = f"{{{numbers[0]}..{numbers[-1]}}}" if numbers == list(range(numbers[0], numbers[-1] + 1)) \
                else "{" + ",".join(map(str, numbers)) + "}"
            spots = list(_INDEX.finditer(first))
            spot = spots[varying[0]]
            path = first[:spot.start()] + span + first[spot.end():]
        else:
            path = _INDEX.sub("*", first)
        out.append((replace(members[0], path=path), len(members)))
    return out


def _models(files: list[FileAnalysis], relpath: Mapping[str, str]) -> dict[tuple[str, str], ModelResult]:
    out: dict[tuple[str, str], ModelResult] = {}
    for fa in files:
        rel = relpath.get(fa.path, fa.path)
        for m in fa.models:
            out.setdefault((rel, m.name), m)
    return out


def compare(base: list[FileAnalysis], head: list[FileAnalysis], base_rel: Mapping[str, str],
            head_rel: Mapping[str, str], renames: Mapping[str, str] | None = None) -> list[ModelDiff]:
    """Per-model changes. `base_rel`/`head_rel` map each analysis's path to its path relative to
    its tree; `renames` maps a base path to its working-tree path (git's rename detection)."""
    renames = renames or {}
    old = {(renames.get(p, p), name): m for (p, name), m in _models(base, base_rel).items()}
    old_path = {(renames.get(p, p), name): p for (p, name) in _models(base, base_rel)}
    new = _models(head, head_rel)
    out = []
    for key in sorted(set(old) | set(new)):
        o, n = old.get(key), new.get(key)
        moved = old_path.get(key)
        renamed = moved if moved is not None and moved != key[0] else None
        if o is None:
            assert n is not None
            out.append(ModelDiff(key[0], key[1], ADDED, None, figures_of(n)))
        elif n is None:
            out.append(ModelDiff(key[0], key[1], REMOVED, figures_of(o), None, renamed_from=renamed))
        else:
            fb, fa = figures_of(o), figures_of(n)
            layers = layer_changes(o.tree, n.tree)
            same = all(fb.get(f) == fa.get(f) for f in FIGURES) and fb.fits == fa.fits and not layers
            out.append(ModelDiff(key[0], key[1], UNCHANGED if same else CHANGED, fb, fa, layers, renamed))
    return out


def problems_of(side: str, files: list[FileAnalysis], relpath: Mapping[str, str]) -> list[Problem]:
    return [Problem(side, relpath.get(fa.path, fa.path), e.reason) for fa in files for e in fa.errors]
