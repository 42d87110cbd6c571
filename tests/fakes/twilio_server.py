"""A local fake of Twilio's 2010-04-01 REST API for tests and benchmarks.

Speaks the real wire protocol (form-encoded POSTs, HTTP Basic ``sid:token``,
``.json`` resources, Twilio's legacy error JSON), so the real ``twilio`` SDK
can be pointed at it (see tests/fakes/twilio_server.py)::

    with FakeTwilio() as fake:
        fake.add_account("AC" + "1" * 32, "token", numbers=["+15005550006"])
        client = Client(sid, token, environment={"_": ""})
        client.api.base_url = fake.base_url
        client.messages.create(to="+15551234567", from_="+15005550006", body="hi")
        assert fake.count_creates(to="+15551234567") == 1

Routes (anything else answers 404 / 20404):

* ``GET  /2010-04-01/Accounts/{AC}.json``                       account fetch
* ``POST /2010-04-01/Accounts/{AC}/Messages.json``              create (201)
* ``GET  /2010-04-01/Accounts/{AC}/Messages.json``              list; ``To``, ``From``,
  ``DateSent``, ``DateSent<``, ``DateSent>``, ``PageSize``, ``Page``, ``PageToken``
* ``GET|POST|DELETE /2010-04-01/Accounts/{AC}/Messages/{SM}.json``  fetch / update / delete
* ``GET  /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json``  owned numbers; ``PhoneNumber``

Behaviour worth knowing:

* Credentials valid for account A used on account B's path answer 401/20003.
* Twilio magic numbers are honoured for every account (https://www.twilio.com/docs/iam/test-credentials): To
  +15005550001→21211, …0002→21612, …0003→21408, …0004→21610, …0009→21614;
  From +15005550001→21212, …0007→21606, …0008→21611. Recipients blocked with
  :meth:`FakeTwilio.block_recipient` answer 21610. With ``strict_from=True``
  an account rejects a From it does not own with 21606 (+15005550006 is
  always accepted).
* A created message is ``queued`` (``accepted`` with ``MessagingServiceSid``),
  ``date_sent`` null. ``DateSent`` filters use ``date_sent``, falling back to
  ``date_created`` for messages not yet "sent", so a reconciliation query
  right after an ambiguous create finds the message.
* Lists are newest first, like Twilio's.
* :meth:`FakeTwilio.script` queues :class:`Reply` objects consumed by the next
  message *creates* (after authentication), in order.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import email.utils
import http.client
import heapq
import itertools
import json
import queue
import re
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from sms.encoding import segment_info

__all__ = [
    "API_VERSION",
    "MAGIC_TO_ERRORS",
    "MAGIC_FROM_ERRORS",
    "CallbackResult",
    "FakeTwilio",
    "RecordedRequest",
    "Reply",
    "twilio_error",
]

API_VERSION = "2010-04-01"
MAGIC_FROM_OK = "+15005550006"

#: To number → (code, message template). ``{to}``/``{from_}`` are filled in.
MAGIC_TO_ERRORS: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (
        21612,
        "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from_} via SMS.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
#: From number → (code, message template).
MAGIC_FROM_ERRORS: dict[str, tuple[int, str]] = {
    "+15005550001": (
        21212,
        "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    ),
    "+15005550007": (
        21606,
        "The 'From' phone number provided ({from_}) is not a valid, message-capable Twilio phone number for this destination/account.",
    ),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages"),
}

_GENERIC_MESSAGES = {
    400: "Bad Request",
    401: "Authenticate",
    403: "Forbidden",
    404: "The requested resource was not found",
    405: "Method not allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_TO_SYNTAX = re.compile(r"^\+?[1-9]\d{4,14}$")
_ROUTES = [
    ("account", re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)\.json$")),
    ("messages", re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")),
    ("message", re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$")),
    ("numbers", re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers\.json$")),
]
_ERROR_STATUSES = {"failed", "undelivered"}
_DEFAULT_CALLBACK_ERRORS = {"failed": 30008, "undelivered": 30003}


def twilio_error(status: int, code: int | None = None, message: str | None = None) -> dict[str, Any]:
    """Twilio's legacy (2010 API) error body. ``code`` defaults to ``20000 + status``."""
    code = code if code is not None else 20000 + status
    return {
        "code": code,
        "message": message or _GENERIC_MESSAGES.get(status, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _rfc2822(dt: datetime | None) -> str | None:
    return email.utils.format_datetime(dt) if dt else None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _parse_filter_date(value: str) -> datetime | date | None:
    """Parse a ``DateSent`` filter: ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SSZ`` (the SDK's format)."""
    value = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"):
        try:
            parsed = datetime.strptime(value, fmt)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


class _CallbackClient:
    """The fake's HTTP client for status callbacks: one persistent ``http.client`` connection per thread and
    receiver (as a provider's callback fleet keeps connections open), keep-alive where the receiver allows it.

    Plain ``http.client`` rather than ``requests``: a callback is one small form POST, and ``requests`` cost the
    fake about 2 ms of CPU per callback on the benchmark's cores (issue #14, target 2), CPU the real Twilio
    never spends on ours. Retries as urllib3's ``Retry(connect=1, read=0)`` did: a connection that could not be
    opened, or a kept-alive one the receiver closed while idle (nothing was read), is tried once more on a new
    connection; a request the receiver may have read is never sent twice."""

    def __init__(self) -> None:
        self._local = threading.local()

    def post(self, url: str, params: Mapping[str, str], headers: Mapping[str, str],
             timeout: float) -> tuple[int, str]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported callback URL scheme: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = urlencode(params).encode()
        sent_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                        "Content-Length": str(len(body))}
        conns = self._local.__dict__.setdefault("conns", {})
        key = (scheme, parts.hostname, port, timeout)
        for attempt in (1, 2):
            conn = conns.get(key)
            reused = conn is not None and conn.sock is not None
            if conn is None:
                cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
                conn = conns[key] = cls(parts.hostname, port, timeout=timeout)
            try:
                if conn.sock is None:
                    conn.connect()
            except OSError:
                conn.close()
                if attempt == 2:
                    raise
                continue  # could not connect: nothing was sent
            try:
                conn.request("POST", target, body=body, headers=sent_headers)
                resp = conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if reused and attempt == 1:
                    continue  # a kept-alive connection the receiver had closed while idle
                raise
            except Exception:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            return resp.status, text
        raise AssertionError("unreachable")  # pragma: no cover


_callbacks = _CallbackClient()


@dataclass
class Reply:
    """A scripted answer for the next message create.

    * ``status=None`` (default) — process the request normally; ``delay``,
      ``headers`` and ``body`` still apply (``Reply(delay=3.0)`` creates the
      message, then answers late, so a client with a shorter timeout sees an
      ambiguous failure although Twilio "sent" it).
    * ``status=503`` — answer 503 with Twilio error JSON (``code`` defaults to
      ``20000 + status``; ``message`` optional) and do **not** create the message.
    * ``create`` — override whether the message is created/recorded; defaults
      to True for ``status`` None/2xx, False otherwise (``Reply(status=500,
      create=True)`` = created but the client sees a 500).
    * ``body`` — raw response body (str) or JSON (dict/list) replacing the normal one,
      e.g. ``Reply(status=200, body="garbage not json")``.
    * ``drop=True`` — close the connection without any response (nothing is
      created unless ``create=True``).
    """

    status: int | None = None
    body: str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    code: int | None = None
    message: str | None = None
    create: bool | None = None
    drop: bool = False

    def creates(self) -> bool:
        """Whether the message is created and recorded before answering."""
        if self.create is not None:
            return self.create
        if self.drop:
            return False
        return self.status is None or 200 <= self.status < 300


@dataclass
class RecordedRequest:
    """One request as the fake saw it. ``form`` holds the first value of each field."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, str]
    form_lists: dict[str, list[str]]
    auth: tuple[str, str] | None
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class CallbackResult:
    """Outcome of one status callback POST sent by :meth:`FakeTwilio.deliver_status_callbacks`."""

    status: str
    url: str
    params: dict[str, str]
    signature: str
    http_status: int | None
    response_body: str
    error: str | None = None
    seconds: float | None = None  # how long the POST waited for its answer


@dataclass
class _Account:
    sid: str
    token: str
    friendly_name: str
    numbers: list[dict[str, Any]]
    strict_from: bool
    created: datetime


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "FakeTwilio/1.0"
    sys_version = ""
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_GET
    do_DELETE = do_GET
    do_PUT = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: "FakeTwilio"


class FakeTwilio:
    """Threaded fake Twilio REST server on 127.0.0.1 (random free port by default).

    Public state (read under no lock is fine in tests once calls returned):
    ``requests`` (list of :class:`RecordedRequest`), ``messages`` (sid → Message
    JSON dict, in creation order), ``callback_results`` (auto callbacks).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record_requests: bool = True,
        auto_callbacks: Sequence[str] = (),
        auto_callback_delay: float = 0.05,
        concurrency_limit: int | None = None,
        callback_log: Any = None,
    ) -> None:
        self.host = host
        self.callback_log = callback_log  # a text file: "<unix time> <MessageSid> <status> <http> <seconds> <queued>" lines
        self.port = port
        self.record_requests = record_requests
        self.auto_callbacks = tuple(auto_callbacks)
        self.auto_callback_delay = auto_callback_delay
        self.concurrency_limit = concurrency_limit
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.callback_results: list[CallbackResult] = []
        self.max_concurrency = 0
        self._accounts: dict[str, _Account] = {}
        self._script: collections.deque[Reply] = collections.deque()
        self._callback_urls: dict[str, str] = {}
        self._seq: dict[str, int] = {}
        self._blocked: set[tuple[str | None, str]] = set()
        self._lock = threading.RLock()
        self._in_flight = 0
        self._counter = 0
        self._stopping = threading.Event()
        # automatic callbacks: (due, seq, sid) in a heap, sent by up to _AUTO_THREADS threads (_auto_loop)
        self._auto_heap: list[tuple[float, int, str]] = []
        self._auto_seq = itertools.count()
        self._auto_cv = threading.Condition(threading.Lock())
        self._auto_timer: threading.Thread | None = None  # hands due messages to the senders (_auto_timer_loop)
        self._auto_ready: queue.SimpleQueue = queue.SimpleQueue()  # (sid, due) for the senders
        self._auto_threads: list[threading.Thread] = []  # the senders
        # senders free for a message minus messages handed over and not taken (under _auto_cv): < 0 → start one
        self._auto_spare = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "FakeTwilio":
        """Bind and serve in a background thread. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.name = f"FakeTwilio:{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, interrupt scripted delays and close the socket."""
        self._stopping.set()
        with self._auto_cv:
            self._auto_cv.notify_all()
            threads, self._auto_threads = self._auto_threads, []
            if self._auto_timer is not None:
                threads.append(self._auto_timer)
                self._auto_timer = None
            self._auto_heap.clear()  # callbacks not yet due are dropped with the server, as before
            for _ in range(len(threads)):
                self._auto_ready.put(None)  # wakes a waiting sender: it stops
        deadline = time.monotonic() + 5
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeTwilio":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` — set it as ``client.api.base_url`` / ``TWILIO_API_BASE_URL``."""
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget requests, messages, scripts, blocks and callback results (accounts stay)."""
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self.callback_results.clear()
            self._script.clear()
            self._callback_urls.clear()
            self._seq.clear()
            self._blocked.clear()
            self.max_concurrency = 0

    # -- configuration ------------------------------------------------------------------------

    def add_account(
        self,
        sid: str,
        token: str,
        numbers: Iterable[str] = (),
        *,
        friendly_name: str | None = None,
        strict_from: bool = False,
    ) -> None:
        """Register credentials ``sid:token`` owning ``numbers`` (E.164 strings)."""
        created = _now()
        account = _Account(sid, token, friendly_name or f"Fake account {sid[-6:]}", [], strict_from, created)
        with self._lock:
            self._accounts[sid] = account
        for number in numbers:
            self.add_number(sid, number)

    def new_account(self, numbers: Iterable[str] = (MAGIC_FROM_OK,), **kwargs: Any) -> tuple[str, str]:
        """Register a random account; returns ``(sid, token)``."""
        sid, token = "AC" + uuid.uuid4().hex, uuid.uuid4().hex
        self.add_account(sid, token, numbers, **kwargs)
        return sid, token

    def add_number(self, account_sid: str, phone_number: str) -> dict[str, Any]:
        """Add an owned number (IncomingPhoneNumber JSON) to an account."""
        with self._lock:
            account = self._accounts[account_sid]
            record = _incoming_number_json(account, phone_number)
            account.numbers.append(record)
            return record

    def block_recipient(self, to: str, account_sid: str | None = None) -> None:
        """Make creates to ``to`` fail with 21610 (recipient replied STOP), for one or all accounts."""
        with self._lock:
            self._blocked.add((account_sid, to))

    def script(self, responses: Reply | Iterable[Reply]) -> None:
        """Queue scripted replies for the next message creates (FIFO)."""
        items = [responses] if isinstance(responses, Reply) else list(responses)
        with self._lock:
            self._script.extend(items)

    @property
    def pending_script(self) -> int:
        """Number of scripted replies not consumed yet."""
        with self._lock:
            return len(self._script)

    # -- inspection ---------------------------------------------------------------------------

    def count_creates(self, to: str | None = None) -> int:
        """How many messages were actually created (accepted and stored), optionally to ``to``."""
        with self._lock:
            return sum(1 for m in self.messages.values() if to is None or m["to"] == to)

    def create_attempts(self, to: str | None = None) -> int:
        """How many ``POST …/Messages.json`` requests arrived (including rejected ones)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.method == "POST"
                and r.path.endswith("/Messages.json")
                and (to is None or r.form.get("To") == to)
            )

    def requests_to(self, path_suffix: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path ends with ``path_suffix`` (and method, if given)."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix) and (method is None or r.method == method)]

    def set_message_status(self, sid: str, status: str, error_code: int | None = None) -> dict[str, Any]:
        """Move a stored message to ``status`` (sets date_sent on sent/delivered, error_code on failures)."""
        now = _now()
        with self._lock:
            msg = self.messages[sid]
            msg["status"] = status
            msg["date_updated"] = _rfc2822(now)
            if status in ("sending", "sent", "delivered", "undelivered", "read") and not msg["date_sent"]:
                msg["date_sent"] = _rfc2822(now)
            if error_code is not None:
                msg["error_code"] = error_code
            if status in ("sent", "delivered") and msg["price"] is None:
                msg["price"] = f"-{0.0079 * int(msg['num_segments'] or 1):.5f}"
            return dict(msg)

    # -- status callbacks ---------------------------------------------------------------------

    def deliver_status_callbacks(
        self,
        sid: str,
        statuses: Sequence[str] = ("sent", "delivered"),
        url: str | None = None,
        auth_token: str | None = None,
        *,
        error_code: int | None = None,
        extra: Mapping[str, str] | None = None,
        signature: str | None = None,
        timeout: float = 10.0,
        _due: float | None = None,
    ) -> list[CallbackResult]:
        """POST signed status callbacks for message ``sid``, one per status, in order.

        ``url`` defaults to the message's ``StatusCallback``; ``auth_token`` to its
        account's token. ``ErrorCode`` is added for failed/undelivered (default
        30008/30003, or ``error_code``). ``signature`` overrides the computed
        X-Twilio-Signature (for negative tests). Each status is also applied to the
        stored message. Returns one :class:`CallbackResult` per POST.
        """
        with self._lock:
            msg = dict(self.messages[sid])
            url = url or self._callback_urls.get(sid)
            account = self._accounts.get(msg["account_sid"])
        if not url:
            raise ValueError(f"message {sid} has no StatusCallback; pass url=")
        token = auth_token or (account.token if account else None)
        if token is None:
            raise ValueError("no auth token to sign with; pass auth_token=")
        results = []
        for status in statuses:
            params = {
                "ApiVersion": API_VERSION,
                "AccountSid": msg["account_sid"],
                "From": msg["from"] or "",
                "To": msg["to"],
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
            }
            if msg.get("messaging_service_sid"):
                params["MessagingServiceSid"] = msg["messaging_service_sid"]
            code = None
            if status in _ERROR_STATUSES:
                code = error_code if error_code is not None else _DEFAULT_CALLBACK_ERRORS[status]
                params["ErrorCode"] = str(code)
            if extra:
                params.update(extra)
            self.set_message_status(sid, status, code)
            results.append(self._post_callback(url, params, token, status, signature, timeout, _due))
            _due = None  # the next status goes out once this one is answered; its wait starts then
        return results

    def _post_callback(
        self, url: str, params: dict[str, str], token: str, status: str, signature: str | None, timeout: float,
        due: float | None = None,
    ) -> CallbackResult:
        """POST one signed callback. Its wait (``seconds``, and the --callback-log line) runs from ``due`` when
        given — the moment an automatic callback was due — so time spent queued inside the fake counts too."""
        sig = signature if signature is not None else RequestValidator(token).compute_signature(url, params)
        headers = {
            "X-Twilio-Signature": sig,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        posted = time.monotonic()
        started = posted if due is None else due
        try:
            status_code, text = _callbacks.post(url, params, headers, timeout)
            result = CallbackResult(status, url, params, sig, status_code, text, seconds=time.monotonic() - started)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            result = CallbackResult(status, url, params, sig, None, "", error=repr(exc),
                                    seconds=time.monotonic() - started)
        queued = posted - started  # how long it waited inside the fake for a free sender
        if self.callback_log is not None:  # --callback-log: one line per callback, written as it completes
            with self._lock:
                self.callback_log.write(f"{time.time():.3f} {params.get('MessageSid', '')} {status} "
                                        f"{result.http_status or 0} {result.seconds:.4f} {queued:.4f}\n")
                self.callback_log.flush()
        return result

    # Automatic callbacks in flight at once, each waiting for its receiver's answer: as many as a provider's callback
    # fleet would have open (Twilio's is effectively unbounded), so a slow receiver queues them in its own accept
    # backlog — where the wait is the receiver's — not inside the fake.
    _AUTO_THREADS = 128

    def _auto_schedule(self, sid: str) -> None:
        """Queue the automatic callbacks of ``sid``, due ``auto_callback_delay`` from now."""
        with self._auto_cv:
            heapq.heappush(self._auto_heap, (time.monotonic() + self.auto_callback_delay, next(self._auto_seq), sid))
            if self._auto_timer is None:
                self._auto_timer = threading.Thread(target=self._auto_timer_loop, name="FakeTwilio-callback-timer",
                                                    daemon=True)
                self._auto_timer.start()
            self._auto_cv.notify()  # the timer is the only thread waiting on it

    def _auto_timer_loop(self) -> None:
        """Hands each message to the senders when its callbacks are due. One thread waits for the next due time, and
        each due message wakes one idle sender: when every sender waited for that time itself, all of them woke
        whenever it came (a thundering herd of ~128 threads per message, CPU the fake took from the benchmarked
        service on the same cores: issue #14)."""
        while True:
            with self._auto_cv:
                while True:
                    if self._stopping.is_set():
                        return
                    wait = self._auto_heap[0][0] - time.monotonic() if self._auto_heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._auto_cv.wait(wait)
                now = time.monotonic()
                while self._auto_heap and self._auto_heap[0][0] <= now:
                    due, _, sid = heapq.heappop(self._auto_heap)
                    self._auto_ready.put((sid, due))
                    self._auto_spare -= 1
                    if self._auto_spare < 0 and len(self._auto_threads) < self._AUTO_THREADS:
                        thread = threading.Thread(target=self._auto_send_loop, daemon=True,
                                                  name=f"FakeTwilio-callbacks-{len(self._auto_threads)}")
                        self._auto_threads.append(thread)
                        self._auto_spare += 1  # free from its start: it takes the next message
                        thread.start()

    def _auto_send_loop(self) -> None:
        """One of the fake's callback senders: takes the next due message, POSTs its statuses in order."""
        while True:
            item = self._auto_ready.get()
            if item is None or self._stopping.is_set():
                return
            self._auto_deliver(*item)
            with self._auto_cv:
                self._auto_spare += 1

    def _auto_deliver(self, sid: str, due: float) -> None:
        try:
            results = self.deliver_status_callbacks(sid, self.auto_callbacks, _due=due)
        except Exception as exc:  # pragma: no cover - best effort in benchmarks
            results = [CallbackResult("", "", {}, "", None, "", error=repr(exc))]
        with self._lock:
            self.callback_results.extend(results)

    # -- request handling ---------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        with self._lock:
            self._in_flight += 1
            in_flight = self._in_flight
            self.max_concurrency = max(self.max_concurrency, in_flight)
        try:
            self._dispatch(h, in_flight)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            h.close_connection = True
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang the client
            h.close_connection = True
            try:
                self._send(h, 500, twilio_error(500, 20500, f"FakeTwilio error: {exc!r}"), {})
            except OSError:
                pass
        finally:
            with self._lock:
                self._in_flight -= 1

    def _dispatch(self, h: _Handler, in_flight: int) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        form_lists = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True) if raw else {}
        query = parse_qs(parts.query, keep_blank_values=True)
        auth = _parse_basic_auth(h.headers.get("Authorization"))
        if self.record_requests:
            rec = RecordedRequest(
                method=h.command,
                path=parts.path,
                query=query,
                form={k: v[0] for k, v in form_lists.items()},
                form_lists=form_lists,
                auth=auth,
                headers=dict(h.headers.items()),
                body=raw,
                at=time.time(),
            )
            with self._lock:
                self.requests.append(rec)
        extra = {"Twilio-Concurrent-Requests": str(in_flight)}

        route, match = _route(parts.path)
        if route is None or match is None:
            return self._send(h, 404, twilio_error(404, 20404, f"The requested resource {parts.path} was not found"), extra)
        with self._lock:
            account = self._accounts.get(auth[0]) if auth else None
        if auth is None or account is None or account.token != auth[1] or match["account"] != account.sid:
            extra["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return self._send(h, 401, twilio_error(401, 20003, "Authenticate"), extra)
        if self.concurrency_limit is not None and in_flight > self.concurrency_limit:
            return self._send(h, 429, twilio_error(429, 20429, "Too Many Requests"), extra)

        method = h.command
        if route == "account" and method == "GET":
            return self._send(h, 200, _account_json(account), extra)
        if route == "numbers" and method == "GET":
            return self._list_numbers(h, account, parts.path, query, extra)
        if route == "messages" and method == "POST":
            return self._create(h, account, {k: v[0] for k, v in form_lists.items()}, form_lists, extra)
        if route == "messages" and method == "GET":
            return self._list_messages(h, account, parts.path, query, extra)
        if route == "message":
            return self._message_instance(h, account, match["sid"], method, form_lists, parts.path, extra)
        return self._send(h, 405, twilio_error(405, 20004, "Method not allowed"), extra)

    # messages --------------------------------------------------------------------------------

    def _create(
        self,
        h: _Handler,
        account: _Account,
        form: dict[str, str],
        form_lists: dict[str, list[str]],
        extra: dict[str, str],
    ) -> None:
        with self._lock:
            reply = self._script.popleft() if self._script else None
        status, payload = 201, None
        if reply is None or reply.creates():
            status, payload = self._create_message(account, form, form_lists)
        if reply is None:
            return self._send(h, status, payload, extra)
        if reply.delay and self._stopping.wait(reply.delay):
            return self._drop(h)
        if reply.drop:
            return self._drop(h)
        headers = {**extra, **reply.headers}
        if reply.status is not None:
            status = reply.status
            if reply.body is None:
                if 200 <= status < 300 and payload is not None and "sid" in payload:
                    pass  # created message JSON under the scripted 2xx status
                else:
                    payload = twilio_error(status, reply.code, reply.message)
        body = reply.body if reply.body is not None else payload
        return self._send(h, status, body, headers)

    def _create_message(
        self, account: _Account, form: dict[str, str], form_lists: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        """Validate like Twilio and store the message; returns (HTTP status, JSON)."""
        to = form.get("To", "").strip()
        from_ = form.get("From", "").strip()
        service = form.get("MessagingServiceSid", "").strip()
        body = form.get("Body", "")
        media = form_lists.get("MediaUrl", [])
        if not to:
            return 400, twilio_error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not service:
            return 400, twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body and not media and not form.get("ContentSid"):
            return 400, twilio_error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return 400, twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to in MAGIC_TO_ERRORS:
            code, text = MAGIC_TO_ERRORS[to]
            return 400, twilio_error(400, code, text.format(to=to, from_=from_))
        if not _TO_SYNTAX.match(to):
            return 400, twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if from_ in MAGIC_FROM_ERRORS:
            code, text = MAGIC_FROM_ERRORS[from_]
            return 400, twilio_error(400, code, text.format(to=to, from_=from_))
        owned = {n["phone_number"] for n in account.numbers}
        if from_ and account.strict_from and from_ != MAGIC_FROM_OK and from_ not in owned:
            code, text = MAGIC_FROM_ERRORS["+15005550007"]
            return 400, twilio_error(400, code, text.format(to=to, from_=from_))
        with self._lock:
            if (None, to) in self._blocked or (account.sid, to) in self._blocked:
                return 400, twilio_error(400, 21610, MAGIC_TO_ERRORS["+15005550004"][1])

        sid = "SM" + uuid.uuid4().hex
        now = _rfc2822(_now())
        uri = f"/{API_VERSION}/Accounts/{account.sid}/Messages/{sid}.json"
        msg: dict[str, Any] = {
            "account_sid": account.sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service or None,
            "num_media": str(len(media)),
            "num_segments": "0" if service else str(segment_info(body).segments if body else 1),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{account.sid}/Messages/{sid}/Media.json",
                "feedback": f"/{API_VERSION}/Accounts/{account.sid}/Messages/{sid}/Feedback.json",
            },
            "to": to,
            "uri": uri,
        }
        callback = form.get("StatusCallback")
        with self._lock:
            self._counter += 1
            self._seq[sid] = self._counter
            self.messages[sid] = msg
            if callback:
                self._callback_urls[sid] = callback
            snapshot = dict(msg)
        if callback and self.auto_callbacks:
            self._auto_schedule(sid)
        return 201, snapshot

    def _list_messages(
        self, h: _Handler, account: _Account, path: str, query: dict[str, list[str]], extra: dict[str, str]
    ) -> None:
        q = {k: v[0] for k, v in query.items()}
        with self._lock:
            items = [dict(m) for m in self.messages.values() if m["account_sid"] == account.sid]
            items.sort(key=lambda m: self._seq.get(m["sid"], 0), reverse=True)
        if "To" in q:
            items = [m for m in items if m["to"] == q["To"]]
        if "From" in q:
            items = [m for m in items if m["from"] == q["From"]]
        for key, op in (("DateSent", "eq"), ("DateSent>", "ge"), ("DateSent<", "le")):
            if key in q:
                bound = _parse_filter_date(q[key])
                if bound is None:
                    return self._send(h, 400, twilio_error(400, 20001, f"Invalid {key} value {q[key]!r}"), extra)
                items = [m for m in items if _date_matches(m, bound, op)]
        filters = {k: q[k] for k in ("To", "From", "DateSent", "DateSent>", "DateSent<") if k in q}
        return self._send(h, 200, _page(path, "messages", items, filters, q), extra)

    def _message_instance(
        self,
        h: _Handler,
        account: _Account,
        sid: str,
        method: str,
        form_lists: dict[str, list[str]],
        path: str,
        extra: dict[str, str],
    ) -> None:
        status, payload = self._message_op(account, sid, method, form_lists, path)
        return self._send(h, status, payload, extra)

    def _message_op(
        self, account: _Account, sid: str, method: str, form_lists: dict[str, list[str]], path: str
    ) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            msg = self.messages.get(sid)
            if msg is None or msg["account_sid"] != account.sid:
                return 404, twilio_error(404, 20404, f"The requested resource {path} was not found")
            if method == "GET":
                return 200, dict(msg)
            if method == "DELETE":
                del self.messages[sid]
                return 204, None
            if method == "POST":
                form = {k: v[0] for k, v in form_lists.items()}
                if "Body" in form:
                    msg["body"] = form["Body"]
                if form.get("Status") == "canceled":
                    msg["status"] = "canceled"
                msg["date_updated"] = _rfc2822(_now())
                return 200, dict(msg)
        return 405, twilio_error(405, 20004, "Method not allowed")

    def _list_numbers(
        self, h: _Handler, account: _Account, path: str, query: dict[str, list[str]], extra: dict[str, str]
    ) -> None:
        q = {k: v[0] for k, v in query.items()}
        with self._lock:
            items = [dict(n) for n in account.numbers]
        if "PhoneNumber" in q:
            needle = re.sub(r"[^\d]", "", q["PhoneNumber"])
            items = [n for n in items if needle in n["phone_number"]]
        filters = {k: q[k] for k in ("PhoneNumber", "FriendlyName") if k in q}
        return self._send(h, 200, _page(path, "incoming_phone_numbers", items, filters, q), extra)

    # http -------------------------------------------------------------------------------------

    def _send(self, h: _Handler, status: int, payload: Any, headers: Mapping[str, str]) -> None:
        if payload is None:
            data = b""
        elif isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode("utf-8")
        else:
            data = json.dumps(payload).encode("utf-8")
        h.send_response(status)
        lower = {k.lower() for k in headers}
        if "content-type" not in lower and status != 204:
            h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Twilio-Request-Id", "RQ" + uuid.uuid4().hex)
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if data and h.command != "HEAD":
            h.wfile.write(data)
        h.wfile.flush()

    def _drop(self, h: _Handler) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# -- JSON shapes ------------------------------------------------------------------------------


def _account_json(account: _Account) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{account.sid}"
    created = _rfc2822(account.created)
    return {
        "auth_token": account.token,
        "date_created": created,
        "date_updated": created,
        "friendly_name": account.friendly_name,
        "owner_account_sid": account.sid,
        "sid": account.sid,
        "status": "active",
        "subresource_uris": {
            "messages": f"{base}/Messages.json",
            "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json",
            "calls": f"{base}/Calls.json",
        },
        "type": "Full",
        "uri": f"{base}.json",
    }


def _friendly(number: str) -> str:
    digits = number.lstrip("+")
    if number.startswith("+1") and len(digits) == 11:
        return f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    return number


def _incoming_number_json(account: _Account, number: str) -> dict[str, Any]:
    sid = "PN" + uuid.uuid4().hex
    now = _rfc2822(_now())
    return {
        "account_sid": account.sid,
        "address_sid": None,
        "address_requirements": "none",
        "api_version": API_VERSION,
        "beta": False,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": now,
        "date_updated": now,
        "friendly_name": _friendly(number),
        "identity_sid": None,
        "phone_number": number,
        "origin": "twilio",
        "sid": sid,
        "sms_application_sid": "",
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": "POST",
        "sms_url": "",
        "status_callback": "",
        "status_callback_method": "POST",
        "trunk_sid": None,
        "uri": f"/{API_VERSION}/Accounts/{account.sid}/IncomingPhoneNumbers/{sid}.json",
        "voice_receive_mode": "voice",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": "POST",
        "voice_url": None,
        "emergency_status": "Inactive",
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "bundle_sid": None,
        "status": "in-use",
        "type": "local",
    }


def _page(path: str, key: str, items: list[dict[str, Any]], filters: dict[str, str], q: dict[str, str]) -> dict[str, Any]:
    """Slice ``items`` into a Twilio 2010-style page (``Page``/``PageSize``/``PageToken``)."""
    try:
        size = max(1, min(1000, int(q.get("PageSize", 50))))
        page = max(0, int(q.get("Page", 0)))
    except ValueError:
        size, page = 50, 0
    start = page * size
    chunk = items[start : start + size]

    def uri(p: int, token: bool) -> str:
        params = {**filters, "PageSize": str(size), "Page": str(p)}
        if token:
            params["PageToken"] = f"PA{p * size}"
        return f"{path}?{urlencode(params)}"

    has_next = start + size < len(items)
    return {
        key: chunk,
        "end": start + len(chunk) - 1 if chunk else start,
        "first_page_uri": uri(0, False),
        "next_page_uri": uri(page + 1, True) if has_next else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1, True) if page > 0 else None,
        "start": start,
        "uri": uri(page, page > 0),
    }


def _date_matches(msg: dict[str, Any], bound: datetime | date, op: str) -> bool:
    raw = msg.get("date_sent") or msg.get("date_created")
    if not raw:
        return False
    when = email.utils.parsedate_to_datetime(raw)
    left: datetime | date = when
    right: datetime | date = bound
    if not isinstance(bound, datetime):
        left = when.date()
    if op == "eq":
        return left == right
    if op == "ge":
        return left >= right  # type: ignore[operator]
    return left <= right  # type: ignore[operator]


def _route(path: str) -> tuple[str | None, dict[str, str] | None]:
    for name, pattern in _ROUTES:
        m = pattern.match(path)
        if m:
            return name, m.groupdict()
    return None, None


def _parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


# -- standalone -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.fakes.twilio_server --port 8765 --account AC…:token [--number +1…]``."""
    parser = argparse.ArgumentParser(description="Fake Twilio REST API (2010-04-01) for local runs and benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--account", action="append", default=[], metavar="SID:TOKEN", help="repeatable")
    parser.add_argument("--number", action="append", default=[], metavar="E164", help="owned by every account")
    parser.add_argument("--auto-callbacks", default="", metavar="sent,delivered", help="statuses to POST after create")
    parser.add_argument("--callback-delay", type=float, default=0.05)
    parser.add_argument("--concurrency-limit", type=int, default=None, help="answer 429/20429 above this")
    parser.add_argument("--no-record", action="store_true", help="don't keep a request log (long benchmarks)")
    parser.add_argument("--callback-log", default=None, metavar="PATH",
                        help="append one line per status callback: time, MessageSid, status, HTTP status, seconds")
    args = parser.parse_args(argv)

    fake = FakeTwilio(
        args.host,
        args.port,
        record_requests=not args.no_record,
        auto_callbacks=[s for s in args.auto_callbacks.split(",") if s],
        auto_callback_delay=args.callback_delay,
        concurrency_limit=args.concurrency_limit,
        callback_log=open(args.callback_log, "a") if args.callback_log else None,  # noqa: SIM115 — process lifetime
    )
    for spec in args.account:
        sid, sep, token = spec.partition(":")
        if not sep:
            parser.error(f"--account must be SID:TOKEN, got {spec!r}")
        fake.add_account(sid, token, args.number or [MAGIC_FROM_OK])
    fake.start()
    print(f"FakeTwilio listening on {fake.base_url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        print(f"FakeTwilio stopped; {fake.count_creates()} messages created", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
