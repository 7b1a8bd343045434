"""engine/gc_policy.py: an analysis runs with rarer full collections and leaves the process's
garbage-collector thresholds as it found them; parse trees are frozen out of the collector's
scans while analyses run, and given back after."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from vramlint import Settings, analyze_source
from vramlint.analysis import api
from vramlint.engine import gc_policy
from vramlint.engine.gc_policy import ANALYSIS_THRESHOLDS, fewer_collections
from vramlint.engine.source import SourceModule


def test_raised_inside_restored_after_nested_blocks() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with fewer_collections():
            assert gc.get_threshold() == ANALYSIS_THRESHOLDS
            with fewer_collections():
                assert gc.get_threshold() == ANALYSIS_THRESHOLDS
            assert gc.get_threshold() == ANALYSIS_THRESHOLDS  # the outer block still runs
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_a_callers_own_choice_is_kept() -> None:
    before = gc.get_threshold()
    try:
        for mine in ((0, 10, 10), (200_000, 5, 5)):  # collection off; larger thresholds than ours
            gc.set_threshold(*mine)
            with fewer_collections():
                assert gc.get_threshold() == mine
            assert gc.get_threshold() == mine
    finally:
        gc.set_threshold(*before)


def test_an_analysis_applies_it_and_restores_the_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int, int]] = []
    inner = api._analyze

    def analyze(*args: Any) -> Any:
        seen.append(gc.get_threshold())
        return inner(*args)

    monkeypatch.setattr(api, "_analyze", analyze)
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        res = analyze_source("/tmp/gc_policy_case.py", "import torch.nn as nn\nmodel = nn.Linear(4, 2)\n", Settings())
        assert [m.params.total for m in res.models] == [10]
        assert seen == [ANALYSIS_THRESHOLDS]
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


@pytest.fixture
def nothing_frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process that has frozen nothing (as a CLI run before any library load): what the test
    process froze is given back for the test, and frozen again after it."""
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    monkeypatch.setattr(gc_policy, "_lasting_freezes", False)
    try:
        yield
    finally:
        gc.unfreeze()
        if frozen:
            gc.freeze()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_parse_trees_are_frozen_while_the_analysis_runs_and_given_back_after(monkeypatch: pytest.MonkeyPatch,
                                                                            nothing_frozen: None) -> None:
    inside: list[int] = []
    inner = api._analyze

    def analyze(*args: Any) -> Any:
        out = inner(*args)
        inside.append(gc.get_freeze_count())
        return out

    monkeypatch.setattr(api, "_analyze", analyze)
    text = "import torch.nn as nn\nmodel = nn.Linear(4, 3)  # a text parsed afresh\n"
    res = analyze_source("/tmp/gc_policy_case.py", text, Settings())
    assert [m.params.total for m in res.models] == [15]
    assert inside and inside[0] > 0  # the file's tree (and what came before it) out of the scans
    assert gc.get_freeze_count() == 0  # all given back


def test_garbage_frozen_with_a_parse_is_collected_after_the_analysis(nothing_frozen: None) -> None:
    with fewer_collections():
        garbage = _Cycle()
        alive = weakref.ref(garbage)
        del garbage
        SourceModule("m.py", "x = 1\n", "m")  # freezes the cycle with the tree
        gc.collect()
        assert alive() is not None  # frozen: not collected meanwhile
    gc.collect()
    assert alive() is None


def test_nothing_is_frozen_when_the_process_had_frozen_objects(nothing_frozen: None) -> None:
    held = [_Cycle() for _ in range(3)]
    gc.freeze()  # as code around vramlint may freeze its long-lived heap
    frozen = gc.get_freeze_count()
    for _ in range(2):  # (the second time without asking the count: it was seen once)
        with fewer_collections():
            SourceModule("m.py", "x = 1\n", "m")
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen  # and what it froze stays frozen
    assert gc_policy._lasting_freezes
    del held


def test_a_lasting_freeze_meanwhile_stops_the_rounds_freezes_and_is_kept(nothing_frozen: None) -> None:
    with fewer_collections():
        SourceModule("m.py", "x = 1\n", "m")
        assert gc.get_freeze_count() > 0
        garbage = _Cycle()
        alive = weakref.ref(garbage)
        del garbage
        gc_policy.before_lasting_freeze()  # a library load: it collects first, then freezes
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert alive() is None  # the collection saw everything
        gc.freeze()
        lasting = gc.get_freeze_count()
        SourceModule("n.py", "y = 2\n", "n")
        assert gc.get_freeze_count() <= lasting  # no more freezes this round
    assert gc.get_freeze_count() > 0  # the library's freeze is not undone
    with fewer_collections():  # and later rounds freeze nothing
        SourceModule("o.py", "z = 3\n", "o")
        assert gc.get_freeze_count() <= lasting


def test_every_so_many_rounds_that_froze_end_with_a_full_collection(monkeypatch: pytest.MonkeyPatch,
                                                                    nothing_frozen: None) -> None:
    monkeypatch.setattr(gc_policy, "FULL_COLLECTION_EVERY", 2)
    monkeypatch.setattr(gc_policy, "_rounds_frozen", 0)
    collections: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(note)
    try:
        for round_ in range(4):
            collections.clear()
            with fewer_collections():
                SourceModule(f"r{round_}.py", f"x = {round_}\n", "r")  # freezes
            assert (2 in collections) == (round_ % 2 == 1), (round_, collections)
    finally:
        gc.callbacks.remove(note)


def test_what_a_comprehension_builds_is_freed_without_the_cyclic_collector() -> None:
    """The evaluator's comprehensions make no reference cycle: what they build is freed when the
    analysis drops it, and little garbage is left to be frozen with a parse."""
    text = "import torch.nn as nn\nmodel = nn.Sequential(*[nn.Linear(8, 8) for _ in range(3)])  # cycles\n"
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        res = analyze_source("/tmp/gc_policy_comprehension.py", text, Settings())
        assert [m.params.total for m in res.models] == [216]
        del res
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if type(o).__name__ in ("Instance", "Scope", "ModuleState")]
        assert left == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
