"""What a published vramlint holds: the sdist builds on its own (the wheel below is built from it,
as `python -m build` and pip do), with the readme, the license and every file of the package; the
wheel has the package data (py.typed, the checkpoints' config table...) and the metadata an index
shows. Built with setuptools' PEP 517 backend, in a subprocess, as the build frontends call it."""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def backend(hook: str, source: Path, out: Path) -> Path:
    """Runs a PEP 517 hook of the project's backend in `source` and returns what it built."""
    code = f"import sys; from setuptools import build_meta as b; print(b.{hook}(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def package_files() -> set[str]:
    """The files of the package that git tracks (sources and data), as paths from server/."""
    listed = subprocess.run(["git", "ls-files", "server/vramlint"], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60).stdout.split()
    return {path.removeprefix("server/") for path in listed}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    sdist = backend("build_sdist", ROOT, out)
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: no links or paths out of the folder
            tar.extractall(unpacked, filter="data")
        else:
            tar.extractall(unpacked)  # our own sdist, just built
    wheel = backend("build_wheel", next(unpacked.iterdir()), out)
    return sdist, wheel


def test_the_sdist_has_what_a_user_builds_from(built: tuple[Path, Path]) -> None:
    sdist, _ = built
    assert sdist.name == "vramlint-0.1.0.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO"} <= names
    missing = {f"server/{path}" for path in package_files()} - names
    assert not missing, f"package files the sdist lacks: {sorted(missing)}"


def test_the_wheel_has_every_package_file_and_its_data(built: tuple[Path, Path]) -> None:
    _, wheel = built
    assert wheel.name == "vramlint-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read("vramlint-0.1.0.dist-info/entry_points.txt").decode()
    data = {path for path in package_files() if not path.endswith(".py")}
    assert {"vramlint/py.typed", "vramlint/frontends/transformers/hub_configs.json"} <= data
    missing = package_files() - names
    assert not missing, f"package files the wheel lacks (package data not declared?): {sorted(missing)}"
    assert "vramlint-0.1.0.dist-info/licenses/LICENSE" in names
    assert "vramlint = vramlint.cli.main:main" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "client/"))]


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        return email.message_from_bytes(zf.read("vramlint-0.1.0.dist-info/METADATA"))


def test_the_wheel_metadata_is_what_an_index_shows(built: tuple[Path, Path]) -> None:
    meta = metadata(built[1])
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# vramlint")  # the README is the long description
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL", []))
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://github.com/vramlint/vramlint") for url in urls.values())
    classifiers = meta.get_all("Classifier", [])
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert "Topic :: Scientific/Engineering :: Artificial Intelligence" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression says it
    assert "pytorch" in meta["Keywords"].split(",")
