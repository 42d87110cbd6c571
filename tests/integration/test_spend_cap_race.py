"""Spend caps under concurrency (issue #16 point 3), real PostgreSQL, real threads with their own connections:
50 parallel sends against a cap worth exactly 20 of them → exactly 20 accepted, 30 × spend_cap_exceeded, the
meter at exactly the cap (Decimal), and the quota only spent by the accepted ones."""
from decimal import Decimal

import pytest

from orgs.errors import SpendCapExceeded
from orgs.models import QuotaUsage, SpendUsage
from sms.models import Send
from sms.services import send_create
from tests.integration.test_concurrent_sends import run_concurrently, setup  # noqa: F401 — the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.mark.parametrize(("cap_field", "price"), [("monthly", "0.0083"), ("country", "0.0100")],
                         ids=["monthly-cap-list-price", "country-cap-negotiated-price"])
def test_fifty_parallel_sends_against_a_cap_worth_twenty_accept_exactly_twenty(setup, cap_field, price):  # noqa: F811
    org, key, dispatched = setup
    cap = Decimal(price) * 20
    if cap_field == "monthly":
        org.monthly_spend_cap = cap
    else:
        org.country_spend_caps = {"US": str(cap)}
    org.price_overrides = {} if price == "0.0083" else {"US": price}
    org.save()
    # 50 different recipients in one US exchange; one segment each
    results = run_concurrently(50, lambda i: send_create(org=org, api_key=key, to=f"+1415555{i:04d}",
                                                         body=f"code {i}").send)
    ok = [value for kind, value in results if kind == "ok"]
    errors = [value for kind, value in results if kind == "error"]
    assert len(ok) == 20 and all(send.status == "queued" and send.price == Decimal(price) for send in ok)
    assert len(errors) == 30 and all(isinstance(e, SpendCapExceeded) for e in errors), errors
    assert {e.details["cap"] for e in errors} == {str(cap.normalize())}
    spent = sum(SpendUsage.objects.filter(org=org).values_list("amount", flat=True), Decimal(0))
    assert spent == cap  # exactly, in Decimal
    assert Send.objects.filter(org=org).count() == 20
    assert sum(QuotaUsage.objects.filter(org=org).values_list("used", flat=True)) == 20
    assert len(dispatched) == 20
