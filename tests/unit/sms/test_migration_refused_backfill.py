"""sms 0005: SendDailyCount.refused is backfilled from the sends already stored — a send refused because its
recipient was suppressed counts in its own bucket's `refused`; nothing else does."""
import datetime as dt
import uuid

import pytest

from tests.helpers.migrations import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("sms", "0004_send_dispatch_state")]
AFTER = [("sms", "0005_send_daily_count_refused")]


def test_backfill_counts_only_suppression_refused_sends():
    apps = migrate(BEFORE)
    try:
        Org = apps.get_model("orgs", "Org")
        Send = apps.get_model("sms", "Send")
        SendDailyCount = apps.get_model("sms", "SendDailyCount")
        org = Org.objects.create(name="Backfill org")
        day = dt.date(2026, 3, 4)
        created = dt.datetime(2026, 3, 4, 12, tzinfo=dt.timezone.utc)
        ids = [uuid.uuid4() for _ in range(3)]
        specs = [(ids[0], "failed", "suppressed"), (ids[1], "failed", "30003"), (ids[2], "delivered", "")]
        for send_id, status, code in specs:
            Send.objects.create(id=send_id, org=org, to="+15550001111", body="x", status=status, error_code=code)
            SendDailyCount.objects.update_or_create(
                org=org, day=day, category="transactional", status=status, shard=send_id.int % 8,
                defaults={"count": 1, "segments": 1})
        Send.objects.update(created_at=created)
    finally:
        apps = migrate(AFTER)
    try:
        SendDailyCount = apps.get_model("sms", "SendDailyCount")
        refused = {(row.status, row.shard): row.refused for row in SendDailyCount.objects.all()}
        assert refused[("failed", ids[0].int % 8)] == 1
        assert sum(refused.values()) == 1
    finally:
        migrate_to_latest()
