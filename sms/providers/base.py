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

    def parse_inbound(self, params) -> InboundSms:
        raise NotImplementedError

    def parse_status(self, params) -> StatusUpdate:
        raise NotImplementedError
