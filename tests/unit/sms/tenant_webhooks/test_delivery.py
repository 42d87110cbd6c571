"""Issue #15: fan-out, signing (verified by the standardwebhooks library in the receiver), retries with a stable
webhook-id, 410, secret rotation, disabling after days of failures, resend, test event, sweep and pruning.
The service is driven directly (one call = one attempt); tests/integration runs the same through a worker."""
from datetime import timedelta

import pytest
from django.utils import timezone

from sms.models import Event, EventType
from sms.services.events import event_record
from sms.tenant_webhooks import services
from sms.tenant_webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from tests.factories import SendFactory
from tests.fakes.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def _local_delivery(settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOKS_RETRY_SCHEDULE = [0, 0, 0, 0, 0, 0, 0, 0]
    monkeypatch.setattr(services, "enqueue_delivery", lambda **kw: None)  # the test drives each attempt itself


def _endpoint(org, receiver, path, *, events=None, mode="prod"):
    created = services.webhook_endpoint_create(org=org, mode=mode, url=receiver.base_url + path, events=events)
    receiver.secrets[path] = [created.secret]
    return created


def _event(org, type=EventType.DELIVERED, mode="prod"):
    send = SendFactory(org=org, mode=mode)
    return event_record(org_id=org.pk, type=type, send=send, data={"id": str(send.id), "mode": mode})


def _deliver_all():
    outcomes = []
    for message in WebhookMessage.objects.filter(status="pending"):
        outcomes.append(services.webhook_deliver(message_id=message.pk)[0])
    return outcomes


def test_an_event_reaches_subscribed_endpoints_signed_once_each(org, receiver):
    _endpoint(org, receiver, "/all")
    _endpoint(org, receiver, "/delivered", events=["sms.delivered"])
    _endpoint(org, receiver, "/failed", events=["sms.failed"])
    _endpoint(org, receiver, "/test-mode", mode="test")
    event = _event(org)
    services.webhook_messages_fanout(event=event)
    services.webhook_messages_fanout(event=event)  # a re-run adds nothing
    assert _deliver_all() == ["delivered", "delivered"]
    assert len(receiver.at("/all")) == 1 and len(receiver.at("/delivered")) == 1
    assert receiver.at("/failed") == [] and receiver.at("/test-mode") == []
    for delivery in receiver.deliveries:
        assert delivery.verified
        assert delivery.payload["id"] == str(event.id) and delivery.payload["type"] == "sms.delivered"
        assert set(delivery.payload) == {"id", "type", "org_id", "created_at", "data"}
    ids = {d.headers["webhook-id"] for d in receiver.deliveries}
    assert len(ids) == 2  # per (event, endpoint)


def test_test_events_go_to_test_endpoints_only(org, receiver):
    _endpoint(org, receiver, "/live")
    _endpoint(org, receiver, "/test", mode="test")
    services.webhook_messages_fanout(event=_event(org, mode="test"))
    _deliver_all()
    assert receiver.at("/live") == [] and len(receiver.at("/test")) == 1


def test_retries_keep_the_webhook_id_until_success(org, receiver):
    _endpoint(org, receiver, "/flaky")
    receiver.script["/flaky"] = [500, 503, 502]
    services.webhook_messages_fanout(event=_event(org))
    message = WebhookMessage.objects.get()
    outcomes = [services.webhook_deliver(message_id=message.pk)[0] for _ in range(4)]
    assert outcomes == ["retry", "retry", "retry", "delivered"]
    deliveries = receiver.at("/flaky")
    assert len(deliveries) == 4 and all(d.verified for d in deliveries)
    assert {d.headers["webhook-id"] for d in deliveries} == {message.webhook_id}
    assert [a.status_code for a in WebhookAttempt.objects.order_by("attempt")] == [500, 503, 502, 200]
    assert services.webhook_deliver(message_id=message.pk)[0] == "skipped"  # delivered: never again


def test_the_schedule_spaces_retries(org, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    _endpoint(org, receiver, "/down")
    receiver.script["/down"] = [500]
    services.webhook_messages_fanout(event=_event(org))
    message = WebhookMessage.objects.get()
    outcome, delay = services.webhook_deliver(message_id=message.pk)
    assert outcome == "retry" and 4.5 <= delay <= 5.5
    assert services.webhook_deliver(message_id=message.pk)[0] == "skipped"  # not due yet


def test_410_disables_the_endpoint(org, receiver):
    created = _endpoint(org, receiver, "/gone")
    receiver.script["/gone"] = [410]
    services.webhook_messages_fanout(event=_event(org))
    assert _deliver_all() == ["failed"]
    endpoint = WebhookEndpoint.objects.get(pk=created.endpoint.pk)
    assert endpoint.enabled is False and "410" in endpoint.disabled_reason
    services.webhook_messages_fanout(event=_event(org))
    assert WebhookMessage.objects.count() == 1  # a disabled endpoint gets nothing new


def test_failing_for_days_disables_with_the_reason(org, receiver):
    created = _endpoint(org, receiver, "/broken")
    WebhookEndpoint.objects.filter(pk=created.endpoint.pk).update(failing_since=timezone.now() - timedelta(days=5))
    receiver.script["/broken"] = [500]
    services.webhook_messages_fanout(event=_event(org))
    _deliver_all()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.enabled is False and "5 days" in endpoint.disabled_reason


def test_a_success_clears_the_failure_clock(org, receiver):
    _endpoint(org, receiver, "/ok")
    WebhookEndpoint.objects.update(failing_since=timezone.now() - timedelta(days=1))
    services.webhook_messages_fanout(event=_event(org))
    _deliver_all()
    assert WebhookEndpoint.objects.get().failing_since is None


def test_rotation_signs_with_both_secrets_during_the_overlap(org, receiver):
    created = _endpoint(org, receiver, "/rot")
    new_secret = services.webhook_endpoint_rotate_secret(endpoint=created.endpoint)
    services.webhook_messages_fanout(event=_event(org, EventType.SENT))
    _deliver_all()
    delivery = receiver.at("/rot")[-1]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    from standardwebhooks.webhooks import Webhook

    for secret in (created.secret, new_secret):
        Webhook(secret).verify(delivery.body, delivery.headers)  # raises if not signed with it
    # After the overlap only the new secret signs.
    WebhookEndpoint.objects.update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    services.webhook_messages_fanout(event=_event(org, EventType.FAILED))
    _deliver_all()
    delivery = receiver.at("/rot")[-1]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(delivery.body, delivery.headers)
    with pytest.raises(Exception):
        Webhook(created.secret).verify(delivery.body, delivery.headers)


def test_test_event_and_resend(org, receiver):
    created = _endpoint(org, receiver, "/t", events=["sms.failed"])
    message = services.webhook_test_send(endpoint=created.endpoint)
    _deliver_all()
    first = receiver.at("/t")[0]
    assert first.verified and first.payload["type"] == "webhook.test"
    assert not Event.objects.exists()  # a test event is not in GET /events
    attempt = WebhookAttempt.objects.get()
    services.webhook_message_resend(endpoint=created.endpoint, attempt_id=attempt.pk)
    _deliver_all()
    assert [d.headers["webhook-id"] for d in receiver.at("/t")] == [message.webhook_id] * 2


def test_the_response_body_is_kept_to_1kb_and_timeouts_are_attempts(org, receiver, settings):
    _endpoint(org, receiver, "/slow")
    receiver.delay = 0.5
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.1
    services.webhook_messages_fanout(event=_event(org))
    assert _deliver_all() == ["retry"]
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "Timeout" in attempt.error


def test_delivery_time_ssrf_check(org, receiver, settings):
    _endpoint(org, receiver, "/x")
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False  # e.g. DNS now points the name at a private address
    services.webhook_messages_fanout(event=_event(org))
    assert _deliver_all() == ["retry"]
    assert receiver.deliveries == []
    assert "non-public" in WebhookAttempt.objects.get().error


def test_sweep_requeues_lost_messages_and_prunes_old_ones(org, receiver, monkeypatch):
    queued = []
    monkeypatch.setattr(services, "_publish_delivery", lambda message_id, countdown=0: queued.append(message_id))
    _endpoint(org, receiver, "/s")
    services.webhook_messages_fanout(event=_event(org))
    queued.clear()
    message = WebhookMessage.objects.get()
    WebhookMessage.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    old = WebhookMessage.objects.create(endpoint=message.endpoint, event=None, event_id_public=message.event_id_public,
                                        event_type="webhook.test", payload={}, status="delivered")
    WebhookMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    result = services.webhooks_sweep()
    assert queued == [str(message.pk)] and result["pruned"] >= 1
    assert not WebhookMessage.objects.filter(pk=old.pk).exists()


def test_an_endpoint_at_its_concurrency_limit_makes_the_next_delivery_wait(org, receiver, settings):
    """The per-endpoint slot (one Redis script): at the limit a delivery is BUSY and posts nothing, the refused
    try leaves the counter where it was, and a released slot lets the message through."""
    settings.WEBHOOKS_ENDPOINT_CONCURRENCY = 1
    endpoint = _endpoint(org, receiver, "/all").endpoint
    services.webhook_messages_fanout(event=_event(org))
    message = WebhookMessage.objects.get(endpoint=endpoint)
    assert services._acquire_slot(endpoint.pk) is True  # another worker is posting to this endpoint
    assert services.webhook_deliver(message_id=message.pk) == (services.DeliveryOutcome.BUSY, 1.0)
    assert receiver.deliveries == [] and WebhookMessage.objects.get(pk=message.pk).locked_until is None
    assert services._acquire_slot(endpoint.pk) is False  # still one in flight: the refused try gave its unit back
    services._release_slot(endpoint.pk)
    assert services.webhook_deliver(message_id=message.pk)[0] == services.DeliveryOutcome.DELIVERED
    assert len(receiver.deliveries) == 1
    assert services._acquire_slot(endpoint.pk) is True  # the delivery released its slot too


def test_a_message_claimed_by_another_worker_is_skipped_and_not_posted(org, receiver):
    endpoint = _endpoint(org, receiver, "/all").endpoint
    services.webhook_messages_fanout(event=_event(org))
    message = WebhookMessage.objects.get(endpoint=endpoint)
    WebhookMessage.objects.filter(pk=message.pk).update(locked_until=timezone.now() + timedelta(seconds=30))
    assert services.webhook_deliver(message_id=message.pk) == (services.DeliveryOutcome.SKIPPED, None)
    assert receiver.deliveries == [] and WebhookAttempt.objects.count() == 0


def _stranded(org, receiver, n):
    _endpoint(org, receiver, "/s")
    for _ in range(n):
        services.webhook_messages_fanout(event=_event(org))
    WebhookMessage.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    return sorted(str(pk) for pk in WebhookMessage.objects.values_list("pk", flat=True))


def test_the_sweep_backs_off_a_message_it_has_requeued(org, receiver, monkeypatch):
    """A message whose task waits behind a backlog is not re-enqueued on every sweep (that grows the backlog it
    waits in): again only after it has waited as long again as when it was last re-enqueued; a retry restarts it."""
    queued = []
    monkeypatch.setattr(services, "_publish_delivery", lambda message_id, countdown=0: queued.append(message_id))
    [pk] = _stranded(org, receiver, 1)
    assert services.webhooks_sweep()["requeued"] == 1 and queued == [pk]
    assert services.webhooks_sweep()["requeued"] == 0  # its task may still be queued: not yet
    now = timezone.now()
    # Due 5 min ago, last re-enqueued 1 min ago (after waiting 4 min): not before it has waited 4 min more.
    WebhookMessage.objects.filter(pk=pk).update(requeued_at=now - timedelta(minutes=1))
    assert services.webhooks_sweep()["requeued"] == 0
    # Re-enqueued 3 min ago after waiting 2: it has waited as long again, so once more.
    WebhookMessage.objects.filter(pk=pk).update(requeued_at=now - timedelta(minutes=3))
    assert services.webhooks_sweep()["requeued"] == 1 and queued == [pk, pk]
    # A retry scheduled since (next_attempt_at after requeued_at) is stranded after the grace alone.
    WebhookMessage.objects.filter(pk=pk).update(requeued_at=now - timedelta(minutes=10),
                                                next_attempt_at=now - timedelta(seconds=31))
    assert services.webhooks_sweep()["requeued"] == 1 and queued == [pk, pk, pk]


def test_a_sweep_the_broker_refuses_leaves_the_rest_for_the_next_sweep(org, receiver, monkeypatch):
    queued = []

    def publish(message_id, countdown=0):
        if len(queued) == 1:
            raise ConnectionError("broker down")
        queued.append(message_id)

    monkeypatch.setattr(services, "_publish_delivery", publish)
    pks = _stranded(org, receiver, 3)
    assert services.webhooks_sweep()["requeued"] == 1
    assert WebhookMessage.objects.filter(requeued_at__isnull=False).count() == 1  # the refused two keep no mark
    monkeypatch.setattr(services, "_publish_delivery", lambda message_id, countdown=0: queued.append(message_id))
    assert services.webhooks_sweep()["requeued"] == 2  # at once, not after a backoff
    assert sorted(queued) == pks
