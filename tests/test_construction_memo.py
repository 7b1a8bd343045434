"""Repeated constructions built once (engine/construction_memo.py): a repeat of `Block(64)` is a copy
of an earlier one's result only where Python would build the same thing again.

Each case below is a construction that a memo keyed by the arguments alone would get wrong (the
third `Block(4)`, the first that is a copy, differs from the second in real torch); each is run
with the memo on and off and checked against real torch (tests/test_evaluator.py's harness). The rest checks that the memo
is used where it should be (the repeats of torchvision's blocks) and changes no output at all:
whole-file JSON with layers and locations, memory estimates included, on/off, for real model
files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vramlint
from tests.test_evaluator import Case, run_case
from vramlint.engine import construction_memo
from vramlint.render.json_output import file_json

pytest.importorskip("torch")

CASES: list[Case] = []


def case(id: str, files: dict[str, str] | str, *checks: str) -> None:
    CASES.append(Case(id, {"model.py": files} if isinstance(files, str) else files, list(checks)))


case("module_global_rebound_between_constructions", """
    import torch.nn as nn
    WIDTH = 8

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = nn.Linear(n, WIDTH)

    class Net(nn.Module):
        def __init__(self):
            global WIDTH
            super().__init__()
            self.a = Block(4)
            self.b = Block(4)
            WIDTH = 16
            self.c = Block(4)

    model = Net()
""", "model")

case("global_list_appended_by_the_construction", """
    import torch.nn as nn
    made = []

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            made.append(n)
            self.fc = nn.Linear(n, len(made))

    model = nn.Sequential(Block(4), Block(4), Block(4))
""", "model")

case("class_attribute_counter", """
    import torch.nn as nn

    class Block(nn.Module):
        count = 0

        def __init__(self, n):
            super().__init__()
            Block.count += 1
            self.fc = nn.Linear(n, Block.count)

    model = nn.Sequential(Block(4), Block(4), Block(4))
""", "model")

case("class_attribute_list_read_through_self", """
    import torch.nn as nn

    class Block(nn.Module):
        registry = []

        def __init__(self, n):
            super().__init__()
            self.registry.append(n)
            self.fc = nn.Linear(n, len(self.registry))

    model = nn.Sequential(Block(4), Block(4), Block(4))
""", "model")

case("global_statement_in_the_constructor", """
    import torch.nn as nn
    step = 1

    class Block(nn.Module):
        def __init__(self, n):
            global step
            super().__init__()
            step += 1
            self.fc = nn.Linear(n, step)

    model = nn.Sequential(Block(4), Block(4), Block(4))
""", "model")

case("closure_rebound_between_constructions", """
    import torch.nn as nn

    def make():
        out = 2

        class Block(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.fc = nn.Linear(n, out)

        first, second = Block(4), Block(4)
        out = 5
        return nn.Sequential(first, second, Block(4))

    model = make()
""", "model")

# `k` in the comprehension is its own; the `k` after it is the module's.
case("comprehension_variable_named_like_a_global", """
    import torch.nn as nn
    k = 2

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            sizes = [k for k in range(3)]
            self.fc = nn.Linear(n, k + len(sizes))

    a, b = Block(4), Block(4)
    k = 5
    model = nn.Sequential(a, b, Block(4))
""", "model")

case("mutable_default_argument", """
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, n, seen=[]):
            super().__init__()
            seen.append(n)
            self.fc = nn.Linear(n, len(seen))

    model = nn.Sequential(Block(4), Block(4), Block(4))
""", "model")

case("first_object_changed_by_its_caller", """
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = nn.Linear(n, n)
            self.norm = nn.LayerNorm(n)

    first, second = Block(8), Block(8)
    for b in (first, second):
        b.fc = nn.Linear(8, 100)
        b.norm.weight.requires_grad_(False)
    del second.norm
    model = nn.Sequential(first, second, Block(8), Block(8))
""", "model")

case("module_attribute_set_between_constructions", {
    "sizes.py": """
        WIDTH = 3
    """,
    "model.py": """
        import torch.nn as nn
        import sizes

        class Block(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.fc = nn.Linear(n, sizes.WIDTH)

        a, b = Block(4), Block(4)
        sizes.WIDTH = 7
        model = nn.Sequential(a, b, Block(4))
    """,
}, "model")

case("global_dict_changed_in_place", """
    import torch.nn as nn
    CFG = {"width": 3}

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = nn.Linear(n, CFG["width"])

    a, b = Block(4), Block(4)
    CFG["width"] = 9
    model = nn.Sequential(a, b, Block(4))
""", "model")

case("counter_object_in_a_module", """
    import torch.nn as nn

    class Ids:
        def __init__(self):
            self.last = 0

        def take(self):
            self.last += 1
            return self.last

    ids = Ids()

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = nn.Linear(n, ids.take())

    model = nn.Sequential(Block(4), Block(4), Block(4))
""", "model")

case("inner_repeat_inside_outer_repeat", """
    import torch.nn as nn
    WIDTH = 4

    class Conv(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, WIDTH, 3)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = Conv(c)
            self.b = Conv(c)

    first = Block(2)
    WIDTH = 6
    model = nn.Sequential(first, Block(2), Conv(2))
""", "model")

# A hook that is a method of the block must be the copy's own: `self.copies` is the copy's.
case("forward_hook_bound_to_the_module", """
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = nn.Linear(n, n)
            self.copies = 1
            self.register_forward_hook(self._repeat)

        def forward(self, x):
            return self.fc(x)

        def _repeat(self, module, args, out):
            return torch.cat([out] * self.copies, dim=-1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Block(4)
            self.b = Block(4)
            self.c = Block(4)
            self.c.copies = 3
            y = self.c(torch.zeros(2, 4))
            self.head = nn.Linear(y.shape[-1], 1)

    model = Net()
""", "model")


@pytest.mark.parametrize("memo", [True, False], ids=["memo", "no-memo"])
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_repeated_constructions_match_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, c: Case,
                                            memo: bool) -> None:
    monkeypatch.setattr(construction_memo, "enabled", memo)
    run_case(tmp_path, c)


def _json(path: Path, memo: bool, monkeypatch: pytest.MonkeyPatch, **settings: object) -> str:
    monkeypatch.setattr(construction_memo, "enabled", memo)
    result = vramlint.analyze_file(str(path), vramlint.Settings(**settings))  # type: ignore[arg-type]
    return json.dumps(file_json(result, layers=True), indent=1, default=str)


def test_two_calls_of_one_block_keep_their_own_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "net.py"
    f.write_text(
        "import torch.nn as nn\n\n"
        "class Block(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(n, n)\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a = Block(8)\n"
        "        self.b = Block(8)\n"
    )
    on = _json(f, True, monkeypatch)
    assert on == _json(f, False, monkeypatch)
    rows = {r["path"]: r for m in json.loads(on)["models"] if m["name"] == "Net" for r in m["layers"]}
    assert rows["a"]["line"] == 11 and rows["b"]["line"] == 12, rows


def test_the_memo_is_used_for_repeated_blocks(tmp_path: Path) -> None:
    """It does work: ResNet's repeated bottlenecks are copies, and counted as before."""
    from vramlint.engine.construction_memo import ConstructionMemo

    hits = []
    original = ConstructionMemo._repeat

    def counting(self: ConstructionMemo, ev: object, entry: object) -> object:
        got = original(self, ev, entry)  # type: ignore[arg-type]
        hits.append(got is not None)
        return got

    f = tmp_path / "net.py"
    f.write_text(
        "import torch.nn as nn\n\n"
        "class Block(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(n, n)\n"
        "        self.norm = nn.LayerNorm(n)\n\n"
        "model = nn.Sequential(*[Block(16) for _ in range(6)])\n"
    )
    ConstructionMemo._repeat = counting  # type: ignore[method-assign]
    try:
        models = {m.name: m for m in vramlint.analyze_file(str(f)).models}
    finally:
        ConstructionMemo._repeat = original  # type: ignore[method-assign]
    assert hits.count(True) >= 5, hits  # (and the class `Block` itself, built at its call site)
    assert models["model"].params.total == 6 * (16 * 16 + 16 + 2 * 16)


def _torchvision_files() -> list[Path]:
    from tests.support.libsources import TORCHVISION_VERSION, library_source

    root = library_source("torchvision", TORCHVISION_VERSION)
    return sorted((root / "torchvision" / "models").glob("*.py"))


@pytest.mark.parametrize("name", ["resnet.py", "efficientnet.py", "regnet.py", "vision_transformer.py",
                                  "swin_transformer.py", "densenet.py", "convnext.py", "maxvit.py"])
def test_torchvision_output_unchanged(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model of the file, layer by layer with locations, and the memory estimates: the same
    with and without the memo."""
    path = next(p for p in _torchvision_files() if p.name == name)
    root = str(path.parents[2])
    assert _json(path, True, monkeypatch, extra_paths=(root,)) == _json(path, False, monkeypatch, extra_paths=(root,))


def test_quantized_weights_keep_their_packing_in_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4-bit weight copied (a repeated block, `copy.deepcopy`) is still a 4-bit weight: four
    blocks weigh four times one block, with the memo and without (no bitsandbytes installed:
    vramlint's own stub)."""
    f = tmp_path / "q.py"
    f.write_text(
        "import copy\nimport torch\nimport bitsandbytes as bnb\n\n"
        "class Block(torch.nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.fc = bnb.nn.Linear4bit(n, n, bias=False, compute_dtype=torch.bfloat16, quant_type='nf4')\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n\n"
        "one = torch.nn.Sequential(Block(1024))\n"
        "four = torch.nn.Sequential(Block(1024), Block(1024), Block(1024), copy.deepcopy(Block(1024)))\n"
    )
    settings = {"memory": True, "inputs": (vramlint.InputSpec((1024,), "bfloat16"),)}
    on = _json(f, True, monkeypatch, **settings)
    assert on == _json(f, False, monkeypatch, **settings)
    weights = {m["name"]: m["memory"]["bytes"]["weights"] for m in json.loads(on)["models"]}
    assert weights["four"] == 4 * weights["one"] < 4 * 1024 * 1024, weights  # packed: under a byte a value
