"""Issue #10 point 10 — test keys live apart from live data, as Stripe's do (README "Test and live keys").

Separate worlds for sends, events, Idempotency-Keys, the duplicate window, stats and the audit-log
view; test sends never spend the live quota and have their own daily cap (SANDBOX_DAILY_CAP); the
suppression list is one per org (a real STOP applies to both; a sandbox send to a suppressed number is
refused) and a test key may read it but not change it (403 live_key_required).
"""
from __future__ import annotations

import json

import pytest

from audit.models import AuditEntry
from orgs.models import KeyMode, Role
from orgs.quota import quota_status, sandbox_status
from sms.models import Event, EventType, Send, Suppression, SuppressionReason
from sms.providers.base import InboundSms
from sms.services.inbound import inbound_handle
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

TO = "+15551234567"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    from sms import tasks

    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: None)
    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)


@pytest.fixture
def live_key(org, provider_account):
    return ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.PROD)


@pytest.fixture
def test_key(org, provider_account):
    return ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.TEST)


@pytest.fixture
def live(live_key, client_for):
    return client_for(live_key)


@pytest.fixture
def sandbox(test_key, client_for):
    return client_for(test_key)


def send(client, org, payload, **headers):
    return client.post(f"/api/v1/orgs/{org.pk}/sms/send", json.dumps(payload), content_type="application/json",
                       **headers)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


# --- sends: list, detail -------------------------------------------------------------------------------------

def test_each_key_lists_and_reads_only_its_own_modes_sends(org, live, sandbox):
    live_send = send(live, org, {"to": TO, "body": "Your code is 482910"}).json()
    test_send = send(sandbox, org, {"to": TO, "body": "Your code is 000000"}).json()
    assert (live_send["mode"], test_send["mode"]) == ("prod", "test")
    base = f"/api/v1/orgs/{org.pk}/sms/sends"
    assert ids(live.get(base)) == [live_send["id"]]
    assert ids(sandbox.get(base)) == [test_send["id"]]
    assert ids(sandbox.get(base, {"phone": TO})) == [test_send["id"]]
    assert ids(sandbox.get(base, {"status": "queued"})) == [test_send["id"]]
    # The other mode's send is "no such send": its body (a one-time code) never reaches the other key.
    other = sandbox.get(f"{base}/{live_send['id']}")
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert b"482910" not in other.content
    assert live.get(f"{base}/{test_send['id']}").status_code == 404
    assert sandbox.get(f"{base}/{test_send['id']}").json()["body"] == "Your code is 000000"


# --- events -------------------------------------------------------------------------------------------------

def test_events_are_per_mode_and_a_real_persons_messages_are_live(org, live, sandbox):
    live_send = send(live, org, {"to": TO, "body": "hello"}).json()
    test_send = send(sandbox, org, {"to": TO, "body": "hello"}).json()
    from sms.services.status import send_transition
    from django.db import transaction

    with transaction.atomic():
        send_transition(send_id=live_send["id"], to_status="failed", source="worker")
        send_transition(send_id=test_send["id"], to_status="failed", source="worker")
    inbound_handle(org=org, message=InboundSms(message_id="SM" + "1" * 32, account_id="AC1", from_number="+15559990000",
                                               to_number="+15005550006", body="hello there"))
    assert Event.objects.get(send_id=test_send["id"]).mode == "test"
    url = f"/api/v1/orgs/{org.pk}/events"
    live_events = live.get(url).json()["data"]
    test_events = sandbox.get(url).json()["data"]
    assert {(e["type"], e["data"].get("id")) for e in test_events} == {(EventType.FAILED, test_send["id"])}
    assert {e["type"] for e in live_events} == {EventType.FAILED, EventType.REPLIED}
    assert all(e["data"].get("id") != test_send["id"] for e in live_events)


# --- Idempotency-Key -------------------------------------------------------------------------------------------

def test_idempotency_keys_are_per_mode(org, live, sandbox):
    first_live = send(live, org, {"to": TO, "body": "Your code is 482910"}, HTTP_IDEMPOTENCY_KEY="order-1")
    # The same key from a test key, even with another body, is a new test send: never the live one, never a 409.
    first_test = send(sandbox, org, {"to": TO, "body": "something else"}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert first_test.status_code == 202 and "Idempotent-Replayed" not in first_test
    assert first_test.json()["id"] != first_live.json()["id"] and first_test.json()["mode"] == "test"
    assert b"482910" not in first_test.content
    # Each mode still replays its own.
    again_test = send(sandbox, org, {"to": TO, "body": "something else"}, HTTP_IDEMPOTENCY_KEY="order-1")
    again_live = send(live, org, {"to": TO, "body": "Your code is 482910"}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert again_test["Idempotent-Replayed"] == "true" and again_test.json()["id"] == first_test.json()["id"]
    assert again_live["Idempotent-Replayed"] == "true" and again_live.json()["id"] == first_live.json()["id"]
    assert Send.objects.filter(org=org).count() == 2


# --- the duplicate window --------------------------------------------------------------------------------------

def test_a_test_send_never_marks_a_live_send_recent_duplicate_nor_the_reverse(org, live, sandbox):
    body = {"to": TO, "body": "Your code is 482910"}
    assert send(sandbox, org, body).json()["status"] == "queued"
    assert send(live, org, body).json()["status"] == "queued"  # the live send is sent
    # Within each mode the guard still works.
    assert send(live, org, body).json()["suppressed_reason"] == "recent_duplicate"
    assert send(sandbox, org, body).json()["suppressed_reason"] == "recent_duplicate"


# --- quota and the sandbox's daily cap --------------------------------------------------------------------------

def test_test_sends_never_spend_the_live_quota_and_have_their_own_daily_cap(org, live, sandbox, settings):
    settings.SANDBOX_DAILY_CAP = 3
    org.monthly_quota_override = 2
    org.save(update_fields=["monthly_quota_override"])
    for n in range(3):
        assert send(sandbox, org, {"to": TO, "body": f"test {n}"}).json()["status"] == "queued"
    assert quota_status(org=org).used == 0 and sandbox_status(org=org).used == 3
    refused = send(sandbox, org, {"to": TO, "body": "test 4"})
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and error["details"]["scope"] == "sandbox_daily"
    assert error["details"]["limit"] == 3
    # The live world is untouched by the sandbox: both live units are still there…
    assert [send(live, org, {"to": TO, "body": f"live {n}"}).status_code for n in range(3)] == [202, 202, 429]
    assert quota_status(org=org).used == 2 and sandbox_status(org=org).used == 3
    # …and a used-up live quota does not stop the sandbox (its own cap decides).
    settings.SANDBOX_DAILY_CAP = 4
    assert send(sandbox, org, {"to": TO, "body": "test 5"}).status_code == 202


def test_stats_are_per_mode_with_each_modes_quota(org, live, sandbox, settings):
    settings.SANDBOX_DAILY_CAP = 50
    send(live, org, {"to": TO, "body": "live"})
    for n in range(3):
        send(sandbox, org, {"to": TO, "body": f"test {n}"})
    url = f"/api/v1/orgs/{org.pk}/sms/stats"
    live_stats, test_stats = live.get(url).json(), sandbox.get(url).json()
    assert (live_stats["total"], test_stats["total"]) == (1, 3)
    assert live_stats["quota"]["used"] == 1 and live_stats["quota"]["limit"] == org.monthly_quota
    assert test_stats["quota"]["used"] == 3 and test_stats["quota"]["limit"] == 50


# --- the audit-log view ---------------------------------------------------------------------------------------

def test_the_audit_log_view_is_per_mode(org, live, sandbox, live_key, test_key):
    send(live, org, {"to": TO, "body": "live"})
    send(sandbox, org, {"to": TO, "body": "test"})
    url = f"/api/v1/orgs/{org.pk}/audit-log"
    live_rows = live.get(url).json()["data"]
    test_rows = sandbox.get(url).json()["data"]
    assert test_rows and live_rows
    assert AuditEntry.objects.filter(org=org, actor_id=str(test_key.pk)).exclude(mode="test").count() == 0
    test_ids = {str(e.pk) for e in AuditEntry.objects.filter(org=org, mode="test")}
    live_ids = {str(e.pk) for e in AuditEntry.objects.filter(org=org, mode="prod")}
    assert {str(row["id"]) for row in test_rows} == test_ids
    assert {str(row["id"]) for row in live_rows} == live_ids


# --- the suppression list: one per org, read-only for test keys -----------------------------------------------

def test_a_real_stop_applies_to_sandbox_sends_too(org, sandbox):
    inbound_handle(org=org, message=InboundSms(message_id="SM" + "2" * 32, account_id="AC1", from_number=TO,
                                               to_number="+15005550006", body="STOP"))
    refused = send(sandbox, org, {"to": TO, "body": "hello"}).json()
    assert refused["status"] == "failed" and refused["metadata"]["suppressed"] is True


def test_a_test_key_may_read_the_suppression_list_but_not_change_it(org, sandbox, live):
    Suppression.objects.create(org=org, phone_number=TO, reason=SuppressionReason.STOP_KEYWORD, source="webhook")
    base = f"/api/v1/orgs/{org.pk}/sms/suppressions"
    listed = sandbox.get(base)
    assert listed.status_code == 200 and [row["phone_number"] for row in listed.json()["data"]] == [TO]
    for response in (sandbox.delete(f"{base}/{TO}"),
                     sandbox.post(base, json.dumps({"phoneNumber": "+15557654321"}), content_type="application/json")):
        assert response.status_code == 403 and response.json()["error"]["code"] == "live_key_required"
    assert list(Suppression.objects.filter(org=org).values_list("phone_number", flat=True)) == [TO]
    # A live admin key may.
    assert live.delete(f"{base}/{TO}").status_code == 204


def test_the_openapi_schema_documents_live_key_required(api_client):
    schema = api_client.get("/api/schema?format=json").content.decode()
    assert "live_key_required" in schema


def test_a_test_send_stopped_at_dispatch_gives_its_unit_back_to_the_sandbox_not_the_live_quota(
        org, sandbox, live, settings):
    """With #10 point 1 (STOP is final at dispatch): the refund goes where the unit came from."""
    from orgs.models import QuotaUsage
    from sms.services.dispatch import send_dispatch

    settings.SANDBOX_DAILY_CAP = 10
    assert send(live, org, {"to": "+15550001111", "body": "live"}).status_code == 202  # one live unit spent
    accepted = send(sandbox, org, {"to": TO, "body": "Your code is 000000"}).json()
    assert (sandbox_status(org=org).used, quota_status(org=org).used) == (1, 1)
    Suppression.objects.create(org=org, phone_number=TO, reason=SuppressionReason.STOP_KEYWORD, source="webhook")
    send_dispatch(send_id=accepted["id"])
    stopped = Send.objects.get(pk=accepted["id"])
    assert stopped.status == "failed" and stopped.metadata.get("suppressed") is True
    assert sandbox_status(org=org).used == 0  # back to the sandbox…
    assert sum(QuotaUsage.objects.filter(org=org).values_list("used", flat=True)) == 1  # …the live unit untouched
