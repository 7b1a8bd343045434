"""The language server keeps unchanged classes' results across edits (analysis/reuse.py): every
version's results with reuse must be those of a fresh analysis of the same text, locations
included, over random edits of real files and of a file written to trip the reuse up (helpers,
constants, mutable globals, base classes, call sites, class attributes set by another class)."""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator

import pytest
from benchmarks.lsp_latency import big_file

from tests.support.fuzz import compiles
from tests.support.libsources import TORCHVISION_VERSION, library_source
from vramlint.analysis import api, reuse
from vramlint.render.json_output import file_json
from vramlint.settings import Settings

TRICKY = '''\
import torch
from torch import nn

WIDTH = 64
LAYERS = [32, 64]


def make(n):
    return nn.Linear(n, n)


class Uses(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(WIDTH, WIDTH)


class UsesList(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(LAYERS[0], LAYERS[-1])


class Helper(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = make(WIDTH)


class Base(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.fc = nn.Linear(d, getattr(Base, "extra", d))


class Child(Base):
    def __init__(self):
        super().__init__(8)
        self.out = nn.Linear(8, 2)


class Called(nn.Module):
    def __init__(self, n=3):
        super().__init__()
        self.fc = nn.Linear(n, n)


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 20)
        self.norm = nn.LayerNorm(20)


class Composite(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Uses()
        self.b = Child()
'''

# Statements an edit inserts at the top level: classes that call others with arguments, set
# another class's attribute, mutate a global, rebind a name; module-level code, a script's call
# of a model (which gives its class inputs), a factory.
NEW_STATEMENTS = [
    "class New{n}(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.c = Called(7)\n",
    "class Setter{n}(nn.Module):\n    def __init__(self):\n        super().__init__()\n        Base.extra = 3\n"
    "        self.fc = nn.Linear(2, 2)\n",
    "class Grows{n}(nn.Module):\n    def __init__(self):\n        super().__init__()\n        LAYERS.append(8)\n"
    "        self.fc = nn.Linear(2, 2)\n",
    "class Plain(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(3, 3)\n",
    "class Body{n}(nn.Module):\n    size = WIDTH * 2\n\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = nn.Linear(self.size, 1)\n",
    "net = Plain()\nout = net(torch.randn(2, 10))\n",
    "def factory():\n    return Uses()\n",
    'if __name__ == "__main__":\n    WIDTH = Plain().fc.out_features\n',
    "def main():\n    global WIDTH\n    WIDTH = Plain().fc.in_features\n\n\nmain()\n",
    "WIDTH = 65\n",
    "LAYERS.append(16)\n",
    "called = Called(9)\n",
    "def make(n):\n    return nn.Linear(n, n + 1)\n",
    "# a comment\n",
    "\n",
]


def _statements(text: str) -> list[tuple[int, int]]:
    """(start, end) line indexes of the top-level statements of `text`."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line[:1] not in ("", " ", "\t", "\n", "#", ")")]
    return [(a, b) for a, b in zip(starts, [*starts[1:], len(lines)])]


def _edit(text: str, rng: random.Random, n: int) -> str:
    """One editor-like change: a number inside a class changed, a statement inserted (a class,
    module-level code, a blank line or comment: lines move), a class deleted."""
    lines = text.splitlines(keepends=True)
    spans = _statements(text)
    classes = [(a, b) for a, b in spans if lines[a].startswith("class ")]
    op = rng.random()
    if op < 0.45 and classes:
        a, b = rng.choice(classes)
        numbered = [i for i in range(a, b) if re.search(r"\d", lines[i]) and not lines[i].startswith("class ")]
        if numbered:
            i = rng.choice(numbered)
            lines[i] = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), lines[i], count=1)
            return "".join(lines)
    if op < 0.85 or not classes:
        a, _ = rng.choice(spans[1:] or spans)
        lines.insert(a, rng.choice(NEW_STATEMENTS).format(n=n) + "\n\n")
        return "".join(lines)
    a, b = rng.choice(classes)
    del lines[a:b]
    return "".join(lines)



def _versions(text: str, seed: int, count: int) -> Iterator[str]:
    rng = random.Random(seed)
    history = [text]
    for n in range(count):
        if rng.random() < 0.1 and len(history) > 2:  # undo: back to an earlier version
            text = history[rng.randrange(len(history) - 1)]
        else:
            text = _edit(text, rng, n)
        if compiles(text):
            history.append(text)
            yield text


def _json(path: str, text: str, settings: Settings) -> str:
    return json.dumps(file_json(api.analyze_source(path, text, settings), layers=True), sort_keys=True)


@pytest.fixture
def reusing() -> Iterator[None]:
    reuse.enable()
    try:
        yield
    finally:
        reuse.enable(False)
        reuse.forget()


@pytest.mark.parametrize("seed", range(3))
def test_results_with_reuse_are_fresh_results(tmp_path: object, reusing: None, seed: int) -> None:
    path = f"{tmp_path}/tricky_{seed}.py"
    kept = _compare_chain(path, [TRICKY, *_versions(TRICKY, seed, 30)], Settings(memory=True))
    assert kept > 10  # unchanged classes were kept (until a class set another's attribute): not vacuous


def _compare_chain(path: str, texts: list[str], settings: Settings) -> int:
    """Analyse each text with reuse, the analyses following one another as an editor's do, and
    afresh; the classes reuse kept in all. The fresh analysis is of a file of the same name in
    another folder, without reuse, so that it leaves the chain's versions alone."""
    folder, name = os.path.split(path)
    other = os.path.join(folder, "fresh", name)
    kept = 0
    for text in texts:
        reuse.enable()
        got = _json(path, text, settings)
        kept += reuse.last_kept
        reuse.enable(False)  # (an analysis without reuse keeps no version: the chain goes on)
        fresh = _json(other, text, settings).replace(json.dumps(other)[1:-1], json.dumps(path)[1:-1])
        reuse.enable()
        assert got == fresh, text
    return kept


def test_editor_benchmark_file(tmp_path: object, reusing: None) -> None:
    text = big_file(12)
    path = f"{tmp_path}/big.py"
    kept = _compare_chain(path, [text, *_versions(text, 7, 15)], Settings(memory=True))
    assert kept > 50


def test_torchvision_files(tmp_path: object, reusing: None) -> None:
    """Real model files, edited (classes with helpers, base classes, factories)."""
    tv = library_source("torchvision", TORCHVISION_VERSION)
    settings = Settings(memory=True, extra_paths=(str(tv),))
    for i, name in enumerate(("resnet.py", "squeezenet.py", "alexnet.py")):
        text = (tv / "torchvision" / "models" / name).read_text()
        _compare_chain(f"{tmp_path}/{name}", [text, *_versions(text, i, 8)], settings)


def test_changed_class_and_its_users_are_built_again(tmp_path: object, reusing: None) -> None:
    """A width changed in one class: that class and the class built from it change, the rest is
    kept, but for a class that reads a list (mutable: not kept)."""
    path = f"{tmp_path}/m.py"
    settings = Settings(memory=True)
    api.analyze_source(path, TRICKY, settings)
    edited = TRICKY.replace("nn.Linear(WIDTH, WIDTH)", "nn.Linear(WIDTH, 7)")
    fa = api.analyze_source(path, edited, settings)
    params = {m.name: m.params.total for m in fa.models}
    assert params["Uses"] == 64 * 7 + 7
    assert params["Composite"] == params["Uses"] + params["Child"]
    # Kept: Helper, Base, Child (built at its call in Composite), Called, Plain.
    assert reuse.last_kept == 5
    # Lines moved (a whole-file parse: every statement a new node of the same text): all but
    # UsesList kept, their locations the new version's.
    fa = api.analyze_source(path, "# a comment\n\n" + edited, settings)
    assert reuse.last_kept == 7
    assert {m.name: m.location.line for m in fa.models}["Plain"] == TRICKY.splitlines().index("class Plain(nn.Module):") + 3
    child = next(m for m in fa.models if m.name == "Child")
    assert child.construction == f"arguments of the call at line {edited.splitlines().index('        self.b = Child()') + 3}"


SETTER = """\
from torch import nn


class Base(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.fc = nn.Linear(d, getattr(Base, "extra", d))


class Setter(nn.Module):
    def __init__(self):
        super().__init__()
        Base.extra = 3
        self.fc = nn.Linear(2, 2)
"""


@pytest.mark.parametrize("reusing_classes", [False, True])
def test_the_same_text_again_is_analysed_as_at_first(tmp_path: object, reusing_classes: bool) -> None:
    """The editor analyses the same text again (its second pass, with the estimate; a save; a
    settings change): a build that set a class attribute must not change that analysis, as it
    would on the module the first one built on (Base read `extra` set by Setter's build)."""
    reuse.enable(reusing_classes)
    try:
        path = f"{tmp_path}/m.py"
        counts = [{m.name: m.params.total for m in api.analyze_source(path, SETTER, Settings(memory=memory)).models}
                  for memory in (False, True, False)]
    finally:
        reuse.enable(False)
        reuse.forget()
    assert counts == [{"Base": 8 * 8 + 8, "Setter": 6}] * 3
