"""provider_account_test_connection / provider_account_list_numbers: the real twilio SDK over real
HTTP against local servers, every failure translated into plain words without the token."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sendora_sms.errors import ValidationFailed
from sms.services.provider_accounts import (
    ProviderCheckFailed,
    provider_account_list_numbers,
    provider_account_test_connection,
)
from tests.admin.conftest import FAKE_SID, FAKE_TOKEN, OWNED_NUMBERS
from tests.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db


class Scripted:
    """A local HTTP server answering every GET with one scripted (status, body)."""

    def __init__(self, status: int, body: str, delay: float = 0.0):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if outer.delay:
                    outer.release.wait(outer.delay)
                payload = outer.body.encode()
                try:
                    self.send_response(outer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

        self.status, self.body, self.delay = status, body, delay
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def twilio_error(status, code, message):
    return json.dumps({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                       "status": status})


@pytest.fixture
def account(org_a):
    return ProviderAccountFactory(org=org_a, account_sid=FAKE_SID, auth_token=FAKE_TOKEN)


def test_connection_ok_names_the_account(account, fake_twilio):
    result = provider_account_test_connection(org=account.org)
    assert result.ok and result.status == "active" and result.friendly_name == "Acme Production"


def test_connection_without_credentials_says_so(org_a):
    result = provider_account_test_connection(org=org_a)
    assert not result.ok and "No Twilio credentials are configured" in result.message


@pytest.mark.parametrize("status, body, expected", [
    (503, twilio_error(503, 20500, "Service Unavailable"), "Twilio answered with a server error (HTTP 503)"),
    (429, twilio_error(429, 20429, "Too Many Requests"), "Twilio is busy (error 20429"),
    (403, twilio_error(403, 20008, "Resource not accessible with Test Account Credentials"),
     "Test credentials cannot read the account"),
    (404, twilio_error(404, 20404, "The requested resource was not found"), "no account with this Account SID"),
    (400, twilio_error(400, 21999, "Something specific"), "Twilio refused the request (HTTP 400, error 21999)"),
    (200, "<html>not json</html>", "could not be read"),
])
def test_twilio_failures_become_plain_sentences(account, settings, status, body, expected):
    with Scripted(status, body) as base_url:
        settings.TWILIO_API_BASE_URL = base_url
        result = provider_account_test_connection(org=account.org)
        with pytest.raises(ProviderCheckFailed) as listed:
            provider_account_list_numbers(account_sid=FAKE_SID, auth_token=None, org=account.org)
    assert not result.ok and expected in result.message
    assert expected in listed.value.message and listed.value.http_status == 502
    assert FAKE_TOKEN not in result.message + listed.value.message


def test_suspended_account_is_not_ok(account, settings):
    body = json.dumps({"sid": FAKE_SID, "friendly_name": "Acme", "status": "suspended", "type": "Full"})
    with Scripted(200, body) as base_url:
        settings.TWILIO_API_BASE_URL = base_url
        result = provider_account_test_connection(org=account.org)
    assert not result.ok and "is suspended; it cannot send messages" in result.message


def test_a_slow_twilio_times_out_with_a_plain_message(account, settings):
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    with Scripted(200, "{}", delay=5) as base_url:
        settings.TWILIO_API_BASE_URL = base_url
        result = provider_account_test_connection(org=account.org)
    assert not result.ok and "did not answer within 0.3 seconds" in result.message


def test_list_numbers_uses_typed_token_else_the_stored_one(account, fake_twilio):
    assert provider_account_list_numbers(account_sid=FAKE_SID, auth_token=None, org=account.org) == sorted(OWNED_NUMBERS)
    assert provider_account_list_numbers(account_sid=FAKE_SID, auth_token=FAKE_TOKEN, org=account.org) == sorted(
        OWNED_NUMBERS)
    auth = fake_twilio.requests_to("/IncomingPhoneNumbers.json")[-1].auth
    assert auth == (FAKE_SID, FAKE_TOKEN)


def test_list_numbers_validates_before_calling_twilio(org_a, fake_twilio):
    with pytest.raises(ValidationFailed) as bad_sid:
        provider_account_list_numbers(account_sid="AC-nope", auth_token="x", org=org_a)
    assert bad_sid.value.code == "invalid_account_sid"
    with pytest.raises(ValidationFailed) as no_token:
        provider_account_list_numbers(account_sid=FAKE_SID, auth_token="", org=org_a)
    assert no_token.value.code == "auth_token_required"
    assert not fake_twilio.requests


def test_list_numbers_skips_numbers_without_sms(account, fake_twilio):
    record = fake_twilio.add_number(FAKE_SID, "+14155550199")
    record["capabilities"] = {"voice": True, "sms": False, "mms": False}
    assert "+14155550199" not in provider_account_list_numbers(account_sid=FAKE_SID, auth_token=None,
                                                               org=account.org)
