"""Tenant webhooks: the rules (the API contract (README.md, /api/schema) "Webhooks (to tenants)", Standard Webhooks).

- Endpoints: at most WEBHOOKS_MAX_ENDPOINTS per org; URL checked by addresses.url_check; the secret
  (`whsec_` + base64 of 32 random bytes) is returned once and stored encrypted; rotation keeps the old secret
  signing beside the new one for 24 h (two signatures in `webhook-signature`).
- Fan-out: every outbox event becomes one WebhookMessage per enabled endpoint of the org and mode whose `events`
  match (`INSERT … ON CONFLICT DO NOTHING` on (endpoint, event): a re-run of the fan-out adds nothing).
- Delivery (`webhook_deliver`): claim the message (a conditional UPDATE; two workers never post it at once),
  re-check the URL, sign with the standardwebhooks library, POST with a 15 s timeout and no redirects, log the
  attempt. 2xx → delivered; 410 → the endpoint is disabled; anything else → next try on WEBHOOKS_RETRY_SCHEDULE
  (±10 % jitter) until the schedule runs out; an endpoint failing for WEBHOOKS_DISABLE_AFTER_DAYS is disabled.
  At least once: a crash after the POST and before the log re-delivers with the same webhook-id.
- Sweep (`webhooks_sweep`): re-enqueue due messages whose task was lost (broker outage, worker kill -9), with a
  doubling backoff per message; prune messages older than WEBHOOKS_RETENTION_DAYS. (Events whose fan-out never
  ran are published by the sends sweeper's `events_publish_pending`.)
"""
from __future__ import annotations

import base64
from http.cookiejar import DefaultCookiePolicy
import json
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q, Value
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from sendora_sms.errors import Conflict, NotFound, ValidationFailed
from sendora_sms.db import StatementBatch, insert_statement, lease
from sms import crypto
from sms.models import Event, EventType
from sms.tenant_webhooks.addresses import UrlNotAllowed, url_check
from sms.tenant_webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage, WebhookMessageStatus

logger = logging.getLogger("sms.tenant_webhooks")

TEST_EVENT_TYPE = "webhook.test"
ALL_EVENTS = "*"
ROTATION_OVERLAP = timedelta(hours=24)
RESPONSE_BODY_MAX = 1024
SECRET_BYTES = 32


class TooManyEndpoints(Conflict):
    code = "too_many_endpoints"
    message = "An org may have at most 10 webhook endpoints."


def event_types() -> list[str]:
    return [t for t, _ in EventType.CHOICES]


# --- endpoints ----------------------------------------------------------------------------------


def _url_validate(url) -> str:
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise ValidationFailed("`url` must be an https URL of at most 2048 characters.", code="invalid_url",
                               details={"field": "url"})
    try:
        url_check(url)
    except UrlNotAllowed as exc:
        raise ValidationFailed(str(exc), code="invalid_url", details={"field": "url"}) from None
    return url


def _events_validate(events) -> list[str]:
    allowed = event_types()
    if events is None:
        return [ALL_EVENTS]
    if (not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events)
            or not (events == [ALL_EVENTS] or all(e in allowed for e in events))):
        raise ValidationFailed(f'`events` must be ["*"] or a non-empty list of: {", ".join(allowed)}.',
                               code="invalid_events", details={"field": "events", "allowed": [ALL_EVENTS, *allowed]})
    return sorted(set(events))


def _description_validate(description) -> str:
    if not isinstance(description, str) or len(description) > 500:
        raise ValidationFailed("`description` must be a string of at most 500 characters.",
                               details={"field": "description"})
    return description


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def _encrypt(secret: str, endpoint_org_id) -> str:
    return crypto.encrypt(secret, org_id=endpoint_org_id)


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


def webhook_endpoint_create(*, org, mode: str, url, events=None, description="") -> EndpointWithSecret:
    url = _url_validate(url)
    events = _events_validate(events)
    description = _description_validate(description)
    secret = _new_secret()
    with transaction.atomic():
        # Lock the org row: two concurrent creates cannot both pass the count.
        type(org).objects.select_for_update().filter(pk=org.pk).first()
        if WebhookEndpoint.objects.filter(org=org).count() >= settings.WEBHOOKS_MAX_ENDPOINTS:
            raise TooManyEndpoints(details={"max": settings.WEBHOOKS_MAX_ENDPOINTS})
        endpoint = WebhookEndpoint.objects.create(org=org, mode=mode, url=url, events=events,
                                                  description=description,
                                                  secret_ciphertext=_encrypt(secret, org.pk))
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    fields = []
    if "url" in changes:
        endpoint.url = _url_validate(changes["url"])
        fields.append("url")
    if "events" in changes:
        endpoint.events = _events_validate(changes["events"])
        fields.append("events")
    if "description" in changes:
        endpoint.description = _description_validate(changes["description"])
        fields.append("description")
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise ValidationFailed("`enabled` must be a boolean.", details={"field": "enabled"})
        endpoint.enabled = changes["enabled"]
        if endpoint.enabled:
            endpoint.disabled_reason, endpoint.failing_since = "", None
        else:
            endpoint.disabled_reason = endpoint.disabled_reason or "Disabled through the API."
        fields += ["enabled", "disabled_reason", "failing_since"]
    if fields:
        endpoint.save(update_fields=[*fields, "updated_at"])
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the current one keeps signing beside it for 24 h."""
    secret = _new_secret()
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
    endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    endpoint.secret_ciphertext = _encrypt(secret, endpoint.org_id)
    endpoint.save(update_fields=["secret_ciphertext", "previous_secret_ciphertext", "previous_secret_expires_at",
                                 "updated_at"])
    return secret


def _secrets(endpoint: WebhookEndpoint) -> list[str]:
    secrets = [crypto.decrypt(endpoint.secret_ciphertext, org_id=endpoint.org_id)]
    if (endpoint.previous_secret_ciphertext and endpoint.previous_secret_expires_at
            and endpoint.previous_secret_expires_at > timezone.now()):
        secrets.append(crypto.decrypt(endpoint.previous_secret_ciphertext, org_id=endpoint.org_id))
    return secrets


# --- fan-out ------------------------------------------------------------------------------------


def event_mode(event: Event) -> str:
    """Live or test: the event's own mode where it has one, else its send's; inbound events are live."""
    mode = getattr(event, "mode", None) or (event.data or {}).get("mode")
    return "test" if mode == "test" else "prod"


def _event_object(event: Event) -> dict:
    from sms.services.events import event_message

    return event_message(event)


def webhook_endpoints_for_events(events) -> dict[tuple, list[WebhookEndpoint]]:
    """The enabled endpoints of every (org, mode) among `events`, in one query: {(org_id, mode): [endpoint…]}."""
    found: dict[tuple, list[WebhookEndpoint]] = {}
    org_ids = {event.org_id for event in events}
    for endpoint in WebhookEndpoint.objects.filter(org_id__in=org_ids, enabled=True):
        found.setdefault((endpoint.org_id, endpoint.mode), []).append(endpoint)
    return found


def webhook_messages_fanout(*, event: Event, endpoints: list[WebhookEndpoint] | None = None) -> list[str]:
    """One message per matching endpoint; returns the ids of the messages this call created. `endpoints`: the
    org's enabled endpoints of the event's mode, when the caller already has them (a batch)."""
    if endpoints is None:
        endpoints = WebhookEndpoint.objects.filter(org_id=event.org_id, mode=event_mode(event), enabled=True)
    endpoints = [e for e in endpoints if e.events == [ALL_EVENTS] or event.type in e.events]
    if not endpoints:
        return []
    payload = json.loads(json.dumps(_event_object(event), cls=DjangoJSONEncoder))
    now = timezone.now()
    created: list[str] = []
    fields = {f.attname: f for f in WebhookMessage._meta.concrete_fields}
    columns = ["id", "endpoint_id", "event_id", "event_id_public", "event_type", "payload", "status", "attempts",
               "next_attempt_at", "created_at"]
    sql = (f"INSERT INTO {WebhookMessage._meta.db_table} ({', '.join(columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING RETURNING id")
    with connection.cursor() as cursor:
        for endpoint in endpoints:
            message_id = uuid.uuid4()
            values = [message_id, endpoint.pk, event.pk, event.pk, event.type, payload, WebhookMessageStatus.PENDING, 0,
                      now, now]
            cursor.execute(sql, [fields[c].get_db_prep_value(v, connection, prepared=False)
                                 for c, v in zip(columns, values)])
            if cursor.fetchone() is not None:
                created.append(str(message_id))
    for message_id in created:
        enqueue_delivery(message_id=message_id)
    return created


def webhook_test_send(*, endpoint: WebhookEndpoint) -> WebhookMessage:
    """A `webhook.test` event for this endpoint alone, whatever its events filter (not listed in GET /events)."""
    event_id = uuid.uuid4()
    now = timezone.now()
    payload = {"id": str(event_id), "type": TEST_EVENT_TYPE, "org_id": str(endpoint.org_id),
               "created_at": now.isoformat().replace("+00:00", "Z"),
               "data": {"endpoint_id": str(endpoint.id), "message": "A test event from Sendora SMS."}}
    message = WebhookMessage.objects.create(endpoint=endpoint, event=None, event_id_public=event_id,
                                            event_type=TEST_EVENT_TYPE, payload=payload, next_attempt_at=now)
    enqueue_delivery(message_id=str(message.id))
    return message


def webhook_message_resend(*, endpoint: WebhookEndpoint, attempt_id) -> WebhookMessage:
    attempt = (WebhookAttempt.objects.select_related("message").filter(pk=attempt_id, endpoint=endpoint).first()
               if attempt_id is not None else None)  # the API passes a parsed (canonical) UUID or None
    if attempt is None:
        raise NotFound("No such delivery.")
    message = attempt.message
    WebhookMessage.objects.filter(pk=message.pk).update(status=WebhookMessageStatus.PENDING,
                                                        next_attempt_at=timezone.now(), locked_until=None)
    enqueue_delivery(message_id=str(message.pk))
    return message


def _publish_delivery(message_id: str, countdown: float = 0) -> None:
    """One delivery task, now; raises when the broker cannot take it."""
    from sms.tasks import webhook_deliver_task

    webhook_deliver_task.apply_async(args=[message_id], countdown=countdown)


def enqueue_delivery(*, message_id: str, countdown: float = 0) -> None:
    """After commit, one delivery task (the sweeper re-enqueues any the broker loses)."""
    def publish():
        try:
            _publish_delivery(message_id, countdown)
        except Exception:  # noqa: BLE001 — broker down: the sweeper picks the message up
            logger.warning("webhook message %s: could not enqueue; the sweeper will", message_id)

    transaction.on_commit(publish)


# --- delivery -----------------------------------------------------------------------------------


class DeliveryOutcome:
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    BUSY = "busy"


_M = WebhookMessage._meta.db_table
_E = WebhookEndpoint._meta.db_table
_ENDPOINT_COLUMNS = ["id", "org_id", "url", "enabled", "secret_ciphertext", "previous_secret_ciphertext",
                     "previous_secret_expires_at", "failing_since"]
# The claim and the load in ONE round trip (sendora_sms/db.py StatementBatch): the conditional UPDATE takes
# the lease (two workers never post one message at once), the SELECT reads the message and its endpoint back
# by that lease. PostgreSQL only (the driver returns uuid and timestamptz natively).
_CLAIM_SQL = (f"UPDATE {_M} SET locked_until = %s WHERE id = %s AND status = 'pending' "
              f"AND (locked_until IS NULL OR locked_until < %s) AND next_attempt_at <= %s")
_LOAD_SQL = (f"SELECT m.attempts, m.payload, {', '.join('e.' + c for c in _ENDPOINT_COLUMNS)} "
             f"FROM {_M} m JOIN {_E} e ON e.id = m.endpoint_id WHERE m.id = %s AND m.locked_until = %s")


def _claim(message_id) -> WebhookMessage | None:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS + 15)
    if connection.vendor != "postgresql":  # embedded mode (SQLite): the ORM, two statements
        claimed = WebhookMessage.objects.filter(
            Q(locked_until__isnull=True) | Q(locked_until__lt=now), pk=message_id,
            status=WebhookMessageStatus.PENDING, next_attempt_at__lte=now + timedelta(seconds=1),
        ).update(locked_until=lease)
        return WebhookMessage.objects.select_related("endpoint").filter(pk=message_id).first() if claimed else None
    message_uuid = uuid.UUID(str(message_id))
    batch = StatementBatch([(_CLAIM_SQL, [lease, message_uuid, now, now + timedelta(seconds=1)]),
                            (_LOAD_SQL, [message_uuid, lease])])
    claimed, _ = batch.run()
    if not claimed or not batch.results[1]:
        return None
    attempts, payload, *endpoint_values = batch.results[1][0]
    if isinstance(payload, str):  # Django's connection loads jsonb as text (its JSONField parses it itself)
        payload = json.loads(payload)
    endpoint = WebhookEndpoint(**dict(zip(_ENDPOINT_COLUMNS, endpoint_values, strict=True)))
    endpoint._state.adding = False
    message = WebhookMessage(id=message_uuid, endpoint=endpoint, attempts=attempts, payload=payload,
                             status=WebhookMessageStatus.PENDING, locked_until=lease)
    message._state.adding = False
    return message


# One round trip for the per-endpoint concurrency slot: INCR, set the TTL on a new key, give the slot back
# at once if the endpoint is full (the counter can never be left above the limit by a refused worker).
_ACQUIRE_SLOT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
return 1
"""
_slot_script = None


def _concurrency_key(endpoint_id) -> str:
    return f"sendora:webhooks:inflight:{endpoint_id}"


def _redis():
    """The Redis cache's own client (sendora_sms/cache.py keeps one per pool); None for another backend."""
    backend = getattr(cache, "_cache", None)
    return backend.get_client(write=True) if backend is not None and hasattr(backend, "get_client") else None


def _acquire_slot(endpoint_id) -> bool:
    global _slot_script
    key, ttl = _concurrency_key(endpoint_id), int(settings.WEBHOOKS_TIMEOUT_SECONDS) + 30
    limit = settings.WEBHOOKS_ENDPOINT_CONCURRENCY
    try:
        client = _redis()
        if client is None:  # the embedded default's in-process cache: its own add + incr
            cache.add(key, 0, timeout=ttl)
            if cache.incr(key) > limit:
                cache.decr(key)
                return False
            return True
        if _slot_script is None or _slot_script.registered_client is not client:
            _slot_script = client.register_script(_ACQUIRE_SLOT)
        return bool(_slot_script(keys=[cache.make_and_validate_key(key)], args=[limit, ttl]))
    except Exception:  # noqa: BLE001 — the cache is down: deliver rather than stall
        return True


def _release_slot(endpoint_id) -> None:
    try:
        cache.decr(_concurrency_key(endpoint_id))
    except Exception:  # noqa: BLE001
        pass


_session: requests.Session | None = None


def _http() -> requests.Session:
    """One pooled session per worker process: keep-alive connections to tenants' endpoints (a new TCP and TLS
    handshake per delivery was most of a delivery's cost). No cookies are kept between deliveries."""
    global _session
    if _session is None:
        _session = requests.Session()
        _session.cookies.set_policy(_NoCookies())
    return _session


class _NoCookies(DefaultCookiePolicy):
    def set_ok(self, cookie, request):
        return False


def _post(endpoint: WebhookEndpoint, message: WebhookMessage) -> tuple[int | None, str, str, int]:
    """(status_code | None, response body head, error, latency ms)."""
    body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    now = timezone.now()
    signatures = " ".join(Webhook(secret).sign(message.webhook_id, now, body) for secret in _secrets(endpoint))
    headers = {"content-type": "application/json", "user-agent": "Sendora-Webhooks/1",
               "webhook-id": message.webhook_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signatures}
    started = time.monotonic()
    try:
        url_check(endpoint.url)  # DNS may have changed since the endpoint was created
        response = _http().post(endpoint.url, data=body, headers=headers, timeout=settings.WEBHOOKS_TIMEOUT_SECONDS,
                                allow_redirects=False, stream=True)
        try:
            head = response.raw.read(RESPONSE_BODY_MAX, decode_content=True) or b""
        finally:
            response.close()
        latency = int((time.monotonic() - started) * 1000)
        return response.status_code, head.decode("utf-8", "replace").replace("\x00", "\ufffd"), "", latency
    except UrlNotAllowed as exc:
        return None, "", str(exc)[:300], 0
    except requests.RequestException as exc:
        latency = int((time.monotonic() - started) * 1000)
        return None, "", f"{exc.__class__.__name__}: {exc}"[:300], latency


def _next_delay(attempts: int) -> float | None:
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempts >= len(schedule):
        return None
    delay = schedule[attempts]
    return delay * random.uniform(0.9, 1.1)


def webhook_deliver(*, message_id) -> tuple[str, float | None]:
    """Try one delivery of one message; returns (outcome, seconds until the next try or None)."""
    message = _claim(message_id)
    if message is None:
        return DeliveryOutcome.SKIPPED, None
    endpoint = message.endpoint
    if not endpoint.enabled:
        WebhookMessage.objects.filter(pk=message.pk).update(status=WebhookMessageStatus.FAILED, locked_until=None)
        return DeliveryOutcome.SKIPPED, None
    if not _acquire_slot(endpoint.pk):
        WebhookMessage.objects.filter(pk=message.pk).update(locked_until=None)
        return DeliveryOutcome.BUSY, 1.0
    try:
        status_code, head, error, latency = _post(endpoint, message)
    finally:
        _release_slot(endpoint.pk)
    attempt_no = message.attempts + 1
    now = timezone.now()
    attempt = WebhookAttempt(message=message, endpoint=endpoint, attempt=attempt_no, status_code=status_code,
                             latency_ms=latency, response_body=head, error=error)
    if status_code is not None and 200 <= status_code < 300:
        _delivered(message, attempt, now)
        return DeliveryOutcome.DELIVERED, None
    with transaction.atomic():
        attempt.save(force_insert=True)
        if status_code == 410:
            _disable(endpoint, "The endpoint answered 410 Gone.")
            WebhookMessage.objects.filter(pk=message.pk).update(status=WebhookMessageStatus.FAILED,
                                                                attempts=attempt_no, locked_until=None)
            return DeliveryOutcome.FAILED, None
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        failing_since = WebhookEndpoint.objects.values_list("failing_since", flat=True).get(pk=endpoint.pk)
        if failing_since and now - failing_since >= timedelta(days=settings.WEBHOOKS_DISABLE_AFTER_DAYS):
            _disable(endpoint, f"Every delivery failed for {settings.WEBHOOKS_DISABLE_AFTER_DAYS:g} days "
                               f"(last: {status_code or error})."[:300])
        delay = _next_delay(attempt_no)
        if delay is None:
            WebhookMessage.objects.filter(pk=message.pk).update(status=WebhookMessageStatus.FAILED,
                                                                attempts=attempt_no, locked_until=None)
            return DeliveryOutcome.FAILED, None
        WebhookMessage.objects.filter(pk=message.pk).update(attempts=attempt_no, locked_until=None,
                                                            next_attempt_at=now + timedelta(seconds=delay))
    return DeliveryOutcome.RETRY, delay


_DELIVERED_SQL = (f"UPDATE {_M} SET status = 'delivered', attempts = %s, delivered_at = %s, locked_until = NULL, "
                  f"next_attempt_at = NULL WHERE id = %s")
_RECOVERED_SQL = f"UPDATE {_E} SET failing_since = NULL WHERE id = %s AND failing_since IS NOT NULL"


def _delivered(message: WebhookMessage, attempt: WebhookAttempt, now) -> None:
    """The attempt log and the outcome in one round trip; on PostgreSQL the statements of one pipeline
    without a Sync between them are one implicit transaction: both are written or neither."""
    batch = StatementBatch([insert_statement(attempt)])
    batch.add(_DELIVERED_SQL, [attempt.attempt, connection.ops.adapt_datetimefield_value(now),
                               WebhookMessage._meta.pk.get_db_prep_value(message.pk, connection)])
    if message.endpoint.failing_since is not None:
        batch.add(_RECOVERED_SQL, [WebhookEndpoint._meta.pk.get_db_prep_value(message.endpoint.pk, connection)])
    if connection.vendor == "postgresql":
        batch.run()
    else:
        with transaction.atomic():
            batch.run()


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    logger.warning("webhook endpoint %s (org %s) disabled: %s", endpoint.pk, endpoint.org_id, reason)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason)


# --- sweep --------------------------------------------------------------------------------------


def webhooks_sweep(*, grace_seconds: float = 30, limit: int = 500) -> dict:
    """Re-enqueue due messages whose task was lost; prune old messages.

    A message is due for the sweeper `grace_seconds` after its attempt was due, and again only after as long
    again as it had then waited (30 s, 60 s, 120 s … after it was due): its task may just be waiting behind
    a backlog, and a sweeper that re-enqueued every waiting message on every run would grow the very backlog
    it waits in (tests/faults/test_tenant_webhooks_faults.py stalled that way with a one-second sweep). A
    retry or a resend moves `next_attempt_at` past `requeued_at`, which starts the backoff again.
    Rows are leased (sendora_sms/db.py `lease`: two sweepers split the work); a message the broker would
    not take loses its mark, so the next sweep tries it again at once."""
    now = timezone.now()
    waited = ExpressionWrapper(F("requeued_at") - F("next_attempt_at"), output_field=DurationField())
    since = ExpressionWrapper(Value(now) - F("requeued_at"), output_field=DurationField())
    stranded = (WebhookMessage.objects.alias(waited=waited, since=since).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now), status=WebhookMessageStatus.PENDING,
        next_attempt_at__lt=now - timedelta(seconds=grace_seconds))
        .filter(Q(requeued_at__isnull=True) | Q(waited__lte=F("since"))))
    due = [str(pk) for pk in lease(stranded, limit=limit, order_by="next_attempt_at", mark={"requeued_at": now})]
    requeued = 0
    for pk in due:
        try:
            _publish_delivery(pk)
        except Exception:  # noqa: BLE001 — the broker is down: the rest keep no mark, the next sweep retries them
            WebhookMessage.objects.filter(pk__in=due[requeued:], requeued_at=now).update(requeued_at=None)
            logger.warning("webhooks sweep: broker unavailable, %d messages left for the next sweep",
                           len(due) - requeued)
            break
        requeued += 1
    cutoff = now - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS)
    pruned, _ = WebhookMessage.objects.filter(created_at__lt=cutoff).delete()
    return {"requeued": requeued, "pruned": pruned}


def endpoint_delivery_stats(*, endpoint: WebhookEndpoint) -> dict:
    qs = WebhookMessage.objects.filter(endpoint=endpoint)
    return {"pending": qs.filter(status=WebhookMessageStatus.PENDING).count(),
            "failed": qs.filter(status=WebhookMessageStatus.FAILED).count(),
            "delivered": qs.filter(status=WebhookMessageStatus.DELIVERED).count()}


__all__ = ["webhook_endpoint_create", "webhook_endpoint_update", "webhook_endpoint_delete",
           "webhook_endpoint_rotate_secret", "webhook_messages_fanout", "webhook_test_send",
           "webhook_message_resend", "webhook_deliver", "webhooks_sweep"]
