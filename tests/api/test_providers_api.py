"""GET /orgs/{org}/sms/providers and the provider health in /health details; decision 2 with several
accounts (412 until one is enabled); the send object names the provider that carried it."""
import pytest

from orgs.models import KeyMode, Role
from sms.services.failover import provider_record
from tests.factories import ApiKeyFactory, ProviderAccountFactory
from tests.fakes.fixtures import messagebird_account, sinch_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_live(org):
    return ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.PROD)


def test_lists_every_account_by_priority_with_health_and_webhook_urls_never_a_secret(
        org, admin_live, client_for, fake_messagebird, fake_sinch, settings):
    settings.SMS_PUBLIC_BASE_URL = "https://sms.example.com"
    settings.SMS_FAILOVER_MIN_ATTEMPTS = 2
    sinch = sinch_account(org, fake_sinch, priority=1)
    mb = messagebird_account(org, fake_messagebird, priority=2, enabled=False)
    twilio = ProviderAccountFactory(org=org, priority=1)
    for _ in range(2):
        provider_record(org_id=org.pk, provider="sinch", ok=False)
    response = client_for(admin_live).get(f"/api/v1/orgs/{org.pk}/sms/providers")
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [(a["provider"], a["priority"], a["enabled"]) for a in body["data"]] == [
        ("sinch", 1, True), ("twilio", 1, True), ("messagebird", 2, False)]
    by = {a["provider"]: a for a in body["data"]}
    assert by["twilio"]["health"] == {"state": "healthy", "demoted_until": None, "success_rate": None}
    assert by["sinch"]["health"]["state"] == "demoted" and by["sinch"]["health"]["success_rate"] == 0.0
    assert by["sinch"]["health"]["demoted_until"].endswith("Z")
    assert by["messagebird"]["webhook_urls"] == {
        "inbound": f"https://sms.example.com/api/v1/sms/webhooks/messagebird/{org.pk}",
        "status": f"https://sms.example.com/api/v1/sms/webhooks/messagebird/{org.pk}/status"}
    assert by["sinch"]["sender"] == sinch.from_number and by["messagebird"]["sender"] == mb.from_number
    text = response.content.decode()
    for secret in [*sinch.secrets().values(), *mb.secrets().values(), twilio.auth_token()]:
        assert secret not in text


def test_members_and_other_orgs_cannot_list(org, other_org, client_for, admin_live):
    member = ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    assert client_for(member).get(f"/api/v1/orgs/{org.pk}/sms/providers").json()["error"]["code"] == "admin_required"
    response = client_for(admin_live).get(f"/api/v1/orgs/{other_org.pk}/sms/providers")
    assert response.status_code == 404 and response.json()["error"]["code"] == "org_not_found"


def test_412_until_an_account_is_enabled_and_the_send_names_its_provider(org, admin_live, client_for,
                                                                         fake_messagebird, fake_sinch):
    mb = messagebird_account(org, fake_messagebird, priority=1, enabled=False)
    send = client_for(admin_live).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "+15551230009", "body": "x"},
                                       format="json")
    assert send.status_code == 412 and send.json()["error"]["code"] == "provider_not_configured"
    sinch_account(org, fake_sinch, priority=2)
    send = client_for(admin_live).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "+15551230009", "body": "x"},
                                       format="json")
    assert send.status_code == 202 and send.json()["provider"] == "sinch"
    mb.enabled = True
    mb.save()
    send = client_for(admin_live).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "+15551230010", "body": "y"},
                                       format="json")
    assert send.status_code == 202 and (send.json()["provider"], send.json()["from"]) == ("messagebird", mb.from_number)


def test_health_details_summarise_providers_without_naming_orgs(client, org, fake_sinch, settings):
    settings.SMS_FAILOVER_MIN_ATTEMPTS = 1
    sinch_account(org, fake_sinch)
    provider_record(org_id=org.pk, provider="sinch", ok=False)
    body = client.get("/health").json()
    assert body["details"]["providers"] == {"sinch": {"accounts": 1, "demoted": 1, "success_rate": 0.0}}
    assert str(org.pk) not in str(body) and org.name not in str(body)
