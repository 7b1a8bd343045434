"""engine/gc_policy.py: an analysis runs with rarer full collections and leaves the process's
garbage-collector thresholds as it found them."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from vramlint import Settings, analyze_source
from vramlint.analysis import api
from vramlint.engine.gc_policy import ANALYSIS_THRESHOLDS, fewer_collections


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
