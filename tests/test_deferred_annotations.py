"""A class annotation that names a module-level import not made yet is evaluated when something
reads it (engine/eval_statements.py's DeferredAnnotation; issue 18): transformers'
`LoadStateDictConfig` annotates its fields with the quantizers' and weight loaders' classes, and
evaluating them read 4,000 lines a model never uses. What reads annotations gets their values."""

from __future__ import annotations

from pathlib import Path

import pytest

import vramlint
from tests.test_deferred_classes import write
from vramlint.analysis.api import get_loader
from vramlint.analysis.paths import search_paths

# `settings` (transformers' modeling_utils of the example) annotates a dataclass's field with a
# class of `quant` (its quantizers), a package the rest never imports.
SETTINGS = """\
import dataclasses
from quant.base import Quantizer
import quant.sizes as sizes


@dataclasses.dataclass
class LoadConfig:
    quantizer: Quantizer | None = None
    dims: sizes.Dims = None
    name: str = "x"
    label: "Quantizer" = None


WIDTH = 8
"""
QUANT = {"quant/__init__.py": "", "quant/base.py": "class Quantizer:\n    BITS = 4\n",
         "quant/sizes.py": "class Dims:\n    WIDTH = 6\n"}


def project(tmp_path: Path) -> tuple[Path, vramlint.Settings]:
    proj, lib = tmp_path / "proj", tmp_path / "lib"
    write(lib, "settings.py", SETTINGS)
    for name, text in QUANT.items():
        write(lib, name, text)
    return proj, vramlint.Settings(extra_paths=(str(lib),))


def analysed(tmp_path: Path, text: str) -> tuple[dict[str, int | None], set[str]]:
    proj, settings = project(tmp_path)
    result = vramlint.analyze_file(str(write(proj, "main.py", text)), settings)
    loaded = set(get_loader(search_paths(settings), settings.environment, settings.torch_version).modules)
    return {m.name: m.params.total for m in result.models}, loaded


def test_an_annotation_naming_an_import_to_come_does_not_make_it(tmp_path: Path) -> None:
    got, loaded = analysed(tmp_path, "import torch.nn as nn\nfrom settings import WIDTH, LoadConfig\n\n"
                                     "cfg = LoadConfig()\nmodel = nn.Linear(WIDTH, 2)\n")
    assert got == {"model": 8 * 2 + 2}
    assert "settings" in loaded and not {"quant.base", "quant.sizes"} & loaded


@pytest.mark.parametrize("read", [
    "dataclasses.fields(LoadConfig)[0].type.BITS",
    "LoadConfig.__annotations__['dims'].WIDTH",
    "LoadConfig().__annotations__['dims'].WIDTH",
    "[f.type for f in dataclasses.fields(LoadConfig)][1].WIDTH",
])
def test_what_reads_an_annotation_gets_its_value(tmp_path: Path, read: str) -> None:
    got, loaded = analysed(tmp_path, f"import dataclasses\nimport torch.nn as nn\nfrom settings import LoadConfig\n\n"
                                     f"model = nn.Linear({read}, 2)\n")
    width = 4 if "BITS" in read else 6
    assert got == {"model": width * 2 + 2}


def test_an_annotation_of_names_already_bound_is_evaluated_at_once(tmp_path: Path) -> None:
    text = ("import dataclasses\nimport torch.nn as nn\n\nclass Dims:\n    WIDTH = 5\n\n"
            "@dataclasses.dataclass\nclass C:\n    d: Dims = None\n\nDims.WIDTH = 7\n"
            "model = nn.Linear(dataclasses.fields(C)[0].type.WIDTH, 2)\n")
    got, _ = analysed(tmp_path, text)
    assert got == {"model": 7 * 2 + 2}  # the class itself (its attribute changed since)
    text = text.replace("d: Dims = None", "d: 'Dims' = None").replace("dataclasses.fields(C)[0].type.WIDTH", "len(dataclasses.fields(C)[0].type)")
    got, _ = analysed(tmp_path / "s", text)
    assert got == {"model": 4 * 2 + 2}  # a string annotation stays its text ("Dims")
