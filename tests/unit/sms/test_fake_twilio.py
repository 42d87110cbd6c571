"""tests.fakes.twilio_server, exercised through the real twilio SDK (see tests/fakes/twilio_server.py),
and tests.helpers.twilio_signing against worked examples cross-checked with `openssl dgst -sha1 -hmac`."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.twilio_server import FakeTwilio, Reply
from tests.helpers.twilio_signing import sign_twilio_request

SID = "AC" + "1" * 32
TOKEN = "fake_auth_token_1"
FROM = "+15005550006"
OWNED = "+14155550100"
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fake():
    with FakeTwilio() as server:
        server.add_account(SID, TOKEN, numbers=[FROM, OWNED], friendly_name="Acme Test")
        yield server


def make_client(fake: FakeTwilio, sid: str = SID, token: str = TOKEN, **http_kwargs) -> Client:
    http_client = TwilioHttpClient(**http_kwargs) if http_kwargs else None
    client = Client(sid, token, environment={"_": ""}, http_client=http_client)
    client.api.base_url = fake.base_url
    return client


@pytest.fixture
def client(fake):
    return make_client(fake)


class _Receiver:
    """A tiny webhook receiver that records form POSTs (for status callbacks)."""

    def __init__(self, status: int = 204, delay: float = 0.0) -> None:
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                time.sleep(delay)
                receiver.posts.append(
                    {
                        "path": self.path,
                        "form": {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()},
                        "signature": self.headers.get("X-Twilio-Signature"),
                    }
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/webhooks/twilio/org-1/status"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = _Receiver()
    yield r
    r.close()


# --- messages: create ------------------------------------------------------------------------


def test_create_message_returns_twilio_shaped_json(fake, client):
    msg = client.messages.create(
        to="+15551234567", from_=FROM, body="Hello €", status_callback="https://cb.example.com/status"
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", msg.sid)
    assert msg.status == "queued"
    assert msg.num_segments == "1"
    assert msg.to == "+15551234567"
    assert msg.from_ == FROM
    assert msg.body == "Hello €"
    assert msg.account_sid == SID
    assert msg.direction == "outbound-api"
    assert msg.api_version == "2010-04-01"
    assert msg.error_code is None
    assert msg.date_sent is None
    assert msg.uri == f"/2010-04-01/Accounts/{SID}/Messages/{msg.sid}.json"
    assert abs(msg.date_created - datetime.now(timezone.utc)) < timedelta(minutes=1)  # RFC 2822 parsed

    assert fake.count_creates() == 1
    assert fake.count_creates(to="+15551234567") == 1
    assert fake.count_creates(to="+15550000000") == 0
    stored = fake.messages[msg.sid]
    assert stored["num_segments"] == "1"

    (req,) = fake.requests
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.auth == (SID, TOKEN)
    assert req.form == {
        "To": "+15551234567",
        "From": FROM,
        "Body": "Hello €",
        "StatusCallback": "https://cb.example.com/status",
    }
    assert req.headers["Content-Type"].startswith("application/x-www-form-urlencoded")


def test_num_segments_follows_encoding(client):
    assert client.messages.create(to="+15551234567", from_=FROM, body="a" * 161).num_segments == "2"
    assert client.messages.create(to="+15551234567", from_=FROM, body="ж" * 71).num_segments == "2"


def test_media_and_messaging_service(fake, client):
    msg = client.messages.create(
        to="+15551234567",
        messaging_service_sid="MG" + "2" * 32,
        body="pic",
        media_url=["https://e.x/a.png", "https://e.x/b.png"],
    )
    assert msg.status == "accepted"
    assert msg.num_media == "2"
    assert msg.messaging_service_sid == "MG" + "2" * 32
    assert fake.requests[-1].form_lists["MediaUrl"] == ["https://e.x/a.png", "https://e.x/b.png"]


def test_wrong_token_is_401_20003(fake):
    bad = make_client(fake, token="wrong")
    with pytest.raises(TwilioRestException) as exc:
        bad.messages.create(to="+15551234567", from_=FROM, body="x")
    assert (exc.value.status, exc.value.code) == (401, 20003)
    assert fake.count_creates() == 0
    assert fake.create_attempts() == 1


def test_unknown_account_and_foreign_account_path_are_401(fake):
    with pytest.raises(TwilioRestException) as exc:
        make_client(fake, sid="AC" + "9" * 32).messages.create(to="+15551234567", from_=FROM, body="x")
    assert exc.value.code == 20003
    other_sid, other_token = fake.new_account()
    raw = requests.get(f"{fake.base_url}/2010-04-01/Accounts/{SID}.json", auth=(other_sid, other_token), timeout=5)
    assert raw.status_code == 401
    assert raw.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_magic_to_numbers(fake, client, to, code):
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to=to, from_=FROM, body="x")
    assert (exc.value.status, exc.value.code) == (400, code)
    assert fake.count_creates() == 0


@pytest.mark.parametrize(("from_", "code"), [("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611)])
def test_magic_from_numbers(client, from_, code):
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to="+15551234567", from_=from_, body="x")
    assert exc.value.code == code


def test_validation_errors(fake, client):
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to="+15551234567", from_=FROM, body="a" * 1601)
    assert exc.value.code == 21617
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to="not-a-number", from_=FROM, body="x")
    assert exc.value.code == 21211


def test_strict_from_and_blocked_recipient(fake):
    sid, token = fake.new_account(numbers=[OWNED], strict_from=True)
    c = make_client(fake, sid, token)
    with pytest.raises(TwilioRestException) as exc:
        c.messages.create(to="+15551234567", from_="+14155550111", body="x")
    assert exc.value.code == 21606
    assert c.messages.create(to="+15551234567", from_=OWNED, body="x").status == "queued"
    fake.block_recipient("+15551234567", account_sid=sid)
    with pytest.raises(TwilioRestException) as exc:
        c.messages.create(to="+15551234567", from_=OWNED, body="x")
    assert exc.value.code == 21610


# --- scripted replies -----------------------------------------------------------------------


def test_scripted_503_then_success(fake, client):
    fake.script([Reply(status=503)])
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to="+15551234567", from_=FROM, body="x")
    assert (exc.value.status, exc.value.code) == (503, 20503)
    assert fake.count_creates() == 0
    assert fake.pending_script == 0
    assert client.messages.create(to="+15551234567", from_=FROM, body="x").status == "queued"
    assert fake.count_creates() == 1
    assert fake.create_attempts(to="+15551234567") == 2


def test_scripted_429_with_retry_after(fake, client):
    fake.script(Reply(status=429, headers={"Retry-After": "1"}))
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to="+15551234567", from_=FROM, body="x")
    assert (exc.value.status, exc.value.code) == (429, 20429)
    assert client.http_client._test_only_last_response.headers["Retry-After"] == "1"


def test_scripted_delay_times_out_client_but_message_is_created(fake):
    slow = make_client(fake, timeout=0.3)
    fake.script(Reply(delay=1.5))
    with pytest.raises(requests.exceptions.Timeout):
        slow.messages.create(to="+15551234567", from_=FROM, body="slow")
    assert fake.count_creates(to="+15551234567") == 1
    # reconciliation query (https://www.twilio.com/docs/api/errors): the ambiguous send is visible
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    found = make_client(fake).messages.list(to="+15551234567", date_sent_after=since)
    assert [m.body for m in found] == ["slow"]


def test_scripted_garbage_body(fake, client):
    fake.script(Reply(body="garbage not json", status=200))
    with pytest.raises(ValueError):  # json.JSONDecodeError from the SDK
        client.messages.create(to="+15551234567", from_=FROM, body="x")
    assert fake.count_creates() == 1  # 2xx: Twilio took it


def test_scripted_500_after_create_and_dropped_connection(fake, client):
    fake.script([Reply(status=500, create=True), Reply(drop=True)])
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to="+15551234567", from_=FROM, body="x")
    assert exc.value.status == 500
    with pytest.raises(requests.exceptions.ConnectionError):
        client.messages.create(to="+15551234567", from_=FROM, body="x")
    assert fake.count_creates() == 1
    assert fake.create_attempts() == 2


def test_scripted_custom_error_code(client, fake):
    fake.script(Reply(status=400, code=21610, message="Attempt to send to unsubscribed recipient"))
    with pytest.raises(TwilioRestException) as exc:
        client.messages.create(to="+15551234567", from_=FROM, body="x")
    assert exc.value.code == 21610


# --- reads ----------------------------------------------------------------------------------


def test_list_messages_by_to_with_pagination(fake, client):
    for i in range(5):
        client.messages.create(to="+15550000001", from_=FROM, body=f"n{i}")
    client.messages.create(to="+15550000002", from_=FROM, body="other")
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    found = client.messages.list(to="+15550000001", date_sent_after=since, page_size=2)
    assert [m.body for m in found] == ["n4", "n3", "n2", "n1", "n0"]  # newest first, all pages
    pages = fake.requests_to("/Messages.json", method="GET")
    assert len(pages) == 3
    assert pages[0].query["DateSent>"] == [since.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert pages[1].query["Page"] == ["1"]
    assert client.messages.list(to="+15550000001", date_sent_after=datetime.now(timezone.utc) + timedelta(hours=1)) == []


def test_raw_list_payload_has_pagination_keys(fake, client):
    client.messages.create(to="+15550000001", from_=FROM, body="x")
    data = requests.get(
        f"{fake.base_url}/2010-04-01/Accounts/{SID}/Messages.json",
        params={"To": "+15550000001", "PageSize": "1"},
        auth=(SID, TOKEN),
        timeout=5,
    ).json()
    assert set(data) >= {"messages", "page", "page_size", "next_page_uri", "first_page_uri", "previous_page_uri", "start", "end", "uri"}
    assert (data["page"], data["page_size"], data["next_page_uri"]) == (0, 1, None)


def test_fetch_message_and_404(fake, client):
    sid = client.messages.create(to="+15551234567", from_=FROM, body="x").sid
    assert client.messages(sid).fetch().body == "x"
    fake.set_message_status(sid, "delivered")
    fetched = client.messages(sid).fetch()
    assert fetched.status == "delivered"
    assert fetched.date_sent is not None
    with pytest.raises(TwilioRestException) as exc:
        client.messages("SM" + "0" * 32).fetch()
    assert (exc.value.status, exc.value.code) == (404, 20404)


def test_fetch_account(client):
    account = client.api.v2010.accounts(SID).fetch()
    assert account.sid == SID
    assert account.friendly_name == "Acme Test"
    assert account.status == "active"


def test_list_incoming_numbers(fake, client):
    numbers = client.incoming_phone_numbers.list()
    assert [n.phone_number for n in numbers] == [FROM, OWNED]
    assert numbers[0].capabilities["sms"] is True
    assert re.fullmatch(r"PN[0-9a-f]{32}", numbers[0].sid)
    assert [n.phone_number for n in client.incoming_phone_numbers.list(phone_number=OWNED)] == [OWNED]
    raw = requests.get(f"{fake.base_url}/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json", auth=(SID, TOKEN), timeout=5)
    assert "incoming_phone_numbers" in raw.json()


def test_unknown_route_is_404(fake):
    r = requests.get(f"{fake.base_url}/2010-04-01/Accounts/{SID}/Calls.json", auth=(SID, TOKEN), timeout=5)
    assert r.status_code == 404
    assert r.json()["code"] == 20404


def test_reset_keeps_accounts(fake, client):
    client.messages.create(to="+15551234567", from_=FROM, body="x")
    fake.script(Reply(status=503))
    fake.reset()
    assert (fake.count_creates(), fake.pending_script, fake.requests) == (0, 0, [])
    assert client.messages.create(to="+15551234567", from_=FROM, body="x").status == "queued"


# --- status callbacks -----------------------------------------------------------------------


def test_deliver_status_callbacks_are_signed(fake, client, receiver):
    msg = client.messages.create(to="+15551234567", from_=FROM, body="x", status_callback=receiver.url)
    results = fake.deliver_status_callbacks(msg.sid, statuses=["sent", "delivered"])
    assert [r.http_status for r in results] == [204, 204]
    assert [p["form"]["MessageStatus"] for p in receiver.posts] == ["sent", "delivered"]
    validator = RequestValidator(TOKEN)
    for post in receiver.posts:
        form = post["form"]
        assert validator.validate(receiver.url, form, post["signature"])
        assert form["MessageSid"] == form["SmsSid"] == msg.sid
        assert form["SmsStatus"] == form["MessageStatus"]
        assert (form["AccountSid"], form["From"], form["To"], form["ApiVersion"]) == (SID, FROM, "+15551234567", "2010-04-01")
        assert "ErrorCode" not in form
    assert fake.messages[msg.sid]["status"] == "delivered"


def test_failed_callback_carries_error_code_and_explicit_url_token(fake, client, receiver):
    msg = client.messages.create(to="+15551234567", from_=FROM, body="x")
    fake.deliver_status_callbacks(msg.sid, ["undelivered"], url=receiver.url, auth_token="other", error_code=21610)
    (post,) = receiver.posts
    assert post["form"]["ErrorCode"] == "21610"
    assert RequestValidator("other").validate(receiver.url, post["form"], post["signature"])
    assert fake.messages[msg.sid]["error_code"] == 21610
    fake.deliver_status_callbacks(msg.sid, ["failed"], url=receiver.url)
    assert receiver.posts[-1]["form"]["ErrorCode"] == "30008"


def test_auto_callbacks(receiver):
    with FakeTwilio(auto_callbacks=("sent", "delivered"), auto_callback_delay=0.0) as fake:
        fake.add_account(SID, TOKEN, [FROM])
        make_client(fake).messages.create(to="+15551234567", from_=FROM, body="x", status_callback=receiver.url)
        deadline = time.time() + 5
        while len(receiver.posts) < 2 and time.time() < deadline:
            time.sleep(0.02)
    assert [p["form"]["MessageStatus"] for p in receiver.posts] == ["sent", "delivered"]


def test_auto_callbacks_of_many_messages_each_arrive_once_in_order_with_idle_senders_left_asleep(receiver):
    """One timer thread waits for the next due time and wakes one sender per due message: idle senders do not wake
    for messages they do not take. (When every sender waited for the next due time itself, each due message woke
    all that were waiting: CPU the fake took from the benchmarked service on the same cores, issue #14.)"""
    with FakeTwilio(auto_callbacks=("sent", "delivered"), auto_callback_delay=0.05) as fake:
        fake.add_account(SID, TOKEN, [FROM])
        client = make_client(fake)
        started = time.monotonic()
        for i in range(150):  # a steady 150 messages/s, as the lifecycle benchmark: several due at any time
            client.messages.create(to="+15551234567", from_=FROM, body=f"x{i}", status_callback=receiver.url)
            time.sleep(max(0.0, started + (i + 1) / 150 - time.monotonic()))
        _wait_for(lambda: len(receiver.posts) >= 300)
        threads = [*fake._auto_threads, fake._auto_timer]
        switches = sum(_voluntary_switches(t.native_id) for t in threads)
    by_sid: dict = {}
    for post in receiver.posts:
        by_sid.setdefault(post["form"]["MessageSid"], []).append(post["form"]["MessageStatus"])
    assert len(by_sid) == 150 and all(statuses == ["sent", "delivered"] for statuses in by_sid.values())
    assert len(threads) <= FakeTwilio._AUTO_THREADS + 1
    # Per message: the timer's wake-up, one sender's, and that sender's waits on its two POSTs (~11 measured). The
    # herd woke every waiting sender for each due message: ~230 per message measured.
    assert switches < 150 * 40, (switches, len(threads))


def _wait_for(condition, seconds: float = 15) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.02)


def _voluntary_switches(native_id: int) -> int:
    """How many times a thread of this process gave up the CPU to wait (Linux /proc): one per wake-up."""
    with open(f"/proc/self/task/{native_id}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))


def _one_shot_keepalive_server(answers: int):
    """A raw HTTP/1.1 server on 127.0.0.1: on each connection it reads ONE request, answers 204 with keep-alive
    promised, then closes the connection (an idle close, as a receiver's keep-alive timeout does)."""
    sock = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve():
        for _ in range(answers):
            conn, _ = sock.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                while len(body) < length:
                    body += conn.recv(65536)
                seen.append(body)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                time.sleep(0.05)  # closed while the client holds it idle

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, seen, thread


def test_callbacks_reopen_a_kept_alive_connection_the_receiver_closed_and_never_post_twice(fake, client):
    sock, seen, thread = _one_shot_keepalive_server(answers=2)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/cb"
    msg = client.messages.create(to="+15551234567", from_=FROM, body="x")
    first = fake.deliver_status_callbacks(msg.sid, ["sent"], url=url)
    time.sleep(0.2)  # the receiver has closed the idle connection by now
    second = fake.deliver_status_callbacks(msg.sid, ["delivered"], url=url)
    thread.join(5)
    sock.close()
    assert [r.http_status for r in first + second] == [204, 204]
    assert [parse_qs(b.decode())["MessageStatus"] for b in seen] == [["sent"], ["delivered"]]  # each exactly once


def test_a_callback_to_a_closed_port_is_an_error_result_not_an_exception(fake, client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    msg = client.messages.create(to="+15551234567", from_=FROM, body="x")
    (result,) = fake.deliver_status_callbacks(msg.sid, ["sent"], url=f"http://127.0.0.1:{port}/cb", timeout=2)
    assert result.http_status is None and "Connection" in result.error


# --- signing helper: worked examples (cross-checked with `openssl dgst -sha1 -hmac`) -----------------------------------------

WORKED_TOKEN = "test_auth_token_0123456789abcdef"
WORKED_URL = "https://sms.example.com/webhooks/twilio/inbound/"
WORKED_PARAMS = {
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+14155550100",
    "To": "+14155550199",
    "Body": "Hello STOP me not",
    "NumMedia": "0",
}


def test_signature_worked_example():
    assert sign_twilio_request(WORKED_URL, WORKED_PARAMS, WORKED_TOKEN) == "JKhob+kZtlsDKRM/6CBtZqoLElA="
    assert (
        sign_twilio_request("https://sms.example.com:443/webhooks/twilio/inbound/", WORKED_PARAMS, WORKED_TOKEN)
        == "pCZVdiehFnvF4b2x8DaZ1QHaPtg="
    )
    assert sign_twilio_request(WORKED_URL, {}, WORKED_TOKEN) == "86ZT3HrKrPATZwZG87wKDUB6A+A="
    validator = RequestValidator(WORKED_TOKEN)
    assert validator.validate(WORKED_URL, WORKED_PARAMS, "JKhob+kZtlsDKRM/6CBtZqoLElA=")
    assert not validator.validate(WORKED_URL.rstrip("/"), WORKED_PARAMS, "JKhob+kZtlsDKRM/6CBtZqoLElA=")
    assert not validator.validate(WORKED_URL.replace("https", "http"), WORKED_PARAMS, "JKhob+kZtlsDKRM/6CBtZqoLElA=")
    assert not validator.validate(WORKED_URL, {**WORKED_PARAMS, "Body": "Hello"}, "JKhob+kZtlsDKRM/6CBtZqoLElA=")


def test_signature_status_callback_example_and_twilio_vector():
    params = {
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "MessageStatus": "delivered",
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "From": "+14155550199",
        "To": "+14155550100",
        "ApiVersion": "2010-04-01",
        "SmsSid": "SM0123456789abcdef0123456789abcdef",
        "SmsStatus": "delivered",
    }
    url = "https://sms.example.com/webhooks/twilio/status/?org=42"
    assert sign_twilio_request(url, params, WORKED_TOKEN) == "pMvxXU7dZ6K8JLCKX3dEHagn9X8="
    vector = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309", "To": "+18005551212", "Caller": "+14158675309"}
    assert sign_twilio_request("https://mycompany.com/myapp.php?foo=1&bar=2", vector, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_with_repeated_values():
    sig = sign_twilio_request(WORKED_URL, {"MediaUrl": ["b", "a"], "To": "+1"}, WORKED_TOKEN)
    expected = RequestValidator(WORKED_TOKEN).compute_signature(WORKED_URL, {"MediaUrl": "a", "To": "+1"})
    assert sig != expected  # both values are signed ...
    import base64
    import hashlib
    import hmac

    raw = (WORKED_URL + "MediaUrlaMediaUrlbTo+1").encode()
    assert sig == base64.b64encode(hmac.new(WORKED_TOKEN.encode(), raw, hashlib.sha1).digest()).decode()  # ... sorted


# --- standalone -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standalone_cli():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.twilio_server", "--port", str(port), "--account", f"{SID}:{TOKEN}"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        r = requests.post(
            f"http://127.0.0.1:{port}/2010-04-01/Accounts/{SID}/Messages.json",
            data={"To": "+15551234567", "From": FROM, "Body": "bench"},
            auth=(SID, TOKEN),
            timeout=5,
        )
        assert r.status_code == 201
        assert r.json()["status"] == "queued"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
