"""Webhooks of the providers without reply-in-response (MessageBird, Sinch): one view, the adapter decides
nothing but speaks its provider's signature scheme and payload.

Order (CONVENTIONS §6, as for Twilio): resolve the org's account of that provider (404) → verify the
provider's signature over the URL exactly as called and the raw body (403, nothing stored) → parse into a
neutral InboundSms / StatusUpdate → one service call → 200 (duplicates included: providers retry non-2xx).
Keyword replies go out through the provider API (sms/services/replies.py), never in the answer.
"""
from __future__ import annotations

import json
import logging

from django.http import HttpResponse, QueryDict
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from sendora_sms.api.exception_handler import json_error
from sendora_sms.api.inputs import parse_uuid
from sms.providers import REGISTRY, WebhookRequest, adapter_class
from sms.services.inbound import inbound_handle
from sms.services.status import send_apply_status
from sms.webhooks.twilio import public_url, storable_form, webhook_account_and_provider

logger = logging.getLogger("sms.webhooks")


def _json(body: bytes) -> dict | None:
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _clean_json(value):
    """U+0000 cannot be stored in PostgreSQL text/jsonb: replaced by U+FFFD after the signature check."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_clean_json(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


@method_decorator(csrf_exempt, name="dispatch")
class ProviderWebhook(View):
    provider_name = ""
    kind = ""  # inbound | status
    http_method_names = ["post"]

    def http_method_not_allowed(self, request, *args, **kwargs):
        allowed = ", ".join(m.upper() for m in self.http_method_names)
        response = json_error(405, "method_not_allowed", f"This webhook accepts {allowed} only.")
        response["Allow"] = allowed
        return response

    def post(self, request, org_id):
        return self._handle(request, org_id)

    def get(self, request, org_id):  # served only where the adapter lists GET (webhook_methods)
        return self._handle(request, org_id)

    def _handle(self, request, org_id):
        org_uuid = parse_uuid(org_id)
        try:
            found = webhook_account_and_provider(org_uuid, self.provider_name) if org_uuid else None
        except Exception:  # noqa: BLE001 — secrets not decryptable: nothing can be verified
            logger.exception("org=%s %s webhook: the account's secrets cannot be used", org_uuid, self.provider_name)
            return json_error(403, "invalid_signature", "The webhook signature cannot be verified.")
        if found is None:  # unknown org, malformed id, or this provider not configured: same answer
            return json_error(404, "org_not_found", "No such organisation.")
        account, provider = found
        body = request.body
        content_type = (request.content_type or "").lower()
        params = request.GET.copy()
        if request.method == "POST" and content_type == "application/x-www-form-urlencoded":
            for key, values in request.POST.lists():
                params.setlist(key, values)
        data = _json(body) if content_type == "application/json" or body[:1] == b"{" else None
        wreq = WebhookRequest(url=public_url(request), method=request.method, headers=request.headers, body=body,
                              params=params, json=data)
        if not provider.verify_request(wreq):
            logger.warning("org=%s %s %s: invalid or missing signature", account.org_id, self.provider_name, self.kind)
            return json_error(403, "invalid_signature", "The webhook signature is missing or wrong.")
        wreq = WebhookRequest(url=wreq.url, method=wreq.method, headers=wreq.headers, body=body,
                              params=storable_form(params) if isinstance(params, QueryDict) else params,
                              json=_clean_json(data) if data is not None else None)
        if self.kind == "inbound":
            return self.inbound(wreq, org=account.org, provider=provider)
        return self.status(wreq, org=account.org, provider=provider)

    def inbound(self, wreq, *, org, provider) -> HttpResponse:
        message = provider.parse_inbound_request(wreq)
        if not message.message_id:
            if wreq.json is not None and wreq.json.get("type") not in (None, "mo_text"):
                return HttpResponse(status=200)  # another inbound type (binary, media): accepted, not handled
            return json_error(400, "validation_error", "The inbound message has no id.")
        inbound_handle(org=org, message=message, provider=provider.name,
                       reply_via_api=not provider.replies_in_response)
        return HttpResponse(status=200)

    def status(self, wreq, *, org, provider) -> HttpResponse:
        update = provider.parse_status_request(wreq)
        if update is None:
            return HttpResponse(status=200)
        send = send_apply_status(org=org, update=update, source="callback", send_id=parse_uuid(update.send_id),
                                 recipient=update.recipient)
        if send is None:
            logger.info("org=%s %s status report for unknown message %r ignored", org.pk, provider.name,
                        update.provider_message_id)
        return HttpResponse(status=200)


def provider_webhook_urls(path) -> list:
    """The inbound and status routes of every registered provider but Twilio (TwiML: sms/webhooks/twilio.py),
    built from the registry: a new provider gets its webhooks from its REGISTRY line."""
    urls = []
    for name in REGISTRY:
        if name == "twilio":
            continue
        methods = adapter_class(name).webhook_methods
        for kind, suffix in (("inbound", ""), ("status", "/status")):
            view = ProviderWebhook.as_view(provider_name=name, kind=kind, http_method_names=list(methods[kind]))
            urls.append(path(f"{name}/<str:org_id>{suffix}", view, name=f"{name}-{kind}"))
    return urls
