"""Dashboard → SMS → Sends: filters, search by phone, read-only detail with timeline and events,
and tenant scoping."""
import pytest
from django.urls import reverse

from sms.models import EventType, Send
from sms.statuses import SendStatus
from tests.factories import EventFactory, SendFactory, SendStatusChangeFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sms_send_changelist")


def detail_url(send):
    return reverse("admin:sms_send_change", args=[send.pk])


@pytest.fixture
def sends(org_a, org_b):
    return {
        "delivered": SendFactory(org=org_a, to="+14155550111", status=SendStatus.DELIVERED, category="transactional"),
        "failed": SendFactory(org=org_a, to="+14155550122", status=SendStatus.FAILED, category="marketing",
                              mode="prod"),
        "other": SendFactory(org=org_b, to="+14155550133", status=SendStatus.DELIVERED),
    }


@pytest.mark.parametrize("query, shown, hidden", [
    ({"status__exact": "delivered"}, "+14155550111", "+14155550122"),
    ({"category__exact": "marketing"}, "+14155550122", "+14155550111"),
    ({"mode__exact": "prod"}, "+14155550122", "+14155550111"),
    ({"q": "(415) 555-0111"}, "+14155550111", "+14155550122"),
    ({"q": "+1 415 555 0122"}, "+14155550122", "+14155550111"),
])
def test_changelist_filters_and_phone_search(login, admin_a, sends, query, shown, hidden):
    html = login(admin_a).get(CHANGELIST, query).content.decode()
    assert shown in html and hidden not in html


def test_created_date_filter_is_offered(login, admin_a, sends):
    html = login(admin_a).get(CHANGELIST).content.decode()
    assert "By created at" in html and "Past 7 days" in html


def test_staff_sees_only_their_orgs_sends_and_filters(login, admin_a, sends, org_b):
    html = login(admin_a).get(CHANGELIST).content.decode()
    assert "+14155550133" not in html
    assert "Bravo B" not in html  # the org filter lists only orgs with visible sends


def test_superuser_sees_every_org(login, superuser, sends):
    html = login(superuser).get(CHANGELIST).content.decode()
    assert "+14155550111" in html and "+14155550133" in html


def test_detail_is_read_only_with_timeline_and_events(login, member_a, sends):
    send = sends["delivered"]
    SendStatusChangeFactory(send=send, status=SendStatus.QUEUED, source="api")
    SendStatusChangeFactory(send=send, status=SendStatus.SENT, source="worker")
    SendStatusChangeFactory(send=send, status=SendStatus.DELIVERED, source="callback", detail={"raw": "delivered"})
    EventFactory(org=send.org, send=send, type=EventType.DELIVERED)
    response = login(member_a).get(detail_url(send))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Status timeline" in html and "callback" in html and "worker" in html
    assert "sms.delivered" in html
    assert 'name="_save"' not in html  # nothing to save
    assert html.index(">Queued<") < html.index(">Sent<") < html.rindex(">Delivered<")


def test_sends_cannot_be_added_changed_or_deleted(login, superuser, sends):
    client = login(superuser)
    send = sends["delivered"]
    assert client.get(reverse("admin:sms_send_add")).status_code == 403
    assert client.post(detail_url(send), {"status": "failed"}).status_code == 403
    assert client.post(reverse("admin:sms_send_delete", args=[send.pk]), {"post": "yes"}).status_code == 403
    assert Send.objects.get(pk=send.pk).status == SendStatus.DELIVERED


def test_another_orgs_send_is_404_by_url(login, admin_a, sends):
    assert login(admin_a).get(detail_url(sends["other"])).status_code == 404


def test_staff_without_membership_sees_no_tenant_data(login, sends, db):
    from tests.factories import UserFactory

    client = login(UserFactory(username="lonely"))
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(detail_url(sends["delivered"])).status_code in (403, 404)


def test_org_filter_lists_only_visible_orgs_and_filters(login, admin_a, superuser, sends):
    html = login(admin_a).get(CHANGELIST).content.decode()
    assert "By org" in html and "Acme A" in html and "Bravo B" not in html
    su = login(superuser)
    html = su.get(CHANGELIST, {"org__id__exact": str(sends["other"].org_id)}).content.decode()
    assert "+14155550133" in html and "+14155550111" not in html
    # Another org's id typed into the filter of a scoped user shows nothing of it.
    html = login(admin_a).get(CHANGELIST, {"org__id__exact": str(sends["other"].org_id)}).content.decode()
    assert "+14155550133" not in html


# --- parked sends: operator resolution ---------------------------------------------------------

def parked(org, **kw):
    return SendFactory(org=org, status=SendStatus.SENDING, attempts=1, provider_message_id="",
                       review_reason="parked: the provider's answer was lost", **kw)


def test_review_filter_lists_parked_sends(login, admin_a, org_a, sends):
    p = parked(org_a, to="+14155550144")
    html = login(admin_a).get(CHANGELIST, {"dispatch_state": "parked"}).content.decode()
    assert p.to in html and "+14155550111" not in html


def test_admin_marks_a_parked_send_failed_through_the_service(login, admin_a, org_a, sends):
    p = parked(org_a)
    response = login(admin_a).post(CHANGELIST, {"action": "fail_parked", "_selected_action": [p.pk, sends["delivered"].pk]})
    assert response.status_code == 302
    p.refresh_from_db()
    assert (p.status, p.error_code) == (SendStatus.FAILED, "operator")
    assert Send.objects.get(pk=sends["delivered"].pk).status == SendStatus.DELIVERED  # not parked: left alone
    from audit.models import AuditEntry
    assert AuditEntry.objects.filter(action="send.review_failed", resource_id=str(p.pk)).count() == 1


def test_member_gets_no_review_actions(login, member_a, org_a, sends):
    p = parked(org_a)
    response = login(member_a).post(CHANGELIST, {"action": "fail_parked", "_selected_action": [p.pk]})
    p.refresh_from_db()
    assert p.status == SendStatus.SENDING
    assert "fail_parked" not in login(member_a).get(CHANGELIST).content.decode()
    assert response.status_code in (200, 302)
