"""AuditEntry: append-only. The ORM refuses update/delete here; on PostgreSQL a trigger refuses
them in SQL too (migration 0002)."""
from django.db import models


class AppendOnlyError(Exception):
    """Audit entries are never changed or deleted."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries are append-only.")

    def delete(self):
        raise AppendOnlyError("Audit entries are append-only.")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only.")


class Outcome:
    OK = "ok"
    REJECTED = "rejected"
    ERROR = "error"
    CHOICES = [(OK, "OK"), (REJECTED, "Rejected"), (ERROR, "Error")]


class ActorType:
    API_KEY = "api_key"
    USER = "user"
    SYSTEM = "system"
    PROVIDER = "provider"
    CHOICES = [(API_KEY, "API key"), (USER, "User"), (SYSTEM, "System"), (PROVIDER, "Provider webhook")]


class AuditEntry(models.Model):
    org = models.ForeignKey("orgs.Org", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+", db_index=False)  # covered by audit_org_created_idx
    actor_type = models.CharField(max_length=10, choices=ActorType.CHOICES)
    actor_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=32, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    payload_bytes = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.CHOICES, default=Outcome.OK)
    request_id = models.CharField(max_length=128, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # prod | test: the mode of the API key that acted; everything else (dashboard users, webhooks, the
    # system) acts in the live world. The audit-log API shows a key the entries of its own mode.
    mode = models.CharField(max_length=4, default="prod", db_default="prod")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        # Each serves a read: the org's log (API, dashboard), the API's and the dashboard's action filter,
        # the dashboard's search (actor id or resource id, any org) and its rare-value filters (partial:
        # only entries that are not routine API-key calls / not ok), and the all-orgs view (superusers).
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="audit_org_created_idx"),
            models.Index(fields=["org", "-created_at", "-id"], condition=models.Q(mode="test"),
                         name="audit_test_org_created_idx"),
            models.Index(fields=["org", "action", "-created_at"], name="audit_org_action_created_idx"),
            models.Index(fields=["actor_id", "-created_at"], name="audit_actor_created_idx"),
            models.Index(fields=["resource_id", "-created_at"], name="audit_resource_created_idx"),
            models.Index(fields=["org", "actor_type", "-created_at"], condition=~models.Q(actor_type="api_key"),
                         name="audit_org_actor_type_idx"),
            models.Index(fields=["org", "outcome", "-created_at"], condition=~models.Q(outcome="ok"),
                         name="audit_org_outcome_idx"),
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id} ({self.outcome})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only.")
