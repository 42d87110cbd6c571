"""One error shape for every error under /api/ (the API contract (README.md, /api/schema) "Conventions"):
{"error": {"code", "message", "details"}} — ours, DRF's, Django's 404/500 — plus x-request-id,
no trailing-slash redirects, 413 for oversized bodies and JSON accepted when sent form-encoded.

The views below are mounted only for this module (pytest.mark.urls) next to the real URLconf.
"""
import json
import re

import pytest
from django.http import HttpResponse
from django.urls import include, path
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from sendora_sms import errors
from sendora_sms.urls import urlpatterns as real_urlpatterns

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


class _Open(APIView):
    authentication_classes: list = []
    permission_classes: list = []


class EchoApi(_Open):
    def post(self, request):
        return Response({"data": request.data})


class RaiseApi(_Open):
    RAISES = {
        "ours-400": lambda: errors.ValidationFailed("Bad field.", code="invalid_body", details={"field": "body"}),
        "ours-409": lambda: errors.Conflict("Already there."),
        "ours-429": lambda: errors.RateLimited(retry_after=7),
        "ours-503": lambda: errors.ServiceUnavailable(),
        "drf-401": lambda: drf.AuthenticationFailed("nope"),
        "drf-404": lambda: drf.NotFound(),
        "drf-validation": lambda: drf.ValidationError({"to": ["This field is required."]}),
        "drf-throttled": lambda: drf.Throttled(wait=12),
        "drf-permission": lambda: drf.PermissionDenied(),
        "boom": lambda: RuntimeError("secret internal detail"),
    }

    def get(self, request, kind):
        raise self.RAISES[kind]()


def django_boom(request):
    raise ValueError("secret internal detail from a plain Django view")


def html_view(request):
    return HttpResponse("<h1>outside the API</h1>")


urlpatterns = [
    path("api/v1/_test/echo", EchoApi.as_view()),
    path("api/v1/_test/raise/<str:kind>", RaiseApi.as_view()),
    path("api/v1/_test/django-boom", django_boom),
    path("_test/plain-boom", django_boom),
    path("_test/html", html_view),
    path("", include(real_urlpatterns)),
]


@pytest.fixture
def client():
    c = APIClient()
    c.raise_request_exception = False
    return c


def shape(response) -> dict:
    """Assert the contract's error shape and return the inner object."""
    assert response["Content-Type"].startswith("application/json"), (response.status_code, response.content[:300])
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and re.fullmatch(r"[a-z_]+", error["code"])
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error


# --- our typed errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, status, code", [
    ("ours-400", 400, "invalid_body"),
    ("ours-409", 409, "conflict"),
    ("ours-429", 429, "rate_limited"),
    ("ours-503", 503, "service_unavailable"),
])
def test_our_errors_render_with_their_code_and_status(client, kind, status, code):
    response = client.get(f"/api/v1/_test/raise/{kind}")
    assert response.status_code == status
    assert shape(response)["code"] == code


def test_our_error_details_and_headers_reach_the_response(client):
    error = shape(client.get("/api/v1/_test/raise/ours-400"))
    assert error == {"code": "invalid_body", "message": "Bad field.", "details": {"field": "body"}}
    limited = client.get("/api/v1/_test/raise/ours-429")
    assert limited["Retry-After"] == "7" and shape(limited)["details"] == {"retry_after": 7}
    assert client.get("/api/v1/_test/raise/ours-503")["Retry-After"]


# --- DRF's own errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, status, code", [
    ("drf-401", 403, "unauthenticated"),  # DRF turns 401 into 403 on a view without authenticators
    ("drf-404", 404, "not_found"),
    ("drf-validation", 400, "validation_error"),
    ("drf-throttled", 429, "rate_limited"),
    ("drf-permission", 403, "forbidden"),
])
def test_drf_exceptions_render_in_the_contract_shape(client, kind, status, code):
    response = client.get(f"/api/v1/_test/raise/{kind}")
    assert response.status_code == status
    assert shape(response)["code"] == code


def test_drf_throttled_carries_retry_after(client):
    response = client.get("/api/v1/_test/raise/drf-throttled")
    assert response["Retry-After"] == "12" and shape(response)["details"] == {"retry_after": 12}


def test_drf_validation_error_lists_the_fields(client):
    assert shape(client.get("/api/v1/_test/raise/drf-validation"))["details"] == {
        "fields": {"to": ["This field is required."]}}


def test_drf_401_on_a_real_endpoint_is_unauthenticated(client, org):
    response = client.get(f"/api/v1/orgs/{org.pk}/audit-log")
    assert response.status_code == 401 and shape(response)["code"] == "unauthenticated"


def test_405_method_not_allowed_is_in_shape(org, admin_key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=admin_key.raw_key)
    response = client.delete(f"/api/v1/orgs/{org.pk}/audit-log")
    assert response.status_code == 405
    assert shape(response)["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("body", ['{"to": ', "[1, 2", "{'single': 'quotes'}", "\xff\xfe"])
def test_unparseable_json_is_400_invalid_json(client, body):
    response = client.post("/api/v1/_test/echo", data=body.encode("latin-1"), content_type="application/json")
    assert response.status_code == 400
    assert shape(response)["code"] == "invalid_json"


def test_unsupported_media_type_is_415_in_shape(client):
    response = client.post("/api/v1/_test/echo", data=b"<x/>", content_type="application/xml")
    assert response.status_code == 415
    assert shape(response)["code"] == "unsupported_media_type"


# --- JSON sent form-encoded (what curl -d does) ----------------------------------------------------------

def test_json_body_sent_form_encoded_is_parsed_as_json(client):
    body = '{"to": "+15551234567", "body": "a=b&c=d", "metadata": {"n": 1}}'
    response = client.post("/api/v1/_test/echo", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.json() == {"data": {"to": "+15551234567", "body": "a=b&c=d", "metadata": {"n": 1}}}


def test_ordinary_form_fields_still_parse(client):
    response = client.post("/api/v1/_test/echo", data="to=%2B15551234567&body=hi",
                           content_type="application/x-www-form-urlencoded")
    assert response.json() == {"data": {"to": "+15551234567", "body": "hi"}}


def test_broken_json_sent_form_encoded_is_400_invalid_json(client):
    response = client.post("/api/v1/_test/echo", data='{"to": "+1555', content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and shape(response)["code"] == "invalid_json"


def test_real_send_endpoint_accepts_curl_style_form_encoded_json(org, admin_key, provider_account):
    """`curl -d '{…}'` against the real endpoint: accepted as JSON, not a validation error."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=admin_key.raw_key)
    response = client.post(f"/api/v1/orgs/{org.pk}/sms/send", data=json.dumps({"to": "+15551234567", "body": "hi"}),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202, response.content
    assert response.json()["to"] == "+15551234567"


# --- Django's 404 and unknown paths -----------------------------------------------------------------------

@pytest.mark.parametrize("path_", ["/api/v1/nope", "/api/v1", "/api/v2/orgs", "/api/v1/orgs/x/sms/sends/a/b/c"])
def test_unknown_api_path_is_404_not_found_json(client, path_):
    response = client.get(path_)
    assert response.status_code == 404
    assert shape(response)["code"] == "not_found"


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_trailing_slash_is_404_json_never_a_redirect(client, org, admin_key, method):
    client.credentials(HTTP_X_API_KEY=admin_key.raw_key)
    for url in (f"/api/v1/orgs/{org.pk}/audit-log/", f"/api/v1/orgs/{org.pk}/sms/send/"):
        response = getattr(client, method)(url, data={"to": "+15551234567", "body": "x"}, format="json")
        assert response.status_code == 404, (url, response.status_code)
        assert "Location" not in response
        assert shape(response)["code"] == "not_found"


def test_api_404_under_debug_is_still_json(client, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and shape(response)["code"] == "not_found"


def test_non_api_404_is_left_to_django(client):
    response = client.get("/definitely-not-here")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


# --- 500 -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/_test/raise/boom", "/api/v1/_test/django-boom"])
def test_unexpected_error_is_500_internal_error_in_shape_without_internals(client, url, caplog):
    response = client.get(url, HTTP_X_REQUEST_ID="req-500-check")
    assert response.status_code == 500
    error = shape(response)
    assert error["code"] == "internal_error"
    assert error["details"] == {"request_id": "req-500-check"}
    assert b"secret internal detail" not in response.content and b"Traceback" not in response.content
    assert response["x-request-id"] == "req-500-check"
    assert any("req-500-check" in r.getMessage() for r in caplog.records)  # logged with the request id


def test_500_outside_the_api_is_not_rendered_as_api_json(client):
    response = client.get("/_test/plain-boom")
    assert response.status_code == 500
    assert not response["Content-Type"].startswith("application/json")


# --- 413 -------------------------------------------------------------------------------------------------

def test_oversized_body_is_413_payload_too_large(client, settings, org, admin_key):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    client.credentials(HTTP_X_API_KEY=admin_key.raw_key)
    body = json.dumps({"to": "+15551234567", "body": "x" * 5000})
    for url in ("/api/v1/_test/echo", f"/api/v1/orgs/{org.pk}/sms/send"):
        response = client.post(url, data=body, content_type="application/json")
        assert response.status_code == 413
        error = shape(response)
        assert error["code"] == "payload_too_large" and error["details"] == {"max_bytes": 2048}


def test_body_just_under_the_limit_is_accepted(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = json.dumps({"pad": "x" * 1900})
    assert client.post("/api/v1/_test/echo", data=body, content_type="application/json").status_code == 200


def test_non_numeric_content_length_is_400_in_shape(client):
    response = client.generic("POST", "/api/v1/_test/echo", data=b"{}", content_type="application/json",
                              CONTENT_LENGTH="abc")
    assert response.status_code == 400 and shape(response)["code"] == "invalid_content_length"


# --- x-request-id ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/_test/echo", "/api/v1/nope", "/api/v1/_test/raise/ours-409", "/health",
                                 "/api/schema", "/_test/html"])
def test_every_response_carries_a_minted_request_id(client, url):
    response = client.get(url)
    assert re.fullmatch(r"req_[0-9a-f]{32}", response["x-request-id"])


def test_request_ids_are_unique_per_request(client):
    ids = {client.get("/api/v1/nope")["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("given", ["abc-123", "7f3c1a2e-0f8a-4d6b-9a51-5f1f8f0a1b2c", "trace.id:42_x"])
def test_well_formed_request_id_is_echoed(client, given):
    assert client.get("/api/v1/_test/raise/ours-400", HTTP_X_REQUEST_ID=given)["x-request-id"] == given


@pytest.mark.parametrize("given", ["has space", "<script>", "x" * 129, "a\tb", "é"])
def test_malformed_request_id_is_replaced_not_echoed(client, given):
    got = client.get("/api/v1/nope", HTTP_X_REQUEST_ID=given)["x-request-id"]
    assert got != given and re.fullmatch(r"req_[0-9a-f]{32}", got)


# --- errors produced by Django itself under /api/ ----------------------------------------------------------

def test_too_many_form_fields_is_400_bad_request_not_500(client):
    body = "&".join(f"f{i}=1" for i in range(1200))  # past DATA_UPLOAD_MAX_NUMBER_FIELDS (1000)
    response = client.post("/api/v1/_test/echo", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and shape(response)["code"] == "bad_request"


def test_disallowed_host_header_is_400_in_shape(client, settings):
    settings.ALLOWED_HOSTS = ["sms.example.com"]
    response = client.get("/api/v1/nope", HTTP_HOST="evil.example.org")
    assert response.status_code == 400 and shape(response)["code"] == "bad_request"
    assert response["x-request-id"]


def test_django_405_from_a_plain_view_keeps_allow_and_the_shape(client, settings):
    response = client.get("/api/v1/sms/webhooks/twilio/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 405 and shape(response)["code"] == "method_not_allowed"
    assert response["Allow"] == "POST"


def test_hand_made_cursor_with_a_non_uuid_id_is_400_not_500(org, admin_key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=admin_key.raw_key)
    cursor = "WyIyMDI1LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgImFiYyJd"  # ["2025-01-01T00:00:00+00:00", "abc"]
    for path_ in (f"/api/v1/orgs/{org.pk}/sms/sends", f"/api/v1/orgs/{org.pk}/events"):
        response = client.get(path_, {"cursor": cursor})
        assert response.status_code == 400 and shape(response)["code"] == "invalid_cursor", path_
