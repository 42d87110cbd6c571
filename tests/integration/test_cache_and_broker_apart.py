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

from sms.services.events import events_publish
from sms.tasks import send_dispatch_task
from tests.factories import EventFactory

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


@pytest.mark.django_db
def test_the_events_stream_lives_with_the_broker_and_survives_a_cache_clear(settings):
    """The events bus (a Redis stream) holds published events subscribers have not read yet; it is kept
    out of the flushable cache too (SMS_EVENTS_REDIS_URL defaults to the broker's Redis)."""
    assert settings.SMS_EVENTS_REDIS_URL == settings.CELERY_BROKER_URL != settings.REDIS_URL
    settings.SMS_EVENTS_STREAM = f"test:events:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.SMS_EVENTS_REDIS_URL)
    try:
        event = EventFactory()
        assert events_publish(event_id=event.pk)  # the real publisher
        cache.clear()
        assert [json.loads(fields[b"event"])["id"] for _, fields in client.xrange(settings.SMS_EVENTS_STREAM)] == [
            str(event.pk)]
    finally:
        client.delete(settings.SMS_EVENTS_STREAM)
