"""Sandbox adapter for test-mode keys (`sk_test_…`): no network, Twilio's test magic numbers.

To +15005550001 → 21211, …0002 → 21612, …0003 → 21408, …0004 → 21610 (recipient opted out),
…0009 → 21614; From +15005550001 → 21212, …0007 → 21606, …0008 → 21611 (transient: queue full).
Any other message is accepted with a fake `SM…` sid and status `queued`; `simulated_updates()` then
returns the `sent` and `delivered` reports that the dispatch service applies through
`send_apply_status` — the same code path as real Twilio status callbacks.
"""
import uuid
from datetime import datetime

from sms.providers.base import (
    OutboundSms,
    ProviderPermanentError,
    ProviderTransientError,
    SendOutcome,
    SmsProvider,
    StatusUpdate,
)
from sms.statuses import SendStatus

# Twilio test-credential magic numbers (https://www.twilio.com/docs/iam/test-credentials): number → (code, message).
MAGIC_TO = {
    "+15005550001": ("21211", "The 'To' number is not a valid phone number."),
    "+15005550002": ("21612", "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": ("21408", "Permission to send an SMS has not been enabled for the region indicated by the 'To' number."),
    "+15005550004": ("21610", "Attempt to send to unsubscribed recipient."),
    "+15005550009": ("21614", "The 'To' number is not a valid mobile number."),
}
MAGIC_FROM = {
    "+15005550001": ("21212", "The 'From' number is not a valid phone number."),
    "+15005550007": ("21606", "The 'From' phone number is not a valid, SMS-capable number for this account."),
}
MAGIC_FROM_TRANSIENT = {
    "+15005550008": ("21611", "This 'From' number has exceeded the maximum number of queued messages."),
}


class SandboxProvider(SmsProvider):
    name = "sandbox"
    # Nothing leaves the process, so re-running a send whose outcome was lost cannot double-send.
    resend_is_harmless = True

    def _send(self, message: OutboundSms) -> SendOutcome:
        from sms.encoding import segment_info

        if message.to in MAGIC_TO:
            code, text = MAGIC_TO[message.to]
            raise ProviderPermanentError(text, code=code, http_status=400, recipient_opted_out=code == "21610")
        if message.from_number in MAGIC_FROM:
            code, text = MAGIC_FROM[message.from_number]
            raise ProviderPermanentError(text, code=code, http_status=400)
        if message.from_number in MAGIC_FROM_TRANSIENT:
            code, text = MAGIC_FROM_TRANSIENT[message.from_number]
            raise ProviderTransientError(text, code=code, http_status=400, retry_after=60.0)
        sid = "SM" + uuid.uuid4().hex
        return SendOutcome(provider_message_id=sid, status=SendStatus.QUEUED,
                           segments=segment_info(message.body).segments, raw={"sid": sid, "status": "queued"})

    def status_callback_url(self, *, base_url: str, org_id, send_id) -> str:
        """The sandbox simulates Twilio, so its sends carry Twilio's StatusCallback shape (never called)."""
        url = f"{base_url}/api/v1/sms/webhooks/twilio/{org_id}/status"
        return f"{url}?send_id={send_id}" if send_id else url

    def simulated_updates(self, outcome: SendOutcome) -> list[StatusUpdate]:
        """The status callbacks Twilio would send for an accepted message: sent, then delivered."""
        return [
            StatusUpdate(provider_message_id=outcome.provider_message_id, status=status,
                         raw={"MessageSid": outcome.provider_message_id, "MessageStatus": status})
            for status in (SendStatus.SENT, SendStatus.DELIVERED)
        ]

    def fetch_status(self, provider_message_id: str) -> SendOutcome | None:
        """The sandbox keeps no record of past sends."""
        return None

    def find_sent(self, *, to: str, since: datetime, body: str | None = None) -> list[SendOutcome]:
        """The sandbox keeps no record of past sends; reconciliation finds nothing (re-sending is harmless)."""
        return []
