"""The long schemathesis run over /api/schema (issue #6 item 6); CI runs the same engine bounded.

    .venv/bin/python bench/fuzz_long.py [--examples 300] [--seed N]

Every operation of the OpenAPI document is fuzzed in-process (WSGI) with a valid admin sk_test_ key
of a seeded org that has provider credentials, in positive and negative generation modes, and again
with each id-bearing path parameter pinned to a real object. Checks on every response:
not_a_server_error, response_schema_conformance, status_code_conformance. The signed Twilio
webhooks are fuzzed by tests/security/test_fuzz_schemathesis.py (they take no API key).

It first runs the CI-sized pass (FUZZ_MAX_EXAMPLES, default 30 per operation × mode × variant) as
the baseline of the same run, then the long pass, and prints both side by side. Uses a throwaway
PostgreSQL database `test_sendora_fuzz` ($BENCH_DATABASE_URL moves it; it is created and dropped),
no Redis (tasks run in-process, rate limits in local memory). Exit status 1 on any finding.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.update({
    "DJANGO_SETTINGS_MODULE": "sendora_sms.settings",
    "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_fuzz"),
    "SECRET_KEY": "fuzz-secret-key-not-for-production", "DEBUG": "false", "ALLOWED_HOSTS": "*",
    "SMS_ENCRYPTION_KEYS": os.environ.get("SMS_ENCRYPTION_KEYS", "c2VuZG9yYS10ZXN0LWtleS0wMDAwMDAwMDAwMDAwMDA="),
    })
for name in ("REDIS_URL", "CELERY_BROKER_URL"):
    os.environ.pop(name, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="max examples per operation × mode × variant")
    parser.add_argument("--baseline-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "30")))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()

    import django

    django.setup()
    import logging

    logging.disable(logging.CRITICAL)  # 4xx warnings by the thousand; the findings are printed below
    from django.db import connection

    from tests.security import fuzzing
    from tests.security.conftest import _make_tenant

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        tenant = _make_tenant("A", 3)
        _make_tenant("B", 7)  # a second tenant, so a leak would have something to leak
        results = {}
        with fuzzing.in_process_app() as app:
            for label, examples, shrink in (("baseline (CI size)", args.baseline_examples, False),
                                            ("long run", args.examples, True)):
                started = time.monotonic()
                report = fuzzing.fuzz(app=app, org_id=tenant.org_id, api_key=tenant.admin_key.raw_key,
                                      real_path_values=tenant.object_ids(), max_examples=examples, shrink=shrink)
                results[label] = {"max_examples": examples, **report.summary(),
                                  "wall_seconds": round(time.monotonic() - started, 1),
                                  "failures": [f[:2000] for f in report.failures]}
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)

    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        base, long = results["baseline (CI size)"], results["long run"]
        print(f"schemathesis {__import__('schemathesis').__version__} over /api/schema, "
              f"{base['operations']} operations, positive + negative modes\n")
        print(f"| {'':28} | {'baseline (CI size)':>20} | {'long run':>20} |")
        print(f"|{'-' * 30}|{'-' * 22}|{'-' * 22}|")
        for key in ("max_examples", "requests", "server_errors", "check_failures", "wall_seconds"):
            print(f"| {key:28} | {base[key]:>20} | {long[key]:>20} |")
        statuses = sorted(set(base["by_status"]) | set(long["by_status"]))
        for status in statuses:
            print(f"| {'HTTP ' + status:28} | {base['by_status'].get(status, 0):>20} | "
                  f"{long['by_status'].get(status, 0):>20} |")
        print("\nrequests per operation (long run):")
        for op, n in long["by_operation"].items():
            print(f"  {n:>7}  {op}")
        print("\n4xx/5xx codes (long run):")
        for code, n in long["error_codes"].items():
            print(f"  {n:>7}  {code}")
        for label in results:
            for failure in results[label]["failures"]:
                print(f"\nFINDING ({label}): {failure}")
    return 1 if any(r["server_errors"] or r["check_failures"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
