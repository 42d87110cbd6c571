"""Shared by the benchmarks that run the whole stack (gunicorn / Celery / fake Twilio) as processes."""
from __future__ import annotations

import os
import socket
import time

TEST_ENCRYPTION_KEY = "c2VuZG9yYS10ZXN0LWtleS0wMDAwMDAwMDAwMDAwMDA="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(*, db_url: str, redis_url: str, twilio_url: str, **extra: str) -> dict:
    """Environment for a service process of the benchmark: its own database and Redis db, the fake
    Twilio as the provider, production-like settings (DEBUG off), no Twilio region/edge rewriting."""
    env = dict(os.environ)
    env.update({
        # redis_url is the broker; the rate-limit cache is then the next Redis database (settings.py: never
        # the broker's own, which a cache flush would empty).
        "DATABASE_URL": db_url, "CELERY_BROKER_URL": redis_url,
        "SECRET_KEY": "bench-secret-key-not-for-production", "DEBUG": "false", "ALLOWED_HOSTS": "*",
        "SMS_ENCRYPTION_KEYS": env.get("SMS_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEY),
        "TWILIO_API_BASE_URL": twilio_url, "NO_PROXY": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "sendora_sms.settings", **extra,
    })
    env.pop("REDIS_URL", None)
    env.pop("TWILIO_REGION", None)
    env.pop("TWILIO_EDGE", None)
    return env


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ------------------------------------------------------------------------------------------------
# The README's production web command (issue #14): the app and the floors are served with exactly
# these gunicorn flags. Chosen by measurement (docs/benchmarks.md, "issue #14", "Tenth pass"): sync workers, one
# per core of this 2-core machine — with PostgreSQL and Redis local, a send's waits are short, and every process
# beyond the cores only added switching (same minutes: CPU per send 2.0–2.7 ms at -w 2, 2.7–3.2 at -w 3, 3.0–3.8
# at -w 4; the send served most at -w 2). Keep README's "Running in production" in step with it.
# ------------------------------------------------------------------------------------------------
PRODUCTION_WEB_ARGS = ["-w", "2"]
# The README's production worker command (its flags after `celery -A sendora_sms worker`).
PRODUCTION_WORKER_ARGS = ["-c", "4"]
# …run under `nice -n PRODUCTION_WORKER_NICE` beside the web tier on one machine: the provider's status
# callbacks (the web tier) are served first, and the worker takes the CPU that is left.
PRODUCTION_WORKER_NICE = 10


def gunicorn_command(python: str, app: str, port: int, server_args: list[str], chdir: str | None = None) -> list[str]:
    cmd = [python, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}", *server_args, "--backlog", "2048",
           "--log-level", "warning"]
    if chdir:
        cmd += ["--chdir", chdir]
    return cmd


class CpuSeconds(float):
    """CPU seconds summed over processes, remembering each process's share: `after - before` counts only
    what each process spent in between (a process that started in between counts whole), so a process
    that exits — e.g. a PostgreSQL backend whose Django connection reached CONN_MAX_AGE — does not make
    the difference negative (its CPU since `before` is lost, not subtracted)."""

    def __new__(cls, per_pid: dict):
        obj = super().__new__(cls, sum(per_pid.values()))
        obj.per_pid = per_pid
        return obj

    def __sub__(self, other):
        if isinstance(other, CpuSeconds):
            return sum(max(0.0, v - other.per_pid.get(pid, 0.0)) for pid, v in self.per_pid.items())
        return float(self) - other


def proc_cpu_seconds(match) -> CpuSeconds:
    """utime+stime (s) of live processes for which match(pid, pgrp, cmdline) is true (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    per_pid = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        pgrp = int(fields[2])
        if match(int(entry), pgrp, cmdline):
            per_pid[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    return CpuSeconds(per_pid)


def group_cpu(pgid: int) -> CpuSeconds:
    return proc_cpu_seconds(lambda pid, pgrp, cmd: pgrp == pgid)


def postgres_cpu(dbname: str) -> CpuSeconds:
    """CPU of the PostgreSQL backends connected to `dbname` (process titles name the database)."""
    return proc_cpu_seconds(lambda pid, pgrp, cmd: cmd.startswith("postgres: ") and f" {dbname} " in cmd)


def redis_cpu() -> CpuSeconds:
    """CPU of the (shared) redis-server: other users of the server are counted too."""
    return proc_cpu_seconds(lambda pid, pgrp, cmd: "redis-server" in cmd)


def analyze_database(url: str) -> None:
    """ANALYZE the benchmark's database, as autovacuum would have by now in production (it ANALYZEs a table
    once 50 rows + 10 % of it changed). This machine's PostgreSQL runs with autovacuum off, so a database the
    benchmark just created has no statistics at all: the planner then guesses from table sizes alone and, on a
    near-empty table, was seen caching plans (per connection, for up to CONN_MAX_AGE) that walk an org's
    whole send history (docs/benchmarks.md, "Issue #14", "Fifth pass"). Run after a warm-up has put rows
    in the tables; ANALYZE invalidates the plans cached before it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def recreate_database(url: str) -> None:
    """Drop (closing its connections) and create the benchmark's own database, named by `url`."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
