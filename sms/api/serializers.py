"""Request parsing (format only) and response shapes for the SMS API.

Input serializers check the request's *shape* — a JSON object, known field names (with their
documented camelCase twins), JSON types — and raise 400 `validation_error`. The values
(E.164, body length, category, metadata size) are decision 1 of sms.services.send_create, which
records it in the audit log like every other decision.
"""
from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers

from sendora_sms.api.inputs import filter_error, parse_object
from sms import phones
from sms.models import Category, EventType
from sms.pricing import amount_str
from sms.statuses import DispatchState, SendStatus

# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------


class SendCreateInput(serializers.Serializer):
    """POST …/sms/send. (Declared fields document the request; `parse` does the checking.)"""

    to = serializers.CharField(help_text="Recipient, E.164 (`+15551234567`); common formats are normalised.")
    body = serializers.CharField(min_length=1, max_length=1600, help_text="1 to 1600 characters.")
    category = serializers.ChoiceField(choices=Category.CHOICES, required=False, default=Category.TRANSACTIONAL)
    metadata = serializers.DictField(required=False, help_text="Your JSON object, at most 4 KB serialised; "
                                     "stored and returned on the send.")
    shorten_links = serializers.BooleanField(required=False, allow_null=True, help_text=(
        "Replace each http(s) URL of the body by a short link (click tracking). Default: the org's setting "
        "(on unless turned off)."))

    # JSON type each field must have (None = also allowed to be null); camelCase twins → field.
    TYPES = {"to": (str,), "body": (str,), "category": (str, type(None)), "metadata": (dict, type(None)),
             "shorten_links": (bool, type(None))}
    REQUIRED = ("to", "body")
    TWINS: dict[str, str] = {"shortenLinks": "shorten_links"}

    @classmethod
    def parse(cls, data) -> dict:
        return parse_object(data, types=cls.TYPES, required=cls.REQUIRED, twins=cls.TWINS)




_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Filters are kept a day clear of the calendar's ends, so the day arithmetic of windows (until + 1 day)
# and time-zone conversions can never overflow into a 500.
INSTANT_MIN = dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc)
INSTANT_MAX = dt.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)


def parse_instant(name: str, raw: str) -> tuple[dt.datetime, bool]:
    """ISO-8601 date or datetime → (aware UTC datetime, was_date_only). Naive values are UTC.
    A '+' left unencoded in a query string arrives as a space; it is put back."""
    text = raw.strip()
    if "T" in text and " " in text:
        text = text.replace(" ", "+")
    try:
        if _DATE_ONLY.match(text):
            day = parse_date(text)
            if day is None:
                raise ValueError
            value = dt.datetime.combine(day, dt.time.min, tzinfo=dt.timezone.utc)
            if not INSTANT_MIN <= value <= INSTANT_MAX:
                raise filter_error(name, "is outside the supported range (0001-01-02 to 9999-12-30, UTC).")
            return value, True
        value = parse_datetime(text)
        if value is None:
            raise ValueError
    except (ValueError, TypeError):
        raise filter_error(name, "must be an ISO-8601 date or datetime (e.g. 2025-06-01T12:00:00Z).") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    try:
        value = value.astimezone(dt.timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        value = None
    if value is None or not INSTANT_MIN <= value <= INSTANT_MAX:
        raise filter_error(name, "is outside the supported range (0001-01-02 to 9999-12-30, UTC).")
    return value, False


class SendListFilters:
    """GET …/sms/sends query parameters → send_list kwargs; bad values → 400 invalid_filter."""

    @staticmethod
    def parse(params) -> dict:
        out: dict = {}
        status = params.get("status")
        if status:
            if status not in SendStatus.ALL:
                raise filter_error("status", f"must be one of {', '.join(SendStatus.ALL)}.")
            out["status"] = status
        phone = params.get("phone")
        if phone:
            try:
                out["phone"] = phones.normalize_phone(phone.replace(" ", "+", 1) if phone.startswith(" ") else phone)
            except phones.InvalidPhoneNumber:
                raise filter_error("phone", "is not a phone number.") from None
        category = params.get("category")
        if category:
            if category not in (Category.TRANSACTIONAL, Category.MARKETING):
                raise filter_error("category", "must be transactional or marketing.")
            out["category"] = category
        for name in ("created_after", "created_before"):
            raw = params.get(name)
            if raw:
                out[name] = parse_instant(name, raw)[0]
        if out.get("created_after") and out.get("created_before") and out["created_after"] >= out["created_before"]:
            raise filter_error("created_before", "must be later than created_after.")
        return out


class StatsWindow:
    """GET …/sms/stats `since` / `until` → whole UTC days [since_day, until_day).

    Counters are kept per UTC day, so the window is rounded outwards to whole days: `since` to the
    start of its day; `until` to the end of its day (a date-only `until` includes that whole day;
    a datetime at exactly 00:00 is an exclusive bound and adds nothing)."""

    @staticmethod
    def parse(params) -> dict:
        out: dict = {}
        if params.get("since"):
            out["since_day"] = parse_instant("since", params["since"])[0].date()
        if params.get("until"):
            until, date_only = parse_instant("until", params["until"])
            midnight = until.time() == dt.time.min and not date_only
            out["until_day"] = until.date() if midnight else until.date() + dt.timedelta(days=1)
        if "since_day" in out and "until_day" in out and out["since_day"] >= out["until_day"]:
            raise filter_error("until", "must be later than since.")
        return out


def parse_event_type(params) -> str | None:
    value = params.get("type")
    if not value:
        return None
    allowed = [t for t, _ in EventType.CHOICES]
    if value not in allowed:
        raise filter_error("type", f"must be one of {', '.join(allowed)}.")
    return value


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class SendLinkOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField(help_text="The URL as it appeared in the submitted body.")
    short_url = serializers.CharField()
    clicks = serializers.IntegerField(help_text="Real clicks (previews, scanners and HEAD never count).")
    first_clicked_at = serializers.DateTimeField(allow_null=True)


def _send_links(send) -> list[dict]:
    """The send's links in order of appearance: from the prefetch (list, detail) or the ones just created."""
    return [{"id": str(link.id), "url": link.url, "short_url": link.short_url, "clicks": link.clicks,
             "first_clicked_at": _datetime_out(link.first_clicked_at)} for link in send.links.all()]


class SendOutput(serializers.Serializer):
    id = serializers.UUIDField()
    org_id = serializers.UUIDField()
    to = serializers.CharField()
    locals()["from"] = serializers.CharField(source="from_number")  # `from` is a Python keyword
    body = serializers.CharField(help_text="What the handset receives (URLs replaced by short links).")
    category = serializers.ChoiceField(choices=Category.CHOICES)
    status = serializers.ChoiceField(choices=SendStatus.CHOICES)
    suppressed_reason = serializers.CharField(allow_null=True)
    segments = serializers.IntegerField()
    encoding = serializers.ChoiceField(choices=[("GSM-7", "GSM-7"), ("UCS-2", "UCS-2")])
    metadata = serializers.DictField()
    provider = serializers.CharField()
    provider_message_id = serializers.CharField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    mode = serializers.ChoiceField(choices=[("prod", "prod"), ("test", "test")])
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    dispatch_state = serializers.ChoiceField(choices=DispatchState.CHOICES, allow_null=True, help_text=(
        "Where the send is in dispatch: pending, in_flight, awaiting_provider, retrying, reconciling or parked "
        "(an operator decides); null once terminal or never queued."))
    review_reason = serializers.CharField(allow_null=True, help_text="Why the send is parked; else null.")
    original_body = serializers.CharField(help_text="The body as submitted.")
    links = SendLinkOutput(many=True, help_text="Short links of the body, in order of appearance.")
    price = serializers.SerializerMethodField(help_text=(
        "Decimal string, USD: estimated at acceptance (segments × the price per segment to the destination "
        "country), replaced by the provider's reported price when one arrives; \"0\" for a send that was not "
        "queued, a test send, or a send refunded after failing before the provider took it."))
    price_unit = serializers.CharField(help_text="`USD`.")

    BLANK_AS_NULL = ("suppressed_reason", "provider_message_id", "error_code", "error_message")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in self.BLANK_AS_NULL:  # "not set" reads as null, like Stripe/Twilio
            if data.get(name) == "":
                data[name] = None
        data["review_reason"] = _review_reason(instance)
        data["original_body"] = instance.original_body or instance.body
        data["links"] = _send_links(instance)
        return data

    def get_price(self, instance) -> str:
        return amount_str(instance.price)


def _review_reason(send) -> str | None:
    """Shown only for a parked send (the other states' notes are internal bookkeeping)."""
    return send.review_reason or None if send.dispatch_state == DispatchState.PARKED else None


def _datetime_out(value):
    """As DRF's DateTimeField renders it (ISO 8601 in the current time zone, `Z` for UTC)."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def send_output(send) -> dict:
    """SendOutput(send).data without the serializer machinery: the same dict (a unit test compares
    the two), for the send endpoint where DRF's field-by-field rendering was a measurable share of
    the request's CPU. SendOutput stays the documented schema."""
    return {
        "id": str(send.id), "org_id": str(send.org_id), "to": send.to, "from": send.from_number, "body": send.body,
        "category": send.category, "status": send.status, "suppressed_reason": send.suppressed_reason or None,
        "segments": send.segments, "encoding": send.encoding,
        "metadata": {str(key): value for key, value in send.metadata.items()},
        "provider": send.provider, "provider_message_id": send.provider_message_id or None,
        "error_code": send.error_code or None, "error_message": send.error_message or None, "mode": send.mode,
        "created_at": _datetime_out(send.created_at), "updated_at": _datetime_out(send.updated_at),
        "sent_at": _datetime_out(send.sent_at), "delivered_at": _datetime_out(send.delivered_at),
        "failed_at": _datetime_out(send.failed_at),
        "dispatch_state": send.dispatch_state, "review_reason": _review_reason(send),
        "original_body": send.original_body or send.body, "links": _send_links(send),
        "price": amount_str(send.price), "price_unit": send.price_unit,
    }


class TimelineEntryOutput(serializers.Serializer):
    status = serializers.CharField()
    source = serializers.CharField()
    detail = serializers.DictField()
    created_at = serializers.DateTimeField()


class EventOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=EventType.CHOICES)
    org_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    data = serializers.DictField()


class SendDetailOutput(SendOutput):
    timeline = TimelineEntryOutput(source="status_changes", many=True)
    events = EventOutput(many=True)


class QuotaOutput(serializers.Serializer):
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()


class CostOutput(serializers.Serializer):
    amount = serializers.CharField(help_text="Decimal string, USD.")
    currency = serializers.CharField(help_text="`USD`.")
    by_country = serializers.DictField(child=serializers.CharField(), help_text="ISO 3166-1 alpha-2 → decimal string.")


def _counts(name: str, keys) -> serializers.Serializer:
    from drf_spectacular.utils import inline_serializer

    return inline_serializer(name=name, fields={key: serializers.IntegerField() for key in keys})


class LinkStatsOutput(serializers.Serializer):
    sent = serializers.IntegerField(help_text="Short links created in the window.")
    clicked = serializers.IntegerField(help_text="Of those, links with at least one real click.")
    click_rate = serializers.FloatField(allow_null=True, help_text="clicked / sent; null when sent is 0.")


class SmsStatsOutput(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Start of the window (UTC midnight, inclusive).")
    until = serializers.DateTimeField(help_text="End of the window (UTC midnight, exclusive).")
    total = serializers.IntegerField()
    by_status = _counts("StatsByStatus", SendStatus.ALL)
    by_category = _counts("StatsByCategory", [c for c, _ in Category.CHOICES])
    segments = serializers.IntegerField()
    delivery_rate = serializers.FloatField(
        allow_null=True,
        help_text="Of the sends that reached a provider and have a final outcome, the share delivered: "
                  "delivered / (delivered + undelivered + failed − suppression_refused); null if none.")
    suppression_refused = serializers.IntegerField(
        help_text="Sends refused at acceptance because the recipient is on the suppression list (status `failed`, "
                  "`metadata.suppressed=true`, never handed to a provider). Counted in `by_status.failed` and "
                  "`total`, not in `delivery_rate`.")
    quota = QuotaOutput()
    links = LinkStatsOutput(help_text="Short links created in the window (sms/links).")
    cost = CostOutput(help_text="Live spend (USD) of sends created in the window, by destination country; "
                                "test sends cost nothing.")
