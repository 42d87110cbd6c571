"""Adaptive failover between an org's provider accounts: health in a sliding window, demotion,
cool-down and probe. Services decide here; adapters only classify their errors.

Health is kept per (org, provider) in the cache (Redis in production, so every worker shares it):
attempt outcomes are counted in SMS_FAILOVER_BUCKET_SECONDS buckets, and the window is the last
SMS_FAILOVER_WINDOW_SECONDS of buckets. Only *transient* failures count against a provider (5xx, 429,
a connection error before any response: the provider provably did not take the message). Permanent
errors (invalid number, opted out) say nothing about the provider's health and count as answers.
Ambiguous outcomes (a timeout after the request was sent) count as failures for health — the provider
was too slow — but the send itself never moves (sms/services/dispatch.py).

- When at least SMS_FAILOVER_MIN_ATTEMPTS attempts are in the window and the failure rate reaches
  SMS_FAILOVER_FAILURE_RATE, the provider is *demoted* until now + SMS_FAILOVER_COOLDOWN_SECONDS: new
  attempts go to the next enabled provider by priority.
- After the cool-down the provider is *probed*: it is tried again in its priority place; its window
  starts afresh, and its first transient failure while probing demotes it again at once; its first
  success ends the probe.
- When every enabled provider is demoted, they are all tried anyway (soonest back first): demotion
  reorders, it never refuses a send.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("sms.failover")

OK, FAILURE = "ok", "fail"


@dataclass(frozen=True)
class Health:
    state: str  # healthy | demoted
    demoted_until: datetime | None
    success_rate: float | None  # over the window; None with no attempts in it
    attempts: int = 0

    def as_dict(self) -> dict:
        return {"state": self.state,
                "demoted_until": self.demoted_until.isoformat().replace("+00:00", "Z") if self.demoted_until else None,
                "success_rate": None if self.success_rate is None else round(self.success_rate, 4)}


def _key(org_id, provider: str, suffix: str) -> str:
    return f"sms:phealth:{org_id}:{provider}:{suffix}"


def _bucket(now: float) -> int:
    return int(now // settings.SMS_FAILOVER_BUCKET_SECONDS)


def _window_buckets(now: float) -> list[int]:
    size = settings.SMS_FAILOVER_BUCKET_SECONDS
    count = max(1, int(-(-settings.SMS_FAILOVER_WINDOW_SECONDS // size)))
    current = _bucket(now)
    return list(range(current - count + 1, current + 1))


def _counts(org_id, provider: str, now: float) -> tuple[int, int]:
    """(ok, failed) attempts in the window — while demoted, the outage's; after it, since the probe began."""
    since = 0 if demoted_until(org_id, provider, now=now) else (cache.get(_key(org_id, provider, "since")) or 0)
    buckets = [b for b in _window_buckets(now) if b >= since]
    keys = [_key(org_id, provider, f"{b}:{kind}") for b in buckets for kind in (OK, FAILURE)]
    values = cache.get_many(keys) if keys else {}
    ok = sum(int(v) for k, v in values.items() if k.endswith(":" + OK))
    failed = sum(int(v) for k, v in values.items() if k.endswith(":" + FAILURE))
    return ok, failed


def _incr(key: str) -> None:
    ttl = settings.SMS_FAILOVER_WINDOW_SECONDS + settings.SMS_FAILOVER_BUCKET_SECONDS
    if hasattr(cache, "incr_in_window"):  # Redis (sendora_sms/cache.py): INCR + EXPIRE, one round trip
        cache.incr_in_window(key, ttl)
        return
    cache.add(key, 0, timeout=ttl)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=ttl)


def demoted_until(org_id, provider: str, *, now: float | None = None) -> float | None:
    until = cache.get(_key(org_id, provider, "demoted"))
    now = time.time() if now is None else now
    return float(until) if until is not None and float(until) > now else None


def provider_record(*, org_id, provider: str, ok: bool, probing: bool | None = None) -> None:
    """Count one attempt's outcome and demote the provider when it is past the threshold. Never raises:
    a cache outage must not fail a send (health then stays as it was). `probing`: whether the provider was
    being probed when the attempt was routed (accounts_in_failover_order reads it beside the demotion);
    None reads it now."""
    try:
        _record(org_id, provider, ok, probing)
    except Exception:  # noqa: BLE001
        logger.warning("org=%s provider=%s health not recorded (cache unavailable)", org_id, provider, exc_info=True)


def _record(org_id, provider: str, ok: bool, probing: bool | None = None) -> None:
    now = time.time()
    _incr(_key(org_id, provider, f"{_bucket(now)}:{OK if ok else FAILURE}"))
    if probing is None or not ok:
        probing = cache.get(_key(org_id, provider, "probe"))
    if ok:
        if probing:
            cache.delete(_key(org_id, provider, "probe"))
            logger.info("org=%s provider=%s probe succeeded: back in rotation", org_id, provider)
        return
    if demoted_until(org_id, provider, now=now) is not None:
        return
    good, bad = _counts(org_id, provider, now)
    total = good + bad
    past_threshold = (total >= settings.SMS_FAILOVER_MIN_ATTEMPTS
                      and bad / total >= settings.SMS_FAILOVER_FAILURE_RATE)
    if probing or past_threshold:
        _demote(org_id, provider, now)


def _demote(org_id, provider: str, now: float) -> None:
    cooldown = settings.SMS_FAILOVER_COOLDOWN_SECONDS
    until = now + cooldown
    cache.set(_key(org_id, provider, "demoted"), until, timeout=int(cooldown) + 1)
    # After the cool-down: a probe, with a window that starts afresh (the outage's failures are forgotten).
    cache.set(_key(org_id, provider, "probe"), 1, timeout=int(cooldown + settings.SMS_FAILOVER_WINDOW_SECONDS * 10))
    cache.set(_key(org_id, provider, "since"), _bucket(until), timeout=int(cooldown + settings.SMS_FAILOVER_WINDOW_SECONDS * 2))
    logger.warning("org=%s provider=%s demoted for %ss (failure rate past the threshold)", org_id, provider, cooldown)


def provider_health(*, org_id, provider: str) -> Health:
    now = time.time()
    try:
        until = demoted_until(org_id, provider, now=now)
        good, bad = _counts(org_id, provider, now)
    except Exception:  # noqa: BLE001 — the health view must not fail with the cache
        return Health(state="healthy", demoted_until=None, success_rate=None)
    total = good + bad
    return Health(state="demoted" if until else "healthy",
                  demoted_until=datetime.fromtimestamp(until, tz=dt_timezone.utc) if until else None,
                  success_rate=(good / total) if total else None, attempts=total)


def accounts_in_failover_order(accounts) -> list:
    """The enabled accounts to try, in order: healthy ones by (priority, provider), then demoted ones,
    soonest back first."""
    now = time.time()
    healthy, demoted = [], []
    accounts = sorted((a for a in accounts if a.enabled), key=lambda a: (a.priority, a.provider))
    keys = [_key(a.org_id, a.provider, suffix) for a in accounts for suffix in ("demoted", "probe")]
    try:
        state = cache.get_many(keys) if keys else {}  # one round trip for every account's demotion and probe
    except Exception:  # noqa: BLE001 — a cache outage routes by priority alone
        state = None
    for account in accounts:
        until = None
        if state is not None:
            value = state.get(_key(account.org_id, account.provider, "demoted"))
            until = float(value) if value is not None and float(value) > now else None
        # Read with the demotion, so recording this attempt's success needs no second read (provider_record).
        account.failover_probing = None if state is None else bool(state.get(_key(account.org_id, account.provider,
                                                                                  "probe")))
        (demoted if until else healthy).append((until or 0, account))
    return [a for _, a in healthy] + [a for _, a in sorted(demoted, key=lambda item: item[0])]


SUMMARY_CACHE_SECONDS = 10


def providers_health_summary(*, limit: int = 200) -> dict:
    """For /health: per provider, accounts configured (enabled), demoted now, and the mean success rate of
    those with recent attempts. Bounded (a public endpoint): at most `limit` accounts are looked at, and the
    summary is cached for SUMMARY_CACHE_SECONDS."""
    cached = cache.get("sms:phealth:summary")
    if cached is not None:
        return cached
    summary = _summary(limit)
    cache.set("sms:phealth:summary", summary, SUMMARY_CACHE_SECONDS)
    return summary


def _summary(limit: int) -> dict:
    from sms.models import ProviderAccount

    summary: dict = {}
    rows = ProviderAccount.objects.filter(enabled=True).values_list("org_id", "provider")[:limit]
    for org_id, provider in rows:
        entry = summary.setdefault(provider, {"accounts": 0, "demoted": 0, "success_rate": None, "_rates": []})
        health = provider_health(org_id=org_id, provider=provider)
        entry["accounts"] += 1
        entry["demoted"] += health.state == "demoted"
        if health.success_rate is not None:
            entry["_rates"].append(health.success_rate)
    for entry in summary.values():
        rates = entry.pop("_rates")
        entry["success_rate"] = round(sum(rates) / len(rates), 4) if rates else None
    return summary
