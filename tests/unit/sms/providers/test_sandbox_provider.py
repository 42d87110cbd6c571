"""SandboxProvider: Twilio's test magic numbers, no network, simulated callbacks."""
import socket

import pytest
from django.utils import timezone

from sms.providers import OutboundSms, ProviderPermanentError, ProviderTransientError, provider_for
from sms.providers.sandbox import SandboxProvider
from sms.providers.twilio import TwilioProvider
from sms.statuses import SendStatus


def sms(to="+14155550100", from_number="+15005550006", body="hi there"):
    return OutboundSms(send_id="s-1", to=to, from_number=from_number, body=body)


@pytest.mark.parametrize("to,code", [
    ("+15005550001", "21211"), ("+15005550002", "21612"), ("+15005550003", "21408"),
    ("+15005550004", "21610"), ("+15005550009", "21614"),
])
def test_magic_recipients_fail_permanently_with_twilio_codes(to, code):
    with pytest.raises(ProviderPermanentError) as info:
        SandboxProvider().send(sms(to=to))
    assert info.value.code == code
    assert info.value.recipient_opted_out == (code == "21610")


@pytest.mark.parametrize("from_number,code", [("+15005550001", "21212"), ("+15005550007", "21606")])
def test_magic_senders_fail_permanently(from_number, code):
    with pytest.raises(ProviderPermanentError) as info:
        SandboxProvider().send(sms(from_number=from_number))
    assert info.value.code == code


def test_full_sender_queue_is_transient():
    with pytest.raises(ProviderTransientError) as info:
        SandboxProvider().send(sms(from_number="+15005550008"))
    assert info.value.code == "21611" and info.value.retry_after == 60.0


def test_other_numbers_are_accepted_with_a_fake_sid_and_counted_segments():
    outcome = SandboxProvider().send(sms(body="ж" * 71))
    assert outcome.provider_message_id.startswith("SM") and len(outcome.provider_message_id) == 34
    assert outcome.status == SendStatus.QUEUED
    assert outcome.segments == 2


def test_each_acceptance_gets_a_distinct_sid():
    provider = SandboxProvider()
    assert provider.send(sms()).provider_message_id != provider.send(sms()).provider_message_id


def test_accepted_messages_progress_to_sent_then_delivered():
    provider = SandboxProvider()
    outcome = provider.send(sms())
    updates = provider.simulated_updates(outcome)
    assert [u.status for u in updates] == [SendStatus.SENT, SendStatus.DELIVERED]
    assert {u.provider_message_id for u in updates} == {outcome.provider_message_id}


def test_sandbox_makes_no_network_calls(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the sandbox opened a socket")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    SandboxProvider().send(sms())
    assert SandboxProvider().find_sent(to="+14155550100", since=timezone.now()) == []


class _Account:
    provider = "twilio"
    account_sid = "AC" + "0" * 32
    from_number = "+15005550006"

    def auth_token(self):
        return "secret"


def test_provider_for_test_mode_is_the_sandbox_even_without_an_account():
    assert isinstance(provider_for(None, "test"), SandboxProvider)
    assert isinstance(provider_for(_Account(), "test"), SandboxProvider)


def test_provider_for_prod_mode_is_the_accounts_provider():
    provider = provider_for(_Account(), "prod")
    assert isinstance(provider, TwilioProvider)
    assert provider.account_sid == _Account.account_sid


def test_provider_for_prod_without_an_account_raises_lookup_error():
    with pytest.raises(LookupError):
        provider_for(None, "prod")
