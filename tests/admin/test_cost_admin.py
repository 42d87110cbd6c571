"""Dashboard (issue #16): an org's cost and countries edited on the org's form by its admins (audited, validated),
read-only for members; the Cost page (spend by country against caps, pumping limits), 404 for other tenants."""
from decimal import Decimal

from django.urls import reverse

from audit.models import AuditEntry
from orgs.models import Org
from orgs.spend import spend_reserve
from sendora_sms.db import StatementBatch
from tests.admin.test_orgs_admin import org_post, org_url


def limits_post(org, **changes):
    data = org_post(org, home_country=org.home_country, allowed_countries=", ".join(org.allowed_countries),
                    monthly_spend_cap="", country_spend_caps="{}", pumping_limit="", price_overrides="{}")
    data.update(changes)
    return data


def test_an_org_admin_edits_countries_caps_and_pumping_limit_and_the_change_is_audited(login, admin_a, org_a):
    client = login(admin_a)
    response = client.post(org_url(org_a), limits_post(org_a, allowed_countries="us, ca", monthly_spend_cap="250.00",
                                                      country_spend_caps='{"CA": "20"}', pumping_limit="40"))
    assert response.status_code == 302, response.content.decode()[:2000]
    org = Org.objects.get(pk=org_a.pk)
    assert org.allowed_countries == ["US", "CA"] and org.monthly_spend_cap == Decimal("250.00")
    assert org.country_spend_caps == {"CA": "20"} and org.pumping_limit == 40
    entry = AuditEntry.objects.get(org=org_a, action="org.limits_update")
    assert entry.details["changes"]["allowed_countries"] == {"from": [], "to": ["US", "CA"]}
    assert entry.details["changes"]["monthly_spend_cap"] == {"from": None, "to": "250"}
    assert entry.actor_id == str(admin_a.pk) or entry.actor_label


def test_bad_limits_are_form_errors_not_500s(login, admin_a, org_a):
    client = login(admin_a)
    for changes in ({"allowed_countries": "US, XX"}, {"monthly_spend_cap": "1.23456"},
                    {"country_spend_caps": '["GB"]'}, {"country_spend_caps": '{"GB": "abc"}'}):
        response = client.post(org_url(org_a), limits_post(org_a, **changes))
        assert response.status_code == 200 and "errornote" in response.content.decode(), changes
    assert not AuditEntry.objects.filter(org=org_a, action="org.limits_update").exists()


def test_members_cannot_change_limits(login, member_a, org_a):
    response = login(member_a).post(org_url(org_a), limits_post(org_a, allowed_countries="US, GB"))
    assert response.status_code == 403
    assert Org.objects.get(pk=org_a.pk).allowed_countries == []


def test_the_cost_page_shows_spend_against_caps(login, member_a, org_a):
    from django.db import transaction
    from django.utils import timezone
    import uuid

    org_a.country_spend_caps = {"GB": "1.00"}
    org_a.allowed_countries = ["US", "GB"]
    org_a.save()
    with transaction.atomic():
        StatementBatch(spend_reserve(org=org_a, send_id=uuid.uuid4(), country="GB", amount=Decimal("0.8"),
                                     at=timezone.now()).statements).run()
    html = login(member_a).get(reverse("admin:sms_cost", args=[org_a.pk])).content.decode()
    assert 'id="cost-total">0.8 USD' in html
    assert "<td>GB</td><td>0.8</td><td>1</td>" in html and "80.0 %" in html
    assert 'id="cost-countries">US, GB' in html
    assert 'id="edit-limits"' not in html  # members read only


def test_another_orgs_cost_page_is_the_dashboards_404(login, admin_a, org_b):
    assert login(admin_a).get(reverse("admin:sms_cost", args=[org_b.pk])).status_code == 404


def test_limits_typed_on_the_add_form_are_applied_and_audited(login, superuser):
    response = login(superuser).post(reverse("admin:orgs_org_add"), {
        "name": "Capped Co", "plan": "starter", "monthly_quota_override": "", "send_rate_override": "",
        "help_text": "", "opt_out_text": "", "opt_out_confirmation_enabled": "on", "home_country": "GB",
        "allowed_countries": "GB, IE", "monthly_spend_cap": "99.5", "country_spend_caps": '{"IE": "10"}',
        "pumping_limit": "30", "price_overrides": "{}",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.content.decode()[:3000]
    org = Org.objects.get(name="Capped Co")
    assert (org.home_country, org.allowed_countries, org.monthly_spend_cap, org.country_spend_caps,
            org.pumping_limit) == ("GB", ["GB", "IE"], Decimal("99.5"), {"IE": "10"}, 30)
    assert AuditEntry.objects.filter(org=org, action="org.limits_update").count() == 1
