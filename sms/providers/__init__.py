"""The provider seam: a registry of adapters, and `provider_for(account, mode)`.

Adding a provider is one module here (an `SmsProvider` subclass with `from_account`, its `secret_fields`
and `webhook_methods`), one line in REGISTRY (its secrets' handling and its webhook routes follow from it),
its name among sms.models.Provider's account choices, one fake in tests/fakes/ and one admin form.
Everything provider-specific (wire format, status vocabulary, error classification, webhook signature and
payload, the reported price) lives in the adapter.
"""
from importlib import import_module

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
    WebhookRequest,
)

# provider name → "module.Class" (imported lazily: a provider's SDK loads only when it is used).
REGISTRY = {
    "twilio": "sms.providers.twilio.TwilioProvider",
    "messagebird": "sms.providers.messagebird.MessageBirdProvider",
    "sinch": "sms.providers.sinch.SinchProvider",
}


def adapter_class(name: str) -> type[SmsProvider]:
    """The adapter class registered under `name` (KeyError for an unknown provider)."""
    module, _, cls = REGISTRY[name].rpartition(".")
    return getattr(import_module(module), cls)


def provider_for(account, mode: str) -> SmsProvider:
    """The adapter that sends for an org: the sandbox for test-mode sends (no account needed), else the
    account's provider. Raises LookupError when a live send has no provider account."""
    from sms.providers.sandbox import SandboxProvider

    if mode == "test":
        return SandboxProvider()
    if account is None:
        raise LookupError("no provider account configured")
    return adapter_class(account.provider).from_account(account)


def webhook_provider_for(account) -> SmsProvider:
    """The adapter that verifies and parses webhooks for a provider account."""
    return adapter_class(account.provider).from_account(account)


def send_providers_for_status(provider: str) -> tuple[str, ...]:
    """The `Send.provider` values a status report from `provider` may apply to ('' = a Twilio-shaped
    report of old callers: Twilio's own sends and the sandbox's, which speaks Twilio's vocabulary)."""
    if not provider or provider in ("twilio", "sandbox"):
        return ("twilio", "sandbox")
    return (provider,)
