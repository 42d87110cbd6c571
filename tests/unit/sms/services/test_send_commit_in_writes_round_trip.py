"""The send's COMMIT rides in its writes round trip (issue #14: orgs/quota.quota_reserve(commit=True),
sendora_sms/db.StatementBatch.run_and_commit). Real transactions (transactional tests): the send must be
the outermost transaction for the early COMMIT to apply.

Proven: a queued send is committed whole in that round trip (send, timeline row, audit entry, counter,
quota unit) and Django's own COMMIT finds nothing left to do; when the round trip's quota attempt reserves
nothing (a new period's meter rows, a full shard) nothing of it is committed and the transaction runs
again in full — one send, one audit entry, one quota unit; a quota refusal still stores nothing; and
inside a savepoint (e.g. a test's transaction around the send's) nothing commits early."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from audit.models import AuditEntry
from orgs.errors import QuotaExceededError
from orgs.models import KeyMode, QuotaUsage
from orgs import quota as quota_module
from sendora_sms.db import StatementBatch, can_commit_early
from sms.models import Send, SendDailyCount, SendStatusChange
from sms.services import send_create
from tests.factories import ApiKeyFactory, ProviderAccountFactory

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live(org):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    ProviderAccountFactory(org=org)
    return ApiKeyFactory(org=org, mode=KeyMode.PROD)


@pytest.fixture
def spy(monkeypatch):
    calls = {"run_and_commit": 0, "missed": 0}
    real_run_and_commit = StatementBatch.run_and_commit
    real_reserve = quota_module.quota_reserve

    def run_and_commit(self):
        calls["run_and_commit"] += 1
        return real_run_and_commit(self)

    def reserve(**kw):
        try:
            return real_reserve(**kw)
        except quota_module.QuotaFirstAttemptMissed:
            calls["missed"] += 1
            raise

    monkeypatch.setattr(StatementBatch, "run_and_commit", run_and_commit)
    monkeypatch.setattr("sms.services.sends.quota_reserve", reserve)
    return calls


def _stored(org):
    return {
        "sends": Send.objects.filter(org=org).count(),
        "audit_ok": AuditEntry.objects.filter(org_id=org.pk, action="sms.send", outcome="ok").count(),
        "timeline": SendStatusChange.objects.filter(send__org=org).count(),
        "counted": SendDailyCount.objects.filter(org=org).aggregate(n=Sum("count"))["n"] or 0,
        "quota": QuotaUsage.objects.filter(org=org).aggregate(n=Sum("used"))["n"] or 0,
    }


def _send(org, key, i):
    return send_create(org=org, api_key=key, to=f"+1415555{i:04d}", body=f"code {i}").send


def test_the_first_send_of_a_period_misses_once_then_runs_again_in_full(org, live, spy):
    assert not QuotaUsage.objects.filter(org=org).exists()
    send = _send(org, live, 1)
    assert send.status == "queued"
    assert spy == {"run_and_commit": 1, "missed": 1}
    assert _stored(org) == {"sends": 1, "audit_ok": 1, "timeline": 1, "counted": 1, "quota": 1}
    assert Send.objects.get().pk == send.pk


def test_a_queued_send_commits_in_its_writes_round_trip(org, live, spy):
    _send(org, live, 1)  # creates the period's meter rows
    spy.update(run_and_commit=0, missed=0)
    for i in range(2, 6):
        assert _send(org, live, i).status == "queued"
        assert connection.connection.info.transaction_status == 0  # idle: nothing left open
    assert spy["run_and_commit"] == 4 and spy["missed"] == 0
    assert _stored(org) == {"sends": 5, "audit_ok": 5, "timeline": 5, "counted": 5, "quota": 5}


def test_a_full_meter_is_a_quota_refusal_that_stores_nothing(org, live, spy):
    org.monthly_quota_override = 2
    org.save()
    _send(org, live, 1)
    _send(org, live, 2)
    with pytest.raises(QuotaExceededError):
        _send(org, live, 3)
    assert spy["missed"] == 2  # the first send of the period, and the refused one
    assert _stored(org) == {"sends": 2, "audit_ok": 2, "timeline": 2, "counted": 2, "quota": 2}


def test_can_commit_early_only_in_the_outermost_block(live):
    assert not can_commit_early()  # autocommit, no transaction
    with transaction.atomic():
        assert can_commit_early()
        with transaction.atomic():
            assert not can_commit_early()  # a savepoint
        with transaction.atomic(savepoint=False):
            assert not can_commit_early()  # nested without a savepoint: still not the transaction's own block
