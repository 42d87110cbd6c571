"""Adaptive failover between an org's providers, in-process against the fake MessageBird and Sinch:
transient failures move the attempt to the next provider and demote the failing one past the
threshold; after the cool-down it is probed back; ambiguous timeouts are reconciled with the provider
that had the request and never re-sent elsewhere; permanent errors never fail over."""
import time

import pytest

from sms.models import Send, SendStatusChange
from sms.services.dispatch import DispatchOutcome, send_dispatch
from django.core.cache import cache

from sms.services import failover
from sms.services.failover import provider_health
from sms.statuses import SendStatus
from tests.factories import SendFactory
from tests.fakes.fixtures import MB_ORIGINATOR, SINCH_FROM, messagebird_account, sinch_account
from tests.fakes.provider_base import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def two(org, fake_messagebird, fake_sinch, settings):
    settings.SMS_FAILOVER_MIN_ATTEMPTS = 3
    settings.SMS_FAILOVER_FAILURE_RATE = 0.5
    settings.SMS_FAILOVER_WINDOW_SECONDS = 30
    settings.SMS_FAILOVER_BUCKET_SECONDS = 1
    settings.SMS_FAILOVER_COOLDOWN_SECONDS = 1.0
    messagebird_account(org, fake_messagebird, priority=1)
    sinch_account(org, fake_sinch, priority=2)
    return fake_messagebird, fake_sinch


def queued(org, n=1):
    return [SendFactory(org=org, mode="prod", provider="messagebird", from_number=MB_ORIGINATOR, status="queued")
            for _ in range(n)]


def test_a_503_outage_moves_sends_to_the_next_provider_demotes_and_recovers(org, two):
    mb, sinch = two
    mb.fail_all(503)
    sends = queued(org, 6)
    for send in sends:
        assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.ACCEPTED
    assert len(mb.creates()) == 3  # demoted after the threshold: later sends go straight to Sinch
    assert len(sinch.creates()) == 6 and len(sinch.messages) == 6  # every send once, none lost
    for send in Send.objects.filter(pk__in=[s.pk for s in sends]):
        assert (send.provider, send.from_number) == ("sinch", SINCH_FROM) and send.provider_message_id in sinch.messages
    moved = SendStatusChange.objects.filter(send=sends[0], detail__failover=True).get()
    assert moved.detail == {"attempt": 1, "provider": "sinch", "failover": True, "failover_from": "messagebird",
                            "error_code": "99"}
    assert SendStatusChange.objects.filter(send=sends[-1], detail__failover=True).count() == 0
    health = provider_health(org_id=org.pk, provider="messagebird")
    assert health.state == "demoted" and health.demoted_until is not None and health.success_rate == 0.0
    assert provider_health(org_id=org.pk, provider="sinch").success_rate == 1.0

    mb.fail_all(None)  # MessageBird recovers; after the cool-down it is probed with the next send
    deadline = time.time() + 5
    while provider_health(org_id=org.pk, provider="messagebird").state == "demoted" and time.time() < deadline:
        time.sleep(0.1)
    [later] = queued(org)
    assert send_dispatch(send_id=later.pk).outcome == DispatchOutcome.ACCEPTED
    later.refresh_from_db()
    assert later.provider == "messagebird" and len(mb.messages) == 1 and len(sinch.messages) == 6
    assert provider_health(org_id=org.pk, provider="messagebird").state == "healthy"
    # The probe's first success ended it (read with the routing order, not re-read when recording).
    assert cache.get(failover._key(org.pk, "messagebird", "probe")) is None


def test_a_failing_probe_is_demoted_again_at_once(org, two):
    mb, sinch = two
    mb.fail_all(503)
    for send in queued(org, 3):
        send_dispatch(send_id=send.pk)
    deadline = time.time() + 5
    while provider_health(org_id=org.pk, provider="messagebird").state == "demoted" and time.time() < deadline:
        time.sleep(0.1)
    [probe] = queued(org)
    assert send_dispatch(send_id=probe.pk).outcome == DispatchOutcome.ACCEPTED  # through Sinch
    assert len(mb.creates()) == 4
    assert provider_health(org_id=org.pk, provider="messagebird").state == "demoted"


def test_an_ambiguous_timeout_is_reconciled_with_that_provider_never_sent_through_another(org, two, settings):
    mb, sinch = two
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    mb.script(Reply(delay=1.0))  # MessageBird creates the message but answers too late
    [send] = queued(org)
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.ACCEPTED  # found by our reference
    send.refresh_from_db()
    assert send.provider == "messagebird" and send.provider_message_id in mb.messages
    assert len(mb.messages) == 1 and sinch.creates() == []


def test_an_ambiguous_timeout_not_found_stays_reconciling_with_no_other_provider_called(org, two, settings):
    mb, sinch = two
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    mb.script(Reply(delay=1.0, create=False))
    [send] = queued(org)
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.RECONCILING
    send.refresh_from_db()
    assert (send.status, send.provider, send.provider_message_id) == (SendStatus.SENDING, "messagebird", "")
    assert sinch.creates() == []


def test_permanent_errors_never_fail_over(org, two):
    mb, sinch = two
    mb.script(Reply(status=422))
    [send] = queued(org)
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.FAILED
    send.refresh_from_db()
    assert send.status == SendStatus.FAILED and sinch.creates() == []


def test_every_provider_transient_retries_the_attempt_later(org, two):
    mb, sinch = two
    mb.fail_all(503)
    sinch.fail_all(429)
    [send] = queued(org)
    result = send_dispatch(send_id=send.pk)
    assert result.outcome == DispatchOutcome.RETRY
    send.refresh_from_db()
    assert (send.status, send.provider_message_id, send.dispatch_state) == (SendStatus.SENDING, "", "retrying")
    assert len(mb.creates()) == 1 and len(sinch.creates()) == 1


def test_a_disabled_account_is_never_used(org, fake_messagebird, fake_sinch):
    messagebird_account(org, fake_messagebird, priority=1, enabled=False)
    sinch_account(org, fake_sinch, priority=2)
    [send] = queued(org)
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    assert send.provider == "sinch" and fake_messagebird.creates() == []
