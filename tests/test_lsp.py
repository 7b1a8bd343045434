"""The language server end to end: a real LSP client (pytest-lsp) speaking JSON-RPC to
`vramlint lsp` in its own process, with VS Code's client capabilities."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = Path(__file__).resolve().parents[1]
MLP = (ROOT / "examples" / "mlp.py").read_text()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "vramlint", "lsp"]))
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("ws")
    # What VS Code answers to the server's requests (pytest-lsp's client answers nothing by itself).
    lsp_client.refreshes = []  # type: ignore[attr-defined]
    lsp_client.statuses = []  # type: ignore[attr-defined]
    lsp_client.registrations = []  # type: ignore[attr-defined]

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(*args: types.RegistrationParams) -> None:
        lsp_client.registrations.extend(args[-1].registrations)  # type: ignore[attr-defined]

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def lens_refresh(*args: None) -> None:
        lsp_client.refreshes.append("codeLens")  # type: ignore[attr-defined]

    @lsp_client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def hint_refresh(*args: None) -> None:
        lsp_client.refreshes.append("inlayHint")  # type: ignore[attr-defined]

    @lsp_client.feature("vramlint/status")
    def on_status(*args: object) -> None:
        lsp_client.statuses.append(args[-1])  # type: ignore[attr-defined]

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        workspace_folders=[types.WorkspaceFolder(root.as_uri(), "ws")],
        initialization_options={"vramlint": {"gpu": "H100"}},
    ))
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def open_doc(client: LanguageClient, name: str, text: str) -> str:
    path = client.root / name  # type: ignore[attr-defined]
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


@pytest.mark.asyncio
async def test_smoke(client: LanguageClient) -> None:
    uri = await open_doc(client, "mlp.py", MLP)
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri), types.Position(8, 1)))
    assert hover is not None and "131,410 parameters" in hover.contents.value  # type: ignore[union-attr]
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0), types.Position(60, 0))))
    assert hints and any("100.1K params" in str(h.label) for h in hints)
    lenses = await client.text_document_code_lens_async(types.CodeLensParams(types.TextDocumentIdentifier(uri)))
    assert lenses and "131.4K params" in lenses[0].command.title  # type: ignore[union-attr]
    diags = client.diagnostics[uri]
    assert {d.code for d in diags} == {"VL301"}
