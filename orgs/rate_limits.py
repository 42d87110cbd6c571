"""Rate limits kept in the shared cache (Redis in production) through django-ratelimit.

When the cache cannot be reached, limits fail OPEN: requests are served, and the quota
(PostgreSQL, atomic) still caps what an org can send. See docs/reliability.md.
"""
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django_ratelimit.core import get_usage

from orgs.models import Org
from sendora_sms.errors import RateLimited

logger = logging.getLogger(__name__)


def _usage(*, group: str, value: str, rate: str, increment: bool) -> dict | None:
    try:
        return get_usage(None, group=group, key=lambda _g, _r: value, rate=rate, increment=increment)
    except Exception as exc:  # noqa: BLE001 — any cache failure degrades open, logged
        logger.warning("rate-limit cache unavailable (%s); failing open for %s", exc.__class__.__name__, group)
        return None


def send_rate_check(*, org: Org) -> None:
    """Count one send against the org's per-second rate; raise RateLimited past it.

    Fixed one-second windows. On Redis (sendora_sms/cache.py) the count is ONE atomic round trip
    (INCR, with EXPIRE when the window's key is new); elsewhere (the embedded in-memory cache)
    django-ratelimit's usage, as for the other limits."""
    rate = org.send_rate
    incr_in_window = getattr(cache, "incr_in_window", None)
    if incr_in_window is not None:
        now = time.time()
        window = int(now)
        try:
            count = incr_in_window(f"rate:sms-send:{org.id}:{window}", 2)
        except Exception as exc:  # noqa: BLE001 — any cache failure degrades open, logged
            logger.warning("rate-limit cache unavailable (%s); failing open for sms-send", exc.__class__.__name__)
            return
        if count > rate:
            raise RateLimited(f"More than {rate} sends per second for this org.", retry_after=1)
        return
    usage = _usage(group="sms-send", value=str(org.id), rate=f"{rate}/s", increment=True)
    if usage and usage["should_limit"] and usage["time_left"] >= 0:
        raise RateLimited(f"More than {rate} sends per second for this org.", retry_after=max(1, usage["time_left"]))


def bad_key_blocked(*, client: str) -> bool:
    usage = _usage(group="bad-api-key", value=client, rate=settings.API_BAD_KEY_RATE, increment=False)
    return bool(usage and usage["count"] >= usage["limit"])


def bad_key_record(*, client: str) -> None:
    _usage(group="bad-api-key", value=client, rate=settings.API_BAD_KEY_RATE, increment=True)


# --- dashboard login throttle (failed attempts only; sendora_sms/admin_site.py) ----------------------------

def _login_keys(*, client: str, username: str) -> list[tuple[str, str, str]]:
    return [("dashboard-login-address", client, settings.DASHBOARD_LOGIN_RATE_PER_ADDRESS),
            ("dashboard-login-username", username.strip().lower()[:150], settings.DASHBOARD_LOGIN_RATE_PER_USERNAME)]


def dashboard_login_retry_after(*, client: str, username: str) -> int | None:
    """Seconds until a refused login may be tried again, or None when it may be tried now.
    Refused when the failed attempts from this address, or for this username, reached their rate."""
    waits = []
    for group, value, rate in _login_keys(client=client, username=username):
        usage = _usage(group=group, value=value, rate=rate, increment=False)
        if usage and usage["count"] >= usage["limit"]:
            waits.append(max(1, usage["time_left"]))
    return max(waits) if waits else None


def dashboard_login_failure_record(*, client: str, username: str) -> None:
    for group, value, rate in _login_keys(client=client, username=username):
        _usage(group=group, value=value, rate=rate, increment=True)
