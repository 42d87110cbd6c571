"""Suppression list: the numbers an org must never message again (opt-outs, manual blocks, imports).

Writes:
- `suppression_ensure` — idempotent add used by automatic paths (STOP keyword, Twilio 21610, dispatch).
  `INSERT … ON CONFLICT DO NOTHING RETURNING id`: the unique (org, phone_number) constraint decides,
  never a read-then-write, so concurrent webhooks for one number store one row. Runs in the caller's
  transaction (a savepoint when there is one); audited only when a row was created.
- `suppression_create` / `suppression_delete` — the API/dashboard add and remove (409 / 404), audited.
- `suppression_lift` — START/UNSTOP/YES: removes the number only when its reason is one the recipient
  created themselves (`SuppressionReason.LIFTED_BY_START`); a manual/imported block stays.
- `suppressions_import` — streaming bulk import (CSV with header, bare one-column CSV, or JSONL) in
  batches; one audit entry per import with the counts.
- `suppressions_export` — streaming export (CSV or JSONL), oldest first, in a format the import reads
  back exactly (reason and created_at preserved).

These services open plain (non-durable) `transaction.atomic()` blocks: the Django admin wraps its add
and delete views in its own transaction and calls `suppression_create` / `suppression_delete` from
inside it, and `suppression_ensure` is called from within other services' durable transactions.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audit.services import Actor, RequestContext, audit_record
from sendora_sms.api.parsers import strict_json_loads
from sendora_sms.errors import InvalidPhoneNumber, ValidationFailed
from sms.errors import AlreadySuppressed, NotSuppressed
from sms.models import Suppression, SuppressionReason
from sms.phones import InvalidPhoneNumber as PhoneError
from sms.phones import normalize_phone

logger = logging.getLogger("sms.suppressions")

_TABLE = Suppression._meta.db_table
VALID_REASONS = frozenset(r for r, _ in SuppressionReason.CHOICES)
EXPORT_FORMATS = ("csv", "jsonl")
CSV_HEADER = ("phone_number", "reason", "created_at")
DEFAULT_BATCH_SIZE = 5000
MAX_REPORTED_ERRORS = 1000


_CREATED_AT = Suppression._meta.get_field("created_at")


def _db_datetime(value: dt.datetime):
    """A datetime as the backend stores it (raw SQL bypasses the field's own conversion)."""
    return _CREATED_AT.get_db_prep_value(value, connection, prepared=False)


# Already-canonical North American E.164 ("+1" + NXX area code + 7 digits): exactly what normalize_phone
# returns for it (10 national digits is the NANP possible length; area code not starting 0/1), so bulk
# import skips libphonenumber for it — ~15 µs a row, most of a large import's CPU. Everything else goes
# through normalize_phone. tests/unit/sms/services/test_suppressions.py checks the equivalence.
_CANONICAL_NANP = re.compile(r"\+1[2-9]\d{9}")


def normalize_for_import(raw: str) -> str:
    if type(raw) is str and _CANONICAL_NANP.fullmatch(raw):
        return raw
    return normalize_phone(raw)


def _normalize(phone_number: str) -> str:
    try:
        return normalize_phone(phone_number)
    except PhoneError as exc:
        raise InvalidPhoneNumber(details={"phone_number": str(exc)}) from None


def _check_reason(reason: str) -> str:
    if reason not in VALID_REASONS:
        raise ValidationFailed(f"reason must be one of: {', '.join(sorted(VALID_REASONS))}.",
                               code="invalid_reason", details={"reason": reason})
    return reason


def _audit(*, org, actor: Actor, action: str, suppression: Suppression, context: RequestContext | None,
           extra: dict | None = None) -> None:
    audit_record(org=org, actor=actor, action=action, resource_type="suppression",
                 resource_id=suppression.phone_number, context=context,
                 details={"phone_number": suppression.phone_number, "reason": suppression.reason,
                          "source": suppression.source, **(extra or {})})


# -------------------------------------------------------------------------------------------------
# Single-number writes
# -------------------------------------------------------------------------------------------------


def suppression_ensure(*, org, phone_number: str, reason: str, source: str, source_message_sid: str = "",
                       actor: Actor, context: RequestContext | None = None) -> tuple[Suppression, bool]:
    """Add the number unless it is already suppressed; (suppression, created). Never raises on a duplicate.

    An existing suppression keeps its original reason/source (the first reason is the one that counts).
    """
    phone = _normalize(phone_number)
    _check_reason(reason)
    now = timezone.now()
    with transaction.atomic():
        for _ in range(3):  # retried only if the conflicting row is deleted between our INSERT and SELECT
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {_TABLE} (org_id, phone_number, reason, source, source_message_sid, created_at) "
                    f"VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (org_id, phone_number) DO NOTHING RETURNING id",
                    [org.pk, phone, reason, source[:16], (source_message_sid or "")[:64], _db_datetime(now)],
                )
                row = cursor.fetchone()
            if row is not None:
                break
            existing = Suppression.objects.filter(org=org, phone_number=phone).first()
            if existing is not None:
                return existing, False
        else:  # pragma: no cover — needs three add/remove races in a row
            raise RuntimeError("suppression_ensure: the row kept disappearing under concurrent deletes")
        suppression = Suppression(id=row[0], org=org, phone_number=phone, reason=reason, source=source[:16],
                                  source_message_sid=(source_message_sid or "")[:64], created_at=now)
        suppression._state.adding = False
        _audit(org=org, actor=actor, action="suppression.create", suppression=suppression, context=context,
               extra={"source_message_sid": suppression.source_message_sid} if source_message_sid else None)
    return suppression, True


def suppression_create(*, org, phone_number: str, reason: str = SuppressionReason.MANUAL, source: str,
                       actor: Actor, context: RequestContext | None = None) -> Suppression:
    """Add a number explicitly (API / dashboard). 400 invalid_phone_number, 409 already_suppressed."""
    suppression, created = suppression_ensure(org=org, phone_number=phone_number, reason=reason, source=source,
                                              actor=actor, context=context)
    if not created:
        raise AlreadySuppressed(details={"phone_number": suppression.phone_number,
                                         "reason": suppression.reason})
    return suppression


def suppression_delete(*, org, phone_number: str, actor: Actor, context: RequestContext | None = None) -> None:
    """Remove a number (API / dashboard), whatever its reason. 404 not_suppressed."""
    phone = _normalize(phone_number)
    with transaction.atomic():
        removed = _delete_returning(org=org, phone=phone, reasons=None)
        if removed is None:
            raise NotSuppressed(details={"phone_number": phone})
        _audit(org=org, actor=actor, action="suppression.delete", suppression=removed, context=context)


def suppression_lift(*, org, phone_number: str, actor: Actor, context: RequestContext | None = None,
                     source_message_sid: str = "") -> tuple[bool, Suppression | None]:
    """START / UNSTOP / YES: remove the suppression if the recipient created it themselves.

    Returns (lifted, suppression): (True, removed row) when lifted; (False, row) when a manual/imported
    suppression stays in force; (False, None) when the number was not suppressed.
    """
    phone = _normalize(phone_number)
    with transaction.atomic():
        removed = _delete_returning(org=org, phone=phone, reasons=SuppressionReason.LIFTED_BY_START)
        if removed is not None:
            _audit(org=org, actor=actor, action="suppression.delete", suppression=removed, context=context,
                   extra={"lifted_by": "opt_in_keyword", "source_message_sid": source_message_sid})
            return True, removed
        return False, Suppression.objects.filter(org=org, phone_number=phone).first()


def _delete_returning(*, org, phone: str, reasons) -> Suppression | None:
    """DELETE … RETURNING: the row that was removed, decided by the DELETE itself (no read-then-write)."""
    sql = (f"DELETE FROM {_TABLE} WHERE org_id = %s AND phone_number = %s"
           + (f" AND reason IN ({', '.join(['%s'] * len(reasons))})" if reasons else "")
           + " RETURNING id, reason, source, source_message_sid, created_at")
    params = [org.pk, phone, *(sorted(reasons) if reasons else [])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    created_at = row[4]
    if isinstance(created_at, str):  # SQLite returns text from raw SQL
        created_at = _CREATED_AT.to_python(created_at)
        if timezone.is_naive(created_at):
            created_at = created_at.replace(tzinfo=dt.timezone.utc)
    return Suppression(id=row[0], org=org, phone_number=phone, reason=row[1], source=row[2],
                       source_message_sid=row[3], created_at=created_at)


# -------------------------------------------------------------------------------------------------
# Bulk import
# -------------------------------------------------------------------------------------------------


@dataclass
class RowError:
    line: int
    value: str
    error: str


@dataclass
class ImportReport:
    imported: int = 0
    already_present: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)  # first MAX_REPORTED_ERRORS bad rows
    lines: int = 0

    @property
    def processed(self) -> int:
        return self.imported + self.already_present + self.invalid

    def summary(self) -> str:
        return f"imported {self.imported}, already present {self.already_present}, invalid {self.invalid}"


def _parse_created_at(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        parsed = dt.datetime.fromisoformat(str(value).strip())
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    try:
        parsed = parsed.astimezone(dt.timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        raise ValueError("outside the calendar") from None
    if not IMPORT_CREATED_AT_MIN <= parsed <= timezone.now() + dt.timedelta(days=1):
        raise ValueError("outside 1970-01-01 … now")
    return parsed


# A suppression's created_at comes from a file: it must be a real past instant (an export re-imports exactly).
IMPORT_CREATED_AT_MIN = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


_PHONE_HEADERS = frozenset({"phone_number", "phone", "phonenumber", "phone number", "number", "mobile", "msisdn",
                            "e164", "to"})


def _iter_records(rows: Iterable) -> Iterator[tuple[int, str, str | None, str | None] | tuple[int, RowError]]:
    """Yield (line, phone, reason, created_at) or (line, RowError) from text lines.

    Formats (decided from the first non-blank line): JSONL when it starts with "{"; CSV with a header
    when its first cell is not number-like (columns phone_number|phone|phoneNumber, reason, created_at);
    otherwise a bare CSV whose first column is the number.
    """
    lines = iter(rows)
    lineno = 0
    first = None
    for raw in lines:
        lineno += 1
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        if lineno == 1:
            raw = raw.lstrip("\ufeff")
        if raw.strip():
            first = raw
            break
    if first is None:
        return
    start = lineno

    def decoded() -> Iterator[str]:
        yield first
        for item in lines:
            yield item.decode("utf-8") if isinstance(item, bytes) else item

    if first.lstrip().startswith("{"):
        for offset, raw in enumerate(decoded()):
            line = start + offset
            if not raw.strip():
                continue
            try:
                obj = strict_json_loads(raw)  # no lone surrogates, NUL, NaN or duplicate keys (a bad row)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                yield line, RowError(line, raw.strip()[:100], f"invalid JSON: {exc}")
                continue
            phone = obj.get("phone_number", obj.get("phoneNumber", obj.get("phone")))
            if not isinstance(phone, str):
                yield line, RowError(line, raw.strip()[:100], "missing phone_number")
                continue
            yield line, phone, obj.get("reason") or None, obj.get("created_at") or None
        return

    reader = csv.reader(decoded())
    header = None
    for record in reader:
        line = start + reader.line_num - 1
        if not record or not any(cell.strip() for cell in record):
            continue
        if header is None and reader.line_num == 1:
            head = [cell.strip().lstrip("\ufeff").lower() for cell in record]
            phone_col = next((i for i, h in enumerate(head) if h in _PHONE_HEADERS), None)
            if phone_col is not None:
                header = head
                reason_col = head.index("reason") if "reason" in head else None
                created_col = head.index("created_at") if "created_at" in head else None
                continue
            if len(head) > 1 and head[0] and not any(ch.isdigit() for ch in head[0]):
                yield line, RowError(line, ",".join(record)[:100],
                                     f"header has no phone number column (one of: {', '.join(sorted(_PHONE_HEADERS))})")
                return
            # Otherwise a bare one-column file; an unrecognised first row is just reported as a bad row.
            header = []
        if header:
            def cell(i):
                return record[i].strip() if i is not None and i < len(record) else ""
            yield line, cell(phone_col), cell(reason_col) or None, cell(created_col) or None
        else:
            yield line, record[0], None, None


def suppressions_import(*, org, rows: Iterable, reason: str = SuppressionReason.IMPORT, actor: Actor,
                        context: RequestContext | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                        on_progress: Callable[[ImportReport], None] | None = None,
                        on_error: Callable[[RowError], None] | None = None) -> ImportReport:
    """Import numbers from text lines (an open file, StringIO, list of strings), streaming.

    Each number is normalised to E.164; a row's own `reason` / `created_at` columns are kept (so an
    export re-imports exactly), else `reason` applies and created_at is now. Bad rows are counted and
    reported with their line numbers and skipped. Numbers already on the list are left untouched
    (`already present`), so re-importing a file changes nothing. Memory stays constant: rows are
    inserted `batch_size` at a time, each batch committed with one INSERT … ON CONFLICT DO NOTHING.
    `on_progress(report)` is called after each batch; `on_error(row_error)` for every bad row as it is
    met (the report keeps only the first MAX_REPORTED_ERRORS).
    """
    _check_reason(reason)
    report = ImportReport()
    batch: list[tuple[str, str, dt.datetime]] = []
    now = timezone.now()

    def bad(error: RowError) -> None:
        report.invalid += 1
        if on_error:
            on_error(error)
        if len(report.errors) < MAX_REPORTED_ERRORS:
            report.errors.append(error)

    def flush() -> None:
        if not batch:
            return
        inserted = _insert_batch(org=org, batch=batch)
        report.imported += inserted
        report.already_present += len(batch) - inserted
        batch.clear()
        if on_progress:
            on_progress(report)

    for item in _iter_records(rows):
        if len(item) == 2:
            line, error = item
            report.lines = line
            bad(error)
            continue
        line, raw_phone, row_reason, raw_created = item
        report.lines = line
        try:
            phone = normalize_for_import(raw_phone)
        except PhoneError as exc:
            bad(RowError(line, str(raw_phone)[:100], f"invalid phone number: {exc}"))
            continue
        if row_reason is not None and row_reason not in VALID_REASONS:
            bad(RowError(line, str(raw_phone)[:100], f"invalid reason {row_reason!r}"))
            continue
        try:
            created_at = _parse_created_at(raw_created) if raw_created else now
        except (TypeError, ValueError):
            bad(RowError(line, str(raw_phone)[:100], f"invalid created_at {raw_created!r}"))
            continue
        batch.append((phone, row_reason or reason, created_at))
        if len(batch) >= batch_size:
            flush()
    flush()
    audit_record(org=org, actor=actor, action="suppression.import", resource_type="suppression", context=context,
                 details={"imported": report.imported, "already_present": report.already_present,
                          "invalid": report.invalid, "default_reason": reason})
    return report


def _insert_batch(*, org, batch: list[tuple[str, str, dt.datetime]]) -> int:
    """Insert one batch, skipping numbers already present; returns how many rows were inserted."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # One statement, three array parameters: no per-row SQL, no model instances.
            phones, reasons, created = zip(*batch)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {_TABLE} (org_id, phone_number, reason, source, source_message_sid, created_at) "
                    f"SELECT %s, p, r, 'import', '', c FROM unnest(%s::varchar[], %s::varchar[], "
                    f"%s::timestamptz[]) AS t(p, r, c) ON CONFLICT (org_id, phone_number) DO NOTHING",
                    [org.pk, list(phones), list(reasons), list(created)],
                )
                return cursor.rowcount
        # Other backends (SQLite in embedded mode): the same statement row by row.
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_TABLE} (org_id, phone_number, reason, source, source_message_sid, created_at) "
                f"VALUES (%s, %s, %s, 'import', '', %s) ON CONFLICT (org_id, phone_number) DO NOTHING",
                [(org.pk, p, r, _db_datetime(c)) for p, r, c in batch],
            )
            return max(cursor.rowcount, 0)


# -------------------------------------------------------------------------------------------------
# Export
# -------------------------------------------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def suppressions_export(*, org, fmt: str = "csv", chunk_size: int = 5000) -> Iterator[str]:
    """Yield the org's suppression list, oldest first, as CSV (with header) or JSONL text chunks.

    Streams with keyset pagination on (created_at, id) so memory stays constant for any list size.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationFailed(f"format must be one of: {', '.join(EXPORT_FORMATS)}.", code="invalid_format")
    if fmt == "csv":
        yield ",".join(CSV_HEADER) + "\n"
    last = None
    while True:
        qs = Suppression.objects.filter(org=org)
        if last is not None:
            # A row-value comparison is one index range condition on (org, created_at, id); the
            # equivalent `a > x OR (a = x AND id > y)` makes PostgreSQL re-scan from the start each chunk.
            qs = qs.extra(where=["(created_at, id) > (%s, %s)"], params=[_db_datetime(last[0]), last[1]])
        rows = list(qs.order_by("created_at", "id").values_list("phone_number", "reason", "created_at", "id")
                    [:chunk_size])
        if not rows:
            return
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerows((p, r, _iso(c)) for p, r, c, _ in rows)
            yield buf.getvalue()
        else:
            yield "".join(json.dumps({"phone_number": p, "reason": r, "created_at": _iso(c)}) + "\n"
                          for p, r, c, _ in rows)
        last = (rows[-1][2], rows[-1][3])
        if len(rows) < chunk_size:
            return
