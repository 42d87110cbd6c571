"""Clicks vs previews, the queue → database path, `sms.link_clicked` once per send, and concurrency."""
import datetime as dt
import http.client
import threading
import time

import pytest
from django.db import connection
from django.test import TestCase
from django.utils import timezone

from sms.links import services
from sms.links.agents import is_preview_agent, platform_family
from sms.links.models import Link, LinkClick
from sms.models import Event, EventType, Send
from tests.links.conftest import LINK_HOST, follow, post_send, queued

# Real user agents of link-preview fetchers, chat unfurlers and security scanners (as they appear in the
# access logs of link services), and of the phones and browsers people click from.
PREVIEWS = [
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "WhatsApp/2.23.20.0 A",
    "WhatsApp/2.2349.52 i",
    "TelegramBot (like TwitterBot)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "Twitterbot/1.0",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
    # iMessage's link preview: an old desktop Safari with Facebook's and Twitter's bot tokens
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 "
    "Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Mozilla/5.0 (compatible; Google-Safety; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Iframely/1.3.1 (+https://iframely.com/docs/about) Applebot/0.1",
    "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
    "",
]
PHONES = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Mobile/15E148 Safari/604.1", "ios"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1", "ios"),
    ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
     "Mobile/15E148 Safari/604.1", "ios"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 "
     "Mobile Safari/537.36", "android"),
    ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "android"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0", "android"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Safari/605.1.15", "desktop"),
]


@pytest.mark.parametrize("ua", PREVIEWS)
def test_preview_and_scanner_agents_are_previews(ua):
    assert is_preview_agent(ua)


@pytest.mark.parametrize("ua,platform", PHONES)
def test_phone_and_desktop_browsers_are_clicks(ua, platform):
    assert not is_preview_agent(ua)
    assert platform_family(ua) == platform


def _shorten(api, org, body):
    with TestCase.captureOnCommitCallbacks(execute=True):
        data = post_send(api, org, body).json()
    return data, [link["short_url"].rsplit("/", 1)[1] for link in data["links"]]


@pytest.mark.django_db
def test_clicks_count_previews_do_not_and_the_event_fires_once_per_send(org, api):
    data, (code_a, code_b) = _shorten(api, org, "A https://example.com/a B https://example.com/b")
    for ua in PREVIEWS[:5]:
        follow(code_a, ua=ua)
    follow(code_a, method="head", ua=PHONES[0][0])
    assert Link.objects.get(code=code_a).clicks == 0  # nothing written before the queue is drained
    assert services.clicks_drain() == 6
    link_a = Link.objects.get(code=code_a)
    assert (link_a.clicks, link_a.previews, link_a.first_clicked_at) == (0, 6, None)
    assert not Event.objects.filter(type=EventType.LINK_CLICKED).exists()

    for ua, _ in PHONES[:3]:
        follow(code_a, ua=ua, HTTP_CF_IPCOUNTRY="US")
    follow(code_b, ua=PHONES[3][0])
    services.clicks_drain()
    link_a, link_b = Link.objects.get(code=code_a), Link.objects.get(code=code_b)
    assert (link_a.clicks, link_a.previews, link_b.clicks) == (3, 6, 1)
    clicks = LinkClick.objects.filter(link=link_a, kind="click").order_by("clicked_at")
    assert [(c.platform, c.country, c.send_id) for c in clicks] == [("ios", "US", link_a.send_id)] * 3
    [event] = Event.objects.filter(type=EventType.LINK_CLICKED)
    assert event.send_id == link_a.send_id and event.mode == "prod"
    assert event.data == {"send_id": data["id"], "link_id": str(link_a.pk), "url": "https://example.com/a",
                          "clicked_at": link_a.first_clicked_at.isoformat().replace("+00:00", "Z")}
    # later clicks are counted, never re-emitted
    follow(code_b, ua=PHONES[4][0])
    services.clicks_drain()
    assert Event.objects.filter(type=EventType.LINK_CLICKED).count() == 1
    detail = api.get(f"/api/v1/orgs/{org.pk}/sms/sends/{data['id']}").json()
    assert [(x["clicks"], x["first_clicked_at"] is not None) for x in detail["links"]] == [(3, True), (2, True)]
    stats = api.get(f"/api/v1/orgs/{org.pk}/sms/stats").json()
    assert stats["links"] == {"sent": 2, "clicked": 2, "click_rate": 1.0}


@pytest.mark.django_db
def test_a_click_within_a_second_of_delivery_is_a_scanner(org, api):
    data, (code,) = _shorten(api, org, "x https://example.com/fast")
    Send.objects.filter(pk=data["id"]).update(delivered_at=timezone.now())
    follow(code, ua=PHONES[0][0])  # a "phone" agent, but faster than any person
    services.clicks_drain()
    row = LinkClick.objects.get()
    assert (row.kind, row.reason) == ("preview", "too_soon")
    Send.objects.filter(pk=data["id"]).update(delivered_at=timezone.now() - dt.timedelta(seconds=5))
    follow(code, ua=PHONES[0][0])
    services.clicks_drain()
    assert Link.objects.get(code=code).clicks == 1


@pytest.mark.django_db
def test_ingestion_is_idempotent(org, api):
    _, (code,) = _shorten(api, org, "x https://example.com/idem")
    follow(code, ua=PHONES[0][0])
    records = queued()
    assert services.clicks_ingest(records) == 1
    assert services.clicks_ingest(records) == 0  # the same record again (a drain that crashed before LTRIM)
    services.clicks_drain()
    assert Link.objects.get(code=code).clicks == 1 and LinkClick.objects.count() == 1


@pytest.mark.django_db
def test_without_a_queue_clicks_are_written_directly(org, api, settings):
    _, (code,) = _shorten(api, org, "x https://example.com/direct")
    settings.SMS_LINK_CLICKS_REDIS_URL = ""
    follow(code, ua=PHONES[0][0])
    assert Link.objects.get(code=code).clicks == 1


@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_first_clicks_make_one_event(org, live_key, provider_account, client_for, live_server):
    """50 phones tap the same send's link at once, through the real server; their clicks are then ingested by
    concurrent transactions (the worst case of several drainers): 50 clicks, one sms.link_clicked."""
    api = client_for(live_key)
    data = post_send(api, org, "Flash sale https://example.com/flash").json()
    code = data["links"][0]["short_url"].rsplit("/", 1)[1]
    port = int(live_server.url.rsplit(":", 1)[1])
    barrier, statuses = threading.Barrier(50), []

    def tap(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        barrier.wait()
        conn.request("GET", f"/{code}", headers={"Host": LINK_HOST, "User-Agent": PHONES[i % 6][0]})
        statuses.append(conn.getresponse().status)
        conn.close()

    threads = [threading.Thread(target=tap, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [302] * 50
    # Each click is queued when the server closes its response — just after the phone got it — so the last
    # few may land a moment after the last response: wait for them (bounded).
    deadline = time.monotonic() + 10
    while len(queued()) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    records = queued()
    assert len(records) == 50 and all(r["k"] == "click" for r in records)

    # Concurrent ingestion: 10 transactions at once (one database connection each — the server is shared, so not
    # 50), each holding five of the first clicks, all racing to write the send's first-click event.
    ingest_barrier, errors = threading.Barrier(10), []

    def ingest(batch):
        try:
            ingest_barrier.wait()
            services.clicks_ingest(batch)
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ingest, args=(records[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    link = Link.objects.get(code=code)
    assert (link.clicks, LinkClick.objects.filter(kind="click").count()) == (50, 50)
    assert Event.objects.filter(type=EventType.LINK_CLICKED, send_id=data["id"]).count() == 1


@pytest.mark.django_db
def test_when_redis_refuses_the_click_is_written_directly_and_the_redirect_still_answers(org, api, monkeypatch):
    _, (code,) = _shorten(api, org, "x https://example.com/outage")

    class Down:
        def rpush(self, *args):
            raise ConnectionError("Redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(services, "_redis", lambda: Down())
        response = follow(code, ua=PHONES[0][0])
    assert response.status_code == 302
    assert Link.objects.get(code=code).clicks == 1 and LinkClick.objects.get().kind == "click"
