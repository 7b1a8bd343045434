"""Constructs seen in public model code, each checked against real torch: a model whose size
depends on the construct must get torch's exact count, not "unknown" (issue 12's list)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import vramlint

torch = pytest.importorskip("torch")

HEADER = """\
import keyword
from collections import OrderedDict
import torch
import torch.nn as nn


class Config:
    depth = 3

    def blocks(self):
        return self.depth

"""

# Each expression gives an int; the model is `nn.Linear(EXPR + 1, 2)`.
EXPRESSIONS = {
    "dir-of-a-class-and-instance": "len([n for n in dir(Config()) if not n.startswith('_')]) + ('blocks' in dir(Config))",
    "keyword": "keyword.iskeyword('for') + len(keyword.kwlist) // 10",
    "ordered-dict-keys": "len(list(OrderedDict([('a', 1), ('b', 2)]).keys())) + len(OrderedDict(x=1).items())",
    "linspace-split-tolist": "len(torch.linspace(0, 0.1, 12).split([4, 8])[1].tolist()) "
                             "+ int(torch.linspace(0, 0.1, 12).split([4, 8])[1].tolist()[-1] * 100)",
    "generator": "int(torch.Generator().manual_seed(0) is not None)",
    "unbind": "len(torch.arange(6).reshape(2, 3).unbind(1)) + int(torch.arange(6).reshape(2, 3).unbind(1)[2][1])",
    "tensor-from-a-list": "torch.Tensor([1.0, 2.0, 3.0]).shape[0] + torch.Tensor(2, 5).shape[1]",
    "outer": "torch.outer(torch.arange(3), torch.arange(4)).shape[1] + int(torch.outer(torch.arange(3), torch.arange(4))[2, 3])",
    "arange-none-index": "torch.arange(5)[:, None].shape[0] + torch.arange(5)[None].shape[1]",
}


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_construct_gives_torchs_count(name: str, tmp_path: Path) -> None:
    text = HEADER + f"m = nn.Linear(int({EXPRESSIONS[name]}) + 1, 2)\n"
    ns: dict[str, object] = {}
    exec(compile(text, "<model>", "exec"), ns)
    expected = sum(p.numel() for p in ns["m"].parameters())  # type: ignore[attr-defined]
    path = tmp_path / "model.py"
    result = vramlint.analyze_source(str(path), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert not m.unknowns, [u.reason for u in m.unknowns]
    assert m.params.total == expected


def test_dir_of_a_native_object_is_an_unknown_not_a_guess(tmp_path: Path) -> None:
    text = HEADER + "m = nn.Linear(len(dir(nn.Linear(2, 2))), 2)\n"
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert m.params.total is None
    assert any("dir() of Linear" in u.reason for u in m.unknowns)


def test_sequential_of_unknown_blocks_is_unknown_not_an_error(tmp_path: Path) -> None:
    """`nn.Sequential(*blocks)` with `blocks` from a module vramlint cannot read: the model is
    there, with an unknown count that says why (it raised TypeError before)."""
    text = "import torch.nn as nn\nfrom missingpkg import blocks\nm = nn.Sequential(*blocks)\n"
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert m.params.total is None and m.error is None
    assert any("missingpkg" in u.reason for u in m.unknowns)
    assert not result.warnings


# ------------------------------------------------------------------ undecidable conditions
# Random small programs whose conditions vramlint cannot decide (`cond(k)` asks the file system).
# CPython runs each program under every truth assignment of its conditions; whenever vramlint
# gives an exact count it must be the count of every assignment that runs: an undecidable branch
# is merged or makes the result unknown, never silently dropped.
def _block(rng: random.Random, depth: int, in_function: bool) -> list[str]:
    lines: list[str] = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["assign", "assign", "use", "call", "if", "raise", "pass"] + (["return"] if in_function else []))
        target = "a" if in_function else "x"
        if kind == "assign":
            lines.append(f"{target} = {rng.randint(1, 40)}")
        elif kind == "use":
            lines.append(f"{target} = {target} + {rng.randint(1, 5)}")
        elif kind == "call" and not in_function:
            lines.append(f"x = f({rng.randint(1, 30)})")
        elif kind == "if" and depth < 2:
            lines += _if(rng, depth + 1, in_function)
        elif kind == "raise":
            lines.append("raise ValueError('no')")
            break
        elif kind == "return":
            lines.append(f"return a + {rng.randint(1, 9)}")
            break
        else:
            lines.append("pass")
    return lines


def _if(rng: random.Random, depth: int, in_function: bool) -> list[str]:
    out = [f"if cond({rng.randint(0, 2)}):"] + ["    " + s for s in _block(rng, depth, in_function)]
    if rng.random() < 0.3:
        out += [f"elif cond({rng.randint(0, 2)}):"] + ["    " + s for s in _block(rng, depth, in_function)]
    if rng.random() < 0.5:
        out += ["else:"] + ["    " + s for s in _block(rng, depth, in_function)]
    return out


def _program(rng: random.Random) -> str:
    body = ["def f(a):"] + ["    " + s for s in _block(rng, 0, True)] + ["    return a", ""]
    body += [f"x = {rng.randint(1, 40)}"] + _block(rng, 0, False)
    body.append("m = nn.Linear(abs(x) % 50 + 1, 2)")
    return "\n".join(body) + "\n"


UNDECIDED_HEADER = "from pathlib import Path\nimport torch.nn as nn\n\n\ndef cond(k):\n    return Path(f'c{k}').exists()\n\n\n"


def _cpython_counts(program: str) -> set[int]:
    counts: set[int] = set()
    for bits in range(8):
        ns: dict[str, Any] = {"nn": torch.nn, "cond": lambda k, bits=bits: bool(bits >> k & 1)}
        try:
            exec(compile(program, "<program>", "exec"), ns)
        except (ValueError, NameError, UnboundLocalError):
            continue  # this path fails when run: no model to compare
        counts.add(sum(p.numel() for p in ns["m"].parameters()))
    return counts


def test_undecidable_conditions_never_give_a_wrong_exact_count(tmp_path: Path) -> None:
    rng = random.Random(5)
    exact = unknown = 0
    for i in range(120):
        program = _program(rng)
        counts = _cpython_counts(program)
        if not counts:
            continue
        text = UNDECIDED_HEADER + program
        result = vramlint.analyze_source(str(tmp_path / f"p{i}.py"), text)
        found = [r for r in result.models if r.name == "m"]
        if not found or found[0].params.total is None:
            unknown += 1
            continue
        exact += 1
        assert counts == {found[0].params.total}, f"vramlint {found[0].params.total}, CPython {counts}:\n{program}"
    # The merge keeps what every path agrees on: a good share of programs stays exact.
    assert exact >= 20 and unknown >= 5, (exact, unknown)


# ------------------------------------------------------------------ where models are found
SCRIPT = """\
import torch
import torch.nn as nn


def create():
    return nn.Linear(4, 4), nn.Sequential(nn.Linear(2, 2), nn.ReLU())


model_a, other = create()

with torch.device("meta"):
    meta_model = nn.Linear(8, 8)

try:
    guarded = nn.Conv2d(3, 4, 3)
except ImportError:
    guarded = None

if torch.cuda.is_available():
    cond_model = nn.Linear(3, 3)
else:
    cond_model = nn.Linear(3, 7)


def main():
    net = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 1))
    head = net[1]  # part of `net`: not a model of its own
    return None


if __name__ == "__main__":
    main_model = nn.Linear(6, 6)
    main()
"""


def test_models_in_blocks_tuples_and_the_main_block(tmp_path: Path) -> None:
    """Models bound by tuple targets, inside top-level `with`/`try`/`if` blocks, in the script's
    `if __name__ == "__main__":` block and as locals of the `main()` it calls, each counted as
    torch counts it; the `main()` locals taken from the same CPython run."""
    captured: dict[str, Any] = {}
    glb: dict[str, Any] = {"__name__": "__main__", "captured": captured}
    exec(compile(SCRIPT.replace("    return None\n", "    captured.update(locals())\n"), "<script>", "exec"), glb)

    def count(m: Any) -> int:
        return sum(p.numel() for p in m.parameters())

    expected = {name: count(glb[name]) for name in ("model_a", "other", "meta_model", "guarded", "main_model")}
    expected["main.net"] = count(captured["net"])
    result = vramlint.analyze_source(str(tmp_path / "script.py"), SCRIPT)
    got = {m.name: m.params.total for m in result.models}
    assert {k: got.get(k) for k in expected} == expected
    assert got.get("cond_model") is None  # the two branches build different layers: unknown, not a guess
    assert "main.head" not in got and "create" not in got


DESCRIPTORS = """\
import torch.nn as nn


class classproperty(property):  # transformers 5.x `sub_configs`
    def __get__(self, obj, objtype=None):
        return self.fget(objtype)


class Config:
    width = 8

    @classproperty
    def sub_configs(cls):
        return {"a": cls.width, "b": 2 * cls.width}

    @property
    def double(self):
        return 2 * self.width

    half = property(lambda self: self.width // 2)


class Named:
    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        return len(self.name) if obj is not None else 100


class UsesNamed:
    abcd = Named()


n = (sum(Config.sub_configs.values()) + sum(Config().sub_configs.values()) + Config().double + Config().half
     + UsesNamed().abcd + UsesNamed.abcd + isinstance(Config.__dict__["half"], property)
     + isinstance(Config.__dict__["sub_configs"], property))
m = nn.Linear(n, 2)
"""


def test_descriptors_behave_as_in_cpython(tmp_path: Path) -> None:
    """A `property` subclass with its own `__get__`, `@property`, `property(f)`, a descriptor with
    `__set_name__` and `__get__`, on the class and on instances: CPython's values."""
    _assert_exact_as_cpython(DESCRIPTORS, tmp_path)


def _assert_exact_as_cpython(text: str, tmp_path: Path) -> None:
    """`m` of `text` counted exactly, as CPython with torch builds it."""
    ns: dict[str, Any] = {}
    exec(compile(text, "<model>", "exec"), ns)
    result = vramlint.analyze_source(str(tmp_path / "model.py"), text)
    (m,) = [r for r in result.models if r.name == "m"]
    assert not m.unknowns, [u.reason for u in m.unknowns]
    assert m.params.total == sum(p.numel() for p in ns["m"].parameters())


PATHS = """\
from pathlib import Path
import torch.nn as nn

cfg = Path("configs") / "model_small.yaml"
root = "/data" / Path("runs") / "exp1"
n = (len(cfg.stem) + (20 if cfg.suffix == ".yaml" else 10) + len(str(cfg.parent / "x")) + len(cfg.parts)
     + len(root.parts) + (cfg == Path("configs/model_small.yaml")) + (cfg == "configs/model_small.yaml")
     + len(cfg.with_suffix(".json").name) + len(f"{root}") + cfg.is_absolute() + len(cfg.relative_to("configs").name))
m = nn.Linear(n, 2)
"""


def test_pathlib_is_pure_paths(tmp_path: Path) -> None:
    """What code computes from a path's text is CPython's; the file system is never asked."""
    _assert_exact_as_cpython(PATHS, tmp_path)
    text = "from pathlib import Path\nimport torch.nn as nn\nm = nn.Linear(4 if Path('w.pt').exists() else 5, 2)\n"
    (m,) = [r for r in vramlint.analyze_source(str(tmp_path / "fs.py"), text).models if r.name == "m"]
    assert m.params.total is None and any("file system is not read" in u.reason for u in m.unknowns)
