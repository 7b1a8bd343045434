"""The language server's stdio transport: LSP's base protocol (JSON-RPC messages framed by
`Content-Length` headers), read so that a malformed message is answered or reported, never lost
in silence.

pygls's own loop (`pygls.io_.run_async`) skips a header it cannot read without a word, reads the
next header glued to a body as part of it (losing that message too), waits forever on a
Content-Length longer than its body, and reports a request whose params do not validate only on
stderr (the client waits for an answer that never comes). Here:

- bytes between messages that are not headers are reported and skipped: reading resumes at the
  next `Content-Length` header, wherever it starts;
- a bad Content-Length (not a number, absurdly large) is reported and its body skipped;
- a Content-Length longer than its body is noticed when the next message's header turns up inside
  the body, or when the body stops arriving and what came is a whole JSON message;
- a body that is not JSON is answered with ParseError (id null, as JSON-RPC says), a request whose
  params do not validate with InvalidParams saying what is wrong;
- the process's file descriptors 0 and 1 no longer carry the protocol: a file the analysis opens
  (`helper.py -> /dev/stdin`) reads nothing, and whatever some code prints goes to stderr instead of
  into the stream.

Every problem goes to stderr and, as `window/logMessage`, to the client's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cattrs import transform_error
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.io_ import StdoutWriter
from pygls.protocol import JsonRPCProtocol

HEADER = re.compile(rb"Content-Length[ \t]*:[ \t]*(\S*)[ \t]*\r?\n", re.IGNORECASE)
HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*[ \t]*:[^\r\n]*\r?\n")
MAX_BODY = 1 << 30  # a larger Content-Length is a framing error, not a message to wait for
MAX_HEADERS = 8192  # bytes of further headers before the blank line that ends them
MAX_UNFRAMED = 1 << 16  # bytes without any header kept while waiting for one
STALL_S = 1.0  # a body that stops arriving this long: is what came a whole message?
CHUNK = 1 << 16


@dataclass(frozen=True)
class Parsed:
    """A framed message's JSON value."""

    value: Any


@dataclass(frozen=True)
class Unparsable:
    """A framed body that is not JSON."""

    error: str


@dataclass(frozen=True)
class Problem:
    """A framing error, already recovered from: to report."""

    message: str


Event = Parsed | Unparsable | Problem


class Framer:
    """Splits a byte stream into messages (no I/O: fed bytes, asked for what they hold)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.length: int | None = None  # the body's length once its headers are read (buf holds the body)

    def feed(self, data: bytes) -> None:
        self.buf += data

    @property
    def waiting_for_body(self) -> bool:
        return self.length is not None

    def events(self, stalled: bool = False) -> list[Event]:
        """The messages and problems the bytes fed so far hold. `stalled`: no byte came for a
        while, so an incomplete body is looked at as it is."""
        out: list[Event] = []
        while True:
            state = (len(self.buf), self.length)
            got = self._header() if self.length is None else self._body(stalled)
            out += got
            if not got and state == (len(self.buf), self.length):
                return out  # nothing more until more bytes come
            stalled = False

    def leftover(self) -> list[Event]:
        """At the end of the stream: what was never a message."""
        if self.length is not None:
            return [Problem(f"the stream ended {self.length - len(self.buf)} bytes short of a message's "
                            f"Content-Length ({self.length})")]
        if self.buf.strip():
            return [Problem(f"the stream ended with {len(self.buf)} bytes that are not a message: {_excerpt(self.buf)}")]
        return []

    # ------------------------------------------------------------------ headers
    def _header(self) -> list[Event]:
        m = HEADER.search(self.buf)
        if m is None:
            return self._unframed()
        out = self._skip(m.start())
        m = HEADER.match(self.buf)
        assert m is not None
        end = self._headers_end(m.end())
        if end is None:
            return out  # the rest of the headers has not come yet
        if end < 0:
            del self.buf[:m.end()]
            return [*out, Problem("a Content-Length header not followed by a blank line: its message is skipped")]
        value = m.group(1).strip()
        del self.buf[:end]
        if not value.isdigit() or int(value) > MAX_BODY:
            return [*out, Problem(f"bad Content-Length header {_excerpt(value)}: its message is skipped")]
        self.length = int(value)
        return out

    def _unframed(self) -> list[Event]:
        """No header in sight: complete lines that are not headers are garbage already."""
        nl = self.buf.rfind(b"\n")
        if nl >= 0 and not _only_headers(bytes(self.buf[:nl + 1])):
            return self._skip(nl + 1)
        if len(self.buf) > MAX_UNFRAMED:
            return self._skip(len(self.buf) - 64)
        return []

    def _skip(self, n: int) -> list[Event]:
        skipped = bytes(self.buf[:n])
        del self.buf[:n]
        if not skipped.strip() or _only_headers(skipped):
            return []
        return [Problem(f"skipped {len(skipped)} bytes that are not an LSP message header: {_excerpt(skipped)}")]

    def _headers_end(self, pos: int) -> int | None:
        """Where the body starts, after the headers from `pos` and their blank line; None while
        they are incomplete, -1 if what follows is not a header."""
        while True:
            rest = self.buf[pos:pos + 2]
            if rest in (b"\r\n", b"\n") or rest[:1] == b"\n":
                return pos + (2 if rest == b"\r\n" else 1)
            if len(rest) < 2 and rest in (b"", b"\r"):
                return None
            line = HEADER_LINE.match(self.buf, pos)
            if line is not None:
                pos = line.end()
                continue
            nl = self.buf.find(b"\n", pos)
            if nl < 0 and len(self.buf) - pos < MAX_HEADERS:
                return None
            return -1

    # ------------------------------------------------------------------ bodies
    def _body(self, stalled: bool) -> list[Event]:
        n = self.length
        assert n is not None
        if len(self.buf) >= n:
            body = bytes(self.buf[:n])
            del self.buf[:n]
            self.length = None
            return self._checked(body, n)
        if not stalled or not self.buf:
            return []
        # The body stopped arriving: a whole message in what came means the Content-Length lied.
        data = bytes(self.buf)
        cut = HEADER.search(data)
        head = data[:cut.start()] if cut is not None else data
        value = _json(head)
        if isinstance(value, Unparsable):
            return []
        del self.buf[:len(head)]
        self.length = None
        return [Problem(f"Content-Length {n} but the message was {len(head)} bytes"), value]

    def _checked(self, body: bytes, n: int) -> list[Event]:
        value = _json(body)
        if isinstance(value, Parsed):
            return [value]
        # A Content-Length longer than the message: the next message's header is inside the body.
        cut = HEADER.search(body)
        if cut is None:
            return [value]
        self.buf[:0] = body[cut.start():]
        head = body[:cut.start()]
        return [Problem(f"Content-Length {n} but the next message's header came after {len(head)} bytes"), _json(head)]


def _json(body: bytes) -> Parsed | Unparsable:
    try:
        return Parsed(json.loads(body))
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return Unparsable(f"{type(err).__name__}: {err}; the body begins {_excerpt(body)}")


def _only_headers(data: bytes) -> bool:
    pos = 0
    while pos < len(data):
        m = HEADER_LINE.match(data, pos)
        if m is None:
            return data[pos:].strip() == b""
        pos = m.end()
    return True


def _excerpt(data: bytes | bytearray, n: int = 60) -> str:
    text = repr(bytes(data[:n]))
    return text + ("..." if len(data) > n else "")


# ---------------------------------------------------------------------------------------------
# The loop


class Channel:
    """The protocol's own file descriptors, moved off 0 and 1 (see the module's docstring)."""

    def __init__(self) -> None:
        self.input = os.dup(0)
        output = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdout.flush()
        os.dup2(2, 1)
        self.output = os.fdopen(output, "wb")


def serve_stdio(protocol: JsonRPCProtocol, report: Callable[[str], None]) -> None:
    """Serve `protocol` on the process's stdin/stdout until the stream ends."""
    channel = Channel()
    protocol.set_writer(StdoutWriter(channel.output))
    asyncio.run(serve(protocol, channel.input, report))


async def serve(protocol: JsonRPCProtocol, fd: int, report: Callable[[str], None]) -> None:
    """Read messages from file descriptor `fd` and hand them to `protocol`, reporting (and
    answering, where the message is a request) whatever is wrong with them."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def read() -> None:  # a daemon thread: a blocked read never keeps the process alive
        while True:
            try:
                data = os.read(fd, CHUNK)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(chunks.put_nowait, data)
            if not data:
                return

    threading.Thread(target=read, name="vramlint-stdin", daemon=True).start()
    framer = Framer()
    while True:
        stalled = False
        try:
            data = await asyncio.wait_for(chunks.get(), STALL_S if framer.waiting_for_body else None)
        except TimeoutError:
            data, stalled = b"-", True
        if not data:
            for event in framer.leftover():
                dispatch(protocol, event, report)
            return
        if not stalled:
            framer.feed(data)
        for event in framer.events(stalled):
            dispatch(protocol, event, report)


def dispatch(protocol: JsonRPCProtocol, event: Event, report: Callable[[str], None]) -> None:
    if isinstance(event, Problem):
        report(f"LSP framing error: {event.message}")
    elif isinstance(event, Unparsable):
        report(f"LSP message is not JSON ({event.error}): answered with ParseError")
        _send_error(protocol, None, JsonRpcParseError(f"the message is not JSON: {event.error}"))
    else:
        _handle(protocol, event.value, report)


def _handle(protocol: JsonRPCProtocol, value: Any, report: Callable[[str], None]) -> None:
    msg_id = value.get("id") if isinstance(value, dict) else None
    method = value.get("method") if isinstance(value, dict) else None
    if not isinstance(value, dict) or value.get("jsonrpc") != "2.0":
        report(f"not a JSON-RPC 2.0 message: {_excerpt(json.dumps(value).encode())}")
        if method is not None or not isinstance(value, dict):
            _send_error(protocol, msg_id, JsonRpcInvalidRequest("not a JSON-RPC 2.0 message"))
        return
    try:
        message = protocol.structure_message(value)
    except Exception as err:
        detail = _why(err)
        if method is None:
            report(f"LSP message {msg_id!r} could not be read: {detail}")
        elif "id" in value:
            report(f"LSP request {method} ({msg_id!r}) has invalid params: {detail}; answered with an error")
            error = JsonRpcInvalidParams if isinstance(err, JsonRpcInvalidParams) else JsonRpcInvalidRequest
            _send_error(protocol, msg_id, error(f"invalid {method} request: {detail}"))
        else:
            report(f"LSP notification {method} ignored, its params are invalid: {detail}")
        return
    try:
        protocol.handle_message(message)
    except Exception as err:  # pygls answers a handler's own failure; this is pygls failing
        report(f"LSP message {method or msg_id!r} could not be handled: {type(err).__name__}: {err}")


def _why(err: Exception) -> str:
    cause = err.__cause__
    if cause is not None:
        try:
            return "; ".join(transform_error(cause))  # e.g. "expected int @ $.params.position.line"
        except Exception:
            return f"{type(cause).__name__}: {cause}"
    return f"{type(err).__name__}: {err}"


def _send_error(protocol: JsonRPCProtocol, msg_id: Any, error: JsonRpcException) -> None:
    # Written as a plain object: pygls's converter leaves out an `id` of None, which JSON-RPC
    # requires as null when the request's id could not be read.
    if not isinstance(msg_id, (int, str)):
        msg_id = None
    protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": error.code, "message": error.message}})
