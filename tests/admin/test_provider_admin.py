"""Dashboard → SMS → Provider: the Twilio editor, the token's write-only rule, owned-number picker,
Test connection, and who may change credentials."""
import pytest
from django.urls import reverse

from audit.models import AuditEntry
from sms.models import ProviderAccount
from tests.admin.conftest import FAKE_SID, FAKE_TOKEN, OWNED_NUMBERS
from tests.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:sms_provideraccount_add")
NUMBERS_URL = reverse("admin:sms_provideraccount_numbers")


@pytest.fixture(autouse=True)
def no_cached_numbers():
    """“Load numbers” results are cached (this test run's own cache database): start each test without any."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def change_url(account):
    return reverse("admin:sms_provideraccount_change", args=[account.pk])


def configured(org, fake=None):
    """A ProviderAccount on org whose stored credentials are the fake's live account."""
    return ProviderAccountFactory(org=org, account_sid=FAKE_SID, auth_token=FAKE_TOKEN, from_number=OWNED_NUMBERS[0])


def test_add_page_has_write_only_token_field_with_keep_help(login, admin_a, fake_twilio):
    html = login(admin_a).get(ADD_URL).content.decode()
    assert 'type="password" name="auth_token"' in html
    assert "Leave blank to keep the current token." in html
    assert "Load numbers" in html


def test_saving_goes_through_the_service_encrypts_and_audits(login, admin_a, org_a, fake_twilio):
    client = login(admin_a)
    response = client.post(ADD_URL, {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN,
                                     "from_number": OWNED_NUMBERS[1]}, follow=True)
    assert response.status_code == 200
    account = ProviderAccount.objects.get(org=org_a)
    assert account.account_sid == FAKE_SID and account.from_number == OWNED_NUMBERS[1]
    assert FAKE_TOKEN not in account.auth_token_encrypted and account.auth_token() == FAKE_TOKEN
    entry = AuditEntry.objects.get(org_id=org_a.pk, action="provider_account.set")
    assert entry.actor_type == "user" and entry.actor_id == str(admin_a.pk)
    assert entry.details["auth_token_changed"] is True
    assert FAKE_TOKEN not in str(entry.details)
    assert FAKE_TOKEN not in response.content.decode()
    # The change page after saving never shows it either.
    assert FAKE_TOKEN not in client.get(change_url(account)).content.decode()


def test_manual_from_number_is_normalised_and_wins_over_the_list(login, admin_a, org_a, fake_twilio):
    login(admin_a).post(ADD_URL, {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN,
                                  "from_number": OWNED_NUMBERS[1], "from_number_manual": "(415) 555-0199"})
    assert ProviderAccount.objects.get(org=org_a).from_number == "+14155550199"


@pytest.mark.parametrize("data, field_error", [
    ({"account_sid": "AC123"}, "The Account SID must be &#x27;AC&#x27; followed by 32 hexadecimal characters."),
    ({"from_number": "", "from_number_manual": "not a number"}, "The From number is not a valid phone number."),
    ({"from_number": ""}, "Pick the From number from the list or enter it manually."),
    ({"auth_token": ""}, "An auth token is required the first time credentials are set."),
])
def test_validation_errors_are_shown_and_the_token_is_never_echoed(login, admin_a, org_a, fake_twilio, data,
                                                                    field_error):
    post = {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN, "from_number": OWNED_NUMBERS[0],
            **data}
    response = login(admin_a).post(ADD_URL, post)
    html = response.content.decode()
    assert response.status_code == 200
    assert field_error in html
    assert FAKE_TOKEN not in html
    assert not ProviderAccount.objects.filter(org=org_a).exists()
    assert not AuditEntry.objects.filter(action="provider_account.set").exists()


def test_change_page_never_calls_twilio_and_offers_loaded_numbers_for_a_while(login, admin_a, org_a, fake_twilio):
    account = configured(org_a)
    client = login(admin_a)
    html = client.get(change_url(account)).content.decode()
    assert not fake_twilio.requests_to("/IncomingPhoneNumbers.json")  # rendering alone asks Twilio nothing
    assert f'<option value="{OWNED_NUMBERS[0]}" selected>' in html  # the current number is still offered
    assert "Press “Load numbers”" in html and FAKE_TOKEN not in html
    # On demand: “Load numbers” (blank token = the stored one), then the page offers them — without asking again.
    loaded = client.post(NUMBERS_URL, {"object_id": account.pk, "account_sid": FAKE_SID, "auth_token": ""})
    assert loaded.json() == {"numbers": sorted(OWNED_NUMBERS)}
    for _ in range(3):
        html = client.get(change_url(account)).content.decode()
        for number in OWNED_NUMBERS:
            assert f'<option value="{number}"' in html
        client.post(NUMBERS_URL, {"object_id": account.pk, "account_sid": FAKE_SID, "auth_token": ""})
    assert len(fake_twilio.requests_to("/IncomingPhoneNumbers.json", "GET")) == 1  # cached


def test_loaded_numbers_expire_and_a_new_token_is_asked_again(login, admin_a, org_a, fake_twilio, settings):
    from django.core.cache import cache

    account = configured(org_a)
    client = login(admin_a)
    client.post(NUMBERS_URL, {"object_id": account.pk, "account_sid": FAKE_SID, "auth_token": ""})
    client.post(NUMBERS_URL, {"object_id": account.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN})
    assert len(fake_twilio.requests_to("/IncomingPhoneNumbers.json", "GET")) == 2  # typed token: its own entry
    cache.clear()  # as after NUMBERS_CACHE_SECONDS
    client.post(NUMBERS_URL, {"object_id": account.pk, "account_sid": FAKE_SID, "auth_token": ""})
    assert len(fake_twilio.requests_to("/IncomingPhoneNumbers.json", "GET")) == 3


@pytest.mark.django_db(transaction=True)
def test_twilio_is_never_called_inside_a_database_transaction(login, admin_a, org_a, fake_twilio, monkeypatch):
    """Spies on our own service (not the SDK): where the dashboard calls it, no transaction is open."""
    from django.db import connection

    from sms.admin import provider_accounts as module

    seen = []
    real = module.provider_account_list_numbers

    def spy(**kwargs):
        seen.append(connection.in_atomic_block)
        return real(**kwargs)

    monkeypatch.setattr(module, "provider_account_list_numbers", spy)
    account = configured(org_a)
    client = login(admin_a)
    client.get(change_url(account))
    client.post(change_url(account), {"account_sid": FAKE_SID, "auth_token": "", "from_number": OWNED_NUMBERS[1],
                                      "from_number_manual": ""})
    client.post(NUMBERS_URL, {"object_id": account.pk, "account_sid": FAKE_SID, "auth_token": ""})
    client.post(NUMBERS_URL, {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN})
    assert seen == [False, False]  # only the two “Load numbers” calls; the page and the save asked nothing


def test_load_numbers_explains_why_the_list_cannot_be_fetched(login, admin_a, org_a, fake_twilio):
    account = ProviderAccountFactory(org=org_a, account_sid=FAKE_SID, auth_token="wrong-token")
    client = login(admin_a)
    html = client.get(change_url(account)).content.decode()
    assert 'name="from_number_manual"' in html and "wrong-token" not in html
    response = client.post(NUMBERS_URL, {"object_id": account.pk, "account_sid": FAKE_SID, "auth_token": ""})
    assert response.status_code == 502
    assert "Twilio rejected the credentials (error 20003" in response.json()["error"]
    assert "wrong-token" not in response.content.decode()


def test_blank_token_keeps_the_stored_token(login, admin_a, org_a, fake_twilio):
    account = configured(org_a)
    response = login(admin_a).post(change_url(account), {"account_sid": FAKE_SID, "auth_token": "",
                                                         "from_number": OWNED_NUMBERS[2]})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.from_number == OWNED_NUMBERS[2]
    assert account.auth_token() == FAKE_TOKEN
    assert AuditEntry.objects.get(action="provider_account.set").details["auth_token_changed"] is False


def test_a_new_token_replaces_the_stored_one(login, admin_a, org_a, fake_twilio):
    account = configured(org_a)
    login(admin_a).post(change_url(account), {"account_sid": FAKE_SID, "auth_token": "rotated-token-123",
                                              "from_number": OWNED_NUMBERS[0]})
    account.refresh_from_db()
    assert account.auth_token() == "rotated-token-123"


def test_test_connection_reports_success(login, admin_a, org_a, fake_twilio):
    account = configured(org_a)
    url = reverse("admin:sms_provideraccount_test_connection", args=[account.pk])
    response = login(admin_a).post(url, follow=True)
    html = response.content.decode()
    assert "Connected to Twilio account “Acme Production”" in html
    assert fake_twilio.requests_to(f"/Accounts/{FAKE_SID}.json", "GET")


def test_test_connection_reports_twilios_error_in_plain_words(login, admin_a, org_a, fake_twilio):
    account = ProviderAccountFactory(org=org_a, account_sid=FAKE_SID, auth_token="stale-token")
    url = reverse("admin:sms_provideraccount_test_connection", args=[account.pk])
    html = login(admin_a).post(url, follow=True).content.decode()
    assert "Twilio rejected the credentials (error 20003: authentication failed)" in html
    assert "stale-token" not in html


def test_test_connection_when_twilio_is_unreachable(login, admin_a, org_a, settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    account = configured(org_a)
    url = reverse("admin:sms_provideraccount_test_connection", args=[account.pk])
    html = login(admin_a).post(url, follow=True).content.decode()
    assert "Could not connect to Twilio at http://127.0.0.1:9" in html


def test_test_connection_action_on_the_changelist(login, admin_a, org_a, fake_twilio):
    account = configured(org_a)
    response = login(admin_a).post(reverse("admin:sms_provideraccount_changelist"),
                                   {"action": "test_connection_action", "_selected_action": [account.pk]},
                                   follow=True)
    assert "Acme A: Connected to Twilio account" in response.content.decode()


def test_numbers_endpoint_lists_numbers_for_typed_credentials(login, admin_a, org_a, fake_twilio):
    response = login(admin_a).post(NUMBERS_URL, {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN})
    assert response.status_code == 200
    assert response.json() == {"numbers": sorted(OWNED_NUMBERS)}


def test_numbers_endpoint_explains_a_failure(login, admin_a, org_a, fake_twilio):
    response = login(admin_a).post(NUMBERS_URL, {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": "nope"})
    assert response.status_code == 502
    assert "error 20003" in response.json()["error"]
    response = login(admin_a).post(NUMBERS_URL, {"org": org_a.pk, "account_sid": "AC1", "auth_token": "x"})
    assert response.status_code == 400
    assert "32 hexadecimal" in response.json()["error"]


def test_numbers_endpoint_refuses_other_orgs_and_members(login, admin_a, member_a, org_a, org_b, fake_twilio):
    response = login(admin_a).post(NUMBERS_URL, {"org": org_b.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN})
    assert response.status_code == 400  # org B is not in alice's choices: "Choose the org first."
    response = login(member_a).post(NUMBERS_URL, {"org": org_a.pk, "account_sid": FAKE_SID,
                                                  "auth_token": FAKE_TOKEN})
    assert response.status_code in (400, 403)
    assert not fake_twilio.requests_to("/IncomingPhoneNumbers.json")


def test_member_sees_credentials_read_only_and_cannot_change_them(login, member_a, org_a, fake_twilio):
    account = configured(org_a)
    client = login(member_a)
    html = client.get(change_url(account)).content.decode()
    assert FAKE_SID in html
    assert 'name="auth_token"' not in html and 'name="account_sid"' not in html
    assert FAKE_TOKEN not in html
    response = client.post(change_url(account), {"account_sid": FAKE_SID, "auth_token": "hijack",
                                                 "from_number": OWNED_NUMBERS[1]})
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.auth_token() == FAKE_TOKEN and account.from_number == OWNED_NUMBERS[0]
    assert client.get(ADD_URL).status_code == 403


def test_staff_of_another_org_gets_404_on_the_account(login, admin_b, org_a, fake_twilio):
    account = configured(org_a)
    client = login(admin_b)
    assert client.get(change_url(account)).status_code == 404
    assert client.post(reverse("admin:sms_provideraccount_test_connection", args=[account.pk])).status_code == 404
    changelist = client.get(reverse("admin:sms_provideraccount_changelist")).content.decode()
    assert FAKE_SID not in changelist


def test_add_form_offers_only_own_orgs_without_credentials(login, admin_a, org_a, org_b, superuser):
    html = login(admin_a).get(ADD_URL).content.decode()
    assert f'value="{org_a.pk}"' in html and f'value="{org_b.pk}"' not in html
    # Posting another org's id is refused as an invalid choice.
    response = login(admin_a).post(ADD_URL, {"org": org_b.pk, "account_sid": FAKE_SID, "auth_token": "t",
                                             "from_number_manual": "+15551234567"})
    assert "Select a valid choice" in response.content.decode()
    assert not ProviderAccount.objects.filter(org=org_b).exists()


def test_the_token_never_reaches_the_logs(login, admin_a, org_a, fake_twilio, caplog):
    caplog.set_level("DEBUG")
    client = login(admin_a)
    client.post(ADD_URL, {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN,
                          "from_number": OWNED_NUMBERS[0]})
    account = ProviderAccount.objects.get(org=org_a)
    client.get(change_url(account))
    client.post(reverse("admin:sms_provideraccount_test_connection", args=[account.pk]))
    client.post(NUMBERS_URL, {"org": org_a.pk, "account_sid": FAKE_SID, "auth_token": FAKE_TOKEN})
    assert caplog.records  # the SDK did log its requests…
    assert FAKE_TOKEN not in caplog.text  # …but never the token


def test_admin_views_mark_the_token_as_a_sensitive_post_parameter(login, admin_a, org_a, fake_twilio):
    """Django's error reports (DEBUG page, mail_admins) then show the token as stars."""
    response = login(admin_a).post(ADD_URL, {"org": org_a.pk, "account_sid": "bad", "auth_token": FAKE_TOKEN})
    # Every provider's secrets (the add page serves all three forms).
    assert set(response.wsgi_request.sensitive_post_parameters) == {
        "auth_token", "access_key", "signing_key", "api_token", "callback_secret"}
    response = login(admin_a).post(NUMBERS_URL, {"org": org_a.pk, "account_sid": "bad", "auth_token": FAKE_TOKEN})
    assert response.wsgi_request.sensitive_post_parameters == ("auth_token",)
