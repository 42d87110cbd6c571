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


def provider_for(account, mode: str) -> SmsProvider:
    """The adapter that sends for an org: the sandbox for test-mode sends (no account needed), else the
    account's provider. Raises LookupError when a live send has no provider account."""
    from sms.providers.sandbox import SandboxProvider
    from sms.providers.twilio import TwilioProvider

    if mode == "test":
        return SandboxProvider()
    if account is None:
        raise LookupError("no provider account configured")
    registry = {"twilio": TwilioProvider}
    return registry[account.provider](account_sid=account.account_sid, auth_token=account.auth_token())


def webhook_provider_for(account) -> SmsProvider:
    """The adapter that verifies and parses webhooks for a provider account."""
    from sms.providers.twilio import TwilioProvider

    registry = {"twilio": TwilioProvider}
    return registry[account.provider](account_sid=account.account_sid, auth_token=account.auth_token())
