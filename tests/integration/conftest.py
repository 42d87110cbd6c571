"""Integration fixtures: a REAL Celery worker process on Redis, the fake Twilio, and a live server.

- `fake_twilio`: FakeTwilio on 127.0.0.1 (one per session, reset for every test).
- `celery_worker`: `celery -A sendora_sms worker -Q <every QueueNames queue>` started as a
  subprocess against pytest-django's test database (`test_` + NAME), the test Redis, the fake
  Twilio and the live server as SMS_PUBLIC_BASE_URL (so StatusCallback URLs point at it). One
  process for the tests/integration package (stopped after it); its queues are purged before each test. Tests using it need
  `django_db(transaction=True)` so the worker sees their rows.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from sendora_sms.celery import QueueNames
from tests.fakes.twilio_server import FakeTwilio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def _fake_twilio_server():
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def fake_twilio(_fake_twilio_server, settings):
    _fake_twilio_server.reset()
    settings.TWILIO_API_BASE_URL = _fake_twilio_server.base_url
    yield _fake_twilio_server
    _fake_twilio_server.reset()


def _database_url() -> str:
    db = connection.settings_dict  # after test-database setup: NAME is test_<NAME>
    auth = quote(db.get("USER") or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, env: dict, log_path: str):
        self.log_path = log_path
        self.log = open(log_path, "w+")  # noqa: SIM115 — closed in stop()
        queues = ",".join(QueueNames.all())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "sendora_sms", "worker", "-Q", queues, "-c", "4",
             "--pool", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
             "-n", f"it-{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return Path(self.log_path).read_text()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.output()[-4000:]}")
            if " ready." in self.output():
                return
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()


def _purge(broker_url: str) -> None:
    client = redis.Redis.from_url(broker_url)
    client.delete(*QueueNames.all())
    client.delete("unacked", "unacked_index")
    # The events' pending list and its drain flag (sms/services/events.py): a flag left by a purged kick would
    # hold the next test's events until it expires.
    from sms.services.events import _drain_flag

    events = redis.Redis.from_url(django_settings.SMS_EVENTS_REDIS_URL)
    events.delete(django_settings.SMS_EVENTS_PENDING_KEY, _drain_flag())


# Package scope: the worker lives while tests/integration runs and is stopped before the next package. A worker
# left running would also take the tasks that later (non-integration) tests publish to the same broker and work
# on their rows while those tests tear their tables down (a TRUNCATE that deadlocked against its claim).
@pytest.fixture(scope="package")
def _celery_worker_process(django_db_setup, django_db_blocker, _fake_twilio_server, _fake_messagebird_server,
                           _fake_sinch_server, live_server):
    if not django_settings.CELERY_BROKER_URL or django_settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("needs a Redis broker (CELERY_BROKER_URL)")
    with django_db_blocker.unblock():
        database_url = _database_url()
    _purge(django_settings.CELERY_BROKER_URL)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DB_CONN_MAX_AGE": "0",  # the test flushes tables between tests; keep no idle connections around
        "TWILIO_API_BASE_URL": _fake_twilio_server.base_url,
        "SMS_PUBLIC_BASE_URL": live_server.url,
        "TWILIO_HTTP_TIMEOUT": "2",
        # The fake MessageBird and Sinch (tests/fakes/), and failover tuned for tests (sms/services/failover.py).
        "MESSAGEBIRD_API_BASE_URL": _fake_messagebird_server.base_url,
        "SINCH_API_BASE_URL": _fake_sinch_server.base_url,
        "PROVIDER_HTTP_TIMEOUT": "2",  # as TWILIO_HTTP_TIMEOUT: a 503 answered late under load must not read as a timeout
        "SMS_FAILOVER_MIN_ATTEMPTS": "3",
        "SMS_FAILOVER_BUCKET_SECONDS": "1",
        "SMS_FAILOVER_WINDOW_SECONDS": "30",
        "SMS_FAILOVER_COOLDOWN_SECONDS": "2",
        "SMS_DISPATCH_RETRY_BASE_SECONDS": "0.2",
        "SMS_DISPATCH_RETRY_MAX_SECONDS": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        # Tenant webhooks to the tests' receiver on 127.0.0.1: allowed explicitly here, never by default.
        "WEBHOOKS_ALLOW_HTTP": "true",
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "WEBHOOKS_RETRY_SCHEDULE": "0,0.2,0.2,0.2,0.2,0.2,0.2,0.2",
        # Half of the worker's 4 processes at most for one endpoint: a slow endpoint leaves the rest free.
        "WEBHOOKS_ENDPOINT_CONCURRENCY": "2",
    }
    env.pop("TWILIO_REGION", None)
    env.pop("TWILIO_EDGE", None)
    log_path = tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1]
    worker = WorkerProcess(env, log_path)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
        os.unlink(log_path)


@pytest.fixture
def celery_worker(_celery_worker_process, fake_twilio, live_server, settings):
    """The running worker; this process's settings match it (fake Twilio, public URL = live server)."""
    _purge(settings.CELERY_BROKER_URL)
    settings.SMS_PUBLIC_BASE_URL = live_server.url
    return _celery_worker_process


def wait_for(predicate, *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value (returned) or fail after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
