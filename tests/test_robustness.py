"""Bad input never crashes or hangs the engine, and each problem is reported where it is.

Syntax errors, undefined names, runaway recursion, import cycles, endless loops, huge numbers,
pathologically nested or long expressions, undecodable bytes and very large files: each must give
a located error or unknown, while the rest of the file (a valid `ok = nn.Linear(10, 5)` next to
the bad code) is still analysed exactly.

Every analysis runs in a worker thread with a deadline, so a hang in Python code fails the test
instead of blocking the run (no pytest-timeout needed). A hang inside libcst's native parser holds
the GIL and cannot be interrupted this way: the engine must avoid those up front (source.py).
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import pytest

import vramlint
from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.engine.source import MAX_CHAIN

DEADLINE = 60.0  # seconds; any hang fails well within CI limits
OK = "import torch.nn as nn\n\nok = nn.Linear(10, 5)\n"  # lines 1-3: a model that must stay at 55
OK_LINES = OK.count("\n")


def _guarded(fn, *args):  # type: ignore[no-untyped-def]
    """Run fn(*args) in a thread and fail (instead of blocking) if it takes over DEADLINE."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn, *args).result(timeout=DEADLINE)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"analysis did not finish within {DEADLINE:.0f}s")
    finally:
        pool.shutdown(wait=False)


def analyze(tmp_path: Path, text: str, name: str = "subject.py") -> FileAnalysis:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    settings = vramlint.Settings(extra_paths=(str(tmp_path),))
    return _guarded(vramlint.analyze_source, str(path), text, settings)  # type: ignore[no-any-return]


def analyze_bytes(tmp_path: Path, data: bytes, name: str = "subject.py") -> FileAnalysis:
    path = tmp_path / name
    path.write_bytes(data)
    settings = vramlint.Settings(extra_paths=(str(tmp_path),))
    return _guarded(vramlint.analyze_file, str(path), settings)  # type: ignore[no-any-return]


def model(result: FileAnalysis, name: str) -> ModelResult:
    found = [m for m in result.models if m.name == name]
    assert found, f"no model {name!r} among {[m.name for m in result.models]}"
    return found[0]


def assert_ok(result: FileAnalysis) -> None:
    """The valid model next to the bad code is still counted exactly."""
    ok = model(result, "ok")
    assert ok.params.total == 55, ok
    assert ok.error is None and not ok.unknowns


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in text")


def problems(m: ModelResult) -> list[tuple[str, int | None]]:
    """(reason, line) of a model's error and unknowns."""
    out = [(u.reason, u.location.line if u.location else None) for u in m.unknowns]
    if m.error is not None:
        out.insert(0, (m.error.reason, m.error.location.line if m.error.location else None))
    return out


def has_problem(m: ModelResult, words: str, line: int) -> bool:
    return any(words in reason and at == line for reason, at in problems(m))


def warned(result: FileAnalysis, words: str, line: int) -> bool:
    return any(words in w.reason and w.location is not None and w.location.line == line for w in result.warnings)


# ---------------------------------------------------------------------------------- syntax errors
@pytest.mark.parametrize(
    ("bad", "line", "words"),
    [
        ("def f(:\n    pass\n", 1, "invalid syntax"),
        ("x = (1,\ny = 2\n", 1, "never closed"),
        ("x = 1\n  y = 2\n", 2, "unexpected indent"),
        ("class A:\npass\n", 2, "expected an indented block"),
        ("x = 'abc\n", 1, "unterminated string"),
        ("x = $\n", 1, "invalid syntax"),
    ],
)
def test_syntax_error_is_located_where_python_would(tmp_path: Path, bad: str, line: int, words: str) -> None:
    text = OK + bad
    r = analyze(tmp_path, text)
    assert r.models == []
    assert len(r.errors) == 1
    err = r.errors[0]
    assert err.reason.startswith("syntax error") and words in err.reason, err
    assert err.location is not None and err.location.line == OK_LINES + line, err


def test_syntax_error_column(tmp_path: Path) -> None:
    r = analyze(tmp_path, OK + "def f(:\n    pass\n")
    loc = r.errors[0].location
    assert loc is not None and (loc.line, loc.column) == (OK_LINES + 1, 6)  # at the `:`


def test_null_byte_is_located(tmp_path: Path) -> None:
    r = analyze_bytes(tmp_path, OK.encode() + b"x = 1\n\ny = 2\x00\n")
    assert len(r.errors) == 1
    assert r.errors[0].location is not None and r.errors[0].location.line == OK_LINES + 3


# ---------------------------------------------------------------------------------- names
def test_undefined_name_is_an_unknown_where_it_is_used(tmp_path: Path) -> None:
    text = OK + "bad = nn.Linear(undefined_width, 5)\n"
    r = analyze(tmp_path, text)
    assert_ok(r)
    bad = model(r, "bad")
    assert bad.params.total is None
    assert has_problem(bad, "`undefined_width` is not defined", line_of(text, "undefined_width"))


def test_undefined_name_inside_a_model(tmp_path: Path) -> None:
    text = OK + (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a = nn.Linear(4, 4)\n"
        "        self.b = nn.Linear(HIDDEN, 4)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    net = model(r, "Net")
    assert net.params.total is None and net.params.known == 20 + 4  # b's bias is known
    assert has_problem(net, "`HIDDEN` is not defined", line_of(text, "HIDDEN"))


# ---------------------------------------------------------------------------------- huge numbers
def test_huge_layer_sizes_are_counted_exactly(tmp_path: Path) -> None:
    r = analyze(tmp_path, OK + "big = nn.Linear(10**12, 10**12)\nbigger = nn.Embedding(2**40, 2**40)\n")
    assert_ok(r)
    assert model(r, "big").params.total == 10**24 + 10**12
    assert model(r, "bigger").params.total == 2**80


def test_power_tower_does_not_hang(tmp_path: Path) -> None:
    text = OK + "x = 10**10**10\nbad = nn.Linear(x, 5)\nafter = nn.Linear(2, 3)\n"
    t = time.monotonic()
    r = analyze(tmp_path, text)
    assert time.monotonic() - t < 10
    assert_ok(r)
    assert model(r, "after").params.total == 9
    bad = model(r, "bad")
    assert bad.params.total is None
    assert has_problem(bad, "number too large", line_of(text, "10**10**10"))


@pytest.mark.parametrize(
    ("expr", "use", "words"),
    [
        ("'a' * 10**12", "len(x)", "too large"),
        ("[0] * 10**12", "len(x)", "too large"),
        ("list(range(10**12))", "len(x)", "too large"),
        ("sum(range(10**12))", "x", "too large"),
        ("1 << 10**12", "x", "too large"),
        ("len([i for i in range(10**12)])", "x", "budget"),
    ],
)
def test_astronomical_sequences_do_not_hang(tmp_path: Path, expr: str, use: str, words: str) -> None:
    text = OK + f"x = {expr}\nbad = nn.Linear({use}, 5)\nafter = nn.Linear(2, 3)\n"
    t = time.monotonic()
    r = analyze(tmp_path, text)
    assert time.monotonic() - t < 30
    assert_ok(r)
    assert model(r, "after").params.total == 9
    line = line_of(text, "x = ")
    # Either the value became an unknown that reaches the model, or the statement gave up (and said so).
    bad = [m for m in r.models if m.name == "bad"]
    reported = warned(r, words, line) or (bad and has_problem(bad[0], words, line))
    assert reported, (r.warnings, [problems(m) for m in bad])
    assert not bad or bad[0].params.total is None


def test_huge_sequence_in_a_model_is_a_located_unknown(tmp_path: Path) -> None:
    text = OK + (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        widths = list(range(10**12))\n"
        "        self.fc = nn.Linear(len(widths), 2)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    net = model(r, "Net")
    assert net.params.total is None
    assert has_problem(net, "too large", line_of(text, "range(10**12)"))


# ---------------------------------------------------------------------------------- recursion
RECURSIVE = """
def grow(n):
    return grow(n + 1)


def ping(n):
    return pong(n)


def pong(n):
    return ping(n)
"""


@pytest.mark.parametrize("call", ["grow(1)", "ping(1)"])
def test_runaway_recursion_at_module_level(tmp_path: Path, call: str) -> None:
    text = OK + RECURSIVE + f"bad = nn.Linear({call}, 5)\nafter = nn.Linear(2, 3)\n"
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert model(r, "after").params.total == 9
    # The statement gave up: the file says so, at the statement.
    assert warned(r, "call depth", line_of(text, f"bad = nn.Linear({call}")), r.warnings


@pytest.mark.parametrize(("call", "inner"), [("grow(1)", "return grow(n + 1)"), ("ping(1)", "return")])
def test_runaway_recursion_inside_a_model(tmp_path: Path, call: str, inner: str) -> None:
    text = OK + RECURSIVE + (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.fc = nn.Linear({call}, 2)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    net = model(r, "Net")
    assert net.params.total is None
    assert net.error is not None and "call depth" in net.error.reason
    loc = net.error.location
    assert loc is not None and OK_LINES < loc.line <= OK_LINES + RECURSIVE.count("\n")  # in the recursion


def test_model_constructing_itself(tmp_path: Path) -> None:
    text = OK + (
        "class Fractal(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "        self.inner = Fractal()\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    m = model(r, "Fractal")
    assert m.params.total is None
    assert m.error is not None and "call depth" in m.error.reason
    assert m.error.location is not None and m.error.location.line == line_of(text, "self.inner = Fractal()")


def test_recursion_with_a_base_case_is_evaluated(tmp_path: Path) -> None:
    text = OK + (
        "def depth(n):\n"
        "    return 0 if n == 0 else 1 + depth(n - 1)\n"
        "good = nn.Linear(depth(50), 2)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert model(r, "good").params.total == 50 * 2 + 2


# ---------------------------------------------------------------------------------- classes
def test_class_inheriting_from_itself_or_an_undefined_name(tmp_path: Path) -> None:
    text = OK + (
        "class Loop(Loop):\n"
        "    pass\n"
        "\n"
        "\n"
        "class Net(nn.Module, Missing):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "\n"
        "\n"
        "class Net2(Net2, nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(3, 3)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    # The unknown base could add parameters: the count is a lower bound, and the model says why.
    net = model(r, "Net")
    assert net.params.total is None and net.params.known == 6
    assert has_problem(net, "base class of Net is unknown", line_of(text, "Missing)"))
    net2 = model(r, "Net2")
    assert net2.params.total is None and net2.params.known == 12
    assert has_problem(net2, "base class of Net2 is unknown", line_of(text, "class Net2"))


def test_redefining_a_class_from_its_previous_self_is_fine(tmp_path: Path) -> None:
    text = OK + (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "\n"
        "\n"
        "class Net(Net):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.extra = nn.Linear(2, 1)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    nets = [m for m in r.models if m.name == "Net"]
    assert [m.params.total for m in nets] == [9]  # the second definition (the first is rebound)


# ---------------------------------------------------------------------------------- imports
def test_import_of_a_missing_module(tmp_path: Path) -> None:
    text = OK + (
        "import does_not_exist_xyz\n"
        "from nowhere_pkg_xyz import Block\n"
        "bad = nn.Linear(does_not_exist_xyz.WIDTH, 4)\n"
        "\n"
        "\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "        self.block = Block(8)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    bad = model(r, "bad")
    assert bad.params.total is None
    # Located at the import that failed, not unlocated.
    assert has_problem(bad, "`does_not_exist_xyz` not found", line_of(text, "import does_not_exist_xyz")), problems(bad)
    net = model(r, "Net")
    assert net.params.total is None and net.params.known == 6
    assert any("nowhere_pkg_xyz" in reason and at is not None for reason, at in problems(net)), problems(net)


def test_missing_module_location_is_per_importer(tmp_path: Path) -> None:
    """The loader caches a failed import; a second file must not be pointed at the first one."""
    first = OK + "import gone_module_xyz\nbad = nn.Linear(gone_module_xyz.N, 1)\n"
    analyze(tmp_path, first, "first.py")
    second = OK + "\n\nimport gone_module_xyz\nbad = nn.Linear(gone_module_xyz.N, 1)\n"
    r = analyze(tmp_path, second, "second.py")
    (reason, at), *_ = problems(model(r, "bad"))
    assert "gone_module_xyz" in reason
    loc = model(r, "bad").unknowns[0].location
    assert loc is not None and loc.path.endswith("second.py") and at == line_of(second, "import gone")


CYCLE_A = """import torch.nn as nn
from cycle_b import B_WIDTH

A_WIDTH = 4


class NetA(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(A_WIDTH, B_WIDTH)
"""

CYCLE_B = """import torch.nn as nn
from cycle_a import A_WIDTH

B_WIDTH = 3


class NetB(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(B_WIDTH, A_WIDTH)
"""


def test_two_modules_importing_each_other(tmp_path: Path) -> None:
    (tmp_path / "cycle_b.py").write_text(CYCLE_B)
    r = analyze(tmp_path, CYCLE_A, "cycle_a.py")
    assert r.errors == []
    assert model(r, "NetA").params.total == 4 * 3 + 3
    r = analyze(tmp_path, CYCLE_B, "cycle_b.py")
    assert model(r, "NetB").params.total == 3 * 4 + 4


def test_import_cycle_on_a_name_defined_too_late(tmp_path: Path) -> None:
    """`a` needs `b.B` while `b` is still waiting for `a.A`: Python raises ImportError here."""
    (tmp_path / "late_b.py").write_text("from late_a import A\nB = A + 1\n")
    text = OK + "from late_b import B\nA = B + 1\nbad = nn.Linear(A, 2)\n"
    r = analyze(tmp_path, text, "late_a.py")
    assert_ok(r)
    bad = [m for m in r.models if m.name == "bad"]
    if bad:  # either an unknown count naming the cycle, or the statement's failure
        assert bad[0].params.total is None
        assert any(at is not None for _, at in problems(bad[0])), problems(bad[0])
    else:
        assert r.warnings, "the failed statement must be reported"


def test_three_module_cycle_of_star_imports(tmp_path: Path) -> None:
    (tmp_path / "ring_b.py").write_text("from ring_c import *\nB = 2\n")
    (tmp_path / "ring_c.py").write_text("from ring_a import *\nC = 3\n")
    text = OK + "from ring_b import *\nnet = nn.Linear(B, C)\n"
    r = analyze(tmp_path, text, "ring_a.py")
    assert_ok(r)
    assert model(r, "net").params.total == 2 * 3 + 3


def test_syntax_error_in_an_imported_module(tmp_path: Path) -> None:
    (tmp_path / "broken_helper.py").write_text("WIDTH = 8\n\n\ndef broken(:\n    pass\n")
    text = OK + (
        "from broken_helper import WIDTH\n"
        "import broken_helper\n"
        "bad = nn.Linear(WIDTH, 2)\n"
        "bad2 = nn.Linear(broken_helper.WIDTH, 2)\n"
    )
    r = analyze(tmp_path, text)
    assert r.errors == []  # the importer itself is fine
    assert_ok(r)
    for name, needle in [("bad", "from broken_helper"), ("bad2", "broken_helper.WIDTH")]:
        m = model(r, name)
        assert m.params.total is None
        (reason, at), *_ = problems(m)
        # Names the real cause (the syntax error and where it is), not "has no attribute".
        assert "syntax error" in reason and "broken_helper.py:4" in reason, reason
        assert at == line_of(text, needle)


# ---------------------------------------------------------------------------------- endless loops
def test_endless_loop_at_module_level(tmp_path: Path) -> None:
    text = OK + "while True:\n    pass\nafter = nn.Linear(2, 3)\n"
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert model(r, "after").params.total == 9  # statements after the loop still run
    assert warned(r, "budget", line_of(text, "while True")), r.warnings


def test_endless_loop_inside_a_model(tmp_path: Path) -> None:
    text = OK + (
        "class Spin(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "        n = 0\n"
        "        while n >= 0:\n"
        "            n += 1\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    spin = model(r, "Spin")
    assert spin.params.total is None
    assert spin.error is not None and "budget" in spin.error.reason
    assert spin.error.location is not None and spin.error.location.line == line_of(text, "while n >= 0")


def test_endless_for_over_an_endless_generator(tmp_path: Path) -> None:
    text = OK + (
        "import itertools\n"
        "total = 0\n"
        "for i in itertools.count():\n"
        "    total += i\n"
        "after = nn.Linear(2, 3)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert model(r, "after").params.total == 9


def test_endless_generator_consumed_at_module_level(tmp_path: Path) -> None:
    text = OK + (
        "def forever():\n"
        "    while True:\n"
        "        yield 1\n"
        "xs = list(forever())\n"
        "after = nn.Linear(2, 3)\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert model(r, "after").params.total == 9
    assert warned(r, "budget", line_of(text, "xs = list")), r.warnings


def test_huge_parameter_tensor_is_counted_exactly(tmp_path: Path) -> None:
    text = OK + (
        "import torch\n"
        "class Big(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.w = nn.Parameter(torch.empty(10**12, 10**12))\n"
    )
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert model(r, "Big").params.total == 10**24


# ---------------------------------------------------------------------------------- deep nesting
def test_deeply_nested_parentheses(tmp_path: Path) -> None:
    depth = 1000
    text = OK + "x = " + "(" * depth + "4" + ")" * depth + "\nm = nn.Linear(x, 1)\nafter = nn.Linear(2, 3)\n"
    r = analyze(tmp_path, text)
    assert r.errors == []
    assert_ok(r)
    assert model(r, "after").params.total == 9
    m = model(r, "m")
    # CPython itself refuses more than 200 nested brackets; either the value or a located unknown.
    assert m.params.total == 5 or has_problem(m, "nested", line_of(text, "x = ((")), problems(m)


@pytest.mark.parametrize("opener", ["[", "{", "f(", "[[", "(lambda: "])
def test_deeply_nested_brackets(tmp_path: Path, opener: str) -> None:
    closer = {"[": "]", "{": "}", "f(": ")", "[[": "]]", "(lambda: ": ")"}[opener]
    depth = 1000
    text = OK + "def f(v):\n    return v\n" + "x = " + opener * depth + "4" + closer * depth + "\nm = nn.Linear(2, 3)\n"
    t = time.monotonic()
    r = analyze(tmp_path, text)
    assert time.monotonic() - t < 30
    assert r.errors == []
    assert_ok(r)
    assert model(r, "m").params.total == 9
    assert warned(r, "nested", line_of(text, "x = ")), r.warnings


def test_moderately_nested_expressions_are_evaluated(tmp_path: Path) -> None:
    depth = 150  # within CPython's limit of 200 nested brackets
    text = OK + (
        "def f(v):\n    return v\n"
        f"x = {'f(' * depth}4{')' * depth}\n"
        f"y = len({'[' * depth}0{']' * depth})\n"
        "m = nn.Linear(x, y)\n"
    )
    r = analyze(tmp_path, text)
    assert r.warnings == []
    assert_ok(r)
    assert model(r, "m").params.total == 4 * 1 + 1


def test_long_chain_of_additions(tmp_path: Path) -> None:
    terms = 50_000
    text = OK + "x = " + "+".join(["1"] * terms) + "\nm = nn.Linear(x, 1)\nafter = nn.Linear(2, 3)\n"
    t = time.monotonic()
    r = analyze(tmp_path, text)
    assert time.monotonic() - t < 30
    assert r.errors == []
    assert_ok(r)
    assert model(r, "after").params.total == 9
    line = line_of(text, "x = 1+1")
    assert warned(r, "too long", line), r.warnings
    m = model(r, "m")
    assert m.params.total is None and has_problem(m, "too long", line), problems(m)


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        (" + ".join(["(1)"] * 20_000), "too long"),
        ("(" + " +\n ".join(["1"] * 20_000) + ")", "too long"),  # spread over many lines
        ("a" + ".b" * 20_000, "too long"),
        ("f" + "()" * 20_000, "too long"),
        ("-" * 20_000 + "1", "too long"),
        (" ** ".join(["1"] * 20_000), "too long"),
        ("lambda: " * 5_000 + "1", "nested"),
        ("1 if f else " * 5_000 + "2", "nested"),
        ("not " * 5_000 + "f", "nested"),
        # one level a line, inside one pair of brackets (libcst took minutes on 20,000, or crashed)
        ("(" + "lambda:\n " * 5_000 + "1)", "nested"),
        ("(" + "1 if f else\n " * 5_000 + "2)", "nested"),
        ("(" + "not\n " * 5_000 + "f)", "nested"),
    ],
    ids=["parenthesised-terms", "multi-line", "attributes", "calls", "unary", "power", "lambdas",
         "conditionals", "nots", "lambdas-multi-line", "conditionals-multi-line", "nots-multi-line"],
)
def test_long_chains_do_not_hang(tmp_path: Path, expr: str, words: str) -> None:
    """libcst's parser is quadratic on these (minutes, holding the GIL: no deadline can stop it)."""
    text = OK + "def f():\n    return f\nx = " + expr + "\nafter = nn.Linear(2, 3)\n"
    t = time.monotonic()
    r = analyze(tmp_path, text)
    assert time.monotonic() - t < 30
    assert r.errors == []
    assert_ok(r)
    assert model(r, "after").params.total == 9
    assert warned(r, words, line_of(text, "x = ")), r.warnings


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("(" + " +\n ".join(["1"] * (MAX_CHAIN + 2)) + ")", "too long"),
        ("not " * (MAX_CHAIN + 1) + "f", "nested"),
    ],
    ids=["operators", "keywords"],
)
def test_expressions_just_over_the_limits_in_a_small_file_are_found(tmp_path: Path, expr: str, words: str) -> None:
    """One past the limits on operators and on keywords, in a file with little else: the cheap
    tests that spare most files the token scan (counts of characters over the whole text) must
    not spare these."""
    text = OK + "def f(v=0):\n    return v\nx = " + expr + "\nafter = nn.Linear(2, 3)\n"
    r = analyze(tmp_path, text)
    assert r.errors == []
    assert model(r, "after").params.total == 9
    assert warned(r, words, line_of(text, "x = ")), r.warnings


@pytest.mark.parametrize(
    ("code", "target"),
    [
        ("def g(a={deep}):\n    return 1\n", "g"),  # a default, not the parameter list
        ("class C(dict({deep})):\n    pass\n", "C"),  # a base class
        ("@f({deep})\ndef h():\n    return 1\n", "h"),  # a decorator
        ("y = f({deep}).real + 1\n", "y"),  # a call with more after it
    ],
    ids=["default", "base", "decorator", "call"],
)
def test_deep_nesting_in_headers_keeps_the_file_parsable(tmp_path: Path, code: str, target: str) -> None:
    deep = "[" * 700 + "1" + "]" * 700
    text = OK + "def f(v):\n    return v\n" + code.format(deep=deep) + "after = nn.Linear(2, 3)\n"
    r = analyze(tmp_path, text)
    assert r.errors == []
    assert_ok(r)
    assert model(r, "after").params.total == 9
    assert warned(r, "nested", line_of(text, deep[:50])), r.warnings


def test_valid_python_beyond_the_parser_is_a_clear_error(tmp_path: Path) -> None:
    text = OK + "x = " + " ".join(['"a"'] * 5_000) + "\n"
    r = analyze(tmp_path, text)
    if r.errors:  # libcst's parser gives up on thousands of implicitly concatenated strings
        assert "Python accepts it" in r.errors[0].reason
        assert r.errors[0].location is not None
    else:
        assert_ok(r)


def test_long_but_reasonable_chain_is_evaluated(tmp_path: Path) -> None:
    text = OK + "x = " + " + ".join(["1"] * 500) + "\nm = nn.Linear(x, 1)\n"
    r = analyze(tmp_path, text)
    assert r.warnings == []
    assert model(r, "m").params.total == 500 + 1


def test_long_flat_literals_are_not_mistaken_for_chains(tmp_path: Path) -> None:
    items = ", ".join(f"cfg.a{i} + 1" for i in range(5_000))
    text = OK + f"WIDTHS = [{items}]\nm = nn.Linear(len([{', '.join(['1'] * 5000)}]), 1)\n"
    r = analyze(tmp_path, text)
    assert r.errors == [] and not any("too long" in w.reason for w in r.warnings)
    assert model(r, "m").params.total == 5001


def test_nested_code_below_the_limit_after_a_pathological_line(tmp_path: Path) -> None:
    """Line numbers after an elided expression are unchanged."""
    text = OK + "x = [" + "+".join(["1"] * 30_000) + ",\n 2]\nbad = nn.Linear(undefined_thing, 1)\n"
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert has_problem(model(r, "bad"), "undefined_thing", line_of(text, "undefined_thing"))


def test_deeply_nested_function_definitions(tmp_path: Path) -> None:
    depth = 40
    body = ""
    for i in range(depth):
        body += "    " * i + f"def f{i}():\n"
    body += "    " * depth + "return 7\n"
    for i in reversed(range(1, depth)):
        body += "    " * i + f"return f{i}()\n"
    text = OK + body + "m = nn.Linear(f0(), 1)\n"
    r = analyze(tmp_path, text)
    assert_ok(r)
    assert model(r, "m").params.total == 8


def test_too_deeply_nested_function_definitions_is_a_located_syntax_error(tmp_path: Path) -> None:
    depth = 101  # CPython allows 100 levels of indentation
    body = "".join("    " * i + f"def f{i}():\n" for i in range(depth)) + "    " * depth + "return 1\n"
    r = analyze(tmp_path, OK + body)
    assert len(r.errors) == 1
    err = r.errors[0]
    assert "indentation" in err.reason
    assert err.location is not None and err.location.line == OK_LINES + depth  # the 101st level


# ---------------------------------------------------------------------------------- encodings
LATIN1 = "import torch.nn as nn\n\nok = nn.Linear(10, 5)\nname = 'caf\xe9'\nm = nn.Linear(len(name), 1)\n"


def test_latin1_without_a_coding_cookie(tmp_path: Path) -> None:
    r = analyze_bytes(tmp_path, LATIN1.encode("latin-1"))
    assert r.errors == []
    assert_ok(r)
    assert model(r, "m").params.total == 4 + 1  # the bad byte became one replacement character
    assert len(r.warnings) == 1
    w = r.warnings[0]
    assert "not valid utf-8" in w.reason
    assert w.location is not None and w.location.line == 4  # the line of the first bad byte


def test_latin1_with_a_coding_cookie(tmp_path: Path) -> None:
    data = ("# -*- coding: latin-1 -*-\n" + LATIN1).encode("latin-1")
    r = analyze_bytes(tmp_path, data)
    assert r.errors == [] and r.warnings == []
    assert_ok(r)
    assert model(r, "m").params.total == 5


def test_wrong_coding_cookie(tmp_path: Path) -> None:
    data = ("# coding: no-such-codec\n" + OK).encode()
    r = analyze_bytes(tmp_path, data)
    assert_ok(r)


def test_utf8_bom(tmp_path: Path) -> None:
    r = analyze_bytes(tmp_path, b"\xef\xbb\xbf" + LATIN1.encode("utf-8"))
    assert r.errors == [] and r.warnings == []
    assert_ok(r)
    assert model(r, "m").params.total == 5
    assert model(r, "ok").location.line == 3  # type: ignore[union-attr]


def test_bom_in_an_editor_buffer(tmp_path: Path) -> None:
    r = analyze(tmp_path, "\ufeff" + OK)
    assert r.errors == []
    assert_ok(r)


def test_unreadable_file(tmp_path: Path) -> None:
    r = _guarded(vramlint.analyze_file, str(tmp_path / "missing.py"))
    assert r.models == [] and len(r.errors) == 1
    assert "cannot read" in r.errors[0].reason and r.errors[0].location is not None


# ---------------------------------------------------------------------------------- size
def test_twenty_thousand_line_file(tmp_path: Path) -> None:
    lines = ["import torch.nn as nn", "", ""]
    n = 2_000
    for i in range(n):
        lines += [
            f"class Block{i}(nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
            f"        self.fc = nn.Linear({i % 7 + 1}, 3)",
            "",
            "    def forward(self, x):",
            "        return self.fc(x)",
            "",
            "",
        ]
    lines += ["model = nn.Sequential(Block0(), Block1999())"]
    text = "\n".join(lines) + "\n"
    assert text.count("\n") >= 18_000
    t = time.monotonic()
    r = analyze(tmp_path, text)
    elapsed = time.monotonic() - t
    assert r.errors == []
    assert len(r.models) == n + 1
    assert all(model(r, f"Block{i}").params.total == (i % 7 + 1) * 3 + 3 for i in range(0, n, 97))
    assert model(r, "model").params.total == 6 + (1999 % 7 + 1) * 3 + 3
    assert model(r, "Block1999").location.line == line_of(text, "class Block1999(")  # type: ignore[union-attr]
    assert elapsed < 30, f"{elapsed:.1f}s"


# ---------------------------------------------------------------------------------- trivial files
@pytest.mark.parametrize(
    "text",
    ["", "\n\n\n", "# only a comment\n# and another\n", '"""Only a docstring."""\n', "   ", "#!/usr/bin/env python"],
    ids=["empty", "blank-lines", "comments", "docstring", "spaces", "shebang-without-newline"],
)
def test_files_without_models(tmp_path: Path, text: str) -> None:
    r = analyze(tmp_path, text)
    assert r.errors == [] and r.warnings == [] and r.models == []


def test_empty_file_on_disk(tmp_path: Path) -> None:
    r = analyze_bytes(tmp_path, b"")
    assert r.errors == [] and r.warnings == [] and r.models == []


# ---------------------------------------------------------------- Python asking an Unknown's value
# Python's own operators ask a value's number or items (`"%.2f" % (u,)` calls float(), a starred
# element in a tuple iterates): on an Unknown that is an UnknownValueError, which escaped and
# aborted the whole analysis (issue 12, item 1). The expression is unknown instead.
PERCENT_FORMAT = """import torch.nn as nn
from not_installed import count_of

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        n = count_of(self)
        print("number of parameters: %.2fM" % (n / 1e6,))

net = Net()
n = count_of(net)
print("number of parameters: %.2fM" % (n / 1e6,))
"""


def test_percent_format_of_an_unknown_number(tmp_path: Path) -> None:
    r = analyze(tmp_path, PERCENT_FORMAT + OK)
    assert r.errors == []
    assert model(r, "net").params.total == 20  # the print in __init__ does not stop the construction
    assert_ok(r)


STARRED_TUPLE = """import torch.nn as nn
from not_installed import depth

class Net(nn.Module):
    def __init__(self, n):
        super().__init__()
        dims = (3, *((4,) * (n - 1)))
        print(dims)
        self.fc = nn.Linear(3, 4)

net = Net(depth)
dims = (3, *((4,) * (depth - 1)))
"""


def test_starred_unknown_in_a_tuple(tmp_path: Path) -> None:
    r = analyze(tmp_path, STARRED_TUPLE + OK)
    assert r.errors == []
    assert model(r, "net").params.total == 16
    assert_ok(r)


def test_in_place_percent_format_of_an_unknown(tmp_path: Path) -> None:
    """The same, by a statement rather than an expression (`s %= (u,)`)."""
    r = analyze(tmp_path, "from not_installed import n\ns = '%d'\ns %= (n,)\n" + OK)
    assert r.errors == []
    assert_ok(r)


# ---------------------------------------------------------------- a rule of vramlint that breaks
def test_a_rule_raising_a_python_error_costs_one_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python exception out of vramlint's own code (a layer rule meeting input it did not
    expect) is an unknown naming the error, not an aborted analysis of the whole file."""
    from vramlint.frontends.torch.catalog import FORWARD, parameter_free  # noqa: F401  (registers ReLU's rule)

    def broken(ev, m, a, k):  # type: ignore[no-untyped-def]
        return ()[0]  # an IndexError, as the padding rules raised on a 0-d input (issue 20)

    monkeypatch.setitem(FORWARD, "ReLU", broken)
    text = "import torch\nimport torch.nn as nn\n\nnet = nn.Sequential(nn.Linear(4, 4), nn.ReLU())\n" \
           "y = net(torch.zeros(2, 4))\n" + OK
    path = tmp_path / "subject.py"
    settings = vramlint.Settings(extra_paths=(str(tmp_path),), memory=True, batch_size=2)
    r = _guarded(vramlint.analyze_source, str(path), text, settings)
    assert r.errors == []
    net = model(r, "net")
    assert net.params.total == 20  # the construction did not need the rule
    assert any(u.reason.startswith("vramlint internal error: IndexError") for u in net.forward_unknowns)
    assert_ok(r)


# ---------------------------------------------------------------- wrong ranks in forward rules
# Forward rules given an input of a rank they do not take raised IndexError or ValueError out of
# vramlint (issue 20): it is a located shape mismatch, as torch raises a RuntimeError.
RANK_MODEL = """import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.layer = {layer}

    def forward(self, x):
        s = self.fc(x).sum()
        return {call}


net = Net()
"""


@pytest.mark.parametrize(("layer", "call"), [
    ("nn.ZeroPad2d(1)", "self.layer(s)"),
    ("nn.ReflectionPad3d(1)", "self.layer(s)"),
    ("nn.ConstantPad1d((1, 2), 0.0)", "self.layer(s)"),
    ("nn.Identity()", "F.pad(self.fc(x), (1, 1, 1))"),
    ("nn.PixelShuffle(2)", "self.layer(self.fc(x))"),
    ("nn.PixelUnshuffle(2)", "self.layer(s)"),
    ("nn.PixelShuffle(3)", "self.layer(self.fc(x).reshape(-1, 4, 2, 2))"),  # 4 channels: not a multiple of 9
    ("nn.GLU()", "self.layer(s)"),
    ("nn.MultiheadAttention(4, 2)", "self.layer(s, s, s)"),
    ("nn.Identity()", "torch.cat([self.fc(x), self.fc(x)], dim=2)"),
    ("nn.Identity()", "torch.cat([s, s])"),
    ("nn.Identity()", "torch.stack([self.fc(x), self.fc(x)], dim=4)"),
], ids=["zero-pad", "reflection-pad", "constant-pad", "F.pad-odd", "pixel-shuffle", "pixel-unshuffle",
        "pixel-shuffle-channels", "glu", "multihead-attention", "cat-dim", "cat-0d", "stack-dim"])
def test_forward_rule_on_an_input_of_the_wrong_rank(tmp_path: Path, layer: str, call: str) -> None:
    text = RANK_MODEL.format(layer=layer, call=call)
    path = tmp_path / "subject.py"
    settings = vramlint.Settings(extra_paths=(str(tmp_path),), memory=True, batch_size=2)
    r = _guarded(vramlint.analyze_source, str(path), text, settings)
    net = model(r, "net")
    assert net.error is None and net.params.total is not None
    mismatch = [u for u in net.forward_unknowns if u.reason.startswith("shape mismatch")]
    assert mismatch and mismatch[0].location is not None and mismatch[0].location.line == line_of(text, "return ")
    # One finding per code and position: the class `Net` and its instance `net` share this one.
    assert any(f.code == "VL201" and f.model in ("Net", "net") for f in r.findings)


# Keras layer arguments that Keras refuses (standardize_tuple) reached the shape rules, which
# divided by zero or zipped tuples of different lengths.
@pytest.mark.parametrize(("call", "message"), [
    ("layers.Conv2D(4, (3, 3), strides=(2,))(inputs)", "Conv2D: the `strides` argument must be a tuple of 2 integers"),
    ("layers.Conv2D(4, 3, dilation_rate=0)(inputs)", "Conv2D: the `dilation_rate` argument must be a tuple of 2"),
    ("layers.MaxPooling2D(0)(inputs)", "MaxPooling2D: the `pool_size` argument must be a tuple of 2 integers"),
    ("layers.AveragePooling2D(2, strides=0)(inputs)", "AveragePooling2D: the `strides` argument must be a tuple"),
    ("layers.UpSampling2D((2, 2, 2))(inputs)", "UpSampling2D: the `size` argument must be a tuple of 2 integers"),
    ("layers.ZeroPadding2D(padding=1e308)(inputs)", "ZeroPadding2D: `padding` should be an int, 2 ints or 2"),
    ("layers.Cropping2D(((1, 1), (1, 1), (1, 1)))(inputs)", "Cropping2D: `cropping` should be an int, 2 ints"),
    ("layers.Bidirectional(layers.GRU(4), backward_layer=layers.Nonexistent(4))", "Bidirectional: backward_layer: "),
    ("layers.Bidirectional(layers.GRU(4), backward_layer=4)", "Bidirectional: backward_layer must be a Keras layer"),
], ids=["conv-strides", "conv-dilation", "pool-size", "pool-strides", "upsampling-size", "padding-float",
        "cropping-pairs", "bidirectional-unknown-backward", "bidirectional-int-backward"])
def test_keras_layer_argument_that_keras_refuses(tmp_path: Path, call: str, message: str) -> None:
    text = f"import keras\nfrom keras import layers\n\ninputs = keras.Input(shape=(16, 16, 3))\nx = {call}\n" + OK
    r = analyze(tmp_path, text)
    refused = [w for w in r.warnings if message in w.reason]
    assert refused and refused[0].location is not None and refused[0].location.line == 5
    assert refused[0].reason.startswith("statement not evaluated: it raises ValueError")
    assert_ok(r)


def test_keras_attention_with_a_fractional_number_of_heads(tmp_path: Path) -> None:
    text = ("import keras\nfrom keras import layers\n\ninputs = keras.Input(shape=(16, 48))\n"
            "x = layers.MultiHeadAttention(num_heads=2.5, key_dim=8)(inputs, inputs)\n"
            "model = keras.Model(inputs, x)\n" + OK)
    r = analyze(tmp_path, text)
    assert any("[48, 2.5, 8] has a dimension that is not an int" in w.reason and w.location is not None
               and w.location.line == 6 for w in r.warnings)
    assert_ok(r)


def test_range_of_a_float_is_a_type_error(tmp_path: Path) -> None:
    """`n_layer = 1e308` then `range(n_layer)`: Python's TypeError, not a loop over 10**308 blocks
    that ran until the step budget (over a minute in the fuzz)."""
    text = "import torch.nn as nn\n\nn = 1e308\nblocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(n)])\n" + OK
    r = analyze(tmp_path, text)
    assert [(w.reason, w.location.line if w.location else None) for w in r.warnings] == [
        ("statement not evaluated: it raises TypeError: 'float' object cannot be interpreted as an integer", 4)]
    assert_ok(r)


# Keras layers on an input of fewer dimensions than their input_spec indexed it (IndexError,
# ZeroDivisionError): Keras's ValueError, located.
@pytest.mark.parametrize(("call", "rank"), [
    ("layers.ZeroPadding1D(1)(x)", 3),
    ("layers.Cropping1D(1)(x)", 3),
    ("layers.UpSampling1D(2)(x)", 3),
    ("layers.RepeatVector(2)(s)", 2),
    ("layers.Reshape((-1,))(s)", 1),
    ("layers.Attention()([x, x])", 3),
    ("layers.MultiHeadAttention(2, 4)(x, x)", 3),
    ("layers.Dot(1)([s, s])", 2),
], ids=["zero-padding", "cropping", "upsampling", "repeat-vector", "reshape", "attention", "multi-head", "dot"])
def test_keras_layer_on_an_input_of_too_low_a_rank(tmp_path: Path, call: str, rank: int) -> None:
    text = ("import keras\nfrom keras import layers\n\nx = keras.ops.zeros((2, 4))\ns = keras.ops.zeros(())\n"
            f"y = {call}\n" + OK)
    r = analyze(tmp_path, text)
    refused = [w for w in r.warnings if f"expected an input of rank {rank} or more" in w.reason]
    assert refused and refused[0].location is not None and refused[0].location.line == 6
    assert refused[0].reason.startswith("statement not evaluated: it raises ValueError: shape mismatch in")
    assert_ok(r)


# Tensor methods and functional calls the ways a deleted token or a changed number leaves them
# raised IndexError or ZeroDivisionError out of vramlint: Python's TypeError for a missing
# argument, a shape mismatch (VL201) or an unknown dim for what torch refuses.
ODD_CALL = """import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        x = torch.zeros(2, 2)
        y = {call}
        self.fc = nn.Linear(y.shape[-1], 4)


net = Net()
"""


@pytest.mark.parametrize(("call", "expected"), [
    ("x.transpose(1, )", "raises TypeError: transpose() missing a required argument"),
    ("x.add()", "raises TypeError: add() missing a required argument"),
    ("F.max_pool2d(x.reshape(1, 2, 2), 0)", "shape mismatch: max pooling: kernel size [0, 0], stride [0, 0]"),
    ("x.chunk(0)[0]", "shape mismatch: chunk expects a number of chunks above 0, got 0"),
    ("x.split(1, 5)[0]", "dim 5 out of range for a tensor of 2 dimensions"),
    ("x.sum().matmul(x)", "shape mismatch: matmul needs tensors of 1 dimension or more"),
    ("F.linear(x, x.sum())", "shape mismatch: F.linear with a weight of shape []"),
    ("F.adaptive_avg_pool2d(x.sum(), 1)", "shape mismatch: adaptive pooling expects at least 3 dimensions"),
    ("x.view_as(2)", "view_as of a non-tensor"),
], ids=["missing-dim", "missing-other", "pool-kernel-0", "chunk-0", "dim-out-of-range", "matmul-0d",
        "linear-0d-weight", "adaptive-pool-0d", "view-as-int"])
def test_tensor_call_left_odd_by_an_edit(tmp_path: Path, call: str, expected: str) -> None:
    r = analyze(tmp_path, ODD_CALL.format(call=call) + OK)
    net = model(r, "Net")
    if expected.startswith("raises"):
        assert net.error is not None and net.error.reason == expected
    else:  # the layer it sizes is unknown, and says why
        assert net.params.total is None and any(expected in u.reason for u in net.unknowns), problems(net)
    assert_ok(r)
