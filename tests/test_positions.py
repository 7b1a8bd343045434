"""engine/source.py: a node's location inside a statement line comes from that line's code
alone, and is the one libcst's PositionProvider gives from the whole file."""

from __future__ import annotations

import pathlib

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from tests.support.libsources import TORCHVISION_VERSION, library_source
from vramlint.engine.source import SourceModule
from vramlint.engine.walk import iter_nodes

ODD = '''\
# a header comment

import os ;  x = os.sep  # two statements on a line
def f(a,
      b):  # a comment
\tif a:  # a tab
\t\t# a comment line before a statement
\t\ty = (a +
\t\t     b)   ; z = "é" + "ü" * 2
\t\tw = """a
multi-line " string""" + 'x'
\treturn [i for i in \\
\t        range(3)]

class C:
    n: int = 3   # annotated
    def g(self): return self.n ; pass

    # trailing comment, then blank lines


v = f(1, 2) if True else {"k": [1, 2,
                                 3]}
'''


def _whole_file(tree: cst.Module) -> dict[cst.CSTNode, object]:
    return dict(MetadataWrapper(tree, unsafe_skip_copy=True).resolve(PositionProvider))


def _check(path: str, text: str) -> int:
    """Every node of every statement line: the line's own location equals the whole file's."""
    src = SourceModule(path, text, "m")
    assert src.tree is not None
    index = src._statement_index()
    expected = _whole_file(src.tree)
    checked = 0
    for small_id, line in index.line_of.items():
        small = next(s for s in line.body if id(s) == small_id)
        for node in iter_nodes(small):
            rng = src._line_position(index, node)
            assert rng == expected[node], (path, type(node).__name__, rng, expected[node])
            checked += 1
    return checked


def test_odd_layouts() -> None:
    assert _check("odd.py", ODD) > 60


def test_torchvision_models() -> None:
    root = pathlib.Path(library_source("torchvision", TORCHVISION_VERSION)) / "torchvision" / "models"
    files = sorted(root.glob("*.py"))[:8]
    if not files:
        pytest.skip("no torchvision source")
    assert sum(_check(str(f), f.read_text(encoding="utf-8")) for f in files) > 5000


def test_location_of_a_call_inside_a_statement() -> None:
    src = SourceModule("m.py", "import torch\n\n\ndef f():\n    y = 1 + \\\n        torch.zeros(3)\n", "m")
    assert src.tree is not None
    call = next(n for n in iter_nodes(src.tree) if type(n) is cst.Call)
    loc = src.location_of(call)
    assert (loc.line, loc.column, loc.end_line, loc.end_column) == (6, 8, 6, 22)
    assert src._positions is None  # the whole file's positions were never computed
