"""Model files of public training repositories (tests/fixtures/public/, copied verbatim with their
licences; see its README), analysed as the user's file that builds them, against the counts real
torch gives (tests/fixtures/truth/public.json, make_public_truth.py).

Styles: GPTs with a config dataclass and a `%`-formatted size print (nanoGPT, minGPT, makemore,
llama2.c), the PyTorch examples, a U-Net, CLIP, einops-based ViTs, segment-anything's encoder and
decoder, a seq2seq Transformer, CIFAR classics. Never wrong, never a crash; unknowns located; at
least 95% exact.
"""

from __future__ import annotations

import pytest

from tests.support.corpora import Outcome, analyse_source, public_cases, rate_line

CASES = {name: (text, truth, paths) for name, text, truth, paths in public_cases()}
OUTCOMES: dict[str, Outcome] = {}
SUMMARY: list[str] = []  # read by conftest's terminal summary


@pytest.mark.parametrize("name", list(CASES))
def test_public_model_file(name: str) -> None:
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
    SUMMARY.append(rate_line("public repository files", outcomes))
    exact = sum(o.status == "exact" for o in outcomes)
    assert exact >= 0.95 * len(outcomes), [f"{o.name}: {o.why}" for o in outcomes if o.status != "exact"]
