"""Send status changes: the monotonic rule applied, with its timeline row, counters and events.

`send_transition` is the one helper every status change goes through (dispatch, provider
callbacks, the sandbox's simulated callbacks, the sweeper). It runs inside the caller's
transaction and does, atomically with the caller:
  1. a compare-and-set UPDATE from the exact status it observed (row locked with FOR UPDATE), which
     must be one of `allowed_from(new)` — 0 rows or a non-forward move means the change is stale and
     is ignored (returns None);
  2. the timestamp for the new status (sent_at / delivered_at / failed_at);
  3. a SendStatusChange row, the SendDailyCount move, and the events.

`send_status_change_record` writes the timeline row and the counter move for every status change
(send_transition, and dispatch's claim, which is a conditional UPDATE of its own). It is the guard
of the monotonic rule: a backward move raises `BackwardStatusChange` (a bug, never a stale report —
stale reports are filtered before). A row with an unchanged status (a dispatch attempt or a retry
while the send stays `sending`) is a timeline entry only; the counters do not move.

A provider's common report (a status past `sending`, no opt-out, no price) is the one exception on PostgreSQL:
`send_apply_status` applies it with the same rule and the same rows in ONE statement
(sms/services/statements.py status_report_apply: the row lock, the compare-and-set, the timeline row, the counter
move and the events), sent with its COMMIT in one round trip (issue #14, eleventh pass).

Events: sent → sms.sent; delivered → sms.delivered; failed and undelivered → sms.failed.
A `delivered` or `undelivered` that arrives before `sent` (callbacks are not ordered, and Twilio can
skip `sent`) implies the carrier had the message, so sms.sent is emitted too and sent_at is filled —
subscribers can count "sent" without special-casing skipped states. The unique (send, type)
constraint keeps every event at most once.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.functions import Coalesce
from django.db.models import Case, F, Value, When
from django.utils import timezone

from sms.models import EventType, Send, SendStatusChange
from sms.providers.base import UNKNOWN, StatusUpdate
from sendora_sms.db import StatementBatch, vendor
from sms.services import statements
from sms.services.counters import send_counts_move, send_counts_move_statement
from sms.services.events import event_inserted, event_record, event_statement, events_inserted, send_event_data
from sms.statuses import RANK, DispatchState, SendStatus, allowed_from, dispatch_state_after, is_forward

logger = logging.getLogger("sms.status")

_EVENTS = {
    SendStatus.SENT: [EventType.SENT],
    SendStatus.DELIVERED: [EventType.SENT, EventType.DELIVERED],
    SendStatus.UNDELIVERED: [EventType.SENT, EventType.FAILED],
    SendStatus.FAILED: [EventType.FAILED],
}
# Statuses that imply the provider handed the message to the carrier (sent_at is filled if missing).
_IMPLIES_SENT = frozenset({SendStatus.SENT, SendStatus.DELIVERED, SendStatus.UNDELIVERED})
# The statuses a send has been `sent` in (or past): a later report emits no second sms.sent.
_SENT_BEFORE = [status for status, rank in RANK.items() if rank >= RANK[SendStatus.SENT]]


class BackwardStatusChange(RuntimeError):
    """A code path tried to record a status change that is not forward (sms/statuses.py)."""


def send_status_change_record(*, send: Send, from_status: str, to_status: str, source: str,
                              detail: dict | None = None) -> SendStatusChange:
    """The timeline row and the day counters for a change already applied to the row (caller's
    transaction). `from_status == to_status` records a timeline entry without moving counters."""
    if from_status != to_status and not is_forward(from_status, to_status):
        raise BackwardStatusChange(f"send {send.pk}: {from_status} → {to_status} is not forward")
    change = SendStatusChange.objects.create(send=send, status=to_status, source=source, detail=detail or {})
    if from_status != to_status:
        send_counts_move(send=send, from_status=from_status, to_status=to_status)
    return change


def _transition_values(dispatch_state: str | None, to_status: str, fields: dict, at: dict | None,
                       now) -> tuple[dict, dict]:
    """What moving a send (in `dispatch_state`) to `to_status` writes, for every path of a status change: (values,
    coalesce) — `values` set as given (the status, `fields`, the dispatch state, the timestamps), `coalesce` kept
    where already set (sent_at: COALESCE(sent_at, value))."""
    values = {"status": to_status, "updated_at": now, **fields}
    values["dispatch_state"] = dispatch_state_after(to_status, values.get("dispatch_state", dispatch_state))
    if RANK[to_status] > RANK[SendStatus.SENDING]:
        values.setdefault("review_reason", "")  # past `sending` nothing is left to review
    final_at = (at or {}).get("updated") or now
    coalesce = {"sent_at": (at or {}).get("sent") or now} if to_status in _IMPLIES_SENT else {}
    if to_status == SendStatus.DELIVERED:
        values["delivered_at"] = final_at
    if to_status in (SendStatus.FAILED, SendStatus.UNDELIVERED):
        values["failed_at"] = final_at
    return values, coalesce


def _transition_events(from_status: str, to_status: str) -> list[str]:
    """The event types a change from `from_status` to `to_status` records (sms.sent only if not sent before)."""
    return [event_type for event_type in _EVENTS.get(to_status, [])
            if not (event_type == EventType.SENT and from_status in _SENT_BEFORE)]


def send_transition(*, send_id, to_status: str, source: str, fields: dict | None = None,
                    detail: dict | None = None, from_statuses: list[str] | None = None,
                    at: dict | None = None, locked: Send | None = None, last: bool = False) -> Send | None:
    """Move a send to `to_status` if that is forward from its current status; None when stale.

    Runs inside the caller's transaction (raises if there is none). `fields` are extra columns set in
    the same UPDATE (provider_message_id, error_code…). `from_statuses` narrows the allowed sources
    (it can never widen the monotonic rule). `at` carries the provider's own timestamps
    ({"sent": datetime | None, "updated": datetime | None}) for a change learned late (reconciliation).
    The dispatch state follows the status (sms.statuses.dispatch_state_after). `locked`: the whole send, already
    read FOR UPDATE in this transaction by the caller (PostgreSQL), so it is not read again. `last`: the caller
    runs no other query in its transaction after this: the COMMIT may ride in the writes' round trip.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("send_transition must run inside the caller's transaction")
    allowed = allowed_from(to_status)
    if from_statuses is not None:
        allowed = [s for s in allowed if s in from_statuses]
    now = timezone.now()
    if statements.enabled() and not any(hasattr(v, "resolve_expression") for v in (fields or {}).values()):
        return _transition_batched(send_id=send_id, to_status=to_status, source=source, fields=fields or {},
                                   detail=detail, allowed=allowed, at=at, now=now, locked=locked, last=last)
    for _ in range(3):
        # FOR UPDATE serialises concurrent callbacks for one send (PostgreSQL); the CAS below on the
        # exact observed status keeps the rule even where row locks are no-ops (SQLite).
        send = Send.objects.select_for_update().filter(pk=send_id).first()
        if send is None or send.status not in allowed:
            return None
        from_status = send.status
        values, coalesce = _transition_values(send.dispatch_state, to_status, fields or {}, at, now)
        updates = {**values, **{name: Coalesce(name, Value(value)) for name, value in coalesce.items()}}
        if Send.objects.filter(pk=send_id, status=from_status).update(**updates):
            break
    else:  # pragma: no cover — only under extreme contention without row locks
        return None
    if vendor() == "postgresql" and not any(
            hasattr(v, "resolve_expression") for k, v in updates.items() if k != "sent_at"):
        # The row is locked (FOR UPDATE) since it was read: it is what we read plus what we wrote (issue #14:
        # no re-read). sent_at is COALESCE(sent_at, …) in the UPDATE, so the same here.
        for name, value in updates.items():
            setattr(send, name, (send.sent_at or coalesce["sent_at"]) if name == "sent_at" else value)
    else:
        send.refresh_from_db()
    send_status_change_record(send=send, from_status=from_status, to_status=to_status, source=source, detail=detail)
    data = send_event_data(send)
    for event_type in _transition_events(from_status, to_status):
        event_record(org_id=send.org_id, type=event_type, send=send, data=data)
    return send


def _transition_batched(*, send_id, to_status, source, fields, detail, allowed, at, now, locked,
                        last=False) -> Send | None:
    """send_transition on PostgreSQL (issue #14): the row read and locked in one prepared statement (or given by
    the caller), then the compare-and-set UPDATE, the timeline row, the counter move and the events in ONE round
    trip (sendora_sms/db.py StatementBatch), none compiled by the ORM. The lock makes the CAS certain to match."""
    send = locked if locked is not None else statements.send_locked(send_id)
    if send is None or send.status not in allowed:
        return None
    from_status = send.status
    if from_status != to_status and not is_forward(from_status, to_status):
        raise BackwardStatusChange(f"send {send.pk}: {from_status} → {to_status} is not forward")
    values, coalesce = _transition_values(send.dispatch_state, to_status, fields, at, now)
    batch = StatementBatch([statements.send_update_statement(send.pk, from_status=from_status, values=values,
                                                             coalesce=coalesce)])
    for name, value in values.items():  # the row is locked: it is what we read plus what we write
        setattr(send, name, value)
    if coalesce:
        send.sent_at = send.sent_at or coalesce["sent_at"]
    batch.insert(SendStatusChange(send_id=send.pk, status=to_status, source=source, detail=detail or {}))
    if from_status != to_status:
        batch.add(*send_counts_move_statement(send=send, from_status=from_status, to_status=to_status))
    data = send_event_data(send)
    events = []
    for event_type in _transition_events(from_status, to_status):
        statement, event = event_statement(org_id=send.org_id, type=event_type, send=send, data=data)
        batch.add(*statement)
        events.append((len(batch.statements) - 1, event))
    # The caller's last statements: COMMIT in the same round trip where that is safe (sendora_sms/db.py).
    counts = batch.run_and_commit() if last else batch.run()
    if counts[0] != 1:  # pragma: no cover — the row is locked FOR UPDATE since it was read
        raise RuntimeError(f"send {send.pk} changed under its row lock")
    for index, event in events:
        if batch.results[index]:  # inserted (ON CONFLICT DO NOTHING: at most once per send and type)
            event_inserted(event)
    return send


def send_apply_status(*, org, update: StatusUpdate, source: str = "callback", send_id=None,
                      recipient: str = "") -> Send | None:
    """Apply a provider status report to the org's send with that provider message id.

    `send_id` (our id, carried in the status-callback URL) finds a send whose provider id is not stored yet
    — a callback that overtook the worker — and records the provider id with the report. Returns None for an
    unknown message (not this org's); otherwise the send, changed or not (a stale or unmapped status changes
    nothing). A report flagged `recipient_opted_out` (Twilio 21610) also suppresses the recipient, in the
    same transaction — for an unknown message too, the signed `recipient` (the callback's `To`).
    """
    from sms.providers import send_providers_for_status

    if not update.provider_message_id:
        return None
    providers = send_providers_for_status(update.provider)
    recipient = recipient or update.recipient
    if statements.enabled() and update.status in _ONE_STATEMENT and not update.recipient_opted_out and not update.price:
        applied = _apply_in_one_statement(org=org, update=update, providers=providers, source=source, send_id=send_id)
        if applied is not None:
            return applied
        # No send has this provider id (yet): the report may have overtaken the worker (below), or is not ours.
    with transaction.atomic(durable=True):
        locked = None
        if statements.enabled():  # the whole row, locked: send_transition needs not read it again
            send = locked = statements.send_locked_by_provider_id(org.pk, providers, update.provider_message_id)
        else:
            send = (Send.objects.filter(org=org, provider__in=providers,
                                        provider_message_id=update.provider_message_id)
                    .only("id", "org_id", "to", "status").first())
        if send is None and send_id is not None:
            # Overtaken: the worker has not stored the provider id yet. Claim it for this report (CAS on the
            # empty id, so a later store by the worker — the same id — changes nothing). Only a send handed
            # to this very provider (Send.provider is set before each provider call).
            if Send.objects.filter(org=org, pk=send_id, provider__in=providers, provider_message_id="").update(
                    provider_message_id=update.provider_message_id,
                    dispatch_state=Case(When(status=SendStatus.SENDING, then=Value(DispatchState.AWAITING_PROVIDER)),
                                        default=F("dispatch_state"))):
                send = Send.objects.filter(pk=send_id).only("id", "org_id", "to", "status").first()
        if send is None:
            if update.recipient_opted_out and recipient:
                _suppress_opted_out(org=org, phone=recipient, update=update, source=source)
            return None
        changed = None
        if update.status != UNKNOWN and update.status in RANK:
            fields, detail = _report_fields(update), _report_detail(update)
            # Nothing follows the transition in this transaction unless the report also opts out or prices.
            last = locked is not None and not update.recipient_opted_out and not update.price
            changed = send_transition(send_id=send.pk, to_status=update.status, source=source, fields=fields,
                                      detail=detail, locked=locked, last=last)
        else:
            logger.info("send=%s unmapped provider status %r ignored", send.pk, _raw_status(update))
        if update.recipient_opted_out:
            _suppress_opted_out(org=org, phone=send.to, update=update, source=source)
        if update.price:  # the provider's reported price replaces the estimate (adapters fill it)
            from sms.services.cost import send_price_report

            send_price_report(send_id=send.pk, raw_price=update.price, raw_unit=update.price_unit)
            locked = None  # the report changed the row: read it back
        return changed or locked or Send.objects.get(pk=send.pk)


# The reports applied in one statement (sms/services/statements.py status_report_apply): a status past `sending`,
# with nothing else to do in the transaction (no opt-out to suppress, no price to record).
_ONE_STATEMENT = frozenset({SendStatus.SENT, SendStatus.DELIVERED, SendStatus.UNDELIVERED, SendStatus.FAILED})


def _apply_in_one_statement(*, org, update: StatusUpdate, providers, source: str, send_id=None) -> Send | None:
    """send_apply_status for the common report (issue #14, eleventh pass): the row locked, its transition, timeline
    row, counter move and events in ONE statement and one round trip with the COMMIT (PostgreSQL). The same rule and
    the same rows as the two-step path (send_transition); None when the org has no send with this provider id (and,
    given `send_id` — the status-callback URL's, signed — that id: found by its primary key)."""
    to_status = update.status
    # No current dispatch state needed: past `sending` a status decides its own (sms.statuses.dispatch_state_after).
    values, coalesce = _transition_values(None, to_status, _report_fields(update), None, timezone.now())
    with transaction.atomic(durable=True):
        applied = statements.status_report_apply(
            org.pk, providers, update.provider_message_id, values=values, stamped=tuple(coalesce),
            allowed=allowed_from(to_status), source=source, detail=_report_detail(update),
            event_types=_EVENTS[to_status], sent_before=_SENT_BEFORE, commit=True, send_id=send_id)
        if applied is not None:
            events_inserted(applied.event_ids)  # published once committed (sms/services/events.py)
    if applied is None:
        return None
    return applied.changed or Send.objects.get(pk=applied.send_id)  # stale: nothing changed


def _report_fields(update: StatusUpdate) -> dict:
    """The columns a report sets besides its status: a failure's code and message."""
    if update.status in (SendStatus.FAILED, SendStatus.UNDELIVERED):
        return {"error_code": (update.error_code or "")[:16], "error_message": update.error_message or ""}
    return {}


def _report_detail(update: StatusUpdate) -> dict:
    """The timeline row's detail of a report: the provider's own status word, the provider, the error code."""
    detail = {"provider_status": _raw_status(update)}
    if update.provider:
        detail["provider"] = update.provider
    if update.error_code:
        detail["error_code"] = update.error_code
    return detail


def _raw_status(update: StatusUpdate) -> str:
    raw = update.raw or {}
    return raw.get("MessageStatus") or raw.get("status") or update.status


def _suppress_opted_out(*, org, phone: str, update: StatusUpdate, source: str) -> None:
    from audit.services import Actor
    from sms.models import SuppressionReason
    from sms.phones import InvalidPhoneNumber, normalize_phone
    from sms.services.suppressions import suppression_ensure

    try:
        phone = normalize_phone(phone)
    except InvalidPhoneNumber:
        logger.warning("org=%s opt-out report for an unparseable number: nothing to suppress", org.pk)
        return
    suppression_ensure(org=org, phone_number=phone, reason=SuppressionReason.CARRIER_OPT_OUT,
                       source="webhook" if source == "callback" else source,
                       source_message_sid=update.provider_message_id, actor=Actor.provider(update.provider or "twilio"))
