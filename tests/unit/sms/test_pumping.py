"""SMS-pumping defence (issue #16 point 4): the velocity check on real Redis, the simulated attack with its figures,
and the refusal end to end (429 suspected_pumping, audited with the reason, shown on the dashboard).

The simulation (`simulate`) drives sms.pumping.pumping_verdict — the exact check the send path runs — with a
simulated clock over one hour: 10,000 normal sends spread the way a national sender's traffic is (area codes
Zipf-weighted, exchanges and lines uniform; a share abroad) mixed with three attack bursts of 200 sequential
numbers each (a US range, a range in a country outside the org's usual traffic, a range on the high-risk list).
docs/pumping.md quotes its figures (run with -s to print them)."""
import random
from dataclasses import dataclass

import pytest

from orgs.models import KeyMode, Org, Role
from sms import pricing
from sms.pumping import limits_for, pumping_check, pumping_verdict
from tests.factories import ApiKeyFactory, OrgFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

HOUR_MS = 3_600_000
NORMAL_SENDS = 10_000
ATTACK_LENGTH = 200
# 300 US area codes (real NPAs 201…989, skipping N11 and 555-style specials is unnecessary for the model)
AREA_CODES = [npa for npa in range(201, 990) if npa % 100 != 11][:300]
ATTACKS = {
    "us_range": ("+1212555", "US"),  # sequential +1 212 555 0000… (home country: the usual limit)
    "jm_range": ("+1876555", "JM"),  # Jamaica: allowed, outside the org's usual traffic
    "uk_personal_70": ("+447000", "GB"),  # +44 70: on the high-risk list
}


@dataclass
class Figures:
    normal_sent: int
    normal_refused: int
    attack_first_refusal: dict  # attack → 1-based index of its first refused message
    attack_accepted: dict  # attack → messages of the attack accepted in the hour

    @property
    def normal_refused_rate(self) -> float:
        return self.normal_refused / self.normal_sent


def _normal_number(rng: random.Random) -> str:
    if rng.random() < 0.08:  # abroad: UK mobiles
        return f"+447{rng.randrange(100, 999)}{rng.randrange(0, 1_000_000):06d}"
    weights = [1 / (rank + 1) for rank in range(len(AREA_CODES))]
    npa = rng.choices(AREA_CODES, weights=weights)[0]
    return f"+1{npa}{rng.randrange(200, 1000)}{rng.randrange(0, 10_000):04d}"


def simulate(org: Org, *, seed: int = 16) -> Figures:
    rng = random.Random(seed)
    events = [(rng.randrange(HOUR_MS), "normal", _normal_number(rng)) for _ in range(NORMAL_SENDS)]
    for n, (name, (prefix, _country)) in enumerate(ATTACKS.items()):
        start = (n + 1) * HOUR_MS // 4  # bursts at 15, 30 and 45 minutes, one message every 0.5 s
        width = 12 - (len(prefix) - 1)  # digits after the prefix (E.164 national lengths: NANP 10, UK 10)
        for i in range(ATTACK_LENGTH):
            events.append((start + i * 500, name, f"{prefix}{i:0{width}d}"))
    events.sort(key=lambda e: e[0])
    normal_refused, first, accepted = 0, {}, {name: 0 for name in ATTACKS}
    seen = {name: 0 for name in ATTACKS}
    for at, kind, number in events:
        verdict = pumping_verdict(org=org, to=number, country=pricing.country_for(number), now_ms=1_700_000_000_000 + at)
        assert verdict is not None, "Redis must answer in this test"
        if kind == "normal":
            normal_refused += not verdict.allowed
            continue
        seen[kind] += 1
        if verdict.allowed:
            accepted[kind] += 1
        else:
            first.setdefault(kind, seen[kind])
    return Figures(normal_sent=NORMAL_SENDS, normal_refused=normal_refused, attack_first_refusal=first,
                   attack_accepted=accepted)


def test_simulated_attack_is_stopped_within_20_messages_and_normal_traffic_passes():
    org = OrgFactory(pumping_limit=None, home_country="US", allowed_countries=["US", "GB", "JM"])
    figures = simulate(org)
    print(f"\npumping simulation: {figures}; normal refused rate {figures.normal_refused_rate:.5f}")
    limits = limits_for(org)
    assert (limits.usual, limits.other, limits.high_risk) == (15, 5, 1)  # the shipped default
    for name in ATTACKS:
        assert figures.attack_first_refusal[name] <= 20, (name, figures)
        assert figures.attack_accepted[name] < 20, (name, figures)  # and it stays stopped for the hour
    assert figures.attack_first_refusal == {"us_range": 16, "jm_range": 6, "uk_personal_70": 2}
    assert figures.normal_refused_rate < 1 / 1000, figures


def test_the_window_slides_and_the_limit_is_per_org_and_per_range():
    org = OrgFactory(pumping_limit=3)
    other = OrgFactory(pumping_limit=3)
    t0 = 1_700_000_000_000
    allowed = [pumping_verdict(org=org, to=f"+1415555{i:04d}", country="US", now_ms=t0 + i).allowed for i in range(4)]
    assert allowed == [True, True, True, False]
    assert pumping_verdict(org=other, to="+14155550009", country="US", now_ms=t0).allowed  # another org
    assert pumping_verdict(org=org, to="+14155560009", country="US", now_ms=t0).allowed  # another range
    assert not pumping_verdict(org=org, to="+14155550009", country="US", now_ms=t0 + HOUR_MS - 1).allowed
    assert pumping_verdict(org=org, to="+14155550009", country="US", now_ms=t0 + HOUR_MS + 1).allowed  # slid


def test_a_country_becomes_usual_after_enough_accepted_sends(settings):
    settings.SMS_PUMPING_USUAL_MIN = 10
    org = OrgFactory(pumping_limit=15, allowed_countries=["US", "GB"])
    t0 = 1_700_000_000_000
    first = pumping_verdict(org=org, to="+447911000001", country="GB", now_ms=t0)
    assert (first.usual, first.limit) == (False, 5)
    for i in range(10):
        pumping_verdict(org=org, to=f"+4479{i}1000001", country="GB", now_ms=t0 + i)
    later = pumping_verdict(org=org, to="+447911000002", country="GB", now_ms=t0 + 100)
    assert (later.usual, later.limit) == (True, 15)


def test_raising_the_limit_lets_genuine_bursts_through():
    org = OrgFactory(pumping_limit=None)
    refused = [pumping_verdict(org=org, to=f"+1415555{i:04d}", country="US").allowed for i in range(20)].count(False)
    assert refused == 5
    org.pumping_limit = 100
    assert all(pumping_verdict(org=org, to=f"+1415555{i:04d}", country="US").allowed for i in range(20, 40))


def test_the_check_fails_open_when_redis_is_unreachable(monkeypatch):
    from sms import pumping

    def broken():
        def run(keys, args):
            raise ConnectionError("redis down")
        return run

    monkeypatch.setattr(pumping, "_runner", broken)
    org = OrgFactory(pumping_limit=1)
    for i in range(3):
        pumping_check(org=org, to=f"+1415555{i:04d}", country="US")  # never raises


def test_a_pumping_refusal_through_the_api_is_a_429_audited_with_its_reason_and_shown_on_the_dashboard(
        client, settings):
    from django.test import Client

    from audit.models import AuditEntry
    from sms.models import Send
    from tests.factories import MembershipFactory, UserFactory

    org = OrgFactory(pumping_limit=None, send_rate_override=1000)
    ProviderAccountFactory(org=org)
    key = ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    api = Client()
    codes = []
    for i in range(20):
        response = api.post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": f"+1212555{i:04d}", "body": f"code {i}"},
                            content_type="application/json", HTTP_X_API_KEY=key.raw_key)
        codes.append(response.status_code)
    assert codes == [202] * 15 + [429] * 5
    body = response.json()["error"]
    assert body["code"] == "suspected_pumping" and body["details"]["range"] == "+1212555"
    assert int(response["Retry-After"]) >= 1
    assert Send.objects.filter(org=org).count() == 15
    trips = AuditEntry.objects.filter(org=org, details__decision="suspected_pumping")
    assert trips.count() == 5 and "limit of 15" in trips.first().details["reason"]
    # test keys (the sandbox) are not checked
    test_key = ApiKeyFactory(org=org, mode=KeyMode.TEST)
    response = api.post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "+12125559999", "body": "t"},
                        content_type="application/json", HTTP_X_API_KEY=test_key.raw_key)
    assert response.status_code == 202
    # the org's admin sees the trips on the org's Cost page
    user = UserFactory(is_superuser=False)
    MembershipFactory(org=org, user=user, role=Role.ADMIN)
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/admin/sms/cost/{org.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<td>+1212555…</td>") == 5 and "limit of 15" in html


def test_the_cost_page_is_404_for_another_tenant():
    from django.test import Client

    from tests.factories import MembershipFactory, UserFactory

    org, other = OrgFactory(), OrgFactory()
    user = UserFactory(is_superuser=False)
    MembershipFactory(org=org, user=user, role=Role.ADMIN)
    browser = Client()
    browser.force_login(user)
    assert browser.get(f"/admin/sms/cost/{org.pk}/").status_code == 200
    assert browser.get(f"/admin/sms/cost/{other.pk}/").status_code == 404
