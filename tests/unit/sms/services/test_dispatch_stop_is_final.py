"""Issue #10 point 1: a STOP that arrives after a send was accepted still stops it — at the claim, on every
path (first attempt, a retry, the sweeper's re-enqueue, an operator's re-send). Such a send ends `failed` with
metadata.suppressed=true, its quota unit is refunded, `sms.failed` fires once, and the provider is never called."""
import pytest

from audit.services import Actor
from sms.models import Event, SuppressionReason
from sms.services.dispatch import REVIEW_PARKED, REVIEW_RETRYING, DispatchOutcome, send_dispatch
from sms.services.review import send_resolve_parked
from sms.services.suppressions import suppression_ensure
from sms.statuses import SendStatus
from tests.unit.sms.services.test_send_dispatch import TO, account, fake, queued, quota_used  # noqa: F401

pytestmark = pytest.mark.django_db


def _stop(org):
    suppression_ensure(org=org, phone_number=TO, reason=SuppressionReason.STOP_KEYWORD, source="webhook",
                       actor=Actor.system("test"))


def _assert_stopped(send, fake, used_before):
    send.refresh_from_db()
    assert send.status == SendStatus.FAILED
    assert send.metadata["suppressed"] is True and send.error_code == "suppressed"
    assert list(Event.objects.filter(send=send).values_list("type", flat=True)) == ["sms.failed"]
    assert fake.count_creates() == 0
    assert quota_used(send.org) == used_before - 1


def test_first_attempt(account, fake):
    send = queued(account.org)
    used = quota_used(account.org)
    _stop(account.org)
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.SKIPPED
    _assert_stopped(send, fake, used)
    # A redelivered task changes nothing and fires nothing more.
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.SKIPPED
    assert Event.objects.filter(send=send).count() == 1 and quota_used(account.org) == used - 1


def test_retry_of_an_attempt(account, fake):
    send = queued(account.org)
    used = quota_used(account.org)
    send.__class__.objects.filter(pk=send.pk).update(status=SendStatus.SENDING, attempts=1,
                                                     review_reason=f"{REVIEW_RETRYING}attempt 1 (20503)",
                                                     dispatch_state="retrying")
    _stop(account.org)
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.SKIPPED
    _assert_stopped(send, fake, used)


def test_sweeper_reenqueue(account, fake, monkeypatch, settings):
    from sms import tasks
    from sms.services.sweeper import sends_sweep

    settings.SMS_SWEEP_QUEUED_AFTER_SECONDS = 0
    send = queued(account.org)
    used = quota_used(account.org)
    _stop(account.org)
    enqueued = []
    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda *args: enqueued.append(args))
    sends_sweep()
    assert [str(a[0]) for a in enqueued] == [str(send.pk)]
    send_dispatch(send_id=enqueued[0][0])  # what the worker runs for the sweeper's task
    _assert_stopped(send, fake, used)


def test_operator_resend_of_a_parked_send(account, fake, monkeypatch, django_capture_on_commit_callbacks):
    from sms import tasks

    send = queued(account.org)
    used = quota_used(account.org)
    send.__class__.objects.filter(pk=send.pk).update(status=SendStatus.SENDING, attempts=1,
                                                     review_reason=f"{REVIEW_PARKED}lost", dispatch_state="parked")
    send.refresh_from_db()
    enqueued = []
    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda *args: enqueued.append(args))
    _stop(account.org)
    with django_capture_on_commit_callbacks(execute=True):
        send_resolve_parked(send=send, resolution="resend", actor=Actor.system("operator"))
    assert enqueued
    send_dispatch(send_id=enqueued[0][0], attempt=enqueued[0][1])
    _assert_stopped(send, fake, used)


def test_a_send_to_a_number_not_suppressed_still_goes(account, fake):
    send = queued(account.org)
    suppression_ensure(org=account.org, phone_number="+14155550999", reason=SuppressionReason.MANUAL,
                       source="api", actor=Actor.system("test"))
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.ACCEPTED
    assert fake.count_creates() == 1
