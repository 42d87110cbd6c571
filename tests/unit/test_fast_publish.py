"""Issue #14: `send_dispatch_task.delay(send_id)` writes, in one LPUSH, the same message Celery's own
apply_async writes (sendora_sms/fast_publish.py) — so any worker consumes it as before."""
import json
import uuid

import pytest
import redis
from django.conf import settings

from sendora_sms.fast_publish import FastPublishTask, publish
from sms.tasks import send_dispatch_task

QUEUE = "sms-send-fast-publish-test"  # not a served queue: a running test worker must not take these
PER_MESSAGE = {("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id"),
               ("properties", "delivery_tag"), ("headers", "origin")}


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE)
    yield client
    client.delete(QUEUE)


def _flat(message: dict) -> dict:
    return {(section, key): value for section in ("headers", "properties")
            for key, value in message[section].items()} | {
        ("envelope", key): value for key, value in message.items() if key not in ("headers", "properties")}


def test_the_fast_message_is_celerys_message(broker):
    assert isinstance(send_dispatch_task, FastPublishTask)
    send_id = str(uuid.uuid4())
    assert send_dispatch_task._fast_queue() == "sms-send"  # what .delay(send_id) publishes to
    celery_id = send_dispatch_task.apply_async((send_id,), queue=QUEUE, routing_key=QUEUE).id  # Celery's own path
    fast_id = publish(send_dispatch_task, QUEUE, (send_id,))  # the fast path's message
    fast, celerys = (json.loads(m) for m in broker.lrange(QUEUE, 0, -1))  # LPUSH: newest first
    assert fast["headers"]["id"] == fast_id and celerys["headers"]["id"] == celery_id
    a, b = _flat(fast), _flat(celerys)
    assert a.keys() == b.keys()
    differing = {k for k in a if a[k] != b[k]}
    assert differing <= PER_MESSAGE, {k: (a[k], b[k]) for k in differing - PER_MESSAGE}
    assert fast["headers"]["root_id"] == fast["properties"]["correlation_id"] == fast_id


def test_the_events_task_publishes_the_same_way(broker):
    from sms.tasks import events_publish_task

    assert isinstance(events_publish_task, FastPublishTask) and events_publish_task._fast_queue() == "sms-events"
    event_id = str(uuid.uuid4())
    celery_id = events_publish_task.apply_async((event_id,), queue=QUEUE, routing_key=QUEUE).id
    fast_id = publish(events_publish_task, QUEUE, (event_id,))
    fast, celerys = (json.loads(m) for m in broker.lrange(QUEUE, 0, -1))
    a, b = _flat(fast), _flat(celerys)
    assert a.keys() == b.keys() and {k for k in a if a[k] != b[k]} <= PER_MESSAGE
    assert (fast["headers"]["id"], celerys["headers"]["id"]) == (fast_id, celery_id)


def test_options_and_keyword_arguments_go_through_celery(broker, monkeypatch):
    from celery import Task

    calls = []
    monkeypatch.setattr(Task, "apply_async", lambda self, *a, **kw: calls.append((a, kw)))
    send_dispatch_task.delay(str(uuid.uuid4()), attempt=2)
    assert len(calls) == 1


def test_the_encoded_message_is_the_json_of_message_for():
    """publish() encodes from a cached template (issue #14): the same bytes as json.dumps(message_for(…))."""
    import sendora_sms.fast_publish as fast_publish
    from sms.tasks import events_publish_task

    for task, args in ((send_dispatch_task, (str(uuid.uuid4()),)), (send_dispatch_task, (str(uuid.uuid4()), 3)),
                       (events_publish_task, ('quote " and \\\\ backslash ü',))):
        task_id = str(uuid.uuid4())
        fixed = uuid.uuid4()
        real_uuid4 = fast_publish.uuid.uuid4
        fast_publish.uuid.uuid4 = lambda: fixed  # the delivery tag
        try:
            got = fast_publish.encoded_message(task, "sms-send", args, task_id)
            want = json.dumps(fast_publish.message_for(task, "sms-send", args, task_id))
        finally:
            fast_publish.uuid.uuid4 = real_uuid4
        assert got == want


def test_a_broker_error_propagates_and_drops_the_connection(monkeypatch):
    import sendora_sms.fast_publish as fast_publish

    client = fast_publish._broker_client(send_dispatch_task.app)
    conn = client.connection_pool.get_connection()
    client.connection_pool.release(conn)
    dropped = []
    monkeypatch.setattr(type(conn), "read_response", lambda self, **kw: (_ for _ in ()).throw(redis.ConnectionError("gone")))
    monkeypatch.setattr(type(conn), "disconnect", lambda self, *a, **kw: dropped.append(self))
    with pytest.raises(redis.ConnectionError):
        publish(send_dispatch_task, QUEUE, (str(uuid.uuid4()),))
    assert dropped
