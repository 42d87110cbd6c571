"""Sendora's own system checks (run by every `manage.py` command, `check --deploy` included)."""
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register


def _redis_location(url: str) -> tuple | None:
    if not url or not url.startswith(("redis://", "rediss://")):
        return None
    parts = urlsplit(url)
    path = parts.path.strip("/")
    return (parts.hostname or "localhost", parts.port or 6379, int(path) if path.isdigit() else 0)


@register(Tags.caches)
def cache_and_broker_apart(app_configs, **kwargs):
    """sendora.E001: the rate-limit cache and the Celery broker must not share a Redis database —
    `cache.clear()` (FLUSHDB) or a cache eviction would drop queued tasks."""
    cache = _redis_location(getattr(settings, "REDIS_URL", ""))
    broker = _redis_location(settings.CELERY_BROKER_URL or "")
    if cache is not None and cache == broker:
        return [Error(
            "REDIS_URL and CELERY_BROKER_URL point at the same Redis database.",
            hint="Give the broker its own database or server (e.g. REDIS_URL=redis://host:6379/0, "
                 "CELERY_BROKER_URL=redis://host:6379/1), or set only one of them: the other then defaults "
                 "to the next database number. See README, 'Configuration'.",
            id="sendora.E001",
        )]
    return []
