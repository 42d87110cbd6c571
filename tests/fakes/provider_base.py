"""Shared plumbing of the fake MessageBird and Sinch servers: a threaded HTTP server on 127.0.0.1,
recorded requests, and the same fault injection as the fake Twilio (tests/fakes/twilio_server.py):
a script of `Reply` entries for the next message creates — `Reply(status=503)` (refused, nothing
created), `Reply(delay=3.0)` (created, answered late: an ambiguous timeout for a client with a
shorter timeout), `Reply(drop=True)`, `Reply(status=500, create=True)` — plus `fail_all(status)`
to answer every create with that status until cleared (an outage), `concurrency_limit` (429 above
it, as Twilio's 20429) and `block_recipient(to)` (the message is accepted, then its delivery report
says the recipient opted out — the provider's own opt-out signal)."""
from __future__ import annotations

import collections
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.fakes.twilio_server import Reply  # noqa: F401 — the same fault-injection vocabulary


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_GET
    do_DELETE = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class FakeProviderServer:
    name = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, auto_callbacks=(), auto_callback_delay: float = 0.05,
                 concurrency_limit: int | None = None):
        self.host, self.port = host, port
        self.auto_callbacks = tuple(auto_callbacks)
        self.auto_callback_delay = auto_callback_delay
        self.requests: list[Recorded] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.callback_results: list[tuple[str, int | None]] = []
        self._script: collections.deque = collections.deque()
        self._fail_all: int | None = None
        self.concurrency_limit = concurrency_limit
        self.blocked: set[str] = set()
        self._in_flight = 0
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self):
        if self._server is None:
            self._stopping.clear()
            server = _Server((self.host, self.port), _Handler)
            server.fake = self
            self._server, self.port = server, server.server_address[1]
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self.callback_results.clear()
            self._script.clear()
            self._fail_all = None
            self.auto_callbacks = ()
            self.concurrency_limit = None
            self.blocked.clear()

    # fault injection
    def script(self, replies) -> None:
        with self._lock:
            self._script.extend([replies] if isinstance(replies, Reply) else list(replies))

    def fail_all(self, status: int | None) -> None:
        """Answer every create with `status` (nothing created) until `fail_all(None)`."""
        with self._lock:
            self._fail_all = status

    def block_recipient(self, to: str) -> None:
        """Accept messages to `to`, then report them failed because the recipient opted out."""
        with self._lock:
            self.blocked.add(to.lstrip("+"))

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and self._is_create(r.path)]

    # subclass hooks
    def _is_create(self, path: str) -> bool:
        raise NotImplementedError

    def _route(self, h, method: str, path: str, query: dict, body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def _error_body(self, status: int) -> Any:
        raise NotImplementedError

    # plumbing
    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        query = parse_qs(parts.query, keep_blank_values=True)
        rec = Recorded(h.command, parts.path, query, dict(h.headers.items()), body, time.time())
        with self._lock:
            self.requests.append(rec)
        with self._lock:
            self._in_flight += 1
            over = self.concurrency_limit is not None and self._in_flight > self.concurrency_limit
        try:
            if over:
                return self._send(h, 429, self._error_body(429), {"Retry-After": "1"})
            if h.command == "POST" and self._is_create(parts.path):
                return self._create_with_faults(h, parts.path, query, body)
            status, payload = self._route(h, h.command, parts.path, query, body)
            self._send(h, status, payload)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        finally:
            with self._lock:
                self._in_flight -= 1

    def _create_with_faults(self, h, path, query, body) -> None:
        with self._lock:
            reply = self._script.popleft() if self._script else None
            fail_all = self._fail_all
        if fail_all is not None and reply is None:
            return self._send(h, fail_all, self._error_body(fail_all), {"Retry-After": "0"} if fail_all == 429 else {})
        if reply is None or reply.creates():
            status, payload = self._route(h, "POST", path, query, body)
        else:
            status, payload = 201, None
        if reply is None:
            return self._send(h, status, payload)
        if reply.delay and self._stopping.wait(reply.delay):
            return self._drop(h)
        if reply.drop:
            return self._drop(h)
        if reply.status is not None:
            status = reply.status
            if reply.body is None and not (200 <= status < 300):
                payload = self._error_body(status)
        return self._send(h, status, reply.body if reply.body is not None else payload, reply.headers)

    def _send(self, h, status: int, payload: Any, headers: dict | None = None) -> None:
        data = b"" if payload is None else payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if data:
            h.wfile.write(data)
        h.wfile.flush()

    def _drop(self, h) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _post(self, url: str, *, data: bytes | None = None, headers: dict | None = None, method: str = "POST") -> int | None:
        try:
            response = requests.request(method, url, data=data, headers=headers or {}, timeout=10)
        except requests.RequestException:
            status = None
        else:
            status = response.status_code
        with self._lock:
            self.callback_results.append((url, status))
        return status

    def _auto(self, fn, *args, statuses=None) -> None:
        statuses = tuple(statuses if statuses is not None else self.auto_callbacks)

        def run():
            for status in statuses:
                if self._stopping.wait(self.auto_callback_delay):
                    return
                fn(*args, status)
        threading.Thread(target=run, daemon=True).start()


def new_id() -> str:
    return uuid.uuid4().hex
