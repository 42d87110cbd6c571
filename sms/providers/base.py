"""The provider interface. Providers translate between our neutral vocabulary and a provider's
wire format; they never decide or persist. Services only see the types in this module."""
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

logger = logging.getLogger("sms.providers")

UNKNOWN = "unknown"  # a provider status we have no mapping for; the raw value is kept


@dataclass(frozen=True)
class OutboundSms:
    send_id: str
    to: str
    from_number: str
    body: str
    status_callback_url: str | None = None


@dataclass(frozen=True)
class SendOutcome:
    """What the provider said when it accepted a message."""

    provider_message_id: str
    status: str  # one of sms.statuses.SendStatus, or UNKNOWN
    segments: int | None = None
    # The provider's fields, under neutral keys where services read them: "status", "error_code", and the
    # reported charge "price" / "price_unit" (as the provider wrote it; sms/services/cost.py normalises it).
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class InboundSms:
    message_id: str
    account_id: str
    from_number: str
    to_number: str
    body: str
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class StatusUpdate:
    provider_message_id: str
    status: str  # one of sms.statuses.SendStatus, or UNKNOWN
    account_id: str = ""
    error_code: str = ""
    error_message: str = ""
    recipient_opted_out: bool = False  # the carrier/provider says the recipient unsubscribed
    raw: dict = field(default_factory=dict, repr=False)
    provider: str = ""  # the adapter's name ('' = Twilio-shaped, see providers.send_providers_for_status)
    send_id: str = ""  # our send id when the provider echoes it (client reference), else ''
    recipient: str = ""  # the signed recipient, for an opt-out on a message we do not know
    price: str = ""  # the provider's reported charge for the message, as it wrote it ('' = none reported)
    price_unit: str = ""  # its currency (ISO 4217)


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's webhook call, neutral: what every signature scheme needs (the URL exactly as called,
    the raw body) and the parsed fields (`params`: the query string and the form body merged)."""

    url: str
    method: str
    headers: object  # case-insensitive mapping
    body: bytes
    params: object  # QueryDict-like
    json: dict | None = None


class ProviderError(Exception):
    def __init__(self, message: str = "", *, code: str = "", http_status: int | None = None):
        super().__init__(message or code)
        self.message = message
        self.code = str(code or "")
        self.http_status = http_status


class ProviderTransientError(ProviderError):
    """Safe to retry: the provider did not accept the message (429, 5xx before processing, connect errors)."""

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ProviderPermanentError(ProviderError):
    """The provider refused the message; retrying cannot help."""

    def __init__(self, message: str = "", *, recipient_opted_out: bool = False, **kw):
        super().__init__(message, **kw)
        self.recipient_opted_out = recipient_opted_out


class ProviderAuthError(ProviderPermanentError):
    """The org's credentials were refused."""


class ProviderAmbiguousError(ProviderError):
    """The request may or may not have been accepted (e.g. read timeout after sending): never re-send blindly."""


class SmsProvider(ABC):
    name: str = "base"
    display_name: str = "Provider"
    # True when the provider takes a reply in the webhook's response (Twilio's TwiML). Otherwise keyword
    # replies go out as system messages through the provider API (sms/services/replies.py).
    replies_in_response: bool = False
    # The account's secrets, by name: stored encrypted, write-only everywhere (sms/services/provider_accounts.py).
    secret_fields: tuple[str, ...] = ()
    # HTTP methods of the provider's webhooks (the generic view in sms/webhooks/providers.py serves them).
    webhook_methods: dict = {"inbound": ("post",), "status": ("post",)}

    @classmethod
    def from_account(cls, account) -> "SmsProvider":
        """The adapter for one of an org's ProviderAccount rows (decrypts its secrets)."""
        raise NotImplementedError

    def status_callback_url(self, *, base_url: str, org_id, send_id) -> str:
        """The status webhook URL handed to the provider with a message."""
        return f"{base_url}/api/v1/sms/webhooks/{self.name}/{org_id}/status"

    def test_connection(self) -> tuple[bool, str]:
        """A cheap authenticated read: (ok, a plain sentence for an operator, never a secret)."""
        raise NotImplementedError

    def send(self, message: OutboundSms) -> SendOutcome:
        """Public entry: timing and structured logs around the adapter's `_send`. Never logs the body."""
        started = time.monotonic()
        try:
            outcome = self._send(message)
        except ProviderError as exc:
            logger.info("provider=%s send=%s outcome=%s code=%s took=%.3fs", self.name, message.send_id,
                        exc.__class__.__name__, exc.code, time.monotonic() - started)
            raise
        logger.info("provider=%s send=%s outcome=accepted id=%s took=%.3fs", self.name, message.send_id,
                    outcome.provider_message_id, time.monotonic() - started)
        return outcome

    @abstractmethod
    def _send(self, message: OutboundSms) -> SendOutcome: ...

    def find_sent(self, *, to: str, since: datetime) -> list[SendOutcome]:
        """Messages the provider holds for `to` created since `since` (reconciliation). Raises ProviderError."""
        raise NotImplementedError

    def fetch_status(self, provider_message_id: str) -> SendOutcome | None:
        """The provider's current view of one message it accepted (the sweeper's status refresh), by its id;
        None when the provider does not know it. Raises ProviderError."""
        raise NotImplementedError

    # --- webhooks -------------------------------------------------------------------------
    def verify_webhook(self, *, url: str, params, headers) -> bool:
        raise NotImplementedError

    def verify_request(self, request: "WebhookRequest") -> bool:
        """The provider's signature over the request (URL as called, raw body). Default: the form scheme."""
        return self.verify_webhook(url=request.url, params=request.params, headers=request.headers)

    def account_matches(self, params) -> bool:
        """A verified webhook is for this very account (Twilio: AccountSid). Default: nothing to check."""
        return True

    def parse_inbound_request(self, request: "WebhookRequest") -> InboundSms:
        return self.parse_inbound(request.params)

    def parse_status_request(self, request: "WebhookRequest") -> StatusUpdate | None:
        """The status report in a webhook; None when the call carries none we handle (e.g. another type)."""
        return self.parse_status(request.params)

    def parse_inbound(self, params) -> InboundSms:
        raise NotImplementedError

    def parse_status(self, params) -> StatusUpdate:
        raise NotImplementedError
