"""SMS read paths. Every selector takes `org=` first and filters by it (tenant isolation:
"not yours" and "does not exist" are the same NotFound). The API's selectors also take the key's
`mode` (prod | test) and see only that mode's sends, events and stats — test and live keys are
separate worlds (README "Test and live keys"); `mode=None` (the dashboard, operators) sees both."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet, Sum

from orgs.models import Org
from orgs.quota import QuotaStatus, quota_status, sandbox_status
from sms.services.cost import cost_stats
from sendora_sms.errors import NotFound
from sms.links.selectors import link_stats
from sms.models import Category, Event, Send, SendDailyCount, SendStatusChange, Suppression
from sms.statuses import SendStatus

# ---------------------------------------------------------------------------------------------
# Sends
# ---------------------------------------------------------------------------------------------


def send_get(*, org: Org, send_id, with_history: bool = False, mode: str | None = None) -> Send:
    """The org's send with this id, else NotFound (also for a malformed id or another org's send).

    `with_history` prefetches the status timeline and the send's events (the detail endpoint)."""
    try:
        pk = uuid.UUID(str(send_id))
    except ValueError:
        raise NotFound("No such send.") from None
    qs = Send.objects.filter(org=org, pk=pk)
    if mode is not None:
        qs = qs.filter(mode=mode)  # another mode's send is "no such send"
    if with_history:
        qs = qs.prefetch_related(
            Prefetch("status_changes", queryset=SendStatusChange.objects.order_by("created_at", "id")),
            Prefetch("events", queryset=Event.objects.order_by("created_at", "id")),
            "links",  # the send object's `links` (sms/links)
        )
    send = qs.first()
    if send is None:
        raise NotFound("No such send.")
    return send


def send_list(*, org: Org, status: str | None = None, phone: str | None = None, category: str | None = None,
              created_after: dt.datetime | None = None, created_before: dt.datetime | None = None,
              mode: str | None = None) -> QuerySet[Send]:
    """The org's sends, filtered; values are already parsed (phone in E.164). Paginate newest first.

    Each filter combination is served by one of Send's (org, …, -created_at) indexes; test-mode
    listings by the small partial index send_test_org_created_idx."""
    qs = Send.objects.filter(org=org).prefetch_related("links")  # each send's `links` (sms/links): one query a page
    if mode is not None:
        qs = qs.filter(mode=mode)
    if status:
        qs = qs.filter(status=status)
    if phone:
        qs = qs.filter(to=phone)
    if category:
        qs = qs.filter(category=category)
    if created_after:
        qs = qs.filter(created_at__gt=created_after)
    if created_before:
        qs = qs.filter(created_at__lt=created_before)
    return qs


def send_by_idempotency_key(*, org: Org, mode: str, idempotency_key: str) -> Send | None:
    """Idempotency-Keys are per mode (unique on (org, mode, idempotency_key))."""
    return Send.objects.filter(org=org, mode=mode, idempotency_key=idempotency_key).first()


# ---------------------------------------------------------------------------------------------
# Stats (from SendDailyCount — never scans sends)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendStats:
    since: dt.datetime
    until: dt.datetime
    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    segments: int
    delivery_rate: float | None
    suppression_refused: int
    quota: QuotaStatus
    cost: dict  # {"amount", "currency", "by_country"} (sms/services/cost.py)
    links: dict | None = None  # {"sent", "clicked", "click_rate"} (sms/links/selectors.py)


def send_stats(*, org: Org, since_day: dt.date | None = None, until_day: dt.date | None = None,
               mode: str | None = None) -> SendStats:
    """Counters for sends created on UTC days in [since_day, until_day) — day granularity.

    Defaults: the current quota period; with only `since`, until the end of the current period; with
    only `until`, from the start of the month of its last included day.

    delivery_rate counts only sends that reached a provider: delivered / (delivered + undelivered +
    failed − suppression_refused), null when none did. `suppression_refused` — sends refused at
    acceptance because the recipient is on the suppression list (stored `failed`, error_code
    "suppressed", never handed to a provider) — is its own figure beside it; they stay in
    by_status["failed"] and in total. All of it from the counters (SendDailyCount.refused).

    Per mode (the API passes the key's): counters of that mode's sends only; `quota` is the live
    monthly quota for prod, the sandbox's daily cap (today, UTC) for test. The default window is the
    live quota period either way. `mode=None` (the dashboard) counts both, with the live quota."""
    quota = quota_status(org=org)
    shown_quota = quota if mode != "test" else sandbox_status(org=org)
    if since_day is None and until_day is None:
        since_day, until_day = quota.period_start.date(), quota.period_end.date()
    elif until_day is None:  # since X → through the end of the current period
        until_day = max(quota.period_end.date(), since_day + dt.timedelta(days=1))
    elif since_day is None:  # until Y → from the start of the month holding Y's last included day
        since_day = (until_day - dt.timedelta(days=1)).replace(day=1)
    counts = SendDailyCount.objects.filter(org=org, day__gte=since_day, day__lt=until_day)
    if mode is not None:
        counts = counts.filter(mode=mode)
    rows = (counts
            .values("category", "status").annotate(n=Sum("count"), seg=Sum("segments"), refused=Sum("refused"))
            .order_by())
    by_status = {status: 0 for status in SendStatus.ALL}
    by_category = {category: 0 for category, _ in Category.CHOICES}
    segments = refused = 0
    for row in rows:
        refused += row["refused"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        by_category[row["category"]] = by_category.get(row["category"], 0) + row["n"]
        segments += row["seg"]
    finished = (by_status[SendStatus.DELIVERED] + by_status[SendStatus.UNDELIVERED] + by_status[SendStatus.FAILED]
                - refused)
    return SendStats(
        since=dt.datetime.combine(since_day, dt.time.min, tzinfo=dt.timezone.utc),
        until=dt.datetime.combine(until_day, dt.time.min, tzinfo=dt.timezone.utc),
        total=sum(by_status.values()),
        by_status=by_status,
        by_category=by_category,
        segments=segments,
        delivery_rate=(by_status[SendStatus.DELIVERED] / finished) if finished > 0 else None,
        suppression_refused=refused,
        quota=shown_quota,
        links=link_stats(org=org, since_day=since_day, until_day=until_day, mode=mode),
        cost=cost_stats(org=org, mode=mode, since_day=since_day, until_day=until_day),
    )


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


def event_list(*, org: Org, type: str | None = None, mode: str | None = None) -> QuerySet[Event]:  # noqa: A002
    qs = Event.objects.filter(org=org)
    if mode is not None:
        qs = qs.filter(mode=mode)
    if type:
        qs = qs.filter(type=type)
    return qs


# ---------------------------------------------------------------------------------------------
# Suppressions
# ---------------------------------------------------------------------------------------------


def recipient_is_suppressed(*, org: Org, phone_number: str) -> bool:
    """Send-time check: is this E.164 number on the org's suppression list? (unique index lookup)"""
    return Suppression.objects.filter(org=org, phone_number=phone_number).exists()


def suppression_list(*, org: Org, reason: str | None = None, phone: str | None = None) -> QuerySet[Suppression]:
    """The org's suppression list, filtered (phone already E.164). Paginate newest first
    (served by suppression_org_created_idx; a phone filter hits the unique (org, phone_number) index)."""
    qs = Suppression.objects.filter(org=org)
    if reason:
        qs = qs.filter(reason=reason)
    if phone:
        qs = qs.filter(phone_number=phone)
    return qs


def provider_accounts_with_health(*, org) -> list[dict]:
    """The org's provider accounts by (priority, provider), each with its health and webhook URLs; no secret."""
    from sms.models import ProviderAccount
    from sms.services.failover import provider_health
    from sms.services.provider_accounts import provider_webhook_urls

    accounts = ProviderAccount.objects.filter(org=org).order_by("priority", "provider")
    return [{"provider": a.provider, "sender": a.from_number, "enabled": a.enabled, "priority": a.priority,
             "health": provider_health(org_id=org.pk, provider=a.provider).as_dict(),
             "webhook_urls": provider_webhook_urls(org_id=org.pk, provider=a.provider)} for a in accounts]
