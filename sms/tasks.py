"""Celery tasks — thin: take an id, call one service, apply the retry policy.

Retry policy for dispatch: the service decides *whether* a transient provider error is retried
(it counts attempts on the send itself, so a task re-enqueued by the sweeper does not get a fresh
budget); the task decides *when*: exponential backoff with full jitter, never sooner than the
provider's Retry-After, capped at SMS_DISPATCH_RETRY_MAX_SECONDS.
"""
import logging
import random

from celery import shared_task
from django.conf import settings

from sendora_sms.fast_publish import FastPublishTask

logger = logging.getLogger("sms.tasks")


def retry_countdown(*, attempt: int, retry_after: float | None = None) -> float:
    """Full-jitter exponential backoff for `attempt` (1-based), at least `retry_after`, at most the cap."""
    cap = settings.SMS_DISPATCH_RETRY_MAX_SECONDS
    ceiling = min(cap, settings.SMS_DISPATCH_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0)))
    countdown = random.uniform(0, ceiling)
    if retry_after:
        countdown = max(countdown, float(retry_after))
    return min(countdown, cap)


@shared_task(bind=True, name="sms.tasks.send_dispatch_task", acks_late=True, max_retries=None,
             base=FastPublishTask)  # .delay(send_id) is one LPUSH (sendora_sms/fast_publish.py)
def send_dispatch_task(self, send_id: str, attempt: int | None = None) -> str:
    """Claim and send one send. `send_id` alone (the API's hand-off, the sweeper's stranded queued
    sends) claims a queued send; `attempt` N claims the retry of attempt N of a send kept `sending`
    and marked retrying. A redelivered or duplicate task finds nothing to claim."""
    from sms.services.dispatch import DispatchOutcome, send_dispatch

    result = send_dispatch(send_id=send_id, attempt=attempt)
    if result.outcome == DispatchOutcome.RETRY:
        countdown = retry_countdown(attempt=result.attempt, retry_after=result.retry_after)
        logger.info("send=%s transient provider error, retry %s in %.1fs", send_id, result.attempt, countdown)
        raise self.retry(args=[send_id, result.attempt], kwargs={}, countdown=countdown, max_retries=None)
    return result.outcome


@shared_task(name="sms.tasks.events_publish_task", acks_late=True, ignore_result=True,
             base=FastPublishTask)  # .delay(event_id) is one LPUSH (sendora_sms/fast_publish.py)
def events_publish_task(event_id: str) -> bool:
    """Publish one outbox event to the bus (the sweeper catches any this task misses)."""
    from sms.services.events import events_publish

    return events_publish(event_id=event_id)


@shared_task(name="sms.tasks.events_drain_task", acks_late=True, ignore_result=True,
             base=FastPublishTask)  # .delay() is one LPUSH
def events_drain_task() -> int:
    """Publish the unpublished events in batches until none is left (kicked by a worker's dispatcher: events_kick)."""
    from sms.services.events import events_publish_drain

    return events_publish_drain()


@shared_task(name="sms.tasks.sends_sweep_task", ignore_result=True)
def sends_sweep_task() -> dict:
    """Periodic: re-enqueue stranded queued sends, reconcile stuck sending ones, publish missed events."""
    from sms.services.sweeper import sends_sweep

    return sends_sweep()


@shared_task(bind=True, name="sms.tasks.webhook_deliver_task", acks_late=True, ignore_result=True, max_retries=None)
def webhook_deliver_task(self, message_id: str) -> str:
    """Deliver one tenant webhook message; schedule its next try (the service keeps the schedule)."""
    from sms.tenant_webhooks.services import DeliveryOutcome, webhook_deliver

    outcome, delay = webhook_deliver(message_id=message_id)
    if outcome in (DeliveryOutcome.RETRY, DeliveryOutcome.BUSY) and delay is not None:
        raise self.retry(args=[message_id], countdown=delay, max_retries=None)
    return outcome


@shared_task(name="sms.tasks.webhooks_sweep_task", ignore_result=True)
def webhooks_sweep_task() -> dict:
    """Periodic: re-enqueue tenant webhook messages whose task was lost; prune old ones."""
    from sms.tenant_webhooks.services import webhooks_sweep

    return webhooks_sweep()


@shared_task(bind=True, name="sms.tasks.inbound_reply_task", acks_late=True, ignore_result=True, max_retries=None)
def inbound_reply_task(self, inbound_id: str) -> str:
    """Send one keyword reply (MessageBird, Sinch) as a system message, once (sms/services/replies.py)."""
    from sms.services.replies import MAX_REPLY_ATTEMPTS, PENDING, inbound_reply_send

    state = inbound_reply_send(inbound_id=inbound_id)
    if state == PENDING and self.request.retries < MAX_REPLY_ATTEMPTS:
        raise self.retry(countdown=retry_countdown(attempt=self.request.retries + 1), max_retries=None)
    return state


from sms.links.tasks import link_clicks_drain_task  # noqa: E402,F401  (registered with the sms app's tasks)
