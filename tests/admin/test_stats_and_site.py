"""Dashboard stats page (server-rendered SVG chart, delivery rate, quota bar), branding and app list."""
import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.quota import period_start_for
from sms.admin.stats import _nice_ceiling, axis_ticks, stacked_bar_chart
from sms.models import SendDailyCount
from tests.factories import QuotaUsageFactory

pytestmark = pytest.mark.django_db


def today():
    return timezone.now().astimezone(dt.timezone.utc).date()


def counts(org, day, category="transactional", **by_status):
    for status, n in by_status.items():
        SendDailyCount.objects.create(org=org, day=day, category=category, status=status, count=n, segments=n)


def test_nice_ceiling_picks_1_2_5_steps():
    assert [_nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 45, 101)] == [1, 1, 5, 10, 10, 20, 50, 200]


def test_chart_stacks_statuses_per_day_proportionally():
    day1, day2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    chart = stacked_bar_chart([day1, day2], {day1: {"delivered": 6, "failed": 4}, day2: {"delivered": 5}},
                              width=400, height=200)
    plot_h = chart.plot["bottom"] - chart.plot["top"]
    bars = {(b["day"], b["status"]): b for b in chart.bars}
    assert set(bars) == {("2026-01-01", "delivered"), ("2026-01-01", "failed"), ("2026-01-02", "delivered")}
    assert bars[("2026-01-01", "delivered")]["h"] == pytest.approx(plot_h * 6 / 10, abs=0.01)
    # failed sits on top of delivered; the 10-send day reaches the top of the plot
    assert bars[("2026-01-01", "failed")]["y"] == pytest.approx(chart.plot["top"], abs=0.01)
    assert bars[("2026-01-01", "failed")]["y"] + bars[("2026-01-01", "failed")]["h"] == pytest.approx(
        bars[("2026-01-01", "delivered")]["y"], abs=0.02)
    assert bars[("2026-01-02", "delivered")]["x"] > bars[("2026-01-01", "delivered")]["x"]


@pytest.mark.parametrize("max_total", [*range(1, 60), 99, 101, 250, 999, 1001, 12345])
def test_every_axis_label_is_the_exact_value_at_its_gridline(max_total):
    chart = stacked_bar_chart([dt.date(2026, 1, 1)], {dt.date(2026, 1, 1): {"delivered": max_total}})
    bottom, top = chart.plot["bottom"], chart.plot["top"]
    (bar,) = chart.bars
    axis_max = (bottom - top) * max_total / bar["h"]  # the value at the top of the plot
    for tick in chart.y_ticks:
        value = int(tick["text"].replace(",", ""))
        assert tick["y"] == pytest.approx(bottom - (bottom - top) * value / axis_max, abs=0.011), (max_total, tick)
    values = [int(t["text"].replace(",", "")) for t in chart.y_ticks]
    assert values[0] == 0 and values[-1] >= max_total and 2 <= len(values) <= 6
    assert len({b - a for a, b in zip(values, values[1:])}) == 1  # evenly spaced


def test_axis_ticks_are_whole_steps():
    assert axis_ticks(7) == (8, [0, 2, 4, 6, 8])
    assert axis_ticks(10) == (10, [0, 2, 4, 6, 8, 10])
    assert axis_ticks(0) == (1, [0, 1])
    assert axis_ticks(101) == (150, [0, 50, 100, 150])


def test_rendered_bar_of_7_reaches_between_the_6_and_8_gridlines(login, admin_a, org_a):
    """Read off the rendered SVG: the top of a bar of 7 lies halfway between the gridlines labelled 6 and 8
    (before, a gridline labelled 8 sat at 7.5 and the bar of 7 read as 8)."""
    counts(org_a, today(), delivered=7)
    html = login(admin_a).get(reverse("admin:sms_stats", args=[org_a.pk])).content.decode()
    html = html[html.index('id="sends-chart"'):]
    html = html[:html.index("</svg>")]  # the sends chart only (the page also draws the links' click-through chart)
    labels = {int(text): float(y) for y, text in re.findall(
        r'<text x="[\d.-]+" y="([\d.]+)" text-anchor="end" dominant-baseline="middle">([\d,]+)</text>', html)}
    lines = {float(y) for y in re.findall(r'<line [^>]*y1="([\d.]+)"', html)}
    assert set(labels.values()) <= lines  # every label sits on a gridline
    assert sorted(labels) == [0, 2, 4, 6, 8]
    (y, h) = re.search(r'<rect class="bar" data-status="delivered"[^>]* y="([\d.]+)" width="[\d.]+" height="([\d.]+)"',
                       html, re.S).groups()
    bar_top = float(y)
    assert bar_top == pytest.approx((labels[6] + labels[8]) / 2, abs=0.02)
    assert float(y) + float(h) == pytest.approx(labels[0], abs=0.02)


def test_stats_page_renders_chart_delivery_rate_and_quota(login, admin_a, org_a, org_b):
    counts(org_a, today(), delivered=8, failed=1, undelivered=1)
    counts(org_a, today() - dt.timedelta(days=3), category="marketing", queued=2)
    counts(org_a, today() - dt.timedelta(days=40), delivered=1000)  # outside the 30-day window
    counts(org_b, today(), delivered=500)  # another org
    QuotaUsageFactory(org=org_a, period_start=period_start_for(), used=1250)
    html = login(admin_a).get(reverse("admin:sms_stats", args=[org_a.pk])).content.decode()
    assert '<svg class="chart" id="sends-chart"' in html
    bars = re.findall(r'<rect class="bar" data-status="(\w+)" data-day="([\d-]+)" data-count="(\d+)"', html)
    assert sorted(bars) == sorted([
        ("delivered", today().isoformat(), "8"), ("failed", today().isoformat(), "1"),
        ("undelivered", today().isoformat(), "1"), ("queued", (today() - dt.timedelta(days=3)).isoformat(), "2")])
    assert re.search(r'id="stat-total">12<', html)
    assert re.search(r'id="stat-delivery-rate">80.0%<', html)
    assert re.search(r'id="quota-used">1250<', html) and re.search(r'id="quota-limit">5000<', html)
    assert "width:25.0%" in html


def test_stats_page_leaves_suppression_refused_sends_out_of_the_delivery_rate(login, admin_a, org_a):
    """The same definition as the API: refused-for-suppression sends are their own figure beside the rate."""
    counts(org_a, today(), delivered=6, failed=2)
    SendDailyCount.objects.filter(org=org_a, status="failed").update(refused=1)  # 1 of the 2 failed was refused
    html = login(admin_a).get(reverse("admin:sms_stats", args=[org_a.pk])).content.decode()
    assert re.search(r'id="stat-suppression-refused">1<', html)
    assert re.search(r'id="stat-delivery-rate">85.7%<', html)  # 6 / (6 + 1), not 6 / 8 = 75%


def test_stats_page_without_sends_says_so(login, admin_a, org_a):
    html = login(admin_a).get(reverse("admin:sms_stats", args=[org_a.pk])).content.decode()
    assert "No sends in the last 30 days." in html and 'class="bar"' not in html
    assert 'id="stat-delivery-rate">—<' in html


def test_stats_of_another_org_is_404(login, admin_a, org_b):
    assert login(admin_a).get(reverse("admin:sms_stats", args=[org_b.pk])).status_code == 404


def test_stats_index_lists_visible_orgs_or_goes_straight_to_the_only_one(login, admin_a, superuser, org_a, org_b):
    response = login(admin_a).get(reverse("admin:sms_stats_index"))
    assert response.status_code == 302 and response["Location"] == reverse("admin:sms_stats", args=[org_a.pk])
    html = login(superuser).get(reverse("admin:sms_stats_index")).content.decode()
    assert "Acme A" in html and "Bravo B" in html


def test_stats_needs_login(client, org_a):
    response = client.get(reverse("admin:sms_stats", args=[org_a.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_branding_and_app_list(login, admin_a, org_a):
    html = login(admin_a).get(reverse("admin:index")).content.decode()
    assert "Sendora SMS dashboard" in html
    assert "<title>Dashboard | Sendora SMS</title>" in html
    assert ">SMS<" in html
    assert ">Provider<" in html and ">Stats<" in html and ">Suppressions<" in html and ">Sends<" in html
    assert ">Audit log<" in html and ">Organisations<" in html


def test_app_list_for_staff_without_membership_is_empty(login, db):
    from tests.factories import UserFactory

    html = login(UserFactory(username="nobody")).get(reverse("admin:index")).content.decode()
    assert ">Stats<" not in html and ">Sends<" not in html
