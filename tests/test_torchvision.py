"""Every torchvision 0.26.0 classification model, analysed from torchvision's own source, has the
parameter count real torch reports (tests/fixtures/truth/, made by make_truth.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vramlint
from tests.support.libsources import TORCHVISION_VERSION, library_source

TRUTH = json.loads((Path(__file__).parent / "fixtures/truth/torchvision-0.26.0.json").read_text())["models"]
SUMMARY: dict[str, list[str]] = {}  # read by conftest's terminal summary


@pytest.fixture(scope="module")
def analysed() -> dict[str, vramlint.ModelResult]:
    root = library_source("torchvision", TORCHVISION_VERSION)
    settings = vramlint.Settings(extra_paths=(str(root),))
    found: dict[str, vramlint.ModelResult] = {}
    for f in sorted((root / "torchvision" / "models").glob("*.py")):
        result = vramlint.analyze_file(str(f), settings)
        assert not result.errors, result.errors
        for m in result.models:
            found[m.name] = m
    return found


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_parameter_count_matches_torch(name: str, analysed: dict[str, vramlint.ModelResult]) -> None:
    truth = TRUTH[name]
    model = analysed.get(name)
    assert model is not None, f"factory {name} was not found"
    assert model.kind == "factory"
    matched = model.params.total == truth["params"]
    SUMMARY.setdefault("matched" if matched else "missed", []).append(name)
    if model.params.total is None:
        # Never a wrong number: an unresolved model must say why.
        assert model.unknowns or model.error
    assert model.params.total == truth["params"], [u.reason for u in model.unknowns[:5]]
    assert model.params.trainable == truth["trainable"]
    assert model.params.buffers == truth["buffers"]


def test_unresolvable_classes_are_explained(analysed: dict[str, vramlint.ModelResult]) -> None:
    # ResNet's blocks have required arguments with no call site in the file: unknown, with reasons.
    block = analysed["BasicBlock"]
    assert block.params.total is None
    assert any("inplanes" in u.reason for u in block.unknowns)
    assert all(u.location is not None and u.location.line > 0 for u in block.unknowns)


@pytest.fixture(scope="module")
def traced() -> dict[str, vramlint.ModelResult]:
    from vramlint.settings import InputSpec

    root = library_source("torchvision", TORCHVISION_VERSION)
    settings = vramlint.Settings(extra_paths=(str(root),), inputs=(InputSpec((3, 224, 224)),), batch_size=2)
    return {m.name: m for f in sorted((root / "torchvision" / "models").glob("*.py"))
            for m in vramlint.analyze_file(str(f), settings).models if m.kind == "factory"}


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_forward_trace_gives_the_logits(name: str, traced: dict[str, vramlint.ModelResult]) -> None:
    # Every classification model maps a batch of 224x224 images to [batch, 1000] logits (googlenet
    # and inception_v3 return a tuple in training mode; its first tensor is the logits).
    model = traced[name]
    assert model.forward_unknowns == [], [u.reason for u in model.forward_unknowns[:3]]
    assert model.output_shape == (2, 1000)


def test_models_by_name() -> None:
    """`get_model("resnet50")` reads the registry `@register_model()` fills as each model file
    runs; `models.__dict__[name]` and `getattr(models, name)` are the other spellings."""
    root = library_source("torchvision", TORCHVISION_VERSION)
    text = ("import torchvision\nfrom torchvision import models\n\n"
            "a = torchvision.models.get_model('resnet50')\nb = models.__dict__['resnet18']()\n"
            "c = getattr(models, 'vgg11')()\nd = models.get_model_builder('mobilenet_v3_small')()\n")
    result = vramlint.analyze_source("/tmp/vramlint-corpus/by_name.py", text, vramlint.Settings(extra_paths=(str(root),)))
    got = {m.name: m.params.total for m in result.models}
    assert got == {"a": TRUTH["resnet50"]["params"], "b": TRUTH["resnet18"]["params"],
                   "c": TRUTH["vgg11"]["params"], "d": TRUTH["mobilenet_v3_small"]["params"]}


def test_api_usage_logging_is_not_run_from_source(tmp_path: Path) -> None:
    """`torchvision.utils._log_api_usage_once`, called by every torchvision module's `__init__`,
    is a no-op of vramlint's (frontends/torchvision_data): a call neither runs its source nor
    leaves an unknown, and the module around it is counted as before."""
    from vramlint.analysis.api import get_loader, search_paths
    from vramlint.engine.values import NativeFunction

    root = library_source("torchvision", TORCHVISION_VERSION)
    settings = vramlint.Settings(extra_paths=(str(root),))
    model = tmp_path / "logged.py"
    model.write_text(
        "from torch import nn\nfrom torchvision.utils import _log_api_usage_once\n\n\n"
        "class Logged(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        _log_api_usage_once(self)\n        self.fc = nn.Linear(4, 4)\n"
    )
    result = vramlint.analyze_file(str(model), settings)
    (logged,) = result.models
    assert (logged.params.total, logged.unknowns) == (20, [])
    utils = get_loader(search_paths(settings), settings.environment, settings.torch_version).modules["torchvision.utils"]
    assert isinstance(utils.ns["_log_api_usage_once"], NativeFunction)
