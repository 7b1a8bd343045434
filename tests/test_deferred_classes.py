"""An imported module's class whose base is in another, not yet imported package waits for its
use (engine/deferred.py; issue 18): torchvision's `utils.py` subclasses PIL's `ImageDraw`, and
reading PIL for it was a tenth of a torchvision analysis. What the analysis finds is unchanged."""

from __future__ import annotations

import textwrap
from pathlib import Path

import vramlint
from vramlint.analysis.api import get_loader
from vramlint.analysis.paths import search_paths

# `helpers` (the torchvision of the example) subclasses a class of `drawing` (its PIL).
HELPERS = """\
from drawing import canvas


def width():
    return 8


class _Pen(canvas.Canvas):
    \"\"\"Draws.\"\"\"

    size = 3

    def line(self, n=2):
        return n
"""
CANVAS = """\
import torch.nn as nn


class Canvas(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
"""
USES_WIDTH = """\
import torch.nn as nn
from helpers import width

model = nn.Linear(width(), 2)
"""
USES_PEN = """\
import torch.nn as nn
from helpers import _Pen, width

model = nn.Sequential(_Pen(), nn.Linear(width(), 2))
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def project(tmp_path: Path, helpers: str = HELPERS, canvas: str = CANVAS) -> tuple[Path, vramlint.Settings]:
    proj, lib = tmp_path / "proj", tmp_path / "lib"
    write(lib, "helpers.py", helpers)
    write(lib, "drawing/__init__.py", "")
    write(lib, "drawing/canvas.py", canvas)
    return proj, vramlint.Settings(extra_paths=(str(lib),))


def loaded(settings: vramlint.Settings) -> set[str]:
    return set(get_loader(search_paths(settings), settings.environment, settings.torch_version).modules)


def test_a_base_class_from_another_package_is_not_read_until_its_class_is_used(tmp_path: Path) -> None:
    proj, settings = project(tmp_path)
    (model,) = vramlint.analyze_file(str(write(proj, "main.py", USES_WIDTH)), settings).models
    assert model.params.total == 8 * 2 + 2
    assert "helpers" in loaded(settings)
    assert "drawing.canvas" not in loaded(settings), "the unused class's base was read"


def test_a_deferred_class_is_defined_when_used(tmp_path: Path) -> None:
    proj, settings = project(tmp_path)
    write(proj, "first.py", USES_WIDTH)
    vramlint.analyze_file(str(proj / "first.py"), settings)  # helpers imported, _Pen deferred
    (model,) = vramlint.analyze_file(str(write(proj, "main.py", USES_PEN)), settings).models
    assert model.params.total == (4 * 4 + 4) + (8 * 2 + 2)
    assert model.params.known is not None and not model.unknowns


def test_a_module_imported_first_then_analysed_has_its_deferred_classes(tmp_path: Path) -> None:
    """An imported module is reused as the analysed file (same path and content): its classes
    are its models, so the deferred ones are defined then."""
    proj, settings = project(tmp_path)
    vramlint.analyze_file(str(write(proj, "main.py", USES_WIDTH)), settings)
    lib = tmp_path / "lib"
    again = vramlint.analyze_file(str(lib / "helpers.py"), settings)
    fresh_root = tmp_path / "fresh"
    fresh_proj, fresh_settings = project(fresh_root)
    alone = vramlint.analyze_file(str(fresh_root / "lib" / "helpers.py"), fresh_settings)
    assert [(m.name, m.params.total) for m in again.models] == [(m.name, m.params.total) for m in alone.models]
    assert [m.name for m in again.models] == ["_Pen"]


def test_a_base_module_with_a_registry_hook_is_read_at_import(tmp_path: Path) -> None:
    """`__init_subclass__` may record the subclass where other code looks it up: not deferred."""
    hooked = CANVAS + "\n    def __init_subclass__(cls):\n        REGISTRY.append(cls)\n\n\nREGISTRY = []\n"
    proj, settings = project(tmp_path, canvas=hooked)
    vramlint.analyze_file(str(write(proj, "main.py", USES_WIDTH)), settings)
    assert "drawing.canvas" in loaded(settings)


def test_a_class_whose_base_name_is_rebound_later_is_not_deferred(tmp_path: Path) -> None:
    """Run later, the statement would read the later binding."""
    proj, settings = project(tmp_path, helpers=HELPERS + "\n\ncanvas = None\n")
    vramlint.analyze_file(str(write(proj, "main.py", USES_WIDTH)), settings)
    assert "drawing.canvas" in loaded(settings)


def test_a_class_whose_body_runs_code_is_not_deferred(tmp_path: Path) -> None:
    proj, settings = project(tmp_path, helpers=HELPERS.replace("size = 3", "size = width()"))
    vramlint.analyze_file(str(write(proj, "main.py", USES_WIDTH)), settings)
    assert "drawing.canvas" in loaded(settings)


def test_a_class_whose_base_name_a_function_may_rebind_is_not_deferred(tmp_path: Path) -> None:
    proj, settings = project(tmp_path, helpers=HELPERS + "\n\ndef reset():\n    global canvas\n    canvas = None\n")
    vramlint.analyze_file(str(write(proj, "main.py", USES_WIDTH)), settings)
    assert "drawing.canvas" in loaded(settings)
