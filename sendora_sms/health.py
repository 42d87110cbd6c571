"""GET /health: 200 when the database and the broker answer, else 503."""
import socket
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}"


def _broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url:
        return "in-process"
    parsed = urlparse(url)
    try:
        if parsed.scheme.startswith("redis"):
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        else:
            socket.create_connection((parsed.hostname, parsed.port or 5672), timeout=1).close()
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}"


def _providers() -> dict:
    """Provider health across every org's accounts (no org names or ids: /health is public): per provider,
    how many accounts are configured and demoted, and the mean recent success rate. Never fails the check."""
    try:
        from sms.services.failover import providers_health_summary

        return providers_health_summary()
    except Exception as exc:  # noqa: BLE001
        return {"error": exc.__class__.__name__}


def health(request):
    checks = {"database": _database(), "broker": _broker()}
    healthy = all(v in ("ok", "in-process") for v in checks.values())
    details = {"providers": _providers()} if checks["database"] == "ok" else {}
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks, "details": details},
                        status=200 if healthy else 503)
