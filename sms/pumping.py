"""SMS-pumping defence: a per-org velocity limit on sends to one number range over a sliding hour.

SMS pumping (toll fraud): bots make a product text premium-rate numbers — typically a burst to
sequential numbers in one range of one country, for a share of the termination fee. Genuine traffic
spreads over many ranges. So, per org and per number range (sms.pricing.number_range: the E.164
number without its last 4 digits, a block of 10,000 numbers), at most `limit` live sends are accepted
in any sliding hour:

- usual countries — the org's home country, or a country the org has sent at least
  SMS_PUMPING_USUAL_MIN accepted sends to (learned; the count expires SMS_PUMPING_LEARN_DAYS after
  its first send): `org.pumping_limit`, else SMS_PUMPING_LIMIT (default 15);
- any other country: a third of that (at least 1);
- a range on the shipped high-risk list (sms/pricing/high_risk_ranges.csv): a tenth (at least 1).

A send past the limit is refused with 429 `suspected_pumping` (audited with the reason; shown on the
dashboard's "Cost and limits" page). Refused attempts are not counted, so a range reopens as its
accepted sends age out of the hour. Test-key sends (the sandbox: nothing leaves the platform, nothing
is spent) are not checked.

One Redis round trip (an atomic Lua script: trim the window, count, admit-and-record), BEFORE the
send's database transaction — no Redis call is made while a transaction or row lock is held. When
Redis cannot be reached the check fails open (logged), like the rate limit: spend caps, which live in
PostgreSQL, still bound the cost. Without Redis (embedded mode) an in-process window is used.
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from sendora_sms.cache import ScriptStep
from sendora_sms.errors import SendoraError
from sms import pricing

logger = logging.getLogger("sms.pumping")

WINDOW_SECONDS = 3600
KEY_PREFIX = "sendora:pump"

_SCRIPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local home = ARGV[6] == '1'
local risky = ARGV[7] == '1'
local usual = home
if not usual then
  usual = tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[8])
end
local limit = tonumber(ARGV[4])
if risky then limit = tonumber(ARGV[5]) elseif usual then limit = tonumber(ARGV[3]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local since = now
  if oldest[2] then since = tonumber(oldest[2]) end
  return {0, n, limit, usual and 1 or 0, since + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[10])
redis.call('PEXPIRE', KEYS[1], window)
if not risky and not home then
  if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[9])) end
end
return {1, n + 1, limit, usual and 1 or 0, 0}
"""


class SuspectedPumping(SendoraError):
    code = "suspected_pumping"
    http_status = 429
    message = "Too many sends to this number range in the last hour; suspected SMS pumping."

    def __init__(self, message=None, *, retry_after: int = 60, **kw):
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(message, **kw)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    usual: int
    other: int
    high_risk: int


def limits_for(org) -> Limits:
    base = org.pumping_limit if org.pumping_limit is not None else settings.SMS_PUMPING_LIMIT
    base = max(1, int(base))
    return Limits(usual=base, other=max(1, base // 3), high_risk=max(1, base // 10))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # sends to the range in the window, this one included when allowed
    limit: int
    usual: bool
    retry_after_ms: int = 0


class _LocalWindows:
    """The same algorithm in process memory (embedded mode, no Redis)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ranges: dict[str, list[int]] = {}
        self._learned: dict[str, int] = {}

    def run(self, keys, args) -> list:
        range_key, country_key = keys
        now, window, usual_limit, other_limit, risk_limit, home, risky, usual_min = (
            int(args[0]), int(args[1]), int(args[2]), int(args[3]), int(args[4]), args[5] == "1", args[6] == "1",
            int(args[7]))
        with self._lock:
            usual = home or self._learned.get(country_key, 0) >= usual_min
            limit = risk_limit if risky else usual_limit if usual else other_limit
            stamps = [t for t in self._ranges.get(range_key, []) if t > now - window]
            self._ranges[range_key] = stamps
            if len(stamps) >= limit:
                return [0, len(stamps), limit, int(usual), stamps[0] + window - now]
            stamps.append(now)
            if not risky and not home:
                self._learned[country_key] = self._learned.get(country_key, 0) + 1
            return [1, len(stamps), limit, int(usual), 0]


_local = _LocalWindows()
_scripts: dict[int, object] = {}


def _runner():
    from django.core.cache import cache

    client_factory = getattr(getattr(cache, "_cache", None), "get_client", None)
    if client_factory is None or not settings.REDIS_URL:
        return _local.run
    client = client_factory(None, write=True)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SCRIPT)
    return lambda keys, args: script(keys=keys, args=args)


def pumping_step(*, org, to: str, country: str, now_ms: int | None = None) -> ScriptStep:
    """The check for one send to `to` as a Redis script step (script, keys, args): run by `pumping_verdict`,
    or inside another script's round trip (the send path's rate limit, orgs/rate_limits.send_rate_count)."""
    limits = limits_for(org)
    risky = pricing.high_risk_reason(to) is not None
    rng = pricing.number_range(to)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    keys = [f"{KEY_PREFIX}:r:{org.pk}:{rng}", f"{KEY_PREFIX}:c:{org.pk}:{country}"]
    args = [now_ms, WINDOW_SECONDS * 1000, limits.usual, limits.other, limits.high_risk,
            "1" if country == org.home_country else "0", "1" if risky else "0", settings.SMS_PUMPING_USUAL_MIN,
            settings.SMS_PUMPING_LEARN_DAYS * 86400, f"{now_ms}:{uuid.uuid4().hex[:12]}"]
    return ScriptStep(script=_SCRIPT, keys=keys, args=args)


def verdict_of(result) -> Verdict:
    """The script's answer [allowed, count, limit, usual, retry_after_ms] as a Verdict."""
    allowed, count, limit, usual, retry_ms = result
    return Verdict(allowed=bool(int(allowed)), count=int(count), limit=int(limit), usual=bool(int(usual)),
                   retry_after_ms=int(retry_ms))


def store_unavailable(org, exc: BaseException) -> None:
    logger.warning("pumping store unavailable (%s); failing open for org %s", exc.__class__.__name__, org.pk)


def pumping_verdict(*, org, to: str, country: str, now_ms: int | None = None) -> Verdict | None:
    """Count one send to `to` against its range's window; None when the store is unreachable (fail open)."""
    step = pumping_step(org=org, to=to, country=country, now_ms=now_ms)
    try:
        result = _runner()(step.keys, step.args)
    except Exception as exc:  # noqa: BLE001 — any store failure degrades open, logged
        store_unavailable(org, exc)
        return None
    return verdict_of(result)


_COUNT = object()


def pumping_check(*, org, to: str, country: str, now_ms: int | None = None, verdict=_COUNT) -> None:
    """Raise SuspectedPumping when the send to `to` would exceed its range's hourly limit. `verdict`: the
    window already counted for this send (a Verdict, or None when the store was unreachable: fail open),
    e.g. in the rate limit's round trip; by default it is counted here."""
    if verdict is _COUNT:
        verdict = pumping_verdict(org=org, to=to, country=country, now_ms=now_ms)
    if verdict is None or verdict.allowed:
        return
    rng = pricing.number_range(to)
    risk = pricing.high_risk_reason(to)
    kind = ("a high-risk range" if risk else "a usual country's range" if verdict.usual
            else "a range in a country outside the org's usual traffic")
    reason = (f"{verdict.count} sends to {rng}… ({kind}) in the last hour reached the limit of {verdict.limit}"
              + (f"; high-risk: {risk}" if risk else ""))
    retry_after = max(1, math.ceil(verdict.retry_after_ms / 1000))
    raise SuspectedPumping(
        f"Refused as suspected SMS pumping: {reason}. An org admin can raise the limit (Dashboard → Organisations, "
        f"or set_org_limits --pumping-limit).", retry_after=retry_after,
        details={"country": country, "range": rng, "limit": verdict.limit, "window_seconds": WINDOW_SECONDS,
                 "reason": reason, "retry_after": retry_after})
