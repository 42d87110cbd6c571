"""Dashboard → SMS → Link settings, App routes (org owners/admins edit them), Short links (read-only), and
the send page's links with their clicks (LinkInline, added to SendAdmin)."""
from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.core.validators import URLValidator

from sms.admin.scoping import OrgFilter, OrgScopedAdminMixin, ReadOnlyScopedInline
from sms.links import services
from sms.links.models import AppRoute, Link, LinkSettings

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class LinkSettingsForm(forms.ModelForm):
    blocked_hosts_text = forms.CharField(
        label="Blocked hosts", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One host per line; its subdomains are blocked too. A body linking there is refused "
                  "(400 link_not_allowed).")

    class Meta:
        model = LinkSettings
        fields = ["org", "shorten_links", "branded_domain", "retention_days"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["blocked_hosts_text"].initial = "\n".join(self.instance.blocked_hosts or [])

    def clean_branded_domain(self):
        value = (self.cleaned_data.get("branded_domain") or "").strip().lower().rstrip(".")
        if not value:
            return None
        if not _HOSTNAME.match(value):
            raise forms.ValidationError("Enter a host name such as go.example.com (no scheme, no path).")
        return value

    def clean_retention_days(self):
        value = self.cleaned_data["retention_days"]
        if not 1 <= value <= 3650:
            raise forms.ValidationError("Between 1 and 3650 days.")
        return value

    def clean_blocked_hosts_text(self):
        hosts = []
        for line in (self.cleaned_data.get("blocked_hosts_text") or "").splitlines():
            host = services.normalise_host(line)
            if not host:
                continue
            if not _HOSTNAME.match(host):
                raise forms.ValidationError(f"Not a host name: {line.strip()[:100]}")
            hosts.append(host)
        return sorted(set(hosts))

    def save(self, commit=True):
        self.instance.blocked_hosts = self.cleaned_data.get("blocked_hosts_text", [])
        return super().save(commit)


class LinkSettingsAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    form = LinkSettingsForm
    list_display = ["org", "shorten_links", "branded_domain", "retention_days", "updated_at"]
    list_filter = [OrgFilter]
    list_select_related = ["org"]
    fields = ["org", "shorten_links", "branded_domain", "retention_days", "blocked_hosts_text"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.link_settings_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.link_settings_changed()


class AppRouteForm(forms.ModelForm):
    class Meta:
        model = AppRoute
        fields = ["org", "prefix", "ios_url", "android_url", "fallback_url"]

    def _web_url(self, name):
        value = (self.cleaned_data.get(name) or "").strip()
        if value:
            try:
                URLValidator(schemes=["http", "https"])(value)
            except forms.ValidationError:
                raise forms.ValidationError("An http(s) URL, e.g. https://shop.example.com/") from None
        return value

    def clean_prefix(self):
        return self._web_url("prefix")

    def clean_fallback_url(self):
        return self._web_url("fallback_url")

    def clean(self):
        data = super().clean()
        if not (data.get("ios_url") or data.get("android_url")):
            raise forms.ValidationError("Give an iOS target, an Android target, or both.")
        for name in ("ios_url", "android_url"):
            value = data.get(name) or ""
            scheme = value.split(":", 1)[0].lower() if ":" in value else ""
            if value and (not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) or scheme in ("javascript", "data", "vbscript")):
                self.add_error(name, "A custom scheme (myapp://…), an intent:// URL or an https URL.")
        return data


class AppRouteAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    form = AppRouteForm
    list_display = ["prefix", "ios_url", "android_url", "fallback_url", "org"]
    list_filter = [OrgFilter]
    list_select_related = ["org"]
    ordering = ["org", "prefix"]


class LinkAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    writable = False
    list_display = ["created_at", "short_url", "url", "clicks", "previews", "first_clicked_at", "mode", "org"]
    list_filter = ["mode", OrgFilter]
    list_select_related = ["org"]
    search_fields = ["=code"]
    search_help_text = "Search by code (the part after the last /)."
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    fields = ["short_url", "url", "send", "clicks", "previews", "first_clicked_at", "expires_at", "mode", "org",
              "created_at"]
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        return False


class LinkInline(ReadOnlyScopedInline):
    """The send page: its links, with real clicks and previews."""

    model = Link
    fk_name = "send"
    fields = ["short_url", "url", "clicks", "previews", "first_clicked_at"]
    verbose_name = "short link"
    verbose_name_plural = "Links"
    ordering = ["position"]


def register(site) -> None:
    site.register(LinkSettings, LinkSettingsAdmin)
    site.register(AppRoute, AppRouteAdmin)
    site.register(Link, LinkAdmin)


def click_chart(days, daily: dict, *, width: int = 900, height: int = 220) -> dict:
    """Geometry of the stats page's click-through chart: per day, links sent (grey) beside links clicked
    (blue), from sms.links.selectors.link_daily. Server-rendered SVG like the sends chart."""
    from sms.admin.stats import axis_ticks

    left, right, top, bottom = 48, width - 12, 12, height - 40
    plot_w, plot_h = right - left, bottom - top
    axis_max, tick_values = axis_ticks(max((d["sent"] for d in daily.values()), default=0))
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.35, 1.0)
    bars, labels = [], []
    for i, day in enumerate(days):
        counts = daily.get(day, {"sent": 0, "clicked": 0})
        x = left + i * slot + slot * 0.15
        for j, (kind, colour) in enumerate((("sent", "#9e9e9e"), ("clicked", "#1e88e5"))):
            n = counts[kind]
            if n <= 0:
                continue
            h = plot_h * n / axis_max
            bars.append({"x": round(x + j * bar_w, 2), "y": round(bottom - h, 2), "w": round(bar_w, 2),
                         "h": round(h, 2), "colour": colour, "kind": kind, "day": day.isoformat(), "count": n})
        if i % 5 == 0 or i == len(days) - 1:
            labels.append({"x": round(x + bar_w, 2), "text": day.strftime("%b %d")})
    ticks = [{"y": round(bottom - plot_h * v / axis_max, 2), "text": f"{v:,}"} for v in tick_values]
    return {"width": width, "height": height, "bars": bars, "x_labels": labels, "y_ticks": ticks,
            "plot": {"left": left, "right": right, "top": top, "bottom": bottom}}
