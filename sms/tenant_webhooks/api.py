"""/api/v1/orgs/{org}/webhooks — tenant webhook endpoints (the API contract (README.md, /api/schema) "Webhooks (to tenants)").

Uniform CRUD, so a ModelViewSet-style viewset on a router (no trailing slashes), still thin: parse, call one
service, render. Secret key, admin role, paid plan — the same permission classes as every org endpoint. A key
sees only the endpoints of its own mode (live or test)."""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from sendora_sms.api.base import OrgApi
from sendora_sms.api.inputs import parse_object, parse_uuid
from sendora_sms.api.pagination import paginate
from sendora_sms.api.schema import error_responses, list_response
from sendora_sms.errors import NotFound
from sms.tenant_webhooks import services
from sms.tenant_webhooks.models import WebhookAttempt, WebhookEndpoint


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


class EndpointOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, endpoint):
        return {"id": str(endpoint.id), "url": endpoint.url, "events": endpoint.events,
                "description": endpoint.description, "enabled": endpoint.enabled,
                "disabled_reason": endpoint.disabled_reason or None, "created_at": _iso(endpoint.created_at)}


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(help_text="whsec_…: shown only in this response.")


class EndpointInput(serializers.Serializer):
    url = serializers.CharField(help_text="https URL; must resolve to a public address.")
    events = serializers.ListField(child=serializers.CharField(), required=False, help_text='Event types, or ["*"].')
    description = serializers.CharField(required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)

    TYPES = {"url": (str,), "events": (list,), "description": (str,), "enabled": (bool,)}


class AttemptOutput(serializers.Serializer):
    id = serializers.UUIDField()
    webhook_id = serializers.CharField()
    event_id = serializers.UUIDField()
    event_type = serializers.CharField()
    attempt = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    response_body = serializers.CharField()
    created_at = serializers.DateTimeField()

    def to_representation(self, attempt):
        message = attempt.message
        return {"id": str(attempt.id), "webhook_id": message.webhook_id, "event_id": str(message.event_id_public),
                "event_type": message.event_type, "attempt": attempt.attempt, "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms, "response_body": attempt.response_body,
                "created_at": _iso(attempt.created_at)}


def _no_body(request) -> None:
    """Actions take no body: an empty one or `{}`; anything else is 400 (not silently ignored)."""
    parse_object(request.data if request.data != {} else {}, types={})


class _EnvelopeSchema(AutoSchema):
    """Our lists are `{"data": [...], "next_cursor": …}` (list_response), not the bare array a viewset's `list`
    would get from drf-spectacular."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


_ACCEPTED = inline_serializer(name="WebhookAccepted", fields={"id": serializers.CharField(),
                                                              "webhook_id": serializers.CharField()})


@extend_schema_view(
    list=extend_schema(operation_id="webhook_list", tags=["webhooks"], responses={200: list_response(EndpointOutput),
                       **error_responses(400, 401, 403, 404)}),
    create=extend_schema(operation_id="webhook_create", tags=["webhooks"], request=EndpointInput,
                         responses={201: EndpointWithSecretOutput, **error_responses(
                             400, 401, 403, 404, 409, e400="`invalid_url` (not https, or a non-public address), "
                             "`invalid_events`, `validation_error`.", e409="`too_many_endpoints` (10).")}),
    retrieve=extend_schema(operation_id="webhook_get", tags=["webhooks"],
                           responses={200: EndpointOutput, **error_responses(401, 403, 404)}),
    partial_update=extend_schema(operation_id="webhook_update", tags=["webhooks"], request=EndpointInput,
                                 responses={200: EndpointOutput, **error_responses(400, 401, 403, 404)}),
    destroy=extend_schema(operation_id="webhook_delete", tags=["webhooks"],
                          responses={204: None, **error_responses(401, 403, 404)}),
)
class WebhookEndpointViewSet(OrgApi, viewsets.GenericViewSet):
    admin_only = True
    sms_endpoint = True
    http_method_names = ["get", "post", "patch", "delete"]
    lookup_url_kwarg = "endpoint_id"
    serializer_class = EndpointOutput
    schema = _EnvelopeSchema()

    def get_queryset(self):
        return WebhookEndpoint.objects.filter(org=self.org, mode=self.api_key.mode)

    def get_object(self):
        pk = parse_uuid(self.kwargs.get("endpoint_id"))
        endpoint = self.get_queryset().filter(pk=pk).first() if pk else None
        if endpoint is None:
            raise NotFound("No such webhook endpoint.")
        return endpoint

    def list(self, request, org_id):
        return Response(paginate(self.get_queryset(), request.query_params, lambda e: EndpointOutput(e).data))

    def create(self, request, org_id):
        data = parse_object(request.data, types=EndpointInput.TYPES, required=("url",))
        data.pop("enabled", None)
        created = services.webhook_endpoint_create(org=self.org, mode=self.api_key.mode, **data)
        return Response({**EndpointOutput(created.endpoint).data, "secret": created.secret}, status=201)

    def retrieve(self, request, org_id, endpoint_id):
        return Response(EndpointOutput(self.get_object()).data)

    def partial_update(self, request, org_id, endpoint_id):
        endpoint = self.get_object()  # "not yours" is 404 before anything about the body is said
        data = parse_object(request.data, types=EndpointInput.TYPES)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, **data)
        return Response(EndpointOutput(endpoint).data)

    def destroy(self, request, org_id, endpoint_id):
        services.webhook_endpoint_delete(endpoint=self.get_object())
        return Response(status=204)

    @extend_schema(operation_id="webhook_rotate_secret", tags=["webhooks"], request=None,
                   responses={200: EndpointWithSecretOutput, **error_responses(401, 403, 404)},
                   description="A new secret; the old one keeps signing beside it for 24 h.")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, org_id, endpoint_id):
        endpoint = self.get_object()
        _no_body(request)
        secret = services.webhook_endpoint_rotate_secret(endpoint=endpoint)
        return Response({**EndpointOutput(endpoint).data, "secret": secret})

    @extend_schema(operation_id="webhook_test", tags=["webhooks"], request=None,
                   responses={202: _ACCEPTED, **error_responses(401, 403, 404)},
                   description="Deliver one `webhook.test` event to this endpoint, whatever its `events` filter.")
    @action(detail=True, methods=["post"], url_path="test")
    def test(self, request, org_id, endpoint_id):
        endpoint = self.get_object()
        _no_body(request)
        message = services.webhook_test_send(endpoint=endpoint)
        return Response({"id": str(message.event_id_public), "webhook_id": message.webhook_id}, status=202)

    @extend_schema(operation_id="webhook_deliveries", tags=["webhooks"],
                   responses={200: list_response(AttemptOutput), **error_responses(400, 401, 403, 404)})
    @action(detail=True, methods=["get"], url_path="deliveries")
    def deliveries(self, request, org_id, endpoint_id):
        qs = WebhookAttempt.objects.filter(endpoint=self.get_object()).select_related("message")
        return Response(paginate(qs, request.query_params, lambda a: AttemptOutput(a).data))

    @extend_schema(operation_id="webhook_delivery_resend", tags=["webhooks"], request=None,
                   responses={202: _ACCEPTED, **error_responses(401, 403, 404)},
                   description="Deliver that attempt's message again (same `webhook-id`).")
    @action(detail=True, methods=["post"], url_path="deliveries/<str:delivery_id>/resend")
    def resend(self, request, org_id, endpoint_id, delivery_id):
        endpoint = self.get_object()
        _no_body(request)
        message = services.webhook_message_resend(endpoint=endpoint, attempt_id=parse_uuid(delivery_id))
        return Response({"id": str(message.event_id_public), "webhook_id": message.webhook_id}, status=202)


class _Router(SimpleRouter):
    lookup_value_converter = "str"


# Path-converter routes (not regexes), like every other route of the project; no trailing slashes.
router = _Router(trailing_slash=False, use_regex_path=False)
router.register("orgs/<str:org_id>/webhooks", WebhookEndpointViewSet, basename="webhook")
urlpatterns = router.urls
