"""The message lifecycle's hot path as single prepared statements on PostgreSQL (issue #14, the lifecycle target).

The ORM compiled the claim (a conditional UPDATE with an EXISTS and two CASEs), re-read the row, and wrote
the timeline row and the day counters in four more round trips inside a transaction: about half of a
message's worker CPU. On PostgreSQL the same work is one prepared statement each:

- `accounts_for_send`: the send's org's enabled provider accounts (the routing order's input);
- `claim_queued`: queued → sending with the route, the suppression re-check, the timeline row and the counter
  move, in one statement (data-modifying CTEs run exactly once and atomically, with the UPDATE's new row);
- `mark_accepted`: the provider's id stored on the send still `sending`;
- for every status change (sms/services/status.py): the send read and locked in one statement (`send_locked`,
  `send_locked_by_provider_id`), then its UPDATE (`send_update_statement`), its timeline row, counter move and
  events sent as one batch;
- a provider's common status report: all of that in ONE statement (`status_report_apply`, below).

Each does exactly what the ORM path in sms/services/dispatch.py does (that path stays for SQLite and for every
branch that is not the common one: the retry of an attempt, a suppressed recipient, a test send); the tests in
tests/unit/sms/services/test_statements.py compare the rows both paths leave.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import NamedTuple

from sendora_sms.db import StatementBatch, bind_param, vendor
from sms.models import Event, EventType, ProviderAccount, Send, SendDailyCount, SendStatusChange, Suppression
from sms.services.counters import COUNTER_SHARDS
from sms.statuses import DispatchState, SendStatus

_SEND = Send._meta.db_table
_SEND_FIELDS = Send._meta.concrete_fields
_SEND_JSON = [i for i, f in enumerate(_SEND_FIELDS) if f.get_internal_type() == "JSONField"]
_ACCOUNT_FIELDS = ProviderAccount._meta.concrete_fields


def enabled() -> bool:
    return vendor() == "postgresql"


def _columns(fields, alias: str) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in fields)


_ACCOUNTS_SQL = (
    f"SELECT {_columns(_ACCOUNT_FIELDS, 'pa')} FROM {ProviderAccount._meta.db_table} pa "
    f"WHERE pa.org_id = (SELECT s.org_id FROM {_SEND} s WHERE s.id = %s) AND pa.enabled")


def accounts_for_send(send_id) -> list[ProviderAccount]:
    batch = StatementBatch().add(_ACCOUNTS_SQL, [_uuid(send_id)])
    batch.run()
    names = [f.attname for f in _ACCOUNT_FIELDS]
    return [ProviderAccount.from_db("default", names, list(row)) for row in batch.results[0]]


_COUNTS = SendDailyCount._meta.db_table
# counter_shard in SQL: uuid.int % COUNTER_SHARDS is the low bits of the id's last byte (COUNTER_SHARDS a power of 2)
assert COUNTER_SHARDS & (COUNTER_SHARDS - 1) == 0 and COUNTER_SHARDS <= 256
_SHARD_SQL = f"(get_byte(uuid_send(c.id), 15) & {COUNTER_SHARDS - 1})"


def _counter_move_sql(changed: str, moves: str) -> str:
    """The counter move of the send a CTE `changed` returned, by `moves` ((status, delta) rows): in the bucket of
    sms/services/counters.py — the send's UTC day (counter_day) and shard (counter_shard), computed here in SQL from
    the row (tests/unit/sms/services/test_statements.py and test_status_report_statement.py check both agree) —
    locked in status order like every counter upsert."""
    return f"""INSERT INTO {_COUNTS} (org_id, day, category, status, shard, mode, count, segments, refused)
    SELECT c.org_id, (c.created_at AT TIME ZONE 'UTC')::date, c.category, m.status, {_SHARD_SQL}, c.mode, m.delta,
           m.delta * c.segments, 0
    FROM {changed} c CROSS JOIN {moves} AS m(status, delta)
    ORDER BY m.status
    ON CONFLICT (org_id, day, category, status, shard, mode) DO UPDATE SET
        count = {_COUNTS}.count + excluded.count, segments = {_COUNTS}.segments + excluded.segments"""


def _positional(sql: str) -> tuple[str, list[str]]:
    """StatementBatch binds positional parameters: `sql` with %(name)s → %s, and the names in order of appearance."""
    return re.sub(r"%\(\w+\)s", "%s", sql), re.findall(r"%\((\w+)\)s", sql)


_CLAIM_SQL, _CLAIM_PARAMS = _positional(f"""
WITH claimed AS (
    UPDATE {_SEND} SET status = '{SendStatus.SENDING}', sending_started_at = %(now)s, attempts = attempts + 1,
        updated_at = %(now)s, review_reason = '', dispatch_state = '{DispatchState.IN_FLIGHT}',
        provider = CASE WHEN mode = 'test' THEN provider ELSE %(provider)s END,
        from_number = CASE WHEN mode = 'test' OR (provider = %(provider)s AND from_number <> '') THEN from_number
                           ELSE %(from_number)s END
    WHERE id = %(id)s AND status = '{SendStatus.QUEUED}' AND NOT EXISTS (
        SELECT 1 FROM {Suppression._meta.db_table} su WHERE su.org_id = {_SEND}.org_id AND su.phone_number = {_SEND}."to")
    RETURNING {_columns(_SEND_FIELDS, _SEND)}
), timeline AS (
    INSERT INTO {SendStatusChange._meta.db_table} (send_id, status, source, detail, created_at)
    SELECT id, '{SendStatus.SENDING}', 'worker', jsonb_build_object('attempt', attempts, 'provider', provider), %(now)s
    FROM claimed
), counted AS (
    {_counter_move_sql("claimed", f"(VALUES ('{SendStatus.QUEUED}', -1), ('{SendStatus.SENDING}', 1))")}
)
SELECT * FROM claimed""")


def claim_queued(send_id, *, now, route: ProviderAccount) -> Send | None:
    """queued → sending for attempt 1 (or a re-claim of a send still queued), routed to `route`, unless the
    recipient is suppressed; with its `sending` timeline row and the counter move (queued −1, sending +1), in
    one statement (autocommit: atomic on its own). None when nothing was claimed; the caller then takes the
    ORM path, which tells a suppressed recipient from a send already taken."""
    named = {"now": now, "provider": route.provider, "from_number": route.from_number, "id": _uuid(send_id)}
    batch = StatementBatch().add(_CLAIM_SQL, [named[name] for name in _CLAIM_PARAMS])
    batch.run()
    rows = batch.results[0]
    return _send_from_row(rows[0]) if rows else None


_ACCEPTED_SQL = (f"UPDATE {_SEND} SET updated_at = %s, provider_message_id = %s, review_reason = '', "
                 f"dispatch_state = '{DispatchState.AWAITING_PROVIDER}' WHERE id = %s AND status = '{SendStatus.SENDING}'")


def mark_accepted(send_id, *, provider_message_id: str, now) -> int:
    """The provider took the message: its id on the send, which stays `sending` until the provider reports."""
    batch = StatementBatch().add(_ACCEPTED_SQL, [now, provider_message_id, _uuid(send_id)])
    return batch.run()[0]


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _send_from_row(row) -> Send:
    values = list(row)
    for i in _SEND_JSON:  # jsonb arrives as text on Django's connections (its JSONField decodes it)
        if isinstance(values[i], str):
            values[i] = json.loads(values[i])
    return Send.from_db("default", [f.attname for f in _SEND_FIELDS], values)


_SELECT_SEND = f"SELECT {_columns(_SEND_FIELDS, 's')} FROM {_SEND} s"
_LOCKED_SQL = f"{_SELECT_SEND} WHERE s.id = %s FOR UPDATE"
_PROVIDER_NAMES = [f"provider_{i}" for i in range(8)]


def _providers_in(count: int) -> str:
    """`IN (…)` with one parameter per provider, not `= ANY(%s)`: the plan PostgreSQL keeps for a prepared statement
    (its generic plan) cannot tell an array parameter's length, and on a table without statistics yet it scanned the
    org's sends instead of the (provider, provider_message_id) index (issue #14, eleventh pass: 3 ms per report
    at 10,000 sends)."""
    return ", ".join(f"%({name})s" for name in _PROVIDER_NAMES[:count])


_LOCKED_BY_PROVIDER_ID_SQL: dict[int, str] = {}


def send_locked(send_id) -> Send | None:
    """The whole send, its row locked until the caller's transaction ends (SELECT … FOR UPDATE)."""
    return _one_send(_LOCKED_SQL, [_uuid(send_id)])


def send_locked_by_provider_id(org_id, providers, provider_message_id: str) -> Send | None:
    """The org's send with this provider message id (handed to one of `providers`), locked like send_locked."""
    sql = _LOCKED_BY_PROVIDER_ID_SQL.get(len(providers))
    if sql is None:
        sql = _LOCKED_BY_PROVIDER_ID_SQL[len(providers)] = (
            f"{_SELECT_SEND} WHERE s.org_id = %s AND s.provider IN ({', '.join(['%s'] * len(providers))}) "
            f"AND s.provider_message_id = %s ORDER BY s.id LIMIT 1 FOR UPDATE")
    return _one_send(sql, [_uuid(org_id), *providers, provider_message_id])


def _one_send(sql: str, params: list) -> Send | None:
    batch = StatementBatch().add(sql, params)
    batch.run()
    rows = batch.results[0]
    return _send_from_row(rows[0]) if rows else None


_FIELDS_BY_NAME = {f.attname: f for f in _SEND_FIELDS}
_UPDATE_SQL: dict[tuple, str] = {}


def send_update_statement(send_id, *, from_status: str, values: dict, coalesce: dict):
    """UPDATE the send from exactly `from_status` (the compare-and-set): `values` set as given, `coalesce` kept
    where already set (COALESCE(column, value)). Plain values only: expressions take the ORM."""
    key = (tuple(values), tuple(coalesce))
    sql = _UPDATE_SQL.get(key)
    if sql is None:
        sets = [f'"{_FIELDS_BY_NAME[name].column}" = %s' for name in values]
        sets += [f'"{_FIELDS_BY_NAME[name].column}" = COALESCE("{_FIELDS_BY_NAME[name].column}", %s)' for name in coalesce]
        sql = _UPDATE_SQL[key] = f"UPDATE {_SEND} SET {', '.join(sets)} WHERE id = %s AND status = %s"
    params = [bind_param(_FIELDS_BY_NAME[name], value) for name, value in values.items()]
    params += [bind_param(_FIELDS_BY_NAME[name], value) for name, value in coalesce.items()]
    return sql, params + [_uuid(send_id), from_status]


# --- a provider's status report in ONE statement (issue #14, eleventh pass) ----------------------------------------
#
# A status callback read the send FOR UPDATE in one round trip, then sent its writes (the compare-and-set UPDATE,
# the timeline row, the counter move, the events) and the COMMIT in a second. Everything the writes need from the
# row is in the row, so one statement does both: `reported` locks the org's send with that provider id and keeps
# its status; `changed` moves it if that status is one the new one may follow (sms/statuses.py allowed_from) and
# returns the new row with the old status; the timeline row, the counter move (the bucket of sms/services/
# counters.py: the send's UTC day, shard = its id modulo COUNTER_SHARDS) and the events (the send's data as
# sms/services/events.py send_event_data renders it; sms.sent only if not sent before) are inserted from it.
# Data-modifying CTEs run exactly once and atomically, and nothing is written when the report is stale. The
# two-step path (sms/services/status.py send_transition) stays for everything else; tests/unit/sms/services/
# test_status_report_statement.py compares the rows both leave.

_EVENT = Event._meta.db_table
_TIMELINE = SendStatusChange._meta.db_table
def _iso_sql(column: str) -> str:
    """sms/services/events.py `_iso` in SQL: Python's isoformat() of the UTC time, "+00:00" written "Z", the
    microseconds left out when they are zero (as isoformat() leaves them out). NULL stays NULL."""
    utc = f"(c.{column} AT TIME ZONE 'UTC')"
    return (f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE WHEN to_char({utc}, 'US') = '000000' THEN '' ELSE to_char({utc}, '.US') END || 'Z'")


# send_event_data's keys, from the changed row `c` (tests compare the two for the same rows).
_EVENT_DATA_SQL = "jsonb_build_object(" + ", ".join(f"'{key}', {expr}" for key, expr in [
    ("id", "c.id::text"), ("org_id", "c.org_id::text"), ("to", 'c."to"'), ("from", "c.from_number"),
    ("body", "c.body"), ("category", "c.category"), ("status", "c.status"), ("suppressed_reason", "c.suppressed_reason"),
    ("segments", "c.segments"), ("encoding", "c.encoding"), ("metadata", "c.metadata"), ("provider", "c.provider"),
    ("provider_message_id", "c.provider_message_id"), ("error_code", "c.error_code"),
    ("error_message", "c.error_message"), ("mode", "c.mode"), ("created_at", _iso_sql("created_at")),
    ("updated_at", _iso_sql("updated_at")), ("sent_at", _iso_sql("sent_at")),
    ("delivered_at", _iso_sql("delivered_at")), ("failed_at", _iso_sql("failed_at"))]) + ")"

_REPORT_SQL: dict[tuple, tuple[str, list[str]]] = {}


def _report_sql(sets: tuple[str, ...], providers: int, by_id: bool) -> tuple[str, list[str]]:
    """The statement for a report that sets `sets` (besides status, updated_at, dispatch_state) on a
    send of one of `providers` providers — `by_id`: the send's own id known too — and its parameters' names in
    order."""
    cached = _REPORT_SQL.get((sets, providers, by_id))
    if cached is not None:
        return cached
    # With the send's id (the status-callback URL carries it, signed), the row is found by its primary key whatever
    # the planner believes about the org's sends; the org, provider and provider id must still match.
    by_id_sql = "s.id = %(send_id)s AND " if by_id else ""
    # The change's time: the caller's clock, taken before the row lock was granted — so never before the change that
    # held the lock (its updated_at): the timeline and the events stay in the order the changes were applied.
    at = "GREATEST(%(now)s::timestamptz, s.updated_at)"
    assignments = {"sent_at": f"sent_at = COALESCE(s.sent_at, {at})", "delivered_at": f"delivered_at = {at}",
                   "failed_at": f"failed_at = {at}", "error_code": "error_code = %(error_code)s",
                   "error_message": "error_message = %(error_message)s", "review_reason": "review_reason = %(review_reason)s"}
    sql = f"""
WITH reported AS MATERIALIZED (
    SELECT s.id, s.status FROM {_SEND} s
    WHERE {by_id_sql}s.org_id = %(org)s AND s.provider IN ({_providers_in(providers)}) AND s.provider_message_id = %(provider_message_id)s
    ORDER BY s.id LIMIT 1 FOR UPDATE
), changed AS (
    UPDATE {_SEND} s SET status = %(to)s, updated_at = {at}, dispatch_state = %(dispatch_state)s
        {''.join(', ' + assignments[name] for name in sets)}
    FROM reported r WHERE s.id = r.id AND r.status = ANY(%(allowed)s)
    RETURNING {_columns(_SEND_FIELDS, 's')}, r.status AS from_status
), timeline AS (
    INSERT INTO {_TIMELINE} (send_id, status, source, detail, created_at)
    SELECT c.id, c.status, %(source)s, %(detail)s, c.updated_at FROM changed c
), counted AS (
    {_counter_move_sql("changed", "LATERAL (VALUES (c.from_status, -1), (c.status, 1))")}
), emitted AS (
    INSERT INTO {_EVENT} (id, org_id, type, send_id, inbound_id, data, created_at, published_at, mode)
    SELECT e.id, c.org_id, e.type, c.id, NULL, {_EVENT_DATA_SQL}, c.updated_at + (e.n - 1) * interval '1 microsecond',
           NULL, c.mode
    FROM changed c CROSS JOIN unnest(%(event_types)s::varchar[], %(event_ids)s::uuid[]) WITH ORDINALITY AS e(type, id, n)
    WHERE NOT (e.type = '{EventType.SENT}' AND c.from_status = ANY(%(sent_before)s))
    ON CONFLICT DO NOTHING RETURNING id
)
SELECT r.id, c.from_status, (SELECT array_agg(id) FROM emitted), {_columns(_SEND_FIELDS, 'c')}
FROM reported r LEFT JOIN changed c ON true"""
    cached = _REPORT_SQL[sets, providers, by_id] = _positional(sql)
    return cached


class ReportApplied(NamedTuple):
    send_id: uuid.UUID
    changed: Send | None  # the send as changed, None when the report was stale
    from_status: str | None  # what it changed from
    event_ids: list[uuid.UUID]  # the events inserted


_DETAIL_FIELD = SendStatusChange._meta.get_field("detail")


_REPORT_FIXED = ("status", "updated_at", "dispatch_state")  # set by every report's statement


def status_report_apply(org_id, providers, provider_message_id: str, *, values: dict, stamped: tuple[str, ...],
                        allowed: list[str], source: str, detail: dict, event_types: list[str], sent_before: list[str],
                        commit: bool, send_id=None):
    """Apply a status report to the org's send with this provider id (and, when given, this id), in one statement
    (above): `values`, what the change writes (sms/services/status.py _transition_values: the status, updated_at,
    the dispatch state and the rest), of which `stamped` are kept where already set (sent_at). Returns None when
    there is no such send; else what was done (ReportApplied: `changed` and `from_status` are None when the report
    was stale). `commit`: COMMIT in the same round trip (StatementBatch.run_and_commit)."""
    sets = tuple(name for name in (*values, *stamped) if name not in _REPORT_FIXED)
    sql, names = _report_sql(sets, len(providers), send_id is not None)
    named = {**values, "send_id": None if send_id is None else _uuid(send_id), "org": _uuid(org_id),
             **dict(zip(_PROVIDER_NAMES, providers)), "provider_message_id": provider_message_id,
             "to": values["status"], "now": values["updated_at"], "allowed": allowed, "source": source,
             "detail": bind_param(_DETAIL_FIELD, detail), "event_types": event_types,
             "event_ids": [uuid.uuid4() for _ in event_types], "sent_before": sent_before}
    batch = StatementBatch().add(sql, [named[name] for name in names])
    if commit:
        batch.run_and_commit()
    else:
        batch.run()
    rows = batch.results[0]
    if not rows:
        return None
    send_id, from_status, event_ids, *send_row = rows[0]
    return ReportApplied(send_id, _send_from_row(send_row) if from_status is not None else None, from_status,
                         event_ids or [])
