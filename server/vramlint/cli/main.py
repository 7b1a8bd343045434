"""`vramlint check PATH... [--model NAME] [--extra-path DIR] [--input-shape DIMS [--input-dtype T]]
[--batch-size N] [--optimizer O] [--precision P] [--gpu G] [--checkpointing] [--format text|json] [--layers]`
and `vramlint explain FILE --model NAME [same options]`.

Exit codes: 0 success; 1 a file could not be analysed (syntax error, unreadable); 2 usage or
configuration error. Errors go to stderr with the file they concern.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from vramlint import __version__
from vramlint.analysis.api import analyze_file
from vramlint.analysis.results import FileAnalysis
from vramlint.render import json_output, text
from vramlint.settings import ConfigError, InputSpec, Settings, load_settings

SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
             ".pytest_cache", ".tox", "build", "dist"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vramlint", description="Static GPU memory estimates for PyTorch models.")
    p.add_argument("--version", action="version", version=f"vramlint {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="analyse files and folders and report the models they define")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="files or folders (default: .)")
    check.add_argument("--model", action="append", default=[], metavar="NAME",
                       help="only this model (class, module-level variable or factory); repeatable")
    check.add_argument("--extra-path", action="append", default=[], metavar="DIR",
                       help="a folder to import from before installed packages (like pyright's extraPaths)")
    check.add_argument("--input-shape", action="append", default=[], metavar="DIMS",
                       help="per-sample shape of a forward argument, e.g. 3,224,224 (repeatable, one per "
                            "argument); traces each model's forward on it")
    check.add_argument("--input-dtype", action="append", default=[], metavar="DTYPE",
                       help="dtype of the corresponding --input-shape (default float32; int64 for token ids)")
    check.add_argument("--batch-size", type=int, metavar="N",
                       help="batch size of the traced inputs (default: from the code, else 1 with --input-shape)")
    add_memory_options(check)
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument("--layers", action="store_true", help="include the module tree in JSON output")
    explain = sub.add_parser("explain", help="walk through one model's memory estimate")
    explain.add_argument("path", metavar="FILE")
    explain.add_argument("--model", required=True, metavar="NAME", help="the model (class, variable or factory)")
    explain.add_argument("--extra-path", action="append", default=[], metavar="DIR")
    explain.add_argument("--input-shape", action="append", default=[], metavar="DIMS")
    explain.add_argument("--input-dtype", action="append", default=[], metavar="DTYPE")
    explain.add_argument("--batch-size", type=int, metavar="N")
    add_memory_options(explain)
    return p


def add_memory_options(p: argparse.ArgumentParser) -> None:
    from vramlint.memory.devices import DEVICES
    from vramlint.memory.estimate import PRECISIONS
    from vramlint.memory.optimizers import OPTIMIZERS

    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="optimizer (default: adam)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32, autocast (amp-bf16, amp-fp16) or the whole model in bf16/fp16 (default: fp32)")
    p.add_argument("--gpu", default="H100", type=str.lower, choices=sorted(DEVICES), metavar="GPU",
                   help=f"the card to fit ({', '.join(d.name for d in DEVICES.values())}; default H100)")
    p.add_argument("--checkpointing", action="store_true",
                   help="gradient checkpointing: call the model's gradient_checkpointing_enable() first")
    p.add_argument("--max-batch", action="store_true",
                   help="also find the largest batch whose training step fits the GPU (traces twice)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="parameters only, no memory estimate")


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
        for p in missing:
            print(f"vramlint: error: {p}: no such file or directory", file=sys.stderr)
        return 2
    try:
        inputs = parse_inputs(args.input_shape, args.input_dtype)
    except ValueError as err:
        print(f"vramlint: error: {err}", file=sys.stderr)
        return 2
    if args.batch_size is not None and args.batch_size < 1:
        print("vramlint: error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    base = settings_from_args(args, inputs)
    try:
        settings = load_settings(Path(args.paths[0]).resolve(), base)
    except ConfigError as err:
        print(f"vramlint: error: {err}", file=sys.stderr)
        return 2
    results: list[FileAnalysis] = [analyze_file(f, settings) for f in iter_python_files(args.paths)]
    if args.model:
        found = {m.name for r in results for m in r.models}
        absent = [n for n in args.model if n not in found]
        if absent:
            everything = vramlint_models_without_filter(args, settings)
            print(f"vramlint: error: no model named {', '.join(absent)}; models found: "
                  f"{', '.join(sorted(everything)) or 'none'}", file=sys.stderr)
            return 2
    if args.format == "json":
        print(json.dumps(json_output.document(results, layers=args.layers), indent=2))
    else:
        print(text.render(results))
    return 1 if any(r.errors for r in results) else 0


def settings_from_args(args: argparse.Namespace, inputs: tuple[InputSpec, ...]) -> Settings:
    models = tuple(args.model) if isinstance(args.model, list) else (args.model,)
    return Settings(extra_paths=tuple(os.path.abspath(p) for p in args.extra_path), models=models,
                    inputs=inputs, batch_size=args.batch_size, memory=args.memory, precision=args.precision,
                    optimizer=args.optimizer, device=args.gpu, checkpointing=args.checkpointing,
                    max_batch=args.max_batch)


def run_explain(args: argparse.Namespace) -> int:
    from vramlint.render.explain import explain

    if not os.path.isfile(args.path):
        print(f"vramlint: error: {args.path}: no such file", file=sys.stderr)
        return 2
    try:
        inputs = parse_inputs(args.input_shape, args.input_dtype)
        settings = load_settings(Path(args.path).resolve(), settings_from_args(args, inputs))
    except (ValueError, ConfigError) as err:
        print(f"vramlint: error: {err}", file=sys.stderr)
        return 2
    result = analyze_file(args.path, settings)
    for e in result.errors:
        print(f"{e.location or args.path}: error: {e.reason}", file=sys.stderr)
    model = next((m for m in result.models if m.name == args.model), None)
    if model is None:
        found = ", ".join(m.name for m in analyze_file(args.path, Settings(extra_paths=settings.extra_paths)).models)
        print(f"vramlint: error: no model named {args.model}; models found: {found or 'none'}", file=sys.stderr)
        return 2
    print(explain(args.path, model))
    return 0 if model.memory is not None else 1


DTYPES = {"float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"}


def parse_inputs(shapes: list[str], dtypes: list[str]) -> tuple[InputSpec, ...]:
    if len(dtypes) > len(shapes):
        raise ValueError("more --input-dtype than --input-shape")
    out = []
    for i, spec in enumerate(shapes):
        try:
            dims = tuple(int(x) for x in spec.replace("x", ",").split(",") if x.strip())
        except ValueError:
            raise ValueError(f"--input-shape {spec!r}: expected comma-separated integers like 3,224,224") from None
        if any(d < 0 for d in dims):
            raise ValueError(f"--input-shape {spec!r}: dimensions must be non-negative")
        dtype = dtypes[i] if i < len(dtypes) else "float32"
        if dtype not in DTYPES:
            raise ValueError(f"--input-dtype {dtype!r}: expected one of {', '.join(sorted(DTYPES))}")
        out.append(InputSpec(dims, dtype))
    return tuple(out)


def vramlint_models_without_filter(args: argparse.Namespace, settings: Settings) -> set[str]:
    unfiltered = Settings(extra_paths=settings.extra_paths)  # no trace: only the names are needed
    return {m.name for f in iter_python_files(args.paths) for m in analyze_file(f, unfiltered).models}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return run_check(args)
        if args.command == "explain":
            return run_explain(args)
    except BrokenPipeError:  # `vramlint check | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser.error(f"unknown command {args.command}")
    return 2
