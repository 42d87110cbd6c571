"""Tenant webhook endpoints, messages (one per event × endpoint) and delivery attempts."""
import uuid

from django.db import models
from django.db.models import Q


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="webhook_endpoints",
                            db_index=False)  # covered by whendpoint_org_mode_idx
    # Live events go to endpoints created with a live key, test events to those created with a test key.
    mode = models.CharField(max_length=4, choices=[("prod", "Live (prod)"), ("test", "Sandbox (test)")])
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list, help_text='Event types, or ["*"] for all.')
    description = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    secret_ciphertext = models.TextField(help_text="whsec_… encrypted with AES-256-GCM (sms.crypto).")
    previous_secret_ciphertext = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="First failed attempt since the last success.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["org", "mode", "-created_at"], name="whendpoint_org_mode_idx")]

    def __str__(self) -> str:
        return self.url


class WebhookMessageStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    CHOICES = [(PENDING, "Pending"), (DELIVERED, "Delivered"), (FAILED, "Failed")]


class WebhookMessage(models.Model):
    """One event for one endpoint. Its id is the `webhook-id` header: the same on every retry and resend."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    event = models.ForeignKey("sms.Event", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="webhook_messages", help_text="Null for a webhook.test event.")
    event_id_public = models.UUIDField(help_text="The event object's id (the test event's own id for webhook.test).")
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(help_text="The event object delivered as the body.")
    status = models.CharField(max_length=10, choices=WebhookMessageStatus.CHOICES, default=WebhookMessageStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    requeued_at = models.DateTimeField(null=True, blank=True,
                                       help_text="When the sweeper last re-enqueued it (its backoff: services.py).")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], condition=Q(event__isnull=False),
                                               name="whmessage_endpoint_event_unique")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="whmessage_due_idx"),
            models.Index(fields=["created_at"], name="whmessage_created_idx"),
        ]

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class WebhookAttempt(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="delivery_attempts")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True, help_text="The first 1 KB of the response.")
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "-created_at", "-id"], name="whattempt_endpoint_idx")]
