"""The `vramlint` command: `check` (files and folders, for CI and pre-commit), `report` (one
model's per-layer table), `explain` (one model's estimate walked through) and `diff` (the working
tree against a git revision: cli/diff.py).

Exit codes: 0 nothing at or above `--fail-on`; 1 findings at or above it (a file that cannot be
analysed is an error finding); 2 usage, configuration or internal error. Errors go to stderr
with the file and line they concern.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vramlint import __version__
from vramlint.analysis.findings import SEVERITY_RANK
from vramlint.analysis.results import FileAnalysis, ModelResult
from vramlint.cache import analysis as cached
from vramlint.cache.analysis import cache_root, open_cache
from vramlint.cli import diff
from vramlint.cli.pool import analyze_all, analyze_safely
from vramlint.cli.progress import FileProgress
from vramlint.render import json_output, statistics
from vramlint.render.colour import PLAIN, palette_for
from vramlint.render.formats import Options, OutputFormat, choices, output_format
from vramlint.settings import (
    DEFAULTS,
    DTYPES,
    FAIL_ON,
    ConfigError,
    InputSpec,
    Settings,
    check_option,
    fail_on_of,
    load_settings,
    parse_device,
    parse_dims,
    parse_override,
)

SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
             ".pytest_cache", ".tox", "build", "dist"}


class UsageError(Exception):
    """A wrong option value or path: exit 2 with the message."""


class AnalysisFailed(Exception):
    """`report`/`explain` on a file that cannot be analysed (its errors already printed): exit 1."""


def _setup_options(memory_flag: bool = True) -> argparse.ArgumentParser:
    """The setup options `check`, `report` and `explain` share; `--no-memory` only where it means
    something (explain walks through the memory estimate: it refuses the flag)."""
    from vramlint.memory.devices import DEVICES, device_named
    from vramlint.memory.estimate import PRECISIONS
    from vramlint.memory.optimizers import OPTIMIZERS

    setup = argparse.ArgumentParser(add_help=False)
    g = setup.add_argument_group("setup (overrides the configuration and what the code shows)")
    g.add_argument("--batch-size", type=_positive, metavar="N",
                   help="the batch size (default: the configuration's, else the code's: a DataLoader, a call of "
                        "the model; else 1 with --input-shape)")
    g.add_argument("--input-shape", action=_InputShape, dest="inputs", default=[], metavar="DIMS",
                   help="the shape of one forward argument per sample (the batch dimension excluded): integers "
                        "separated by commas or x, e.g. 3,224,224; repeat it for each argument, in order. The "
                        "shapes apply to every model checked (--model picks which)")
    g.add_argument("--input-dtype", action=_InputDtype, dest="inputs", metavar="DTYPE",
                   help=f"the dtype of the --input-shape given just before it (default float32; int64 for token "
                        f"ids): {', '.join(sorted(DTYPES))}")
    g.add_argument("--precision", choices=PRECISIONS, help="fp32 (default), autocast (amp-bf16, amp-fp16), or the "
                   "whole model in bf16/fp16")
    g.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help=f"the optimizer (default: {DEFAULTS['optimizer']})")
    g.add_argument("--gpu", type=_gpu, metavar="NAME|SIZE",
                   help=f"the card to fit: {', '.join(_card_names(DEVICES.values(), device_named(DEFAULTS['device'])))}, "
                        "or a size such as 24GiB")
    g.add_argument("--mode", choices=["train", "infer"], help="which peak must fit the GPU (default: train)")
    g.add_argument("--checkpointing", action="store_const", const=True, default=None,
                   help="gradient checkpointing: call the model's gradient_checkpointing_enable() first")
    g.add_argument("--context", type=_positive, metavar="N",
                   help="generation: prompt + generated tokens, the KV cache's length (default: the generate "
                        "call's, when it shows both)")
    g.add_argument("--world-size", type=_positive, metavar="N",
                   help="several GPUs: the ranks of the job, as torchrun's --nnodes x --nproc_per_node (default: the "
                        "code's, the configuration's, WORLD_SIZE in its environment table, else 1); the figures are "
                        "then each GPU's")
    g.add_argument("--nodes", type=_positive, metavar="N",
                   help="the machines the ranks run on, as torchrun's --nnodes (default 1); divides --world-size")
    g.add_argument("--set", action="append", default=[], type=_override, dest="overrides", metavar="KEY=VALUE",
                   help="a setting of the script as if given on its command line: an argparse/click/typer option "
                        "(batch_size=256), a hydra or OmegaConf key (train.batch_size=256); repeatable")
    g.add_argument("--max-batch", action="store_true", help="also find the largest batch that fits the GPU")
    if memory_flag:
        g.add_argument("--no-memory", dest="memory", action="store_false", help="parameters only, no memory estimate")
    else:
        g.add_argument("--no-memory", nargs=0, action=_Refuse, default=True, dest="memory", help=argparse.SUPPRESS)
    g.add_argument("--extra-path", action="append", default=[], metavar="DIR",
                   help="a folder to import from before installed packages (like pyright's extraPaths)")
    g.add_argument("--config", metavar="FILE", help="the configuration file (default: the nearest pyproject.toml "
                   "with [tool.vramlint], or vramlint.toml)")
    _cache_options(setup)
    return setup


def _cache_options(p: argparse.ArgumentParser, clean: bool = False) -> None:
    g = p.add_argument_group("cache (docs/cache.md)")
    g.add_argument("--cache-dir", metavar="DIR",
                   help="the cache folder (default: VRAMLINT_CACHE_DIR, else `cache-dir` in the configuration, "
                        "else .vramlint_cache next to the configuration file, else in the current folder)")
    if not clean:
        g.add_argument("--no-cache", action="store_true",
                       help="neither read nor write the cache (also VRAMLINT_NO_CACHE=1)")


def build_parser() -> argparse.ArgumentParser:
    setup = _setup_options()
    p = argparse.ArgumentParser(prog="vramlint", description="Static GPU memory estimates for PyTorch and Keras "
                                "models: parameters, the training and inference peaks, whether they fit the GPU.")
    p.add_argument("--version", action="version", version=f"vramlint {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")  # none: the help (main)
    check = sub.add_parser("check", parents=[setup], help="analyse files and folders: models, memory, findings")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="files or folders (default: .)")
    check.add_argument("--model", action="append", default=[], metavar="NAME",
                       help="only this model (a class, module-level variable or factory; or FILE::NAME); repeatable")
    _output_options(check)
    check.add_argument("--fail-on", choices=FAIL_ON, help="exit 1 on findings of this severity or above "
                       "(default: error)")
    check.add_argument("--jobs", type=_positive, metavar="N", help="files analysed in parallel (default: all cores)")
    check.add_argument("--layers", action="store_true", help="include each model's module tree in JSON output")
    diff.add_parser(sub, setup)
    clean = sub.add_parser("clean", help="remove the cache folder (.vramlint_cache: see --cache-dir)")
    clean.add_argument("path", nargs="?", default=".", metavar="PATH",
                       help="where to look for the configuration, whose folder holds the cache (default: .)")
    clean.add_argument("--config", metavar="FILE", help="the configuration file")
    _cache_options(clean, clean=True)
    lsp = sub.add_parser("lsp", help="start the language server (stdio)")
    lsp.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP port instead (for debugging)")
    for name, helptext in (("report", "one model's per-layer table: shapes, parameters, bytes kept for backward"),
                           ("explain", "one model's memory estimate, walked through")):
        cmd = sub.add_parser(name, parents=[setup if name == "report" else _setup_options(memory_flag=False)],
                             help=helptext)
        cmd.add_argument("path", metavar="FILE")
        cmd.add_argument("--model", required=True, metavar="NAME", help="the model (class, variable or factory)")
        if name == "report":
            cmd.add_argument("--output-format", "--format", dest="format", choices=["text", "json"], default="text",
                             help="text: the per-layer table (default); json: the document of docs/json.md with "
                                  "the model's layers")
            cmd.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML file "
                             "with the memory timeline (-: to standard output, instead of the text)")
    return p


def _output_options(check: argparse.ArgumentParser) -> None:
    """`check`'s output: the format (ruff's names) and ruff's --exit-zero, --statistics, -q, -s."""
    from vramlint.render.formats import FORMATS

    g = check.add_argument_group("output")
    g.add_argument("--output-format", "--format", dest="output_format", choices=choices(), metavar="FORMAT",
                   help="; ".join(f"{f.name}: {f.help}" for f in FORMATS.values()) +
                        " (default: `output-format` in the configuration, else full; `text` is full)")
    g.add_argument("--statistics", action="store_true",
                   help="the number of findings per code instead of the findings (JSON with json, json-lines)")
    g.add_argument("--exit-zero", action="store_true",
                   help="exit 0 even with findings at or above --fail-on (2 still means a usage or internal error)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="only the findings: no models, no summary, no progress bar")
    g.add_argument("-s", "--silent", action="store_true", help="nothing on stdout: the exit code only")


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    return n


def _override(v: str) -> tuple[str, str]:
    try:
        return parse_override(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _card_names(devices: Any, default: Any) -> list[str]:
    return [f"{d.name} (default)" if d is default else d.name for d in devices]


def _gpu(v: str) -> str:
    try:
        return parse_device(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


@dataclass(frozen=True)
class _Input:
    shape: tuple[int, ...]
    dtype: str = "float32"
    typed: bool = False  # an --input-dtype was given for it


class _InputShape(argparse.Action):
    """`--input-shape DIMS`: one more input, float32 until an --input-dtype after it says otherwise."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        try:
            dims = parse_dims(str(values))
        except ValueError as err:
            parser.error(f"--input-shape {values!r}: {err}")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), _Input(dims)])


class _InputDtype(argparse.Action):
    """`--input-dtype DTYPE`: the dtype of the --input-shape given just before it (as `-o` follows
    what it names), so `--input-shape 8 --input-shape 8 --input-dtype int64` types the second."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        inputs: list[_Input] = list(getattr(namespace, self.dest, None) or [])
        if values not in DTYPES:
            parser.error(f"--input-dtype {values!r}: expected one of {', '.join(sorted(DTYPES))}")
        if not inputs:
            parser.error(f"--input-dtype {values}: give it after the --input-shape it applies to")
        if inputs[-1].typed:
            parser.error(f"--input-dtype {values}: the --input-shape before it has a dtype already "
                         f"({inputs[-1].dtype}); one --input-dtype per --input-shape")
        inputs[-1] = _Input(inputs[-1].shape, str(values), typed=True)
        setattr(namespace, self.dest, inputs)


class _Refuse(argparse.Action):
    """`explain --no-memory`: a usage error (there is nothing to explain without the estimate)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string} does not apply: explain walks through the memory estimate "
                     "(parameters only: vramlint check --no-memory)")


def model_specs(specs: Sequence[str]) -> list[tuple[str | None, str]]:
    """`NAME` or `path/to/file.py::NAME`."""
    out = []
    for spec in specs:
        file, sep, name = spec.rpartition("::")
        out.append((file if sep else None, name))
    return out


def settings_for(args: argparse.Namespace, start: Path) -> Settings:
    """Flags over the configuration file."""
    names = tuple(name for _, name in model_specs(args.model if isinstance(args.model, list) else [args.model]))
    flags = Settings(extra_paths=tuple(os.path.abspath(p) for p in args.extra_path), models=names,
                     inputs=tuple(InputSpec(i.shape, i.dtype) for i in args.inputs), batch_size=args.batch_size,
                     precision=args.precision, optimizer=args.optimizer, device=args.gpu, mode=args.mode,
                     checkpointing=args.checkpointing, context=args.context, world_size=args.world_size,
                     nodes=args.nodes, memory=args.memory, max_batch=args.max_batch,
                     overrides=tuple(args.overrides))
    config = Path(args.config) if args.config else None
    return load_settings(start, flags, config)


def iter_python_files(paths: Sequence[str]) -> Iterator[str]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
                for name in sorted(filenames):
                    if name.endswith(".py"):
                        yield os.path.join(dirpath, name)
        else:
            yield str(path)


def run_check(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        raise UsageError("; ".join(f"{p}: no such file or directory" for p in missing))
    settings = settings_for(args, Path(args.paths[0]).resolve())
    fmt = _format_of(args, settings)
    files = list(iter_python_files(args.paths))
    specs = model_specs(args.model)
    options = Options(palette_for(sys.stdout) if fmt.coloured else PLAIN, quiet=args.quiet or args.silent,
                      layers=args.layers)
    # Line formats stream: each file's lines as soon as it (and the files before it) is done. With
    # --model, a name found in no file is a usage error with nothing on stdout, which only the last
    # file can decide; --statistics prints counts only.
    shown = not args.silent and not args.statistics
    stream = fmt.lines is not None and not specs and shown
    results = []
    cache = open_cache(settings, args.cache_dir, enabled=not args.no_cache)
    with FileProgress(len(files), enabled=not options.quiet) as progress:
        for result in analyze_all(files, settings, args.jobs or os.cpu_count() or 1, cache):
            results.append(_only(result, specs) if specs else result)
            progress.advance()
            if stream and fmt.lines is not None:
                _print_lines(fmt.lines(result, options))
    if specs:
        found = {m.name for r in results for m in r.models}
        absent = [name for _, name in specs if name not in found]
        if absent:
            unfiltered = replace(settings, models=(), memory=False)
            everything = {m.name for f in files for m in analyze_safely(f, unfiltered).models}
            raise UsageError(f"no model named {', '.join(absent)}; models found: {', '.join(sorted(everything)) or 'none'}")
    if args.statistics and not args.silent:
        _print_lines([statistics.as_json(results)] if fmt.machine_json else statistics.table(results, options.palette))
    elif shown:
        before = [] if stream or fmt.lines is None else [line for r in results for line in fmt.lines(r, options)]
        _print_lines(before + fmt.end(results, options))
    fail_on = args.fail_on or fail_on_of(settings) or "error"
    return 1 if _fails(results, fail_on) and not args.exit_zero else 0


def _format_of(args: argparse.Namespace, settings: Settings) -> OutputFormat:
    """--output-format, else `output-format` in the configuration, else full."""
    if args.output_format is not None:
        return output_format(args.output_format)
    configured = check_option(settings, "output-format")
    if configured is None:
        return output_format("full")
    if configured not in choices():
        where = "vramlint.toml" if Path(settings.config_file or "").name == "vramlint.toml" else "[tool.vramlint]"
        raise ConfigError(f"{settings.config_file}: `output-format` in {where}: expected one of "
                          f"{', '.join(choices())}, got {configured!r}")
    return output_format(configured)


def _print_lines(lines: list[str]) -> None:
    if lines:
        print("\n".join(lines), flush=True)


def _only(fa: FileAnalysis, specs: list[tuple[str | None, str]]) -> FileAnalysis:
    """The models of `fa` that a FILE::NAME spec names (plain names were filtered already)."""
    def wanted(m: ModelResult) -> bool:
        return any(name == m.name and (file is None or _same(file, fa.path)) for file, name in specs)

    models = [m for m in fa.models if wanted(m)]
    kept = {m.name for m in models}
    return replace(fa, models=models, findings=[f for f in fa.findings if f.model is None or f.model in kept])


def _same(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _fails(results: list[FileAnalysis], fail_on: str) -> bool:
    if fail_on == "never":
        return False
    bar = SEVERITY_RANK[fail_on]
    if any(r.errors for r in results):
        return True  # a file that cannot be analysed is an error
    return any(SEVERITY_RANK[f.severity] >= bar for r in results for f in r.findings)


def _one_model(args: argparse.Namespace) -> tuple[FileAnalysis, ModelResult, Settings]:
    if not os.path.isfile(args.path):
        raise UsageError(f"{args.path}: no such file")
    settings = settings_for(args, Path(args.path).resolve())
    settings = replace(settings, memory=True) if args.memory else settings
    result = cached.analyze_file(args.path, settings, open_cache(settings, args.cache_dir, enabled=not args.no_cache))
    for e in result.errors:
        print(f"{e.location or args.path}: error: {e.reason}", file=sys.stderr)
    if result.errors:  # a syntax error, an unreadable file: an error finding, as for `check`
        raise AnalysisFailed
    model = next((m for m in result.models if m.name == args.model.rpartition("::")[2]), None)
    if model is None:
        found = ", ".join(m.name for m in cached.analyze_file(args.path, replace(settings, models=(), memory=False),
                                                               None).models)
        raise UsageError(f"no model named {args.model}; models found: {found or 'none'}")
    return result, model, settings


def run_report(args: argparse.Namespace) -> int:
    from vramlint.cli.report_html import report_timeline, with_timeline, write_html
    from vramlint.render.report import report

    result, model, settings = _one_model(args)
    timeline = report_timeline(args.path, model, settings) if args.html or args.format == "json" else None
    if args.html:
        write_html(args.html, args.path, model, timeline)
    if args.format == "json":
        doc = json_output.document([replace(result, models=[model])], layers=True)
        print(json.dumps(with_timeline(doc, timeline), indent=2))
    elif args.html != "-":
        print(report(args.path, model))
    return 0 if model.memory is None or fits(model) else 1


def fits(m: ModelResult) -> bool:
    """Whether the peak that `mode` names (training, or inference with `mode = "infer"`) fits the GPU."""
    e = m.memory
    assert e is not None
    if m.setup is not None and m.setup["mode"] == "infer":
        return e.inference_need <= e.device_memory
    return e.fits


def run_explain(args: argparse.Namespace) -> int:
    from vramlint.render.explain import explain

    _, model, _ = _one_model(args)
    print(explain(args.path, model))
    return 0 if model.memory is not None else 1


def run_clean(args: argparse.Namespace) -> int:
    """`vramlint clean`: remove the cache folder the other commands would use, and say which."""
    start = Path(args.path).resolve()
    settings = load_settings(start, Settings(), Path(args.config) if args.config else None)
    root = cache_root(settings, args.cache_dir)
    from vramlint.cache.store import Cache

    removed = Cache(Path(root)).clear()
    for path in removed:
        print(f"Removed the cache {path}")
    if not removed:
        print(f"No cache at {root}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `vramlint`: the help, as git and ruff do, and a usage exit code
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command == "check":
            return run_check(args)
        if args.command == "report":
            return run_report(args)
        if args.command == "clean":
            return run_clean(args)
        if args.command == "diff":
            return diff.run_diff(args)
        if args.command == "lsp":
            from vramlint.lsp.server import main as lsp_main

            return lsp_main(args.tcp)
        return run_explain(args)
    except (UsageError, ConfigError) as err:
        print(f"vramlint: error: {err}", file=sys.stderr)
        return 2
    except AnalysisFailed:
        return 1
    except BrokenPipeError:  # `vramlint check | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # never a traceback for a user: say what broke, exit 2
        if os.environ.get("VRAMLINT_DEBUG"):
            raise
        print(f"vramlint: internal error: {type(err).__name__}: {err} (VRAMLINT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2
