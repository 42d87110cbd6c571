"""Issue #16 in the browser: an org admin opens the org's "Cost and limits" page, sees spend and the pumping trips,
raises the pumping limit and widens the allowed countries on the org's form; the page then shows the new limits.

Screenshots of every step land in test-artifacts/browser/ (gitignored)."""
import pytest

from audit.models import AuditEntry
from audit.services import RequestContext
from orgs.models import KeyMode, Org, Role
from sms.pumping import SuspectedPumping
from sms.services import send_create
from tests.browser.test_dashboard import log_in, operator, org  # noqa: F401 — fixtures
from tests.factories import ApiKeyFactory, ProviderAccountFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _trip_the_pumping_limit(org):  # noqa: F811
    org.pumping_limit = 2
    org.send_rate_override = 1000
    org.save()
    ProviderAccountFactory(org=org)
    key = ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    tripped = 0
    for i in range(4):
        try:
            send_create(org=org, api_key=key, to=f"+1212555{i:04d}", body=f"code {i}", context=RequestContext())
        except SuspectedPumping:
            tripped += 1
    return tripped


def test_cost_page_shows_trips_and_an_admin_raises_the_limit(page, live_server, shot, org, operator,  # noqa: F811
                                                            monkeypatch):
    from sms.services import enqueue as enqueue_module

    # The accepted sends stay queued (no worker dispatches them to a provider that would fail and refund them).
    monkeypatch.setattr(enqueue_module, "dispatch_publish", lambda **kw: None)
    assert _trip_the_pumping_limit(org) == 2
    log_in(page, live_server, shot)
    page.goto(f"{live_server.url}/admin/orgs/org/{org.pk}/change/")
    page.click("#org-cost-link")
    page.wait_for_selector("#pumping-trips")
    shot(page, "cost-page-with-trips")
    assert page.locator("#pumping-trips tbody tr").count() == 2
    assert "+1212555…" in page.inner_text("#pumping-trips")
    assert page.inner_text("#cost-total") == "0.0166 USD"  # two accepted US sends at 0.0083
    assert page.inner_text("#cost-pumping-limit") == "2"

    page.click("#edit-limits")
    page.fill("#id_pumping_limit", "50")
    page.fill("#id_allowed_countries", "US, CA")
    page.fill("#id_monthly_spend_cap", "25.00")
    shot(page, "limits-edited")
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist")
    shot(page, "limits-saved")
    org.refresh_from_db()
    assert (org.pumping_limit, org.allowed_countries, str(org.monthly_spend_cap)) == (50, ["US", "CA"], "25.0000")
    assert AuditEntry.objects.filter(org=org, action="org.limits_update").count() == 1

    page.click("#org-cost-link")
    page.wait_for_selector("#cost-countries")
    shot(page, "cost-page-after")
    assert page.inner_text("#cost-countries") == "US, CA"
    assert page.inner_text("#cost-pumping-limit") == "50"
    assert "cap 25 USD" in page.inner_text("#cost-monthly-cap")
    assert Org.objects.get(pk=org.pk).pumping_limit == 50
