"""SendDailyCount.refused: of a day's `failed` sends, those refused at acceptance because the recipient is
suppressed (never handed to a provider). The delivery rate leaves them out. Existing counters are
backfilled from the sends (such a send never changes status, so the count is exact)."""
import uuid

from django.db import migrations, models
from django.db.models import F

SHARDS = 8  # sms.services.counters.COUNTER_SHARDS at the time of this migration


def backfill(apps, schema_editor):
    Send = apps.get_model("sms", "Send")
    SendDailyCount = apps.get_model("sms", "SendDailyCount")
    buckets: dict = {}
    refused = (Send.objects.filter(status="failed", error_code="suppressed")
               .values_list("org_id", "created_at", "category", "id"))
    for org_id, created_at, category, send_id in refused.iterator(chunk_size=5000):
        key = (org_id, created_at.date(), category, uuid.UUID(str(send_id)).int % SHARDS)
        buckets[key] = buckets.get(key, 0) + 1
    for (org_id, day, category, shard), n in buckets.items():
        SendDailyCount.objects.filter(org_id=org_id, day=day, category=category, status="failed",
                                      shard=shard).update(refused=F("refused") + n)


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0004_send_dispatch_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='senddailycount',
            name='refused',
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
