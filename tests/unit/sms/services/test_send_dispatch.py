"""send_dispatch against real PostgreSQL and the fake Twilio over real HTTP (prod) or the sandbox (test)."""
import threading
import time

import pytest
from django.db import connection, connections
from django.db.models import Sum

from orgs.models import QuotaUsage
from orgs.quota import period_start_for
from sms.models import Event, ProviderAccount, Send, SendDailyCount, SendStatusChange, Suppression
from sms.services.counters import send_counts_add
from sms.services.dispatch import (
    REVIEW_PARKED,
    REVIEW_RECONCILING,
    REVIEW_RETRYING,
    DispatchOutcome,
    send_dispatch,
)
from sms.statuses import SendStatus
from sms.tasks import retry_countdown
from tests.factories import TEST_AUTH_TOKEN, OrgFactory, ProviderAccountFactory, SendFactory
from tests.fakes.twilio_server import FakeTwilio, Reply

TO = "+14155550142"


@pytest.fixture
def fake(settings):
    with FakeTwilio() as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        settings.TWILIO_HTTP_TIMEOUT = 2.0
        settings.SMS_PUBLIC_BASE_URL = "https://sendora.example"
        yield server


@pytest.fixture
def account(db, fake):
    account = ProviderAccountFactory()
    fake.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    return account


def queued(org, *, mode="prod", to=TO, body="Your code is 482910", reserve=True, **fields):
    send = SendFactory(org=org, status=SendStatus.QUEUED, mode=mode, provider="twilio" if mode == "prod" else "sandbox",
                       to=to, body=body, **fields)
    send_counts_add(send=send)
    if reserve:
        usage, _ = QuotaUsage.objects.get_or_create(org=org, period_start=period_start_for(send.created_at))
        QuotaUsage.objects.filter(pk=usage.pk).update(used=usage.used + 1)
    return send


def quota_used(org):
    return QuotaUsage.objects.get(org=org, period_start=period_start_for()).used


def types(send):
    return sorted(Event.objects.filter(send=send).values_list("type", flat=True))


def timeline(send):
    return [(c.status, c.detail) for c in SendStatusChange.objects.filter(send=send).order_by("created_at", "id")]


def counted(org):
    """The org's day counters by status (summed over shards), zero rows left out."""
    totals = {}
    for status, count in SendDailyCount.objects.filter(org=org).values_list("status", "count"):
        totals[status] = totals.get(status, 0) + count
    return {status: n for status, n in totals.items() if n}


# --- acceptance ------------------------------------------------------------------------------

def test_accepted_send_records_the_provider_id_and_stays_sending_until_twilio_reports_sent(account, fake):
    send = queued(account.org)
    result = send_dispatch(send_id=send.pk)
    assert result.outcome == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    (message,) = fake.messages.values()
    assert send.provider_message_id == message["sid"]
    assert (send.status, send.attempts, send.review_reason) == (SendStatus.SENDING, 1, "")
    assert send.sending_started_at is not None
    assert [c.status for c in SendStatusChange.objects.filter(send=send)] == ["sending"]
    assert types(send) == []


def test_the_providers_segment_count_wins_and_the_day_counters_follow(account, fake):
    send = queued(account.org, segments=3)  # we counted 3; Twilio counts this body as 1
    assert SendDailyCount.objects.filter(org=account.org).aggregate(s=Sum("segments"))["s"] == 3
    send_dispatch(send_id=send.pk)
    send.refresh_from_db()
    (message,) = fake.messages.values()
    assert send.segments == int(message["num_segments"]) == 1
    rows = SendDailyCount.objects.filter(org=account.org).values("status").annotate(n=Sum("count"), s=Sum("segments"))
    assert {r["status"]: (r["n"], r["s"]) for r in rows if r["n"] or r["s"]} == {SendStatus.SENDING: (1, 1)}


def test_the_request_carries_the_orgs_status_callback_url(account, fake):
    send = queued(account.org)
    send_dispatch(send_id=send.pk)
    (request,) = fake.requests_to("/Messages.json", "POST")
    assert request.form["StatusCallback"] == (f"https://sendora.example/api/v1/sms/webhooks/twilio/{account.org_id}/status"
                                              f"?send_id={send.pk}")
    assert request.form["To"] == TO and request.form["From"] == send.from_number
    assert request.auth == (account.account_sid, TEST_AUTH_TOKEN)


def test_no_status_callback_without_a_public_base_url(account, fake, settings):
    settings.SMS_PUBLIC_BASE_URL = ""
    send_dispatch(send_id=queued(account.org).pk)
    (request,) = fake.requests_to("/Messages.json", "POST")
    assert "StatusCallback" not in request.form


def test_a_redelivered_task_does_not_call_the_provider_twice(account, fake):
    send = queued(account.org)
    send_dispatch(send_id=send.pk)
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.SKIPPED
    assert fake.create_attempts() == 1
    send.refresh_from_db()
    assert send.attempts == 1


@pytest.mark.parametrize("status", [SendStatus.SUPPRESSED, SendStatus.FAILED, SendStatus.DELIVERED])
def test_sends_that_are_not_queued_are_never_dispatched(account, fake, status):
    send = SendFactory(org=account.org, status=status, mode="prod", provider="twilio")
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.SKIPPED
    assert fake.create_attempts() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_dispatching_one_send_call_the_provider_once(fake):
    account = ProviderAccountFactory()
    fake.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    send = queued(account.org)
    barrier = threading.Barrier(6)
    outcomes = []

    def work():
        try:
            barrier.wait()
            outcomes.append(send_dispatch(send_id=send.pk).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.create_attempts() == 1
    assert sorted(outcomes) == ["accepted"] + ["skipped"] * 5


@pytest.mark.django_db(transaction=True)
def test_no_transaction_or_row_lock_is_held_during_the_provider_call(fake):
    account = ProviderAccountFactory()
    fake.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    send = queued(account.org)
    fake.script(Reply(delay=1.0))
    worker = threading.Thread(target=lambda: (send_dispatch(send_id=send.pk), connections.close_all()))
    worker.start()
    deadline = time.time() + 5
    while fake.create_attempts() == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert fake.create_attempts() == 1  # the worker is now inside the HTTP call
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()")
        assert cursor.fetchone()[0] == 0
    # The send row is not locked either: a NOWAIT lock succeeds at once.
    from django.db import transaction
    with transaction.atomic():
        assert Send.objects.select_for_update(nowait=True).filter(pk=send.pk).count() == 1
    worker.join()
    send.refresh_from_db()
    assert send.provider_message_id


# --- transient -------------------------------------------------------------------------------

def test_503_keeps_the_send_sending_marked_retrying_never_back_to_queued(account, fake):
    send = queued(account.org)
    fake.script(Reply(status=503))
    result = send_dispatch(send_id=send.pk)
    assert (result.outcome, result.attempt) == (DispatchOutcome.RETRY, 1)
    send.refresh_from_db()
    assert (send.status, send.attempts, send.provider_message_id) == (SendStatus.SENDING, 1, "")
    assert send.review_reason == REVIEW_RETRYING + "attempt 1 (20503)"
    assert fake.count_creates() == 0
    assert timeline(send) == [("sending", {"attempt": 1, "provider": "twilio"}),
                              ("sending", {"retry": True, "attempt": 1, "error_code": "20503"})]
    assert counted(account.org) == {"sending": 1}
    assert types(send) == []


def test_503_then_success_sends_exactly_once(account, fake):
    send = queued(account.org)
    fake.script(Reply(status=503))
    send_dispatch(send_id=send.pk)
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    assert (send.attempts, fake.count_creates(), send.review_reason) == (2, 1, "")
    assert send.provider_message_id
    assert [status for status, _ in timeline(send)] == ["sending"] * 3
    assert timeline(send)[-1] == ("sending", {"attempt": 2, "provider": "twilio"})
    assert counted(account.org) == {"sending": 1}


@pytest.mark.parametrize("attempt", [None, 0, 2])
def test_a_retrying_send_is_claimed_only_by_the_retry_of_its_attempt(account, fake, attempt):
    send = queued(account.org)
    fake.script(Reply(status=503))
    send_dispatch(send_id=send.pk)
    # The API's hand-off / a stale or future retry task: nothing to claim, no provider call.
    assert send_dispatch(send_id=send.pk, attempt=attempt).outcome == DispatchOutcome.SKIPPED
    assert fake.create_attempts() == 1
    send.refresh_from_db()
    assert (send.status, send.attempts) == (SendStatus.SENDING, 1)
    assert send.review_reason.startswith(REVIEW_RETRYING)


def test_a_redelivered_retry_task_does_not_call_the_provider_twice(account, fake):
    send = queued(account.org)
    fake.script(Reply(status=503))
    send_dispatch(send_id=send.pk)
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.ACCEPTED
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.SKIPPED
    assert fake.create_attempts() == 2 and fake.count_creates() == 1


def test_a_send_in_sending_without_a_retry_mark_is_never_claimed_by_a_retry_task(account, fake):
    """A worker died mid-call (no mark): the outcome is ambiguous, only reconciliation may touch it."""
    send = queued(account.org)
    Send.objects.filter(pk=send.pk).update(status=SendStatus.SENDING, attempts=1, dispatch_state="in_flight")
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.SKIPPED
    Send.objects.filter(pk=send.pk).update(review_reason=REVIEW_RECONCILING + "20500: x", dispatch_state="reconciling")
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.SKIPPED
    assert fake.create_attempts() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_retry_tasks_call_the_provider_once(fake):
    account = ProviderAccountFactory()
    fake.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    send = queued(account.org)
    fake.script(Reply(status=503))
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.RETRY
    barrier = threading.Barrier(6)
    outcomes = []

    def work():
        try:
            barrier.wait()
            outcomes.append(send_dispatch(send_id=send.pk, attempt=1).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["accepted"] + ["skipped"] * 5
    assert fake.create_attempts() == 2 and fake.count_creates() == 1
    send.refresh_from_db()
    assert send.attempts == 2


def test_undecryptable_credentials_keep_the_send_sending_marked_retrying(account, fake):
    send = queued(account.org)
    ProviderAccount.objects.filter(pk=account.pk).update(auth_token_encrypted="v1:not-a-ciphertext")
    with pytest.raises(Exception):
        send_dispatch(send_id=send.pk)
    send.refresh_from_db()
    assert (send.status, send.attempts, send.provider_message_id) == (SendStatus.SENDING, 1, "")
    assert send.review_reason == REVIEW_RETRYING + "attempt 1 (provider_unavailable)"
    assert timeline(send)[-1] == ("sending", {"retry": True, "attempt": 1, "error_code": "provider_unavailable"})
    assert fake.create_attempts() == 0
    assert counted(account.org) == {"sending": 1}


def test_undecryptable_credentials_fail_the_send_once_the_retry_budget_is_spent(account, fake, settings):
    settings.SMS_DISPATCH_MAX_RETRIES = 1
    send = queued(account.org)
    ProviderAccount.objects.filter(pk=account.pk).update(auth_token_encrypted="v1:not-a-ciphertext")
    with pytest.raises(Exception):
        send_dispatch(send_id=send.pk)
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.FAILED
    send.refresh_from_db()
    assert (send.status, send.error_code, send.attempts) == (SendStatus.FAILED, "credentials", 2)
    assert "Dashboard" in send.error_message
    assert fake.create_attempts() == 0
    assert quota_used(account.org) == 0


def test_429_retry_carries_retry_after(account, fake):
    fake.script(Reply(status=429, headers={"Retry-After": "12"}))
    result = send_dispatch(send_id=queued(account.org).pk)
    assert (result.outcome, result.retry_after) == (DispatchOutcome.RETRY, 12.0)


def test_exhausted_retries_fail_with_the_provider_code_and_refund_the_quota(account, fake, settings):
    settings.SMS_DISPATCH_MAX_RETRIES = 1
    send = queued(account.org)
    fake.script([Reply(status=503), Reply(status=503)])
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.RETRY
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.FAILED
    send.refresh_from_db()
    assert (send.status, send.error_code, send.attempts) == (SendStatus.FAILED, "20503", 2)
    assert send.failed_at is not None
    assert quota_used(account.org) == 0
    assert types(send) == ["sms.failed"]


# --- permanent -------------------------------------------------------------------------------

def test_permanent_error_fails_the_send_refunds_quota_and_emits_sms_failed(account, fake):
    send = queued(account.org, to="+15005550001")
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.FAILED
    send.refresh_from_db()
    assert (send.status, send.error_code) == (SendStatus.FAILED, "21211")
    assert "not a valid phone number" in send.error_message
    assert quota_used(account.org) == 0
    assert types(send) == ["sms.failed"]
    assert not Suppression.objects.exists()


def test_21610_fails_suppresses_the_recipient_and_refunds(account, fake):
    send = queued(account.org, to="+15005550004")
    send_dispatch(send_id=send.pk)
    send.refresh_from_db()
    assert (send.status, send.error_code) == (SendStatus.FAILED, "21610")
    suppression = Suppression.objects.get(org=account.org, phone_number="+15005550004")
    assert (suppression.reason, suppression.source) == ("carrier_opt_out", "dispatch")
    assert quota_used(account.org) == 0


def test_rejected_credentials_fail_with_20003(db, fake):
    account = ProviderAccountFactory()
    fake.add_account(account.account_sid, "a-different-token", numbers=[account.from_number])
    send = queued(account.org)
    send_dispatch(send_id=send.pk)
    send.refresh_from_db()
    assert (send.status, send.error_code) == (SendStatus.FAILED, "20003")
    assert quota_used(account.org) == 0


def test_a_live_send_without_a_provider_account_fails_provider_not_configured(db, fake):
    send = queued(OrgFactory())
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.FAILED
    send.refresh_from_db()
    assert (send.status, send.error_code) == (SendStatus.FAILED, "not_configured")
    assert fake.create_attempts() == 0


# --- ambiguous -------------------------------------------------------------------------------

def test_read_timeout_after_twilio_created_the_message_is_reconciled_not_resent(account, fake, settings):
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    send = queued(account.org)
    fake.script(Reply(delay=1.5))
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    (message,) = fake.messages.values()
    assert send.provider_message_id == message["sid"]
    assert (send.status, send.review_reason) == (SendStatus.SENDING, "")
    assert fake.create_attempts() == 1
    assert len(fake.requests_to("/Messages.json", "GET")) == 1


def test_ambiguous_error_with_no_message_found_stays_sending_for_review(account, fake):
    send = queued(account.org)
    fake.script(Reply(status=500))  # a 500 with nothing created
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.RECONCILING
    send.refresh_from_db()
    assert send.status == SendStatus.SENDING and send.provider_message_id == ""
    assert send.review_reason.startswith(REVIEW_RECONCILING + "20500")
    assert fake.create_attempts() == 1
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.SKIPPED  # no blind re-send
    assert fake.create_attempts() == 1


def test_ambiguous_error_past_the_deadline_is_parked(account, fake, settings):
    settings.SMS_RECONCILE_DEADLINE_SECONDS = 0
    send = queued(account.org)
    fake.script(Reply(status=200, body="garbage not json", create=False))
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.PARKED
    send.refresh_from_db()
    assert send.status == SendStatus.SENDING and send.review_reason.startswith(REVIEW_PARKED)


def test_reconciliation_never_claims_a_message_recorded_on_another_send(account, fake):
    first = queued(account.org)
    send_dispatch(send_id=first.pk)
    second = queued(account.org)  # same recipient and body
    fake.script(Reply(status=500))
    assert send_dispatch(send_id=second.pk).outcome == DispatchOutcome.RECONCILING
    second.refresh_from_db()
    assert second.provider_message_id == ""


# --- sandbox (test keys) ---------------------------------------------------------------------

def test_sandbox_send_progresses_to_delivered_through_the_status_service(db, fake):
    org = OrgFactory()
    send = queued(org, mode="test")
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    assert send.status == SendStatus.DELIVERED and send.provider_message_id.startswith("SM")
    assert [(c.status, c.source) for c in SendStatusChange.objects.filter(send=send)] == [
        ("sending", "worker"), ("sent", "sandbox"), ("delivered", "sandbox")]
    assert types(send) == ["sms.delivered", "sms.sent"]
    assert fake.requests == []


def test_sandbox_magic_opted_out_number_fails_and_suppresses(db):
    org = OrgFactory()
    send = queued(org, mode="test", to="+15005550004")
    send_dispatch(send_id=send.pk)
    send.refresh_from_db()
    assert (send.status, send.error_code) == (SendStatus.FAILED, "21610")
    assert Suppression.objects.filter(org=org, phone_number="+15005550004", reason="carrier_opt_out").exists()


def test_dispatch_hot_path_is_a_bounded_number_of_queries(db, django_assert_max_num_queries, account):
    send = queued(account.org)
    with django_assert_max_num_queries(10):
        send_dispatch(send_id=send.pk)


# --- retry policy ----------------------------------------------------------------------------

def test_retry_countdown_is_full_jitter_exponential_capped_and_honours_retry_after(settings):
    settings.SMS_DISPATCH_RETRY_BASE_SECONDS = 2.0
    settings.SMS_DISPATCH_RETRY_MAX_SECONDS = 60.0
    for attempt in range(1, 10):
        values = [retry_countdown(attempt=attempt) for _ in range(200)]
        assert all(0 <= v <= min(60.0, 2.0 * 2 ** (attempt - 1)) for v in values)
        assert len(set(values)) > 100  # jittered, not a fixed delay
    assert all(retry_countdown(attempt=1, retry_after=30) >= 30 for _ in range(50))
    assert retry_countdown(attempt=1, retry_after=999) == 60.0
