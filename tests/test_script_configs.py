"""A training script's settings as the evaluator sees them: argparse, click/typer/fire/tyro,
configuration files (JSON, TOML, YAML, OmegaConf, hydra), `--set` and per-script `args`; each value
with where it was read. And the reading is safe: only regular workspace files, size-capped, never
through a symlink leaving the workspace, malformed files a located Unknown."""

from __future__ import annotations

import os
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from vramlint.analysis.api import get_loader, script_inputs_for, search_paths
from vramlint.engine.limits import AnalysisBudget
from vramlint.engine.provenance import source_of
from vramlint.engine.values import Instance, Unknown
from vramlint.settings import ConfigError, Settings, load_settings


def run_script(project: Path, files: dict[str, str], args: list[str] | None = None,
               overrides: tuple[tuple[str, str], ...] = (), target: str = "train.py", config: str = "",
               extra_paths: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write the project, evaluate `target` as the analysis does (its args from a per-script table
    of a vramlint.toml at the project's root) and return its module namespace."""
    project.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        p = project / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    table = f'[models."{target}"]\nargs = {args!r}\n'.replace("'", '"') if args is not None else ""
    (project / "vramlint.toml").write_text(config + table, encoding="utf-8")
    settings = load_settings(project, Settings(overrides=overrides, extra_paths=extra_paths))
    path = str(project / target)
    loader = get_loader(search_paths(settings))
    loader.script_inputs = script_inputs_for(path, settings)
    loader.fresh_environment()  # sys.argv, as analyze_source sets it
    loader.max_file_bytes = settings.max_file_size
    loader.add_root(str(project), after=len(extra_paths))
    ev = loader.evaluator
    saved, ev.analysis = ev.analysis, AnalysisBudget(60, 10**8, None)
    try:
        dotted = "script_" + str(abs(hash(path)))
        mod, _, _ = loader.load_main(path, (project / target).read_text(), dotted)
    finally:
        ev.analysis = saved
    return mod.ns


def unknown_reason(v: Any) -> str:
    assert isinstance(v, Unknown), v
    return v.reason


# ---------------------------------------------------------------------- argparse
ARGPARSE = """
import argparse
p = argparse.ArgumentParser(description="train")
p.add_argument("--batch-size", "-b", type=int, default=128)
p.add_argument("--lr", type=float, default="0.05")
p.add_argument("--amp", action="store_true")
p.add_argument("--no-shuffle", dest="shuffle", action="store_false")
p.add_argument("-v", "--verbose", action="count", default=0)
p.add_argument("--layer", action="append", type=int)
p.add_argument("--mode", choices=["fast", "slow"], default="fast")
p.add_argument("--sizes", nargs="+", type=int, default=[1, 2])
p.add_argument("--dtype", action="store_const", const="bf16", default="fp32")
g = p.add_argument_group("model")
g.add_argument("--depth", type=int, default=18)
m = p.add_mutually_exclusive_group()
m.add_argument("--sgd", action="store_true")
p.set_defaults(depth=34, extra="x")
args = p.parse_args()
BS = args.batch_size
D = vars(args)
"""


def test_argparse_defaults_are_typed_and_tagged(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {"train.py": ARGPARSE})
    d = ns["D"]
    assert ns["BS"] == 128 and source_of(ns["BS"]) == "argparse default of --batch-size at train.py:3"
    assert d["lr"] == 0.05 and isinstance(d["lr"], float)  # a string default goes through `type`
    assert (d["amp"], d["shuffle"], d["verbose"], d["layer"]) == (False, True, 0, None)
    assert (d["mode"], d["sizes"], d["dtype"]) == ("fast", [1, 2], "fp32")
    assert d["depth"] == 34 and "set_defaults" in (source_of(d["depth"]) or "")
    assert d["extra"] == "x" and d["sgd"] is False


def test_argparse_command_line_from_the_configuration(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {"train.py": ARGPARSE},
                    args=["-b", "256", "--amp", "--no-shuffle", "-vv", "--layer", "3", "--layer", "4",
                          "--mode=slow", "--sizes", "5", "6", "--dtype", "--depth", "50"])
    d = ns["D"]
    assert ns["BS"] == 256 and "args in vramlint.toml [models.\"train.py\"]" in (source_of(ns["BS"]) or "")
    assert (d["amp"], d["shuffle"], d["verbose"], d["layer"]) == (True, False, 2, [3, 4])
    assert (d["mode"], d["sizes"], d["dtype"], d["depth"]) == ("slow", [5, 6], "bf16", 50)


def test_set_overrides_an_option_as_if_given(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {"train.py": ARGPARSE}, args=["-b", "256"],
                    overrides=(("batch_size", "512"), ("--amp", "true")))
    assert ns["BS"] == 512 and source_of(ns["BS"]) == "--set batch_size=512"
    assert ns["D"]["amp"] is True


def test_argparse_bad_values_are_located_unknowns(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {"train.py": ARGPARSE}, args=["-b", "many", "--mode", "medium"])
    assert "invalid int value: 'many'" in unknown_reason(ns["BS"])
    assert "invalid choice" in unknown_reason(ns["D"]["mode"])
    assert ns["BS"].location is not None and ns["BS"].location.line == 3


def test_a_required_option_without_a_value_says_so_at_its_line(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {"train.py": """
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("data_dir")
        p.add_argument("--out", required=True)
        p.add_argument("--bs", type=int, default=8)
        a = p.parse_args()
        DATA, OUT, BS = a.data_dir, a.out, a.bs
    """})
    assert "data_dir is required" in unknown_reason(ns["DATA"]) and ns["DATA"].location.line == 3
    assert "--out is required" in unknown_reason(ns["OUT"]) and "--set out=VALUE" in ns["OUT"].reason
    assert ns["BS"] == 8  # the rest is known


def test_argparse_subcommands_and_known_args(tmp_path: Path) -> None:
    files = {"train.py": """
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--seed", type=int, default=0)
        sub = p.add_subparsers(dest="cmd")
        t = sub.add_parser("train")
        t.add_argument("--epochs", type=int, default=10)
        e = sub.add_parser("eval")
        e.add_argument("--split", default="val")
        args, rest = p.parse_known_args()
        CMD = args.cmd
        EPOCHS = getattr(args, "epochs", None)
        REST = rest
    """}
    ns = run_script(tmp_path, files, args=["train", "--epochs", "3", "--unknown-flag"])
    assert (ns["CMD"], ns["EPOCHS"], ns["REST"]) == ("train", 3, ["--unknown-flag"])
    ns = run_script(tmp_path / "none", files)
    assert (ns["CMD"], ns["EPOCHS"], ns["REST"]) == (None, None, [])


# ---------------------------------------------------------------------- configuration files
def test_json_and_toml_configs(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {
        "configs/train.json": '{"train": {"batch_size": 32, "lr": 0.1}, "layers": [64, 64]}',
        "configs/model.toml": "[model]\nwidth = 128\n",
        "train.py": """
            import json, tomllib
            with open("configs/train.json") as f:
                cfg = json.load(f)
            BS = cfg["train"]["batch_size"]
            LAYERS = cfg["layers"]
            with open("configs/model.toml", "rb") as f:
                WIDTH = tomllib.load(f)["model"]["width"]
            TEXT = json.loads(open("configs/train.json").read())["train"]["lr"]
        """})
    assert ns["BS"] == 32 and source_of(ns["BS"]) == "configs/train.json: train.batch_size"
    assert ns["LAYERS"] == [64, 64] and source_of(ns["WIDTH"]) == "configs/model.toml: model.width"
    assert ns["TEXT"] == 0.1


def test_yaml_values_carry_their_key_and_line(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {
        "conf.yaml": "# training\nbase: &b\n  lr: 0.1\ntrain:\n  <<: *b\n  batch_size: 64\n",
        "train.py": """
            import os, yaml
            here = os.path.dirname(os.path.abspath(__file__))
            cfg = yaml.safe_load(open(os.path.join(here, "conf.yaml")))
            BS = cfg["train"]["batch_size"]
            LR = cfg["train"]["lr"]
        """})
    assert ns["BS"] == 64 and source_of(ns["BS"]) == "conf.yaml: train.batch_size (line 6)"
    assert ns["LR"] == 0.1


def test_omegaconf_load_merge_interpolation_and_cli(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {
        "cfg.yaml": "train:\n  batch_size: 16\n  eval_batch: ${train.batch_size}\nmodel:\n  width: 8\n  name: m${model.width}\n",
        "train.py": """
            from omegaconf import OmegaConf, DictConfig
            cfg = OmegaConf.merge(OmegaConf.load("cfg.yaml"), OmegaConf.create({"model": {"depth": 3}}),
                                  OmegaConf.from_cli())
            BS = cfg.train.batch_size
            EVAL = cfg["train"].eval_batch
            NAME = cfg.model.name
            DEPTH = cfg.model.get("depth", 1)
            PLAIN = OmegaConf.to_container(cfg, resolve=True)
            IS = isinstance(cfg, DictConfig)
        """}, overrides=(("model.width", "12"),))
    assert ns["BS"] == 16 and source_of(ns["BS"]) == "cfg.yaml: train.batch_size (line 2)"
    assert ns["EVAL"] == 16 and ns["NAME"] == "m12" and ns["DEPTH"] == 3 and ns["IS"] is True
    assert ns["PLAIN"]["model"] == {"width": 12, "name": "m12", "depth": 3}


HYDRA = {
    "conf/config.yaml": "defaults:\n  - model: small\n  - optional extra: none\n  - _self_\n\ntrain:\n  batch_size: 64\n",
    "conf/model/small.yaml": "width: 32\n_target_: nets.Net\n",
    "conf/model/big.yaml": "width: 256\n_target_: nets.Net\n",
    "nets.py": """
        class Net:
            def __init__(self, width):
                self.width = width
    """,
    "train.py": """
        import hydra
        from hydra.utils import instantiate
        from omegaconf import DictConfig
        OUT = {}

        @hydra.main(version_base=None, config_path="conf", config_name="config")
        def main(cfg: DictConfig) -> None:
            OUT["bs"] = cfg.train.batch_size
            OUT["width"] = cfg.model.width
            OUT["net"] = instantiate(cfg.model)

        if __name__ == "__main__":
            main()
        main()
        BS, WIDTH, NET = OUT["bs"], OUT["width"], OUT["net"]
    """,
}


def test_hydra_composes_the_defaults_list(tmp_path: Path) -> None:
    ns = run_script(tmp_path, HYDRA)
    assert ns["BS"] == 64 and source_of(ns["BS"]) == "conf/config.yaml: train.batch_size (line 7)"
    assert ns["WIDTH"] == 32 and source_of(ns["WIDTH"]) == "conf/model/small.yaml: model.width (line 1)"
    assert isinstance(ns["NET"], Instance) and ns["NET"].attrs["width"] == 32


def test_hydra_overrides_pick_a_group_option_and_set_keys(tmp_path: Path) -> None:
    ns = run_script(tmp_path, HYDRA, args=["model=big"], overrides=(("train.batch_size", "8"),))
    assert ns["WIDTH"] == 256 and ns["BS"] == 8 and source_of(ns["BS"]) == "--set train.batch_size=8"
    ns = run_script(tmp_path / "missing", HYDRA, overrides=(("model", "huge"),))
    assert "conf/model/huge.yaml: no such file in the workspace" in unknown_reason(ns["BS"])


# ---------------------------------------------------------------------- safety
def test_a_file_outside_the_workspace_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": "TOP-SECRET"}')
    project = tmp_path / "proj"
    project.mkdir()
    (project / "link.json").symlink_to(secret)
    ns = run_script(project, {"train.py": f"""
        import json
        A = json.load(open("{secret}"))
        B = json.load(open("../secret.json"))
        C = json.load(open("link.json"))
    """})
    for name in "ABC":
        assert "outside the workspace" in unknown_reason(ns[name])
        assert "TOP-SECRET" not in ns[name].reason


def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    tmp_path.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "pipe.yaml")
    done: list[dict[str, Any]] = []
    t = threading.Thread(target=lambda: done.append(run_script(tmp_path, {"train.py": """
        import yaml
        CFG = yaml.safe_load(open("pipe.yaml"))
    """})), daemon=True)
    t.start()
    t.join(60)
    assert done, "reading a FIFO hung"
    assert "not a regular file (a FIFO)" in unknown_reason(done[0]["CFG"])


def test_a_file_over_max_file_size_is_not_read(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "big.json").write_text("[" + ",".join(["1"] * 400_000) + "]")  # ~800 KB
    ns = run_script(tmp_path, {"train.py": "import json\nX = json.load(open('big.json'))\n"},
                    config="max-file-size = 100000\n")
    assert "larger than max-file-size" in unknown_reason(ns["X"])


def test_malformed_files_are_located_unknowns(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {
        "bad.yaml": "train:\n  batch_size: 64\n lr: [1,\n",
        "bad.json": '{"a": 1,\n "b": }',
        "laughs.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh")),
        "train.py": """
            import json, yaml
            from omegaconf import OmegaConf
            Y = yaml.safe_load(open("bad.yaml"))
            J = json.load(open("bad.json"))
            L = OmegaConf.load("laughs.yaml")
            T = yaml.safe_load(open("missing.yaml"))
            P = yaml.safe_load("!!python/object/apply:os.system ['true']")
        """})
    assert unknown_reason(ns["Y"]).startswith("bad.yaml: malformed YAML") and "(line 3)" in ns["Y"].reason
    assert "malformed JSON" in unknown_reason(ns["J"]) and "(line 2)" in ns["J"].reason
    assert "more than" in unknown_reason(ns["L"])
    assert "no such file" in unknown_reason(ns["T"])
    assert isinstance(ns["P"], Unknown)  # no Python object is ever constructed
    assert ns["Y"].location is not None and ns["Y"].location.line == 3  # the yaml.safe_load line


# ---------------------------------------------------------------------- click, typer, fire, tyro
def test_click_options_run_the_command_with_their_defaults(tmp_path: Path) -> None:
    files = {"train.py": """
        import click
        OUT = {}

        @click.command()
        @click.option("--batch-size", "-b", default=128, type=int, show_default=True)
        @click.option("--lr", default="0.5", type=float)
        @click.option("--amp/--no-amp", default=False)
        @click.argument("data", default="data/")
        def main(batch_size, lr, amp, data):
            OUT.update(bs=batch_size, lr=lr, amp=amp, data=data)

        main()
        BS = OUT["bs"]
        O = OUT
    """}
    ns = run_script(tmp_path, files)
    assert ns["BS"] == 128 and source_of(ns["BS"]) == "click option --batch-size at train.py:5"
    assert ns["O"]["lr"] == 0.5 and ns["O"]["amp"] is False and ns["O"]["data"] == "data/"
    ns = run_script(tmp_path / "given", files, args=["/mnt/x", "--amp"], overrides=(("batch_size", "32"),))
    assert (ns["BS"], ns["O"]["amp"], ns["O"]["data"]) == (32, True, "/mnt/x")


def test_typer_and_fire(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {"train.py": """
        from typing import Annotated
        import fire
        import typer
        OUT = {}
        app = typer.Typer()

        @app.command()
        def train(batch_size: int = typer.Option(64, "--batch-size"), epochs: Annotated[int, typer.Option()] = 3):
            OUT["typer"] = (batch_size, epochs)

        def go(batch_size=16, name="m"):
            OUT["fire"] = batch_size

        app()
        fire.Fire(go)
        TY, FI = OUT["typer"], OUT["fire"]
    """}, args=["--epochs", "5"])
    assert ns["TY"] == (64, 5) and source_of(ns["TY"][0]) == "typer option --batch-size at train.py:8"
    assert ns["FI"] == 16 and source_of(ns["FI"]) == "fire default of batch_size at train.py:11"


def test_dataclass_clis(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {"train.py": """
        from dataclasses import dataclass, field
        import simple_parsing
        import tyro

        @dataclass
        class Optim:
            lr: float = 0.1

        @dataclass
        class Config:
            batch_size: int = 32
            optim: Optim = field(default_factory=Optim)

        CFG = tyro.cli(Config)
        p = simple_parsing.ArgumentParser()
        p.add_arguments(Config, dest="cfg")
        SP = p.parse_args().cfg
    """}, overrides=(("optim.lr", "0.01"),))
    cfg = ns["CFG"]
    assert cfg.attrs["batch_size"] == 32 and source_of(cfg.attrs["batch_size"]) == \
        "tyro default of Config.batch_size at train.py:11"
    assert cfg.attrs["optim"].attrs["lr"] == 0.01
    assert ns["SP"].attrs["batch_size"] == 32


def test_hf_argument_parser_from_transformers_source(tmp_path: Path) -> None:
    from tests.support.libsources import TRANSFORMERS_VERSION, library_source

    ns = run_script(tmp_path, {"train.py": """
        from dataclasses import dataclass, field
        from transformers import HfArgumentParser

        @dataclass
        class ModelArguments:
            model_name: str = "gpt2"
            max_len: int = field(default=512, metadata={"help": "tokens"})

        @dataclass
        class DataArguments:
            batch_size: int = 8

        margs, dargs = HfArgumentParser((ModelArguments, DataArguments)).parse_args_into_dataclasses()
        ML, BS = margs.max_len, dargs.batch_size
    """}, args=["--batch_size", "4"], extra_paths=(str(library_source("transformers", TRANSFORMERS_VERSION)),))
    assert ns["ML"] == 512 and source_of(ns["ML"]) == "HfArgumentParser default of ModelArguments.max_len at train.py:7"
    assert ns["BS"] == 4


# ---------------------------------------------------------------------- the configuration and the CLI
def test_args_must_be_a_list_of_strings(tmp_path: Path) -> None:
    (tmp_path / "vramlint.toml").write_text('[models."train.py"]\nargs = "--batch-size 3"\n')
    with pytest.raises(ConfigError, match="expected a list of strings"):
        load_settings(tmp_path)


def test_the_set_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vramlint.cli.main import build_parser, main

    args = build_parser().parse_args(["check", "--set", "batch_size=256", "--set", "train.lr=0.1", "x.py"])
    assert args.overrides == [("batch_size", "256"), ("train.lr", "0.1")]
    with pytest.raises(SystemExit) as exc:
        main(["check", "--set", "batch_size", "x.py"])
    assert exc.value.code == 2 and "expected KEY=VALUE" in capsys.readouterr().err


def test_check_shows_the_batch_from_the_argparse_default_and_set(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from vramlint.cli.main import main

    folder = Path(__file__).parent / "fixtures" / "scripts" / "argparse_mlp_randn"
    monkeypatch.chdir(folder)
    assert main(["check", "--jobs", "1", "train.py"]) == 0
    out = capsys.readouterr().out
    assert "batch size 192 from" in out and "argparse default of --batch-size at train.py:10" in out
    assert main(["check", "--jobs", "1", "--set", "batch_size=64", "train.py"]) == 0
    out = capsys.readouterr().out
    assert "batch size 64 from" in out and "--set batch_size=64" in out


def test_a_library_reads_no_file_even_inside_the_workspace(tmp_path: Path) -> None:
    """Only the script's own code reads configuration files: a library on an extra path (a vendored
    copy, a .venv inside the project) keeps the unknown it always had."""
    ns = run_script(tmp_path, {
        "vendor/lib/reader.py": "import json\ndef read(p):\n    return json.load(open(p))\n",
        "cfg.json": '{"batch_size": 4}',
        "train.py": """
            import json
            from reader import read
            OWN = json.load(open("cfg.json"))["batch_size"]
            LIB = read("cfg.json")
        """}, extra_paths=(str(tmp_path / "vendor" / "lib"),))
    assert ns["OWN"] == 4
    assert "by a library" in unknown_reason(ns["LIB"])


def test_a_set_nothing_reads_is_reported(tmp_path: Path) -> None:
    from vramlint.analysis.api import analyze_file

    (tmp_path / "train.py").write_text(textwrap.dedent(ARGPARSE).lstrip())
    result = analyze_file(str(tmp_path / "train.py"), Settings(overrides=(("batch_size", "3"), ("batchsize", "3"))))
    messages = [w.reason for w in result.warnings]
    assert any("--set batchsize=3: no option" in m for m in messages), messages
    assert not any("--set batch_size=3" in m for m in messages)
    plain = tmp_path / "model.py"
    plain.write_text("import torch.nn as nn\nnet = nn.Linear(2, 2)\n")
    assert not analyze_file(str(plain), Settings(overrides=(("batchsize", "3"),))).warnings  # reads no setting


def test_sys_argv_and_pathlib_reads(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {
        "conf/train.yaml": "batch_size: 24\n",
        "train.py": """
            import argparse, sys
            from pathlib import Path
            import yaml
            p = argparse.ArgumentParser()
            p.add_argument("--config", default="conf/train.yaml")
            args = p.parse_args(sys.argv[1:])
            BS = yaml.safe_load(Path(args.config).read_text())["batch_size"]
            with Path(__file__).parent.joinpath(args.config).open() as f:
                BS2 = yaml.safe_load(f)["batch_size"]
            ARGV = sys.argv[1:]
        """}, args=["--config", "conf/train.yaml"])
    assert ns["BS"] == 24 and ns["BS2"] == 24 and source_of(ns["BS"]) == "conf/train.yaml: batch_size (line 1)"
    assert ns["ARGV"] == ["--config", "conf/train.yaml"]


def test_set_defaults_from_a_yaml_file_keep_the_file_as_source(tmp_path: Path) -> None:
    ns = run_script(tmp_path, {
        "cfg.yaml": "batch_size: 12\n",
        "train.py": """
            import argparse, yaml
            p = argparse.ArgumentParser()
            p.add_argument("--config", default="cfg.yaml")
            p.add_argument("--batch_size", type=int, default=1)
            args, _ = p.parse_known_args()
            with open(args.config) as f:
                p.set_defaults(**yaml.safe_load(f))
            BS = p.parse_args().batch_size
        """})
    assert ns["BS"] == 12 and source_of(ns["BS"]) == "cfg.yaml: batch_size (line 1)"
