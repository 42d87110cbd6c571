"""TwilioProvider sending and reconciliation, through the real SDK over real HTTP to the fake Twilio.

Never patches the SDK: every case is a real request the fake answers (scripted where needed).
"""
import base64
import logging
import socket
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from sms.providers import (
    OutboundSms,
    ProviderAmbiguousError,
    ProviderAuthError,
    ProviderPermanentError,
    ProviderTransientError,
)
from sms.providers.twilio import ERROR_MAP, TwilioProvider, classify_rest_error
from sms.statuses import SendStatus
from tests.fakes.twilio_server import FakeTwilio, Reply

SID = "AC" + "a1" * 16
TOKEN = "tok_" + "z" * 28
FROM = "+15005550006"
TO = "+14155550123"
# Twilio's OpenAPI description of Messages.json, trimmed; source and licence in the file's header.
SPEC = Path(__file__).resolve().parents[3] / "specs" / "twilio_api_v2010_messages.yaml"


@pytest.fixture
def fake(settings):
    with FakeTwilio() as server:
        server.add_account(SID, TOKEN, numbers=[FROM])
        settings.TWILIO_API_BASE_URL = server.base_url
        settings.TWILIO_HTTP_TIMEOUT = 2.0
        yield server


@pytest.fixture
def provider():
    return TwilioProvider(account_sid=SID, auth_token=TOKEN)


def sms(to=TO, body="Your code is 123456", callback="https://sendora.example/api/v1/sms/webhooks/twilio/o/status",
        from_number=FROM):
    return OutboundSms(send_id="s-1", to=to, from_number=from_number, body=body, status_callback_url=callback)


@lru_cache(maxsize=1)
def create_message_spec():
    with open(SPEC, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    path = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]
    schema = path["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    list_params = {p["name"] for p in path["get"]["parameters"] if p.get("in") == "query"}
    return schema, list_params


def test_accepted_message_returns_sid_queued_status_and_segments(fake, provider):
    outcome = provider.send(sms(body="a" * 161))
    assert outcome.provider_message_id.startswith("SM") and len(outcome.provider_message_id) == 34
    assert outcome.status == SendStatus.QUEUED
    assert outcome.segments == 2
    assert fake.count_creates(to=TO) == 1


def test_create_request_conforms_to_the_openapi_spec(fake, provider):
    provider.send(sms())
    (request,) = fake.requests_to("/Messages.json", "POST")
    schema, _ = create_message_spec()
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert request.auth == (SID, TOKEN)
    assert set(request.form) <= set(schema["properties"])
    assert set(schema["required"]) <= set(request.form)
    assert request.form == {"To": TO, "From": FROM, "Body": "Your code is 123456",
                            "StatusCallback": "https://sendora.example/api/v1/sms/webhooks/twilio/o/status"}


def test_no_status_callback_param_when_none_is_configured(fake, provider):
    provider.send(sms(callback=None))
    (request,) = fake.requests_to("/Messages.json", "POST")
    assert "StatusCallback" not in request.form


@pytest.mark.parametrize("to,code", [
    ("+15005550001", "21211"), ("+15005550002", "21612"), ("+15005550003", "21408"), ("+15005550009", "21614"),
])
def test_magic_recipient_errors_are_permanent_with_the_twilio_code(fake, provider, to, code):
    with pytest.raises(ProviderPermanentError) as info:
        provider.send(sms(to=to))
    assert info.value.code == code
    assert info.value.http_status == 400
    assert not info.value.recipient_opted_out
    assert not isinstance(info.value, ProviderAuthError)


def test_21610_is_permanent_and_flags_the_recipient_as_opted_out(fake, provider):
    with pytest.raises(ProviderPermanentError) as info:
        provider.send(sms(to="+15005550004"))
    assert info.value.code == "21610"
    assert info.value.recipient_opted_out


@pytest.mark.parametrize("from_number,code", [("+15005550001", "21212"), ("+15005550007", "21606")])
def test_bad_from_numbers_are_permanent(fake, provider, from_number, code):
    with pytest.raises(ProviderPermanentError) as info:
        provider.send(sms(from_number=from_number))
    assert info.value.code == code


def test_body_over_1600_characters_is_permanent_21617(fake, provider):
    with pytest.raises(ProviderPermanentError) as info:
        provider.send(sms(body="a" * 1601))
    assert info.value.code == "21617"


def test_full_from_queue_21611_is_transient_with_a_minute_backoff(fake, provider):
    with pytest.raises(ProviderTransientError) as info:
        provider.send(sms(from_number="+15005550008"))
    assert info.value.code == "21611"
    assert info.value.retry_after == 60.0


def test_wrong_token_is_an_auth_error_20003(fake):
    with pytest.raises(ProviderAuthError) as info:
        TwilioProvider(account_sid=SID, auth_token="wrong").send(sms())
    assert info.value.code == "20003"
    assert info.value.http_status == 401


def test_429_is_transient_and_carries_retry_after(fake, provider):
    fake.script(Reply(status=429, headers={"Retry-After": "7"}))
    with pytest.raises(ProviderTransientError) as info:
        provider.send(sms())
    assert info.value.code == "20429"
    assert info.value.retry_after == 7.0
    assert fake.count_creates() == 0


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_and_unavailable_errors_are_transient(fake, provider, status):
    fake.script(Reply(status=status))
    with pytest.raises(ProviderTransientError) as info:
        provider.send(sms())
    assert info.value.http_status == status
    assert info.value.retry_after is None


def test_500_is_ambiguous_because_twilio_may_have_created_the_message(fake, provider):
    fake.script(Reply(status=500, create=True))
    with pytest.raises(ProviderAmbiguousError):
        provider.send(sms())
    assert fake.count_creates() == 1


def test_read_timeout_after_the_request_was_sent_is_ambiguous(fake, provider, settings):
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    fake.script(Reply(delay=1.5))
    with pytest.raises(ProviderAmbiguousError) as info:
        provider.send(sms())
    assert info.value.code == "read_timeout"
    assert fake.count_creates() == 1


def test_connection_dropped_without_a_response_is_ambiguous(fake, provider):
    fake.script(Reply(drop=True))
    with pytest.raises(ProviderAmbiguousError) as info:
        provider.send(sms())
    assert info.value.code == "connection_lost"


def test_garbage_2xx_body_is_ambiguous(fake, provider):
    fake.script(Reply(status=200, body="garbage not json"))
    with pytest.raises(ProviderAmbiguousError) as info:
        provider.send(sms())
    assert info.value.code == "bad_response"


def test_2xx_without_a_sid_is_ambiguous(fake, provider):
    fake.script(Reply(status=201, body={"status": "queued"}))
    with pytest.raises(ProviderAmbiguousError):
        provider.send(sms())


def test_connection_refused_is_transient_nothing_was_sent(settings, provider):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(ProviderTransientError) as info:
        provider.send(sms())
    assert info.value.code == "connect_error"


def test_unknown_4xx_code_is_permanent_and_unknown_5xx_is_ambiguous():
    assert classify_rest_error(http_status=400, code=99999) == "permanent"
    assert classify_rest_error(http_status=507, code=None) == "ambiguous"
    assert classify_rest_error(http_status=401, code=None) == "auth"
    assert ERROR_MAP["20429"] == "transient"


def test_auth_token_never_appears_in_logs_or_errors(fake, caplog):
    caplog.set_level(logging.DEBUG)
    provider = TwilioProvider(account_sid=SID, auth_token=TOKEN)
    provider.send(sms())
    with pytest.raises(ProviderAuthError) as info:
        TwilioProvider(account_sid=SID, auth_token=TOKEN + "x").send(sms())
    basic = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    for text in (caplog.text, str(info.value), repr(provider)):
        assert TOKEN not in text and basic not in text


def test_find_sent_lists_by_recipient_and_date_and_matches_the_body(fake, provider):
    since = timezone.now() - timedelta(seconds=5)
    kept = provider.send(sms(body="hello"))
    provider.send(sms(body="another text"))
    provider.send(sms(to="+14155550999", body="hello"))
    found = provider.find_sent(to=TO, since=since, body="hello")
    assert [o.provider_message_id for o in found] == [kept.provider_message_id]
    assert found[0].status == SendStatus.QUEUED
    (listing,) = fake.requests_to("/Messages.json", "GET")
    _, list_params = create_message_spec()
    assert set(listing.query) <= list_params
    assert listing.query["To"] == [TO]
    assert "DateSent>" in listing.query


def test_find_sent_ignores_messages_created_before_since(fake, provider):
    provider.send(sms(body="hello"))
    assert provider.find_sent(to=TO, since=timezone.now() + timedelta(minutes=5), body="hello") == []


def test_find_sent_reports_the_current_provider_status(fake, provider):
    sid = provider.send(sms()).provider_message_id
    fake.set_message_status(sid, "delivered")
    (found,) = provider.find_sent(to=TO, since=timezone.now() - timedelta(minutes=1))
    assert found.status == SendStatus.DELIVERED


def test_find_sent_failure_is_a_provider_error(fake):
    with pytest.raises(ProviderAuthError):
        TwilioProvider(account_sid=SID, auth_token="bad").find_sent(to=TO, since=timezone.now())


# --- the SDK's transport (sms/providers/twilio.py _HttpClient, urllib3 directly) ------------------------------------

def test_the_transport_puts_on_the_wire_what_the_sdks_own_requests_client_does(fake, settings):
    """Same SDK call through our urllib3 transport and through TwilioHttpClient (the SDK's default, on requests):
    the fake records the same method, path, form (lists repeated), Basic auth and SDK headers for both."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from sms.providers.twilio import shared_http_client

    recorded = []
    for http_client in (shared_http_client(), TwilioHttpClient(timeout=2.0)):
        client = Client(SID, TOKEN, environment={"_": ""}, http_client=http_client)
        client.api.base_url = fake.base_url
        client.messages.create(to=TO, from_=FROM, body="Grüße & 1+1=2 ✓", status_callback="https://x.example/cb?a=1",
                               media_url=["https://x.example/a.png", "https://x.example/b.png"])
        (request,) = fake.requests_to("/Messages.json", "POST")[-1:]
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded.append((request.method, request.path, request.form_lists, request.auth,
                         {k: headers.get(k) for k in ("content-type", "accept", "accept-charset", "user-agent",
                                                      "accept-encoding")}))
    assert recorded[0] == recorded[1]
    assert recorded[0][2]["MediaUrl"] == ["https://x.example/a.png", "https://x.example/b.png"]
    assert recorded[0][3] == (SID, TOKEN)


def test_the_transport_form_encodes_as_requests_does():
    from urllib.parse import parse_qsl

    from sms.providers.twilio import _form

    encoded = _form({"To": "+1 555", "Body": "a&b=c ✓", "MediaUrl": ["u1", None, "u2"], "Skip": None, "N": 3})
    assert parse_qsl(encoded) == [("To", "+1 555"), ("Body", "a&b=c ✓"), ("MediaUrl", "u1"), ("MediaUrl", "u2"),
                                  ("N", "3")]

