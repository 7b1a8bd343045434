"""Imports vramlint cannot resolve (finding VL303) and what "no models found" says: in the CLI (the
real executable) and in the language server (tests/test_lsp.py's fixture).

Before VL303, `from mypkg import Net; model = Net(10)` with `mypkg` off the analysis path printed
"no models found" and exited 0, so a CI job passed while checking nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types

from tests import test_lsp
from tests.test_cli import vramlint
from tests.test_lsp import Session, by_code, cli_findings, line_of, lsp_findings

client = test_lsp.client
lsp = test_lsp.lsp

MAIN = """\
from mypkg import Net

model = Net(10)
"""
# A package outside the project: resolvable only through extra-paths.
MYPKG = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, n)
"""
NET_PARAMS = 10 * 10 + 10


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def findings(stdout: str) -> list[dict[str, object]]:
    (f,) = json.loads(stdout)["files"]
    return list(f["findings"])


def test_an_unresolvable_import_is_a_located_warning(tmp_path: Path) -> None:
    proj, lib = tmp_path / "proj", tmp_path / "lib"
    write(proj, "main.py", MAIN)
    write(lib, "mypkg/__init__.py", MYPKG)
    r = vramlint("check", "main.py", cwd=proj)
    assert r.returncode == 0, r.stderr  # a warning: the default --fail-on is error
    (line,) = [x for x in r.stdout.splitlines() if "VL303" in x]
    # At the module's name in the import, saying which module, where vramlint looked, how to add a path.
    assert line.startswith("main.py:1:6: warning VL303 [unresolved-import] module `mypkg` could not be resolved")
    assert "`Net`" in line and f"the file's folder {proj}" in line and "extra-paths (none)" in line
    assert "site-packages" in line
    assert "`--extra-path DIR`" in line and '`extra-paths = ["DIR"]` in [tool.vramlint]' in line
    assert "`vramlint.extraPaths`" in line
    assert vramlint("check", "main.py", "--fail-on", "warning", cwd=proj).returncode == 1
    # With the package's folder on the path: no finding, the model is counted.
    r = vramlint("check", "main.py", "--extra-path", str(lib), "--fail-on", "warning", "--format", "json", cwd=proj)
    assert r.returncode == 0, r.stdout
    (f,) = json.loads(r.stdout)["files"]
    assert [m["params"]["total"] for m in f["models"]] == [NET_PARAMS]
    assert not [x for x in f["findings"] if x["code"] == "VL303"] and f["unevaluated"] == []
    # The configuration's extra-paths name it in the message.
    write(proj, "pyproject.toml", '[tool.vramlint]\nextra-paths = ["vendor"]\n')
    r = vramlint("check", "main.py", cwd=proj)
    assert f"extra-paths ({proj / 'vendor'})" in r.stdout


def test_import_of_a_package_used_by_attribute(tmp_path: Path) -> None:
    """`import torchvision; torchvision.models.resnet50()` where the package is not installed
    (a name no environment has, so the test does not depend on what is installed)."""
    write(tmp_path, "tv.py", "import absentvision\n\nmodel = absentvision.models.resnet50()\n")
    r = vramlint("check", "tv.py", "--format", "json", "--fail-on", "warning", cwd=tmp_path)
    assert r.returncode == 1
    (f,) = findings(r.stdout)
    assert (f["code"], f["severity"], f["line"], f["column"]) == ("VL303", "warning", 1, 8)
    assert str(f["message"]).startswith("module `absentvision` could not be resolved")


def test_imports_that_do_not_matter_are_not_reported(tmp_path: Path) -> None:
    """Guarded, unused, natively modelled (torch, numpy, keras) and standard-library imports are
    not findings, nor are the failed imports of another module; an unguarded, used one among them is."""
    # The imported module's own failed import is its business (the count's unknown says why).
    write(tmp_path, "helpers.py", "import missingdep\n\nWIDTH = missingdep.width\n")
    write(tmp_path, "m.py", """\
        import sqlite3
        import numpy.nosuch as npn
        import keras.nosuch as kn
        import torch.nn as nn
        import unusedpkg
        from unused2 import thing
        try:
            import apex
        except ImportError:
            apex = None
        try:
            from fancy import Norm
        except (ValueError, ModuleNotFoundError):
            Norm = nn.LayerNorm
        from blocks import Block
        from helpers import WIDTH
        import torch.nosuch as tn

        db = sqlite3.connect(":memory:")
        a, b, c = npn.f(), tn.f(), kn.f()
        norm = Norm(4)
        fused = apex.FusedAdam


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block(4)
                self.fc = nn.Linear(WIDTH, 4)
        """)
    r = vramlint("check", "m.py", "--format", "json", "--no-memory", cwd=tmp_path)
    vl303 = [f for f in findings(r.stdout) if f["code"] == "VL303"]
    assert [(f["line"], f["column"]) for f in vl303] == [(15, 6)]  # `from blocks import Block`
    assert "module `blocks`" in str(vl303[0]["message"])
    (net,) = json.loads(r.stdout)["files"][0]["models"]
    assert any("missingdep" in u["reason"] for u in net["unknowns"])  # what the helper lacked, said


def test_no_models_found_says_what_could_not_be_evaluated(tmp_path: Path) -> None:
    write(tmp_path, "main.py", MAIN)
    write(tmp_path, "hub.py", 'import torch\n\nmodel = torch.hub.load("pytorch/vision", "resnet18")\n')
    write(tmp_path, "util.py", "def f(x):\n    return x + 1\n")
    r = vramlint("check", "main.py", "hub.py", "util.py", cwd=tmp_path)
    lines = r.stdout.splitlines()
    start = lines.index("no models found; not evaluated:")
    below = lines[start + 1:]
    assert below[0].startswith("    main.py:3:1: `model` is unknown: `Net` from module `mypkg` not found")
    assert below[0].endswith("(line 1)")
    assert below[1].startswith("    hub.py:3:1: `model` is unknown: ") and "torch.hub" in below[1]
    assert not any("util.py" in x for x in below)
    r = vramlint("check", "main.py", "--format", "json", cwd=tmp_path)
    (f,) = json.loads(r.stdout)["files"]
    (u,) = f["unevaluated"]
    assert (u["path"], u["line"], u["column"]) == (str(tmp_path / "main.py"), 3, 1)
    assert u["reason"].startswith("`model` is unknown")


@pytest.mark.asyncio
async def test_the_language_server_reports_it_and_clears_it_once_resolvable(lsp: Session) -> None:
    uri = await lsp.open("main.py", MAIN)
    diags = lsp.client.diagnostics[uri]
    (d,) = by_code(diags, "VL303")
    assert d.severity == types.DiagnosticSeverity.Warning
    assert d.range.start == types.Position(0, 5) and "module `mypkg` could not be resolved" in d.message
    assert d.code_description is not None and d.code_description.href.endswith("docs/rules.md#vl303")
    (mine,), (cli,) = lsp_findings(diags), cli_findings(lsp.root / "main.py")
    assert mine == cli
    # The user adds the package beside the file: the next analysis finds it.
    write(lsp.root, "mypkg/__init__.py", MYPKG)
    start = len(lsp.published)
    change = types.FileEvent((lsp.root / "mypkg" / "__init__.py").as_uri(), types.FileChangeType.Created)
    lsp.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams([change]))
    published = await lsp.publish(uri, after=start)
    assert not by_code(published.diagnostics, "VL303")
    md = await lsp.hover(uri, line_of(MAIN, "model = "), 1)
    assert md is not None and f"{NET_PARAMS:,} parameters" in md
