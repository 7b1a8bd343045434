"""Issue 14, the settings and the outputs of a per-GPU estimate: the world size and the nodes as
setup keys with their sources (flag > directive > model table > [tool.vramlint] > the code >
WORLD_SIZE in the configured environment > default), their errors, the editor's setting; and each
renderer's output for an estimate with a `DistributedMemory` (built by hand: the renderers are
tested here, the figures by the memory model's tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vramlint.cli.main import main as cli_main
from vramlint.lsp.editor_settings import editor_settings
from vramlint.settings import (
    ConfigError,
    Settings,
    Sourced,
    load_settings,
    parse_directives,
    resolve_setup,
)


def _config(tmp_path: Path, text: str, name: str = "pyproject.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _world(settings: Settings, model: str = "Net", code: dict[str, Sourced] | None = None) -> tuple[Sourced, Sourced]:
    setup = resolve_setup(settings, model, str(settings.config_file or "x.py"), code=code)
    return setup.values["world_size"], setup.values["nodes"]


# ---------------------------------------------------------------------- settings: precedence
LAYERS = """
[tool.vramlint]
world-size = 16
nodes = 2
environment = { WORLD_SIZE = "4" }

[tool.vramlint.models.Net]
world-size = 8
"""


def test_each_layer_gives_the_world_size_with_its_source(tmp_path: Path) -> None:
    path = _config(tmp_path, LAYERS)
    loaded = load_settings(tmp_path, Settings(world_size=32, nodes=4))
    assert _world(loaded) == (Sourced(32, "flag"), Sourced(4, "flag"))
    loaded = load_settings(tmp_path)
    # The model's table over [tool.vramlint]; the nodes from [tool.vramlint] (8 ranks on 2 nodes).
    assert _world(loaded) == (Sourced(8, "pyproject.toml [tool.vramlint.models.Net]"),
                              Sourced(2, "pyproject.toml [tool.vramlint]"))
    assert _world(loaded, "Other")[0] == Sourced(16, "pyproject.toml [tool.vramlint]")
    path.write_text('[tool.vramlint]\nenvironment = { WORLD_SIZE = " 4 " }\n', encoding="utf-8")
    loaded = load_settings(tmp_path)
    assert _world(loaded) == (Sourced(4, "environment WORLD_SIZE"), Sourced(1, "default"))
    # What the code shows is above the shell's environment (a launcher's variable, not the script's word).
    assert _world(loaded, code={"world_size": Sourced(2, "code: x at line 3")})[0] == Sourced(2, "code: x at line 3")
    path.write_text("[tool.vramlint]\n", encoding="utf-8")
    assert _world(load_settings(tmp_path)) == (Sourced(1, "default"), Sourced(1, "default"))


def test_vramlint_toml_and_a_directive(tmp_path: Path) -> None:
    _config(tmp_path, "world-size = 4\n", "vramlint.toml")
    loaded = load_settings(tmp_path)
    assert _world(loaded)[0] == Sourced(4, "vramlint.toml")
    found, problems = parse_directives("net = Net()  # vramlint: world-size=8 nodes=2\n", "x.py")
    assert problems == [] and found[0].values == {"world_size": 8, "nodes": 2}
    _, problems = parse_directives("net = Net()  # vramlint: world-size=0\n", "y.py")
    assert problems and "world-size=0" in problems[0][1] and "positive integer" in problems[0][1]


def test_a_directive_whose_world_size_the_configured_nodes_do_not_divide(tmp_path: Path) -> None:
    """Checked when the file is read, not when the configuration is: one node, saying why."""
    _config(tmp_path, "[tool.vramlint]\nnodes = 4\n")
    loaded = load_settings(tmp_path)
    setup = resolve_setup(loaded, "Net", "x.py", directive={"world_size": Sourced(6, "directive at line 3")})
    assert setup["world_size"] == 6 and setup["nodes"] == 1
    assert "4 nodes from pyproject.toml [tool.vramlint] do not divide the world size 6" in setup.source("nodes")
    # A default world size says nothing (the code's plan may give it): the nodes stand.
    assert resolve_setup(loaded, "Net", "x.py")["nodes"] == 4


# ---------------------------------------------------------------------- settings: errors
@pytest.mark.parametrize(("toml", "message"), [
    ("[tool.vramlint]\nworld-size = 0\n", "`world-size` in [tool.vramlint]: expected a positive integer, got 0"),
    ('[tool.vramlint]\nworld-size = "8"\n', "`world-size` in [tool.vramlint]: expected a positive integer, got '8'"),
    ("[tool.vramlint]\nnodes = true\n", "`nodes` in [tool.vramlint]: expected a positive integer, got True"),
    ("[tool.vramlint.models.Net]\nworld-size = -2\n", "`world-size` in [tool.vramlint.models.Net]: expected a positive"),
    ('[tool.vramlint]\nenvironment = { WORLD_SIZE = "eight" }\n',
     "`environment` WORLD_SIZE in [tool.vramlint]: expected a positive integer (the job's ranks), got 'eight'"),
    ("[tool.vramlint]\nworld-size = 6\nnodes = 4\n",
     "`nodes` = 4 (pyproject.toml [tool.vramlint]) does not divide `world-size` = 6 (pyproject.toml [tool.vramlint])"),
    ("[tool.vramlint]\nnodes = 4\n[tool.vramlint.models.Net]\nworld-size = 6\n",
     "does not divide `world-size` = 6 (pyproject.toml [tool.vramlint.models.Net])"),
    ('[tool.vramlint]\nnodes = 3\nenvironment = { WORLD_SIZE = "8" }\n',
     "`nodes` = 3 (pyproject.toml [tool.vramlint]) does not divide `world-size` = 8 (environment WORLD_SIZE)"),
])
def test_invalid_values_are_configuration_errors_naming_the_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = _config(tmp_path, toml)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_flags_are_checked_against_the_configuration(tmp_path: Path) -> None:
    _config(tmp_path, "[tool.vramlint]\nworld-size = 8\n")
    with pytest.raises(ConfigError, match=r"`nodes` = 3 \(flag\) does not divide `world-size` = 8 \(pyproject"):
        load_settings(tmp_path, Settings(nodes=3))
    assert _world(load_settings(tmp_path, Settings(nodes=4)))[1] == Sourced(4, "flag")
    with pytest.raises(ConfigError, match=r"`nodes` = 4 \(flag\) does not divide `world-size` = 6 \(flag\)"):
        load_settings(tmp_path / "none", Settings(world_size=6, nodes=4))


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "x.py"
    script.write_text("import torch\nnet = torch.nn.Linear(4, 4)\n", encoding="utf-8")
    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as exit_:
            cli_main(["check", str(script), "--world-size", bad])
        assert exit_.value.code == 2
        assert f"argument --world-size: expected a positive integer, got '{bad}'" in capsys.readouterr().err
    assert cli_main(["check", str(script), "--world-size", "6", "--nodes", "4", "--no-memory"]) == 2
    assert "`nodes` = 4 (flag) does not divide `world-size` = 6 (flag)" in capsys.readouterr().err
    assert cli_main(["check", str(script), "--world-size", "8", "--nodes", "2", "--no-memory"]) == 0


# ---------------------------------------------------------------------- the editor's settings
def test_the_editor_setting() -> None:
    ok, problems = editor_settings({"vramlint": {"worldSize": 8, "nodes": 2}})
    assert problems == [] and ok.setup == {"world_size": 8, "nodes": 2}
    unset, problems = editor_settings({"vramlint": {"worldSize": None, "nodes": None}})
    assert problems == [] and unset.setup == {}
    bad, problems = editor_settings({"vramlint": {"worldSize": 0, "nodes": 2}})
    assert bad.setup == {"nodes": 2}
    assert problems == ["vramlint.worldSize: expected a positive integer, got 0"]
