"""Training scripts written the way people write them, read with no flags.

Each folder of tests/fixtures/scripts/ holds a script (`train.py`, with its configuration files
beside it) in one style — argparse + DataLoader in main(), hydra + YAML, Lightning, Accelerate,
the HF Trainer, a loop over random tensors — and `expected.json`: the model's reported name, the
libraries its imports need (`extra_libs`, the pinned sources of tests/support/libsources.py), and
the setup fields the script states, with the values a real run of it would use (a literal read off
the script or its configuration by hand, never vramlint's output). The analysis runs as
`vramlint check train.py` would in the script's folder: nothing given but the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import libsources
from vramlint.analysis.api import analyze_file
from vramlint.settings import Settings

CORPUS = Path(__file__).resolve().parent / "fixtures" / "scripts"
SCRIPTS = sorted(p.parent for p in CORPUS.glob("*/expected.json"))
VERSIONS = {"torchvision": libsources.TORCHVISION_VERSION, "transformers": libsources.TRANSFORMERS_VERSION,
            "timm": libsources.TIMM_VERSION, "peft": libsources.PEFT_VERSION,
            "accelerate": libsources.ACCELERATE_VERSION, "einops": libsources.EINOPS_VERSION}


def test_the_corpus_has_twenty_scripts_in_different_styles() -> None:
    assert len(SCRIPTS) >= 20, [p.name for p in SCRIPTS]
    styles = {p.name.split("_")[0] for p in SCRIPTS}
    assert len(styles) >= 6, styles


@pytest.mark.parametrize("folder", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_setup_read_with_no_flags(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected: dict[str, Any] = json.loads((folder / "expected.json").read_text())
    extra = tuple(str(libsources.library_source(lib, VERSIONS[lib])) for lib in expected.get("extra_libs", ()))
    monkeypatch.chdir(folder)  # `python train.py` runs in its folder: relative config paths resolve there
    result = analyze_file(str(folder / "train.py"), Settings(memory=True, extra_paths=extra))
    names = [m.name for m in result.models]
    model = next((m for m in result.models if m.name == expected["model"]), None)
    assert model is not None, (names, result.warnings, result.errors)
    assert model.memory is not None, (model.memory_unknowns, model.forward_unknowns[:3], model.unknowns[:3])
    setup = model.setup
    assert setup is not None
    want = dict(expected["setup"])
    dtypes = want.pop("input_dtypes", None)
    for key, value in want.items():
        got = setup[key]
        if key == "inputs":
            got = [list(s.shape) for s in got]
            if dtypes is not None:
                assert [s.dtype for s in setup[key]] == dtypes
        assert got == value, (key, got, setup.source(key))
        # Read from the script or its files: neither a default nor something the test gave.
        assert setup.source(key) not in ("default", "flag"), (key, setup.source(key))
