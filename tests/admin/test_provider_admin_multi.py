"""Dashboard → SMS → Provider for MessageBird and Sinch beside Twilio: add/edit forms with write-only
secrets, priority and enabled, webhook URLs to paste, health, Test connection against the fakes."""
import pytest
from django.urls import reverse

from audit.models import AuditEntry
from sms.models import ProviderAccount
from sms.services.failover import provider_record
from tests.fakes.fixtures import messagebird_account, sinch_account

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:sms_provideraccount_add")
LIST_URL = reverse("admin:sms_provideraccount_changelist")
MB_KEY, MB_SIGN = "mb_live_access_key_0123456789", "mb_signing_key_" + "9" * 40
SINCH_TOKEN, SINCH_SECRET = "sinch_api_token_abcdef0123", "sinch_callback_secret_xyz987"


def change_url(account):
    return reverse("admin:sms_provideraccount_change", args=[account.pk])


def test_changelist_offers_an_add_link_per_provider_and_shows_priority_and_health(login, admin_a, org_a,
                                                                                  fake_sinch, settings):
    settings.SMS_FAILOVER_MIN_ATTEMPTS = 1
    sinch_account(org_a, fake_sinch, priority=2)
    provider_record(org_id=org_a.pk, provider="sinch", ok=False)
    html = login(admin_a).get(LIST_URL).content.decode()
    for name in ("twilio", "messagebird", "sinch"):
        assert f'href="{ADD_URL}?provider={name}"' in html
    assert "demoted until" in html and "success 0%" in html


def test_add_messagebird_with_write_only_keys_then_edit_keeping_them(login, admin_a, org_a, settings):
    settings.SMS_PUBLIC_BASE_URL = "https://sms.example.com"
    client = login(admin_a)
    page = client.get(ADD_URL + "?provider=messagebird").content.decode()
    assert 'name="access_key"' in page and 'name="signing_key"' in page and 'type="password"' in page
    response = client.post(ADD_URL + "?provider=messagebird", {
        "org": org_a.pk, "access_key": MB_KEY, "signing_key": MB_SIGN, "sender": "Sendora", "priority": "2",
        "enabled": "1"})
    assert response.status_code == 302, response.content.decode()[:2000]
    account = ProviderAccount.objects.get(org=org_a, provider="messagebird")
    assert (account.from_number, account.priority, account.enabled) == ("Sendora", 2, True)
    assert account.secrets() == {"access_key": MB_KEY, "signing_key": MB_SIGN}
    html = client.get(change_url(account)).content.decode()
    assert MB_KEY not in html and MB_SIGN not in html
    assert f"https://sms.example.com/api/v1/sms/webhooks/messagebird/{org_a.pk}/status" in html
    assert f"https://sms.example.com/api/v1/sms/webhooks/messagebird/{org_a.pk}<" in html
    assert "Health: healthy" in html
    # Blank secrets keep the stored ones; the sender and the flag change.
    response = client.post(change_url(account), {"access_key": "", "signing_key": "", "sender": "+1 500 555 0010",
                                                 "priority": "", "enabled": "0"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.secrets() == {"access_key": MB_KEY, "signing_key": MB_SIGN}
    assert (account.from_number, account.priority, account.enabled) == ("+15005550010", 2, False)
    entries = AuditEntry.objects.filter(org_id=org_a.pk, action="provider_account.set")
    assert entries.count() == 2 and all(MB_KEY not in str(e.details) for e in entries)


def test_add_sinch_validates_and_never_echoes_a_secret(login, admin_a, org_a):
    client = login(admin_a)
    response = client.post(ADD_URL + "?provider=sinch", {
        "org": org_a.pk, "account_id": "plan1", "region": "eu", "api_token": SINCH_TOKEN, "callback_secret": "",
        "sender": "+15005550011"})
    html = response.content.decode()
    assert response.status_code == 200 and "Required the first time: callback_secret." in html
    assert SINCH_TOKEN not in html and not ProviderAccount.objects.filter(org=org_a).exists()
    response = client.post(ADD_URL + "?provider=sinch", {
        "org": org_a.pk, "account_id": "plan1", "region": "eu", "api_token": SINCH_TOKEN,
        "callback_secret": SINCH_SECRET, "sender": "+15005550011"})
    assert response.status_code == 302
    account = ProviderAccount.objects.get(org=org_a, provider="sinch")
    assert (account.account_sid, account.region, account.priority, account.enabled) == ("plan1", "eu", 1, True)


@pytest.mark.parametrize("name", ["messagebird", "sinch"])
def test_test_connection_uses_the_stored_secrets_against_the_provider(login, admin_a, org_a, name, request):
    fake = request.getfixturevalue(f"fake_{name}")
    account = (messagebird_account if name == "messagebird" else sinch_account)(org_a, fake)
    client = login(admin_a)
    response = client.post(reverse("admin:sms_provideraccount_test_connection", args=[account.pk]), follow=True)
    text = response.content.decode()
    assert "Connected to" in text
    for secret in account.secrets().values():
        assert secret not in text
    assert [r for r in fake.requests if r.method == "GET"]  # a cheap authenticated read


def test_an_org_with_a_twilio_account_can_still_add_the_other_providers(login, admin_a, org_a, fake_twilio):
    from tests.factories import ProviderAccountFactory

    ProviderAccountFactory(org=org_a)
    client = login(admin_a)
    assert f'value="{org_a.pk}"' not in client.get(ADD_URL + "?provider=twilio").content.decode()
    assert f'value="{org_a.pk}"' in client.get(ADD_URL + "?provider=sinch").content.decode()
