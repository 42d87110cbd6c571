"""Dashboard → an org's "Cost and limits" page: this month's live spend by country against the caps,
the allowed countries and pumping limits, and the recent pumping trips (refused sends, from the audit
log). Visible to the org's members; the limits are edited on the org's form (org admins), audited."""
import datetime as dt
from decimal import Decimal

from django.template.response import TemplateResponse
from django.utils import timezone

from audit.models import AuditEntry, Outcome
from orgs.quota import period_bounds, period_start_for
from orgs.spend import country_caps, spend_status
from sms.admin.scoping import can_admin_org, get_visible_org_or_404
from sms.pricing import amount_str
from sms.pumping import limits_for

TRIPS_DAYS = 7
TRIPS_SHOWN = 50


def _pct(spent: Decimal, cap: Decimal | None):
    if cap is None:
        return None
    if cap <= 0:
        return 100.0
    return round(min(float(spent * 100 / cap), 999.0), 1)


def pumping_trips(*, org, days: int = TRIPS_DAYS, limit: int = TRIPS_SHOWN):
    since = timezone.now() - dt.timedelta(days=days)
    return list(AuditEntry.objects.filter(org=org, action="sms.send", outcome=Outcome.REJECTED, created_at__gte=since,
                                          details__decision="suspected_pumping").order_by("-created_at")[:limit])


def cost_view(request, org_id):
    org = get_visible_org_or_404(request, org_id)  # another tenant's org is 404
    start, end = period_bounds(period_start_for())
    spend = spend_status(org=org, since_day=start.date(), until_day=end.date())
    caps = country_caps(org)
    countries = sorted(set(spend.by_country) | set(caps))
    rows = [{"country": c, "spent": amount_str(spend.by_country.get(c, Decimal(0))),
             "cap": amount_str(caps.get(c)), "pct": _pct(spend.by_country.get(c, Decimal(0)), caps.get(c))}
            for c in countries]
    limits = limits_for(org)
    trips = pumping_trips(org=org)
    from sendora_sms.admin_site import site

    context = {
        **site.each_context(request), "title": f"Cost and limits — {org.name}", "org": org,
        "period_start": start, "period_end": end, "total": amount_str(spend.amount),
        "monthly_cap": amount_str(org.monthly_spend_cap), "monthly_pct": _pct(spend.amount, org.monthly_spend_cap),
        "rows": rows, "countries": org.destination_countries, "limits": limits,
        "pumping_override": org.pumping_limit, "trips": trips, "trips_days": TRIPS_DAYS,
        "can_edit": can_admin_org(request, org.pk),
    }
    return TemplateResponse(request, "sms/cost.html", context)
