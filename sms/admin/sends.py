"""Dashboard → SMS → Sends: read-only history with filters, search by phone, and each send's
status timeline and events. Sends are created only through the API (no add/edit/delete here)."""
from django.contrib import admin, messages

from audit.services import Actor, RequestContext
from sendora_sms.errors import SendoraError
from orgs.models import KeyMode
from sms.admin.paging import FixedChoicesFilter, LargeTableAdminMixin
from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin, ReadOnlyScopedInline
from sms.admin.search import PhoneSearchMixin
from sms.statuses import DispatchState
from sms.models import Event, SendStatusChange
from sms.services.review import send_resolve_parked
from sms.links.admin import LinkInline


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


class ReviewFilter(admin.SimpleListFilter):
    """By dispatch state (fixed choices; served by send_dispatch_state_idx): "parked" is the review queue."""

    title = "dispatch state"
    parameter_name = "dispatch_state"

    def lookups(self, request, model_admin):
        return DispatchState.CHOICES

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(dispatch_state=value) if value in DispatchState.ALL else queryset


ModeFilter = FixedChoicesFilter.make("mode", "mode", KeyMode.CHOICES, "mode__exact")  # fixed values, no SELECT DISTINCT


class SendAdmin(LargeTableAdminMixin, PhoneSearchMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    writable = False
    phone_field = "to"
    list_display = ["created_at", "to", "status", "category", "mode", "segments", "org"]
    list_filter = ["status", "category", ModeFilter, ("created_at", admin.DateFieldListFilter), ReviewFilter,
                   OrgFilter]
    list_select_related = ["org"]
    search_fields = ["=to"]
    search_help_text = "Search by the recipient's full phone number (any common format)."
    ordering = ["-created_at", "-id"]
    inlines = [SendStatusChangeInline, SendEventInline, LinkInline]
    actions = ["resend_parked", "fail_parked"]
    change_form_template = "admin/sms/send/change_form.html"
    fieldsets = [
        (None, {"fields": ["id", "org", "status", "suppressed_reason", "to", "from_number", "body", "original_body",
                           "category",
                           "segments", "encoding", "mode", "metadata"]}),
        ("Provider", {"fields": ["provider", "provider_message_id", "error_code", "error_message", "attempts",
                                 "review_reason", "price", "price_unit"]}),
        ("Times", {"fields": ["created_at", "updated_at", "sending_started_at", "sent_at", "delivered_at",
                              "failed_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def get_actions(self, request):
        """Only the parked-send resolutions, for the org's owners/admins (sends are otherwise read-only)."""
        if not self._may_review(request):
            return {}
        return {name: action for name, action in super().get_actions(request).items() if name in self.actions}

    def _may_review(self, request, obj=None):
        from sms.admin.scoping import admin_org_ids

        ids = admin_org_ids(request)
        return ids is None or (bool(ids) if obj is None else self._org_id_of(obj) in ids)

    def _resolve(self, request, queryset, resolution):
        done, refused = 0, []
        who = {"actor": Actor.user(request.user), "context": RequestContext.from_request(request)}
        for send in queryset:
            if not self._may_review(request, send):
                refused.append(str(send.pk))
                continue
            try:
                send_resolve_parked(send=send, resolution=resolution, **who)
                done += 1
            except SendoraError:
                refused.append(str(send.pk))
        self.message_user(request, f"{done} parked send(s) resolved ({resolution}).", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{len(refused)} send(s) were not parked for review and were left alone.",
                              messages.WARNING)

    @admin.action(description="Parked for review: re-send (the provider did not send it)")
    def resend_parked(self, request, queryset):
        self._resolve(request, queryset, "resend")

    @admin.action(description="Parked for review: mark failed and refund the quota")
    def fail_parked(self, request, queryset):
        self._resolve(request, queryset, "failed")
