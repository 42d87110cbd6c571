"""HTTP plumbing middleware: x-request-id on every response, the error shape for everything
under /api/ that DRF does not render itself (unknown paths, body too large, unexpected errors), and
`Cache-Control: no-store` on every API response."""
import logging
import re
import secrets

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError

from sendora_sms.api.exception_handler import json_error

logger = logging.getLogger(__name__)
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
API_PREFIXES = ("/api/", "/health")


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIXES)


class RequestIdMiddleware:
    """Echo a well-formed x-request-id or mint one; available as request.request_id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")  # not request.headers: it copies every header first
        request.request_id = given if _REQUEST_ID_OK.match(given) else f"req_{secrets.token_hex(16)}"
        response = self.get_response(request)
        response["x-request-id"] = request.request_id
        return response


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self._respond(request)
        if _is_api(request):
            # API bodies hold message bodies (one-time codes) and keys' data: no cache may keep them.
            response["Cache-Control"] = "no-store"
        return response

    def _respond(self, request):
        if _is_api(request):
            if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get(
                    "CONTENT_LENGTH"):
                # Django reads CONTENT_LENGTH bytes of a WSGI body: a chunked body (no Content-Length)
                # would be read as empty and a send "without a body" answered as if the client sent one.
                return json_error(411, "length_required", "Send the request body with a Content-Length header "
                                  "(chunked transfer encoding is not accepted).")
            length = request.META.get("CONTENT_LENGTH") or "0"
            try:
                too_big = int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            except ValueError:
                return json_error(400, "invalid_content_length", "Content-Length is not a number.")
            if too_big:
                return json_error(413, "payload_too_large", "The request body is too large.",
                                  {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
            if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
                # PostgreSQL text cannot hold U+0000; a filter carrying it would fail in SQL (500).
                return json_error(400, "invalid_query", "The query string contains a NUL character (%00).")
        response = self.get_response(request)
        if _is_api(request) and response.status_code >= 400 and not response.get("Content-Type", "").startswith(
                "application/json"):
            return _in_shape(request, response)
        return response

    def process_exception(self, request, exception):
        if not _is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return json_error(413, "payload_too_large", "The request body is too large.",
                              {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
        if isinstance(exception, SuspiciousOperation):  # e.g. too many form fields: Django's own answer is 400
            logger.warning("suspicious request on %s: %s", request.path, exception.__class__.__name__)
            return json_error(400, "bad_request", "The request is malformed.")
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("database unavailable on %s: %s", request.path, exception.__class__.__name__)
            return json_error(503, "service_unavailable", "The database is temporarily unavailable; retry shortly.",
                              headers={"Retry-After": "5"})
        logger.exception("unhandled error on %s (request %s)", request.path, getattr(request, "request_id", "-"))
        return json_error(500, "internal_error", "Something went wrong on our side; the request id identifies it.",
                          {"request_id": getattr(request, "request_id", None)})


# Error responses produced outside our handler (Django's 404 page, a 400 for a disallowed Host header,
# a CSRF 403…) re-rendered in the contract's shape when they are under /api/.
_STATUS_CODES = {
    400: ("bad_request", "The request is malformed."),
    403: ("forbidden", "You may not perform this action."),
    404: ("not_found", "No such endpoint. API paths have no trailing slash."),
    405: ("method_not_allowed", "This method is not allowed on this endpoint."),
    413: ("payload_too_large", "The request body is too large."),
    500: ("internal_error", "Something went wrong on our side; the request id identifies it."),
}


def _in_shape(request, response):
    code, message = _STATUS_CODES.get(response.status_code, ("error", "The request could not be processed."))
    details = {"path": request.path} if response.status_code == 404 else {}
    if response.status_code >= 500:
        details = {"request_id": getattr(request, "request_id", None)}
    shaped = json_error(response.status_code, code, message, details)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            shaped[header] = response[header]
    return shaped


# --- The dashboard's middleware, kept off the API (issue #14) ---------------------------------------
# Sessions, request.user, flash messages and static files serve the dashboard (/admin/) and the docs
# page; no path under /api/ reads any of them (API views authenticate by key and never touch a
# session). Each wrapper below runs its Django middleware for every other path and steps aside for
# /api/…: a send no longer sets up a session, a lazy user or a message store. Security, Common (host
# validation), CSRF (API views are csrf-exempt, so it only reads the cookie; and `check --deploy`
# looks for it by name) and X-Frame-Options still run on every path.

def _not_on_api(middleware_class):
    class NotOnApi(middleware_class):
        def __call__(self, request):
            if request.path_info.startswith("/api/"):
                return self.get_response(request)
            return super().__call__(request)

        def process_view(self, request, callback, callback_args, callback_kwargs):
            if request.path_info.startswith("/api/"):
                return None
            return super().process_view(request, callback, callback_args, callback_kwargs)

    NotOnApi.__name__ = NotOnApi.__qualname__ = middleware_class.__name__
    if not hasattr(middleware_class, "process_view"):
        del NotOnApi.process_view
    return NotOnApi


def _lazy(dotted: str):
    from django.utils.module_loading import import_string

    return _not_on_api(import_string(dotted))


WhiteNoiseMiddleware = _lazy("whitenoise.middleware.WhiteNoiseMiddleware")
SessionMiddleware = _lazy("django.contrib.sessions.middleware.SessionMiddleware")
AuthenticationMiddleware = _lazy("django.contrib.auth.middleware.AuthenticationMiddleware")
MessageMiddleware = _lazy("django.contrib.messages.middleware.MessageMiddleware")
