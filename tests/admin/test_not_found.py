"""Another org's object answers the dashboard's own 404 page — branded, with the dashboard's navigation —
not Django's bare "Not Found"; and the page is the same as for an object that never existed."""
import re
import uuid

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from audit.models import AuditEntry
from tests.factories import (
    ApiKeyFactory,
    AuditEntryFactory,
    ProviderAccountFactory,
    SendFactory,
    SuppressionFactory,
)

pytestmark = pytest.mark.django_db


def assert_dashboard_404(response):
    assert response.status_code == 404
    html = response.content.decode()
    assert "Sendora SMS dashboard" in html  # the site header: rendered inside the dashboard
    assert 'class="dashboard-not-found"' in html
    assert "belongs to an org you are not a member of" in html
    assert "<h1>Not Found</h1>" not in html  # Django's bare page
    return html


def main(html):
    return re.search(r'<div id="content-main" class="dashboard-not-found">.*?</div>', html, re.S).group(0)


def title(html):
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


@pytest.fixture
def b_objects(org_b):
    return {
        "sms_send": SendFactory(org=org_b),
        "sms_suppression": SuppressionFactory(org=org_b),
        "sms_provideraccount": ProviderAccountFactory(org=org_b),
        "orgs_org": org_b,
        "orgs_apikey": ApiKeyFactory(org=org_b),
        "audit_auditentry": AuditEntryFactory(org=org_b),
    }


@pytest.mark.parametrize("name", ["sms_send", "sms_suppression", "sms_provideraccount", "orgs_org", "orgs_apikey",
                                  "audit_auditentry"])
def test_another_orgs_object_shows_the_dashboards_404_page(login, admin_a, b_objects, name):
    client = login(admin_a)
    obj = b_objects[name]
    theirs = assert_dashboard_404(client.get(reverse(f"admin:{name}_change", args=[quote(obj.pk)])))
    missing_pk = uuid.uuid4() if isinstance(obj.pk, uuid.UUID) else 10**9
    missing = assert_dashboard_404(client.get(reverse(f"admin:{name}_change", args=[quote(missing_pk)])))
    # The same page either way: it confirms nothing about the other org's object.
    assert main(theirs) == main(missing) and title(theirs) == title(missing)


def test_another_orgs_stats_page_and_unknown_dashboard_urls_show_the_dashboards_404_page(login, admin_a, org_b):
    client = login(admin_a)
    assert_dashboard_404(client.get(reverse("admin:sms_stats", args=[org_b.pk])))
    assert_dashboard_404(client.get("/admin/sms/no-such-page/"))


def test_anonymous_visitors_are_still_sent_to_the_login_page(client, org_b):
    response = client.get(reverse("admin:orgs_org_change", args=[org_b.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert AuditEntry.objects.count() == 0
