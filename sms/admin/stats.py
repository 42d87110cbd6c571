"""Dashboard → SMS → Stats: per org, sends per day by status (last 30 days) as a server-rendered
SVG stacked bar chart (no JavaScript, no CDN), the delivery rate and quota used vs limit.

Numbers come from the same reads as GET /sms/stats (sms.selectors.send_stats, orgs.quota) and from
the SendDailyCount counters for the per-day series; this module only lays them out.
"""
import datetime as dt
from dataclasses import dataclass

from django.db.models import Sum
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from sms.admin.scoping import get_visible_org_or_404, visible_orgs
from sms.models import SendDailyCount
from sms.selectors import send_stats
from sms.statuses import SendStatus

DAYS = 30

# Stack order (bottom → top) and colours; the palette stays readable for common colour blindness.
STATUS_COLOURS = {
    SendStatus.DELIVERED: "#2e7d32",
    SendStatus.SENT: "#66bb6a",
    SendStatus.SENDING: "#90caf9",
    SendStatus.QUEUED: "#1e88e5",
    SendStatus.UNDELIVERED: "#ffb300",
    SendStatus.FAILED: "#d32f2f",
    SendStatus.SUPPRESSED: "#9e9e9e",
}


def daily_counts(*, org, first_day: dt.date, last_day: dt.date) -> dict[dt.date, dict[str, int]]:
    """{day: {status: sends created that day now in that status}} from the SendDailyCount counters."""
    rows = (SendDailyCount.objects.filter(org=org, day__gte=first_day, day__lte=last_day)
            .values("day", "status").annotate(n=Sum("count")).order_by())
    result: dict[dt.date, dict[str, int]] = {}
    for row in rows:
        result.setdefault(row["day"], {})[row["status"]] = row["n"]
    return result


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list  # dicts: x, y, w, h, colour, status, day, count
    x_labels: list  # dicts: x, text
    y_ticks: list  # dicts: y, text
    plot: dict  # left, top, right, bottom
    legend: list  # dicts: x, colour, status
    max_total: int


def _nice_ceiling(value: int) -> int:
    """Smallest of 1, 2, 5 × 10^k that is ≥ value."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


MAX_TICK_INTERVALS = 5


def axis_ticks(max_total: int) -> tuple[int, list[int]]:
    """(axis top, tick values) for a count axis: whole-number ticks one 1/2/5 × 10^k step apart, the
    top a multiple of the step. Each label is the exact value at its gridline — never a rounded
    fraction of the top (which put "8" on the 7.5 line, so a bar of 7 read as 8)."""
    if max_total <= 0:
        return 1, [0, 1]
    step = _nice_ceiling(-(-max_total // MAX_TICK_INTERVALS))  # ≥ max/5, so at most 5 intervals
    top = -(-max_total // step) * step
    return top, list(range(0, top + 1, step))


def stacked_bar_chart(days: list[dt.date], counts: dict[dt.date, dict[str, int]], *, width: int = 900,
                      height: int = 300) -> Chart:
    """Geometry for one stacked bar per day (statuses stacked in STATUS_COLOURS order)."""
    left, right, top, bottom = 48, width - 12, 12, height - 48
    plot_w, plot_h = right - left, bottom - top
    totals = [sum(counts.get(day, {}).values()) for day in days]
    axis_max, tick_values = axis_ticks(max(totals, default=0))
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    bars, x_labels = [], []
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        y_base = float(bottom)
        for status, colour in STATUS_COLOURS.items():
            n = counts.get(day, {}).get(status, 0)
            if n <= 0:
                continue
            h = plot_h * n / axis_max
            y_base -= h
            bars.append({"x": round(x, 2), "y": round(y_base, 2), "w": round(bar_w, 2), "h": round(h, 2),
                         "colour": colour, "status": status, "day": day.isoformat(), "count": n})
        if i % 5 == 0 or i == len(days) - 1:
            x_labels.append({"x": round(x + bar_w / 2, 2), "text": day.strftime("%b %d")})
    y_ticks = [{"y": round(bottom - plot_h * v / axis_max, 2), "value": v, "text": f"{v:,}"} for v in tick_values]
    legend = [{"x": left + i * 115, "colour": c, "status": s} for i, (s, c) in enumerate(STATUS_COLOURS.items())]
    return Chart(width=width, height=height, bars=bars, x_labels=x_labels, y_ticks=y_ticks,
                 plot={"left": left, "top": top, "right": right, "bottom": bottom}, legend=legend,
                 max_total=max(totals, default=0))


def stats_index_view(request):
    """The orgs the user can see; with a single org, straight to its page."""
    orgs = visible_orgs(request)
    if orgs.count() == 1:
        return redirect("admin:sms_stats", org_id=orgs.first().pk)
    from sendora_sms.admin_site import site

    context = {**site.each_context(request), "title": "Stats", "orgs": orgs, "subtitle": None}
    return TemplateResponse(request, "sms/stats.html", context)


def stats_view(request, org_id):
    org = get_visible_org_or_404(request, org_id)  # another tenant's org is 404
    today = timezone.now().astimezone(dt.timezone.utc).date()
    first_day = today - dt.timedelta(days=DAYS - 1)
    days = [first_day + dt.timedelta(days=i) for i in range(DAYS)]
    counts = daily_counts(org=org, first_day=first_day, last_day=today)
    window = send_stats(org=org, since_day=first_day, until_day=today + dt.timedelta(days=1))
    quota = window.quota
    quota_pct = min(100.0, 100.0 * quota.used / quota.limit) if quota.limit else (100.0 if quota.used else 0.0)
    from sendora_sms.admin_site import site
    from sms.links.admin import click_chart
    from sms.links.selectors import link_daily

    context = {
        **site.each_context(request),
        "link_chart": click_chart(days, link_daily(org=org, first_day=first_day, last_day=today)),
        "links": window.links,
        "click_rate_pct": None if window.links["click_rate"] is None else round(100 * window.links["click_rate"], 1),
        "title": f"Stats — {org.name}", "org": org, "chart": stacked_bar_chart(days, counts),
        "window": window, "first_day": first_day, "last_day": today,
        "by_status": [(s, window.by_status.get(s, 0), STATUS_COLOURS[s]) for s in STATUS_COLOURS],
        "delivery_rate_pct": None if window.delivery_rate is None else round(100 * window.delivery_rate, 1),
        "quota": quota, "quota_pct": round(quota_pct, 1),
        "quota_bar_colour": "#d32f2f" if quota_pct >= 90 else ("#ffb300" if quota_pct >= 75 else "#2e7d32"),
    }
    return TemplateResponse(request, "sms/stats.html", context)
