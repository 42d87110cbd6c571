"""Issue #6 item 7 — tenant isolation matrix, generated from the URL resolver and the admin registry.

API: for every /api/v1 route with {org_id} and every method, org A's keys against org B
  - B's org id in the path → 404 `org_not_found`;
  - A's org id with B's object ids in the other path parameters → 404;
  - A's lists, filtered or paged with values taken from B (B's phone, a cursor built from B's row) → only A's rows;
  nothing of B's (ids, phones, bodies, names, SIDs, key prefixes) in any response, and B's rows unchanged.
Webhooks: A's signature on B's URL → 403; A's status callback naming B's MessageSid changes nothing of B's.
Dashboard: a staff user who is admin of A only, for every model in the served admin site's registry:
  B's change / history / delete pages → 404 (POSTs too, and the row survives); changelists and
  searches never show B's rows; every admin URL taking an org id → 404 for B's.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django.contrib.admin.utils import quote as admin_quote
from django.test import Client, override_settings
from django.urls import NoReverseMatch, URLPattern, URLResolver, reverse
from rest_framework.test import APIClient

from orgs.models import KeyMode, Org, Role
from sendora_sms.api.pagination import cursor_encode as encode_cursor
from tests.helpers.twilio_signing import sign_twilio_request
from tests.factories import ApiKeyFactory
from tests.security.conftest import leaked
from tests.security.surface import org_routes, served_admin_site, webhook_routes

PUBLIC_BASE = "https://hooks.sendora.test"
ARTIFACTS = Path(os.environ.get("SECURITY_ARTIFACTS", "test-artifacts/security"))


def _record(name: str, calls: int) -> None:
    """Counts for docs/reliability.md: test-artifacts/security/isolation.json."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "isolation.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = calls
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def _org_path_of(model) -> str | None:
    """ORM path from `model` to Org, or None when the model is not tenant data."""
    if model is Org:
        return "pk"
    for field in model._meta.get_fields():
        if getattr(field, "many_to_one", False) or getattr(field, "one_to_one", False):
            if field.concrete and field.related_model is Org:
                return field.name
    for field in model._meta.get_fields():  # one hop: e.g. SendStatusChange → send → org
        if (getattr(field, "many_to_one", False) and field.concrete and field.related_model is not None
                and any(f.concrete and getattr(f, "related_model", None) is Org
                        for f in field.related_model._meta.get_fields() if getattr(f, "many_to_one", False))):
            return f"{field.name}__org"
    return None


def tenant_rows(tenant) -> dict[str, list]:
    """Every row of every tenant-scoped table that belongs to `tenant`, as plain values."""
    out = {}
    for model in apps.get_models():
        path = _org_path_of(model)
        if path is None:
            continue
        rows = model._base_manager.filter(**{path: tenant.org.pk}).order_by("pk").values()
        out[model._meta.label] = [dict(r) for r in rows]
    return out


def _text(response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return headers + "\n" + response.content.decode("utf-8", errors="replace")


def _without(text: str, *echoed: str) -> str:
    """`text` minus the caller's own input echoed back (a search box, a 404's details): echoing
    what A sent is not a leak of B's data."""
    from html import escape
    from urllib.parse import quote_plus

    for value in echoed:
        for form in {value, quote(value, safe=""), quote_plus(value), escape(value), escape(value, quote=False),
                     value.lstrip("+"), quote(value), value.replace(" ", "+"), quote(quote_plus(value), safe=""),
                     quote(quote(value, safe=""), safe="")}:
            if form:
                text = text.replace(form, "")
    return text


_ABSENT = {"send_id": "00000000-0000-4000-8000-000000000001", "phone": "+14155550199", "phone_number": "+14155550199",
           "inbound_id": "00000000-0000-4000-8000-000000000002", "message_id": "00000000-0000-4000-8000-000000000002",
           "event_id": "00000000-0000-4000-8000-000000000003", "entry_id": "999999999",
           "key_id": "00000000-0000-4000-8000-000000000004", "api_key_id": "00000000-0000-4000-8000-000000000004",
           "endpoint_id": "00000000-0000-4000-8000-000000000005", "delivery_id": "00000000-0000-4000-8000-000000000006"}


def _probe_body(tenant) -> dict:
    phone = tenant.suppressions[0].phone_number
    return {"to": phone, "body": "probe", "phone_number": phone, "reason": "manual"}


def _call(client, method, path, body=None):
    if method in ("get", "delete"):
        return getattr(client, method)(path)
    return getattr(client, method)(path, body or {}, format="json")


def _fill(route, org_id, ids) -> str:
    values = {"org_id": org_id}
    for name in route.params:
        if name != "org_id":
            assert ids.get(name), f"{route}: no value of B's for path parameter {name!r} (add it to Tenant.object_ids)"
            values[name] = quote(ids[name][0], safe="")
    return route.path(**values)


# --- API ----------------------------------------------------------------------------------------

def test_matrix_covers_every_org_route():
    routes = org_routes()
    assert routes, "no /api/v1/orgs/{org_id}/… route is registered"
    assert any(len(r.params) > 1 for r in routes), "no id-bearing route found; the object matrix would be empty"


@pytest.mark.parametrize("key_name", ["admin_key", "member_key"])
def test_another_orgs_id_in_the_path_is_404_org_not_found_on_every_endpoint(key_name, tenant_a, tenant_b):
    before = tenant_rows(tenant_b)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=getattr(tenant_a, key_name).raw_key)
    failures, calls = [], 0
    for route in org_routes():
        for method in route.methods:
            # B's org id, with B's own object ids too, and with A's object ids.
            for ids in (tenant_b.object_ids(), tenant_a.object_ids()):
                path = _fill(route, tenant_b.org_id, ids)
                response = _call(client, method, path, _probe_body(tenant_b))
                calls += 1
                if response.status_code != 404 or response.json()["error"]["code"] != "org_not_found":
                    failures.append(f"{method.upper()} {path}: {response.status_code} {response.content[:200]}")
                if leak := leaked(_text(response), tenant_b):
                    failures.append(f"{method.upper()} {path}: B's {leak} in the response")
    assert calls and not failures, "\n".join(failures)
    assert tenant_rows(tenant_b) == before, "a request with A's key changed B's rows"
    _record(f"api_foreign_org_id_calls_{key_name}", calls)


def test_another_orgs_object_ids_under_ones_own_org_are_404_on_every_id_bearing_endpoint(tenant_a, tenant_b):
    before = tenant_rows(tenant_b)
    client = APIClient()
    # A LIVE admin key: a test key is refused before any lookup on the endpoints that change the shared
    # suppression list (403 live_key_required), which would leave those endpoints untested here.
    client.credentials(HTTP_X_API_KEY=ApiKeyFactory(org=tenant_a.org, role=Role.ADMIN, mode=KeyMode.PROD).raw_key)
    failures, calls = [], 0
    b_ids = tenant_b.object_ids()
    for route in org_routes():
        extra = [p for p in route.params if p != "org_id"]
        if not extra:
            continue
        for method in route.methods:
            for n in range(max(len(b_ids.get(p, [])) for p in extra)):  # every B object of that kind
                values = {p: [b_ids[p][min(n, len(b_ids[p]) - 1)]] for p in extra if b_ids.get(p)}
                path = _fill(route, tenant_a.org_id, values)
                response = _call(client, method, path, _probe_body(tenant_a))
                calls += 1
                # "Not yours" must be indistinguishable from "does not exist".
                absent = _call(client, method, _fill(route, tenant_a.org_id, {p: [_ABSENT[p]] for p in extra}),
                               _probe_body(tenant_a))
                if response.status_code != 404 or absent.status_code != 404:
                    failures.append(f"{method.upper()} {path}: {response.status_code} {response.content[:200]}")
                elif response.json()["error"]["code"] != absent.json()["error"]["code"]:
                    failures.append(f"{method.upper()} {path}: {response.json()} differs from {absent.json()}")
                echoed = [v[0] for v in values.values()]
                if leak := leaked(_without(_text(response), *echoed), tenant_b):
                    failures.append(f"{method.upper()} {path}: B's {leak} in the response")
    assert calls and not failures, "\n".join(failures)
    assert tenant_rows(tenant_b) == before, "a request with A's key changed B's rows"
    _record("api_foreign_object_id_calls", calls)


def test_lists_filtered_or_paged_with_bs_values_show_only_as_rows(tenant_a, tenant_b):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=tenant_a.admin_key.raw_key)
    b_send = tenant_b.sends[0]
    queries = [
        {}, {"limit": 200}, {"phone": b_send.to}, {"phone": tenant_b.suppressions[0].phone_number},
        {"status": "delivered"}, {"type": "sms.sent"}, {"type": "sms.replied"}, {"action": "sms.send"},
        {"cursor": encode_cursor(b_send.created_at, b_send.pk)},
        {"since": "2000-01-01", "until": "2100-01-01"},
        {"org_id": tenant_b.org_id}, {"org": tenant_b.org_id},  # unknown params must not switch tenant
        {"send_id": str(tenant_b.links[0].send_id)},  # GET …/sms/links?send_id= of B's send with a link
    ]
    failures, lists_with_rows = [], 0
    for route in org_routes():
        if "get" not in route.methods or route.params != ("org_id",):
            continue
        base = route.path(org_id=tenant_a.org_id)
        for query in queries:
            response = client.get(f"{base}?{urlencode(query)}" if query else base)
            if response.status_code >= 500:
                failures.append(f"GET {base}?{urlencode(query)}: {response.status_code}")
            if leak := leaked(_text(response), tenant_b):
                failures.append(f"GET {base}?{urlencode(query)}: B's {leak} in the response")
            if not query and response.status_code == 200 and response.json().get("data"):
                lists_with_rows += 1
    assert not failures, "\n".join(failures)
    _record("api_list_queries", lists_with_rows and len(queries) * len(
        [r for r in org_routes() if "get" in r.methods and r.params == ("org_id",)]))
    assert lists_with_rows >= 3, "A's own lists came back empty: the leak check would prove nothing"


@override_settings(SMS_PUBLIC_BASE_URL=PUBLIC_BASE)
def test_webhooks_signed_with_as_token_cannot_reach_or_change_bs_data(tenant_a, tenant_b):
    routes = [r for r in webhook_routes() if "org_id" in r.params and "/webhooks/twilio/" in r.template]
    assert routes, "no Twilio webhook routes are registered"
    before = tenant_rows(tenant_b)
    client = APIClient()
    b_send = tenant_b.sends[1]
    for route in routes:
        # 1. A's valid signature on B's URL (with A's and with B's AccountSid).
        path_b = route.path(org_id=tenant_b.org_id)
        for account_sid in (tenant_a.provider_account.account_sid, tenant_b.provider_account.account_sid):
            fields = {"AccountSid": account_sid, "MessageSid": b_send.provider_message_id, "From": b_send.to,
                      "To": tenant_b.provider_account.from_number, "Body": "STOP", "MessageStatus": "delivered"}
            signature = sign_twilio_request(PUBLIC_BASE + path_b, fields, tenant_a.auth_token)
            response = client.post(path_b, urlencode(fields), content_type="application/x-www-form-urlencoded",
                                   HTTP_X_TWILIO_SIGNATURE=signature)
            assert response.status_code == 403, (route.template, response.status_code, response.content[:200])
            assert not leaked(_text(response), tenant_b)
        # 2. A's own URL, validly signed, naming B's message and B's recipient.
        path_a = route.path(org_id=tenant_a.org_id)
        fields = {"AccountSid": tenant_a.provider_account.account_sid, "MessageSid": b_send.provider_message_id,
                  "SmsSid": b_send.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "21610",
                  "From": b_send.to, "To": tenant_a.provider_account.from_number, "Body": "STOP"}
        signature = sign_twilio_request(PUBLIC_BASE + path_a, fields, tenant_a.auth_token)
        response = client.post(path_a, urlencode(fields), content_type="application/x-www-form-urlencoded",
                               HTTP_X_TWILIO_SIGNATURE=signature)
        assert response.status_code < 300, (route.template, response.status_code, response.content[:200])
        assert not leaked(_text(response).replace(b_send.to, "").replace(b_send.to[1:], ""), tenant_b)
    after = tenant_rows(tenant_b)
    assert after == before, "a webhook of org A changed org B's rows"


# --- Dashboard ----------------------------------------------------------------------------------

def _admin_objects(model, tenant, limit: int = 3) -> list:
    path = _org_path_of(model)
    if path is not None:
        return list(model._base_manager.filter(**{path: tenant.org.pk}).order_by("pk")[:limit])
    if model is tenant.staff_user.__class__:
        return [tenant.staff_user]
    return []


def _registry():
    site = served_admin_site()
    return site, sorted(site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def staff_a(tenant_a, tenant_b) -> Client:
    client = Client()
    client.force_login(tenant_a.staff_user)
    return client


def test_dashboard_object_pages_of_another_org_are_404_for_every_registered_model(staff_a, tenant_a, tenant_b):
    site, registry = _registry()
    before = tenant_rows(tenant_b)
    failures, checked = [], 0
    for model, model_admin in registry:
        info = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}"
        scoped = _org_path_of(model) is not None
        for obj in _admin_objects(model, tenant_b):
            for view in ("change", "history", "delete"):
                try:
                    url = reverse(f"{info}_{view}", args=[admin_quote(obj.pk)])
                except NoReverseMatch:
                    continue
                for method in ("get", "post"):
                    data = {"post": "yes"} if method == "post" else None
                    response = getattr(staff_a, method)(url, data) if data else getattr(staff_a, method)(url)
                    checked += 1
                    ok = response.status_code == 404 if scoped else response.status_code in (302, 403, 404)
                    if not ok:
                        failures.append(f"{method.upper()} {url} ({model._meta.label}): {response.status_code}")
                    if response.status_code == 200 and (leak := leaked(_text(response), tenant_b)):
                        failures.append(f"{method.upper()} {url}: B's {leak} on the page")
    assert checked >= 3 * 2 * 3, f"only {checked} object pages checked: are B's objects registered?"
    assert not failures, "\n".join(failures)
    _record("dashboard_object_page_requests", checked)
    _record("dashboard_registered_models", len(registry))
    assert tenant_rows(tenant_b) == before, "A's staff user changed B's rows through the dashboard"


def test_dashboard_changelists_and_searches_never_show_another_orgs_rows(staff_a, tenant_a, tenant_b):
    site, registry = _registry()
    failures, seen_a = [], 0
    searches = ["", tenant_b.sends[0].to, tenant_b.suppressions[0].phone_number, tenant_b.org.name,
                tenant_b.sends[0].body, tenant_b.org_id, tenant_b.admin_key.prefix]
    for model, model_admin in registry:
        info = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}"
        for view in ("changelist", "add"):
            try:
                url = reverse(f"{info}_{view}")
            except NoReverseMatch:
                continue
            for term in (searches if view == "changelist" else [""]):
                response = staff_a.get(url, {"q": term} if term else {})
                if response.status_code >= 500:
                    failures.append(f"GET {url}?q={term}: {response.status_code}")
                if response.status_code == 200:
                    text = _text(response)
                    if view == "changelist" and not term and leaked(text, tenant_a):
                        seen_a += 1
                    if leak := leaked(_without(text, term) if term else text, tenant_b):
                        failures.append(f"GET {url}?q={term} ({model._meta.label}): B's {leak} on the page")
    # Filters by org (the changelist's ?org__id__exact=) must not switch tenant either.
    for model, model_admin in registry:
        path = _org_path_of(model)
        if path in (None, "pk"):
            continue
        url = reverse(f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = staff_a.get(url, {f"{path}__id__exact": tenant_b.org_id})
        if response.status_code == 200 and (leak := leaked(_without(_text(response), tenant_b.org_id), tenant_b)):
            failures.append(f"GET {url}?{path}__id__exact=B: B's {leak} on the page")
    index = staff_a.get(reverse(f"{site.name}:index"))
    assert index.status_code == 200 and not leaked(_text(index), tenant_b)
    assert not failures, "\n".join(failures)
    assert seen_a >= 3, "A's staff user saw none of A's rows: the dashboard check would prove nothing"


def _admin_url_patterns(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _admin_url_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def test_every_dashboard_url_taking_an_org_id_is_404_for_another_org(staff_a, tenant_a, tenant_b):
    site = served_admin_site()
    checked = 0
    for route, entry in _admin_url_patterns(site.get_urls()):
        if "org_id" not in route or not entry.name:
            continue
        url_b = reverse(f"{site.name}:{entry.name}", kwargs={"org_id": tenant_b.org.pk})
        url_a = reverse(f"{site.name}:{entry.name}", kwargs={"org_id": tenant_a.org.pk})
        response_b = staff_a.get(url_b)
        assert response_b.status_code == 404, (url_b, response_b.status_code)
        assert staff_a.get(url_a).status_code == 200, url_a
        checked += 1
    assert checked, "the dashboard has no per-org URLs"


def test_dashboard_autocomplete_never_offers_another_orgs_rows(staff_a, tenant_a, tenant_b):
    """Django serves /admin/autocomplete/ for every relation field of every registered model whose
    target admin has search fields — declared in autocomplete_fields or not. Every one is probed: the
    answer (when served) lists only the user's own orgs' rows."""
    site, registry = _registry()
    checked = served = 0
    for model, _model_admin in registry:
        for field in model._meta.get_fields():
            if not (field.is_relation and field.concrete and field.related_model in site._registry):
                continue
            response = staff_a.get(reverse(f"{site.name}:autocomplete"), {
                "app_label": model._meta.app_label, "model_name": model._meta.model_name,
                "field_name": field.name, "term": ""})
            checked += 1
            assert response.status_code in (200, 403, 404), (model, field.name, response.status_code)
            assert not leaked(_text(response), tenant_b), (model, field.name)
            if response.status_code == 200 and json.loads(response.content)["results"]:
                served += 1
    assert served, "no autocomplete answer had rows: the leak check above checked nothing"
    assert checked, "no registered model has a relation to another registered model"


def test_short_links_resolve_only_under_their_own_orgs_domain(tenant_a, tenant_b, settings):
    """The public redirect (no key): B's code is 404 under A's branded domain, under the platform's link host
    and under a path base; B's own domain still resolves it. A 404 is the same page whoever owns the code."""
    from sms.links import services

    settings.SMS_LINK_BASE_URL = "https://sndr.link"
    services.link_base.cache_clear()
    services.local_cache_clear()
    try:
        a_domain, b_domain = tenant_a.links[0].domain, tenant_b.links[0].domain
        b_code = tenant_b.links[0].code
        client = APIClient()
        ua = {"HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36"}
        unknown = client.get("/ZZZZZZZZZZZZ", HTTP_HOST=a_domain, **ua)
        for host in (a_domain, "sndr.link"):
            response = client.get(f"/{b_code}", HTTP_HOST=host, **ua)
            assert response.status_code == 404 and response.content == unknown.content
            assert not leaked(_text(response), tenant_b)
        assert client.get(f"/{b_code}", HTTP_HOST=b_domain, **ua)["Location"] == tenant_b.links[0].url
        # the admin's link search for B's code finds nothing for A's staff (the dashboard matrix above covers
        # the Link, LinkSettings and AppRoute pages like every registered model)
    finally:
        services.link_base.cache_clear()
        services.local_cache_clear()


@override_settings(SMS_PUBLIC_BASE_URL=PUBLIC_BASE)
def test_messagebird_and_sinch_webhooks_signed_by_a_cannot_reach_or_change_bs_data(tenant_a, tenant_b):
    import json

    from tests.security.provider_signing import provider_of, sign

    routes = [r for r in webhook_routes() if "org_id" in r.params and "/webhooks/twilio/" not in r.template]
    assert len(routes) == 4
    before = tenant_rows(tenant_b)
    client = APIClient()
    b_send = tenant_b.sends[1]
    for route in routes:
        provider = provider_of(route.template)
        if provider == "messagebird":
            fields = {"id": b_send.provider_message_id, "reference": str(b_send.pk), "recipient": b_send.to[1:],
                      "status": "delivery_failed", "statusReason": "opted out", "originator": b_send.to[1:],
                      "body": "STOP"}
            body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
        else:
            body = json.dumps({"type": "recipient_delivery_report_sms" if route.template.endswith("status") else "mo_text",
                               "id": "01JHFFHWYY7HSS4FWTMDTQEK8V", "batch_id": b_send.provider_message_id,
                               "client_reference": str(b_send.pk), "recipient": b_send.to[1:], "from": b_send.to[1:],
                               "to": "1415", "body": "STOP", "status": "Deleted", "code": 0}).encode()
            content_type = "application/json"
        # 1. A's valid signature on B's URL.
        path_b = route.path(org_id=tenant_b.org_id)
        response = client.generic("POST", path_b, body, content_type=content_type,
                                  **sign(provider, url=PUBLIC_BASE + path_b, body=body, tenant=tenant_a))
        assert response.status_code == 403, (route.template, response.status_code, response.content[:200])
        assert not leaked(_text(response), tenant_b)
        # 2. A's own URL, validly signed, naming B's message, B's send id and B's recipient.
        path_a = route.path(org_id=tenant_a.org_id)
        response = client.generic("POST", path_a, body, content_type=content_type,
                                  **sign(provider, url=PUBLIC_BASE + path_a, body=body, tenant=tenant_a))
        assert response.status_code < 300, (route.template, response.status_code, response.content[:200])
        assert not leaked(_text(response).replace(b_send.to, "").replace(b_send.to[1:], ""), tenant_b)
    assert tenant_rows(tenant_b) == before, "a webhook of org A changed org B's rows"


def test_provider_list_shows_only_the_keys_own_org(tenant_a, tenant_b):
    client = APIClient(HTTP_X_API_KEY=tenant_a.admin_key.raw_key)
    response = client.get(f"/api/v1/orgs/{tenant_a.org_id}/sms/providers")
    assert response.status_code == 200 and len(response.json()["data"]) == 3
    assert not leaked(_text(response), tenant_b)
    for secret in tenant_a.provider_secrets.values():
        assert secret not in _text(response)
    assert client.get(f"/api/v1/orgs/{tenant_b.org_id}/sms/providers").status_code == 404
