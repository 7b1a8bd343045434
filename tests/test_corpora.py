"""Model code nobody here wrote, analysed from its own source as the user's file that builds it,
against the counts real torch gives (tests/fixtures/truth/, made by the scripts there):

- public repositories: 23 models of 11 training repos copied verbatim with their licences
  (tests/fixtures/public/: GPTs with a config dataclass and a `%`-formatted size print, the
  PyTorch examples, a U-Net, CLIP, einops ViTs, segment-anything, CIFAR classics);
- diffusers 0.42.1: every model class it exports that builds from its default config (137:
  UNets, VAEs, DiT/PixArt/SD3/Flux/Wan transformers, ControlNets...).

Never wrong, never a crash; an unknown names what stops it, at its line; at least 95% exact, and
every case exact when last recorded (tests/fixtures/exact-baseline.json) still exact.
(timm, transformers and torchvision have their own modules: they also trace forwards.)
"""

from __future__ import annotations

import pytest

from tests.support.corpora import (
    Outcome,
    analyse_source,
    diffusers_cases,
    public_cases,
    rate_line,
    record_exact,
    still_exact,
)

CORPORA = {
    "public repository files": {n: (t, tr, p) for n, t, tr, p in public_cases()},
    "diffusers 0.42.1 (every model class, default config)": {n: (t, tr, p) for n, t, tr, p in diffusers_cases()},
}
CASES = [(corpus, name) for corpus, cases in CORPORA.items() for name in cases]
OUTCOMES: dict[tuple[str, str], Outcome] = {}
SUMMARY: list[str] = []  # read by conftest's terminal summary


@pytest.mark.parametrize(("corpus", "name"), CASES, ids=[f"{c.split()[0]}-{n}" for c, n in CASES])
def test_model(corpus: str, name: str) -> None:
    text, truth, paths = CORPORA[corpus][name]
    out = analyse_source(name, text, truth, paths)
    OUTCOMES[corpus, name] = out
    assert out.status in ("exact", "unknown"), f"{name}: {out.status}: {out.why}"
    regressed = still_exact(corpus, out)
    assert regressed is None, regressed
    if out.status == "unknown":
        assert out.why and "(no location)" not in out.why, out.why


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_at_least_95_percent_exact(corpus: str) -> None:
    outcomes = [o for (c, _), o in OUTCOMES.items() if c == corpus]
    if len(outcomes) < len(CORPORA[corpus]):
        pytest.skip("needs every model's test (run the whole module)")
    SUMMARY.append(rate_line(corpus, outcomes))
    record_exact(corpus, outcomes)
    exact = sum(o.status == "exact" for o in outcomes)
    assert exact >= 0.95 * len(outcomes), [f"{o.name}: {o.why}" for o in outcomes if o.status != "exact"]
