"""The dashboard: Django's admin, branded, with the per-org stats pages added to its URLs.

Every model admin registers on `site` (see sms/admin/__init__.py); sendora_sms/urls.py serves it at
/admin/. Tenant scoping lives in one mixin (sms/admin/scoping.py).
"""
from functools import wraps

from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.common import no_append_slash


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

        extra = [
            path("sms/stats/", self.admin_view(stats_index_view), name="sms_stats_index"),
            path("sms/stats/<uuid:org_id>/", self.admin_view(stats_view), name="sms_stats"),
        ]
        return extra + super().get_urls()

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
