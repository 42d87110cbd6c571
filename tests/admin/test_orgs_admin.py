"""Dashboard → Organisations: org settings, memberships, API keys (raw key shown once, hashed,
revoke, last use), and who may change what."""
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from orgs.models import ApiKey, Org
from orgs.services import hash_api_key
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

KEY_ADD = reverse("admin:orgs_apikey_add")
KEY_LIST = reverse("admin:orgs_apikey_changelist")


def org_url(org):
    return reverse("admin:orgs_org_change", args=[org.pk])


def org_post(org, **changes):
    data = {"name": org.name, "plan": org.plan, "monthly_quota_override": org.monthly_quota_override or "",
            "send_rate_override": org.send_rate_override or "", "help_text": org.help_text,
            "opt_out_text": org.opt_out_text, "opt_out_confirmation_enabled": "on",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"}
    data.update(changes)
    return data


def test_create_key_shows_the_raw_key_once_and_stores_only_its_hash(login, admin_a, org_a):
    client = login(admin_a)
    response = client.post(KEY_ADD, {"org": org_a.pk, "name": "billing", "role": "admin", "mode": "prod"})
    html = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(org=org_a, name="billing")
    start = html.index('id="raw-key"')
    raw = html[html.index(">", start) + 1:html.index("</code>", start)]
    assert raw.startswith("sk_prod_") and key.key_hash == hash_api_key(raw)
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    assert "shown only once" in html
    # Never again: not on the list, not on the key's page, not in the audit entry.
    assert raw not in client.get(KEY_LIST).content.decode()
    assert raw not in client.get(reverse("admin:orgs_apikey_change", args=[key.pk])).content.decode()
    entry = AuditEntry.objects.get(action="api_key.create", resource_id=str(key.pk))
    assert raw not in str(entry.details) and hashlib.sha256(raw.encode()).hexdigest() not in str(entry.details)


def test_create_key_form_offers_only_orgs_the_user_administers(login, admin_a, org_a, org_b):
    client = login(admin_a)
    html = client.get(KEY_ADD).content.decode()
    assert f'value="{org_a.pk}"' in html and f'value="{org_b.pk}"' not in html
    response = client.post(KEY_ADD, {"org": org_b.pk, "role": "admin", "mode": "prod"})
    assert "Select a valid choice" in response.content.decode()
    assert not ApiKey.objects.filter(org=org_b).exists()


def test_members_cannot_create_or_revoke_keys(login, member_a, org_a):
    key = ApiKeyFactory(org=org_a)
    client = login(member_a)
    assert client.get(KEY_ADD).status_code in (403, 404)
    client.post(KEY_LIST, {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoke_action_revokes_through_the_service_and_audits(login, admin_a, org_a):
    key = ApiKeyFactory(org=org_a)
    response = login(admin_a).post(KEY_LIST, {"action": "revoke_keys", "_selected_action": [key.pk]}, follow=True)
    assert "Revoked 1 key(s)." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_key.revoke", resource_id=str(key.pk)).exists()


def test_key_list_shows_last_use_and_hides_other_orgs(login, admin_a, org_a, org_b):
    used = ApiKeyFactory(org=org_a, name="used-key")
    ApiKey.objects.filter(pk=used.pk).update(last_used_at=timezone.now())
    ApiKeyFactory(org=org_b, name="bravo-key")
    html = login(admin_a).get(KEY_LIST).content.decode()
    assert "used-key" in html and "bravo-key" not in html
    assert "Last used at" in html


def test_org_admin_edits_texts_but_not_plan_or_limits(login, admin_a, org_a):
    client = login(admin_a)
    response = client.post(org_url(org_a), org_post(org_a, help_text="Acme help: reply STOP to opt out.",
                                                     plan="enterprise", monthly_quota_override="999999"))
    assert response.status_code == 302, response.content.decode()[:2000]
    org_a.refresh_from_db()
    assert org_a.help_text == "Acme help: reply STOP to opt out."
    assert org_a.plan == "starter" and org_a.monthly_quota_override is None
    entry = AuditEntry.objects.get(action="org.update")
    assert entry.details["fields"] == ["help_text"]


def test_superuser_edits_plan_quota_and_rate(login, superuser, org_a):
    response = login(superuser).post(org_url(org_a), org_post(org_a, plan="growth", monthly_quota_override="1234",
                                                              send_rate_override="7"))
    assert response.status_code == 302
    org_a.refresh_from_db()
    assert (org_a.plan, org_a.monthly_quota, org_a.send_rate) == ("growth", 1234, 7)


def test_superuser_creates_an_org_through_the_service(login, superuser):
    response = login(superuser).post(reverse("admin:orgs_org_add"), {
        "name": "  New Co  ", "plan": "starter", "monthly_quota_override": "", "send_rate_override": "",
        "help_text": "", "opt_out_text": "", "opt_out_confirmation_enabled": "on",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    assert Org.objects.get(name="New Co")  # org_create strips the name


def test_memberships_inline_is_shown_and_only_superusers_edit_it(login, admin_a, member_a, org_a):
    html = login(admin_a).get(org_url(org_a)).content.decode()
    assert "alice" in html and "mallory" in html
    assert 'name="memberships-0-role"' not in html  # read-only for tenant admins
    su_html = login(__import__("tests.factories", fromlist=["UserFactory"]).UserFactory(
        username="root2", is_superuser=True)).get(org_url(org_a)).content.decode()
    assert 'name="memberships-0-role"' in su_html


def test_member_sees_org_read_only(login, member_a, org_a):
    client = login(member_a)
    assert client.get(org_url(org_a)).status_code == 200
    assert client.post(org_url(org_a), org_post(org_a, help_text="defaced")).status_code == 403
    org_a.refresh_from_db()
    assert org_a.help_text == ""


def test_another_org_is_404_and_not_listed(login, admin_a, org_b):
    client = login(admin_a)
    assert client.get(org_url(org_b)).status_code == 404
    assert "Bravo B" not in client.get(reverse("admin:orgs_org_changelist")).content.decode()


def test_org_page_links_stats_and_key_creation(login, admin_a, org_a):
    html = login(admin_a).get(org_url(org_a)).content.decode()
    assert reverse("admin:sms_stats", args=[org_a.pk]) in html
    assert f"{KEY_ADD}?org={org_a.pk}" in html
