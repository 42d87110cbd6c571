"""Twilio adapter: the official `twilio` SDK, base URL from TWILIO_API_BASE_URL."""
from django.conf import settings
from twilio.request_validator import RequestValidator

from sms.providers.base import UNKNOWN, InboundSms, OutboundSms, SendOutcome, SmsProvider, StatusUpdate
from sms.statuses import SendStatus

# Twilio MessageStatus → our status. https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
STATUS_MAP = {
    "accepted": SendStatus.QUEUED,
    "scheduled": SendStatus.QUEUED,
    "queued": SendStatus.QUEUED,
    "sending": SendStatus.SENDING,
    "sent": SendStatus.SENT,
    "delivered": SendStatus.DELIVERED,
    "read": SendStatus.DELIVERED,
    "undelivered": SendStatus.UNDELIVERED,
    "failed": SendStatus.FAILED,
    "canceled": SendStatus.FAILED,
}

# 21610: "Attempt to send to unsubscribed recipient" — the recipient opted out at the carrier/Twilio.
OPTED_OUT_CODES = frozenset({"21610"})


class TwilioProvider(SmsProvider):
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str):
        self.account_sid = account_sid
        self._auth_token = auth_token

    def __repr__(self) -> str:  # never show the token
        return f"TwilioProvider(account_sid={self.account_sid!r})"

    # --- sending (see _send) ------------------------------------------------------------------
    def _send(self, message: OutboundSms) -> SendOutcome:
        raise NotImplementedError("implemented by the send pipeline")

    # --- webhooks -------------------------------------------------------------------------
    def verify_webhook(self, *, url: str, params, headers) -> bool:
        """X-Twilio-Signature over the public URL and every POST parameter, with the SDK validator."""
        signature = headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        return RequestValidator(self._auth_token).validate(url, params, signature)

    def parse_inbound(self, params) -> InboundSms:
        return InboundSms(
            message_id=params.get("MessageSid") or params.get("SmsSid") or "",
            account_id=params.get("AccountSid", ""),
            from_number=params.get("From", ""),
            to_number=params.get("To", ""),
            body=params.get("Body", ""),
            raw=dict(params.items()),
        )

    def parse_status(self, params) -> StatusUpdate:
        raw_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        error_code = params.get("ErrorCode", "") or ""
        return StatusUpdate(
            provider_message_id=params.get("MessageSid") or params.get("SmsSid") or "",
            status=STATUS_MAP.get(raw_status, UNKNOWN),
            account_id=params.get("AccountSid", ""),
            error_code=error_code,
            error_message=params.get("ErrorMessage", "") or "",
            recipient_opted_out=error_code in OPTED_OUT_CODES,
            raw=dict(params.items()),
        )


def twilio_api_base_url() -> str:
    return settings.TWILIO_API_BASE_URL
