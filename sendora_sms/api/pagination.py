"""Cursor pagination: ?limit= (default 50, max 200) and ?cursor=; {"data": [...], "next_cursor": … | null}.

The cursor is an opaque token over (created_at, id), so pages are stable under concurrent inserts.
"""
import base64
import json
from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet

from sendora_sms.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def cursor_encode(created_at: datetime, pk) -> str:
    raw = json.dumps([created_at.isoformat(), str(pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created_at), pk
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationFailed("The cursor is not valid.", code="invalid_cursor", details={"cursor": cursor}) from exc


def parse_limit(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
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
