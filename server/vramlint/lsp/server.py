"""`vramlint lsp`: the language server. Handlers only route: the documents' state lives in
`documents.py`, each feature in its own module over the shared analysis.

Settings: `initializationOptions` and `workspace/didChangeConfiguration` (section `vramlint`)
are the editor's; the project's `pyproject.toml` `[tool.vramlint]` / `vramlint.toml` win over
them, as they do for `vramlint check`, so the editor and CI agree on the same file.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol.json_rpc import RPCMessage, RPCRequest
from pygls.uris import to_fs_path

from vramlint import __version__
from vramlint.analysis import api, reuse
from vramlint.analysis.results import FileAnalysis
from vramlint.lsp import (
    code_actions,
    code_lens,
    diagnostics,
    hover,
    index,
    inlay_hints,
    progress,
    report_html,
    status,
    transport,
)
from vramlint.lsp.documents import (
    GC_THRESHOLDS,
    Document,
    Documents,
)
from vramlint.lsp.editor_settings import editor_settings
from vramlint.lsp.protocol_fixes import LeakFreeProtocol

T = TypeVar("T")
WATCHED = ["**/*.py", "**/pyproject.toml", "**/vramlint.toml"]
EVERYWHERE = types.Range(types.Position(0, 0), types.Position(2**31 - 1, 0))
# The status item and the code lenses follow a result once edits pause this long (`_settle`): what
# they show costs a quarter of an edit's analysis more, which keystrokes in a row skip.
SETTLE_DELAY_S = 0.1


class VramlintProtocol(LeakFreeProtocol):
    """pygls's protocol with the lifecycle rules it leaves out: a request after `shutdown` is
    answered InvalidRequest (pygls drops it: the client would wait for ever); `exit` ends the
    process at once, with code 0 after `shutdown` and 1 without, as LSP says (pygls's loop loses
    the code), without waiting for an analysis still running."""

    def handle_message(self, message: RPCMessage) -> None:
        method = getattr(message, "method", None)
        if method == types.EXIT:
            docs = getattr(self._server, "docs", None)
            if docs is not None:  # results waiting for the persistent cache (lsp/persistent.py)
                docs.disk.flush()
            end_process(0 if self._shutdown else 1)
        if self._shutdown and isinstance(message, RPCRequest):
            error = JsonRpcInvalidRequest(f"{method}: the server has been shut down (only `exit` is expected)")
            self._send_response(message.id, error=error.to_response_error())
            return
        super().handle_message(message)


def end_process(code: int) -> None:
    """Exit now: the analysis worker may be deep in a file (a thread Python would wait for)."""
    try:
        sys.stderr.flush()
    finally:
        os._exit(code)


@dataclass
class Prepared:
    """What the loop sends for an analysis, made in the worker (positions of a large file cost)."""

    diagnostics: list[types.Diagnostic]
    version: int


class VramlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("vramlint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full,
                         protocol_cls=VramlintProtocol)
        self.docs = Documents(self._published, self._send_log, self._show_warning, self._prepare, self._progress,
                              self._warm)
        self.show_progress = False  # the client takes `$/progress` (window.workDoneProgress)
        self.refresh_hints = False
        self.refresh_lenses = False

    def report_problem(self, message: str) -> None:
        """A protocol problem (a malformed message...): stderr and the client's log."""
        print(f"vramlint lsp: {message}", file=sys.stderr, flush=True)
        self._send_log(message, types.MessageType.Error)

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        """From any thread (a guarded feature may run in the analysis worker)."""
        self.docs.on_loop(lambda m: self._send_log(m, kind), message)

    def _send_log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        try:
            self.window_log_message(types.LogMessageParams(kind, message))
        except Exception:  # no client (tests of the handlers alone)
            pass

    def _show_warning(self, message: str) -> None:
        try:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, message))
        except Exception:
            pass

    def _prepare(self, doc: Document, version: int, text: str, fa: FileAnalysis) -> Prepared:
        """In the analysis worker: the diagnostics of `fa`."""
        return Prepared(diagnostics.diagnostics(fa, text), version)

    def _warm(self, doc: Document, text: str, fa: FileAnalysis) -> None:
        """In the analysis worker, once `fa`'s diagnostics are sent: every position the features
        look up on the loop (layer sites, models' locations), resolved now; the status item and
        the code lenses follow once edits pause (`_settle`), not waited for by the features."""
        self.guard("positions", lambda: (index.sites(fa),
                                         inlay_hints.inlay_hints(fa, text, EVERYWHERE, True, True, None, doc.uri)), None)
        prepared, loop = doc.prepared, self.docs.loop
        if isinstance(prepared, Prepared) and not doc.partial and loop is not None:
            loop.call_soon_threadsafe(loop.call_later, SETTLE_DELAY_S, self._settle_soon, doc, prepared.version, text, fa)

    def _settle_soon(self, doc: Document, version: int, text: str, fa: FileAnalysis) -> None:
        if self._current(doc, version):
            try:
                asyncio.get_running_loop().run_in_executor(self.docs.executor, self._settle, doc, version, text, fa)
            except RuntimeError:  # the worker has shut down (the server is exiting)
                pass

    def _current(self, doc: Document, version: int) -> bool:
        return doc.version == version and self.docs.docs.get(doc.uri) is doc

    def _settle(self, doc: Document, version: int, text: str, fa: FileAnalysis) -> None:
        """In the analysis worker, once edits pause (SETTLE_DELAY_S): the status item's figures
        and the code lenses. Both show what the allocator must reserve at the card's edge
        (`device_total`), whose search for the least limit is a quarter of an edit's analysis and
        which the diagnostics of a model that fits do not need (memory/estimate.py `EdgeNeed`):
        it runs here, after them, and not while edits keep coming (a version already edited
        gets none: the next one's result sends its own)."""
        if not self._current(doc, version):
            return
        st = self.guard("status", lambda: status.status(doc.uri, version, fa), None)
        self.guard("positions", lambda: code_lens.code_lenses(fa, text, doc.uri), None)
        loop = self.docs.loop
        if st is not None and loop is not None:
            loop.call_soon_threadsafe(lambda: self.guard("status", lambda: self.protocol.notify(status.METHOD, st), None))

    def _progress(self, doc: Document) -> progress.AnalysisProgress | None:
        if not self.show_progress:
            return None
        return progress.AnalysisProgress(self.work_done_progress, doc.path, self._send_log)

    def _published(self, doc: Document) -> None:
        prepared = doc.prepared
        if doc.result is None or not isinstance(prepared, Prepared):
            return
        if not doc.partial:  # the counts of a first analysis: shown by the features only (documents.py)
            self.guard("diagnostics", lambda: self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                doc.uri, prepared.diagnostics, version=doc.result_version)), None)
        if self.refresh_hints:
            self.guard("inlay refresh", lambda: self.workspace_inlay_hint_refresh(None), None)
        if self.refresh_lenses:
            self.guard("code lens refresh", lambda: self.workspace_code_lens_refresh(None), None)

    def guard(self, what: str, fn: Callable[[], T], empty: T) -> T:
        """A feature's failure is logged and answered empty: the server never dies of a file's content."""
        try:
            return fn()
        except Exception as err:
            self.log(f"{what} failed: {type(err).__name__}: {err}\n{traceback.format_exc()}", types.MessageType.Error)
            return empty


server = VramlintServer()


def apply_editor_settings(ls: VramlintServer, raw: Any) -> None:
    """The editor's settings from now on; each value skipped is logged (the others apply)."""
    ls.docs.editor, problems = editor_settings(raw)
    for problem in problems:
        ls.log(f"settings: {problem}", types.MessageType.Warning)


@server.feature(types.INITIALIZE)
def initialize(ls: VramlintServer, params: types.InitializeParams) -> None:
    apply_editor_settings(ls, params.initialization_options)
    folders = params.workspace_folders or []
    roots = [to_fs_path(f.uri) for f in folders] or ([to_fs_path(params.root_uri)] if params.root_uri else [])
    ls.docs.roots = [r for r in roots if r]
    ws = params.capabilities.workspace
    ls.refresh_hints = bool(ws and ws.inlay_hint and ws.inlay_hint.refresh_support)
    ls.refresh_lenses = bool(ws and ws.code_lens and ws.code_lens.refresh_support)
    window = params.capabilities.window
    ls.show_progress = bool(window and window.work_done_progress)


@server.feature(types.INITIALIZED)
async def initialized(ls: VramlintServer, params: types.InitializedParams) -> None:
    caps = ls.client_capabilities.workspace
    watch = caps.did_change_watched_files if caps else None
    if watch is not None and watch.dynamic_registration:
        opts = types.DidChangeWatchedFilesRegistrationOptions([types.FileSystemWatcher(g) for g in WATCHED])
        reg = types.Registration("vramlint-watch", types.WORKSPACE_DID_CHANGE_WATCHED_FILES, opts)
        try:
            await ls.client_register_capability_async(types.RegistrationParams([reg]))
        except Exception as err:
            ls.log(f"file watching not registered: {err}")


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: VramlintServer, params: types.DidOpenTextDocumentParams) -> None:
    d = params.text_document
    ls.docs.open(d.uri, d.version, d.text)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: VramlintServer, params: types.DidChangeTextDocumentParams) -> None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    ls.docs.change(params.text_document.uri, params.text_document.version, doc.source)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: VramlintServer, params: types.DidSaveTextDocumentParams) -> None:
    doc = ls.docs.docs.get(params.text_document.uri)
    if doc is not None:
        ls.docs.schedule(doc, delay=0.0)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: VramlintServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.docs.close(params.text_document.uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(params.text_document.uri, []))


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: VramlintServer, params: types.DidChangeConfigurationParams) -> None:
    raw = params.settings
    if not (isinstance(raw, dict) and "vramlint" in raw):
        # Clients that pull configuration send no settings (VS Code without `synchronize`): ask.
        caps = ls.client_capabilities.workspace
        if caps is not None and caps.configuration:
            try:
                got = await ls.workspace_configuration_async(
                    types.ConfigurationParams([types.ConfigurationItem(section="vramlint")]))
                raw = {"vramlint": got[0] if got and isinstance(got[0], dict) else {}}
            except Exception as err:
                ls.log(f"settings: workspace/configuration failed: {err}", types.MessageType.Warning)
                return
        elif not isinstance(raw, dict):
            return  # nothing said what changed: keep the settings
    apply_editor_settings(ls, raw)
    ls.docs.refresh_all()


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: VramlintServer, params: types.DidChangeWatchedFilesParams) -> None:
    # A configuration file or a module an open file may import changed on disk: analyse again.
    # An open file's own events (a save) are not news: its text is the editor's, and did_save
    # analyses it.
    if any(change.uri not in ls.docs.docs for change in params.changes):
        ls.docs.refresh_all()


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def on_hover(ls: VramlintServer, params: types.HoverParams) -> types.Hover | None:
    doc = await ls.docs.current(params.text_document.uri)
    usable, good_text = doc.view() if doc is not None else (None, None)
    if doc is None or usable is None:
        return None
    return ls.guard("hover", lambda: hover.hover(usable, doc.text, params.position, good_text), None)


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=True))
async def on_inlay_hints(ls: VramlintServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    doc = await ls.docs.current(params.text_document.uri)
    usable, good_text = doc.view() if doc is not None else (None, None)
    if doc is None or usable is None:
        return []
    ed = ls.docs.editor
    return ls.guard("inlay hints", lambda: inlay_hints.inlay_hints(
        usable, doc.text, params.range, ed.inlay_hints.layers, ed.inlay_hints.shapes, good_text, doc.uri), [])


@server.feature(types.INLAY_HINT_RESOLVE)
def on_inlay_hint_resolve(ls: VramlintServer, hint: types.InlayHint) -> types.InlayHint:
    # The hint's own document (its data names it); its last good analysis made the hint.
    data = hint.data if isinstance(hint.data, dict) else {}
    doc = ls.docs.docs.get(str(data.get("uri")))
    fa = doc.good if doc is not None else None
    return ls.guard("inlay hint resolve", lambda: inlay_hints.resolve(fa, hint), hint)


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
async def on_code_lens(ls: VramlintServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    doc = await ls.docs.current(params.text_document.uri)
    usable, good_text = doc.view() if doc is not None else (None, None)
    if doc is None or usable is None or not ls.docs.editor.code_lens:
        return []
    return ls.guard("code lens", lambda: code_lens.code_lenses(usable, doc.text, doc.uri, good_text), [])


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
async def on_code_action(ls: VramlintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Quick fixes, checked by analysing the fixed text: in the analysis worker, so they wait for
    a running analysis; `$/cancelRequest` answers at once and stops them."""
    doc = await ls.docs.current(params.text_document.uri, final=True)
    fa = doc.result if doc is not None and doc.result_version == doc.version and not doc.partial else None
    if doc is None or fa is None or not params.context.diagnostics:
        return []
    loop = asyncio.get_running_loop()
    settings = ls.docs.settings_for(doc.path)
    text, cancel = doc.text, threading.Event()

    def work() -> list[types.CodeAction]:
        try:
            with ls.docs.busy(doc.uri):
                return code_actions.code_actions(fa, text, doc.uri, params.context.diagnostics, lambda fixed:
                                                 api.analyze_source(doc.path, fixed, settings, cancel=cancel))
        except api.AnalysisCancelled:
            return []

    empty: list[types.CodeAction] = []
    try:
        result: list[types.CodeAction] = await loop.run_in_executor(
            ls.docs.executor, lambda: ls.guard("code actions", work, empty))
    except asyncio.CancelledError:
        cancel.set()  # the client cancelled the request: stop its analyses too
        raise
    return result


@server.command(code_lens.SHOW_REPORT)
async def show_report(ls: VramlintServer, *args: Any) -> str:
    """The per-layer report of a model, as text (`vramlint report`): the client shows it.
    Arguments: the document's URI and the model's name (the code lens's command)."""
    from vramlint.render.report import report

    uri, name = ([*args] + [None, None])[:2]
    doc = await ls.docs.current(str(uri), final=True)
    fa = doc.view()[0] if doc is not None else None
    if doc is None or fa is None:
        return "the document is not open"
    model = next((m for m in fa.models if m.name == name), None)
    if model is None:
        return f"no model named {name}"
    path = doc.path
    # Off the loop (the report resolves positions), but not behind a running analysis.
    text: str = await asyncio.get_running_loop().run_in_executor(
        None, lambda: ls.guard("report", lambda: report(path, model, width=120), ""))
    return text


@server.command(report_html.REPORT_HTML)
async def on_report_html(ls: VramlintServer, *args: Any) -> str:
    """The model's HTML report with its memory timeline (`vramlint report --html`), for the
    report webview. Arguments: the document's URI and the model's name (as showReport's)."""
    return await report_html.report_html(ls.docs, ls.guard, args)


def main(tcp: str | None = None) -> int:
    # Analyses allocate many short-lived nodes over a large, long-lived heap (evaluated library
    # modules): collect the young generations less often, so full collections do not stall edits.
    gc.set_threshold(*GC_THRESHOLDS)
    reuse.enable()  # an edit builds again only the classes it may have changed (analysis/reuse.py)
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
        return 0
    transport.serve_stdio(server.protocol, server.report_problem)
    # The client closed the stream without `exit`.
    end_process(0 if server.protocol._shutdown else 1)
    return 1
