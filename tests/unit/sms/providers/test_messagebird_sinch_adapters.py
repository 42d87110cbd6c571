"""The MessageBird and Sinch adapters over real HTTP against the fakes (tests/fakes/): the wire format of
each request, the answer → SendOutcome, and every failure → the neutral error classes."""
from datetime import timedelta

import pytest
from django.utils import timezone

from sms.providers import (
    OutboundSms,
    ProviderAmbiguousError,
    ProviderAuthError,
    ProviderPermanentError,
    ProviderTransientError,
    provider_for,
)
from sms.providers.messagebird import MessageBirdProvider
from sms.providers.sinch import SinchProvider
from sms.statuses import SendStatus
from tests.fakes.fixtures import messagebird_account, sinch_account
from tests.fakes.provider_base import Reply

pytestmark = pytest.mark.django_db


def message(**kw):
    return OutboundSms(**{"send_id": "6f1c0d3e-0000-4000-8000-000000000001", "to": "+15551230001",
                          "from_number": "+15005550010", "body": "Hello",
                          "status_callback_url": "https://sms.example.com/cb", **kw})


@pytest.fixture
def mb(org, fake_messagebird):
    return provider_for(messagebird_account(org, fake_messagebird), "prod")


@pytest.fixture
def sinch(org, fake_sinch):
    return provider_for(sinch_account(org, fake_sinch), "prod")


def test_messagebird_send_wire_format(mb, fake_messagebird):
    outcome = mb.send(message())
    request = fake_messagebird.creates()[-1]
    assert request.headers["Authorization"].startswith("AccessKey ")
    assert request.json() == {"originator": "15005550010", "recipients": ["15551230001"], "body": "Hello",
                              "reference": "6f1c0d3e-0000-4000-8000-000000000001",
                              "reportUrl": "https://sms.example.com/cb"}
    assert len(outcome.provider_message_id) == 32 and outcome.status == SendStatus.SENT
    assert isinstance(mb, MessageBirdProvider) and "AccessKey" not in repr(mb)


def test_messagebird_alphanumeric_originator_is_sent_as_is(mb, fake_messagebird):
    mb.send(message(from_number="Sendora"))
    assert fake_messagebird.creates()[-1].json()["originator"] == "Sendora"


def test_sinch_send_wire_format(sinch, fake_sinch):
    outcome = sinch.send(message(from_number="+15005550011"))
    request = fake_sinch.creates()[-1]
    assert request.path == f"/xms/v1/{sinch.service_plan_id}/batches"
    assert request.headers["Authorization"].startswith("Bearer ")
    assert request.json() == {"from": "15005550011", "to": ["15551230001"], "body": "Hello", "type": "mt_text",
                              "delivery_report": "per_recipient",
                              "client_reference": "6f1c0d3e-0000-4000-8000-000000000001",
                              "callback_url": "https://sms.example.com/cb"}
    assert len(outcome.provider_message_id) == 26 and outcome.status == SendStatus.QUEUED


def test_sinch_base_url_is_regional_unless_overridden(settings):
    adapter = SinchProvider(service_plan_id="p", region="eu", api_token="t")
    settings.SINCH_API_BASE_URL = ""
    assert adapter.base_url() == "https://eu.sms.api.sinch.com"
    settings.SINCH_API_BASE_URL = "http://127.0.0.1:9"
    assert adapter.base_url() == "http://127.0.0.1:9"


@pytest.mark.parametrize("reply, error, code", [
    (Reply(status=503), ProviderTransientError, "503"),
    (Reply(status=429, headers={"Retry-After": "7"}), ProviderTransientError, "429"),
    (Reply(status=500, create=True), ProviderAmbiguousError, "500"),
    (Reply(status=401), ProviderAuthError, None),
    (Reply(status=422), ProviderPermanentError, None),
    (Reply(status=201, body="not json"), ProviderAmbiguousError, "bad_response"),
    (Reply(drop=True, create=True), ProviderAmbiguousError, "connection_lost"),
])
@pytest.mark.parametrize("name", ["messagebird", "sinch"])
def test_failures_are_classified_like_twilio(name, reply, error, code, request):
    adapter = request.getfixturevalue("mb" if name == "messagebird" else "sinch")
    fake = request.getfixturevalue(f"fake_{name}")
    fake.script(reply)
    with pytest.raises(error) as caught:
        adapter.send(message())
    if code in ("bad_response", "connection_lost"):
        assert caught.value.code == code
    assert caught.value.http_status == (reply.status if reply.status and reply.status >= 400 else None)
    if reply.status == 429:
        assert caught.value.retry_after == 7.0
    if reply.status == 503:
        assert isinstance(caught.value, ProviderTransientError) and not isinstance(caught.value, ProviderAmbiguousError)


@pytest.mark.parametrize("name", ["messagebird", "sinch"])
def test_a_read_timeout_is_ambiguous_and_a_refused_connection_transient(name, request, settings):
    adapter = request.getfixturevalue("mb" if name == "messagebird" else "sinch")
    fake = request.getfixturevalue(f"fake_{name}")
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    fake.script(Reply(delay=1.0))
    with pytest.raises(ProviderAmbiguousError):
        adapter.send(message())
    setattr(settings, f"{name.upper()}_API_BASE_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(ProviderTransientError) as caught:
        adapter.send(message())
    assert caught.value.code == "connect_error"


@pytest.mark.parametrize("name", ["messagebird", "sinch"])
def test_reconciliation_finds_the_message_by_our_send_id_and_status_refresh(name, request):
    adapter = request.getfixturevalue("mb" if name == "messagebird" else "sinch")
    fake = request.getfixturevalue(f"fake_{name}")
    fake.script(Reply(status=500, create=True))  # created, but the client saw a 500
    with pytest.raises(ProviderAmbiguousError):
        adapter.send(message())
    adapter.send(message(send_id="6f1c0d3e-0000-4000-8000-000000000002"))
    since = timezone.now() - timedelta(minutes=1)
    found = adapter.find_sent(to="+15551230001", since=since, body="Hello",
                              reference="6f1c0d3e-0000-4000-8000-000000000001")
    assert [o.provider_message_id for o in found] == [
        m["id"] for m in fake.messages.values() if m.get("reference", m.get("client_reference"))
        == "6f1c0d3e-0000-4000-8000-000000000001"]
    status = adapter.fetch_status(found[0].provider_message_id)
    assert status is not None and status.provider_message_id == found[0].provider_message_id
    assert adapter.fetch_status("0" * 26) is None


@pytest.mark.parametrize("name", ["messagebird", "sinch"])
def test_test_connection_is_an_authenticated_read(name, request, org):
    adapter = request.getfixturevalue("mb" if name == "messagebird" else "sinch")
    ok, text = adapter.test_connection()
    assert ok and text.startswith("Connected")
    adapter._api_token = adapter._access_key = "wrong"
    ok, text = adapter.test_connection()
    assert not ok and "wrong" not in text


@pytest.mark.parametrize("name", ["messagebird", "sinch"])
def test_the_fakes_concurrency_limit_answers_429_as_transient(name, request):
    adapter = request.getfixturevalue("mb" if name == "messagebird" else "sinch")
    fake = request.getfixturevalue(f"fake_{name}")
    fake.concurrency_limit = 0
    with pytest.raises(ProviderTransientError) as caught:
        adapter.send(message())
    assert caught.value.http_status == 429 and caught.value.retry_after == 1.0 and fake.messages == {}
