"""Events: outbox rows written in the caller's transaction, published to the bus after commit.

- `event_record(...)` inserts with `INSERT … ON CONFLICT DO NOTHING RETURNING id`, so an event is
  stored at most once per (send, type) / (inbound, type) whatever races happen — the partial unique
  constraints decide, not a read-then-write. It registers publication with `on_commit`.
- `events_publish(event_id=…)` appends the event JSON to a Redis stream (`XADD sendora:events
  MAXLEN ~ N`) and stamps `published_at`. Delivery on the bus is at-least-once: a crash between the
  XADD and the stamp, or the sweeper racing the task, can append an event twice; subscribers
  de-duplicate on the event `id`.
- `events_publish_pending(...)` is the sweeper's catch-up for rows whose task never ran.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from sms.models import Event
from sms.tenant_webhooks.services import webhook_messages_fanout

logger = logging.getLogger("sms.events")

_TABLE = Event._meta.db_table
_redis_client = None


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def send_event_data(send) -> dict:
    """The send as the API contract (README.md, /api/schema) renders it (the `data` of sms.sent / sms.delivered / sms.failed)."""
    return {
        "id": str(send.id), "org_id": str(send.org_id), "to": send.to, "from": send.from_number,
        "body": send.body, "category": send.category, "status": send.status,
        "suppressed_reason": send.suppressed_reason, "segments": send.segments, "encoding": send.encoding,
        "metadata": send.metadata, "provider": send.provider, "provider_message_id": send.provider_message_id,
        "error_code": send.error_code, "error_message": send.error_message, "mode": send.mode,
        "created_at": _iso(send.created_at), "updated_at": _iso(send.updated_at), "sent_at": _iso(send.sent_at),
        "delivered_at": _iso(send.delivered_at), "failed_at": _iso(send.failed_at),
    }


def event_record(*, org_id, type: str, send=None, inbound=None, data: dict) -> Event | None:  # noqa: A002
    """Insert an outbox event inside the caller's transaction; None when (send|inbound, type) already exists.

    Publication is registered with `transaction.on_commit`, so a rolled-back change publishes nothing.
    """
    fields = {f.attname: f for f in Event._meta.concrete_fields}
    now = timezone.now()
    event_id = uuid.uuid4()
    # Round-trip through JSON so the stored data is exactly what gets published (dates as ISO strings).
    data = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    values = {
        "id": event_id, "org_id": getattr(org_id, "pk", org_id), "type": type,
        "send_id": getattr(send, "pk", send), "inbound_id": getattr(inbound, "pk", inbound),
        "data": data, "created_at": now, "published_at": None,
        # The send's mode; an inbound message's events belong to the live world (a real person wrote it).
        "mode": getattr(send, "mode", None) or "prod",
    }
    columns = list(values)
    params = [fields[c].get_db_prep_value(values[c], connection, prepared=False) for c in columns]
    sql = (f"INSERT INTO {_TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
           f"ON CONFLICT DO NOTHING RETURNING id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()
    if inserted is None:
        return None
    event = Event(**values)
    event.data = data
    event._state.adding = False
    transaction.on_commit(lambda: _enqueue_publish(str(event_id)), robust=True)
    return event


def _enqueue_publish(event_id: str) -> None:
    from sms.tasks import events_publish_task

    # Embedded mode has no bus, but tenant webhooks still fan out (the task runs in-process there).
    events_publish_task.delay(event_id)


def bus_enabled() -> bool:
    """The bus is the Redis stream on SMS_EVENTS_REDIS_URL (the broker's Redis by default, never the
    flushable rate-limit cache); without Redis (embedded mode) events stay in the table only."""
    return bool(settings.SMS_EVENTS_REDIS_URL)


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.SMS_EVENTS_REDIS_URL, socket_connect_timeout=2,
                                             socket_timeout=5)
    return _redis_client


def event_message(event: Event) -> dict:
    """The published shape (the API contract (README.md, /api/schema)): {id, type, org_id, created_at, data}."""
    return {"id": str(event.id), "type": event.type, "org_id": str(event.org_id),
            "created_at": _iso(event.created_at), "data": event.data}


def events_publish(*, event_id) -> bool:
    """Fan the event out to the org's tenant webhooks, append it to the stream and stamp it; False if already
    published or missing. The fan-out comes first and is idempotent, so an event is stamped only once every
    subscribed endpoint has its message (a crash in between is repaired by events_publish_pending)."""
    event = Event.objects.filter(pk=event_id, published_at__isnull=True).first()
    if event is None:
        return False
    with transaction.atomic():
        webhook_messages_fanout(event=event)
    if not bus_enabled():
        return False  # embedded mode: no bus; the event stays unpublished in the table
    _redis().xadd(settings.SMS_EVENTS_STREAM, {"event": json.dumps(event_message(event))},
                  maxlen=settings.SMS_EVENTS_STREAM_MAXLEN, approximate=True)
    Event.objects.filter(pk=event.pk, published_at__isnull=True).update(published_at=timezone.now())
    return True


def events_publish_pending(*, older_than_seconds: float = 30, limit: int = 500) -> int:
    """Publish events whose after-commit task never ran (broker down, crash). Returns how many were published."""
    if not bus_enabled():
        return 0
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    # No row lock is held across the Redis call: read the backlog, fan it out (idempotent), publish, then stamp
    # what is still unstamped. Two sweepers racing may both publish an event — the bus is at-least-once and
    # subscribers de-duplicate on the event id — but neither ever waits on the other or on Redis with a lock.
    rows = list(Event.objects.filter(published_at__isnull=True, created_at__lt=cutoff).order_by("created_at")[:limit])
    if not rows:
        return 0
    for event in rows:
        with transaction.atomic():
            webhook_messages_fanout(event=event)
    pipe = _redis().pipeline(transaction=False)
    for event in rows:
        pipe.xadd(settings.SMS_EVENTS_STREAM, {"event": json.dumps(event_message(event))},
                  maxlen=settings.SMS_EVENTS_STREAM_MAXLEN, approximate=True)
    pipe.execute()
    published = Event.objects.filter(pk__in=[e.pk for e in rows], published_at__isnull=True).update(
        published_at=timezone.now())
    return published
