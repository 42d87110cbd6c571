"""Dashboard → SMS → Webhook endpoints and Webhook deliveries (tenant webhooks).

Read-only pages (endpoints are created through the API, where the secret is shown once); an org's
owners/admins may send a test event, re-enable an endpoint, and resend deliveries. A disabled endpoint shows
why (410 Gone, 5 days of failures). Secrets are never rendered."""
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin, can_admin_org
from sms.tenant_webhooks import services
from sms.tenant_webhooks.models import WebhookAttempt, WebhookEndpoint


class WebhookEndpointAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    writable = False
    list_display = ["url", "org", "mode", "enabled", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["enabled", "mode", OrgFilter]
    list_select_related = ["org"]
    search_fields = ["url"]
    ordering = ["-created_at", "-id"]
    fields = ["org", "mode", "url", "events", "description", "enabled", "disabled_reason", "failing_since",
              "created_at", "recent_deliveries"]
    readonly_fields = fields
    actions = ["send_test_event", "re_enable"]

    def has_change_permission(self, request, obj=None):
        return False

    def _writable(self, request, obj) -> bool:
        return can_admin_org(request, self._org_id_of(obj))  # owners/admins of the endpoint's org

    @admin.display(description="Recent deliveries")
    def recent_deliveries(self, obj):
        attempts = obj.attempts.select_related("message").order_by("-created_at")[:20]
        if not attempts:
            return "None yet."
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (a.created_at, a.message.event_type, a.attempt, a.status_code or "—", f"{a.latency_ms} ms",
             a.error or a.response_body[:120]) for a in attempts))
        return format_html('<table id="webhook-deliveries"><tr><th>When</th><th>Event</th><th>Attempt</th>'
                           "<th>Status</th><th>Latency</th><th>Response / error</th></tr>{}</table>", rows)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Send a test event (webhook.test)")
    def send_test_event(self, request, queryset):
        sent = 0
        for endpoint in queryset:
            if self._writable(request, endpoint):
                services.webhook_test_send(endpoint=endpoint)
                sent += 1
        self.message_user(request, f"Sent a test event to {sent} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Re-enable the selected endpoints")
    def re_enable(self, request, queryset):
        done = 0
        for endpoint in queryset:
            if self._writable(request, endpoint):
                services.webhook_endpoint_update(endpoint=endpoint, enabled=True)
                done += 1
        self.message_user(request, f"Re-enabled {done} endpoint(s).", messages.SUCCESS)


class WebhookAttemptAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    org_lookup = "endpoint__org"
    writable = False
    list_display = ["created_at", "endpoint", "event_type", "attempt", "status_code", "latency_ms", "error"]
    list_filter = ["status_code"]
    list_select_related = ["endpoint", "message"]
    ordering = ["-created_at", "-id"]
    fields = ["endpoint", "webhook_id", "event_type", "attempt", "status_code", "latency_ms", "response_body",
              "error", "created_at"]
    readonly_fields = fields
    actions = ["resend"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Event")
    def event_type(self, obj):
        return obj.message.event_type

    @admin.display(description="webhook-id")
    def webhook_id(self, obj):
        return obj.message.webhook_id

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Resend the selected deliveries (same webhook-id)")
    def resend(self, request, queryset):
        done = 0
        for attempt in queryset.select_related("endpoint"):
            if can_admin_org(request, self._org_id_of(attempt)):
                services.webhook_message_resend(endpoint=attempt.endpoint, attempt_id=attempt.pk)
                done += 1
        self.message_user(request, f"Queued {done} resend(s).", messages.SUCCESS)


def register(site) -> None:
    site.register(WebhookEndpoint, WebhookEndpointAdmin)
    site.register(WebhookAttempt, WebhookAttemptAdmin)
