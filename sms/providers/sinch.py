"""Sinch adapter (SMS REST API "xms v1", region-aware), plain HTTP with `requests`.

Why not the official `sinch` SDK: the adapter needs a per-call timeout that tells a connect failure
(transient: fail over) from a read timeout (ambiguous: reconcile, never re-send), the response headers
(Retry-After) and one connection pool shared by every tenant; and the SDK's HMAC validator checks no
timestamp window anyway. The calls are small JSON requests, written out here against the wire format.

Translation only:
- send: `POST {base}/xms/v1/{service_plan_id}/batches`, `Authorization: Bearer <API token>`, JSON
  `{from, to: [recipient], body, type: "mt_text", delivery_report: "per_recipient", callback_url,
  client_reference: <send id>}` → 201 batch (`id` = our provider_message_id). `base` is
  SINCH_API_BASE_URL when set, else `https://{region}.sms.api.sinch.com`.
- status: `GET …/batches/{id}/delivery_report?type=full`; reconciliation: `GET …/batches?client_reference=`.
- callbacks (`recipient_delivery_report_sms`, `mo_text`) signed with Sinch's HMAC scheme:
  `x-sinch-webhook-signature` = base64(HMAC-SHA256(secret, raw_body + "." + nonce + "." + timestamp)),
  with `x-sinch-webhook-signature-nonce` and `-timestamp`; a timestamp more than
  SINCH_WEBHOOK_TOLERANCE_SECONDS (300 s) from our clock is refused (the SDKs check no window).
"""
import base64
import hashlib
import hmac
import json
import time
from datetime import datetime

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

REGIONS = ("us", "eu", "au", "br", "ca")
SIGNATURE_HEADER = "x-sinch-webhook-signature"
NONCE_HEADER = "x-sinch-webhook-signature-nonce"
TIMESTAMP_HEADER = "x-sinch-webhook-signature-timestamp"

# Sinch delivery status (case-insensitive) → ours (API contract, "Providers").
STATUS_MAP = {
    "queued": SendStatus.QUEUED,
    "dispatched": SendStatus.SENT,
    "delivered": SendStatus.DELIVERED,
    "failed": SendStatus.FAILED,
    "rejected": SendStatus.FAILED,
    "aborted": SendStatus.FAILED,
    "cancelled": SendStatus.FAILED,
    "deleted": SendStatus.FAILED,
    "expired": SendStatus.UNDELIVERED,
}
# Sinch has no dedicated opt-out code: `Deleted` is what it reports for a subscriber the operator
# removed — an opted-out (or invalid) recipient. Either way further sends are pointless, so the
# recipient is suppressed as a carrier opt-out (which their START lifts). docs/providers.md.
OPTED_OUT_STATUSES = frozenset({"deleted"})


def _msisdn(number: str) -> str:
    return (number or "").lstrip("+")


def _e164(msisdn: str) -> str:
    msisdn = (msisdn or "").strip()
    return "+" + msisdn if msisdn.isdigit() else msisdn


def sign(*, secret: str, body: bytes, nonce: str, timestamp: str) -> str:
    """Sinch's callback signature (also what tests/fakes/sinch_server.py signs with)."""
    data = body + b"." + nonce.encode() + b"." + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), data, hashlib.sha256).digest()).decode()


def verify_signature(*, secret: str, body: bytes, headers, now: float | None = None) -> bool:
    signature = headers.get(SIGNATURE_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not (secret and signature and nonce and timestamp):
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - sent_at) > settings.SINCH_WEBHOOK_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(signature, sign(secret=secret, body=body, nonce=nonce, timestamp=timestamp))


class SinchProvider(SmsProvider):
    name = "sinch"
    display_name = "Sinch"
    secret_fields = ("api_token", "callback_secret")
    finds_by_reference = True

    def __init__(self, *, service_plan_id: str, region: str, api_token: str, callback_secret: str = ""):
        self.service_plan_id = service_plan_id
        self.region = region or "us"
        self._api_token = api_token
        self._callback_secret = callback_secret

    def __repr__(self) -> str:
        return f"SinchProvider(service_plan_id={self.service_plan_id!r}, region={self.region!r})"

    @classmethod
    def from_account(cls, account) -> "SinchProvider":
        secrets = account.secrets()
        return cls(service_plan_id=account.account_sid, region=account.region,
                   api_token=secrets.get("api_token", ""), callback_secret=secrets.get("callback_secret", ""))

    def base_url(self) -> str:
        return settings.SINCH_API_BASE_URL or f"https://{self.region}.sms.api.sinch.com"

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._api_token}", "Accept": "application/json",
                   "User-Agent": "Sendora-SMS"}
        url = f"{self.base_url()}/xms/v1/{self.service_plan_id}{path}"
        return http.session().request(method, url, headers=headers, timeout=http.timeout(), **kwargs)

    @staticmethod
    def _error(response: requests.Response) -> ProviderError:
        status = response.status_code
        try:
            data = response.json() or {}
        except ValueError:
            data = {}
        code = str(data.get("code") or status) if isinstance(data, dict) else str(status)
        message = str((data.get("text") if isinstance(data, dict) else "") or f"Sinch answered {status}")[:300]
        if status in (401, 403):
            return ProviderAuthError(message, code=code, http_status=status)
        if status in http.TRANSIENT_HTTP_STATUSES:
            return ProviderTransientError(message, code=code, http_status=status, retry_after=http.retry_after(response))
        if status >= 500:
            return ProviderAmbiguousError(message, code=code, http_status=status)
        return ProviderPermanentError(message, code=code, http_status=status)

    @staticmethod
    def _outcome(batch: dict, status: str = "") -> SendOutcome:
        to = batch.get("to") or [""]
        return SendOutcome(
            provider_message_id=str(batch.get("id") or ""),
            status=STATUS_MAP.get(status.lower(), UNKNOWN) if status else SendStatus.QUEUED,
            raw={"id": batch.get("id"), "status": status or "queued", "to": _e164(str(to[0])),
                 "body": batch.get("body"), "client_reference": batch.get("client_reference"),
                 "date_created": batch.get("created_at"), "date_sent": None, "date_updated": batch.get("modified_at")},
        )

    def _send(self, message: OutboundSms) -> SendOutcome:
        payload = {"from": _msisdn(message.from_number), "to": [_msisdn(message.to)], "body": message.body,
                   "type": "mt_text", "delivery_report": "per_recipient", "client_reference": message.send_id}
        if message.status_callback_url:
            payload["callback_url"] = message.status_callback_url
        try:
            response = self._request("POST", "/batches", json=payload)
        except requests.RequestException as exc:
            raise http.connection_error(exc, "Sinch") from exc
        if response.status_code not in (200, 201):
            raise self._error(response)
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderAmbiguousError("Sinch answered 2xx with an unreadable body", code="bad_response") from exc
        outcome = self._outcome(data if isinstance(data, dict) else {})
        if not outcome.provider_message_id:
            raise ProviderAmbiguousError("Sinch answered 2xx without a batch id", code="bad_response")
        return outcome

    def fetch_status(self, provider_message_id: str) -> SendOutcome | None:
        try:
            response = self._request("GET", f"/batches/{provider_message_id}/delivery_report",
                                     params={"type": "full"})
        except requests.RequestException as exc:
            raise http.read_error(http.connection_error(exc, "Sinch")) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise http.read_error(self._error(response))
        try:
            data = response.json()
            statuses = data.get("statuses") or []
        except (ValueError, AttributeError) as exc:
            raise ProviderTransientError("unreadable delivery report", code="bad_response") from exc
        status = str(statuses[0].get("status") or "") if statuses else ""
        return self._outcome({"id": provider_message_id, "client_reference": data.get("client_reference")},
                             status=status)

    def find_sent(self, *, to: str, since: datetime, body: str | None = None, reference: str | None = None
                  ) -> list[SendOutcome]:
        params = {"page_size": 100}
        if reference is not None:
            params["client_reference"] = reference
        try:
            response = self._request("GET", "/batches", params=params)
        except requests.RequestException as exc:
            raise http.read_error(http.connection_error(exc, "Sinch")) from exc
        if response.status_code != 200:
            raise http.read_error(self._error(response))
        try:
            batches = response.json().get("batches") or []
        except (ValueError, AttributeError) as exc:
            raise ProviderTransientError("unreadable batch list", code="bad_response") from exc
        outcomes = []
        for batch in batches:
            if reference is not None and batch.get("client_reference") != reference:
                continue
            if _msisdn(to) not in [_msisdn(str(t)) for t in batch.get("to") or []]:
                continue
            if body is not None and batch.get("body") != body:
                continue
            outcomes.append(self._outcome(batch))
        return outcomes

    def test_connection(self) -> tuple[bool, str]:
        """`GET …/batches?page_size=1`: a cheap authenticated read of the service plan."""
        try:
            response = self._request("GET", "/batches", params={"page_size": 1})
        except requests.Timeout:
            return False, "Sinch did not answer in time. Try again later."
        except requests.RequestException:
            return False, f"Could not connect to Sinch at {self.base_url()}."
        if response.status_code in (401, 403):
            return False, "Sinch rejected the API token for this service plan. Check both in the Sinch dashboard."
        if response.status_code == 404:
            return False, f"Sinch has no service plan {self.service_plan_id} in region {self.region}."
        if response.status_code != 200:
            return False, f"Sinch answered HTTP {response.status_code}. Try again later."
        return True, f"Connected to Sinch service plan {self.service_plan_id} (region {self.region})."

    # --- webhooks --------------------------------------------------------------------------------
    def verify_request(self, request: WebhookRequest) -> bool:
        return verify_signature(secret=self._callback_secret, body=request.body, headers=request.headers)

    def parse_inbound_request(self, request: WebhookRequest) -> InboundSms:
        data = request.json or {}
        if data.get("type") != "mo_text":
            return InboundSms(message_id="", account_id="", from_number="", to_number="", body="", raw=data)
        return InboundSms(message_id=str(data.get("id") or ""), account_id="",
                          from_number=_e164(str(data.get("from") or "")), to_number=_e164(str(data.get("to") or "")),
                          body=str(data.get("body") or ""), raw=data)

    def parse_status_request(self, request: WebhookRequest) -> StatusUpdate | None:
        data = request.json or {}
        if data.get("type") != "recipient_delivery_report_sms":
            return None  # batch reports (delivery_report_sms) are not requested; accepted and ignored
        raw_status = str(data.get("status") or "").lower()
        code = str(data.get("code") if data.get("code") is not None else "")
        return StatusUpdate(
            provider_message_id=str(data.get("batch_id") or ""), status=STATUS_MAP.get(raw_status, UNKNOWN),
            error_code=code if raw_status in ("failed", "rejected", "aborted", "cancelled", "deleted", "expired") else "",
            error_message=raw_status.capitalize() if raw_status in STATUS_MAP and STATUS_MAP[raw_status] in (
                SendStatus.FAILED, SendStatus.UNDELIVERED) else "",
            recipient_opted_out=raw_status in OPTED_OUT_STATUSES,
            raw={**data, "status": raw_status}, provider=self.name,
            send_id=str(data.get("client_reference") or ""), recipient=_e164(str(data.get("recipient") or "")))


def parse_json(body: bytes) -> dict | None:
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
