"""The language server under protocol abuse, slow analyses and large documents (issue 17, limits 1,
3, 4 and 6).

Malformed messages cannot be sent with pytest-lsp's client: those tests drive `vramlint lsp` as a
subprocess over raw stdio (`Raw`), reading what it writes with a deadline. The rest use the
pytest-lsp session of tests/test_lsp.py."""

from __future__ import annotations

import asyncio
import functools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests import test_lsp
from tests.test_lsp import NET, Session, line_of
from vramlint.lsp.transport import Framer, Parsed, Problem, Unparsable

# The language-server fixtures of test_lsp.py (a server per test, VS Code's capabilities).
client = test_lsp.client
lsp = test_lsp.lsp

DEADLINE = 30.0  # seconds: anything the server must answer, on a loaded machine
SERVER = [sys.executable, "-m", "vramlint", "lsp"]
F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, None]])


def bounded(seconds: float = 180.0) -> Callable[[F], F]:
    """A pytest-lsp test that fails after `seconds` instead of hanging (its requests wait for ever
    for a server that stopped answering, which is what these tests are about)."""
    def wrap(test: F) -> F:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            await asyncio.wait_for(test(*args, **kwargs), seconds)
        return run  # type: ignore[return-value]
    return wrap


# ------------------------------------------------------------------------------------ framing
def frames(data: bytes, step: int = 0) -> list[Any]:
    """What `Framer` makes of `data` fed whole, or `step` bytes at a time."""
    framer = Framer()
    out: list[Any] = []
    for i in range(0, len(data), step or len(data)):
        framer.feed(data[i:i + (step or len(data))])
        out += framer.events()
    return out + framer.events(stalled=True) + framer.leftover()


def message(n: int) -> bytes:
    return Raw.frame({"jsonrpc": "2.0", "id": n, "method": "m", "params": {"text": "Content-Length: 3"}})


@pytest.mark.parametrize("step", [0, 1, 7])
def test_framer_reads_messages_in_any_chunks(step: int) -> None:
    data = message(1) + b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + message(2)
    assert frames(data, step) == [Parsed(json.loads(message(1).split(b"\r\n\r\n")[1])),
                                  Parsed(json.loads(message(2).split(b"\r\n\r\n")[1]))]


@pytest.mark.parametrize("step", [0, 5])
def test_framer_recovers_from_each_framing_error(step: int) -> None:
    body2 = json.loads(message(2).split(b"\r\n\r\n")[1])
    cases = {
        b"garbage\r\n" + message(2): "skipped 9 bytes",
        b"garbage" + message(2): "skipped 7 bytes",
        b"Content-Length: x\r\n\r\n{}" + message(2): "bad Content-Length",
        b"Content-Length: 99999999999\r\n\r\n{}" + message(2): "bad Content-Length",
        b"Content-Length: 5\r\nnot a header\r\n" + message(2): "not followed by a blank line",
    }
    for data, problem in cases.items():
        got = frames(data, step)
        assert [e for e in got if isinstance(e, Parsed)] == [Parsed(body2)], data
        assert any(isinstance(e, Problem) and problem in e.message for e in got), (data, got)
    # Too long a Content-Length, the next message right behind: both read.
    m1 = message(1)
    longer = m1.replace(b"Content-Length: %d" % (len(m1.split(b"\r\n\r\n")[1])),
                        b"Content-Length: %d" % (len(m1.split(b"\r\n\r\n")[1]) + 30))
    got = frames(longer + message(2), step)
    assert [e.value["id"] for e in got if isinstance(e, Parsed)] == [1, 2]
    # ... with nothing behind: read once the stream stalls.
    got = frames(longer, step)
    assert [e.value["id"] for e in got if isinstance(e, Parsed)] == [1]
    # Too short a Content-Length: the cut body is not JSON, the rest is skipped up to the next header.
    shorter = m1.replace(b"Content-Length: %d" % (len(m1.split(b"\r\n\r\n")[1])),
                         b"Content-Length: %d" % (len(m1.split(b"\r\n\r\n")[1]) - 10))
    got = frames(shorter + message(2), step)
    assert isinstance(got[0], Unparsable) and got[-1] == Parsed(body2)
    assert any(isinstance(e, Problem) and "skipped 10 bytes" in e.message for e in got), got
    # Not JSON: said so (the server answers ParseError).
    got = frames(b"Content-Length: 4\r\n\r\n{no}" + message(2), step)
    assert isinstance(got[0], Unparsable) and got[1] == Parsed(body2)


# ------------------------------------------------------------------------------------ raw stdio
class Raw:
    """`vramlint lsp` over raw stdio: frame and send anything, read messages with a deadline."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd)
        self.root = cwd
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.next_id = 100

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n") and length is not None:
                    break
            self.messages.put(json.loads(out.read(length)))

    def _read_err(self) -> None:
        err = self.proc.stderr
        assert err is not None
        for line in iter(err.readline, b""):
            self.stderr.append(line.decode("utf-8", "replace"))

    # ------------------------------------------------------------------ sending
    def raw(self, data: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(data)
        stdin.flush()

    @staticmethod
    def frame(obj: Any, extra: int = 0) -> bytes:
        body = json.dumps(obj).encode()
        return b"Content-Length: %d\r\n\r\n" % (len(body) + extra) + body

    def send(self, obj: Any) -> None:
        self.raw(self.frame(obj))

    def request(self, method: str, params: Any, msg_id: int | None = None) -> int:
        msg_id = self.next_id if msg_id is None else msg_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    # ------------------------------------------------------------------ receiving
    def wait(self, what: str, match: Any, timeout: float = DEADLINE) -> dict[str, Any]:
        """The first message (seen already or to come) for which `match(message)` holds."""
        for m in self.seen:
            if match(m):
                self.seen.remove(m)
                return m
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; stderr: {''.join(self.stderr)[-2000:]}")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if match(m):
                return m
            self.seen.append(m)

    def response(self, msg_id: Any, timeout: float = DEADLINE) -> dict[str, Any]:
        return self.wait(f"the response to {msg_id!r}", lambda m: m.get("id", "-") == msg_id and "method" not in m,
                         timeout)

    def log(self, needle: str) -> dict[str, Any]:
        return self.wait(f"a window/logMessage with {needle!r}",
                         lambda m: m.get("method") == "window/logMessage" and needle in m["params"]["message"])

    def stderr_has(self, needle: str, timeout: float = DEADLINE) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in "".join(self.stderr):
                return True
            time.sleep(0.02)
        return False

    # ------------------------------------------------------------------ session
    def initialize(self) -> None:
        msg_id = self.request("initialize", {"processId": None, "rootUri": self.root.as_uri(), "capabilities": {},
                                             "initializationOptions": {"vramlint": {"gpu": "H100"}}})
        assert "result" in self.response(msg_id)
        self.notify("initialized", {})

    def open(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        uri = path.as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                             "text": text}})
        return uri

    def hover(self, uri: str, line: Any, character: Any = 0) -> int:
        return self.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                   "position": {"line": line, "character": character}})

    def exit_code(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the server did not exit") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def raw(tmp_path: Path) -> Any:
    server = Raw(tmp_path)
    yield server
    server.close()


HOVERABLE = "import torch.nn as nn\n\nmodel = nn.Linear(10, 5)\n"


# ------------------------------------------------------------------------------------ limit 6
def test_a_request_with_invalid_params_is_answered_invalid_params(raw: Raw) -> None:
    raw.initialize()
    uri = raw.open("m.py", HOVERABLE)
    bad = raw.hover(uri, "x")
    answer = raw.response(bad)
    assert answer["error"]["code"] == -32602, answer  # InvalidParams
    assert "position.line" in answer["error"]["message"]
    assert raw.stderr_has("invalid params")
    # The server goes on: a valid hover of the same document is answered with the model.
    good = raw.response(raw.hover(uri, 2, 1))
    assert "55 parameters" in good["result"]["contents"]["value"], good


def test_requests_after_shutdown_are_invalid_and_exit_gives_0(raw: Raw) -> None:
    raw.initialize()
    uri = raw.open("m.py", HOVERABLE)
    assert raw.response(raw.request("shutdown", None))["result"] is None
    answer = raw.response(raw.hover(uri, 2, 1))
    assert answer["error"]["code"] == -32600, answer  # InvalidRequest
    raw.notify("exit", None)
    assert raw.exit_code() == 0


def test_exit_without_shutdown_gives_1(raw: Raw) -> None:
    raw.initialize()
    raw.notify("exit", None)
    assert raw.exit_code() == 1


SPIN_CLASS = """

class Spin{i}(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        n = 0
        while True:
            n = n + 1
        return self.fc(x)


model{i} = Spin{i}()
y{i} = model{i}(torch.randn(2, 4))
"""
# Endless loops in forwards: each runs until a step budget stops it (tens of seconds in all).
ENDLESS = "import torch\nimport torch.nn as nn\n" + "".join(SPIN_CLASS.format(i=i) for i in range(4))


def test_exit_is_not_held_up_by_a_running_analysis(raw: Raw) -> None:
    raw.initialize()
    raw.open("spin.py", ENDLESS)
    time.sleep(1.0)  # its analysis has started (it runs until the engine's time budget)
    assert raw.response(raw.request("shutdown", None))["result"] is None
    raw.notify("exit", None)
    assert raw.exit_code(timeout=15) == 0


def test_framing_errors_are_reported_and_reading_recovers(raw: Raw) -> None:
    raw.initialize()
    uri = raw.open("m.py", HOVERABLE)

    # Garbage between messages, glued to the next header: skipped, reported, the message read.
    raw.raw(b"this is not a header\r\nnor this")
    first = raw.hover(uri, 2, 1)
    assert "result" in raw.response(first)
    raw.log("skipped")

    # A Content-Length that is not a number: reported, its body skipped, the next message read.
    raw.raw(b"Content-Length: twelve\r\n\r\n" + json.dumps({"jsonrpc": "2.0", "method": "x"}).encode())
    assert "result" in raw.response(raw.hover(uri, 2, 1))
    raw.log("bad Content-Length")

    # A Content-Length longer than its message, another message right behind it: both answered.
    longer = {"jsonrpc": "2.0", "id": 7, "method": "textDocument/hover",
              "params": {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 1}}}
    raw.raw(raw.frame(longer, extra=40))
    behind = raw.hover(uri, 2, 1)
    assert "result" in raw.response(behind)
    assert "result" in raw.response(7)
    raw.log("the next message's header came after")

    # ... with nothing behind it: answered once the body stops arriving.
    longer["id"] = 8
    raw.raw(raw.frame(longer, extra=1000))
    assert "result" in raw.response(8)
    raw.log("Content-Length")

    # A body that is not JSON: ParseError, id null (JSON-RPC), and the server goes on.
    raw.raw(b"Content-Length: 9\r\n\r\n{not json")
    parse_error = raw.wait("a ParseError", lambda m: m.get("error", {}).get("code") == -32700)
    assert parse_error["id"] is None
    assert "result" in raw.response(raw.hover(uri, 2, 1))
    assert raw.stderr_has("framing error")
    assert raw.proc.poll() is None


# ------------------------------------------------------------------------------------ limit 3
@pytest.mark.asyncio
@bounded()
async def test_other_documents_answer_while_an_analysis_is_slow(lsp: Session) -> None:
    uri = await lsp.open("net.py", NET)
    hints = await lsp.hints(uri)
    assert hints
    spin = lsp.uri("spin.py")
    (lsp.root / "spin.py").write_text(ENDLESS)
    start = len(lsp.published)
    lsp.client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(spin, "python", 1, ENDLESS)))
    lsp.versions[spin], lsp.texts[spin] = 1, ENDLESS
    await asyncio.sleep(2.0)  # the endless analysis holds the engine (until its time budget)
    # An edit of net.py: its analysis queues behind spin.py's; its features answer at once from
    # the last result (on the lines that did not change).
    lsp.change(uri, NET + "\n# a comment\n")
    t = time.monotonic()
    assert await lsp.hints(uri) == hints
    md = await lsp.hover(uri, line_of(NET, "model = Net()"), 1)
    assert md is not None and "2,762 parameters" in md
    assert await lsp.lenses(uri)
    took = time.monotonic() - t
    assert not any(p.uri == spin for p in lsp.published[start:]), "the features waited for spin.py's analysis"
    assert took < 10, took
    # spin.py itself, never analysed yet: answered at once, empty.
    assert await lsp.hover(spin, 0, 0) is None
    # Changed to a quick file, spin.py's running analysis is cancelled: its new version is
    # analysed at once, not after the endless one's time budget.
    t = time.monotonic()
    diags = await lsp.edit(spin, "import torch.nn as nn\n\nm = nn.Linear(2, 3)\n")
    assert time.monotonic() - t < 20
    assert not any(d.code == "VL000" for d in diags)
    await lsp.publish(uri, 2)  # and net.py's queued analysis ran


@pytest.mark.asyncio
@bounded()
async def test_a_pending_request_is_cancelled_at_once(lsp: Session) -> None:
    # Never called, the model lacks inputs: a VL301 to ask quick fixes for.
    uri = await lsp.open("net.py", NET.replace("out = model(torch.randn(8, 32))\n", ""))
    diags = lsp.client.diagnostics[uri]
    assert diags
    (lsp.root / "spin.py").write_text(ENDLESS)
    spin = lsp.uri("spin.py")
    lsp.client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(spin, "python", 1, ENDLESS)))
    await asyncio.sleep(2.0)
    # Quick fixes analyse the fixed text: behind the endless analysis, the request is pending.
    params = types.CodeActionParams(types.TextDocumentIdentifier(uri), diags[0].range,
                                    types.CodeActionContext(list(diags)))
    answer = asyncio.ensure_future(
        lsp.client.protocol.send_request_async(types.TEXT_DOCUMENT_CODE_ACTION, params, msg_id="fixes"))
    await asyncio.sleep(1.0)
    assert not answer.done(), "answered before the cancellation: the test proves nothing"
    t = time.monotonic()
    lsp.client.cancel_request(types.CancelParams(id="fixes"))
    with pytest.raises(JsonRpcException) as err:
        await asyncio.wait_for(answer, DEADLINE)
    assert err.value.code == -32800  # RequestCancelled
    assert time.monotonic() - t < 5
    # And the server goes on answering.
    md = await lsp.hover(uri, line_of(NET, "model = Net()"), 1)
    assert md is not None
    lsp.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(spin)))


# ------------------------------------------------------------------------------------ limit 1
def reads_devices_safely(tmp: Path) -> bool:
    """Whether the engine refuses a device as a source file (engine-limits' fix: regular files only,
    capped as read). Probed with `vramlint check` on a `/dev/zero` symlink under a 2 GiB memory
    limit, since before that fix the read fills memory."""
    import resource

    link = tmp / "zero_probe.py"
    link.symlink_to("/dev/zero")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    try:
        run = subprocess.run([sys.executable, "-m", "vramlint", "check", str(link), "--format", "json"],
                             capture_output=True, text=True, timeout=60, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return False
    finally:
        link.unlink()
    return run.returncode in (0, 1) and "MemoryError" not in run.stdout + run.stderr


HELPER_USER = """\
import torch.nn as nn

import helper

model = nn.Linear(10, 5)
other = nn.Linear(helper.WIDTH, 5)
"""


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/stdin and /dev/zero")
@pytest.mark.parametrize("device", ["/dev/stdin", "/dev/zero"])
@pytest.mark.asyncio
@bounded()
async def test_an_import_of_a_device_leaves_the_server_answering(client: LanguageClient, lsp: Session,
                                                                 device: str) -> None:
    """`helper.py -> /dev/stdin` read the server's own JSON-RPC stream (the server's fd 0 is
    /dev/null now); `-> /dev/zero` filled memory (the engine reads regular files only)."""
    if device == "/dev/zero" and not reads_devices_safely(lsp.root):
        pytest.skip("the engine reads /dev/zero until memory runs out: needs engine-limits' regular-file read")
    (lsp.root / "helper.py").symlink_to(device)
    uri = await lsp.open("main.py", HELPER_USER)
    for _ in range(3):
        md = await lsp.hover(uri, line_of(HELPER_USER, "model ="), 1)
        assert md is not None and "55 parameters" in md, md
    other = await lsp.open("net.py", NET)
    md = await lsp.hover(other, line_of(NET, "model = Net()"), 1)
    assert md is not None and "2,762 parameters" in md
    await lsp.edit(uri, HELPER_USER + "\nmore = nn.Linear(3, 4)\n")
    await lsp.edit(other, NET + "\nmore = nn.Linear(3, 4)\n")
    assert client.error is None


# ------------------------------------------------------------------------------------ limit 2
@pytest.mark.asyncio
@bounded()
@pytest.mark.parametrize("filler", ["# " + "x" * 40_000, "NOTE = '" + "y" * 50_000 + "'"],
                         ids=["40k-comment", "50k-string"])
async def test_long_runs_of_word_characters_do_not_stall_the_server(lsp: Session, filler: str) -> None:
    """A 40,000-character comment line took 12.8 s and a 50 KB string literal froze the server
    for 28 s (a quadratic scan of the whole text): the model beside them is answered promptly."""
    text = NET + "\n" + filler + "\n"
    t = time.monotonic()
    uri = await lsp.open("long.py", text)
    md = await lsp.hover(uri, line_of(NET, "model = Net()"), 1)
    assert md is not None and "2,762 parameters" in md
    assert time.monotonic() - t < DEADLINE


# ------------------------------------------------------------------------------------ limit 4
@pytest.mark.asyncio
@bounded()
async def test_a_large_document_does_not_hold_the_server(lsp: Session) -> None:
    """A 5 MB document (a model and a generated data literal) was parsed and analysed for
    minutes, the event loop starved all the while: over `max-file-size` it is not parsed, says
    so where it starts, and hovers of it and of other documents are answered at once."""
    small = await lsp.open("net.py", NET)
    row = ", ".join(f"{i * 0.001:.4f}" for i in range(12)) + ",\n"
    big = NET + "\nDATA = [\n" + row * (5_000_000 // len(row)) + "]\n"
    t = time.monotonic()
    uri = await lsp.open("big.py", big)
    (diag,) = lsp.client.diagnostics[uri]
    assert diag.range.start.line == 0 and "not analysed" in diag.message and "max-file-size" in diag.message
    for line in (line_of(NET, "model = Net()"), 1000, 300_000):
        await lsp.hover(uri, line, 1)
    md = await lsp.hover(small, line_of(NET, "model = Net()"), 1)
    assert md is not None and "2,762 parameters" in md
    assert time.monotonic() - t < DEADLINE
    # Cut below the limit, it is analysed like any file.
    diags = await lsp.edit(uri, NET)
    assert not any("not analysed" in d.message for d in diags)
    md = await lsp.hover(uri, line_of(NET, "model = Net()"), 1)
    assert md is not None and "2,762 parameters" in md
