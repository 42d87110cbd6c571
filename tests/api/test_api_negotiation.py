"""Issue #14: OrgApi answers content negotiation at once for the usual Accept headers (JsonNegotiation) and builds
its policy objects once per view class; both must answer exactly as DRF's defaults would."""
import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from sendora_sms.api.base import JsonNegotiation, OrgApi
from sms.api.views import SendCreateApi, SendListApi

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, */*", "application/*"])
@pytest.mark.parametrize("query", ["", "?limit=5"])
def test_the_fast_answer_is_drfs_answer(accept, query):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/x{query}", **headers))
    renderers = [JSONRenderer()]
    fast = JsonNegotiation().select_renderer(request, renderers)
    slow = DefaultContentNegotiation().select_renderer(request, renderers)
    assert (type(fast[0]), fast[1]) == (type(slow[0]), slow[1]) == (JSONRenderer, "application/json")


def test_an_accept_header_json_cannot_satisfy_is_still_406(org, admin_key, client_for):
    response = client_for(admin_key).get(f"/api/v1/orgs/{org.id}/sms/sends", HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"
    response = client_for(admin_key).get(f"/api/v1/orgs/{org.id}/sms/sends?format=xml")
    assert response.status_code == 404  # DRF's answer to an unknown ?format=, unchanged


def test_policy_objects_are_built_once_per_set_of_classes(monkeypatch):
    first, again = SendCreateApi(), SendCreateApi()
    assert first.get_permissions() is again.get_permissions()
    assert [type(p) for p in first.get_permissions()] == OrgApi.permission_classes
    assert first.get_authenticators() is SendListApi().get_authenticators()  # same classes, same objects

    class Extra:
        def has_permission(self, request, view):
            return True

    monkeypatch.setattr(SendCreateApi, "permission_classes", [*OrgApi.permission_classes, Extra])
    assert type(SendCreateApi().get_permissions()[-1]) is Extra  # a changed list is honoured
