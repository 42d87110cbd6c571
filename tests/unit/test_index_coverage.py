"""No index on the SMS and audit tables is a leading-column prefix of another index of the same table:
such an index (Django adds one per foreign key) serves no read the longer one does not, and costs
every INSERT. Read from PostgreSQL's catalog after migrations, so it covers what really exists."""
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

TABLE_PREFIXES = ("sms_", "audit_")


def indexes() -> dict[str, list[tuple[str, list[str], bool, str | None]]]:
    sql = """
        SELECT t.relname, i.relname, ix.indisunique, pg_get_expr(ix.indpred, ix.indrelid),
               ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n)
        FROM pg_index ix
        JOIN pg_class t ON t.oid = ix.indrelid
        JOIN pg_class i ON i.oid = ix.indexrelid
        JOIN pg_namespace ns ON ns.oid = t.relnamespace AND ns.nspname = current_schema()
    """
    result: dict = {}
    with connection.cursor() as cursor:
        cursor.execute(sql)
        for table, name, unique, predicate, columns in cursor.fetchall():
            if table.startswith(TABLE_PREFIXES):
                result.setdefault(table, []).append((name, list(columns), unique, predicate))
    return result


def test_no_index_is_a_prefix_of_another():
    found = indexes()
    assert "sms_send" in found and "audit_auditentry" in found
    redundant = []
    for table, idx in found.items():
        for name, columns, unique, predicate in idx:
            if unique or predicate:
                continue  # a constraint, or a partial index with its own purpose
            for other, other_columns, _, other_predicate in idx:
                if other != name and other_predicate is None and other_columns[:len(columns)] == columns:
                    redundant.append(f"{table}.{name} {columns} is covered by {other} {other_columns}")
    assert not redundant, "\n".join(redundant)


def test_the_send_table_has_exactly_the_indexes_its_reads_use():
    """A new index on the hot INSERT path is a decision: name it here (and say which read uses it)."""
    names = {name for name, *_ in indexes()["sms_send"]}
    assert names - {"sms_send_pkey"} == {
        "send_org_mode_idempotency_key_unique",  # Idempotency-Key replay, per mode (test and live keys apart)
        "send_org_created_idx",  # API history, dashboard per org
        "send_org_to_created_idx",  # phone filter / search
        "send_org_status_created_idx",  # status filter
        "send_org_category_created_idx",  # category filter
        "send_org_mode_created_idx",  # mode filter
        "send_created_idx",  # dashboard, all orgs
        "send_dedupe_idx",  # 60 s duplicate window (partial)
        "send_provider_msg_idx",  # status callbacks, reconciliation
        "send_dispatch_state_idx",  # sweeper, review queue, dispatch-state filter (partial)
    } | {n for n in names if n.startswith("sms_send_api_key_id")}  # ON DELETE SET NULL of an API key
