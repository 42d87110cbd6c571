"""Dashboard → Audit log: read-only, filters by action and actor type, search by ids, scoped."""
import pytest
from django.urls import reverse

from audit.models import AuditEntry
from tests.factories import AuditEntryFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:audit_auditentry_changelist")


@pytest.fixture
def entries(org_a, org_b):
    return {
        "send": AuditEntryFactory(org=org_a, action="sms.send", actor_type="api_key", actor_id="key-111",
                                  resource_type="send", resource_id="res-aaa"),
        "supp": AuditEntryFactory(org=org_a, action="suppression.create", actor_type="user", actor_id="7",
                                  resource_type="suppression", resource_id="res-bbb"),
        "other": AuditEntryFactory(org=org_b, action="b.only.action", actor_type="user", actor_id="9",
                                   resource_id="res-ccc"),
        "system": AuditEntryFactory(org=None, action="encryption_key.rotate", actor_type="system"),
    }


@pytest.mark.parametrize("query, shown, hidden", [
    ({"action": "sms.send"}, "res-aaa", "res-bbb"),
    ({"actor_type__exact": "user"}, "res-bbb", "res-aaa"),
    ({"q": "key-111"}, "res-aaa", "res-bbb"),
    ({"q": "res-bbb"}, "res-bbb", "res-aaa"),
])
def test_filters_and_search(login, admin_a, entries, query, shown, hidden):
    html = login(admin_a).get(CHANGELIST, query).content.decode()
    assert shown in html and hidden not in html


def test_org_admin_sees_only_their_orgs_entries_and_actions(login, admin_a, entries):
    html = login(admin_a).get(CHANGELIST).content.decode()
    assert "res-ccc" not in html
    assert "b.only.action" not in html  # the action filter offers a fixed list, never values read from rows
    assert "res-aaa" in html and "res-bbb" in html


def test_superuser_sees_all_entries(login, superuser, entries):
    html = login(superuser).get(CHANGELIST).content.decode()
    assert "res-ccc" in html and "encryption_key.rotate" in html


def test_plain_members_cannot_read_the_audit_log(login, member_a, entries):
    client = login(member_a)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(reverse("admin:audit_auditentry_change", args=[entries["send"].pk])).status_code in (403, 404)


def test_audit_log_is_read_only(login, superuser, entries):
    client = login(superuser)
    entry = entries["send"]
    assert client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert client.post(reverse("admin:audit_auditentry_change", args=[entry.pk]), {"action": "x"}).status_code == 403
    assert client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    html = client.get(reverse("admin:audit_auditentry_change", args=[entry.pk])).content.decode()
    assert "sms.send" in html and 'name="_save"' not in html
    assert AuditEntry.objects.get(pk=entry.pk).action == "sms.send"


def test_another_orgs_entry_is_404_by_url(login, admin_a, entries):
    assert login(admin_a).get(reverse("admin:audit_auditentry_change", args=[entries["other"].pk])).status_code == 404
