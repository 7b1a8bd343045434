"""Cold and warm `vramlint check` (the real executable, fresh processes) side by side, per corpus.

    python benchmarks/cache_speed.py [--repeat 3] [--only NAME]

Cold: `VRAMLINT_CACHE_DIR` set to an empty folder (each repeat a new one); warm: the same command
again on that filled cache, files unchanged. Each figure is the median of `--repeat` runs; the
output of the warm run is compared with the cold one's (JSON, byte for byte).

Corpora: torchvision 0.26's `models/*.py`; timm 1.0.31 user files (ResNet-50, EfficientNet-B0,
ViT-B/16 from their model files); `timm.create_model('resnet50')`; transformers 5.17's `models/gpt2` + `models/bert`; a user file
building a small LlamaForCausalLM from a config; the Keras corpus of the tests; a generated
project of 200 files (each a small model, importing a shared module). The two single files of
issue 18's "Done when" are `timm ResNet-50 file` and `transformers Llama file`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.libsources import (  # noqa: E402
    TIMM_VERSION,
    TORCHVISION_VERSION,
    TRANSFORMERS_VERSION,
    library_source,
)

LLAMA = """\
from transformers import LlamaConfig, LlamaForCausalLM

config = LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_hidden_layers=4,
                     num_attention_heads=8, num_key_value_heads=4)
model = LlamaForCausalLM(config)
"""
TIMM_FILES = {
    "timm_resnet50.py": "from timm.models.resnet import resnet50\n\nmodel = resnet50()\n",
    "timm_efficientnet.py": "from timm.models.efficientnet import efficientnet_b0\n\nmodel = efficientnet_b0()\n",
    "timm_vit.py": "from timm.models.vision_transformer import vit_base_patch16_224\n\nmodel = vit_base_patch16_224()\n",
}
# The commoner way to build a timm model: by name, through the registry `import timm` fills.
TIMM_BY_NAME = "import timm\n\nmodel = timm.create_model('resnet50')\n"
SHARED = """\
import torch.nn as nn


def block(width, depth):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.LayerNorm(width), nn.GELU()]
    return nn.Sequential(*layers)
"""
GENERATED = """\
import torch
import torch.nn as nn
from shared import block


class Net{i}(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, {c}, 3, padding=1)
        self.body = block({w}, {d})
        self.head = nn.Linear({w}, 10)

    def forward(self, x):
        h = self.stem(x).mean(dim=(2, 3))
        return self.head(self.body(torch.nn.functional.pad(h, (0, {w} - {c}))))


model = Net{i}()
out = model(torch.randn(8, 3, 32, 32))
"""


def exe() -> list[str]:
    found = shutil.which("vramlint", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "vramlint"]


def run(paths: list[str], extra: list[str], cache: Path, cwd: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k != "VRAMLINT_NO_CACHE"}
    env["VRAMLINT_CACHE_DIR"] = str(cache)
    t0 = time.perf_counter()
    r = subprocess.run([*exe(), "check", *paths, "--format", "json", "--fail-on", "never", *extra],
                       capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"vramlint check failed ({r.returncode}): {r.stderr[-2000:]}")
    return seconds, r.stdout


def corpora(work: Path) -> dict[str, tuple[list[str], list[str]]]:
    tv = library_source("torchvision", TORCHVISION_VERSION)
    tf = library_source("transformers", TRANSFORMERS_VERSION)
    timm = library_source("timm", TIMM_VERSION)
    for name, text in TIMM_FILES.items():
        (work / "timm").mkdir(exist_ok=True)
        (work / "timm" / name).write_text(text)
    (work / "timm_by_name").mkdir(exist_ok=True)
    (work / "timm_by_name" / "timm_create.py").write_text(TIMM_BY_NAME)
    (work / "llama").mkdir(exist_ok=True)
    (work / "llama" / "llama_user.py").write_text(LLAMA)
    gen = work / "generated"
    gen.mkdir(exist_ok=True)
    (gen / "shared.py").write_text(SHARED)
    for i in range(199):
        c, w, d = 8 + i % 5, 32 + 8 * (i % 7), 1 + i % 3
        (gen / f"model_{i:03d}.py").write_text(GENERATED.format(i=i, c=c, w=w, d=d))
    timm_paths = ["--extra-path", str(timm), "--extra-path", str(tv)]
    return {
        "timm ResNet-50 file": ([str(work / "timm" / "timm_resnet50.py")], timm_paths),
        "transformers Llama file": ([str(work / "llama" / "llama_user.py")], ["--extra-path", str(tf)]),
        "timm.create_model('resnet50') file": ([str(work / "timm_by_name" / "timm_create.py")], timm_paths),
        "torchvision/models/*.py": ([str(p) for p in sorted((tv / "torchvision" / "models").glob("*.py"))],
                                    ["--extra-path", str(tv)]),
        "timm user files (3)": ([str(work / "timm")], timm_paths),
        "transformers/models/gpt2 + bert": ([str(tf / "transformers" / "models" / "gpt2"),
                                             str(tf / "transformers" / "models" / "bert")], ["--extra-path", str(tf)]),
        "keras corpus (tests/fixtures/keras)": ([str(ROOT / "tests" / "fixtures" / "keras" / "models")], []),
        "generated project (200 files)": ([str(gen)], []),
    }


def count(paths: list[str]) -> int:
    return sum(1 for p in map(Path, paths) for f in (p.rglob("*.py") if p.is_dir() else [p])
               if "__pycache__" not in f.parts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", action="append", default=[], help="a corpus whose name contains this")
    ap.add_argument("--jobs", default=None, help="--jobs of vramlint check (default: its own, all cores)")
    args = ap.parse_args()
    print(f"load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'corpus':38} {'files':>5} {'cold s':>8} {'warm s':>8} {'ratio':>7}  same output")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, (paths, extra) in corpora(work).items():
            if args.only and not any(o in name for o in args.only):
                continue
            extra = [*extra, *(["--jobs", args.jobs] if args.jobs else [])]
            colds, warms, same = [], [], True
            for i in range(args.repeat):
                cache = work / f"cache-{abs(hash(name))}-{i}"
                seconds, cold_out = run(paths, extra, cache, work)
                colds.append(seconds)
                seconds, warm_out = run(paths, extra, cache, work)
                warms.append(seconds)
                same = same and warm_out == cold_out
                shutil.rmtree(cache, ignore_errors=True)
            cold, warm = statistics.median(colds), statistics.median(warms)
            print(f"{name:38} {count(paths):5} {cold:8.2f} {warm:8.2f} {cold / warm:6.1f}x  {'yes' if same else 'NO'}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
