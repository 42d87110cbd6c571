"""sms.services.send_create against real PostgreSQL: decisions, records, idempotency, hot-path bounds."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from audit.services import RequestContext
from orgs.errors import QuotaExceededError
from orgs.models import QuotaUsage
from orgs.quota import quota_status
from sendora_sms.errors import RateLimited, ValidationFailed
from sms.errors import IdempotencyKeyReused, ProviderNotConfigured
from sms.models import DispatchHandoff, Event, Send, SendDailyCount
from sms.services import send_counts_move, send_create
from sms.services import sends as sends_module
from sms.services.sends import send_input_validate
from sms.statuses import SendStatus
from tests.factories import SendFactory, SuppressionFactory
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

TO = "+15551234567"


@pytest.fixture(autouse=True)
def _fast_org(org):
    org.send_rate_override = 10_000
    org.save(update_fields=["send_rate_override"])


def create(org, key, **kw):
    kw.setdefault("to", TO)
    kw.setdefault("body", "hello")
    return send_create(org=org, api_key=key, context=RequestContext(request_id="r1", client_ip="10.0.0.1"), **kw)


def test_input_is_normalised_and_defaults_applied():
    data = send_input_validate(to="+1 (555) 123-4567", body="hi", category=None, metadata=None)
    assert (data.to, data.category, data.metadata) == (TO, "transactional", {})


@pytest.mark.parametrize(("kw", "code"), [
    ({"to": None}, "invalid_phone_number"),
    ({"body": None}, "invalid_body"),
    ({"category": 3}, "invalid_category"),
    ({"metadata": "x"}, "invalid_metadata"),
])
def test_service_checks_values_even_without_the_api_serializer(org, member_key, provider_account, kw, code):
    with pytest.raises(ValidationFailed) as exc:
        create(org, member_key, **kw)
    assert exc.value.code == code
    assert Send.objects.count() == 0
    assert AuditEntry.objects.get(action="sms.send").details == {"decision": "validation", "code": code, "http_status": 400}


def test_queued_send_sets_dedupe_key_counters_and_audit(org, member_key, provider_account,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = create(org, member_key, payload_bytes=123)
    send = result.send
    assert not result.replayed
    assert send.status == SendStatus.QUEUED and send.dedupe_key and len(send.dedupe_key) == 64
    # The dispatch hand-off is a row written with the send (sms/services/handoff.py): nothing runs after commit.
    assert callbacks == []
    assert list(DispatchHandoff.objects.values_list("send_id", flat=True)) == [send.id]
    assert SendDailyCount.objects.get(org=org, status="queued").count == 1
    entry = AuditEntry.objects.get(action="sms.send")
    assert (entry.payload_bytes, entry.request_id, entry.client_ip) == (123, "r1", "10.0.0.1")


def test_stored_rejections_are_never_dispatched(org, member_key, provider_account,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queued = create(org, member_key, body="dup").send
    SuppressionFactory(org=org, phone_number="+15551230000")
    with django_capture_on_commit_callbacks(execute=True):
        duplicate = create(org, member_key, body="dup").send
        suppressed = create(org, member_key, to="+15551230000").send
    assert (duplicate.status, suppressed.status) == ("suppressed", "failed")
    assert duplicate.dedupe_key is None and suppressed.dedupe_key is None
    assert list(DispatchHandoff.objects.values_list("send_id", flat=True)) == [queued.id]  # handed off: only it
    # The suppressed recipient's sms.failed event, waiting for the dispatcher's drain (sms/services/events.py).
    assert list(Event.objects.filter(published_at__isnull=True).values_list("send_id", "type")) == [
        (suppressed.id, "sms.failed")]
    counts = dict(SendDailyCount.objects.values_list("status", "count"))
    assert counts == {"queued": 1, "suppressed": 1, "failed": 1}


def test_provider_and_rate_limit_errors_raise_typed_errors(org, member_key, provider_account):
    provider_account.delete()
    with pytest.raises(ProviderNotConfigured):
        create(org, member_key)


def test_rate_limit_is_checked_before_anything_is_stored(org, member_key, provider_account):
    org.send_rate_override = 1
    org.save(update_fields=["send_rate_override"])
    create(org, member_key, body="a")
    with pytest.raises(RateLimited):
        create(org, member_key, body="b")
    assert Send.objects.count() == 1


def test_quota_exceeded_rolls_back_everything(org, member_key, provider_account):
    org.monthly_quota_override = 0
    org.save(update_fields=["monthly_quota_override"])
    with pytest.raises(QuotaExceededError):
        create(org, member_key)
    assert Send.objects.count() == 0 and SendDailyCount.objects.count() == 0
    assert not QuotaUsage.objects.filter(org=org, used__gt=0).exists()


def test_idempotency_fingerprint_is_taken_after_normalisation(org, member_key, provider_account):
    first = create(org, member_key, to="(555) 123-4567", idempotency_key="abc").send
    again = create(org, member_key, to="+1 555 123 4567", idempotency_key="abc")
    assert again.replayed and again.send.pk == first.pk
    with pytest.raises(IdempotencyKeyReused):
        create(org, member_key, metadata={"changed": True}, idempotency_key="abc")


def test_idempotency_race_loser_rolls_back_and_returns_the_winner(org, member_key, provider_account, monkeypatch):
    """The loser's pre-check misses the winner (not yet committed); the unique index decides and the
    loser's whole transaction — quota reservation included — is undone."""
    winner = create(org, member_key, idempotency_key="race").send
    used_before = quota_status(org=org).used
    real = sends_module.send_by_idempotency_key
    calls = []

    def miss_first_time(**kw):
        calls.append(kw)
        return None if len(calls) == 1 else real(**kw)

    monkeypatch.setattr(sends_module, "send_by_idempotency_key", miss_first_time)
    result = create(org, member_key, body="hello", idempotency_key="race")
    assert result.replayed and result.send.pk == winner.pk
    assert Send.objects.count() == 1
    assert quota_status(org=org).used == used_before


def test_hot_path_query_count_does_not_grow_with_history(org, member_key, provider_account):
    create(org, member_key, body="warm-up")

    def count_queries(body):
        with CaptureQueriesContext(connection) as ctx:
            create(org, member_key, body=body)
        return len(ctx.captured_queries)

    empty = count_queries("before")
    SendFactory.create_batch(300, org=org, to=TO, dedupe_key="x" * 64)
    assert count_queries("after") == empty


def test_live_hot_path_is_three_round_trips_and_a_test_send_costs_the_same(org, member_key, provider_account):
    """Issue #10 point 10 keeps the send path's cost: per-mode duplicates and idempotency add no statement,
    and a test send's sandbox cap replaces the live quota reservation in the same round trip."""
    test_key = _ApiKeyFactory(org=org, role=_Role.MEMBER, mode=_KeyMode.TEST)
    create(org, member_key, body="warm-up")
    create(org, test_key, body="warm-up")

    def count_queries(key, body):
        with CaptureQueriesContext(connection) as ctx:
            result = create(org, key, body=body)
        assert result.send.status == "queued"
        return len(ctx.captured_queries)

    assert count_queries(test_key, "test") == count_queries(member_key, "live")


def test_duplicate_lookup_uses_the_dedupe_index(org, member_key, provider_account):
    for i in range(400):
        SendFactory(org=org, dedupe_key=f"{i:064d}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sms_send")
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=60)
    qs = Send.objects.filter(org=org, dedupe_key="z" * 64, created_at__gte=since).values_list("id")
    with connection.cursor() as cursor:
        plan = qs.explain()
    assert "send_dedupe_idx" in plan


def test_counters_move_keeps_totals_and_segments(org, member_key, provider_account):
    send = create(org, member_key, body="x" * 200).send  # 2 segments
    send_counts_move(send=send, from_status="queued", to_status="sending")
    send_counts_move(send=send, from_status="sending", to_status="delivered")
    rows = {r.status: (r.count, r.segments) for r in SendDailyCount.objects.filter(org=org)}
    assert rows == {"queued": (0, 0), "sending": (0, 0), "delivered": (1, 2)}
