"""The sweeper: work stranded by a broker outage or a crash (beat runs `sends_sweep_task` every 30 s).

- `sends_requeue_stranded`: `queued` sends untouched for SMS_SWEEP_QUEUED_AFTER_SECONDS (the
  broker was down at commit) get a new dispatch task. Sends kept `sending` and marked "retrying:"
  (the provider provably did not take attempt N) whose retry task was lost (could not be published,
  or died with a worker) get a new task for attempt N, but only once the longest backoff
  (SMS_DISPATCH_RETRY_MAX_SECONDS) has also passed, so the sweeper does not defeat the backoff.
  Safe even if the old task still runs: the claim is a compare-and-set, so only one call happens.
  Nothing is moved back to `queued`.
- `sends_reconcile_stuck`: `sending` sends untouched for SMS_SWEEP_SENDING_AFTER_SECONDS, except those
  marked retrying (their outcome is not ambiguous: the provider provably did not take them). With a
  provider id (accepted, no final status reported yet) the provider is asked for the current
  status; without one (the answer was lost: ambiguous error or worker crash) `send_reconcile` asks
  the provider whether it has the message — found → recorded; not found → kept for the next sweep
  until SMS_RECONCILE_DEADLINE_SECONDS, then parked for review. Never re-sent blindly.
- `events_publish_pending`: outbox events whose publish task never ran.
- `handoffs_check`: warns when dispatch hand-off rows wait longer than SMS_SWEEP_QUEUED_AFTER_SECONDS (no worker
  consuming `sms-send` runs its dispatcher: sms/services/handoff.py); their sends are re-enqueued above meanwhile.

Batches are claimed with `SELECT … FOR UPDATE SKIP LOCKED` and leased by bumping `updated_at`,
so concurrent sweepers split the work; no lock is held while a provider is called.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from sendora_sms.db import lease
from sms.models import ProviderAccount, Send
from sms.providers import ProviderError, StatusUpdate, provider_for
from sms.services.dispatch import REVIEW_PARKED, send_reconcile
from sms.services.enqueue import dispatch_publish
from sms.services.events import events_publish_pending
from sms.services.handoff import handoff_backlog
from sms.services.status import send_apply_status
from sms.statuses import DispatchState, SendStatus

logger = logging.getLogger("sms.sweeper")


def sends_requeue_stranded(*, limit: int = 500) -> int:
    """Enqueue a dispatch task for queued sends whose task evidently never ran, and the retry of
    attempt N for sends marked retrying whose retry task evidently never ran. Returns how many."""
    now = timezone.now()
    fresh_cutoff = now - timedelta(seconds=settings.SMS_SWEEP_QUEUED_AFTER_SECONDS)
    retry_cutoff = fresh_cutoff - timedelta(seconds=settings.SMS_DISPATCH_RETRY_MAX_SECONDS)
    stranded = Send.objects.filter(
        Q(dispatch_state=DispatchState.PENDING, status=SendStatus.QUEUED, updated_at__lt=fresh_cutoff)
        | Q(dispatch_state=DispatchState.RETRYING, status=SendStatus.SENDING, provider_message_id="",
            updated_at__lt=retry_cutoff))
    rows = lease(stranded, limit=limit, order_by="updated_at", mark={"updated_at": now},
                 fields=("status", "attempts"))
    enqueued = 0
    for send_id, status, attempts in rows:
        # The attempt is the one read under the lease's lock: if that retry has run meanwhile, the
        # task finds nothing to claim (attempts moved on, or the retrying mark is gone).
        try:
            dispatch_publish(send_id=send_id, attempt=None if status == SendStatus.QUEUED else attempts)
        except Exception:  # noqa: BLE001 — broker still down: the lease expires, the next sweep retries
            logger.warning("sweeper: broker unavailable, %d sends left for the next sweep", len(rows) - enqueued)
            break
        enqueued += 1
    return enqueued


def sends_reconcile_stuck(*, limit: int = 100) -> dict:
    """Ask the provider about sends stuck in `sending`. Returns counts by outcome."""
    cutoff = timezone.now() - timedelta(seconds=settings.SMS_SWEEP_SENDING_AFTER_SECONDS)
    # Not parked (an operator decides) nor retrying (not ambiguous: handled above).
    stuck = Send.objects.filter(status=SendStatus.SENDING, updated_at__lt=cutoff, dispatch_state__in=[
        DispatchState.IN_FLIGHT, DispatchState.RECONCILING, DispatchState.AWAITING_PROVIDER])
    counts: dict[str, int] = {}
    for send_id in lease(stuck, limit=limit, order_by="updated_at", mark={"updated_at": timezone.now()}):
        send = (Send.objects.select_related("org").filter(pk=send_id, status=SendStatus.SENDING)
                .exclude(dispatch_state=DispatchState.RETRYING).first())
        if send is None:
            continue
        try:
            outcome = _reconcile_one(send)
        except Exception:  # noqa: BLE001 — one bad send must not stop the sweep
            logger.exception("sweeper: reconciling send %s failed", send_id)
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _reconcile_one(send: Send) -> str:
    # The account of the provider that had the attempt (Send.provider is set before each provider call).
    account = ProviderAccount.objects.filter(org_id=send.org_id, provider=send.provider).first()
    try:
        provider = provider_for(account, send.mode)
    except LookupError:
        return "no_provider"
    if not send.provider_message_id:
        return send_reconcile(send=send, provider=provider, source="sweeper")
    # Accepted, but no final status reported (no StatusCallback configured, or callbacks lost): fetch that
    # one message by its provider id (not a list of the recipient's messages).
    try:
        outcome = provider.fetch_status(send.provider_message_id)
    except (ProviderError, NotImplementedError):
        return "query_failed"
    if outcome is not None:
        send_apply_status(org=send.org, source="sweeper", update=StatusUpdate(
            provider=provider.name, provider_message_id=outcome.provider_message_id, status=outcome.status,
            error_code=str(outcome.raw.get("error_code") or ""),
            raw={"status": outcome.raw.get("status", outcome.status)},
            price=str(outcome.raw.get("price") or ""), price_unit=str(outcome.raw.get("price_unit") or "")))
        refreshed = Send.objects.filter(pk=send.pk).values_list("status", flat=True).first()
        if refreshed != SendStatus.SENDING:
            return "status_refreshed"
    started = send.sending_started_at or send.created_at
    if timezone.now() - started >= timedelta(seconds=settings.SMS_RECONCILE_DEADLINE_SECONDS):
        reason = (f"{REVIEW_PARKED}accepted by the provider ({send.provider_message_id}) but no final status "
                  f"reported before the deadline; check the provider's logs")[:200]
        Send.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(review_reason=reason,
                                                                          dispatch_state=DispatchState.PARKED)
        return "parked"
    return "pending"


def handoffs_check() -> int:
    """How many dispatch hand-offs wait; a warning when the oldest has waited past SMS_SWEEP_QUEUED_AFTER_SECONDS."""
    waiting, oldest = handoff_backlog()
    if oldest is not None and oldest > settings.SMS_SWEEP_QUEUED_AFTER_SECONDS:
        logger.warning("sweeper: %d dispatch hand-offs waiting, the oldest for %.0f s: is a worker consuming "
                       "sms-send running? (their sends are re-enqueued by this sweep meanwhile)", waiting, oldest)
    return waiting


def sends_sweep() -> dict:
    """One sweep: requeue stranded, reconcile stuck, publish missed events, check the hand-offs."""
    return {
        "requeued": sends_requeue_stranded(),
        "reconciled": sends_reconcile_stuck(),
        "events_published": events_publish_pending(),
        "handoffs_waiting": handoffs_check(),
    }
