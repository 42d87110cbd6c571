"""event_record (outbox, at most once per (send|inbound, type)) and publication to the Redis stream."""
import json
import threading
import uuid
from datetime import timedelta

import pytest
import redis
from django.db import connection, transaction
from django.utils import timezone

from sms.models import Event, EventType
from sms.services.events import event_record, events_publish, events_publish_pending, send_event_data
from tests.factories import EventFactory, InboundMessageFactory, SendFactory


@pytest.fixture
def stream(settings):
    settings.SMS_EVENTS_STREAM = f"test:events:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.SMS_EVENTS_REDIS_URL)
    yield client, settings.SMS_EVENTS_STREAM
    client.delete(settings.SMS_EVENTS_STREAM)


def stream_events(client, name):
    return [json.loads(fields[b"event"]) for _, fields in client.xrange(name)]


def test_first_record_is_stored_unpublished_the_row_being_its_hand_off(db, django_capture_on_commit_callbacks):
    send = SendFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        event = event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={"id": str(send.id)})
    assert event is not None
    stored = Event.objects.get()
    assert (stored.pk, stored.type, stored.send_id, stored.data) == (event.id, "sms.sent", send.id, {"id": str(send.id)})
    assert stored.published_at is None  # the dispatcher's kick publishes it (events_kick)
    assert callbacks == []


def test_in_embedded_mode_a_record_registers_its_own_publication(db, monkeypatch, django_capture_on_commit_callbacks):
    from sendora_sms.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # `make run`: no broker, no dispatcher
    send = SendFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={})
    assert len(callbacks) == 1


def test_second_record_of_the_same_send_and_type_returns_none_and_publishes_nothing(
        db, django_capture_on_commit_callbacks):
    send = SendFactory()
    event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={})
    with django_capture_on_commit_callbacks() as callbacks:
        assert event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={"again": 1}) is None
    assert Event.objects.count() == 1
    assert Event.objects.get().data == {}
    assert callbacks == []


def test_different_types_for_one_send_are_all_stored(db):
    send = SendFactory()
    for event_type in (EventType.SENT, EventType.DELIVERED, EventType.FAILED):
        assert event_record(org_id=send.org_id, type=event_type, send=send, data={}) is not None
    assert Event.objects.filter(send=send).count() == 3


def test_inbound_events_are_unique_per_inbound_and_type(db):
    inbound = InboundMessageFactory()
    assert event_record(org_id=inbound.org_id, type=EventType.REPLIED, inbound=inbound, data={}) is not None
    assert event_record(org_id=inbound.org_id, type=EventType.REPLIED, inbound=inbound, data={}) is None
    other = InboundMessageFactory(org=inbound.org)
    assert event_record(org_id=inbound.org_id, type=EventType.REPLIED, inbound=other, data={}) is not None


def test_an_event_in_a_rolled_back_transaction_is_not_stored(db, django_capture_on_commit_callbacks):
    send = SendFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={})
                raise RuntimeError("the state change failed")
    assert Event.objects.count() == 0
    assert callbacks == []


def test_data_is_stored_as_json_with_dates_as_iso_strings(db):
    send = SendFactory()
    event = event_record(org_id=send.org_id, type=EventType.SENT, send=send, data=send_event_data(send))
    stored = Event.objects.get(pk=event.id).data
    assert stored["id"] == str(send.id) and stored["to"] == send.to
    assert stored["created_at"].endswith("Z")


@pytest.mark.django_db(transaction=True)
def test_concurrent_records_of_the_same_event_store_exactly_one():
    send = SendFactory()
    barrier = threading.Barrier(8)
    results = []

    def record():
        try:
            barrier.wait()
            with transaction.atomic():
                results.append(event_record(org_id=send.org_id, type=EventType.DELIVERED, send=send, data={}))
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Event.objects.filter(send=send, type=EventType.DELIVERED).count() == 1
    assert sum(r is not None for r in results) == 1


def test_publish_appends_the_event_to_the_stream_and_stamps_it(db, stream):
    client, name = stream
    send = SendFactory()
    event = event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={"id": str(send.id)})
    assert events_publish(event_id=event.id) is True
    (message,) = stream_events(client, name)
    assert message == {"id": str(event.id), "type": "sms.sent", "org_id": str(send.org_id),
                       "created_at": message["created_at"], "data": {"id": str(send.id)}}
    assert Event.objects.get(pk=event.id).published_at is not None


def test_publishing_twice_appends_once(db, stream):
    client, name = stream
    event = EventFactory()
    assert events_publish(event_id=event.id) is True
    assert events_publish(event_id=event.id) is False
    assert client.xlen(name) == 1


def test_pending_publication_catches_up_old_unpublished_events_only(db, stream):
    client, name = stream
    old = EventFactory()
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    fresh = EventFactory()
    done = EventFactory(published_at=timezone.now())
    Event.objects.filter(pk=done.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert events_publish_pending(older_than_seconds=30) == 1
    assert [m["id"] for m in stream_events(client, name)] == [str(old.pk)]
    assert Event.objects.get(pk=fresh.pk).published_at is None


def test_without_redis_the_bus_is_off_and_events_stay_in_the_table(db, settings):
    settings.SMS_EVENTS_REDIS_URL = ""
    event = EventFactory()
    assert events_publish(event_id=event.id) is False
    assert events_publish_pending(older_than_seconds=0) == 0
    assert Event.objects.get(pk=event.pk).published_at is None


# --- batched publication (issue #14): the row is the hand-off; the dispatcher kicks one drain task ----------------


@pytest.fixture
def pending(settings, stream):
    settings.SMS_EVENTS_PENDING_KEY = f"test:events:pending:{uuid.uuid4().hex}"  # the drain flag's name derives from it
    client, _ = stream
    from sms.services.events import _drain_flag

    yield client, _drain_flag()
    client.delete(_drain_flag())


def test_a_committed_event_runs_nothing_after_commit_and_one_kick_starts_one_drain(db, pending, monkeypatch,
                                                                                  django_capture_on_commit_callbacks):
    from sms import tasks
    from sms.services.events import events_kick

    client, flag = pending
    kicks = []
    monkeypatch.setattr(tasks.events_drain_task, "delay", lambda: kicks.append(1))
    monkeypatch.setattr(tasks.events_publish_task, "delay", lambda event_id: pytest.fail("one task per event"))
    assert events_kick() is False and kicks == []  # nothing unpublished: no kick
    ids = []
    for _ in range(3):
        send = SendFactory()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            ids.append(event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={}).id)
        assert callbacks == []  # the request publishes nothing: the row is the hand-off
    assert set(Event.objects.filter(published_at__isnull=True).values_list("id", flat=True)) == set(ids)
    assert events_kick() is True and kicks == [1]
    assert events_kick() is False and kicks == [1]  # a drain is on its way (its flag): no second kick
    assert client.ttl(flag) > 0


def test_a_kick_the_broker_refuses_leaves_no_flag_behind(db, pending, monkeypatch):
    from sms import tasks
    from sms.services.events import events_kick

    client, flag = pending
    EventFactory()

    def refuse():
        raise ConnectionError("broker away")

    monkeypatch.setattr(tasks.events_drain_task, "delay", refuse)
    with pytest.raises(ConnectionError):
        events_kick()
    assert not client.exists(flag)  # the next poll kicks again


def test_the_drain_publishes_the_unpublished_events_in_batches_and_releases_its_flag(db, stream, pending):
    from sms.services.events import events_publish_drain

    client, flag = pending
    _, stream_name = stream
    events = [EventFactory() for _ in range(7)]
    EventFactory(published_at=timezone.now())  # already published: not again
    client.set(flag, "1")
    assert events_publish_drain(batch=3) == 7
    assert not client.exists(flag)
    assert sorted(m["id"] for m in stream_events(client, stream_name)) == sorted(str(e.pk) for e in events)
    assert not Event.objects.filter(published_at__isnull=True).exists()
    assert events_publish_drain() == 0  # nothing left: a second drain publishes nothing twice
    assert client.xlen(stream_name) == 7


def test_an_event_committed_as_the_drain_releases_its_flag_is_still_published(db, pending, monkeypatch):
    """The race of the kick: an event committed after the drain's last read, while its flag still stopped the
    dispatcher's kick; the drain sees it after releasing the flag, takes the flag back and publishes it."""
    from sms.services import events as events_module

    client, flag = pending
    real_delete = client.delete
    late = []

    class Racing:
        def __getattr__(self, name):
            return getattr(client, name)

        def delete(self, *names):
            result = real_delete(*names)
            if not late:
                late.append(EventFactory())
            return result

    monkeypatch.setattr(events_module, "_redis", lambda: Racing())
    client.set(flag, "1")
    assert events_module.events_publish_drain() == 1
    assert Event.objects.get(pk=late[0].pk).published_at is not None
    assert not client.exists(flag)


def test_a_drained_event_fans_out_to_the_orgs_subscribed_endpoints(db, pending, settings, monkeypatch):
    from sms.models import WebhookMessage
    from sms.services.events import events_publish_drain
    from sms.tenant_webhooks import services as webhooks

    settings.WEBHOOKS_ALLOW_HTTP = settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    monkeypatch.setattr(webhooks, "enqueue_delivery", lambda **kw: None)  # fan-out only, no delivery
    send = SendFactory(mode="prod")
    webhooks.webhook_endpoint_create(org=send.org, url="http://127.0.0.1:9/in", events=["sms.sent"], mode="prod")
    subscribed = event_record(org_id=send.org_id, type=EventType.SENT, send=send, data={})
    event_record(org_id=send.org_id, type=EventType.DELIVERED, send=send, data={})  # not subscribed
    EventFactory()  # another org: no endpoint
    assert events_publish_drain() == 3
    assert list(WebhookMessage.objects.values_list("event_id", flat=True)) == [subscribed.pk]
