"""Audit entries are append-only: the ORM refuses changes, and on PostgreSQL a trigger refuses them in SQL."""
import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AppendOnlyError, AuditEntry
from audit.services import Actor, RequestContext, audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(org):
    return audit_record(org=org, actor=Actor.system("tests"), action="test.action", resource_type="thing",
                        resource_id="42", details={"n": 1}, context=RequestContext(request_id="req_1"))


def test_audit_record_appends_an_entry(entry, org):
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.org_id, stored.actor_type, stored.actor_id, stored.action, stored.resource_id,
            stored.request_id, stored.details) == (org.pk, "system", "tests", "test.action", "42", "req_1", {"n": 1})


def test_save_of_an_existing_entry_is_refused(entry):
    entry.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.action"


def test_instance_delete_is_refused(entry):
    with pytest.raises(AppendOnlyError):
        entry.delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_queryset_update_and_delete_are_refused(entry):
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(action="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.bulk_update([entry], ["action"])
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.action"


def test_deleting_the_org_keeps_its_audit_trail(entry, org):
    org_id = org.pk
    org.delete()
    assert AuditEntry.objects.filter(pk=entry.pk, org_id=org_id).exists()


requires_pg = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL-only")


@requires_pg
@pytest.mark.parametrize("sql", [
    "UPDATE audit_auditentry SET action = 'rewritten' WHERE id = %s",
    "DELETE FROM audit_auditentry WHERE id = %s",
])
def test_raw_sql_update_and_delete_are_refused_by_the_trigger(entry, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.action"


@requires_pg
def test_raw_sql_insert_is_still_allowed(org):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditentry (org_id, actor_type, actor_id, action, resource_type, resource_id,"
            " payload_bytes, outcome, request_id, details, created_at)"
            " VALUES (%s, 'system', 'sql', 'raw.insert', '', '', 0, 'ok', '', '{}', now())", [org.pk])
    assert AuditEntry.objects.filter(action="raw.insert").count() == 1
