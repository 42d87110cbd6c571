"""Fixtures for the fault tests: a private Redis, a TCP proxy in front of PostgreSQL, the fake Twilio,
the app under gunicorn and Celery workers/beat — all started here, all breakable here.

`fault_stack` (session): private Redis (broker + cache of every subprocess), the PostgreSQL proxy,
the fake Twilio and gunicorn (DB through the proxy, DB_CONN_MAX_AGE=60 as in production, so an
outage really breaks pooled connections). Workers and beat are started per test with
`stack.start_worker(**env)` / `stack.start_beat(**env)` and stopped after it.

`stack` (function): the same, with the fake and Redis reset, `transactional_db` (the subprocesses
must see the test's rows), and every process the test started stopped before the tables are flushed.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
import requests
from django.db import connection

from tests.factories import TEST_AUTH_TOKEN, ApiKeyFactory, OrgFactory, ProviderAccountFactory
from tests.fakes.twilio_server import FakeTwilio
from tests.faults.infra import AppServer, CeleryProcess, RedisServer, TcpProxy, free_port

# Short sweeper / retry settings for workers and beat in these tests (seconds; see docs/reliability.md).
FAST_WORKER_ENV = {
    "TWILIO_HTTP_TIMEOUT": "1",
    "SMS_DISPATCH_MAX_RETRIES": "2",
    "SMS_DISPATCH_RETRY_BASE_SECONDS": "0.2",
    "SMS_DISPATCH_RETRY_MAX_SECONDS": "2",
    "SMS_SWEEP_INTERVAL": "1",
    "SMS_SWEEP_QUEUED_AFTER_SECONDS": "3",
    "SMS_SWEEP_SENDING_AFTER_SECONDS": "2",
    "SMS_RECONCILE_DEADLINE_SECONDS": "5",
}


def _db_url(*, host: str, port: int) -> str:
    db = connection.settings_dict  # after test-database setup: NAME is test_<NAME>
    auth = quote(db.get("USER") or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


@dataclass
class Stack:
    redis: RedisServer
    twilio: FakeTwilio
    proxy: TcpProxy
    app: AppServer | None
    base_env: dict
    db_url_direct: str
    processes: list = field(default_factory=list)

    def env(self, **overrides) -> dict:
        return {**self.base_env, **FAST_WORKER_ENV, "DATABASE_URL": self.db_url_direct, "DB_CONN_MAX_AGE": "0",
                **{k: str(v) for k, v in overrides.items()}}

    def start_worker(self, *, concurrency: int = 4, **env) -> CeleryProcess:
        worker = CeleryProcess(self.env(**env), kind="worker", concurrency=concurrency)
        self.processes.append(worker)
        return worker

    def supervise(self, worker: CeleryProcess, *, concurrency: int = 4, **env) -> "Supervisor":
        """Restart `worker` whenever it exits (what systemd `Restart=always` / a k8s Deployment does)."""
        supervisor = Supervisor(self, worker, concurrency=concurrency, env=env)
        self.processes.append(supervisor)
        return supervisor

    def start_beat(self, **env) -> CeleryProcess:
        beat = CeleryProcess(self.env(**env), kind="beat")
        self.processes.append(beat)
        return beat

    def stop_processes(self) -> None:
        while self.processes:
            self.processes.pop().stop()


class Supervisor:
    """Polls a worker twice a second; starts a replacement when it has died. Stopping stops both."""

    kind = "supervisor"

    def __init__(self, stack: Stack, worker: CeleryProcess, *, concurrency: int, env: dict):
        self.stack, self.worker, self.concurrency, self.env = stack, worker, concurrency, env
        self.deaths: list[str] = []  # the last lines the dead workers logged
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="faults-supervisor")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            if not self.worker.alive():
                self.deaths.append(self.worker.output()[-3000:])
                self.worker.stop()
                self.worker = CeleryProcess(self.stack.env(**self.env), kind="worker", concurrency=self.concurrency)

    def output(self) -> str:
        return "\n".join(self.deaths) + self.worker.output()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.worker.stop()


@pytest.fixture(scope="session")
def fault_stack(django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.skip("fault tests need PostgreSQL")
    with django_db_blocker.unblock():
        db = connection.settings_dict
        pg = (db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
        direct = _db_url(host=pg[0], port=pg[1])
        proxy = TcpProxy(pg)
        proxied = _db_url(host="127.0.0.1", port=proxy.port)
    redis_server = RedisServer()
    twilio = FakeTwilio().start()
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if k not in ("TWILIO_REGION", "TWILIO_EDGE")}
    base_env.update({
        # Broker on db 0 (stack.redis.url, which the tests inspect), the rate-limit cache apart on db 1.
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/1",
        "CELERY_BROKER_URL": redis_server.url,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "SMS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    })
    stack = Stack(redis=redis_server, twilio=twilio, proxy=proxy, app=None, base_env=base_env,
                  db_url_direct=direct)
    try:
        stack.app = AppServer({**base_env, "DATABASE_URL": proxied, "DB_CONN_MAX_AGE": "60",
                               "LOG_LEVEL": "WARNING"}, port)
        yield stack
    finally:
        stack.stop_processes()
        if stack.app is not None:
            stack.app.stop()
        twilio.stop()
        redis_server.stop()
        proxy.close()


@pytest.fixture
def stack(fault_stack, transactional_db, settings):
    """The stack, clean: Redis flushed and up, proxy open, fake Twilio reset; processes stopped after."""
    if not fault_stack.redis.alive():
        fault_stack.redis.start()
    fault_stack.proxy.restore()
    fault_stack.redis.client().flushall()
    fault_stack.twilio.reset()
    fault_stack.twilio.auto_callbacks = ()
    settings.TWILIO_API_BASE_URL = fault_stack.twilio.base_url
    settings.SMS_PUBLIC_BASE_URL = fault_stack.app.url
    yield fault_stack
    fault_stack.stop_processes()
    fault_stack.twilio.auto_callbacks = ()
    fault_stack.twilio.auto_callback_delay = 0.05
    fault_stack.proxy.restore()
    if not fault_stack.redis.alive():
        fault_stack.redis.start()


@dataclass
class Tenant:
    org: object
    account: object
    key: object

    @property
    def send_path(self) -> str:
        return f"/api/v1/orgs/{self.org.pk}/sms/send"


@pytest.fixture
def make_tenant(stack):
    def make(**org_fields) -> Tenant:
        org_fields.setdefault("send_rate_override", 100_000)
        org_fields.setdefault("monthly_quota_override", 1_000_000)
        org = OrgFactory(**org_fields)
        account = ProviderAccountFactory(org=org)
        stack.twilio.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
        key = ApiKeyFactory(org=org, mode="prod")
        return Tenant(org=org, account=account, key=key)

    return make


_local = threading.local()


def http() -> requests.Session:
    """One keep-alive session per thread."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False
    return session
