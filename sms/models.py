import uuid

from django.db import models
from django.db.models import Q

from sms.statuses import DispatchState, SendStatus


class Provider:
    TWILIO = "twilio"
    MESSAGEBIRD = "messagebird"
    SINCH = "sinch"
    SANDBOX = "sandbox"
    CHOICES = [(TWILIO, "Twilio"), (MESSAGEBIRD, "MessageBird"), (SINCH, "Sinch"), (SANDBOX, "Sandbox")]
    # Providers an org can configure an account for (the sandbox needs none).
    ACCOUNT_CHOICES = [(TWILIO, "Twilio"), (MESSAGEBIRD, "MessageBird"), (SINCH, "Sinch")]


class ProviderAccount(models.Model):
    """One of an org's provider accounts (at most one per provider). Secrets are only ever stored
    encrypted (sms/crypto.py): Twilio's auth token in `auth_token_encrypted`; the other providers'
    secrets as one encrypted JSON object in `secrets_encrypted`, bound to (org, provider).

    `account_sid`: Twilio's Account SID, Sinch's service plan id, blank for MessageBird.
    `from_number`: the sender (Twilio From, MessageBird originator, Sinch from)."""

    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="provider_accounts",
                            db_index=False)  # covered by provider_account_org_provider_unique
    provider = models.CharField(max_length=20, choices=Provider.ACCOUNT_CHOICES, default=Provider.TWILIO)
    account_sid = models.CharField(max_length=64, blank=True)
    auth_token_encrypted = models.TextField(editable=False, blank=True, default="")
    secrets_encrypted = models.TextField(editable=False, blank=True, default="")
    region = models.CharField(max_length=8, blank=True)
    from_number = models.CharField(max_length=20)
    enabled = models.BooleanField(default=True, db_default=True)
    priority = models.PositiveSmallIntegerField(default=1, db_default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "provider account"
        constraints = [models.UniqueConstraint(fields=["org", "provider"], name="provider_account_org_provider_unique")]

    def __str__(self) -> str:
        return f"{self.provider} {self.account_sid} ({self.org})".replace("  ", " ")

    def auth_token(self) -> str:
        """Twilio's auth token, decrypted on demand; never store or log the result."""
        from sms.crypto import decrypt

        return decrypt(self.auth_token_encrypted, org_id=self.org_id)

    def secrets(self) -> dict:
        """The account's secrets by name (decrypted on demand; never store or log the result)."""
        import json

        from sms.crypto import decrypt

        if self.provider == Provider.TWILIO:
            return {"auth_token": self.auth_token()} if self.auth_token_encrypted else {}
        if not self.secrets_encrypted:
            return {}
        return json.loads(decrypt(self.secrets_encrypted, org_id=self.org_id, context=f"provider:{self.provider}"))


class Category:
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"
    CHOICES = [(TRANSACTIONAL, "Transactional"), (MARKETING, "Marketing")]


class Send(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # db_index=False: every (org, …) index below leads with org_id, so Django's own FK index would only
    # cost every INSERT without serving a query (the same holds for the other FKs marked so here).
    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="sends", db_index=False)
    api_key = models.ForeignKey("orgs.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to = models.CharField(max_length=20)
    from_number = models.CharField(max_length=20, blank=True)
    body = models.TextField()
    # The body as submitted, when short links changed it (sms/links); blank: `body` is the submitted one.
    original_body = models.TextField(blank=True, default="")
    category = models.CharField(max_length=20, choices=Category.CHOICES, default=Category.TRANSACTIONAL)
    status = models.CharField(max_length=12, choices=SendStatus.CHOICES, default=SendStatus.QUEUED)
    suppressed_reason = models.CharField(max_length=32, blank=True)
    segments = models.PositiveSmallIntegerField(default=1)
    encoding = models.CharField(max_length=8, default="GSM-7")
    metadata = models.JSONField(default=dict, blank=True)
    provider = models.CharField(max_length=20, choices=Provider.CHOICES, default=Provider.TWILIO)
    provider_message_id = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=16, blank=True)
    error_message = models.TextField(blank=True)
    mode = models.CharField(max_length=4, default="test")
    # Estimated at acceptance (segments × unit price, sms/pricing), replaced by the provider's reported price.
    price = models.DecimalField(max_digits=12, decimal_places=5, default=0, db_default=0)
    price_unit = models.CharField(max_length=3, default="USD", db_default="USD")
    # Idempotency-Key header and a fingerprint of the request it came with.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # Set only on sends accepted as queued: sha256(to|body); the 60 s duplicate window looks it up.
    dedupe_key = models.CharField(max_length=64, null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Why a send was parked for an operator (ambiguous provider outcome), blank otherwise.
    review_reason = models.CharField(max_length=200, blank=True)
    # Where the send is in dispatch (sms.statuses.DispatchState); null once terminal or never queued.
    dispatch_state = models.CharField(max_length=20, null=True, blank=True, choices=DispatchState.CHOICES)
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Idempotency keys are per mode: a test key never answers with a live send (README "Test and live keys").
            models.UniqueConstraint(fields=["org", "mode", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="send_org_mode_idempotency_key_unique"),
        ]
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="send_org_created_idx"),
            models.Index(fields=["org", "to", "-created_at"], name="send_org_to_created_idx"),
            models.Index(fields=["org", "status", "-created_at"], name="send_org_status_created_idx"),
            # Dashboard filters (and the API's category filter) of one org's sends, newest first.
            models.Index(fields=["org", "category", "-created_at"], name="send_org_category_created_idx"),
            models.Index(fields=["org", "mode", "-created_at"], name="send_org_mode_created_idx"),
            # Dashboard, all orgs (superusers): newest first, filters applied along the walk.
            models.Index(fields=["-created_at", "-id"], name="send_created_idx"),
            models.Index(fields=["org", "dedupe_key", "-created_at"], condition=Q(dedupe_key__isnull=False),
                         name="send_dedupe_idx"),
            models.Index(fields=["provider", "provider_message_id"], name="send_provider_msg_idx"),
            # The sweeper, the review queue and the dashboard's dispatch filter (every non-null state).
            models.Index(fields=["dispatch_state", "updated_at"], condition=Q(dispatch_state__isnull=False),
                         name="send_dispatch_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} → {self.to} ({self.status})"


class DispatchHandoff(models.Model):
    """An accepted send waiting to be handed to the dispatch workers: the transactional outbox of the dispatch
    hand-off (issue #14). Written in the send's own transaction, so it exists exactly when the send does; a
    worker's dispatcher (sms/services/handoff.py) takes these rows in batches, publishes one dispatch task per
    row and deletes them in one transaction. No foreign key: a row whose send is gone publishes a task that
    finds nothing to claim."""

    id = models.BigAutoField(primary_key=True)
    send_id = models.UUIDField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"hand-off of {self.send_id}"


class SendStatusChange(models.Model):
    """The status timeline of a send: one row per applied change, plus `sending` rows that change
    nothing (each dispatch attempt, and each retry scheduled while the send stays `sending`)."""

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="status_changes",
                             db_index=False)  # covered by send_status_change_idx
    status = models.CharField(max_length=12, choices=SendStatus.CHOICES)
    source = models.CharField(max_length=16, help_text="api, worker, callback, sweeper")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["send", "created_at"], name="send_status_change_idx")]


class SendDailyCount(models.Model):
    """Counters maintained on the write path, so stats stay fast with millions of sends.

    Each (org, day, category, status) bucket is split over a few `shard` rows (chosen from the send
    id, sms/services/counters.py) so concurrent writers of one org don't serialise on one row lock;
    readers sum over shards (a single shard's count may even be negative)."""

    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="+",
                            db_index=False)  # covered by send_daily_count_mode_shard_unique
    day = models.DateField()
    category = models.CharField(max_length=20, choices=Category.CHOICES)
    status = models.CharField(max_length=12, choices=SendStatus.CHOICES)
    shard = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The send's mode (prod | test): stats are per mode.
    mode = models.CharField(max_length=4, default="prod", db_default="prod")
    count = models.BigIntegerField(default=0)
    segments = models.BigIntegerField(default=0)
    # Of `count`, the sends refused at acceptance because the recipient is suppressed (status failed,
    # never handed to a provider). Only ever on `failed` rows; such a send never changes status.
    refused = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "day", "category", "status", "shard", "mode"],
                                               name="send_daily_count_mode_shard_unique")]


class SuppressionReason:
    STOP_KEYWORD = "stop_keyword"
    CARRIER_OPT_OUT = "carrier_opt_out"
    USER_REQUEST = "user_request"
    MANUAL = "manual"
    IMPORT = "import"
    CHOICES = [(STOP_KEYWORD, "STOP keyword"), (CARRIER_OPT_OUT, "Carrier opt-out (21610)"),
               (USER_REQUEST, "User request"), (MANUAL, "Manual (admin)"), (IMPORT, "Imported")]
    # Suppressions the recipient created themselves, which their START lifts. Manual/imported ones stay.
    LIFTED_BY_START = frozenset({STOP_KEYWORD, CARRIER_OPT_OUT, USER_REQUEST})


class Suppression(models.Model):
    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="suppressions",
                            db_index=False)  # covered by suppression_org_phone_unique
    phone_number = models.CharField(max_length=20)
    reason = models.CharField(max_length=20, choices=SuppressionReason.CHOICES, default=SuppressionReason.MANUAL)
    source = models.CharField(max_length=16, blank=True, help_text="api, admin, webhook, import, dispatch")
    source_message_sid = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "phone_number"], name="suppression_org_phone_unique")]
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="suppression_org_created_idx"),
            # Dashboard: the reason filter of one org's list, and the all-orgs list (superusers).
            models.Index(fields=["org", "reason", "-created_at"], name="suppression_org_reason_idx"),
            models.Index(fields=["-created_at", "-id"], name="suppression_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} ({self.reason})"


class InboundMessage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="inbound_messages",
                            db_index=False)  # covered by inbound_org_sid_unique
    provider = models.CharField(max_length=20, default=Provider.TWILIO)
    message_sid = models.CharField(max_length=64)
    from_number = models.CharField(max_length=20)
    to_number = models.CharField(max_length=20, blank=True)
    body = models.TextField(blank=True)
    keyword = models.CharField(max_length=10, blank=True, help_text="opt_out, opt_in, help or blank")
    possible_opt_out = models.BooleanField(default=False)
    send = models.ForeignKey(Send, null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    # Providers without reply-in-response (MessageBird, Sinch): the confirmation / HELP text sent back as a
    # system message through the provider API, once per inbound message (sms/services/replies.py).
    reply_text = models.TextField(blank=True, default="", db_default="")
    reply_state = models.CharField(max_length=10, blank=True, default="", db_default="",
                                   help_text="'' (none), pending, sending, sent, failed, unknown")
    reply_provider_message_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "message_sid"], name="inbound_org_sid_unique")]
        indexes = [models.Index(fields=["org", "-created_at", "-id"], name="inbound_org_created_idx")]


class EventType:
    SENT = "sms.sent"
    DELIVERED = "sms.delivered"
    FAILED = "sms.failed"
    OPTED_OUT = "sms.opted_out"
    OPTED_IN = "sms.opted_in"
    REPLIED = "sms.replied"
    LINK_CLICKED = "sms.link_clicked"  # a send's first real click on one of its short links (sms/links)
    SPEND_THRESHOLD = "sms.spend_threshold"  # 50/80/100 % of a spend cap, once per period each (orgs/spend.py)
    CHOICES = [(t, t) for t in (SENT, DELIVERED, FAILED, OPTED_OUT, OPTED_IN, REPLIED, LINK_CLICKED, SPEND_THRESHOLD)]


class Event(models.Model):
    """Outbox: written in the same transaction as the change, published to the bus by the drain a worker's
    dispatcher kicks (sms/services/events.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="events",
                            db_index=False)  # covered by event_org_created_idx
    type = models.CharField(max_length=32, choices=EventType.CHOICES)
    # Covered by the partial unique (send, type) / (inbound, type) indexes: a lookup by send_id = X
    # implies send_id IS NOT NULL, so PostgreSQL uses them (cascade deletes and prefetches included).
    send = models.ForeignKey(Send, null=True, blank=True, on_delete=models.CASCADE, related_name="events",
                             db_index=False)
    inbound = models.ForeignKey(InboundMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="events",
                                db_index=False)
    data = models.JSONField(default=dict)
    # prod | test: the mode of the send it is about; events of inbound messages (real people) are prod.
    mode = models.CharField(max_length=4, default="prod", db_default="prod")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["send", "type"], condition=Q(send__isnull=False), name="event_send_type_unique"),
            models.UniqueConstraint(fields=["inbound", "type"], condition=Q(inbound__isnull=False),
                                    name="event_inbound_type_unique"),
        ]
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="event_org_created_idx"),
            models.Index(fields=["org", "-created_at", "-id"], condition=Q(mode="test"), name="event_test_org_created_idx"),
            models.Index(fields=["org", "type", "-created_at"], name="event_org_type_created_idx"),
            models.Index(fields=["created_at"], condition=Q(published_at__isnull=True), name="event_unpublished_idx"),
        ]


# Tenant webhooks (us → tenants) live in their own package; imported here so Django registers the models.
from sms.tenant_webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage  # noqa: E402,F401
from sms.links.models import AppRoute, Link, LinkClick, LinkSettings  # noqa: E402,F401
