"""Shortening at acceptance (POST …/sms/send), the send object's links, GET …/sms/links and the stats figures."""
import datetime as dt
import re

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from orgs.models import KeyMode, Role
from sms.encoding import segment_info
from sms.links import services
from sms.links.models import Link, LinkSettings
from sms.models import Send
from tests.factories import ApiKeyFactory, OrgFactory, ProviderAccountFactory
from tests.links.conftest import DESKTOP_UA, LINK_HOST, follow, post_send

pytestmark = pytest.mark.django_db

SHORT = re.compile(rf"https://{re.escape(LINK_HOST)}/([A-Za-z0-9]{{7,22}})")
LONG_URL = ("https://shop.example.com/orders/8812/tracking/details?ref=sms&utm_source=sms&utm_medium=text"
            "&utm_campaign=winter-sale-2026&session=0f8e7d6c5b4a39281706f5e4d3c2b1a0#delivery-status")


def test_urls_are_wrapped_before_segments_are_counted(org, api):
    body = f"Hi Ana, your order shipped! Track it here: {LONG_URL}. Reply STOP to opt out."
    assert segment_info(body).segments == 2
    response = post_send(api, org, body)
    assert response.status_code == 202, response.content
    data = response.json()
    codes = SHORT.findall(data["body"])
    assert len(codes) == 1 and len(set(codes[0])) > 3  # random base62, not 0000001
    assert data["body"] == f"Hi Ana, your order shipped! Track it here: https://{LINK_HOST}/{codes[0]}. Reply STOP to opt out."
    info = segment_info(data["body"])  # what the handset receives
    assert (data["segments"], data["encoding"]) == (info.segments, info.encoding) == (1, "GSM-7")
    assert data["original_body"] == body
    assert data["links"] == [{"id": data["links"][0]["id"], "url": LONG_URL,
                              "short_url": f"https://{LINK_HOST}/{codes[0]}", "clicks": 0, "first_clicked_at": None}]
    send = Send.objects.get(pk=data["id"])
    assert (send.body, send.original_body, send.segments) == (data["body"], body, 1)
    link = Link.objects.get(send=send)
    assert (link.code, link.url, link.org_id, link.mode) == (codes[0], LONG_URL, org.pk, "prod")
    assert link.expires_at - timezone.now() > dt.timedelta(days=179)


def test_several_links_keep_their_order_and_their_punctuation(org, api):
    body = "A: https://a.example.com/x?y=1, B: (https://b.example.com/p) C: https://c.example.com/#top!"
    data = post_send(api, org, body).json()
    urls = [link["url"] for link in data["links"]]
    assert urls == ["https://a.example.com/x?y=1", "https://b.example.com/p", "https://c.example.com/#top"]
    shorts = [link["short_url"] for link in data["links"]]
    assert data["body"] == f"A: {shorts[0]}, B: ({shorts[1]}) C: {shorts[2]}!"
    assert len(set(shorts)) == 3
    # the same URL twice in one body: two rows (one per appearance), each attributed to this send
    data = post_send(api, org, "x https://a.example.com/ y https://a.example.com/ z").json()
    assert len(data["links"]) == 2


def test_a_body_without_links_is_unchanged(org, api):
    data = post_send(api, org, "Your code is 482910").json()
    assert (data["body"], data["original_body"], data["links"]) == ("Your code is 482910", "Your code is 482910", [])
    assert not Link.objects.exists()


def test_shorten_links_false_keeps_the_body(org, api):
    body = f"Track: {LONG_URL}"
    data = post_send(api, org, body, shorten_links=False).json()
    assert (data["body"], data["links"], data["segments"]) == (body, [], segment_info(body).segments)
    data = post_send(api, org, body + " again", shortenLinks=False).json()  # the camelCase twin
    assert data["links"] == []
    assert not Link.objects.exists()


def test_the_orgs_setting_is_the_default_and_the_request_wins(org, api):
    LinkSettings.objects.create(org=org, shorten_links=False)
    assert post_send(api, org, "a https://example.com/1").json()["links"] == []
    assert len(post_send(api, org, "b https://example.com/2", shorten_links=True).json()["links"]) == 1


def test_our_own_short_links_are_not_wrapped_again(org, api):
    body = f"already ours: https://{LINK_HOST}/AbCdEfGhIj and https://bit.ly/3xYzAbC"
    data = post_send(api, org, body).json()
    assert [link["url"] for link in data["links"]] == ["https://bit.ly/3xYzAbC"]  # another shortener: tracked
    assert data["body"].startswith(f"already ours: https://{LINK_HOST}/AbCdEfGhIj and https://{LINK_HOST}/")


def test_shorten_links_must_be_a_boolean(org, api):
    response = post_send(api, org, "x https://example.com", shorten_links="no")
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_more_than_ten_links_is_too_many_links_and_nothing_is_stored(org, api):
    body = " ".join(f"https://example.com/{i}" for i in range(11))
    response = post_send(api, org, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_links"
    assert response.json()["error"]["details"]["max_links"] == 10
    assert not Send.objects.exists() and not Link.objects.exists()
    assert AuditEntry.objects.get(org=org, action="sms.send").details["code"] == "too_many_links"
    assert post_send(api, org, " ".join(f"https://example.com/{i}" for i in range(10))).status_code == 202


@pytest.mark.parametrize("url", ["https://evil.example.net/login", "https://www.evil.example.net/x",
                                 "https://testsafebrowsing.appspot.com/s/phishing.html"])
def test_blocked_hosts_are_link_not_allowed(org, api, url):
    LinkSettings.objects.create(org=org, blocked_hosts=["evil.example.net"])
    response = post_send(api, org, f"Verify your account: {url}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "link_not_allowed"
    assert not Send.objects.exists()
    # refused even when the sender turns shortening off
    assert post_send(api, org, f"Verify: {url}", shorten_links=False).status_code == 400


def test_a_stop_confirmation_with_a_url_is_not_wrapped(org, provider_account):
    """Opt-out confirmations are TwiML answers of the inbound webhook, not sends: never shortened."""
    from urllib.parse import urlencode

    from django.test import Client

    from tests.factories import TEST_AUTH_TOKEN
    from tests.helpers.twilio_signing import sign_twilio_request

    org.opt_out_text = "You are unsubscribed. Terms: https://example.com/terms?x=1. Reply START to resubscribe."
    org.save()
    path = f"/api/v1/sms/webhooks/twilio/{org.pk}"
    params = {"MessageSid": "SM" + "7" * 32, "AccountSid": provider_account.account_sid, "From": "+15557654321",
              "To": provider_account.from_number, "Body": "STOP"}
    response = Client().post(path, urlencode(params), content_type="application/x-www-form-urlencoded",
                             HTTP_X_TWILIO_SIGNATURE=sign_twilio_request(f"http://testserver{path}", params,
                                                                         TEST_AUTH_TOKEN))
    assert response.status_code == 200
    assert b"https://example.com/terms?x=1" in response.content and LINK_HOST.encode() not in response.content
    assert not Link.objects.exists()


def test_branded_domain_links_resolve_only_on_that_domain(org, api, client_for):
    LinkSettings.objects.create(org=org, branded_domain="go.acme.test")
    other = OrgFactory(name="Other")
    ProviderAccountFactory(org=other)
    LinkSettings.objects.create(org=other, branded_domain="go.other.test")
    other_api = client_for(ApiKeyFactory(org=other, role=Role.ADMIN, mode=KeyMode.PROD))
    services.link_settings_changed()

    mine = post_send(api, org, "A https://acme.example.com/a").json()["links"][0]
    theirs = post_send(other_api, other, "B https://other.example.com/b").json()["links"][0]
    assert mine["short_url"].startswith("https://go.acme.test/")
    my_code, their_code = mine["short_url"].rsplit("/", 1)[1], theirs["short_url"].rsplit("/", 1)[1]

    assert follow(my_code, host="go.acme.test", ua=DESKTOP_UA)["Location"] == "https://acme.example.com/a"
    # org B's code under org A's domain, and the reverse, and either under the platform's host: 404
    assert follow(their_code, host="go.acme.test").status_code == 404
    assert follow(my_code, host="go.other.test").status_code == 404
    assert follow(my_code, host=LINK_HOST).status_code == 404
    assert follow(their_code, host="go.other.test", ua=DESKTOP_UA).status_code == 302


def test_expired_links_are_404(org, api):
    link = post_send(api, org, "x https://example.com/e").json()["links"][0]
    code = link["short_url"].rsplit("/", 1)[1]
    assert follow(code).status_code == 302
    Link.objects.filter(code=code).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    services.local_cache_clear()
    from django.core.cache import cache
    cache.clear()
    response = follow(code)
    assert response.status_code == 404 and b"Link not found" in response.content


def test_retention_is_the_orgs(org, api):
    LinkSettings.objects.create(org=org, retention_days=7)
    post_send(api, org, "x https://example.com/r")
    left = Link.objects.get().expires_at - timezone.now()
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)


def test_links_list_filters_and_send_detail(org, api):
    first = post_send(api, org, "one https://example.com/1 https://example.com/2").json()
    second = post_send(api, org, "two https://example.com/3").json()
    listing = api.get(f"/api/v1/orgs/{org.pk}/sms/links").json()
    assert [item["url"] for item in listing["data"]][0] == "https://example.com/3"
    assert len(listing["data"]) == 3 and listing["next_cursor"] is None
    assert set(listing["data"][0]) == {"id", "send_id", "url", "short_url", "clicks", "previews",
                                       "first_clicked_at", "expires_at", "created_at"}
    only = api.get(f"/api/v1/orgs/{org.pk}/sms/links", {"send_id": first["id"]}).json()["data"]
    assert sorted(item["url"] for item in only) == ["https://example.com/1", "https://example.com/2"]
    later = api.get(f"/api/v1/orgs/{org.pk}/sms/links",
                    {"created_after": (timezone.now() + dt.timedelta(minutes=1)).isoformat()}).json()["data"]
    assert later == []
    bad = api.get(f"/api/v1/orgs/{org.pk}/sms/links", {"send_id": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_filter"
    detail = api.get(f"/api/v1/orgs/{org.pk}/sms/sends/{second['id']}").json()
    assert detail["links"] == second["links"] and detail["original_body"] == "two https://example.com/3"
    page = api.get(f"/api/v1/orgs/{org.pk}/sms/sends").json()["data"]
    assert [len(s["links"]) for s in page] == [1, 2]


def test_test_keys_see_only_test_links(org, api, client_for):
    post_send(api, org, "live https://example.com/live")
    test_api = client_for(ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.TEST))
    post_send(test_api, org, "test https://example.com/test")
    assert [i["url"] for i in test_api.get(f"/api/v1/orgs/{org.pk}/sms/links").json()["data"]] == [
        "https://example.com/test"]
    assert [i["url"] for i in api.get(f"/api/v1/orgs/{org.pk}/sms/links").json()["data"]] == [
        "https://example.com/live"]
