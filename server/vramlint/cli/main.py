"""`vramlint check PATH... [--model NAME] [--extra-path DIR] [--input-shape DIMS [--input-dtype T]]
[--batch-size N] [--format text|json] [--layers]`.

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
    check.add_argument("--batch-size", type=int, default=1, metavar="N", help="batch size of the traced inputs")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument("--layers", action="store_true", help="include the module tree in JSON output")
    return p


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
    if args.batch_size < 1:
        print("vramlint: error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    base = Settings(extra_paths=tuple(os.path.abspath(p) for p in args.extra_path), models=tuple(args.model),
                    inputs=inputs, batch_size=args.batch_size)
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
    except BrokenPipeError:  # `vramlint check | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser.error(f"unknown command {args.command}")
    return 2
