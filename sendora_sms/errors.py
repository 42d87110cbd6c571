"""Typed errors. Each carries its stable machine code and HTTP status; one handler renders them
(sendora_sms/api/exception_handler.py) as {"error": {"code", "message", "details"}}."""
from typing import Any


class SendoraError(Exception):
    code: str = "error"
    http_status: int = 400
    message: str = "The request could not be processed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        self.message = message or self.message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(SendoraError):
    code = "validation_error"
    http_status = 400
    message = "The request body is not valid."

    def __init__(self, message: str | None = None, *, code: str | None = None, **kw):
        super().__init__(message, **kw)
        if code:
            self.code = code


class InvalidPhoneNumber(ValidationFailed):
    code = "invalid_phone_number"
    message = "The phone number cannot be normalised to E.164."


class NotAuthenticated(SendoraError):
    code = "unauthenticated"
    http_status = 401
    message = "A valid API key is required (x-api-key or Authorization: Bearer)."

    def __init__(self, message: str | None = None, **kw):
        # RFC 9110 §11.6.1: a 401 carries WWW-Authenticate.
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(message, **kw)


class PermissionDenied(SendoraError):
    code = "forbidden"
    http_status = 403
    message = "This key may not perform this action."


class SecretKeyRequired(PermissionDenied):
    code = "secret_key_required"
    message = "Publishable keys may not call SMS endpoints; use a secret key (sk_…)."


class AdminRequired(PermissionDenied):
    code = "admin_required"
    message = "This endpoint requires an API key with the admin role."


class LiveKeyRequired(PermissionDenied):
    code = "live_key_required"
    message = "Test keys may read the suppression list but not change it; use a live key (sk_prod_…)."


class PlanUpgradeRequired(PermissionDenied):
    code = "plan_upgrade_required"
    message = "SMS requires the starter plan or above."


class NotFound(SendoraError):
    code = "not_found"
    http_status = 404
    message = "Not found."


class OrgNotFound(NotFound):
    code = "org_not_found"
    message = "No such organisation."


class Conflict(SendoraError):
    code = "conflict"
    http_status = 409


class RateLimited(SendoraError):
    code = "rate_limited"
    http_status = 429
    message = "Too many requests; retry after the number of seconds in Retry-After."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kw):
        kw.setdefault("details", {"retry_after": retry_after})
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailable(SendoraError):
    code = "service_unavailable"
    http_status = 503
    message = "The service is temporarily unavailable; retry shortly."

    def __init__(self, message: str | None = None, **kw):
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(message, **kw)
