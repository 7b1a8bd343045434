"""The language server end to end: a real LSP client (pytest-lsp) speaking JSON-RPC to
`vramlint lsp` in its own process, with VS Code's client capabilities.

Each test gets its own server (about a second to start) in a fresh workspace folder; what the
server sends by itself (diagnostics with their versions, `vramlint/status`, refresh requests,
registrations) is recorded in a `Session`, whose helpers wait for it with a deadline instead of
sleeping."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import to_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from vramlint.render.units import fmt_bytes

ROOT = Path(__file__).resolve().parents[1]
MLP = (ROOT / "examples" / "mlp.py").read_text()
DEADLINE = 15.0  # seconds to wait for anything the server sends by itself
T = TypeVar("T")

# A class with a forward, called on a batch of 8 in the file: layer hints, forward hints, hovers.
NET = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        self.fc1 = nn.Linear(32, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, 10)

    def forward(self, x):
        h = self.act(self.fc1(x))
        return self.fc2(h)


model = Net()
out = model(torch.randn(8, 32))
"""
NET_PARAMS = 32 * 64 + 64 + 64 * 10 + 10  # 2,762

# Over an 8 GiB card at batch 131072 (VL001, error); a classifier on an un-pooled feature map
# (VL101, warning) without inputs (VL301, info).
BIG = """\
import torch
import torch.nn as nn

model = nn.Sequential(
    nn.Linear(4096, 4096), nn.ReLU(),
    nn.Linear(4096, 4096), nn.ReLU(),
    nn.Linear(4096, 4096),
)
x = torch.randn(131072, 4096)
y = model(x)

head = nn.Sequential(nn.Linear(64 * 56 * 56, 4096), nn.ReLU(), nn.Linear(4096, 10))
"""

SEVERITY = {types.DiagnosticSeverity.Error: "error", types.DiagnosticSeverity.Warning: "warning",
            types.DiagnosticSeverity.Information: "info"}


# ------------------------------------------------------------------------------------ the session
@dataclass
class Session:
    """The client, its workspace folder, what the server sent by itself, and helpers."""

    client: LanguageClient
    root: Path
    published: list[types.PublishDiagnosticsParams] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    refreshes: list[str] = field(default_factory=list)
    registrations: list[types.Registration] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ waiting
    async def until(self, what: str, check: Callable[[], T | None], timeout: float = DEADLINE) -> T:
        end = time.monotonic() + timeout
        while True:
            got = check()
            if got is not None and got is not False:
                return got
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def publish(self, uri: str, version: int | None = None, after: int = 0,
                      timeout: float = DEADLINE) -> types.PublishDiagnosticsParams:
        """The first diagnostics published for `uri` (of `version`) from index `after` on."""
        def find() -> types.PublishDiagnosticsParams | None:
            return next((p for p in self.published[after:]
                         if p.uri == uri and (version is None or p.version == version)), None)
        return await self.until(f"diagnostics of {uri} version {version}", find, timeout)

    async def status(self, uri: str, version: int, after: int = 0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((s for s in self.statuses[after:] if s["uri"] == uri and s["version"] == version), None)
        return await self.until(f"status of {uri} version {version}", find)

    # ------------------------------------------------------------------ documents
    def uri(self, name: str) -> str:
        return (self.root / name).as_uri()

    async def open(self, name: str, text: str, timeout: float = DEADLINE) -> str:
        """Write the file, open it (version 1), wait for its first diagnostics (`timeout`: for a
        file that reads a large library such as transformers)."""
        path = self.root / name
        path.write_text(text)
        uri = path.as_uri()
        self.versions[uri], self.texts[uri] = 1, text
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "python", 1, text)))
        await self.publish(uri, 1, timeout=timeout)
        return uri

    def change(self, uri: str, text: str) -> int:
        """Send the whole new text (unsaved); the new version, without waiting."""
        self.versions[uri] += 1
        self.texts[uri] = text
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
            [types.TextDocumentContentChangeWholeDocument(text)]))
        return self.versions[uri]

    async def edit(self, uri: str, text: str, timeout: float = DEADLINE) -> list[types.Diagnostic]:
        start = len(self.published)
        version = self.change(uri, text)
        return list((await self.publish(uri, version, after=start, timeout=timeout)).diagnostics)

    async def save(self, uri: str) -> list[types.Diagnostic]:
        start = len(self.published)
        Path(fs_path(uri)).write_text(self.texts[uri])
        self.client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))
        return list((await self.publish(uri, self.versions[uri], after=start)).diagnostics)

    # ------------------------------------------------------------------ requests
    async def hover(self, uri: str, line: int, character: int) -> str | None:
        h = await self.client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(uri), types.Position(line, character)))
        if h is None:
            return None
        assert isinstance(h.contents, types.MarkupContent) and h.contents.kind == types.MarkupKind.Markdown
        return h.contents.value

    async def hints(self, uri: str) -> dict[int, str]:
        """Line (0-based) -> the labels of its inlay hints, joined."""
        out: dict[int, str] = {}
        for h in await self.raw_hints(uri):
            assert isinstance(h.label, str)
            out[h.position.line] = (out.get(h.position.line, "") + " " + h.label).strip()
        return out

    async def raw_hints(self, uri: str) -> list[types.InlayHint]:
        got = await self.client.text_document_inlay_hint_async(types.InlayHintParams(
            types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0), types.Position(10_000, 0))))
        return list(got or [])

    async def lenses(self, uri: str) -> dict[int, str]:
        got = await self.client.text_document_code_lens_async(types.CodeLensParams(types.TextDocumentIdentifier(uri)))
        out = {}
        for lens in got or []:
            assert lens.command is not None
            out[lens.range.start.line] = lens.command.title
        return out

    async def actions(self, uri: str, diags: list[types.Diagnostic]) -> list[types.CodeAction]:
        got = await self.client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(uri), diags[0].range, types.CodeActionContext(diags)))
        assert all(isinstance(a, types.CodeAction) for a in got or [])
        return [a for a in got or [] if isinstance(a, types.CodeAction)]


def fs_path(uri: str) -> str:
    path = to_fs_path(uri)
    assert path is not None
    return path


def line_of(text: str, needle: str) -> int:
    """The 0-based line of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def apply_edit(text: str, edit: types.TextEdit) -> str:
    lines = text.splitlines(keepends=True)

    def offset(p: types.Position) -> int:
        return sum(len(x) for x in lines[: p.line]) + p.character

    return text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]


def only_edit(action: types.CodeAction, uri: str) -> types.TextEdit:
    assert action.edit is not None and action.edit.changes is not None
    (edit,) = action.edit.changes[uri]
    return edit


def by_code(diags: list[types.Diagnostic] | Any, code: str) -> list[types.Diagnostic]:
    return [d for d in diags if d.code == code]


def cli_findings(path: Path, *flags: str) -> set[tuple[str, str, str, int, int]]:
    """`vramlint check --format json` on the saved file: (code, severity, message, line, column)."""
    run = subprocess.run([sys.executable, "-m", "vramlint", "check", str(path), "--format", "json",
                          "--fail-on", "never", *flags], capture_output=True, text=True, cwd=path.parent, timeout=60)
    assert run.returncode == 0, run.stderr
    (f,) = json.loads(run.stdout)["files"]
    return {(x["code"], x["severity"], x["message"], x["line"], x["column"]) for x in f["findings"]}


def lsp_findings(diags: list[types.Diagnostic] | Any) -> set[tuple[str, str, str, int, int]]:
    return {(str(d.code), SEVERITY[d.severity], d.message, d.range.start.line + 1, d.range.start.character + 1)
            for d in diags if d.code and d.code != "VL000"}


def as_dict(obj: Any) -> Any:
    """A custom notification's params (pygls gives them as named tuples) as plain data."""
    if hasattr(obj, "_asdict"):
        return {k: as_dict(v) for k, v in obj._asdict().items()}
    if isinstance(obj, (list, tuple)):
        return [as_dict(v) for v in obj]
    return obj


# ------------------------------------------------------------------------------------ the fixture
@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "vramlint", "lsp"]))
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A server with `initializationOptions` {"vramlint": {"gpu": "H100", **request.param}} (a test
    gives its own with `@pytest.mark.parametrize("client", [{...}], indirect=True)`)."""
    root = tmp_path_factory.mktemp("ws")
    s = Session(lsp_client, root)
    lsp_client.session = s  # type: ignore[attr-defined]

    # What VS Code answers to the server's requests (pytest-lsp's client answers nothing by itself).
    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(*args: types.RegistrationParams) -> None:
        s.registrations.extend(args[-1].registrations)

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def lens_refresh(*args: None) -> None:
        s.refreshes.append("codeLens")

    @lsp_client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def hint_refresh(*args: None) -> None:
        s.refreshes.append("inlayHint")

    @lsp_client.feature("vramlint/status")
    def on_status(*args: object) -> None:
        s.statuses.append(as_dict(args[-1]))

    # Every publication with its version (pytest-lsp's own handler keeps only the latest list).
    def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
        s.published.append(params)
        lsp_client.diagnostics[params.uri] = params.diagnostics

    lsp_client.protocol.fm.features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = on_diagnostics

    options = {"gpu": "H100", **getattr(request, "param", {})}
    capabilities = client_capabilities("visual-studio-code")
    assert capabilities.workspace is not None  # pytest-lsp's copy predates VS Code's inlay hints (1.67)
    capabilities.workspace.inlay_hint = types.InlayHintWorkspaceClientCapabilities(refresh_support=True)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities,
        workspace_folders=[types.WorkspaceFolder(root.as_uri(), "ws")],
        initialization_options={"vramlint": options},
    ))
    yield
    # Bounded: a server that stopped answering fails its test instead of hanging the run.
    await asyncio.wait_for(lsp_client.shutdown_session(), 60)


@pytest.fixture
def lsp(client: LanguageClient) -> Session:
    session: Session = client.session  # type: ignore[attr-defined]
    return session


def options(**values: Any) -> Any:
    """Parametrize the `client` fixture with these editor settings."""
    return pytest.mark.parametrize("client", [values], indirect=True)


# ------------------------------------------------------------------------------------ tests
@pytest.mark.asyncio
async def test_smoke(client: LanguageClient, lsp: Session) -> None:
    uri = await lsp.open("mlp.py", MLP)
    hover = await lsp.hover(uri, 8, 1)
    assert hover is not None and "131,410 parameters" in hover
    hints = await lsp.hints(uri)
    # One per line of the Sequential literal, the class's layers, the factory's comprehension.
    assert {line: hints[line] for line in range(9, 14)} == {
        9: "100.1K params", 10: "10.1K params", 11: "10.1K params", 12: "10.1K params", 13: "1.0K params"}
    assert hints[line_of(MLP, "self.head =")] == "1.0K params"
    assert hints[line_of(MLP, "return nn.Sequential(")] == "100.1K params"
    lenses = await lsp.lenses(uri)
    assert "131.4K params" in lenses[8]
    diags = client.diagnostics[uri]
    assert {d.code for d in diags} == {"VL301"}
    # The status notification names each model's line (0-based), for the client's status item.
    status = await lsp.status(uri, 1)
    assert {m["name"]: m["line"] for m in status["models"]} == {
        "model": line_of(MLP, "model = nn.Sequential("), "MLP": line_of(MLP, "class MLP"),
        "make_mlp": line_of(MLP, "def make_mlp")}


# ------------------------------------------------------------------------------------ diagnostics
@pytest.mark.asyncio
async def test_diagnostics_over_budget_match_the_cli(lsp: Session) -> None:
    """The project's configuration (gpu = "8GiB") wins over the editor's ("H100"): the same
    findings as `vramlint check --format json` on the file, each linked to its rule."""
    (lsp.root / "pyproject.toml").write_text('[tool.vramlint]\ngpu = "8GiB"\n')
    uri = await lsp.open("big.py", BIG)
    diags = lsp.client.diagnostics[uri]
    assert lsp.published[-1].version == 1
    assert {(d.code, d.severity) for d in diags} == {
        ("VL001", types.DiagnosticSeverity.Error), ("VL101", types.DiagnosticSeverity.Warning),
        ("VL301", types.DiagnosticSeverity.Information)}
    assert lsp_findings(diags) == cli_findings(lsp.root / "big.py")
    (vl001,) = by_code(diags, "VL001")
    assert "more than the 8GiB's 8.00 GiB at batch 131072" in vl001.message
    assert vl001.range.start == types.Position(line_of(BIG, "model = "), 0)
    for d in diags:
        assert d.source == "vramlint"
        assert d.code_description is not None
        assert d.code_description.href.endswith(f"docs/rules.md#{str(d.code).lower()}")
    status = await lsp.status(uri, 1)
    (model,) = [m for m in status["models"] if m["name"] == "model"]
    assert model["fits"] is False and model["deviceMemory"] == 8 * 2**30
    assert model["trainPeak"] > model["deviceMemory"] and status["errors"] == 1


@pytest.mark.asyncio
async def test_diagnostics_on_change_are_debounced_and_on_save(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    start = len(lsp.published)
    # Five quick changes: only the last version is analysed and published.
    for width in (33, 34, 35, 36, 48):
        lsp.change(uri, NET.replace("Linear(32, width)", f"Linear({width}, width)")
                   .replace("randn(8, 32)", f"randn(8, {width})"))
    last = await lsp.publish(uri, 6, after=start)
    assert [p.version for p in lsp.published[start:] if p.uri == uri] == [6]
    # The class Net needs no input shapes: its instance is estimated on `model(torch.randn(8, 48))`.
    assert by_code(last.diagnostics, "VL301") == []
    status = await lsp.status(uri, 6)
    assert {m["name"]: m["params"] for m in status["models"]}["model"] == 48 * 64 + 64 + 650
    # Saving analyses again (same version) and agrees with the CLI on the saved file.
    diags = await lsp.save(uri)
    assert lsp.published[-1].version == 6
    assert lsp_findings(diags) == cli_findings(lsp.root / "net.py", "--gpu", "H100")
    # Closing clears the file's diagnostics.
    start = len(lsp.published)
    lsp.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    assert list((await lsp.publish(uri, after=start)).diagnostics) == []


# ------------------------------------------------------------------------------------ hover
@pytest.mark.asyncio
async def test_hover(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    # The model's name: its summary, every component, the GPU share, the setup with sources.
    md = await lsp.hover(uri, line_of(NET, "model = Net()"), 2)
    assert md is not None
    assert md.startswith(f"**model** (instance): {NET_PARAMS:,} parameters")
    for row in ("| weights | 11.5 KiB |", "| gradients | 11.5 KiB |", "| optimizer state | 23.0 KiB |",
                "| **training peak** |", "| inference peak |", "| kept for backward |"):
        assert row in md, md
    assert re.search(r"training fits in the H100-80GB \(79\.19 GiB\): needs [\d.]+ MiB with the CUDA context "
                     r"\(\d+%\)", md), md
    # The figures by the CLI's names (`vramlint check`'s memory lines).
    for label in ("| **training peak** |", "| inference peak |", "| device total |", "| cuBLAS workspaces |"):
        assert label in md, md
    assert "- batch size: `8` (code: the call at line 18)" in md
    assert "- optimizer: `adam` (default)" in md
    assert "- GPU: `H100-80GB` (editor settings)" in md
    # The class's name: its own summary (no inputs for the class alone).
    md = await lsp.hover(uri, line_of(NET, "class Net"), 7)
    assert md is not None and md.startswith(f"**Net** (class): {NET_PARAMS:,} parameters")
    assert "No memory estimate:" in md
    # No batch size was used: the hover says so rather than showing Python's `None`.
    assert "- batch size: not given" in md and "None" not in md, md
    # A layer's construction line: its parameters, output shape, bytes kept for backward.
    md = await lsp.hover(uri, line_of(NET, "self.fc1 ="), 12)
    assert md == "**fc1**: `Linear`, 2,112 parameters\n- output: `[B, 64]`"
    md = await lsp.hover(uri, line_of(NET, "self.act ="), 20)
    assert md == "**act**: `ReLU`, 0 parameters\n- output: `[B, 64]`\n- kept for backward: 2.0 KiB"
    # A forward line: the tensor it computes.
    md = await lsp.hover(uri, line_of(NET, "h = self.act"), 10)
    assert md is not None and "`[B, 64]` float32, 2.0 KiB" in md and "batch 8" in md
    md = await lsp.hover(uri, line_of(NET, "return self.fc2"), 10)
    assert md is not None and "`[B, 10]` float32, 320 B" in md
    # Nothing elsewhere.
    for needle, col in (("import torch", 3), ("class Net", 1), ("def forward", 6), ("super()", 9),
                        ("out = model", 1)):
        assert await lsp.hover(uri, line_of(NET, needle), col) is None, needle
    assert await lsp.hover(uri, 2, 0) is None  # a blank line
    assert await lsp.hover(uri, 500, 0) is None  # past the end


@pytest.mark.asyncio
async def test_hover_on_layers_inside_a_sequential_literal(lsp: Session) -> None:
    """The model's summary on its name only: its other lines construct layers, each with its own hover."""
    uri = await lsp.open("mlp.py", MLP)
    first = line_of(MLP, "nn.Linear(1000, 100), nn.ReLU()")
    md = await lsp.hover(uri, first, 8)
    assert md is not None and md.startswith("**0**: `Linear`, 100,100 parameters"), md
    assert "- output: `[B, 100]`" in md
    md = await lsp.hover(uri, first, 30)  # on the ReLU of the same line
    assert md is not None and md.startswith("**1**: `ReLU`, 0 parameters"), md
    assert "kept for backward: 100.0 KiB" in md
    md = await lsp.hover(uri, line_of(MLP, "model = nn.Sequential("), 2)
    assert md is not None and md.startswith("**model** (instance): 131,410 parameters")
    assert await lsp.hover(uri, line_of(MLP, "model = nn.Sequential("), 12) is None  # not on the name


DEEP = """\
import torch.nn as nn


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(8, 8), nn.ReLU(),
            nn.Linear(8, 8), nn.ReLU(),  # the same text again: told apart by order
            nn.Linear(8, 16),
        )
        self.head = nn.Linear(
            16, 2)
"""


@pytest.mark.asyncio
async def test_layers_of_a_construction_spread_over_lines(lsp: Session) -> None:
    uri = await lsp.open("deep.py", DEEP)
    first, second = line_of(DEEP, "nn.Linear(8, 8)"), line_of(DEEP, "the same text")
    assert await lsp.hints(uri) == {first: "72 params", second: "72 params", line_of(DEEP, "Linear(8, 16)"): "144 params",
                                    line_of(DEEP, "        )"): "288 params", line_of(DEEP, "16, 2)"): "34 params"}
    relu = DEEP.splitlines()[first].index("ReLU")
    for line, col, path in ((first, 14, "body.0"), (first, relu, "body.1"), (second, 14, "body.2"),
                            (second, relu, "body.3"), (second, 2, "body"),  # the Sequential's own line range
                            (line_of(DEEP, "self.body"), 9, "body"), (line_of(DEEP, "self.head"), 9, "head"),
                            (line_of(DEEP, "16, 2)"), 12, "head")):
        md = await lsp.hover(uri, line, col)
        assert md is not None and md.startswith(f"**{path}**:"), (line, col, md)


@pytest.mark.asyncio
async def test_positions_are_utf16(lsp: Session) -> None:
    text = 'import torch.nn as nn\n\ns = "\U0001F600\u00e9"; model = nn.Sequential(nn.Linear(4, 4))  # \U0001F600\n'
    uri = await lsp.open("emoji.py", text)
    (d,) = lsp.client.diagnostics[uri]  # VL301 on the model's name
    line = text.splitlines()[2]
    col = line.index("model")
    assert d.range.start == types.Position(2, col + 1)  # the emoji is two UTF-16 code units
    md = await lsp.hover(uri, 2, col + 2)
    assert md is not None and md.startswith("**model**")
    hints = await lsp.raw_hints(uri)
    assert [h.position for h in hints] == [types.Position(2, len(line.rstrip()) + 2)]


# ------------------------------------------------------------------------------------ inlay hints
@pytest.mark.asyncio
async def test_inlay_hints_and_their_tooltips(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    hints = await lsp.hints(uri)
    assert hints == {
        line_of(NET, "self.fc1 ="): "2.1K params",
        line_of(NET, "self.act ="): "0 params",
        line_of(NET, "self.fc2 ="): "650 params",
        line_of(NET, "h = self.act"): "[B, 64] · 2.0 KiB",
        line_of(NET, "return self.fc2"): "[B, 10] · 320 B",
    }
    raw = await lsp.raw_hints(uri)
    fc1 = next(h for h in raw if h.position.line == line_of(NET, "self.fc1 ="))
    assert fc1.position.character == len("        self.fc1 = nn.Linear(32, width)") and fc1.padding_left
    assert all(h.tooltip is None for h in raw)  # resolved when asked for
    resolved = await lsp.client.inlay_hint_resolve_async(fc1)
    assert isinstance(resolved.tooltip, types.MarkupContent)
    assert resolved.tooltip.value == "**fc1**: `Linear`, 2,112 parameters\n- output: `[B, 64]`"
    fwd = next(h for h in raw if h.position.line == line_of(NET, "h = self.act"))
    resolved = await lsp.client.inlay_hint_resolve_async(fwd)
    assert resolved.tooltip == "float32 tensor in model's forward (batch 8)"


@pytest.mark.asyncio
async def test_inlay_hint_resolve_uses_the_hints_own_file(lsp: Session) -> None:
    other = await lsp.open("mlp.py", MLP)  # opened first: a resolve must not look here
    uri = await lsp.open("net.py", NET)
    raw = await lsp.raw_hints(uri)
    fc2 = next(h for h in raw if h.position.line == line_of(NET, "self.fc2 ="))
    resolved = await lsp.client.inlay_hint_resolve_async(fc2)
    assert isinstance(resolved.tooltip, types.MarkupContent)
    assert resolved.tooltip.value.startswith("**fc2**: `Linear`, 650 parameters")
    assert await lsp.hints(other)


@options(inlayHints={"layers": False})
@pytest.mark.asyncio
async def test_layer_hints_off_in_initialization_options(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    hints = await lsp.hints(uri)
    assert sorted(hints) == [line_of(NET, "h = self.act"), line_of(NET, "return self.fc2")]
    assert all("params" not in h for h in hints.values())


@options(inlayHints={"forward": False})
@pytest.mark.asyncio
async def test_forward_is_the_first_name_of_shapes(lsp: Session) -> None:
    """`inlayHints.forward`, the setting's first name, still switches the forward-line hints."""
    uri = await lsp.open("net.py", NET)
    hints = await lsp.hints(uri)
    assert len(hints) == 3 and all(h.endswith("params") for h in hints.values())


@pytest.mark.asyncio
async def test_hints_switched_by_configuration_change(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    assert len(await lsp.hints(uri)) == 5

    async def configure(settings: dict[str, Any]) -> None:
        start = len(lsp.published)
        lsp.client.workspace_did_change_configuration(types.DidChangeConfigurationParams({"vramlint": settings}))
        await lsp.publish(uri, after=start)

    await configure({"gpu": "H100", "inlayHints": {"shapes": False}})
    hints = await lsp.hints(uri)
    assert len(hints) == 3 and all(h.endswith("params") for h in hints.values())
    await configure({"gpu": "H100", "inlayHints": {"layers": False, "shapes": True}})
    hints = await lsp.hints(uri)
    assert len(hints) == 2 and all("·" in h for h in hints.values())
    await configure({"gpu": "H100", "codeLens": False})
    assert len(await lsp.hints(uri)) == 5
    assert await lsp.lenses(uri) == {}


# ------------------------------------------------------------------------------------ code lens
@pytest.mark.asyncio
async def test_code_lens_and_report(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    lenses = await lsp.lenses(uri)
    assert lenses[line_of(NET, "class Net")] == "2.8K params · memory: needs inputs"
    title = lenses[line_of(NET, "model = Net()")]
    assert re.fullmatch(r"2\.8K params · training peak [\d.]+ MiB · device total [\d.]+ MiB / 79\.19 GiB · batch 8 · "
                        r"fp32 · adam", title), title
    got = await lsp.client.text_document_code_lens_async(types.CodeLensParams(types.TextDocumentIdentifier(uri)))
    cmd = next(lens.command for lens in got or [] if lens.command and lens.command.title == title)
    assert cmd.command == "vramlint.showReport" and list(cmd.arguments or []) == [uri, "model"]
    report = await lsp.client.workspace_execute_command_async(types.ExecuteCommandParams(
        cmd.command, cmd.arguments))
    assert isinstance(report, str)
    assert report.startswith(f"model (instance, {lsp.root / 'net.py'}:17): 2,762 parameters")
    for words in ("batch size", "fc1", "Linear", "[8, 64]", "training peak", "H100-80GB"):
        assert words in report, report
    missing = await lsp.client.workspace_execute_command_async(types.ExecuteCommandParams(
        "vramlint.showReport", [uri, "nope"]))
    assert missing == "no model named nope"


# ------------------------------------------------------------------------------------ quick fixes
@options(gpu="8GiB")
@pytest.mark.asyncio
async def test_quick_fixes_for_an_over_budget_model(lsp: Session) -> None:
    uri = await lsp.open("big.py", BIG)
    (vl001,) = by_code(lsp.client.diagnostics[uri], "VL001")
    assert vl001.data == {"model": "model", "name": "over-budget-train"}
    lens = (await lsp.lenses(uri))[line_of(BIG, "model = ")]
    # device total: the simulated caching allocator's need at the card's edge (memory/reserved.py)
    assert re.fullmatch(r"50\.3M params · training peak [\d.]+ GiB · device total 15\.04 GiB / 8\.00 GiB \(does NOT fit\) "
                        r"· batch 131072 · fp32 · adam", lens), lens
    actions = await lsp.actions(uri, [vl001])
    assert [a.kind for a in actions] == [types.CodeActionKind.QuickFix] * 2
    batch, bf16 = actions
    assert list(batch.diagnostics or []) == [vl001]
    m = re.fullmatch(r"Set batch-size=(\d+), the largest that fits: (.+) of 8\.00 GiB, fits", batch.title)
    assert m is not None, batch.title
    assert re.fullmatch(r"Use bf16 mixed precision \(precision=amp-bf16\): .+ of 8\.00 GiB, (fits|still does not fit)",
                        bf16.title), bf16.title
    # The batch fix: a directive above the model; applied, the model fits at that batch, as titled.
    edit = only_edit(batch, uri)
    line = line_of(BIG, "model = ")
    assert edit.range == types.Range(types.Position(line, 0), types.Position(line, 0))
    assert edit.new_text == f"# vramlint: batch-size={m.group(1)}\n"
    start = len(lsp.statuses)
    diags = await lsp.edit(uri, apply_edit(BIG, edit))
    assert by_code(diags, "VL001") == [] and len(by_code(diags, "VL301")) == 1
    status = await lsp.status(uri, 2, after=start)
    (model,) = [x for x in status["models"] if x["name"] == "model"]
    assert model["fits"] is True and model["batchSize"] == int(m.group(1))
    assert fmt_bytes(model["deviceTotal"]) == m.group(2)
    md = await lsp.hover(uri, line + 1, 1)
    assert md is not None and f"- batch size: `{m.group(1)}` (directive" in md, md
    # The bf16 fix, applied to the original text, gives the estimate its title said.
    edit = only_edit(bf16, uri)
    assert edit.new_text == "# vramlint: precision=amp-bf16\n"
    start = len(lsp.statuses)
    diags = await lsp.edit(uri, apply_edit(BIG, edit))
    status = await lsp.status(uri, 3, after=start)
    (model,) = [x for x in status["models"] if x["name"] == "model"]
    assert f": {fmt_bytes(model['deviceTotal'])} of 8.00 GiB" in bf16.title
    # On a model that has a directive already, the fix updates it.
    with_directive = apply_edit(BIG, edit)
    diags = await lsp.edit(uri, with_directive)
    (vl001,) = by_code(diags, "VL001")
    (fix, *_) = await lsp.actions(uri, [vl001])
    edit = only_edit(fix, uri)
    assert edit.range == types.Range(types.Position(line, 0), types.Position(line + 1, 0))
    assert re.fullmatch(r"# vramlint: precision=amp-bf16 batch-size=\d+\n", edit.new_text)
    assert by_code(await lsp.edit(uri, apply_edit(with_directive, edit)), "VL001") == []


CHECKPOINTABLE = """\
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.wrap = None
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(256, 4096), nn.GELU(), nn.Linear(4096, 256))
                                     for _ in range(8)])

    def gradient_checkpointing_enable(self):  # not named in the code: only a setting turns it on
        self.wrap = getattr(cp, "check" + "point")

    def forward(self, x):
        for b in self.blocks:
            x = b(x) if self.wrap is None else self.wrap(b, x, use_reentrant=False)
        return x


model = Deep()
out = model(torch.randn(8192, 256))
"""


@options(gpu="2GiB")
@pytest.mark.asyncio
async def test_quick_fix_gradient_checkpointing_where_it_lowers_the_peak(lsp: Session) -> None:
    """Activations dominate (8 blocks keep 8192 x 4096 GELU inputs and outputs): checkpointing,
    which the model supports (gradient_checkpointing_enable), is proposed with its estimate; on
    BIG (test_quick_fixes_for_an_over_budget_model) it is not, as nothing would change."""
    uri = await lsp.open("checkpointable.py", CHECKPOINTABLE)
    (vl001,) = by_code(lsp.client.diagnostics[uri], "VL001")
    titles = [a.title for a in await lsp.actions(uri, [vl001])]
    (ckpt,) = [t for t in titles if t.startswith("Use gradient checkpointing")]
    assert re.fullmatch(r"Use gradient checkpointing \(checkpointing=true\): .+ of 2\.00 GiB, fits", ckpt), ckpt


@pytest.mark.asyncio
async def test_quick_fix_for_an_unresolved_input(lsp: Session) -> None:
    uri = await lsp.open("mlp.py", MLP)
    vl301 = next(d for d in by_code(lsp.client.diagnostics[uri], "VL301") if d.data["model"] == "MLP")
    (action,) = await lsp.actions(uri, [vl301])
    assert action.title == "Insert a vramlint directive with the input shape (edit the placeholder)"
    edit = only_edit(action, uri)
    line = line_of(MLP, "class MLP")
    assert edit.range.start == edit.range.end == types.Position(line, 0)
    assert edit.new_text == "# vramlint: batch-size=32\n"
    diags = await lsp.edit(uri, apply_edit(MLP, edit))
    assert [d.data["model"] for d in by_code(diags, "VL301")] == ["make_mlp"]
    lenses = await lsp.lenses(uri)
    assert " · batch 32 · " in lenses[line + 1]
    # A diagnostic without a fix (or none sent): no actions.
    assert await lsp.actions(uri, [types.Diagnostic(types.Range(types.Position(0, 0), types.Position(0, 1)),
                                                    "other", code="X1")]) == []


# ------------------------------------------------------------------------------------ settings
def model_status(lsp: Session, uri: str, name: str = "model") -> dict[str, Any]:
    """The model in the latest status of `uri` (sent right after its diagnostics: see `settle`)."""
    status = next(s for s in reversed(lsp.statuses) if s["uri"] == uri)
    return next(m for m in status["models"] if m["name"] == name)


async def settle(lsp: Session, uri: str, send: Callable[[], None]) -> list[types.Diagnostic]:
    """Send a notification; the diagnostics (and status) `uri` gets for it."""
    start, start_status = len(lsp.published), len(lsp.statuses)
    send()
    published = await lsp.publish(uri, after=start)
    assert published.version is not None
    await lsp.status(uri, published.version, after=start_status)
    return list(published.diagnostics)


@options(gpu="8GiB", optimizer="sgd", batchSize=4)
@pytest.mark.asyncio
async def test_initialization_options_set_the_estimate(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    await lsp.status(uri, 1)
    model = model_status(lsp, uri)
    # The editor's batch size (4) sits above what the code shows (the call with a batch of 8).
    assert model["deviceMemory"] == 8 * 2**30 and model["device"] == "8GiB"
    lenses = await lsp.lenses(uri)
    assert lenses[line_of(NET, "model = Net()")].endswith(" / 8.00 GiB · batch 4 · fp32 · sgd")
    md = await lsp.hover(uri, line_of(NET, "model = Net()"), 1)
    assert md is not None
    assert "- optimizer: `sgd` (editor settings)" in md and "- GPU: `8GiB` (editor settings)" in md
    assert "- batch size: `4` (editor settings)" in md
    assert "| optimizer state | 0 B |" in md  # plain SGD keeps none


@options(checkpointing=True, maxLayerParams=1000, inputs=[{"shape": [32]}])
@pytest.mark.asyncio
async def test_every_setup_key_from_the_editor(lsp: Session) -> None:
    """The setup keys the VS Code extension once left out reach the estimate: the class gets its
    input from the editor, the editor's checkpointing and layer limit apply (VL101 on fc1's 2,112)."""
    uri = await lsp.open("net.py", NET)
    await lsp.status(uri, 1)
    lenses = await lsp.lenses(uri)
    assert "training peak" in lenses[line_of(NET, "class Net")]  # without inputs: "memory: needs inputs"
    report = await lsp.client.workspace_execute_command_async(types.ExecuteCommandParams(
        "vramlint.showReport", [uri, "Net"]))
    assert re.search(r"inputs +\[32\] float32 +\(editor settings\)", report), report
    assert re.search(r"checkpointing +True +\(editor settings\)", report), report
    md = await lsp.hover(uri, line_of(NET, "class Net"), 7)
    assert md is not None and "- inputs: `[32] float32` (editor settings)" in md, md
    assert "- checkpointing: `True` (editor settings)" in md, md
    messages = [d.message for d in lsp.client.diagnostics[uri] if d.code == "VL101"]
    assert any("`fc1` (Linear) holds 2,112 parameters, more than max-layer-params (1,000)" in m for m in messages)


@pytest.mark.asyncio
async def test_configuration_changes_and_the_project_file_wins(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    await lsp.status(uri, 1)
    lens_line = line_of(NET, "model = Net()")
    adam_total = model_status(lsp, uri)["deviceTotal"]
    assert len(lsp.registrations) == 1
    (reg,) = lsp.registrations
    assert reg.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    globs = {w["globPattern"] for w in reg.register_options["watchers"]}  # type: ignore[index]
    assert {"**/*.py", "**/pyproject.toml", "**/vramlint.toml"} <= globs

    # The editor's settings change: analysed again, clients asked to refresh hints and lenses.
    lsp.refreshes.clear()
    await settle(lsp, uri, lambda: lsp.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        {"vramlint": {"gpu": "A100-40GB", "optimizer": "sgd"}})))
    model = model_status(lsp, uri)
    assert model["device"] == "A100-40GB" and model["deviceTotal"] < adam_total
    assert (await lsp.lenses(uri))[lens_line].endswith("/ 39.59 GiB · batch 8 · fp32 · sgd")
    await lsp.until("refresh requests", lambda: {"inlayHint", "codeLens"} <= set(lsp.refreshes))
    # A bad value is logged and skipped; the rest applies.
    lsp.client.log_messages.clear()
    await settle(lsp, uri, lambda: lsp.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        {"vramlint": {"gpu": "no-such-card", "optimizer": "adamw"}})))
    assert model_status(lsp, uri)["device"] == "H100-80GB"  # the default
    assert (await lsp.lenses(uri))[lens_line].endswith(" · adamw")
    assert any(m.type == types.MessageType.Warning and "vramlint.gpu" in m.message for m in lsp.client.log_messages)
    # A client that pulls its configuration (no settings in the notification).
    lsp.client.set_configuration({"vramlint": {"gpu": "L4", "optimizer": "adamw"}})
    await settle(lsp, uri, lambda: lsp.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(None)))
    assert model_status(lsp, uri)["device"] == "L4"
    assert (await lsp.lenses(uri))[lens_line].endswith(" · adamw")
    # The project's configuration wins over the editor's, key by key.
    (lsp.root / "pyproject.toml").write_text('[tool.vramlint]\noptimizer = "lion"\n')
    change = types.FileEvent((lsp.root / "pyproject.toml").as_uri(), types.FileChangeType.Created)
    await settle(lsp, uri, lambda: lsp.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams([change])))
    assert (await lsp.lenses(uri))[lens_line].endswith(" · lion")
    assert model_status(lsp, uri)["device"] == "L4"
    md = await lsp.hover(uri, lens_line, 1)
    assert md is not None
    assert "- optimizer: `lion` (pyproject.toml [tool.vramlint])" in md and "- GPU: `L4` (editor settings)" in md
    # Edited on disk: the watched-files notification refreshes the diagnostics.
    (lsp.root / "pyproject.toml").write_text('[tool.vramlint]\noptimizer = "lion"\ngpu = "1GiB"\nbatch-size = 1000000\n')
    change = types.FileEvent((lsp.root / "pyproject.toml").as_uri(), types.FileChangeType.Changed)
    diags = await settle(lsp, uri, lambda: lsp.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams([change])))
    assert {d.data["model"] for d in by_code(diags, "VL001")} == {"Net", "model"}  # the class too: a batch size
    assert all("more than the 1GiB's 1.00 GiB at batch 1000000" in d.message for d in by_code(diags, "VL001"))
    assert lsp_findings(diags) == cli_findings(lsp.root / "net.py")
    assert model_status(lsp, uri)["fits"] is False
    # A broken configuration file: said once, visibly; the editor's settings apply meanwhile.
    (lsp.root / "pyproject.toml").write_text('[tool.vramlint]\ngpu = "no-such-card"\n')
    change = types.FileEvent((lsp.root / "pyproject.toml").as_uri(), types.FileChangeType.Changed)
    await settle(lsp, uri, lambda: lsp.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams([change])))
    assert model_status(lsp, uri)["device"] == "L4"
    await lsp.until("a message", lambda: lsp.client.messages)
    (message,) = lsp.client.messages
    assert message.type == types.MessageType.Warning and "gpu" in message.message and "pyproject.toml" in message.message


# ------------------------------------------------------------------------------------ across files
CFG = """\
from dataclasses import dataclass


@dataclass
class Cfg:
    width: int = 64
"""
USES_CFG = """\
import torch.nn as nn

from cfg import Cfg

cfg = Cfg()
model = nn.Sequential(nn.Linear(cfg.width, cfg.width), nn.ReLU(), nn.Linear(cfg.width, 10))
"""


@pytest.mark.asyncio
async def test_an_unsaved_change_in_an_imported_file(lsp: Session) -> None:
    a = await lsp.open("cfg.py", CFG)
    b = await lsp.open("model.py", USES_CFG)
    line = line_of(USES_CFG, "model = ")
    md = await lsp.hover(b, line, 1)
    assert md is not None and "4,810 parameters" in md  # 64*64+64 + 64*10+10
    (vl301,) = by_code(lsp.client.diagnostics[b], "VL301")
    assert "Linear(64, ...)" in vl301.message
    start = len(lsp.published)
    lsp.change(a, CFG.replace("width: int = 64", "width: int = 128"))
    # Asked at once, the hover waits for the importer's new analysis.
    md = await lsp.hover(b, line, 1)
    assert md is not None and "17,802 parameters" in md, md  # 128*128+128 + 128*10+10
    published = await lsp.publish(b, 1, after=start)
    (vl301,) = by_code(published.diagnostics, "VL301")
    assert "Linear(128, ...)" in vl301.message
    assert (await lsp.lenses(b))[line].startswith("17.8K params")
    assert (lsp.root / "cfg.py").read_text() == CFG  # unsaved
    # Closed without saving: the file is read from disk again.
    lsp.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(a)))
    md = await lsp.hover(b, line, 1)
    assert md is not None and "4,810 parameters" in md, md
    # Changed on disk (a closed file: no overlay), a watched-files event analyses the importer again.
    start = len(lsp.published)
    (lsp.root / "cfg.py").write_text(CFG.replace("width: int = 64", "width: int = 32"))
    change = types.FileEvent(a, types.FileChangeType.Changed)
    lsp.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams([change]))
    await lsp.publish(b, after=start)
    md = await lsp.hover(b, line, 1)
    assert md is not None and f"{32 * 32 + 32 + 330:,} parameters" in md, md


# ------------------------------------------------------------------------------------ editing
@pytest.mark.asyncio
async def test_a_syntax_error_mid_edit(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    good = await lsp.hints(uri)
    assert len(good) == 5
    broken_line = line_of(NET, "h = self.act")
    broken = NET.replace("h = self.act(self.fc1(x))", "h = self.act(self.fc1(x)) +")
    diags = await lsp.edit(uri, broken)
    (err,) = diags
    assert err.code == "VL000" and err.severity == types.DiagnosticSeverity.Error
    assert err.range.start.line == broken_line and "syntax" in err.message.lower()
    assert err.code_description is not None and err.code_description.href.endswith("docs/rules.md#vl000")
    status = await lsp.status(uri, 2)
    assert status["errors"] == 1
    # The last good analysis keeps its hints, hovers and lenses on the lines that did not change.
    hints = await lsp.hints(uri)
    assert hints == {k: v for k, v in good.items() if k != broken_line}
    assert await lsp.hover(uri, broken_line, 10) is None
    md = await lsp.hover(uri, line_of(NET, "self.fc1 ="), 12)
    assert md is not None and md.startswith("**fc1**")
    assert line_of(NET, "model = Net()") in await lsp.lenses(uri)
    # A second broken version, lines inserted above: nothing below them matches any more.
    broken2 = "import os\n" + broken
    diags = await lsp.edit(uri, broken2)
    assert [d.range.start.line for d in diags] == [broken_line + 1]
    assert await lsp.hints(uri) == {}
    assert await lsp.lenses(uri) == {}
    # Fixed again: everything back, shifted by the new line.
    diags = await lsp.edit(uri, "import os\n" + NET)
    assert [d.code for d in diags] == []  # (the class Net's inputs are its instance's: no VL301)
    assert await lsp.hints(uri) == {k + 1: v for k, v in good.items()}
    assert [p.version for p in lsp.published if p.uri == uri] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------ robustness
OK = "import torch.nn as nn\n\nok = nn.Linear(10, 5)\n"
HOSTILE = {  # from tests/test_robustness.py: each must give an answer, and the server must live on
    "power_tower.py": OK + "x = 10**10**10\nbad = nn.Linear(x, 5)\nafter = nn.Linear(2, 3)\n",
    "nested.py": OK + "x = " + "(" * 1000 + "4" + ")" * 1000 + "\nm = nn.Linear(x, 1)\nafter = nn.Linear(2, 3)\n",
    "nested_calls.py": OK + "def f(v):\n    return v\nx = " + "f(" * 1000 + "4" + ")" * 1000 + "\nm = nn.Linear(2, 3)\n",
    "endless.py": OK + "while True:\n    pass\nafter = nn.Linear(2, 3)\n",
    "long_sum.py": OK + "x = " + "+".join(["1"] * 50_000) + "\nm = nn.Linear(x, 1)\nafter = nn.Linear(2, 3)\n",
    "lambdas.py": OK + "def f():\n    return f\nx = " + "lambda: " * 5_000 + "1\nafter = nn.Linear(2, 3)\n",
    "recursion.py": OK + "def grow(n):\n    return grow(n + 1)\nx = grow(0)\nafter = nn.Linear(2, 3)\n",
    "null_byte.py": OK + "x = 1\x00\n",
}


@pytest.mark.asyncio
async def test_hostile_files_get_answers_and_the_server_lives_on(client: LanguageClient, lsp: Session) -> None:
    t = time.monotonic()
    for name, text in HOSTILE.items():
        uri = await lsp.open(name, text)
        diags = lsp.client.diagnostics[uri]
        x_line = next((i for i, line in enumerate(text.splitlines()) if line.startswith(("x = ", "while"))), None)
        if name == "null_byte.py":
            assert [d.code for d in diags] == ["VL000"]
        else:
            # What could not be evaluated is a located warning (or the model it reaches says so).
            assert any(d.range.start.line == x_line for d in diags), (name, diags)
            assert await lsp.lenses(uri), name
        for line in range(len(text.splitlines())):
            await lsp.hover(uri, line, 0)
        await lsp.hints(uri)
        await lsp.lenses(uri)
        # An edit of it is analysed too.
        await lsp.edit(uri, text + "\nmore = nn.Linear(3, 4)\n")
    assert time.monotonic() - t < 30
    uri = await lsp.open("net.py", NET)
    md = await lsp.hover(uri, line_of(NET, "model = Net()"), 1)
    assert md is not None and "2,762 parameters" in md
    assert client.error is None


# ------------------------------------------------------------------------------------ status
@pytest.mark.asyncio
async def test_status_notification(lsp: Session) -> None:
    (lsp.root / "pyproject.toml").write_text('[tool.vramlint]\ngpu = "8GiB"\n')
    uri = await lsp.open("big.py", BIG)
    status = await lsp.status(uri, 1)
    assert status["uri"] == uri and status["version"] == 1 and status["errors"] == 1
    by_name = {m["name"]: m for m in status["models"]}
    assert set(by_name) == {"model", "head"}
    model = by_name["model"]
    assert model["params"] == 3 * (4096 * 4096 + 4096) and model["batchSize"] == 131072
    assert model["device"] == "8GiB" and model["deviceMemory"] == 8 * 2**30 and model["fits"] is False
    assert model["trainPeak"] < model["deviceTotal"] and model["inferencePeak"] < model["trainPeak"]
    head = by_name["head"]
    assert head["trainPeak"] is None and head["fits"] is None and head["params"] == 822_128_650
    cli = json.loads(subprocess.run([sys.executable, "-m", "vramlint", "check", str(lsp.root / "big.py"),
                                     "--format", "json", "--fail-on", "never"], capture_output=True, text=True,
                                    check=True).stdout)
    (cli_model,) = [m for m in cli["files"][0]["models"] if m["name"] == "model"]
    assert cli_model["memory"]["bytes"]["train_peak"] == model["trainPeak"]
    assert cli_model["memory"]["bytes"]["device_total"] == model["deviceTotal"]
    # Fixed in the editor: a new status, for the new version.
    start = len(lsp.statuses)
    lsp.change(uri, BIG.replace("randn(131072, 4096)", "randn(1024, 4096)"))
    status = await lsp.status(uri, 2, after=start)
    model = next(m for m in status["models"] if m["name"] == "model")
    assert model["fits"] is True and model["batchSize"] == 1024 and status["errors"] == 0
