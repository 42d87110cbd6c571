"""POST /api/v1/orgs/{org}/sms/send — the seven decisions over HTTP, every error code."""
import json

import pytest

from audit.models import AuditEntry, Outcome
from orgs.models import KeyMode, QuotaUsage, Role
from orgs.quota import quota_status
from orgs.plans import Plan
from sms.models import DispatchHandoff, Event, Send, SendDailyCount, SendStatusChange
from tests.factories import ApiKeyFactory, OrgFactory, ProviderAccountFactory, SuppressionFactory
from tests.helpers.handoff import HandedOff

pytestmark = pytest.mark.django_db

TO = "+15551234567"


def url(org_id) -> str:
    return f"/api/v1/orgs/{org_id}/sms/send"


@pytest.fixture
def dispatched(monkeypatch):
    """The send ids handed to the dispatch workers: their hand-off rows, written with the send (no broker)."""
    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)
    return HandedOff()


@pytest.fixture
def member_key(org):
    """A live member key: these tests are about the live world (its quota; sandbox-specific behaviour is in
    tests/api/test_test_and_live_modes.py)."""
    return ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)


@pytest.fixture
def client(member_key, provider_account, client_for):
    return client_for(member_key)


def post(client, org, payload, **headers):
    body = json.dumps(payload)
    return client.post(url(org.id), body, content_type="application/json", **headers)


def assert_only_audit_written(org, decision):
    assert Send.objects.count() == 0
    assert DispatchHandoff.objects.count() == 0
    assert SendStatusChange.objects.count() == 0
    assert SendDailyCount.objects.count() == 0
    assert QuotaUsage.objects.filter(used__gt=0).count() == 0
    entry = AuditEntry.objects.get(org=org, action="sms.send")
    assert entry.outcome == Outcome.REJECTED
    assert entry.details["decision"] == decision


# --- 7: queued ---------------------------------------------------------------------------------


def test_queued_send_returns_202_with_the_send_object_and_its_dispatch_hand_off(
        org, client, member_key, provider_account, dispatched, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(org.id), json.dumps({"to": "(555) 123-4567", "body": "Your code is 482910",
                                                        "metadata": {"user": "u1"}}),
                               content_type="application/json", HTTP_X_REQUEST_ID="req-abc")
    assert response.status_code == 202, response.content
    data = response.json()
    assert set(data) == {"id", "org_id", "to", "from", "body", "category", "status", "suppressed_reason", "segments",
                         "encoding", "metadata", "provider", "provider_message_id", "error_code", "error_message",
                         "mode", "created_at", "updated_at", "sent_at", "delivered_at", "failed_at",
                         "dispatch_state", "review_reason", "original_body", "links", "price", "price_unit"}
    assert (data["dispatch_state"], data["review_reason"]) == ("pending", None)
    assert data["to"] == TO
    assert data["from"] == provider_account.from_number
    assert data["org_id"] == str(org.id)
    assert (data["status"], data["category"], data["segments"], data["encoding"]) == \
        ("queued", "transactional", 1, "GSM-7")
    assert (data["mode"], data["provider"]) == ("prod", "twilio")  # a live key
    assert data["metadata"] == {"user": "u1"}
    assert data["suppressed_reason"] is None and data["error_code"] is None
    assert dispatched == [data["id"]]
    send = Send.objects.get()
    assert send.dedupe_key and send.api_key_id == member_key.id
    assert list(send.status_changes.values_list("status", "source")) == [("queued", "api")]
    assert quota_status(org=org).used == 1
    counter = SendDailyCount.objects.get()
    assert (counter.status, counter.count, counter.segments) == ("queued", 1, 1)
    entry = AuditEntry.objects.get(action="sms.send")
    assert entry.outcome == Outcome.OK and entry.details["decision"] == "queued"
    assert entry.resource_id == str(send.id) and entry.request_id == "req-abc"
    assert entry.payload_bytes == len(json.dumps({"to": "(555) 123-4567", "body": "Your code is 482910",
                                                  "metadata": {"user": "u1"}}).encode())
    assert entry.client_ip == "127.0.0.1"
    assert entry.actor_id == str(member_key.id)


def test_prod_key_sends_through_the_orgs_provider_in_prod_mode(org, provider_account, client_for, dispatched):
    key = ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    response = post(client_for(key), org, {"to": TO, "body": "hi"})
    assert response.status_code == 202
    assert (response.json()["mode"], response.json()["provider"]) == ("prod", "twilio")


def test_unicode_body_reports_ucs2_segments(org, client):
    response = post(client, org, {"to": TO, "body": "Привет 👋 " * 10, "category": "marketing"})
    assert response.status_code == 202
    assert response.json()["encoding"] == "UCS-2"
    assert response.json()["segments"] == 2
    assert response.json()["category"] == "marketing"


def test_curl_form_encoded_json_body_is_accepted(org, member_key, provider_account):
    """The product page's `curl -d '{"to":…}'` sends JSON as application/x-www-form-urlencoded."""
    from django.test import Client

    response = Client().post(url(org.id), '{"to":"+15551234567","body":"Hello from curl"}',
                             content_type="application/x-www-form-urlencoded", HTTP_X_API_KEY=member_key.raw_key)
    assert response.status_code == 202, response.content
    assert response.json()["body"] == "Hello from curl"


def test_bearer_auth_and_admin_key_may_send(org, admin_key, provider_account, api_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key.raw_key}")
    assert post(api_client, org, {"to": TO, "body": "hi"}).status_code == 202


def test_hot_path_is_a_bounded_number_of_queries(org, client, django_assert_max_num_queries):
    # Database round trips: auth key lookup (1) + ONE batch: the advisory lock, the guard that verifies the
    # account, suppression and duplicate checks, then send, timeline, audit, counter, quota (issue #14)
    # + the savepoint pair the test transaction wraps around the durable atomic (2; COMMIT outside tests).
    post(client, org, {"to": TO, "body": "warm-up"})  # creates the quota row, touches the key
    with django_assert_max_num_queries(4):
        response = post(client, org, {"to": TO, "body": "measured"})
    assert response.status_code == 202


def test_no_trailing_slash_redirect(org, client):
    response = client.post(url(org.id) + "/", {"to": TO, "body": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- 1: validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "code"), [
    ({"to": "not a number", "body": "hi"}, "invalid_phone_number"),
    ({"to": "555-1234", "body": "hi"}, "invalid_phone_number"),
    ({"to": TO, "body": ""}, "invalid_body"),
    ({"to": TO, "body": "   "}, "invalid_body"),
    ({"to": TO, "body": "x" * 1601}, "invalid_body"),
    ({"to": TO, "body": "hi", "category": "promo"}, "invalid_category"),
    ({"to": TO, "body": "hi", "metadata": {"blob": "x" * 4100}}, "invalid_metadata"),
    ({"to": TO, "body": "hi", "metadata": ["a"]}, "validation_error"),
    ({"to": TO, "body": "hi", "unknown": 1}, "validation_error"),
    ({"to": 15551234567, "body": "hi"}, "validation_error"),
    ({"to": TO, "body": 42}, "validation_error"),
    ({"body": "hi"}, "validation_error"),
    (["not", "an", "object"], "validation_error"),
])
def test_invalid_input_is_400_with_its_code_and_only_an_audit_entry(org, client, payload, code, dispatched):
    response = post(client, org, payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert_only_audit_written(org, "validation")
    assert dispatched == []


def test_invalid_json_is_400_and_audited(org, client):
    response = client.post(url(org.id), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert_only_audit_written(org, "validation")


def test_body_of_exactly_1600_characters_is_accepted(org, client):
    response = post(client, org, {"to": TO, "body": "x" * 1600})
    assert response.status_code == 202
    assert response.json()["segments"] == 11


def test_metadata_just_under_4kb_is_accepted(org, client):
    blob = "x" * (4096 - len('{"b":""}'))
    assert post(client, org, {"to": TO, "body": "hi", "metadata": {"b": blob}}).status_code == 202


def test_validation_is_checked_before_the_provider(org, member_key, client_for):
    response = post(client_for(member_key), org, {"to": "nope", "body": "hi"})
    assert response.json()["error"]["code"] == "invalid_phone_number"


# --- auth / org / plan (decision 1's other half) --------------------------------------------------


def test_missing_key_is_401(org, api_client):
    assert post(api_client, org, {"to": TO, "body": "hi"}).json()["error"]["code"] == "unauthenticated"


def test_publishable_key_is_403_secret_key_required(org, provider_account, client_for):
    key = ApiKeyFactory(org=org, publishable=True)
    response = post(client_for(key), org, {"to": TO, "body": "hi"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "secret_key_required"
    assert Send.objects.count() == 0


def test_free_plan_is_403_plan_upgrade_required(client_for):
    org = OrgFactory(plan=Plan.FREE)
    ProviderAccountFactory(org=org)
    response = post(client_for(ApiKeyFactory(org=org)), org, {"to": TO, "body": "hi"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "plan_upgrade_required"


def test_another_orgs_id_is_404_org_not_found(org, other_org, client):
    response = post(client, other_org, {"to": TO, "body": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"
    assert Send.objects.count() == 0


# --- 2: provider configured ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", [KeyMode.TEST, KeyMode.PROD])
def test_no_provider_account_is_412_and_nothing_but_the_audit_entry_is_stored(org, client_for, mode):
    key = ApiKeyFactory(org=org, mode=mode)
    response = post(client_for(key), org, {"to": TO, "body": "hi"})
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "provider_not_configured"
    assert_only_audit_written(org, "provider_not_configured")


def test_provider_is_decided_before_the_rate_limit(org, client_for):
    org.send_rate_override = 1
    org.save(update_fields=["send_rate_override"])
    client = client_for(ApiKeyFactory(org=org))
    codes = [post(client, org, {"to": TO, "body": f"message {i}"}).status_code for i in range(3)]
    assert codes == [412, 412, 412]  # never 429: a refused 412 is not counted against the rate either
    assert Send.objects.count() == 0


# --- 3: rate limit -------------------------------------------------------------------------------


def test_over_the_send_rate_is_429_rate_limited_with_retry_after(org, client, dispatched):
    org.send_rate_override = 1
    org.save(update_fields=["send_rate_override"])
    # Fixed one-second windows: three quick requests span at most two windows, so at least one is over.
    responses = [post(client, org, {"to": TO, "body": f"message {i}"}) for i in range(3)]
    codes = [r.status_code for r in responses]
    assert codes[0] == 202 and 429 in codes and set(codes) <= {202, 429}
    limited = [r for r in responses if r.status_code == 429]
    for response in limited:
        assert response.json()["error"]["code"] == "rate_limited"
        assert int(response["Retry-After"]) >= 1
    assert Send.objects.count() == codes.count(202)
    assert AuditEntry.objects.filter(details__decision="rate_limited", outcome=Outcome.REJECTED).count() == len(limited)
    assert len(dispatched) == codes.count(202)  # a hand-off per accepted send, none for a refused one


# --- 4: suppression list -------------------------------------------------------------------------


@pytest.mark.parametrize("role,mode", [(Role.MEMBER, KeyMode.TEST), (Role.ADMIN, KeyMode.PROD)])
def test_suppressed_recipient_is_stored_failed_uses_no_quota_and_is_never_dispatched(
        org, provider_account, client_for, dispatched, django_capture_on_commit_callbacks, role, mode):
    SuppressionFactory(org=org, phone_number=TO)
    key = ApiKeyFactory(org=org, role=role, mode=mode)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client_for(key), org, {"to": "+1 555 123 4567", "body": "hi", "metadata": {"a": 1}})
    assert response.status_code == 202
    data = response.json()
    assert data["status"] == "failed"
    assert data["metadata"] == {"a": 1, "suppressed": True}
    assert data["error_code"] == "suppressed" and data["failed_at"]
    assert dispatched == []
    assert not QuotaUsage.objects.filter(org=org, used__gt=0).exists()
    assert Send.objects.get().dedupe_key is None
    assert Event.objects.get().type == "sms.failed"
    assert AuditEntry.objects.get(action="sms.send").details["decision"] == "recipient_suppressed"


def test_suppression_is_decided_before_duplicate_and_quota(org, client, dispatched):
    org.monthly_quota_override = 0
    org.save(update_fields=["monthly_quota_override"])
    SuppressionFactory(org=org, phone_number=TO)
    assert post(client, org, {"to": TO, "body": "hi"}).json()["status"] == "failed"


def test_another_orgs_suppression_does_not_apply(org, other_org, client):
    SuppressionFactory(org=other_org, phone_number=TO)
    assert post(client, org, {"to": TO, "body": "hi"}).json()["status"] == "queued"


# --- 5: duplicates -------------------------------------------------------------------------------


def test_same_recipient_and_body_within_60s_is_stored_suppressed_recent_duplicate(
        org, client, dispatched, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, org, {"to": TO, "body": "same"})
        second = post(client, org, {"to": "(555) 123-4567", "body": "same"})
    assert first.json()["status"] == "queued"
    assert second.status_code == 202
    assert (second.json()["status"], second.json()["suppressed_reason"]) == ("suppressed", "recent_duplicate")
    assert dispatched == [first.json()["id"]]
    assert quota_status(org=org).used == 1
    dup = Send.objects.get(pk=second.json()["id"])
    assert dup.dedupe_key is None
    assert dup.status_changes.get().detail["duplicate_of"] == first.json()["id"]


def test_duplicate_is_decided_before_quota(org, client):
    assert post(client, org, {"to": TO, "body": "same"}).status_code == 202
    org.monthly_quota_override = 1
    org.save(update_fields=["monthly_quota_override"])
    assert post(client, org, {"to": TO, "body": "same"}).json()["status"] == "suppressed"


def test_different_body_or_recipient_is_not_a_duplicate(org, client):
    assert post(client, org, {"to": TO, "body": "one"}).json()["status"] == "queued"
    assert post(client, org, {"to": TO, "body": "two"}).json()["status"] == "queued"
    assert post(client, org, {"to": "+15551234568", "body": "one"}).json()["status"] == "queued"


def test_same_message_after_the_window_is_queued_again(org, client):
    first = post(client, org, {"to": TO, "body": "same"}).json()
    Send.objects.filter(pk=first["id"]).update(created_at=Send.objects.get(pk=first["id"]).created_at.replace(
        year=2000))
    assert post(client, org, {"to": TO, "body": "same"}).json()["status"] == "queued"


# --- 6: quota ------------------------------------------------------------------------------------


def test_quota_used_up_is_429_quota_exceeded_and_nothing_stored(org, client, dispatched):
    org.monthly_quota_override = 1
    org.save(update_fields=["monthly_quota_override"])
    assert post(client, org, {"to": TO, "body": "one"}).status_code == 202
    response = post(client, org, {"to": TO, "body": "two"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "quota_exceeded"
    assert response.json()["error"]["details"]["limit"] == 1
    assert Send.objects.count() == 1 and SendStatusChange.objects.count() == 1
    assert dispatched == [str(Send.objects.get().id)]  # the refused send's hand-off rolled back with it
    assert quota_status(org=org).used == 1
    assert SendDailyCount.objects.get().count == 1
    assert AuditEntry.objects.filter(details__decision="quota_exceeded").count() == 1


# --- Idempotency-Key -----------------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_first_send_and_stores_nothing_new(
        org, client, dispatched, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, org, {"to": TO, "body": "once"}, HTTP_IDEMPOTENCY_KEY="k-1")
        again = post(client, org, {"to": "(555) 123-4567", "body": "once"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Send.objects.count() == 1 and quota_status(org=org).used == 1
    assert dispatched == [first.json()["id"]]
    assert AuditEntry.objects.filter(action="sms.send").count() == 1


def test_same_idempotency_key_with_a_different_body_is_409(org, client):
    post(client, org, {"to": TO, "body": "once"}, HTTP_IDEMPOTENCY_KEY="k-1")
    response = post(client, org, {"to": TO, "body": "different"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Send.objects.count() == 1


def test_idempotency_replays_a_stored_duplicate_too(org, client):
    post(client, org, {"to": TO, "body": "x"})
    dup = post(client, org, {"to": TO, "body": "x"}, HTTP_IDEMPOTENCY_KEY="k-2").json()
    assert post(client, org, {"to": TO, "body": "x"}, HTTP_IDEMPOTENCY_KEY="k-2").json()["id"] == dup["id"]


def test_idempotency_keys_are_per_org(org, client, other_org, client_for):
    ProviderAccountFactory(org=other_org)
    other = client_for(ApiKeyFactory(org=other_org))
    a = post(client, org, {"to": TO, "body": "x"}, HTTP_IDEMPOTENCY_KEY="shared")
    b = post(other, other_org, {"to": TO, "body": "y"}, HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == b.status_code == 202 and a.json()["id"] != b.json()["id"]


def test_malformed_idempotency_key_is_400(org, client):
    response = post(client, org, {"to": TO, "body": "x"}, HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert Send.objects.count() == 0
