"""/api/v1/orgs/{org}/sms/suppressions — add (admin), list (any secret key), remove (admin); every code."""
import datetime as dt
import json

import pytest
from django.utils import timezone

from audit.models import ActorType, AuditEntry
from orgs.models import KeyMode, Role
from orgs.plans import Plan
from sms.models import Suppression, SuppressionReason
from tests.factories import ApiKeyFactory, OrgFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

PHONE = "+15551234567"


def base(org_id) -> str:
    return f"/api/v1/orgs/{org_id}/sms/suppressions"


@pytest.fixture
def admin_key(org):
    """Changing the list needs a LIVE admin key (a test key may only read it: 403 live_key_required,
    tests/api/test_test_and_live_modes.py)."""
    return ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.PROD)


@pytest.fixture
def admin(admin_key, client_for):
    return client_for(admin_key)


@pytest.fixture
def member(member_key, client_for):
    return client_for(member_key)


def create(client, org, payload):
    return client.post(base(org.pk), json.dumps(payload), content_type="application/json")


def error_code(response):
    return response.json()["error"]["code"]


# --- POST ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["phoneNumber", "phone_number"])
def test_admin_adds_a_number_and_gets_201_with_the_suppression(org, admin, admin_key, field):
    response = create(admin, org, {field: "(555) 123-4567"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"phone_number", "reason", "source", "source_message_sid", "created_at"}
    assert (body["phone_number"], body["reason"], body["source"], body["source_message_sid"]) == (
        PHONE, "manual", "api", None)
    assert Suppression.objects.get(org=org).phone_number == PHONE
    entry = AuditEntry.objects.get(org=org, action="suppression.create")
    assert (entry.actor_type, entry.actor_id, entry.resource_id) == (ActorType.API_KEY, str(admin_key.pk), PHONE)
    assert entry.details["reason"] == "manual"


def test_reason_is_stored_when_valid(org, admin):
    assert create(admin, org, {"phoneNumber": PHONE, "reason": "user_request"}).json()["reason"] == "user_request"


def test_unknown_reason_is_400_invalid_reason(org, admin):
    response = create(admin, org, {"phoneNumber": PHONE, "reason": "because"})
    assert response.status_code == 400
    assert error_code(response) == "invalid_reason"
    assert not Suppression.objects.exists()


def test_invalid_phone_is_400_invalid_phone_number(org, admin):
    response = create(admin, org, {"phoneNumber": "call me maybe"})
    assert response.status_code == 400
    assert error_code(response) == "invalid_phone_number"


@pytest.mark.parametrize("payload", [{}, {"phone": PHONE}, {"phoneNumber": 15551234567},
                                     {"phoneNumber": PHONE, "phone_number": PHONE}, ["+15551234567"]])
def test_malformed_body_is_400_validation_error(org, admin, payload):
    response = create(admin, org, payload)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


def test_body_that_is_not_json_is_400(org, admin):
    response = admin.post(base(org.pk), "{nope", content_type="application/json")
    assert response.status_code == 400


def test_adding_an_already_suppressed_number_is_409_and_keeps_the_original(org, admin):
    SuppressionFactory(org=org, phone_number=PHONE, reason=SuppressionReason.STOP_KEYWORD)
    response = create(admin, org, {"phoneNumber": "+1 555-123-4567"})
    assert response.status_code == 409
    assert error_code(response) == "already_suppressed"
    assert Suppression.objects.get().reason == SuppressionReason.STOP_KEYWORD
    assert not AuditEntry.objects.filter(action="suppression.create").exists()


def test_member_key_cannot_add_403_admin_required(org, member):
    response = create(member, org, {"phoneNumber": PHONE})
    assert response.status_code == 403
    assert error_code(response) == "admin_required"
    assert not Suppression.objects.exists()


def test_publishable_key_is_403_secret_key_required(org, client_for):
    key = ApiKeyFactory(org=org, role=Role.ADMIN, publishable=True)
    assert error_code(create(client_for(key), org, {"phoneNumber": PHONE})) == "secret_key_required"
    assert error_code(client_for(key).get(base(org.pk))) == "secret_key_required"


def test_free_plan_is_403_plan_upgrade_required(client_for):
    org = OrgFactory(plan=Plan.FREE)
    key = ApiKeyFactory(org=org, role=Role.ADMIN)
    response = create(client_for(key), org, {"phoneNumber": PHONE})
    assert response.status_code == 403 and error_code(response) == "plan_upgrade_required"


def test_no_key_is_401(org, api_client):
    assert api_client.post(base(org.pk), {"phoneNumber": PHONE}, format="json").status_code == 401
    assert api_client.get(base(org.pk)).status_code == 401
    assert api_client.delete(f"{base(org.pk)}/%2B15551234567").status_code == 401


def test_another_orgs_path_is_404_org_not_found(org, other_org, admin):
    response = create(admin, other_org, {"phoneNumber": PHONE})
    assert response.status_code == 404 and error_code(response) == "org_not_found"
    assert admin.get(base(other_org.pk)).status_code == 404
    assert error_code(admin.delete(f"{base(other_org.pk)}/{PHONE}")) == "org_not_found"


def test_prod_admin_key_may_add(org, client_for):
    key = ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.PROD)
    assert create(client_for(key), org, {"phoneNumber": PHONE}).status_code == 201


# --- GET -----------------------------------------------------------------------------------------


def test_member_key_lists_newest_first(org, member, other_org):
    old = SuppressionFactory(org=org, phone_number="+15551230001")
    new = SuppressionFactory(org=org, phone_number="+15551230002")
    Suppression.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    SuppressionFactory(org=other_org, phone_number="+15551230003")
    response = member.get(base(org.pk))
    assert response.status_code == 200
    body = response.json()
    assert [row["phone_number"] for row in body["data"]] == [new.phone_number, old.phone_number]
    assert body["next_cursor"] is None


def test_list_is_cursor_paginated_without_gaps_or_repeats(org, member):
    numbers = {SuppressionFactory(org=org).phone_number for _ in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        response = member.get(base(org.pk), {"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        body = response.json()
        seen += [row["phone_number"] for row in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert len(seen) == 7 and set(seen) == numbers


@pytest.mark.parametrize("params,code", [({"limit": 0}, "invalid_limit"), ({"cursor": "garbage!"}, "invalid_cursor"),
                                         ({"reason": "nope"}, "invalid_filter"), ({"phone": "abc"}, "invalid_filter")])
def test_bad_list_params_are_400(org, member, params, code):
    response = member.get(base(org.pk), params)
    assert response.status_code == 400 and error_code(response) == code


def test_list_filters_by_reason_and_by_phone_in_any_format(org, member):
    SuppressionFactory(org=org, phone_number=PHONE, reason=SuppressionReason.STOP_KEYWORD)
    SuppressionFactory(org=org, phone_number="+15551230009", reason=SuppressionReason.MANUAL)
    by_reason = member.get(base(org.pk), {"reason": "stop_keyword"}).json()["data"]
    assert [row["phone_number"] for row in by_reason] == [PHONE]
    by_phone = member.get(base(org.pk), {"phone": "(555) 123-4567"}).json()["data"]
    assert [row["reason"] for row in by_phone] == ["stop_keyword"]
    # An unencoded "+" in a query string arrives as a space.
    assert len(member.get(f"{base(org.pk)}?phone=+15551234567").json()["data"]) == 1


# --- DELETE --------------------------------------------------------------------------------------


@pytest.mark.parametrize("phone_in_path", ["%2B15551234567", "+15551234567", "%252B15551234567"])
def test_admin_removes_a_number_url_encoded_or_raw(org, admin, admin_key, phone_in_path):
    SuppressionFactory(org=org, phone_number=PHONE, reason=SuppressionReason.STOP_KEYWORD)
    response = admin.delete(f"{base(org.pk)}/{phone_in_path}")
    assert response.status_code == 204
    assert not Suppression.objects.exists()
    entry = AuditEntry.objects.get(org=org, action="suppression.delete")
    assert (entry.actor_id, entry.resource_id, entry.details["reason"]) == (str(admin_key.pk), PHONE, "stop_keyword")


def test_removing_a_number_not_on_the_list_is_404_not_suppressed(org, admin, other_org):
    SuppressionFactory(org=other_org, phone_number=PHONE)
    response = admin.delete(f"{base(org.pk)}/%2B15551234567")
    assert response.status_code == 404 and error_code(response) == "not_suppressed"
    assert Suppression.objects.filter(org=other_org).exists()


def test_removing_with_a_bad_number_is_400(org, admin):
    response = admin.delete(f"{base(org.pk)}/not-a-number")
    assert response.status_code == 400 and error_code(response) == "invalid_phone_number"


def test_member_key_cannot_remove_403_admin_required(org, member):
    SuppressionFactory(org=org, phone_number=PHONE)
    response = member.delete(f"{base(org.pk)}/%2B15551234567")
    assert response.status_code == 403 and error_code(response) == "admin_required"
    assert Suppression.objects.exists()


def test_add_remove_add_each_write_an_audit_entry(org, admin):
    assert create(admin, org, {"phoneNumber": PHONE}).status_code == 201
    assert admin.delete(f"{base(org.pk)}/%2B15551234567").status_code == 204
    assert create(admin, org, {"phoneNumber": PHONE}).status_code == 201
    assert list(AuditEntry.objects.filter(org=org, action__startswith="suppression.").order_by("created_at", "id").values_list("action", flat=True)) == [
        "suppression.create", "suppression.delete", "suppression.create"]


# --- suppression on the send path ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [KeyMode.TEST, KeyMode.PROD])
def test_number_added_through_the_api_ends_failed_when_sent_to_with_test_or_prod_key(
        org, admin, provider_account, client_for, monkeypatch, mode):
    from sms import tasks

    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: pytest.fail("dispatched"))
    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)
    assert create(admin, org, {"phoneNumber": PHONE}).status_code == 201
    sender = client_for(ApiKeyFactory(org=org, role=Role.MEMBER, mode=mode))
    response = sender.post(f"/api/v1/orgs/{org.pk}/sms/send", json.dumps({"to": PHONE, "body": "hi"}),
                           content_type="application/json")
    assert response.status_code == 202
    assert response.json()["status"] == "failed" and response.json()["metadata"]["suppressed"] is True
    # Removed again → the next send goes out.
    assert admin.delete(f"{base(org.pk)}/{PHONE}").status_code == 204
    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: None)
    again = sender.post(f"/api/v1/orgs/{org.pk}/sms/send", json.dumps({"to": PHONE, "body": "hi again"}),
                        content_type="application/json")
    assert again.json()["status"] == "queued"


def test_openapi_schema_documents_the_suppression_endpoints(api_client):
    schema = api_client.get("/api/schema?format=json").json()
    ops = schema["paths"]["/api/v1/orgs/{org_id}/sms/suppressions"]
    assert {"get", "post"} <= set(ops)
    assert {"201", "400", "403", "409"} <= set(ops["post"]["responses"])
    delete = schema["paths"]["/api/v1/orgs/{org_id}/sms/suppressions/{phone}"]["delete"]
    assert {"204", "403", "404"} <= set(delete["responses"])
