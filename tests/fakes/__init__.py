"""Loopback HTTP servers that speak the provider APIs, for the real SDKs to talk to.

A server plays a script, one item per request: a `Reply` (text, tool calls, usage, stop
reason) or a `Fault` (an HTTP error status with retry-after, a hang past the client's
timeout, a dropped connection, a stream cut in the middle, an error event in the stream).
It records every request it got (`.requests`: path, headers, JSON body) so tests can assert
on what the client sent. Real sockets on 127.0.0.1, port 0, a thread per connection.

    with FakeAnthropic([status(529), reply("hi", call("read_file", path="a.py"))]) as srv:
        AnthropicModel("claude-x", base_url=srv.url, api_key="test", ...)
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    name: str
    arguments: dict[str, Any] | str  # a str is sent as is: broken JSON on purpose
    id: str = ""

    def json_text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    input: int = 100  # uncached input tokens
    output: int = 20
    cache_read: int = 0
    cache_write: int = 0
    stop: str = ""  # "" = tool_use when there are calls, else end_turn; or max_tokens
    thinking: str = ""


@dataclass
class Fault:
    kind: str  # status | hang | drop | cut | error_event
    status: int = 500
    retry_after: float | None = None
    seconds: float = 5.0


def call(name: str, **arguments: Any) -> Call:
    return Call(name, arguments)


def broken_call(name: str, raw: str) -> Call:
    return Call(name, raw)


def reply(text: str = "", *calls: Call, **usage_or_stop: Any) -> Reply:
    return Reply(text, list(calls), **usage_or_stop)


def status(code: int, retry_after: float | None = None) -> Fault:
    """Answer with this HTTP error status (and a retry-after header in seconds)."""
    return Fault("status", status=code, retry_after=retry_after)


def hang(seconds: float) -> Fault:
    """Say nothing for `seconds` (longer than the client's timeout), then hang up."""
    return Fault("hang", seconds=seconds)


def drop() -> Fault:
    """Close the connection without answering."""
    return Fault("drop")


def cut() -> Fault:
    """Start a 200 stream, send a little of it, then close the connection."""
    return Fault("cut")


def error_event() -> Fault:
    """Start a 200 stream, then send an `overloaded` error event (Anthropic streams do)."""
    return Fault("error_event")


class FakeServer:
    """Base: serves `script` at POST `self.endpoint`; subclasses render replies and errors."""

    endpoint = ""

    def __init__(self, script: Iterable[Reply | Fault] = ()):
        self.script: list[Reply | Fault] = list(script)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ids = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small SSE writes must not wait for ACKs

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                server._handle(self)

            def setup(self) -> None:  # one per TCP connection a client opened
                with server.lock:
                    server.connections += 1
                super().setup()

        self.connections = 0
        """TCP connections clients opened (a client kept for the run reuses one)."""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def add(self, *items: Reply | Fault) -> None:
        with self.lock:
            self.script.extend(items)

    @property
    def left(self) -> int:
        return len(self.script)

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self.ids += 1
            return f"{prefix}{self.ids:04d}"

    # -- one request -------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_raw": raw.decode(errors="replace")}
        with self.lock:
            headers = {k.lower(): v for k, v in h.headers.items()}
            self.requests.append({"path": h.path, "headers": headers, "body": body})
            item = self.script.pop(0) if self.script and h.path == self.endpoint else None
        if h.path != self.endpoint:
            return self._json(h, 404, self.error_body(404, f"no route {h.path}"))
        if item is None:
            return self._json(h, 400, self.error_body(400, "fake server: script exhausted"))
        streaming = bool(body.get("stream"))
        if isinstance(item, Reply):
            if streaming:
                return self._sse(h, self.stream_events(item, body))
            return self._json(h, 200, self.message(item, body))
        if item.kind == "status":
            headers = {"retry-after": f"{item.retry_after:g}"} if item.retry_after is not None \
                else {}
            return self._json(h, item.status, self.error_body(item.status, "injected"), headers)
        if item.kind == "hang":
            self.stopping.wait(item.seconds)
            return self._hang_up(h)
        if item.kind == "drop":
            return self._hang_up(h)
        if item.kind == "cut":
            events = list(self.stream_events(Reply("this reply is cut short " * 4), body))
            return self._sse(h, events[:2], cut=True)
        if item.kind == "error_event":
            events = list(self.stream_events(Reply("overloaded soon"), body))[:1]
            events.append(("error", self.error_body(529, "Overloaded")))
            return self._sse(h, events)
        raise ValueError(f"unknown fault {item.kind!r}")

    # -- to override -------------------------------------------------------------------------
    def message(self, r: Reply, request: dict) -> dict:
        raise NotImplementedError

    def stream_events(self, r: Reply, request: dict) -> Iterable[tuple[str | None, Any]]:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict:
        raise NotImplementedError

    # -- writing -----------------------------------------------------------------------------
    @staticmethod
    def _json(h: BaseHTTPRequestHandler, code: int, payload: dict,
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(code)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    @staticmethod
    def _sse(h: BaseHTTPRequestHandler, events: Iterable[tuple[str | None, Any]],
             cut: bool = False) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        for event, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            chunk = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
            raw = chunk.encode()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            h.wfile.flush()
        if cut:
            return FakeServer._hang_up(h)
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    @staticmethod
    def _hang_up(h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def chunks(text: str, size: int) -> list[str]:
    """`text` in pieces of `size` characters (at least one piece)."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]
