"""Twilio webhooks: inbound messages and status callbacks, one URL pair per org.

The order is fixed (CONVENTIONS §6): resolve the org (404) → verify X-Twilio-Signature with that org's
auth token over the public URL and every POST parameter (403, nothing stored) → check AccountSid is the
org's (403) → parse into a neutral dataclass → one service call → TwiML / empty reply.

Plain Django views (not DRF): no API-key auth, no content negotiation, and `request.POST` is exactly
what Twilio signed. CSRF-exempt and POST-only.
"""
from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpResponse, QueryDict
from django.http.request import HttpHeaders
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from orgs import key_cache
from orgs.models import Org
from sendora_sms.api.exception_handler import json_error
from sendora_sms.api.inputs import parse_uuid
from sms.models import ProviderAccount
from sms.providers import webhook_provider_for
from sms.services.inbound import inbound_handle
from sms.services.status import send_apply_status

logger = logging.getLogger("sms.webhooks")

TWIML_CONTENT_TYPE = "text/xml; charset=utf-8"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'


def twiml(text: str | None = None) -> HttpResponse:
    """`<Response/>` (silent) or `<Response><Message>text</Message></Response>`, XML-escaped."""
    body = f"<Response><Message>{escape(text)}</Message></Response>" if text else "<Response/>"
    return HttpResponse(_XML_DECL + body, content_type=TWIML_CONTENT_TYPE)


def public_url(request) -> str:
    """The URL Twilio called: SMS_PUBLIC_BASE_URL + path (proxy-proof) when set, else the request's own."""
    base = settings.SMS_PUBLIC_BASE_URL
    return base + request.get_full_path() if base else request.build_absolute_uri()


class MetaHeaders:
    """`request.headers.get(name)` read straight from the WSGI environ: `request.headers` first copies every header
    into a case-insensitive dict (~9 µs; a status callback needs one header: issue #14)."""

    def __init__(self, meta):
        self._meta = meta

    def get(self, name: str, default=None):
        return self._meta.get(HttpHeaders.to_wsgi_name(name), default)


def storable_form(post: QueryDict) -> QueryDict:
    """The signed form fields, made safe to store. A provider retries a webhook that fails, so hostile or
    broken input must never become a 500 here: U+0000 (PostgreSQL text cannot hold it) becomes U+FFFD, as
    Django already does for bytes that are not UTF-8 (docs/compliance.md, "What a webhook stores").
    Done after the signature check, which covers the fields exactly as sent."""
    if not any("\x00" in key or "\x00" in value for key, values in post.lists() for value in values):
        return post
    clean = QueryDict(mutable=True)
    for key, values in post.lists():
        clean.setlist(key.replace("\x00", "\ufffd"), [value.replace("\x00", "\ufffd") for value in values])
    return clean


def webhook_account_and_provider(org_uuid, provider_name: str):
    """The org's account of `provider_name` (with its org) and webhook adapter (its decrypted secrets), or None —
    through the process's short-lived resolution cache (orgs/key_cache.py, issue #14: a credential
    change or removal is honoured within API_KEY_CACHE_SECONDS, at once in the process that made it).
    Raises what the adapter raises when the stored secrets cannot be used."""
    def load():
        account = (ProviderAccount.objects.select_related("org")
                   .filter(org_id=org_uuid, provider=provider_name).first())
        return None if account is None else (account, webhook_provider_for(account))

    return key_cache.resolve(f"webhook:{provider_name}:{org_uuid}", load)


@method_decorator(csrf_exempt, name="dispatch")
class _TwilioWebhook(View):
    http_method_names = ["post"]

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = json_error(405, "method_not_allowed", "Twilio webhooks accept POST only.")
        response["Allow"] = "POST"
        return response

    def post(self, request, org_id):
        org_uuid = parse_uuid(org_id)
        found = webhook_account_and_provider(org_uuid, "twilio") if org_uuid else None
        if found is None:  # unknown org, malformed id, or no provider configured: same answer
            return json_error(404, "org_not_found", "No such organisation.")
        account, provider = found
        if not provider.verify_webhook(url=public_url(request), params=request.POST, headers=MetaHeaders(request.META)):
            logger.warning("org=%s %s: invalid or missing X-Twilio-Signature", account.org_id, self.kind)
            return json_error(403, "invalid_signature", "The X-Twilio-Signature header is missing or wrong.")
        if not provider.account_matches(request.POST):
            logger.warning("org=%s %s: AccountSid does not match the org's account", account.org_id, self.kind)
            return json_error(403, "account_mismatch", "AccountSid is not this organisation's Twilio account.")
        return self.handle(request, params=storable_form(request.POST), org=account.org, provider=provider)

    kind = ""

    def handle(self, request, *, params, org: Org, provider) -> HttpResponse:  # pragma: no cover — abstract
        raise NotImplementedError


class TwilioInboundWebhook(_TwilioWebhook):
    kind = "inbound"

    def handle(self, request, *, params, org, provider):
        message = provider.parse_inbound(params)
        if not message.message_id:
            return json_error(400, "validation_error", "MessageSid is required.")
        reply = inbound_handle(org=org, message=message)
        return twiml(reply.text)


class TwilioStatusWebhook(_TwilioWebhook):
    kind = "status"

    def handle(self, request, *, params, org, provider):
        update = provider.parse_status(params)
        # send_id: our id from the StatusCallback URL (signed with it); the To: for a 21610 on an unknown message.
        send = send_apply_status(org=org, update=update, source="callback",
                                 send_id=parse_uuid(request.GET.get("send_id", "")), recipient=params.get("To", ""))
        if send is None:
            logger.info("org=%s status callback for unknown MessageSid %r (status %r) ignored", org.pk,
                        update.provider_message_id, update.raw.get("MessageStatus"))
        return HttpResponse(status=204)
