"""OpenAPI helpers: the error shape and the list envelope, for @extend_schema on every view."""
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    400: "Bad input: `validation_error`, `invalid_json`, `invalid_phone_number`, `invalid_body`, `invalid_category`, "
         "`invalid_metadata`, `invalid_filter`, `invalid_cursor`, `invalid_limit`, `invalid_query` (NUL in the query string).",
    401: "`unauthenticated`: missing, unknown or revoked API key.",
    403: "`secret_key_required` (publishable key), `admin_required` (member key), `plan_upgrade_required` (free plan).",
    404: "`org_not_found` (the path's org is not the key's) or `not_found`.",
    409: "`idempotency_key_reused`, `already_suppressed`.",
    412: "`provider_not_configured`: the org has no provider credentials yet.",
    413: "`payload_too_large`.",
    429: "`rate_limited` (with `Retry-After`) or `quota_exceeded`.",
    503: "`service_unavailable`: a dependency is down; retry.",
}

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)


def error_responses(*statuses: int, **descriptions: str) -> dict:
    """{status: OpenApiResponse(Error)} for each status; descriptions override by 'e404=' keyword."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=descriptions.get(f"e{status}", ERROR_DESCRIPTIONS[status]))
        for status in statuses
    }


def list_response(item_serializer) -> OpenApiResponse:
    name = getattr(item_serializer, "__name__", item_serializer.__class__.__name__).replace("Output", "") + "List"
    return OpenApiResponse(inline_serializer(name=name, fields={
        "data": item_serializer(many=True),
        "next_cursor": serializers.CharField(allow_null=True),
    }))


# --- Provider webhooks -------------------------------------------------------------------------------
# The Twilio webhooks are plain Django views (request.POST must be exactly what Twilio signed), which
# drf-spectacular cannot introspect; this postprocessing hook documents them so /api/schema lists
# every /api/v1 path (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]).

def _form(properties: dict, required: list[str]) -> dict:
    return {"content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {name: {"type": "string", "description": text}
                                         for name, text in properties.items()},
        "required": required, "additionalProperties": {"type": "string"}}}}, "required": True}


def _webhook_errors() -> dict:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "400": {"description": "`validation_error`: a signed request without `MessageSid` (inbound), or a field "
                               "carrying a NUL character.", **ref},
        "403": {"description": "`invalid_signature` (missing or wrong `X-Twilio-Signature`) or `account_mismatch`.",
                **ref},
        "404": {"description": "`org_not_found`: unknown org, or the org has no Twilio credentials.", **ref},
    }


_SIGNATURE = {"name": "X-Twilio-Signature", "in": "header", "required": True, "schema": {"type": "string"},
              "description": "HMAC-SHA1 of the public URL (SMS_PUBLIC_BASE_URL + path) and the POST parameters, "
                             "keyed with the org's auth token."}
_ORG = {"name": "org_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}

WEBHOOK_PATHS = {
    "/api/v1/sms/webhooks/twilio/{org_id}": {"post": {
        "operationId": "twilio_inbound_webhook", "tags": ["webhooks"], "security": [],
        "summary": "Twilio inbound message webhook",
        "description": "Configure as the number's \"A message comes in\" URL. STOP-family keywords add a "
                       "suppression (`sms.opted_out`), START/UNSTOP/YES remove it (`sms.opted_in`), HELP/INFO "
                       "reply with the org's help text, anything else is stored (`sms.replied`). The same "
                       "`MessageSid` is processed once.",
        "parameters": [_ORG, _SIGNATURE],
        "requestBody": _form({"MessageSid": "SM… id", "AccountSid": "must be the org's account", "From": "sender",
                              "To": "the org's number", "Body": "message text"}, ["MessageSid", "AccountSid"]),
        "responses": {"200": {"description": "TwiML: `<Response/>` or `<Response><Message>…</Message></Response>`.",
                              "content": {"text/xml": {"schema": {"type": "string"}}}},
                      **_webhook_errors()},
    }},
    "/api/v1/sms/webhooks/twilio/{org_id}/status": {"post": {
        "operationId": "twilio_status_webhook", "tags": ["webhooks"], "security": [],
        "summary": "Twilio status callback",
        "description": "Set as StatusCallback on every send. Maps `MessageStatus` onto the send (never backwards) "
                       "and emits `sms.sent` / `sms.delivered` / `sms.failed` once each; `ErrorCode` 21610 also "
                       "suppresses the recipient.",
        "parameters": [_ORG, _SIGNATURE],
        "requestBody": _form({"MessageSid": "the send's provider_message_id", "AccountSid": "must be the org's",
                              "MessageStatus": "queued, sent, delivered, undelivered, failed…",
                              "ErrorCode": "Twilio error code, when failed"}, ["MessageSid", "MessageStatus"]),
        "responses": {"204": {"description": "Applied (or ignored: unknown MessageSid, stale status)."},
                      **_webhook_errors()},
    }},
}


def _provider_hook(provider: str, kind: str, header: dict, body: dict, summary: str, description: str,
                   methods=("post",)) -> dict:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation = {
        "tags": ["webhooks"], "security": [], "summary": summary, "description": description,
        "parameters": [_ORG, header],
        "responses": {"200": {"description": "Accepted (duplicates included: processed once)."},
                      "400": {"description": "`validation_error`: a signed inbound message without an id.", **ref},
                      "403": {"description": "`invalid_signature`: missing or wrong signature (nothing stored).", **ref},
                      "404": {"description": f"`org_not_found`: unknown org, or no {provider} account.", **ref}},
    }
    item = {}
    for method in methods:
        op = {**operation, "operationId": f"{provider}_{kind}_webhook" + ("" if method == "post" else f"_{method}")}
        if method == "post":
            op["requestBody"] = body
        item[method] = op
    return item


_MB_JWT = {"name": "MessageBird-Signature-JWT", "in": "header", "required": True, "schema": {"type": "string"},
           "description": "HS256 JWT keyed with the account's signing key: iss, nbf, exp, url_hash (SHA-256 of the URL "
                          "as called), payload_hash (SHA-256 of the raw body)."}
_SINCH_HMAC = {"name": "x-sinch-webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
               "description": "base64 HMAC-SHA256 of `raw_body.nonce.timestamp` keyed with the callback secret; "
                              "with x-sinch-webhook-signature-nonce and -timestamp (within 300 s)."}
_JSON_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}

WEBHOOK_PATHS.update({
    "/api/v1/sms/webhooks/messagebird/{org_id}": _provider_hook(
        "messagebird", "inbound", _MB_JWT,
        _form({"id": "message id (duplicates processed once)", "originator": "sender MSISDN (no +)",
               "recipient": "the org's number", "body": "message text", "createdDatetime": "RFC 3339"}, ["id"]),
        "MessageBird inbound message", "Keywords as for Twilio; replies go out through the MessageBird API."),
    "/api/v1/sms/webhooks/messagebird/{org_id}/status": _provider_hook(
        "messagebird", "status", _MB_JWT,
        _form({"id": "MessageBird message id", "reference": "our send id", "recipient": "MSISDN",
               "status": "sent, buffered, delivered, delivery_failed, expired", "statusReason": "text",
               "statusErrorCode": "code"}, ["id", "status"]),
        "MessageBird status report", "The reportUrl of every send (POST form or GET query).", methods=("post", "get")),
    "/api/v1/sms/webhooks/sinch/{org_id}": _provider_hook(
        "sinch", "inbound", _SINCH_HMAC, _JSON_BODY, "Sinch inbound message (mo_text)",
        "Keywords as for Twilio; replies go out through the Sinch API."),
    "/api/v1/sms/webhooks/sinch/{org_id}/status": _provider_hook(
        "sinch", "status", _SINCH_HMAC, _JSON_BODY, "Sinch delivery report (recipient_delivery_report_sms)",
        "The callback_url of every batch; Dispatched/Delivered/Failed/Expired… mapped onto the send."),
})


def document_webhooks(result, generator, request, public):
    """drf-spectacular postprocessing hook: add the Twilio webhook paths (unless already documented)."""
    for path, item in WEBHOOK_PATHS.items():
        result.setdefault("paths", {}).setdefault(path, item)
    return result
