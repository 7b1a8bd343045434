"""Fetch and unpack pure-Python library sources (wheels) for tests and fixture scripts.

``library_source("torchvision", TORCHVISION_VERSION)`` returns a directory that
contains the unpacked wheel (e.g. the ``torchvision/`` package folder), suitable
for putting on a search path.  Wheels are downloaded once into
``<repo>/.cache/wheels`` with ``python -m pip download`` and unpacked once into
``<repo>/.cache/libs/<dist>-<version>/``.  Only the standard library is used.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

TORCHVISION_VERSION = "0.26.0"
TRANSFORMERS_VERSION = "5.17.0"
TIMM_VERSION = "1.0.31"
DIFFUSERS_VERSION = "0.42.1"
PEFT_VERSION = "0.21.2"  # the newest peft; it requires transformers without a bound, and runs on 5.17.0
ACCELERATE_VERSION = "1.16.0"  # what peft imports (a dependency of it), the newest
BITSANDBYTES_VERSION = "0.50.2"  # only to show that an installed bitsandbytes changes nothing (its stub wins)
EINOPS_VERSION = "0.8.2"  # what tests/fixtures/public/ model code imports besides torch

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
WHEELS_DIR = CACHE_DIR / "wheels"
LIBS_DIR = CACHE_DIR / "libs"

_MARKER = ".unpacked"


def _normalize(dist: str) -> str:
    """Wheel file names use the distribution name with runs of -_. turned into '_'."""
    return re.sub(r"[-_.]+", "_", dist).lower()


def _find_wheel(dist: str, version: str) -> pathlib.Path | None:
    if not WHEELS_DIR.is_dir():
        return None
    matches = sorted(p for p in WHEELS_DIR.glob("*.whl") if _is_wheel_of(p, dist, version))
    return matches[0] if matches else None


def _is_wheel_of(path: pathlib.Path, dist: str, version: str) -> bool:
    # <name>-<version>[+local]-<tags>.whl
    stem = f"{_normalize(dist)}-{version}".lower()
    name = path.name.lower()
    return name.startswith(stem) and name[len(stem) : len(stem) + 1] in ("-", "+")


def _download_wheel(dist: str, version: str) -> pathlib.Path:
    wheel = _find_wheel(dist, version)
    if wheel is not None:
        return wheel
    WHEELS_DIR.mkdir(parents=True, exist_ok=True)
    # Download into a private temporary directory, then move into place atomically,
    # so a concurrent process never sees a partially written wheel.
    with tempfile.TemporaryDirectory(dir=WHEELS_DIR, prefix=".dl-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"{dist}=={version}",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
            tmp,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip download of {dist}=={version} failed "
                f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        found = [p for p in pathlib.Path(tmp).glob("*.whl") if _is_wheel_of(p, dist, version)]
        if not found:
            raise RuntimeError(f"pip download of {dist}=={version} produced no wheel in {tmp}")
        for src in found:
            dest = WHEELS_DIR / src.name
            if not dest.exists():
                os.replace(src, dest)
    wheel = _find_wheel(dist, version)
    assert wheel is not None
    return wheel


def library_source(dist: str, version: str) -> pathlib.Path:
    """Ensure ``<repo>/.cache/libs/<dist>-<version>/`` holds the unpacked wheel; return it."""
    target = LIBS_DIR / f"{dist}-{version}"
    if (target / _MARKER).is_file():
        return target
    wheel = _download_wheel(dist, version)
    LIBS_DIR.mkdir(parents=True, exist_ok=True)
    # Unpack into a private directory and rename it into place; if another process
    # won the race, keep its copy and discard ours.
    tmp = pathlib.Path(tempfile.mkdtemp(dir=LIBS_DIR, prefix=f".{dist}-{version}-"))
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)
        (tmp / _MARKER).write_text(wheel.name + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp creates it 0700
        if target.exists() and not (target / _MARKER).is_file():
            # Leftover from an interrupted older extraction: remove it.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / _MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = [
    "ACCELERATE_VERSION",
    "BITSANDBYTES_VERSION",
    "DIFFUSERS_VERSION",
    "EINOPS_VERSION",
    "PEFT_VERSION",
    "TIMM_VERSION",
    "TORCHVISION_VERSION",
    "TRANSFORMERS_VERSION",
    "library_source",
]
