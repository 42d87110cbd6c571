"""The monthly quota meter: reserve / refund / status.

Periods are calendar months in UTC, starting on the 1st at 00:00. One QuotaUsage row per
(org, period) counts the units reserved in it; the limit is `org.monthly_quota` (plan default or
override), read at reservation time, so raising an org's quota takes effect immediately.

Race-free by construction: a reservation is ONE conditional UPDATE
(`used = used + n WHERE used + n <= share`), so concurrent requests can never overdraw — the
database serialises the row updates and re-checks the condition on the newest row version.
Rows are created on demand with an insert that ignores conflicts (never read-then-write).
Called inside the caller's transaction, a reservation is undone if that transaction rolls back.

Shards. The caller holds the meter row's lock until its transaction commits (WAL flush included),
so with one row per period every concurrent send of an org waits for the previous one's COMMIT.
A period's meter is therefore split over `shards_for(limit)` rows (1 for small quotas, up to
QUOTA_SHARDS for large ones), shard i carrying share_i of the limit (the shares sum to the limit).
A reservation tries one shard picked at random and, only if that one is full, the others in turn;
it is refused when every shard is full — so the total never exceeds the limit and, for
single-unit reservations, the limit is reachable exactly. A multi-unit reservation must fit in one
shard's headroom. Each UPDATE also re-checks the period total against the current limit, so a
limit lowered mid-period is respected too (that total is read at statement start: exact except
for reservations racing the change itself).
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from collections.abc import Sequence

from django.db import DataError, connection
from django.db.models import F, Subquery, Sum
from django.utils import timezone

from django.conf import settings

from orgs.errors import QuotaExceededError
from orgs.models import Org, QuotaUsage, SandboxDailyUsage
from sendora_sms.db import Statement, StatementBatch, bind_param, can_commit_early, fail_unless, failed_unless


@dataclass(frozen=True)
class QuotaStatus:
    limit: int
    used: int
    remaining: int
    period_start: dt.datetime  # inclusive, UTC midnight on the 1st
    period_end: dt.datetime  # exclusive: the next period's start


def period_start_for(at: dt.datetime | None = None) -> dt.date:
    """The first day (UTC) of the monthly period containing `at` (default: now)."""
    at = (at or timezone.now()).astimezone(dt.timezone.utc)
    return at.date().replace(day=1)


def period_bounds(start: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """(inclusive start, exclusive end) of the period starting on `start`, as UTC datetimes."""
    next_start = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (dt.datetime.combine(start, dt.time.min, tzinfo=dt.timezone.utc),
            dt.datetime.combine(next_start, dt.time.min, tzinfo=dt.timezone.utc))


QUOTA_SHARDS = 8
QUOTA_SHARD_MIN = 10_000  # units per shard at least: starter-size quotas (low send rates) keep one row


def shards_for(limit: int) -> int:
    return max(1, min(QUOTA_SHARDS, limit // QUOTA_SHARD_MIN))


def _share(limit: int, shards: int, shard: int) -> int:
    return limit // shards + (1 if shard < limit % shards else 0)


_TABLE = QuotaUsage._meta.db_table
# One conditional UPDATE (same SQL on PostgreSQL and SQLite): the shard's own headroom AND the
# period total against the current limit. Hand-written because it runs on every send: building it
# through the ORM (filter + Subquery + Coalesce + alias) cost more CPU than the statement itself.
_RESERVE_SQL = (
    f"UPDATE {_TABLE} SET used = used + %s "
    f"WHERE org_id = %s AND period_start = %s AND shard = %s AND used <= %s "
    f"AND (SELECT COALESCE(SUM(t.used), 0) FROM {_TABLE} t WHERE t.org_id = %s AND t.period_start = %s) <= %s"
)


# The same reservation as ONE statement that fails when it reserved nothing (the shard is full, or the period's
# rows don't exist yet): the error stops the round trip's COMMIT (quota_reserve(commit=True); fail_unless).
_MISSED = "sendora_quota_first_shard_missed"
_RESERVE_OR_FAIL_SQL = f"WITH r AS ({_RESERVE_SQL} RETURNING 1) SELECT {fail_unless('count(*) = 1', _MISSED)} FROM r"


_QUOTA_ORG, _QUOTA_PERIOD = QuotaUsage._meta.get_field("org").target_field, QuotaUsage._meta.get_field("period_start")


class QuotaFirstAttemptMissed(Exception):
    """quota_reserve(commit=True): the first shard reserved nothing, so nothing was committed and the
    caller's transaction is aborted. Roll it back (leave the atomic block) and run it again with
    commit=False, which creates the period's rows and tries every shard."""


def _reserve_statement(*, org: Org, period_start: dt.date, shard: int, units: int, share: int,
                       limit: int) -> Statement:
    org_id = bind_param(_QUOTA_ORG, org.pk)
    day = bind_param(_QUOTA_PERIOD, period_start)
    return _RESERVE_SQL, [units, org_id, day, shard, share - units, org_id, day, limit - units]


def _try_reserve(*, org: Org, period_start: dt.date, shard: int, units: int, share: int, limit: int) -> bool:
    if units > share:
        return False
    sql, params = _reserve_statement(org=org, period_start=period_start, shard=shard, units=units, share=share,
                                     limit=limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def quota_reserve(*, org: Org, units: int = 1, at: dt.datetime | None = None,
                  before: Sequence[Statement] = (), commit: bool = False) -> dt.date:
    """Reserve `units` of the org's quota in the period containing `at`; return that period's start.

    Raises QuotaExceededError when the reservation would take the period over the limit (the caller's
    transaction must then roll back). The common case is one UPDATE; the first reservation of a
    period adds one INSERT.

    `before`: statements the caller wants run just before the first reservation attempt, in the same
    database round trip (sendora_sms/db.py) — e.g. a send's inserts and its day-counter upsert, so
    the send's writes cost one round trip. They run whatever that attempt's outcome; if the
    reservation is refused (or this raises at all), the caller's rollback undoes them. Don't put
    statements that lock other rows *after* a reservation: a failed first attempt goes on to lock
    other meter rows, and taking locks in an inconsistent order is how deadlocks happen.

    `commit=True` (PostgreSQL, the caller's outermost transaction; sendora_sms/db.py can_commit_early):
    the round trip also COMMITs the caller's transaction when the first attempt reserves — the caller
    must then run no further query in its atomic block. When that attempt reserves nothing, its
    statement fails instead, nothing is committed, and this raises QuotaFirstAttemptMissed: the caller
    rolls back and runs its transaction again with commit=False. Elsewhere it is ignored.
    """
    if units < 1:
        raise ValueError("units must be a positive integer")
    period_start = period_start_for(at)
    limit = org.monthly_quota
    if units > limit:
        raise _exceeded(org=org, limit=limit, period_start=period_start)
    shards = shards_for(limit)
    first = random.randrange(shards)
    kw = {"org": org, "period_start": period_start, "units": units, "limit": limit}
    first_share = _share(limit, shards, first)
    fits = units <= first_share
    batch = StatementBatch(before)
    if fits and commit and can_commit_early():
        sql, params = _reserve_statement(shard=first, share=first_share, **kw)
        batch.add(_RESERVE_OR_FAIL_SQL, params)
        try:
            batch.run_and_commit()
        except DataError as exc:
            if failed_unless(exc, _MISSED):
                raise QuotaFirstAttemptMissed() from exc
            raise
        return period_start
    if fits:
        batch.add(*_reserve_statement(shard=first, share=first_share, **kw))
    counts = batch.run()
    if fits and counts[len(before)] == 1:
        return period_start
    # The period's rows may not exist yet, or this shard is full: create missing rows, then try every shard.
    QuotaUsage.objects.bulk_create([QuotaUsage(org=org, period_start=period_start, shard=i, used=0)
                                    for i in range(shards)], ignore_conflicts=True)
    for k in range(shards):
        shard = (first + k) % shards
        if _try_reserve(shard=shard, share=_share(limit, shards, shard), **kw):
            return period_start
    raise _exceeded(org=org, limit=limit, period_start=period_start)


def quota_refund(*, org_id, period_start: dt.date, units: int = 1) -> bool:
    """Give back `units` reserved in the period starting `period_start` (e.g. the provider
    rejected the message before accepting it). Never goes below zero. Returns whether it applied."""
    if units < 1:
        raise ValueError("units must be a positive integer")
    fullest = (QuotaUsage.objects.filter(org_id=org_id, period_start=period_start, used__gte=units)
               .order_by("-used", "shard").values("pk")[:1])
    updated = (QuotaUsage.objects.filter(pk=Subquery(fullest), used__gte=units)
               .update(used=F("used") - units))
    return updated == 1


def quota_status(*, org: Org, at: dt.datetime | None = None) -> QuotaStatus:
    """Limit, used and remaining units of the period containing `at` (default: now)."""
    start = period_start_for(at)
    used = QuotaUsage.objects.filter(org=org, period_start=start).aggregate(total=Sum("used"))["total"] or 0
    limit = org.monthly_quota
    period_start, period_end = period_bounds(start)
    return QuotaStatus(limit=limit, used=used, remaining=max(0, limit - used),
                       period_start=period_start, period_end=period_end)


def _exceeded(*, org: Org, limit: int, period_start: dt.date) -> QuotaExceededError:
    _, period_end = period_bounds(period_start)
    return QuotaExceededError(
        f"The org's monthly quota of {limit} messages is used up until {period_end.isoformat()}.",
        details={"limit": limit, "period_start": period_start.isoformat(), "resets_at": period_end.isoformat()},
    )


# ---------------------------------------------------------------------------------------------
# The sandbox's daily cap (test keys). Test sends never touch the live meter above.
# ---------------------------------------------------------------------------------------------
_SANDBOX_TABLE = SandboxDailyUsage._meta.db_table
# One statement, race-free like the live meter: the upsert only adds while the day's count is under the
# cap, so rowcount 0 means "cap reached" (same SQL on PostgreSQL and SQLite ≥ 3.24).
_SANDBOX_RESERVE_SQL = (
    f"INSERT INTO {_SANDBOX_TABLE} (org_id, day, used) VALUES (%s, %s, 1) "
    f"ON CONFLICT (org_id, day) DO UPDATE SET used = {_SANDBOX_TABLE}.used + 1 "
    f"WHERE {_SANDBOX_TABLE}.used < %s"
)


def _utc_day(at: dt.datetime | None = None) -> dt.date:
    return (at or timezone.now()).astimezone(dt.timezone.utc).date()


def sandbox_reserve(*, org: Org, at: dt.datetime | None = None, before: Sequence[Statement] = ()) -> dt.date:
    """Count one test send against the org's sandbox cap for the UTC day containing `at`; return that day.

    Raises QuotaExceededError (429 quota_exceeded, details.scope "sandbox_daily") when the day's cap is
    reached; the caller's transaction must then roll back. `before`: as for quota_reserve — the caller's
    statements, sent in the same round trip just before the reservation."""
    day = _utc_day(at)
    cap = settings.SANDBOX_DAILY_CAP
    org_id = SandboxDailyUsage._meta.get_field("org").target_field.get_db_prep_value(org.pk, connection)
    batch = StatementBatch(before)
    if cap > 0:
        batch.add(_SANDBOX_RESERVE_SQL, [org_id, connection.ops.adapt_datefield_value(day), cap])
    counts = batch.run()
    if cap > 0 and counts[len(before)] == 1:
        return day
    start, end = _day_bounds(day)
    raise QuotaExceededError(
        f"The sandbox's daily cap of {cap} test sends is used up until {end.isoformat()}; "
        f"test sends never spend the live quota.",
        details={"scope": "sandbox_daily", "limit": cap, "period_start": day.isoformat(),
                 "resets_at": end.isoformat()},
    )


def sandbox_refund(*, org_id, at: dt.datetime) -> bool:
    """Give back one test send counted on the UTC day of `at` (its created_at): it failed before the
    sandbox accepted it. Never goes below zero."""
    return SandboxDailyUsage.objects.filter(org_id=org_id, day=_utc_day(at), used__gte=1).update(
        used=F("used") - 1) == 1


def sandbox_status(*, org: Org, at: dt.datetime | None = None) -> QuotaStatus:
    """The sandbox cap as a QuotaStatus: limit, used and remaining test sends of today (UTC)."""
    day = _utc_day(at)
    used = SandboxDailyUsage.objects.filter(org=org, day=day).values_list("used", flat=True).first() or 0
    cap = settings.SANDBOX_DAILY_CAP
    start, end = _day_bounds(day)
    return QuotaStatus(limit=cap, used=used, remaining=max(0, cap - used), period_start=start, period_end=end)


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.timezone.utc)
    return start, start + dt.timedelta(days=1)
