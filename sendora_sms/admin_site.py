"""The dashboard: Django's admin, branded, with the per-org stats pages added to its URLs.

Every model admin registers on `site` (see sms/admin/__init__.py); sendora_sms/urls.py serves it at
/admin/. Tenant scoping lives in one mixin (sms/admin/scoping.py).
"""
from functools import wraps

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.forms.utils import ErrorDict
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.common import no_append_slash

from orgs.rate_limits import dashboard_login_failure_record, dashboard_login_retry_after
from sendora_sms.client_ip import client_ip


class SendoraAdminSite(admin.AdminSite):
    site_header = "Sendora SMS dashboard"
    site_title = "Sendora SMS"
    index_title = "Dashboard"
    # Menu names that read better than the models' verbose names (Dashboard → SMS → Provider).
    DISPLAY_NAMES = {"ProviderAccount": "Provider"}

    # -- "not found" is the dashboard's own page -----------------------------------------------
    # Another org's object, a deleted one and a mistyped URL all answer the same 404 page (so the page
    # confirms nothing), inside the dashboard's chrome rather than Django's bare "Not Found".
    def not_found(self, request):
        context = {**self.each_context(request), "title": "Not found"}
        response = TemplateResponse(request, "admin/404.html", context, status=404)
        add_never_cache_headers(response)
        return response

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def view_or_not_found(request, *args, **kwargs):
            try:
                return inner(request, *args, **kwargs)
            except Http404:
                return self.not_found(request)

        return view_or_not_found

    @no_append_slash
    def catch_all_view(self, request, url):
        try:
            return super().catch_all_view(request, url)
        except Http404:
            if not self.has_permission(request):
                raise
            return self.not_found(request)

    def get_urls(self):
        from sms.admin.stats import stats_index_view, stats_view
        from sms.admin.cost import cost_view

        extra = [
            path("sms/stats/", self.admin_view(stats_index_view), name="sms_stats_index"),
            path("sms/stats/<uuid:org_id>/", self.admin_view(stats_view), name="sms_stats"),
            path("sms/cost/<uuid:org_id>/", self.admin_view(cost_view), name="sms_cost"),
        ]
        return extra + super().get_urls()

    def login(self, request, extra_context=None):
        """Django's admin login behind a throttle on FAILED attempts, per client address and per
        username (DASHBOARD_LOGIN_RATE_PER_*; django-ratelimit counters in the rate-limit cache).
        While either is exceeded the login page answers 429 and the password is not even checked."""
        if request.method != "POST":
            return super().login(request, extra_context)
        client = client_ip(request) or "unknown"
        username = str(request.POST.get("username", ""))
        retry_after = dashboard_login_retry_after(client=client, username=username)
        if retry_after is not None:
            return self._login_throttled(request, retry_after)
        response = super().login(request, extra_context)
        if not request.user.is_authenticated:
            dashboard_login_failure_record(client=client, username=username)
        return response

    def _login_throttled(self, request, retry_after: int):
        form = (self.login_form or AdminAuthenticationForm)(request, initial={"username": request.POST.get("username")})
        form._errors, form.cleaned_data = ErrorDict(), {}  # an unbound form showing one non-field error
        form.add_error(None, _("Too many failed login attempts. Try again in %(n)d seconds.") % {"n": retry_after})
        context = {**self.each_context(request), "title": _("Log in"), "subtitle": None,
                   "app_path": request.get_full_path(), "form": form,
                   REDIRECT_FIELD_NAME: request.GET.get(REDIRECT_FIELD_NAME, "")}
        request.current_app = self.name
        response = TemplateResponse(request, self.login_template or "admin/login.html", context, status=429)
        response["Retry-After"] = str(retry_after)
        return response

    def get_app_list(self, request, app_label=None):
        """Adds "Stats" under the SMS app, beside the models (Dashboard → SMS → Stats)."""
        app_list = super().get_app_list(request, app_label)
        for app in app_list:
            for model in app["models"]:
                model["name"] = self.DISPLAY_NAMES.get(model["object_name"], model["name"])
        from sms.admin.scoping import user_org_roles

        if not (request.user.is_superuser or user_org_roles(request)):
            return app_list
        try:
            url = reverse(f"{self.name}:sms_stats_index")
        except NoReverseMatch:
            return app_list
        for app in app_list:
            if app["app_label"] == "sms":
                app["models"].append({
                    "model": None, "name": "Stats", "object_name": "Stats",
                    "perms": {"add": False, "change": False, "delete": False, "view": True},
                    "admin_url": url, "add_url": None, "view_only": True,
                })
                app["models"].sort(key=lambda m: m["name"])
        return app_list


site = SendoraAdminSite(name="admin")
