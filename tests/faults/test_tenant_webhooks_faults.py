"""Issue #15: a burst of 1,000 events is delivered to a tenant endpoint at least once each — none lost — through
a worker `kill -9` and a broker (Redis) outage. The outbox and the sweepers carry it: events whose publish task
never ran are fanned out by `events_publish_pending`, messages whose delivery task was lost are re-enqueued by
`webhooks_sweep`. The receiver verifies every delivery with the standardwebhooks library."""
import time
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from sms.models import Event, EventType
from sms.tenant_webhooks import services
from sms.tenant_webhooks.models import WebhookMessage
from tests.factories import SendFactory
from tests.faults.infra import wait_for
from tests.fakes.webhook_receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.integration]
EVENTS = 1000
WEBHOOK_ENV = {"WEBHOOKS_ALLOW_HTTP": "true", "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
               "WEBHOOKS_RETRY_SCHEDULE": "0,0.5,0.5,0.5,0.5,0.5,1,1,1,1,1,1,1,1,1,1,1,1,1,1"}


def _burst(org, n: int) -> list[str]:
    """n outbox events, already old enough for the sweeper (their after-commit publish never ran)."""
    sends = [SendFactory(org=org, mode="prod", provider="twilio") for _ in range(n)]
    created = timezone.now() - timedelta(minutes=5)
    Event.objects.bulk_create([
        Event(id=uuid.uuid4(), org=org, type=EventType.DELIVERED, send=send, created_at=created,
              data={"id": str(send.id), "mode": "prod"}) for send in sends])
    Event.objects.filter(org=org).update(created_at=created)
    return [str(e) for e in Event.objects.filter(org=org).values_list("id", flat=True)]


def test_a_burst_survives_a_worker_kill_and_a_broker_outage(stack, make_tenant, settings):
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    receiver = Receiver().start()
    try:
        tenant = make_tenant()
        with transaction.atomic():
            created = services.webhook_endpoint_create(org=tenant.org, mode="prod", url=receiver.base_url + "/in")
        receiver.secrets["/in"] = [created.secret]
        event_ids = set(_burst(tenant.org, EVENTS))

        supervisor = stack.supervise(stack.start_worker(concurrency=4, **WEBHOOK_ENV), **WEBHOOK_ENV)
        stack.start_beat(**WEBHOOK_ENV)

        def delivered_ids() -> set[str]:
            return {d.payload["id"] for d in receiver.deliveries if d.verified and d.payload}

        # Once deliveries are flowing, kill -9 the worker's whole process group (the supervisor restarts it) …
        wait_for(lambda: len(delivered_ids()) >= 150, timeout=120, message="deliveries to start")
        supervisor.worker.kill9()
        killed_at = len(delivered_ids())
        # … then take the broker away for 3 s while the backlog is still being worked.
        wait_for(lambda: len(delivered_ids()) >= min(killed_at + 150, EVENTS - 100), timeout=120,
                 message="deliveries after the restart")
        stack.redis.down()
        time.sleep(3)
        stack.redis.start()

        wait_for(lambda: delivered_ids() >= event_ids, timeout=240, interval=0.5,
                 message="every event delivered at least once")
        assert all(d.verified for d in receiver.deliveries)
        per_message = {}
        for d in receiver.deliveries:
            per_message.setdefault(d.headers["webhook-id"], set()).add(d.payload["id"])
        assert all(len(ids) == 1 for ids in per_message.values())  # a webhook-id always carries the same event
        assert WebhookMessage.objects.filter(endpoint=created.endpoint).count() == EVENTS
        print(f"\n[webhooks under faults] events={EVENTS} deliveries={len(receiver.deliveries)} "
              f"duplicates={len(receiver.deliveries) - EVENTS} worker_restarts={len(supervisor.deaths)}")
    finally:
        receiver.stop()
