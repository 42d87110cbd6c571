"""Issue #6 item 9 — abuse and bad input at the HTTP edge.

- Repeated bad API keys from one client address are refused with 429 (API_BAD_KEY_RATE), without
  affecting other addresses; a spoofed X-Forwarded-For does not reset the count.
- Request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE get 413 `payload_too_large`, on every endpoint
  that takes a body, before authentication.
- An x-api-key / Authorization with odd bytes or huge length gets 401 `unauthenticated`, never 500.
- Bodies and query strings carrying NUL, and absurdly nested JSON, are 400, never 500 (found by the
  fuzzer: PostgreSQL text cannot hold U+0000).
Every route is taken from the URL resolver (tests/security/surface.py), so new endpoints are covered.
"""
from __future__ import annotations

import json
import socket
import uuid

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from orgs.models import KeyMode, Role
from tests.factories import ApiKeyFactory, OrgFactory
from tests.security.surface import api_routes, org_routes, webhook_routes

ATTACKER = "203.0.113.66"  # TEST-NET-3 documentation addresses: only ever a REMOTE_ADDR value here
BYSTANDER = "198.51.100.23"


def _assert_error(response, status: int, code: str):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def _fill(route, tenant) -> str:
    """A concrete path for `route` on `tenant` (a real object id for every id parameter)."""
    ids = tenant.object_ids()
    values = {"org_id": tenant.org_id}
    for name in route.params:
        if name != "org_id":
            assert ids.get(name), f"{route}: no sample value for path parameter {name!r}; add it to Tenant.object_ids()"
            values[name] = ids[name][0]
    return route.path(**values)


def _a_get_route():
    routes = [r for r in org_routes() if "get" in r.methods and r.params == ("org_id",)]
    assert routes, "no GET /api/v1/orgs/{org_id}/… list endpoint is registered"
    return routes[0]


def _bad_key(n: int) -> str:
    return f"sk_test_{uuid.uuid4().hex}{n}"


# --- bad keys → 429 per client address --------------------------------------------------------

@override_settings(API_BAD_KEY_RATE="5/m")
def test_repeated_bad_keys_from_one_address_are_refused_with_429_and_other_addresses_are_unaffected(tenant_a):
    path = _a_get_route().path(org_id=tenant_a.org_id)
    attacker = APIClient(REMOTE_ADDR=ATTACKER)
    for n in range(5):
        _assert_error(attacker.get(path, HTTP_X_API_KEY=_bad_key(n)), 401, "unauthenticated")
    limited = attacker.get(path, HTTP_X_API_KEY=_bad_key(99))
    _assert_error(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) >= 1
    # Bearer keys count the same way, and rotating a spoofed X-Forwarded-For changes nothing.
    for n in range(3):
        _assert_error(attacker.get(path, HTTP_AUTHORIZATION=f"Bearer {_bad_key(n)}",
                                   HTTP_X_FORWARDED_FOR=f"192.0.2.{n}"), 429, "rate_limited")
    # A valid key is never refused by the bad-key throttle, even from the refused address (issue #10,
    # point 7: behind a load balancer every client shares that address).
    assert attacker.get(path, HTTP_X_API_KEY=tenant_a.admin_key.raw_key).status_code == 200

    bystander = APIClient(REMOTE_ADDR=BYSTANDER)
    assert bystander.get(path, HTTP_X_API_KEY=tenant_a.admin_key.raw_key).status_code == 200
    # …and the bystander's own typo is an ordinary 401, not a 429.
    _assert_error(bystander.get(path, HTTP_X_API_KEY=_bad_key(1)), 401, "unauthenticated")


@override_settings(API_BAD_KEY_RATE="3/m")
def test_good_keys_do_not_count_towards_the_bad_key_limit(tenant_a):
    path = _a_get_route().path(org_id=tenant_a.org_id)
    client = APIClient(REMOTE_ADDR=ATTACKER)
    for _ in range(10):
        assert client.get(path, HTTP_X_API_KEY=tenant_a.admin_key.raw_key).status_code == 200
    _assert_error(client.get(path, HTTP_X_API_KEY=_bad_key(0)), 401, "unauthenticated")


def _wait_for_a_fresh_window(client: str, *, at_least: float = 10.0) -> None:
    """django-ratelimit's windows are fixed, and each key's is offset by a hash of the key: if this address's
    minute ends within `at_least` seconds, wait for the next one, so the counter cannot reset halfway through the
    test (it once did between the 40th and the 41st junk key: a CI flake)."""
    import time

    from orgs.rate_limits import _usage

    usage = _usage(group="bad-api-key", value=client, rate=settings.API_BAD_KEY_RATE, increment=False)
    assert usage is not None and usage["count"] == 0
    if usage["time_left"] < at_least:
        time.sleep(usage["time_left"] + 0.5)


def test_junk_keys_from_a_shared_address_never_lock_out_a_valid_key(tenant_a, settings):
    """Issue #10 point 7: at the default rate (30/min), 40 junk keys from one address (a load
    balancer's) get 401s then 429s, and a valid key from that same address is still served."""
    assert settings.API_BAD_KEY_RATE == "30/m"
    path = _a_get_route().path(org_id=tenant_a.org_id)
    shared = APIClient(REMOTE_ADDR=ATTACKER)
    _wait_for_a_fresh_window(ATTACKER)
    codes = [shared.get(path, HTTP_X_API_KEY=_bad_key(n)).status_code for n in range(40)]
    assert codes[:30] == [401] * 30 and codes[30:] == [429] * 10
    for _ in range(3):
        assert shared.get(path, HTTP_X_API_KEY=tenant_a.admin_key.raw_key).status_code == 200
        assert shared.get(path, HTTP_AUTHORIZATION=f"Bearer {tenant_a.admin_key.raw_key}").status_code == 200
    # Still refused for junk: the valid requests did not reset the counter.
    _assert_error(shared.get(path, HTTP_X_API_KEY=_bad_key(41)), 429, "rate_limited")


# --- 413 --------------------------------------------------------------------------------------

def _body_routes():
    out = []
    for route in api_routes() + webhook_routes():
        for method in route.methods:
            if method in ("post", "put", "patch", "delete"):
                out.append((route, method))
    return out


def test_every_body_taking_endpoint_answers_413_over_the_limit(tenant_a):
    routes = _body_routes()
    assert routes, "no endpoint takes a request body"
    limit = 64 * 1024
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=limit):
        for route, method in routes:
            path = _fill(route, tenant_a)
            payload = json.dumps({"to": "+15005550006", "body": "x" * (limit + 1)})
            for headers in ({"HTTP_X_API_KEY": tenant_a.admin_key.raw_key}, {}):  # before auth, too
                client = APIClient(**headers)
                response = getattr(client, method)(path, payload, content_type="application/json")
                body = _assert_error(response, 413, "payload_too_large")
                assert body["error"]["details"]["max_bytes"] == limit, (route, body)


def test_send_body_over_the_default_limit_is_413_and_just_under_is_not(tenant_a, client_for):
    route = next((r for r in org_routes() if "post" in r.methods and r.template.endswith("/sms/send")), None)
    assert route is not None, "POST …/sms/send is not registered"
    path = route.path(org_id=tenant_a.org_id)
    client = client_for(tenant_a.admin_key)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    envelope = json.dumps({"to": "+15005550006", "body": ""})
    over = envelope.replace('"body": ""', '"body": "' + "x" * (limit + 1 - len(envelope)) + '"')
    assert len(over.encode()) == limit + 1
    _assert_error(client.post(path, over, content_type="application/json"), 413, "payload_too_large")
    at_limit = envelope.replace('"body": ""', '"body": "' + "x" * (limit - len(envelope)) + '"')
    response = client.post(path, at_limit, content_type="application/json")
    assert response.status_code == 400, response.content[:200]  # too long a body for an SMS, but not 413


def test_non_numeric_content_length_is_400_not_500(tenant_a):
    path = _a_get_route().path(org_id=tenant_a.org_id)
    response = APIClient().generic("POST", path, b"{}", content_type="application/json", CONTENT_LENGTH="12abc",
                                   HTTP_X_API_KEY=tenant_a.admin_key.raw_key)
    _assert_error(response, 400, "invalid_content_length")


# --- odd bytes in credentials -----------------------------------------------------------------

ODD_KEYS = {
    "latin-1": "sk_test_\xe9\xe8\xff\xfe\xa0abc",
    "utf-8 read as latin-1": "sk_test_\xc3\xa9\xf0\x9f\x94\x91",
    "control chars": "sk_test_\x01\x02\x1b[31m\x7f",
    "nul": "sk_test_abc\x00def",
    "crlf": "sk_test_abc\r\nX-Injected: 1",
    "100 KB": "sk_test_" + "A" * 100_000,
    "100 KB latin-1": "\xff" * 100_000,
    "empty": "",
    "spaces": "   ",
    "right shape, unknown": "sk_test_" + "Z" * 32,
    "prod shape, unknown": "sk_prod_" + "Z" * 32,
    "sql": "sk_test_' OR '1'='1",
    "format string": "sk_test_%s%s%n{0}{key}",
}


@override_settings(API_BAD_KEY_RATE="100000/m")
def test_odd_bytes_or_huge_api_key_is_401_json_on_every_endpoint(tenant_a, caplog):
    failures = []
    for name, raw in ODD_KEYS.items():
        for route in api_routes():
            path = _fill(route, tenant_a)
            for method in route.methods:
                for header in ({"HTTP_X_API_KEY": raw}, {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
                               {"HTTP_AUTHORIZATION": raw}):
                    response = getattr(APIClient(), method)(path, {}, format="json", **header)
                    try:
                        _assert_error(response, 401, "unauthenticated")
                    except AssertionError as exc:
                        failures.append(f"{name} {method.upper()} {route.template} {list(header)[0]}: {exc}")
    assert not failures, "\n".join(failures[:20])
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], \
        [r.getMessage()[:200] for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.django_db(transaction=True)
@override_settings(API_BAD_KEY_RATE="100000/m")
def test_raw_non_ascii_bytes_on_the_wire_in_x_api_key_are_401(live_server):
    """Through a real HTTP server: the header bytes arrive undecoded (WSGI reads them as latin-1)."""
    org = OrgFactory()
    ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.TEST)
    host, port = live_server.url.split("//", 1)[1].split(":")
    path = f"/api/v1/orgs/{org.pk}/sms/sends"
    for raw in (b"sk_test_\xff\xfe\xfd", "sk_test_é🔑".encode("utf-8"), b"sk_test_\x01\x7f\x1b", b"\x80" * 4000):
        for header in (b"x-api-key: " + raw, b"Authorization: Bearer " + raw):
            request = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + header
                       + b"\r\nConnection: close\r\n\r\n")
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            assert status == 401, (raw[:40], head[:200], body[:200])
            assert json.loads(body)["error"]["code"] == "unauthenticated"


# --- NUL and nesting (fuzzer findings) --------------------------------------------------------

@pytest.mark.parametrize("payload", [
    {"to": "+15005550006", "body": "a\x00b"},
    {"to": "+15005550006", "body": "ok", "metadata": {"k": "a\x00b"}},
    {"to": "+15005550006", "body": "ok", "metadata": {"k\x00": 1}},
], ids=["nul-in-body", "nul-in-metadata-value", "nul-in-metadata-key"])
def test_nul_characters_in_a_json_body_are_400_on_every_body_endpoint(payload, tenant_a, client_for):
    client = client_for(tenant_a.admin_key)
    for route, method in _body_routes():
        if route.is_webhook or method == "delete":  # DELETE bodies are not read
            continue
        response = getattr(client, method)(_fill(route, tenant_a), json.dumps(payload), content_type="application/json")
        assert 400 <= response.status_code < 500, (route, response.status_code, response.content[:200])
        assert response.json()["error"]["code"], response.content[:200]


def test_absurdly_nested_json_is_400_not_500(tenant_a, client_for):
    client = client_for(tenant_a.admin_key)
    for route, method in _body_routes():
        if route.is_webhook or method == "delete":
            continue
        response = getattr(client, method)(_fill(route, tenant_a), "[" * 100_000 + "]" * 100_000,
                                           content_type="application/json")
        assert 400 <= response.status_code < 500, (route, response.status_code, response.content[:200])


def test_nul_in_any_query_parameter_is_400_on_every_get_endpoint(tenant_a, client_for):
    client = client_for(tenant_a.admin_key)
    for route in api_routes():
        if "get" not in route.methods:
            continue
        for query in ("action=%00", "phone=%2B1%00", "cursor=a%00", "type=%00", "x%00=1"):
            response = client.get(f"{_fill(route, tenant_a)}?{query}")
            _assert_error(response, 400, "invalid_query")


@override_settings(SMS_PUBLIC_BASE_URL="https://hooks.sendora.test")
def test_signed_webhook_with_nul_in_any_field_is_4xx_not_500(tenant_a):
    from urllib.parse import urlencode

    from tests.helpers.twilio_signing import sign_twilio_request

    routes = [r for r in webhook_routes() if "org_id" in r.params and "/webhooks/twilio/" in r.template]
    assert routes, "no Twilio webhook routes are registered"
    client = APIClient()
    for route in routes:
        path = route.path(org_id=tenant_a.org_id)
        for field_name in ("Body", "From", "To", "MessageSid", "MessageStatus", "ErrorCode"):
            fields = {"AccountSid": tenant_a.provider_account.account_sid, "MessageSid": "SM" + "1" * 32,
                      "From": "+14155550123", "To": tenant_a.provider_account.from_number, "Body": "hi",
                      "MessageStatus": "delivered"}
            fields[field_name] = fields.get(field_name, "x") + "\x00"
            signature = sign_twilio_request("https://hooks.sendora.test" + path, fields, tenant_a.auth_token)
            response = client.post(path, urlencode(fields), content_type="application/x-www-form-urlencoded",
                                   HTTP_X_TWILIO_SIGNATURE=signature)
            assert response.status_code < 500, (route.template, field_name, response.content[:200])
