"""Process-local cache of API key resolution: raw key → the active ApiKey with its org and the org's
provider account (issue #14: the lookup was a third of a send's CPU).

- An entry lives API_KEY_CACHE_SECONDS (default 1 s) from the moment it was read from the database.
  A key revoked — or an org/plan/provider account changed — by ANOTHER process is therefore honoured
  within that time by every web worker; by this process, at once: saving or deleting an ApiKey, Org
  or ProviderAccount through the ORM clears this process's cache (signals, orgs/apps.py), and so does
  `api_key_revoke` (a queryset UPDATE, which sends no signal).
- Only found keys are cached. An unknown key is looked up every time (and counted by the bad-key
  limiter), so a brute force gains nothing from the cache.
- The cached ApiKey/Org/ProviderAccount objects are shared by the requests of this process for their
  lifetime and must be treated as read-only (the only field written on them is `last_used_at`, by
  `api_key_touch`, which is what keeps that touch to at most one UPDATE per key and resolution window).
- 0 disables the cache (every request looks the key up).
- The provider webhooks' org → provider account (+ its verifier, the decrypted secrets) resolution uses the
  same cache and rules (`resolve`): a status callback is the most frequent request the service answers.
"""
from __future__ import annotations

import threading
import time

from django.conf import settings

_MAX_ENTRIES = 10_000
_entries: dict[str, tuple[float, object]] = {}
_lock = threading.Lock()


def ttl_seconds() -> float:
    return float(getattr(settings, "API_KEY_CACHE_SECONDS", 1.0))


def api_key_resolve(key_hash: str, load):
    """The ApiKey for `key_hash` from this process's cache, or `load()` (a database lookup returning an
    ApiKey or None) — cached when found, for ttl_seconds()."""
    ttl = ttl_seconds()
    if ttl <= 0:
        return load()
    now = time.monotonic()
    hit = _entries.get(key_hash)
    if hit is not None and hit[0] > now:
        return hit[1]
    key = load()
    if key is None:
        _entries.pop(key_hash, None)
        return None
    with _lock:
        if len(_entries) >= _MAX_ENTRIES:
            _entries.clear()
        _entries[key_hash] = (now + ttl, key)
    return key


def resolve(cache_key: str, load):
    """The same cache for another resolution derived from the same rows (e.g. the Twilio webhooks' org →
    provider account and its verifier): cleared by the same signals, expired after the same time."""
    return api_key_resolve(cache_key, load)


def clear(**_kwargs) -> None:
    """Forget every cached resolution of this process (connected to the models' save/delete signals)."""
    _entries.clear()
