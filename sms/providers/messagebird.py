"""MessageBird adapter (legacy REST API, rest.messagebird.com), plain HTTP with `requests`.

Why not the official `messagebird` SDK (2.2.0): its HTTP client calls `requests` without a timeout
(a hung provider would hold a worker forever, and a read timeout is exactly what tells an ambiguous
outcome from a transient one), exposes no response headers (Retry-After) and no connection pool. The
REST calls are three small JSON requests, so they are written out here; the webhook signature
(`MessageBird-Signature-JWT`) is verified with PyJWT, which is what the SDK's validator uses too.

Translation only:
- send: `POST {MESSAGEBIRD_API_BASE_URL}/messages`, `Authorization: AccessKey <key>`, JSON
  `{originator, recipients: [msisdn], body, reference: <send id>, reportUrl}` → 201 message JSON.
- status: `GET /messages/{id}`; reconciliation: `GET /messages?recipient=…&limit=…`, matched on our
  `reference` (the send id), so a match is exact.
- delivery reports (form POST or GET query) and inbound messages (form POST), both signed with
  `MessageBird-Signature-JWT` (HS256/384/512 keyed with the *signing key*; claims iss=MessageBird,
  nbf, exp with 1 s leeway, url_hash = sha256 of the URL as called, payload_hash = sha256 of the raw
  body, present exactly when a body is).
"""
import hashlib
import hmac
from datetime import datetime

import jwt
import requests
from django.conf import settings

from sms.providers import http
from sms.providers.base import (
    UNKNOWN,
    InboundSms,
    OutboundSms,
    ProviderAmbiguousError,
    ProviderAuthError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    SendOutcome,
    SmsProvider,
    StatusUpdate,
    WebhookRequest,
)
from sms.statuses import SendStatus

SIGNATURE_HEADER = "MessageBird-Signature-JWT"
JWT_ALGORITHMS = ["HS256", "HS384", "HS512"]

# MessageBird recipient status → ours (README "Providers"; API contract).
STATUS_MAP = {
    "scheduled": SendStatus.QUEUED,
    "sent": SendStatus.SENT,
    "buffered": SendStatus.SENT,
    "delivered": SendStatus.DELIVERED,
    "delivery_failed": SendStatus.FAILED,
    "expired": SendStatus.UNDELIVERED,
}
# MessageBird's status reason for a recipient who opted out (its status-reason list); docs/providers.md.
OPTED_OUT_REASONS = frozenset({"opted out", "opted_out", "recipient opted out"})

# MessageBird API error codes (errors[].code) → class; others fall back on the HTTP status.
AUTH, PERMANENT, TRANSIENT = "auth", "permanent", "transient"
ERROR_MAP = {
    2: AUTH,         # request not allowed (incorrect access_key)
    9: PERMANENT,    # missing or invalid parameters (e.g. recipient, originator)
    10: PERMANENT,   # invalid parameters
    20: PERMANENT,   # not found
    21: PERMANENT,   # bad request
    25: PERMANENT,   # not enough balance
    98: PERMANENT,   # API not found
}


def _msisdn(number: str) -> str:
    """MessageBird takes MSISDNs without '+'."""
    return (number or "").lstrip("+")


def _e164(msisdn: str) -> str:
    msisdn = (msisdn or "").strip()
    return msisdn if not msisdn.isdigit() else "+" + msisdn


def _originator(sender: str) -> str:
    """A number without '+', an alphanumeric sender as is."""
    return _msisdn(sender) if sender.lstrip("+").isdigit() else sender


class MessageBirdProvider(SmsProvider):
    name = "messagebird"
    display_name = "MessageBird"
    secret_fields = ("access_key", "signing_key")
    # A reportUrl is called with POST (form body) or GET (query), per the account's setting.
    webhook_methods = {"inbound": ("post",), "status": ("get", "post")}
    finds_by_reference = True  # reconciliation matches our `reference` (the send id): exact

    def __init__(self, *, access_key: str, signing_key: str = ""):
        self._access_key = access_key
        self._signing_key = signing_key

    def __repr__(self) -> str:  # never show a key
        return "MessageBirdProvider()"

    @classmethod
    def from_account(cls, account) -> "MessageBirdProvider":
        secrets = account.secrets()
        return cls(access_key=secrets.get("access_key", ""), signing_key=secrets.get("signing_key", ""))

    # --- HTTP ------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"AccessKey {self._access_key}", "Accept": "application/json",
                   "User-Agent": "Sendora-SMS"}
        return http.session().request(method, settings.MESSAGEBIRD_API_BASE_URL + path, headers=headers,
                                      timeout=http.timeout(), **kwargs)

    @staticmethod
    def _error(response: requests.Response) -> ProviderError:
        status = response.status_code
        try:
            errors = (response.json() or {}).get("errors") or []
        except ValueError:
            errors = []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code = first.get("code")
        message = str(first.get("description") or f"MessageBird answered {status}")[:300]
        kind = ERROR_MAP.get(code) if isinstance(code, int) else None
        code_text = str(code) if code is not None else str(status)
        if status in http.TRANSIENT_HTTP_STATUSES:  # not processed, whatever the body says
            return ProviderTransientError(message, code=code_text, http_status=status,
                                          retry_after=http.retry_after(response))
        if kind == AUTH or (kind is None and status in (401, 403)):
            return ProviderAuthError(message, code=code_text, http_status=status)
        if kind is None and status >= 500:
            return ProviderAmbiguousError(message, code=code_text, http_status=status)
        return ProviderPermanentError(message, code=code_text, http_status=status)

    @staticmethod
    def _outcome(data: dict) -> SendOutcome:
        items = ((data.get("recipients") or {}).get("items") or [{}])
        item = items[0] if isinstance(items[0], dict) else {}
        raw_status = str(item.get("status") or "").lower()
        return SendOutcome(
            provider_message_id=str(data.get("id") or ""),
            status=STATUS_MAP.get(raw_status, UNKNOWN),
            raw={"id": data.get("id"), "status": raw_status, "reference": data.get("reference"),
                 "to": _e164(str(item.get("recipient") or "")), "body": data.get("body"),
                 "error_code": item.get("statusErrorCode"), "date_created": data.get("createdDatetime"),
                 "date_sent": None, "date_updated": item.get("statusDatetime"),
                 "price": _price(item).get("amount"), "price_unit": _price(item).get("currency")},
        )

    # --- sending ---------------------------------------------------------------------------------
    def _send(self, message: OutboundSms) -> SendOutcome:
        payload = {"originator": _originator(message.from_number), "recipients": [_msisdn(message.to)],
                   "body": message.body, "reference": message.send_id}
        if message.status_callback_url:
            payload["reportUrl"] = message.status_callback_url
        try:
            response = self._request("POST", "/messages", json=payload)
        except requests.RequestException as exc:
            raise http.connection_error(exc, "MessageBird") from exc
        if response.status_code not in (200, 201):
            raise self._error(response)
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderAmbiguousError("MessageBird answered 2xx with an unreadable body", code="bad_response") from exc
        outcome = self._outcome(data if isinstance(data, dict) else {})
        if not outcome.provider_message_id:
            raise ProviderAmbiguousError("MessageBird answered 2xx without a message id", code="bad_response")
        return outcome

    def fetch_status(self, provider_message_id: str) -> SendOutcome | None:
        try:
            response = self._request("GET", f"/messages/{provider_message_id}")
        except requests.RequestException as exc:
            raise http.read_error(http.connection_error(exc, "MessageBird")) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise http.read_error(self._error(response))
        try:
            return self._outcome(response.json())
        except (ValueError, AttributeError) as exc:
            raise ProviderTransientError("unreadable status answer", code="bad_response") from exc

    def find_sent(self, *, to: str, since: datetime, body: str | None = None, reference: str | None = None
                  ) -> list[SendOutcome]:
        """Messages to `to` created since `since`; with `reference`, only the one carrying our send id."""
        try:
            response = self._request("GET", "/messages", params={"recipient": _msisdn(to), "limit": 100})
        except requests.RequestException as exc:
            raise http.read_error(http.connection_error(exc, "MessageBird")) from exc
        if response.status_code != 200:
            raise http.read_error(self._error(response))
        try:
            items = response.json().get("items") or []
        except (ValueError, AttributeError) as exc:
            raise ProviderTransientError("unreadable list answer", code="bad_response") from exc
        outcomes = []
        for item in items:
            if reference is not None and item.get("reference") != reference:
                continue
            if body is not None and item.get("body") != body:
                continue
            outcomes.append(self._outcome(item))
        return outcomes

    def test_connection(self) -> tuple[bool, str]:
        """`GET /balance`: the cheapest authenticated read."""
        try:
            response = self._request("GET", "/balance")
        except requests.Timeout:
            return False, "MessageBird did not answer in time. Try again later."
        except requests.RequestException:
            return False, f"Could not connect to MessageBird at {settings.MESSAGEBIRD_API_BASE_URL}."
        if response.status_code in (401, 403):
            return False, "MessageBird rejected the access key (request not allowed). Check it in the dashboard."
        if response.status_code != 200:
            return False, f"MessageBird answered HTTP {response.status_code}. Try again later."
        try:
            data = response.json()
        except ValueError:
            return False, "MessageBird's answer could not be read."
        amount = data.get("amount")
        kind = data.get("type") or ""
        return True, f"Connected to MessageBird (balance: {amount} {kind}).".replace(" )", ")")

    # --- webhooks --------------------------------------------------------------------------------
    def verify_request(self, request: WebhookRequest) -> bool:
        return verify_signature(token=request.headers.get(SIGNATURE_HEADER, ""), signing_key=self._signing_key,
                                url=request.url, body=request.body)

    def parse_inbound_request(self, request: WebhookRequest) -> InboundSms:
        p = request.params
        return InboundSms(message_id=p.get("id", ""), account_id="", from_number=_e164(p.get("originator", "")),
                          to_number=_e164(p.get("recipient", "")), body=p.get("body", ""), raw=dict(p.items()))

    def parse_status_request(self, request: WebhookRequest) -> StatusUpdate | None:
        p = request.params
        raw_status = (p.get("status") or "").lower()
        reason = (p.get("statusReason") or "").strip()
        error_code = (p.get("statusErrorCode") or "").strip()
        return StatusUpdate(
            provider_message_id=p.get("id", ""), status=STATUS_MAP.get(raw_status, UNKNOWN), error_code=error_code,
            error_message=reason, recipient_opted_out=reason.lower() in OPTED_OUT_REASONS,
            raw={**dict(p.items()), "status": raw_status}, provider=self.name, send_id=p.get("reference", ""),
            recipient=_e164(p.get("recipient", "")),
            price=str(p.get("price[amount]") or ""), price_unit=str(p.get("price[currency]") or ""))


def _price(item: dict) -> dict:
    price = item.get("price")
    return price if isinstance(price, dict) else {}


def verify_signature(*, token: str, signing_key: str, url: str, body: bytes, now: float | None = None) -> bool:
    """`MessageBird-Signature-JWT` over the URL exactly as called and the raw body."""
    if not token or not signing_key:
        return False
    options = {"require": ["iss", "nbf", "exp"], "verify_iat": False}
    try:
        if now is None:
            claims = jwt.decode(token, signing_key, algorithms=JWT_ALGORITHMS, issuer="MessageBird",
                                leeway=1, options=options)
        else:  # tests: the vectors' own clock
            claims = jwt.decode(token, signing_key, algorithms=JWT_ALGORITHMS, issuer="MessageBird",
                                options={**options, "verify_exp": False, "verify_nbf": False})
            if not (claims["nbf"] - 1 <= now <= claims["exp"] + 1):
                return False
    except jwt.InvalidTokenError:
        return False
    url_hash = claims.get("url_hash")
    if not isinstance(url_hash, str) or not hmac.compare_digest(url_hash, hashlib.sha256(url.encode()).hexdigest()):
        return False
    payload_hash = claims.get("payload_hash")
    if body:
        return isinstance(payload_hash, str) and hmac.compare_digest(payload_hash, hashlib.sha256(body).hexdigest())
    return not payload_hash
