"""Issue 12's transformers acceptance corpus, on two releases (5.17.0 and 5.25.0, the newest pip
installs): for 42 much-used model types, every base model, causal/masked/seq2seq LM, speech
seq2seq, image-text-to-text model and image classifier of transformers' auto mappings, written as
a user would (`from transformers import LlamaForCausalLM, LlamaConfig;
model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2))`), with a forward on the inputs the
model needs (input_ids, pixel_values, input_features, decoder_input_ids...).
Truth: tests/fixtures/truth/transformers-corpus-VERSION.json (make_transformers_truth.py, real torch).

What must hold: never a wrong number, never a crash; an unknown names the construct that stops it,
at its line; at least 95% exact per release, and every case exact when last recorded
(tests/fixtures/exact-baseline.json) still exact; where the forward gives an output shape (or traces
without an unknown), it is torch's.
"""

from __future__ import annotations

import pytest

from tests.support.corpora import (
    Outcome,
    analyse_transformers,
    rate_line,
    record_exact,
    still_exact,
    transformers_corpus_truth,
)
from tests.support.libsources import library_source

RELEASES = ("5.17.0", "5.25.0")
TRUTH = {v: transformers_corpus_truth(v)["models"] for v in RELEASES}
CASES = [(v, name) for v in RELEASES for name in TRUTH[v]]
OUTCOMES: dict[tuple[str, str], Outcome] = {}
SUMMARY: list[str] = []  # read by conftest's terminal summary


@pytest.mark.parametrize(("version", "name"), CASES, ids=[f"{v}-{n}" for v, n in CASES])
def test_model(version: str, name: str) -> None:
    truth = TRUTH[version][name]
    out = analyse_transformers(name, truth, (str(library_source("transformers", version)),), trace=True)
    OUTCOMES[version, name] = out
    assert out.status in ("exact", "unknown"), f"{name}: {out.status}: {out.why}"
    regressed = still_exact(f"transformers-{version}", out)
    assert regressed is None, regressed
    if out.status == "unknown":
        # Never silent: the reason says what and where (a file and line, the user's or transformers').
        assert out.why and "(no location)" not in out.why, out.why
        return
    forward = truth["forward"]
    if forward is not None and (out.output is not None or not out.forward_problems):
        # A shape the trace gives is torch's, even where another part of the trace was undecided.
        assert list(out.output or ()) == forward["output"], f"{name}: output {out.output}, torch {forward['output']}"


@pytest.mark.parametrize("version", RELEASES)
def test_at_least_95_percent_exact(version: str) -> None:
    outcomes = [o for (v, _), o in OUTCOMES.items() if v == version]
    if len(outcomes) < len(TRUTH[version]):
        pytest.skip("needs every model's test (run the whole module)")
    traced = [o for o in outcomes if TRUTH[version][o.name]["forward"] is not None and o.status == "exact"]
    clean = sum(not o.forward_problems for o in traced)
    same = sum(list(o.output or ()) == TRUTH[version][o.name]["forward"]["output"] for o in traced)
    SUMMARY.append(rate_line(f"transformers {version} (42 model types, every kind)", outcomes)
                   + f"; forward: {clean}/{len(traced)} traced without an unknown, "
                   f"{same}/{len(traced)} with torch's output shape")
    record_exact(f"transformers-{version}", outcomes)
    exact = sum(o.status == "exact" for o in outcomes)
    unknown = [f"{o.name}: {o.why}" for o in outcomes if o.status == "unknown"]
    assert exact >= 0.95 * len(outcomes), "\n".join(unknown)
