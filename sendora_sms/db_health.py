"""A cheaper connection health check for web requests (issue #14), keeping CONN_HEALTH_CHECKS' property.

Django's CONN_HEALTH_CHECKS runs `SELECT 1` on a persistent connection before the first query of every
request — one database round trip per request (≈ 5 % of a send's CPU, plus the server's). Its purpose:
a connection broken since the previous request (a database restart, a proxy or pooler reset) is
replaced instead of failing the request.

A broken connection is visible without a round trip: when the server or anything between closes or
resets it, the peer's FATAL message, FIN or RST makes the idle socket readable (or in error). Between
two requests a healthy connection has nothing to read (no LISTEN, no query in flight). So at the start
of a request (after Django's own `close_old_connections` has re-armed the check at request_started), this
looks at each open connection of the thread (DbHealthMiddleware, first in MIDDLEWARE, so after every
request_started receiver):

- the connection is idle (no transaction), its socket has nothing pending (one `poll` syscall, timeout
  0), and it served the previous request of this thread less than DB_HEALTH_CHECK_IDLE_SECONDS ago →
  the check counts as done: no `SELECT 1`;
- anything else (data or an error pending on the socket, a connection that sat idle longer, a
  transaction status other than idle, no socket) → nothing is changed: Django runs its `SELECT 1` on
  first use, as before, and replaces a dead connection.

A peer that vanished silently (no FIN/RST ever arrives) is caught once the connection has been idle for
DB_HEALTH_CHECK_IDLE_SECONDS, as before; while requests keep coming, the first query fails as it would
after a `SELECT 1` that passed a moment earlier, the request answers 503 (sendora_sms/api/middleware.py)
and Django closes the connection at the end of that request (errors_occurred → is_usable()).

Web requests (DbHealthMiddleware) and Celery tasks (sendora_sms/celery.py, before each task) use it.
DB_HEALTH_CHECK_IDLE_SECONDS=0 turns the shortcut off (Django's SELECT 1 on every request).
"""
from __future__ import annotations

import select
import time

from django.conf import settings
from django.db import connections

_BAD = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
_LAST_USE = "_sendora_health_last_request"


def socket_quiet(raw) -> bool:
    """Whether a psycopg connection's socket is open, idle (no transaction) and has nothing to read."""
    try:
        import psycopg

        if raw.closed or raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return False
        fd = raw.pgconn.socket
    except Exception:  # noqa: BLE001 — whatever is odd about the connection: let Django check it
        return False
    if fd is None or fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, _BAD)
    try:
        return not poller.poll(0)
    except OSError:
        return False


def skip_checks_if_quiet() -> None:
    """Mark the health check done for this thread's connections that are provably alive."""
    idle_limit = float(getattr(settings, "DB_HEALTH_CHECK_IDLE_SECONDS", 1.0))
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        last = getattr(conn, _LAST_USE, None)
        # Recorded also while no connection is open: one opened during this request serves it, so its next request
        # compares with now — not with the last request of a connection closed since (CONN_MAX_AGE, an error).
        setattr(conn, _LAST_USE, now)
        if conn.connection is None or not conn.health_check_enabled or conn.vendor != "postgresql":
            continue
        if conn.health_check_done or idle_limit <= 0 or last is None or now - last >= idle_limit:
            continue
        if socket_quiet(conn.connection):
            conn.health_check_done = True


class DbHealthMiddleware:
    """First in MIDDLEWARE: runs after every request_started receiver — Django's close_old_connections,
    which re-arms the check, included — whatever the order those receivers were connected in."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        skip_checks_if_quiet()
        return self.get_response(request)
