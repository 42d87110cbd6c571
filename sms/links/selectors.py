"""Short links: reads. Every selector takes `org=` first and filters by it; the API also passes its key's mode."""
from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import Count, Q, QuerySet

from sms.links.models import Link


def link_list(*, org, mode: str | None = None, send_id: uuid.UUID | None = None,
              created_after: dt.datetime | None = None) -> QuerySet[Link]:
    """The org's links, newest first (link_org_mode_created_idx; a send's links: link_send_position_idx)."""
    qs = Link.objects.filter(org=org)
    if mode is not None:
        qs = qs.filter(mode=mode)
    if send_id is not None:
        qs = qs.filter(send_id=send_id)
    if created_after is not None:
        qs = qs.filter(created_at__gt=created_after)
    return qs


def link_stats(*, org, since_day: dt.date, until_day: dt.date, mode: str | None = None) -> dict:
    """Links created in [since_day, until_day) and how many of them had at least one real click."""
    since = dt.datetime.combine(since_day, dt.time.min, tzinfo=dt.timezone.utc)
    until = dt.datetime.combine(until_day, dt.time.min, tzinfo=dt.timezone.utc)
    qs = Link.objects.filter(org=org, created_at__gte=since, created_at__lt=until)
    if mode is not None:
        qs = qs.filter(mode=mode)
    counts = qs.aggregate(sent=Count("id"), clicked=Count("id", filter=Q(first_clicked_at__isnull=False)))
    sent, clicked = counts["sent"] or 0, counts["clicked"] or 0
    return {"sent": sent, "clicked": clicked, "click_rate": (clicked / sent) if sent else None}


def link_daily(*, org, first_day: dt.date, last_day: dt.date) -> dict[dt.date, dict[str, int]]:
    """{day: {"sent": links created, "clicked": of those, clicked at least once}} (the dashboard chart)."""
    from django.db.models.functions import TruncDate

    since = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.timezone.utc)
    until = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.timezone.utc)
    rows = (Link.objects.filter(org=org, created_at__gte=since, created_at__lt=until)
            .annotate(day=TruncDate("created_at", tzinfo=dt.timezone.utc)).values("day")
            .annotate(sent=Count("id"), clicked=Count("id", filter=Q(first_clicked_at__isnull=False))).order_by())
    return {row["day"]: {"sent": row["sent"], "clicked": row["clicked"]} for row in rows}
