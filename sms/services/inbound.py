"""Inbound SMS: STOP / START / HELP keywords and replies, processed exactly once per MessageSid.

`inbound_handle` is the one service the inbound webhook calls. In one durable transaction it:
  1. inserts the InboundMessage first, in a savepoint — the unique (org, message_sid) constraint decides
     whether this delivery is new. A duplicate (Twilio retry, concurrent double delivery) raises
     IntegrityError inside the savepoint and is answered with the same reply, with no side effects.
     No read-then-write: two concurrent deliveries cannot both pass.
  2. applies the keyword (sms.compliance.classify_keyword on the whole message):
     - opt-out → suppression (reason stop_keyword, source webhook) + event sms.opted_out; the reply is
       the org's confirmation text when `opt_out_confirmation_enabled`;
     - opt-in → lifts the suppression only when the recipient created it (LIFTED_BY_START); a manual or
       imported suppression stays (docs/compliance.md). Event sms.opted_in. When confirmations are on,
       the re-subscription text is sent only if the number is really no longer suppressed;
     - help → the org's help text, to anyone, suppressed or not (CTIA: HELP is always answered);
     - anything else → linked to the latest send to that number, event sms.replied with
       `possible_opt_out` (sms.compliance.looks_like_opt_out) for a human/subscriber to act on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from audit.services import Actor
from sms.compliance import Keyword, classify_keyword, default_help_text, default_opt_in_text, default_opt_out_text
from sms.compliance import looks_like_opt_out
from sms.models import EventType, InboundMessage, Send, Suppression, SuppressionReason
from sms.phones import InvalidPhoneNumber, normalize_phone
from sms.providers.base import InboundSms
from sms.services.events import event_record
from sms.services.suppressions import suppression_ensure, suppression_lift

logger = logging.getLogger("sms.inbound")

INBOUND_BODY_MAX_CHARS = 1600  # the longest concatenated SMS (10 segments); the API contract (README.md, /api/schema) "Send" body limit too


@dataclass(frozen=True)
class Reply:
    """What to answer the provider: `text` for one reply message, None to stay silent."""

    text: str | None
    keyword: str = ""
    duplicate: bool = False
    inbound: InboundMessage | None = None


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def inbound_event_data(inbound: InboundMessage) -> dict:
    return {
        "id": str(inbound.id), "org_id": str(inbound.org_id), "provider": inbound.provider,
        "message_sid": inbound.message_sid, "from": inbound.from_number, "to": inbound.to_number,
        "body": inbound.body, "keyword": inbound.keyword, "possible_opt_out": inbound.possible_opt_out,
        "send_id": str(inbound.send_id) if inbound.send_id else None, "created_at": _iso(inbound.created_at),
    }


def _help_text(org) -> str:
    return (org.help_text or "").strip() or default_help_text(org.name)


def _opt_out_text(org) -> str | None:
    if not org.opt_out_confirmation_enabled:
        return None
    return (org.opt_out_text or "").strip() or default_opt_out_text(org.name)


def _opt_in_text(org, *, still_suppressed: bool) -> str | None:
    if not org.opt_out_confirmation_enabled or still_suppressed:
        return None
    return default_opt_in_text(org.name)


def _reply_for_duplicate(*, org, keyword: str, phone: str, phone_ok: bool) -> str | None:
    """The reply the first delivery got, recomputed from the (unchanged) org settings and state."""
    if keyword == Keyword.OPT_OUT.value and not phone_ok:
        return None
    if keyword == Keyword.OPT_OUT.value:
        return _opt_out_text(org)
    if keyword == Keyword.HELP.value:
        return _help_text(org)
    if keyword == Keyword.OPT_IN.value:
        return _opt_in_text(org, still_suppressed=Suppression.objects.filter(org=org, phone_number=phone).exists())
    return None


def inbound_handle(*, org, message: InboundSms, provider: str = "twilio", reply_via_api: bool = False) -> Reply:
    """Store and act on one inbound message; see the module docstring. Returns the reply to render."""
    try:
        phone = normalize_phone(message.from_number)
    except InvalidPhoneNumber:
        phone = (message.from_number or "")[:20]  # short codes / alphanumeric senders: stored as given
        phone_ok = False
    else:
        phone_ok = True
    body = message.body or ""
    truncated_from = len(body) if len(body) > INBOUND_BODY_MAX_CHARS else None
    if truncated_from:
        # No SMS is longer than 1,600 characters (Twilio concatenates at most 10 segments of 160): a longer
        # Body is not a real message. Keep what a handset could have sent, and say so (event data, log).
        body = body[:INBOUND_BODY_MAX_CHARS]
        logger.warning("org=%s inbound %s: Body of %d characters truncated to %d", org.pk, message.message_id,
                       truncated_from, INBOUND_BODY_MAX_CHARS)
    kind = classify_keyword(body)
    keyword = kind.value if kind else ""
    possible_opt_out = kind is None and looks_like_opt_out(body)
    actor = Actor.provider(provider)

    with transaction.atomic(durable=True):
        reply = _handle_in_transaction(org=org, message=message, provider=provider, phone=phone, phone_ok=phone_ok,
                                       body=body, keyword=keyword, kind=kind, possible_opt_out=possible_opt_out,
                                       truncated_from=truncated_from, actor=actor)
        if reply_via_api and reply.text:
            # No reply-in-response (MessageBird, Sinch): the text goes out as a system message through the
            # provider API, once per inbound message — the state is stored with the inbound row, in this
            # transaction, and the task is enqueued after commit (sms/services/replies.py).
            from sms.services.replies import reply_schedule

            reply_schedule(org_id=org.pk, provider=provider, message_sid=message.message_id[:64],
                           text=reply.text, first=not reply.duplicate)
    return reply


def _handle_in_transaction(*, org, message: InboundSms, provider: str, phone: str, phone_ok: bool, body: str,
                           keyword: str, kind, possible_opt_out: bool, truncated_from, actor) -> Reply:
    latest_send_id = (Send.objects.filter(org=org, to=phone).order_by("-created_at")
                      .values_list("id", flat=True).first()) if phone_ok else None
    try:
        with transaction.atomic():
            inbound = InboundMessage.objects.create(
                org=org, provider=provider, message_sid=message.message_id[:64], from_number=phone,
                to_number=(message.to_number or "")[:20], body=body, keyword=keyword,
                possible_opt_out=possible_opt_out, send_id=latest_send_id,
            )
    except IntegrityError:
        logger.info("org=%s inbound %s already processed; replying without side effects", org.pk,
                    message.message_id)
        return Reply(text=_reply_for_duplicate(org=org, keyword=keyword, phone=phone, phone_ok=phone_ok), keyword=keyword,
                     duplicate=True)

    data = inbound_event_data(inbound)
    if truncated_from:
        data["body_truncated_from"] = truncated_from
    if kind is Keyword.OPT_OUT:
        if not phone_ok:
            # A sender that is not a phone number (short code, alphanumeric id) cannot be suppressed,
            # so the reply must not claim an opt-out: no confirmation, no sms.opted_out.
            logger.warning("org=%s opt-out from unparseable sender %r: nothing to suppress", org.pk, phone)
            return Reply(text=None, keyword=keyword, inbound=inbound)
        _, created = suppression_ensure(org=org, phone_number=phone, reason=SuppressionReason.STOP_KEYWORD,
                                        source="webhook", source_message_sid=inbound.message_sid, actor=actor)
        event_record(org_id=org.pk, type=EventType.OPTED_OUT, inbound=inbound,
                     data={**data, "phone_number": phone, "suppression_created": created})
        return Reply(text=_opt_out_text(org), keyword=keyword, inbound=inbound)

    if kind is Keyword.OPT_IN:
        lifted, remaining = (suppression_lift(org=org, phone_number=phone, actor=actor,
                                              source_message_sid=inbound.message_sid)
                             if phone_ok else (False, None))
        event_record(org_id=org.pk, type=EventType.OPTED_IN, inbound=inbound, data={
            **data, "phone_number": phone, "suppression_lifted": lifted,
            "still_suppressed_reason": remaining.reason if remaining is not None and not lifted else None})
        return Reply(text=_opt_in_text(org, still_suppressed=remaining is not None and not lifted),
                     keyword=keyword, inbound=inbound)

    if kind is Keyword.HELP:
        return Reply(text=_help_text(org), keyword=keyword, inbound=inbound)

    event_record(org_id=org.pk, type=EventType.REPLIED, inbound=inbound, data=data)
    return Reply(text=None, keyword=keyword, inbound=inbound)
