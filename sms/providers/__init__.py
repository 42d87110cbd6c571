"""provider_for(account, mode) → the adapter for an org's provider account (sandbox for test keys)."""
from sms.providers.base import (  # noqa: F401 — the public interface
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
)


def webhook_provider_for(account) -> SmsProvider:
    """The adapter that verifies and parses webhooks for a provider account."""
    from sms.providers.twilio import TwilioProvider

    registry = {"twilio": TwilioProvider}
    return registry[account.provider](account_sid=account.account_sid, auth_token=account.auth_token())
