"""Shared plain-HTTP plumbing for the adapters that speak JSON over `requests` (MessageBird, Sinch).

One pooled `requests.Session` per process and thread (created lazily, so each forked worker gets its
own), a timeout on every call, and one classification of failures into the neutral provider errors —
the same rules as the Twilio adapter:

- Transient (nothing was sent, safe to retry or fail over): 429, 502/503/504, and connection errors
  raised before the request reached the provider (refused, DNS, connect timeout). `retry_after` from
  the `Retry-After` header.
- Auth: 401 / 403.
- Ambiguous (the provider may have created the message): a read timeout or a connection dropped after
  the request was sent, a 500 or other 5xx, a 2xx body that is not the expected JSON.
- Permanent: every other 4xx.

Secrets travel in headers only; no message produced here contains a header or a body.
"""
import threading

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from sms.providers.base import (
    ProviderAmbiguousError,
    ProviderError,
    ProviderTransientError,
)

TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503, 504})
_local = threading.local()


def session() -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.trust_env = True
    return s


def timeout() -> float:
    return settings.PROVIDER_HTTP_TIMEOUT


def retry_after(response) -> float | None:
    value = (response.headers or {}).get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def connection_error(exc: requests.RequestException, provider: str) -> ProviderError:
    """Before the request reached the provider → transient; after it may have → ambiguous."""
    if isinstance(exc, requests.ConnectTimeout):
        return ProviderTransientError("connect timeout", code="connect_timeout")
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError, ConnectionRefusedError)):
            return ProviderTransientError(f"could not connect to {provider}", code="connect_error")
        return ProviderAmbiguousError("connection lost after the request was sent", code="connection_lost")
    if isinstance(exc, requests.Timeout):
        return ProviderAmbiguousError("read timeout after the request was sent", code="read_timeout")
    return ProviderAmbiguousError(f"HTTP error {exc.__class__.__name__}", code="http_error")


def read_error(error: ProviderError) -> ProviderError:
    """A read (status query, reconciliation) cannot be ambiguous: just try again later."""
    if isinstance(error, ProviderAmbiguousError):
        return ProviderTransientError(error.message, code=error.code, http_status=error.http_status)
    return error
