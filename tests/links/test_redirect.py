"""GET/HEAD {short base}/{code}: the 302, HEAD, 404, deep links, escaping, and no database on a cache hit."""
import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from sms.links import services
from sms.links.models import AppRoute, Link
from tests.links.conftest import DESKTOP_UA, LINK_HOST, follow, post_send, queued

pytestmark = pytest.mark.django_db

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.6099.144 Mobile Safari/537.36")


def shorten(api, org, url) -> str:
    with TestCase.captureOnCommitCallbacks(execute=True):  # as a real commit: the new code's cache entry
        response = post_send(api, org, f"Go: {url}")
    assert response.status_code == 202, response.content
    return response.json()["links"][0]["short_url"].rsplit("/", 1)[1]


def test_302_keeps_query_and_fragment_and_sets_no_referrer(org, api):
    code = shorten(api, org, "https://shop.example.com/p/42?utm_source=sms&a=%20b&c=ü#reviews")
    response = follow(code, ua=DESKTOP_UA)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/p/42?utm_source=sms&a=%20b&c=%C3%BC#reviews"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "private, no-store"
    assert [r["k"] for r in queued()] == ["click"]


def test_idn_targets_redirect_to_their_ascii_form(org, api):
    code = shorten(api, org, "https://münchen.example.de/straße?q=1")
    assert follow(code, ua=DESKTOP_UA)["Location"] == "https://xn--mnchen-3ya.example.de/stra%C3%9Fe?q=1"


def test_head_answers_the_same_headers_without_counting(org, api):
    code = shorten(api, org, "https://example.com/h?x=1#f")
    head = follow(code, method="head", ua=DESKTOP_UA)
    get = follow(code, ua=DESKTOP_UA)
    assert (head.status_code, head["Location"], head["Referrer-Policy"]) == (302, get["Location"], "no-referrer")
    assert head.content == b""
    assert [(r["k"], r["r"]) for r in queued()] == [("preview", "head"), ("click", "")]


def test_unknown_and_malformed_codes_are_a_small_404_page(org, api):
    for path in ("/AAAAAAAAAA", "/zzzzzzzzzzzzzzzzzzzzzz"):
        response = APIClient().get(path, HTTP_HOST=LINK_HOST)
        assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
        assert len(response.content) < 300 and response["Referrer-Policy"] == "no-referrer"
    assert APIClient().get("/short", HTTP_HOST=LINK_HOST).status_code == 404  # not a code: Django's own 404
    assert queued() == []


def test_only_get_and_head(org, api):
    code = shorten(api, org, "https://example.com/m")
    response = APIClient().post(f"/{code}", HTTP_HOST=LINK_HOST)
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


def test_the_base_may_carry_a_path(org, api, settings):
    settings.SMS_LINK_BASE_URL = "https://sms.example.com/l"
    services.link_base.cache_clear()
    body = post_send(api, org, "Go: https://example.com/pathbase").json()
    short = body["links"][0]["short_url"]
    assert short.startswith("https://sms.example.com/l/")
    code = short.rsplit("/", 1)[1]
    response = APIClient().get(f"/l/{code}", HTTP_HOST="sms.example.com", HTTP_USER_AGENT=DESKTOP_UA)
    assert (response.status_code, response["Location"]) == (302, "https://example.com/pathbase")
    # on that host `/{code}` is no short link: the host also serves the API and the dashboard
    assert APIClient().get(f"/{code}", HTTP_HOST="sms.example.com").status_code == 404


def test_a_cache_hit_makes_no_database_query(org, api):
    code = shorten(api, org, "https://example.com/hot")
    services.local_cache_clear()  # only the shared (Redis) cache, written when the send committed
    with CaptureQueriesContext(connection) as ctx:
        assert follow(code, ua=DESKTOP_UA).status_code == 302
    assert ctx.captured_queries == []
    with CaptureQueriesContext(connection) as ctx:  # the process's own cache
        for _ in range(3):
            assert follow(code, ua=DESKTOP_UA).status_code == 302
    assert ctx.captured_queries == []
    # a miss everywhere (cache flushed): one indexed SELECT for the link, one for its org's app routes,
    # and the answer is cached again
    cache.clear()
    services.local_cache_clear()
    with CaptureQueriesContext(connection) as ctx:
        assert follow(code, ua=DESKTOP_UA).status_code == 302
    assert len(ctx.captured_queries) == 2
    services.local_cache_clear()
    with CaptureQueriesContext(connection) as ctx:
        assert follow(code, ua=DESKTOP_UA).status_code == 302
        assert follow("ZZZZZZZZZZ").status_code == 404  # unknown: looked up once ...
    assert len(ctx.captured_queries) == 1
    with CaptureQueriesContext(connection) as ctx:
        assert follow("ZZZZZZZZZZ").status_code == 404  # ... then the miss is cached too
    assert ctx.captured_queries == []


def test_deep_links_open_the_app_on_phones_and_redirect_elsewhere(org, api):
    AppRoute.objects.create(org=org, prefix="https://shop.example.com/", ios_url="shopapp://",
                            android_url="intent://#Intent;scheme=shopapp;package=com.example.shop;end")
    code = shorten(api, org, "https://shop.example.com/p/42?x=1")
    ios = follow(code, ua=IPHONE)
    assert ios.status_code == 200 and ios["Content-Type"].startswith("text/html")
    assert b'href="shopapp://p/42?x=1"' in ios.content and b'href="https://shop.example.com/p/42?x=1"' in ios.content
    assert "script-src 'nonce-" in ios["Content-Security-Policy"] and ios["Referrer-Policy"] == "no-referrer"
    android = follow(code, ua=ANDROID)
    assert android.status_code == 200
    assert (b"intent://p/42?x=1#Intent;scheme=shopapp;package=com.example.shop;"
            b"S.browser_fallback_url=https%3A%2F%2Fshop.example.com%2Fp%2F42%3Fx%3D1;end") in android.content
    desktop = follow(code, ua=DESKTOP_UA)
    assert (desktop.status_code, desktop["Location"]) == (302, "https://shop.example.com/p/42?x=1")
    other = shorten(api, org, "https://blog.example.com/post")  # not under the route
    assert follow(other, ua=IPHONE).status_code == 302
    assert [r["p"] for r in queued()] == ["ios", "android", "desktop", "ios"]


def test_nothing_from_the_link_is_written_into_the_page_unescaped(org, api):
    AppRoute.objects.create(org=org, prefix="https://x.example.com/", ios_url="xapp://")
    code = shorten(api, org, "https://x.example.com/a")
    hostile = "https://x.example.com/a?q=</script><script>alert(1)</script>&b=\"'><img src=x onerror=alert(2)>"
    Link.objects.filter(code=code).update(url=hostile)  # whatever detection lets through, the page must hold
    cache.clear()
    services.local_cache_clear()
    page = follow(code, ua=IPHONE).content.decode()
    assert "alert(1)</script>" not in page and "<img" not in page and "onerror=alert(2)>" not in page
    assert "%3C/script%3E" in page  # percent-encoded as a URI, then HTML-escaped / JSON-encoded
    assert "<" not in follow(code, ua=DESKTOP_UA)["Location"]
    assert b"Scr1pt" not in APIClient().get("/Scr1ptAlert1xx", HTTP_HOST=LINK_HOST).content  # the 404 echoes nothing


def test_script_literals_cannot_close_the_script():
    from sms.links.redirect import _js

    assert _js("</script><!--&") == '"\\u003c/script\\u003e\\u003c!--\\u0026"'
    assert "<" not in _js("</script>") and json.loads(_js("a</script>b")) == "a</script>b"


def test_country_comes_from_the_configured_header(org, api):
    code = shorten(api, org, "https://example.com/c")
    follow(code, ua=DESKTOP_UA, HTTP_CF_IPCOUNTRY="DE")
    follow(code, ua=DESKTOP_UA, HTTP_CF_IPCOUNTRY="<b>")
    assert [r["c"] for r in queued()] == ["DE", ""]


def test_link_records_are_small_json(org, api):
    code = shorten(api, org, "https://example.com/j")
    follow(code, ua="x" * 5000)
    [record] = queued()
    assert len(record["ua"]) == 300 and record["l"] == str(Link.objects.get(code=code).pk)
    assert len(json.dumps(record)) < 600


def test_the_click_is_queued_after_the_response_is_sent(org, api):
    """The visitor never waits for the queue: the record is pushed when the server closes the response."""
    from django.test import RequestFactory

    from sms.links.redirect import LinkRedirectMiddleware

    code = shorten(api, org, "https://example.com/after")
    middleware = LinkRedirectMiddleware(lambda request: pytest.fail("not a short link?"))
    response = middleware(RequestFactory().get(f"/{code}", HTTP_HOST=LINK_HOST, HTTP_USER_AGENT=DESKTOP_UA))
    assert response.status_code == 302 and queued() == []
    response.close()
    assert [r["k"] for r in queued()] == ["click"]
    response.close()  # a second close queues nothing more
    assert len(queued()) == 1
