"""Suppression list API: /api/v1/orgs/{org_id}/sms/suppressions[/{phone}].

GET (any secret key, test or live) lists; POST and DELETE need an admin LIVE key — the list is one per
org, shared by both modes, so a test key may read it but not change it (403 live_key_required). One URL
serves GET and POST, so `SuppressionCollectionApi` combines the list and create views and decides
`admin_only` and `live_only` per method (orgs.permissions accepts callables).
"""
from __future__ import annotations

from urllib.parse import unquote

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from audit.services import Actor, RequestContext
from sendora_sms.api.base import SmsApi
from sendora_sms.api.inputs import filter_error, parse_object
from sendora_sms.api.pagination import paginate
from sendora_sms.api.schema import error_responses, list_response
from sendora_sms.errors import InvalidPhoneNumber, ValidationFailed
from sms import phones
from sms.models import SuppressionReason
from sms.selectors import suppression_list
from sms.services.suppressions import suppression_create, suppression_delete

_REASONS = [r for r, _ in SuppressionReason.CHOICES]
# Reasons an operator may give through the API. `stop_keyword` is created only by a recipient's own STOP,
# `carrier_opt_out` only by the carrier's signal (21610) and `import` only by an import: none can be forged.
_OPERATOR_REASONS = [SuppressionReason.USER_REQUEST, SuppressionReason.MANUAL]


class SuppressionCreateInput(serializers.Serializer):
    """POST body. `phoneNumber` and its snake_case twin `phone_number` are accepted."""

    phone_number = serializers.CharField(help_text="E.164 (`+15551234567`); common formats are normalised. "
                                                   "Also accepted as `phoneNumber`.")
    reason = serializers.ChoiceField(choices=[(r, r) for r in _OPERATOR_REASONS], required=False,
                                     default=SuppressionReason.MANUAL)

    TYPES = {"phone_number": (str,), "reason": (str, type(None))}
    TWINS = {"phoneNumber": "phone_number"}

    @classmethod
    def parse(cls, data) -> dict:
        out = parse_object(data, types=cls.TYPES, required=("phone_number",), twins=cls.TWINS)
        reason = out.get("reason") or SuppressionReason.MANUAL
        if reason not in _OPERATOR_REASONS:
            raise ValidationFailed(f"reason must be one of: {', '.join(_OPERATOR_REASONS)}.", code="invalid_reason",
                                   details={"reason": reason, "allowed": _OPERATOR_REASONS})
        return {"phone_number": out["phone_number"], "reason": reason}


class SuppressionOutput(serializers.Serializer):
    phone_number = serializers.CharField()
    reason = serializers.ChoiceField(choices=SuppressionReason.CHOICES)
    source = serializers.CharField(help_text="api, admin, webhook, import, dispatch")
    source_message_sid = serializers.CharField(allow_null=True, help_text="The inbound/outbound message that "
                                               "caused it (STOP keyword, 21610), else null.")
    created_at = serializers.DateTimeField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["source_message_sid"] = data["source_message_sid"] or None
        return data




def parse_list_filters(params) -> dict:
    out: dict = {}
    reason = params.get("reason")
    if reason:
        if reason not in _REASONS:
            raise filter_error("reason", f"must be one of {', '.join(_REASONS)}.")
        out["reason"] = reason
    phone = params.get("phone")
    if phone:
        # An unencoded "+" in a query string arrives as a space.
        raw = "+" + phone[1:] if phone.startswith(" ") else phone
        try:
            out["phone"] = phones.normalize_phone(raw)
        except phones.InvalidPhoneNumber:
            raise filter_error("phone", "is not a phone number.") from None
    return out


def _actor_context(view) -> tuple[Actor, RequestContext]:
    return Actor.api_key(view.api_key), RequestContext.from_request(view.request)


class SuppressionListApi(SmsApi):
    @extend_schema(
        operation_id="sms_suppression_list", tags=["sms"],
        parameters=[
            OpenApiParameter("reason", str, enum=_REASONS),
            OpenApiParameter("phone", str, description="Any common format (normalised to E.164)."),
            OpenApiParameter("limit", int, description="1–200, default 50"),
            OpenApiParameter("cursor", str, description="`next_cursor` of the previous page"),
        ],
        responses={200: list_response(SuppressionOutput), **error_responses(
            400, 401, 403, 404, e400="`invalid_filter` (bad `reason` or `phone`), `invalid_cursor`, `invalid_limit`.")},
        description="The org's suppression list, newest first. Any secret key.",
    )
    def get(self, request, org_id):
        qs = suppression_list(org=self.org, **parse_list_filters(request.query_params))
        return Response(paginate(qs, request.query_params, lambda s: SuppressionOutput(s).data))


class SuppressionCreateApi(SmsApi):
    admin_only = True
    live_only = True

    @extend_schema(
        operation_id="sms_suppression_create", tags=["sms"],
        request=SuppressionCreateInput,
        responses={201: SuppressionOutput, **error_responses(
            400, 401, 403, 404, 409,
            e400="`validation_error` (body shape), `invalid_phone_number`, `invalid_reason`.",
            e403="`admin_required` (member key), `live_key_required` (test key), `secret_key_required`, "
                 "`plan_upgrade_required`.",
            e409="`already_suppressed`: the number is already on the list (details give its reason).")},
        examples=[OpenApiExample("Add", request_only=True, value={"phoneNumber": "+15551234567", "reason": "manual"})],
        description="Add a number to the org's suppression list (admin key). Every send to it is then stored "
                    "`failed` with `metadata.suppressed=true`. Audited.",
    )
    def post(self, request, org_id):
        data = SuppressionCreateInput.parse(request.data)
        actor, context = _actor_context(self)
        suppression = suppression_create(org=self.org, phone_number=data["phone_number"], reason=data["reason"],
                                         source="api", actor=actor, context=context)
        return Response(SuppressionOutput(suppression).data, status=201)


class SuppressionCollectionApi(SuppressionListApi, SuppressionCreateApi):
    """GET + POST on one path: admin is required for POST only."""

    def admin_only(self, request) -> bool:  # noqa: D401 — called by AdminRoleRequired
        return request.method not in SAFE_METHODS

    def live_only(self, request) -> bool:  # noqa: D401 — called by LiveKeyForWrites
        return request.method not in SAFE_METHODS


class SuppressionDeleteApi(SmsApi):
    admin_only = True
    live_only = True

    @extend_schema(
        operation_id="sms_suppression_delete", tags=["sms"],
        parameters=[OpenApiParameter("phone", str, OpenApiParameter.PATH,
                                     description="E.164, URL-encoded (`%2B15551234567`) or raw (`+15551234567`).")],
        responses={204: OpenApiResponse(description="Removed."), **error_responses(
            400, 401, 403, 404, e400="`invalid_phone_number`.",
            e403="`admin_required` (member key), `live_key_required` (test key), `secret_key_required`, "
                 "`plan_upgrade_required`.",
            e404="`org_not_found`, or `not_suppressed` (the number is not on the list).")},
        description="Remove a number from the suppression list (admin key), whatever its reason. Audited.",
    )
    def delete(self, request, org_id, phone):
        raw = unquote(phone)  # the path is decoded once already; tolerate a double-encoded %252B
        try:
            normalised = phones.normalize_phone(raw)
        except phones.InvalidPhoneNumber as exc:
            raise InvalidPhoneNumber(details={"phone": str(exc)}) from None
        actor, context = _actor_context(self)
        suppression_delete(org=self.org, phone_number=normalised, actor=actor, context=context)
        return Response(status=204)
