"""System replies for providers without reply-in-response (MessageBird, Sinch).

Twilio takes the STOP confirmation / HELP text as TwiML in the webhook's answer. MessageBird and Sinch
have no such mechanism, so the text goes out through the provider API that received the inbound message,
as a *system message*:

- exactly once per inbound message: the reply's state lives on the InboundMessage row, set in the same
  transaction that stored the inbound (`reply_schedule`), and the task claims it with a compare-and-set
  (pending → sending) before calling the provider. A duplicate webhook delivery never schedules a second
  reply (it only re-enqueues a reply still `pending`, in case the first enqueue was lost; the CAS makes
  that harmless). A transient provider error puts it back to `pending` and retries; an ambiguous one
  (the provider may have it) leaves it `unknown`, never re-sent;
- not a Send: not counted against the org's quota, not listed among the org's sends, no send events;
- never checked against the suppression list: the opt-out's own confirmation goes to the number that
  just opted out (that is the point of it), and HELP is answered to anyone (CTIA). The opt-in
  confirmation is only produced when the number is really no longer suppressed (sms/services/inbound.py).
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from sms.models import InboundMessage, ProviderAccount
from sms.providers import OutboundSms, ProviderAmbiguousError, ProviderError, ProviderTransientError, provider_for

logger = logging.getLogger("sms.replies")

PENDING, SENDING, SENT, FAILED, UNKNOWN = "pending", "sending", "sent", "failed", "unknown"
MAX_REPLY_ATTEMPTS = 5


def reply_schedule(*, org_id, provider: str, message_sid: str, text: str, first: bool) -> None:
    """Inside the inbound's transaction: mark its reply pending (first delivery) and enqueue the task after
    commit. For a duplicate delivery, only a reply still pending is enqueued again."""
    rows = InboundMessage.objects.filter(org_id=org_id, provider=provider, message_sid=message_sid)
    if first:
        rows.filter(reply_state="").update(reply_text=text, reply_state=PENDING)
    inbound_id = rows.filter(reply_state=PENDING).values_list("pk", flat=True).first()
    if inbound_id is not None:
        transaction.on_commit(lambda: _publish(inbound_id), robust=True)


def _publish(inbound_id) -> None:
    from sms.tasks import inbound_reply_task

    inbound_reply_task.delay(str(inbound_id))


def inbound_reply_send(*, inbound_id) -> str:
    """Send one pending reply through the provider that received the inbound message. Returns its state;
    RETRY (`pending`) means the task should try again later."""
    with transaction.atomic(durable=True):
        claimed = InboundMessage.objects.filter(pk=inbound_id, reply_state=PENDING).update(reply_state=SENDING)
    if not claimed:
        return "skipped"
    inbound = InboundMessage.objects.select_related("org").get(pk=inbound_id)
    account = ProviderAccount.objects.filter(org_id=inbound.org_id, provider=inbound.provider).first()
    if account is None:
        InboundMessage.objects.filter(pk=inbound_id).update(reply_state=FAILED)
        logger.warning("inbound=%s reply not sent: the %s account is gone", inbound_id, inbound.provider)
        return FAILED
    provider = provider_for(account, "prod")
    message = OutboundSms(send_id=f"reply-{inbound.pk}", to=inbound.from_number,
                          from_number=inbound.to_number or account.from_number, body=inbound.reply_text)
    try:
        outcome = provider.send(message)
    except ProviderTransientError:
        InboundMessage.objects.filter(pk=inbound_id, reply_state=SENDING).update(reply_state=PENDING)
        return PENDING
    except ProviderAmbiguousError:
        InboundMessage.objects.filter(pk=inbound_id, reply_state=SENDING).update(reply_state=UNKNOWN)
        logger.warning("inbound=%s reply outcome unknown (ambiguous provider answer); not re-sent", inbound_id)
        return UNKNOWN
    except ProviderError as exc:
        InboundMessage.objects.filter(pk=inbound_id, reply_state=SENDING).update(reply_state=FAILED)
        logger.warning("inbound=%s reply refused by %s: %s", inbound_id, provider.name, exc.code)
        return FAILED
    InboundMessage.objects.filter(pk=inbound_id, reply_state=SENDING).update(
        reply_state=SENT, reply_provider_message_id=outcome.provider_message_id[:64])
    logger.info("inbound=%s reply sent through %s at %s", inbound_id, provider.name, timezone.now().isoformat())
    return SENT
