"""The one place an exception becomes an error response: {"error": {code, message, details}}."""
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from sendora_sms.errors import SendoraError

logger = logging.getLogger(__name__)

# DRF exception class → our stable code.
_DRF_CODES = {
    drf.NotAuthenticated: "unauthenticated",
    drf.AuthenticationFailed: "unauthenticated",
    drf.PermissionDenied: "forbidden",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.ParseError: "invalid_json",
    drf.Throttled: "rate_limited",
    drf.ValidationError: "validation_error",
}


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _drf_error(exc: drf.APIException) -> tuple[str, str, dict]:
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, drf.ValidationError):
        return code, "The request body is not valid.", {"fields": exc.detail}
    detail = exc.detail
    message = str(detail) if not isinstance(detail, (dict, list)) else "The request could not be processed."
    details = {"retry_after": exc.wait} if isinstance(exc, drf.Throttled) and exc.wait else {}
    return code, message, details


def exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: every API error leaves through here."""
    headers: dict[str, str] = {}
    if isinstance(exc, SendoraError):
        status, body, headers = exc.http_status, error_body(exc.code, exc.message, exc.details), exc.headers
    elif isinstance(exc, drf.APIException):
        code, message, details = _drf_error(exc)
        status, body = exc.status_code, error_body(code, message, details)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, drf.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait))
    elif isinstance(exc, Http404):
        status, body = 404, error_body("not_found", "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        status, body = 403, error_body("forbidden", "You may not perform this action.")
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        status, body = 503, error_body("service_unavailable", "The database is temporarily unavailable; retry shortly.")
        headers["Retry-After"] = "5"
    else:
        return None  # unknown: Django logs it and ApiErrorMiddleware renders the 500 in our shape
    response = Response(body, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def json_error(status: int, code: str, message: str, details: dict | None = None, headers=None) -> JsonResponse:
    """For code outside DRF views (middleware, Django's 404/500 handlers under /api/)."""
    response = JsonResponse(error_body(code, message, details), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


__all__ = ["exception_handler", "json_error", "error_body", "DatabaseError"]
