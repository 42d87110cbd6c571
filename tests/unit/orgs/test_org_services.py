"""orgs.services write paths record their own audit entries (admin, commands and API share them)."""
import pytest

from audit.models import AuditEntry
from audit.services import Actor
from orgs.services import api_key_create, api_key_revoke, org_create, org_update
from sendora_sms.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def test_org_create_is_audited_with_the_actor():
    org = org_create(name="Acme", plan="growth", actor=Actor.user(type("U", (), {"pk": 7})()))
    entry = AuditEntry.objects.get(org=org, action="org.create")
    assert (entry.actor_type, entry.actor_id, entry.details["plan"]) == ("user", "7", "growth")


def test_org_update_changes_only_editable_fields_and_audits_them(org):
    org_update(org=org, changes={"help_text": "Call us", "plan": "growth"}, actor=Actor.system("t"))
    org.refresh_from_db()
    assert (org.help_text, org.plan) == ("Call us", "growth")
    assert AuditEntry.objects.get(org=org, action="org.update").details == {"fields": ["help_text", "plan"]}


@pytest.mark.parametrize("changes,code", [
    ({"plan": "platinum"}, "invalid_plan"),
    ({"name": "  "}, "invalid_name"),
    ({"monthly_quota_override": -1}, "invalid_quota"),
    ({"id": "x"}, "invalid_field"),
])
def test_org_update_refuses_bad_changes_and_writes_nothing(org, changes, code):
    before = (org.name, org.plan)
    with pytest.raises(ValidationFailed) as exc:
        org_update(org=org, changes=changes, actor=Actor.system("t"))
    assert exc.value.code == code
    org.refresh_from_db()
    assert (org.name, org.plan) == before
    assert not AuditEntry.objects.filter(org=org, action="org.update").exists()


def test_api_key_create_and_revoke_are_audited_once_without_the_raw_key(org):
    key, raw = api_key_create(org=org, role="admin", mode="test", actor=Actor.system("t"))
    api_key_revoke(api_key=key, actor=Actor.system("t"))
    api_key_revoke(api_key=key, actor=Actor.system("t"))  # already revoked: no second entry
    actions = list(AuditEntry.objects.filter(org=org, resource_id=str(key.pk)).values_list("action", flat=True))
    assert sorted(actions) == ["api_key.create", "api_key.revoke"]
    assert key.revoked_at is not None
    assert all(raw not in str(e.details) for e in AuditEntry.objects.filter(org=org))
