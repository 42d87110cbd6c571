"""Dashboard → SMS → Sends: read-only history with filters, search by phone, and each send's
status timeline and events. Sends are created only through the API (no add/edit/delete here)."""
from django.contrib import admin

from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin, ReadOnlyScopedInline
from sms.admin.search import PhoneSearchMixin
from sms.models import Event, SendStatusChange


class SendStatusChangeInline(ReadOnlyScopedInline):
    model = SendStatusChange
    org_lookup = "send__org"
    fields = ["created_at", "status", "source", "detail"]
    verbose_name = "status change"
    verbose_name_plural = "Status timeline"
    ordering = ["created_at", "id"]


class SendEventInline(ReadOnlyScopedInline):
    model = Event
    fk_name = "send"
    fields = ["created_at", "type", "published_at"]
    verbose_name_plural = "Events"
    ordering = ["created_at", "id"]


class SendAdmin(PhoneSearchMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    writable = False
    phone_field = "to"
    list_display = ["created_at", "to", "status", "category", "mode", "segments", "org"]
    list_filter = ["status", "category", "mode", ("created_at", admin.DateFieldListFilter),
                   OrgFilter]
    list_select_related = ["org"]
    search_fields = ["to"]
    search_help_text = "Search by recipient phone number (any common format)."
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    inlines = [SendStatusChangeInline, SendEventInline]
    change_form_template = "admin/sms/send/change_form.html"
    fieldsets = [
        (None, {"fields": ["id", "org", "status", "suppressed_reason", "to", "from_number", "body", "category",
                           "segments", "encoding", "mode", "metadata"]}),
        ("Provider", {"fields": ["provider", "provider_message_id", "error_code", "error_message", "attempts",
                                 "review_reason"]}),
        ("Times", {"fields": ["created_at", "updated_at", "sending_started_at", "sent_at", "delivered_at",
                              "failed_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def get_actions(self, request):
        return {}
