"""The short-link pages of the dashboard in a real Chromium: a send's links with their clicks, the stats
page's click-through chart, and an org admin editing link settings and an app route."""
import datetime as dt

import pytest
from django.utils import timezone

from sms.links.models import AppRoute, Link, LinkSettings
from sms.statuses import SendStatus
from tests.browser.test_dashboard import log_in, operator, org  # noqa: F401 — fixtures and the login steps
from tests.factories import SendFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _link(send, n, *, clicks=0, previews=0, clicked=None, created=None):
    link = Link.objects.create(org=send.org, send=send, mode=send.mode, position=n, code=f"Br0wser{n}Code{send.pk.hex[:6]}",
                               url=f"https://shop.example.com/item/{n}?ref=sms", short_url=f"https://sndr.link/Br0wser{n}",
                               clicks=clicks, previews=previews, first_clicked_at=clicked,
                               expires_at=timezone.now() + dt.timedelta(days=180))
    if created:
        Link.objects.filter(pk=link.pk).update(created_at=created)
    return link


def test_a_sends_page_shows_its_links_and_clicks(page, live_server, shot, org, operator):  # noqa: F811
    send = SendFactory(org=org, to="+14155550188", status=SendStatus.DELIVERED,
                       body="Sale: https://sndr.link/Br0wser0 and https://sndr.link/Br0wser1",
                       original_body="Sale: https://shop.example.com/item/0?ref=sms and https://shop.example.com/item/1?ref=sms")
    _link(send, 0, clicks=3, previews=2, clicked=timezone.now())
    _link(send, 1)
    log_in(page, live_server, shot)
    page.goto(f"{live_server.url}/admin/sms/send/{send.pk}/change/")
    page.wait_for_selector("#links-group")
    rows = page.locator("#links-group tbody tr")
    texts = [" ".join(rows.nth(i).inner_text().split()) for i in range(rows.count())]
    assert any(t.startswith("https://sndr.link/Br0wser0 https://shop.example.com/item/0?ref=sms 3 2 ") for t in texts), texts
    assert any(t.startswith("https://sndr.link/Br0wser1 https://shop.example.com/item/1?ref=sms 0 0") for t in texts), texts
    assert "shop.example.com/item/0" in page.inner_text(".field-original_body")
    shot(page, "send-links")


def test_stats_page_draws_the_click_through_chart(page, live_server, shot, org, operator):  # noqa: F811
    send = SendFactory(org=org, status=SendStatus.DELIVERED)
    now = timezone.now()
    _link(send, 0, clicks=2, clicked=now)
    _link(send, 1)
    _link(send, 2, clicks=1, clicked=now, created=now - dt.timedelta(days=2))
    _link(send, 3, created=now - dt.timedelta(days=2))
    log_in(page, live_server, shot)
    page.goto(f"{live_server.url}/admin/sms/stats/{org.pk}/")
    page.wait_for_selector("svg#clicks-chart")
    assert page.inner_text("#links-sent") == "4" and page.inner_text("#links-clicked") == "2"
    assert page.inner_text("#click-rate") == "50.0%"
    sent = page.locator("svg#clicks-chart rect.bar[data-kind=sent]")
    clicked = page.locator("svg#clicks-chart rect.bar[data-kind=clicked]")
    assert sorted(sent.nth(i).get_attribute("data-count") for i in range(sent.count())) == ["2", "2"]
    assert [clicked.nth(i).get_attribute("data-count") for i in range(clicked.count())] == ["1", "1"]
    assert all(float(sent.nth(i).get_attribute("height")) > 0 for i in range(sent.count()))
    shot(page, "stats-clicks")


def test_an_org_admin_sets_a_branded_domain_a_blocklist_and_an_app_route(page, live_server, shot, org,  # noqa: F811
                                                                         operator):  # noqa: F811
    log_in(page, live_server, shot)
    page.goto(f"{live_server.url}/admin/sms/linksettings/add/")
    page.select_option("#id_org", str(org.pk))
    page.fill("#id_branded_domain", "https://go.acme.test/")  # a URL, not a host name: refused
    page.click("input[name=_save]")
    page.wait_for_selector(".errorlist")
    assert "host name" in page.inner_text(".field-branded_domain")
    shot(page, "link-settings-error")
    page.fill("#id_branded_domain", "Go.Acme.Test")
    page.fill("#id_retention_days", "30")
    page.fill("#id_blocked_hosts_text", "evil.example.net\nphish.example.org")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    settings = LinkSettings.objects.get(org=org)
    assert (settings.branded_domain, settings.retention_days) == ("go.acme.test", 30)
    assert settings.blocked_hosts == ["evil.example.net", "phish.example.org"]
    shot(page, "link-settings-saved")

    page.goto(f"{live_server.url}/admin/sms/approute/add/")
    page.select_option("#id_org", str(org.pk))
    page.fill("#id_prefix", "https://shop.example.com/")
    page.fill("#id_ios_url", "javascript:alert(1)")
    page.click("input[name=_save]")
    page.wait_for_selector(".errorlist")
    page.fill("#id_ios_url", "shopapp://")
    page.fill("#id_android_url", "intent://#Intent;scheme=shopapp;package=com.example.shop;end")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    route = AppRoute.objects.get(org=org)
    assert (route.prefix, route.ios_url) == ("https://shop.example.com/", "shopapp://")
    shot(page, "app-route-saved")
