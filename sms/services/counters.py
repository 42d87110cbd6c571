"""Per-day send counters (SendDailyCount), maintained on the write path.

`GET …/sms/stats` reads these rows instead of scanning sends, so it stays fast however long
the history grows. Every change is one `INSERT … ON CONFLICT DO UPDATE` (the same SQL works on
PostgreSQL and on SQLite ≥ 3.24), so concurrent writers never lose an increment and no
read-then-write is needed. Callers run inside the transaction that changes the send, so a
rolled-back change rolls its counters back too.

- `send_counts_add(send=…)`: a send was created with `send.status` (api: queued / suppressed / failed);
  a send refused because its recipient is suppressed is also counted in `refused`.
- `send_counts_move(send=…, from_status=…, to_status=…)`: an applied status change (the status
  service calls it once per change that actually updated the row).
- `send_counts_segments_adjust(send=…, status=…, delta=…)`: the provider counted the send's segments
  differently from us (dispatch keeps the provider's figure).

Buckets are per mode (prod | test: stats are per mode, README "Test and live keys").
The bucket is the UTC day of `send.created_at` — a send stays counted on the day it was created,
whatever day its status later changes on.

Each bucket is split over COUNTER_SHARDS rows; a send always uses the shard derived from its id.
With one row per bucket, every concurrent send of an org would wait on that row's lock until the
previous transaction's COMMIT (WAL flush) — a per-org throughput ceiling of ~1 / commit latency.
Readers sum over shards.
"""
from __future__ import annotations

import datetime as dt
import uuid

from django.db import connection
from django.utils import timezone

from sendora_sms.db import Statement, bind_param
from sms.models import SendDailyCount
from sms.statuses import SendStatus

_TABLE = SendDailyCount._meta.db_table
COUNTER_SHARDS = 8


def counter_shard(send_id) -> int:
    """The shard of the send with this id. Stable across processes: the same send always moves within the
    same shard. (sms/services/statements.py computes the same in SQL for its one-statement counter moves:
    _SHARD_SQL.)"""
    send_uuid = send_id if isinstance(send_id, uuid.UUID) else uuid.UUID(str(send_id))
    return send_uuid.int % COUNTER_SHARDS


def counter_day(created_at: dt.datetime) -> dt.date:
    """The bucket day of a send created at `created_at`: its UTC date. (sms/services/statements.py
    _counter_move_sql computes the same day in SQL: `(created_at AT TIME ZONE 'UTC')::date`.)"""
    return created_at.astimezone(dt.timezone.utc).date()


def _shard_of(send) -> int:
    return counter_shard(send.pk)


def _day_of(send) -> dt.date:
    return counter_day(send.created_at or timezone.now())


_ORG_FIELD, _DAY_FIELD = SendDailyCount._meta.get_field("org").target_field, SendDailyCount._meta.get_field("day")


def _upsert_statement(rows: list[tuple]) -> Statement:
    """rows: (org_id, day, category, status, shard, mode, count_delta, segments_delta[, refused_delta]).

    Rows are sorted so concurrent callers lock the counter rows in the same order (no deadlocks).
    """
    rows = sorted(rows, key=lambda r: (str(r[0]), r[1], r[2], r[3], r[4], r[5]))
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    params: list = []
    for org_id, day, category, status, shard, mode, count, segments, *refused in rows:
        # Adapt like the ORM would (SQLite stores UUIDs as hex, dates as ISO strings).
        params.extend([bind_param(_ORG_FIELD, org_id), bind_param(_DAY_FIELD, day),
                       category, status, shard, mode, count, segments, refused[0] if refused else 0])
    sql = (
        f"INSERT INTO {_TABLE} (org_id, day, category, status, shard, mode, count, segments, refused) "
        f"VALUES {placeholders} "
        f"ON CONFLICT (org_id, day, category, status, shard, mode) DO UPDATE SET "
        f"count = {_TABLE}.count + excluded.count, segments = {_TABLE}.segments + excluded.segments, "
        f"refused = {_TABLE}.refused + excluded.refused"
    )
    return sql, params


def _upsert(rows: list[tuple]) -> None:
    sql, params = _upsert_statement(rows)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def send_counts_add_statement(*, send) -> Statement:
    """The statement that counts a newly created send under its current status, for a caller that
    runs it in a batch with others (sendora_sms/db.py)."""
    return _upsert_statement([(send.org_id, _day_of(send), send.category, send.status, _shard_of(send), send.mode,
                               1, send.segments, 1 if _refused_for_suppression(send) else 0)])


def _refused_for_suppression(send) -> bool:
    """Refused at acceptance because the recipient is suppressed: it never reaches a provider, so the
    delivery rate leaves it out (sms.selectors.send_stats)."""
    from sms.services.sends import SUPPRESSED_ERROR_CODE

    return send.status == SendStatus.FAILED and send.error_code == SUPPRESSED_ERROR_CODE


def send_counts_add(*, send) -> None:
    """Count a newly created send under its current status (one statement)."""
    sql, params = send_counts_add_statement(send=send)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def send_counts_segments_adjust(*, send, status: str, delta: int) -> None:
    """Add `delta` segments to the bucket of `status` for the send's day (the send count is
    unchanged): when the provider counted the send's segments differently from us."""
    if delta:
        _upsert([(send.org_id, _day_of(send), send.category, status, _shard_of(send), send.mode, 0, delta)])


def send_counts_move(*, send, from_status: str, to_status: str) -> None:
    """Move one send from `from_status` to `to_status` in its day's counters (one statement)."""
    if from_status == to_status:
        return
    sql, params = send_counts_move_statement(send=send, from_status=from_status, to_status=to_status)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def send_counts_move_statement(*, send, from_status: str, to_status: str) -> Statement:
    """The statement of send_counts_move (the statuses differ), for a caller that runs it in a batch."""
    day, shard = _day_of(send), _shard_of(send)
    return _upsert_statement([
        (send.org_id, day, send.category, from_status, shard, send.mode, -1, -send.segments),
        (send.org_id, day, send.category, to_status, shard, send.mode, 1, send.segments),
    ])
