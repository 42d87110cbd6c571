"""Statement batches: several SQL statements in ONE database round trip on the hot path.

Django runs psycopg 3 with client-side parameter binding (`ClientCursor`), which sends a query
through PostgreSQL's simple-query protocol; that protocol accepts several `;`-separated statements
in one message. They still run one after the other, each with its own snapshot (READ COMMITTED),
inside the caller's transaction, and the first error aborts the rest and raises like a single
statement would. The difference is only the number of network round trips (and their CPU on both
sides), which is what the send endpoint spends most of its time on.

SQLite's driver runs one statement per call, so there the statements simply run one by one.

    batch = StatementBatch([insert_statement(send)])  # the ORM's own INSERT (defaults, auto_now_add, adaptation)
    batch.add("UPDATE … WHERE …", [params])
    rowcounts = batch.run()                            # one rowcount per statement, in order

Only for statements whose results the caller doesn't need beyond a rowcount. Model `save()`
overrides and signals are NOT run by `insert()`: use it only for models without them (or whose
save() adds nothing for a new row — e.g. AuditEntry's append-only check).
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db import connections, router
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin
from django.db.models.sql import InsertQuery

Statement = tuple[str, list]


def insert_statement(obj: Model) -> Statement:
    """The INSERT `obj.save(force_insert=True)` would run (pre_save: defaults, auto_now(_add)),
    without RETURNING: a database-generated id (AutoField) is not read back, so don't rely on
    `obj.pk` afterwards for such models. Marks obj as saved."""
    meta = obj._meta
    using = router.db_for_write(type(obj), instance=obj)
    # As Model._save_table does for a new row: every concrete field but an unset auto id.
    fields = [f for f in meta.local_concrete_fields
              if not f.generated and not (isinstance(f, AutoFieldMixin) and getattr(obj, f.attname) is None)]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj], raw=False)
    compiler = query.get_compiler(using=using)
    [(sql, params)] = compiler.as_sql()
    obj._state.adding = False
    obj._state.db = using
    return sql, list(params)


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
        """Execute every statement (one round trip on PostgreSQL); return their rowcounts."""
        if not self.statements:
            return []
        connection = connections[self.using]
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql" or len(self.statements) == 1:
                counts = []
                for sql, params in self.statements:
                    cursor.execute(sql, params)
                    counts.append(cursor.rowcount)
                return counts
            cursor.execute(";\n".join(sql for sql, _ in self.statements),
                           [p for _, params in self.statements for p in params])
            counts = [cursor.rowcount]
            while cursor.nextset():
                counts.append(cursor.rowcount)
        if len(counts) != len(self.statements):  # pragma: no cover — a driver that can't do this
            raise RuntimeError(f"batch of {len(self.statements)} statements returned {len(counts)} results")
        return counts
