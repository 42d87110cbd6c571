"""Sign requests the way Twilio does, for webhook tests (https://www.twilio.com/docs/usage/webhooks/webhooks-security)."""

from __future__ import annotations

from typing import Any, Mapping

from twilio.request_validator import RequestValidator

__all__ = ["sign_twilio_request", "twilio_signature_headers"]


def sign_twilio_request(url: str, params: Mapping[str, Any] | None, auth_token: str) -> str:
    """Return the ``X-Twilio-Signature`` value for a form POST of ``params`` to ``url``.

    ``url`` must be the full public URL Twilio would call (scheme, host, path,
    query). Uses the SDK's own ``RequestValidator.compute_signature``; list
    values are signed once per value, sorted, as Twilio does.
    """
    if params is not None and hasattr(params, "getlist"):  # Django QueryDict: already multi-valued
        return RequestValidator(auth_token).compute_signature(url, params)
    return RequestValidator(auth_token).compute_signature(url, _MultiValues(params or {}))


class _MultiValues(dict):
    """A dict whose ``getlist`` lets list/tuple values sign as repeated fields."""

    def getlist(self, name: str) -> list[Any]:
        value = self[name]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [value]


def twilio_signature_headers(url: str, params: Mapping[str, Any] | None, auth_token: str) -> dict[str, str]:
    """Django test-client kwargs: ``client.post(path, params, **twilio_signature_headers(...))``."""
    return {"HTTP_X_TWILIO_SIGNATURE": sign_twilio_request(url, params, auth_token)}
