"""Dashboard → Audit log: read-only. Entries are append-only (the model and a DB trigger refuse
changes); here nothing can be added, changed or deleted. Org owners/admins see their orgs' entries."""
from django.contrib import admin
from django.db.models import Q

from audit.models import AuditEntry
from sendora_sms.admin_site import site
from sms.admin.paging import FixedChoicesFilter, LargeTableAdminMixin
from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin

# Every action the services record (tests/admin/test_dashboard_scale.py checks the list against the code).
# A fixed list: the filter never runs SELECT DISTINCT action over the whole log.
ACTIONS = [
    "api_key.create", "api_key.revoke", "encryption_key.rotate", "org.create", "org.update", "org.limits_update",
    "provider_account.set", "send.review_failed", "send.review_resend", "sms.send", "suppression.create",
    "suppression.delete", "suppression.import",
]
ActionFilter = FixedChoicesFilter.make("action", "action", [(a, a) for a in ACTIONS])


class AuditEntryAdmin(LargeTableAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    writable = False
    view_requires_org_admin = True  # like GET /audit-log: admin role only
    list_display = ["created_at", "action", "outcome", "actor_type", "actor_id", "resource_type", "resource_id",
                    "org"]
    list_filter = [ActionFilter, "actor_type", "outcome", ("created_at", admin.DateFieldListFilter), OrgFilter]
    list_select_related = ["org"]
    search_fields = ["=actor_id", "=resource_id"]
    search_help_text = "Search by actor id or resource id (exact)."
    ordering = ["-created_at", "-id"]

    def get_search_results(self, request, queryset, search_term):
        """Exact, case-sensitive match (Django's "=" search is iexact: UPPER(…), which no index serves),
        through audit_actor_created_idx / audit_resource_created_idx."""
        term = (search_term or "").strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(actor_id=term) | Q(resource_id=term)), False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def get_actions(self, request):
        return {}


site.register(AuditEntry, AuditEntryAdmin)
