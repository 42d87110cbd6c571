"""A worker keeps its database connection from task to task (issue #14), as a web process keeps it from request to
request: Celery's Django fixup would close it before and after every task (a new PostgreSQL backend per task, no
prepared statement ever reused) unless CELERY_DB_REUSE_MAX is set; sendora_sms/celery.py then applies Django's
per-request rule before each task — a connection past CONN_MAX_AGE, or left unusable by an error, is replaced."""
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from sendora_sms.celery import _database_connections_per_task, app

pytestmark = pytest.mark.django_db(transaction=True)

TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))


@pytest.fixture(autouse=True)
def _restore_conn_max_age():
    before = connection.settings_dict["CONN_MAX_AGE"]
    yield
    connection.settings_dict["CONN_MAX_AGE"] = before
    connection.close()


def _one_task(fixup):
    """What a worker process runs around a task: the fixup's and our task_prerun hooks, the task, the fixup's
    task_postrun hook. Returns the PostgreSQL backend that served the task."""
    fixup.on_task_prerun(TASK)
    _database_connections_per_task(sender=TASK)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 1")
        backend = cursor.fetchone()[0]
    fixup.on_task_postrun(TASK)
    return backend


def test_the_connection_is_kept_across_tasks(settings):
    assert app.conf.get("CELERY_DB_REUSE_MAX") == settings.CELERY_DB_REUSE_MAX >= 100
    connection.settings_dict["CONN_MAX_AGE"] = 60
    fixup = DjangoWorkerFixup(app)
    backends = {_one_task(fixup) for _ in range(20)}
    assert len(backends) == 1


def test_an_unusable_connection_is_replaced_before_the_next_task():
    connection.settings_dict["CONN_MAX_AGE"] = 60
    fixup = DjangoWorkerFixup(app)
    first = _one_task(fixup)
    if connection.vendor != "postgresql":
        pytest.skip("terminating a backend is PostgreSQL's")
    # Kill the worker's backend from another session, as a database restart would.
    import psycopg

    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])
        # Until the backend is gone its FATAL may not have reached our socket yet (a race the health-check
        # shortcut accepts: the first query would then fail, as after a SELECT 1 that passed a moment earlier).
        import time

        deadline = time.monotonic() + 5
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [first]).fetchone()[0]:
            assert time.monotonic() < deadline, "the backend did not exit"
            time.sleep(0.01)
    time.sleep(0.1)  # its FATAL message and FIN reach our socket
    assert _one_task(fixup) != first  # the health check found it dead: a new connection, and the task ran


def test_a_connection_past_conn_max_age_is_replaced():
    connection.settings_dict["CONN_MAX_AGE"] = 0
    fixup = DjangoWorkerFixup(app)
    assert len({_one_task(fixup) for _ in range(3)}) == 3


def test_an_eager_task_never_touches_the_callers_connection(monkeypatch):
    closed = []
    monkeypatch.setattr("django.db.close_old_connections", lambda: closed.append(1))
    _database_connections_per_task(sender=SimpleNamespace(request=SimpleNamespace(is_eager=True)))
    assert closed == []
    _database_connections_per_task(sender=TASK)
    assert closed == [1]


def test_a_connection_provably_alive_is_not_pinged_before_each_task(monkeypatch):
    """The worker applies the web tier's shortcut (sendora_sms/db_health.py): no SELECT 1 before a task whose
    connection served the previous one a moment ago and has nothing pending on its socket."""
    if connection.vendor != "postgresql":
        pytest.skip("the shortcut reads a PostgreSQL socket")
    connection.settings_dict["CONN_MAX_AGE"] = 60
    fixup = DjangoWorkerFixup(app)
    _one_task(fixup)
    pings = []
    from django.db import connections

    wrapper = type(connections["default"])
    real = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda self: pings.append(1) or real(self))
    backends = {_one_task(fixup) for _ in range(10)}
    assert len(backends) == 1 and pings == []
