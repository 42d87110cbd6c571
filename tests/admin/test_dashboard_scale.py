"""The dashboard at millions of rows: 1,000,000 sends and 1,000,000 audit entries (and 250,000 suppressions;
generate_series, one INSERT … SELECT per table), then every list page — unfiltered, each filter, each search — as a superuser
(all orgs) and as an admin of one org. For each page:

- the number of queries is bounded (no per-row queries, no COUNT(*) of the table, no SELECT DISTINCT);
- every query that reads sms_send / audit_auditentry / sms_suppression is planned with an index (EXPLAIN: no Seq Scan on
  them) — and so is the slowest query of the page;
- the page time is recorded (test-artifacts/dashboard_scale.json; figures in docs/benchmarks.md).

DASHBOARD_SCALE_ROWS=… changes the row count (default 1,000,000), e.g. for a quick local run.
"""
import json
import os
import re
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.admin import ACTIONS
from audit.models import AuditEntry
from orgs.models import Role
from sms.models import Send, Suppression
from tests.factories import MembershipFactory, OrgFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
ROWS = int(os.environ.get("DASHBOARD_SCALE_ROWS", "1000000"))
BIG_TABLES = ("sms_send", "audit_auditentry", "sms_suppression")
SUPPRESSION_ROWS = max(ROWS // 4, 1000)
# Org A holds half the rows; four other orgs share the rest.
ORG_COUNT = 5


def _insert_generated(model, n: int, exprs: dict[str, str], org_ids: list) -> None:
    """INSERT … SELECT … FROM generate_series(1, n) AS g(i): the columns in `exprs` as SQL over i (and
    org_ids[…] for org_id), every other column its field's default (so a column added later still loads)."""
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.column in exprs:
            expr = exprs[field.column].replace("%", "%%").replace("%%s", "%s")
            columns.append(connection.ops.quote_name(field.column))
            values.append(expr)
            params.extend([[str(pk) for pk in org_ids]] * expr.count("%s"))
        elif field.primary_key and field.get_internal_type() == "UUIDField":
            columns.append(connection.ops.quote_name(field.column))
            values.append("gen_random_uuid()")
        elif field.primary_key or field.has_db_default():
            continue  # serial id / database default
        else:
            columns.append(connection.ops.quote_name(field.column))
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    sql = (f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
           f"SELECT {', '.join(values)} FROM generate_series(1, {n}) AS g(i)")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _org_expr() -> str:
    # half the rows in org A (index 1), the rest round-robin over the others
    return f"(%s::uuid[])[CASE WHEN i % 2 = 0 THEN 1 ELSE 2 + (i / 2) % {ORG_COUNT - 1} END]"


def load_sends(n: int, org_ids: list) -> None:
    _insert_generated(Send, n, {
        "org_id": _org_expr(),
        "to": "'+1415' || lpad((i % 1000000)::text, 7, '0')",
        "from_number": "'+15005550006'",
        "body": "'Your code is ' || (i % 999999)::text",
        # 97% delivered, 2% failed, 0.5% undelivered, 0.3% sent, 0.2% sending
        "status": ("CASE WHEN i % 1000 < 970 THEN 'delivered' WHEN i % 1000 < 990 THEN 'failed' "
                   "WHEN i % 1000 < 995 THEN 'undelivered' WHEN i % 1000 < 998 THEN 'sent' ELSE 'sending' END"),
        "category": "CASE WHEN i % 10 < 8 THEN 'transactional' ELSE 'marketing' END",
        "mode": "CASE WHEN i % 50 = 0 THEN 'test' ELSE 'prod' END",
        "provider_message_id": "'SM' || md5(i::text)",
        "review_reason": "CASE WHEN i % 1000 = 998 THEN 'ambiguous provider outcome' ELSE '' END",
        "dispatch_state": "CASE WHEN i % 1000 = 998 THEN 'parked' WHEN i % 1000 = 999 THEN 'awaiting_provider' END",
        "created_at": "now() - i * interval '20 seconds'",
        "updated_at": "now() - i * interval '20 seconds'",
    }, org_ids)


def load_audit(n: int, org_ids: list) -> None:
    actions = ACTIONS
    _insert_generated(AuditEntry, n, {
        "org_id": _org_expr(),
        # 98% API-key sends; the rest people, the system and provider webhooks
        "actor_type": ("CASE WHEN i % 1000 < 980 THEN 'api_key' WHEN i % 1000 < 993 THEN 'user' "
                       "WHEN i % 1000 < 996 THEN 'system' ELSE 'provider' END"),
        "actor_id": "CASE WHEN i % 1000 < 980 THEN 'key-' || (i % 40)::text ELSE 'user-' || (i % 300)::text END",
        "action": (f"CASE WHEN i % 1000 < 980 THEN 'sms.send' "
                   f"ELSE (ARRAY[{', '.join(repr(a) for a in actions)}])[1 + i % {len(actions)}] END"),
        "resource_type": "'send'",
        "resource_id": "md5(i::text)",
        "outcome": "CASE WHEN i % 200 = 0 THEN 'error' WHEN i % 100 = 1 THEN 'rejected' ELSE 'ok' END",
        "created_at": "now() - i * interval '20 seconds'",
    }, org_ids)


def load_suppressions(n: int, org_ids: list) -> None:
    _insert_generated(Suppression, n, {
        "org_id": _org_expr(),
        "phone_number": "'+1415' || lpad(i::text, 7, '0')",  # unique overall
        # (even i are org A's: each rare value has some there)
        "reason": ("CASE WHEN i % 100 = 98 THEN 'carrier_opt_out' WHEN i % 100 < 90 THEN 'stop_keyword' "
                   "WHEN i % 100 < 97 THEN 'import' ELSE 'manual' END"),
        "source": "'webhook'",
        "created_at": "now() - i * interval '60 seconds'",
    }, org_ids)


def plan_of(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        return cursor.fetchone()[0][0]["Plan"]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans_of_big_tables(plan: dict) -> list[tuple[str, str]]:
    return [(node["Node Type"], node.get("Index Name") or node.get("Relation Name", ""))
            for node in nodes(plan) if node.get("Relation Name") in BIG_TABLES or
            any(node.get("Index Name", "").startswith(p) for p in ("send_", "audit_", "suppression_"))]


@pytest.fixture
def big_dashboard(db):
    orgs = [OrgFactory(name=f"Scale org {i}") for i in range(ORG_COUNT)]
    org_ids = [o.pk for o in orgs]
    started = time.monotonic()
    load_sends(ROWS, org_ids)
    load_audit(ROWS, org_ids)
    load_suppressions(SUPPRESSION_ROWS, org_ids)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sms_send; ANALYZE audit_auditentry; ANALYZE sms_suppression")
    load_seconds = time.monotonic() - started
    superuser = UserFactory(username="scale-root", is_superuser=True)
    admin_a = MembershipFactory(org=orgs[0], role=Role.ADMIN, user=UserFactory(username="scale-admin")).user
    a_send = Send.objects.filter(org=orgs[0]).only("to").first()
    a_suppression = Suppression.objects.filter(org=orgs[0]).only("phone_number").first()
    an_entry = AuditEntry.objects.filter(org=orgs[0], actor_type="user").only("actor_id", "resource_id").first()
    return {"orgs": orgs, "superuser": superuser, "admin_a": admin_a, "phone": a_send.to, "entry": an_entry,
            "suppressed_phone": a_suppression.phone_number,
            "load_seconds": load_seconds}


def pages(data) -> list[tuple[str, str, dict]]:
    org_a = str(data["orgs"][0].pk)
    sends, audit = reverse("admin:sms_send_changelist"), reverse("admin:audit_auditentry_changelist")
    suppressions = reverse("admin:sms_suppression_changelist")
    entry = data["entry"]
    return [
        ("sends", sends, {}),
        ("sends, status=failed", sends, {"status__exact": "failed"}),
        ("sends, status=sending (rare)", sends, {"status__exact": "sending"}),
        ("sends, category=marketing", sends, {"category__exact": "marketing"}),
        ("sends, mode=test", sends, {"mode__exact": "test"}),
        ("sends, created between (date filter)", sends, {"created_at__gte": "2000-01-01 00:00:00+00:00",
                                                        "created_at__lt": "2999-01-01 00:00:00+00:00"}),
        ("sends, org A", sends, {"org__id__exact": org_a}),
        ("sends, search phone", sends, {"q": data["phone"]}),
        ("sends, page 50", sends, {"p": "50"}),
        ("sends, dispatch state=parked (rare)", sends, {"dispatch_state": "parked"}),
        ("audit log", audit, {}),
        ("audit, action=suppression.delete (rare)", audit, {"action": "suppression.delete"}),
        ("audit, action=sms.send", audit, {"action": "sms.send"}),
        ("audit, actor type=user (rare)", audit, {"actor_type__exact": "user"}),
        ("audit, outcome=error (rare)", audit, {"outcome__exact": "error"}),
        ("audit, org A", audit, {"org__id__exact": org_a}),
        ("audit, search actor id", audit, {"q": entry.actor_id}),
        ("audit, search resource id", audit, {"q": entry.resource_id}),
        ("suppressions", suppressions, {}),
        ("suppressions, reason=carrier_opt_out (rare)", suppressions, {"reason__exact": "carrier_opt_out"}),
        ("suppressions, search phone", suppressions, {"q": data["suppressed_phone"]}),
    ]


# Queries a list page may make: session, user, memberships, the (capped) count, the rows, the org filter's
# orgs, a superuser's phone search naming the orgs; margin for Django's own.
MAX_QUERIES = 8


def test_every_dashboard_list_page_is_indexed_and_bounded_at_a_million_rows(client, big_dashboard):
    report, problems = [], []
    for role in ("superuser", "admin_a"):
        client.force_login(big_dashboard[role])
        for name, url, params in pages(big_dashboard):
            client.get(url, params)  # warm (the first request of a session reads the session, the user)
            with CaptureQueriesContext(connection) as ctx:
                started = time.monotonic()
                response = client.get(url, params)
                elapsed = time.monotonic() - started
            label = f"{role}: {name}"
            if response.status_code != 200:
                problems.append(f"{label}: HTTP {response.status_code}")
                continue
            html = response.content.decode()
            queries = ctx.captured_queries
            sqls = [q["sql"] for q in queries]
            if len(queries) > MAX_QUERIES:
                problems.append(f"{label}: {len(queries)} queries")
            for sql in sqls:
                if "DISTINCT" in sql.upper():
                    problems.append(f"{label}: SELECT DISTINCT: {sql[:200]}")
                if re.search(r'SELECT COUNT\(\*\) AS "__count" FROM "(sms_send|audit_auditentry)"', sql):
                    problems.append(f"{label}: uncapped COUNT(*): {sql[:200]}")
            slowest = max(queries, key=lambda q: float(q["time"]))
            for q in queries:
                if not any(f'"{t}"' in q["sql"] for t in BIG_TABLES):
                    continue
                scans = scans_of_big_tables(plan_of(q["sql"]))
                if any(kind == "Seq Scan" for kind, _ in scans) or not scans:
                    problems.append(f"{label}: not indexed: {scans} — {q['sql'][:300]}")
            slowest_plan = scans_of_big_tables(plan_of(slowest["sql"])) if any(
                f'"{t}"' in slowest["sql"] for t in BIG_TABLES) else []
            report.append({"page": label, "seconds": round(elapsed, 3), "queries": len(queries),
                           "slowest_query_seconds": float(slowest["time"]), "slowest_query_plan": slowest_plan,
                           "rows_shown": html.count('<tr class="') if "result_list" in html else 0})
    # For comparison: what Django's defaults ran on every one of these pages before (full counts, DISTINCT).
    before = {}
    for label, sql in [("COUNT(*) of sms_send", "SELECT COUNT(*) FROM sms_send"),
                       ("SELECT DISTINCT mode FROM sms_send", "SELECT DISTINCT mode FROM sms_send"),
                       ("COUNT(*) of audit_auditentry", "SELECT COUNT(*) FROM audit_auditentry"),
                       ("SELECT DISTINCT action FROM audit_auditentry", "SELECT DISTINCT action FROM audit_auditentry")]:
        with connection.cursor() as cursor:
            started = time.monotonic()
            cursor.execute(sql)
            cursor.fetchall()
            before[label] = round(time.monotonic() - started, 3)
    print("before, per page:", before)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "dashboard_scale.json").write_text(json.dumps(
        {"rows_per_table": ROWS, "load_seconds": round(big_dashboard["load_seconds"], 1), "pages": report,
         "defaults_before_seconds": before},
        indent=2))
    for line in report:
        print(f"{line['page']:<55} {line['seconds']*1000:8.0f} ms  {line['queries']} queries  "
              f"slowest {line['slowest_query_seconds']*1000:.0f} ms {line['slowest_query_plan']}")
    assert not problems, "\n".join(problems)
    assert all(r["rows_shown"] > 0 for r in report), [r["page"] for r in report if not r["rows_shown"]]


def test_filters_offer_fixed_choices_and_searches_are_exact(client, db):
    """Without a million rows: the mode and action filters list fixed values, never values read by a query."""
    org = OrgFactory()
    root = UserFactory(username="fixed-root", is_superuser=True)
    client.force_login(root)
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(reverse("admin:sms_send_changelist")).content.decode()
    assert '?mode__exact=test' in html and '?mode__exact=prod' in html
    assert not [q for q in ctx.captured_queries if "DISTINCT" in q["sql"].upper()]
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(reverse("admin:audit_auditentry_changelist")).content.decode()
    assert all(f"?action={a}" in html for a in ACTIONS)
    assert not [q for q in ctx.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert org  # an org exists, so the superuser's lists are not trivially empty of filters


def test_the_action_list_names_every_action_the_code_records():
    """ACTIONS is fixed: an action recorded somewhere but missing from it could not be filtered on."""
    recorded = set()
    for path in list((ROOT / "sms").rglob("*.py")) + list((ROOT / "orgs").rglob("*.py")) + list(
            (ROOT / "audit").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        recorded |= set(re.findall(r'action="([a-z_]+\.[a-z_.]+)"', text))
        recorded |= set(re.findall(r'AUDIT_ACTION = "([a-z_]+\.[a-z_.]+)"', text))
        for prefix, _ in re.findall(r'action=f"([a-z_.]+)\{(\w+)\}"', text):
            recorded |= {a for a in ACTIONS if a.startswith(prefix)} or {prefix + "…"}
    assert recorded and recorded <= set(ACTIONS), recorded - set(ACTIONS)


def test_capped_count_says_more_than(client, db, settings):
    """The paginator never counts past its cap; the page says "more than"."""
    from sms.admin import paging

    org = OrgFactory()
    root = UserFactory(username="cap-root", is_superuser=True)
    _insert_generated(Send, 30, {"org_id": "(%s::uuid[])[1]", "to": "'+14155550100'", "body": "'x'",
                                 "created_at": "now() - i * interval '1 second'",
                                 "updated_at": "now()"}, [org.pk])
    client.force_login(root)
    original = paging.CappedCountPaginator.count_cap
    paging.CappedCountPaginator.count_cap = 20
    try:
        with CaptureQueriesContext(connection) as ctx:
            html = client.get(reverse("admin:sms_send_changelist")).content.decode()
    finally:
        paging.CappedCountPaginator.count_cap = original
    assert 'class="count-capped">more than 20<' in html
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 21" in sql for sql in counts), counts
