"""Issue #14: the API key resolution cache (orgs/key_cache.py) saves the key lookup on repeated requests and
still honours a revocation — at once in the process that revoked, within API_KEY_CACHE_SECONDS elsewhere."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs import key_cache
from orgs.models import ApiKey
from orgs.services import api_key_revoke

pytestmark = pytest.mark.django_db


def sends_url(org):
    return f"/api/v1/orgs/{org.id}/sms/sends"


def _key_lookups(queries) -> int:
    return sum(1 for q in queries if 'FROM "orgs_apikey"' in q["sql"])


def test_a_second_request_does_not_look_the_key_up_again(org, admin_key, client_for):
    client = client_for(admin_key)
    with CaptureQueriesContext(connection) as first:
        assert client.get(sends_url(org)).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get(sends_url(org)).status_code == 200
    assert _key_lookups(first.captured_queries) == 1 and _key_lookups(second.captured_queries) == 0


def test_revocation_in_this_process_is_honoured_at_once(org, admin_key, client_for):
    client = client_for(admin_key)
    assert client.get(sends_url(org)).status_code == 200
    api_key_revoke(api_key=admin_key)
    assert client.get(sends_url(org)).status_code == 401


def test_revocation_by_another_process_is_honoured_when_the_entry_expires(org, admin_key, client_for, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: clock[0])
    client = client_for(admin_key)
    assert client.get(sends_url(org)).status_code == 200
    # another process revokes it (a raw UPDATE: no signal reaches this process)
    ApiKey.objects.filter(pk=admin_key.pk).update(revoked_at=timezone.now())
    clock[0] += key_cache.ttl_seconds() / 2
    assert client.get(sends_url(org)).status_code == 200  # still within API_KEY_CACHE_SECONDS (default 1 s)
    clock[0] += key_cache.ttl_seconds()
    assert client.get(sends_url(org)).status_code == 401


def test_a_plan_change_saved_through_the_orm_clears_the_cache(org, admin_key, client_for):
    client = client_for(admin_key)
    assert client.get(sends_url(org)).status_code == 200
    org.plan = "free"
    org.save()
    assert client.get(sends_url(org)).status_code == 403


def test_unknown_keys_are_never_cached(org, api_client):
    api_client.credentials(HTTP_X_API_KEY="sk_test_" + "x" * 32)
    for _ in range(2):
        assert api_client.get(sends_url(org)).status_code == 401
    assert not key_cache._entries


def test_zero_disables_the_cache(org, admin_key, client_for, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    client = client_for(admin_key)
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(sends_url(org)).status_code == 200
        assert _key_lookups(queries.captured_queries) == 1
