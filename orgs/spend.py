"""The spend meter: live spend (USD, Decimal) per org, UTC day and destination country; spend caps.

Every live send accepted as queued adds its estimated price to the meter row (org, day, country,
shard) in the send's own transaction (one upsert, batched with the send's other writes), whether or not
the org has a cap — so a cap set mid-month covers the spend before it (README "Cost and countries").
A refused send's transaction rolls its upsert back; a send that fails before the provider took it is
refunded (`spend_refund`, wherever the quota unit is refunded); a price reported by the provider
moves the meter by the difference (`spend_adjust`).

Caps, race-free by construction. For an org with a monthly cap or a cap on the send's country, the
reservation first takes a transaction-scoped advisory lock on (org, "spend") and only then reads the
month's totals (READ COMMITTED: each statement sees what earlier lock holders committed), checks
`total + price <= cap` for each cap, and adds its row — all before COMMIT releases the lock. So
concurrent sends of a capped org are serialised on the lock and can never overdraw a cap. Uncapped orgs
take no lock: their upserts spread over SPEND_SHARDS rows (by send id), like the day counters.

Lock order (no deadlock cycles): the send path takes the dedupe lock, then this spend lock, then its
counter rows, its meter row, and last the quota meter; the refund path (dispatch) moves the counters,
refunds the spend row, then the quota — the same order. SQLite serialises writers; the lock is skipped.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Sum

from orgs.errors import SpendCapExceeded
from orgs.models import Org, SpendThresholdMark, SpendUsage
from orgs.quota import period_bounds, period_start_for
from sendora_sms.db import Statement, StatementBatch, bind_param

SPEND_SHARDS = 8
THRESHOLDS = (50, 80, 100)  # percent of a cap; sms.spend_threshold fires once per period at each
MONTHLY = "monthly"
_TABLE = SpendUsage._meta.db_table
_MARKS = SpendThresholdMark._meta.db_table
ZERO = Decimal("0")


@dataclass(frozen=True)
class Crossing:
    """A cap's threshold reached by a reservation, not yet announced this period."""

    scope: str  # MONTHLY or a country code
    threshold: int  # percent
    cap: Decimal
    spent: Decimal  # the period's spend under this cap after the reservation
    period_start: dt.date
    resets_at: dt.datetime


@dataclass
class Reservation:
    statements: list[Statement]  # the caller's statements + the meter upsert (+ threshold marks)
    crossings: list[Crossing] = field(default_factory=list)


def shard_for(send_id) -> int:
    return uuid.UUID(str(send_id)).int % SPEND_SHARDS


def _day(at: dt.datetime) -> dt.date:
    return at.astimezone(dt.timezone.utc).date()


_SPEND_ORG, _SPEND_DAY = SpendUsage._meta.get_field("org").target_field, SpendUsage._meta.get_field("day")


def _org_id(org_id):
    return bind_param(_SPEND_ORG, getattr(org_id, "pk", org_id))


def _dec(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def _add_statement(*, org_id, day: dt.date, country: str, shard: int, amount: Decimal) -> Statement:
    """Add `amount` (may be negative; the row never goes below zero) to one meter row, creating it."""
    sql = (f"INSERT INTO {_TABLE} (org_id, day, country, shard, amount) VALUES (%s, %s, %s, %s, %s) "
           f"ON CONFLICT (org_id, day, country, shard) DO UPDATE SET amount = CASE "
           f"WHEN {_TABLE}.amount + %s < 0 THEN 0 ELSE {_TABLE}.amount + %s END")
    return sql, [_org_id(org_id), bind_param(_SPEND_DAY, day), country, shard, max(amount, ZERO),
                 amount, amount]


def country_caps(org: Org) -> dict[str, Decimal]:
    return {str(k).upper(): _dec(v) for k, v in (org.country_spend_caps or {}).items()}


def spend_capped(org: Org, country: str) -> bool:
    """Whether a send to `country` is under a cap (the org's monthly cap or that country's): spend_reserve then
    reads the meter (its own round trip, under the org's spend lock) before it returns its statements."""
    return org.monthly_spend_cap is not None or country in country_caps(org)


def spend_reserve(*, org: Org, send_id, country: str, amount: Decimal, at: dt.datetime,
                  before: Sequence[Statement] = ()) -> Reservation:
    """Reserve `amount` (the send's estimated price) on the meter; return the statements to run in the
    caller's transaction (its own `before`, then the meter upsert), for its next round trip.

    For a capped org (monthly cap, or a cap on `country`) this first runs the lock and the month's
    totals (one round trip) and raises SpendCapExceeded when a cap would be exceeded — the caller's
    transaction then rolls back. Must run inside the caller's transaction."""
    statements = list(before)
    if amount <= 0:
        return Reservation(statements)
    period_start = period_start_for(at)
    day = _day(at)
    upsert = _add_statement(org_id=org.pk, day=day, country=country, shard=shard_for(send_id), amount=amount)
    if not spend_capped(org, country):
        return Reservation([*statements, upsert])
    monthly_cap = org.monthly_spend_cap
    country_cap = country_caps(org).get(country)

    start, end = period_bounds(period_start)
    org_id = _org_id(org.pk)
    first, last = (connection.ops.adapt_datefield_value(d) for d in (start.date(), end.date()))
    reads: list[Statement] = [
        (f"SELECT COALESCE(SUM(amount), 0), COALESCE(SUM(CASE WHEN country = %s THEN amount ELSE 0 END), 0) "
         f"FROM {_TABLE} WHERE org_id = %s AND day >= %s AND day < %s", [country, org_id, first, last]),
        (f"SELECT scope, threshold FROM {_MARKS} WHERE org_id = %s AND period_start = %s",
         [org_id, connection.ops.adapt_datefield_value(period_start)]),
    ]
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"{org.pk}|spend".encode()).digest()
        reads.insert(0, ("SELECT pg_advisory_xact_lock(%s::bigint)", [int.from_bytes(digest[:8], "big", signed=True)]))
    batch = StatementBatch(reads)
    batch.run()
    (month_total, country_total), = batch.results[-2]
    month_total, country_total = _dec(month_total), _dec(country_total)
    marked = {(scope, int(threshold)) for scope, threshold in batch.results[-1]}

    caps = []
    if monthly_cap is not None:
        caps.append((MONTHLY, monthly_cap, month_total))
    if country_cap is not None:
        caps.append((country, country_cap, country_total))
    for scope, cap, spent in caps:
        if spent + amount > cap:
            raise SpendCapExceeded(
                f"The {'monthly' if scope == MONTHLY else scope} spend cap of {cap} USD would be exceeded "
                f"(spent {spent} USD this month; this send costs {amount} USD); it resets at {end.isoformat()}.",
                details={"cap": _plain(cap), "scope": MONTHLY if scope == MONTHLY else "country",
                         "country": None if scope == MONTHLY else scope, "spent": _plain(spent),
                         "price": _plain(amount), "resets_at": _iso(end)})
    crossings = []
    for scope, cap, spent in caps:
        after = spent + amount
        for threshold in THRESHOLDS:
            if cap > 0 and after * 100 >= cap * threshold and (scope, threshold) not in marked:
                crossings.append(Crossing(scope=scope, threshold=threshold, cap=cap, spent=after,
                                          period_start=period_start, resets_at=end))
    statements.append(upsert)
    for crossing in crossings:
        statements.append((
            f"INSERT INTO {_MARKS} (org_id, period_start, scope, threshold, created_at) VALUES (%s, %s, %s, %s, %s) "
            f"ON CONFLICT (org_id, period_start, scope, threshold) DO NOTHING",
            [org_id, connection.ops.adapt_datefield_value(period_start), crossing.scope, crossing.threshold,
             connection.ops.adapt_datetimefield_value(at)]))
    return Reservation(statements, crossings)


def spend_refund(*, org_id, send_id, country: str, amount: Decimal, at: dt.datetime) -> bool:
    """Give back a send's reserved price (it failed before the provider took it). Never below zero."""
    if amount <= 0:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET amount = amount - %s WHERE org_id = %s AND day = %s AND country = %s AND shard = %s "
            f"AND amount >= %s",
            [amount, _org_id(org_id), connection.ops.adapt_datefield_value(_day(at)), country, shard_for(send_id),
             amount])
        return cursor.rowcount == 1


def spend_adjust(*, org_id, send_id, country: str, delta: Decimal, at: dt.datetime) -> None:
    """Move a send's meter row by `delta` (the provider reported a price other than our estimate).
    Not checked against the caps: the money is spent; the next reservation sees it."""
    if delta:
        sql, params = _add_statement(org_id=org_id, day=_day(at), country=country, shard=shard_for(send_id),
                                     amount=delta)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


@dataclass(frozen=True)
class SpendStatus:
    amount: Decimal
    by_country: dict[str, Decimal]


def spend_status(*, org: Org, since_day: dt.date | None = None, until_day: dt.date | None = None) -> SpendStatus:
    """Live spend of the org on UTC days [since_day, until_day) (default: the current month), by country."""
    if since_day is None or until_day is None:
        start, end = period_bounds(period_start_for())
        since_day, until_day = since_day or start.date(), until_day or end.date()
    rows = (SpendUsage.objects.filter(org=org, day__gte=since_day, day__lt=until_day)
            .values("country").annotate(total=Sum("amount")).order_by("country"))
    by_country = {row["country"]: _dec(row["total"]) for row in rows if _dec(row["total"]) != 0}
    return SpendStatus(amount=sum(by_country.values(), ZERO), by_country=by_country)


def _plain(value: Decimal) -> str:
    from sms.pricing import amount_str

    return amount_str(value)


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
