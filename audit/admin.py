"""Dashboard → Audit log: read-only. Entries are append-only (the model and a DB trigger refuse
changes); here nothing can be added, changed or deleted. Org owners/admins see their orgs' entries."""
from django.contrib import admin

from audit.models import AuditEntry
from sendora_sms.admin_site import site
from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin


class AuditEntryAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    writable = False
    view_requires_org_admin = True  # like GET /audit-log: admin role only
    list_display = ["created_at", "action", "outcome", "actor_type", "actor_id", "resource_type", "resource_id",
                    "org"]
    list_filter = ["action", "actor_type", "outcome", ("created_at", admin.DateFieldListFilter), OrgFilter]
    list_select_related = ["org"]
    search_fields = ["=actor_id", "=resource_id"]
    search_help_text = "Search by actor id or resource id (exact)."
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def get_actions(self, request):
        return {}


site.register(AuditEntry, AuditEntryAdmin)
