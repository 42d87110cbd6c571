"""import_suppressions / export_suppressions: formats, bad rows with line numbers, idempotence, round trip,
bad arguments as one line with a non-zero exit."""
import datetime as dt
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEntry
from sms.models import Suppression, SuppressionReason
from tests.factories import OrgFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def run(name, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def listed(org) -> list[tuple[str, str, dt.datetime]]:
    return list(Suppression.objects.filter(org=org).order_by("phone_number")
                .values_list("phone_number", "reason", "created_at"))


# --- import formats --------------------------------------------------------------------------------


def test_csv_with_header_keeps_row_reason_and_created_at(org, tmp_path):
    path = write(tmp_path, "s.csv", "phone_number,reason,created_at\n"
                                    "+15551230001,stop_keyword,2024-03-01T10:00:00.123456Z\n"
                                    "(555) 123-0002,,\n"
                                    "555.123.0003,manual,2024-03-02T00:00:00+00:00\n")
    out, err = run("import_suppressions", str(org.pk), path)
    assert out.strip() == "imported 3, already present 0, invalid 0"
    assert err == ""
    rows = {p: (r, c) for p, r, c in listed(org)}
    assert rows["+15551230001"] == ("stop_keyword", dt.datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=dt.timezone.utc))
    assert rows["+15551230002"][0] == "import"  # no own reason → --reason default
    assert rows["+15551230003"][0] == "manual"
    assert Suppression.objects.filter(org=org, source="import").count() == 3


def test_bare_single_column_csv_uses_the_given_reason(org, tmp_path):
    path = write(tmp_path, "bare.csv", "+15551230001\n5551230002\n\n+1 (555) 123-0003\n")
    out, _ = run("import_suppressions", str(org.pk), path, "--reason", "user_request")
    assert out.strip() == "imported 3, already present 0, invalid 0"
    assert {r for _, r, _ in listed(org)} == {"user_request"}


def test_jsonl(org, tmp_path):
    path = write(tmp_path, "s.jsonl", '{"phone_number": "+15551230001", "reason": "carrier_opt_out"}\n'
                                      '{"phoneNumber": "555-123-0002"}\n'
                                      "\n"
                                      '{"phone_number": "+15551230003", "created_at": "2023-01-01T00:00:00Z"}\n')
    out, _ = run("import_suppressions", str(org.pk), path)
    assert out.strip() == "imported 3, already present 0, invalid 0"
    rows = {p: (r, c) for p, r, c in listed(org)}
    assert rows["+15551230001"][0] == "carrier_opt_out"
    assert rows["+15551230003"][1] == dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)


def test_utf8_bom_and_crlf_are_accepted(org, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffphone_number\r\n+15551230001\r\n+15551230002\r\n".encode())
    out, _ = run("import_suppressions", str(org.pk), str(path))
    assert out.strip() == "imported 2, already present 0, invalid 0"


def test_bad_rows_are_reported_with_line_numbers_and_skipped(org, tmp_path):
    path = write(tmp_path, "bad.csv", "phone_number,reason,created_at\n"
                                      "+15551230001,,\n"
                                      "not a number,,\n"
                                      "+15551230002,bogus,\n"
                                      "\n"
                                      "+15551230003,,yesterday\n"
                                      "+15551230004,,\n")
    out, err = run("import_suppressions", str(org.pk), path)
    assert out.strip() == "imported 2, already present 0, invalid 3"
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["line 3", "line 4", "line 6"]
    assert "not a number" in lines[0] and "bogus" in lines[1] and "yesterday" in lines[2]
    assert [p for p, _, _ in listed(org)] == ["+15551230001", "+15551230004"]


def test_bad_jsonl_lines_are_reported(org, tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"phone_number": "+15551230001"}\n{oops\n["+15551230002"]\n{"x": 1}\n')
    out, err = run("import_suppressions", str(org.pk), path)
    assert out.strip() == "imported 1, already present 0, invalid 3"
    assert [line.split(":")[0] for line in err.strip().splitlines()] == ["line 2", "line 3", "line 4"]


def test_reimport_changes_nothing(org, tmp_path):
    SuppressionFactory(org=org, phone_number="+15551230001", reason=SuppressionReason.STOP_KEYWORD)
    path = write(tmp_path, "s.csv", "+15551230001\n+15551230002\n+15551230002\n")
    out, _ = run("import_suppressions", str(org.pk), path)
    assert out.strip() == "imported 1, already present 2, invalid 0"
    before = listed(org)
    out, _ = run("import_suppressions", str(org.pk), path, "--reason", "manual")
    assert out.strip() == "imported 0, already present 3, invalid 0"
    assert listed(org) == before  # the existing stop_keyword row kept its reason and date


def test_small_batches_give_the_same_result(org, tmp_path):
    path = write(tmp_path, "s.csv", "".join(f"+1555123{i:04d}\n" for i in range(25)) + "junk\n")
    out, _ = run("import_suppressions", str(org.pk), path, "--batch-size", "4")
    assert out.strip() == "imported 25, already present 0, invalid 1"


def test_import_is_scoped_to_the_org_and_audited_once(org, other_org, tmp_path):
    SuppressionFactory(org=other_org, phone_number="+15551230001")
    path = write(tmp_path, "s.csv", "+15551230001\n+15551230002\n")
    out, _ = run("import_suppressions", str(org.pk), path)
    assert out.strip() == "imported 2, already present 0, invalid 0"
    entry = AuditEntry.objects.get(org=org, action="suppression.import")
    assert (entry.details["imported"], entry.details["invalid"]) == (2, 0)


def test_json_summary(org, tmp_path):
    path = write(tmp_path, "s.csv", "+15551230001\nx\n")
    out, _ = run("import_suppressions", str(org.pk), path, "--json")
    assert json.loads(out) == {"imported": 1, "already_present": 0, "invalid": 1}


def test_no_progress_output_when_stdout_is_not_a_terminal(org, tmp_path):
    path = write(tmp_path, "s.csv", "".join(f"+1555123{i:04d}\n" for i in range(30)))
    out, _ = run("import_suppressions", str(org.pk), path, "--batch-size", "5")
    assert out == "imported 30, already present 0, invalid 0\n"


def test_progress_is_shown_on_a_terminal(org, tmp_path, monkeypatch):
    from django.core.management.base import OutputWrapper

    monkeypatch.setattr(OutputWrapper, "isatty", lambda self: True)
    path = write(tmp_path, "s.csv", "".join(f"+1555123{i:04d}\n" for i in range(30)))
    out, _ = run("import_suppressions", str(org.pk), path, "--batch-size", "10")
    assert "\r30 rows processed" in out and out.endswith("imported 30, already present 0, invalid 0\n")


# --- export and round trip -------------------------------------------------------------------------


def _seed(org):
    base = dt.datetime(2024, 5, 1, 12, 0, 0, 654321, tzinfo=dt.timezone.utc)
    for i, reason in enumerate([SuppressionReason.STOP_KEYWORD, SuppressionReason.CARRIER_OPT_OUT,
                                SuppressionReason.MANUAL, SuppressionReason.IMPORT, SuppressionReason.USER_REQUEST]):
        s = SuppressionFactory(org=org, phone_number=f"+1555123{i:04d}", reason=reason)
        Suppression.objects.filter(pk=s.pk).update(created_at=base + dt.timedelta(minutes=i, microseconds=i))


def test_export_csv_to_stdout_oldest_first(org):
    _seed(org)
    out, _ = run("export_suppressions", str(org.pk))
    lines = out.splitlines()
    assert lines[0] == "phone_number,reason,created_at"
    assert lines[1] == "+15551230000,stop_keyword,2024-05-01T12:00:00.654321Z"
    assert len(lines) == 6


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_then_import_into_a_fresh_org_round_trips_exactly(org, tmp_path, fmt):
    _seed(org)
    target = tmp_path / f"out.{fmt}"
    _, err = run("export_suppressions", str(org.pk), "--output", str(target), "--format", fmt)
    assert err.strip() == f"exported 5 suppressions to {target}"
    fresh = OrgFactory()
    out, _ = run("import_suppressions", str(fresh.pk), str(target))
    assert out.strip() == "imported 5, already present 0, invalid 0"
    assert listed(fresh) == listed(org)


def test_export_jsonl_lines_are_objects(org):
    _seed(org)
    out, _ = run("export_suppressions", str(org.pk), "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {"phone_number": "+15551230000", "reason": "stop_keyword",
                       "created_at": "2024-05-01T12:00:00.654321Z"}


def test_export_of_an_empty_list_is_just_the_header(org):
    assert run("export_suppressions", str(org.pk))[0] == "phone_number,reason,created_at\n"


def test_export_streams_across_chunks_without_gaps(org):
    from sms.services.suppressions import suppressions_export

    for i in range(23):
        SuppressionFactory(org=org, phone_number=f"+1555124{i:04d}")
    Suppression.objects.filter(org=org).update(created_at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    text = "".join(suppressions_export(org=org, fmt="csv", chunk_size=5))  # equal timestamps: id tiebreak
    numbers = [line.split(",")[0] for line in text.splitlines()[1:]]
    assert sorted(numbers) == sorted(p for p, _, _ in listed(org)) and len(numbers) == 23


# --- bad arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("args, fragment", [
    (["import_suppressions", "nope", "x.csv"], "not a valid org id"),
    (["import_suppressions", str(uuid.UUID(int=7)), "x.csv"], "No org with id"),
    (["export_suppressions", str(uuid.UUID(int=7))], "No org with id"),
])
def test_bad_org_is_a_command_error(args, fragment):
    with pytest.raises(CommandError, match=fragment):
        run(*args)


def test_missing_file_is_a_command_error(org, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run("import_suppressions", str(org.pk), str(tmp_path / "missing.csv"))
    with pytest.raises(CommandError, match="is a directory"):
        run("import_suppressions", str(org.pk), str(tmp_path))


def test_non_utf8_file_is_a_command_error(org, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"+15551230001\n\xff\xfe\xfa\n")
    with pytest.raises(CommandError, match="not UTF-8"):
        run("import_suppressions", str(org.pk), str(path))


def test_bad_output_directory_is_a_command_error(org, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run("export_suppressions", str(org.pk), "--output", str(tmp_path / "no" / "such.csv"))
    with pytest.raises(CommandError, match="is a directory"):
        run("export_suppressions", str(org.pk), "--output", str(tmp_path))


def _cli_env() -> dict:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    return env


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=_cli_env(), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_cli_bad_arguments_are_one_line_with_a_nonzero_exit(tmp_path):
    org = OrgFactory()
    good = write(tmp_path, "ok.csv", "+15551230001\n")
    cases = [
        (["import_suppressions", str(uuid.UUID(int=9)), good], "No org with id"),
        (["import_suppressions", str(org.pk), str(tmp_path / "missing.csv")], "does not exist"),
        (["import_suppressions", str(org.pk), good, "--reason", "whim"], "invalid choice"),
        (["export_suppressions", str(org.pk), "--format", "xml"], "invalid choice"),
        (["export_suppressions", "not-an-id"], "not a valid org id"),
    ]
    for args, fragment in cases:
        result = cli(*args)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)
    ok = cli("import_suppressions", str(org.pk), good)
    assert ok.returncode == 0 and ok.stdout.strip() == "imported 1, already present 0, invalid 0"


# --- edge cases named by the issue ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\ufeff", "phone_number,reason,created_at\n", "\n\n"])
def test_empty_files_import_nothing_and_say_so(org, tmp_path, text):
    out, _ = run("import_suppressions", str(org.pk), write(tmp_path, "empty.csv", text))
    assert out.strip() == "imported 0, already present 0, invalid 0"
    assert not Suppression.objects.filter(org=org).exists()


def test_national_format_numbers_are_normalised_to_e164(org, tmp_path):
    path = write(tmp_path, "national.csv", "(415) 555-0123\n415.555.0124\r\n+1 415 555 0125\n")
    out, _ = run("import_suppressions", str(org.pk), path)
    assert out.strip() == "imported 3, already present 0, invalid 0"
    assert [p for p, _, _ in listed(org)] == ["+14155550123", "+14155550124", "+14155550125"]


def test_malformed_csv_quotes_are_bad_rows_not_a_crash(org, tmp_path):
    path = write(tmp_path, "quotes.csv", 'phone_number,reason\n"+15551230001,manual\n+15551230002,manual\n')
    out, err = run("import_suppressions", str(org.pk), path)
    # An unterminated quote swallows the rest of the file into one field (CSV rules): one bad row.
    assert out.strip() == "imported 0, already present 0, invalid 1"
    assert err.startswith("line ") and "invalid phone number" in err
    assert not Suppression.objects.filter(org=org).exists()
