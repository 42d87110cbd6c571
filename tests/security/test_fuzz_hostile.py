"""Issue #10 point 6 — the fuzzers generate the inputs a hostile client sends: lone surrogates, NUL,
non-finite and overflowing numbers, duplicate keys, deep nesting, dates at the calendar's edges with
extreme offsets, forged cursors. Every answer is < 500 and, when an error, in the contract's shape.

In-process (Django's test client): bounded by FUZZ_HOSTILE_EXAMPLES per test (default 60) so CI stays fast.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_HOSTILE_EXAMPLES", "60"))
FUZZ = hsettings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text that includes what st.text() leaves out by default: lone surrogates (category Cs) and NUL.
surrogate = st.integers(0xD800, 0xDFFF).map(chr)
hostile_char = st.one_of(st.characters(), surrogate, st.just("\x00"), st.just("\ufeff"))
hostile_text = st.lists(hostile_char, max_size=12).map("".join)
hostile_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                           st.sampled_from([10**400, -(10**400)]))
hostile_value = st.recursive(
    st.one_of(st.none(), st.booleans(), hostile_number, hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=12,
)


def _raw_number(value) -> str:
    if isinstance(value, int) and abs(value) > 10**300:
        return ("-" if value < 0 else "") + "1e400"  # overflows a double
    return json.dumps(value)  # NaN / Infinity / -Infinity as Python's json writes them


def _dump(value) -> str:
    """JSON text as a hostile client writes it: \\ud800 escapes, NaN, 1e400 — all serialised verbatim."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _raw_number(value)
    return json.dumps(value)


@st.composite
def send_bodies(draw) -> bytes:
    fields = [f'"to":{json.dumps(draw(st.sampled_from(["+15551234567", "555 123 4567"])))}',
              f'"body":{_dump(draw(st.one_of(hostile_text, st.just("hello"))))}',
              f'"metadata":{_dump(draw(hostile_value))}']
    if draw(st.booleans()):
        fields.append(f'"body":{json.dumps("again")}')  # a duplicate key
    depth = draw(st.sampled_from([0, 0, 0, 33, 500]))
    text = "{" + ",".join(fields) + "}"
    text = "[" * depth + text + "]" * depth
    return text.encode("utf-8", "surrogatepass")


def _query(params: dict) -> str:
    """Percent-encode as a hostile client would: a lone surrogate goes out as its (invalid) UTF-8 bytes."""
    return "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in params.items())


def _assert_not_5xx(response):
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and isinstance(body["error"]["code"], str), body


@pytest.fixture
def client(client_for, prod_key, provider_account, settings):
    settings.SMS_DUPLICATE_WINDOW_SECONDS = 0
    prod_key.org.send_rate_override = 1_000_000
    prod_key.org.monthly_quota_override = 1_000_000
    prod_key.org.save()
    return client_for(prod_key)


@FUZZ
@given(body=send_bodies(), content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded"]))
def test_send_with_hostile_json_never_5xx(client, org, body, content_type):
    response = client.post(f"/api/v1/orgs/{org.pk}/sms/send", body, content_type=content_type)
    _assert_not_5xx(response)
    if response.status_code == 202:
        # Whatever was accepted round-trips: no surrogate, NUL or non-finite number was stored.
        json.dumps(response.json(), allow_nan=False).encode("utf-8")


offsets = st.builds(lambda m: dt.timezone(dt.timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60))
edge_instants = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(1, 1, 3), timezones=offsets),
    st.datetimes(min_value=dt.datetime(9999, 12, 29), max_value=dt.datetime(9999, 12, 31, 23, 59, 59),
                 timezones=offsets),
    st.datetimes(timezones=offsets),
)
edge_values = st.one_of(edge_instants.map(dt.datetime.isoformat),
                        edge_instants.map(lambda d: d.date().isoformat()), hostile_text)


@FUZZ
@given(name=st.sampled_from(["created_after", "created_before", "since", "until"]), value=edge_values,
       path=st.sampled_from(["sms/sends", "sms/stats", "events", "audit-log", "sms/suppressions", "sms/links"]))
def test_filters_with_extreme_dates_never_5xx(client, org, name, value, path):
    _assert_not_5xx(client.get(f"/api/v1/orgs/{org.pk}/{path}?{_query({name: value})}"))


@FUZZ
@given(payload=st.one_of(st.binary(max_size=200), send_bodies(),
                         st.tuples(edge_instants.map(dt.datetime.isoformat), hostile_text).map(
                             lambda p: _dump(list(p)).encode("utf-8", "surrogatepass"))),
       path=st.sampled_from(["sms/sends", "events", "audit-log", "sms/suppressions", "sms/links"]),
       limit=st.one_of(st.none(), hostile_text, st.integers(-5, 500).map(str)))
def test_forged_cursors_and_limits_never_5xx(client, org, payload, path, limit):
    cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    params = {"cursor": cursor} | ({"limit": limit} if limit is not None else {})
    _assert_not_5xx(client.get(f"/api/v1/orgs/{org.pk}/{path}?{_query(params)}"))


# --- Short links (sms/links): bodies full of URL-ish text, and the public redirect ----------------

_url_parts = st.sampled_from(["https://", "http://", "HTTPS://", "https://example.com", "https://xn--mnchen-3ya.de",
                              "https://münchen.de/ß", "(", ")", "[", "]", "\"", "'", ".", ",", "!", "?", "#", "%",
                              "%zz", "?a=1&b=2", "#frag", ":8443", "@", "//", " ", "\n", "javascript:", "ftp://x",
                              "https://testsafebrowsing.appspot.com/", "https://sndr.link/AbCdEfGhIj", "💥", "\x00"])
url_bodies = st.lists(_url_parts | hostile_text, min_size=1, max_size=30).map("".join)


@FUZZ
@given(body=url_bodies, shorten=st.sampled_from([None, True, False]))
def test_send_bodies_full_of_url_fragments_never_5xx(client, org, body, shorten):
    payload = {"to": "+15551234567", "body": body} | ({} if shorten is None else {"shorten_links": shorten})
    response = client.post(f"/api/v1/orgs/{org.pk}/sms/send",
                           json.dumps(payload).encode("utf-8", "surrogatepass"), content_type="application/json")
    _assert_not_5xx(response)
    if response.status_code == 202:
        data = response.json()
        assert data["original_body"] == body
        assert all(link["short_url"] in data["body"] for link in data["links"])
        assert all(link["url"].lower().startswith(("http://", "https://")) for link in data["links"])


@FUZZ
@given(path=st.one_of(st.from_regex(r"\A/[A-Za-z0-9]{7,22}\Z"), st.from_regex(r"\A/l/[A-Za-z0-9]{0,30}\Z"),
                      hostile_text.map(lambda t: "/" + quote(t.encode("utf-8", "surrogatepass"), safe=""))),
       host=st.sampled_from(["sndr.link", "localhost", "sndr.link:443", "[::1]", "SNDR.LINK.", "go.example.com"]),
       ua=st.text(max_size=400), method=st.sampled_from(["get", "head", "post", "options"]))
def test_the_redirect_never_5xx(db, settings, path, host, ua, method):
    from rest_framework.test import APIClient

    from sms.links import services

    settings.SMS_LINK_BASE_URL = "https://sndr.link"
    services.link_base.cache_clear()
    try:
        response = getattr(APIClient(), method)(path, HTTP_HOST=host,
                                                HTTP_USER_AGENT=ua.encode("utf-8", "replace").decode("latin-1"))
        assert response.status_code < 500, (response.status_code, response.content[:200])
    finally:
        services.link_base.cache_clear()
