"""The client address behind trusted proxies (bad-key limiter and audit log)."""
import pytest
from django.test import RequestFactory

from sendora_sms.client_ip import client_ip


@pytest.mark.parametrize("hops,xff,expected", [
    (0, "203.0.113.9", "10.0.0.1"),                     # no trusted proxy: the header is ignored
    (1, "203.0.113.9", "203.0.113.9"),                  # one proxy appended the client
    (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),         # the client's own prefix is not trusted
    (2, "6.6.6.6, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
    (2, "203.0.113.9", "10.0.0.1"),                     # fewer entries than proxies: fall back
    (1, "not-an-ip", "10.0.0.1"),
    (1, "", "10.0.0.1"),
])
def test_client_ip_trusts_only_the_configured_proxies(settings, hops, xff, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=xff)
    assert client_ip(request) == expected


@pytest.mark.django_db
def test_bad_keys_behind_a_proxy_are_counted_per_client(settings, api_client, org, admin_key):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.API_BAD_KEY_RATE = "3/m"
    url = f"/api/v1/orgs/{org.pk}/audit-log"
    for _ in range(4):
        api_client.get(url, HTTP_X_API_KEY="sk_test_" + "x" * 32, REMOTE_ADDR="10.0.0.1",
                       HTTP_X_FORWARDED_FOR="198.51.100.7")
    blocked = api_client.get(url, HTTP_X_API_KEY="sk_test_" + "x" * 32, REMOTE_ADDR="10.0.0.1",
                             HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert blocked.status_code == 429
    other = api_client.get(url, HTTP_X_API_KEY=admin_key.raw_key, REMOTE_ADDR="10.0.0.1",
                           HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 200  # same proxy, another client: unaffected
