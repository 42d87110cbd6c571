"""AuditEntry.mode (issue #10 point 10): the audit-log API shows a key its own mode's entries.

Backfill: entries written by a test key (actor api_key whose key is mode test) become `test`. The
append-only trigger is disabled for this one statement only (it sets the new column; no recorded
fact changes) and re-enabled in the same transaction.
"""

from django.db import migrations, models


def backfill(apps, schema_editor):
    ApiKey = apps.get_model("orgs", "ApiKey")
    test_keys = [str(pk) for pk in ApiKey.objects.filter(mode="test").values_list("pk", flat=True)]
    if not test_keys:
        return
    table = "audit_auditentry"
    postgres = schema_editor.connection.vendor == "postgresql"
    with schema_editor.connection.cursor() as cursor:
        if postgres:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER audit_entry_append_only")
        for start in range(0, len(test_keys), 1000):
            chunk = test_keys[start:start + 1000]
            cursor.execute(f"UPDATE {table} SET mode = 'test' WHERE actor_type = 'api_key' AND actor_id IN "
                           f"({', '.join(['%s'] * len(chunk))})", chunk)
        if postgres:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER audit_entry_append_only")


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_dashboard_indexes'),
        ('orgs', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditentry',
            name='mode',
            field=models.CharField(db_default='prod', default='prod', max_length=4),
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(condition=models.Q(('mode', 'test')), fields=['org', '-created_at', '-id'], name='audit_test_org_created_idx'),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
