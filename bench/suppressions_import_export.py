"""Benchmark: suppression import/export of N numbers on PostgreSQL beside raw-COPY baselines, one run.

    .venv/bin/python bench/suppressions_import_export.py [--rows 1000000] [--batch-size 5000]

Targets (issue #4): 1,000,000 numbers imported in < 60 s and exported in < 20 s.

What it does (database `sendora_bench_suppressions`, dropped and re-created; $BENCH_SUPPRESSIONS_DATABASE_URL):
  1. writes a CSV of N distinct numbers (header `phone_number`; 90 % E.164, 10 % "(202) 555-0123" style)
     to a temporary file;
  2. baseline import: `COPY … FROM STDIN` of that file into an unindexed temporary table — the floor
     for "get these bytes into PostgreSQL";
  2b. SQL floor: INSERT … SELECT from that table into sms_suppression (another org) ON CONFLICT DO NOTHING —
     what the real table's indexes cost with no Python per row;
  3. `manage.py import_suppressions` (in-process call_command): streaming parse, libphonenumber
     normalisation of every row, batched INSERT … ON CONFLICT DO NOTHING into the real table with its
     unique (org, phone_number) and (org, created_at, id) indexes, one commit per batch;
  4. the same import again (every number already present: the idempotent path);
  5. baseline export: `COPY (SELECT phone_number, reason, created_at … ORDER BY created_at, id) TO STDOUT`
     into a file;
  6. `manage.py export_suppressions --output` (keyset-paginated, CSV formatting in Python).
Prints wall-clock seconds, rows/s and the ratio to the baseline as Markdown and JSON. Peak RSS is
printed too (the import/export must not grow with N).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import recreate_database  # noqa: E402
DB_URL = os.environ.get("BENCH_SUPPRESSIONS_DATABASE_URL",
                        "postgres://postgres@127.0.0.1:5432/sendora_bench_suppressions")



def setup_django() -> None:
    os.environ.update({
        "DATABASE_URL": DB_URL, "SECRET_KEY": "bench-secret-key-not-for-production", "DEBUG": "false",
        "SMS_ENCRYPTION_KEYS": os.environ.get("SMS_ENCRYPTION_KEYS", "c2VuZG9yYS10ZXN0LWtleS0wMDAwMDAwMDAwMDAwMDA="),
        "DJANGO_SETTINGS_MODULE": "sendora_sms.settings",
    })
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def write_numbers(path: str, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("phone_number\n")
        chunk = []
        for i in range(rows):
            number = 2002000000 + i * 3  # NANP, area codes 200…, all distinct
            if i % 10 == 9:  # every tenth in a human format: exercises libphonenumber, not the E.164 fast path
                digits = str(number)
                chunk.append(f'"({digits[:3]}) {digits[3:6]}-{digits[6:]}"\n')
            else:
                chunk.append(f"+1{number}\n")
            if len(chunk) == 50_000:
                handle.write("".join(chunk))
                chunk.clear()
        handle.write("".join(chunk))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()

    recreate_database(DB_URL)
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from orgs.services import org_create
    from sms.models import Suppression

    org = org_create(name="Bench suppressions", plan="enterprise")
    tmp = tempfile.mkdtemp(prefix="bench-suppressions-")
    source = os.path.join(tmp, "numbers.csv")
    write_numbers(source, args.rows)
    size_mb = os.path.getsize(source) / 1e6
    rss_before = peak_rss_mb()

    def copy_in():
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_copy (phone_number varchar(20))")
            with open(source, "rb") as handle, cursor.cursor.copy(
                    "COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                while data := handle.read(1 << 20):
                    copy.write(data)
            cursor.execute("SELECT count(*) FROM bench_copy")
            return cursor.fetchone()[0]

    baseline_import_s, copied = timed(copy_in)
    assert copied == args.rows, copied
    floor_org = org_create(name="Bench suppressions (SQL floor)", plan="enterprise")

    def sql_floor():
        # What the database alone needs for the real table (unique + created_at indexes), no Python per row.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO sms_suppression (org_id, phone_number, reason, source, source_message_sid, created_at) "
                "SELECT %s, phone_number, 'import', 'import', '', now() FROM bench_copy "
                "ON CONFLICT (org_id, phone_number) DO NOTHING", [floor_org.pk])
            return cursor.rowcount

    floor_s, floor_rows = timed(sql_floor)
    assert floor_rows == args.rows, floor_rows

    def do_import():
        out = io.StringIO()
        call_command("import_suppressions", str(org.pk), source, "--batch-size", str(args.batch_size),
                     stdout=out, stderr=io.StringIO())
        return out.getvalue().strip()

    import_s, import_summary = timed(do_import)
    assert Suppression.objects.filter(org=org).count() == args.rows
    reimport_s, reimport_summary = timed(do_import)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sms_suppression")

    baseline_out = os.path.join(tmp, "copy_out.csv")

    def copy_out():
        with connection.cursor() as cursor, open(baseline_out, "wb") as handle:
            with cursor.cursor.copy(
                    "COPY (SELECT phone_number, reason, created_at FROM sms_suppression WHERE org_id = %s "
                    "ORDER BY created_at, id) TO STDOUT WITH (FORMAT csv, HEADER true)", [org.pk]) as copy:
                for data in copy:
                    handle.write(data)

    baseline_export_s, _ = timed(copy_out)
    export_path = os.path.join(tmp, "export.csv")

    def do_export():
        call_command("export_suppressions", str(org.pk), "--output", export_path, stdout=io.StringIO(),
                     stderr=io.StringIO())

    export_s, _ = timed(do_export)
    with open(export_path, encoding="utf-8") as handle:
        exported = sum(1 for _ in handle) - 1
    assert exported == args.rows, exported

    n = args.rows
    results = {
        "rows": n, "file_mb": round(size_mb, 1), "batch_size": args.batch_size,
        "baseline_copy_in_s": round(baseline_import_s, 2), "sql_insert_floor_s": round(floor_s, 2), "import_s": round(import_s, 2),
        "import_rows_per_s": round(n / import_s), "import_summary": import_summary,
        "reimport_s": round(reimport_s, 2), "reimport_summary": reimport_summary,
        "baseline_copy_out_s": round(baseline_export_s, 2), "export_s": round(export_s, 2),
        "export_rows_per_s": round(n / export_s),
        "import_vs_copy": round(import_s / baseline_import_s, 1), "export_vs_copy": round(export_s / baseline_export_s, 1),
        "peak_rss_mb_before": round(rss_before), "peak_rss_mb_after": round(peak_rss_mb()),
        "import_target_met": import_s < 60, "export_target_met": export_s < 20,
    }
    print(f"\n## Suppression import/export, {n:,} numbers ({size_mb:.1f} MB CSV), PostgreSQL\n")
    print("| step | seconds | rows/s | baseline (raw COPY) | ratio | target |")
    print("|---|---|---|---|---|---|")
    print(f"| import_suppressions | {import_s:.2f} | {n / import_s:,.0f} | {baseline_import_s:.2f} s | "
          f"{results['import_vs_copy']}× | < 60 s {'✓' if import_s < 60 else '✗'} |")
    print(f"| (floor) INSERT … SELECT from the COPY table into sms_suppression | {floor_s:.2f} | {n / floor_s:,.0f} "
          f"| — | — | |")
    print(f"| re-import (all present) | {reimport_s:.2f} | {n / reimport_s:,.0f} | — | — | |")
    print(f"| export_suppressions | {export_s:.2f} | {n / export_s:,.0f} | {baseline_export_s:.2f} s | "
          f"{results['export_vs_copy']}× | < 20 s {'✓' if export_s < 20 else '✗'} |")
    print(f"\nimport: {import_summary}; re-import: {reimport_summary}; "
          f"peak RSS {results['peak_rss_mb_before']} MB before → {results['peak_rss_mb_after']} MB after\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
