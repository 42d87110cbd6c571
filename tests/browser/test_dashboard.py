"""The dashboard as a person uses it: a real Chromium against the live server, Twilio faked over HTTP.

Screenshots of every step land in test-artifacts/browser/ (gitignored)."""
import datetime as dt
import re

import pytest
from django.utils import timezone

from orgs.models import Role
from sms.models import EventType, ProviderAccount, SendDailyCount, Suppression
from sms.statuses import SendStatus
from tests.factories import (
    EventFactory,
    MembershipFactory,
    OrgFactory,
    ProviderAccountFactory,
    SendFactory,
    SendStatusChangeFactory,
    UserFactory,
)
from tests.fakes.twilio_server import FakeTwilio

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
SID = "AC" + "cd" * 16
TOKEN = "browser_live_token_a1b2c3d4e5f6a7b8"
NUMBERS = ["+15005550006", "+14155550100", "+14155550101"]


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio() as fake:
        fake.add_account(SID, TOKEN, numbers=NUMBERS, friendly_name="Acme Production")
        settings.TWILIO_API_BASE_URL = fake.base_url
        yield fake


@pytest.fixture
def org():
    return OrgFactory(name="Acme Browser")


@pytest.fixture
def operator(org):
    """A staff user who is an admin of `org` (not a superuser)."""
    return MembershipFactory(org=org, role=Role.ADMIN, user=UserFactory(username="operator")).user


def log_in(page, live_server, shot):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    shot(page, "login")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "Sendora SMS dashboard" in page.inner_text("#site-name")
    shot(page, "dashboard")


def success_message(page) -> str:
    return page.inner_text("ul.messagelist")


def test_configure_provider_pick_owned_number_and_test_connection(page, live_server, shot, org, operator,
                                                                  fake_twilio):
    log_in(page, live_server, shot)
    page.click("text=Provider")
    page.click("#add-twilio")  # one "Add" per provider (Twilio, MessageBird, Sinch)
    page.select_option("#id_org", str(org.pk))
    page.fill("#id_account_sid", SID)
    page.fill("#id_auth_token", TOKEN)
    page.click("#load-numbers")
    page.wait_for_selector(f"#id_from_number option[value='{NUMBERS[1]}']", state="attached")
    assert "3 number(s) loaded." in page.inner_text("#numbers-status")
    page.select_option("#id_from_number", NUMBERS[1])
    shot(page, "provider-form-filled")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    shot(page, "provider-saved")
    account = ProviderAccount.objects.get(org=org)
    assert account.from_number == NUMBERS[1] and account.auth_token() == TOKEN
    assert TOKEN not in page.content()

    page.click(f"text={SID}")
    assert page.input_value("#id_auth_token") == ""  # write-only: never filled in
    assert page.eval_on_selector("#id_from_number", "el => el.value") == NUMBERS[1]
    page.click("#test-connection")
    page.wait_for_selector("ul.messagelist")
    assert "Connected to Twilio account “Acme Production”" in success_message(page)
    assert TOKEN not in page.content()
    shot(page, "test-connection-ok")


def test_test_connection_shows_twilios_error(page, live_server, shot, org, operator, fake_twilio):
    ProviderAccountFactory(org=org, account_sid=SID, auth_token="revoked-token", from_number=NUMBERS[0])
    log_in(page, live_server, shot)
    page.goto(f"{live_server.url}/admin/sms/provideraccount/")
    page.click("#result_list tbody th a")
    page.click("#load-numbers")  # numbers are fetched on demand, never on render
    page.wait_for_function("document.getElementById('numbers-status').textContent.includes('Could not fetch')")
    assert "error 20003" in page.inner_text("#numbers-status")  # manual entry fallback, with the reason
    page.click("#test-connection")
    page.wait_for_selector("ul.messagelist")
    assert "Twilio rejected the credentials (error 20003" in success_message(page)
    shot(page, "test-connection-error")


def test_add_and_remove_a_suppression(page, live_server, shot, org, operator):
    log_in(page, live_server, shot)
    page.click("text=Suppressions")
    shot(page, "suppressions-list")
    page.click(".object-tools a[href$='/add/']")
    page.select_option("#id_org", str(org.pk))
    page.fill("#id_phone_number", "(415) 555-0142")
    shot(page, "suppression-add")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    assert "+14155550142" in page.inner_text("#result_list")
    shot(page, "suppression-listed")
    assert Suppression.objects.filter(org=org, phone_number="+14155550142").exists()

    page.click("#result_list tbody th a")
    page.wait_for_selector(".submit-row")
    shot(page, "suppression-detail")
    page.click(".submit-row a.deletelink")
    shot(page, "suppression-confirm-delete")
    page.click("input[type=submit]")
    page.wait_for_selector("ul.messagelist")
    shot(page, "suppression-removed")
    assert not Suppression.objects.filter(org=org, phone_number="+14155550142").exists()


def test_open_a_sends_timeline(page, live_server, shot, org, operator):
    send = SendFactory(org=org, to="+14155550177", status=SendStatus.DELIVERED, body="Your code is 482910")
    SendStatusChangeFactory(send=send, status=SendStatus.QUEUED, source="api")
    SendStatusChangeFactory(send=send, status=SendStatus.SENT, source="worker")
    SendStatusChangeFactory(send=send, status=SendStatus.DELIVERED, source="callback")
    EventFactory(org=org, send=send, type=EventType.DELIVERED)
    log_in(page, live_server, shot)
    page.click("text=Sends")
    page.fill("#searchbar", "415-555-0177")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    shot(page, "sends-search")
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("text=Status timeline")
    timeline = page.inner_text("#status_changes-group")
    assert re.search(r"Queued.*api.*Sent.*worker.*Delivered.*callback", timeline, re.S)
    assert "sms.delivered" in page.inner_text("#events-group")
    assert page.locator("input[name=_save]").count() == 0
    shot(page, "send-timeline")


def test_stats_page_draws_the_chart(page, live_server, shot, org, operator):
    today = timezone.now().astimezone(dt.timezone.utc).date()
    for days_ago, status, n in [(0, "delivered", 12), (0, "failed", 2), (1, "delivered", 7), (5, "queued", 3)]:
        SendDailyCount.objects.create(org=org, day=today - dt.timedelta(days=days_ago), category="transactional",
                                      status=status, count=n, segments=n)
    log_in(page, live_server, shot)
    page.click("text=Stats")  # the app list entry; one org → straight to its page
    page.wait_for_selector("svg#sends-chart")
    bars = page.locator("svg#sends-chart rect.bar")
    assert bars.count() == 4
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert all(h > 0 for h in heights)
    assert page.inner_text("#stat-total") == "24"
    assert page.inner_text("#stat-delivery-rate") == "90.5%"
    shot(page, "stats")


def test_configure_sinch_beside_twilio_see_webhook_urls_and_test_connection(page, live_server, shot, org, operator,
                                                                           fake_sinch, settings):
    settings.SMS_PUBLIC_BASE_URL = live_server.url
    plan, token, secret = fake_sinch.add_plan()
    log_in(page, live_server, shot)
    page.click("text=Provider")
    page.click("#add-sinch")
    page.select_option("#id_org", str(org.pk))
    page.fill("#id_account_id", plan)
    page.select_option("#id_region", "eu")
    page.fill("#id_api_token", token)
    page.fill("#id_callback_secret", secret)
    page.fill("#id_sender", "+15005550011")
    page.fill("#id_priority", "2")
    shot(page, "sinch-form-filled")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    account = ProviderAccount.objects.get(org=org, provider="sinch")
    assert account.secrets() == {"api_token": token, "callback_secret": secret} and account.priority == 2
    page.click(f"text={plan}")
    assert page.input_value("#id_api_token") == "" and page.input_value("#id_callback_secret") == ""
    assert page.inner_text("#webhook-status") == f"{live_server.url}/api/v1/sms/webhooks/sinch/{org.pk}/status"
    assert page.inner_text("#webhook-inbound") == f"{live_server.url}/api/v1/sms/webhooks/sinch/{org.pk}"
    page.click("#test-connection")
    page.wait_for_selector("ul.messagelist")
    assert f"Connected to Sinch service plan {plan} (region eu)" in success_message(page)
    assert token not in page.content() and secret not in page.content()
    shot(page, "sinch-test-connection-ok")
