"""Issue #10 points 3–5: hostile input gets a 400 in the contract's shape — never a 500 — and nothing
already stored is lost or half-written; provider webhooks store what can be stored safely."""
from __future__ import annotations

import base64
import json

import pytest

from audit.models import AuditEntry
from sms.models import InboundMessage, Send, Suppression
from tests.api.test_twilio_webhooks import inbound_params, post, inbound_path
from tests.factories import TEST_AUTH_TOKEN

pytestmark = pytest.mark.django_db


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:400])
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def client(client_for, prod_key, provider_account):
    return client_for(prod_key)


def _send_path(org) -> str:
    return f"/api/v1/orgs/{org.pk}/sms/send"


HOSTILE_BODIES = {
    "lone surrogate in a value": b'{"to": "+15551234567", "body": "hi \\ud800"}',
    "lone surrogate in a key": b'{"to": "+15551234567", "body": "hi", "metadata": {"\\udfff": 1}}',
    "NUL in body": b'{"to": "+15551234567", "body": "hi \\u0000"}',
    "NaN in metadata": b'{"to": "+15551234567", "body": "hi", "metadata": {"x": NaN}}',
    "Infinity in metadata": b'{"to": "+15551234567", "body": "hi", "metadata": {"x": -Infinity}}',
    "1e400 in metadata": b'{"to": "+15551234567", "body": "hi", "metadata": {"x": 1e400}}',
    "duplicate keys": b'{"to": "+15551234567", "body": "hi", "body": "other"}',
    "duplicate keys inside metadata": b'{"to": "+15551234567", "body": "hi", "metadata": {"a": 1, "a": 2}}',
    "nested past the limit": (b'{"to": "+15551234567", "body": "hi", "metadata": {"x": ' + b"[" * 40
                              + b"]" * 40 + b"}}"),
    "absurd nesting": b"[" * 100_000 + b"]" * 100_000,
    "invalid UTF-8": b'{"to": "+15551234567", "body": "caf\xe9"}',
}


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_json_is_400_invalid_json_audited_and_stores_nothing(client, org, name, content_type):
    before = AuditEntry.objects.filter(action="sms.send").count()
    response = client.post(_send_path(org), HOSTILE_BODIES[name], content_type=content_type)
    _error(response, 400, "invalid_json")
    assert Send.objects.count() == 0
    rejected = AuditEntry.objects.filter(action="sms.send").order_by("-created_at")
    assert rejected.count() == before + 1
    assert rejected.first().details["code"] == "invalid_json"


def test_well_formed_json_with_nesting_inside_the_limit_still_sends(client, org):
    metadata = {"a": [[[[{"b": 1.5, "c": "é 😀"}]]]]}
    response = client.post(_send_path(org), json.dumps({"to": "+15551234567", "body": "hi", "metadata": metadata}),
                           content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json()["metadata"] == metadata


def test_invalid_utf8_in_a_form_encoded_body_is_400(client, org):
    response = client.post(f"/api/v1/orgs/{org.pk}/sms/suppressions", b"phone_number=%2B15551234567&reason=caf%E9",
                           content_type="application/x-www-form-urlencoded")
    _error(response, 400, "invalid_json")
    assert Suppression.objects.count() == 0


# --- point 3: compliance state cannot be forged --------------------------------------------------


def test_metadata_suppressed_is_reserved(client, org):
    response = client.post(_send_path(org), {"to": "+15551234567", "body": "hi", "metadata": {"suppressed": False}},
                           format="json")
    error = _error(response, 400, "invalid_metadata")
    assert error["details"]["reserved_keys"] == ["suppressed"]
    assert Send.objects.count() == 0


@pytest.mark.parametrize("reason", ["stop_keyword", "carrier_opt_out", "import"])
def test_api_suppressions_take_operator_reasons_only(client, org, reason):
    response = client.post(f"/api/v1/orgs/{org.pk}/sms/suppressions", {"phone_number": "+15551234567",
                                                                        "reason": reason}, format="json")
    error = _error(response, 400, "invalid_reason")
    assert error["details"]["allowed"] == ["user_request", "manual"]
    assert Suppression.objects.count() == 0


@pytest.mark.parametrize("reason", ["user_request", "manual"])
def test_api_suppressions_accept_operator_reasons(client, org, reason):
    response = client.post(f"/api/v1/orgs/{org.pk}/sms/suppressions", {"phone_number": "+15551234567",
                                                                        "reason": reason}, format="json")
    assert response.status_code == 201, response.content
    assert Suppression.objects.get().reason == reason


# --- point 5: filters, cursors, canonical ids and limits -------------------------------------------


@pytest.mark.parametrize("path, query", [
    ("sms/stats", "until=9999-12-31"),
    ("sms/stats", "since=0001-01-01"),
    ("sms/sends", "created_after=9999-12-31T23:59:59-14:00"),
    ("sms/sends", "created_before=0001-01-01T00:00:00%2B14:00"),
    ("sms/sends", "created_before=9999-12-31"),
])
def test_dates_at_the_calendars_edges_are_400_invalid_filter(client, org, path, query):
    _error(client.get(f"/api/v1/orgs/{org.pk}/{path}?{query}"), 400, "invalid_filter")


def test_dates_inside_the_range_still_work(client, org):
    assert client.get(f"/api/v1/orgs/{org.pk}/sms/stats?until=9999-12-30").status_code == 200
    assert client.get(f"/api/v1/orgs/{org.pk}/sms/sends?created_after=0001-01-02T00:00:00Z").status_code == 200


def _cursor(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _cursor(b"[" * 5000 + b"]" * 5000),
    _cursor({"2024-01-01T00:00:00+00:00": 1, "x": 2}),
    _cursor(["9999-12-31T23:59:59-14:00", "7d0c5e2e-7a7b-4a6e-9d1f-0c6f1b8a6f11"]),
    _cursor(["0001-01-01T00:00:00+14:00", "7d0c5e2e-7a7b-4a6e-9d1f-0c6f1b8a6f11"]),
    _cursor(["2024-01-01T00:00:00+00:00", {"$gt": ""}]),
    _cursor([1, 2]),
    _cursor(b'["2024-01-01T00:00:00+00:00", "\\ud800"]'),
    _cursor(b'["2024-01-01T00:00:00+00:00", NaN]'),
    "A" * 5000,
    "not base64!",
])
def test_forged_cursors_are_400_invalid_cursor(client, org, cursor):
    for path in ("sms/sends", "events", "sms/suppressions"):
        _error(client.get(f"/api/v1/orgs/{org.pk}/{path}", {"cursor": cursor}), 400, "invalid_cursor")


@pytest.mark.parametrize("limit", ["１０", "+10", " 10", "1_0", "10.0", "0x10", "٣"])
def test_limit_only_in_canonical_form(client, org, limit):
    _error(client.get(f"/api/v1/orgs/{org.pk}/sms/sends", {"limit": limit}), 400, "invalid_limit")


def test_canonical_limit_is_accepted(client, org):
    assert client.get(f"/api/v1/orgs/{org.pk}/sms/sends", {"limit": "10"}).status_code == 200


@pytest.mark.parametrize("spelling", ["{%s}", "urn:uuid:%s", "%s-nohyphens", "%s "])
def test_org_id_only_in_canonical_form(client, org, spelling):
    raw = spelling % org.pk if "nohyphens" not in spelling else str(org.pk).replace("-", "")
    _error(client.get(f"/api/v1/orgs/{raw}/sms/sends"), 404, "org_not_found")
    assert client.get(f"/api/v1/orgs/{str(org.pk).upper()}/sms/sends").status_code == 200


def test_chunked_body_without_content_length_is_411(client, org):
    response = client.post(_send_path(org), b"", content_type="application/json",
                           HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    _error(response, 411, "length_required")
    assert Send.objects.count() == 0


# --- point 4/5: provider webhooks store what can be stored ------------------------------------------


def test_webhook_nul_in_form_fields_is_stored_replaced_not_500(org, provider_account):
    params = inbound_params(provider_account, "hello\x00world")
    response = post(inbound_path(org.pk), params)
    assert response.status_code == 200, response.content
    assert InboundMessage.objects.get().body == "hello\ufffdworld"


def test_webhook_invalid_utf8_is_replaced_not_500(org, provider_account):
    from urllib.parse import urlencode

    from django.test import Client

    from tests.helpers.twilio_signing import sign_twilio_request

    params = inbound_params(provider_account, "x")
    raw = urlencode(params).replace("Body=x", "Body=caf%E9")
    signed = {**params, "Body": "caf\ufffd"}  # what Django decodes; what Twilio would have signed is moot
    response = Client().post(inbound_path(org.pk), raw, content_type="application/x-www-form-urlencoded",
                             HTTP_X_TWILIO_SIGNATURE=sign_twilio_request(f"http://testserver{inbound_path(org.pk)}",
                                                                         signed, TEST_AUTH_TOKEN))
    assert response.status_code == 200, response.content
    assert InboundMessage.objects.get().body == "caf\ufffd"


def test_inbound_body_over_1600_chars_is_truncated_with_a_note(org, provider_account):
    response = post(inbound_path(org.pk), inbound_params(provider_account, "a" * 5000))
    assert response.status_code == 200
    inbound = InboundMessage.objects.get()
    assert len(inbound.body) == 1600
    from sms.models import Event

    event = Event.objects.get(type="sms.replied")
    assert event.data["body_truncated_from"] == 5000


def test_stop_from_a_sender_that_is_not_a_phone_number_claims_no_opt_out(org, provider_account):
    response = post(inbound_path(org.pk), inbound_params(provider_account, "STOP", from_="ACME-ALERTS"))
    assert response.status_code == 200
    assert b"unsubscribed" not in response.content and b"<Message>" not in response.content
    from sms.models import Event

    assert not Event.objects.filter(type="sms.opted_out").exists()
    assert Suppression.objects.count() == 0
