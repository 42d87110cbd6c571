"""The send's one-round-trip path (sms/services/sends.py, issue #14) on real PostgreSQL.

An org read with its API key carries its first enabled account's route (`first_route`, orgs/selectors.py).
The common send then assumes the route, no suppression and no duplicate, and verifies all three in the first
statements of its writes' round trip. Whenever an assumption does not hold, nothing of that attempt is
written and the two-round-trip path decides — so every decision is the same as without the assumption.
"""
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from orgs.errors import QuotaExceededError
from orgs.models import KeyMode, QuotaUsage, Role
from orgs.selectors import api_key_get_by_raw
from sms.errors import ProviderNotConfigured
from sms.models import Send, SendStatusChange
from sms.services import send_create
from sms.services import sends as sends_module
from tests.factories import ApiKeyFactory, ProviderAccountFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

TO = "+15551234567"
GUARD = sends_module._CHECKS_MISSED


@pytest.fixture(autouse=True)
def _pg():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")


@pytest.fixture
def account(org):
    org.send_rate_override = 10_000
    org.save(update_fields=["send_rate_override"])
    return ProviderAccountFactory(org=org, from_number="+15005550006")


@pytest.fixture
def key(org, account):
    """A live key read the way the API reads it: its org carries the route of the first enabled account."""
    raw = ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    loaded = api_key_get_by_raw(raw.raw_key)
    assert loaded.org.first_route == (account.provider, account.from_number)
    return loaded


def create(key, **kw):
    kw.setdefault("to", TO)
    kw.setdefault("body", "hello")
    with CaptureQueriesContext(connection) as queries:
        try:
            return send_create(org=key.org, api_key=key, **kw).send, queries
        except Exception as exc:  # noqa: BLE001 — returned for the test to assert on
            exc.queries = queries
            raise


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK"))]


def test_the_common_send_is_one_round_trip_that_verifies_its_assumptions(key, account):
    create(key, body="warm-up")  # the period's first reservation creates its quota rows
    send, queries = create(key)
    statements = _statements(queries)
    # One batch (a batch is logged as one query): the lock, the guard, the writes — no separate checks read.
    assert len(statements) == 1, statements
    assert statements[0].startswith("SELECT pg_advisory_xact_lock") and GUARD in statements[0]
    assert "INSERT INTO" in statements[0]
    assert (send.status, send.provider, send.from_number) == ("queued", account.provider, account.from_number)
    stored = Send.objects.get(pk=send.pk)
    assert (stored.status, stored.from_number, stored.dedupe_key) == ("queued", "+15005550006", send.dedupe_key)
    assert SendStatusChange.objects.filter(send=stored, status="queued").count() == 1
    assert AuditEntry.objects.filter(action="sms.send", resource_id=str(send.pk)).get().details["decision"] == "queued"
    assert sum(QuotaUsage.objects.filter(org=key.org).values_list("used", flat=True)) == 2


def test_a_route_changed_since_the_key_was_read_is_not_assumed(key, account):
    account.from_number = "+15005550009"
    account.save(update_fields=["from_number"])  # key.org.first_route still says +15005550006
    send, queries = create(key)
    assert sum(GUARD in q for q in _statements(queries)) == 1  # tried, missed, then decided by reading
    stored = Send.objects.get(pk=send.pk)
    assert (stored.status, stored.from_number) == ("queued", "+15005550009")
    assert Send.objects.count() == 1 and SendStatusChange.objects.count() == 1
    assert AuditEntry.objects.filter(action="sms.send").count() == 1
    assert sum(QuotaUsage.objects.filter(org=key.org).values_list("used", flat=True)) == 1


def test_an_account_disabled_since_the_key_was_read_is_412_and_nothing_is_stored(key, account):
    account.enabled = False
    account.save(update_fields=["enabled"])
    with pytest.raises(ProviderNotConfigured):
        create(key)
    assert not Send.objects.exists() and not SendStatusChange.objects.exists()
    assert not QuotaUsage.objects.filter(org=key.org, used__gt=0).exists()
    assert AuditEntry.objects.get(action="sms.send").details["decision"] == "provider_not_configured"


def test_a_suppressed_recipient_is_stored_failed_with_no_quota(key):
    SuppressionFactory(org=key.org, phone_number=TO)
    send, queries = create(key)
    assert any(GUARD in q for q in _statements(queries))
    stored = Send.objects.get(pk=send.pk)
    assert (stored.status, stored.error_code, stored.metadata.get("suppressed")) == ("failed", "suppressed", True)
    assert not QuotaUsage.objects.filter(org=key.org, used__gt=0).exists()
    assert Send.objects.count() == 1


def test_a_duplicate_in_the_window_is_stored_suppressed_with_no_quota(key):
    first, _ = create(key)
    second, queries = create(key)
    assert any(GUARD in q for q in _statements(queries))
    assert Send.objects.get(pk=second.pk).suppressed_reason == "recent_duplicate"
    assert Send.objects.get(pk=first.pk).status == "queued"
    assert sum(QuotaUsage.objects.filter(org=key.org).values_list("used", flat=True)) == 1


def test_suppression_is_still_decided_before_a_quota_of_zero(key):
    key.org.monthly_quota_override = 0
    key.org.save(update_fields=["monthly_quota_override"])
    SuppressionFactory(org=key.org, phone_number=TO)
    send, _ = create(key)
    assert Send.objects.get(pk=send.pk).status == "failed"


def test_an_exhausted_quota_is_still_429_with_nothing_stored(key):
    key.org.monthly_quota_override = 0
    key.org.save(update_fields=["monthly_quota_override"])
    with pytest.raises(QuotaExceededError):
        create(key)
    assert not Send.objects.exists()
    assert AuditEntry.objects.get(action="sms.send").details["decision"] == "quota_exceeded"


def test_a_capped_org_reads_its_checks_first(key):
    # The spend meter's read (under the org's spend lock) must follow the checks' lock: no assuming.
    key.org.monthly_spend_cap = Decimal("100.00")
    key.org.save(update_fields=["monthly_spend_cap"])
    send, queries = create(key)
    assert not any(GUARD in q for q in _statements(queries))
    assert Send.objects.get(pk=send.pk).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_a_missed_guard_keeps_the_connections_prepared_statements(org, account):
    """The guard's miss ends its transaction with a plain ROLLBACK (sendora_sms/db.py rollback_keeping_prepared):
    psycopg's rollback() would make the connection DEALLOCATE ALL, and the next sends plan every hot statement
    again. Outside a test transaction, as in production: the send's atomic block is the transaction."""
    raw = ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    key = api_key_get_by_raw(raw.raw_key)
    send_create(org=key.org, api_key=key, to=TO, body="warm-up")  # the period's quota rows
    first = send_create(org=key.org, api_key=key, to=TO, body="hello").send

    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            return cursor.fetchone()[0]

    before = prepared()
    assert before >= 3  # the lock, the guard, the writes (at least)
    duplicate = send_create(org=key.org, api_key=key, to=TO, body="hello").send  # the guard misses
    assert Send.objects.get(pk=duplicate.pk).suppressed_reason == "recent_duplicate"
    assert Send.objects.get(pk=first.pk).status == "queued"
    assert prepared() >= before
