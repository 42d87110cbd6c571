"""Issue #10 point 5, against the production server (gunicorn, as the README runs it): a chunked request body
(Transfer-Encoding: chunked, no Content-Length) is refused with 411 in the contract's shape — never read as
an empty body — and nothing is stored."""
import json
import socket
from urllib.parse import urlparse

import pytest

from sms.models import Send

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _raw_request(url: str, request: bytes) -> tuple[int, dict]:
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():  # the response may be chunked too: undo the framing
        data, body = body, b""
        while data:
            size, _, rest = data.partition(b"\r\n")
            length = int(size, 16)
            if length == 0:
                break
            body, data = body + rest[:length], rest[length + 2:]
    return status, json.loads(body) if body.strip().startswith(b"{") else {}


def test_chunked_send_is_411_on_gunicorn(stack, make_tenant):
    tenant = make_tenant()
    body = json.dumps({"to": "+15551234567", "body": "chunked"}).encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    request = (f"POST {tenant.send_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {tenant.key.raw_key}\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    status, payload = _raw_request(stack.app.url, request + chunked)
    assert status == 411, payload
    assert payload["error"]["code"] == "length_required"
    assert not Send.objects.filter(org=tenant.org).exists()

    # The same body with a Content-Length is accepted: the refusal is about the framing, not the content.
    request = (f"POST {tenant.send_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {tenant.key.raw_key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    status, payload = _raw_request(stack.app.url, request + body)
    assert status == 202, payload
    assert Send.objects.filter(org=tenant.org).count() == 1
