"""Sendora SMS settings — everything comes from the environment (see README, "Configuration").

With no environment at all the service runs on the embedded defaults: a SQLite
file under ./var, Celery tasks executed in-process, a local-memory cache and
development secrets generated once into ./var/dev-secrets.json.
"""
import base64
import json
import os
import secrets
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sendora_sms.env import env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("SENDORA_VAR_DIR", default=str(BASE_DIR / "var")))

# ------------------------------------------------------------------------------
# GENERAL
# ------------------------------------------------------------------------------
# Production by default: DEBUG is off unless the environment turns it on (`make run`, the embedded
# development mode, sets DEBUG=true itself). With DEBUG off, SECRET_KEY and SMS_ENCRYPTION_KEYS are
# required, and cookies are Secure + HttpOnly (see "SECURITY" below).
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
TIME_ZONE = "UTC"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "sendora_sms.urls"
WSGI_APPLICATION = "sendora_sms.wsgi.application"
# API paths have no trailing slash and must never redirect (a redirected POST loses its body).
APPEND_SLASH = False
# Request bodies above this size are refused with 413 (see sendora_sms/api/middleware.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)


def _dev_secrets() -> dict:
    """Development-only secrets, generated once and kept under ./var (never used with DEBUG off)."""
    path = VAR_DIR / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    data = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SMS_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    return data


def _required_secret(name: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return _dev_secrets()[name]
    raise ImproperlyConfigured(
        f"{name} is not set. With DEBUG off, {name} must be provided in the environment (see README, 'Configuration')."
    )


SECRET_KEY = _required_secret("SECRET_KEY")

# ------------------------------------------------------------------------------
# APPS
# ------------------------------------------------------------------------------
DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = ["rest_framework", "drf_spectacular", "drf_spectacular_sidecar"]
LOCAL_APPS = ["orgs", "sms", "audit"]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # The connection health check without its SELECT 1 when the connection is provably alive (issue #14)
    "sendora_sms.db_health.DbHealthMiddleware",
    "sendora_sms.api.middleware.RequestIdMiddleware",
    # Short links (sms/links/redirect.py): answers {link base}/{code} before the rest of the stack runs.
    "sms.links.redirect.LinkRedirectMiddleware",
    "sendora_sms.api.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The dashboard's middleware steps aside on /api/… (sendora_sms/api/middleware.py, issue #14)
    "sendora_sms.api.middleware.WhiteNoiseMiddleware",
    "sendora_sms.api.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # as is: check --deploy looks for it; exempt API views cost ~nothing
    "sendora_sms.api.middleware.AuthenticationMiddleware",
    "sendora_sms.api.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
try:  # WhiteNoise warns on every start when STATIC_ROOT is missing; collectstatic is optional here.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:
    pass
# Serve app static files (admin, Swagger UI) straight from their packages; no collectstatic step.
WHITENOISE_USE_FINDERS = True

# ------------------------------------------------------------------------------
# DATABASES
# ------------------------------------------------------------------------------
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
# postgres://… runs on PostgreSQL through psycopg 3 (Django picks psycopg 3 when installed).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    # A connection broken by a database restart is replaced on the next request. Web requests skip the
    # check's SELECT 1 round trip when the connection is provably alive: its socket has nothing pending and
    # it served this thread's previous request less than DB_HEALTH_CHECK_IDLE_SECONDS ago
    # (sendora_sms/db_health.py; 0 = always SELECT 1).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 3)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# The send path's statement batches are prepared on the connection (sendora_sms/db.py); false behind
# a transaction-mode pooler that can't carry prepared statements.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
DB_HEALTH_CHECK_IDLE_SECONDS = env.float("DB_HEALTH_CHECK_IDLE_SECONDS", default=1.0)

# ------------------------------------------------------------------------------
# CACHES (rate limits live here: Redis when REDIS_URL is set) and the CELERY BROKER — kept apart
# ------------------------------------------------------------------------------
# The rate-limit cache may be flushed (`cache.clear()` is FLUSHDB) or evicted; the broker holds queued
# tasks and must be neither. They therefore default to separate Redis databases: give one URL and the
# other is the next database number on the same server (…/2 → …/3; …/15 → …/14). Give both to put
# them anywhere else (a separate Redis server with `maxmemory-policy noeviction` for the broker is
# best: eviction is per server, not per database). The same URL for both is refused by a system
# check (sendora.E001). See README "Configuration" and docs/reliability.md.
_REDIS_SCHEMES = ("redis://", "rediss://")


def _next_redis_db(url: str) -> str:
    """The same Redis server's neighbouring database: …/N → …/N+1 (…/15 → …/14; no path → …/1)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    path = parts.path.strip("/")
    db = int(path) if path.isdigit() else 0
    other = db + 1 if db < 15 else db - 1
    return urlunsplit(parts._replace(path=f"/{other}"))


_REDIS_ENV = env.str("REDIS_URL", default="")
_BROKER_ENV = env.str("CELERY_BROKER_URL", default="")
REDIS_URL = _REDIS_ENV or (_next_redis_db(_BROKER_ENV) if _BROKER_ENV.startswith(_REDIS_SCHEMES) else "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, reusing one redis client per pool (sendora_sms/cache.py)
            "BACKEND": "sendora_sms.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # django-ratelimit warns that locmem is per-process; acceptable for the embedded default.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# ------------------------------------------------------------------------------
# CELERY
# ------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = _BROKER_ENV or (_next_redis_db(REDIS_URL) if REDIS_URL.startswith(_REDIS_SCHEMES) else "") or None
# No broker configured: run tasks in-process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
# Celery's Django fixup closes every database connection before and after each task unless this is set: a new
# PostgreSQL connection (and backend process) per task, and no prepared statement ever reused — ~15 % of a
# worker's CPU (issue #14). With it the fixup closes them every N tasks only, and sendora_sms/celery.py treats
# each task like Django treats a request (close_old_connections: CONN_MAX_AGE and broken connections honoured).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_TIME_LIMIT = 5 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 60
# Publishing must fail fast when the broker is down: the sweeper re-enqueues later.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# max_retries=0: a publisher (a worker's dispatcher, beat, a task's retry) makes ONE connection
# attempt when it has none. Without it kombu sleeps interval_start (2 s) and retries until the connection
# timeout, so during a broker outage every send request took 2–4 s and the web workers saturated
# (celery/celery#4627; tests/faults/test_broker_outage.py). Workers' consumers keep their own
# reconnect loop (broker_connection_max_retries), which these options do not touch.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "visibility_timeout": 3600,
                                   "max_retries": 0}
CELERY_TASK_DEFAULT_QUEUE = "sms-send"
CELERY_TASK_ROUTES = {
    "sms.tasks.send_dispatch_task": {"queue": "sms-send"},
    "sms.tasks.inbound_reply_task": {"queue": "sms-send"},
    "sms.tasks.events_publish_task": {"queue": "sms-events"},
    "sms.tasks.events_drain_task": {"queue": "sms-events"},
    "sms.tasks.sends_sweep_task": {"queue": "sms-periodic"},
    "sms.tasks.webhook_deliver_task": {"queue": "sms-webhooks"},
    "sms.tasks.webhooks_sweep_task": {"queue": "sms-periodic"},
    "sms.links.tasks.link_clicks_drain_task": {"queue": "sms-periodic"},
}
CELERY_BEAT_SCHEDULE = {
    "sends-sweep": {"task": "sms.tasks.sends_sweep_task", "schedule": env.float("SMS_SWEEP_INTERVAL", default=30.0)},
    "webhooks-sweep": {"task": "sms.tasks.webhooks_sweep_task",
                       "schedule": env.float("SMS_SWEEP_INTERVAL", default=30.0)},
    # Queued link clicks → LinkClick rows (sms/links/services.py clicks_drain); an unrun one expires.
    "links-clicks-drain": {"task": "sms.links.tasks.link_clicks_drain_task", "options": {"expires": 10},
                           "schedule": env.float("SMS_LINK_CLICKS_DRAIN_INTERVAL", default=2.0)},
}

# ------------------------------------------------------------------------------
# REST FRAMEWORK / OPENAPI
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orgs.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orgs.permissions.HasApiKey"],
    "DEFAULT_PARSER_CLASSES": ["sendora_sms.api.parsers.JsonParser", "sendora_sms.api.parsers.FormEncodedJsonParser"],
    "DEFAULT_RENDERER_CLASSES": ["sendora_sms.api.renderers.JsonRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "sendora_sms.api.exception_handler.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sendora SMS API",
    "DESCRIPTION": "Send SMS through your own Twilio account with compliance, quotas and audit. See README.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Swagger UI served from the package (drf-spectacular-sidecar), not a CDN: the machine may be offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "sendora_sms.api.schema.document_webhooks"],
}

# ------------------------------------------------------------------------------
# SMS
# ------------------------------------------------------------------------------
# Base64 32-byte AES-256 keys, newest first; the first encrypts, all decrypt.
SMS_ENCRYPTION_KEYS = env.list("SMS_ENCRYPTION_KEYS", default=[]) or _required_secret("SMS_ENCRYPTION_KEYS").split(",")
# Public base URL Twilio calls (webhook signatures are computed over it; StatusCallback is built from it).
SMS_PUBLIC_BASE_URL = env.str("SMS_PUBLIC_BASE_URL", default="").rstrip("/")
# Behind a TLS-terminating proxy the dashboard's login POST carries Origin https://<public host>;
# trust the public origin so CSRF checks pass (more origins: CSRF_TRUSTED_ORIGINS, comma-separated).
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SMS_PUBLIC_BASE_URL] if SMS_PUBLIC_BASE_URL else [])
# Tenant webhooks (sms/tenant_webhooks): plain http and private/loopback targets only where explicitly allowed
# (development and tests); the retry schedule in seconds (Standard Webhooks' kind: immediately, 5 s, 5 min, …).
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=False)
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=False)
WEBHOOKS_RETRY_SCHEDULE = [float(s) for s in env.list(
    "WEBHOOKS_RETRY_SCHEDULE", default=["0", "5", "300", "1800", "7200", "18000", "36000", "36000"])]
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=15.0)
WEBHOOKS_ENDPOINT_CONCURRENCY = env.int("WEBHOOKS_ENDPOINT_CONCURRENCY", default=4)
WEBHOOKS_DISABLE_AFTER_DAYS = env.float("WEBHOOKS_DISABLE_AFTER_DAYS", default=5.0)
WEBHOOKS_RETENTION_DAYS = env.int("WEBHOOKS_RETENTION_DAYS", default=30)
WEBHOOKS_MAX_ENDPOINTS = 10

# https://www.twilio.com/docs/usage/api — tests point this at a local fake server.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
TWILIO_HTTP_TIMEOUT = env.float("TWILIO_HTTP_TIMEOUT", default=10.0)
# MessageBird (legacy REST) and Sinch (xms v1): tests point these at local fakes (docs/providers.md).
MESSAGEBIRD_API_BASE_URL = env.str("MESSAGEBIRD_API_BASE_URL", default="https://rest.messagebird.com").rstrip("/")
SINCH_API_BASE_URL = env.str("SINCH_API_BASE_URL", default="").rstrip("/")  # '' = https://{region}.sms.api.sinch.com
PROVIDER_HTTP_TIMEOUT = env.float("PROVIDER_HTTP_TIMEOUT", default=TWILIO_HTTP_TIMEOUT)
SINCH_WEBHOOK_TOLERANCE_SECONDS = env.int("SINCH_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Adaptive failover between an org's providers (sms/services/failover.py).
SMS_FAILOVER_WINDOW_SECONDS = env.int("SMS_FAILOVER_WINDOW_SECONDS", default=60)
SMS_FAILOVER_BUCKET_SECONDS = env.int("SMS_FAILOVER_BUCKET_SECONDS", default=5)
SMS_FAILOVER_MIN_ATTEMPTS = env.int("SMS_FAILOVER_MIN_ATTEMPTS", default=5)
SMS_FAILOVER_FAILURE_RATE = env.float("SMS_FAILOVER_FAILURE_RATE", default=0.5)
SMS_FAILOVER_COOLDOWN_SECONDS = env.float("SMS_FAILOVER_COOLDOWN_SECONDS", default=60.0)
# Sends a test key (sk_test_…) may make per org and UTC day. The sandbox never spends the live monthly
# quota; this cap keeps it from being a free load generator (README "Test and live keys").
SANDBOX_DAILY_CAP = env.int("SANDBOX_DAILY_CAP", default=500)
SMS_DUPLICATE_WINDOW_SECONDS = env.int("SMS_DUPLICATE_WINDOW_SECONDS", default=60)
# Pumping defence (sms/pumping.py): live sends per sliding hour to one number range in a usual country (an org's
# pumping_limit overrides it); other countries get a third, high-risk ranges a tenth. A country becomes usual
# after SMS_PUMPING_USUAL_MIN accepted sends within SMS_PUMPING_LEARN_DAYS.
SMS_PUMPING_LIMIT = env.int("SMS_PUMPING_LIMIT", default=15)
SMS_PUMPING_USUAL_MIN = env.int("SMS_PUMPING_USUAL_MIN", default=100)
SMS_PUMPING_LEARN_DAYS = env.int("SMS_PUMPING_LEARN_DAYS", default=30)
SMS_DISPATCH_MAX_RETRIES = env.int("SMS_DISPATCH_MAX_RETRIES", default=5)
SMS_DISPATCH_RETRY_BASE_SECONDS = env.float("SMS_DISPATCH_RETRY_BASE_SECONDS", default=2.0)
SMS_DISPATCH_RETRY_MAX_SECONDS = env.float("SMS_DISPATCH_RETRY_MAX_SECONDS", default=300.0)
# The dispatch hand-off (sms/services/handoff.py): a worker's dispatcher publishes the waiting sends' tasks every
# this many seconds (at once again after a full batch of SMS_DISPATCH_HANDOFF_BATCH).
SMS_DISPATCH_HANDOFF_POLL_SECONDS = env.float("SMS_DISPATCH_HANDOFF_POLL_SECONDS", default=0.05)
SMS_DISPATCH_HANDOFF_BATCH = env.int("SMS_DISPATCH_HANDOFF_BATCH", default=500)
# A queued send untouched this long is re-enqueued; a send stuck in "sending" this long is reconciled.
SMS_SWEEP_QUEUED_AFTER_SECONDS = env.int("SMS_SWEEP_QUEUED_AFTER_SECONDS", default=60)
SMS_SWEEP_SENDING_AFTER_SECONDS = env.int("SMS_SWEEP_SENDING_AFTER_SECONDS", default=300)
# A send whose provider outcome is still unknown this long after its attempt started is parked for review.
SMS_RECONCILE_DEADLINE_SECONDS = env.int("SMS_RECONCILE_DEADLINE_SECONDS", default=3600)
# The events bus: a Redis stream (XADD, approximate MAXLEN); see docs/architecture.md. It lives with the broker
# by default, not in the rate-limit cache, which may be flushed or evicted (issue #10 point 9).
SMS_EVENTS_REDIS_URL = env.str(
    "SMS_EVENTS_REDIS_URL",
    default=CELERY_BROKER_URL if (CELERY_BROKER_URL or "").startswith(_REDIS_SCHEMES) else REDIS_URL)
SMS_EVENTS_STREAM = env.str("SMS_EVENTS_STREAM", default="sendora:events")
SMS_EVENTS_STREAM_MAXLEN = env.int("SMS_EVENTS_STREAM_MAXLEN", default=100_000)
# The base of the events drain's flag key (":draining"), beside the stream (sms/services/events.py). Committed events
# wait for the drain as unpublished rows: no list is kept here any more.
SMS_EVENTS_PENDING_KEY = env.str("SMS_EVENTS_PENDING_KEY", default=SMS_EVENTS_STREAM + ":pending")
# After a partial batch the drain waits this long for more before its next pass (0: never waits).
SMS_EVENTS_DRAIN_LINGER_SECONDS = env.float("SMS_EVENTS_DRAIN_LINGER_SECONDS", default=0.05)
# Short links (sms/links, README "Links"): the short base (a path, or a host that is only a link domain); the
# click queue (a Redis list beside the broker, never the flushable cache; empty: clicks are written directly);
# the header a CDN/proxy puts the visitor's country in (ISO 3166-1 alpha-2).
SMS_LINK_BASE_URL = env.str("SMS_LINK_BASE_URL", default="").rstrip("/") or (
    (SMS_PUBLIC_BASE_URL or "http://localhost:8000") + "/l")
SMS_LINK_CLICKS_REDIS_URL = env.str("SMS_LINK_CLICKS_REDIS_URL", default=SMS_EVENTS_REDIS_URL)
SMS_LINK_CLICKS_QUEUE = env.str("SMS_LINK_CLICKS_QUEUE", default="sendora:link-clicks")
SMS_LINK_COUNTRY_HEADER = env.str("SMS_LINK_COUNTRY_HEADER", default="CF-IPCountry")
# Repeated bad API keys from one client address are refused with 429 past this rate.
API_BAD_KEY_RATE = env.str("API_BAD_KEY_RATE", default="30/m")
# How long a web process reuses an API key's resolution (key → org → provider account) before reading
# it again: a revocation made elsewhere is honoured within this time (orgs/key_cache.py; 0 = off).
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=1.0)
# Reverse proxies in front of the service that append to X-Forwarded-For (0 = trust no header).
# The client address (bad-key limiter, audit log) is read through sendora_sms/client_ip.py.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# ------------------------------------------------------------------------------
# AUTH / ADMIN
# ------------------------------------------------------------------------------
# Django's standard validators for dashboard users (createsuperuser, the admin's password forms).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed dashboard logins are throttled per client address and per username (django-ratelimit, in the
# rate-limit cache; sendora_sms/admin_site.py). Past either rate the login page answers 429.
DASHBOARD_LOGIN_RATE_PER_ADDRESS = env.str("DASHBOARD_LOGIN_RATE_PER_ADDRESS", default="20/10m")
DASHBOARD_LOGIN_RATE_PER_USERNAME = env.str("DASHBOARD_LOGIN_RATE_PER_USERNAME", default="5/10m")
LOGIN_URL = "/admin/login/"
if "pytest" in sys.modules or env.bool("FAST_PASSWORD_HASHER", default=False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# ------------------------------------------------------------------------------
# SECURITY (HTTPS behind a proxy, cookies, HSTS) — README "Configuration", "Production"
# ------------------------------------------------------------------------------
# Cookies (the dashboard's session and CSRF cookies) are Secure and HttpOnly whenever DEBUG is off.
# The admin posts its CSRF token in the form, so no script needs to read the CSRF cookie.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = not DEBUG
# Behind a TLS-terminating proxy that sets e.g. X-Forwarded-Proto: "HTTP_X_FORWARDED_PROTO,https".
# Set it only when that proxy always overwrites the header (Django's warning applies).
_PROXY_SSL = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _PROXY_SSL:
    if len(_PROXY_SSL) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be '<META name>,<value>', "
                                   "e.g. HTTP_X_FORWARDED_PROTO,https.")
    SECURE_PROXY_SSL_HEADER = (_PROXY_SSL[0], _PROXY_SSL[1])
# HSTS: off unless configured (a browser remembers it for SECURE_HSTS_SECONDS; turn it on once HTTPS is final).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Plain-HTTP requests answered with a redirect to HTTPS (with SECURE_PROXY_SSL_HEADER, judged by the proxy's
# header). The README's production settings turn it on. /health is exempt: load balancers and orchestrators
# probe it over plain HTTP from inside the network.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# ------------------------------------------------------------------------------
# LOGGING
# ------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}


def _validate_encryption_keys(keys: list[str]) -> list[str]:
    keys = [k.strip() for k in keys if k.strip()]
    if not keys:
        raise ImproperlyConfigured("SMS_ENCRYPTION_KEYS is empty; give at least one base64-encoded 32-byte key.")
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.b64decode(key, validate=True)
        except ValueError as exc:
            raise ImproperlyConfigured(f"SMS_ENCRYPTION_KEYS entry {position} is not valid base64.") from exc
        if len(raw) != 32:
            raise ImproperlyConfigured(f"SMS_ENCRYPTION_KEYS entry {position} must decode to 32 bytes (AES-256).")
    return keys


SMS_ENCRYPTION_KEYS = _validate_encryption_keys(SMS_ENCRYPTION_KEYS)
