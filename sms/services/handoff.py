"""The dispatch hand-off through the transactional outbox (issue #14): how an accepted send reaches the workers.

The send's own transaction writes a DispatchHandoff row beside the send (`handoff_statements`, in the same
round trip as the send's other rows), so the hand-off exists exactly when the send is committed and never
for one rolled back. No web request publishes to the broker. A dispatcher thread in every worker that consumes
`sms-send` (sendora_sms/celery.py `DispatchHandoffStep`) runs `handoff_run`: every
SMS_DISPATCH_HANDOFF_POLL_SECONDS, and at once again after a full batch, `handoff_drain` takes up to
SMS_DISPATCH_HANDOFF_BATCH rows oldest first under `FOR UPDATE SKIP LOCKED` (dispatchers on several hosts split
the rows), publishes one dispatch task per row in ONE broker command, and deletes the rows in the same transaction:

- the broker refuses → the transaction rolls back, the rows stay for the next poll;
- the dispatcher dies after publishing, before its COMMIT → the rows are published again: a duplicate task
  finds nothing to claim (the claim is a compare-and-set, sms/services/dispatch.py);
- no dispatcher runs at all → the sweeper re-enqueues queued sends after SMS_SWEEP_QUEUED_AFTER_SECONDS, as it
  always did for a lost hand-off, and warns that hand-off rows are waiting (`handoff_backlog`).

A send therefore waits up to one poll interval (50 ms by default) more before its task is published; in
exchange the request is one Redis round trip lighter (docs/benchmarks.md, issue #14, eighth pass). Embedded
mode (no broker: tasks run in-process) has no dispatcher: there the send hands itself off after commit, as before
(`handoff_statements` registers sms/services/enqueue.py `dispatch_enqueue` and returns no row).
"""
from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connection, transaction

from sendora_sms.db import Statement, insert_statement, vendor
from sms.models import DispatchHandoff, Send
from sms.services.enqueue import dispatch_enqueue
from sms.statuses import SendStatus

logger = logging.getLogger("sms.handoff")

_TABLE = DispatchHandoff._meta.db_table
# What insert_statement(DispatchHandoff(…)) runs, without a model instance (issue #14), the id left to its
# sequence: on PostgreSQL a UUID and an aware datetime are bound as they are.
_INSERT_SQL = f"INSERT INTO {_TABLE} (send_id, created_at) VALUES (%s, %s)"
_TAKE_SQL = (f"DELETE FROM {_TABLE} WHERE id IN (SELECT id FROM {_TABLE} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
             f"RETURNING id, send_id")


def handoff_in_process() -> bool:
    """Whether tasks run in-process (embedded mode, no broker: the Celery app's own setting, as `.delay` reads
    it): then there is no dispatcher to take hand-offs."""
    from sendora_sms.celery import app

    return bool(app.conf.task_always_eager)


def handoff_statements(send: Send) -> list[Statement]:
    """`send`'s dispatch hand-off, decided once while its transaction's writes are built: for a queued send the
    INSERT of its row, to run in that transaction after the send's own INSERT (whose created_at it copies); in
    embedded mode no row — the send is dispatched in-process once the transaction commits (a rolled-back one
    dispatches nothing). Nothing for a send stored without sending."""
    if send.status != SendStatus.QUEUED:
        return []
    if handoff_in_process():
        dispatch_enqueue(send_id=send.id)
        return []
    if vendor() != "postgresql":  # e.g. SQLite with a broker: the field converts the UUID
        return [insert_statement(DispatchHandoff(send_id=send.id, created_at=send.created_at))]
    return [(_INSERT_SQL, [send.id, send.created_at])]


def handoff_drain(*, limit: int | None = None) -> int:
    """Publish the dispatch task of up to `limit` waiting hand-offs, oldest first, and delete them, in one
    transaction (see the module's docstring for what each failure leaves behind). Returns how many."""
    from sendora_sms.fast_publish import publish_many
    from sms.tasks import send_dispatch_task  # sms.tasks imports the services

    limit = limit or settings.SMS_DISPATCH_HANDOFF_BATCH
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute(_TAKE_SQL, [limit])
            rows = cursor.fetchall()
        if rows:
            rows.sort()  # RETURNING follows no order: publish oldest first
            publish_many(send_dispatch_task, [(str(send_id),) for _id, send_id in rows])
    return len(rows)


def handoff_backlog() -> tuple[int, float | None]:
    """How many hand-offs wait, and the age in seconds of the oldest (None when none does)."""
    from django.db.models import Count, Min
    from django.utils import timezone

    found = DispatchHandoff.objects.aggregate(waiting=Count("id"), oldest=Min("created_at"))
    oldest = found["oldest"]
    return found["waiting"], (timezone.now() - oldest).total_seconds() if oldest else None


def handoff_run(stop: threading.Event, *, poll: float | None = None, batch: int | None = None,
                dispatch: bool = True, events: bool = True) -> None:
    """The dispatcher's loop, until `stop` is set: drain the dispatch hand-offs (`dispatch`), kick the events drain
    when events wait to be published (`events`: sms/services/events.py `events_kick`, the same outbox hand-off for
    events), then wait one poll interval unless the batch was full. An error (the database or the broker away) is
    logged and retried after a second; the rows stay."""
    from sms.services.events import events_kick

    poll = settings.SMS_DISPATCH_HANDOFF_POLL_SECONDS if poll is None else poll
    batch = batch or settings.SMS_DISPATCH_HANDOFF_BATCH
    failing = False
    try:
        while not stop.is_set():
            try:
                taken = handoff_drain(limit=batch) if dispatch else 0
                if events:
                    events_kick()
            except Exception:  # noqa: BLE001 — keep the dispatcher alive; the rows wait for the next try
                if not failing:
                    logger.exception("dispatch hand-off: drain failed; retrying every second")
                failing = True
                connection.close()  # a fresh connection for the next try
                stop.wait(1.0)
                continue
            if failing:
                logger.info("dispatch hand-off: draining again")
                failing = False
            if taken < batch:
                stop.wait(poll)
    finally:
        connection.close()
