"""sms 0009: events of test sends become `test`, and the test sends' counts (count, segments, refused) move out
of the live stats buckets into test buckets — the live figures then count live sends only (issue #10 point 10)."""
import datetime as dt
import uuid

import pytest
from django.db.models import Sum

from tests.helpers.migrations import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("sms", "0008_test_and_live_modes")]
AFTER = [("sms", "0009_test_and_live_modes_backfill")]


def test_backfill_moves_test_sends_out_of_the_live_world():
    apps = migrate(BEFORE)
    try:
        Org = apps.get_model("orgs", "Org")
        Send = apps.get_model("sms", "Send")
        Event = apps.get_model("sms", "Event")
        SendDailyCount = apps.get_model("sms", "SendDailyCount")
        org = Org.objects.create(name="Mode backfill org")
        day = dt.date(2026, 3, 4)
        specs = [("prod", "delivered", ""), ("test", "delivered", ""), ("test", "failed", "suppressed")]
        sends = []
        for mode, status, code in specs:
            send = Send.objects.create(id=uuid.uuid4(), org=org, to="+15550001111", body="x", status=status,
                                       error_code=code, mode=mode, segments=2)
            sends.append(send)
            row, _ = SendDailyCount.objects.get_or_create(org=org, day=day, category="transactional", status=status,
                                                          shard=send.id.int % 8, mode="prod",
                                                          defaults={"count": 0, "segments": 0, "refused": 0})
            SendDailyCount.objects.filter(pk=row.pk).update(count=row.count + 1, segments=row.segments + 2,
                                                            refused=row.refused + (1 if code else 0))
            Event.objects.create(id=uuid.uuid4(), org=org, type="sms.delivered", send=send, data={})
        Send.objects.update(created_at=dt.datetime(2026, 3, 4, 12, tzinfo=dt.timezone.utc))
    finally:
        apps = migrate(AFTER)
    try:
        SendDailyCount = apps.get_model("sms", "SendDailyCount")
        Event = apps.get_model("sms", "Event")

        def totals(mode):
            return SendDailyCount.objects.filter(mode=mode).aggregate(n=Sum("count"), seg=Sum("segments"),
                                                                      refused=Sum("refused"))

        assert totals("prod") == {"n": 1, "seg": 2, "refused": 0}
        assert totals("test") == {"n": 2, "seg": 4, "refused": 1}
        assert sorted(Event.objects.values_list("mode", flat=True)) == ["prod", "test", "test"]
    finally:
        migrate_to_latest()
