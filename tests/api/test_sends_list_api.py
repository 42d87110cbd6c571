"""GET …/sms/sends (filters, pagination) and GET …/sms/sends/{id} (timeline, events, isolation)."""
import datetime as dt
import uuid

import pytest

from sms.models import Send
from tests.factories import ApiKeyFactory, EventFactory, SendFactory, SendStatusChangeFactory

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc


def list_url(org):
    return f"/api/v1/orgs/{org.id}/sms/sends"


@pytest.fixture
def client(member_key, client_for):
    return client_for(member_key)


def make(org, created_at, **kw):
    send = SendFactory(org=org, **kw)
    Send.objects.filter(pk=send.pk).update(created_at=created_at)
    send.refresh_from_db()
    return send


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


def test_list_is_newest_first_and_only_the_orgs_sends(org, other_org, client):
    old = make(org, dt.datetime(2025, 1, 1, tzinfo=UTC))
    new = make(org, dt.datetime(2025, 1, 2, tzinfo=UTC))
    make(other_org, dt.datetime(2025, 1, 3, tzinfo=UTC))
    response = client.get(list_url(org))
    assert ids(response) == [str(new.id), str(old.id)]
    assert response.json()["next_cursor"] is None
    assert response.json()["data"][0]["from"] == new.from_number


def test_cursor_pagination_walks_every_send_once(org, client):
    sends = [make(org, dt.datetime(2025, 1, 1, 12, tzinfo=UTC)) for _ in range(5)]  # same timestamp: pk breaks ties
    seen, cursor = [], None
    while True:
        response = client.get(list_url(org), {"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += ids(response)
        cursor = response.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(str(s.id) for s in sends) and len(seen) == 5


def test_cursor_pages_follow_created_at_then_id_across_ties_and_distinct_times(org, client):
    times = [dt.datetime(2025, 1, 1, 12, m, tzinfo=UTC) for m in (0, 0, 0, 1, 2, 2, 3)]
    sends = [make(org, t) for t in times]
    expected = [str(s.id) for s in sorted(sends, key=lambda s: (s.created_at, s.id), reverse=True)]
    for limit in (1, 2, 3):
        seen, cursor = [], None
        while True:
            response = client.get(list_url(org), {"limit": limit, **({"cursor": cursor} if cursor else {})})
            seen += ids(response)
            cursor = response.json()["next_cursor"]
            if not cursor:
                break
        assert seen == expected  # the exact order, no gap, no repeat, whatever the page size


@pytest.mark.parametrize("status", ["queued", "delivered", "failed", "suppressed"])
def test_filter_by_status(org, client, status):
    match = make(org, dt.datetime(2025, 1, 1, tzinfo=UTC), status=status)
    make(org, dt.datetime(2025, 1, 1, tzinfo=UTC), status="sent")
    assert ids(client.get(list_url(org), {"status": status})) == [str(match.id)]


@pytest.mark.parametrize("raw", ["+15551234567", "(555) 123-4567", "1-555-123-4567", " 15551234567"])
def test_filter_by_phone_in_any_format(org, client, raw):
    match = make(org, dt.datetime(2025, 1, 1, tzinfo=UTC), to="+15551234567")
    make(org, dt.datetime(2025, 1, 1, tzinfo=UTC), to="+15551234568")
    assert ids(client.get(list_url(org), {"phone": raw})) == [str(match.id)]


def test_filter_by_category_and_created_window(org, client):
    make(org, dt.datetime(2025, 1, 1, tzinfo=UTC), category="marketing")
    inside = make(org, dt.datetime(2025, 1, 5, tzinfo=UTC), category="marketing")
    make(org, dt.datetime(2025, 1, 5, tzinfo=UTC), category="transactional")
    make(org, dt.datetime(2025, 1, 9, tzinfo=UTC), category="marketing")
    params = {"category": "marketing", "created_after": "2025-01-02T00:00:00Z", "created_before": "2025-01-08"}
    assert ids(client.get(list_url(org), params)) == [str(inside.id)]
    # an unencoded '+' in the offset arrives as a space and is still understood
    assert ids(client.get(f"{list_url(org)}?category=marketing&created_after=2025-01-02T00:00:00+00:00"
                          f"&created_before=2025-01-08T00:00:00+00:00")) == [str(inside.id)]


@pytest.mark.parametrize("params", [
    {"status": "lost"}, {"phone": "not-a-phone"}, {"category": "promo"}, {"created_after": "yesterday"},
    {"created_before": "2025-13-01"}, {"created_after": "2025-02-01", "created_before": "2025-01-01"},
])
def test_bad_filter_value_is_400_invalid_filter(org, client, params):
    response = client.get(list_url(org), params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_filter"


def test_bad_cursor_and_limit_are_400(org, client):
    assert client.get(list_url(org), {"cursor": "!!"}).json()["error"]["code"] == "invalid_cursor"
    assert client.get(list_url(org), {"limit": 500}).json()["error"]["code"] == "invalid_limit"


def test_publishable_key_may_not_list(org, client_for):
    response = client_for(ApiKeyFactory(org=org, publishable=True)).get(list_url(org))
    assert response.status_code == 403 and response.json()["error"]["code"] == "secret_key_required"


# --- detail --------------------------------------------------------------------------------------


def test_detail_has_the_send_its_timeline_and_its_events(org, client):
    send = SendFactory(org=org, status="delivered")
    SendStatusChangeFactory(send=send, status="queued", source="api")
    SendStatusChangeFactory(send=send, status="sent", source="worker", detail={"provider_message_id": "SM1"})
    SendStatusChangeFactory(send=send, status="delivered", source="callback")
    EventFactory(org=org, send=send, type="sms.delivered", data={"id": str(send.id)})
    response = client.get(f"{list_url(org)}/{send.id}")
    assert response.status_code == 200
    data = response.json()
    assert data["id"] == str(send.id) and data["status"] == "delivered"
    assert [(t["status"], t["source"]) for t in data["timeline"]] == \
        [("queued", "api"), ("sent", "worker"), ("delivered", "callback")]
    assert data["timeline"][1]["detail"] == {"provider_message_id": "SM1"}
    assert set(data["timeline"][0]) == {"status", "source", "detail", "created_at"}
    assert [e["type"] for e in data["events"]] == ["sms.delivered"]
    assert set(data["events"][0]) == {"id", "type", "org_id", "created_at", "data"}


@pytest.mark.parametrize("send_id", ["not-a-uuid", str(uuid.uuid4())])
def test_unknown_or_malformed_send_id_is_404_not_found(org, client, send_id):
    response = client.get(f"{list_url(org)}/{send_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_another_orgs_send_is_404_not_found_like_a_missing_one(org, other_org, client):
    theirs = SendFactory(org=other_org)
    response = client.get(f"{list_url(org)}/{theirs.id}")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "No such send.", "details": {}}


def test_detail_under_another_orgs_path_is_org_not_found(org, other_org, client):
    theirs = SendFactory(org=other_org)
    response = client.get(f"{list_url(other_org)}/{theirs.id}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "org_not_found"
