"""SMS error types (stable codes; rendered by sendora_sms/api/exception_handler.py).

Quota errors live in orgs/errors.py (QuotaExceededError, 429 `quota_exceeded`)."""
from sendora_sms.errors import Conflict, NotFound, SendoraError


class ProviderNotConfigured(SendoraError):
    code = "provider_not_configured"
    http_status = 412
    message = "The org has no SMS provider credentials yet; set them in the dashboard (Dashboard → SMS → Provider)."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used with a different request body."


class AlreadySuppressed(Conflict):
    code = "already_suppressed"
    message = "This phone number is already on the org's suppression list."


class NotSuppressed(NotFound):
    code = "not_suppressed"
    message = "This phone number is not on the org's suppression list."


class CountryNotAllowed(SendoraError):
    """The destination country is not on the org's allowed list (README "Cost and countries")."""

    code = "country_not_allowed"
    http_status = 403
    message = "The org may not send to this destination country."
