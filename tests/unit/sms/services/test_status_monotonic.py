"""A status never moves backwards — in dispatch retries, the sweeper and reconciliation too.

Each scenario runs the real pipeline (send_dispatch, the sweeper, the fake Twilio over HTTP or the
sandbox) and then checks every send's timeline is non-decreasing in RANK, that every counter move
the status service applied was forward, and that the day counters agree with the sends' statuses.
"""
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from sms.models import ProviderAccount, Send, SendDailyCount, SendStatusChange
from sms.services import statements
from sms.services import status as status_module
from sms.services.counters import send_counts_add
from sms.services.dispatch import REVIEW_RETRYING, DispatchOutcome, send_dispatch
from sms.providers.base import StatusUpdate
from sms.services.status import BackwardStatusChange, send_apply_status, send_status_change_record
from sms.services.sweeper import sends_reconcile_stuck, sends_requeue_stranded
from sms.statuses import RANK, SendStatus, is_forward
from tests.factories import TEST_AUTH_TOKEN, OrgFactory, ProviderAccountFactory, SendFactory, SendStatusChangeFactory
from tests.fakes.twilio_server import FakeTwilio, Reply

TO = "+14155550177"


@pytest.fixture
def fake(settings):
    with FakeTwilio() as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        settings.TWILIO_HTTP_TIMEOUT = 2.0
        yield server


@pytest.fixture
def account(db, fake):
    account = ProviderAccountFactory()
    fake.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    return account


@pytest.fixture
def moves(monkeypatch):
    """Every counter move applied, recorded on the way through to the real counters."""
    applied = []
    real = status_module.send_counts_move

    def record(*, send, from_status, to_status):
        applied.append((from_status, to_status))
        real(send=send, from_status=from_status, to_status=to_status)

    monkeypatch.setattr(status_module, "send_counts_move", record)
    real_statement = status_module.send_counts_move_statement

    def record_statement(*, send, from_status, to_status):  # the batched transition (PostgreSQL)
        applied.append((from_status, to_status))
        return real_statement(send=send, from_status=from_status, to_status=to_status)

    monkeypatch.setattr(status_module, "send_counts_move_statement", record_statement)
    # Dispatch's one-statement claim on PostgreSQL (sms/services/statements.py) moves queued → sending in SQL.
    real_claim = statements.claim_queued

    def claim(send_id, **kwargs):
        send = real_claim(send_id, **kwargs)
        if send is not None:
            applied.append(("queued", "sending"))
        return send

    monkeypatch.setattr(statements, "claim_queued", claim)
    # A provider's report in one statement (statements.status_report_apply) moves its counters in SQL too.
    real_report = statements.status_report_apply

    def report(*args, **kwargs):
        applied_report = real_report(*args, **kwargs)
        if applied_report is not None and applied_report.changed is not None:
            applied.append((applied_report.from_status, applied_report.changed.status))
        return applied_report

    monkeypatch.setattr(statements, "status_report_apply", report)
    return applied


@pytest.fixture
def enqueued(monkeypatch):
    """Dispatch tasks the code under test enqueued (args), instead of publishing them to the broker."""
    from sms.tasks import send_dispatch_task

    calls = []
    monkeypatch.setattr(send_dispatch_task, "delay", lambda *args: calls.append(args))
    return calls


def queued(org, *, mode="prod"):
    send = SendFactory(org=org, status=SendStatus.QUEUED, mode=mode, provider="twilio" if mode == "prod" else "sandbox",
                       to=TO, body="Your code is 246810")
    SendStatusChangeFactory(send=send, status=SendStatus.QUEUED, source="api")  # as send_create writes it
    send_counts_add(send=send)
    return send


def age(send, seconds):
    Send.objects.filter(pk=send.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def assert_monotonic(send, moves):
    statuses = list(SendStatusChange.objects.filter(send=send).order_by("created_at", "id")
                    .values_list("status", flat=True))
    ranks = [RANK[s] for s in statuses]
    assert ranks == sorted(ranks), statuses
    assert all(is_forward(a, b) for a, b in moves), moves
    send.refresh_from_db()
    by_status = {}
    for status, count in SendDailyCount.objects.filter(org_id=send.org_id).values_list("status", "count"):
        by_status[status] = by_status.get(status, 0) + count
    assert {s: n for s, n in by_status.items() if n} == {send.status: 1}
    return statuses


def test_transient_then_success_is_monotonic(account, fake, moves):
    send = queued(account.org)
    fake.script([Reply(status=503), Reply(status=429, headers={"Retry-After": "1"})])
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.RETRY
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.RETRY
    assert send_dispatch(send_id=send.pk, attempt=2).outcome == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    for status in ("sent", "delivered", "sent"):  # a late `sent` changes nothing
        send_apply_status(org=send.org, update=StatusUpdate(provider_message_id=send.provider_message_id,
                                                            status=status, raw={"MessageStatus": status}))
    assert assert_monotonic(send, moves) == ["queued", "sending", "sending", "sending", "sending", "sending",
                                             "sent", "delivered"]
    assert moves == [("queued", "sending"), ("sending", "sent"), ("sent", "delivered")]


def test_exhausted_retries_are_monotonic(account, fake, moves, settings):
    settings.SMS_DISPATCH_MAX_RETRIES = 2
    send = queued(account.org)
    fake.script([Reply(status=503)] * 3)
    for attempt in (None, 1, 2):
        send_dispatch(send_id=send.pk, attempt=attempt)
    assert assert_monotonic(send, moves)[-1] == "failed"
    assert moves == [("queued", "sending"), ("sending", "failed")]


def test_provider_unavailable_then_swept_retry_is_monotonic(account, fake, moves, enqueued, settings):
    settings.SMS_SWEEP_QUEUED_AFTER_SECONDS = 60
    settings.SMS_DISPATCH_RETRY_MAX_SECONDS = 300
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 60
    send = queued(account.org)
    good = ProviderAccount.objects.get(pk=account.pk).auth_token_encrypted
    ProviderAccount.objects.filter(pk=account.pk).update(auth_token_encrypted="v1:not-a-ciphertext")
    with pytest.raises(Exception):
        send_dispatch(send_id=send.pk)
    ProviderAccount.objects.filter(pk=account.pk).update(auth_token_encrypted=good)
    age(send, 400)
    assert sends_reconcile_stuck() == {}  # retrying is not ambiguous: never reconciled
    age(send, 400)
    assert sends_requeue_stranded() == 1
    assert enqueued == [(str(send.pk), 1)]
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.ACCEPTED
    assert assert_monotonic(send, moves) == ["queued", "sending", "sending", "sending"]
    assert fake.create_attempts() == 1


def test_sandbox_send_not_found_by_reconciliation_is_retried_without_going_back_to_queued(
        db, moves, enqueued, settings, django_capture_on_commit_callbacks):
    settings.SMS_SWEEP_SENDING_AFTER_SECONDS = 300
    org = OrgFactory()
    send = queued(org, mode="test")
    Send.objects.filter(pk=send.pk).update(status=SendStatus.SENDING, attempts=1,
                                             dispatch_state="in_flight")  # the worker died mid-call
    with transaction.atomic():
        send_status_change_record(send=send, from_status="queued", to_status="sending", source="worker")
    age(send, 360)
    with django_capture_on_commit_callbacks(execute=True):
        assert sends_reconcile_stuck() == {"requeued": 1}
    send.refresh_from_db()
    assert (send.status, send.review_reason) == (SendStatus.SENDING, REVIEW_RETRYING + "attempt 1 (not_found)")
    assert enqueued == [(str(send.pk), 1)]
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.ACCEPTED
    assert assert_monotonic(send, moves) == ["queued", "sending", "sending", "sending", "sent", "delivered"]


def test_the_status_service_refuses_to_record_a_backward_change(db):
    send = SendFactory(status=SendStatus.SENDING)
    with pytest.raises(BackwardStatusChange), transaction.atomic():
        send_status_change_record(send=send, from_status=SendStatus.SENDING, to_status=SendStatus.QUEUED,
                                  source="worker")
    with pytest.raises(BackwardStatusChange), transaction.atomic():
        send_status_change_record(send=send, from_status=SendStatus.DELIVERED, to_status=SendStatus.SENT,
                                  source="callback")
    assert not SendStatusChange.objects.filter(send=send).exists()
    assert not SendDailyCount.objects.filter(org_id=send.org_id).exclude(count=0).exists()
