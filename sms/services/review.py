"""Operator resolution of parked sends.

A send is parked (status `sending`, no provider id, review_reason "parked: …") when the provider's
answer to an attempt was lost and reconciliation did not find the message before the deadline. Only
a person who has checked the provider's logs can decide what happened, so two resolutions exist:

- `failed`  — the message was not sent: the send fails (error_code `operator`), its quota unit is
              refunded and `sms.failed` is emitted;
- `resend`  — the message was not sent and should go now: the send is marked retrying and the
              retry of its current attempt is enqueued (the usual CAS claim, so at most one call).

Anything not parked is refused, so a resolution can never race a send the system still owns.
"""
from __future__ import annotations

from django.db import transaction

from audit.services import Actor, RequestContext, audit_record
from sendora_sms.errors import Conflict, ValidationFailed
from sms.models import Send
from sms.services.dispatch import send_fail_unsent, send_mark_retrying
from sms.services.enqueue import dispatch_enqueue
from sms.statuses import DispatchState, SendStatus

RESOLUTIONS = ("failed", "resend")


class SendNotParked(Conflict):
    code = "send_not_parked"
    message = "Only a send parked for review can be resolved by an operator."


def send_resolve_parked(*, send: Send, resolution: str, actor: Actor, context: RequestContext | None = None) -> Send:
    if resolution not in RESOLUTIONS:
        raise ValidationFailed("resolution must be 'failed' or 'resend'.", code="invalid_resolution")
    send = Send.objects.select_related("org").get(pk=send.pk)
    if not (send.status == SendStatus.SENDING and not send.provider_message_id
            and send.dispatch_state == DispatchState.PARKED):
        raise SendNotParked(details={"send_id": str(send.pk), "status": send.status})
    if resolution == "failed":
        done = send_fail_unsent(send, code="operator", source="operator",
                     message="Marked failed by an operator after review: the provider did not send it.")
    else:
        done = send_mark_retrying(send, code="operator_resend", source="operator")
        if done:
            dispatch_enqueue(send_id=send.pk, attempt=send.attempts)
    if not done:
        raise SendNotParked(details={"send_id": str(send.pk)})
    audit_record(org=send.org, actor=actor, action=f"send.review_{resolution}", resource_type="send",
                 resource_id=send.pk, context=context)
    send.refresh_from_db()
    return send
