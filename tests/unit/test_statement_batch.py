"""sendora_sms/db.py: several statements, one round trip, prepared on PostgreSQL."""
import json
import uuid
import warnings
from datetime import date, datetime, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.services import Actor, audit_entry_build
from psycopg.types.json import Jsonb

from sendora_sms.db import StatementBatch, bind_param, insert_statement, json_dumps
from sms.models import Send
from tests.factories import OrgFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="pipeline mode is PostgreSQL's")


def _entry(org, action="test.batch"):
    return audit_entry_build(org=org, actor=Actor.system("test"), action=action, details={"n": 1})


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_runs_every_statement_in_order_and_returns_rowcounts_and_rows(org):
    batch = StatementBatch([insert_statement(_entry(org)), insert_statement(_entry(org))])
    batch.add("UPDATE orgs_org SET name = name WHERE id = %s", [org.pk])
    batch.add("SELECT count(*) FROM audit_auditentry WHERE org_id = %s AND action = %s", [org.pk, "test.batch"])
    assert batch.run() == [1, 1, 1, 1]
    assert batch.results == [[], [], [], [(2,)]]  # the SELECT ran after both INSERTs


def test_a_batch_counts_as_one_query(org):
    with CaptureQueriesContext(connection) as queries:
        StatementBatch([insert_statement(_entry(org)), insert_statement(_entry(org))]).run()
    assert len(queries) == 1
    assert queries[0]["sql"].count("INSERT INTO") == 2


def test_statements_are_prepared_and_reused(org, settings):
    settings.DB_PREPARED_STATEMENTS = True
    for _ in range(3):
        StatementBatch([("SELECT count(*) FROM orgs_org WHERE id = %s", [org.pk])]).run()
    prepared = [s for s in _prepared_statements() if "FROM orgs_org WHERE id = $1" in s]
    assert len(prepared) == 1  # prepared once, executed three times


def test_nothing_is_prepared_when_switched_off(org, settings):
    settings.DB_PREPARED_STATEMENTS = False
    StatementBatch([("SELECT count(*) FROM orgs_org WHERE name <> %s", ["never-prepared"])]).run()
    assert not [s for s in _prepared_statements() if "name <> $1" in s]


def test_an_error_raises_djangos_exception_and_the_transaction_rolls_back_whole(org):
    from sms.models import Send
    from tests.factories import SendFactory

    first, clash = SendFactory.build(org=org, body="first"), SendFactory.build(org=org, body="clash")
    clash.id = first.id  # the same primary key: the batch's second INSERT fails
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            StatementBatch([insert_statement(first), insert_statement(clash)]).run()
    assert not Send.objects.filter(id=first.id).exists()  # the first INSERT was rolled back with it
    StatementBatch([insert_statement(SendFactory.build(org=org, id=first.id))]).run()  # the connection still works
    assert Send.objects.filter(id=first.id).exists()


def test_refuses_to_run_in_an_atomic_block_that_already_failed(org):
    from django.db.transaction import TransactionManagementError

    with transaction.atomic():
        transaction.set_rollback(True)  # what an error escaping an inner savepoint-less block leaves behind
        with pytest.raises(TransactionManagementError):
            StatementBatch([("SELECT 1", [])]).run()  # as Django's own cursor would refuse


def test_insert_statement_reuses_its_sql_and_binds_what_the_compiler_binds(db):
    """Issue #14: the INSERT's SQL is compiled once per model; the parameters bound on later calls are
    exactly the compiler's (defaults, auto_now_add, JSON adaptation)."""
    from django.db.models.sql import InsertQuery

    from sendora_sms import db as db_module
    from sms.models import SendStatusChange

    org = OrgFactory()
    first, second = (Send(org=org, to="+15551230000", body=f"hi {i}", metadata={"k": [i]}) for i in range(2))
    insert_statement(first)
    assert any(key[0] is Send for key in db_module._INSERT_SQL)
    sql, params = insert_statement(second)  # the cached path

    fields = [f for f in Send._meta.local_concrete_fields if not f.generated]
    query = InsertQuery(Send)
    query.insert_values(fields, [second], raw=False)
    [(compiled_sql, compiled_params)] = query.get_compiler(using="default").as_sql()
    assert sql == compiled_sql
    auto_now = {i for i, f in enumerate(fields)  # re-stamped by the compiler call
                if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)}
    assert auto_now and [repr(p) for i, p in enumerate(params) if i not in auto_now] == [
        repr(p) for i, p in enumerate(compiled_params) if i not in auto_now]
    StatementBatch([(sql, params), insert_statement(SendStatusChange(send=second, status="queued", source="api"))]).run()
    stored = Send.objects.get(pk=second.pk)
    assert stored.metadata == {"k": [1]} and stored.body == "hi 1"


# --- issue #14: the statements are queued and written together; BEGIN rides along ------------------------


def test_the_queued_path_is_used_with_this_psycopg(org):
    from sendora_sms import db

    assert db._QUEUEING, "psycopg's internals moved: StatementBatch fell back to one flush per statement"
    connection.ensure_connection()
    with connection.connection.pipeline() as pipeline:
        assert db._queue_for(connection.connection, pipeline) is not None


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_opens_the_transaction_writes_once_and_waits_once(monkeypatch):
    """BEGIN is queued ahead of the statements (psycopg's own BEGIN in a pipeline is a round trip of its own):
    every command is written to libpq's buffer before the pipeline's exit flushes and reads the results."""
    from sendora_sms import db

    org = OrgFactory()
    sends_seen = []
    real_write = db._PipelineQueue.write

    def write(self):
        sends_seen.append(self.raw.pgconn.transaction_status)
        return real_write(self)

    monkeypatch.setattr(db._PipelineQueue, "write", write)
    with transaction.atomic():
        batch = StatementBatch([("SELECT txid_current()", []), ("SELECT %s::text", [str(org.pk)])])
        batch.run()
        assert connection.connection.info.transaction_status == 2  # INTRANS: the batch opened the transaction
        (xid,), = batch.results[0]
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            assert cursor.fetchone()[0] == xid  # one transaction: the batch's BEGIN is the atomic block's
    assert sends_seen[0] == 0  # BEGIN queued while idle (no Sync, no wait)
    assert batch.results[1] == [(str(org.pk),)]


@pytest.mark.django_db(transaction=True)
def test_an_error_in_a_queued_batch_raises_and_the_atomic_block_rolls_back():
    org = OrgFactory()
    from django.db import DataError

    with pytest.raises(DataError):
        with transaction.atomic():
            StatementBatch([insert_statement(_entry(org)), ("SELECT %s::int", ["not a number"])]).run()
    from audit.models import AuditEntry

    assert not AuditEntry.objects.filter(org_id=org.pk, action="test.batch").exists()
    StatementBatch([insert_statement(_entry(org))]).run()  # the connection is usable again (autocommit)
    assert AuditEntry.objects.filter(org_id=org.pk, action="test.batch").count() == 1


def test_values_passed_as_is_are_what_django_would_bind():
    """insert_statement skips get_db_prep_save for None on plain Django fields and str on CharField/TextField."""
    from django.db import models

    from sendora_sms import db

    for field_class in db._NONE_IS_NULL - {models.ForeignKey}:
        assert field_class(null=True).get_db_prep_save(None, connection=connection) is None, field_class
    for field_class in db._STR_AS_IS:
        value = "ünïcode text"
        assert field_class().get_db_prep_save(value, connection=connection) is value, field_class


def test_values_passed_as_is_on_postgresql_are_what_django_would_bind():
    """…and, on PostgreSQL, a UUID for a UUIDField or a ForeignKey to one, a bool for a BooleanField, an aware
    datetime for a DateTimeField and a date for a DateField; a naive datetime still goes through the field (Django makes it aware)."""
    import uuid
    from datetime import datetime, timezone as dt_timezone

    from django.db import models

    from sendora_sms import db

    assert connection.vendor == "postgresql"
    samples = {uuid.UUID: uuid.uuid4(), bool: True, datetime: datetime(2026, 12, 5, 12, 0, tzinfo=dt_timezone.utc),
               date: date(2026, 12, 5)}
    for field_class, kind in db._AS_IS_ON_POSTGRESQL.items():
        value = samples[kind]
        assert field_class().get_db_prep_save(value, connection=connection) is value, field_class
    foreign_key = Send._meta.get_field("org")
    assert db._as_is_type(foreign_key, "postgresql") is uuid.UUID
    assert db._as_is_type(Send._meta.get_field("created_at"), "sqlite") is None
    naive = datetime(2026, 12, 5, 12, 0)
    with pytest.warns(RuntimeWarning):
        assert models.DateTimeField().get_db_prep_save(naive, connection=connection) != naive


def test_a_cached_insert_binds_exactly_what_the_fields_would_bind(org):
    from sms.models import Send as SendModel

    def make():
        return SendModel(org=org, to="+15551234567", from_number="+15550000000", body="hi", category="transactional",
                         metadata={"k": "v"}, segments=1, encoding="GSM-7", mode="prod", provider="twilio",
                         idempotency_key=None, request_fingerprint="f" * 64)

    insert_statement(make())  # compiles and caches the SQL
    send = make()
    sql, params = insert_statement(send)
    fields = [f for f in SendModel._meta.local_concrete_fields if not f.generated]
    expected = [f.get_db_prep_save(getattr(send, f.attname), connection=connection) for f in fields]
    assert len(params) == len(expected)
    for field, got, want in zip(fields, params, expected):
        assert type(got) is type(want), field.name
        assert repr(got) == repr(want), field.name
        if isinstance(got, Jsonb):  # the same value, dumped by orjson (db.json_dumps) where Django uses json.dumps
            assert got.dumps is json_dumps and json.loads(got.dumps(got.obj)) == json.loads(want.dumps(want.obj))


_AWARE = datetime(2026, 12, 5, 12, 0, tzinfo=dt_timezone.utc)


@pytest.mark.parametrize("attname, value", [
    ("status", "delivered"), ("error_code", ""), ("dispatch_state", None), ("provider_message_id", "SM" + "a" * 32),
    ("updated_at", _AWARE), ("delivered_at", None), ("sent_at", datetime(2026, 12, 5, 12, 0)),
    ("metadata", {"k": ["v", 1, None, "ü"]}), ("metadata", []), ("org_id", uuid.uuid4()), ("id", str(uuid.uuid4())),
    ("segments", 3), ("price", Decimal("0.0079")), ("attempts", 0),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else type(v).__name__)
def test_bind_param_binds_what_the_field_would_bind(attname, value):
    """sendora_sms/db.py bind_param (the status UPDATE's and the event INSERT's parameters): what get_db_prep_save
    binds, by insert_statement's rules (a JSON value dumped by orjson: the same value)."""
    field = next(f for f in Send._meta.concrete_fields if f.attname == attname)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a naive datetime: Django warns, both ways
        got, want = bind_param(field, value), field.get_db_prep_save(value, connection=connection)
    assert type(got) is type(want)
    if isinstance(got, Jsonb):
        assert json.loads(got.dumps(got.obj)) == json.loads(want.dumps(want.obj))
    else:
        assert repr(got) == repr(want)


@pytest.mark.django_db(transaction=True)
def test_combined_inserts_write_every_row_in_one_statement_and_keep_unique_violations():
    from audit.models import AuditEntry
    from sendora_sms.db import inserts_combined
    from sms.models import SendStatusChange

    org = OrgFactory()
    send = Send(org=org, to="+15551234567", from_number="+15550000000", body="hi", category="transactional",
                segments=1, encoding="GSM-7", mode="prod", provider="twilio", idempotency_key="k-1",
                request_fingerprint="f" * 64)
    statements = [insert_statement(send), insert_statement(SendStatusChange(send=send, status="queued", source="api")),
                  insert_statement(_entry(org))]
    combined = inserts_combined(statements)
    assert len(combined) == 1 and combined[0][0].startswith("WITH i0 AS (INSERT INTO")
    assert combined[0][1] == [p for _s, params in statements for p in params]
    with transaction.atomic():
        assert StatementBatch(combined).run() == [1]
    assert Send.objects.filter(pk=send.pk).exists()
    assert SendStatusChange.objects.filter(send_id=send.pk).count() == 1
    assert AuditEntry.objects.filter(org_id=org.pk, action="test.batch").count() == 1
    again = Send(org=org, to="+15551234567", from_number="+15550000000", body="hi", category="transactional",
                 segments=1, encoding="GSM-7", mode="prod", provider="twilio", idempotency_key="k-1",
                 request_fingerprint="f" * 64)
    with pytest.raises(IntegrityError):  # the idempotency key's unique index, as with separate statements
        with transaction.atomic():
            StatementBatch(inserts_combined([insert_statement(again), insert_statement(_entry(org))])).run()
    assert AuditEntry.objects.filter(org_id=org.pk, action="test.batch").count() == 1  # rolled back whole


def test_combining_leaves_upserts_and_single_statements_alone():
    from sendora_sms.db import inserts_combined

    upsert = ("INSERT INTO t (a) VALUES (%s) ON CONFLICT (a) DO NOTHING", [1])
    plain = ("INSERT INTO t (a) VALUES (%s)", [2])
    assert inserts_combined([plain]) == [plain]
    assert inserts_combined([plain, upsert]) == [plain, upsert]
    assert inserts_combined([plain, ("UPDATE t SET a = 1", [])]) == [plain, ("UPDATE t SET a = 1", [])]


# --- issue #14: each connection keeps one cursor per SQL text, so psycopg's Transformer and dumpers are reused --------


@pytest.mark.django_db(transaction=True)
def test_a_statement_runs_on_its_connections_kept_cursor_with_the_same_transformer():
    sql = "SELECT %s::int + 1"
    first = StatementBatch([(sql, [1])])
    first.run()
    raw = connection.connection
    cursor, kept_sql = raw._sendora_cursors[sql]
    transformer = cursor._tx
    again = StatementBatch([("SELECT %s::int + 1", [41])])  # an equal text, another str object
    again.run()
    assert raw._sendora_cursors[sql][0] is cursor and cursor._tx is transformer  # dumpers cached across batches
    assert (first.results, again.results) == ([[(2,)]], [[(42,)]])


@pytest.mark.django_db(transaction=True)
def test_the_same_text_twice_in_one_batch_keeps_both_results_and_old_rows_never_leak():
    batch = StatementBatch([("SELECT %s::int", [1]), ("SELECT %s::int", [2]), ("SELECT 1 WHERE false", [])])
    batch.run()
    assert batch.results == [[(1,)], [(2,)], []]
    batch = StatementBatch([("SELECT 1 WHERE false", []), ("SELECT %s::int", [3])])
    assert batch.run() == [0, 1] and batch.results == [[], [(3,)]]


@pytest.mark.django_db(transaction=True)
def test_a_kept_cursor_works_after_its_batch_failed():
    from django.db import DataError

    sql = "SELECT %s::int"
    with pytest.raises(DataError):
        StatementBatch([(sql, ["not a number"])]).run()
    batch = StatementBatch([(sql, ["7"])])
    batch.run()
    assert batch.results == [[(7,)]]


@pytest.mark.django_db(transaction=True)
def test_one_statement_outside_a_transaction_runs_prepared_without_a_pipeline(monkeypatch, settings):
    """A single statement in autocommit (the worker's claim, outcome and routing read) skips pipeline mode: same
    rowcount, rows, preparation, one logged query and Django's exceptions; inside a transaction the pipeline (which
    queues the BEGIN) is kept."""
    from sendora_sms import db

    settings.DB_PREPARED_STATEMENTS = True
    org = OrgFactory()
    connection.ensure_connection()
    pipelines = []
    real_pipeline = db._one_write_pipeline

    def spy(raw):
        pipelines.append(1)
        return real_pipeline(raw)

    monkeypatch.setattr(db, "_one_write_pipeline", spy)
    sql = "UPDATE orgs_org SET name = name WHERE id = %s RETURNING name"
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            batch = StatementBatch([(sql, [org.pk])])
            assert batch.run() == [1]
            assert batch.results == [[(org.name,)]]
    assert pipelines == [] and len(queries) == 3
    assert len([s for s in _prepared_statements() if "UPDATE orgs_org SET name = name WHERE id = $1" in s]) == 1
    with pytest.raises(IntegrityError):
        StatementBatch([("INSERT INTO orgs_org (id) VALUES (%s)", [org.pk])]).run()
    assert StatementBatch([(sql, [org.pk])]).run() == [1]  # the connection is usable after the error
    with transaction.atomic():
        StatementBatch([(sql, [org.pk])]).run()
    assert pipelines == [1]


# --- issue #14, tenth pass: the statements and the Sync leave in one write ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_batch_sends_its_sync_with_its_statements_and_its_exit_only_reads(monkeypatch):
    """write_with_sync appends the Sync to the statements in libpq's buffer (one send); the pipeline's exit then reads
    the results without psycopg's second Sync and Flush request — for a batch that COMMITs, one that fails, and one
    that is followed by more work in its transaction."""
    import psycopg

    from sendora_sms import db

    org = OrgFactory()
    exits = []
    real_exit = psycopg.Pipeline._exit_gen

    def psycopg_exit(self):
        exits.append("psycopg")
        return (yield from real_exit(self))

    monkeypatch.setattr(psycopg.Pipeline, "_exit_gen", psycopg_exit)
    synced = []
    real_sync = db._PipelineQueue.write_with_sync

    def write_with_sync(self):
        real_sync(self)
        synced.append(self.pipeline.synced)

    monkeypatch.setattr(db._PipelineQueue, "write_with_sync", write_with_sync)

    with transaction.atomic(durable=True):
        batch = StatementBatch([insert_statement(_entry(org)), ("SELECT %s::text", [str(org.pk)])])
        assert batch.run_and_commit() == [1, 1]
        assert batch.results[1] == [(str(org.pk),)]
    assert connection.connection.info.transaction_status == 0  # IDLE: committed by the batch
    from audit.models import AuditEntry

    assert AuditEntry.objects.filter(org_id=org.pk, action="test.batch").count() == 1

    from django.db import DataError

    with pytest.raises(DataError):
        with transaction.atomic():
            StatementBatch([insert_statement(_entry(org)), ("SELECT %s::int", ["x"]), ("SELECT 1", [])]).run()
    assert AuditEntry.objects.filter(org_id=org.pk, action="test.batch").count() == 1  # rolled back whole

    with transaction.atomic():
        StatementBatch([insert_statement(_entry(org))]).run()
        assert StatementBatch([("SELECT count(*) FROM audit_auditentry WHERE org_id = %s", [org.pk])]).run() == [1]
    assert AuditEntry.objects.filter(org_id=org.pk, action="test.batch").count() == 2
    assert synced == [True] * 4 and exits == []


@pytest.mark.django_db(transaction=True)
def test_a_batch_inside_an_open_psycopg_pipeline_uses_it():
    """Inside a pipeline someone else opened, a batch nests in it as psycopg's own nested pipeline (no Sync of its
    own is sent early) and its results are right."""
    org = OrgFactory()
    connection.ensure_connection()
    raw = connection.connection
    with raw.pipeline() as outer:
        batch = StatementBatch([("SELECT %s::text", [str(org.pk)]), ("SELECT 2", [])])
        assert batch.run() == [1, 1]
        assert batch.results == [[(str(org.pk),)], [(2,)]]
        assert not getattr(outer, "synced", False)
    assert raw._pipeline is None
