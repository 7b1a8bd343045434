"""Mutation testing: how many deliberate small breakages of the rules the fast tests catch.

A mutant is the source with one change a slip of the keyboard could make: a comparison flipped
(`<` / `<=`, `==` / `!=`, `in` / `not in`, `is` / `is not`), an arithmetic operator swapped (`+` / `-`,
`*` / `/`, `//` / `/`, `**` / `*`, also in `+=`...), `and` / `or`, a `not` dropped, an integer or
float constant plus one, `True` / `False`, a returned value replaced by `None`. Strings are not
mutated (most are messages), nor annotations. A mutant is *killed* when the module's tests fail
(or crash, or hang past the timeout); it *survives* when they pass. The score is killed / run.

Each mutant runs only the tests of its module (`GROUPS`, fastest first, stopping at the first
failure) against a copy of `server/` with the one change, in a child forked from a process that
already imported torch, pytest and libcst (not vramlint): no second of a mutant goes to imports.
The mutants are a seeded random sample when there are more than `--sample` per group (a full run
takes hours on two cores); the sample and the seed are printed, so that a run is repeatable.

    python benchmarks/mutation.py                      # every group, 25 mutants each
    python benchmarks/mutation.py --group findings --sample 0   # every mutant of one group
    python benchmarks/mutation.py --list               # count the mutants, run nothing
    python benchmarks/mutation.py --survivors-of before.log     # rerun only what survived

Linux (fork); run it nice (`nice -n 10`), it keeps a core busy. The result of a run is in
docs/benchmarks.md ("Mutation score").
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import os
import py_compile
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "server" / "vramlint"

# group -> (the source files mutated, the tests that judge them, fastest first).
SAVED = ["tests/test_rnn_attention.py::test_recurrent_saved_bytes_by_hand",
         "tests/test_rnn_attention.py::test_recurrent_reserve_scales_with_the_gates",
         "tests/test_rnn_attention.py::test_attention_saved_bytes_match_torch",
         "tests/test_rnn_attention.py::test_attention_weights_are_what_need_weights_costs",
         "tests/test_memory_saved.py"]
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "memory": (["memory/autograd_rules.py", "memory/tape.py", "memory/timeline.py", "memory/estimate.py",
                "memory/optimizers.py", "memory/devices.py"],
               ["tests/test_devices.py", "tests/test_optimizers.py", "tests/test_memory_inplace.py",
                "tests/test_memory_rules.py", *SAVED,
                "tests/test_explain.py", "tests/test_memory.py"]),
    "findings": (["analysis/findings.py"],
                 ["tests/test_findings.py", "tests/test_output_formats.py", "tests/test_output_consistency.py"]),
    "explain": (["render/explain.py"],
                ["tests/test_explain.py", "tests/test_memory.py::test_textbook_count_and_explain_command",
                 "tests/test_memory.py::test_question_network_step_by_step", "tests/test_cli_ci.py::test_explain"]),
    "catalog": ([f"frontends/torch/catalog/{f}" for f in ("__init__.py", "attention.py", "containers.py", "conv.py",
                                                           "embedding.py", "linear.py", "norm.py",
                                                           "parameter_free.py", "recurrent.py")],
                ["tests/test_catalog.py", "tests/test_containers.py", "tests/test_rnn_attention.py",
                 "tests/test_forward_shapes.py"]),
}

COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
}


# ---------------------------------------------------------------------- the mutants
@dataclass(frozen=True)
class Mutant:
    file: str  # relative to server/vramlint
    index: int  # the index-th mutable spot of the file (in ast.walk order)
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}"


def _skipped(tree: ast.Module) -> set[int]:
    """Nodes never mutated: annotations, docstrings, `if TYPE_CHECKING:` blocks."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.AnnAssign, ast.arg)):
            mark(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
        elif isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            mark(node)
    return skip


def _spots(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """(node, what the mutation does) for every mutable spot, in a fixed order."""
    skip = _skipped(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in COMPARE_SWAPS:
                    yield node, f"compare {i}: {type(op).__name__} -> {COMPARE_SWAPS[type(op)].__name__}"
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BINOP_SWAPS:
            yield node, f"{type(node.op).__name__} -> {BINOP_SWAPS[type(node.op)].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not x -> x"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            yield node, f"{node.value!r} -> {_constant(node.value)!r}"
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            yield node, "return x -> return None"


def _constant(v: int | float | bool) -> int | float | bool:
    return (not v) if isinstance(v, bool) else v + 1


def _apply(node: ast.AST, what: str) -> None:
    if isinstance(node, ast.Compare):
        i = int(what.split(":")[0].split()[1])
        node.ops[i] = COMPARE_SWAPS[type(node.ops[i])]()
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        node.op = BINOP_SWAPS[type(node.op)]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.Return):
        node.value = ast.Constant(None)
    elif isinstance(node, ast.Constant):
        node.value = _constant(node.value)


class _Not(ast.NodeTransformer):
    """`not x` -> `x` (a node replaced, not edited in place)."""

    def __init__(self, target: int) -> None:
        self.target = target

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if id(node) == self.target:
            return node.operand
        self.generic_visit(node)
        return node


def mutants_of(file: str) -> list[Mutant]:
    tree = ast.parse((PACKAGE / file).read_text())
    return [Mutant(file, i, getattr(n, "lineno", 0), what) for i, (n, what) in enumerate(_spots(tree))]


def mutated_source(m: Mutant) -> str:
    tree = copy.deepcopy(ast.parse((PACKAGE / m.file).read_text()))
    node, what = list(_spots(tree))[m.index]
    assert what == m.what, (m, what)
    if what == "not x -> x":
        tree = _Not(id(node)).visit(tree)
    else:
        _apply(node, what)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


# ---------------------------------------------------------------------- running the tests
@dataclass
class Outcome:
    mutant: Mutant | None
    status: str  # killed | survived | timeout | error (no tests ran)
    seconds: float


@dataclass
class GroupResult:
    name: str
    total: int
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, *status: str) -> int:
        return sum(o.status in status for o in self.outcomes)


def run_tests(tests: list[str], server: Path, timeout: float) -> tuple[str, float]:
    """The tests against the package in `server`, in a forked child; (status, seconds)."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: its own process group, so that a timeout also ends the servers it started
        os.setpgid(0, 0)
        try:
            _child(tests, server)
        finally:
            os._exit(3)
    deadline = start + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - start
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - start
    # pytest: 0 passed, 1 failed, 2 interrupted (a collection error: the mutant broke an import),
    # 5 nothing collected (a wrong test id: the run is broken, not the mutant).
    return {0: "survived", 5: "error"}.get(code, "killed"), seconds


def _child(tests: list[str], server: Path) -> None:
    import pytest

    os.chdir(ROOT)
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(server))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(server), str(ROOT)])  # the CLI / LSP subprocesses
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    # The mutant's package first: benchmarks/accuracy.py (imported by tests/test_memory.py) puts the
    # repository's server/ in front of sys.path, and a package imported after that would be the
    # unmutated one. Once imported, its submodules load from its own __path__, the mutant's.
    import vramlint  # noqa: F401
    code = pytest.main([*tests, "-x", "-q", "-p", "no:cacheprovider", "-W", "ignore"])
    os._exit(int(code))


class Workspace:
    """A copy of server/ where one file at a time is replaced by a mutant."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vramlint-mutation-"))
        shutil.copytree(ROOT / "server", self.dir / "server",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        self.server = self.dir / "server"
        for f in (self.server / "vramlint").rglob("*.py"):
            py_compile.compile(str(f), doraise=True)  # the unchanged modules load from bytecode

    def run(self, m: Mutant, tests: list[str], timeout: float) -> Outcome:
        target = self.server / "vramlint" / m.file
        original = target.read_text()
        cached = Path(importlib.util.cache_from_source(str(target)))
        try:
            target.write_text(mutated_source(m))
            cached.unlink(missing_ok=True)  # same size, same second: the old bytecode would still load
            status, seconds = run_tests(tests, self.server, timeout)
        finally:
            target.write_text(original)
            py_compile.compile(str(target), doraise=True)
        return Outcome(m, status, seconds)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _preload() -> None:
    """What every child would import anyway (vramlint excluded: each child loads its mutant)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import libcst  # noqa: F401
    import lsprotocol.types  # noqa: F401
    import pygls  # noqa: F401
    import pytest  # noqa: F401
    import pytest_asyncio  # noqa: F401
    import pytest_lsp  # noqa: F401
    import torch  # noqa: F401


# ---------------------------------------------------------------------- the command
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--group", action="append", choices=sorted(GROUPS), help="only these groups (repeatable)")
    ap.add_argument("--sample", type=int, default=25, help="mutants per group, sampled (0: all)")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=0, help="seconds per mutant (0: 4x the clean run, at least 60)")
    ap.add_argument("--list", action="store_true", help="count the mutants and stop")
    ap.add_argument("--without", action="append", default=[], metavar="TEST",
                    help="leave out the tests whose id starts with TEST (to score the suite before a test file)")
    ap.add_argument("--survivors-of", type=Path, metavar="LOG",
                    help="run only the mutants a previous run's output lists as survived (same seed and "
                         "sample): after new tests, the others stay killed, since tests were only added")
    args = ap.parse_args(argv)
    groups = args.group or list(GROUPS)
    _preload()
    ws = Workspace()
    results: list[GroupResult] = []
    try:
        for name in groups:
            results.append(_run_group(name, ws, args))
    finally:
        ws.close()
    if not args.list:
        _summary(results, args)
    return 0


def _run_group(name: str, ws: Workspace, args: argparse.Namespace) -> GroupResult:
    files, tests = GROUPS[name]
    tests = [t for t in tests if not any(t.startswith(w) for w in args.without)]
    every = [m for f in files for m in mutants_of(f)]
    chosen = every if not args.sample or args.sample >= len(every) else \
        sorted(random.Random(f"{args.seed}:{name}").sample(every, args.sample), key=lambda m: (m.file, m.index))
    if args.survivors_of:
        # The summary's "survived: MUTANT" lines, or the progress lines of a run cut short.
        found = (re.match(r"\s*survived(?::|\s+[\d.]+ s) +(.+)$", line)
                 for line in args.survivors_of.read_text().splitlines())
        before = {f.group(1).strip() for f in found if f}
        chosen = [m for m in chosen if str(m) in before]
    print(f"## {name}: {len(every)} mutants in {len(files)} files, running {len(chosen)}", flush=True)
    result = GroupResult(name, len(every))
    if args.list or not chosen:
        return result
    status, clean = run_tests(tests, ws.server, 900)
    if status != "survived":
        raise SystemExit(f"{name}: the tests fail without a mutant ({status}): fix them first")
    timeout = args.timeout or max(60.0, 4 * clean)
    print(f"   clean run {clean:.1f} s; timeout {timeout:.0f} s", flush=True)
    for m in chosen:
        o = ws.run(m, tests, timeout)
        result.outcomes.append(o)
        print(f"   {o.status:8} {o.seconds:6.1f} s  {m}", flush=True)
    return result


def _summary(results: list[GroupResult], args: argparse.Namespace) -> None:
    print(f"\nmutation score (seed {args.seed}, up to {args.sample or 'all'} mutants per group)")
    print(f"{'group':10} {'mutants':>8} {'run':>5} {'killed':>7} {'timeout':>8} {'survived':>9} {'score':>6}")
    for r in results:
        run = len(r.outcomes) - r.count("error")
        killed = r.count("killed", "timeout")
        score = f"{killed / run:.0%}" if run else "-"
        print(f"{r.name:10} {r.total:8} {run:5} {r.count('killed'):7} {r.count('timeout'):8} "
              f"{r.count('survived'):9} {score:>6}")
    for r in results:
        for o in r.outcomes:
            if o.status in ("survived", "error"):
                print(f"{o.status}: {o.mutant}")


if __name__ == "__main__":
    sys.exit(main())
