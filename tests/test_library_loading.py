"""How library modules are loaded for speed (issue 18), with results unchanged.

The cyclic collector pauses while a library module is parsed and evaluated, and what the load
made (parse trees, namespaces: they live as long as the process) is frozen out of later
collections; the analysed file's own folder is loaded as usual, since an edit or the next
file replaces its modules."""

from __future__ import annotations

import gc
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import vramlint
from vramlint.engine.source import SourceModule

LIB = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, n)
"""
LOCAL = """\
import torch.nn as nn

WIDTH = 3
"""
MAIN = """\
from libpkg import Net
from local_helpers import WIDTH

model = Net(WIDTH)
"""


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector on, nothing frozen, before; as it was, afterwards."""
    enabled = gc.isenabled()
    gc.enable()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if not enabled:
            gc.disable()


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def tracked_sources(folder: Path) -> set[str]:
    """Parsed files under `folder` that the collector still scans (frozen ones are not listed)."""
    return {o.path for o in gc.get_objects() if type(o) is SourceModule and o.path.startswith(str(folder))}


def test_a_library_load_is_frozen_and_the_collector_runs_again(tmp_path: Path, collector: None) -> None:
    proj, lib = tmp_path / "proj", tmp_path / "lib"
    main = write(proj, "main.py", MAIN)
    write(proj, "local_helpers.py", LOCAL)
    write(lib, "libpkg/__init__.py", LIB)
    result = vramlint.analyze_file(str(main), vramlint.Settings(extra_paths=(str(lib),)))
    (model,) = result.models
    assert model.params.total == 3 * 3 + 3
    assert gc.isenabled()
    assert tracked_sources(lib) == set(), "the library's parse tree is frozen"
    assert str(proj / "local_helpers.py") in tracked_sources(proj), "the workspace module is not"


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_from_before_a_library_load_is_not_frozen_with_it(tmp_path: Path, collector: None) -> None:
    """An editor's earlier analyses leave cycles that only a collection frees: a library load
    freezing them would keep them for the server's life."""
    import weakref

    old = _Cycle()
    gc.collect()  # now in the oldest generation, which the automatic collector rarely scans
    alive = weakref.ref(old)
    del old
    proj, lib = tmp_path / "proj", tmp_path / "lib"
    main = write(proj, "main.py", MAIN)
    write(proj, "local_helpers.py", LOCAL)
    write(lib, "libpkg/__init__.py", LIB)
    vramlint.analyze_file(str(main), vramlint.Settings(extra_paths=(str(lib),)))
    assert tracked_sources(lib) == set(), "the library was frozen"
    assert alive() is None, "the garbage was collected, not frozen"


def test_an_interrupted_library_load_leaves_the_collector_running(tmp_path: Path, collector: None) -> None:
    proj, lib = tmp_path / "proj", tmp_path / "lib"
    main = write(proj, "main.py", "import spinning\n\nx = spinning.x\n")
    write(lib, "spinning.py", "while True:\n    pass\n")
    settings = vramlint.Settings(extra_paths=(str(lib),), step_budget=20_000)
    result = vramlint.analyze_file(str(main), settings)
    assert any("step budget" in w.reason for w in result.warnings)
    assert gc.isenabled()
    assert str(lib / "spinning.py") in tracked_sources(lib), "a dropped load is left to the collector"


SETTINGS_LIB = """\
import json
import os

import torch.nn as nn

# transformers' is_sagemaker_mp_enabled(): a JSON read from an unset variable
OPTIONS = json.loads(os.getenv("FRAMEWORK_PARAMS", "{}"))


class Net(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, n)
"""


def test_an_empty_json_read_by_a_library_does_not_locate_its_file(tmp_path: Path) -> None:
    """Where a parsed string came from is its label (`a string parsed at lib.py:7`), asked only
    for data that has values to tag: locating it computes the positions of the whole file,
    which for transformers' import_utils.py cost a tenth of a cold model file's analysis."""
    from vramlint.engine.source import parse_source

    proj, lib = tmp_path / "proj", tmp_path / "lib"
    main = write(proj, "main.py", "from settingslib import Net, OPTIONS\n\nmodel = Net(3 + len(OPTIONS))\n")
    lib_file = write(lib, "settingslib.py", SETTINGS_LIB)
    result = vramlint.analyze_file(str(main), vramlint.Settings(extra_paths=(str(lib),)))
    (model,) = result.models
    assert model.params.total == 3 * 3 + 3
    parsed = parse_source(str(lib_file), lib_file.read_text(), "settingslib")
    assert parsed._positions is None, "nothing asked where the library's empty JSON was parsed"


# transformers' layout: the decorator is defined in utils/auto_docstring.py and re-exported by utils.
FAKE_TRANSFORMERS = {
    "transformers/__init__.py": "",
    "transformers/utils/__init__.py": "from .auto_docstring import auto_docstring\n",
    "transformers/utils/auto_docstring.py": """\
        EVALUATED = []


        def auto_docstring(obj=None, *, custom_intro=None, checkpoint=None):
            EVALUATED.append(obj)
            return obj if obj is not None else (lambda o: o)
        """,
    "transformers/models/tiny.py": """\
        import torch.nn as nn

        from ..utils import auto_docstring


        @auto_docstring
        class Tiny(nn.Module):
            @auto_docstring(custom_intro="A forward.")
            def forward(self, x):
                return self.fc(x)

            def __init__(self, n):
                super().__init__()
                self.fc = nn.Linear(n, n)
        """,
}


def test_auto_docstring_is_the_identity_without_reading_its_module(tmp_path: Path) -> None:
    from vramlint.analysis.api import get_loader, search_paths

    proj, lib = tmp_path / "proj", tmp_path / "lib"
    for name, text in FAKE_TRANSFORMERS.items():
        write(lib, name, text)
    main = write(proj, "main.py", "import torch\nfrom transformers.models.tiny import Tiny\n\n"
                                  "model = Tiny(4)\nout = model(torch.randn(2, 4))\n")
    settings = vramlint.Settings(extra_paths=(str(lib),), memory=True)
    result = vramlint.analyze_file(str(main), settings)
    (model,) = result.models
    assert model.params.total == 4 * 4 + 4
    assert model.output_shape == (2, 4), "the decorated forward is the class's own"
    loader = get_loader(search_paths(settings), settings.environment, settings.torch_version)
    assert "transformers.utils" in loader.modules
    assert "transformers.utils.auto_docstring" not in loader.modules
