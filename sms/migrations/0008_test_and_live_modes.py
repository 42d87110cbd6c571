"""Test and live keys are separate worlds (README "Test and live keys", issue #10 point 10).

- Send: Idempotency-Keys unique per (org, mode, key); a small partial index for test-mode listings.
- Event: `mode` (the send's; inbound events are prod), backfilled from the sends; a partial index.
- SendDailyCount: `mode` in the bucket key. Existing counters counted test sends together with live
  ones: the test sends' counts are moved out of the live buckets into test buckets (shard 0; shards
  may be negative, readers sum them), computed from the test sends only.
"""
import datetime as dt

from django.db import migrations, models
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate


def backfill(apps, schema_editor):
    Send = apps.get_model("sms", "Send")
    Event = apps.get_model("sms", "Event")
    SendDailyCount = apps.get_model("sms", "SendDailyCount")
    Event.objects.filter(send__mode="test").update(mode="test")
    groups = (Send.objects.filter(mode="test")
              .annotate(bucket_day=TruncDate("created_at", tzinfo=dt.timezone.utc))
              .values("org_id", "bucket_day", "category", "status")
              .annotate(n=Count("id"), seg=Sum("segments")).order_by())
    for group in groups:
        key = {"org_id": group["org_id"], "day": group["bucket_day"], "category": group["category"],
               "status": group["status"], "shard": 0}
        for mode, sign in (("prod", -1), ("test", 1)):
            row, _ = SendDailyCount.objects.get_or_create(**key, mode=mode, defaults={"count": 0, "segments": 0})
            SendDailyCount.objects.filter(pk=row.pk).update(count=F("count") + sign * group["n"],
                                                            segments=F("segments") + sign * (group["seg"] or 0))


def unfill(apps, schema_editor):
    SendDailyCount = apps.get_model("sms", "SendDailyCount")
    for row in SendDailyCount.objects.filter(mode="test"):
        live, _ = SendDailyCount.objects.get_or_create(org_id=row.org_id, day=row.day, category=row.category,
                                                       status=row.status, shard=row.shard, mode="prod",
                                                       defaults={"count": 0, "segments": 0})
        SendDailyCount.objects.filter(pk=live.pk).update(count=F("count") + row.count,
                                                         segments=F("segments") + row.segments)
        row.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0007_webhook_endpoint_fk_index'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='send',
            name='send_org_idempotency_key_unique',
        ),
        migrations.RemoveConstraint(
            model_name='senddailycount',
            name='send_daily_count_shard_unique',
        ),
        migrations.AddField(
            model_name='event',
            name='mode',
            field=models.CharField(db_default='prod', default='prod', max_length=4),
        ),
        migrations.AddField(
            model_name='senddailycount',
            name='mode',
            field=models.CharField(db_default='prod', default='prod', max_length=4),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('mode', 'test')), fields=['org', '-created_at', '-id'], name='event_test_org_created_idx'),
        ),
        migrations.AddIndex(
            model_name='send',
            index=models.Index(condition=models.Q(('mode', 'test')), fields=['org', '-created_at', '-id'], name='send_test_org_created_idx'),
        ),
        migrations.RunPython(backfill, unfill),
        migrations.AddConstraint(
            model_name='send',
            constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('org', 'mode', 'idempotency_key'), name='send_org_mode_idempotency_key_unique'),
        ),
        migrations.AddConstraint(
            model_name='senddailycount',
            constraint=models.UniqueConstraint(fields=('org', 'day', 'category', 'status', 'shard', 'mode'), name='send_daily_count_mode_shard_unique'),
        ),
    ]
