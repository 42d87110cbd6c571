"""OpenAPI helpers: the error shape and the list envelope, for @extend_schema on every view."""
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    400: "Bad input: `validation_error`, `invalid_json`, `invalid_phone_number`, `invalid_body`, `invalid_category`, "
         "`invalid_metadata`, `invalid_filter`, `invalid_cursor`, `invalid_limit`.",
    401: "`unauthenticated`: missing, unknown or revoked API key.",
    403: "`secret_key_required` (publishable key), `admin_required` (member key), `plan_upgrade_required` (free plan).",
    404: "`org_not_found` (the path's org is not the key's) or `not_found`.",
    409: "`idempotency_key_reused`, `already_suppressed`.",
    412: "`provider_not_configured`: the org has no provider credentials yet.",
    413: "`payload_too_large`.",
    429: "`rate_limited` (with `Retry-After`) or `quota_exceeded`.",
    503: "`service_unavailable`: a dependency is down; retry.",
}

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)


def error_responses(*statuses: int, **descriptions: str) -> dict:
    """{status: OpenApiResponse(Error)} for each status; descriptions override by 'e404=' keyword."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=descriptions.get(f"e{status}", ERROR_DESCRIPTIONS[status]))
        for status in statuses
    }


def list_response(item_serializer) -> OpenApiResponse:
    name = getattr(item_serializer, "__name__", item_serializer.__class__.__name__).replace("Output", "") + "List"
    return OpenApiResponse(inline_serializer(name=name, fields={
        "data": item_serializer(many=True),
        "next_cursor": serializers.CharField(allow_null=True),
    }))
