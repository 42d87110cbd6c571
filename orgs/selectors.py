from orgs import key_cache
from orgs.models import ApiKey
from orgs.services import hash_api_key


def api_key_get_by_raw(raw_key: str) -> ApiKey | None:
    """The active key for a raw key string, with its org and, read in the same query and kept on the org, the
    route of its first enabled provider account (`first_route`: (provider, from_number), None without one),
    which the send's transaction verifies rather than reads (sms/services/sends.py, the one-round-trip path),
    and so whether it has one (`has_enabled_provider`: the send path's 412 check before its transaction needs
    no query); or None."""
    return _active_key(hash_api_key(raw_key))


def _active_key(key_hash: str) -> ApiKey | None:
    from django.apps import apps
    from django.db.models import OuterRef, Subquery

    first = (apps.get_model("sms", "ProviderAccount").objects.filter(org_id=OuterRef("org_id"), enabled=True)
             .order_by("priority", "provider"))  # the send's routing order (sms/services/sends.py _checks)
    key = (ApiKey.objects.select_related("org")
           .annotate(_org_route_provider=Subquery(first.values("provider")[:1]),
                     _org_route_from=Subquery(first.values("from_number")[:1]))
           .filter(key_hash=key_hash, revoked_at__isnull=True).first())
    if key is not None:
        key.org.first_route = ((key._org_route_provider, key._org_route_from)
                               if key._org_route_provider is not None else None)
        key.org.has_enabled_provider = key.org.first_route is not None
    return key


def api_key_get_by_raw_cached(raw_key: str) -> ApiKey | None:
    """api_key_get_by_raw through this process's short-lived resolution cache (orgs/key_cache.py: a
    revocation elsewhere is honoured within API_KEY_CACHE_SECONDS, here at once). The returned objects
    are shared with other requests of this process: read-only."""
    key_hash = hash_api_key(raw_key)
    return key_cache.api_key_resolve(key_hash, lambda: _active_key(key_hash))
