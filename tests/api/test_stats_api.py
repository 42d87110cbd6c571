"""GET …/sms/stats: counters from SendDailyCount (never a scan of sends), day-granular windows, quota."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgs.quota import quota_reserve
from sms.services import send_counts_move
from tests.factories import ProviderAccountFactory, SendDailyCountFactory
from orgs.models import KeyMode as _KeyMode, Role as _Role
from tests.factories import ApiKeyFactory as _ApiKeyFactory

pytestmark = pytest.mark.django_db


# These tests are about the live world; test keys see a separate world (tests/api/test_test_and_live_modes.py).
@pytest.fixture
def member_key(org):
    return _ApiKeyFactory(org=org, role=_Role.MEMBER, mode=_KeyMode.PROD)


@pytest.fixture
def admin_key(org):
    return _ApiKeyFactory(org=org, role=_Role.ADMIN, mode=_KeyMode.PROD)

UTC = dt.timezone.utc


def stats_url(org):
    return f"/api/v1/orgs/{org.id}/sms/stats"


@pytest.fixture
def client(member_key, client_for):
    return client_for(member_key)


def counter(org, day, status, count, category="transactional", segments=None):
    SendDailyCountFactory(org=org, day=day, category=category, status=status, count=count,
                          segments=count if segments is None else segments)


def test_default_window_is_the_current_quota_period_with_the_exact_shape(org, client, monkeypatch):
    from sms import tasks

    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: None)
    ProviderAccountFactory(org=org)
    send_url = f"/api/v1/orgs/{org.id}/sms/send"
    first = client.post(send_url, {"to": "+15551234567", "body": "x" * 170}, format="json").json()  # 2 segments
    client.post(send_url, {"to": "+15551234567", "body": "x" * 170}, format="json")  # duplicate → suppressed
    client.post(send_url, {"to": "+15551234568", "body": "hi", "category": "marketing"}, format="json")

    response = client.get(stats_url(org))
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"since", "until", "total", "by_status", "by_category", "segments", "delivery_rate",
                         "suppression_refused", "quota", "links", "cost"}
    assert data["links"] == {"sent": 0, "clicked": 0, "click_rate": None}
    today = dt.datetime.now(UTC).date()
    assert data["since"].startswith(today.replace(day=1).isoformat())
    assert data["total"] == 3
    assert data["by_status"] == {"queued": 2, "sending": 0, "sent": 0, "delivered": 0, "undelivered": 0,
                                 "failed": 0, "suppressed": 1}
    assert data["by_category"] == {"transactional": 2, "marketing": 1}
    assert data["segments"] == 5
    assert data["delivery_rate"] is None and data["suppression_refused"] == 0
    assert data["quota"]["limit"] == org.monthly_quota
    assert (data["quota"]["used"], data["quota"]["remaining"]) == (2, org.monthly_quota - 2)
    assert data["quota"]["period_start"] == data["since"] and data["quota"]["period_end"] == data["until"]
    assert first["status"] == "queued"


def test_status_moves_are_reflected_and_delivery_rate_computed(org, client):
    today = dt.datetime.now(UTC).date()
    counter(org, today, "delivered", 3)
    counter(org, today, "undelivered", 1)
    counter(org, today, "queued", 2)
    data = client.get(stats_url(org)).json()
    assert data["delivery_rate"] == 0.75
    assert data["total"] == 6


def test_delivery_rate_counts_only_sends_that_reached_a_provider(org, client, monkeypatch):
    """A send refused because its recipient is suppressed is `failed` but never reached a provider: it is
    counted in by_status.failed and total, shown as suppression_refused, and left out of the rate."""
    from sms import tasks
    from sms.models import Send
    from tests.factories import SuppressionFactory

    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: None)
    ProviderAccountFactory(org=org)
    SuppressionFactory(org=org, phone_number="+15550000001")
    send_url = f"/api/v1/orgs/{org.id}/sms/send"
    refused = [client.post(send_url, {"to": "+15550000001", "body": f"r{i}"}, format="json").json() for i in range(3)]
    assert {r["status"] for r in refused} == {"failed"}
    delivered = client.post(send_url, {"to": "+15550000002", "body": "d"}, format="json").json()
    failed = client.post(send_url, {"to": "+15550000003", "body": "f"}, format="json").json()
    for send_id, final in ((delivered["id"], "delivered"), (failed["id"], "failed")):
        send = Send.objects.get(pk=send_id)
        send_counts_move(send=send, from_status="queued", to_status="sending")
        send_counts_move(send=send, from_status="sending", to_status=final)
    data = client.get(stats_url(org)).json()
    assert data["total"] == 5 and data["by_status"]["failed"] == 4 and data["by_status"]["delivered"] == 1
    assert data["suppression_refused"] == 3
    assert data["delivery_rate"] == 0.5  # 1 delivered of the 2 that reached the provider (not 1 of 5)


def test_only_suppression_refused_sends_is_no_delivery_rate(org, client, monkeypatch):
    from sms import tasks
    from tests.factories import SuppressionFactory

    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: None)
    ProviderAccountFactory(org=org)
    SuppressionFactory(org=org, phone_number="+15550000001")
    client.post(f"/api/v1/orgs/{org.id}/sms/send", {"to": "+15550000001", "body": "x"}, format="json")
    data = client.get(stats_url(org)).json()
    assert data["by_status"]["failed"] == 1 and data["suppression_refused"] == 1
    assert data["delivery_rate"] is None


def test_send_counts_move_keeps_the_total(org, client):
    from tests.factories import SendFactory

    send = SendFactory(org=org, status="queued", segments=1, mode="prod")
    from sms.services import send_counts_add

    send_counts_add(send=send)
    send_counts_move(send=send, from_status="queued", to_status="sending")
    send_counts_move(send=send, from_status="sending", to_status="failed")
    data = client.get(stats_url(org)).json()
    assert data["total"] == 1 and data["by_status"]["failed"] == 1 and data["by_status"]["queued"] == 0
    assert data["delivery_rate"] == 0.0


def test_since_and_until_are_rounded_out_to_whole_utc_days(org, client):
    for day in (1, 2, 3, 4):
        counter(org, dt.date(2025, 1, day), "delivered", day)
    data = client.get(stats_url(org), {"since": "2025-01-02T15:30:00Z", "until": "2025-01-03T01:00:00Z"}).json()
    assert data["total"] == 2 + 3
    assert data["since"] == "2025-01-02T00:00:00Z" and data["until"] == "2025-01-04T00:00:00Z"
    # a date-only `until` includes that day; a midnight datetime is an exclusive bound
    assert client.get(stats_url(org), {"since": "2025-01-01", "until": "2025-01-02"}).json()["total"] == 1 + 2
    assert client.get(stats_url(org), {"since": "2025-01-01", "until": "2025-01-02T00:00:00Z"}).json()["total"] == 1


def test_other_orgs_counters_are_not_included(org, other_org, client):
    today = dt.datetime.now(UTC).date()
    counter(other_org, today, "delivered", 7)
    assert client.get(stats_url(org)).json()["total"] == 0


@pytest.mark.parametrize("params", [{"since": "last week"}, {"until": "2025-02-30"},
                                    {"since": "2025-02-01", "until": "2025-01-01"}])
def test_bad_window_is_400_invalid_filter(org, client, params):
    response = client.get(stats_url(org), params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_filter"


def test_stats_never_read_the_sends_table(org, client):
    quota_reserve(org=org)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(stats_url(org)).status_code == 200
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert '"sms_send"' not in sql and "sms_senddailycount" in sql
    # key lookup, key touch (update in a savepoint pair), quota row, counters, the short links' counts, the spend
    # meter (cost)
    assert len(ctx.captured_queries) <= 8


def test_one_sided_windows_extend_to_a_sensible_other_bound(org, client):
    counter(org, dt.date(2025, 1, 10), "delivered", 4)
    counter(org, dt.datetime.now(UTC).date(), "delivered", 1)
    since_only = client.get(stats_url(org), {"since": "2025-01-01"}).json()
    assert since_only["total"] == 5 and since_only["until"] == since_only["quota"]["period_end"]
    until_only = client.get(stats_url(org), {"until": "2025-01-20"}).json()
    assert until_only["total"] == 4
    assert (until_only["since"], until_only["until"]) == ("2025-01-01T00:00:00Z", "2025-01-21T00:00:00Z")
