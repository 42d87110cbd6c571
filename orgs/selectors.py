from orgs.models import ApiKey
from orgs.services import hash_api_key


def api_key_get_by_raw(raw_key: str) -> ApiKey | None:
    """The active key for a raw key string, with its org and the org's provider account (a LEFT JOIN
    on its unique org_id: the send path's 412 check before its transaction needs no query), or None."""
    return (ApiKey.objects.select_related("org", "org__provider_account")
            .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True).first())
