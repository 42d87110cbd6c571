from orgs import key_cache
from orgs.models import ApiKey
from orgs.services import hash_api_key


def api_key_get_by_raw(raw_key: str) -> ApiKey | None:
    """The active key for a raw key string, with its org and the org's provider account (a LEFT JOIN
    on its unique org_id: the send path's 412 check before its transaction needs no query), or None."""
    return (ApiKey.objects.select_related("org", "org__provider_account")
            .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True).first())


def api_key_get_by_raw_cached(raw_key: str) -> ApiKey | None:
    """api_key_get_by_raw through this process's short-lived resolution cache (orgs/key_cache.py: a
    revocation elsewhere is honoured within API_KEY_CACHE_SECONDS, here at once). The returned objects
    are shared with other requests of this process: read-only."""
    key_hash = hash_api_key(raw_key)
    return key_cache.api_key_resolve(key_hash, lambda: (
        ApiKey.objects.select_related("org", "org__provider_account")
        .filter(key_hash=key_hash, revoked_at__isnull=True).first()))
