"""OpenAPI 3 at /api/schema and Swagger UI at /api/docs, served without any CDN."""
import io
import re

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


def api_paths() -> set[str]:
    """Every /api/v1 route in the URLconf, in OpenAPI spelling ({org_id})."""
    found = set()

    def walk(patterns, prefix):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                found.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))

    walk(get_resolver().url_patterns, "")
    return {p for p in found if p.startswith("/api/v1/")}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Sendora SMS API"


def test_every_api_v1_path_is_documented(schema):
    routes = api_paths()
    assert "/api/v1/orgs/{org_id}/audit-log" in routes and len(routes) >= 2
    assert routes <= set(schema["paths"]), routes - set(schema["paths"])


def test_paths_have_no_trailing_slash(schema):
    assert all(not p.endswith("/") for p in schema["paths"])


def test_api_key_security_scheme_is_declared_and_used(schema):
    scheme = schema["components"]["securitySchemes"]["ApiKeyAuth"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "x-api-key",
                      "description": scheme["description"]}
    org_ops = [(path, op) for path, item in schema["paths"].items() if path.startswith("/api/v1/orgs/")
               for op in item.values() if isinstance(op, dict) and "responses" in op]
    assert org_ops
    for path, op in org_ops:
        assert {"ApiKeyAuth": []} in op.get("security", []), path


def test_org_endpoints_document_their_errors_in_the_error_shape(schema):
    error_ref = "#/components/schemas/Error"
    error_schema = schema["components"]["schemas"]["Error"]
    assert error_schema["required"] == ["error"]
    for path, item in schema["paths"].items():
        if not path.startswith("/api/v1/orgs/"):
            continue
        for method, op in item.items():
            responses = op["responses"]
            for status in ("401", "403", "404"):
                assert status in responses, (method, path, status)
                content = responses[status]["content"]["application/json"]["schema"]
                assert content == {"$ref": error_ref}, (method, path, status)


def test_audit_log_operation_documents_pagination(schema):
    op = schema["paths"]["/api/v1/orgs/{org_id}/audit-log"]["get"]
    assert {"limit", "cursor"} <= {p["name"] for p in op["parameters"]}
    assert "403" in op["responses"] and "admin" in op["description"].lower()


def test_schema_generation_has_no_warnings_and_validates():
    """drf-spectacular's own validator, failing on any warning (e.g. an undocumented view)."""
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out,
                 stderr=io.StringIO())
    assert out.getvalue().startswith("{")


def test_swagger_ui_renders_without_a_cdn(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower() and "/api/schema" in html
    assert not re.search(r"(cdn\.jsdelivr|unpkg\.com|cdnjs|googleapis)", html)
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == [], external
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    for asset in assets:
        asset_response = client.get(asset)
        assert asset_response.status_code == 200, asset
        b"".join(asset_response.streaming_content) if asset_response.streaming else asset_response.content


def test_root_redirects_to_the_docs(client):
    response = client.get("/")
    assert response.status_code in (301, 302) and response["Location"] == "/api/docs"


def test_twilio_webhooks_are_documented_as_signed_form_posts(schema):
    for path in ("/api/v1/sms/webhooks/twilio/{org_id}", "/api/v1/sms/webhooks/twilio/{org_id}/status"):
        op = schema["paths"][path]["post"]
        assert op["security"] == []
        assert "application/x-www-form-urlencoded" in op["requestBody"]["content"]
        assert any(p["name"] == "X-Twilio-Signature" and p["in"] == "header" for p in op["parameters"])
        assert {"403", "404"} <= set(op["responses"])
