"""The language server and the persistent cache: a file opened in a new server process (a window
reopened tomorrow) is answered from the cache the previous one wrote, and every feature (hover,
inlay hints, code lens, quick fixes) answers on the cached result as on the fresh one."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

from tests.test_lsp import BIG, line_of

ROOT = Path(__file__).resolve().parents[1]


async def session(root: Path, cache: Path, name: str, text: str, edit: str | None = None) -> dict[str, Any]:
    """Start a server (cache on, in `cache`), open `name` (then change it to `edit`, unsaved), and
    collect what each feature says."""
    env = {k: v for k, v in os.environ.items() if k != "VRAMLINT_NO_CACHE"}
    env.update(VRAMLINT_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT / "server"))
    config = ClientServerConfig([sys.executable, "-m", "vramlint", "lsp"], server_env=env)
    client = await config.start()
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            workspace_folders=[types.WorkspaceFolder(root.as_uri(), "ws")],
            initialization_options={"vramlint": {"gpu": "8GiB"}}))
        path = root / name
        uri = path.as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text)))
        await diagnostics(client, uri)
        if edit is not None:
            end = time.monotonic() + 30
            while not all_entries(cache):  # the first result written (lsp/persistent.FIRST_STORE_S)
                assert time.monotonic() < end, "the server wrote no cache entry"
                await asyncio.sleep(0.05)
            del client.diagnostics[uri]
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=2, uri=uri),
                [types.TextDocumentContentChangeWholeDocument(edit)]))
            await diagnostics(client, uri)
            text = edit
        doc = types.TextDocumentIdentifier(uri)
        diags = list(client.diagnostics[uri])
        hover = await client.text_document_hover_async(types.HoverParams(doc, types.Position(line_of(text, "model ="), 1)))
        hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
            doc, types.Range(types.Position(0, 0), types.Position(1000, 0))))
        lenses = await client.text_document_code_lens_async(types.CodeLensParams(doc))
        vl001 = [d for d in diags if d.code == "VL001"]
        actions = await client.text_document_code_action_async(types.CodeActionParams(
            doc, vl001[0].range, types.CodeActionContext(vl001))) if vl001 else []
        return {
            "diagnostics": sorted((d.code, d.message, d.range.start.line, d.range.start.character) for d in diags),
            "hover": hover.contents.value if hover is not None else None,  # type: ignore[union-attr]
            "hints": sorted((h.position.line, str(h.label)) for h in hints or []),
            "lenses": sorted((lens.range.start.line, lens.command.title if lens.command else "") for lens in lenses or []),
            "actions": sorted(a.title for a in actions or []),
        }
    finally:
        await asyncio.wait_for(client.shutdown_session(), 60)


async def diagnostics(client: Any, uri: str) -> None:
    end = time.monotonic() + 60
    while uri not in client.diagnostics:
        assert time.monotonic() < end, "no diagnostics"
        await asyncio.sleep(0.02)


def all_entries(cache: Path) -> list[Path]:
    return [p for p in cache.glob("analysis-v*/*/*") if not p.name.startswith(".tmp")]


@pytest.mark.asyncio
async def test_an_edited_document_is_written_when_the_server_exits(tmp_path: Path) -> None:
    root, cache = tmp_path / "ws", tmp_path / "cache"
    root.mkdir()
    (root / "big.py").write_text(BIG)
    edited = BIG.replace("131072", "65536")
    first = await session(root, cache, "big.py", BIG, edit=edited)
    assert len(all_entries(cache)) == 2  # the first result, and the edited one at exit
    for entry in all_entries(cache):
        os.utime(entry, (1_000_000, 1_000_000))
    second = await session(root, cache, "big.py", edited)
    assert [e.stat().st_mtime > 1_000_000 for e in all_entries(cache)].count(True) == 1
    assert second == first


@pytest.mark.asyncio
async def test_a_reopened_file_starts_warm_with_every_feature(tmp_path: Path) -> None:
    root, cache = tmp_path / "ws", tmp_path / "cache"
    root.mkdir()
    (root / "big.py").write_text(BIG)
    first = await session(root, cache, "big.py", BIG)
    assert first["diagnostics"] and first["hover"] and first["hints"] and first["lenses"]
    # Written once the document's analyses pause (lsp/persistent.py), or at the latest by now.
    end = time.monotonic() + 30
    while not list(cache.glob("analysis-v*/*/*")):
        assert time.monotonic() < end, "the server wrote no cache entry"
        await asyncio.sleep(0.1)
    (entry,) = [p for p in cache.glob("analysis-v*/*/*") if not p.name.startswith(".tmp")]
    os.utime(entry, (1_000_000, 1_000_000))
    second = await session(root, cache, "big.py", BIG)
    assert entry.stat().st_mtime > 1_000_000  # read as a hit (a hit marks its entry recently used)
    assert second == first
