"""GET …/events: the org's outbox events, newest first, filter by type."""
import datetime as dt

import pytest

from sms.models import Event
from tests.factories import ApiKeyFactory, EventFactory, OrgFactory, SendFactory
from orgs.plans import Plan
from orgs.models import KeyMode as _KeyMode, Role as _Role
from tests.factories import ApiKeyFactory as _ApiKeyFactory

pytestmark = pytest.mark.django_db


# These tests are about the live world; test keys see a separate world (tests/api/test_test_and_live_modes.py).
@pytest.fixture
def member_key(org):
    return _ApiKeyFactory(org=org, role=_Role.MEMBER, mode=_KeyMode.PROD)


@pytest.fixture
def admin_key(org):
    return _ApiKeyFactory(org=org, role=_Role.ADMIN, mode=_KeyMode.PROD)


def events_url(org):
    return f"/api/v1/orgs/{org.id}/events"


@pytest.fixture
def client(member_key, client_for):
    return client_for(member_key)


def make(org, type, minute, **kw):
    event = EventFactory(org=org, type=type, **kw)
    Event.objects.filter(pk=event.pk).update(created_at=dt.datetime(2025, 1, 1, 0, minute, tzinfo=dt.timezone.utc))
    return event


def test_lists_the_orgs_events_newest_first_in_the_contract_shape(org, other_org, client):
    send = SendFactory(org=org)
    older = make(org, "sms.sent", 1, send=send, data={"id": str(send.id), "status": "sent"})
    newer = make(org, "sms.opted_out", 2, data={"phone_number": "+15551234567"})
    make(other_org, "sms.sent", 3)
    response = client.get(events_url(org))
    assert response.status_code == 200
    data = response.json()["data"]
    assert [e["id"] for e in data] == [str(newer.id), str(older.id)]
    assert data[1] == {"id": str(older.id), "type": "sms.sent", "org_id": str(org.id),
                       "created_at": "2025-01-01T00:01:00Z", "data": {"id": str(send.id), "status": "sent"}}
    assert response.json()["next_cursor"] is None


def test_filter_by_type(org, client):
    make(org, "sms.sent", 1)
    delivered = make(org, "sms.delivered", 2)
    data = client.get(events_url(org), {"type": "sms.delivered"}).json()["data"]
    assert [e["id"] for e in data] == [str(delivered.id)]


def test_unknown_type_is_400_invalid_filter(org, client):
    response = client.get(events_url(org), {"type": "sms.exploded"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_filter"


def test_paginates(org, client):
    for minute in range(3):
        make(org, "sms.sent", minute)
    first = client.get(events_url(org), {"limit": 2}).json()
    second = client.get(events_url(org), {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(first["data"]) == 2 and len(second["data"]) == 1 and second["next_cursor"] is None


def test_needs_a_secret_key_of_the_org(org, other_org, client, client_for):
    assert client.get(events_url(other_org)).json()["error"]["code"] == "org_not_found"
    publishable = client_for(ApiKeyFactory(org=org, publishable=True))
    assert publishable.get(events_url(org)).json()["error"]["code"] == "secret_key_required"


def test_not_plan_gated(client_for):
    free = OrgFactory(plan=Plan.FREE)
    assert client_for(ApiKeyFactory(org=free)).get(events_url(free)).status_code == 200
