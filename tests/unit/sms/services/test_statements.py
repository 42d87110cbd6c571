"""Dispatch's one-statement hot path on PostgreSQL (sms/services/statements.py) leaves exactly the rows the ORM
path of sms/services/dispatch.py leaves: the claimed send, its `sending` timeline row and the counter move; it
claims nothing that path would refuse (a suppressed recipient, a send no longer queued)."""
import pytest
from django.utils import timezone

from sms.models import Send, SendDailyCount, SendStatusChange
from sms.services import dispatch as dispatch_module
from sms.services import statements
from sms.services.counters import send_counts_add
from sms.statuses import DispatchState, SendStatus
from tests.factories import OrgFactory, ProviderAccountFactory, SendFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

COMPARED = ("status", "attempts", "provider", "from_number", "dispatch_state", "review_reason", "sending_started_at")


def _queued(org, **kwargs):
    send = SendFactory(org=org, status=SendStatus.QUEUED, dispatch_state=DispatchState.PENDING, **kwargs)
    send_counts_add(send=send)
    return send


def _claim(send_id, route, *, fast: bool, monkeypatch, now):
    monkeypatch.setattr(statements, "enabled", lambda: fast)
    monkeypatch.setattr(dispatch_module.timezone, "now", lambda: now)
    return dispatch_module._claim(send_id, None, route=route)


def _rows(send):
    send.refresh_from_db()
    timeline = list(SendStatusChange.objects.filter(send=send).values_list("status", "source", "detail"))
    counts = sorted((s, c, g) for s, c, g in SendDailyCount.objects.filter(org_id=send.org_id)
                    .values_list("status", "count", "segments") if c or g)
    return {f: getattr(send, f) for f in COMPARED}, timeline, counts


@pytest.mark.parametrize("mode, provider, from_number", [
    ("prod", "twilio", "+15005550006"),   # routed to its own provider: keeps its sender
    ("prod", "messagebird", "+15005550006"),  # routed elsewhere: provider and sender follow the route
    ("prod", "twilio", ""),               # no sender yet: the route's
    ("test", "twilio", "+15005550006"),   # test sends stay with the sandbox's provider and sender
])
def test_the_one_statement_claim_leaves_the_rows_the_orm_claim_leaves(monkeypatch, mode, provider, from_number):
    now = timezone.now()
    results = []
    for fast in (True, False):
        org = OrgFactory()
        route = ProviderAccountFactory(org=org, from_number="+15005550099")
        send = _queued(org, mode=mode, provider=provider, from_number=from_number, segments=2)
        claimed = _claim(send.pk, route, fast=fast, monkeypatch=monkeypatch, now=now)
        assert claimed is not None and claimed.pk == send.pk
        assert {f: getattr(claimed, f) for f in COMPARED} == _rows(send)[0]  # what the caller gets is what is stored
        assert (claimed.metadata, claimed.created_at, claimed.body) == (send.metadata, send.created_at, send.body)
        results.append(_rows(send))
    assert results[0] == results[1]
    fields, timeline, counts = results[0]
    assert fields["status"] == SendStatus.SENDING and fields["attempts"] == 1
    assert timeline == [(SendStatus.SENDING, "worker", {"attempt": 1, "provider": fields["provider"]})]
    assert counts == [(SendStatus.SENDING, 1, 2)]  # queued went back to 0


@pytest.mark.parametrize("created_at", [
    "2026-03-01T23:59:59.999999+00:00",  # the last moment of a UTC day
    "2026-03-02T00:00:00+00:00",         # the first of the next
    "2026-03-01T20:30:00-05:00",         # 01:30 UTC on 2 March: a local date that is not the UTC one
    "2026-03-02T08:15:00+09:00",         # 23:15 UTC on 1 March
])
def test_the_one_statement_claim_counts_in_the_bucket_of_counters_py(created_at):
    """The claim's counter move computes the day in SQL (created_at comes from the claimed row): it is the day and
    the shard sms/services/counters.py gives the send (counter_day, counter_shard), the bucket the send was
    counted in when it was created (queued −1 lands on the row of its +1)."""
    import datetime as dt

    from sms.services.counters import counter_day, counter_shard

    org = OrgFactory()
    route = ProviderAccountFactory(org=org)
    send = SendFactory(org=org, status=SendStatus.QUEUED, dispatch_state=DispatchState.PENDING, mode="prod")
    Send.objects.filter(pk=send.pk).update(created_at=dt.datetime.fromisoformat(created_at))
    send.refresh_from_db()
    send_counts_add(send=send)
    assert statements.claim_queued(send.pk, now=timezone.now(), route=route) is not None
    rows = set(SendDailyCount.objects.filter(org=org).values_list("day", "shard", "status", "count"))
    bucket = (counter_day(send.created_at), counter_shard(send.pk))
    assert rows == {(*bucket, SendStatus.QUEUED, 0), (*bucket, SendStatus.SENDING, 1)}


def test_a_suppressed_recipient_or_a_send_no_longer_queued_is_not_claimed(monkeypatch):
    org = OrgFactory()
    route = ProviderAccountFactory(org=org)
    suppressed = _queued(org, mode="prod")
    SuppressionFactory(org=org, phone_number=suppressed.to)
    taken = _queued(org, mode="prod")
    Send.objects.filter(pk=taken.pk).update(status=SendStatus.SENDING, attempts=1)
    for send in (suppressed, taken):
        before = _rows(send)
        assert statements.claim_queued(send.pk, now=timezone.now(), route=route) is None
        assert _rows(send) == before


def test_another_orgs_suppression_of_the_number_does_not_block_the_claim():
    org, other = OrgFactory(), OrgFactory()
    route = ProviderAccountFactory(org=org)
    send = _queued(org, mode="prod")
    SuppressionFactory(org=other, phone_number=send.to)
    assert statements.claim_queued(send.pk, now=timezone.now(), route=route) is not None


def test_accounts_for_send_are_its_orgs_enabled_accounts_only():
    org, other = OrgFactory(), OrgFactory()
    mine = ProviderAccountFactory(org=org, provider="twilio")
    ProviderAccountFactory(org=org, provider="sinch", enabled=False)
    ProviderAccountFactory(org=other, provider="twilio")
    send = _queued(org, mode="prod")
    (found,) = statements.accounts_for_send(send.pk)
    assert (found.pk, found.org_id, found.account_sid, found.auth_token()) == (mine.pk, org.pk, mine.account_sid,
                                                                             mine.auth_token())


def test_mark_accepted_stores_the_provider_id_only_on_a_send_still_sending():
    org = OrgFactory()
    sending = _queued(org, mode="prod")
    Send.objects.filter(pk=sending.pk).update(status=SendStatus.SENDING, dispatch_state=DispatchState.IN_FLIGHT,
                                              review_reason="x")
    delivered = _queued(org, mode="prod")
    Send.objects.filter(pk=delivered.pk).update(status=SendStatus.DELIVERED)
    assert statements.mark_accepted(sending.pk, provider_message_id="SM1", now=timezone.now()) == 1
    assert statements.mark_accepted(delivered.pk, provider_message_id="SM2", now=timezone.now()) == 0
    sending.refresh_from_db()
    delivered.refresh_from_db()
    assert (sending.provider_message_id, sending.dispatch_state, sending.review_reason) == (
        "SM1", DispatchState.AWAITING_PROVIDER, "")
    assert delivered.provider_message_id == ""


# --- status changes: the batched transition (sms/services/status.py on PostgreSQL) against the ORM's ----------


def _transition_rows(send):
    from sms.models import Event

    send.refresh_from_db()
    fields = {f: getattr(send, f) for f in ("status", "dispatch_state", "review_reason", "error_code", "error_message")}
    stamps = {f: getattr(send, f) is not None for f in ("sent_at", "delivered_at", "failed_at")}
    timeline = list(SendStatusChange.objects.filter(send=send).order_by("id").values_list("status", "source", "detail"))
    counts = sorted((s, c, g) for s, c, g in SendDailyCount.objects.filter(org_id=send.org_id)
                    .values_list("status", "count", "segments") if c or g)
    # The event data, but for what differs between two sends (ids, factory-made text) and the clock.
    same = ("status", "segments", "mode", "provider", "provider_message_id", "error_code", "error_message", "category")
    events = sorted((e.type, {k: e.data[k] for k in same}, e.data["id"] == str(send.pk),
                     {k: e.data[k] is not None for k in ("sent_at", "delivered_at", "failed_at")})
                    for e in Event.objects.filter(send=send))
    return fields, stamps, timeline, counts, events


@pytest.mark.parametrize("steps", [
    [("sent", {}), ("delivered", {})],
    [("delivered", {})],                                        # skipped `sent`: sms.sent is emitted too
    [("sent", {}), ("undelivered", {"error_code": "30003", "error_message": "Unreachable"})],
    [("delivered", {}), ("sent", {})],                          # a late `sent` changes nothing
    [("failed", {"error_code": "30007", "error_message": "Filtered"})],
])
def test_the_batched_transition_leaves_the_rows_the_orm_transition_leaves(monkeypatch, django_capture_on_commit_callbacks,
                                                                        steps):
    from django.db import transaction

    from sms.services.status import send_transition

    results = []
    for batched in (True, False):
        monkeypatch.setattr(statements, "enabled", lambda batched=batched: batched)
        org = OrgFactory()
        send = _queued(org, mode="prod", segments=3)
        Send.objects.filter(pk=send.pk).update(status=SendStatus.SENDING, provider_message_id="SMx",
                                               dispatch_state=DispatchState.AWAITING_PROVIDER)
        send.status = SendStatus.SENDING
        from sms.services.counters import send_counts_move

        send_counts_move(send=send, from_status=SendStatus.QUEUED, to_status=SendStatus.SENDING)
        published = []
        for status, fields in steps:
            with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
                changed = send_transition(send_id=send.pk, to_status=status, source="callback", fields=fields,
                                          detail={"provider_status": status})
            published.append(len(callbacks))
            if changed is not None:  # what the caller gets is what is stored
                stored = Send.objects.get(pk=send.pk)
                assert (changed.status, changed.sent_at, changed.delivered_at, changed.failed_at, changed.error_code) == (
                    stored.status, stored.sent_at, stored.delivered_at, stored.failed_at, stored.error_code)
        results.append((_transition_rows(send), published))
    assert results[0] == results[1]


def test_the_batched_transition_uses_the_callers_locked_row_and_never_moves_backwards(monkeypatch):
    from django.db import transaction

    from sms.services.status import send_transition

    org = OrgFactory()
    send = _queued(org, mode="prod")
    Send.objects.filter(pk=send.pk).update(status=SendStatus.DELIVERED)
    with transaction.atomic():
        locked = statements.send_locked(send.pk)
        assert locked.status == SendStatus.DELIVERED
        assert send_transition(send_id=send.pk, to_status=SendStatus.SENT, source="callback", locked=locked) is None
    assert Send.objects.get(pk=send.pk).status == SendStatus.DELIVERED
    assert not SendStatusChange.objects.filter(send=send).exists()


def test_send_locked_by_provider_id_finds_only_the_orgs_send_of_those_providers():
    org, other = OrgFactory(), OrgFactory()
    mine = _queued(org, mode="prod", provider="twilio")
    Send.objects.filter(pk=mine.pk).update(provider_message_id="SMshared")
    theirs = _queued(other, mode="prod", provider="twilio")
    Send.objects.filter(pk=theirs.pk).update(provider_message_id="SMshared")
    assert statements.send_locked_by_provider_id(org.pk, ["twilio", "sandbox"], "SMshared").pk == mine.pk
    assert statements.send_locked_by_provider_id(org.pk, ["sinch"], "SMshared") is None
    assert statements.send_locked_by_provider_id(org.pk, ["twilio"], "SMother") is None


@pytest.mark.django_db(transaction=True)
def test_a_status_reports_commit_rides_in_its_writes_round_trip(monkeypatch):
    """A provider's status report is the outermost transaction (a callback): its writes and the COMMIT go in one
    round trip (StatementBatch.run_and_commit) and Django's own COMMIT finds nothing left; every row is stored
    and the event is published after the commit. Not when something follows the transition (an opt-out)."""
    from django.db import connection

    from sendora_sms.db import StatementBatch
    from sms.models import Event
    from sms.providers.base import StatusUpdate
    from sms.services.status import send_apply_status

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    early = []
    real = StatementBatch.run_and_commit
    monkeypatch.setattr(StatementBatch, "run_and_commit", lambda self: early.append(1) or real(self))
    org = OrgFactory()
    send = _queued(org, mode="prod", provider="twilio")
    Send.objects.filter(pk=send.pk).update(status=SendStatus.SENDING, provider_message_id="SMcommit")
    changed = send_apply_status(org=org, update=StatusUpdate(provider_message_id="SMcommit", status="delivered",
                                                             raw={"MessageStatus": "delivered"}))
    assert changed.status == SendStatus.DELIVERED and early == [1]
    assert not connection.in_atomic_block and connection.connection.info.transaction_status == 0  # IDLE: committed
    stored = Send.objects.get(pk=send.pk)
    assert stored.status == SendStatus.DELIVERED and stored.sent_at and stored.delivered_at
    assert sorted(Event.objects.filter(send=send).values_list("type", flat=True)) == ["sms.delivered", "sms.sent"]
    # Both committed unpublished: the rows are the hand-off to the dispatcher's drain (sms/services/events.py).
    assert Event.objects.filter(send=send, published_at__isnull=True).count() == 2
    assert SendStatusChange.objects.filter(send=send, status=SendStatus.DELIVERED).count() == 1

    # An opt-out report adds a suppression after the transition: the atomic block commits, not the batch.
    other = _queued(org, mode="prod", provider="twilio")
    Send.objects.filter(pk=other.pk).update(status=SendStatus.SENDING, provider_message_id="SMoptout")
    send_apply_status(org=org, update=StatusUpdate(provider_message_id="SMoptout", status="failed", error_code="21610",
                                                   recipient_opted_out=True, raw={"MessageStatus": "failed"}))
    assert early == [1]
    from sms.models import Suppression

    assert Send.objects.get(pk=other.pk).status == SendStatus.FAILED
    assert Suppression.objects.filter(org=org, phone_number=other.to).exists()
