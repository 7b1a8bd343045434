"""The language server driven like an editor, timed.

    python benchmarks/lsp_latency.py [--edits 50]

Opens a generated 1,500-line model file (40 model classes, a GPT-like stack called on a batch)
and torchvision's `resnet.py`, then types `--edits` small edits into the first (a layer width,
changed one keystroke-sized edit at a time) and prints p50/p95 of: edit -> diagnostics for that
version, hover and inlay hints on the unchanged document; then the server's RSS, and its RSS after
opening all of torchvision's model files (each read after 1.5 s idle). Targets (issue 5, issue 18): p95 <= 100 ms edit -> diagnostics,
p95 <= 30 ms hover and inlay hints, RSS <= 200 MB after all of torchvision's models.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.libsources import TORCHVISION_VERSION, library_source  # noqa: E402

from benchmarks import machine  # noqa: E402


def big_file(blocks: int = 40) -> str:
    out = ["import torch", "from torch import nn", "import torch.nn.functional as F", "", ""]
    for i in range(blocks):
        out += [
            f"class Block{i}(nn.Module):",
            f"    def __init__(self, dim=256, hidden={512 + i}):",
            "        super().__init__()",
            "        self.norm = nn.LayerNorm(dim)",
            "        self.up = nn.Linear(dim, hidden)",
            "        self.down = nn.Linear(hidden, dim)",
            "        self.drop = nn.Dropout(0.1)",
            "",
            "    def forward(self, x):",
            "        h = self.norm(x)",
            "        h = F.gelu(self.up(h))",
            "        h = self.drop(self.down(h))",
            "        return x + h",
            "", "",
        ]
    out += [
        "class Stack(nn.Module):",
        "    def __init__(self, dim=256, depth=12):",
        "        super().__init__()",
        "        self.embed = nn.Embedding(1000, dim)",
        f"        self.blocks = nn.ModuleList([Block{0}(dim) for _ in range(depth)])",
        "        self.head = nn.Linear(dim, 1000)",
        "",
        "    def forward(self, ids):",
        "        x = self.embed(ids)",
        "        for b in self.blocks:",
        "            x = b(x)",
        "        return self.head(x)",
        "", "",
        "model = Stack()",
        "ids = torch.randint(0, 1000, (8, 256))",
        "logits = model(ids)",
    ]
    text = "\n".join(out) + "\n"
    lines = text.count("\n")
    return text + "".join(f"# padding line {i}\n" for i in range(max(0, 1500 - lines)))


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory (`VmHWM`: its peak so far), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Editor:
    """The language server over stdio, driven as an editor drives it: open a document and wait
    for its diagnostics, change it and wait for the diagnostics of that version (the memory
    benchmark, `lsp_memory.py`, drives it the same way)."""

    def __init__(self) -> None:
        self.client = LanguageClient("bench", "1")
        self.versions: dict[str, asyncio.Future[None]] = {}
        self.pid = 0

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(*args: types.PublishDiagnosticsParams) -> None:
            p = args[-1]
            fut = self.versions.pop(f"{p.uri}@{p.version}", None)
            if fut is not None and not fut.done():
                fut.set_result(None)

        for method in (types.WORKSPACE_INLAY_HINT_REFRESH, types.WORKSPACE_CODE_LENS_REFRESH,
                       types.CLIENT_REGISTER_CAPABILITY):
            self.client.feature(method)(lambda *a: None)
        self.client.feature("vramlint/status")(lambda *a: None)

    async def start(self, root: Path) -> None:
        """Start the server (`python -m vramlint lsp`) on the workspace folder `root`."""
        # The persistent cache on, as users have it, in a new empty folder: first analyses are
        # timed cold, whatever an earlier run wrote.
        env = {k: v for k, v in os.environ.items() if k != "VRAMLINT_NO_CACHE"}
        env["VRAMLINT_CACHE_DIR"] = tempfile.mkdtemp(prefix="vramlint-bench-cache-")
        await self.client.start_io(sys.executable, "-m", "vramlint", "lsp", env=env)
        self.pid = self.client._server.pid  # type: ignore[attr-defined]
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), workspace_folders=[types.WorkspaceFolder(root.as_uri(), "ws")]))
        self.client.initialized(types.InitializedParams())

    def _expect(self, uri: str, version: int) -> asyncio.Future[None]:
        fut = self.versions[f"{uri}@{version}"] = asyncio.get_running_loop().create_future()
        return fut

    async def open(self, path: Path, text: str) -> str:
        """Open `path` with `text` and wait for its first diagnostics; its uri."""
        uri = path.as_uri()
        fut = self._expect(uri, 1)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text)))
        await asyncio.wait_for(fut, 120)
        return uri

    async def change(self, uri: str, version: int, text: str) -> None:
        """Replace the document's text and wait for the diagnostics of `version`."""
        fut = self._expect(uri, version)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version, uri),
            [types.TextDocumentContentChangeWholeDocument(text)]))
        await asyncio.wait_for(fut, 60)

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def edited(text: str, k: int) -> str:
    """The benchmark's k-th edit of `big_file()`: the first block's hidden width changed."""
    return text.replace("hidden=512)", f"hidden={600 + k})", 1)


async def main_async(edits: int) -> None:
    editor = Editor()
    client = editor.client
    tv = library_source("torchvision", TORCHVISION_VERSION)
    with tempfile.TemporaryDirectory() as ws:
        root = Path(ws)
        (root / "pyproject.toml").write_text(f'[tool.vramlint]\nextra-paths = ["{tv}"]\n')
        await editor.start(root)
        pid = editor.pid

        text = big_file()
        big = root / "big_model.py"
        big.write_text(text)
        t0 = time.perf_counter()
        uri = await editor.open(big, text)
        first = time.perf_counter() - t0
        resnet = tv / "torchvision" / "models" / "resnet.py"
        t0 = time.perf_counter()
        await editor.open(resnet, resnet.read_text())
        resnet_first = time.perf_counter() - t0

        edit_ms: list[float] = []
        hover_ms: list[float] = []
        hint_ms: list[float] = []
        lines = text.splitlines()
        target = next(i for i, line in enumerate(lines) if "hidden=512" in line)
        for k in range(edits):
            t0 = time.perf_counter()
            await editor.change(uri, k + 2, edited(text, k))
            edit_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            await client.text_document_hover_async(types.HoverParams(
                types.TextDocumentIdentifier(uri), types.Position(target + 3, 12)))
            hover_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            await client.text_document_inlay_hint_async(types.InlayHintParams(
                types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0), types.Position(len(lines), 0))))
            hint_ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(1.5)  # idle, as an editor mostly is: the server returns freed memory
        rss_open = rss_mb(pid)
        for f in sorted((tv / "torchvision" / "models").glob("*.py")):
            if f.name != "resnet.py":
                await editor.open(f, f.read_text())
        await asyncio.sleep(1.5)
        rss_all = rss_mb(pid)
        await editor.stop()

    print("edit -> diagnostics, ms, in order:", " ".join(f"{x:.0f}" for x in edit_ms))
    print(f"first analysis: {len(text.splitlines())}-line model file {first * 1000:.0f} ms, "
          f"torchvision resnet.py {resnet_first * 1000:.0f} ms")
    print(f"{'':24} {'p50 ms':>8} {'p95 ms':>8}  target p95")
    for name, xs, target_ms in (("edit -> diagnostics", edit_ms, 100), ("hover", hover_ms, 30),
                                ("inlay hints", hint_ms, 30)):
        p95 = pct(xs, 0.95)
        print(f"{name:24} {statistics.median(xs):8.1f} {p95:8.1f}  {target_ms} ({'met' if p95 <= target_ms else 'NOT met'})")
    print(machine.describe())
    print(f"server RSS: {rss_open:.0f} MB with the two files, {rss_all:.0f} MB after all of torchvision's "
          f"models (target 200 MB: {'met' if rss_all <= 200 else 'NOT met'})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=50)
    args = ap.parse_args()
    asyncio.run(main_async(args.edits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
