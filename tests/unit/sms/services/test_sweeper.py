"""The sweeper: stranded queued sends re-enqueued, stuck sending sends reconciled, never re-sent blindly."""
import json
import uuid
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from sms.models import Event, Send
from sms.services.counters import send_counts_add
from sms.services.dispatch import REVIEW_PARKED, REVIEW_RECONCILING, REVIEW_RETRYING, DispatchOutcome, send_dispatch
from sms.services.sweeper import sends_reconcile_stuck, sends_requeue_stranded, sends_sweep
from sms.statuses import SendStatus
from tests.factories import TEST_AUTH_TOKEN, EventFactory, OrgFactory, ProviderAccountFactory, SendFactory
from tests.fakes.twilio_server import FakeTwilio, Reply

TO = "+14155550160"
BODY = "Your code is 111222"


@pytest.fixture
def fake(settings):
    with FakeTwilio() as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        yield server


@pytest.fixture
def account(db, fake):
    account = ProviderAccountFactory()
    fake.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    return account


@pytest.fixture
def queue(settings):
    """The sms-send queue on the test broker (Redis list), emptied before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("sms-send")
    yield lambda: [json.loads(m)["headers"]["argsrepr"] for m in client.lrange("sms-send", 0, -1)]
    client.delete("sms-send")


def aged(send, seconds, **fields):
    Send.objects.filter(pk=send.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds), **fields)
    send.refresh_from_db()
    return send


def make(org, status, *, mode="prod", **kw):
    send = SendFactory(org=org, status=status, mode=mode, provider="twilio" if mode == "prod" else "sandbox",
                       to=kw.pop("to", TO), body=kw.pop("body", BODY), **kw)
    send_counts_add(send=send)
    return send


def test_queued_sends_older_than_the_threshold_are_re_enqueued(db, settings, queue):
    settings.SMS_SWEEP_QUEUED_AFTER_SECONDS = 60
    org = OrgFactory()
    stranded = aged(make(org, SendStatus.QUEUED), 120)
    aged(make(org, SendStatus.QUEUED), 10)  # fresh: its task may still be on its way
    aged(make(org, SendStatus.SENT), 600)
    assert sends_requeue_stranded() == 1
    assert queue() == [repr((str(stranded.pk),))]


def retrying(org, attempts=1, **kw):
    return make(org, SendStatus.SENDING, attempts=attempts,
                review_reason=f"{REVIEW_RETRYING}attempt {attempts} (20503)", **kw)


def test_a_send_waiting_out_a_retry_backoff_is_left_alone_until_the_longest_backoff_passed(db, settings, queue):
    settings.SMS_SWEEP_QUEUED_AFTER_SECONDS = 60
    settings.SMS_DISPATCH_RETRY_MAX_SECONDS = 300
    org = OrgFactory()
    aged(retrying(org), 120)
    assert sends_requeue_stranded() == 0
    retry_lost = aged(retrying(org, attempts=3), 400)
    assert sends_requeue_stranded() == 1
    # The retry of the attempt it was marked for, not a fresh dispatch: only that retry can claim it.
    assert queue() == [repr((str(retry_lost.pk), 3))]
    retry_lost.refresh_from_db()
    assert retry_lost.status == SendStatus.SENDING


def test_sends_in_sending_without_a_retry_mark_are_never_re_enqueued(db, settings, queue):
    settings.SMS_SWEEP_QUEUED_AFTER_SECONDS = 60
    settings.SMS_DISPATCH_RETRY_MAX_SECONDS = 0
    org = OrgFactory()
    aged(make(org, SendStatus.SENDING, attempts=1), 400)  # the worker died mid-call: ambiguous
    aged(make(org, SendStatus.SENDING, attempts=1, review_reason=REVIEW_RECONCILING + "x"), 400)
    aged(make(org, SendStatus.SENDING, attempts=1, review_reason=REVIEW_PARKED + "x"), 400)
    aged(retrying(org, provider_message_id="SMaccepted"), 400)  # cannot happen, and must not re-send
    assert sends_requeue_stranded() == 0
    assert queue() == []


def test_a_lost_retry_re_enqueued_by_the_sweeper_sends_once_even_if_the_original_task_runs_too(
        account, fake, settings, queue):
    settings.SMS_SWEEP_QUEUED_AFTER_SECONDS = 60
    settings.SMS_DISPATCH_RETRY_MAX_SECONDS = 300
    send = make(account.org, SendStatus.QUEUED)
    fake.script(Reply(status=503))
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.RETRY
    aged(send, 400)
    assert sends_requeue_stranded() == 1
    assert queue() == [repr((str(send.pk), 1))]  # on the broker; run it (and the original) here
    outcomes = [send_dispatch(send_id=send.pk, attempt=1).outcome for _ in range(2)]  # sweeper's + original
    assert outcomes == [DispatchOutcome.ACCEPTED, DispatchOutcome.SKIPPED]
    assert fake.create_attempts() == 2 and fake.count_creates() == 1


def test_a_retrying_send_is_never_reconciled_as_ambiguous(account, fake, settings):
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 300
    settings.SMS_RECONCILE_DEADLINE_SECONDS = 0
    send = aged(retrying(account.org, sending_started_at=timezone.now() - timedelta(hours=2)), 3600)
    assert sends_reconcile_stuck() == {}
    send.refresh_from_db()
    assert send.status == SendStatus.SENDING and send.review_reason.startswith(REVIEW_RETRYING)
    assert fake.requests == []  # the provider was not even asked


def test_a_re_enqueued_send_is_leased_and_not_re_enqueued_by_the_next_sweep(db, settings, queue):
    settings.SMS_SWEEP_QUEUED_AFTER_SECONDS = 60
    aged(make(OrgFactory(), SendStatus.QUEUED), 120)
    assert sends_requeue_stranded() == 1
    assert sends_requeue_stranded() == 0
    assert len(queue()) == 1


def test_stuck_sending_send_found_at_the_provider_is_recorded_not_resent(account, fake, settings):
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 300
    sid = fake._create_message(fake._accounts[account.account_sid], {"To": TO, "From": account.from_number,
                                                                     "Body": BODY}, {})[1]["sid"]
    send = aged(make(account.org, SendStatus.SENDING, sending_started_at=timezone.now() - timedelta(minutes=6)), 360)
    assert sends_reconcile_stuck() == {"accepted": 1}
    send.refresh_from_db()
    assert (send.status, send.provider_message_id, send.review_reason) == (SendStatus.SENDING, sid, "")
    assert fake.create_attempts() == 0


def test_stuck_sending_send_not_found_is_kept_for_reconciliation_then_parked(account, fake, settings):
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 300
    settings.SMS_RECONCILE_DEADLINE_SECONDS = 3600
    send = aged(make(account.org, SendStatus.SENDING, sending_started_at=timezone.now() - timedelta(minutes=6)), 360)
    assert sends_reconcile_stuck() == {"reconciling": 1}
    send.refresh_from_db()
    assert send.status == SendStatus.SENDING and send.review_reason.startswith(REVIEW_RECONCILING)
    assert sends_reconcile_stuck() == {}  # leased: not re-checked before the threshold passes again
    settings.SMS_RECONCILE_DEADLINE_SECONDS = 60
    aged(send, 360)
    assert sends_reconcile_stuck() == {"parked": 1}
    send.refresh_from_db()
    assert send.status == SendStatus.SENDING and send.review_reason.startswith(REVIEW_PARKED)
    aged(send, 3600)
    assert sends_reconcile_stuck() == {}  # parked sends wait for an operator
    assert fake.create_attempts() == 0


def test_stuck_sandbox_send_is_retried_because_re_sending_is_harmless_and_stays_sending(
        db, settings, queue, django_capture_on_commit_callbacks):
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 300
    send = aged(make(OrgFactory(), SendStatus.SENDING, mode="test", attempts=2), 360)
    with django_capture_on_commit_callbacks(execute=True):
        assert sends_reconcile_stuck() == {"requeued": 1}
    send.refresh_from_db()
    assert (send.status, send.review_reason) == (SendStatus.SENDING, REVIEW_RETRYING + "attempt 2 (not_found)")
    assert queue() == [repr((str(send.pk), 2))]


def test_accepted_send_without_callbacks_gets_its_status_from_the_provider(account, fake, settings):
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 300
    sid = fake._create_message(fake._accounts[account.account_sid], {"To": TO, "From": account.from_number,
                                                                     "Body": BODY}, {})[1]["sid"]
    fake.set_message_status(sid, "delivered")
    send = aged(make(account.org, SendStatus.SENDING, provider_message_id=sid,
                     sending_started_at=timezone.now() - timedelta(minutes=6)), 360)
    assert sends_reconcile_stuck() == {"status_refreshed": 1}
    send.refresh_from_db()
    assert send.status == SendStatus.DELIVERED
    assert sorted(Event.objects.filter(send=send).values_list("type", flat=True)) == ["sms.delivered", "sms.sent"]
    # One fetch of that message by its id (#11): no list of the recipient's messages.
    assert len(fake.requests_to(f"/Messages/{sid}.json", "GET")) == 1
    assert fake.requests_to("/Messages.json", "GET") == []


def test_accepted_send_with_no_final_status_past_the_deadline_is_parked(account, fake, settings):
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 300
    settings.SMS_RECONCILE_DEADLINE_SECONDS = 600
    sid = fake._create_message(fake._accounts[account.account_sid], {"To": TO, "From": account.from_number,
                                                                     "Body": BODY}, {})[1]["sid"]
    send = aged(make(account.org, SendStatus.SENDING, provider_message_id=sid,
                     sending_started_at=timezone.now() - timedelta(minutes=6)), 360)
    assert sends_reconcile_stuck() == {"pending": 1}
    Send.objects.filter(pk=send.pk).update(sending_started_at=timezone.now() - timedelta(hours=1))
    aged(send, 360)
    assert sends_reconcile_stuck() == {"parked": 1}
    send.refresh_from_db()
    assert send.review_reason.startswith(REVIEW_PARKED)


def test_a_sweep_also_publishes_events_left_unpublished(db, settings):
    settings.SMS_EVENTS_STREAM = f"test:events:{uuid.uuid4().hex}"
    event = EventFactory()
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    result = sends_sweep()
    assert result["events_published"] == 1
    assert Event.objects.get(pk=event.pk).published_at is not None
    redis.Redis.from_url(settings.SMS_EVENTS_REDIS_URL).delete(settings.SMS_EVENTS_STREAM)
