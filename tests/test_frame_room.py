"""engine/frame_room.py: an analysis runs under a frame that makes CPython give its calls one
large frame chunk (instead of mapping and unmapping 16 KiB chunks as the depth swings)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from vramlint import Settings, analyze_source
from vramlint.analysis import api
from vramlint.engine.frame_room import _DECLARED_STACK, run_with_frame_room


def _largest_declared_stack() -> int:
    f = sys._getframe()
    most = 0
    while f is not None:
        most = max(most, f.f_code.co_stacksize)
        f = f.f_back  # type: ignore[assignment]
    return most


@pytest.mark.skipif(sys.version_info < (3, 11), reason="CPython 3.10 has no frame chunks")
def test_calls_run_under_the_roomy_frame_and_return_their_value() -> None:
    assert _largest_declared_stack() < _DECLARED_STACK
    assert run_with_frame_room(_largest_declared_stack) >= _DECLARED_STACK
    assert run_with_frame_room(lambda: 42) == 42


def test_an_exception_goes_through() -> None:
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        run_with_frame_room(boom)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="CPython 3.10 has no frame chunks")
def test_an_analysis_runs_under_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    inner = api._analyze

    def analyze(*args: Any) -> Any:
        seen.append(_largest_declared_stack())
        return inner(*args)

    monkeypatch.setattr(api, "_analyze", analyze)
    res = analyze_source("/tmp/frame_room_case.py", "import torch.nn as nn\nmodel = nn.Linear(4, 2)\n", Settings())
    assert [m.params.total for m in res.models] == [10]
    assert len(seen) == 1 and seen[0] >= _DECLARED_STACK
