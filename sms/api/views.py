"""SMS API views: parse → one service or selector → render. Errors are typed exceptions rendered
by sendora_sms/api/exception_handler.py."""
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.response import Response

from audit.services import RequestContext
from sendora_sms.api.base import OrgApi, SmsApi
from sendora_sms.api.pagination import paginate
from sendora_sms.api.schema import error_responses, list_response
from sendora_sms.errors import ValidationFailed
from sms.api.serializers import (
    EventOutput,
    SendCreateInput,
    SendDetailOutput,
    SendListFilters,
    SendOutput,
    SmsStatsOutput,
    StatsWindow,
    parse_event_type,
    send_output,
)
from sms.models import EventType
from sms.selectors import event_list, send_get, send_list, send_stats
from sms.services import send_create, send_rejection_record
from sms.statuses import SendStatus

_LIST_PARAMS = [OpenApiParameter("limit", int, description="1–200, default 50"),
                OpenApiParameter("cursor", str, description="`next_cursor` of the previous page")]


class SendCreateApi(SmsApi):
    @extend_schema(
        operation_id="sms_send_create", tags=["sms"],
        request=SendCreateInput,
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER,
            description="Retrying with the same key and body returns the first response and sends nothing new; "
                        "the same key with a different body is 409 `idempotency_key_reused`.")],
        responses={
            202: OpenApiResponse(SendOutput, description="Accepted: `queued`, or stored without sending — "
                                 "`failed` with `metadata.suppressed=true` (recipient on the suppression list) or "
                                 "`suppressed` / `recent_duplicate` (same recipient and body queued in the last 60 s)."),
            **error_responses(
                400, 401, 403, 404, 409, 412, 413, 429, 503,
                e400="`validation_error` (not a JSON object, unknown or ill-typed field, missing `to`/`body`), "
                     "`invalid_json`, `invalid_phone_number`, `invalid_body`, `invalid_category`, "
                     "`invalid_metadata`, `invalid_idempotency_key`.",
                e409="`idempotency_key_reused`: the Idempotency-Key was used with a different body.",
                e403="`secret_key_required`, `plan_upgrade_required`, or `country_not_allowed` (the destination "
                     "country is not on the org's list; `details.country`).",
                e429="`rate_limited` (per-org sends per second; `Retry-After` header), `suspected_pumping` (too many "
                     "sends to one number range in the last hour; `Retry-After`), `spend_cap_exceeded` (`details.cap`, "
                     "`details.resets_at`) or `quota_exceeded` (monthly quota used up; `details.resets_at`)."),
        },
        examples=[OpenApiExample("Send", request_only=True, value={
            "to": "+15551234567", "body": "Your code is 482910", "category": "transactional",
            "metadata": {"user_id": "u_42"}})],
        description="Accept one SMS. Decisions, in order: validation (400), destination country allowed (403 "
                    "`country_not_allowed`), provider configured (412), per-org rate (429 `rate_limited`), pumping "
                    "velocity (429 `suspected_pumping`), suppression list (stored `failed`), 60 s duplicate (stored "
                    "`suppressed`), spend caps (429 `spend_cap_exceeded`) and quota (429 `quota_exceeded`), then "
                    "`queued` with its estimated `price` and handed to the dispatch workers in the same transaction.",
    )
    def post(self, request, org_id):
        payload_bytes = len(request.body)  # read before request.data consumes the stream
        context = RequestContext.from_request(request)
        try:
            fields = SendCreateInput.parse(request.data)
        except (ValidationFailed, ParseError) as exc:
            error = exc if isinstance(exc, ValidationFailed) else ValidationFailed(str(exc.detail), code="invalid_json")
            send_rejection_record(org=self.org, api_key=self.api_key, error=error, context=context,
                                  payload_bytes=payload_bytes)
            raise error from None
        result = send_create(org=self.org, api_key=self.api_key, idempotency_key=request.META.get("HTTP_IDEMPOTENCY_KEY"),
                             context=context, payload_bytes=payload_bytes, **fields)
        response = Response(send_output(result.send), status=202)
        if result.replayed:
            response["Idempotent-Replayed"] = "true"  # as Stripe does
        return response


class SendListApi(SmsApi):
    @extend_schema(
        operation_id="sms_send_list", tags=["sms"],
        parameters=[
            OpenApiParameter("status", str, enum=SendStatus.ALL),
            OpenApiParameter("phone", str, description="Recipient in any common format (normalised to E.164)."),
            OpenApiParameter("category", str, enum=["transactional", "marketing"]),
            OpenApiParameter("created_after", str, description="ISO-8601 date or datetime (exclusive)."),
            OpenApiParameter("created_before", str, description="ISO-8601 date or datetime (exclusive)."),
            *_LIST_PARAMS,
        ],
        responses={200: list_response(SendOutput), **error_responses(
            400, 401, 403, 404, e400="`invalid_filter` (bad filter value), `invalid_cursor`, `invalid_limit`.")},
        description="The org's sends, newest first. A bad filter value is 400 `invalid_filter`.",
    )
    def get(self, request, org_id):
        qs = send_list(org=self.org, mode=self.api_key.mode, **SendListFilters.parse(request.query_params))
        return Response(paginate(qs, request.query_params, send_output))


class SendDetailApi(SmsApi):
    @extend_schema(
        operation_id="sms_send_retrieve", tags=["sms"],
        responses={200: SendDetailOutput, **error_responses(401, 403, 404, e404="`org_not_found` or `not_found` "
                                                             "(no such send in this org, or a malformed id).")},
        description="One send with its status `timeline` (oldest first) and its platform `events`.",
    )
    def get(self, request, org_id, send_id):
        return Response(SendDetailOutput(send_get(org=self.org, send_id=send_id, with_history=True,
                                                  mode=self.api_key.mode)).data)


class SmsStatsApi(SmsApi):
    @extend_schema(
        operation_id="sms_stats", tags=["sms"],
        parameters=[
            OpenApiParameter("since", str, description="ISO-8601; rounded down to the start of its UTC day. "
                                                       "Default: the start of the current quota period."),
            OpenApiParameter("until", str, description="ISO-8601; rounded up to the end of its UTC day (a date "
                                                       "includes that day). Default: the end of the quota period."),
        ],
        responses={200: SmsStatsOutput, **error_responses(
            400, 401, 403, 404, e400="`invalid_filter`: `since`/`until` not ISO-8601, or `until` not after `since`.")},
        description="Counters of sends created in the window, by status and category, plus the quota. Kept per UTC "
                    "day on the write path, so the window has day granularity and the answer never scans sends.",
    )
    def get(self, request, org_id):
        return Response(SmsStatsOutput(send_stats(org=self.org, mode=self.api_key.mode,
                                                  **StatsWindow.parse(request.query_params))).data)


class EventListApi(OrgApi):
    @extend_schema(
        operation_id="event_list", tags=["events"],
        parameters=[OpenApiParameter("type", str, enum=[t for t, _ in EventType.CHOICES]),
                    *_LIST_PARAMS],
        responses={200: list_response(EventOutput), **error_responses(
            400, 401, 403, 404, e400="`invalid_filter` (unknown `type`), `invalid_cursor`, `invalid_limit`.",
            e403="`secret_key_required` (publishable key).")},
        description="Platform events of the org (the outbox), newest first; filter by `type`.",
    )
    def get(self, request, org_id):
        qs = event_list(org=self.org, type=parse_event_type(request.query_params), mode=self.api_key.mode)
        return Response(paginate(qs, request.query_params, lambda event: EventOutput(event).data))
