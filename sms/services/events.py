"""Events: outbox rows written in the caller's transaction, published to the bus once committed.

- `event_record(...)` inserts with `INSERT … ON CONFLICT DO NOTHING RETURNING id`, so an event is
  stored at most once per (send, type) / (inbound, type) whatever races happen — the partial unique
  constraints decide, not a read-then-write.
- `events_publish(event_id=…)` appends the event JSON to a Redis stream (`XADD sendora:events
  MAXLEN ~ N`) and stamps `published_at`. Delivery on the bus is at-least-once: a crash between the
  XADD and the stamp, or the sweeper racing the task, can append an event twice; subscribers
  de-duplicate on the event `id`.
- With a Redis broker the row is the hand-off: nothing runs after commit (issue #14, eighth pass). A worker's
  dispatcher (sms/services/handoff.py) checks for unpublished rows on every poll and kicks one drain task
  (`events_kick`, only when none runs); the drain (`events_publish_drain`) publishes them oldest first in
  batches of 500 — one query, one fan-out per subscribed org, one pipelined XADD, one stamp per batch. Without
  a broker (embedded mode) each event is published by its own task after commit (`events_publish`).
- `events_publish_pending(...)` is the sweeper's catch-up for rows whose hand-off never ran or was lost.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from sendora_sms import jsonfast
from sendora_sms.db import bind_param
from sms.models import Event
from sms.tenant_webhooks.services import event_mode, webhook_endpoints_for_events, webhook_messages_fanout

logger = logging.getLogger("sms.events")

_TABLE = Event._meta.db_table
_FIELDS = {f.attname: f for f in Event._meta.concrete_fields}
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

    A rolled-back change publishes nothing: the row is the hand-off (`event_inserted`).
    """
    (sql, params), event = event_statement(org_id=org_id, type=type, send=send, inbound=inbound, data=data)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()
    return None if inserted is None else event_inserted(event)


_INSERT_SQL: str | None = None
_ENCODER = DjangoJSONEncoder()


def json_round_trip(data):
    """`json.loads(json.dumps(data, cls=DjangoJSONEncoder))` — the value as JSON gives it back — by orjson (issue #14):
    datetimes, Decimals and the rest of what orjson does not encode as Django does go through DjangoJSONEncoder;
    what orjson refuses (a non-string key, an integer beyond 64 bits) through json itself."""
    try:
        return jsonfast.loads(jsonfast.dumps(data, default=_ENCODER.default))
    except TypeError:
        return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def event_statement(*, org_id, type: str, send=None, inbound=None, data: dict):  # noqa: A002
    """(the INSERT … ON CONFLICT DO NOTHING RETURNING id statement, the unsaved Event) for a caller that runs it in a
    batch (sendora_sms/db.py); when the statement returned a row, hand the event to `event_inserted`."""
    global _INSERT_SQL
    # Round-trip through JSON so the stored data is exactly what gets published (dates as ISO strings).
    data = json_round_trip(data)
    values = {
        "id": uuid.uuid4(), "org_id": getattr(org_id, "pk", org_id), "type": type,
        "send_id": getattr(send, "pk", send), "inbound_id": getattr(inbound, "pk", inbound),
        "data": data, "created_at": timezone.now(), "published_at": None,
        # The send's mode; an inbound message's events belong to the live world (a real person wrote it).
        "mode": getattr(send, "mode", None) or "prod",
    }
    params = [bind_param(_FIELDS[c], v) for c, v in values.items()]
    if _INSERT_SQL is None:
        _INSERT_SQL = (f"INSERT INTO {_TABLE} ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))}) "
                       f"ON CONFLICT DO NOTHING RETURNING id")
    event = Event(**values)
    event.data = data
    return (_INSERT_SQL, params), event


def event_inserted(event: Event) -> Event:
    """The event's row was inserted in the caller's transaction. With a Redis broker and the bus the row itself is
    the hand-off (issue #14, eighth pass: the request talks to no broker): a worker's dispatcher sees unpublished
    rows and kicks one drain task (`events_kick`). Otherwise (embedded mode: tasks in-process, no bus — tenant
    webhooks still fan out) one task per event, after commit."""
    event._state.adding = False
    events_inserted([event.id])
    return event


def events_inserted(event_ids) -> None:
    """`event_inserted` for rows inserted by a statement of their own (sms/services/statements.py): by id."""
    from sms.tasks import events_drain_task

    if event_ids and not _batched(events_drain_task):
        for event_id in map(str, event_ids):
            transaction.on_commit(lambda event_id=event_id: _enqueue_publish(event_id), robust=True)


def _enqueue_publish(event_id: str) -> None:
    """After commit, embedded mode: one task per event."""
    from sms.tasks import events_publish_task

    events_publish_task.delay(event_id)


_DRAIN_FLAG_SECONDS = 5  # a kick lost with the broker holds the events this long at most
_DRAIN_BATCH = 500
_UNPUBLISHED_SQL = f"SELECT 1 FROM {_TABLE} WHERE published_at IS NULL LIMIT 1"  # event_unpublished_idx


def events_kick() -> bool:
    """The dispatcher's check (sms/services/handoff.py `handoff_run`, every poll): when an event waits to be
    published and no drain runs, kick one drain task. Returns whether it kicked."""
    from sms.tasks import events_drain_task

    if not _batched(events_drain_task):
        return False
    with connection.cursor() as cursor:
        cursor.execute(_UNPUBLISHED_SQL)
        if cursor.fetchone() is None:
            return False
    if not _redis().set(_drain_flag(), "1", nx=True, ex=_DRAIN_FLAG_SECONDS):
        return False  # a drain runs (or is queued): it will see these rows
    try:
        events_drain_task.delay()
    except Exception:
        _redis().delete(_drain_flag())  # no drain is on its way: let the next poll kick again
        raise
    return True


def _batched(task) -> bool:
    return bus_enabled() and task._fast_queue() is not None


def _drain_flag() -> str:
    """Set while a drain task runs (or is queued): the pending list needs no other kick."""
    return settings.SMS_EVENTS_PENDING_KEY + ":draining"


def bus_enabled() -> bool:
    """The bus is the Redis stream on SMS_EVENTS_REDIS_URL (the broker's Redis by default, never the
    flushable rate-limit cache); without Redis (embedded mode) events stay in the table only."""
    return bool(settings.SMS_EVENTS_REDIS_URL)


def bus_connect() -> None:
    """Open the bus client's connection now (a web worker's boot: sendora_sms/wsgi.py); no-op without the bus."""
    if bus_enabled():
        _redis().ping()


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
    if not bus_enabled():
        with transaction.atomic():
            webhook_messages_fanout(event=event)
        return False  # embedded mode: no bus; the event stays unpublished in the table
    return _publish_rows([event]) > 0


def events_publish_pending(*, older_than_seconds: float = 30, limit: int = 500) -> int:
    """Publish events no drain has published (no worker consuming sms-events, a kick lost with the broker, a
    drain that crashed). Returns how many were published."""
    if not bus_enabled():
        return 0
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    # No row lock is held across the Redis call: read the backlog, fan it out (idempotent), publish, then stamp
    # what is still unstamped. Two sweepers racing may both publish an event — the bus is at-least-once and
    # subscribers de-duplicate on the event id — but neither ever waits on the other or on Redis with a lock.
    rows = list(Event.objects.filter(published_at__isnull=True, created_at__lt=cutoff).order_by("created_at")[:limit])
    return _publish_rows(rows)


def events_publish_drain(*, batch: int = _DRAIN_BATCH) -> int:
    """The drain task's work: publish the unpublished events, oldest first, in batches until none is left, then
    release the flag. A crash leaves the rest unpublished in the table: the next kick (or the sweeper) takes them."""
    client = _redis()
    flag = _drain_flag()
    published = 0
    unpublished = Event.objects.filter(published_at__isnull=True).order_by("created_at")
    while True:
        client.expire(flag, _DRAIN_FLAG_SECONDS)  # still draining: no other kick needed
        events = list(unpublished[:batch])
        if events:
            published += _publish_rows(events)
            if len(events) < batch and settings.SMS_EVENTS_DRAIN_LINGER_SECONDS:
                # Under a steady trickle, let the next batch gather: a pass costs about the same for 1 event as
                # for 100 (issue #14). An event waits at most this much longer; none left ends the drain.
                time.sleep(settings.SMS_EVENTS_DRAIN_LINGER_SECONDS)
            continue
        client.delete(flag)
        # An event committed after the last read while the flag was still set: take the flag back and go on (or
        # leave it to the dispatcher's next kick, if another drain took the flag first).
        if not unpublished.exists() or not client.set(flag, "1", nx=True, ex=_DRAIN_FLAG_SECONDS):
            return published


def _publish_rows(rows: list[Event]) -> int:
    """Fan each event out to its tenant webhooks (idempotent), append them all to the stream in one round trip,
    then stamp the ones still unstamped. Returns how many this call stamped."""
    if not rows:
        return 0
    endpoints = webhook_endpoints_for_events(rows)
    for event in rows:
        if endpoints.get((event.org_id, event_mode(event))):
            with transaction.atomic():
                webhook_messages_fanout(event=event, endpoints=endpoints[(event.org_id, event_mode(event))])
    pipe = _redis().pipeline(transaction=False)
    for event in rows:
        pipe.xadd(settings.SMS_EVENTS_STREAM, {"event": json.dumps(event_message(event))},
                  maxlen=settings.SMS_EVENTS_STREAM_MAXLEN, approximate=True)
    pipe.execute()
    return Event.objects.filter(pk__in=[e.pk for e in rows], published_at__isnull=True).update(
        published_at=timezone.now())
