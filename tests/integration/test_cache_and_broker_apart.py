"""Issue #10 point 9 — the rate-limit cache and the Celery broker are kept apart.

The cache may be flushed (`cache.clear()` is FLUSHDB; every test's autouse fixture does it) or evicted;
the broker holds queued tasks. They default to separate Redis databases (settings.py), so clearing
the cache loses no queued task.
"""
import json
import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from sms.tasks import send_dispatch_task

pytestmark = [pytest.mark.integration]

PARKED_QUEUE = "sendora-test-parked"  # consumed by no worker: the message stays on the broker for the test


@pytest.fixture
def broker():
    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL:
        pytest.skip("needs a Redis broker (CELERY_BROKER_URL)")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(PARKED_QUEUE)
    yield client
    client.delete(PARKED_QUEUE)


def test_cache_and_broker_are_different_redis_databases_by_default():
    assert settings.REDIS_URL and settings.CELERY_BROKER_URL
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL
    assert settings.REDIS_URL != settings.CELERY_BROKER_URL


def test_clearing_the_cache_loses_no_queued_task(broker):
    send_id = str(uuid.uuid4())
    send_dispatch_task.apply_async(args=[send_id], queue=PARKED_QUEUE)
    cache.set("rate-limit-counter", 7)
    assert broker.llen(PARKED_QUEUE) == 1

    cache.clear()  # what the tests' autouse fixture (and an operator's flush) does

    assert cache.get("rate-limit-counter") is None  # the cache was cleared…
    assert broker.llen(PARKED_QUEUE) == 1  # …and the queued task is still on the broker
    message = json.loads(broker.lindex(PARKED_QUEUE, 0))
    assert message["headers"]["task"] == "sms.tasks.send_dispatch_task" and send_id in message["headers"]["argsrepr"]
