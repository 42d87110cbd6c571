"""Test and live keys are separate worlds (README "Test and live keys", issue #10 point 10).

- Send: Idempotency-Keys unique per (org, mode, key) (test-mode listings use send_org_mode_created_idx).
- Event: `mode` (the send's; inbound events are prod); a partial index for test-mode listings.
- SendDailyCount: `mode` in the bucket key.
The data backfill is 0009_test_and_live_modes_backfill (its own transaction: rows written there queue
deferred FK trigger events, after which PostgreSQL refuses ALTER TABLE in the same transaction).
"""

from django.db import migrations, models


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
        migrations.AddConstraint(
            model_name='send',
            constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('org', 'mode', 'idempotency_key'), name='send_org_mode_idempotency_key_unique'),
        ),
        migrations.AddConstraint(
            model_name='senddailycount',
            constraint=models.UniqueConstraint(fields=('org', 'day', 'category', 'status', 'shard', 'mode'), name='send_daily_count_mode_shard_unique'),
        ),
    ]
