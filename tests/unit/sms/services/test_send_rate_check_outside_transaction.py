"""Issue #11.5: the send's rate check (Redis) never runs inside the send's database transaction.

A real TCP "black hole" stands in for a Redis that accepts connections and never answers, so the
cache client waits for its socket_timeout (1 s). While it waits — observed from the black hole at the
moment the request's command arrives — no connection to the test database is `idle in transaction`
and no advisory lock is held; the send still goes through (the rate check fails open) afterwards.
The decision order stays: a 412 (no provider) is decided before the rate check, and nothing counts it.
"""
import socket
import threading

import psycopg
import pytest
from django.core.cache import caches
from django.db import connection

from sms.errors import ProviderNotConfigured
from sms.models import Send
from sms.services import send_create
from tests.factories import ApiKeyFactory, OrgFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


class BlackHoleRedis:
    """Accepts TCP connections, reads the command, never answers. On each command it runs `observe`."""

    def __init__(self, observe):
        self.observe = observe
        self.observations = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            if conn.recv(65536):
                self.observations.append(self.observe())
        except OSError:
            pass

    def close(self):
        self._stop = True
        self.sock.close()
        for conn in self.conns:
            conn.close()


def _db_activity(dsn: str):
    """From a separate connection: transactions open on the test database, and advisory locks held."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        idle_in_tx = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()").fetchone()[0]
        advisory = conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                                "WHERE l.locktype = 'advisory' AND d.datname = current_database()").fetchone()[0]
    return {"idle_in_transaction": idle_in_tx, "advisory_locks": advisory}


@pytest.fixture
def black_hole(settings):
    params = connection.get_connection_params()
    dsn = psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items()
                                           if k in ("dbname", "user", "password", "host", "port")})
    server = BlackHoleRedis(lambda: _db_activity(dsn))
    settings.CACHES = {"default": {"BACKEND": "sendora_sms.cache.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{server.port}/0",
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    caches._settings = caches.settings = settings.CACHES
    if hasattr(caches._connections, "default"):
        del caches._connections.default
    yield server
    server.close()
    if hasattr(caches._connections, "default"):
        del caches._connections.default


def test_no_transaction_is_open_while_the_rate_check_waits_for_redis(black_hole):
    org = OrgFactory(send_rate_override=10)
    ProviderAccountFactory(org=org)
    key = ApiKeyFactory(org=org, mode="prod")
    result = send_create(org=org, api_key=key, to="+14155550190", body="code 5")
    assert result.send.status == "queued"  # the rate check failed open after the timeout
    assert black_hole.observations, "the rate check never reached the (stalled) Redis"
    assert black_hole.observations[0] == {"idle_in_transaction": 0, "advisory_locks": 0}
    assert Send.objects.filter(pk=result.send.pk).exists()


def test_provider_not_configured_is_decided_before_the_rate_check(black_hole):
    org = OrgFactory(send_rate_override=10)
    key = ApiKeyFactory(org=org, mode="prod")
    with pytest.raises(ProviderNotConfigured):
        send_create(org=org, api_key=key, to="+14155550191", body="code 6")
    assert black_hole.observations == []  # Redis was never asked: a 412 is not counted against the rate
    assert not Send.objects.filter(org=org).exists()
