"""GET /api/v1/orgs/{org}/sms/links (README "Links"): the org's short links, newest first; a key sees its
own mode's links only. Filters `send_id`, `created_after`; a bad value is 400 `invalid_filter`."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from sendora_sms.api.base import SmsApi
from sendora_sms.api.inputs import filter_error, parse_uuid
from sendora_sms.api.pagination import paginate
from sendora_sms.api.schema import error_responses, list_response
from sms.api.serializers import _datetime_out, parse_instant
from sms.links.selectors import link_list


class LinkOutput(serializers.Serializer):
    id = serializers.UUIDField()
    send_id = serializers.UUIDField()
    url = serializers.CharField(help_text="The target as it appeared in the submitted body.")
    short_url = serializers.CharField()
    clicks = serializers.IntegerField(help_text="Real clicks (previews, scanners and HEAD never count).")
    previews = serializers.IntegerField(help_text="Requests recorded as link previews or scanners.")
    first_clicked_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


def link_output(link) -> dict:
    return {"id": str(link.id), "send_id": str(link.send_id), "url": link.url, "short_url": link.short_url,
            "clicks": link.clicks, "previews": link.previews,
            "first_clicked_at": _datetime_out(link.first_clicked_at), "expires_at": _datetime_out(link.expires_at),
            "created_at": _datetime_out(link.created_at)}


def _filters(params) -> dict:
    out: dict = {}
    raw = params.get("send_id")
    if raw:
        send_id = parse_uuid(raw)
        if send_id is None:
            raise filter_error("send_id", "must be a send id (a UUID).")
        out["send_id"] = send_id
    raw = params.get("created_after")
    if raw:
        out["created_after"] = parse_instant("created_after", raw)[0]
    return out


class LinkListApi(SmsApi):
    @extend_schema(
        operation_id="sms_link_list", tags=["sms"],
        parameters=[OpenApiParameter("send_id", str, description="Only this send's links."),
                    OpenApiParameter("created_after", str, description="ISO-8601 date or datetime (exclusive)."),
                    OpenApiParameter("limit", int, description="1–200, default 50"),
                    OpenApiParameter("cursor", str, description="`next_cursor` of the previous page")],
        responses={200: list_response(LinkOutput), **error_responses(
            400, 401, 403, 404, e400="`invalid_filter` (bad filter value), `invalid_cursor`, `invalid_limit`.")},
        description="The org's short links, newest first, with their click counts.",
    )
    def get(self, request, org_id):
        qs = link_list(org=self.org, mode=self.api_key.mode, **_filters(request.query_params))
        return Response(paginate(qs, request.query_params, link_output))


urlpatterns = [path("orgs/<str:org_id>/sms/links", LinkListApi.as_view(), name="sms-link-list")]
