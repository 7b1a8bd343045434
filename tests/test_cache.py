"""The persistent cache (vramlint/cache/, docs/cache.md): warm results identical to cold ones,
invalidation of exactly the entries whose inputs changed (library files, configs the script
reads, the configuration's settings, upgraded or newly installed packages), concurrency,
corruption, the size bound, `vramlint clean`, `--no-cache`, and the editor reopening a file warm.

The suite runs with the cache off (conftest.py); these tests turn it on, each in its own folder.
Hits and misses are counted by the store's `Stats`, never timed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vramlint.cache import analysis as cached
from vramlint.cache.store import HEADER, Cache
from vramlint.render import json_output
from vramlint.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def vramlint(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT / "server"), **(env or {})}
    full.pop("VRAMLINT_NO_CACHE", None)
    return subprocess.run([sys.executable, "-m", "vramlint", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600)


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("analysis-v*/*/*") if not p.name.startswith(".tmp"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def changed(path: Path, text: str) -> None:
    """Rewrite a file, with an mtime that surely differs (coarse file system clocks)."""
    old = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(old + 2_000_000_000, old + 2_000_000_000))


def run(cache: Cache, path: Path, settings: Settings) -> str:
    """The file's JSON document, analysed through the cache."""
    return json.dumps(json_output.document([cached.analyze_file(str(path), settings, cache)], layers=True),
                      sort_keys=True)


NET = "import torch.nn as nn\n\nmodel = nn.Sequential(nn.Linear({}, 8), nn.ReLU(), nn.Linear(8, 2))\n"


# ---------------------------------------------------------------------- warm == cold
def test_warm_results_equal_cold_ones_on_the_public_corpus(tmp_path: Path) -> None:
    """Each public repository's user file (tests/fixtures/public/), analysed cold into an empty
    cache then warm from it: the same JSON document, each warm one a hit."""
    from tests.support.corpora import public_cases

    cache = Cache(tmp_path / "cache")
    files = []
    for i, (name, text, _, paths) in enumerate(public_cases()):
        f = write(tmp_path / f"case{i}" / "user.py", text)
        files.append((name, f, Settings(extra_paths=paths, memory=True)))
    cold = {name: run(cache, f, s) for name, f, s in files}
    assert cache.stats.writes == len(files)
    warm = {name: run(cache, f, s) for name, f, s in files}
    assert cache.stats.hits == len(files)
    assert warm == cold


TIMM_USER = "import timm\n\nmodel = timm.create_model(\"resnet18\")\n"
LLAMA_USER = """\
from transformers import LlamaConfig, LlamaForCausalLM

config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2)
model = LlamaForCausalLM(config)
"""


def test_warm_cli_output_equals_cold_on_examples_timm_and_transformers(tmp_path: Path) -> None:
    """`vramlint check --format json` in fresh processes: cold (an empty VRAMLINT_CACHE_DIR), then
    warm, with the same output; the warm run writes nothing new."""
    from tests.support.libsources import (
        TIMM_VERSION,
        TORCHVISION_VERSION,
        TRANSFORMERS_VERSION,
        library_source,
    )

    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    write(work / "timm_user.py", TIMM_USER)
    write(work / "llama_user.py", LLAMA_USER)
    paths = ["--extra-path", str(library_source("timm", TIMM_VERSION)),
             "--extra-path", str(library_source("torchvision", TORCHVISION_VERSION)),
             "--extra-path", str(library_source("transformers", TRANSFORMERS_VERSION))]
    env = {"VRAMLINT_CACHE_DIR": str(tmp_path / "cache")}
    args = ["check", ".", "--format", "json", "--layers", "--fail-on", "never", "--jobs", "2", *paths]
    cold = vramlint(*args, cwd=work, env=env)
    assert cold.returncode == 0, cold.stderr
    written = {p: p.stat().st_mtime_ns for p in entries(tmp_path / "cache")}
    assert len(written) == len(list(work.rglob("*.py")))
    warm = vramlint(*args, cwd=work, env=env)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == cold.stdout
    assert set(entries(tmp_path / "cache")) == set(written)
    assert json.loads(warm.stdout)["files"]  # not vacuous: models were found
    assert sum(len(f["models"]) for f in json.loads(warm.stdout)["files"]) >= 5


@pytest.mark.parametrize("fmt", ["text", "sarif", "github"])
def test_warm_output_equals_cold_in_every_format(tmp_path: Path, fmt: str) -> None:
    env = {"VRAMLINT_CACHE_DIR": str(tmp_path / "cache")}
    args = ["check", str(ROOT / "examples"), "--format", fmt, "--fail-on", "never"]
    cold = vramlint(*args, cwd=tmp_path, env=env)
    warm = vramlint(*args, cwd=tmp_path, env=env)
    assert cold.returncode == warm.returncode == 0
    assert entries(tmp_path / "cache") and warm.stdout == cold.stdout


# ---------------------------------------------------------------------- invalidation
@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two scripts over two libraries of a search folder: a.py imports mylib, b.py otherlib."""
    write(tmp_path / "lib" / "mylib" / "__init__.py", "import torch.nn as nn\n\ndef make():\n"
          "    return nn.Linear(4, 4)\n")
    write(tmp_path / "lib" / "otherlib.py", "import torch.nn as nn\n\ndef make():\n    return nn.Linear(3, 3)\n")
    write(tmp_path / "ws" / "a.py", "from mylib import make\n\nmodel = make()\n")
    write(tmp_path / "ws" / "b.py", "from otherlib import make\n\nmodel = make()\n")
    return tmp_path


def both(cache: Cache, root: Path, settings: Settings) -> tuple[int, int]:
    """Analyse a.py and b.py through the cache: (hits, misses + stale) of these two lookups."""
    before = (cache.stats.hits, cache.stats.misses + cache.stats.stale)
    for name in ("a.py", "b.py"):
        cached.analyze_file(str(root / "ws" / name), settings, cache)
    return cache.stats.hits - before[0], cache.stats.misses + cache.stats.stale - before[1]


def lib_settings(root: Path) -> Settings:
    return Settings(extra_paths=(str(root / "lib"),))


def test_entries_stay_valid_when_nothing_changed(project: Path) -> None:
    cache = Cache(project / "cache")
    s = lib_settings(project)
    assert both(cache, project, s) == (0, 2)
    assert both(cache, project, s) == (2, 0)


def test_editing_a_library_file_invalidates_only_its_importers(project: Path) -> None:
    cache = Cache(project / "cache")
    s = lib_settings(project)
    both(cache, project, s)
    changed(project / "lib" / "mylib" / "__init__.py", "import torch.nn as nn\n\ndef make():\n"
            "    return nn.Linear(5, 5)\n")
    stale = cache.stats.stale
    assert both(cache, project, s) == (1, 1)  # b.py hit, a.py stale
    assert cache.stats.stale == stale + 1


def test_a_module_evaluated_by_an_earlier_analysis_counts_for_the_later_ones(tmp_path: Path) -> None:
    """a2.py, analysed after a.py in the same process, reads nothing from disk (mylib is evaluated
    already): it still depends on mylib/helpers.py, through the imports seen in the process."""
    write(tmp_path / "lib" / "mylib" / "__init__.py", "from mylib.helpers import make\n")
    helpers = write(tmp_path / "lib" / "mylib" / "helpers.py", "import torch.nn as nn\n\ndef make():\n"
                    "    return nn.Linear(4, 4)\n")
    write(tmp_path / "lib" / "otherlib.py", "import torch.nn as nn\n\ndef make():\n    return nn.Linear(3, 3)\n")
    files = [write(tmp_path / "ws" / "a.py", "from mylib import make\n\nmodel = make()\n"),
             write(tmp_path / "ws" / "a2.py", "import mylib\n\nmodel = mylib.make()\n"),
             write(tmp_path / "ws" / "b.py", "from otherlib import make\n\nmodel = make()\n")]
    cache = Cache(tmp_path / "cache")
    s = lib_settings(tmp_path)
    for f in files:
        cached.analyze_file(str(f), s, cache)
    changed(helpers, "import torch.nn as nn\n\ndef make():\n    return nn.Linear(6, 6)\n")
    for f in files:
        cached.analyze_file(str(f), s, cache)
    assert (cache.stats.hits, cache.stats.stale) == (1, 2)


def test_touching_a_file_without_changing_it_keeps_the_entry(project: Path) -> None:
    cache = Cache(project / "cache")
    s = lib_settings(project)
    both(cache, project, s)
    lib = project / "lib" / "mylib" / "__init__.py"
    changed(lib, lib.read_text())  # same content, new mtime
    assert both(cache, project, s) == (2, 0)
    assert both(cache, project, s) == (2, 0)  # the new stat was remembered


def test_upgrading_a_library_invalidates_only_its_importers(project: Path) -> None:
    """The package folder replaced by another version's (as pip does)."""
    cache = Cache(project / "cache")
    s = lib_settings(project)
    both(cache, project, s)
    shutil.rmtree(project / "lib" / "mylib")
    write(project / "lib" / "mylib" / "__init__.py", "from mylib.layers import make\n")
    write(project / "lib" / "mylib" / "layers.py", "import torch.nn as nn\n\ndef make():\n    return nn.Linear(4, 4)\n")
    assert both(cache, project, s) == (1, 1)


def test_a_package_installed_after_a_failed_import_invalidates(tmp_path: Path) -> None:
    write(tmp_path / "ws" / "c.py", "import newpkg\nimport torch.nn as nn\n\nmodel = nn.Linear(newpkg.X, 2)\n")
    write(tmp_path / "ws2" / "d.py", NET.format(3))
    write(tmp_path / "lib" / "placeholder.py", "")
    cache = Cache(tmp_path / "cache")
    s = Settings(extra_paths=(str(tmp_path / "lib"),))
    files = [str(tmp_path / "ws" / "c.py"), str(tmp_path / "ws2" / "d.py")]
    for f in files:
        cached.analyze_file(f, s, cache)
    time.sleep(0.01)
    write(tmp_path / "lib" / "unrelated.py", "")  # a new file elsewhere in the folder: no matter
    hits = cache.stats.hits
    for f in files:
        cached.analyze_file(f, s, cache)
    assert cache.stats.hits - hits == 2
    write(tmp_path / "lib" / "newpkg" / "__init__.py", "X = 4\n")  # `pip install newpkg`
    hits, stale = cache.stats.hits, cache.stats.stale
    for f in files:
        cached.analyze_file(f, s, cache)
    assert (cache.stats.hits - hits, cache.stats.stale - stale) == (1, 1)  # d.py imports nothing missing


def test_a_new_distribution_version_invalidates_what_read_the_metadata(tmp_path: Path) -> None:
    """Code asking `importlib.metadata.version` (as transformers asks of its dependencies) depends
    on the installed distributions: a package upgraded (its dist-info renamed) invalidates that
    entry; an unrelated new file in the folder, and a file that never asked, do not."""
    write(tmp_path / "lib" / "foo-1.0.dist-info" / "METADATA", "Name: foo\nVersion: 1.0\n")
    files = [write(tmp_path / "ws" / "v.py", "import importlib.metadata\nimport torch.nn as nn\n\n"
                   "v = importlib.metadata.version('foo')\nmodel = nn.Linear(2, 2)\n"),
             write(tmp_path / "ws" / "n.py", NET.format(3))]
    cache = Cache(tmp_path / "cache")
    s = Settings(extra_paths=(str(tmp_path / "lib"),))

    def counts() -> tuple[int, int]:
        h, m = cache.stats.hits, cache.stats.stale
        for f in files:
            cached.analyze_file(str(f), s, cache)
        return cache.stats.hits - h, cache.stats.stale - m

    counts()
    time.sleep(0.01)
    write(tmp_path / "lib" / "notes.txt", "")
    assert counts() == (2, 0)
    (tmp_path / "lib" / "foo-1.0.dist-info").rename(tmp_path / "lib" / "foo-2.0.dist-info")
    assert counts() == (1, 1)


def test_editing_a_config_file_the_script_reads_invalidates_only_that_script(tmp_path: Path) -> None:
    """A YAML file the script opens, and a DeepSpeed JSON file, each read by one of the scripts."""
    ws = tmp_path / "ws"
    write(ws / "pyproject.toml", "[project]\nname = 'x'\n")
    write(ws / "conf.yaml", "width: 16\n")
    write(ws / "y.py", "import yaml\nimport torch.nn as nn\n\ncfg = yaml.safe_load(open('conf.yaml'))\n"
          "model = nn.Linear(cfg['width'], 2)\n")
    write(ws / "ds.json", '{"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": 4}')
    write(ws / "d.py", "import torch\nimport torch.nn as nn\nimport deepspeed\n\nmodel = nn.Linear(8, 8)\n"
          "engine, _, _, _ = deepspeed.initialize(model=model, config='ds.json')\n"
          "loss = engine(torch.randn(4, 8)).sum()\nengine.backward(loss)\n")
    write(ws / "n.py", NET.format(5))
    cache = Cache(tmp_path / "cache")
    s = Settings(memory=True)
    names = ("y.py", "d.py", "n.py")

    def counts() -> tuple[int, int]:
        h, m = cache.stats.hits, cache.stats.misses + cache.stats.stale
        for n in names:
            cached.analyze_file(str(ws / n), s, cache)
        return cache.stats.hits - h, cache.stats.misses + cache.stats.stale - m

    counts()
    assert counts() == (3, 0)
    changed(ws / "conf.yaml", "width: 32\n")
    assert counts() == (2, 1)
    changed(ws / "ds.json", '{"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 4}')
    assert counts() == (2, 1)


def test_a_from_pretrained_config_json_edited_invalidates(tmp_path: Path) -> None:
    from tests.support.libsources import TRANSFORMERS_VERSION, library_source

    ws = tmp_path / "ws"
    config = {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 100, "n_positions": 64}
    write(ws / "ckpt" / "config.json", json.dumps(config))
    write(ws / "m.py", "from transformers import AutoModelForCausalLM\n\n"
          "model = AutoModelForCausalLM.from_pretrained('./ckpt')\n")
    write(ws / "n.py", NET.format(5))
    cache = Cache(tmp_path / "cache")
    s = Settings(extra_paths=(str(library_source("transformers", TRANSFORMERS_VERSION)),))
    old = os.getcwd()
    os.chdir(ws)  # the checkpoint's folder is named relative to the current folder, as transformers does
    try:
        for n in ("m.py", "n.py"):
            cached.analyze_file(str(ws / n), s, cache)
        changed(ws / "ckpt" / "config.json", json.dumps({**config, "n_layer": 2}))
        hits, stale = cache.stats.hits, cache.stats.stale
        for n in ("m.py", "n.py"):
            cached.analyze_file(str(ws / n), s, cache)
    finally:
        os.chdir(old)
    assert (cache.stats.hits - hits, cache.stats.stale - stale) == (1, 1)


def test_a_changed_setting_invalidates_the_files_it_applies_to(project: Path) -> None:
    """A per-file table applies to its file only; a [tool.vramlint] key to every file; a key that
    does not change the analysis (`fail-on`) to none."""
    cache = Cache(project / "cache")
    config = project / "ws" / "pyproject.toml"

    def settings(text: str) -> Settings:
        config.write_text(text)
        return load_settings(project / "ws", Settings(extra_paths=(str(project / "lib"),)))

    base = '[tool.vramlint]\nextra-paths = []\n'
    both(cache, project, settings(base))
    assert both(cache, project, settings(base + 'fail-on = "never"\n')) == (2, 0)
    assert both(cache, project, settings(base + 'output-format = "concise"\n')) == (2, 0)
    assert both(cache, project, settings(base + '[tool.vramlint.models."a.py::model"]\nbatch-size = 4\n')) == (1, 1)
    assert both(cache, project, settings('[tool.vramlint]\nbatch-size = 2\n')) == (0, 2)


def test_an_editor_overlay_counts_as_content(project: Path) -> None:
    """An open, unsaved library file: its buffer's text is what the entry depends on."""
    cache = Cache(project / "cache")
    s = lib_settings(project)
    a = project / "ws" / "a.py"
    lib = project / "lib" / "mylib" / "__init__.py"
    result, deps = cached.analyze_source_recorded(str(a), a.read_text(), s)
    cached.store_source(cache, str(a), a.read_text(), s, result, deps)
    assert cached.lookup_source(cache, str(a), a.read_text(), s, {str(lib): lib.read_text()}) is not None
    assert cached.lookup_source(cache, str(a), a.read_text(), s, {str(lib): lib.read_text() + "# edit\n"}) is None


# ---------------------------------------------------------------------- the store
def test_concurrent_processes_share_the_cache(tmp_path: Path) -> None:
    """Two `vramlint check` processes filling the same cache at once: both succeed with the same
    output, every entry is whole (a third run reads them all), no temporary file is left."""
    work = tmp_path / "work"
    for i in range(6):
        write(work / f"m{i}.py", NET.format(i + 1))
    env = {"VRAMLINT_CACHE_DIR": str(tmp_path / "cache")}
    full = {**os.environ, "PYTHONPATH": str(ROOT / "server"), **env}
    full.pop("VRAMLINT_NO_CACHE", None)
    cmd = [sys.executable, "-m", "vramlint", "check", ".", "--format", "json", "--jobs", "2"]
    procs = [subprocess.Popen(cmd, cwd=work, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert outs[0][0] == outs[1][0]
    assert len(entries(tmp_path / "cache")) == 6
    assert not list((tmp_path / "cache").glob("analysis-v*/*/.tmp-*"))
    warm = vramlint(*cmd[3:], cwd=work, env=env)
    assert warm.stdout == outs[0][0]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other header", "empty"])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(tmp_path: Path, damage: str) -> None:
    f = write(tmp_path / "ws" / "n.py", NET.format(7))
    cache = Cache(tmp_path / "cache")
    cold = run(cache, f, Settings())
    (entry,) = entries(tmp_path / "cache")
    data = entry.read_bytes()
    entry.write_bytes({"garbage": b"\x00\xffnot a pickle" * 10, "truncated": data[: len(data) // 2],
                       "other header": b"vramlint-cache 0\n" + data[len(HEADER):], "empty": b""}[damage])
    assert run(cache, f, Settings()) == cold
    assert cache.stats.corrupt == 1 and cache.stats.writes == 2
    assert run(cache, f, Settings()) == cold
    assert cache.stats.hits == 1


def test_the_cache_stays_under_its_size_bound_least_recently_used_out(tmp_path: Path) -> None:
    from vramlint.analysis.results import FileAnalysis
    from vramlint.engine.reads import Deps

    cache = Cache(tmp_path / "cache", max_bytes=20_000)
    payload = FileAnalysis("x" * 3000 + ".py")
    cache.put("00keep", payload, Deps())
    for i in range(40):
        cache.put(f"{i:02d}filler", payload, Deps())
        old = time.time() - 1000 + i
        os.utime(cache.entries / f"{i:02d}"[:2] / f"{i:02d}filler", (old, old))
        if i % 8 == 0:
            assert cache.get("00keep") is not None  # recently used
    cache.prune()
    total = sum(p.stat().st_size for p in entries(tmp_path / "cache"))
    assert total <= 20_000
    assert cache.stats.evicted > 0
    assert cache.get("00keep") is not None


def test_entries_of_other_users_or_outside_the_header_are_never_unpickled(tmp_path: Path) -> None:
    """A pickle without vramlint's header is not loaded (unpickling runs code)."""
    import pickle

    cache = Cache(tmp_path / "cache")
    path = cache.entries / "ab" / "abcd"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(os.system))  # would be called by a careless loader? never loaded
    assert cache.get("abcd") is None and cache.stats.corrupt == 1
    assert not path.exists()


# ---------------------------------------------------------------------- the command line
def test_default_location_gitignore_tag_and_clean(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.vramlint]\n")
    write(tmp_path / "src" / "n.py", NET.format(9))
    r = vramlint("check", "src", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    root = tmp_path / ".vramlint_cache"
    assert (root / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (root / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert len(entries(root)) == 1
    r = vramlint("clean", cwd=tmp_path / "src")
    assert r.returncode == 0 and r.stdout.strip() == f"Removed the cache {root}"
    assert not root.exists()
    r = vramlint("clean", cwd=tmp_path)
    assert r.stdout.strip() == f"No cache at {root}"


def test_no_cache_and_cache_dir(tmp_path: Path) -> None:
    write(tmp_path / "n.py", NET.format(9))
    r = vramlint("check", "n.py", "--no-cache", cwd=tmp_path)
    assert r.returncode == 0 and not (tmp_path / ".vramlint_cache").exists()
    r = vramlint("check", "n.py", "--cache-dir", "elsewhere", cwd=tmp_path)
    assert r.returncode == 0 and len(entries(tmp_path / "elsewhere")) == 1
    assert not (tmp_path / ".vramlint_cache").exists()
    write(tmp_path / "vramlint.toml", 'cache-dir = "configured"\n')
    r = vramlint("check", "n.py", cwd=tmp_path)
    assert r.returncode == 0 and len(entries(tmp_path / "configured")) == 1
    r = vramlint("clean", "--cache-dir", "elsewhere", cwd=tmp_path)
    assert "Removed" in r.stdout and not (tmp_path / "elsewhere").exists()


def test_a_cache_dir_that_holds_other_things_is_left_as_it_is(tmp_path: Path) -> None:
    """`--cache-dir .` in a project: its .gitignore is not replaced, no CACHEDIR.TAG is added
    (backups would skip the project), and `clean` removes only vramlint's entries."""
    write(tmp_path / ".gitignore", "build/\n")
    write(tmp_path / "n.py", NET.format(9))
    r = vramlint("check", "n.py", "--cache-dir", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / ".gitignore").read_text() == "build/\n" and not (tmp_path / "CACHEDIR.TAG").exists()
    assert len(entries(tmp_path)) == 1
    r = vramlint("clean", "--cache-dir", ".", cwd=tmp_path)
    assert r.stdout.strip() == f"Removed the cache {tmp_path / 'analysis-v1'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "n.py"]


def test_a_file_named_differently_is_shown_as_named(tmp_path: Path) -> None:
    write(tmp_path / "n.py", NET.format(9))
    env = {"VRAMLINT_CACHE_DIR": str(tmp_path / "cache")}
    full = str(tmp_path / "n.py")
    plain = vramlint("check", "n.py", cwd=tmp_path, env=env)
    absolute = vramlint("check", full, cwd=tmp_path, env=env)
    assert plain.stdout.startswith("n.py:") and absolute.stdout.startswith(f"{full}:")
    assert absolute.stdout == vramlint("check", full, "--no-cache", cwd=tmp_path, env=env).stdout


def test_report_and_explain_use_the_cache(tmp_path: Path) -> None:
    write(tmp_path / "n.py", NET.format(9))
    env = {"VRAMLINT_CACHE_DIR": str(tmp_path / "cache")}
    for command in ("report", "explain"):
        args = (command, "n.py", "--model", "model", "--input-shape", "9", "--batch-size", "2")
        uncached = vramlint(*args, "--no-cache", cwd=tmp_path, env=env)
        assert uncached.returncode == 0, uncached.stderr
        first = vramlint(*args, cwd=tmp_path, env=env)
        again = vramlint(*args, cwd=tmp_path, env=env)
        assert uncached.stdout == first.stdout == again.stdout
    assert len(entries(tmp_path / "cache")) == 1  # report and explain analyse the same way


def test_an_editors_result_is_stored_with_its_searches_made(tmp_path: Path) -> None:
    """The language server leaves a memory estimate's search for the least limit (`device_total`)
    for later (memory/estimate.py `EdgeNeed`); the entry it stores carries the figure, so that a
    result read back does not search again, and the same figure."""
    path = write(tmp_path / "ws" / "m.py", "import torch\nfrom torch import nn\n\nmodel = nn.Linear(700, 700)\n"
                 "out = model(torch.randn(1500, 700))\n")
    settings = Settings(memory=True)
    text = path.read_text()
    result, deps = cached.analyze_source_recorded(str(path), text, settings, defer_searches=True)
    (m,) = result.models
    assert m.memory is not None and m.memory.training_need._value is None
    cache = Cache(tmp_path / "cache")
    cached.store_source(cache, str(path), text, settings, result, deps)
    back = cached.lookup_source(cache, str(path), text, settings)
    assert back is not None and back.models[0].memory is not None
    assert back.models[0].memory.training_need._value is not None
    assert back.models[0].memory.device_total == m.memory.device_total
