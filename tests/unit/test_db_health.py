"""The web requests' connection health check without its SELECT 1 (sendora_sms/db_health.py, issue #14).

Each case plays a request's sequence as Django's WSGI handler does (request_finished of the previous
request, request_started, the first middleware, then the request's queries) on the real PostgreSQL connection."""
from __future__ import annotations

import time

import psycopg
import pytest
from django.core.signals import request_finished, request_started
from django.db import connection, connections

from sendora_sms import db_health

pytestmark = [pytest.mark.django_db(transaction=True)]


def _pg_only():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL connections only")


def _new_request():
    request_finished.send(sender=None)
    request_started.send(sender=None, environ={})
    db_health.DbHealthMiddleware(lambda request: None)(None)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture
def usable_calls(monkeypatch):
    calls = []
    wrapper = connections["default"]
    real = type(wrapper).is_usable

    def counting(self):
        calls.append(self.alias)
        return real(self)

    monkeypatch.setattr(type(wrapper), "is_usable", counting)
    return calls


@pytest.fixture
def health_checks_on(settings):
    """The production settings of PostgreSQL: persistent connections with CONN_HEALTH_CHECKS."""
    _pg_only()
    saved = connection.health_check_enabled
    connection.health_check_enabled = True
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 1.0
    yield
    connection.health_check_enabled = saved


def _kill(pid: int) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k not in ("cursor_factory", "context")},
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)  # the FATAL message and FIN reach our socket


def test_a_quiet_recently_used_connection_is_not_pinged(health_checks_on, usable_calls):
    _new_request()
    _backend_pid()
    _new_request()  # the first request seen on this connection: Django's check runs
    pid = _backend_pid()
    usable_calls.clear()
    for _ in range(3):
        _new_request()
        assert connection.health_check_done
        assert _backend_pid() == pid
    assert usable_calls == []


def test_a_connection_killed_between_requests_is_replaced_and_the_request_succeeds(health_checks_on, usable_calls):
    _new_request()
    _backend_pid()
    _new_request()
    pid = _backend_pid()
    _kill(pid)
    usable_calls.clear()
    _new_request()
    assert not connection.health_check_done  # the socket is readable: left to Django's SELECT 1
    new_pid = _backend_pid()  # no error: the dead connection was closed and a new one opened
    assert new_pid != pid
    assert usable_calls == ["default"]
    _new_request()
    assert _backend_pid() == new_pid


def test_a_connection_idle_longer_than_the_limit_gets_the_full_check(health_checks_on, usable_calls, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 0.05
    _new_request()
    _backend_pid()
    time.sleep(0.1)
    usable_calls.clear()
    _new_request()
    assert not connection.health_check_done
    _backend_pid()
    assert usable_calls == ["default"]


def test_zero_turns_the_shortcut_off(health_checks_on, usable_calls, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 0
    for _ in range(3):
        _new_request()
        _backend_pid()
    assert len(usable_calls) >= 2


def test_the_middleware_is_first_so_it_runs_after_the_check_is_re_armed(settings):
    assert settings.MIDDLEWARE[0] == "sendora_sms.db_health.DbHealthMiddleware"


def test_an_api_request_through_the_stack_reuses_a_quiet_connection_without_select_1(
        health_checks_on, usable_calls, org, admin_key, client_for):
    client = client_for(admin_key)
    for _ in range(2):
        assert client.get(f"/api/v1/orgs/{org.id}/sms/sends").status_code == 200
    usable_calls.clear()
    for _ in range(3):
        assert client.get(f"/api/v1/orgs/{org.id}/sms/sends").status_code == 200
    assert usable_calls == []


def test_socket_quiet_is_false_inside_a_transaction_and_for_a_closed_connection(health_checks_on):
    _backend_pid()
    raw = connection.connection
    assert db_health.socket_quiet(raw)
    raw.execute("BEGIN")
    try:
        assert not db_health.socket_quiet(raw)
    finally:
        raw.execute("ROLLBACK")
    connection.close()
    assert not db_health.socket_quiet(raw)
