"""Cursor pagination: ?limit= (default 50, max 200) and ?cursor=; {"data": [...], "next_cursor": … | null}.

The cursor is an opaque token over (created_at, id), so pages are stable under concurrent inserts.
"""
import base64
import binascii
import json
import re
from datetime import datetime, timezone

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet

from sendora_sms.api.parsers import strict_json_loads
from sendora_sms.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def cursor_encode(created_at: datetime, pk) -> str:
    raw = json.dumps([created_at.isoformat(), str(pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSOR_CHARS = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # what cursor_encode emits; a real cursor is ~90 chars
_LIMIT = re.compile(r"^[0-9]{1,3}$")  # canonical ASCII digits only: no sign, spaces, "_" or full-width digits


def _invalid_cursor(cursor: str) -> ValidationFailed:
    return ValidationFailed("The cursor is not valid.", code="invalid_cursor", details={"cursor": cursor[:200]})


def _decode(cursor: str) -> tuple[datetime, str]:
    """A forged cursor (any base64, any JSON: nested, huge, wrong types, dates at the calendar's edges)
    is 400 invalid_cursor, never a 500."""
    if not _CURSOR_CHARS.match(cursor):
        raise _invalid_cursor(cursor)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = strict_json_loads(base64.urlsafe_b64decode(padded.encode()))
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise ValueError("not a [created_at, pk] pair")
        created_at = datetime.fromisoformat(value[0])
        if created_at.tzinfo is None:
            raise ValueError("naive datetime")
        created_at.astimezone(timezone.utc)  # OverflowError at the calendar's edges
        return created_at, value[1]
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise _invalid_cursor(cursor) from exc


def parse_limit(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_LIMIT
    value = int(raw) if isinstance(raw, str) and _LIMIT.match(raw) else 0
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_LIMIT}.", code="invalid_limit")
    return value


def paginate(queryset: QuerySet, params, serialize) -> dict:
    """Newest first by (created_at, pk). `serialize` turns one row into a dict."""
    limit = parse_limit(params.get("limit"))
    cursor = params.get("cursor")
    qs = queryset.order_by("-created_at", "-pk")
    if cursor:
        created_at, pk = _decode(cursor)
        try:  # a hand-made cursor with a pk of the wrong type must be 400, not a 500 from the query
            pk = queryset.model._meta.pk.to_python(pk)
        except (DjangoValidationError, ValueError, TypeError):
            pk = None
        if pk is None or created_at.tzinfo is None:
            raise ValidationFailed("The cursor is not valid.", code="invalid_cursor", details={"cursor": cursor})
        # (created_at, pk) < (x, y). The redundant `created_at <= x` gives PostgreSQL an index range to
        # start from; with the OR alone it read the org's rows from the newest on every page and
        # filtered them (a page from the middle of 1,000,000 sends: 134 ms instead of 0.085 ms).
        qs = qs.filter(Q(created_at__lte=created_at),
                       Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
    rows = list(qs[: limit + 1])
    page, more = rows[:limit], len(rows) > limit
    next_cursor = cursor_encode(page[-1].created_at, page[-1].pk) if more else None
    return {"data": [serialize(row) for row in page], "next_cursor": next_cursor}
