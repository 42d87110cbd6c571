"""The send's checks (sms/services/sends.py _checks): on PostgreSQL the advisory lock rides in the account
check's statement (issue #14) — it is still taken whether or not the org has an account, and held until
the transaction ends; the duplicate lookup still runs after it."""
import pytest
from django.db import connection, transaction

from sms.services.sends import _checks
from tests.factories import ProviderAccountFactory, SuppressionFactory

pytestmark = pytest.mark.django_db


def _advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def _pg():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")


def test_without_an_account_the_check_is_none_and_the_lock_is_still_taken(org):
    with transaction.atomic():
        before = _advisory_locks()
        assert _checks(org=org, to="+15551234567", dedupe_key="k-none") is None
        assert _advisory_locks() == before + 1


def test_with_an_account_the_check_reads_provider_sender_and_suppression(org):
    account = ProviderAccountFactory(org=org)
    SuppressionFactory(org=org, phone_number="+15550000001")
    with transaction.atomic():
        before = _advisory_locks()
        plain = _checks(org=org, to="+15551234567", dedupe_key="k-1")
        suppressed = _checks(org=org, to="+15550000001", dedupe_key="k-2")
        assert _advisory_locks() == before + 2
    assert (plain.provider, plain.from_number, plain.recipient_suppressed, plain.duplicate_of) == (
        account.provider, account.from_number, False, None)
    assert suppressed.recipient_suppressed is True
