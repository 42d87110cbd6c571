"""Dashboard fixtures: users by role, logged-in clients, a fake Twilio reachable over real HTTP."""
import pytest
from django.test import Client

from orgs.models import Role
from tests.factories import MembershipFactory, OrgFactory, UserFactory
from tests.fakes.twilio_server import FakeTwilio

OWNED_NUMBERS = ["+15005550006", "+14155550100", "+14155550101"]
FAKE_SID = "AC" + "ab" * 16
FAKE_TOKEN = "fake_live_token_5f1e2d3c4b5a69788796a5b4"


@pytest.fixture
def org_a(db):
    return OrgFactory(name="Acme A")


@pytest.fixture
def org_b(db):
    return OrgFactory(name="Bravo B")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def admin_a(org_a):
    """Staff user, admin of org A only."""
    return MembershipFactory(org=org_a, role=Role.ADMIN, user=UserFactory(username="alice")).user


@pytest.fixture
def member_a(org_a):
    """Staff user, plain member of org A only."""
    return MembershipFactory(org=org_a, role=Role.MEMBER, user=UserFactory(username="mallory")).user


@pytest.fixture
def admin_b(org_b):
    return MembershipFactory(org=org_b, role=Role.OWNER, user=UserFactory(username="bob")).user


@pytest.fixture
def login():
    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def fake_twilio(settings):
    """A FakeTwilio with one live account owning OWNED_NUMBERS; TWILIO_API_BASE_URL points at it."""
    with FakeTwilio() as fake:
        fake.add_account(FAKE_SID, FAKE_TOKEN, numbers=OWNED_NUMBERS, friendly_name="Acme Production")
        settings.TWILIO_API_BASE_URL = fake.base_url
        yield fake
