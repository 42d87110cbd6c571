"""Dispatch: hand one queued send to its provider, at most once per attempt.

    claim (one conditional UPDATE, attempts + 1, recipient not suppressed)
      │                                                ── 0 rows: redelivered task / other worker → nothing;
      │                                                   recipient suppressed since acceptance → failed,
      │                                                   metadata.suppressed, quota refunded, sms.failed
      │    queued → sending, or — for the retry task of attempt N only — a send still `sending`,
      │    without provider id, with attempts = N and review_reason "retrying: …"
      │  no transaction or row lock is open from here to the outcome
    provider.send(OutboundSms)
      ├─ accepted   → record provider_message_id (status stays `sending` until the provider reports
      │               `sent`; see docs/architecture.md "Dispatch") — sandbox: simulated callbacks
      ├─ transient  → stays `sending`, marked "retrying: attempt N (<code>)" (CAS), and the task retries
      │               attempt N with backoff, until SMS_DISPATCH_MAX_RETRIES retries are spent → failed
      │               with the provider's code
      ├─ permanent  → failed (error_code/error_message), quota refunded; 21610 also suppresses
      └─ ambiguous  → never re-sent blindly: reconcile with provider.find_sent(); found → recorded;
                      not found → stays `sending` with review_reason, the sweeper re-checks until
                      SMS_RECONCILE_DEADLINE_SECONDS, then parks it for an operator

A status never moves backwards, here either: nothing returns a send to `queued`. Where the provider
provably did not take the message (transient error, credentials unusable, sandbox message not found)
the send stays `sending` marked "retrying:", which only the retry of that exact attempt can claim.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from sms.models import ProviderAccount, Send, Suppression
from sms.providers import (
    OutboundSms,
    ProviderAmbiguousError,
    ProviderAuthError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    SendOutcome,
    SmsProvider,
    provider_for,
)
from sms.services import statements
from sms.services.counters import send_counts_segments_adjust
from sms.services.enqueue import dispatch_enqueue
from sms.services.failover import accounts_in_failover_order, provider_record
from sms.services.status import send_apply_status, send_status_change_record, send_transition
from sms.statuses import RANK, DispatchState, SendStatus

logger = logging.getLogger("sms.dispatch")

# find_sent looks this far before the attempt started (clock skew between us and the provider).
RECONCILE_MARGIN = timedelta(seconds=60)
# review_reason prefixes: still being reconciled by the sweeper / parked for an operator (sweeper stops) /
# the provider provably did not take attempt N, a retry of attempt N is scheduled (status stays `sending`).
REVIEW_RECONCILING = "reconciling: "
REVIEW_PARKED = "parked: "
REVIEW_RETRYING = "retrying: "
PROVIDER_NOT_CONFIGURED = "not_configured"  # error_code holds 16 characters
CREDENTIALS_UNUSABLE = "credentials"


class DispatchOutcome:
    SKIPPED = "skipped"  # nothing to claim (already taken or no longer queued)
    ACCEPTED = "accepted"  # the provider has the message
    FAILED = "failed"
    RETRY = "retry"  # transient: marked retrying (still `sending`), the task must retry this attempt
    RECONCILING = "reconciling"  # ambiguous, not found yet: the sweeper re-checks
    PARKED = "parked"
    REQUEUED = "requeued"  # not found, re-sending harmless (sandbox): marked retrying, a new task enqueued


@dataclass(frozen=True)
class DispatchResult:
    outcome: str
    attempt: int = 0
    retry_after: float | None = None


def status_callback_url(org_id, send_id=None, provider: SmsProvider | None = None) -> str | None:
    """The status webhook URL handed to the provider with a send, in the adapter's shape (Twilio's carries
    our send id as `?send_id=`, so a callback that overtakes the worker is still applied; MessageBird and
    Sinch echo the send id as their client reference); None when SMS_PUBLIC_BASE_URL is not set."""
    base = settings.SMS_PUBLIC_BASE_URL
    if not base:
        return None
    build = getattr(provider, "status_callback_url", None)
    if build is None:  # no adapter (or a test double): the sandbox's shape
        from sms.providers.sandbox import SandboxProvider

        build = SandboxProvider().status_callback_url
    return build(base_url=base, org_id=org_id, send_id=send_id)


def send_dispatch(*, send_id, attempt: int | None = None) -> DispatchResult:
    """Claim a queued send (or, with `attempt`, the retry of that attempt) and call its provider once.

    Safe to run twice for one id and attempt (the claim is a CAS). Holds no transaction or lock during
    the provider call. Returns what happened; RETRY means the caller (the task) must schedule the
    retry of `result.attempt`.

    Failover (sms/services/failover.py): the org's enabled accounts are tried in failover order (healthy
    by priority, then demoted). A transient error — the provider provably did not take the message —
    moves this attempt to the next account at once (Send.provider and from_number follow, a timeline row
    records the move). An ambiguous outcome never moves: it is reconciled with the provider that had the
    request. A permanent error fails the send. When every account answered transiently, the attempt is
    retried later (same budget as before).
    """
    order = _routing_order(send_id)
    first = order[0] if order else None
    send = _claim(send_id, attempt, route=first)
    if send is None:
        return DispatchResult(DispatchOutcome.SKIPPED)
    if send.mode == "test":
        order = [None]
    elif not order:
        send_fail_unsent(send, code=PROVIDER_NOT_CONFIGURED, message="The org has no provider account configured.")
        return DispatchResult(DispatchOutcome.FAILED, attempt=send.attempts)
    last_transient = None
    for index, account in enumerate(order):
        if index > 0 and not _route_to(send, account, previous=order[index - 1], error=last_transient):
            return DispatchResult(DispatchOutcome.SKIPPED, attempt=send.attempts)
        try:
            provider = provider_for(account, send.mode)
        except LookupError:
            send_fail_unsent(send, code=PROVIDER_NOT_CONFIGURED, message="The org has no provider account configured.")
            return DispatchResult(DispatchOutcome.FAILED, attempt=send.attempts)
        except Exception:
            if index + 1 < len(order):  # this account's credentials are unusable: the next one may serve
                logger.exception("send=%s provider %s unusable; failing over", send.pk, account.provider)
                last_transient = ProviderTransientError("credentials unusable", code=CREDENTIALS_UNUSABLE)
                continue
            # e.g. the token cannot be decrypted: the provider was provably not called. Marked retrying;
            # the task fails loudly and the sweeper re-enqueues the retry of this attempt later — until the
            # same retry budget as provider errors is spent, then the send fails with a reason.
            if send.attempts > settings.SMS_DISPATCH_MAX_RETRIES:
                logger.exception("send=%s provider unusable after %s attempts", send.pk, send.attempts)
                send_fail_unsent(send, code=CREDENTIALS_UNUSABLE, message="The org's provider credentials could not be used "
                      "(e.g. not decryptable with SMS_ENCRYPTION_KEYS); fix them in Dashboard → SMS → Provider.")
                return DispatchResult(DispatchOutcome.FAILED, attempt=send.attempts)
            send_mark_retrying(send, code="provider_unavailable", source="worker")
            raise
        from_number = send.from_number or getattr(account, "from_number", "")
        message = OutboundSms(
            send_id=str(send.id), to=send.to, from_number=from_number,
            body=send.body, status_callback_url=status_callback_url(send.org_id, send.id, provider),
        )
        try:
            outcome = provider.send(message)
        except ProviderTransientError as exc:
            _health(send, provider, ok=False)
            last_transient = exc
            continue
        except ProviderPermanentError as exc:  # ProviderAuthError included
            if not isinstance(exc, ProviderAuthError):
                _health(send, provider, ok=True)  # the provider answered; the message was the problem
            send_fail_unsent(send, code=exc.code or exc.__class__.__name__, message=exc.message,
                             opted_out=exc.recipient_opted_out)
            return DispatchResult(DispatchOutcome.FAILED, attempt=send.attempts)
        except ProviderAmbiguousError as exc:
            _health(send, provider, ok=False)
            return _on_ambiguous(send, provider, exc)
        except SoftTimeLimitExceeded:
            # Our own time limit, not the provider's answer: never recorded as an ambiguous provider outcome.
            # The send stays in_flight; the sweeper reconciles it after SMS_SWEEP_SENDING_AFTER_SECONDS.
            logger.warning("send=%s soft time limit reached during the provider call", send.pk)
            raise
        except Exception as exc:  # an adapter bug: we cannot tell whether the request went out
            logger.exception("send=%s unexpected error from provider %s", send.pk, provider.name)
            return _on_ambiguous(send, provider, ProviderAmbiguousError(repr(exc)[:150], code="unexpected"))
        _health(send, provider, ok=True, account=account)
        _record_accepted(send, outcome, source="worker")
        _apply_simulated(send, provider, outcome)
        return DispatchResult(DispatchOutcome.ACCEPTED, attempt=send.attempts)
    return _on_transient(send, last_transient)


def _routing_order(send_id) -> list[ProviderAccount]:
    """The send's org's enabled accounts in failover order (empty for none; test sends ignore it)."""
    if statements.enabled():
        return accounts_in_failover_order(statements.accounts_for_send(send_id))
    org_id = Send.objects.filter(pk=send_id).values("org_id")[:1]
    return accounts_in_failover_order(ProviderAccount.objects.filter(org_id=Subquery(org_id), enabled=True))


def _health(send: Send, provider: SmsProvider, *, ok: bool, account: ProviderAccount | None = None) -> None:
    if send.mode != "test" and provider.name != "sandbox":
        provider_record(org_id=send.org_id, provider=provider.name, ok=ok,
                        probing=getattr(account, "failover_probing", None))


def _route_to(send: Send, account: ProviderAccount, *, previous: ProviderAccount | None, error) -> bool:
    """Move this attempt of the send to `account` after a transient failure of `previous` (CAS on the
    attempt, still without a provider id). The timeline records the move with both providers."""
    with transaction.atomic(durable=True):
        moved = Send.objects.filter(pk=send.pk, status=SendStatus.SENDING, provider_message_id="",
                                    attempts=send.attempts, dispatch_state=DispatchState.IN_FLIGHT).update(
            provider=account.provider, from_number=account.from_number, updated_at=timezone.now())
        if moved:
            send_status_change_record(send=send, from_status=SendStatus.SENDING, to_status=SendStatus.SENDING,
                                      source="worker", detail={
                                          "attempt": send.attempts, "provider": account.provider, "failover": True,
                                          "failover_from": previous.provider if previous else None,
                                          "error_code": getattr(error, "code", "") or ""})
    if moved:
        send.provider, send.from_number = account.provider, account.from_number
        logger.info("send=%s attempt %s fails over %s → %s", send.pk, send.attempts,
                    previous.provider if previous else None, account.provider)
    return bool(moved)


# --- steps -------------------------------------------------------------------------------------

def _claim(send_id, attempt: int | None, route: ProviderAccount | None = None) -> Send | None:
    """The compare-and-set that makes each attempt happen at most once: (status=queued) OR, for the
    retry of `attempt` only, (status=sending, no provider id, attempts=attempt, review_reason
    "retrying: …"); attempts + 1 and review_reason cleared either way. The two branches are two
    conditional UPDATEs (a row matches at most one of them), so the counters move only when the
    status did. A duplicate or redelivered task finds 0 rows."""
    now = timezone.now()
    claim = {"status": SendStatus.SENDING, "sending_started_at": now, "attempts": F("attempts") + 1,
             "updated_at": now, "review_reason": "", "dispatch_state": DispatchState.IN_FLIGHT}
    if route is not None:
        # A live send goes to the first account in failover order: its provider and, when that is not the
        # provider chosen at acceptance, its sender (test sends stay with the sandbox).
        claim["provider"] = Case(When(mode="test", then=F("provider")), default=Value(route.provider))
        claim["from_number"] = Case(When(Q(mode="test") | (Q(provider=route.provider) & ~Q(from_number="")),
                                         then=F("from_number")), default=Value(route.from_number))
    if route is not None and statements.enabled():
        # The common case in one statement (sms/services/statements.py); anything else takes the path below.
        send = statements.claim_queued(send_id, now=now, route=route)
        if send is not None:
            return send
    claimable = Q(status=SendStatus.QUEUED)
    if attempt is not None:
        claimable |= Q(status=SendStatus.SENDING, provider_message_id="", attempts=attempt,
                       dispatch_state=DispatchState.RETRYING)
    with transaction.atomic(durable=True):
        from_status = SendStatus.QUEUED
        # STOP is final at dispatch too: the claim itself re-checks the suppression list, in the same
        # statement, on every path (first attempt, retries, the sweeper's re-enqueue, an operator's re-send).
        claimed = Send.objects.filter(~_RECIPIENT_SUPPRESSED, pk=send_id, status=SendStatus.QUEUED).update(**claim)
        if not claimed and attempt is not None:
            from_status = SendStatus.SENDING
            claimed = Send.objects.filter(
                ~_RECIPIENT_SUPPRESSED, pk=send_id, status=SendStatus.SENDING, provider_message_id="",
                attempts=attempt, dispatch_state=DispatchState.RETRYING).update(**claim)
        if not claimed:
            if Send.objects.filter(claimable, _RECIPIENT_SUPPRESSED, pk=send_id).exists():
                _fail_suppressed(send_id, claimable)
            return None
        send = Send.objects.select_related("org").get(pk=send_id)
        send_status_change_record(send=send, from_status=from_status, to_status=SendStatus.SENDING,
                                  source="worker", detail={"attempt": send.attempts, "provider": send.provider})
    return send


# The recipient is on the send's org's suppression list (a STOP, a carrier opt-out, an operator's entry).
_RECIPIENT_SUPPRESSED = Exists(Suppression.objects.filter(org_id=OuterRef("org_id"), phone_number=OuterRef("to")))


def _refund_unit(send: Send) -> None:
    """Give back the unit a send took at acceptance: the live monthly quota for a live send, the
    sandbox's daily cap for a test send (test sends never touch the live meter; issue #10 point 10)."""
    from orgs.quota import period_start_for, quota_refund, sandbox_refund

    if send.mode == "test":
        sandbox_refund(org_id=send.org_id, at=send.created_at)
    else:
        from sms.services.cost import send_spend_refund

        send_spend_refund(send)  # its reserved price (before the quota: the lock order of orgs/spend.py)
        quota_refund(org_id=send.org_id, period_start=period_start_for(send.created_at), units=1)


def _fail_suppressed(send_id, claimable: Q) -> Send | None:
    """A send that would have been claimed, but its recipient opted out after it was accepted: it ends
    `failed` with metadata.suppressed=true like a send refused at acceptance; its quota unit is refunded;
    `sms.failed` fires once (send_transition, outbox unique per send and type). Runs inside the claim's
    transaction; the conditional transition makes a racing duplicate task a no-op."""
    from sms.services.sends import SUPPRESSED_ERROR_CODE

    send = Send.objects.filter(claimable, pk=send_id).only("metadata", "org_id", "created_at", "mode").first()
    if send is None:
        return None
    changed = send_transition(
        send_id=send_id, to_status=SendStatus.FAILED, source="worker",
        fields={"error_code": SUPPRESSED_ERROR_CODE, "metadata": {**(send.metadata or {}), "suppressed": True},
                "error_message": "The recipient opted out after the send was accepted; it was not sent."},
        detail={"error_code": SUPPRESSED_ERROR_CODE, "decision": "recipient_suppressed_at_dispatch"},
        from_statuses=[SendStatus.QUEUED, SendStatus.SENDING])
    if changed is not None:
        _refund_unit(send)
        logger.info("send=%s recipient suppressed since acceptance: failed, not sent", send_id)
    return changed


def send_mark_retrying(send: Send, *, code: str, source: str, detail: dict | None = None) -> bool:
    """The provider provably did not take attempt N: the send stays `sending` (a status never moves
    backwards), marked "retrying: attempt N (<code>)" so that the retry of attempt N — and only it —
    can claim it again. CAS on (sending, no provider id, attempts=N). Timeline: a `sending` row with
    {"retry": true, "attempt": N, "error_code": code}; no counter move."""
    reason = f"{REVIEW_RETRYING}attempt {send.attempts} ({code or 'unknown'})"[:200]
    with transaction.atomic(durable=True):
        marked = Send.objects.filter(pk=send.pk, status=SendStatus.SENDING, provider_message_id="",
                                     attempts=send.attempts).update(review_reason=reason, updated_at=timezone.now(),
                                                                    dispatch_state=DispatchState.RETRYING)
        if marked:
            send_status_change_record(
                send=send, from_status=SendStatus.SENDING, to_status=SendStatus.SENDING, source=source,
                detail={"retry": True, "attempt": send.attempts, "error_code": code, **(detail or {})})
    if marked:
        send.review_reason = reason
    return bool(marked)


def _on_transient(send: Send, exc: ProviderTransientError) -> DispatchResult:
    # `attempts` counts provider calls including this one; MAX_RETRIES retries = MAX_RETRIES + 1 calls.
    if send.attempts > settings.SMS_DISPATCH_MAX_RETRIES:
        send_fail_unsent(send, code=exc.code or "unavailable",
              message=exc.message or f"The provider was unavailable after {send.attempts} attempts.")
        return DispatchResult(DispatchOutcome.FAILED, attempt=send.attempts)
    if not send_mark_retrying(send, code=exc.code or "unavailable", source="worker"):
        return DispatchResult(DispatchOutcome.SKIPPED, attempt=send.attempts)
    return DispatchResult(DispatchOutcome.RETRY, attempt=send.attempts, retry_after=exc.retry_after)


def send_fail_unsent(send: Send, *, code: str, message: str, opted_out: bool = False, source: str = "worker") -> Send | None:
    """queued|sending → failed before the provider accepted anything: refund the quota unit; on an
    opted-out recipient (21610) add a carrier_opt_out suppression. One transaction."""
    with transaction.atomic(durable=True):
        changed = send_transition(
            send_id=send.pk, to_status=SendStatus.FAILED, source=source,
            fields={"error_code": str(code)[:16], "error_message": message or ""},
            detail={"error_code": str(code)}, from_statuses=[SendStatus.QUEUED, SendStatus.SENDING])
        if changed is None:
            return None
        _refund_unit(send)
        if opted_out:
            from audit.services import Actor
            from sms.models import SuppressionReason
            from sms.services.suppressions import suppression_ensure

            suppression_ensure(org=send.org, phone_number=send.to, reason=SuppressionReason.CARRIER_OPT_OUT,
                               source="dispatch", actor=Actor.system("dispatch"))
    return changed


def _record_accepted(send: Send, outcome: SendOutcome, *, source: str) -> None:
    """Store the provider's id (and a reported status past `sending`, e.g. found already delivered)."""
    now = timezone.now()
    fields = {"provider_message_id": outcome.provider_message_id, "review_reason": "",
              "dispatch_state": DispatchState.AWAITING_PROVIDER}
    at = _provider_time(outcome)
    if (statements.enabled() and not (outcome.status in RANK and RANK[outcome.status] > RANK[SendStatus.SENDING])
            and outcome.raw.get("price") in (None, "") and not (outcome.segments and outcome.segments != send.segments)):
        # The common answer (accepted, nothing more to record): one statement (sms/services/statements.py).
        statements.mark_accepted(send.pk, provider_message_id=outcome.provider_message_id, now=now)
        return
    with transaction.atomic():
        _price_report(send, outcome.raw)
        if outcome.status in RANK and RANK[outcome.status] > RANK[SendStatus.SENDING]:
            if outcome.status in (SendStatus.FAILED, SendStatus.UNDELIVERED):
                fields["error_code"] = str(outcome.raw.get("error_code") or "")[:16]
            if send_transition(send_id=send.pk, to_status=outcome.status, source=source, fields=fields,
                               detail={"provider_status": outcome.raw.get("status", outcome.status)},
                               from_statuses=[SendStatus.SENDING], at=at):
                return
        Send.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(updated_at=now, **fields)
        if outcome.segments and outcome.segments != send.segments:
            _segments_correct(send, outcome.segments)


def _price_report(send: Send, raw: dict) -> None:
    """The provider's reported price, when it gave one, replaces the estimate (sms/services/cost.py)."""
    if raw.get("price") not in (None, ""):
        from sms.services.cost import send_price_report

        send_price_report(send_id=send.pk, raw_price=raw.get("price"), raw_unit=raw.get("price_unit"))


def _provider_time(outcome: SendOutcome) -> dict:
    """The provider's own timestamps for the message ({"sent": …, "updated": …}, each a datetime or None):
    a send recovered by reconciliation records when the provider sent and delivered it, not when we asked."""
    from django.utils.dateparse import parse_datetime

    def parsed(key):
        value = outcome.raw.get(key)
        return parse_datetime(value) if isinstance(value, str) else None

    return {"sent": parsed("date_sent"), "updated": parsed("date_updated")}


def _segments_correct(send: Send, segments: int) -> None:
    """The provider counted segments differently: keep its figure, and the day's counters in step."""
    current = Send.objects.filter(pk=send.pk).values_list("status", flat=True).first()
    if Send.objects.filter(pk=send.pk, segments=send.segments).update(segments=segments):
        send_counts_segments_adjust(send=send, status=current, delta=segments - send.segments)


def _apply_simulated(send: Send, provider: SmsProvider, outcome: SendOutcome) -> None:
    """The sandbox's callbacks, applied through the same service as real provider callbacks."""
    simulate = getattr(provider, "simulated_updates", None)
    if simulate is None:
        return
    for update in simulate(outcome):
        send_apply_status(org=send.org, update=update, source="sandbox")


def _on_ambiguous(send: Send, provider: SmsProvider, exc: ProviderAmbiguousError) -> DispatchResult:
    reason = f"{REVIEW_RECONCILING}{exc.code or 'ambiguous'}: {exc.message or 'outcome unknown'}"[:200]
    _unresolved(send).update(review_reason=reason, updated_at=timezone.now(), dispatch_state=DispatchState.RECONCILING)
    send.review_reason = reason
    outcome = send_reconcile(send=send, provider=provider, source="worker")
    return DispatchResult(outcome, attempt=send.attempts)


# --- reconciliation (dispatch after an ambiguous error, and the sweeper) -----------------------

def send_reconcile(*, send: Send, provider: SmsProvider, source: str) -> str:
    """Resolve a send in `sending` whose provider outcome is unknown, by asking the provider.

    Found (same To and body, created since the attempt started, sid not already another send's) →
    recorded like an acceptance. Not found → a provider whose re-send is harmless (sandbox) gets the
    send marked retrying (still `sending`) and the retry of its attempt enqueued; otherwise it stays
    `sending` with review_reason until the deadline, then is parked.
    Never re-sends blindly. Runs outside any transaction (it calls the provider).
    """
    since = (send.sending_started_at or send.created_at) - RECONCILE_MARGIN
    try:
        extra = {"reference": str(send.pk)} if getattr(provider, "finds_by_reference", False) else {}
        found = provider.find_sent(to=send.to, since=since, body=send.body, **extra)
    except (ProviderError, NotImplementedError) as exc:
        logger.warning("send=%s reconciliation query failed: %s", send.pk, exc.__class__.__name__)
        return _still_unknown(send, provider, queried=False, source=source)
    taken = set(Send.objects.filter(org_id=send.org_id, provider_message_id__in=[o.provider_message_id for o in found])
                .exclude(pk=send.pk).values_list("provider_message_id", flat=True))
    candidates = [o for o in found if o.provider_message_id not in taken]
    if not candidates:
        return _still_unknown(send, provider, queried=True, source=source)
    outcome = candidates[-1]  # lists are newest first: the oldest match is the first attempt's message
    if len(candidates) > 1:
        logger.warning("send=%s reconciliation matched %d provider messages; recording the oldest",
                       send.pk, len(candidates))
    with transaction.atomic(durable=True):
        _record_accepted(send, outcome, source=source)
    return DispatchOutcome.ACCEPTED


def _still_unknown(send: Send, provider: SmsProvider, *, queried: bool, source: str) -> str:
    if queried and getattr(provider, "resend_is_harmless", False):
        if send_mark_retrying(send, code="not_found", source=source, detail={"reconciled": "not_found"}):
            dispatch_enqueue(send_id=send.pk, attempt=send.attempts)
            return DispatchOutcome.REQUEUED
    started = send.sending_started_at or send.created_at
    if timezone.now() - started >= timedelta(seconds=settings.SMS_RECONCILE_DEADLINE_SECONDS):
        reason = (f"{REVIEW_PARKED}the provider's answer to attempt {send.attempts} was lost and the message "
                  f"was not found by reconciliation before the deadline; check the provider's logs, then "
                  f"mark it failed or re-send it")[:200]
        _unresolved(send).update(review_reason=reason, updated_at=timezone.now(), dispatch_state=DispatchState.PARKED)
        logger.warning("send=%s parked for review", send.pk)
        return DispatchOutcome.PARKED
    if not send.review_reason.startswith(REVIEW_RECONCILING):
        reason = f"{REVIEW_RECONCILING}worker stopped during the provider call; awaiting reconciliation"[:200]
        _unresolved(send).update(review_reason=reason, updated_at=timezone.now(),
                                 dispatch_state=DispatchState.RECONCILING)
    return DispatchOutcome.RECONCILING


def _unresolved(send: Send):
    """This attempt of the send, still without a provider id and not handed to a retry (a slow worker
    may have marked it retrying while the sweeper was reconciling it: the retry mark wins)."""
    return (Send.objects.filter(pk=send.pk, status=SendStatus.SENDING, provider_message_id="",
                                attempts=send.attempts)
            .exclude(dispatch_state=DispatchState.RETRYING))
