"""sms.services.suppressions against the real database: idempotent ensure, create/delete errors, START lifting
rules, streaming import/export, audit rows — and that the send path honours the list."""
import datetime as dt
import io
import threading

import pytest
from django.db import connection, transaction

from audit.models import ActorType, AuditEntry
from audit.services import Actor, RequestContext
from sendora_sms.errors import InvalidPhoneNumber, ValidationFailed
from sms.errors import AlreadySuppressed, NotSuppressed
from sms.models import Suppression, SuppressionReason
from sms.services.suppressions import (
    suppression_create,
    suppression_delete,
    suppression_ensure,
    suppression_lift,
    suppressions_export,
    suppressions_import,
)
from tests.factories import OrgFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

PHONE = "+15551234567"
SYSTEM = Actor.system("tests")


def test_ensure_creates_once_normalises_and_audits_only_the_creation(org):
    first, created = suppression_ensure(org=org, phone_number="(555) 123-4567", reason="stop_keyword",
                                        source="webhook", source_message_sid="SM1", actor=Actor.provider("twilio"),
                                        context=RequestContext(request_id="req-1"))
    assert created and first.pk and first.phone_number == PHONE
    again, created_again = suppression_ensure(org=org, phone_number=PHONE, reason="manual", source="api",
                                              actor=SYSTEM)
    assert not created_again and again.pk == first.pk
    assert again.reason == "stop_keyword" and again.source_message_sid == "SM1"  # the first reason stands
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_type, entry.resource_id, entry.request_id) == (
        "suppression.create", ActorType.PROVIDER, PHONE, "req-1")
    assert entry.details == {"phone_number": PHONE, "reason": "stop_keyword", "source": "webhook",
                             "source_message_sid": "SM1"}


def test_ensure_inside_a_caller_transaction_that_rolls_back_leaves_nothing(org):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            suppression_ensure(org=org, phone_number=PHONE, reason="stop_keyword", source="webhook", actor=SYSTEM)
            raise RuntimeError("caller failed")
    assert not Suppression.objects.exists() and not AuditEntry.objects.exists()


def test_ensure_rejects_bad_phone_and_reason(org):
    with pytest.raises(InvalidPhoneNumber):
        suppression_ensure(org=org, phone_number="hello", reason="manual", source="api", actor=SYSTEM)
    with pytest.raises(ValidationFailed) as exc:
        suppression_ensure(org=org, phone_number=PHONE, reason="whim", source="api", actor=SYSTEM)
    assert exc.value.code == "invalid_reason"


@pytest.mark.django_db(transaction=True)
def test_concurrent_ensures_for_one_number_create_one_row_and_one_audit_entry():
    org = OrgFactory()
    barrier = threading.Barrier(8)
    results = []

    def add():
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                results.append(suppression_ensure(org=org, phone_number=PHONE, reason="stop_keyword",
                                                  source="webhook", actor=SYSTEM)[1])
        finally:
            connection.close()

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False] * 7 + [True]
    assert Suppression.objects.filter(org=org).count() == 1
    assert AuditEntry.objects.filter(action="suppression.create").count() == 1


def test_create_conflicts_with_409_and_is_per_org(org, other_org):
    suppression_create(org=org, phone_number=PHONE, source="api", actor=SYSTEM)
    with pytest.raises(AlreadySuppressed) as exc:
        suppression_create(org=org, phone_number="+1 555 123 4567", source="api", actor=SYSTEM)
    assert exc.value.http_status == 409 and exc.value.code == "already_suppressed"
    suppression_create(org=other_org, phone_number=PHONE, source="api", actor=SYSTEM)  # another org: fine
    assert Suppression.objects.count() == 2


def test_delete_removes_any_reason_and_404s_when_absent(org):
    SuppressionFactory(org=org, phone_number=PHONE, reason=SuppressionReason.IMPORT)
    suppression_delete(org=org, phone_number="555-123-4567", actor=SYSTEM)
    assert not Suppression.objects.exists()
    entry = AuditEntry.objects.get(action="suppression.delete")
    assert entry.details["reason"] == "import"
    with pytest.raises(NotSuppressed) as exc:
        suppression_delete(org=org, phone_number=PHONE, actor=SYSTEM)
    assert exc.value.http_status == 404 and exc.value.code == "not_suppressed"


def test_delete_does_not_touch_another_orgs_row(org, other_org):
    SuppressionFactory(org=other_org, phone_number=PHONE)
    with pytest.raises(NotSuppressed):
        suppression_delete(org=org, phone_number=PHONE, actor=SYSTEM)
    assert Suppression.objects.filter(org=other_org).exists()


@pytest.mark.parametrize("reason, lifted", [
    (SuppressionReason.STOP_KEYWORD, True), (SuppressionReason.CARRIER_OPT_OUT, True),
    (SuppressionReason.USER_REQUEST, True), (SuppressionReason.MANUAL, False), (SuppressionReason.IMPORT, False),
])
def test_lift_only_removes_suppressions_the_recipient_created(org, reason, lifted):
    SuppressionFactory(org=org, phone_number=PHONE, reason=reason)
    result, row = suppression_lift(org=org, phone_number=PHONE, actor=SYSTEM)
    assert result is lifted
    assert row.reason == reason
    assert Suppression.objects.filter(org=org, phone_number=PHONE).exists() is not lifted
    assert AuditEntry.objects.filter(action="suppression.delete").count() == (1 if lifted else 0)


def test_lift_of_an_unsuppressed_number_is_a_no_op(org):
    assert suppression_lift(org=org, phone_number=PHONE, actor=SYSTEM) == (False, None)


# --- import / export -----------------------------------------------------------------------------------


def test_import_reports_counts_and_line_numbers_and_calls_back(org):
    SuppressionFactory(org=org, phone_number="+15551230001")
    progress, errors = [], []
    rows = io.StringIO("phone\n+15551230001\n+15551230002\nnope\n+15551230003\n+15551230003\n")
    report = suppressions_import(org=org, rows=rows, reason="import", actor=SYSTEM, batch_size=2,
                                 on_progress=lambda r: progress.append(r.processed), on_error=errors.append)
    assert (report.imported, report.already_present, report.invalid) == (2, 2, 1)
    assert [e.line for e in report.errors] == [4] and errors == report.errors
    assert progress == [2, 5]  # after each batch of 2 valid rows (the bad row counts as processed)
    assert report.summary() == "imported 2, already present 2, invalid 1"


def test_import_accepts_a_list_of_lines(org):
    report = suppressions_import(org=org, rows=["+15551230001", "+15551230002\n"], reason="manual", actor=SYSTEM)
    assert report.imported == 2
    assert set(Suppression.objects.values_list("reason", flat=True)) == {"manual"}


def test_import_of_an_empty_file_imports_nothing(org):
    report = suppressions_import(org=org, rows=io.StringIO(""), reason="import", actor=SYSTEM)
    assert (report.imported, report.invalid) == (0, 0)


def test_header_without_a_phone_column_is_reported(org):
    report = suppressions_import(org=org, rows=io.StringIO("name,email\nbob,b@x\n"), reason="import", actor=SYSTEM)
    assert report.invalid == 1 and report.errors[0].line == 1 and "phone number column" in report.errors[0].error
    assert report.imported == 0  # the rest of a file with an unknown layout is not guessed at


def test_import_rejects_an_unknown_default_reason(org):
    with pytest.raises(ValidationFailed):
        suppressions_import(org=org, rows=[PHONE], reason="because", actor=SYSTEM)


def test_export_rejects_an_unknown_format(org):
    with pytest.raises(ValidationFailed):
        list(suppressions_export(org=org, fmt="xml"))


def test_export_import_round_trip_preserves_reason_and_created_at(org):
    stamp = dt.datetime(2022, 2, 2, 2, 2, 2, 222222, tzinfo=dt.timezone.utc)
    for i, reason in enumerate(r for r, _ in SuppressionReason.CHOICES):
        row = SuppressionFactory(org=org, phone_number=f"+1555123000{i}", reason=reason)
        Suppression.objects.filter(pk=row.pk).update(created_at=stamp + dt.timedelta(seconds=i))
    for fmt in ("csv", "jsonl"):
        fresh = OrgFactory()
        report = suppressions_import(org=fresh, rows=io.StringIO("".join(suppressions_export(org=org, fmt=fmt))),
                                     reason="import", actor=SYSTEM)
        assert report.imported == 5
        columns = ("phone_number", "reason", "created_at")
        assert list(Suppression.objects.filter(org=fresh).order_by("phone_number").values_list(*columns)) == \
            list(Suppression.objects.filter(org=org).order_by("phone_number").values_list(*columns))


def test_import_fast_path_agrees_with_normalize_phone():
    import random

    from sms.phones import InvalidPhoneNumber as PhoneError
    from sms.phones import normalize_phone
    from sms.services.suppressions import normalize_for_import

    rng = random.Random(4)
    samples = [f"+1{rng.randrange(10**9, 10**10)}" for _ in range(3000)]  # all area codes incl. 0xx/1xx
    samples += [f"+1{rng.randrange(10**8, 10**9)}" for _ in range(300)]  # 9 digits: too short
    samples += [f"+1{rng.randrange(10**10, 10**11)}" for _ in range(300)]  # 11 digits: too long
    samples += ["+12025550123 ", "+1 202 555 0123", "+442079460958", "+15551234567", "+10005550123"]

    def outcome(fn, raw):
        try:
            return fn(raw)
        except PhoneError:
            return "invalid"

    for raw in samples:
        assert outcome(normalize_for_import, raw) == outcome(normalize_phone, raw), raw


def test_a_bare_file_whose_first_row_is_junk_still_imports_the_rest(org):
    report = suppressions_import(org=org, rows=io.StringIO("call me\n+15551230001\n+15551230002\n"), reason="import",
                                 actor=SYSTEM)
    assert (report.imported, report.invalid, report.errors[0].line) == (2, 1, 1)


@pytest.mark.parametrize("header", ["phone_number", "Phone", "PhoneNumber", "mobile", "msisdn,name"])
def test_recognised_header_rows_are_skipped(org, header):
    report = suppressions_import(org=org, rows=io.StringIO(f"{header}\n+15551230001\n"), reason="import", actor=SYSTEM)
    assert (report.imported, report.invalid) == (1, 0)
