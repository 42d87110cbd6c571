import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from orgs import key_cache
from orgs.models import KeyMode, Role
from tests.factories import ApiKeyFactory, OrgFactory, ProviderAccountFactory
from tests.fakes.fixtures import (  # noqa: F401 — fixtures: fake MessageBird and Sinch servers
    _fake_messagebird_server,
    _fake_sinch_server,
    fake_messagebird,
    fake_sinch,
)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the cache; every test starts from zero."""
    try:
        cache.clear()
    except Exception:  # noqa: BLE001 — a test may have stopped Redis on purpose
        pass
    key_cache.clear()  # the API key resolution cache of this process (orgs/key_cache.py)
    yield


@pytest.fixture
def org(db):
    return OrgFactory()


@pytest.fixture
def other_org(db):
    return OrgFactory(name="Other Org")


@pytest.fixture
def admin_key(org):
    return ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.TEST)


@pytest.fixture
def member_key(org):
    return ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.TEST)


@pytest.fixture
def prod_key(org):
    return ApiKeyFactory(org=org, role=Role.ADMIN, mode=KeyMode.PROD)


@pytest.fixture
def provider_account(org):
    return ProviderAccountFactory(org=org)


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_for():
    """client_for(api_key) → an APIClient sending that key's raw value in x-api-key."""

    def make(key):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key.raw_key)
        return client

    return make
