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
