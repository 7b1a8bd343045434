"""Issue 14, the settings and the outputs of a per-GPU estimate: the world size and the nodes as
setup keys with their sources (flag > directive > model table > [tool.vramlint] > the code >
WORLD_SIZE in the configured environment > default), their errors, the editor's setting; and each
renderer's output for an estimate with a `DistributedMemory` (built by hand: the renderers are
tested here, the figures by the memory model's tests)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from lsprotocol.types import MarkupContent, Position

from vramlint.analysis.api import analyze_file
from vramlint.analysis.findings import find_problems
from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.cli.main import main as cli_main
from vramlint.lsp import summaries
from vramlint.lsp.code_lens import code_lenses
from vramlint.lsp.editor_settings import editor_settings
from vramlint.lsp.hover import hover
from vramlint.lsp.status import status
from vramlint.memory.distributed import DistributedMemory, ParallelPlan
from vramlint.memory.distributed import Sourced as Fact
from vramlint.memory.estimate import LineTensor
from vramlint.render import github, json_output, sarif, text
from vramlint.render.explain import explain
from vramlint.render.report import report
from vramlint.render.setup import setup_rows
from vramlint.render.units import fmt_bytes
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
    uneven, problems = editor_settings({"vramlint": {"worldSize": 6, "nodes": 4}})
    assert uneven.setup == {"world_size": 6}
    assert problems == ["vramlint.nodes: 4 does not divide vramlint.worldSize 6: each node runs as many ranks"]


# ---------------------------------------------------------------------- the outputs of a per-GPU estimate
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mlp.py"
MIB = 1 << 20
FSDP2 = ParallelPlan(
    "fsdp2", 8, shard_size=8, stage=3, label="fsdp2 full-shard", units=("0", ""), reshard_after_forward=False,
    param_dtype="bfloat16",
    sources=(Fact("world size", "8", "flag"),
             Fact("strategy", "fsdp2 full-shard", "code: fully_shard(model) at line 33"),
             Fact("reshard_after_forward", "False", "code: fully_shard(model, reshard_after_forward=False) at line 33")))
ZERO3 = ParallelPlan(
    "deepspeed", 16, nodes=2, shard_size=16, stage=3, label="deepspeed zero-3 + cpu offload", offload_optimizer="cpu",
    sources=(Fact("world size", "16", "pyproject.toml [tool.vramlint]"), Fact("nodes", "2", "flag"),
             Fact("strategy", "deepspeed zero-3 + cpu offload", "ds_config.json"),
             Fact("offload_optimizer", "cpu", "ds_config.json zero_optimization.offload_optimizer.device")))


@pytest.fixture(scope="module")
def one_gpu() -> FileAnalysis:
    """examples/mlp.py's `model` with its real one-GPU estimate, on a card it does not fit (VL001)."""
    fa = analyze_file(str(EXAMPLE), Settings(memory=True, device="0.5GiB", models=("model",)))
    fa.findings = find_problems(fa)
    assert [f.code for f in fa.findings] == ["VL001"]
    return fa


def _several(fa: FileAnalysis, plan: ParallelPlan, host: int = 0) -> tuple[FileAnalysis, ModelResult]:
    """The same analysis with a DistributedMemory by hand (synthetic figures: the renderers are
    tested here, the figures by the memory model's tests)."""
    (one,) = fa.models
    assert one.memory is not None
    m = copy.copy(one)
    m.memory = copy.copy(one.memory)
    fa = copy.copy(fa)
    fa.models = [m]
    m.memory.distributed = DistributedMemory(
        plan, communication=3 * MIB, communication_peak=5 * MIB, host=host, one_gpu_peak=9 << 30,
        largest_rank=m.memory.train_peak + MIB,
        terms=[("all-gather buffers (2 units)", 4 * MIB, "torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py"),
               *([("optimizer state offloaded", host, "deepspeed/runtime/zero/stage3.py")] if host else [])])
    fa.findings = find_problems(fa)
    return fa, m


def test_one_gpu_outputs_say_nothing_of_several_gpus(one_gpu: FileAnalysis) -> None:
    (m,) = one_gpu.models
    memory = json_output.model_json(m, False)["memory"]
    assert not {"world_size", "strategy", "distributed"} & set(memory)
    assert not {"communication", "host"} & set(memory["bytes"])
    setup = json_output.model_json(m, False)["setup"]
    assert "world_size" not in setup and "nodes" not in setup and "batch_size" in setup
    outputs = [text.render([one_gpu]), summaries.model_line(m), summaries.model_markdown(m), sarif.render([one_gpu]),
               explain(str(EXAMPLE), m), report(str(EXAMPLE), m)]
    assert not any("per GPU" in out or "world size" in out for out in outputs)


def test_a_world_size_given_without_a_plan_is_in_the_setup() -> None:
    setup = resolve_setup(Settings(world_size=4), "Net", "x.py")
    assert ("world size", "4", "flag") in list(setup_rows(setup))
    assert "nodes" not in {label for label, _, _ in setup_rows(setup)}


def test_text(one_gpu: FileAnalysis) -> None:
    fa, m = _several(one_gpu, FSDP2)
    e = m.memory
    assert e is not None
    lines = text.render([fa]).splitlines()
    assert lines[1].startswith("    memory (per GPU, 8 ranks (fsdp2 full-shard); batch 256 per GPU, fp32, adam, 0.5GiB;")
    assert "      communication buffers 3.0 MiB at the peak (largest 5.0 MiB); largest rank's peak " \
           f"{fmt_bytes(e.train_peak + MIB)}; the whole model on one GPU: training peak 9.00 GiB" in lines
    assert "      setup: strategy fsdp2 full-shard from code: fully_shard(model) at line 33" in lines
    assert "             world size 8 from flag" in lines
    (vl001,) = [line for line in lines if " VL001 " in line]
    assert f"needs {fmt_bytes(e.device_total)} per GPU, 8 ranks (fsdp2 full-shard) (peak {fmt_bytes(e.train_peak)}" \
           in vl001 and "at batch 256 per GPU" in vl001


def test_nodes_and_the_host(one_gpu: FileAnalysis) -> None:
    fa, m = _several(one_gpu, ZERO3, host=3 << 30)
    out = text.render([fa])
    assert "memory (per GPU, 16 ranks on 2 nodes (deepspeed zero-3 + cpu offload); batch 256 per GPU" in out
    assert "offloaded to the host 3.00 GiB per rank" in out
    assert "strategy deepspeed zero-3 + cpu offload from ds_config.json" in out
    assert "world size 16 from pyproject.toml [tool.vramlint]" in out and "nodes 2 from flag" in out
    markdown = summaries.model_markdown(m)
    assert "| offloaded to the host | 3.00 GiB |" in markdown
    assert "- offload_optimizer: `cpu` (ds_config.json zero_optimization.offload_optimizer.device)" in markdown
    doc = json_output.model_json(m, False)["memory"]
    assert doc["bytes"]["host"] == 3 << 30 and doc["distributed"]["plan"]["nodes"] == 2
    assert doc["distributed"]["plan"]["options"] == {"offload_optimizer": "cpu"}


def test_json(one_gpu: FileAnalysis) -> None:
    fa, m = _several(one_gpu, FSDP2)
    doc = json.loads(json.dumps(json_output.document([fa])))  # JSON all the way down
    memory = doc["files"][0]["models"][0]["memory"]
    assert (memory["world_size"], memory["strategy"]) == (8, "fsdp2 full-shard")
    assert (memory["bytes"]["communication"], memory["bytes"]["host"]) == (3 * MIB, 0)
    d = memory["distributed"]
    assert d["plan"] == {"strategy": "fsdp2", "label": "fsdp2 full-shard", "world_size": 8, "nodes": 1,
                         "shard_size": 8, "stage": 3, "units": ["0", ""],
                         # the options the plan above sets apart from ParallelPlan's defaults
                         "options": {"reshard_after_forward": False, "param_dtype": "bfloat16"}, "tp_plan": []}
    assert d["sources"] == [{"what": s.what, "value": s.value, "source": s.source} for s in FSDP2.sources]
    assert (d["communication"], d["communication_peak"], d["host"], d["one_gpu_peak"]) == (3 * MIB, 5 * MIB, 0, 9 << 30)
    assert d["terms"] == [{"what": "all-gather buffers (2 units)", "bytes": 4 * MIB,
                           "source": "torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py"}]
    tp = json_output.model_json(_several(one_gpu, ParallelPlan("tp", 4, label="tp", tp_size=4,
                                                                tp_plan=(("0", "colwise"), ("2", "rowwise"))))[1], False)
    assert tp["memory"]["distributed"]["plan"]["tp_plan"] == [{"module": "0", "style": "colwise"},
                                                             {"module": "2", "style": "rowwise"}]
    assert tp["memory"]["distributed"]["plan"]["options"] == {"tp_size": 4}


def test_docs_json_names_every_field() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "json.md").read_text(encoding="utf-8")
    fields = ["world_size", "strategy", "bytes.communication", "bytes.host", "distributed", "plan", "options",
              "tp_plan", "sources", "communication_peak", "one_gpu_peak", "largest_rank", "terms", "shard_size",
              "units", "stage"]
    assert [f for f in fields if f"`{f}`" not in doc] == []


def test_sarif_and_github_follow_vl001(one_gpu: FileAnalysis) -> None:
    fa, _ = _several(one_gpu, FSDP2)
    (vl001,) = fa.findings
    assert "per GPU, 8 ranks (fsdp2 full-shard)" in vl001.message
    (result,) = json.loads(sarif.render([fa]))["runs"][0]["results"]
    assert result["message"]["text"] == vl001.message
    assert github.lines(fa)[0].endswith(f"::{vl001.message}")


def test_explain(one_gpu: FileAnalysis) -> None:
    fa, m = _several(one_gpu, ZERO3, host=3 << 30)
    out = explain(str(EXAMPLE), m).splitlines()
    assert "; per GPU, 16 ranks on 2 nodes (deepspeed zero-3 + cpu offload); batch 256 per GPU, fp32" in out[0]
    assert any(line.split() == ["communication", "buffers", "3.0", "MiB", "the", "collectives'", "buffers", "at",
                                "that", "moment", "(below)"] for line in out)
    for what, value, source in [(s.what, s.value, s.source) for s in ZERO3.sources]:
        assert any(line.split()[:len(what.split())] == what.split() and line.endswith(f"{value} ({source})")
                   for line in out), what
    for what, n, source in (("all-gather buffers (2 units)", 4 * MIB, "torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py"),
                            ("optimizer state offloaded", 3 << 30, "deepspeed/runtime/zero/stage3.py")):
        assert any(line.startswith(f"  {what}") and fmt_bytes(n) in line and line.endswith(source) for line in out), what
    assert any(line.startswith("  offloaded to the host") and "3.00 GiB" in line for line in out)
    assert any(line.startswith("  whole model on one GPU") and "9.00 GiB" in line for line in out)
    # The hand count is of the whole model: no ratio against one GPU's share.
    assert not any("x the hand count" in line for line in out)


def test_report(one_gpu: FileAnalysis) -> None:
    _, m = _several(one_gpu, FSDP2)
    out = report(str(EXAMPLE), m)
    assert "memory per GPU, 8 ranks (fsdp2 full-shard):" in out
    assert "strategy       fsdp2 full-shard  (code: fully_shard(model) at line 33)" in out
    assert "needs" in out and " per GPU with the CUDA context" in out


def test_hover_and_code_lens(one_gpu: FileAnalysis) -> None:
    fa, m = _several(one_gpu, FSDP2)
    source = EXAMPLE.read_text(encoding="utf-8")
    assert m.location is not None
    (lens,) = [c for c in code_lenses(fa, source, EXAMPLE.as_uri()) if c.range.start.line == m.location.line - 1]
    assert lens.command is not None
    assert lens.command.title.startswith("131.4K params · per GPU, 8 ranks (fsdp2 full-shard) · training peak ")
    shown = hover(fa, source, Position(m.location.line - 1, m.location.column))
    assert shown is not None and isinstance(shown.contents, MarkupContent)
    markdown = shown.contents.value
    assert "| per GPU, 8 ranks (fsdp2 full-shard) | |" in markdown
    assert "| communication buffers | 3.0 MiB |" in markdown and "| whole model on one GPU | 9.00 GiB |" in markdown
    assert "- strategy: `fsdp2 full-shard` (code: fully_shard(model) at line 33)" in markdown
    assert "- world size: `8` (flag)" in markdown
    assert "- reshard_after_forward: `False` (code: fully_shard(model, reshard_after_forward=False) at line 33)" \
        in markdown
    # A line the forward computed (examples/mlp.py's Sequential has none: one by hand): the batch is each GPU's.
    assert m.memory is not None
    line = next(i for i, text_ in enumerate(source.splitlines(), 1) if text_.startswith("logits = model(x)"))
    m.memory.lines = {line: LineTensor(line, (256, 10), "float32", 10240)}
    tensor = hover(fa, source, Position(line - 1, 0))
    assert tensor is not None and isinstance(tensor.contents, MarkupContent)
    assert "(batch 256 per GPU, in `model`'s forward)" in tensor.contents.value


def test_the_status_notification(one_gpu: FileAnalysis) -> None:
    """The client's status item says "per GPU" where the server says what the figures are."""
    assert "perGpu" not in status("file:///x.py", 1, one_gpu)["models"][0]
    fa, _ = _several(one_gpu, FSDP2)
    assert status("file:///x.py", 1, fa)["models"][0]["perGpu"] == "per GPU, 8 ranks (fsdp2 full-shard)"
