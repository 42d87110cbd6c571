"""Every authentication/permission outcome of the API contract (README.md, /api/schema) "Conventions", through real endpoints:
GET …/sms/sends (an SMS endpoint, any secret key) and GET …/audit-log (admin keys only)."""
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orgs import key_cache
from orgs.models import ApiKey, KeyMode, Role
from orgs.plans import Plan
from orgs.services import LAST_USED_RESOLUTION_SECONDS, api_key_revoke
from tests.factories import ApiKeyFactory, OrgFactory

pytestmark = pytest.mark.django_db


def sends_url(org) -> str:
    return f"/api/v1/orgs/{org.pk}/sms/sends"


def audit_url(org) -> str:
    return f"/api/v1/orgs/{org.pk}/audit-log"


def error_code(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


# --- 401 -----------------------------------------------------------------------------------------------

def test_missing_key_is_401_unauthenticated_with_www_authenticate(org, api_client):
    response = api_client.get(sends_url(org))
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_of_the_right_shape_is_401(org, api_client):
    response = api_client.get(sends_url(org), HTTP_X_API_KEY="sk_test_" + "A" * 32)
    assert response.status_code == 401 and error_code(response) == "unauthenticated"


def test_revoked_key_is_401(org, admin_key, client_for):
    client = client_for(admin_key)
    assert client.get(sends_url(org)).status_code == 200
    api_key_revoke(api_key=admin_key)
    response = client.get(sends_url(org))
    assert response.status_code == 401 and error_code(response) == "unauthenticated"


@pytest.mark.parametrize("raw", [
    "",
    "   ",
    "garbage",
    "sk_test_",
    "sk_live_" + "a" * 32,
    "sk_test_" + "a" * 32 + "!",
    "sk_test_" + "é" * 32,
    "sk_test_\x00\x01\x02" + "a" * 29,
    "sk_test_" + "\udcff" * 8,
    "\xff\xfe\xfd",
    "sk_test_" + "a" * 100_000,
    "Bearer sk_test_" + "a" * 32,
])
def test_malformed_odd_byte_or_huge_key_is_401_not_500(org, api_client, raw):
    response = api_client.get(sends_url(org), HTTP_X_API_KEY=raw)
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token sk_test_abc", "bearer\x00x"])
def test_authorization_header_that_is_not_a_bearer_key_is_401(org, api_client, header):
    response = api_client.get(sends_url(org), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and error_code(response) == "unauthenticated"


def test_repeated_bad_keys_from_one_address_are_throttled_with_retry_after(org, api_client, settings):
    settings.API_BAD_KEY_RATE = "3/m"
    for _ in range(3):
        assert api_client.get(sends_url(org), HTTP_X_API_KEY="sk_test_" + "B" * 32).status_code == 401
    response = api_client.get(sends_url(org), HTTP_X_API_KEY="sk_test_" + "B" * 32)
    assert response.status_code == 429 and error_code(response) == "rate_limited"
    assert int(response["Retry-After"]) > 0


# --- accepted forms of the key --------------------------------------------------------------------------

def test_x_api_key_header_is_accepted(org, admin_key, api_client):
    assert api_client.get(sends_url(org), HTTP_X_API_KEY=admin_key.raw_key).status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_authorization_bearer_is_accepted_case_insensitively(org, admin_key, api_client, scheme):
    response = api_client.get(sends_url(org), HTTP_AUTHORIZATION=f"{scheme} {admin_key.raw_key}")
    assert response.status_code == 200


def test_surrounding_whitespace_around_the_key_is_ignored(org, admin_key, api_client):
    assert api_client.get(sends_url(org), HTTP_X_API_KEY=f"  {admin_key.raw_key}  ").status_code == 200


def test_x_api_key_wins_over_authorization_when_both_are_sent(org, admin_key, api_client):
    response = api_client.get(sends_url(org), HTTP_X_API_KEY=admin_key.raw_key,
                              HTTP_AUTHORIZATION="Bearer sk_test_" + "Z" * 32)
    assert response.status_code == 200


@pytest.mark.parametrize("mode", [KeyMode.PROD, KeyMode.TEST])
def test_secret_keys_of_both_modes_and_both_roles_may_call_sms_endpoints(org, client_for, mode):
    for role in (Role.ADMIN, Role.MEMBER):
        key = ApiKeyFactory(org=org, role=role, mode=mode)
        assert client_for(key).get(sends_url(org)).status_code == 200


# --- last_used_at -------------------------------------------------------------------------------------

def test_a_successful_request_touches_last_used_at(org, admin_key, client_for):
    assert admin_key.last_used_at is None
    before = timezone.now()
    client_for(admin_key).get(sends_url(org))
    admin_key.refresh_from_db()
    assert admin_key.last_used_at is not None and admin_key.last_used_at >= before


def test_last_used_at_is_written_at_most_once_per_resolution_window(org, admin_key, client_for):
    recent = timezone.now() - timedelta(seconds=LAST_USED_RESOLUTION_SECONDS // 2)
    ApiKey.objects.filter(pk=admin_key.pk).update(last_used_at=recent)
    client_for(admin_key).get(sends_url(org))
    admin_key.refresh_from_db()
    assert admin_key.last_used_at == recent
    stale = timezone.now() - timedelta(seconds=LAST_USED_RESOLUTION_SECONDS + 5)
    ApiKey.objects.filter(pk=admin_key.pk).update(last_used_at=stale)
    key_cache.clear()  # a raw UPDATE bypasses the ORM signals: as if written by another process, 1 s ago
    client_for(admin_key).get(sends_url(org))
    admin_key.refresh_from_db()
    assert admin_key.last_used_at > stale + timedelta(seconds=5)


def test_a_rejected_key_does_not_touch_last_used_at(org, admin_key, api_client):
    api_key_revoke(api_key=admin_key)
    api_client.get(sends_url(org), HTTP_X_API_KEY=admin_key.raw_key)
    admin_key.refresh_from_db()
    assert admin_key.last_used_at is None


# --- 403 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [KeyMode.PROD, KeyMode.TEST])
def test_publishable_key_is_403_secret_key_required(org, client_for, mode):
    key = ApiKeyFactory(org=org, role=Role.ADMIN, mode=mode, publishable=True)
    assert key.raw_key.startswith(f"pk_{mode}_")
    for url in (sends_url(org), audit_url(org)):
        response = client_for(key).get(url)
        assert response.status_code == 403 and error_code(response) == "secret_key_required"


def test_member_key_on_an_admin_endpoint_is_403_admin_required(org, member_key, admin_key, client_for):
    response = client_for(member_key).get(audit_url(org))
    assert response.status_code == 403 and error_code(response) == "admin_required"
    assert client_for(admin_key).get(audit_url(org)).status_code == 200


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MEMBER])
def test_free_plan_is_403_plan_upgrade_required_on_sms_endpoints(client_for, role):
    free = OrgFactory(plan=Plan.FREE)
    key = ApiKeyFactory(org=free, role=role)
    response = client_for(key).get(sends_url(free))
    assert response.status_code == 403 and error_code(response) == "plan_upgrade_required"


def test_free_plan_admin_may_still_read_its_audit_log(client_for):
    free = OrgFactory(plan=Plan.FREE)
    assert client_for(ApiKeyFactory(org=free, role=Role.ADMIN)).get(audit_url(free)).status_code == 200


# --- 404 org_not_found --------------------------------------------------------------------------------

def test_org_in_path_that_is_not_the_keys_is_404_org_not_found(org, other_org, admin_key, client_for):
    for url in (sends_url(other_org), audit_url(other_org)):
        response = client_for(admin_key).get(url)
        assert response.status_code == 404 and error_code(response) == "org_not_found"


def test_unknown_org_id_answers_exactly_like_another_tenants_org(org, other_org, admin_key, client_for):
    client = client_for(admin_key)
    theirs = client.get(sends_url(other_org)).json()
    nobody = client.get(f"/api/v1/orgs/{uuid.uuid4()}/sms/sends").json()
    assert theirs == nobody


@pytest.mark.parametrize("bad", ["not-a-uuid", "1", "%00", "x" * 300])
def test_malformed_org_id_in_path_is_404_org_not_found(admin_key, client_for, bad):
    response = client_for(admin_key).get(f"/api/v1/orgs/{bad}/sms/sends")
    assert response.status_code == 404 and error_code(response) == "org_not_found"


# --- order of the checks -------------------------------------------------------------------------------

def test_another_orgs_path_beats_every_403(org, other_org, client_for):
    """Nothing about another tenant is revealed: 404 before publishable/plan/admin checks."""
    free_org = OrgFactory(plan=Plan.FREE)
    publishable = ApiKeyFactory(org=free_org, role=Role.MEMBER, publishable=True)
    response = client_for(publishable).get(audit_url(other_org))
    assert response.status_code == 404 and error_code(response) == "org_not_found"


def test_publishable_is_reported_before_plan_and_role(client_for):
    free_org = OrgFactory(plan=Plan.FREE)
    key = ApiKeyFactory(org=free_org, role=Role.MEMBER, publishable=True)
    assert error_code(client_for(key).get(sends_url(free_org))) == "secret_key_required"


def test_unauthenticated_is_reported_before_anything_about_the_path(api_client):
    response = api_client.get(f"/api/v1/orgs/{uuid.uuid4()}/audit-log")
    assert response.status_code == 401 and error_code(response) == "unauthenticated"


def test_a_key_works_only_through_its_own_client(org, admin_key):
    """Credentials are per request: a client without the header is not authenticated by a previous one."""
    client = APIClient()
    assert client.get(sends_url(org), HTTP_X_API_KEY=admin_key.raw_key).status_code == 200
    assert client.get(sends_url(org)).status_code == 401
