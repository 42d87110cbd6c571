"""Dashboard → SMS → Suppressions: list/search/filters, add and remove through the services
(audited), CSV import with the bad-row report, CSV export, and who may do what."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEntry
from sms.models import Suppression
from tests.factories import SuppressionFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sms_suppression_changelist")
ADD = reverse("admin:sms_suppression_add")
IMPORT = reverse("admin:sms_suppression_import")
EXPORT = reverse("admin:sms_suppression_export")


def delete_url(s):
    return reverse("admin:sms_suppression_delete", args=[s.pk])


@pytest.fixture
def listed(org_a, org_b):
    return {
        "stop": SuppressionFactory(org=org_a, phone_number="+14155550101", reason="stop_keyword", source="webhook"),
        "manual": SuppressionFactory(org=org_a, phone_number="+14155550102", reason="manual", source="admin"),
        "other": SuppressionFactory(org=org_b, phone_number="+14155550109", reason="manual"),
    }


@pytest.mark.parametrize("query, shown, hidden", [
    ({"reason__exact": "stop_keyword"}, "+14155550101", "+14155550102"),
    ({"q": "(415) 555-0102"}, "+14155550102", "+14155550101"),
])
def test_search_and_filters(login, member_a, listed, query, shown, hidden):
    html = login(member_a).get(CHANGELIST, query).content.decode()
    assert shown in html and hidden not in html


def test_changelist_is_scoped_and_offers_the_created_date_filter(login, admin_a, listed):
    html = login(admin_a).get(CHANGELIST).content.decode()
    assert "+14155550109" not in html and "Bravo B" not in html
    assert "By created at" in html


def test_add_goes_through_the_service_normalises_and_audits(login, admin_a, org_a):
    response = login(admin_a).post(ADD, {"org": org_a.pk, "phone_number": "(415) 555-0177", "reason": "manual"})
    assert response.status_code == 302
    supp = Suppression.objects.get(org=org_a, phone_number="+14155550177")
    assert supp.source == "admin" and supp.reason == "manual"
    entry = AuditEntry.objects.get(action="suppression.create", resource_id="+14155550177")
    assert entry.actor_type == "user" and entry.actor_id == str(admin_a.pk)


def test_adding_a_suppressed_number_again_is_a_form_error(login, admin_a, org_a, listed):
    response = login(admin_a).post(ADD, {"org": org_a.pk, "phone_number": "+1 415 555 0102", "reason": "manual"})
    assert response.status_code == 200
    assert "already on the org" in response.content.decode()
    assert Suppression.objects.filter(org=org_a, phone_number="+14155550102").count() == 1


def test_adding_an_invalid_number_is_a_form_error(login, admin_a, org_a):
    response = login(admin_a).post(ADD, {"org": org_a.pk, "phone_number": "call me", "reason": "manual"})
    assert response.status_code == 200
    assert "cannot be normalised" in response.content.decode()
    assert not Suppression.objects.exists()


def test_remove_through_the_delete_view_calls_the_service(login, admin_a, listed):
    response = login(admin_a).post(delete_url(listed["manual"]), {"post": "yes"})
    assert response.status_code == 302
    assert not Suppression.objects.filter(pk=listed["manual"].pk).exists()
    assert AuditEntry.objects.filter(action="suppression.delete", resource_id="+14155550102").exists()


def test_remove_action_calls_the_service_for_each_number(login, admin_a, listed):
    response = login(admin_a).post(CHANGELIST, {"action": "delete_selected_through_service",
                                                "_selected_action": [listed["stop"].pk, listed["manual"].pk]},
                                   follow=True)
    assert "Removed 2 number(s)" in response.content.decode()
    assert not Suppression.objects.filter(org=listed["stop"].org).exists()
    assert AuditEntry.objects.filter(action="suppression.delete").count() == 2


def test_members_cannot_add_or_remove(login, member_a, org_a, listed):
    client = login(member_a)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"org": org_a.pk, "phone_number": "+14155550188", "reason": "manual"}).status_code == 403
    assert client.post(delete_url(listed["manual"]), {"post": "yes"}).status_code == 403
    client.post(CHANGELIST, {"action": "delete_selected_through_service", "_selected_action": [listed["stop"].pk]})
    assert Suppression.objects.filter(org=org_a).count() == 2
    assert client.get(IMPORT).status_code == 404


def test_another_orgs_suppression_is_404(login, admin_a, listed):
    client = login(admin_a)
    assert client.get(reverse("admin:sms_suppression_change", args=[listed["other"].pk])).status_code == 404
    assert client.post(delete_url(listed["other"]), {"post": "yes"}).status_code == 404
    assert Suppression.objects.filter(pk=listed["other"].pk).exists()


def test_csv_import_reports_bad_rows_with_line_numbers(login, admin_a, org_a, listed):
    csv_text = "phone_number\n+14155550150\n(415) 555-0151\nnot-a-phone\n+14155550102\n\n12\n"
    upload = SimpleUploadedFile("list.csv", csv_text.encode(), content_type="text/csv")
    response = login(admin_a).post(IMPORT, {"org": org_a.pk, "reason": "import", "file": upload})
    html = response.content.decode()
    assert response.status_code == 200
    assert set(Suppression.objects.filter(org=org_a).values_list("phone_number", flat=True)) == {
        "+14155550101", "+14155550102", "+14155550150", "+14155550151"}
    assert "imported 2, already present 1, invalid 2" in html
    bad_rows = html[html.index('id="import-bad-rows"'):]
    assert "<td>4</td><td>not-a-phone</td>" in bad_rows and "<td>7</td><td>12</td>" in bad_rows
    assert AuditEntry.objects.filter(action="suppression.import", org_id=org_a.pk).exists()


def test_csv_import_refuses_other_orgs_and_non_utf8(login, admin_a, org_b):
    client = login(admin_a)
    upload = SimpleUploadedFile("list.csv", b"+14155550150\n", content_type="text/csv")
    response = client.post(IMPORT, {"org": org_b.pk, "reason": "import", "file": upload})
    assert "Select a valid choice" in response.content.decode()
    upload = SimpleUploadedFile("list.csv", b"\xff\xfe\x00+", content_type="text/csv")
    response = client.post(IMPORT, {"org": admin_a.memberships.first().org_id, "reason": "import", "file": upload})
    assert "not UTF-8" in response.content.decode()
    assert not Suppression.objects.exists()


def test_export_downloads_the_orgs_list_as_csv(login, member_a, org_a, listed):
    response = login(member_a).get(EXPORT)  # one org: no need to choose
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert "attachment;" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0] == "phone_number,reason,created_at"
    assert {line.split(",")[0] for line in lines[1:]} == {"+14155550101", "+14155550102"}


def test_export_of_another_org_is_404_and_superuser_chooses(login, admin_a, superuser, org_b, listed):
    assert login(admin_a).get(EXPORT, {"org": org_b.pk}).status_code == 404
    html = login(superuser).get(EXPORT).content.decode()
    assert "Acme A" in html and "Bravo B" in html


def test_export_action_downloads_the_selected_numbers_org(login, admin_a, listed):
    response = login(admin_a).post(CHANGELIST, {"action": "export_csv_action",
                                                "_selected_action": [listed["stop"].pk]})
    assert response["Content-Type"] == "text/csv"
    assert "+14155550102" in b"".join(response.streaming_content).decode()


def test_exported_file_reimports_to_the_same_list(login, admin_a, org_a, listed):
    client = login(admin_a)
    body = b"".join(client.get(EXPORT).streaming_content)
    Suppression.objects.filter(org=org_a).delete()
    client.post(IMPORT, {"org": org_a.pk, "reason": "import",
                         "file": SimpleUploadedFile("export.csv", body, content_type="text/csv")})
    assert set(Suppression.objects.filter(org=org_a).values_list("phone_number", "reason")) == {
        ("+14155550101", "stop_keyword"), ("+14155550102", "manual")}


@pytest.mark.parametrize("url, crumb", [(IMPORT, "Import"), (reverse("admin:orgs_apikey_add"), "Create API key")])
def test_custom_pages_have_breadcrumbs_back_to_their_changelist(login, superuser, url, crumb):
    html = login(superuser).get(url).content.decode()
    breadcrumbs = html[html.index('<div class="breadcrumbs">'):]
    breadcrumbs = breadcrumbs[:breadcrumbs.index("</div>")]
    assert "/admin/" in breadcrumbs and "changelist" not in breadcrumbs  # rendered URLs, not names
    assert breadcrumbs.rstrip().endswith(crumb)


def test_import_reports_hostile_rows_as_bad_rows_not_a_500_page(login, admin_a, org_a):
    """Issue #10 point 5: lone surrogates, NUL, NaN, duplicate keys and dates at the calendar's edges."""
    jsonl = "\n".join([
        '{"phone_number": "+14155550160"}',
        '{"phone_number": "+1415555\\ud800"}',
        '{"phone_number": "+14155550161", "created_at": "9999-12-31T23:59:59-14:00"}',
        '{"phone_number": "+14155550162", "created_at": "0001-01-01T00:00:00+14:00"}',
        '{"phone_number": "+14155550163", "x": NaN}',
        '{"phone_number": "+14155550164", "phone_number": "+14155550165"}',
        '{"phone_number": "+1415555\\u0000"}',
    ]) + "\n"
    upload = SimpleUploadedFile("list.jsonl", jsonl.encode(), content_type="application/json")
    response = login(admin_a).post(IMPORT, {"org": org_a.pk, "reason": "import", "file": upload})
    assert response.status_code == 200
    assert "imported 1, already present 0, invalid 6" in response.content.decode()
    assert list(Suppression.objects.filter(org=org_a).values_list("phone_number", flat=True)) == ["+14155550160"]
