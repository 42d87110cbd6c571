"""Issue #15: the endpoints API, SSRF protection, secrets shown once and stored encrypted, test/live worlds."""
import base64

import pytest

from orgs.models import KeyMode, Role
from sms.tenant_webhooks.models import WebhookEndpoint
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(org, client_for):
    return client_for(ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.PROD))


@pytest.fixture
def allow_local(settings):
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True


def _path(org, suffix=""):
    return f"/api/v1/orgs/{org.pk}/webhooks{suffix}"


def _error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    return response.json()["error"]


def test_create_returns_the_secret_once_and_stores_it_encrypted(org, live, allow_local):
    response = live.post(_path(org), {"url": "http://127.0.0.1:9/hook", "events": ["sms.delivered"],
                                      "description": "prod"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "url", "events", "description", "enabled", "disabled_reason", "created_at", "secret"}
    secret = body["secret"]
    assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:])) <= 64
    stored = WebhookEndpoint.objects.get()
    assert secret not in stored.secret_ciphertext and secret[6:] not in stored.secret_ciphertext
    for response in (live.get(_path(org)), live.get(_path(org, f"/{body['id']}"))):
        assert response.status_code == 200 and secret not in response.content.decode()
        assert "secret" not in response.content.decode()


def test_crud(org, live, allow_local):
    created = live.post(_path(org), {"url": "http://127.0.0.1:9/a"}, format="json").json()
    assert created["events"] == ["*"] and created["enabled"] is True and created["disabled_reason"] is None
    patched = live.patch(_path(org, f"/{created['id']}"), {"enabled": False, "events": ["sms.failed", "sms.sent"]},
                         format="json")
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["events"] == ["sms.failed", "sms.sent"]
    assert live.get(_path(org)).json()["data"][0]["id"] == created["id"]
    assert live.delete(_path(org, f"/{created['id']}")).status_code == 204
    _error(live.get(_path(org, f"/{created['id']}")), 404, "not_found")


def test_rotate_secret_returns_a_new_one(org, live, allow_local):
    created = live.post(_path(org), {"url": "http://127.0.0.1:9/a"}, format="json").json()
    rotated = live.post(_path(org, f"/{created['id']}/rotate-secret"))
    assert rotated.status_code == 200 and rotated.json()["secret"] != created["secret"]
    assert WebhookEndpoint.objects.get().previous_secret_expires_at is not None


def test_at_most_ten_endpoints(org, live, allow_local):
    for n in range(10):
        assert live.post(_path(org), {"url": f"http://127.0.0.1:9/{n}"}, format="json").status_code == 201
    _error(live.post(_path(org), {"url": "http://127.0.0.1:9/11"}, format="json"), 409, "too_many_endpoints")


@pytest.mark.parametrize("events", [[], ["sms.nope"], "sms.sent", [1], ["*", "sms.sent"]])
def test_bad_events_are_400(org, live, allow_local, events):
    _error(live.post(_path(org), {"url": "http://127.0.0.1:9/a", "events": events}, format="json"), 400,
           "invalid_events" if isinstance(events, list) else "validation_error")


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook", "https://localhost/hook", "https://[::ffff:127.0.0.1]/hook", "https://192.168.1.5/",
    "https://0.0.0.0/", "http://example.com/hook", "ftp://example.com/", "https://user:pw@example.com/",
    "not a url",
])
def test_ssrf_and_scheme_refused_by_default(org, live, url):
    """Without the explicit test settings: loopback, private, link-local/metadata, IPv6 loopback, a hostname
    resolving to a private address (localhost) and plain http are all refused."""
    _error(live.post(_path(org), {"url": url}, format="json"), 400, "invalid_url")
    assert not WebhookEndpoint.objects.exists()


def test_test_and_live_keys_see_their_own_endpoints(org, live, client_for, allow_local):
    test = client_for(ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.TEST))
    live_id = live.post(_path(org), {"url": "http://127.0.0.1:9/live"}, format="json").json()["id"]
    test_id = test.post(_path(org), {"url": "http://127.0.0.1:9/test"}, format="json").json()["id"]
    assert [e["id"] for e in live.get(_path(org)).json()["data"]] == [live_id]
    assert [e["id"] for e in test.get(_path(org)).json()["data"]] == [test_id]
    _error(test.get(_path(org, f"/{live_id}")), 404, "not_found")
    assert WebhookEndpoint.objects.get(pk=live_id).mode == "prod"
    assert WebhookEndpoint.objects.get(pk=test_id).mode == "test"


def test_member_keys_and_other_orgs_are_refused(org, other_org, client_for, live, allow_local):
    member = client_for(ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD))
    _error(member.get(_path(org)), 403, "admin_required")
    _error(live.get(_path(other_org)), 404, "org_not_found")
    other = client_for(ApiKeyFactory(org=other_org, role=Role.ADMIN, mode=KeyMode.PROD))
    endpoint_id = live.post(_path(org), {"url": "http://127.0.0.1:9/a"}, format="json").json()["id"]
    _error(other.get(_path(other_org, f"/{endpoint_id}")), 404, "not_found")
    _error(other.delete(_path(other_org, f"/{endpoint_id}")), 404, "not_found")
