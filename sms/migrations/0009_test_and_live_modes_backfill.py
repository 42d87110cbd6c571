"""Backfill for 0008_test_and_live_modes (issue #10 point 10).

- Event.mode from its send (events of test sends become `test`; inbound events stay `prod`).
- SendDailyCount: existing counters counted test sends together with live ones; the test sends' counts
  (count, segments, refused) are moved out of the live buckets into test buckets (shard 0; shards may be negative, readers sum
  them), computed from the test sends only.
"""
import datetime as dt

from django.db import migrations
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate


def backfill(apps, schema_editor):
    Send = apps.get_model("sms", "Send")
    Event = apps.get_model("sms", "Event")
    SendDailyCount = apps.get_model("sms", "SendDailyCount")
    Event.objects.filter(send__mode="test").update(mode="test")
    groups = (Send.objects.filter(mode="test")
              .annotate(bucket_day=TruncDate("created_at", tzinfo=dt.timezone.utc))
              .values("org_id", "bucket_day", "category", "status")
              .annotate(n=Count("id"), seg=Sum("segments"),
                        refused=Count("id", filter=Q(status="failed", error_code="suppressed"))).order_by())
    for group in groups:
        key = {"org_id": group["org_id"], "day": group["bucket_day"], "category": group["category"],
               "status": group["status"], "shard": 0}
        for mode, sign in (("prod", -1), ("test", 1)):
            row, _ = SendDailyCount.objects.get_or_create(**key, mode=mode, defaults={"count": 0, "segments": 0})
            SendDailyCount.objects.filter(pk=row.pk).update(count=F("count") + sign * group["n"],
                                                            segments=F("segments") + sign * (group["seg"] or 0),
                                                            refused=F("refused") + sign * group["refused"])


def unfill(apps, schema_editor):
    SendDailyCount = apps.get_model("sms", "SendDailyCount")
    for row in SendDailyCount.objects.filter(mode="test"):
        live, _ = SendDailyCount.objects.get_or_create(org_id=row.org_id, day=row.day, category=row.category,
                                                       status=row.status, shard=row.shard, mode="prod",
                                                       defaults={"count": 0, "segments": 0})
        SendDailyCount.objects.filter(pk=live.pk).update(count=F("count") + row.count,
                                                         segments=F("segments") + row.segments,
                                                         refused=F("refused") + row.refused)
        row.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0008_test_and_live_modes'),
    ]

    operations = [
        migrations.RunPython(backfill, unfill),
    ]
