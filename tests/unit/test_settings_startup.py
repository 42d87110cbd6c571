"""Settings come from the environment (the API contract (README.md, /api/schema) "Operator interface"). Each case starts a fresh Python
process with exactly the environment under test, as an operator's shell would."""
import base64
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = base64.b64encode(b"k" * 32).decode()
OTHER_KEY = base64.b64encode(b"o" * 32).decode()
SECRETS = {"SECRET_KEY": "s" * 50, "SMS_ENCRYPTION_KEYS": GOOD_KEY}  # what production (DEBUG off) requires

PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
import django.db.backends.postgresql.base as pg
print(json.dumps({
    "debug": settings.DEBUG,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "db_host": settings.DATABASES["default"].get("HOST", ""),
    "psycopg3": bool(getattr(pg, "is_psycopg3", False)),
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"].get("LOCATION", ""),
    "keys": settings.SMS_ENCRYPTION_KEYS,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "public_base_url": settings.SMS_PUBLIC_BASE_URL,
    "twilio_base_url": settings.TWILIO_API_BASE_URL,
    "secret_key_len": len(settings.SECRET_KEY),
    "csrf_trusted_origins": settings.CSRF_TRUSTED_ORIGINS,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "csrf_cookie_httponly": settings.CSRF_COOKIE_HTTPONLY,
    "proxy_ssl_header": getattr(settings, "SECURE_PROXY_SSL_HEADER", None),
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "hsts_preload": settings.SECURE_HSTS_PRELOAD,
    "password_validators": [v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS],
}))
"""


def run_python(code: str, env: dict, tmp_path) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": "sendora_sms.settings",
            "SENDORA_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base | env, capture_output=True, text=True,
                          timeout=60)


def probe(env: dict, tmp_path) -> dict:
    result = run_python(PROBE, env, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- production: DEBUG off needs its secrets ----------------------------------------------------------------

@pytest.mark.parametrize("missing, env", [
    ("SECRET_KEY", {"DEBUG": "false", "SMS_ENCRYPTION_KEYS": GOOD_KEY}),
    ("SMS_ENCRYPTION_KEYS", {"DEBUG": "false", "SECRET_KEY": "s3cret"}),
    ("SECRET_KEY", {"DEBUG": "false"}),
    ("SMS_ENCRYPTION_KEYS", {"DEBUG": "0", "SECRET_KEY": "s3cret", "SMS_ENCRYPTION_KEYS": ""}),
])
def test_debug_off_without_a_secret_stops_startup_naming_the_variable(tmp_path, missing, env):
    result = run_python("import django; django.setup()", env, tmp_path)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    assert not (tmp_path / "var" / "dev-secrets.json").exists()  # never falls back to dev secrets


def test_manage_py_check_with_debug_off_and_no_secret_key_fails_with_the_name(tmp_path):
    base = {"PATH": os.environ.get("PATH", ""), "SENDORA_VAR_DIR": str(tmp_path / "var"), "DEBUG": "false",
            "SMS_ENCRYPTION_KEYS": GOOD_KEY}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("value, fragment", [
    ("not base64!!", "entry 1 is not valid base64"),
    (base64.b64encode(b"short").decode(), "entry 1 must decode to 32 bytes"),
    (f"{GOOD_KEY},{base64.b64encode(b'x' * 16).decode()}", "entry 2 must decode to 32 bytes"),
])
def test_malformed_encryption_keys_stop_startup_naming_the_variable(tmp_path, value, fragment):
    result = run_python("import django; django.setup()",
                        {"DEBUG": "false", "SECRET_KEY": "s", "SMS_ENCRYPTION_KEYS": value}, tmp_path)
    assert result.returncode != 0
    assert "SMS_ENCRYPTION_KEYS" in result.stderr and fragment in result.stderr


def test_debug_off_with_every_secret_starts(tmp_path):
    got = probe({"DEBUG": "false", "SECRET_KEY": "s" * 50, "SMS_ENCRYPTION_KEYS": f"{GOOD_KEY}, {OTHER_KEY}",
                 "ALLOWED_HOSTS": "sms.example.com,.example.org",
                 "SMS_PUBLIC_BASE_URL": "https://sms.example.com/", "TWILIO_API_BASE_URL": "http://127.0.0.1:9/"},
                tmp_path)
    assert got["debug"] is False
    assert got["keys"] == [GOOD_KEY, OTHER_KEY]  # newest first, whitespace trimmed
    assert got["allowed_hosts"] == ["sms.example.com", ".example.org"]
    assert got["public_base_url"] == "https://sms.example.com"
    assert got["csrf_trusted_origins"] == ["https://sms.example.com"]  # dashboard login behind a TLS proxy
    assert got["twilio_base_url"] == "http://127.0.0.1:9"


# --- production by default (issue #10, point 8) ----------------------------------------------------------------

def test_debug_defaults_to_off_with_secure_httponly_cookies(tmp_path):
    got = probe({"SECRET_KEY": "s" * 50, "SMS_ENCRYPTION_KEYS": GOOD_KEY}, tmp_path)
    assert got["debug"] is False
    assert got["session_cookie_secure"] is True and got["csrf_cookie_secure"] is True
    assert got["session_cookie_httponly"] is True and got["csrf_cookie_httponly"] is True
    assert got["proxy_ssl_header"] is None and got["hsts_seconds"] == 0  # both opt-in, from the environment
    assert got["password_validators"] == ["UserAttributeSimilarityValidator", "MinimumLengthValidator",
                                          "CommonPasswordValidator", "NumericPasswordValidator"]


def test_no_environment_at_all_is_production_and_refuses_to_start_without_secrets(tmp_path):
    result = run_python("import django; django.setup()", {}, tmp_path)
    assert result.returncode != 0 and "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "var" / "dev-secrets.json").exists()


def test_proxy_ssl_header_and_hsts_come_from_the_environment(tmp_path):
    got = probe({"SECRET_KEY": "s" * 50, "SMS_ENCRYPTION_KEYS": GOOD_KEY,
                 "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https", "SECURE_HSTS_SECONDS": "31536000",
                 "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_HSTS_PRELOAD": "true"}, tmp_path)
    assert got["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert (got["hsts_seconds"], got["hsts_subdomains"], got["hsts_preload"]) == (31536000, True, True)
    bad = run_python("import django; django.setup()", {"SECRET_KEY": "s", "SMS_ENCRYPTION_KEYS": GOOD_KEY,
                                                        "SECURE_PROXY_SSL_HEADER": "https"}, tmp_path)
    assert bad.returncode != 0 and "SECURE_PROXY_SSL_HEADER" in bad.stderr


def test_debug_on_turns_the_secure_cookie_flags_off_for_plain_http_development(tmp_path):
    got = probe({"DEBUG": "true"}, tmp_path)
    assert got["debug"] is True and got["session_cookie_secure"] is False and got["csrf_cookie_secure"] is False
    assert got["session_cookie_httponly"] is True


# --- embedded development mode: DEBUG=true (as `make run` sets it) and nothing else ---------------------------

def test_no_environment_runs_embedded_sqlite_eager_tasks_locmem_cache(tmp_path):
    got = probe({"DEBUG": "true"}, tmp_path)
    assert got["debug"] is True
    assert got["engine"] == "django.db.backends.sqlite3"
    assert Path(got["db_name"]) == tmp_path / "var" / "db.sqlite3"
    assert got["eager"] is True and got["broker"] is None
    assert got["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert got["twilio_base_url"] == "https://api.twilio.com"
    assert set(got["allowed_hosts"]) >= {"127.0.0.1", "localhost"}


def test_embedded_dev_secrets_are_generated_once_private_and_reused(tmp_path):
    first = probe({"DEBUG": "true"}, tmp_path)
    secrets_file = tmp_path / "var" / "dev-secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    stored = json.loads(secrets_file.read_text())
    assert first["keys"] == [stored["SMS_ENCRYPTION_KEYS"]]
    assert len(base64.b64decode(stored["SMS_ENCRYPTION_KEYS"])) == 32
    assert probe({"DEBUG": "true"}, tmp_path)["keys"] == first["keys"]  # stable across restarts: stored tokens stay readable


# --- PostgreSQL and Redis from URLs -----------------------------------------------------------------------

def test_database_url_postgres_uses_postgresql_through_psycopg3(tmp_path):
    got = probe({**SECRETS, "DATABASE_URL": "postgres://app:pw@db.internal:5433/sendora"}, tmp_path)
    assert got["engine"] == "django.db.backends.postgresql"
    assert (got["db_name"], got["db_host"]) == ("sendora", "db.internal")
    assert got["psycopg3"] is True


def test_redis_url_alone_gives_a_redis_cache_and_the_broker_on_the_next_database(tmp_path):
    got = probe({**SECRETS, "REDIS_URL": "redis://cache.internal:6379/3"}, tmp_path)
    assert got["cache"] == "sendora_sms.cache.RedisCache"
    assert got["cache_location"] == "redis://cache.internal:6379/3"
    assert got["eager"] is False and got["broker"] == "redis://cache.internal:6379/4"  # apart (issue #10 point 9)
    assert probe({**SECRETS, "REDIS_URL": "redis://:pw@r:6379/15"}, tmp_path)["broker"] == "redis://:pw@r:6379/14"
    assert probe({**SECRETS, "REDIS_URL": "redis://r:6379"}, tmp_path)["broker"] == "redis://r:6379/1"


def test_celery_broker_url_alone_is_the_broker_and_the_cache_is_the_next_database(tmp_path):
    got = probe({**SECRETS, "CELERY_BROKER_URL": "redis://broker.internal:6379/1"}, tmp_path)
    assert got["eager"] is False and got["broker"] == "redis://broker.internal:6379/1"
    assert got["cache"] == "sendora_sms.cache.RedisCache"
    assert got["cache_location"] == "redis://broker.internal:6379/2"


def test_separate_broker_and_cache_urls_are_honoured(tmp_path):
    got = probe({**SECRETS, "REDIS_URL": "redis://cache:6379/2", "CELERY_BROKER_URL": "redis://broker:6379/1"}, tmp_path)
    assert (got["broker"], got["cache_location"]) == ("redis://broker:6379/1", "redis://cache:6379/2")


def test_one_redis_database_for_cache_and_broker_fails_the_system_check(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "SENDORA_VAR_DIR": str(tmp_path / "var"), "DEBUG": "true",
           "REDIS_URL": "redis://127.0.0.1:6379/5", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/5"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "sendora.E001" in result.stderr


def test_the_wsgi_app_imports_every_view_before_its_first_request():
    """sendora_sms/wsgi.py populates the URL resolver at import (a gunicorn worker's boot), so the first provider
    callback or send after a (re)start does not pay for importing the URLconf and every view (issue #14)."""
    probe = ("import json, sys; import sendora_sms.wsgi; "
             "print(json.dumps([m in sys.modules for m in ('sms.webhooks.twilio', 'sms.api.views', 'sms.links.api')]))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, True, True]


def test_the_wsgi_app_freezes_its_boot_objects_out_of_the_garbage_collector():
    """sendora_sms/wsgi.py collects, then freezes what the boot made (issue #14, tenth pass): a full collection no
    longer walks the ~130,000 long-lived objects, so it no longer pauses a request for tens of milliseconds; what
    requests create is still collected."""
    probe = ("import gc, json, weakref, sendora_sms.wsgi\n"
             "frozen = gc.get_freeze_count()\n"
             "class Cycle: pass\n"
             "a = Cycle(); a.self = a; ref = weakref.ref(a); del a; gc.collect()\n"
             "print(json.dumps([frozen, ref() is None]))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    frozen, cycle_collected = json.loads(out.stdout.strip().splitlines()[-1])
    assert frozen > 50_000 and cycle_collected


def test_the_wsgi_app_opens_its_redis_connections_at_boot_and_boots_without_redis():
    """The broker hand-off and the events bus are connected before the first request (sendora_sms/wsgi.py): a
    worker's first callbacks do not open connections. A Redis that does not answer at boot only logs a warning."""
    probe = ("import json; import sendora_sms.wsgi; from sendora_sms import fast_publish; from sms.services import events; "
             "pools = [c.connection_pool for c in [*fast_publish._clients.values(), events._redis_client] if c]; "
             "print(json.dumps([len(pools), all(len(p._available_connections) >= 1 for p in pools)]))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, True]

    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe_port.getsockname()[1]}/0"
    env.update(REDIS_URL=dead, CELERY_BROKER_URL=dead, SMS_EVENTS_REDIS_URL=dead)
    out = subprocess.run([sys.executable, "-c", "import sendora_sms.wsgi; print('booted')"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip().endswith("booted"), out.stderr
    assert "Redis not reachable at boot" in out.stderr
