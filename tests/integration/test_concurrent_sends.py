"""Concurrent send_create calls on real PostgreSQL, from real threads with their own connections.

- 20 identical requests at once → exactly one queued, the rest stored as recent_duplicate;
- 50 different requests against a quota of 20 → exactly 20 queued, 30 × 429 quota_exceeded, never overdrawn;
- 10 requests with one Idempotency-Key → one send, every caller gets it.
Each both ways a send is stored (the `setup` fixture's two parameters).
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from orgs.errors import QuotaExceededError
from orgs.models import QuotaUsage
from sms.models import Send
from sms.services import send_create
from sms.services import events as events_module
from sms.services import sends as sends_module
from tests.factories import ApiKeyFactory, OrgFactory, ProviderAccountFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

TO = "+15551234567"


@pytest.fixture(params=["two-round-trips", "one-round-trip"])
def setup(monkeypatch, request):
    """Both ways of storing a send (sms/services/sends.py): the checks read first, or assumed and verified in
    the writes' round trip — the latter for an org read with its API key, which carries `first_route`."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is only meaningful on PostgreSQL")
    dispatched = []
    lock = threading.Lock()

    def committed(send_id):
        with lock:
            dispatched.append(send_id)

    def record(send):  # called while the send's writes are built: recorded only if they commit
        if send.status == "queued":
            transaction.on_commit(lambda send_id=str(send.id): committed(send_id))
        return []

    # The hand-offs are recorded, not written: a running test worker's dispatcher must not take these sends.
    monkeypatch.setattr(sends_module, "handoff_statements", record)
    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)
    org = OrgFactory(send_rate_override=100_000, monthly_quota_override=1_000)
    account = ProviderAccountFactory(org=org)
    key = ApiKeyFactory(org=org, mode="prod")  # the live world: its quota (test keys have the sandbox cap)
    assumed = []
    if request.param == "one-round-trip":
        org.first_route = (account.provider, account.from_number)  # as orgs/selectors.py reads it with the key
        real = sends_module._assumed_checks
        monkeypatch.setattr(sends_module, "_assumed_checks", lambda **kw: assumed.append(1) or real(**kw))
    yield org, key, dispatched
    # The path under test is the one taken (a capped org never assumes: its meter read must follow the lock).
    capped = org.monthly_spend_cap is not None or bool(org.country_spend_caps)
    assert bool(assumed) == (request.param == "one-round-trip" and not capped)


def run_concurrently(n, fn):
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait(timeout=10)
            return ("ok", fn(i))
        except Exception as exc:  # noqa: BLE001 — collected and asserted on
            return ("error", exc)
        finally:
            connection.close()  # each thread has its own connection; close it

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def test_twenty_identical_concurrent_requests_queue_exactly_one(setup):
    org, key, dispatched = setup
    results = run_concurrently(20, lambda i: send_create(org=org, api_key=key, to=TO, body="same body").send)
    assert all(kind == "ok" for kind, _ in results), results
    statuses = sorted(send.status for _, send in results)
    assert statuses.count("queued") == 1
    assert statuses.count("suppressed") == 19
    assert Send.objects.filter(org=org, status="queued").count() == 1
    assert Send.objects.filter(org=org, suppressed_reason="recent_duplicate").count() == 19
    assert QuotaUsage.objects.get(org=org).used == 1
    assert len(dispatched) == 1


@pytest.mark.parametrize("sharded", [False, True], ids=["one-meter-row", "sharded-meter"])
def test_fifty_concurrent_requests_never_overdraw_a_quota_of_twenty(setup, sharded, monkeypatch):
    from orgs import quota

    if sharded:
        monkeypatch.setattr(quota, "QUOTA_SHARD_MIN", 1)  # 20 units over 8 rows
    org, key, dispatched = setup
    org.monthly_quota_override = 20
    org.save(update_fields=["monthly_quota_override"])
    results = run_concurrently(50, lambda i: send_create(org=org, api_key=key, to=TO, body=f"message {i}").send)
    ok = [value for kind, value in results if kind == "ok"]
    errors = [value for kind, value in results if kind == "error"]
    assert len(ok) == 20 and all(send.status == "queued" for send in ok)
    assert len(errors) == 30 and all(isinstance(e, QuotaExceededError) for e in errors), errors
    assert Send.objects.filter(org=org).count() == 20
    assert sum(QuotaUsage.objects.filter(org=org).values_list("used", flat=True)) == 20
    assert len(dispatched) == 20


def test_fifty_concurrent_test_sends_never_overdraw_a_sandbox_cap_of_twenty_nor_touch_the_live_quota(
        setup, settings):
    """Issue #10 point 10: the sandbox's daily cap is as race-free as the live quota, and separate from it."""
    from orgs.models import SandboxDailyUsage

    org, _, dispatched = setup
    test_key = ApiKeyFactory(org=org, mode="test")
    settings.SANDBOX_DAILY_CAP = 20
    results = run_concurrently(50, lambda i: send_create(org=org, api_key=test_key, to=TO, body=f"test {i}").send)
    ok = [value for kind, value in results if kind == "ok"]
    errors = [value for kind, value in results if kind == "error"]
    assert len(ok) == 20 and all(send.status == "queued" and send.mode == "test" for send in ok)
    assert len(errors) == 30 and all(isinstance(e, QuotaExceededError) for e in errors), errors
    assert all(e.details["scope"] == "sandbox_daily" for e in errors)
    assert SandboxDailyUsage.objects.get(org=org).used == 20
    assert sum(QuotaUsage.objects.filter(org=org).values_list("used", flat=True)) == 0


def test_concurrent_retries_with_one_idempotency_key_create_one_send(setup):
    org, key, dispatched = setup
    results = run_concurrently(10, lambda i: send_create(org=org, api_key=key, to=TO, body="pay", idempotency_key="k1"))
    assert all(kind == "ok" for kind, _ in results), results
    ids = {result.send.pk for _, result in results}
    assert len(ids) == 1
    assert sum(1 for _, result in results if not result.replayed) == 1
    assert Send.objects.filter(org=org).count() == 1
    assert QuotaUsage.objects.get(org=org).used == 1
    assert len(dispatched) == 1
