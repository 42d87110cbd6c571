"""Direct hand-offs to the dispatch worker: the retry of attempt N, an operator's resend, the sweeper's re-enqueue,
and an accepted send in embedded mode. (An accepted send with a broker is handed off as a row written with it, which a
worker's dispatcher publishes: sms/services/handoff.py.)

- `dispatch_enqueue`: after the caller's transaction commits (a rolled-back change enqueues nothing). If the
  broker is down the hand-off is logged and dropped: the sweeper re-enqueues sends whose task never ran.
- `dispatch_publish`: now (the sweeper, outside any transaction); raises when the broker is down.
"""
from __future__ import annotations

from django.db import transaction


def dispatch_publish(*, send_id, attempt: int | None = None) -> None:
    from sms.tasks import send_dispatch_task  # sms.tasks imports the services

    args = (str(send_id),) if attempt is None else (str(send_id), attempt)
    send_dispatch_task.delay(*args)


def dispatch_enqueue(*, send_id, attempt: int | None = None) -> None:
    send_id = str(send_id)
    transaction.on_commit(lambda: dispatch_publish(send_id=send_id, attempt=attempt), robust=True)
