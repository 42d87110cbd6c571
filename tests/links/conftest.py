"""Short-link tests: a link-only base host (https://sndr.link), a click queue of the test's own (a Redis list
on the test broker's database), and fresh per-process caches."""
import json
import uuid

import pytest
from rest_framework.test import APIClient

from orgs.models import KeyMode, Role
from sms.links import services
from tests.factories import ApiKeyFactory

LINK_HOST = "sndr.link"


@pytest.fixture(autouse=True)
def link_settings(settings):
    settings.SMS_LINK_BASE_URL = f"https://{LINK_HOST}"
    settings.SMS_LINK_CLICKS_QUEUE = f"test-link-clicks:{uuid.uuid4().hex}"
    services.link_base.cache_clear()
    services.local_cache_clear()
    yield settings
    if settings.SMS_LINK_CLICKS_REDIS_URL:
        services._redis().delete(settings.SMS_LINK_CLICKS_QUEUE)
    services.link_base.cache_clear()
    services.local_cache_clear()


@pytest.fixture(autouse=True)
def _no_publish(monkeypatch):
    from sms import tasks

    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)
    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: None)


@pytest.fixture
def live_key(org):
    return ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.PROD)


@pytest.fixture
def api(live_key, provider_account, client_for):
    return client_for(live_key)


def send_path(org) -> str:
    return f"/api/v1/orgs/{org.pk}/sms/send"


def post_send(client, org, body, **extra):
    return client.post(send_path(org), json.dumps({"to": "+15551234567", "body": body, **extra}),
                       content_type="application/json")


def queued() -> list[dict]:
    """The click records waiting in this test's queue."""
    from django.conf import settings

    return [json.loads(raw) for raw in services._redis().lrange(settings.SMS_LINK_CLICKS_QUEUE, 0, -1)]


def follow(code, *, host=LINK_HOST, method="get", ua="Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
           "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", **headers):
    """A request for a short link as a phone makes it (APIClient: no session, no CSRF)."""
    return getattr(APIClient(), method)(f"/{code}", HTTP_HOST=host, HTTP_USER_AGENT=ua, **headers)


DESKTOP_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
