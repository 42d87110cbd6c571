"""Statement batches: several SQL statements in ONE database round trip on the hot path.

On PostgreSQL the statements go through psycopg 3's pipeline mode: each is sent as its own
extended-protocol query, all in one network round trip, and they run one after the other, each
with its own snapshot (READ COMMITTED), inside the caller's transaction. The first error aborts the
rest and raises (as Django's exception, e.g. IntegrityError) like a single statement would.

They are also *prepared* (server-side binding, `prepare=True`): the hot path runs the same few
statements on every request, and re-parsing and re-planning them was most of PostgreSQL's CPU per
send (measured with log_parser/planner/executor_stats; figures in docs/benchmarks.md). Prepared statements live on the connection (persistent: DB_CONN_MAX_AGE). Behind
a connection pooler in transaction mode that can't carry them (PgBouncer before 1.21, or without
max_prepared_statements), set DB_PREPARED_STATEMENTS=false: still one round trip, nothing prepared.
Django's own queries are never prepared (they keep its client-side binding).

SQLite's driver runs one statement per call, so there the statements simply run one by one.

    batch = StatementBatch([insert_statement(send)])  # the ORM's own INSERT (defaults, auto_now_add, adaptation)
    batch.add("UPDATE … WHERE …", [params])
    rowcounts = batch.run()                            # one rowcount per statement, in order
    batch.results                                      # each statement's rows ([] if it returns none)

Model `save()` overrides and signals are NOT run by `insert()`: use it only for models without them
(or whose save() adds nothing for a new row — e.g. AuditEntry's append-only check). A batch counts as
one query for assertNumQueries / django_assert_max_num_queries.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

import psycopg
import psycopg._queries
from psycopg.generators import send as _psycopg_send
from psycopg.types.json import Jsonb

from django.conf import settings
from django.db import connections, models, router, transaction
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin
from django.db.models.sql import InsertQuery

from sendora_sms import jsonfast

Statement = tuple[str, list]
_NEVER_AUTOMATICALLY = 2**31 - 1  # prepare_threshold: only statements executed with prepare=True

# psycopg converts a query's %s placeholders (a regex split of the whole text) on every execute, and keeps the
# result in an LRU of 128 only for queries of at most 4,096 bytes and 50 parameters (psycopg/_queries.py). The
# send's combined INSERT (send, timeline, audit entry, hand-off: ~60 parameters) was over that limit, so it was
# re-split on every request: 5 % of the send's CPU (issue #14, eighth pass). The hot paths run a dozen fixed
# texts: let texts of up to 256 parameters and 16 KiB be cached too (an entry is the text and a few small lists;
# a burst of one-off long texts only evicts entries that are converted again on their next use).
psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = max(psycopg._queries.MAX_CACHED_STATEMENT_PARAMS, 256)
psycopg._queries.MAX_CACHED_STATEMENT_LENGTH = max(psycopg._queries.MAX_CACHED_STATEMENT_LENGTH, 16384)


# (model, db alias, auto id left out) → the INSERT's SQL, compiled once, and per field the type of value bound as it is
_INSERT_SQL: dict[tuple, tuple[str, list]] = {}
# Values whose get_db_prep_save is the value itself, skipped (issue #14: ~50 field conversions per send): None
# for these exact Django field classes (never a subclass, which may convert), a str for CharField/TextField
# (get_prep_value → to_python returns a str unchanged). tests/unit/test_statement_batch.py checks both.
_NONE_IS_NULL = frozenset({
    models.CharField, models.TextField, models.IntegerField, models.PositiveIntegerField,
    models.PositiveSmallIntegerField, models.SmallIntegerField, models.BigIntegerField, models.BooleanField,
    models.DateTimeField, models.DateField, models.DecimalField, models.UUIDField, models.ForeignKey,
})
_STR_AS_IS = frozenset({models.CharField, models.TextField})
# On PostgreSQL (psycopg adapts these natively) get_db_prep_save also returns a value of these exact types as it is:
# a uuid.UUID for a UUIDField (or a ForeignKey to one), a bool for a BooleanField, an aware datetime for a
# DateTimeField (a naive one goes through the field: it warns and makes it aware), a date for a DateField. Not int:
# Django wraps it in psycopg's Int2/4/8 to fix the parameter's type. tests/unit/test_statement_batch.py checks each.
_AS_IS_ON_POSTGRESQL = {models.UUIDField: uuid.UUID, models.BooleanField: bool, models.DateTimeField: datetime,
                        models.DateField: date}
_JSON_CONTAINERS = (dict, list)
_PLAIN = frozenset({str, int, bool, float, type(None), uuid.UUID, datetime, date, Decimal, dict, list})  # never expressions


def json_dumps(value) -> bytes | str:
    """The text of a jsonb parameter: orjson's (~8× faster than `json.dumps`, issue #14). What orjson does not encode
    as `json.dumps` would accept it — a datetime, a dataclass, a non-string key, an integer beyond 64 bits, a lone
    surrogate — goes to `json.dumps`, which encodes or refuses it as before. jsonb keeps the value, not the text, so
    the stored row is the same. (Not the same: a NaN, which the API's parser refuses at the door, is stored as null
    where PostgreSQL refused `json.dumps`'s NaN; a uuid.UUID is stored as its string where `json.dumps` raised.)"""
    try:
        return jsonfast.dumps(value)  # no `default`: what json.dumps refuses is refused, then refused by json.dumps
    except TypeError:
        return json.dumps(value)


_VENDORS: dict[str, str] = {}


def vendor(using: str = "default") -> str:
    """`connections[using].vendor`, read once per alias: an alias's backend is fixed for the process, and every
    `connection.…` attribute read goes through asgiref's Local (~1.7 µs each; the hot paths read it about a
    dozen times per request: issue #14)."""
    found = _VENDORS.get(using)
    if found is None:
        found = _VENDORS[using] = connections[using].vendor
    return found


def _bound(field, value, kind, connection=None):
    """What `field.get_db_prep_save(value, connection)` binds, by insert_statement's rule (issue #14): on PostgreSQL a
    value of the field's own plain type (`kind`, from _as_is_type) as it is, None as NULL for the plain column
    types, a JSONField's dict or list as Jsonb dumped by `json_dumps`; anything else through the field (`connection`
    looked up then, when not given)."""
    if value is None and type(field) in _NONE_IS_NULL:
        return None
    if type(value) is kind and (kind is not datetime or value.utcoffset() is not None):
        return value
    if kind is Jsonb and type(value) in _JSON_CONTAINERS:
        return Jsonb(value, dumps=json_dumps)
    return field.get_db_prep_save(value, connection=connection or connections["default"])


_BIND_KINDS: dict[int, type | None] = {}


def bind_param(field, value):
    """`field.get_db_prep_save(value, connection)` for a statement built by hand (the status UPDATE, the event INSERT,
    the counter, quota and spend upserts), bound as insert_statement binds it (`_bound`), without the connection
    lookup where the value goes as it is."""
    key = id(field)  # fields live as long as their model: id() is a stable key (Field.__hash__ is slow)
    if key not in _BIND_KINDS:
        _BIND_KINDS[key] = _as_is_type(field, vendor())
    return _bound(field, value, _BIND_KINDS[key])


def insert_statement(obj: Model) -> Statement:
    """The INSERT `obj.save(force_insert=True)` would run (pre_save: defaults, auto_now(_add)),
    without RETURNING: a database-generated id (AutoField) is not read back, so don't rely on
    `obj.pk` afterwards for such models. Marks obj as saved.

    The SQL text is compiled by Django's InsertQuery once per (model, database, fields) and reused
    (issue #14: compiling three INSERTs was ~10 % of a send's CPU); the parameters are what the
    compiler would bind — each field's pre_save then get_db_prep_save. A value that is an expression
    goes through the compiler every time."""
    model = type(obj)
    using = router.db_for_write(model, instance=obj)
    fields, auto_id_unset = _insert_fields(obj)
    cache_key = (model, using, auto_id_unset)
    cached = _INSERT_SQL.get(cache_key)
    if cached is not None:
        sql, as_is = cached
        connection = connections[using]
        values = [f.pre_save(obj, True) for f in fields]
        if not any(type(v) not in _PLAIN and hasattr(v, "resolve_expression") for v in values):
            params = [_bound(f, v, kind, connection) for f, v, kind in zip(fields, values, as_is)]
            obj._state.adding = False
            obj._state.db = using
            return sql, params
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj], raw=False)
    compiler = query.get_compiler(using=using)
    [(sql, params)] = compiler.as_sql()
    if not any(hasattr(getattr(obj, f.attname), "resolve_expression") for f in fields) and all(
            not hasattr(f, "get_placeholder") for f in fields):
        _INSERT_SQL[cache_key] = (sql, [_as_is_type(f, connections[using].vendor) for f in fields])
    obj._state.adding = False
    obj._state.db = using
    return sql, list(params)


_FIELDS: dict[type, tuple] = {}


def _insert_fields(obj: Model) -> tuple[list, bool]:
    """The fields Model._save_table inserts for a new row — every concrete, non-generated field but an unset auto
    id — and whether the auto id was left out; the model's lists are built once."""
    model = type(obj)
    entry = _FIELDS.get(model)
    if entry is None:
        fields = [f for f in model._meta.local_concrete_fields if not f.generated]
        auto = next((f for f in fields if isinstance(f, AutoFieldMixin)), None)
        entry = _FIELDS[model] = (fields, auto, [f for f in fields if f is not auto])
    fields, auto, without_auto = entry
    if auto is not None and getattr(obj, auto.attname) is None:
        return without_auto, True
    return fields, False


def _as_is_type(field, vendor: str) -> type | None:
    """The one type of value `field.get_db_prep_save` returns unchanged (insert_statement passes it as it is); for a
    JSONField without an encoder on PostgreSQL, Jsonb: a dict or list is wrapped as the field would, dumped by
    `json_dumps`."""
    if type(field) in _STR_AS_IS:
        return str
    if type(field) is models.JSONField and field.encoder is None:
        return Jsonb if vendor == "postgresql" else None
    if type(field) is models.ForeignKey:
        field = field.target_field
    return _AS_IS_ON_POSTGRESQL.get(type(field)) if vendor == "postgresql" else None


class StatementBatch:
    def __init__(self, statements: Iterable[Statement] = (), using: str = "default"):
        self.using = using
        self.statements: list[Statement] = [(sql, list(params)) for sql, params in statements]

    def add(self, sql: str, params: list | tuple = ()) -> StatementBatch:
        self.statements.append((sql, list(params)))
        return self

    def insert(self, obj: Model) -> StatementBatch:
        self.statements.append(insert_statement(obj))
        return self

    def run(self) -> list[int]:
        """Execute every statement (one round trip on PostgreSQL); return their rowcounts. Each
        statement's rows (empty for one that returns none) are in `self.results` afterwards."""
        self.results: list[list[tuple]] = []
        if not self.statements:
            return []
        connection = connections[self.using]
        if vendor(self.using) == "postgresql":
            return self._run_pipelined(connection)
        counts = []
        with connection.cursor() as cursor:
            for sql, params in self.statements:
                cursor.execute(sql, params)
                counts.append(cursor.rowcount)
                self.results.append(cursor.fetchall() if cursor.description else [])
        return counts

    def run_and_commit(self) -> list[int]:
        """`run()`, then COMMIT the transaction in the SAME round trip (PostgreSQL; issue #14: the send's
        COMMIT was a round trip of its own). If a statement fails, the rest and the COMMIT are skipped
        (pipeline semantics) and its error is raised: the transaction is then aborted, for the caller's
        atomic block to roll back. Only for the outermost atomic block (no savepoint: `can_commit_early`),
        and the caller must run no further query in that block — the atomic block's own commit then finds
        nothing to commit. Elsewhere (SQLite, or inside an outer transaction) this is `run()`, and the
        atomic block commits as usual."""
        self.results = []
        if not self.statements:
            return []
        connection = connections[self.using]
        if not can_commit_early(self.using):
            return self.run()
        return self._run_pipelined(connection, commit=True)

    def _run_pipelined(self, connection, *, commit: bool = False) -> list[int]:
        # What Django's own cursor does first: the health check (CONN_HEALTH_CHECKS), connect, and
        # refuse to run inside an atomic block that already failed.
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        raw = connection.connection
        prepare = bool(settings.DB_PREPARED_STATEMENTS)
        if prepare and raw.prepare_threshold is None:  # Django's default, which turns prepare=True off too
            raw.prepare_threshold = _NEVER_AUTOMATICALLY
        started = time.monotonic()
        try:
            if not commit and len(self.statements) == 1 and raw.autocommit:
                return self._single(connection, raw, prepare)
            return self._pipeline(connection, raw, prepare, commit)
        finally:
            if connection.queries_logged:  # seen by assertNumQueries / django_assert_max_num_queries as one query,
                # failed or not (as Django logs its own cursor's queries)
                connection.queries_log.append({"sql": ";\n".join(sql for sql, _ in self.statements),
                                               "time": f"{time.monotonic() - started:.3f}"})

    def _single(self, connection, raw, prepare: bool) -> list[int]:
        """One statement outside a transaction (autocommit: there is no BEGIN to queue): run on the connection's kept
        cursor for its text, prepared, without pipeline mode — entering and leaving a pipeline for one statement cost
        ~45 µs of CPU more than the statement (issue #14: the worker's routing read, claim and outcome are one
        statement each). Still one round trip."""
        sql, params = self.statements[0]
        with connection.wrap_database_errors:
            cursor, sql = _kept_cursor(raw, sql)
            cursor.execute(sql, params, prepare=prepare)
            self.results = [cursor.fetchall() if cursor.pgresult is not None and cursor.pgresult.nfields else []]
            return [cursor.rowcount]

    def _pipeline(self, connection, raw, prepare: bool, commit: bool) -> list[int]:
        with connection.wrap_database_errors:
            cursors, own = [], []  # own: the cursors this batch made, closed at its end (not the connection's kept ones)
            with _one_write_pipeline(raw) as pipeline, raw.lock:
                queue = _queue_for(raw, pipeline)
                if queue is not None:
                    queue.begin_if_idle()
                for sql, params in self.statements:
                    if queue is not None:
                        cursor = queue.execute(sql, params, prepare)
                    else:
                        cursor = psycopg.Cursor(raw)  # server-side binding, whatever Django's cursor factory is
                        cursor.execute(sql, params, prepare=prepare)
                        own.append(cursor)
                    cursors.append(cursor)
                if commit:
                    if queue is not None:
                        queue.execute("COMMIT", None, False)
                    else:
                        own.append(psycopg.Cursor(raw))
                        own[-1].execute("COMMIT")
                if queue is not None:
                    queue.write_with_sync()
                    own += queue.own
            counts = [cursor.rowcount for cursor in cursors]
            # `pgresult.nfields` says whether a statement returns rows; `description` would build a Column object per
            # column first (a third of a status callback's result handling for the send's 33 columns).
            self.results = [cursor.fetchall() if cursor.pgresult is not None and cursor.pgresult.nfields else []
                            for cursor in cursors]
            for cursor in own:
                cursor.close()
        return counts


def lease(queryset, *, limit: int, order_by: str, mark: dict, fields: tuple[str, ...] = ()) -> list:
    """A sweeper's batch: lock up to `limit` rows of `queryset` in `order_by` order, skipping rows another
    transaction holds (`FOR UPDATE SKIP LOCKED`: concurrent sweepers split the work), write `mark` on them and
    commit. Returns their ids, or with `fields` tuples of (id, *fields) as read under the lock."""
    with transaction.atomic(using=queryset.db, durable=True):
        rows = list(queryset.select_for_update(skip_locked=True).order_by(order_by)
                    .values_list("pk", *fields)[:limit])
        if rows:
            queryset.model._default_manager.using(queryset.db).filter(pk__in=[row[0] for row in rows]).update(**mark)
    return rows if fields else [row[0] for row in rows]


def fail_unless(condition: str, marker: str) -> str:
    """A SELECT expression that is 1 when `condition` (SQL) holds and otherwise FAILS its statement (22P02, the
    message naming `marker`): in a batch that also COMMITs, what follows it — the COMMIT included — is skipped
    and the transaction is aborted. The failing cast depends on `condition`, so it is evaluated at run time,
    never folded by the planner. Tell the failure apart with `failed_unless(exc, marker)`."""
    return f"(CASE WHEN {condition} THEN '1' ELSE '{marker}' END)::int"


def failed_unless(exc: BaseException, marker: str) -> bool:
    """Whether `exc` (Django's DataError from a batch) is the failure of fail_unless(…, marker)."""
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == "22P02" and marker in str(cause)


def _is_the_transaction(connection) -> bool:
    """PostgreSQL, inside exactly one atomic block that is the transaction itself (not a savepoint inside another
    transaction, e.g. a test's)."""
    return (vendor(connection.alias) == "postgresql" and connection.in_atomic_block and len(connection.atomic_blocks) == 1
            and not connection.savepoint_ids)


def can_commit_early(using: str = "default") -> bool:
    """Whether `StatementBatch.run_and_commit` may COMMIT: the atomic block is the transaction itself, not doomed."""
    connection = connections[using]
    return _is_the_transaction(connection) and not connection.needs_rollback and not connection.get_autocommit()


def rollback_keeping_prepared(using: str = "default") -> bool:
    """End the caller's transaction, aborted by a failed statement of a batch, with a plain ROLLBACK — only when
    the atomic block is the transaction itself (else its savepoint is Django's to roll back); returns whether it
    did. psycopg's own rollback() also forgets every statement prepared on the connection (DEALLOCATE ALL at
    the next query), so the next requests would parse and plan each hot statement again; PostgreSQL keeps
    prepared statements through a rollback, and psycopg drops from its cache the ones the aborted batch never
    prepared, so there is nothing to forget (tests/unit/sms/services/test_send_one_round_trip.py). The atomic block's exit then finds no transaction to roll back."""
    connection = connections[using]
    if not _is_the_transaction(connection):
        return False
    raw = connection.connection
    with raw.lock:  # libpq directly: any ROLLBACK through a psycopg cursor would clear its cache too
        result = raw.pgconn.exec_(b"ROLLBACK")
    if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
        with connection.wrap_database_errors:
            raise psycopg.errors.error_from_result(result, encoding=raw.pgconn._encoding)
    return True


class _PipelineQueue:
    """A batch's statements queued in psycopg's pipeline and written to the socket together (issue #14).

    `Cursor.execute` in pipeline mode flushes after every statement — one send() syscall, one poll() and a
    packet PostgreSQL wakes up for, per statement — and, when it opens the transaction, sends BEGIN with a
    Sync of its own and WAITS for it: a whole extra round trip at the start of the send's transaction.
    This does what `Cursor.execute` does (psycopg 3.3 `_execute_gen`) minus those flushes: each statement is
    converted and queued, BEGIN is queued ahead of them without a Sync, and everything is written into
    libpq's buffer at the end; the pipeline's exit sends it with the Sync and reads every result, as before.
    Uses psycopg internals, checked at import (`_queue_for` returns None, and `Cursor.execute` is used,
    when they are not there); tests/unit/test_statement_batch.py asserts the queued path is the one used."""

    def __init__(self, raw, pipeline):
        self.raw = raw
        self.pipeline = pipeline
        self.texts: set[str] = set()  # the SQL texts queued so far
        self.own: list = []  # cursors made for a text queued twice: the batch closes them

    def begin_if_idle(self) -> None:
        raw = self.raw
        if not raw.autocommit and raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            raw.wait(raw._exec_command(raw._get_tx_start_command()))
            self.write()  # written into libpq's buffer: the status is ACTIVE now, so no cursor adds a BEGIN

    def execute(self, sql: str, params, prepare: bool):
        """Queue one statement; returns the cursor that will hold its result: the connection's kept cursor for this
        SQL text (_kept_cursor), or — for a text already queued in this batch — a cursor of its own."""
        raw = self.raw
        if sql in self.texts:
            cursor = psycopg.Cursor(raw)
            self.own.append(cursor)
        else:
            self.texts.add(sql)
            cursor, sql = _kept_cursor(raw, sql)
        raw.wait(cursor._start_query(sql))
        query = cursor._convert_query(sql, params)
        raw.wait(cursor._maybe_prepare_gen(query, prepare=prepare))
        cursor._last_query = sql
        raw.wait(raw._prepared.maintain_gen(raw))
        return cursor

    def write(self) -> None:
        commands = self.pipeline.command_queue
        while commands:
            commands.popleft()()

    def write_with_sync(self) -> None:
        """write(), then the Sync that ends the batch, sent with it (issue #14, tenth pass). psycopg's pipeline exit
        flushes the statements, then sends the Sync in a second send() and a Flush request in a third: three
        system calls, and up to three wake-ups of the database backend, per batch. libpq's PQpipelineSync appends
        the Sync and flushes the whole buffer, statements included: one send(). The pipeline's exit then only
        reads the results (_OneWritePipeline)."""
        self.write()
        if not isinstance(self.pipeline, _OneWritePipeline) or self.pipeline.level != 1:  # nested: the outer one syncs
            return
        self.raw.pgconn.pipeline_sync()
        self.pipeline.result_queue.append(None)  # the Sync's own result, as psycopg's _enqueue_sync records it
        self.pipeline.synced = True


class _OneWritePipeline(psycopg.Pipeline):
    """psycopg's Pipeline whose exit, once the batch has sent its statements and its Sync together
    (_PipelineQueue.write_with_sync), only reads their results: what the Sync's flush left unsent, if anything, is
    sent first; no second Sync, no Flush request (the Sync already makes the server send every result). Any other
    use — nothing synced, or commands queued since — exits as psycopg's own Pipeline does."""

    synced = False

    def _exit_gen(self):
        if not self.synced or self.command_queue:
            return (yield from super()._exit_gen())
        try:
            yield from _psycopg_send(self.pgconn)
        finally:
            yield from self._fetch_gen(flush=False)


def _one_write_pipeline(raw):
    """`raw.pipeline()`, psycopg's own context manager and bookkeeping, entered with an _OneWritePipeline as the
    connection's pipeline (Connection.pipeline uses the one it finds); inside another pipeline, or where psycopg's
    internals moved (_ONE_WRITE), with psycopg's own."""
    if _ONE_WRITE and hasattr(raw, "_pipeline"):
        with raw.lock:
            raw._check_connection_ok()
            if raw._pipeline is None:
                raw._pipeline = _OneWritePipeline(raw)
    return raw.pipeline()


_KEPT_CURSORS_MAX = 64  # distinct SQL texts kept per connection (the hot paths run a dozen)


def _kept_cursor(raw, sql: str):
    """The cursor this connection keeps for this SQL text, and the text it was first given (issue #14). psycopg
    builds a cursor's adapters map and, per execution, a Transformer whose dumper cache starts empty — unless the
    cursor runs the very same query object again, as executemany does. The hot paths run the same dozen
    statements on every request, so each connection keeps one open cursor per SQL text and hands it the text it
    first ran: the Transformer and its dumpers are reused. A kept cursor is never closed here; it is dropped with
    its connection (or when the connection keeps too many)."""
    kept = raw.__dict__.get("_sendora_cursors")
    if kept is None or len(kept) >= _KEPT_CURSORS_MAX:
        kept = raw._sendora_cursors = {}
    entry = kept.get(sql)
    if entry is None or entry[0].closed:
        entry = kept[sql] = (psycopg.Cursor(raw), sql)
    return entry


def _queueing_supported() -> bool:
    cursor, conn = psycopg.Cursor, psycopg.Connection
    return (all(hasattr(cursor, name) for name in ("_start_query", "_convert_query", "_maybe_prepare_gen"))
            and all(hasattr(conn, name) for name in ("_exec_command", "_get_tx_start_command", "wait")))


def _one_write_supported() -> bool:
    return hasattr(psycopg.Connection, "_check_connection_ok") and all(
        hasattr(psycopg.Pipeline, name) for name in ("_exit_gen", "_fetch_gen"))


_QUEUEING = _queueing_supported()
_ONE_WRITE = _one_write_supported()


def _queue_for(raw, pipeline) -> _PipelineQueue | None:
    if not _QUEUEING or not hasattr(pipeline, "command_queue") or not hasattr(raw, "_prepared"):
        return None
    return _PipelineQueue(raw, pipeline)


def inserts_combined(statements: list[Statement], using: str = "default") -> list[Statement]:
    """Plain INSERTs (`insert_statement`'s, no RETURNING) as ONE statement on PostgreSQL: all but the last as
    data-modifying CTEs, `WITH i0 AS (INSERT …), i1 AS (INSERT …) INSERT …` (issue #14: each statement has
    a fixed cost on both sides — bind, executor start, snapshot — and the send wrote three or four rows in
    as many statements). Same rows, same constraints: unique violations raise as before, and foreign keys
    are checked at the end of the statement, so a row may reference one inserted by an earlier CTE. The
    rowcount is the last INSERT's. Only INSERTs that take no locks on existing rows (no ON CONFLICT, no
    UPDATE): the order of CTEs' effects is not defined, so lock-taking statements stay separate, in order.
    Elsewhere (SQLite), or for fewer than two statements, the statements are returned as they are."""
    if len(statements) < 2 or vendor(using) != "postgresql":
        return list(statements)
    for sql, _params in statements:
        if not sql.startswith("INSERT INTO ") or " ON CONFLICT " in sql or " RETURNING " in sql:
            return list(statements)
    ctes = ", ".join(f"i{n} AS ({sql})" for n, (sql, _params) in enumerate(statements[:-1]))
    params = [param for _sql, statement_params in statements for param in statement_params]
    return [(f"WITH {ctes} {statements[-1][0]}", params)]
