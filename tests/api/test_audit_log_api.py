"""GET /api/v1/orgs/{org}/audit-log: admin keys only, cursor pagination, tenant isolation."""
import pytest

from audit.models import AuditEntry
from audit.services import Actor, audit_record
from orgs.models import Role
from tests.factories import ApiKeyFactory
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


def url(org) -> str:
    return f"/api/v1/orgs/{org.pk}/audit-log"


def record(org, n: int, action: str = "test.action"):
    return [audit_record(org=org, actor=Actor.system("tests"), action=action, resource_id=str(i), details={"i": i})
            for i in range(n)]


def test_admin_key_lists_entries_newest_first_with_every_field(org, admin_key, client_for):
    entries = record(org, 3)
    # Creating the key was audited too (api_key.create); look at this test's entries only.
    response = client_for(admin_key).get(url(org), {"action": "test.action"})
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [row["id"] for row in body["data"]] == [e.pk for e in reversed(entries)]
    assert set(body["data"][0]) == {"id", "org_id", "actor_type", "actor_id", "action", "resource_type",
                                    "resource_id", "payload_bytes", "outcome", "request_id", "client_ip",
                                    "details", "created_at"}
    assert body["data"][0]["org_id"] == str(org.pk) and body["data"][0]["details"] == {"i": 2}


def test_member_key_is_403_admin_required(org, member_key, client_for):
    record(org, 1)
    response = client_for(member_key).get(url(org))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_required"


def test_publishable_admin_key_is_403_secret_key_required(org, client_for):
    key = ApiKeyFactory(org=org, role=Role.ADMIN, publishable=True)
    assert client_for(key).get(url(org)).json()["error"]["code"] == "secret_key_required"


def test_pages_walk_every_entry_exactly_once(org, admin_key, client_for):
    entries = record(org, 7)
    client = client_for(admin_key)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, "action": "test.action"} | ({"cursor": cursor} if cursor else {})
        body = client.get(url(org), params).json()
        pages += 1
        assert len(body["data"]) <= 3
        seen += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [e.pk for e in reversed(entries)]


def test_entries_added_while_paging_do_not_shift_later_pages(org, admin_key, client_for):
    entries = record(org, 4)
    client = client_for(admin_key)
    first = client.get(url(org), {"limit": 2}).json()
    record(org, 2, action="later")
    second = client.get(url(org), {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [row["id"] for row in second["data"]] == [entries[1].pk, entries[0].pk]


def test_default_limit_is_50_and_max_is_200(org, admin_key, client_for):
    record(org, 55)
    client = client_for(admin_key)
    body = client.get(url(org), {"action": "test.action"}).json()
    assert len(body["data"]) == 50 and body["next_cursor"]
    assert len(client.get(url(org), {"limit": 200, "action": "test.action"}).json()["data"]) == 55


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5"])
def test_bad_limit_is_400_invalid_limit(org, admin_key, client_for, limit):
    response = client_for(admin_key).get(url(org), {"limit": limit})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_limit"


@pytest.mark.parametrize("cursor", [
    "garbage", "!!!", "eyJ4IjogMX0", "WyJub3QtYS1kYXRlIiwgIjEiXQ",
    "WyIyMDI1LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgImFiYyJd",  # ["2025-01-01T00:00:00+00:00", "abc"]: pk not an int
    "WyIyMDI1LTAxLTAxVDAwOjAwOjAwIiwgIjEiXQ",  # naive datetime
    "WyIyMDI1LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgbnVsbF0",  # pk null
    "WyIyMDI1LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgWzFdXQ",  # pk a list
])
def test_bad_cursor_is_400_invalid_cursor(org, admin_key, client_for, cursor):
    response = client_for(admin_key).get(url(org), {"cursor": cursor})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"


def test_action_filter(org, admin_key, client_for):
    record(org, 2, action="a.one")
    record(org, 3, action="a.two")
    body = client_for(admin_key).get(url(org), {"action": "a.two"}).json()
    assert [row["action"] for row in body["data"]] == ["a.two"] * 3


def test_only_the_keys_own_org_entries_are_listed(org, other_org, admin_key, client_for):
    mine = record(org, 2)
    theirs = record(other_org, 3)
    system_wide = audit_record(org=None, actor=Actor.system("tests"), action="system.wide")
    ids = {row["id"] for row in client_for(admin_key).get(url(org), {"limit": 200}).json()["data"]}
    key_created = AuditEntry.objects.get(org=org, action="api_key.create", resource_id=str(admin_key.pk))
    assert ids == {e.pk for e in mine} | {key_created.pk}
    assert not ids & ({e.pk for e in theirs} | {system_wide.pk})


def test_another_orgs_audit_log_is_404_org_not_found(org, other_org, admin_key, client_for):
    record(other_org, 2)
    response = client_for(admin_key).get(url(other_org))
    assert response.status_code == 404 and response.json()["error"]["code"] == "org_not_found"


def test_cursor_from_another_org_reveals_nothing(org, other_org, client_for):
    record(org, 3)
    record(other_org, 3)
    theirs = ApiKeyFactory(org=other_org, role=Role.ADMIN, mode="prod")
    foreign_cursor = client_for(theirs).get(url(other_org), {"limit": 1}).json()["next_cursor"]
    mine = ApiKeyFactory(org=org, role=Role.ADMIN, mode="prod")
    body = client_for(mine).get(url(org), {"cursor": foreign_cursor}).json()
    assert all(row["org_id"] == str(org.pk) for row in body["data"])
