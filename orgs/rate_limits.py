"""Rate limits kept in the shared cache (Redis in production) through django-ratelimit.

When the cache cannot be reached, limits fail OPEN: requests are served, and the quota
(PostgreSQL, atomic) still caps what an org can send. See docs/reliability.md.
"""
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django_ratelimit.core import get_usage

from orgs.models import Org
from sendora_sms.cache import ScriptStep
from sendora_sms.errors import RateLimited

logger = logging.getLogger(__name__)


def _usage(*, group: str, value: str, rate: str, increment: bool) -> dict | None:
    try:
        return get_usage(None, group=group, key=lambda _g, _r: value, rate=rate, increment=increment)
    except Exception as exc:  # noqa: BLE001 — any cache failure degrades open, logged
        logger.warning("rate-limit cache unavailable (%s); failing open for %s", exc.__class__.__name__, group)
        return None


@dataclass(frozen=True)
class SendRateCount:
    """What `send_rate_count` counted in its one round trip."""

    available: bool  # False: the store failed; the rate (and the step that rode along) fail open
    count: int = 0  # sends of the org in this one-second window, this one included
    then: Any = None  # the step's result; None without a step or when the count was over the rate
    error: BaseException | None = None  # why the store failed (available False)


def _send_rate_key(org: Org) -> str:
    return f"rate:sms-send:{org.id}:{int(time.time())}"


def send_rate_count(*, org: Org, then: ScriptStep | None = None) -> SendRateCount | None:
    """Count one send against the org's per-second rate — and, in the same atomic Redis round trip, run
    `then` (e.g. the pumping window, sms/pumping.py) only when the count is within the rate, so a send
    the rate refuses is never counted by `then` (issue #14: one round trip instead of two). The decision
    itself is `send_rate_check(counted=…)`. None when the cache is not Redis (embedded mode): the checks
    then count for themselves."""
    if then is None:
        counter = getattr(cache, "incr_in_window", None)
        if counter is None:
            return None
        try:
            return SendRateCount(available=True, count=counter(_send_rate_key(org), 2))
        except Exception as exc:  # noqa: BLE001 — any cache failure degrades open, logged
            return _unavailable(exc)
    return send_rate_count_start(org=org, then=then).result()


class PendingRateCount:
    """What send_rate_count_start counted: `result()` is the SendRateCount (None in embedded mode), read from the
    reply still travelling (`reply`) once, or known already (`counted`); `discard()` drops a reply never read
    (a no-op once read)."""

    def __init__(self, *, reply=None, counted: SendRateCount | None = None):
        self._reply, self._counted = reply, counted

    def result(self) -> SendRateCount | None:
        if self._reply is not None:
            reply, self._reply = self._reply, None
            try:
                count, result = reply.result()
                self._counted = SendRateCount(available=True, count=count, then=result)
            except Exception as exc:  # noqa: BLE001 — any cache failure degrades open, logged
                self._counted = _unavailable(exc)
        return self._counted

    def discard(self) -> None:
        if self._reply is not None:
            self._reply.discard()
            self._reply = None


def send_rate_count_start(*, org: Org, then: ScriptStep | None) -> PendingRateCount:
    """send_rate_count(then=…) sent now, read later (issue #14: the send builds its statements while the script
    travels, so the reply is usually there when it is read). Nothing is decided until `result()`. Without a
    step (a test send), or without Redis, counted at once."""
    counter = getattr(cache, "incr_in_window_then_start", None)
    if then is None or counter is None:
        return PendingRateCount(counted=send_rate_count(org=org, then=then) if counter is not None else None)
    try:
        return PendingRateCount(reply=counter(_send_rate_key(org), 2, org.send_rate, then.script, then.keys,
                                              then.args))
    except Exception as exc:  # noqa: BLE001 — any cache failure degrades open, logged
        return PendingRateCount(counted=_unavailable(exc))


def _unavailable(exc: BaseException) -> SendRateCount:
    logger.warning("rate-limit cache unavailable (%s); failing open for sms-send", exc.__class__.__name__)
    return SendRateCount(available=False, error=exc)


def send_rate_check(*, org: Org, counted: SendRateCount | None = None) -> None:
    """Count one send against the org's per-second rate; raise RateLimited past it.

    Fixed one-second windows. On Redis (sendora_sms/cache.py) the count is ONE atomic round trip
    (INCR, with EXPIRE when the window's key is new) — made here, or already by `send_rate_count`
    (`counted`); elsewhere (the embedded in-memory cache) django-ratelimit's usage, as for the other
    limits."""
    rate = org.send_rate
    if counted is None and getattr(cache, "incr_in_window", None) is not None:
        counted = send_rate_count(org=org)
    if counted is not None:
        if counted.available and counted.count > rate:
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
