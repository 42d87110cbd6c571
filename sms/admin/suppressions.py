"""Dashboard → SMS → Suppressions: search, filter, add, remove, CSV import and export.

Every write goes through sms.services.suppressions (normalises the number, audits); this module
only turns forms into service calls and service errors into form errors or messages.
"""
import io

from django import forms
from django.contrib import admin, messages
from django.http import Http404, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from audit.services import Actor, RequestContext
from sendora_sms.errors import SendoraError
from sms.admin.paging import LargeTableAdminMixin
from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin, admin_orgs, is_uuid, visible_orgs
from sms.admin.search import PhoneSearchMixin
from sms.models import Suppression, SuppressionReason
from sms.services.suppressions import (
    suppression_create,
    suppression_delete,
    suppressions_export,
    suppressions_import,
)

ADMIN_REASONS = [(SuppressionReason.MANUAL, "Manual (admin)"), (SuppressionReason.USER_REQUEST, "User request")]
IMPORT_REASONS = [(SuppressionReason.IMPORT, "Imported"), *ADMIN_REASONS]
MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _actor_context(request):
    return Actor.user(request.user), RequestContext.from_request(request)


class SuppressionAddForm(forms.ModelForm):
    """Adds through suppression_create (inside validation, so its refusals become form errors)."""

    reason = forms.ChoiceField(choices=ADMIN_REASONS, initial=SuppressionReason.MANUAL)
    request = None  # set by SuppressionAdmin.get_form

    class Meta:
        model = Suppression
        fields = ["org", "phone_number", "reason"]
        help_texts = {"phone_number": "Any common format; stored in E.164 (+15551234567)."}

    def validate_unique(self):
        """The service decides duplicates on the normalised number (409 already_suppressed)."""

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        actor, context = _actor_context(self.request)
        try:
            self.saved = suppression_create(org=self.cleaned_data["org"], phone_number=self.cleaned_data["phone_number"],
                                            reason=self.cleaned_data["reason"], source="admin", actor=actor,
                                            context=context)
        except SendoraError as exc:
            self.add_error("phone_number", exc.message)

    def save(self, commit=True):
        return self.saved

    def save_m2m(self):
        pass


class SuppressionImportForm(forms.Form):
    org = forms.ModelChoiceField(queryset=None, label="Org")
    file = forms.FileField(label="CSV file",
                           help_text="One phone number per row (a header row such as 'phone_number' is fine).")
    reason = forms.ChoiceField(choices=IMPORT_REASONS, initial=SuppressionReason.IMPORT)

    def __init__(self, *args, orgs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["org"].queryset = orgs
        if orgs.count() == 1:
            self.fields["org"].initial = orgs.first()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
        raw = upload.read()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None


class SuppressionAdmin(LargeTableAdminMixin, PhoneSearchMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    form = SuppressionAddForm
    list_display = ["phone_number", "reason", "source", "created_at", "org"]
    list_filter = ["reason", ("created_at", admin.DateFieldListFilter), OrgFilter]
    list_select_related = ["org"]
    search_fields = ["=phone_number"]
    search_help_text = "Search by the full phone number (any common format)."
    ordering = ["-created_at", "-id"]
    actions = ["delete_selected_through_service", "export_csv_action"]
    change_list_template = "admin/sms/suppression/change_list.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["org", "phone_number", "reason"]
        return ["org", "phone_number", "reason", "source", "source_message_sid", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["org", "phone_number", "reason", "source", "source_message_sid", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False  # a suppression is added or removed, never edited

    def save_model(self, request, obj, form, change):
        """Nothing to do: the form saved through suppression_create."""

    def delete_model(self, request, obj):
        actor, context = _actor_context(request)
        try:
            suppression_delete(org=obj.org, phone_number=obj.phone_number, actor=actor, context=context)
        except SendoraError as exc:  # removed meanwhile (404 not_suppressed)
            self.message_user(request, f"{obj.phone_number}: {exc.message}", messages.WARNING)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("org"):
            self.delete_model(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # replaced: the service must do (and audit) each removal
        if not self.has_delete_permission(request):
            actions.pop("delete_selected_through_service", None)
        return actions

    @admin.action(description="Remove selected numbers from the suppression list")
    def delete_selected_through_service(self, request, queryset):
        allowed = [obj for obj in queryset.select_related("org") if self.has_delete_permission(request, obj)]
        self.delete_queryset(request, Suppression.objects.filter(pk__in=[o.pk for o in allowed]))
        self.message_user(request, f"Removed {len(allowed)} number(s) from the suppression list.", messages.SUCCESS)

    @admin.action(description="Export the suppression list of the selected numbers' org (CSV)")
    def export_csv_action(self, request, queryset):
        org_ids = set(queryset.values_list("org_id", flat=True))
        if len(org_ids) != 1:
            self.message_user(request, "Select numbers of one org to export its list.", messages.ERROR)
            return None
        return self._export_response(visible_orgs(request).get(pk=org_ids.pop()))

    # -- import / export pages ------------------------------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="%s_%s_import" % info),
            path("export/", self.admin_site.admin_view(self.export_view), name="%s_%s_export" % info),
        ] + super().get_urls()

    def import_view(self, request):
        orgs = admin_orgs(request)
        if not self.has_add_permission(request):
            raise Http404("No org you may change.")
        report = None
        form = SuppressionImportForm(request.POST or None, request.FILES or None, orgs=orgs)
        if request.method == "POST" and form.is_valid():
            actor, context = _actor_context(request)
            org = form.cleaned_data["org"]
            rows = io.StringIO(form.cleaned_data["file"])
            report = suppressions_import(org=org, rows=rows, reason=form.cleaned_data["reason"], actor=actor,
                                         context=context)
            level = messages.WARNING if report.invalid else messages.SUCCESS
            self.message_user(request, f"{org.name}: {report.summary()}.", level)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": "Import suppressions from CSV", "form": form, "report": report,
            "report_summary": report and [("Imported", report.imported), ("Already on the list", report.already_present),
                                          ("Not imported (bad rows)", report.invalid), ("Lines read", report.lines)],
            "report_errors": report and [(e.line, e.value, e.error) for e in report.errors],
            "report_truncated": bool(report) and report.invalid > len(report.errors),
        }
        return TemplateResponse(request, "admin/sms/suppression/import.html", context)

    def export_view(self, request):
        orgs = visible_orgs(request)
        org_id = request.GET.get("org", "")
        if not org_id and orgs.count() == 1:
            return self._export_response(orgs.first())
        if org_id:
            org = orgs.filter(pk=org_id).first() if is_uuid(org_id) else None
            if org is None:
                raise Http404("No such org.")
            return self._export_response(org)
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": "Export suppressions", "orgs": orgs, "export_url": reverse("admin:sms_suppression_export")}
        return TemplateResponse(request, "admin/sms/suppression/export_choose.html", context)

    def _export_response(self, org):
        response = StreamingHttpResponse(suppressions_export(org=org, fmt="csv"), content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%d")
        response["Content-Disposition"] = f'attachment; filename="suppressions-{org.pk}-{stamp}.csv"'
        return response

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": self.has_add_permission(request)}
        return super().changelist_view(request, extra_context)
