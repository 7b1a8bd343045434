"""diffusers 0.42.1, analysed from its own source: every model class it exports that builds from
its default config (137: UNets, VAEs, DiT/PixArt/SD3/Flux/Wan transformers, ControlNets...), as
`from diffusers import UNet2DConditionModel; model = UNet2DConditionModel()`, against the counts
real torch gives (tests/fixtures/truth/diffusers-0.42.1.json, make_diffusers_truth.py).

Never wrong, never a crash; unknowns located; at least 95% exact.
"""

from __future__ import annotations

import pytest

from tests.support.corpora import Outcome, analyse_source, diffusers_cases, rate_line

CASES = {name: (text, truth, paths) for name, text, truth, paths in diffusers_cases()}
OUTCOMES: dict[str, Outcome] = {}
SUMMARY: list[str] = []  # read by conftest's terminal summary


@pytest.mark.parametrize("name", list(CASES))
def test_diffusers_model(name: str) -> None:
    text, truth, paths = CASES[name]
    out = analyse_source(name, text, truth, paths)
    OUTCOMES[name] = out
    assert out.status in ("exact", "unknown"), f"{name}: {out.status}: {out.why}"
    if out.status == "unknown":
        assert out.why and "(no location)" not in out.why, out.why


def test_at_least_95_percent_exact() -> None:
    if len(OUTCOMES) < len(CASES):
        pytest.skip("needs every case's test (run the whole module)")
    outcomes = list(OUTCOMES.values())
    SUMMARY.append(rate_line("diffusers 0.42.1 (every model class, default config)", outcomes))
    exact = sum(o.status == "exact" for o in outcomes)
    assert exact >= 0.95 * len(outcomes), [f"{o.name}: {o.why}" for o in outcomes if o.status != "exact"]
