"""timm 1.0.31, analysed from its own source: one factory of every timm model file, written as a
user would (`from timm.models.resnet import resnet10t; model = resnet10t()`), with a forward on
its default input. Truth: tests/fixtures/truth/timm-1.0.31.json (make_timm_truth.py, real torch).

What must hold (issue 12): never a wrong number, never a crash; an unknown names the construct
that stops it, at its line; at least 95% of the files' models are exact, and each one exact when
last recorded (tests/fixtures/exact-baseline.json) still is. Every registered
factory (1,371) is measured by `python benchmarks/library_coverage.py --corpus timm`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.corpora import (
    Outcome,
    analyse_timm,
    rate_line,
    record_exact,
    still_exact,
    timm_representatives,
    timm_truth,
)
from tests.support.libsources import TIMM_VERSION, TORCHVISION_VERSION, library_source

TRUTH = timm_truth(TIMM_VERSION)["models"]
CASES = timm_representatives(TRUTH)  # model file -> its smallest factory
OUTCOMES: dict[str, Outcome] = {}
SUMMARY: list[str] = []  # read by conftest's terminal summary


@pytest.fixture(scope="module")
def paths() -> tuple[str, ...]:
    return (str(library_source("timm", TIMM_VERSION)), str(library_source("torchvision", TORCHVISION_VERSION)))


@pytest.mark.parametrize("module", sorted(CASES))
def test_factory_of_every_model_file(module: str, paths: tuple[str, ...]) -> None:
    name = CASES[module]
    truth = TRUTH[name]
    out = analyse_timm(name, truth, paths, trace=True)
    OUTCOMES[module] = out
    assert out.status in ("exact", "unknown"), f"{name}: {out.status}: {out.why}"
    regressed = still_exact(f"timm-{TIMM_VERSION}", out)
    assert regressed is None, regressed
    if out.status == "unknown":
        # Never silent: the reason says what and where (a file and line, the user's or timm's).
        assert out.why and "(no location)" not in out.why, out.why
        return
    # The forward on the default input traces through, to torch's output shape.
    assert out.forward_problems == [], f"{name}: {out.forward_problems[:3]}"
    assert list(out.output or ()) == truth["output"], f"{name}: output {out.output}, torch {truth['output']}"


def test_at_least_95_percent_exact() -> None:
    if len(OUTCOMES) < len(CASES):
        pytest.skip("needs every file's test (run the whole module)")
    outcomes = list(OUTCOMES.values())
    SUMMARY.append(rate_line(f"timm {TIMM_VERSION} (one factory per model file)", outcomes))
    record_exact(f"timm-{TIMM_VERSION}", outcomes)
    exact = sum(o.status == "exact" for o in outcomes)
    unknown = [f"{o.name}: {o.why}" for o in outcomes if o.status == "unknown"]
    assert exact >= 0.95 * len(outcomes), "\n".join(unknown)


def test_create_model_by_name(paths: tuple[str, ...]) -> None:
    """`timm.create_model(name)`: `import timm` runs every model file's `@register_model`, as
    Python does, so the registry (and each factory's pretrained config) is what torch sees."""
    import vramlint

    names = ["convnext_tiny", "resnet50", "vit_small_patch16_224", "efficientnet_b0"]
    text = "import timm\n\n" + "".join(f"m{i} = timm.create_model({n!r})\n" for i, n in enumerate(names))
    result = vramlint.analyze_source("/tmp/vramlint-corpus/create.py", text, vramlint.Settings(extra_paths=paths))
    got = {m.name: m.params.total for m in result.models}
    assert got == {f"m{i}": TRUTH[n]["params"] for i, n in enumerate(names)}


def test_create_model_runs_only_the_model_files_it_needs(paths: tuple[str, ...], tmp_path: Path) -> None:
    """A deprecated name (`tv_resnet50`, registered by `register_model_deprecations` in resnet.py,
    read from its source) builds what timm builds, and of the 98 model files only resnet.py ran."""
    import vramlint
    from vramlint.analysis.api import get_loader, search_paths

    settings = vramlint.Settings(extra_paths=(*paths, str(tmp_path)))  # a fresh loader: nothing cached
    text = "import timm\n\nmodel = timm.create_model('tv_resnet50')\n"
    (model,) = vramlint.analyze_source(str(tmp_path / "user.py"), text, settings).models
    assert model.params.total == TRUTH["resnet50"]["params"]
    loader = get_loader(search_paths(settings), settings.environment, settings.torch_version)
    ran = {m for m in loader.modules if m.startswith("timm.models.") and not m.rpartition(".")[2].startswith("_")}
    assert ran == {"timm.models.resnet"}
