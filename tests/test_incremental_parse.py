"""An editor's next version of a file is parsed reusing the previous version's unchanged
top-level statements (engine/incremental.py): the module must be the one a whole-file parse
gives, and the analysis the same, locations included."""

from __future__ import annotations

import random

import libcst as cst
from benchmarks.lsp_latency import big_file, edited

from tests.support.fuzz import compiles
from tests.support.libsources import TORCHVISION_VERSION, library_source
from vramlint.analysis import api
from vramlint.engine import source as source_mod
from vramlint.engine.source import SourceModule, parse_source
from vramlint.render.json_output import file_json
from vramlint.settings import Settings

SNIPPETS = ["    # an indented comment\n", "# a comment\n", "\n", "x = 1\n", "    y = 2\n", "else:\n",
            "def f():\n    yield 1\n", "class C:\n    a = 1\n", "@decorator\n", "a = 1; b = 'x'\n", "  # odd\n",
            "x = (\n", ")\n", '"""\n', "\t\n"]


def _edits(text: str, seed: int, count: int) -> list[str]:
    """`count` successive versions of `text`: lines inserted, deleted or changed at random (as
    an editor's versions, some with syntax errors)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        lines = text.splitlines(keepends=True)
        i = rng.randrange(len(lines) + 1)
        op = rng.random()
        if op < 0.35:
            lines.insert(i, rng.choice(SNIPPETS))
        elif op < 0.55 and lines:
            del lines[min(i, len(lines) - 1)]
        elif lines:
            j = min(i, len(lines) - 1)
            lines[j] = lines[j].replace("1", "2", 1) if "1" in lines[j] else lines[j][:-1] + "  # edited\n"
        version = "".join(lines)
        out.append(version)
        if compiles(version):  # the next edit is of this version (else of the last valid one)
            text = version
    return out



def _texts() -> list[str]:
    models = library_source("torchvision", TORCHVISION_VERSION) / "torchvision" / "models"
    return [big_file(), *((models / name).read_text() for name in ("resnet.py", "vision_transformer.py"))]


def test_reparsed_module_is_the_whole_file_parse() -> None:
    seed = 0
    reused = total = 0
    for n, text in enumerate(_texts()):
        path = f"/nonexistent/incremental_{seed}_{n}.py"
        parse_source(path, text, "m")._statement_index()
        for version in _edits(text, seed * 100 + n, 25):
            got = parse_source(path, version, "m")
            whole = SourceModule(path, version, "m")
            assert (got.syntax_error is None) == (whole.syntax_error is None)
            if got.tree is None or whole.tree is None:
                continue
            assert got.tree.deep_equals(whole.tree), version
            assert got.tree.code == version
            reused += got.pieces not in (False, None)
            total += 1
            # Positions come from the text: the same lines for the same statements.
            assert _locations(got) == _locations(whole)
    assert reused > total // 2  # most edits reused the unchanged statements


def _locations(src: SourceModule) -> list[tuple[int, int, int, int] | None]:
    from vramlint.engine.walk import iter_nodes

    assert src.tree is not None
    out = []
    for node in iter_nodes(src.tree):
        if isinstance(node, (cst.SimpleStatementLine, cst.ClassDef, cst.FunctionDef)):
            continue
        loc = src.statement_location(node)
        out.append(None if loc is None else (loc.line, loc.column, loc.end_line, loc.end_column))
    return out


def test_unchanged_statements_keep_their_nodes() -> None:
    text = big_file()
    path = "/nonexistent/incremental_nodes.py"
    before = parse_source(path, text, "m")
    after = parse_source(path, edited(text, 1), "m")
    assert before.tree is not None and after.tree is not None
    same = [a is b for a, b in zip(before.tree.body, after.tree.body)]
    # Only the edited class was parsed again, with its neighbours (which own the lines between).
    assert same.count(False) == 3 and len(same) == len(before.tree.body)
    assert after.tree.deep_equals(cst.parse_module(edited(text, 1)))


def test_the_analysis_of_an_edited_version_is_that_of_the_file(tmp_path) -> None:
    """Lines inserted above models move their locations; the analysis that reused the previous
    version's statements says what an analysis of the file alone says."""
    text = big_file(8)
    path = str(tmp_path / "model.py")
    settings = Settings(memory=True)
    api.analyze_source(path, text, settings)
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("class Block3"))
    versions = [
        "".join([*lines[:at], "# a comment\n", "\n", "WIDTH = 300\n", "\n", *lines[at:]]),
        "".join([*lines[:at], "WIDTH = 300\n", *lines[at:]]).replace("hidden=515", "hidden=WIDTH"),
        edited(text, 3),
    ]
    for version in versions:
        incremental = file_json(api.analyze_source(path, version, settings), layers=True)
        source_mod._cache.clear()  # nothing to reuse: the whole file parsed
        whole = file_json(api.analyze_source(path, version, settings), layers=True)
        assert incremental == whole


def test_an_edited_versions_statement_index_parses_only_the_statements_parsed_again(monkeypatch) -> None:
    """The statement index (locations from `ast`) of a version that reused the previous one's
    statements gives `ast` only the run libcst parsed again; the others' locations are the
    previous version's, moved by the lines inserted above them, and equal a whole index's."""
    import ast

    text = big_file()
    path = "/nonexistent/incremental_index.py"
    parse_source(path, text, "m")._statement_index()
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("class Block5"))
    versions = [edited(text, 1), "".join([*lines[:at], "WIDTH = 3\n", "\n", *lines[at:]]), edited(text, 2)]
    parsed: list[int] = []
    real = ast.parse
    monkeypatch.setattr(ast, "parse", lambda source, *a, **k: (parsed.append(len(source)), real(source, *a, **k))[1])
    for version in versions:
        parsed.clear()
        got = parse_source(path, version, "m")
        index = got._statement_index()
        assert index.locs and parsed and max(parsed) < len(version) // 10, parsed
        assert _locations(got) == _locations(SourceModule(path, version, "m"))


def test_a_file_cut_for_edits_ahead_of_time_reparses_its_first_edit_without_printing(tmp_path, monkeypatch) -> None:
    """`api.prepare_next_edit` (the language server's, once a result is shown) cuts the latest
    parse at its statements: the first edit then prints only the statements parsed again, not
    the whole previous module, and gets the same module."""
    text = big_file()
    path = str(tmp_path / "model.py")
    api.analyze_source(path, text, Settings())
    api.prepare_next_edit(path)
    printed: list[int] = []
    real = cst.Module.code_for_node
    monkeypatch.setattr(cst.Module, "code_for_node",
                        lambda self, node: (printed.append(1), real(self, node))[1])
    after = parse_source(path, edited(text, 1), "m")
    assert after.tree is not None and after.tree.deep_equals(cst.parse_module(edited(text, 1)))
    assert after.pieces and 0 < len(printed) <= 3  # the edited class and its two neighbours
    # Without it, the first edit prints every statement of the previous version.
    source_mod._cache.clear()
    api.analyze_source(path, text, Settings())
    printed.clear()
    parse_source(path, edited(text, 2), "m")
    assert len(printed) > 40
