"""A provider's status report in one statement (sms/services/statements.py status_report_apply, issue #14): it leaves
exactly the rows the two-step path (send_transition's batched transition) leaves — the send, its timeline row, the
counter move and the events with the send's data as send_event_data renders it — in one round trip with the COMMIT,
and keeps the monotonic rule under concurrent reports."""
import threading
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sms.models import Event, Send, SendDailyCount, SendStatusChange
from sms.providers import StatusUpdate
from sms.services import statements
from sms.services import status as status_module
from sms.services.counters import COUNTER_SHARDS, counter_shard, send_counts_add
from sms.services.events import json_round_trip, send_event_data
from sms.services.status import send_apply_status
from sms.statuses import DispatchState, SendStatus
from tests.factories import OrgFactory, SendFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")

SEND_FIELDS = [f.attname for f in Send._meta.concrete_fields if f.attname not in ("id", "org_id", "api_key_id")]


def _sending(org, *, created_at, provider_message_id="SMsame", **kwargs):
    send = SendFactory(org=org, to="+14155550100", status=SendStatus.SENDING, provider="twilio", mode="prod", segments=2,
                       provider_message_id=provider_message_id, dispatch_state=DispatchState.AWAITING_PROVIDER,
                       body='Hé "quoted" \\ back 😀 \n line', metadata={"order": 7, "nested": {"ü": [1, 2.5, None]}},
                       **kwargs)
    Send.objects.filter(pk=send.pk).update(created_at=created_at)
    send.created_at = created_at
    send_counts_add(send=send)
    return send


def _report(status, **kwargs):
    return StatusUpdate(provider_message_id="SMsame", status=status, raw={"MessageStatus": status}, provider="twilio",
                        **kwargs)


def _rows(send):
    send.refresh_from_db()
    timeline = list(SendStatusChange.objects.filter(send=send).order_by("id")
                    .values_list("status", "source", "detail", "created_at"))
    counts = sorted((day, category, status, shard == counter_shard(send.pk), *rest)  # the send's own shard
                    for day, category, status, shard, *rest in SendDailyCount.objects.filter(org_id=send.org_id)
                    .exclude(count=0, segments=0)
                    .values_list("day", "category", "status", "shard", "mode", "count", "segments", "refused"))
    events = [(e.type, e.mode, e.published_at, {k: v for k, v in e.data.items() if k not in ("id", "org_id")},
               e.data["id"] == str(send.pk), e.data["org_id"] == str(send.org_id))
              for e in Event.objects.filter(send=send).order_by("created_at")]
    return {f: getattr(send, f) for f in SEND_FIELDS}, timeline, counts, events


@pytest.mark.parametrize("steps", [
    [("sent", {}), ("delivered", {})],
    [("delivered", {})],                                        # skipped `sent`: sms.sent is emitted too
    [("sent", {}), ("undelivered", {"error_code": "30003", "error_message": "Unreachable"})],
    [("delivered", {}), ("sent", {})],                          # a late `sent` changes nothing
    [("delivered", {}), ("failed", {"error_code": "30007"})],  # a report after a final status changes nothing
    [("failed", {"error_code": "30007" * 5, "error_message": "Filtered"})],  # the code is cut to 16 as before
])
@pytest.mark.parametrize("clock", [
    datetime(2026, 12, 6, 2, 30, 0, 0, tzinfo=dt_timezone.utc),          # whole seconds: no fraction in the ISO text
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt_timezone.utc),  # the last microsecond of a year
])
@pytest.mark.parametrize("with_send_id", [True, False])  # the status-callback URL's id, or the provider id alone
def test_the_one_statement_report_leaves_the_rows_the_two_step_path_leaves(db, monkeypatch, steps, clock, with_send_id):
    created_at = clock.replace(year=2026, month=1, day=1, microsecond=clock.microsecond // 2)
    monkeypatch.setattr(status_module.timezone, "now", lambda: clock)
    results = []
    for one_statement in (True, False):
        monkeypatch.setattr(status_module, "_ONE_STATEMENT",
                            status_module._ONE_STATEMENT if one_statement else frozenset())
        used = []
        real = statements.status_report_apply
        monkeypatch.setattr(statements, "status_report_apply", lambda *a, **k: used.append(1) or real(*a, **k))
        send = _sending(OrgFactory(), created_at=created_at)
        returned = [send_apply_status(org=send.org, update=_report(status, **fields),
                                      send_id=send.pk if with_send_id else None) for status, fields in steps]
        assert bool(used) is one_statement
        stored = Send.objects.get(pk=send.pk)
        for got in returned:  # what the caller gets is what is stored once the last report is in
            assert got.pk == send.pk
        assert {f: getattr(returned[-1], f) for f in SEND_FIELDS} == {f: getattr(stored, f) for f in SEND_FIELDS}
        results.append(_rows(send))
    for a, b in zip(results[0], results[1]):
        assert a == b


@pytest.mark.parametrize("status", ["sent", "delivered", "undelivered", "failed"])
def test_the_events_data_is_send_event_data_of_the_stored_send(db, status):
    send = _sending(OrgFactory(), created_at=datetime(2026, 3, 1, 0, 0, tzinfo=dt_timezone.utc))
    changed = send_apply_status(org=send.org, update=_report(status, error_code="30003", error_message="Nope"))
    expected = json_round_trip(send_event_data(Send.objects.get(pk=send.pk)))
    events = Event.objects.filter(send=send)
    assert events.exists() and changed.status == status
    for event in events:
        assert event.data == expected


def test_the_shard_in_sql_is_counter_shard(db):
    ids = [uuid.uuid4() for _ in range(64)] + [uuid.UUID(int=n) for n in range(COUNTER_SHARDS * 2)]
    sql = "SELECT " + ", ".join(statements._SHARD_SQL.replace("c.id", "%s::uuid") for _ in ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        assert list(cursor.fetchone()) == [counter_shard(i) for i in ids]


@pytest.mark.django_db(transaction=True)
def test_a_report_is_one_statement_in_one_round_trip_with_its_commit(monkeypatch):
    from sendora_sms.db import StatementBatch

    batches = []
    real = StatementBatch.run_and_commit
    monkeypatch.setattr(StatementBatch, "run_and_commit", lambda self: batches.append(len(self.statements)) or real(self))
    send = _sending(OrgFactory(), created_at=datetime(2026, 3, 1, 12, 0, 1, 5, tzinfo=dt_timezone.utc))
    with CaptureQueriesContext(connection) as queries:
        changed = send_apply_status(org=send.org, update=_report("delivered"))
    # Django's debug log names the transaction's edges; the COMMIT rode in the statement's round trip (the batch).
    assert [q["sql"].lstrip().split()[:2] for q in queries if q["sql"] not in ("BEGIN", "COMMIT")] == [
        ["WITH", "reported"]]
    assert batches == [1]
    assert not connection.in_atomic_block and connection.connection.info.transaction_status == 0  # IDLE: committed
    assert changed.status == SendStatus.DELIVERED and changed.sent_at == changed.delivered_at
    assert sorted(Event.objects.filter(send=send).values_list("type", flat=True)) == ["sms.delivered", "sms.sent"]
    assert SendStatusChange.objects.filter(send=send).count() == 1


def test_a_stale_report_writes_nothing_and_returns_the_send_as_stored(db):
    send = _sending(OrgFactory(), created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc))
    send_apply_status(org=send.org, update=_report("delivered"))
    before = _rows(send)
    again = send_apply_status(org=send.org, update=_report("sent"))
    assert again.status == SendStatus.DELIVERED and again.pk == send.pk
    assert _rows(send) == before


def test_another_orgs_send_with_the_same_provider_id_is_not_touched(db):
    mine = _sending(OrgFactory(), created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc))
    theirs = _sending(OrgFactory(), created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc))
    assert send_apply_status(org=mine.org, update=_report("delivered")).pk == mine.pk
    assert Send.objects.get(pk=theirs.pk).status == SendStatus.SENDING
    assert not Event.objects.filter(send=theirs).exists()
    assert send_apply_status(org=OrgFactory(), update=_report("delivered")) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reports", [("sent", "delivered"), ("delivered", "delivered"), ("failed", "delivered")])
def test_concurrent_reports_apply_once_each_and_never_backwards(reports):
    """Real PostgreSQL, one connection per thread, released together: the row lock in the statement orders them."""
    org = OrgFactory()
    sends = [_sending(org, created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc), provider_message_id=f"SMc{i}")
             for i in range(10)]
    for send in sends:
        barrier = threading.Barrier(len(reports))
        errors = []

        def apply(status, send=send, barrier=barrier):
            try:
                barrier.wait(timeout=10)
                send_apply_status(org=org, update=StatusUpdate(provider_message_id=send.provider_message_id,
                                                               status=status, raw={"MessageStatus": status}))
            except Exception as exc:  # noqa: BLE001 — reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=apply, args=(status,)) for status in reports]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
    for send in sends:
        send.refresh_from_db()
        rows = list(SendStatusChange.objects.filter(send=send).order_by("id").values_list("status", "created_at"))
        timeline = [status for status, _ in rows]
        assert send.status in reports and timeline[-1] == send.status and len(timeline) == len(set(timeline))
        assert [at for _, at in rows] == sorted(at for _, at in rows)  # timed in the order they were applied
        types = sorted(Event.objects.filter(send=send).values_list("type", flat=True))
        assert len(types) == len(set(types))  # each event at most once
    totals = {}
    for status, count in SendDailyCount.objects.filter(org=org).values_list("status", "count"):
        totals[status] = totals.get(status, 0) + count
    final = {}
    for send in sends:
        final[send.status] = final.get(send.status, 0) + 1
    assert {s: c for s, c in totals.items() if c} == final  # every move counted once, from the status it left


def _generic_plan(sql: str, params: list) -> str:
    """EXPLAIN of the plan PostgreSQL keeps for `sql` prepared (its generic plan: parameters unknown)."""
    import re

    numbered = iter(range(1, len(params) + 1))
    raw = connection.connection
    raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    raw.execute("PREPARE report_plan AS " + re.sub(r"%s", lambda _: f"${next(numbered)}", sql))
    try:
        rows = raw.execute(f"EXPLAIN EXECUTE report_plan({', '.join(['%s'] * len(params))})", params).fetchall()
    finally:
        raw.execute("DEALLOCATE report_plan")
    return "\n".join(row[0] for row in rows)


def test_a_report_with_its_send_id_finds_the_send_by_its_primary_key_whatever_the_statistics(db):
    """A prepared statement's generic plan does not know its parameters, and statistics can be stale (a tenant whose
    sends grew faster than autovacuum analyses): with only the org and the provider id, PostgreSQL scanned the org's
    sends through send_org_mode_created_idx (3 ms per report at 10,000 sends, the first lifecycle run of this
    statement). With the send id the status-callback URL carries, the primary key finds the row."""
    org = OrgFactory()
    template = _sending(org, created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc), provider_message_id="SMp0")
    columns = [f.column for f in Send._meta.concrete_fields if f.column not in ("id", "provider_message_id")]
    with connection.cursor() as cursor:  # 10,000 sends of the org, as the lifecycle benchmark's backlog
        listed = ", ".join(f'"{c}"' for c in columns)
        cursor.execute(f"INSERT INTO {Send._meta.db_table} (id, provider_message_id, {listed}) "
                       f"SELECT gen_random_uuid(), 'SMp' || n, {listed} FROM {Send._meta.db_table}, "
                       f"generate_series(1, 10000) AS n WHERE id = %s", [template.pk])
    sql, names = statements._report_sql(("sent_at", "delivered_at"), 2, True)
    values = {"send_id": template.pk, "org": org.pk, "provider_0": "twilio", "provider_1": "sandbox",
              "provider_message_id": "SMp0", "to": "delivered", "now": datetime(2026, 3, 1, tzinfo=dt_timezone.utc),
              "dispatch_state": None, "allowed": ["queued", "sending", "sent"], "source": "callback",
              "detail": '{"a": 1}', "event_types": ["sms.sent", "sms.delivered"],
              "event_ids": [uuid.uuid4(), uuid.uuid4()], "sent_before": ["sent"]}
    plan = _generic_plan(sql, [values[name] for name in names])
    lookup = plan.split("CTE changed")[0]
    assert "sms_send_pkey" in lookup and "send_org" not in lookup, plan


def test_a_report_for_another_send_id_or_provider_id_changes_nothing_in_one_statement(db):
    """The id narrows the lookup, never widens it: the org, the provider and the provider id must match too."""
    org = OrgFactory()
    send = _sending(org, created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc), provider_message_id="SMmine")
    other = _sending(org, created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc), provider_message_id="SMother")
    at = datetime(2026, 3, 1, tzinfo=dt_timezone.utc)
    kwargs = {"values": {"status": "delivered", "updated_at": at, "dispatch_state": None, "delivered_at": at,
                         "review_reason": ""}, "stamped": ("sent_at",), "allowed": ["queued", "sending", "sent"],
              "source": "callback", "detail": {}, "event_types": ["sms.sent", "sms.delivered"],
              "sent_before": ["sent"], "commit": False}
    assert statements.status_report_apply(org.pk, ["twilio"], "SMmine", send_id=other.pk, **kwargs) is None
    assert statements.status_report_apply(OrgFactory().pk, ["twilio"], "SMmine", send_id=send.pk, **kwargs) is None
    assert statements.status_report_apply(org.pk, ["sinch"], "SMmine", send_id=send.pk, **kwargs) is None
    assert Send.objects.filter(status=SendStatus.SENDING).count() == 2 and not Event.objects.exists()
    applied = statements.status_report_apply(org.pk, ["twilio"], "SMmine", send_id=send.pk, **kwargs)
    assert applied.changed.pk == send.pk and applied.from_status == SendStatus.SENDING


def test_a_report_that_waited_for_the_row_lock_is_never_timed_before_the_change_that_held_it(db, monkeypatch):
    """The statement's clock is the caller's, read before the row lock was granted: a report that waited while a
    later-clocked change held the lock must still sort after it (the timeline and the events in applied order)."""
    send = _sending(OrgFactory(), created_at=datetime(2026, 3, 1, tzinfo=dt_timezone.utc))
    later = datetime.now(dt_timezone.utc).replace(microsecond=500) + timedelta(days=1)  # after the send's own stamps
    earlier = later - timedelta(microseconds=400)
    monkeypatch.setattr(status_module.timezone, "now", lambda: later)
    send_apply_status(org=send.org, update=_report("sent"), send_id=send.pk)
    monkeypatch.setattr(status_module.timezone, "now", lambda: earlier)  # read before it waited for the lock
    changed = send_apply_status(org=send.org, update=_report("delivered"), send_id=send.pk)
    assert changed.delivered_at == changed.updated_at == later and changed.sent_at == later
    timeline = list(SendStatusChange.objects.filter(send=send).order_by("created_at", "id")
                    .values_list("status", "created_at"))
    assert timeline == [("sent", later), ("delivered", later)]
    events = list(Event.objects.filter(send=send).order_by("created_at").values_list("type", flat=True))
    assert events == ["sms.sent", "sms.delivered"]
