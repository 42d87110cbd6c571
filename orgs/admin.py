"""Dashboard → Organisations: orgs (plan, quota and rate overrides, HELP / opt-out texts,
memberships) and API keys (create — the raw key is shown once —, revoke, last use).

Who may do what (see sms/admin/scoping.py for visibility):
- plan, quota and rate overrides, creating/deleting orgs and editing memberships: superusers only
  (they are the platform's billing and access decisions, not the tenant's);
- HELP / opt-out texts and the org name, creating and revoking API keys: the org's owners/admins;
- plain members: read-only.
"""
from django import forms
from django.contrib import admin, messages
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from audit.services import Actor, RequestContext
from orgs.models import ApiKey, KeyMode, Membership, Org, Role
from orgs.services import (
    LIMIT_FIELDS,
    api_key_create,
    api_key_revoke,
    org_create,
    org_limits_clean,
    org_limits_set,
    org_update,
)
from sendora_sms.admin_site import site
from sendora_sms.errors import SendoraError
from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin, ReadOnlyScopedInline, admin_orgs, visible_org_ids

PLATFORM_FIELDS = ["plan", "monthly_quota_override", "send_rate_override"]


def _who(request) -> dict:
    """actor/context for the services: the dashboard user and this request."""
    return {"actor": Actor.user(request.user), "context": RequestContext.from_request(request)}


class MembershipInline(OrgScopedAdminMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = []

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or bool(visible_org_ids(request))

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class ApiKeyInline(ReadOnlyScopedInline):
    model = ApiKey
    fields = ["prefix", "name", "role", "mode", "publishable", "created_at", "last_used_at", "revoked_at"]
    verbose_name_plural = "API keys (create and revoke them under Organisations → API keys)"
    ordering = ["-created_at"]


class OrgForm(forms.ModelForm):
    """The org form; "Cost and countries" fields are validated by orgs.services.org_limits_clean."""

    allowed_countries = forms.CharField(
        required=False, help_text="Comma-separated ISO 3166-1 alpha-2 codes, e.g. US, CA. Empty: the home country only.")

    class Meta:
        model = Org
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk and "allowed_countries" in self.fields:
            self.initial["allowed_countries"] = ", ".join(self.instance.allowed_countries or [])
        if "home_country" in self.fields:
            self.fields["home_country"].required = False

    def clean_home_country(self):
        return (self.cleaned_data.get("home_country") or self.instance.home_country or "US").strip().upper()

    def clean_country_spend_caps(self):
        return self.cleaned_data.get("country_spend_caps") or {}

    def clean_price_overrides(self):
        return self.cleaned_data.get("price_overrides") or {}

    def clean_allowed_countries(self):
        raw = self.cleaned_data.get("allowed_countries") or ""
        return [code.strip().upper() for code in raw.replace(";", ",").split(",") if code.strip()]

    def clean(self):
        data = super().clean()
        kwargs = {}
        for name, key in (("allowed_countries", "countries"), ("home_country", "home_country"),
                          ("monthly_spend_cap", "monthly_spend_cap"), ("country_spend_caps", "country_caps"),
                          ("pumping_limit", "pumping_limit"), ("price_overrides", "price_overrides")):
            if name in self.fields and name in data:
                value = data[name]
                if name in ("country_spend_caps", "price_overrides"):
                    value = value or {}
                    if not isinstance(value, dict):
                        self.add_error(name, 'Enter a JSON object, e.g. {"GB": "20.00"}.')
                        continue
                kwargs[key] = value
        try:
            org_limits_clean(**kwargs)
        except SendoraError as exc:
            self.add_error(None, exc.message)
        return data


class OrgAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    form = OrgForm
    org_lookup = ""  # the model is Org itself
    list_display = ["name", "plan", "monthly_quota", "send_rate", "created_at", "stats_link"]
    list_filter = ["plan"]
    search_fields = ["name", "=id"]
    inlines = [MembershipInline, ApiKeyInline]
    fieldsets = [
        (None, {"fields": ["name", "id", "created_at"]}),
        ("Plan and limits", {"fields": PLATFORM_FIELDS,
                             "description": "Blank overrides use the plan's defaults."}),
        ("Compliance replies", {"fields": ["help_text", "opt_out_text", "opt_out_confirmation_enabled"]}),
        ("Cost and countries", {"fields": list(LIMIT_FIELDS),
                                "description": "Where the org may send, what it may spend (USD, calendar month "
                                               "UTC) and its SMS-pumping limit. Changes are audited. "
                                               "See the org's Cost page for spend and pumping trips."}),
    ]
    change_form_template = "admin/orgs/org/change_form.html"

    @admin.display(description="Stats")
    def stats_link(self, obj):
        return format_html('<a href="{}">Stats</a>', reverse("admin:sms_stats", args=[obj.pk]))

    @admin.display(description="Messages / month")
    def monthly_quota(self, obj):
        return obj.monthly_quota

    @admin.display(description="Sends / second")
    def send_rate(self, obj):
        return obj.send_rate

    def get_readonly_fields(self, request, obj=None):
        readonly = ["id", "created_at"]
        if not request.user.is_superuser:
            readonly += PLATFORM_FIELDS
        return readonly

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # add: the id and creation time do not exist yet
            return [(None, {"fields": ["name"]}), *self.fieldsets[1:]]
        return self.fieldsets

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if not change:
            created = org_create(name=obj.name, plan=obj.plan, monthly_quota=obj.monthly_quota_override,
                                 send_rate=obj.send_rate_override, help_text=obj.help_text,
                                 opt_out_text=obj.opt_out_text,
                                 opt_out_confirmation_enabled=obj.opt_out_confirmation_enabled, **_who(request))
            obj.pk, obj.created_at = created.pk, created.created_at
            obj._state.adding = False
            obj._state.db = created._state.db
            limits = [f for f in form.changed_data if f in LIMIT_FIELDS]
            if limits:  # cost and countries typed on the add form: applied (and audited) like an edit
                names = {"allowed_countries": "countries", "country_spend_caps": "country_caps"}
                org_limits_set(org=created, merge_country_caps=False,
                               **{names.get(f, f): getattr(obj, f) for f in limits}, **_who(request))
            return
        limits = [f for f in form.changed_data if f in LIMIT_FIELDS]
        if limits:
            names = {"allowed_countries": "countries", "country_spend_caps": "country_caps"}
            org_limits_set(org=Org.objects.get(pk=obj.pk), merge_country_caps=False,
                           **{names.get(f, f): getattr(obj, f) for f in limits}, **_who(request))
        changed = [f for f in form.changed_data if f in {f.name for f in Org._meta.fields} and f not in LIMIT_FIELDS]
        if changed:
            org = Org.objects.get(pk=obj.pk)
            org_update(org=org, changes={f: getattr(obj, f) for f in changed}, **_who(request))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_create_key"] = obj is not None and ApiKeyAdmin.can_create_for(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


class ApiKeyCreateForm(forms.Form):
    org = forms.ModelChoiceField(queryset=None)
    name = forms.CharField(max_length=100, required=False, help_text="What the key is for, e.g. “billing service”.")
    role = forms.ChoiceField(choices=Role.KEY_CHOICES, initial=Role.MEMBER)
    mode = forms.ChoiceField(choices=KeyMode.CHOICES, initial=KeyMode.TEST)
    publishable = forms.BooleanField(required=False, help_text="Publishable keys (pk_…) may call no SMS endpoint.")

    def __init__(self, *args, orgs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["org"].queryset = orgs


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ApiKeyAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    list_display = ["prefix_display", "name", "org", "role", "mode", "publishable", "created_at", "last_used_at",
                    "revoked_at"]
    list_filter = [RevokedFilter, "role", "mode", OrgFilter]
    list_select_related = ["org"]
    search_fields = ["prefix", "name"]
    actions = ["revoke_keys"]
    fields = ["id", "org", "name", "prefix", "role", "mode", "publishable", "created_at", "last_used_at",
              "revoked_at"]

    @admin.display(description="Key", ordering="prefix")
    def prefix_display(self, obj):
        return f"{obj.prefix}…"

    @staticmethod
    def can_create_for(request, org) -> bool:
        return admin_orgs(request).filter(pk=org.pk).exists()

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_change_permission(self, request, obj=None):
        return False  # keys are created and revoked, never edited

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays for the audit trail

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._may_write(request):
            actions.pop("revoke_keys", None)
        return actions

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        revoked = 0
        for key in queryset.select_related("org"):
            if not self._may_write(request, key) or key.revoked_at is not None:
                continue
            api_key_revoke(api_key=key, **_who(request))
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)

    def add_view(self, request, form_url="", extra_context=None):
        """Create a key through api_key_create and show the raw key once, on this response only."""
        if not self.has_add_permission(request):
            raise Http404("No org you may change.")
        orgs = admin_orgs(request)
        initial = {"org": request.GET.get("org")} if request.GET.get("org") else None
        form = ApiKeyCreateForm(request.POST or None, orgs=orgs, initial=initial)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
                   "title": "Create API key", "raw_key": None}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                key, raw = api_key_create(org=data["org"], role=data["role"], mode=data["mode"],
                                          publishable=data["publishable"], name=data["name"], **_who(request))
            except SendoraError as exc:
                form.add_error(None, exc.message)
            else:
                context.update({"raw_key": raw, "key": key, "title": "API key created"})
        response = TemplateResponse(request, "admin/orgs/apikey/create.html", context)
        response["Cache-Control"] = "no-store"
        return response


site.register(Org, OrgAdmin)
site.register(ApiKey, ApiKeyAdmin)
